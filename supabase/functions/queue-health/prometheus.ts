/**
 * The Prometheus text exposition format (version 0.0.4) of a health report.
 *
 * Every per-queue series has the labels `project`, `source`, `schema` and `queue`. Queue Health
 * stores counts per capture interval, not running totals, so throughput is exposed as gauges
 * (`…_per_second` rates and `…_last_interval` counts) rather than counters; see docs/prometheus.md.
 * @module
 */
import { BURN_WINDOWS, type Eta, FLOW_STATUSES, type HealthReport, type Status } from './health.ts';

/** Content type of the 0.0.4 text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Formats a sample value (`NaN`, `+Inf`, `-Inf` for the non-finite). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

type Labels = Record<string, string>;

interface Family {
  help: string;
  type: 'gauge' | 'counter';
  samples: { labels: Labels; value: number }[];
}

/** Collects samples by metric family and renders them grouped, HELP and TYPE first. */
class Exposition {
  #families = new Map<string, Family>();

  declare(name: string, help: string, type: 'gauge' | 'counter' = 'gauge'): void {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    if (!this.#families.has(name)) this.#families.set(name, { help, type, samples: [] });
  }

  add(name: string, labels: Labels, value: number | boolean | null | undefined): void {
    if (value === null || value === undefined) return; // unknown: no sample rather than a fake 0
    const family = this.#families.get(name);
    if (!family) throw new Error(`undeclared metric ${name}`);
    family.samples.push({ labels, value: typeof value === 'boolean' ? Number(value) : value });
  }

  render(): string {
    const lines: string[] = [];
    for (const [name, family] of this.#families) {
      if (family.samples.length === 0) continue;
      lines.push(`# HELP ${name} ${escapeHelp(family.help)}`, `# TYPE ${name} ${family.type}`);
      for (const { labels, value } of family.samples) {
        const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
        lines.push(`${name}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
      }
    }
    return lines.join('\n') + '\n';
  }
}

const QUEUE_GAUGES: [name: string, key: string, help: string, scale?: number][] = [
  ['queue_health_depth', 'depth', 'Messages in the queue: ready + in flight + delayed.'],
  ['queue_health_ready', 'ready', 'Messages that can be taken now.'],
  ['queue_health_in_flight', 'in_flight', 'Messages being worked on.'],
  ['queue_health_delayed', 'delayed', 'Messages scheduled for later.'],
  [
    'queue_health_depth_estimated',
    'depth_estimated',
    '1 when depth was estimated rather than counted exactly.',
  ],
  [
    'queue_health_oldest_ready_age_seconds',
    'oldest_ready_age_s',
    'Age of the oldest ready message (the queue latency).',
  ],
  [
    'queue_health_enqueued_per_second',
    'enqueue_rate',
    'Messages enqueued per second over the last capture interval.',
  ],
  [
    'queue_health_completed_per_second',
    'complete_rate',
    'Messages completed per second over the last capture interval.',
  ],
  [
    'queue_health_failed_per_second',
    'fail_rate',
    'Messages failed per second over the last capture interval.',
  ],
  [
    'queue_health_enqueued_last_interval',
    'enqueued',
    'Messages enqueued during the last capture interval (a gauge: not a running total).',
  ],
  [
    'queue_health_completed_last_interval',
    'completed',
    'Messages completed during the last capture interval.',
  ],
  [
    'queue_health_failed_last_interval',
    'failed',
    'Messages failed during the last capture interval.',
  ],
  [
    'queue_health_retried_last_interval',
    'retried',
    'Retries (redeliveries) during the last capture interval.',
  ],
  [
    'queue_health_dead_lettered_last_interval',
    'dead_lettered',
    'Messages dead-lettered during the last capture interval.',
  ],
  [
    'queue_health_error_rate',
    'error_rate',
    'failed / (completed + failed) over the last capture interval (0..1).',
  ],
  [
    'queue_health_wait_p50_seconds',
    'wait_p50_ms',
    'Median wait from enqueue to start over the last interval.',
    1e-3,
  ],
  [
    'queue_health_wait_p95_seconds',
    'wait_p95_ms',
    '95th percentile wait from enqueue to start over the last interval.',
    1e-3,
  ],
  [
    'queue_health_run_p50_seconds',
    'run_p50_ms',
    'Median run time (start to completion) over the last interval.',
    1e-3,
  ],
  [
    'queue_health_run_p95_seconds',
    'run_p95_ms',
    '95th percentile run time over the last interval.',
    1e-3,
  ],
  [
    'queue_health_capture_interval_seconds',
    'interval_s',
    'Seconds between the last two snapshots of the queue.',
  ],
];

const STATUSES: Status[] = ['ok', 'warning', 'critical', 'stale'];

const SIGNAL_GAUGES: [name: string, help: string][] = [
  [
    'queue_health_drain_eta_seconds',
    'Seconds until nothing is ready at the smoothed rates: ready / (out - in); +Inf when the backlog does not shrink (absent without enough data).',
  ],
  [
    'queue_health_expected_wait_seconds',
    'Seconds a message sent now waits for a worker: ready / smoothed completion rate; +Inf when nothing completes.',
  ],
  [
    'queue_health_flow_status',
    'Flow status over the flow window as a state set (idle, ok, falling_behind, stalled, stopped, redelivering): 1 for the current, 0 for the others; absent while the history is shorter than the window.',
  ],
  [
    'queue_health_poison',
    'Messages taken poison_read_count times or more that are still in the queue.',
  ],
  [
    'queue_health_oldest_poison_age_seconds',
    'Age of the oldest poison message.',
  ],
  [
    'queue_health_slo_burn_rate',
    "How fast the latency objective's error budget is spent over the window: 1 spends it exactly over its period, 14.4 spends 2 % of 30 days' budget in an hour.",
  ],
  [
    'queue_health_slo_budget_remaining',
    "Fraction of the latency objective's error budget for its period that is left (1 untouched, 0 spent, below 0 overspent).",
  ],
];

/** A drain ETA or expected wait as a sample value: "never" is +Inf, null no sample. */
function etaValue(v: Eta): number | null {
  return v === 'never' ? Infinity : v;
}
const SEVERITIES = ['critical', 'warning', 'info'];

/** Renders a report as Prometheus text (0.0.4). */
export function renderPrometheus(report: HealthReport): string {
  const out = new Exposition();
  for (const [name, , help] of QUEUE_GAUGES) out.declare(name, help);
  out.declare(
    'queue_health_queue_status',
    'Queue status as a state set: 1 for the current status, 0 for the others.',
  );
  out.declare('queue_health_snapshot_age_seconds', "Age of the queue's latest snapshot.");
  for (const [name, help] of SIGNAL_GAUGES) out.declare(name, help);

  for (const q of report.queues) {
    const labels = {
      project: q.project_id,
      source: q.source,
      schema: q.source_schema,
      queue: q.queue,
    };
    for (const [name, key, , scale] of QUEUE_GAUGES) {
      const value = q.metrics[key];
      out.add(name, labels, typeof value === 'number' && scale ? value * scale : value);
    }
    for (const status of STATUSES) {
      out.add('queue_health_queue_status', { ...labels, status }, status === q.status ? 1 : 0);
    }
    out.add('queue_health_snapshot_age_seconds', labels, q.snapshot_age_s);
    const sig = q.signals;
    out.add('queue_health_drain_eta_seconds', labels, etaValue(sig.drain_eta_s));
    out.add('queue_health_expected_wait_seconds', labels, etaValue(sig.expected_wait_s));
    if (sig.flow_status !== null) {
      for (const status of FLOW_STATUSES) {
        out.add(
          'queue_health_flow_status',
          { ...labels, status },
          status === sig.flow_status ? 1 : 0,
        );
      }
    }
    out.add('queue_health_poison', labels, sig.poison);
    out.add('queue_health_oldest_poison_age_seconds', labels, sig.oldest_poison_age_s);
    if (sig.slo) {
      for (const window of BURN_WINDOWS) {
        out.add('queue_health_slo_burn_rate', { ...labels, window }, sig.slo.burn_rates[window]);
      }
      out.add('queue_health_slo_budget_remaining', labels, sig.slo.budget_remaining);
    }
  }

  out.declare(
    'queue_health_alerts_firing',
    'Alerts firing now, by project and severity.',
  );
  const firing = new Map<string, number>();
  for (const project of report.projects) {
    for (const severity of SEVERITIES) firing.set(JSON.stringify([project.id, severity]), 0);
  }
  for (const alert of report.alerts) {
    const key = JSON.stringify([String(alert.project_id), String(alert.severity ?? 'warning')]);
    firing.set(key, (firing.get(key) ?? 0) + 1);
  }
  for (const [key, count] of firing) {
    const [project, severity] = JSON.parse(key) as [string, string];
    out.add('queue_health_alerts_firing', { project, severity }, count);
  }

  const m = report.monitor;
  out.declare(
    'queue_health_monitor_up',
    '1 when captures run on schedule and alert evaluation works for the projects in view, 0 when the monitor is stale or alerting fails (absent when not readable).',
  );
  out.declare(
    'queue_health_last_capture_age_seconds',
    'Seconds since the last successful capture.',
  );
  out.declare('queue_health_capture_duration_seconds', 'Duration of the last capture.');
  out.declare('queue_health_capture_errors_last_hour', 'Failed captures in the last hour.');
  if (m.status !== 'unknown') {
    out.add('queue_health_monitor_up', {}, m.status === 'ok' ? 1 : 0);
    out.add('queue_health_last_capture_age_seconds', {}, m.lag_s);
    out.add(
      'queue_health_capture_duration_seconds',
      {},
      m.last_duration_ms === null ? null : m.last_duration_ms / 1000,
    );
    out.add('queue_health_capture_errors_last_hour', {}, m.errors_last_hour);
  }
  return out.render();
}
