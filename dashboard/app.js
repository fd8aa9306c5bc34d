// @ts-check
/// <reference lib="dom" />
/**
 * The Queue Health dashboard: sign-in, the queue table with sparklines, the detail view with
 * charts, firing alerts and channel health, kept live by live.js. Plain ES modules, no build
 * step of its own; vendored supabase-js and uPlot are loaded only when needed.
 * @module
 */
import { ApiError, createApi, loadScript } from './api.js';
import { DetailCharts } from './charts.js';
import { loadConfig } from './config.js';
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
  jwtSecondsLeft,
  queueKey,
  ratesOf,
  secondsOrNever,
  snapshotQueues,
  sparklinePath,
  statusRank,
} from './format.js';
import { startLive } from './live.js';

const TOKEN_KEY = 'queue-health.token';
const SPARK_WINDOW_MS = 30 * 60_000;
const SPARK_POINTS = 60;
const SVG_NS = 'http://www.w3.org/2000/svg';

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Creates an element with text and attributes (never innerHTML: queue names are data).
 * @param {string} tag
 * @param {Record<string, string>} [attrs]
 * @param {(Node | string | null)[]} [children]
 */
function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) if (c !== null) e.append(c);
  return e;
}

/**
 * An element whose text is a relative time, kept current by the ticker.
 * @param {string | null | undefined} iso
 * @param {string} [prefix]
 */
function timeEl(iso, prefix = '') {
  const e = el('time', { 'data-ts': iso ?? '', 'data-prefix': prefix });
  if (iso) e.setAttribute('datetime', iso), e.title = new Date(iso).toLocaleString();
  e.textContent = prefix + formatRelative(iso);
  return e;
}

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

const state = {
  /** @type {import('./config.js').DashboardConfig | null} */
  config: null,
  /** @type {string | null} */
  token: null,
  /** 'supabase' when signed in with supabase-js, 'token' for a pasted token. */
  authKind: /** @type {'supabase' | 'token' | null} */ (null),
  /** @type {Promise<any> | null} */
  supabase: null,
  /** @type {import('./api.js').Api | null} */
  api: null,
  /** @type {ReturnType<typeof startLive> | null} */
  live: null,
  /** @type {{id: string, name: string}[]} */
  projects: [],
  /** @type {string | null} */
  project: null,
  projectChosen: false,
  /** @type {any} */
  report: null,
  /** @type {Map<string, QueueRow>} */
  queues: new Map(),
  /** @type {Map<string, [number, number][]>} depth points per queue id, newest last */
  spark: new Map(),
  /** @type {Set<string>} */
  sparkLoaded: new Set(),
  /** @type {Map<string, HTMLTableRowElement>} */
  rows: new Map(),
  /** @type {string | null} */
  selected: null,
  range: '1h',
  /** @type {DetailCharts | null} */
  charts: null,
  detailLoadedAt: 0,
  detailSeq: 0,
  /** epoch ms of the last data the page received */
  updatedAt: 0,
};

// ---------------------------------------------------------------------------------------------
// Start-up and sign-in

async function main() {
  try {
    state.config = await loadConfig(location);
  } catch (e) {
    $('config-error-text').textContent = e instanceof Error ? e.message : String(e);
    $('config-error').hidden = false;
    return;
  }
  const cfg = state.config;
  $('about').textContent = `Functions: ${cfg.functionsUrl} · settings from ${
    cfg.sources.join(', ') || 'defaults'
  }`;
  readHash();
  setInterval(tick, 1000);

  const authAvailable = await supabaseAuthAvailable();
  if (authAvailable) {
    const sb = await getSupabase();
    const { data } = await sb.auth.getSession();
    sb.auth.onAuthStateChange((/** @type {string} */ _event, /** @type {any} */ session) => {
      if (state.authKind !== 'supabase') return;
      if (session?.access_token) {
        state.token = session.access_token;
        sb.realtime.setAuth(session.access_token);
      } else {
        signedOut('Signed out.');
      }
    });
    if (data?.session?.access_token) {
      state.authKind = 'supabase';
      state.token = data.session.access_token;
      return startDashboard(data.session.user?.email ?? '');
    }
  }
  const saved = localStorage.getItem(TOKEN_KEY);
  if (saved && (jwtSecondsLeft(saved) ?? 1) > 0) {
    state.authKind = 'token';
    state.token = saved;
    return startDashboard('');
  }
  if (saved) localStorage.removeItem(TOKEN_KEY);
  showSignIn(authAvailable, saved ? 'The saved access token has expired: paste a new one.' : '');
}

/** True when Supabase Auth (GoTrue) answers for this project, or the config says so. */
async function supabaseAuthAvailable() {
  const cfg = /** @type {import('./config.js').DashboardConfig} */ (state.config);
  if (cfg.auth !== null) return cfg.auth && Boolean(cfg.anonKey);
  if (!cfg.anonKey) return false;
  try {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), 3000);
    const res = await fetch(`${cfg.supabaseUrl}/auth/v1/health`, {
      headers: { apikey: cfg.anonKey },
      signal: ctl.signal,
    });
    clearTimeout(timer);
    return res.ok;
  } catch {
    return false;
  }
}

/** The supabase-js client, loaded from vendor/ on first use. */
function getSupabase() {
  if (!state.supabase) {
    const cfg = /** @type {import('./config.js').DashboardConfig} */ (state.config);
    state.supabase = loadScript('vendor/supabase.js').then(() => {
      // The global from vendor/supabase.js.
      const lib = /** @type {any} */ (globalThis).supabase;
      return lib.createClient(cfg.supabaseUrl, cfg.anonKey || 'no-anon-key', {
        auth: { persistSession: true, autoRefreshToken: true, storageKey: 'queue-health.auth' },
      });
    });
    state.supabase.catch(() => (state.supabase = null));
  }
  return state.supabase;
}

/**
 * @param {boolean} passwordAvailable
 * @param {string} message
 */
function showSignIn(passwordAvailable, message) {
  const cfg = /** @type {import('./config.js').DashboardConfig} */ (state.config);
  $('dashboard').hidden = true;
  $('session-bar').hidden = true;
  $('sign-in').hidden = false;
  $('password-form').hidden = !passwordAvailable;
  /** @type {HTMLDetailsElement} */ ($('token-details')).open = !passwordAvailable;
  $('sign-in-target').textContent = passwordAvailable
    ? `Sign in to ${cfg.supabaseUrl} with your Supabase account, or use an access token.`
    : `${cfg.supabaseUrl} has no Supabase Auth here: paste an access token.`;
  const err = $('sign-in-error');
  err.textContent = message;
  err.hidden = !message;
}

/** @param {string} message */
function signInError(message) {
  const err = $('sign-in-error');
  err.textContent = message;
  err.hidden = false;
}

$('password-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const email = /** @type {HTMLInputElement} */ ($('email')).value.trim();
  const password = /** @type {HTMLInputElement} */ ($('password')).value;
  try {
    const sb = await getSupabase();
    const { data, error } = await sb.auth.signInWithPassword({ email, password });
    if (error) return signInError(`Sign-in failed: ${error.message}`);
    state.authKind = 'supabase';
    state.token = data.session.access_token;
    /** @type {HTMLInputElement} */ ($('password')).value = '';
    startDashboard(email);
  } catch (e) {
    signInError(`Sign-in failed: ${e instanceof Error ? e.message : e}`);
  }
});

$('token-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLTextAreaElement} */ ($('token'));
  const token = input.value.trim().replace(/^Bearer\s+/i, '');
  const left = jwtSecondsLeft(token);
  if (token.split('.').length !== 3) {
    return signInError('That is not a JWT (three dot-separated parts).');
  }
  if (left !== null && left <= 0) return signInError('That token has expired.');
  localStorage.setItem(TOKEN_KEY, token);
  state.authKind = 'token';
  state.token = token;
  input.value = '';
  startDashboard('');
});

$('sign-out').addEventListener('click', async () => {
  if (state.authKind === 'supabase' && state.supabase) {
    try {
      await (await state.supabase).auth.signOut();
    } catch {
      // signed out locally either way
    }
  }
  signedOut('');
});

/** @param {string} message */
async function signedOut(message) {
  localStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.authKind = null;
  await state.live?.stop();
  state.live = null;
  closeDetail();
  state.queues.clear();
  state.rows.clear();
  state.spark.clear();
  state.sparkLoaded.clear();
  $('queue-rows').textContent = '';
  showSignIn(await supabaseAuthAvailable(), message);
}

/** @param {string} who */
function startDashboard(who) {
  const cfg = /** @type {import('./config.js').DashboardConfig} */ (state.config);
  $('sign-in').hidden = true;
  $('dashboard').hidden = false;
  $('session-bar').hidden = false;
  $('sign-out').title = who ? `Signed in as ${who}` : 'Signed in with an access token';
  state.api = createApi(cfg, () => state.token);
  state.live = startLive({
    config: cfg,
    api: state.api,
    project: () => state.project,
    channelProjects: () => (state.project ? [state.project] : state.projects.map((p) => p.id)),
    token: () => state.token,
    supabase: getSupabase,
    onReport,
    onSnapshot,
    onMode: showMode,
    onUnauthorized: (e) => signedOut(`Signed out: ${e.message}.`),
    onError: (e) => showBanner(e.message),
  });
}

// ---------------------------------------------------------------------------------------------
// URL hash: #project=<id>&queue=<id>

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  state.project = h.get('project') || null;
  state.projectChosen = h.has('project');
  state.selected = h.get('queue') || null;
  const range = h.get('range');
  if (range === '1h' || range === '24h' || range === '7d') state.range = range;
}

function writeHash() {
  const h = new URLSearchParams();
  if (state.project) h.set('project', state.project);
  if (state.selected) h.set('queue', state.selected);
  if (state.selected && state.range !== '1h') h.set('range', state.range);
  const s = h.toString();
  history.replaceState(null, '', s ? `#${s}` : location.pathname + location.search);
}

// ---------------------------------------------------------------------------------------------
// Data in

/** @param {any} report */
function onReport(report) {
  state.report = report;
  state.updatedAt = Date.now();
  hideBanner();
  const projects = Array.isArray(report.projects) ? report.projects : [];
  if (state.project && !projects.some((/** @type {any} */ p) => p.id === state.project)) {
    // A project from the URL that this user cannot see: show what they can see instead.
    state.project = null;
    state.projectChosen = false;
    writeHash();
    state.live?.restart();
    return;
  }
  if (!state.project) {
    state.projects = projects;
  } else {
    for (const p of projects) {
      if (!state.projects.some((q) => q.id === p.id)) state.projects.push(p);
    }
  }
  // Show one project by default when the caller sees exactly one.
  if (!state.projectChosen && !state.project && state.projects.length === 1) {
    state.project = state.projects[0].id;
  }
  const seen = new Set();
  for (const q of report.queues) {
    if (state.project && q.project_id !== state.project) continue;
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
    state.queues.set(id, row);
    addSparkPoint(id, row.captured_at, row.metrics.depth);
  }
  for (const id of [...state.queues.keys()]) if (!seen.has(id)) state.queues.delete(id);
  renderAll();
  backfillSparklines();
}

/**
 * A Realtime snapshot (slim v2 or full v1): update the numbers it carries at once. Status, alerts,
 * channels, new queues and (from a slim one) the ready / in flight / delayed breakdown follow with
 * the next read of the report, at most a minute later (live.js).
 * @param {any} payload
 */
function onSnapshot(payload) {
  const queues = snapshotQueues(payload);
  if (!queues) return;
  if (state.project && payload.project_id !== state.project) return;
  state.updatedAt = Date.now();
  for (const q of queues) {
    // Payloads name the schema (older ones did not: then match on source and name, if unique).
    const row = typeof q.source_schema === 'string'
      ? state.queues.get(`${payload.project_id}/${q.source}/${q.source_schema}/${q.queue}`)
      : onlyOne(
        [...state.queues.values()].filter((r) =>
          r.key === queueKey(payload.project_id, q.source, q.queue)
        ),
      );
    if (!row) continue; // a new queue: the next read of the report adds it
    const prev = row.captured_at ? Date.parse(row.captured_at) : NaN;
    const at = Date.parse(payload.captured_at);
    if (Number.isFinite(prev) && at <= prev) continue;
    const interval = Number.isFinite(prev) ? (at - prev) / 1000 : null;
    for (
      const f of [
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
      ]
    ) if (f in q) row.metrics[f] = q[f];
    if ('ready' in q) row.reportAt = null; // a full payload: the breakdown is current
    Object.assign(row.metrics, ratesOf(q, interval), { interval_s: interval });
    // Signals the payload carries (flow status, drain ETA, poison); the rest follow with the report.
    for (const f of ['flow_status', 'drain_eta_s', 'poison']) {
      if (f in q) row.signals[f] = q[f];
    }
    row.captured_at = new Date(at).toISOString();
    addSparkPoint(row.id, row.captured_at, q.depth);
  }
  // The snapshot is a capture: the monitor's "last capture" moves with it.
  const monitor = state.report?.monitor;
  if (monitor && !(Date.parse(monitor.last_capture_at) >= Date.parse(payload.captured_at))) {
    monitor.last_capture_at = payload.captured_at;
  }
  renderOverview();
  renderQueues();
  renderDetail();
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
 * @param {string} id
 * @param {string | null} capturedAt
 * @param {unknown} depth
 */
function addSparkPoint(id, capturedAt, depth) {
  if (!capturedAt || typeof depth !== 'number') return;
  const t = Date.parse(capturedAt);
  let pts = state.spark.get(id);
  if (!pts) state.spark.set(id, pts = []);
  if (pts.length && pts[pts.length - 1][0] >= t) return;
  pts.push([t, depth]);
  const cutoff = Date.now() - SPARK_WINDOW_MS;
  while (pts.length > 2 && pts[0][0] < cutoff) pts.shift();
}

let backfilling = false;
/** Fills the sparklines of newly seen queues from the last 30 min of history (3 at a time). */
async function backfillSparklines() {
  if (backfilling || !state.api) return;
  backfilling = true;
  try {
    const todo = [...state.queues.values()].filter((q) => !state.sparkLoaded.has(q.id)).slice(
      0,
      50,
    );
    const api = state.api;
    const work = async () => {
      for (let q = todo.shift(); q; q = todo.shift()) {
        state.sparkLoaded.add(q.id);
        try {
          const h = await api.history({
            queue: q.queue,
            source: q.source,
            project: q.project_id,
            range: '30m',
          });
          const series = h.series.find((/** @type {any} */ s) =>
            s.project_id === q.project_id && s.source === q.source && s.queue === q.queue
          );
          if (!series) continue;
          const live = state.spark.get(q.id) ?? [];
          const firstLive = live.length ? live[0][0] : Infinity;
          /** @type {[number, number][]} */
          const past = series.points
            .map((/** @type {any} */ p) => [Date.parse(p.t), Number(p.depth)])
            .filter((/** @type {[number, number]} */ [t, d]) =>
              t < firstLive && Number.isFinite(d)
            );
          state.spark.set(q.id, [...past, ...live]);
          updateSparkline(q.id);
        } catch {
          // the sparkline fills from live data instead
        }
      }
    };
    await Promise.all([work(), work(), work()]);
  } finally {
    backfilling = false;
  }
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderAll() {
  renderProjects();
  renderOverview();
  renderQueues();
  renderDetail();
  renderAlerts();
  renderChannels();
}

function renderProjects() {
  const sel = /** @type {HTMLSelectElement} */ ($('project-select'));
  const want = [
    ...(state.projects.length > 1 || !state.project ? [['', 'All projects']] : []),
    ...state.projects.map((p) => [p.id, p.name && p.name !== p.id ? `${p.name} (${p.id})` : p.id]),
  ];
  const now = [...sel.options].map((o) => [o.value, o.textContent]);
  if (JSON.stringify(want) !== JSON.stringify(now)) {
    sel.textContent = '';
    for (const [v, label] of want) sel.append(new Option(label ?? '', v ?? ''));
  }
  sel.value = state.project ?? '';
  sel.parentElement && (sel.parentElement.hidden = state.projects.length === 0);
}

$('project-select').addEventListener('change', (ev) => {
  const v = /** @type {HTMLSelectElement} */ (ev.target).value;
  state.project = v || null;
  state.projectChosen = true;
  closeDetail();
  state.queues.clear();
  writeHash();
  renderQueues();
  state.live?.restart();
});

function renderOverview() {
  const r = state.report;
  if (!r) return;
  const box = $('overall');
  const shown = [...state.queues.values()];
  const counts = { critical: 0, stale: 0, warning: 0, ok: 0 };
  for (const q of shown) counts[/** @type {keyof typeof counts} */ (q.status)] += 1;
  if (state.projects.length === 0) {
    box.dataset.status = 'unknown';
    $('overall-status').textContent = '–';
    $('overall-summary').textContent = 'no project visible to this account';
    return;
  }
  box.dataset.status = r.status;
  $('overall-status').textContent = r.healthy === false && r.status === 'ok'
    ? 'unhealthy'
    : r.status;
  const parts = Object.entries(counts).filter(([, n]) => n > 0).map(([s, n]) => `${n} ${s}`);
  const firing = (r.alerts ?? []).length;
  $('overall-summary').textContent = `${shown.length} queue${shown.length === 1 ? '' : 's'}${
    parts.length ? `: ${parts.join(' · ')}` : ''
  }${firing ? ` — ${firing} alert${firing === 1 ? '' : 's'} firing` : ''}${
    r.healthy === false ? ' — health check failing (HTTP 503)' : ''
  }`;
  document.title = `${r.status === 'ok' ? '' : `[${r.status}] `}Queue Health`;

  const m = r.monitor ?? {};
  const cap = $('fact-capture');
  cap.dataset.ts = m.last_capture_at ?? '';
  cap.textContent = formatRelative(m.last_capture_at);
  $('fact-monitor').textContent = m.status === 'ok'
    ? `ok${m.lag_s !== null && m.lag_s !== undefined ? ` (lag ${formatDuration(m.lag_s)})` : ''}`
    : m.status === 'stale'
    ? `stale — no capture for ${formatDuration(m.lag_s)}`
    : 'unknown';
  $('fact-monitor').dataset.status = m.status === 'ok'
    ? 'ok'
    : m.status === 'stale'
    ? 'critical'
    : 'stale';
  const upd = $('fact-updated');
  upd.dataset.ts = new Date(state.updatedAt).toISOString();
  upd.textContent = formatRelative(state.updatedAt);
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

/** @param {QueueRow} q */
function createRow(q) {
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
  const open = () => openDetail(q.id);
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

function renderQueues() {
  const body = $('queue-rows');
  const list = [...state.queues.values()].sort((a, b) =>
    statusRank(a.status) - statusRank(b.status) || a.project_id.localeCompare(b.project_id) ||
    a.queue.localeCompare(b.queue) || a.source.localeCompare(b.source) ||
    a.source_schema.localeCompare(b.source_schema)
  );
  const showProject = !state.project && new Set(list.map((q) => q.project_id)).size > 1;
  for (const [id, tr] of state.rows) {
    if (!state.queues.has(id)) {
      tr.remove();
      state.rows.delete(id);
    }
  }
  list.forEach((q, i) => {
    let tr = state.rows.get(q.id);
    if (!tr) {
      tr = createRow(q);
      state.rows.set(q.id, tr);
    }
    if (body.children[i] !== tr) body.insertBefore(tr, body.children[i] ?? null);
    updateRow(tr, q, showProject);
  });
  $('queue-count').textContent = list.length ? `${list.length}` : '';
  const none = $('no-queues');
  none.hidden = list.length > 0 || !state.report;
  none.textContent = state.report && state.projects.length === 0
    ? 'This account sees no Queue Health project: ask an admin to add you to one (queue_health.project_member).'
    : 'No queues yet. Queue Health lists pgmq and pg-boss queues after the first capture.';
}

/**
 * @param {HTMLTableRowElement} tr
 * @param {QueueRow} q
 * @param {boolean} showProject
 */
function updateRow(tr, q, showProject) {
  const m = q.metrics;
  tr.dataset.status = q.status;
  tr.classList.toggle('selected', state.selected === q.id);
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
    formatEta(sg.drain_eta_s),
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
    formatPoison(poison),
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
  updateSparkline(q.id);
}

/** @param {string} id */
function updateSparkline(id) {
  const tr = state.rows.get(id);
  if (!tr) return;
  const pts = state.spark.get(id) ?? [];
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

/** @param {string} id */
function openDetail(id) {
  state.selected = id;
  state.detailLoadedAt = 0;
  writeHash();
  $('detail').hidden = false;
  renderQueues();
  renderDetail();
  $('detail').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
}

function closeDetail() {
  state.selected = null;
  $('detail').hidden = true;
  state.charts?.destroy();
  state.charts = null;
  writeHash();
  for (const tr of state.rows.values()) tr.classList.remove('selected');
}

$('detail-close').addEventListener('click', () => closeDetail());
for (const b of document.querySelectorAll('.range-tabs button')) {
  b.addEventListener('click', () => {
    state.range = /** @type {HTMLElement} */ (b).dataset.range ?? '1h';
    state.detailLoadedAt = 0;
    writeHash();
    renderDetail();
  });
}

function renderDetail() {
  const q = state.selected ? state.queues.get(state.selected) : null;
  if (!q) {
    $('detail').hidden = true;
    return;
  }
  $('detail').hidden = false;
  const badge = $('detail-status');
  badge.dataset.status = q.status;
  badge.textContent = q.status;
  $('detail-title').textContent = `${q.queue}  ·  ${q.source}${
    q.source_schema !== q.source ? `/${q.source_schema}` : ''
  }  ·  ${q.project_id}`;
  for (const b of document.querySelectorAll('.range-tabs button')) {
    b.setAttribute(
      'aria-selected',
      String(/** @type {HTMLElement} */ (b).dataset.range === state.range),
    );
  }

  const reasons = $('detail-reasons');
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
      ['Clears in', formatEta(sg.drain_eta_s)],
      ['Expected wait', wait === Infinity ? 'never taken' : formatDuration(wait)],
      ['In / out (smoothed)', `${formatRate(sg.in_rate)} / ${formatRate(sg.out_rate)}`],
      ['Poison', formatPoison(sg.poison)],
      ['Oldest poison', formatDuration(sg.oldest_poison_age_s)],
    );
  }
  const dl = $('detail-metrics');
  dl.textContent = '';
  for (const [k, v] of facts) dl.append(el('div', {}, [el('dt', {}, [k]), el('dd', {}, [v])]));
  dl.append(el('div', {}, [el('dt', {}, ['Captured']), el('dd', {}, [timeEl(q.captured_at)])]));
  if ('last_enqueue_at' in sg || 'last_dequeue_at' in sg) {
    dl.append(
      el('div', {}, [el('dt', {}, ['Last enqueue']), el('dd', {}, [timeEl(sg.last_enqueue_at)])]),
      el('div', {}, [el('dt', {}, ['Last dequeue']), el('dd', {}, [timeEl(sg.last_dequeue_at)])]),
    );
  }
  renderObjective(q);

  // Charts: load once per range change, then refresh at most every 10 s (1 h) or 60 s.
  const every = state.range === '1h' ? 10_000 : 60_000;
  if (Date.now() - state.detailLoadedAt > every) loadDetailCharts(q);
}

/**
 * The latency objective of the open queue: its target, the error budget left and the burn rates
 * over the alerting windows (the burn chart is drawn with the other charts). Hidden without one.
 * @param {QueueRow} q
 */
function renderObjective(q) {
  const slo = q.signals.slo;
  const box = $('detail-slo');
  box.hidden = !slo;
  $('chart-burn-figure').hidden = !slo;
  if (!slo) return;
  const budget = typeof slo.budget_remaining === 'number' ? slo.budget_remaining : null;
  const b = $('detail-budget');
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
  $('detail-objective').textContent = words.charAt(0).toUpperCase() + words.slice(1);
  const rates = slo.burn_rates ?? {};
  $('detail-burn').textContent = ['5m', '30m', '1h', '6h', '3d'].map((w) =>
    `${w} ${formatBurn(rates[w])}`
  ).join(' · ');
}

/** @param {QueueRow} q */
async function loadDetailCharts(q) {
  if (!state.api) return;
  state.detailLoadedAt = Date.now();
  const seq = ++state.detailSeq;
  const note = $('detail-chart-note');
  try {
    await DetailCharts.load();
    const h = await state.api.history({
      queue: q.queue,
      source: q.source,
      project: q.project_id,
      range: state.range,
    });
    if (seq !== state.detailSeq || state.selected !== q.id) return;
    const series = h.series.find((/** @type {any} */ s) =>
      s.project_id === q.project_id && s.source === q.source && s.queue === q.queue
    );
    const points = series?.points ?? [];
    note.textContent = `${points.length} points, ${
      { raw: 'one per capture', '1m': 'one per minute', '1h': 'one per hour' }[
        /** @type {'raw' | '1m' | '1h'} */ (h.resolution)
      ] ?? h.resolution
    }, ${
      state.range === '1h' ? 'last hour' : state.range === '24h' ? 'last 24 hours' : 'last 7 days'
    }`;
    if (!state.charts) {
      state.charts = new DetailCharts({
        depth: $('chart-depth'),
        age: $('chart-age'),
        rate: $('chart-rate'),
        burn: $('chart-burn'),
      });
    }
    const objective = typeof q.signals.slo?.objective === 'number' ? q.signals.slo.objective : null;
    state.charts.set(points, h.resolution, { from: h.from, to: h.to }, objective);
  } catch (e) {
    if (seq === state.detailSeq) {
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

function renderAlerts() {
  const list = $('alerts');
  const alerts = (state.report?.alerts ?? []).filter((/** @type {any} */ a) =>
    !state.project || a.project_id === state.project
  );
  list.textContent = '';
  $('alert-count').textContent = alerts.length ? String(alerts.length) : '';
  if (alerts.length === 0) {
    list.append(el('li', { class: 'muted empty' }, ['Nothing firing.']));
    return;
  }
  for (const a of alerts) {
    const queue = a.queue_name ?? a.queue;
    const value = typeof a.value === 'number' ? a.value : null;
    const threshold = typeof a.threshold === 'number' ? a.threshold : null;
    list.append(el('li', { 'data-severity': a.severity ?? 'warning' }, [
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
    ]));
  }
}

function renderChannels() {
  const list = $('channels');
  const channels = state.report?.channels;
  list.textContent = '';
  if (channels === null || channels === undefined) {
    list.append(el('li', { class: 'muted empty' }, ['Alerting is not installed.']));
    return;
  }
  const shown = channels.filter((/** @type {any} */ c) =>
    !state.project || c.project_id === state.project
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

// --- mode, banner, ticker ---------------------------------------------------------------------

/**
 * @param {import('./live.js').Mode} mode
 * @param {string} detail
 */
function showMode(mode, detail) {
  const m = $('mode');
  m.dataset.mode = mode;
  m.title = detail;
  $('mode-text').textContent = {
    connecting: 'connecting…',
    realtime: 'Live · Realtime',
    polling: `Polling · every ${state.config?.pollSeconds ?? 2.5} s`,
    offline: 'Offline · retrying',
  }[mode];
  document.body.dataset.mode = mode;
}

/** @param {string} text */
function showBanner(text) {
  const b = $('banner');
  b.textContent = text;
  b.hidden = false;
}

function hideBanner() {
  $('banner').hidden = true;
}

function tick() {
  const now = Date.now();
  for (const e of document.querySelectorAll('[data-ts]')) {
    const ts = /** @type {HTMLElement} */ (e).dataset.ts;
    if (!ts) continue;
    const text = (/** @type {HTMLElement} */ (e).dataset.prefix ?? '') + formatRelative(ts, now);
    if (e.textContent !== text) e.textContent = text;
  }
}

addEventListener('unhandledrejection', (ev) => {
  if (ev.reason instanceof ApiError) showBanner(ev.reason.message);
});

main();
