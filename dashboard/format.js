// @ts-check
/**
 * Pure formatting for the dashboard: numbers with units, durations, relative times, status
 * ordering. No DOM, so Deno tests import it directly (local/test/dashboard_format_test.ts).
 * @module
 */

/** Statuses from worst to best: the order queues are listed in. */
export const STATUS_ORDER = ['critical', 'stale', 'warning', 'ok'];

/**
 * Sort rank of a status (0 = worst); unknown statuses sort last.
 * @param {string | null | undefined} status
 * @returns {number}
 */
export function statusRank(status) {
  const i = STATUS_ORDER.indexOf(String(status));
  return i === -1 ? STATUS_ORDER.length : i;
}

/**
 * A count, exact below 10 000 ("1,234"), compact above ("12.3k", "4.5M"); "–" when unknown.
 * @param {number | null | undefined} n
 * @returns {string}
 */
export function formatCount(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  const abs = Math.abs(n);
  if (abs < 10_000) return Math.round(n).toLocaleString('en-US');
  const units = [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ];
  for (const [size, suffix] of /** @type {[number, string][]} */ (units)) {
    if (abs >= size) {
      const v = n / size;
      return `${Math.abs(v) < 100 ? v.toFixed(1).replace(/\.0$/, '') : Math.round(v)}${suffix}`;
    }
  }
  return String(n);
}

/**
 * A number of jobs with its unit: "1 job", "1,234 jobs", "12.3k jobs"; "–" when unknown.
 * @param {number | null | undefined} n
 * @returns {string}
 */
export function formatJobs(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `${formatCount(n)} ${n === 1 ? 'job' : 'jobs'}`;
}

/**
 * A rate per second: "0", "0.4/s", "12/s", "1.2k/s"; "–" when unknown.
 * @param {number | null | undefined} perSecond
 * @returns {string}
 */
export function formatRate(perSecond) {
  if (perSecond === null || perSecond === undefined || !Number.isFinite(perSecond)) return '–';
  if (perSecond === 0) return '0/s';
  const abs = Math.abs(perSecond);
  if (abs < 0.01) return '<0.01/s';
  if (abs < 10) return `${perSecond.toFixed(abs < 1 ? 2 : 1).replace(/\.?0+$/, '')}/s`;
  return `${formatCount(perSecond)}/s`;
}

/**
 * The labels of a rate axis's ticks (values per second, evenly spaced): as many decimals as the
 * tick spacing needs ("0.05/s", "0.1/s", "0.15/s"), per minute when every tick is below 0.1/s
 * ("1.5/min", "3/min"), counts from 1 000 ("5,000/s", "12k/s"). Never "0/s" on every tick, as a whole-number
 * format gives for rates below 1/s.
 * @param {number[]} ticks
 * @returns {string[]}
 */
export function rateTicks(ticks) {
  const finite = ticks.filter((t) => Number.isFinite(t));
  if (finite.length === 0) return ticks.map(() => '');
  const max = Math.max(...finite.map((t) => Math.abs(t)));
  const perMinute = max > 0 && max < 0.1;
  const scale = perMinute ? 60 : 1;
  const unit = perMinute ? '/min' : '/s';
  let step = Infinity;
  for (let i = 1; i < finite.length; i++) {
    const d = Math.abs(finite[i] - finite[i - 1]) * scale;
    if (d > 0) step = Math.min(step, d);
  }
  if (!Number.isFinite(step)) step = max * scale || 1;
  // Decimals that tell neighbouring ticks apart (a step of 0.05 needs 2, 0.25 needs 2, 2 needs 0).
  let decimals = 0;
  while (
    decimals < 6 &&
    Math.abs(Math.round(step * 10 ** decimals) - step * 10 ** decimals) > 1e-6 * 10 ** decimals
  ) {
    decimals++;
  }
  return ticks.map((t) => {
    if (!Number.isFinite(t)) return '';
    const v = t * scale;
    if (Math.abs(v) >= 1000) return `${formatCount(v)}${unit}`;
    if (v === 0) return `0${unit}`;
    return `${v.toFixed(decimals).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')}${unit}`;
  });
}

/**
 * A fraction as a percentage: "0 %", "2.5 %", "100 %"; "–" when unknown (no jobs finished).
 * @param {number | null | undefined} fraction
 * @returns {string}
 */
export function formatPercent(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '–';
  const p = fraction * 100;
  if (p === 0) return '0 %';
  if (p < 0.1) return '<0.1 %';
  return `${p < 10 ? p.toFixed(1).replace(/\.0$/, '') : Math.round(p)} %`;
}

/**
 * A duration in seconds, in the largest sensible unit: "0 s", "850 ms", "42 s", "3 min",
 * "2 h 5 min", "3 d"; "–" when unknown.
 * @param {number | null | undefined} seconds
 * @returns {string}
 */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, seconds);
  if (s === 0) return '0 s';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s < 10 ? s.toFixed(1).replace(/\.0$/, '') : Math.round(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) {
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  return `${Math.floor(s / 86_400)} d`;
}

/**
 * A duration in milliseconds: "45 ms", "1.2 s", "3 min"; "–" when unknown.
 * @param {number | null | undefined} ms
 * @returns {string}
 */
export function formatMs(ms) {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '–';
  return ms < 1000 ? `${Math.round(ms)} ms` : formatDuration(ms / 1000);
}

/**
 * How long ago `then` was, relative to `now`: "just now", "12 s ago", "3 min ago", "2 h ago",
 * "5 d ago"; "in 3 s" for a time slightly ahead (clock skew); "never" when absent.
 * @param {string | number | Date | null | undefined} then
 * @param {number} [now] epoch ms; default Date.now()
 * @returns {string}
 */
export function formatRelative(then, now = Date.now()) {
  if (then === null || then === undefined || then === '') return 'never';
  const t = then instanceof Date
    ? then.getTime()
    : typeof then === 'number'
    ? then
    : Date.parse(then);
  if (!Number.isFinite(t)) return 'never';
  const diff = Math.round((now - t) / 1000);
  if (diff < -2) return `in ${formatDuration(-diff)}`;
  if (diff < 2) return 'just now';
  if (diff < 60) return `${diff} s ago`;
  if (diff < 3600) return `${Math.floor(diff / 60)} min ago`;
  if (diff < 86_400) return `${Math.floor(diff / 3600)} h ago`;
  return `${Math.floor(diff / 86_400)} d ago`;
}

/**
 * The identity of a queue across the health report, Realtime payloads and history:
 * `<project>/<source>/<queue>` (payloads carry no schema).
 * @param {string} project
 * @param {string} source
 * @param {string} queue
 * @returns {string}
 */
export function queueKey(project, source, queue) {
  return `${project}/${source}/${queue}`;
}

/**
 * Per-second rates of one snapshot's counts over the time since the previous snapshot.
 * Null when the interval is unknown or not positive.
 * @param {{enqueued?: number | null, completed?: number | null, failed?: number | null}} counts
 * @param {number | null | undefined} intervalS
 * @returns {{enqueue_rate: number | null, complete_rate: number | null, fail_rate: number | null, error_rate: number | null}}
 */
export function ratesOf(counts, intervalS) {
  const ok = intervalS !== null && intervalS !== undefined && Number.isFinite(intervalS) &&
    intervalS > 0;
  /** @param {number | null | undefined} c */
  const rate = (
    c,
  ) => (ok && c !== null && c !== undefined ? c / /** @type {number} */ (intervalS) : null);
  const done = (counts.completed ?? 0) + (counts.failed ?? 0);
  return {
    enqueue_rate: rate(counts.enqueued),
    complete_rate: rate(counts.completed),
    fail_rate: rate(counts.failed),
    error_rate: done > 0 ? (counts.failed ?? 0) / done : null,
  };
}

/**
 * Reduces a series to at most `max` points by taking the largest value of each bucket (so a
 * spike is never hidden), keeping the last point exact.
 * @param {number[]} values
 * @param {number} max
 * @returns {number[]}
 */
export function downsampleMax(values, max) {
  if (values.length <= max) return values.slice();
  const out = [];
  const size = values.length / max;
  for (let i = 0; i < max; i++) {
    const from = Math.floor(i * size);
    const to = Math.max(from + 1, Math.floor((i + 1) * size));
    let m = -Infinity;
    for (let j = from; j < to; j++) m = Math.max(m, values[j]);
    out.push(m);
  }
  out[out.length - 1] = values[values.length - 1];
  return out;
}

/**
 * The SVG path (`d`) of a sparkline of `values` in a `width`×`height` box, with the y axis from 0
 * to the largest value (a flat line at the bottom when every value is 0). Empty for no values.
 * @param {number[]} values
 * @param {number} width
 * @param {number} height
 * @returns {string}
 */
export function sparklinePath(values, width, height) {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return '';
  const max = Math.max(...v, 0);
  const pad = 1;
  const h = height - 2 * pad;
  const y = (/** @type {number} */ x) => (pad + h - (max > 0 ? (x / max) * h : 0)).toFixed(1);
  if (v.length === 1) return `M0 ${y(v[0])}H${width}`;
  const step = width / (v.length - 1);
  return v.map((x, i) => `${i ? 'L' : 'M'}${(i * step).toFixed(1)} ${y(x)}`).join('');
}

/**
 * Seconds until a JWT's `exp` claim (negative when expired); null when it has none or is not a
 * JWT. Does not verify anything: the function does that.
 * @param {string} token
 * @param {number} [now] epoch ms
 * @returns {number | null}
 */
export function jwtSecondsLeft(token, now = Date.now()) {
  const part = token.split('.')[1];
  if (!part) return null;
  try {
    const json = atob(
      part.replace(/-/g, '+').replace(/_/g, '/').padEnd(
        part.length + ((4 - (part.length % 4)) % 4),
        '=',
      ),
    );
    const exp = JSON.parse(json).exp;
    return typeof exp === 'number' ? exp - now / 1000 : null;
  } catch {
    return null;
  }
}

/**
 * Why queue-health refused (HTTP 401) an access token, in words for the person looking at the
 * element: not a JWT, expired (and how long ago, from its `exp`), or not valid here.
 * @param {string | null | undefined} token
 * @param {number} [now] epoch ms; default Date.now()
 * @returns {string}
 */
export function rejectedTokenReason(token, now = Date.now()) {
  const refused = 'queue-health refused the access token (HTTP 401)';
  if (!token || token.split('.').length !== 3) return `${refused}: it is not a JWT.`;
  const left = jwtSecondsLeft(token, now);
  if (left !== null && left <= 0) {
    return `${refused}: it expired ${formatRelative(now + left * 1000, now)}.`;
  }
  return `${refused}: it is not valid for this project (signed with another key, or revoked).`;
}

/**
 * The order of a queue's fields in a slim Realtime snapshot (payload version 2); the same list as
 * SLIM_QUEUE_FIELDS in supabase/functions/_shared/realtime_payload.ts.
 */
export const SLIM_QUEUE_FIELDS = Object.freeze([
  'source',
  'source_schema',
  'queue',
  'depth',
  'oldest_ready_age_s',
  'enqueued',
  'completed',
  'failed',
  'depth_estimated',
  'flow_status',
  'drain_eta_s',
  'poison',
]);

/**
 * The queues of a Realtime snapshot payload as objects: version 1 (full: every field of the row)
 * or 2 (slim: only SLIM_QUEUE_FIELDS, the others absent). Null for anything else.
 * @param {any} payload
 * @returns {Record<string, any>[] | null}
 */
export function snapshotQueues(payload) {
  if (!payload || !Array.isArray(payload.queues)) return null;
  if (payload.v === 1) return payload.queues;
  if (payload.v !== 2) return null;
  return payload.queues.filter((/** @type {unknown} */ q) => Array.isArray(q)).map(
    (/** @type {unknown[]} */ q) =>
      // The signals (the last three) are absent from a database that does not send them.
      Object.fromEntries(
        SLIM_QUEUE_FIELDS.slice(0, Math.max(q.length, 9)).map((f, i) => [f, q[i] ?? null]),
      ),
  );
}

/** In Realtime mode the report (status, alerts, channels, new queues) is re-read this often. */
export const REPORT_EVERY_MS = 60_000;

/**
 * How long to wait before the next read of the health report, or null for "not while the tab is
 * hidden". Realtime mode (and while joining it): every REPORT_EVERY_MS (snapshots keep the
 * numbers current in between); otherwise every `pollSeconds`. After failures the wait doubles, up to 15 s for fast polling
 * (never below the mode's own interval).
 * @param {{mode: string, hidden: boolean, pollSeconds: number, failures: number, sinceLastMs: number}} s
 * @returns {number | null}
 */
export function nextReportDelay(s) {
  if (s.hidden) return null;
  // Joining Realtime after a good first read: nothing to poll for meanwhile (a failed join falls
  // back to polling).
  const slow = s.mode === 'realtime' || (s.mode === 'connecting' && s.failures === 0);
  const base = slow ? REPORT_EVERY_MS : s.pollSeconds * 1000;
  const wait = s.failures
    ? Math.min(Math.max(base, 15_000), base * 2 ** Math.min(s.failures, 3))
    : base;
  return Math.max(0, wait - Math.max(0, s.sinceLastMs));
}

/**
 * A queue's flow status in words, as the dashboard shows it next to the status (docs/metrics.md
 * "flow_status" defines each). The keys are queue_health.flow_status's values.
 */
export const FLOW_WORDS = Object.freeze({
  idle: 'idle — nothing queued, no traffic',
  ok: 'ok — keeps up',
  falling_behind: 'falling behind — work completes, backlog grows',
  stalled: 'stalled — taken, none complete',
  stopped: 'stopped — backlog, nothing taken',
  redelivering: 'redelivering — taken work comes back',
});

/**
 * The words of a flow status ("stalled — taken, none complete"); "" when there is none yet
 * (null: the queue's history is shorter than the flow window) and the raw value when unknown.
 * @param {string | null | undefined} status
 * @returns {string}
 */
export function flowWords(status) {
  if (status === null || status === undefined || status === '') return '';
  return Object.hasOwn(FLOW_WORDS, status)
    ? FLOW_WORDS[/** @type {keyof typeof FLOW_WORDS} */ (status)]
    : String(status);
}

/**
 * A "seconds, 'never' or null" value of the health JSON (drain_eta_s, expected_wait_s) as a
 * number: Infinity for "never", null for unknown. Numeric strings from older payloads count too.
 * @param {unknown} v
 * @returns {number | null}
 */
export function secondsOrNever(v) {
  if (v === 'never' || v === 'Infinity' || v === Infinity) return Infinity;
  if (typeof v === 'number') return Number.isNaN(v) ? null : v;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * The "clears in" cell: how long until nothing is ready at the current rates (drain_eta_s):
 * "14 min", "never" (the backlog does not shrink), "now" (nothing is ready), "–" (not enough
 * data yet). Given the expected wait (expected_wait_s), a backlog that never clears while work
 * still completes — a queue falling behind — says how long a message sent now waits instead of
 * only "never": "never · waits 14 min", the finite number that rises while it falls behind.
 * @param {unknown} eta seconds, "never" or null
 * @param {unknown} [wait] seconds, "never" or null
 * @returns {string}
 */
export function formatEta(eta, wait = null) {
  const s = secondsOrNever(eta);
  if (s === null) return '–';
  if (s === Infinity) {
    const w = secondsOrNever(wait);
    return w !== null && Number.isFinite(w) && w > 0
      ? `never · waits ${formatDuration(w)}`
      : 'never';
  }
  if (s <= 0) return 'now';
  return formatDuration(s);
}

/**
 * A count of poison messages: "–" when not probed, "0", "3", "12.3k" (with "≈" when estimated).
 * @param {number | null | undefined} n
 * @param {boolean} [estimated]
 * @returns {string}
 */
export function formatPoison(n, estimated = false) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return `${estimated && n > 0 ? '≈' : ''}${formatCount(n)}`;
}

/**
 * The error budget left of a latency objective (1 untouched, 0 spent, below 0 overspent):
 * "100 % left" (untouched only), "72.5 % left", "99.9 % left" (rounded down: never more than is
 * left), "<0.1 % left", "spent", "overspent by 35 %"; "–" when unknown.
 * @param {number | null | undefined} fraction
 * @returns {string}
 */
export function formatBudget(fraction) {
  if (fraction === null || fraction === undefined || !Number.isFinite(fraction)) return '–';
  if (fraction >= 1) return '100 % left';
  if (fraction > 0) {
    const p = Math.floor(fraction * 1000) / 10;
    return p === 0 ? '<0.1 % left' : `${p} % left`;
  }
  if (fraction === 0) return 'spent';
  return `overspent by ${Math.round(-fraction * 1000) / 10} %`;
}

/**
 * A latency objective in words: "oldest ready ≤ 1 min for 99.9 % of the time over 30 days"
 * (the fraction is never rounded: 0.999 is not "100 %"); "" without one.
 * @param {{target_wait_s?: number, objective?: number, period_s?: number} | null | undefined} slo
 * @returns {string}
 */
export function formatObjective(slo) {
  if (!slo || typeof slo.objective !== 'number' || typeof slo.target_wait_s !== 'number') return '';
  const days = typeof slo.period_s === 'number' ? Math.round(slo.period_s / 86_400) : null;
  const period = days === null ? '' : days === 1 ? ' over a day' : ` over ${days} days`;
  return `oldest ready ≤ ${formatDuration(slo.target_wait_s)} for ${
    Number((slo.objective * 100).toFixed(4))
  } % of the time${period}`;
}

/**
 * A burn rate (1 = spends the budget exactly over the period): "0×", "0.35×", "2.4×", "14×";
 * "–" when unknown.
 * @param {number | null | undefined} rate
 * @returns {string}
 */
export function formatBurn(rate) {
  if (rate === null || rate === undefined || !Number.isFinite(rate)) return '–';
  if (rate === 0) return '0×';
  const digits = rate < 1 ? 2 : rate < 10 ? 1 : 0;
  return `${Number(rate.toFixed(digits))}×`;
}

/**
 * The burn rate of one history bucket: (slo_bad_s / slo_total_s) / (1 - objective); null when
 * the bucket has no seconds under the objective or the objective is not a fraction.
 * @param {unknown} badS
 * @param {unknown} totalS
 * @param {number} objective e.g. 0.99
 * @returns {number | null}
 */
export function bucketBurn(badS, totalS, objective) {
  const bad = typeof badS === 'number' ? badS : Number(badS);
  const total = typeof totalS === 'number' ? totalS : Number(totalS);
  if (badS === null || badS === undefined || totalS === null || totalS === undefined) return null;
  if (!Number.isFinite(bad) || !Number.isFinite(total) || total <= 0) return null;
  if (!(objective > 0 && objective < 1)) return null;
  return bad / total / (1 - objective);
}
