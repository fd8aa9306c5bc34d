// @ts-check
/// <reference lib="dom" />
/**
 * Keeps the dashboard up to date. Realtime first: subscribes to the private broadcast channel
 * `queue_health:<project_id>` (event `snapshot`) of each shown project, whose snapshots carry the
 * numbers the queue table shows, and re-reads the health report (status, alerts and channels are
 * decided in SQL, not in the payload) at most every REPORT_EVERY_MS (60 s), not after each
 * snapshot: every read is an Edge Function invocation. Where Realtime is switched off or cannot be
 * joined, polls the function every `pollSeconds`. While the tab is hidden it reads nothing (the
 * snapshots still arrive); on becoming visible it reads once if a read is due. Says which mode it
 * is in through `onMode`.
 * @module
 */
import { ApiError } from './api.js';
import { nextReportDelay } from './format.js';

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
 * @property {() => Promise<any>} supabase   the supabase-js client (loaded on demand), or null
 * @property {(report: any) => void} onReport
 * @property {(payload: any) => void} onSnapshot
 * @property {(mode: Mode, detail: string) => void} onMode
 * @property {(error: ApiError) => void} onUnauthorized
 * @property {(error: Error) => void} onError
 */

/** How long to wait for a channel to be joined before polling instead. */
const JOIN_TIMEOUT_MS = 8000;
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
  /** @type {any[]} */
  let channels = [];
  let inFlight = false;
  let again = false;
  let failures = 0;
  /** When the last read started (ms): the next is timed from it. */
  let lastAttempt = 0;
  let generation = 0;

  const hidden = () => document.visibilityState === 'hidden';

  /** @param {Mode} m @param {string} detail */
  function setMode(m, detail) {
    mode = m;
    o.onMode(m, detail);
  }

  function pollingDetail() {
    return `polling every ${o.config.pollSeconds} s`;
  }

  /**
   * Reads the report once (never two at a time; a call while one runs queues one more). Not while
   * the tab is hidden: becoming visible reads it when due.
   */
  async function fetchOnce() {
    if (stopped || hidden()) return;
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    lastAttempt = Date.now();
    const gen = generation;
    try {
      const report = await o.api.health(o.project());
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

  /** Times the next read (none while hidden: the visibilitychange handler resumes). */
  function schedulePoll() {
    clearTimeout(pollTimer);
    if (stopped) return;
    const wait = nextReportDelay({
      mode,
      hidden: hidden(),
      pollSeconds: o.config.pollSeconds,
      failures,
      sinceLastMs: Date.now() - lastAttempt,
    });
    if (wait === null) return;
    pollTimer = setTimeout(async () => {
      await fetchOnce();
      schedulePoll();
    }, wait);
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
    if (o.config.realtime === false) {
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
      if (!client) {
        setPolling(`${pollingDetail()} (no Supabase client: give a client, or an anon key)`);
        schedulePoll();
        return;
      }
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
    // Until joined: read again only if the first read failed (nextReportDelay).
    schedulePoll();
  }

  /** Hidden: stop the timer. Visible: read now if a read is due, else when it is. */
  let started = false;
  const onVisible = () => {
    if (stopped) return;
    if (!started) {
      if (!hidden()) start();
      return;
    }
    schedulePoll();
  };
  document.addEventListener('visibilitychange', onVisible);

  /** The first read and the subscription, once the tab is visible. */
  function start() {
    started = true;
    fetchOnce().then(() => subscribe());
  }
  if (!hidden()) start();

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
      document.removeEventListener('visibilitychange', onVisible);
      await unsubscribe();
    },
  };
}
