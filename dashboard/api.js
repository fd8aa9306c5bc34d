// @ts-check
/// <reference lib="dom" />
/**
 * Talks to the queue-health Edge Function (JSON health, history) and loads vendored scripts on
 * demand.
 * @module
 */

/** An HTTP failure of the function, with its status and (when JSON) its body. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status (0 = network failure)
   * @param {string} message
   * @param {unknown} [body]
   */
  constructor(status, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.body = body;
  }
}

/**
 * @typedef {object} Api
 * @property {(project?: string | null) => Promise<any>} health the health report (200 or 503: both carry it)
 * @property {(q: {queue: string, source?: string, project?: string, range: string}) => Promise<any>} history
 */

/**
 * @param {{functionsUrl: string, anonKey: string}} config
 * @param {() => string | null} getToken the caller's access token
 * @param {typeof fetch} [fetchFn]
 * @returns {Api}
 */
export function createApi(config, getToken, fetchFn = fetch) {
  const base = `${config.functionsUrl}/queue-health`;

  /**
   * @param {string} path
   * @param {Record<string, string | null | undefined>} params
   * @param {number} timeoutMs
   */
  async function get(path, params, timeoutMs) {
    const u = new URL(base + path);
    for (const [k, v] of Object.entries(params)) if (v) u.searchParams.set(k, v);
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    const token = getToken();
    if (token) headers.authorization = `Bearer ${token}`;
    if (config.anonKey) headers.apikey = config.anonKey;
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    let res;
    try {
      res = await fetchFn(u, { headers, signal: ctl.signal, cache: 'no-store' });
    } catch (e) {
      const what = ctl.signal.aborted ? `timed out after ${timeoutMs / 1000} s` : String(e);
      throw new ApiError(0, `cannot reach ${base}: ${what}`);
    } finally {
      clearTimeout(timer);
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      // not JSON
    }
    return { status: res.status, body };
  }

  return {
    async health(project) {
      const { status, body } = await get('', { project }, 10_000);
      // 503 with a report means "unhealthy"; 503 without one means the database is unreachable.
      if ((status === 200 || status === 503) && body && Array.isArray(body.queues)) return body;
      throw new ApiError(status, describe(status, body), body);
    },
    async history(q) {
      const { status, body } = await get('/history', { ...q }, 20_000);
      if (status === 200 && body && Array.isArray(body.series)) return body;
      throw new ApiError(status, describe(status, body), body);
    },
  };
}

/**
 * A short message for a failed call.
 * @param {number} status
 * @param {any} body
 * @returns {string}
 */
function describe(status, body) {
  if (status === 401) return 'the access token was rejected (expired, or not for this project)';
  const detail = body && (body.message || body.reason || body.error);
  return `queue-health answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
}

/** @type {Map<string, Promise<void>>} */
const loaded = new Map();

/**
 * Loads a classic script (a vendored UMD/IIFE bundle) once.
 * @param {string} src
 * @returns {Promise<void>}
 */
export function loadScript(src) {
  let p = loaded.get(src);
  if (!p) {
    p = new Promise((resolve, reject) => {
      const el = document.createElement('script');
      el.src = src;
      el.onload = () => resolve();
      el.onerror = () => {
        loaded.delete(src);
        reject(new Error(`could not load ${src}: run the dashboard build (docs/dashboard.md)`));
      };
      document.head.append(el);
    });
    loaded.set(src, p);
  }
  return p;
}
