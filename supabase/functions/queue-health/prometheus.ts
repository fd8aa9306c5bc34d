/**
 * A health report as a Prometheus exposition, in either of the two text formats Prometheus
 * scrapes: the classic text format 0.0.4, and OpenMetrics 1.0.0 (what Prometheus asks for first).
 * Both carry the same series under the same names; only the framing differs (OpenMetrics names a
 * counter's family without `_total`, adds `# UNIT` lines, escapes `"` in HELP and ends with
 * `# EOF`).
 *
 * Every per-queue series has the labels `project`, `source`, `schema` and `queue`. Throughput is
 * exported as counters (`queue_health_completed_total`, …) made of the running totals the metric
 * rows keep; docs/prometheus.md lists every metric and why each is a counter or a gauge.
 *
 * Format facts from the OpenMetrics 1.0 specification (prometheus/docs,
 * docs/specs/om/open_metrics_spec.md) and the exposition format page of prometheus.io.
 * @module
 */
import {
  BURN_WINDOWS,
  type Eta,
  FLOW_STATUSES,
  type HealthReport,
  type Status,
  TOTAL_KEYS,
} from './health.ts';

/** Content type of the classic text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Content type of OpenMetrics 1.0.0. */
export const OPENMETRICS_CONTENT_TYPE =
  'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** `text`: the classic format 0.0.4; `openmetrics`: OpenMetrics 1.0.0. */
export type ExpositionFormat = 'text' | 'openmetrics';

/** The content type of a format. */
export function contentTypeOf(format: ExpositionFormat): string {
  return format === 'openmetrics' ? OPENMETRICS_CONTENT_TYPE : PROMETHEUS_CONTENT_TYPE;
}

/** Escapes a label value: backslash, double quote and line feed (both formats). */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * Escapes HELP text: backslash and line feed; in OpenMetrics, where HELP is an escaped string like
 * a label value, the double quote as well.
 */
export function escapeHelp(text: string, format: ExpositionFormat = 'text'): string {
  const escaped = text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  return format === 'openmetrics' ? escaped.replace(/"/g, '\\"') : escaped;
}

/** Formats a sample value (`NaN`, `+Inf`, `-Inf` for the non-finite). */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

type Labels = Record<string, string>;

/** What a metric family is declared with. */
export interface FamilyInfo {
  /**
   * The family's name. For a counter this is the name without `_total`: samples are written as
   * `<name>_total` in both formats, and the classic format's HELP and TYPE name that too.
   */
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  /** The unit (OpenMetrics `# UNIT`); the name must end in `_<unit>`. */
  unit?: string;
  /** Still served, but going away: the HELP text says what replaces it. */
  deprecated?: string;
}

interface Family extends FamilyInfo {
  samples: { labels: Labels; value: number }[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** The name samples of a family carry. */
export function sampleName(family: Pick<FamilyInfo, 'name' | 'type'>): string {
  return family.type === 'counter' ? `${family.name}_total` : family.name;
}

/** Collects samples by metric family and renders them grouped, metadata first. */
class Exposition {
  #families = new Map<string, Family>();

  declare(info: FamilyInfo): void {
    if (!NAME.test(info.name)) throw new Error(`bad metric name ${info.name}`);
    if (info.type === 'counter' && info.name.endsWith('_total')) {
      throw new Error(`counter family ${info.name} must be named without _total`);
    }
    if (info.unit && !info.name.endsWith(`_${info.unit}`)) {
      throw new Error(`metric ${info.name} must end in _${info.unit}, its unit`);
    }
    if (!this.#families.has(info.name)) this.#families.set(info.name, { ...info, samples: [] });
  }

  add(name: string, labels: Labels, value: number | boolean | null | undefined): void {
    if (value === null || value === undefined) return; // unknown: no sample rather than a fake 0
    const family = this.#families.get(name);
    if (!family) throw new Error(`undeclared metric ${name}`);
    family.samples.push({ labels, value: typeof value === 'boolean' ? Number(value) : value });
  }

  render(format: ExpositionFormat): string {
    const lines: string[] = [];
    for (const family of this.#families.values()) {
      if (family.samples.length === 0) continue;
      const sample = sampleName(family);
      const help = family.deprecated
        ? `Deprecated: ${family.deprecated}. ${family.help}`
        : family.help;
      if (format === 'openmetrics') {
        lines.push(`# TYPE ${family.name} ${family.type}`);
        if (family.unit) lines.push(`# UNIT ${family.name} ${family.unit}`);
        lines.push(`# HELP ${family.name} ${escapeHelp(help, format)}`);
      } else {
        lines.push(
          `# HELP ${sample} ${escapeHelp(help, format)}`,
          `# TYPE ${sample} ${family.type}`,
        );
      }
      for (const { labels, value } of family.samples) {
        const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`);
        lines.push(`${sample}${pairs.length ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
      }
    }
    if (format === 'openmetrics') lines.push('# EOF');
    return lines.join('\n') + '\n';
  }
}

const gauge = (name: string, help: string, unit?: string): FamilyInfo => ({
  name,
  help,
  type: 'gauge',
  ...(unit ? { unit } : {}),
});

/** Gauges of a queue's latest snapshot: [family, key in QueueHealth.metrics, scale]. */
const QUEUE_GAUGES: [FamilyInfo, string, number?][] = [
  [gauge('queue_health_depth', 'Messages in the queue: ready + in flight + delayed.'), 'depth'],
  [gauge('queue_health_ready', 'Messages that can be taken now.'), 'ready'],
  [gauge('queue_health_in_flight', 'Messages being worked on.'), 'in_flight'],
  [gauge('queue_health_delayed', 'Messages scheduled for later.'), 'delayed'],
  [
    gauge(
      'queue_health_depth_estimated',
      '1 when depth was estimated rather than counted exactly.',
    ),
    'depth_estimated',
  ],
  [
    gauge(
      'queue_health_oldest_ready_age_seconds',
      'Age of the oldest ready message (the queue latency).',
      'seconds',
    ),
    'oldest_ready_age_s',
  ],
  [
    gauge(
      'queue_health_error_rate',
      'failed / (completed + failed) over the last capture interval (0..1): what the queue status is judged on.',
    ),
    'error_rate',
  ],
  [
    gauge(
      'queue_health_wait_p50_seconds',
      'Median wait from enqueue to start over the last interval.',
      'seconds',
    ),
    'wait_p50_ms',
    1e-3,
  ],
  [
    gauge(
      'queue_health_wait_p95_seconds',
      '95th percentile wait from enqueue to start over the last interval.',
      'seconds',
    ),
    'wait_p95_ms',
    1e-3,
  ],
  [
    gauge(
      'queue_health_run_p50_seconds',
      'Median run time (start to completion) over the last interval.',
      'seconds',
    ),
    'run_p50_ms',
    1e-3,
  ],
  [
    gauge(
      'queue_health_run_p95_seconds',
      '95th percentile run time over the last interval.',
      'seconds',
    ),
    'run_p95_ms',
    1e-3,
  ],
  [
    gauge(
      'queue_health_capture_interval_seconds',
      'Seconds between the last two snapshots of the queue.',
      'seconds',
    ),
    'interval_s',
  ],
];

/** What each running total counts. */
const TOTAL_HELP: Record<(typeof TOTAL_KEYS)[number], string> = {
  enqueued: 'Messages enqueued since Queue Health first saw the queue.',
  completed: 'Messages completed since Queue Health first saw the queue.',
  failed: 'Messages failed since Queue Health first saw the queue.',
  retried: 'Retries (redeliveries) since Queue Health first saw the queue.',
  dead_lettered: 'Messages dead-lettered since Queue Health first saw the queue.',
};

/**
 * The per-interval throughput gauges of 0.1.0, still served for one release. They do not earn
 * their place next to the counters: `rate()` and `increase()` over the counters give the same
 * numbers over any window, without double counting when scrapes and captures interleave.
 */
const DEPRECATED_GAUGES: [FamilyInfo, string][] = [
  ...(['enqueued', 'completed', 'failed'] as const).map((k): [FamilyInfo, string] => [
    {
      ...gauge(
        `queue_health_${k}_per_second`,
        `Messages ${k} per second over the last capture interval.`,
      ),
      deprecated: `use rate(queue_health_${k}_total[5m])`,
    },
    k === 'enqueued' ? 'enqueue_rate' : k === 'completed' ? 'complete_rate' : 'fail_rate',
  ]),
  ...TOTAL_KEYS.map((k): [FamilyInfo, string] => [
    {
      ...gauge(
        `queue_health_${k}_last_interval`,
        `Count (${k.replace('_', '-')}) during the last capture interval, a gauge.`,
      ),
      deprecated: `use increase(queue_health_${k}_total[5m])`,
    },
    k,
  ]),
];

const STATUSES: Status[] = ['ok', 'warning', 'critical', 'stale'];

const SIGNAL_GAUGES: FamilyInfo[] = [
  gauge(
    'queue_health_drain_eta_seconds',
    'Seconds until nothing is ready at the smoothed rates: ready / (out - in); +Inf when the backlog does not shrink (absent without enough data).',
    'seconds',
  ),
  gauge(
    'queue_health_expected_wait_seconds',
    'Seconds a message sent now waits for a worker: ready / smoothed completion rate; +Inf when nothing completes.',
    'seconds',
  ),
  gauge(
    'queue_health_flow_status',
    'Flow status over the flow window as a state set (idle, ok, falling_behind, stalled, stopped, redelivering): 1 for the current, 0 for the others; absent while the history is shorter than the window.',
  ),
  gauge(
    'queue_health_poison',
    'Messages taken poison_read_count times or more that are still in the queue.',
  ),
  gauge('queue_health_oldest_poison_age_seconds', 'Age of the oldest poison message.', 'seconds'),
  gauge(
    'queue_health_last_enqueue_timestamp_seconds',
    'Unix time of the latest snapshot at which messages had been enqueued since the one before.',
    'seconds',
  ),
  gauge(
    'queue_health_last_dequeue_timestamp_seconds',
    'Unix time of the latest snapshot at which consumers had taken work since the one before.',
    'seconds',
  ),
  gauge(
    'queue_health_slo_burn_rate',
    "How fast the latency objective's error budget is spent over the window: 1 spends it exactly over its period, 14.4 spends 2 % of 30 days' budget in an hour.",
  ),
  gauge(
    'queue_health_slo_budget_remaining',
    "Fraction of the latency objective's error budget for its period that is left (1 untouched, 0 spent, below 0 overspent).",
  ),
];

const MONITOR_GAUGES: FamilyInfo[] = [
  gauge(
    'queue_health_monitor_up',
    '1 when captures run on schedule and alert evaluation works for the projects in view, 0 when the monitor is stale or alerting fails (absent when not readable).',
  ),
  gauge(
    'queue_health_last_capture_age_seconds',
    'Seconds since the last successful capture.',
    'seconds',
  ),
  gauge('queue_health_capture_duration_seconds', 'Duration of the last capture.', 'seconds'),
  gauge('queue_health_capture_errors_last_hour', 'Failed captures in the last hour.'),
];

/** Every family the exposition can carry, in the order it writes them. */
export const FAMILIES: readonly FamilyInfo[] = [
  ...QUEUE_GAUGES.map(([f]) => f),
  ...TOTAL_KEYS.map((k): FamilyInfo => ({
    name: `queue_health_${k}`,
    help: TOTAL_HELP[k],
    type: 'counter',
  })),
  gauge(
    'queue_health_queue_status',
    'Queue status as a state set (ok, warning, critical, stale): 1 for the current status, 0 for the others.',
  ),
  gauge('queue_health_snapshot_age_seconds', "Age of the queue's latest snapshot.", 'seconds'),
  ...SIGNAL_GAUGES,
  ...DEPRECATED_GAUGES.map(([f]) => f),
  gauge('queue_health_alerts_firing', 'Alerts firing now, by project and severity.'),
  ...MONITOR_GAUGES,
];

/** A drain ETA or expected wait as a sample value: "never" is +Inf, null no sample. */
function etaValue(v: Eta): number | null {
  return v === 'never' ? Infinity : v;
}

/** Unix seconds of an ISO time, null when there is none. */
function unixSeconds(iso: string | null): number | null {
  if (iso === null) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t / 1000;
}

const SEVERITIES = ['critical', 'warning', 'info'];

/** Renders a report as the classic text format 0.0.4 (default) or OpenMetrics 1.0.0. */
export function renderPrometheus(report: HealthReport, format: ExpositionFormat = 'text'): string {
  const out = new Exposition();
  for (const family of FAMILIES) out.declare(family);

  for (const q of report.queues) {
    const labels = {
      project: q.project_id,
      source: q.source,
      schema: q.source_schema,
      queue: q.queue,
    };
    for (const [{ name }, key, scale] of QUEUE_GAUGES) {
      const value = q.metrics[key];
      out.add(name, labels, typeof value === 'number' && scale ? value * scale : value);
    }
    for (const key of TOTAL_KEYS) out.add(`queue_health_${key}`, labels, q.totals[key]);
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
    out.add(
      'queue_health_last_enqueue_timestamp_seconds',
      labels,
      unixSeconds(sig.last_enqueue_at),
    );
    out.add(
      'queue_health_last_dequeue_timestamp_seconds',
      labels,
      unixSeconds(sig.last_dequeue_at),
    );
    if (sig.slo) {
      for (const window of BURN_WINDOWS) {
        out.add('queue_health_slo_burn_rate', { ...labels, window }, sig.slo.burn_rates[window]);
      }
      out.add('queue_health_slo_budget_remaining', labels, sig.slo.budget_remaining);
    }
    for (const [{ name }, key] of DEPRECATED_GAUGES) out.add(name, labels, q.metrics[key]);
  }

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
  return out.render(format);
}
