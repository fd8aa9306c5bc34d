import adapter from '@sveltejs/adapter-static';

/** A single-page app: the dashboard runs in the browser, so every route falls back to index.html. */
export default {
  kit: {
    adapter: adapter({ fallback: 'index.html' }),
  },
};
