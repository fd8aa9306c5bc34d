// The dashboard lives in the browser (a custom element, the user's Supabase session): no SSR.
export const ssr = false;
