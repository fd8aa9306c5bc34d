// @ts-check
/// <reference lib="dom" />
/**
 * The standalone page (index.html): a thin host of `<queue-health-dashboard>`. It reads where the
 * project is (config.js: config.json, the local stack's /_stack/config.json, URL parameters),
 * hands that to the element as attributes, lets it keep the selection in the URL hash, and
 * mirrors its status into the tab title. Everything else is the element's.
 * @module
 */
import { loadConfig } from './config.js';
import './dist/queue-health-dashboard.js';

const host = /** @type {HTMLElement} */ (document.getElementById('host'));

try {
  const cfg = await loadConfig(location);
  const el = document.createElement('queue-health-dashboard');
  el.setAttribute('supabase-url', cfg.supabaseUrl);
  if (cfg.anonKey) el.setAttribute('anon-key', cfg.anonKey);
  el.setAttribute('functions-url', cfg.functionsUrl);
  el.setAttribute('realtime', cfg.realtime === null ? 'auto' : String(cfg.realtime));
  el.setAttribute('auth', cfg.auth === null ? 'auto' : String(cfg.auth));
  el.setAttribute('poll-seconds', String(cfg.pollSeconds));
  // supabase-js is vendored next to the page (local/dashboard/build.ts), loaded when needed.
  el.setAttribute('supabase-js', 'vendor/supabase.js');
  el.setAttribute('hash', '');
  el.addEventListener('statuschange', (ev) => {
    const { status } = /** @type {CustomEvent} */ (ev).detail;
    document.title = `${status === 'ok' ? '' : `[${status}] `}Queue Health`;
  });
  el.addEventListener('modechange', (ev) => {
    document.body.dataset.mode = /** @type {CustomEvent} */ (ev).detail.mode;
  });
  host.append(el);
  /** @type {HTMLElement} */ (document.getElementById('about')).textContent =
    `Functions: ${cfg.functionsUrl} · settings from ${cfg.sources.join(', ') || 'defaults'}`;
} catch (e) {
  /** @type {HTMLElement} */ (document.getElementById('config-error-text')).textContent =
    e instanceof Error ? e.message : String(e);
  /** @type {HTMLElement} */ (document.getElementById('config-error')).hidden = false;
}
