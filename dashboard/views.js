// @ts-check
/// <reference lib="dom" />
/**
 * The views: the element's header (projects, mode), the overview, the queue table with sparklines,
 * the detail view with its charts, firing alerts and channel health. Each renders what the intake
 * state (intake.js) holds into the element's shadow root; rows are created once per queue and
 * only changed cells are rewritten.
 * @module
 */
import { DetailCharts } from './charts.js';
import { el, timeEl } from './dom.js';
import {
  downsampleMax,
  flowWords,
  formatBudget,
  formatBurn,
  formatCount,
  formatDuration,
  formatEta,
  formatJobs,
  formatMs,
  formatObjective,
  formatPercent,
  formatPoison,
  formatRate,
  formatRelative,
  secondsOrNever,
  sparklinePath,
  statusRank,
} from './format.js';

const SPARK_POINTS = 60;
const SVG_NS = 'http://www.w3.org/2000/svg';

/**
 * What the views read and write: the element (element.js) is one.
 * @typedef {object} ViewContext
 * @property {(id: string) => HTMLElement} $ an element of the shadow root by id
 * @property {ShadowRoot} root
 * @property {import('./intake.js').IntakeState} data
 * @property {string | null} selected the open queue's id
 * @property {string} range the detail charts' range: 1h, 24h or 7d
 * @property {Map<string, HTMLTableRowElement>} rows the table's rows by queue id
 * @property {import('./api.js').Api | null} api
 * @property {DetailCharts | null} charts
 * @property {number} detailLoadedAt
 * @property {number} detailSeq
 * @property {(id: string) => void} openQueue
 * @property {(alert: any) => void} openAlert
 */

/** @param {ViewContext} ctx */
export function renderProjects(ctx) {
  const sel = /** @type {HTMLSelectElement} */ (ctx.$('project-select'));
  const want = [
    ...(ctx.data.projects.length > 1 || !ctx.data.project ? [['', 'All projects']] : []),
    ...ctx.data.projects.map((
      p,
    ) => [p.id, p.name && p.name !== p.id ? `${p.name} (${p.id})` : p.id]),
  ];
  const now = [...sel.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(want) !== JSON.stringify(now)) {
    sel.textContent = '';
    for (const [v, label] of want) sel.append(new Option(label ?? '', v ?? ''));
  }
  sel.value = ctx.data.project ?? '';
  sel.parentElement && (sel.parentElement.hidden = ctx.data.projects.length === 0);
}

/** @param {ViewContext} ctx */
export function renderOverview(ctx) {
  const r = ctx.data.report;
  if (!r) return;
  const box = ctx.$('overall');
  const shown = [...ctx.data.queues.values()];
  const counts = { critical: 0, stale: 0, warning: 0, ok: 0 };
  for (const q of shown) counts[/** @type {keyof typeof counts} */ (q.status)] += 1;
  if (ctx.data.projects.length === 0) {
    box.dataset.status = 'unknown';
    ctx.$('overall-status').textContent = '–';
    ctx.$('overall-summary').textContent = 'no project visible to this account';
    return;
  }
  box.dataset.status = r.status;
  ctx.$('overall-status').textContent = r.healthy === false && r.status === 'ok'
    ? 'unhealthy'
    : r.status;
  const parts = Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
  const firing = (r.alerts ?? []).length;
  ctx.$('overall-summary').textContent = `${shown.length} queue${shown.length === 1 ? '' : 's'}${
    parts.length ? `: ${parts.join(' · ')}` : ''
  }${firing ? ` — ${firing} alert${firing === 1 ? '' : 's'} firing` : ''}${
    r.healthy === false ? ' — health check failing (HTTP 503)' : ''
  }`;

  const m = r.monitor ?? {};
  const cap = ctx.$('fact-capture');
  cap.dataset.ts = m.last_capture_at ?? '';
  cap.textContent = formatRelative(m.last_capture_at);
  ctx.$('fact-monitor').textContent = m.status === 'ok'
    ? `ok${m.lag_s !== null && m.lag_s !== undefined ? ` (lag ${formatDuration(m.lag_s)})` : ''}`
    : m.status === 'stale'
    ? `stale — no capture for ${formatDuration(m.lag_s)}`
    : 'unknown';
  ctx.$('fact-monitor').dataset.status = m.status === 'ok'
    ? 'ok'
    : m.status === 'stale'
    ? 'critical'
    : 'stale';
  const upd = ctx.$('fact-updated');
  upd.dataset.ts = new Date(ctx.data.updatedAt).toISOString();
  upd.textContent = formatRelative(ctx.data.updatedAt);
}

const COLUMNS = [
  'status',
  'queue',
  'depth',
  'age',
  'eta',
  'in',
  'out',
  'errors',
  'poison',
  'spark',
];
const LABELS = [
  'Status',
  'Queue',
  'Depth',
  'Oldest ready',
  'Clears in',
  'In',
  'Out',
  'Errors',
  'Poison',
  '30 min',
];
const NUMERIC = ['depth', 'age', 'eta', 'in', 'out', 'errors', 'poison'];

/**
 * @param {ViewContext} ctx
 * @param {import('./intake.js').QueueRow} q
 */
export function createRow(ctx, q) {
  const tr = /** @type {HTMLTableRowElement} */ (el('tr', { tabindex: '0', 'data-queue': q.id }));
  COLUMNS.forEach((c, i) => {
    const td = el('td', { 'data-field': c, 'data-label': LABELS[i] });
    if (NUMERIC.includes(c)) td.className = 'num';
    tr.append(td);
  });
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('viewBox', '0 0 120 28');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'spark');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(SVG_NS, 'path');
  svg.append(path);
  /** @type {HTMLElement} */ (tr.querySelector('[data-field="spark"]')).append(svg);
  const open = () => ctx.openQueue(q.id);
  tr.addEventListener('click', open);
  tr.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      open();
    }
  });
  return tr;
}

/**
 * Sets a cell's text (and raw value for tests and tooltips) only when it changed.
 * @param {HTMLTableRowElement} tr
 * @param {string} field
 * @param {string} text
 * @param {unknown} [value]
 * @param {string} [title]
 */
function setCell(tr, field, text, value, title) {
  const td = /** @type {HTMLElement} */ (tr.querySelector(`[data-field="${field}"]`));
  if (td.textContent !== text) td.textContent = text;
  if (value !== undefined) td.dataset.value = value === null ? '' : String(value);
  if (title !== undefined) td.title = title;
}

/** @param {ViewContext} ctx */
export function renderQueues(ctx) {
  const body = ctx.$('queue-rows');
  const list = [...ctx.data.queues.values()].sort((a, b) =>
    statusRank(a.status) - statusRank(b.status) || a.project_id.localeCompare(b.project_id) ||
    a.queue.localeCompare(b.queue) || a.source.localeCompare(b.source) ||
    a.source_schema.localeCompare(b.source_schema)
  );
  const showProject = !ctx.data.project && new Set(list.map((q) => q.project_id)).size > 1;
  for (const [id, tr] of ctx.rows) {
    if (!ctx.data.queues.has(id)) {
      tr.remove();
      ctx.rows.delete(id);
    }
  }
  list.forEach((q, i) => {
    let tr = ctx.rows.get(q.id);
    if (!tr) {
      tr = createRow(ctx, q);
      ctx.rows.set(q.id, tr);
    }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
    updateRow(ctx, tr, q, showProject);
  });
  ctx.$('queue-count').textContent = list.length ? `${list.length}` : '';
  const none = ctx.$('no-queues');
  none.hidden = list.length > 0 || !ctx.data.report;
  none.textContent = ctx.data.report && ctx.data.projects.length === 0
    ? 'This account sees no Queue Health project: ask an admin to add you to one (queue_health.project_member).'
    : 'No queues yet. Queue Health lists pgmq and pg-boss queues after the first capture.';
}

/**
 * @param {ViewContext} ctx
 * @param {HTMLTableRowElement} tr
 * @param {import('./intake.js').QueueRow} q
 * @param {boolean} showProject
 */
export function updateRow(ctx, tr, q, showProject) {
  const m = q.metrics;
  tr.dataset.status = q.status;
  tr.classList.toggle('selected', ctx.selected === q.id);
  const sg = q.signals;
  const flow = typeof sg.flow_status === 'string' ? sg.flow_status : '';
  tr.dataset.flow = flow;
  const statusTd = /** @type {HTMLElement} */ (tr.querySelector('[data-field="status"]'));
  if (statusTd.dataset.value !== q.status || statusTd.dataset.flow !== flow) {
    statusTd.textContent = '';
    statusTd.append(el('span', { class: 'badge', 'data-status': q.status }, [q.status]));
    if (flow) statusTd.append(el('span', { class: 'flow', 'data-flow': flow }, [flowWords(flow)]));
    statusTd.dataset.value = q.status;
    statusTd.dataset.flow = flow;
  }
  const queueTd = /** @type {HTMLElement} */ (tr.querySelector('[data-field="queue"]'));
  const sub = `${q.source}${
    q.source_schema && q.source_schema !== q.source ? ` · ${q.source_schema}` : ''
  }${showProject ? ` · ${q.project_id}` : ''}${
    q.reasons.length ? ` · ${q.reasons.length} firing` : ''
  }`;
  const sig = `${q.queue}|${sub}`;
  if (queueTd.dataset.value !== sig) {
    queueTd.textContent = '';
    queueTd.append(el('span', { class: 'qname' }, [q.queue]), el('span', { class: 'qsub' }, [sub]));
    queueTd.dataset.value = sig;
  }
  const est = m.depth_estimated ? '≈' : '';
  setCell(
    tr,
    'depth',
    m.depth === null || m.depth === undefined ? '–' : `${est}${formatJobs(m.depth)}`,
    m.depth,
    `ready ${formatCount(m.ready)} · in flight ${formatCount(m.in_flight)} · delayed ${
      formatCount(m.delayed)
    }${q.reportAt && q.reportAt !== q.captured_at ? ` (${formatRelative(q.reportAt)})` : ''}${
      m.depth_estimated ? ' (estimated)' : ''
    }`,
  );
  setCell(tr, 'age', formatDuration(m.oldest_ready_age_s), m.oldest_ready_age_s);
  const eta = secondsOrNever(sg.drain_eta_s);
  const wait = secondsOrNever(sg.expected_wait_s);
  setCell(
    tr,
    'eta',
    formatEta(sg.drain_eta_s, sg.expected_wait_s),
    eta === Infinity ? 'never' : eta,
    eta === null
      ? 'not enough data yet (the queue is watched for a minute first)'
      : `ready ${formatCount(m.ready)} at ${formatRate(sg.in_rate)} in, ${
        formatRate(sg.out_rate)
      } out (smoothed)${
        wait === null
          ? ''
          : ` · a message sent now waits ${wait === Infinity ? 'forever' : formatDuration(wait)}`
      }`,
  );
  setCell(
    tr,
    'in',
    formatRate(m.enqueue_rate),
    m.enqueue_rate,
    `${formatCount(m.enqueued)} enqueued since the previous snapshot`,
  );
  setCell(
    tr,
    'out',
    formatRate(m.complete_rate),
    m.complete_rate,
    `${formatCount(m.completed)} completed since the previous snapshot`,
  );
  setCell(
    tr,
    'errors',
    formatPercent(m.error_rate),
    m.error_rate,
    `${formatCount(m.failed)} failed, ${
      formatCount(m.dead_lettered)
    } dead-lettered since the previous snapshot`,
  );
  const poison = typeof sg.poison === 'number' ? sg.poison : null;
  setCell(
    tr,
    'poison',
    formatPoison(poison, sg.poison_estimated === true),
    poison,
    poison === null
      ? 'not probed'
      : `${
        formatCount(poison)
      } still queued after being taken poison_read_count (default 3) times or more${
        sg.oldest_poison_age_s !== null && sg.oldest_poison_age_s !== undefined
          ? `; the oldest for ${formatDuration(sg.oldest_poison_age_s)}`
          : ''
      }`,
  );
  /** @type {HTMLElement} */ (tr.querySelector('[data-field="poison"]')).classList.toggle(
    'bad',
    Boolean(poison),
  );
  tr.title = q.captured_at ? `captured ${formatRelative(q.captured_at)}` : 'no snapshot yet';
  updateSparkline(ctx, q.id);
}

/**
 * @param {ViewContext} ctx
 * @param {string} id
 */
export function updateSparkline(ctx, id) {
  const tr = ctx.rows.get(id);
  if (!tr) return;
  const pts = ctx.data.spark.get(id) ?? [];
  const d = sparklinePath(downsampleMax(pts.map((p) => p[1]), SPARK_POINTS), 120, 28);
  const path = /** @type {SVGPathElement} */ (tr.querySelector('.spark path'));
  if (path.getAttribute('d') !== d) path.setAttribute('d', d);
  const td = /** @type {HTMLElement} */ (tr.querySelector('[data-field="spark"]'));
  if (pts.length) {
    const max = Math.max(...pts.map((p) => p[1]));
    td.title = `depth over the last 30 min: max ${formatCount(max)}, now ${
      formatCount(pts[pts.length - 1][1])
    }`;
  }
}

// --- detail -----------------------------------------------------------------------------------

/** @param {ViewContext} ctx */
export function renderDetail(ctx) {
  const q = ctx.selected ? ctx.data.queues.get(ctx.selected) : null;
  if (!q) {
    ctx.$('detail').hidden = true;
    return;
  }
  ctx.$('detail').hidden = false;
  const badge = ctx.$('detail-status');
  badge.dataset.status = q.status;
  badge.textContent = q.status;
  ctx.$('detail-title').textContent = `${q.queue}  ·  ${q.source}${
    q.source_schema !== q.source ? `/${q.source_schema}` : ''
  }  ·  ${q.project_id}`;
  for (const b of ctx.root.querySelectorAll('.range-tabs button')) {
    b.setAttribute(
      'aria-selected',
      String(/** @type {HTMLElement} */ (b).dataset.range === ctx.range),
    );
  }

  const reasons = ctx.$('detail-reasons');
  reasons.textContent = '';
  for (const r of q.reasons) {
    reasons.append(el('li', { 'data-severity': r.severity ?? 'warning' }, [
      el('span', { class: 'badge', 'data-status': severityStatus(r.severity) }, [r.severity ?? '']),
      ` ${r.rule ?? r.condition ?? 'rule'}: ${r.summary ?? ''} `,
      r.since ? timeEl(r.since, 'since ') : null,
    ]));
  }

  const m = q.metrics;
  /** @type {[string, string][]} */
  const facts = [
    ['Depth', `${m.depth_estimated ? '≈' : ''}${formatJobs(m.depth)}`],
    ['Ready', formatJobs(m.ready)],
    ['In flight', formatJobs(m.in_flight)],
    ['Delayed', formatJobs(m.delayed)],
    ['Oldest ready', formatDuration(m.oldest_ready_age_s)],
    ['In', formatRate(m.enqueue_rate)],
    ['Out', formatRate(m.complete_rate)],
    ['Failed', formatRate(m.fail_rate)],
    ['Error rate', formatPercent(m.error_rate)],
    ['Retried', formatCount(m.retried)],
    ['Dead-lettered', formatCount(m.dead_lettered)],
    ['Wait p50 / p95', `${formatMs(m.wait_p50_ms)} / ${formatMs(m.wait_p95_ms)}`],
    ['Run p50 / p95', `${formatMs(m.run_p50_ms)} / ${formatMs(m.run_p95_ms)}`],
    ['Snapshot every', formatDuration(m.interval_s)],
  ];
  const sg = q.signals;
  if (Object.keys(sg).length) {
    const wait = secondsOrNever(sg.expected_wait_s);
    facts.unshift(
      ['Flow', flowWords(sg.flow_status) || 'not judged yet (history shorter than the window)'],
      ['Clears in', formatEta(sg.drain_eta_s, sg.expected_wait_s)],
      ['Expected wait', wait === Infinity ? 'never taken' : formatDuration(wait)],
      ['In / out (smoothed)', `${formatRate(sg.in_rate)} / ${formatRate(sg.out_rate)}`],
      ['Poison', formatPoison(sg.poison, sg.poison_estimated === true)],
      ['Oldest poison', formatDuration(sg.oldest_poison_age_s)],
    );
  }
  const dl = ctx.$('detail-metrics');
  dl.textContent = '';
  for (const [k, v] of facts) dl.append(el('div', {}, [el('dt', {}, [k]), el('dd', {}, [v])]));
  dl.append(el('div', {}, [el('dt', {}, ['Captured']), el('dd', {}, [timeEl(q.captured_at)])]));
  if ('last_enqueue_at' in sg || 'last_dequeue_at' in sg) {
    dl.append(
      el('div', {}, [el('dt', {}, ['Last enqueue']), el('dd', {}, [timeEl(sg.last_enqueue_at)])]),
      el('div', {}, [el('dt', {}, ['Last dequeue']), el('dd', {}, [timeEl(sg.last_dequeue_at)])]),
    );
  }
  renderObjective(ctx, q);

  // Charts: load once per range change, then refresh at most every 10 s (1 h) or 60 s.
  const every = ctx.range === '1h' ? 10_000 : 60_000;
  if (Date.now() - ctx.detailLoadedAt > every) loadDetailCharts(ctx, q);
}

/**
 * The latency objective of the open queue: its target, the error budget left and the burn rates
 * over the alerting windows (the burn chart is drawn with the other charts). Hidden without one.
 * @param {ViewContext} ctx
 * @param {import('./intake.js').QueueRow} q
 */
export function renderObjective(ctx, q) {
  const slo = q.signals.slo;
  const box = ctx.$('detail-slo');
  box.hidden = !slo;
  ctx.$('chart-burn-figure').hidden = !slo;
  if (!slo) return;
  const budget = typeof slo.budget_remaining === 'number' ? slo.budget_remaining : null;
  const b = ctx.$('detail-budget');
  b.textContent = formatBudget(budget);
  b.dataset.value = budget === null ? '' : String(budget);
  b.dataset.status = budget === null
    ? 'stale'
    : budget <= 0
    ? 'critical'
    : budget < 0.25
    ? 'warning'
    : 'ok';
  const words = formatObjective(slo);
  ctx.$('detail-objective').textContent = words.charAt(0).toUpperCase() + words.slice(1);
  const rates = slo.burn_rates ?? {};
  ctx.$('detail-burn').textContent = ['5m', '30m', '1h', '6h', '3d'].map((w) =>
    `${w} ${formatBurn(rates[w])}`
  ).join(' · ');
}

/**
 * @param {ViewContext} ctx
 * @param {import('./intake.js').QueueRow} q
 */
export async function loadDetailCharts(ctx, q) {
  if (!ctx.api) return;
  ctx.detailLoadedAt = Date.now();
  const seq = ++ctx.detailSeq;
  const note = ctx.$('detail-chart-note');
  try {
    await DetailCharts.load();
    const h = await ctx.api.history({
      queue: q.queue,
      source: q.source,
      project: q.project_id,
      range: ctx.range,
    });
    if (seq !== ctx.detailSeq || ctx.selected !== q.id) return;
    const series = h.series.find((/** @type {any} */ s) =>
      s.project_id === q.project_id && s.source === q.source && s.queue === q.queue
    );
    const points = series?.points ?? [];
    note.textContent = `${points.length} points, ${
      { raw: 'one per capture', '1m': 'one per minute', '1h': 'one per hour' }[
        /** @type {'raw' | '1m' | '1h'} */ (h.resolution)
      ] ?? h.resolution
    }, ${ctx.range === '1h' ? 'last hour' : ctx.range === '24h' ? 'last 24 hours' : 'last 7 days'}`;
    if (!ctx.charts) {
      ctx.charts = new DetailCharts({
        depth: ctx.$('chart-depth'),
        age: ctx.$('chart-age'),
        rate: ctx.$('chart-rate'),
        burn: ctx.$('chart-burn'),
      });
    }
    const objective = typeof q.signals.slo?.objective === 'number' ? q.signals.slo.objective : null;
    ctx.charts.set(points, h.resolution, { from: h.from, to: h.to }, objective);
  } catch (e) {
    if (seq === ctx.detailSeq) {
      note.textContent = `Charts unavailable: ${e instanceof Error ? e.message : e}`;
    }
  }
}

/**
 * An alert's value or threshold: counts compact, fractions with 3 significant digits.
 * @param {number} v
 */
function formatValue(v) {
  return Number.isInteger(v) ? formatCount(v) : String(Number(v.toPrecision(3)));
}

/** @param {string | null | undefined} severity */
function severityStatus(severity) {
  return severity === 'critical' ? 'critical' : severity === 'info' ? 'ok' : 'warning';
}

// --- alerts and channels ----------------------------------------------------------------------

/** @param {ViewContext} ctx */
export function renderAlerts(ctx) {
  const list = ctx.$('alerts');
  const alerts = (ctx.data.report?.alerts ?? []).filter((/** @type {any} */ a) =>
    !ctx.data.project || a.project_id === ctx.data.project
  );
  list.textContent = '';
  ctx.$('alert-count').textContent = alerts.length ? String(alerts.length) : '';
  if (alerts.length === 0) {
    list.append(el('li', { class: 'muted empty' }, ['Nothing firing.']));
    return;
  }
  for (const a of alerts) {
    const queue = a.queue_name ?? a.queue;
    const value = typeof a.value === 'number' ? a.value : null;
    const threshold = typeof a.threshold === 'number' ? a.threshold : null;
    const li = el('li', {
      'data-severity': a.severity ?? 'warning',
      'data-alert': String(a.alert_id ?? ''),
      class: 'clickable',
      tabindex: '0',
      role: 'button',
      title: queue ? `Open ${queue}` : 'Alert details',
    }, [
      el('span', { class: 'badge', 'data-status': severityStatus(a.severity) }, [
        a.severity ?? 'alert',
      ]),
      el('div', { class: 'alert-body' }, [
        el('strong', {}, [a.rule_name ?? a.rule ?? a.condition ?? 'alert']),
        queue ? el('span', { class: 'qsub' }, [` ${a.source ?? ''} ${queue}`]) : null,
        a.summary ? el('div', {}, [a.summary]) : null,
        el('div', { class: 'qsub' }, [
          value !== null ? `value ${formatValue(value)}` : '',
          threshold !== null
            ? ` (${typeof a.comparator === 'string' ? `${a.comparator} ` : 'threshold '}${
              formatValue(threshold)
            }) · `
            : value !== null
            ? ' · '
            : '',
          timeEl(a.fired_at ?? a.started_at, 'firing since '),
        ]),
      ]),
    ]);
    li.addEventListener('click', () => ctx.openAlert(a));
    li.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        ctx.openAlert(a);
      }
    });
    list.append(li);
  }
}

/**
 * The top bar's mode: how the element gets its updates.
 * @param {ViewContext} ctx
 * @param {import('./live.js').Mode} mode
 * @param {string} detail
 * @param {number} pollSeconds
 */
export function renderMode(ctx, mode, detail, pollSeconds) {
  const m = ctx.$('mode');
  m.dataset.mode = mode;
  m.title = detail;
  ctx.$('mode-text').textContent = {
    connecting: 'connecting…',
    realtime: 'Live · Realtime',
    polling: `Polling · every ${pollSeconds} s`,
    offline: 'Offline · retrying',
  }[mode];
}

/**
 * Everything that depends on the report.
 * @param {ViewContext} ctx
 */
export function renderAll(ctx) {
  renderProjects(ctx);
  renderOverview(ctx);
  renderQueues(ctx);
  renderDetail(ctx);
  renderAlerts(ctx);
  renderChannels(ctx);
}

/** @param {ViewContext} ctx */
export function renderChannels(ctx) {
  const list = ctx.$('channels');
  const channels = ctx.data.report?.channels;
  list.textContent = '';
  if (channels === null || channels === undefined) {
    list.append(el('li', { class: 'muted empty' }, ['Alerting is not installed.']));
    return;
  }
  const shown = channels.filter((/** @type {any} */ c) =>
    !ctx.data.project || c.project_id === ctx.data.project
  );
  if (shown.length === 0) {
    list.append(el('li', { class: 'muted empty' }, ['No channels configured.']));
    return;
  }
  for (const c of shown) {
    const lastOk = c.last_success_at ? Date.parse(c.last_success_at) : 0;
    const lastErr = c.last_error_at ? Date.parse(c.last_error_at) : 0;
    const failing = Number(c.dead) > 0 || lastErr > lastOk;
    const status = c.enabled === false ? 'stale' : failing ? 'critical' : 'ok';
    const label = c.enabled === false ? 'disabled' : failing ? 'failing' : 'ok';
    list.append(el('li', { 'data-status': status }, [
      el('span', { class: 'badge', 'data-status': status }, [label]),
      el('div', { class: 'alert-body' }, [
        el('strong', {}, [c.name ?? c.channel_id]),
        el('span', { class: 'qsub' }, [` ${c.kind ?? ''}`]),
        el('div', { class: 'qsub' }, [
          c.last_success_at ? timeEl(c.last_success_at, 'last sent ') : 'nothing sent yet',
          Number(c.pending) ? ` · ${c.pending} pending` : '',
          Number(c.dead) ? ` · ${c.dead} undeliverable` : '',
        ]),
        c.last_error_at && lastErr > lastOk
          ? el('div', { class: 'error small' }, [
            timeEl(c.last_error_at, 'error '),
            `: ${c.last_error ?? ''}`,
          ])
          : null,
      ]),
    ]));
  }
}
