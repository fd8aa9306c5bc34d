/**
 * Turns the rows queue-health reads into the health report: overall status, per-queue status
 * with metric values and the firing rules behind it, firing alerts, monitor freshness and channel
 * health. Pure functions: no SQL, no HTTP.
 * @module
 */
import type { HealthRows, Row } from './queries.ts';

/** Overall and per-queue status, worst last. */
export type Status = 'ok' | 'warning' | 'critical' | 'stale';

/** A firing rule on a queue (why it is not ok). */
export interface Reason {
  /** The alert's id. */
  alert_id: string | null;
  /** The rule's name. */
  rule: string | null;
  /** Built-in condition or metric the rule watches. */
  condition: string | null;
  /** info, warning or critical. */
  severity: string | null;
  /** Value seen when it last evaluated. */
  value: number | null;
  /** The rule's threshold. */
  threshold: number | null;
  /** When it started firing. */
  since: string | null;
  /** One-line summary. */
  summary: string | null;
}

/** How work flows through a queue over the flow window (docs/metrics.md, "flow_status"). */
export type FlowStatus =
  | 'idle'
  | 'ok'
  | 'falling_behind'
  | 'stalled'
  | 'stopped'
  | 'redelivering';

/** Every flow status, in the order docs/metrics.md checks them (idle first). */
export const FLOW_STATUSES: readonly FlowStatus[] = [
  'idle',
  'ok',
  'falling_behind',
  'stalled',
  'stopped',
  'redelivering',
];

/** Seconds, `'never'` (SQL Infinity: the backlog does not shrink), or null (not enough data). */
export type Eta = number | 'never' | null;

/** The windows latency objective burn rates are reported over. */
export const BURN_WINDOWS = ['5m', '30m', '1h', '6h', '3d'] as const;

/** One of {@link BURN_WINDOWS}. */
export type BurnWindow = (typeof BURN_WINDOWS)[number];

/** A queue's latency objective and how fast it spends its error budget. */
export interface SloSignals {
  /** The oldest ready message may wait this many seconds ... */
  target_wait_s: number;
  /** ... this fraction of the time (0.99 = 99 %). */
  objective: number;
  /** The budget's period, seconds. */
  period_s: number | null;
  /** Burn rate per window: 1 spends the budget exactly over the period; null without data. */
  burn_rates: Record<BurnWindow, number | null>;
  /** Fraction of the period's budget left: 1 untouched, 0 spent, below 0 overspent. */
  budget_remaining: number | null;
}

/** What the latest snapshot means (docs/metrics.md, "Signals"). */
export interface QueueSignals {
  /** idle, ok, falling_behind, stalled, stopped or redelivering; null while history is short. */
  flow_status: FlowStatus | null;
  /** Seconds until nothing is ready at the current rates. */
  drain_eta_s: Eta;
  /** Seconds a message sent now waits for a worker. */
  expected_wait_s: Eta;
  /** Enqueue rate, messages/s, smoothed. */
  in_rate: number | null;
  /** Completion rate (completed + failed), messages/s, smoothed. */
  out_rate: number | null;
  /** Messages taken poison_read_count times or more; null when not probed. */
  poison: number | null;
  /** True when `poison` is a sample's estimate (above exact_count_limit), false when counted. */
  poison_estimated: boolean;
  /** Age of the oldest poison message, seconds. */
  oldest_poison_age_s: number | null;
  /** The latest capture that saw messages enqueued. */
  last_enqueue_at: string | null;
  /** The latest capture that saw consumers take work. */
  last_dequeue_at: string | null;
  /** The latency objective; null when the queue has none. */
  slo: SloSignals | null;
}

/** One queue in the report. */
export interface QueueHealth {
  /** Project the queue belongs to. */
  project_id: string;
  /** pgmq or pgboss. */
  source: string;
  /** Schema of the queue. */
  source_schema: string;
  /** Queue name. */
  queue: string;
  /** Status from queue_status. */
  status: Status;
  /** When its latest snapshot was captured. */
  captured_at: string | null;
  /** Age of that snapshot, seconds. */
  snapshot_age_s: number | null;
  /** Metric values of the latest snapshot (counts are since the previous snapshot). */
  metrics: Record<string, number | boolean | null>;
  /**
   * Running totals since the queue was first seen (what Prometheus reads as counters); null
   * where the database does not have them (before migration 20261207100400).
   */
  totals: QueueTotals;
  /** What the latest snapshot means: flow status, drain ETA, poison, objective. */
  signals: QueueSignals;
  /** Firing rules on this queue. */
  reasons: Reason[];
}

/** The counts a queue's running totals are kept for. */
export const TOTAL_KEYS = ['enqueued', 'completed', 'failed', 'retried', 'dead_lettered'] as const;

/** One of {@link TOTAL_KEYS}. */
export type TotalKey = (typeof TOTAL_KEYS)[number];

/** A queue's running totals by count: never lower than before while the queue is registered. */
export type QueueTotals = Record<TotalKey, number | null>;

/** The monitor's own health: is capture running, and is alert evaluation working? */
export interface MonitorHealth {
  /**
   * ok when captures succeed on schedule and alerting works; stale when captures do not;
   * failing when alert evaluation fails for a project the caller can see; unknown when not
   * readable.
   */
  status: 'ok' | 'stale' | 'failing' | 'unknown';
  /** When the last capture ran. */
  last_capture_at: string | null;
  /** ok, partial or error. */
  last_run_status: string | null;
  /** When the last successful capture ran. */
  last_success_at: string | null;
  /** Seconds since the last successful capture. */
  lag_s: number | null;
  /** Duration of the last capture, ms. */
  last_duration_ms: number | null;
  /** Failed captures in the last hour. */
  errors_last_hour: number | null;
  /** Alert evaluation: failing when it fails for a project the caller can see. */
  alerting: { status: 'ok' | 'failing' | 'unknown'; failing_projects: number | null };
}

/** The body of `GET /queue-health`. */
export interface HealthReport {
  /** Worst of the queues, alerts and monitor. */
  status: Status;
  /** False when a critical alert fires or the monitor is stale: the response is then HTTP 503. */
  healthy: boolean;
  /** When this report was made. */
  checked_at: string;
  /** Projects the caller can see (within the filters). */
  projects: Row[];
  /** Monitor freshness. */
  monitor: MonitorHealth;
  /** Counts for a glance. */
  summary: {
    queues: number;
    by_status: Record<Status, number>;
    alerts_firing: Record<string, number>;
  };
  /** Queues, ordered by project, source, schema, name. */
  queues: QueueHealth[];
  /** Firing alerts. */
  alerts: Row[];
  /** Alert channel health; null when alerting is not installed. */
  channels: Row[] | null;
}

const RANK: Record<Status, number> = { ok: 0, warning: 1, stale: 2, critical: 3 };
const METRIC_KEYS = [
  'ready',
  'in_flight',
  'delayed',
  'depth',
  'depth_estimated',
  'oldest_ready_age_s',
  'enqueued',
  'completed',
  'failed',
  'retried',
  'dead_lettered',
  'interval_s',
  'enqueue_rate',
  'complete_rate',
  'fail_rate',
  'error_rate',
  'wait_p50_ms',
  'wait_p95_ms',
  'run_p50_ms',
  'run_p95_ms',
];

/** The worse of two statuses (critical > stale > warning > ok). */
export function worse(a: Status, b: Status): Status {
  return RANK[b] > RANK[a] ? b : a;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : v == null ? null : String(v);
}

function num(v: unknown): number | null {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  return null;
}

/**
 * A drain ETA or expected wait as JSON: a finite number of seconds, `'never'` for Infinity (which
 * `to_jsonb()` writes as the string "Infinity"), null otherwise.
 */
export function eta(v: unknown): Eta {
  if (v === Infinity || v === 'Infinity' || v === 'never') return 'never';
  return num(v);
}

function flowStatus(v: unknown): FlowStatus | null {
  return FLOW_STATUSES.includes(v as FlowStatus) ? v as FlowStatus : null;
}

function iso(v: unknown): string | null {
  if (v == null) return null;
  const t = Date.parse(String(v));
  return Number.isNaN(t) ? str(v) : new Date(t).toISOString();
}

function pick(row: Row | null, ...keys: string[]): unknown {
  if (!row) return null;
  for (const key of keys) if (row[key] !== undefined && row[key] !== null) return row[key];
  return null;
}

/**
 * The signals of a queue_status row. `slo_burn_rates` is the object of burn rates by window the
 * health query adds for queues with an objective ({@link BURN_WINDOWS}).
 */
export function queueSignals(row: Row): QueueSignals {
  const objective = num(row.slo_objective);
  const target = num(row.slo_target_wait_s);
  const rates = (row.slo_burn_rates ?? {}) as Record<string, unknown>;
  const burn = Object.fromEntries(
    BURN_WINDOWS.map((w) => [w, num(w === '1h' ? rates[w] ?? row.slo_burn_rate_1h : rates[w])]),
  ) as Record<BurnWindow, number | null>;
  return {
    flow_status: flowStatus(row.flow_status),
    drain_eta_s: eta(row.drain_eta_s),
    expected_wait_s: eta(row.expected_wait_s),
    in_rate: num(row.in_rate),
    out_rate: num(row.out_rate),
    poison: num(row.poison),
    poison_estimated: row.poison_estimated === true,
    oldest_poison_age_s: num(row.oldest_poison_age_s),
    last_enqueue_at: iso(row.last_enqueue_at),
    last_dequeue_at: iso(row.last_dequeue_at),
    slo: objective === null || target === null ? null : {
      target_wait_s: target,
      objective,
      period_s: num(row.slo_period_s),
      burn_rates: burn,
      budget_remaining: num(row.slo_budget_remaining),
    },
  };
}

function asStatus(v: unknown): Status {
  return v === 'warning' || v === 'critical' || v === 'stale' ? v : 'ok';
}

/** The key a firing alert shares with its queue. */
function queueKey(r: Row): string {
  return JSON.stringify([
    str(r.project_id),
    str(r.source),
    str(r.source_schema),
    str(pick(r, 'queue_name', 'queue')),
  ]);
}

function reason(a: Row): Reason {
  return {
    alert_id: str(pick(a, 'alert_id', 'id')),
    rule: str(pick(a, 'rule_name', 'rule')),
    condition: str(a.condition),
    severity: str(a.severity),
    value: num(a.value),
    threshold: num(a.threshold),
    since: iso(pick(a, 'fired_at', 'started_at')),
    summary: str(a.summary),
  };
}

/**
 * Reads the monitor's health out of the whitelisted capture_status fields. Only named fields are
 * copied: error text and anything else in the row never reach the response.
 */
export function monitorHealth(row: Row | null): MonitorHealth {
  if (!row) {
    return {
      status: 'unknown',
      last_capture_at: null,
      last_run_status: null,
      last_success_at: null,
      lag_s: null,
      last_duration_ms: null,
      errors_last_hour: null,
      alerting: { status: 'unknown', failing_projects: null },
    };
  }
  const failing = num(row.alerting_failing_projects);
  const alerting: MonitorHealth['alerting'] = {
    status: failing === null ? 'unknown' : failing > 0 ? 'failing' : 'ok',
    failing_projects: failing,
  };
  const captures = row.healthy === true;
  return {
    status: !captures ? 'stale' : alerting.status === 'failing' ? 'failing' : 'ok',
    last_capture_at: iso(row.last_run_at),
    last_run_status: str(row.last_run_status),
    last_success_at: iso(row.last_success_at),
    lag_s: num(row.lag_s),
    last_duration_ms: num(pick(row, 'last_run_duration_ms', 'last_duration_ms')),
    errors_last_hour: num(row.errors_last_hour),
    alerting,
  };
}

/** Builds the report. `checkedAt` is the request time. */
export function buildReport(rows: HealthRows, checkedAt: Date): HealthReport {
  const reasonsByQueue = new Map<string, Reason[]>();
  const alertsFiring: Record<string, number> = { critical: 0, warning: 0, info: 0 };
  let status: Status = 'ok';
  let healthy = true;

  for (const alert of rows.alerts) {
    const severity = str(alert.severity) ?? 'warning';
    alertsFiring[severity] = (alertsFiring[severity] ?? 0) + 1;
    if (severity === 'critical') {
      healthy = false;
      status = worse(status, 'critical');
    } else if (severity === 'warning') {
      status = worse(status, 'warning');
    }
    if (pick(alert, 'queue_name', 'queue') !== null) {
      const key = queueKey(alert);
      reasonsByQueue.set(key, [...(reasonsByQueue.get(key) ?? []), reason(alert)]);
    }
  }

  const byStatus: Record<Status, number> = { ok: 0, warning: 0, critical: 0, stale: 0 };
  const queues = rows.queues.map((row): QueueHealth => {
    const queueStatus = asStatus(row.status);
    byStatus[queueStatus] += 1;
    status = worse(status, queueStatus);
    const metrics: Record<string, number | boolean | null> = {};
    for (const key of METRIC_KEYS) {
      const value = row[key];
      metrics[key] = typeof value === 'boolean' ? value : num(value);
    }
    return {
      project_id: str(row.project_id) ?? '',
      source: str(row.source) ?? '',
      source_schema: str(row.source_schema) ?? '',
      queue: str(row.queue_name) ?? '',
      status: queueStatus,
      captured_at: iso(row.captured_at),
      snapshot_age_s: num(row.snapshot_age_s),
      metrics,
      totals: Object.fromEntries(TOTAL_KEYS.map((k) => [k, num(row[`cum_${k}`])])) as QueueTotals,
      signals: queueSignals(row),
      reasons: reasonsByQueue.get(queueKey(row)) ?? [],
    };
  });

  const monitor = monitorHealth(rows.monitor);
  if (monitor.status === 'stale' || monitor.status === 'failing') {
    healthy = false;
    status = worse(status, 'stale');
  }

  return {
    status,
    healthy,
    checked_at: checkedAt.toISOString(),
    projects: rows.projects,
    monitor,
    summary: { queues: queues.length, by_status: byStatus, alerts_firing: alertsFiring },
    queues,
    alerts: rows.alerts,
    channels: rows.channels,
  };
}
