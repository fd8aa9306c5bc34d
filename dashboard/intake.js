// @ts-check
/**
 * Data intake: what the element knows about the queues, and how each health report (api.js) and
 * each Realtime snapshot (live.js) changes it. No DOM: the views (views.js) render this state.
 * @module
 */
import { queueKey, ratesOf, snapshotQueues } from './format.js';

/** Sparklines span this much time. */
export const SPARK_WINDOW_MS = 30 * 60_000;

/**
 * @typedef {object} QueueRow
 * @property {string} id          project/source/schema/queue
 * @property {string} key         project/source/queue (what Realtime payloads carry)
 * @property {string} project_id
 * @property {string} source
 * @property {string} source_schema
 * @property {string} queue
 * @property {string} status
 * @property {string | null} captured_at
 * @property {Record<string, any>} metrics
 * @property {Record<string, any>} signals the report's `signals` (flow status, drain ETA, poison,
 *   objective), {} when the function does not send them
 * @property {any[]} reasons
 * @property {string | null} reportAt captured_at of the report's row: the fields a slim snapshot
 *   does not carry (ready, in flight, delayed, dead-lettered) are from then
 */

/**
 * @typedef {object} IntakeState
 * @property {{id: string, name: string}[]} projects the projects the user sees
 * @property {string | null} project the selected project (null = all)
 * @property {boolean} projectChosen whether the user (or the host) chose it
 * @property {any} report the last health report
 * @property {Map<string, QueueRow>} queues by id
 * @property {Map<string, [number, number][]>} spark depth points per queue id, newest last
 * @property {Set<string>} sparkLoaded queues whose sparkline history was asked for
 * @property {number} updatedAt epoch ms of the last data received
 */

/** @returns {IntakeState} */
export function createIntake() {
  return {
    projects: [],
    project: null,
    projectChosen: false,
    report: null,
    queues: new Map(),
    spark: new Map(),
    sparkLoaded: new Set(),
    updatedAt: 0,
  };
}

/** Forgets every queue (sign-out, another project). @param {IntakeState} s */
export function clearQueues(s) {
  s.queues.clear();
  s.spark.clear();
  s.sparkLoaded.clear();
}

/**
 * Takes a health report in. Returns 'restart' when the selected project is not among the ones the
 * user may see (the selection was dropped: subscribe again), else 'ok'.
 * @param {IntakeState} s
 * @param {any} report
 * @returns {'ok' | 'restart'}
 */
export function applyReport(s, report) {
  s.report = report;
  s.updatedAt = Date.now();
  const projects = Array.isArray(report.projects) ? report.projects : [];
  if (s.project && !projects.some((/** @type {any} */ p) => p.id === s.project)) {
    // A project from the URL or the host that this user cannot see: show what they can see.
    s.project = null;
    s.projectChosen = false;
    return 'restart';
  }
  if (!s.project) {
    s.projects = projects;
  } else {
    for (const p of projects) {
      if (!s.projects.some((q) => q.id === p.id)) s.projects.push(p);
    }
  }
  // Show one project by default when the caller sees exactly one.
  if (!s.projectChosen && !s.project && s.projects.length === 1) s.project = s.projects[0].id;
  const seen = new Set();
  for (const q of report.queues) {
    if (s.project && q.project_id !== s.project) continue;
    const id = `${q.project_id}/${q.source}/${q.source_schema}/${q.queue}`;
    seen.add(id);
    /** @type {QueueRow} */
    const row = {
      id,
      key: queueKey(q.project_id, q.source, q.queue),
      project_id: q.project_id,
      source: q.source,
      source_schema: q.source_schema,
      queue: q.queue,
      status: q.status,
      captured_at: q.captured_at,
      metrics: { ...q.metrics },
      signals: q.signals && typeof q.signals === 'object' ? { ...q.signals } : {},
      reasons: q.reasons ?? [],
      reportAt: q.captured_at,
    };
    s.queues.set(id, row);
    addSparkPoint(s, id, row.captured_at, row.metrics.depth);
  }
  for (const id of [...s.queues.keys()]) if (!seen.has(id)) s.queues.delete(id);
  return 'ok';
}

/** The numbers a snapshot may carry, copied into a row's metrics. */
const SNAPSHOT_FIELDS = [
  'depth',
  'ready',
  'in_flight',
  'delayed',
  'oldest_ready_age_s',
  'enqueued',
  'completed',
  'failed',
  'dead_lettered',
  'depth_estimated',
];

/**
 * A Realtime snapshot (slim v2 or full v1): updates the numbers it carries. Status, alerts,
 * channels, new queues and (from a slim one) the ready / in flight / delayed breakdown follow with
 * the next read of the report, at most a minute later (live.js). Returns whether it changed
 * anything shown.
 * @param {IntakeState} s
 * @param {any} payload
 * @returns {boolean}
 */
export function applySnapshot(s, payload) {
  const queues = snapshotQueues(payload);
  if (!queues) return false;
  if (s.project && payload.project_id !== s.project) return false;
  s.updatedAt = Date.now();
  for (const q of queues) {
    // Payloads name the schema (older ones did not: then match on source and name, if unique).
    const row = typeof q.source_schema === 'string'
      ? s.queues.get(`${payload.project_id}/${q.source}/${q.source_schema}/${q.queue}`)
      : onlyOne(
        [...s.queues.values()].filter((r) =>
          r.key === queueKey(payload.project_id, q.source, q.queue)
        ),
      );
    if (!row) continue; // a new queue: the next read of the report adds it
    const prev = row.captured_at ? Date.parse(row.captured_at) : NaN;
    const at = Date.parse(payload.captured_at);
    if (Number.isFinite(prev) && at <= prev) continue;
    const interval = Number.isFinite(prev) ? (at - prev) / 1000 : null;
    for (const f of SNAPSHOT_FIELDS) if (f in q) row.metrics[f] = q[f];
    if ('ready' in q) row.reportAt = null; // a full payload: the breakdown is current
    Object.assign(row.metrics, ratesOf(q, interval), { interval_s: interval });
    // Signals the payload carries (flow status, drain ETA, poison); the rest follow with the report.
    for (const f of ['flow_status', 'drain_eta_s', 'poison']) {
      if (f in q) row.signals[f] = q[f];
    }
    row.captured_at = new Date(at).toISOString();
    addSparkPoint(s, row.id, row.captured_at, q.depth);
  }
  // The snapshot is a capture: the monitor's "last capture" moves with it.
  const monitor = s.report?.monitor;
  if (monitor && !(Date.parse(monitor.last_capture_at) >= Date.parse(payload.captured_at))) {
    monitor.last_capture_at = payload.captured_at;
  }
  return true;
}

/**
 * The one element of a list, else undefined.
 * @template T
 * @param {T[]} list
 * @returns {T | undefined}
 */
function onlyOne(list) {
  return list.length === 1 ? list[0] : undefined;
}

/**
 * @param {IntakeState} s
 * @param {string} id
 * @param {string | null} capturedAt
 * @param {unknown} depth
 */
export function addSparkPoint(s, id, capturedAt, depth) {
  if (!capturedAt || typeof depth !== 'number') return;
  const t = Date.parse(capturedAt);
  let pts = s.spark.get(id);
  if (!pts) s.spark.set(id, pts = []);
  if (pts.length && pts[pts.length - 1][0] >= t) return;
  pts.push([t, depth]);
  const cutoff = Date.now() - SPARK_WINDOW_MS;
  while (pts.length > 2 && pts[0][0] < cutoff) pts.shift();
}

/**
 * Fills the sparklines of newly seen queues from the last 30 min of history (3 requests at a time,
 * the first 50 queues); `onFilled(id)` after each.
 * @param {IntakeState} s
 * @param {import('./api.js').Api} api
 * @param {(id: string) => void} onFilled
 */
export async function backfillSparklines(s, api, onFilled) {
  const todo = [...s.queues.values()].filter((q) => !s.sparkLoaded.has(q.id)).slice(0, 50);
  const work = async () => {
    for (let q = todo.shift(); q; q = todo.shift()) {
      s.sparkLoaded.add(q.id);
      try {
        const h = await api.history({
          queue: q.queue,
          source: q.source,
          project: q.project_id,
          range: '30m',
        });
        const series = h.series.find((/** @type {any} */ x) =>
          x.project_id === q.project_id && x.source === q.source && x.queue === q.queue
        );
        if (!series) continue;
        const live = s.spark.get(q.id) ?? [];
        const firstLive = live.length ? live[0][0] : Infinity;
        /** @type {[number, number][]} */
        const past = series.points
          .map((/** @type {any} */ p) => [Date.parse(p.t), Number(p.depth)])
          .filter((/** @type {[number, number]} */ [t, d]) => t < firstLive && Number.isFinite(d));
        s.spark.set(q.id, [...past, ...live]);
        onFilled(q.id);
      } catch {
        // the sparkline fills from live data instead
      }
    }
  };
  await Promise.all([work(), work(), work()]);
}
