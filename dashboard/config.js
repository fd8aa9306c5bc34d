// @ts-check
/**
 * Where the dashboard finds its Supabase project. Later sources override earlier ones:
 *
 * 1. `/_stack/config.json` — what the local stack serves (only read when 2. is absent);
 * 2. `config.json` next to index.html — for hosting the page anywhere;
 * 3. URL query parameters: `supabaseUrl`, `anonKey`, `functionsUrl`, `realtime`, `auth`.
 *
 * @module
 */

/**
 * @typedef {object} DashboardConfig
 * @property {string} supabaseUrl  the project's API URL, e.g. https://abc.supabase.co
 * @property {string} anonKey      the project's anon (publishable) key
 * @property {string} functionsUrl base URL of the Edge Functions (default `<supabaseUrl>/functions/v1`)
 * @property {boolean | null} realtime true/false as configured; null = try it, poll if it fails
 * @property {boolean | null} auth  true/false as configured; null = probe `<supabaseUrl>/auth/v1/health`
 * @property {number} pollSeconds  seconds between polls when Realtime is not used (2-60, default 2.5)
 * @property {string[]} sources    where each setting came from, for the "about" line
 */

/**
 * Parses "true"/"false"/"1"/"0"/"auto" (and booleans) into a tri-state.
 * @param {unknown} v
 * @returns {boolean | null | undefined} undefined when absent
 */
function triState(v) {
  if (v === undefined || v === null || v === '') return undefined;
  if (v === true || v === 'true' || v === '1' || v === 'on') return true;
  if (v === false || v === 'false' || v === '0' || v === 'off') return false;
  if (v === 'auto') return null;
  throw new Error(`'realtime' and 'auth' must be true, false or auto: got ${JSON.stringify(v)}`);
}

/**
 * Checks a URL setting.
 * @param {string} name
 * @param {unknown} v
 * @returns {string}
 */
function url(name, v) {
  if (typeof v !== 'string' || !/^https?:\/\/[^\s]+$/.test(v)) {
    throw new Error(`'${name}' must be an http(s) URL: got ${JSON.stringify(v)}`);
  }
  return v.replace(/\/+$/, '');
}

/**
 * Fetches a JSON config file; null when it is not there.
 * @param {typeof fetch} fetchFn
 * @param {string} href
 * @returns {Promise<Record<string, unknown> | null>}
 */
async function readJson(fetchFn, href) {
  try {
    const res = await fetchFn(href, { cache: 'no-store' });
    if (!res.ok) return null;
    const body = await res.json();
    return body && typeof body === 'object' ? body : null;
  } catch {
    return null;
  }
}

/**
 * Merges the config sources (see the module doc) into one validated config.
 * @param {Record<string, unknown>[]} layers lowest priority first; each `{...settings, _source}`
 * @returns {DashboardConfig}
 * @throws {Error} naming the setting that is missing or malformed
 */
export function mergeConfig(layers) {
  /** @type {Record<string, unknown>} */
  const merged = {};
  const sources = [];
  for (const layer of layers) {
    let used = false;
    for (const [k, v] of Object.entries(layer)) {
      if (k === '_source' || v === undefined || v === null || v === '') continue;
      merged[k] = v;
      used = true;
    }
    if (used) sources.push(String(layer._source));
  }
  if (!merged.supabaseUrl && !merged.functionsUrl) {
    throw new Error(
      "'supabaseUrl' is not configured: put a config.json next to index.html or add ?supabaseUrl=…&anonKey=… to the URL",
    );
  }
  const supabaseUrl = merged.supabaseUrl
    ? url('supabaseUrl', merged.supabaseUrl)
    : url('functionsUrl', merged.functionsUrl).replace(/\/functions\/v1$/, '');
  const functionsUrl = merged.functionsUrl
    ? url('functionsUrl', merged.functionsUrl)
    : `${supabaseUrl}/functions/v1`;
  if (merged.anonKey !== undefined && typeof merged.anonKey !== 'string') {
    throw new Error("'anonKey' must be a string");
  }
  const poll = merged.pollSeconds === undefined ? 2.5 : Number(merged.pollSeconds);
  if (!Number.isFinite(poll) || poll < 2 || poll > 60) {
    throw new Error(`'pollSeconds' must be a number from 2 to 60: got ${merged.pollSeconds}`);
  }
  return {
    supabaseUrl,
    anonKey: /** @type {string} */ (merged.anonKey ?? ''),
    functionsUrl,
    realtime: triState(merged.realtime) ?? null,
    auth: triState(merged.auth) ?? null,
    pollSeconds: poll,
    sources,
  };
}

/**
 * Loads the config for the page at `location`.
 * @param {{href: string, search: string}} location
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<DashboardConfig>}
 */
export async function loadConfig(location, fetchFn = fetch) {
  const here = new URL('config.json', location.href).href;
  const file = await readJson(fetchFn, here);
  const stack = file
    ? null
    : await readJson(fetchFn, new URL('/_stack/config.json', location.href).href);
  const params = new URLSearchParams(location.search);
  /** @type {Record<string, unknown>} */
  const fromUrl = { _source: 'URL parameters' };
  for (const key of ['supabaseUrl', 'anonKey', 'functionsUrl', 'realtime', 'auth', 'pollSeconds']) {
    const v = params.get(key);
    if (v !== null) fromUrl[key] = v;
  }
  return mergeConfig([
    { ...(stack ?? {}), _source: 'local stack (/_stack/config.json)' },
    { ...(file ?? {}), _source: 'config.json' },
    fromUrl,
  ]);
}
