// @ts-check
/// <reference lib="dom" />
/**
 * Keeps the page up to date. Realtime first: subscribes to the private broadcast channel
 * `queue_health:<project_id>` (event `snapshot`) of each shown project and re-reads the health
 * report shortly after each snapshot (status, alerts and channels are decided in SQL, not in the
 * payload). Where Realtime is switched off or cannot be joined, polls the function every
 * `pollSeconds`. Says which mode it is in through `onMode`.
 * @module
 */
import { ApiError } from './api.js';

/**
 * @typedef {'connecting' | 'realtime' | 'polling' | 'offline'} Mode
 */

/**
 * @typedef {object} LiveOptions
 * @property {import('./config.js').DashboardConfig} config
 * @property {import('./api.js').Api} api
 * @property {() => string | null} project  the selected project (null = all visible)
 * @property {() => string[]} channelProjects projects to subscribe to
 * @property {() => string | null} token
 * @property {() => Promise<any>} supabase   the supabase-js client (loaded on demand)
 * @property {(report: any) => void} onReport
 * @property {(payload: any) => void} onSnapshot
 * @property {(mode: Mode, detail: string) => void} onMode
 * @property {(error: ApiError) => void} onUnauthorized
 * @property {(error: Error) => void} onError
 */

/** How long to wait for a channel to be joined before polling instead. */
const JOIN_TIMEOUT_MS = 8000;
/** In Realtime mode, the report is still re-read this often (alerts, stale queues). */
const REALTIME_REFRESH_MS = 30_000;
/** After Realtime failed, try it again this much later (polling meanwhile). */
const REALTIME_RETRY_MS = 60_000;

/**
 * Starts the updates; `stop()` ends them, `refresh()` re-reads the report now, `restart()`
 * re-subscribes (after the project changed).
 * @param {LiveOptions} o
 */
export function startLive(o) {
  let stopped = false;
  /** @type {Mode} */
  let mode = 'connecting';
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let pollTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let retryTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let debounceTimer;
  /** @type {any[]} */
  let channels = [];
  let inFlight = false;
  let again = false;
  let failures = 0;
  let lastFetch = 0;
  let generation = 0;

  /** @param {Mode} m @param {string} detail */
  function setMode(m, detail) {
    mode = m;
    o.onMode(m, detail);
  }

  function pollingDetail() {
    return `polling every ${o.config.pollSeconds} s`;
  }

  /** Reads the report once (never two at a time; a call while one runs queues one more). */
  async function fetchOnce() {
    if (stopped) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    const gen = generation;
    try {
      const report = await o.api.health(o.project());
      lastFetch = Date.now();
      if (stopped || gen !== generation) return;
      failures = 0;
      o.onReport(report);
      if ((mode === 'offline' || mode === 'connecting') && channels.length === 0) {
        setMode('polling', pollingDetail());
      }
    } catch (e) {
      if (stopped) return;
      const err = e instanceof ApiError ? e : new ApiError(0, String(e));
      if (err.status === 401) {
        o.onUnauthorized(err);
        return;
      }
      failures++;
      if (mode !== 'realtime') setMode('offline', `${err.message}; retrying`);
      o.onError(err);
    } finally {
      inFlight = false;
      if (again && !stopped) {
        again = false;
        queueMicrotask(fetchOnce);
      }
    }
  }

  function schedulePoll() {
    clearTimeout(pollTimer);
    if (stopped) return;
    const base = mode === 'realtime' ? REALTIME_REFRESH_MS : o.config.pollSeconds * 1000;
    const backoff = failures ? Math.min(15_000, base * 2 ** Math.min(failures, 3)) : base;
    const wait = document.hidden && mode !== 'realtime' ? Math.max(backoff, 15_000) : backoff;
    pollTimer = setTimeout(async () => {
      await fetchOnce();
      schedulePoll();
    }, wait);
  }

  /** After a snapshot: re-read the report soon, at most every 2 s. */
  function refreshSoon() {
    clearTimeout(debounceTimer);
    const wait = Math.max(300, 2000 - (Date.now() - lastFetch));
    debounceTimer = setTimeout(fetchOnce, wait);
  }

  async function unsubscribe() {
    const old = channels;
    channels = [];
    for (const ch of old) {
      try {
        await ch.unsubscribe();
      } catch {
        // already gone
      }
    }
  }

  /** Polling from now on; "offline" stays until a poll succeeds. @param {string} detail */
  function setPolling(detail) {
    if (failures === 0) setMode('polling', detail);
  }

  /** @param {string} reason */
  function fallBackToPolling(reason) {
    unsubscribe();
    setPolling(`${pollingDetail()} (${reason})`);
    schedulePoll();
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      if (!stopped) subscribe();
    }, REALTIME_RETRY_MS);
  }

  async function subscribe() {
    if (stopped) return;
    const gen = ++generation;
    await unsubscribe();
    if (o.config.realtime === false || !o.config.anonKey) {
      setPolling(`${pollingDetail()} (Realtime is off in the configuration)`);
      schedulePoll();
      return;
    }
    const projects = o.channelProjects();
    if (projects.length === 0) {
      setPolling(`${pollingDetail()} (no project to subscribe to)`);
      schedulePoll();
      return;
    }
    setMode('connecting', 'joining Realtime…');
    let client;
    try {
      client = await o.supabase();
      await client.realtime.setAuth(o.token());
    } catch (e) {
      fallBackToPolling(`Realtime unavailable: ${e instanceof Error ? e.message : e}`);
      return;
    }
    if (stopped || gen !== generation) return;
    let joined = 0;
    let failed = false;
    const timeout = setTimeout(() => {
      if (joined < projects.length && !failed && gen === generation) {
        failed = true;
        fallBackToPolling('Realtime did not answer');
      }
    }, JOIN_TIMEOUT_MS);
    for (const project of projects) {
      const ch = client.channel(`queue_health:${project}`, { config: { private: true } });
      ch.on('broadcast', { event: 'snapshot' }, (/** @type {any} */ msg) => {
        if (stopped || gen !== generation) return;
        o.onSnapshot(msg.payload);
        refreshSoon();
      });
      ch.subscribe((/** @type {string} */ status, /** @type {Error | undefined} */ err) => {
        if (stopped || gen !== generation) return;
        if (status === 'SUBSCRIBED') {
          joined++;
          if (joined === projects.length) {
            clearTimeout(timeout);
            setMode(
              'realtime',
              `live: Realtime channel${projects.length > 1 ? 's' : ''} ${
                projects.map((p) => `queue_health:${p}`).join(', ')
              }`,
            );
            schedulePoll();
          }
        } else if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT' || status === 'CLOSED') {
          if (failed) return;
          failed = true;
          clearTimeout(timeout);
          fallBackToPolling(
            status === 'CHANNEL_ERROR'
              ? `cannot join Realtime${err?.message ? `: ${err.message}` : ''}`
              : `Realtime ${status.toLowerCase().replace('_', ' ')}`,
          );
        }
      });
      channels.push(ch);
    }
    // Poll until joined, so the page is never without data.
    schedulePoll();
  }

  const onVisible = () => {
    if (!document.hidden) {
      fetchOnce();
      schedulePoll();
    }
  };
  document.addEventListener('visibilitychange', onVisible);

  fetchOnce().then(() => subscribe());

  return {
    get mode() {
      return mode;
    },
    refresh: fetchOnce,
    async restart() {
      generation++;
      await fetchOnce();
      await subscribe();
    },
    async stop() {
      stopped = true;
      clearTimeout(pollTimer);
      clearTimeout(retryTimer);
      clearTimeout(debounceTimer);
      document.removeEventListener('visibilitychange', onVisible);
      await unsubscribe();
    },
  };
}
