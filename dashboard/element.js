// @ts-check
/// <reference lib="dom" />
/**
 * `<queue-health-dashboard>`: the live Queue Health dashboard as a standard custom element, for
 * any app (SvelteKit, React, plain HTML) and for the standalone page (index.html + page.js).
 *
 * The host gives it who to act for — a supabase-js client (`el.supabase = client`), a session
 * (`el.session`), or an access token (`access-token`) with `functions-url` — and it reads the
 * health report from the queue-health Edge Function, joins the project's private Realtime channel
 * when it has a client, and renders into an open shadow root styled by
 * `queue-health-dashboard.css` (themable with `--qh-*` custom properties). docs/dashboard.md lists
 * the attributes, properties, events and custom properties.
 *
 * Modules by concern: sign_in.js (who), api.js + live.js + intake.js (data in), views.js (out).
 * @module
 */
import { createApi } from './api.js';
import { mergeConfig } from './config.js';
import { tickTimes } from './dom.js';
import { rejectedTokenReason } from './format.js';
import {
  applyReport,
  applySnapshot,
  backfillSparklines,
  clearQueues,
  createIntake,
} from './intake.js';
import { startLive } from './live.js';
import { SignIn } from './sign_in.js';
import { TEMPLATE } from './template.js';
import {
  renderAll,
  renderDetail,
  renderMode,
  renderOverview,
  renderQueues,
  updateSparkline,
} from './views.js';

/** The element's tag name. */
export const TAG = 'queue-health-dashboard';

/** The chart ranges of the detail view. */
const RANGES = ['1h', '24h', '7d'];

/** Attributes that change where the element reads from or who it acts for: each restarts it. */
const CONFIG_ATTRIBUTES = [
  'supabase-url',
  'anon-key',
  'functions-url',
  'access-token',
  'realtime',
  'auth',
  'poll-seconds',
  'supabase-js',
];

/** Attributes that change what it shows. */
const VIEW_ATTRIBUTES = ['project', 'queue', 'range'];

/** The stylesheet next to this module (the bundle's queue-health-dashboard.css). */
function defaultStylesheet() {
  try {
    return new URL('./queue-health-dashboard.css', import.meta.url).href;
  } catch {
    return 'queue-health-dashboard.css';
  }
}

/** The custom element; see the module doc. */
export class QueueHealthDashboard extends HTMLElement {
  static get observedAttributes() {
    return [...CONFIG_ATTRIBUTES, ...VIEW_ATTRIBUTES, 'stylesheet'];
  }

  constructor() {
    super();
    const root = this.attachShadow({ mode: 'open' });
    this.root = root;
    const link = document.createElement('link');
    link.rel = 'stylesheet';
    link.href = this.getAttribute('stylesheet') || defaultStylesheet();
    this.link = link;
    const tpl = document.createElement('template');
    tpl.innerHTML = TEMPLATE; // a constant of this module: no data in it
    root.append(link, tpl.content.cloneNode(true));
    const box = /** @type {HTMLElement} */ (root.querySelector('.qh'));
    // Shown once the stylesheet is in (or failed), so the page never flashes unstyled markup.
    box.hidden = true;
    const shown = () => (box.hidden = false);
    link.addEventListener('load', shown);
    link.addEventListener('error', shown);

    /** @type {any} */
    this._supabase = null;
    /** @type {any} */
    this._session = null;
    /** @type {string | null} */
    this._accessToken = null;
    /** @type {string} */
    this._supabaseJs = '';
    this.data = createIntake();
    /** @type {string | null} */
    this.selected = null;
    this.range = '1h';
    /** @type {Map<string, HTMLTableRowElement>} */
    this.rows = new Map();
    /** @type {import('./api.js').Api | null} */
    this.api = null;
    /** @type {import('./charts.js').DetailCharts | null} */
    this.charts = null;
    this.detailLoadedAt = 0;
    this.detailSeq = 0;
    /** @type {ReturnType<typeof startLive> | null} */
    this.live = null;
    /** @type {import('./config.js').DashboardConfig | null} */
    this.cfg = null;
    /** @type {import('./live.js').Mode} */
    this._mode = 'connecting';
    /** @type {string | null} */
    this.lastStatus = null;
    this.generation = 0;
    this.reflecting = false;
    this.bootQueued = false;
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.ticker = undefined;

    this.signIn = new SignIn({
      config: () => /** @type {import('./config.js').DashboardConfig} */ (this.cfg),
      $: (id) => this.$(id),
      injectedClient: () => this._supabase,
      givenToken: () => this.givenToken(),
      givenWho: () => this._session?.user?.email ?? '',
      supabaseJsSrc: () => this.supabaseJs,
      onSignedIn: (who) => this.startDashboard(who),
      onSignedOut: (message) => this.signedOut(message),
    });
    this.bindControls();
  }

  // --- public API: properties ----------------------------------------------------------------

  /** A supabase-js client: its session signs in, its Realtime carries the live updates. */
  get supabase() {
    return this._supabase;
  }
  set supabase(client) {
    this._supabase = client ?? null;
    this.queueBoot();
  }

  /** A Supabase session (`{access_token, user}`), e.g. from `supabase.auth.getSession()`. */
  get session() {
    return this._session;
  }
  set session(s) {
    this._session = s ?? null;
    this.queueBoot();
  }

  /** An access token (a Supabase user JWT); the `access-token` attribute is the same. */
  get accessToken() {
    return this._accessToken ?? this.getAttribute('access-token');
  }
  set accessToken(t) {
    this._accessToken = t || null;
    this.queueBoot();
  }

  /** URL of supabase-js's UMD bundle, loaded when the element must create a client itself. */
  get supabaseJs() {
    return this._supabaseJs || this.getAttribute('supabase-js') || '';
  }
  set supabaseJs(src) {
    this._supabaseJs = src || '';
  }

  /** How it gets updates: connecting, realtime, polling or offline (also `data-mode`). */
  get mode() {
    return this._mode;
  }

  /** The selected project id (null: every project the user sees). */
  get project() {
    return this.data.project;
  }
  set project(v) {
    this.setAttribute('project', v ?? '');
  }

  /** The open queue's id (`project/source/schema/queue`), null when none is open. */
  get queue() {
    return this.selected;
  }
  set queue(v) {
    if (v) this.setAttribute('queue', v);
    else this.removeAttribute('queue');
  }

  /** Re-reads the health report now. */
  refresh() {
    return this.live?.refresh();
  }

  /** Signs out (of supabase-js too when the element signed in through it). */
  async signOut() {
    await this.signIn.signOut();
    await this.signedOut('');
  }

  // --- lifecycle -------------------------------------------------------------------------------

  connectedCallback() {
    this.ticker ??= setInterval(() => tickTimes(this.root), 1000);
    this.queueBoot();
  }

  disconnectedCallback() {
    clearInterval(this.ticker);
    this.ticker = undefined;
    this.generation++;
    this.stopLive();
    this.signIn.dispose();
  }

  /**
   * @param {string} name
   * @param {string | null} old
   * @param {string | null} value
   */
  attributeChangedCallback(name, old, value) {
    if (old === value || this.reflecting) return;
    if (name === 'stylesheet') {
      this.link.href = value || defaultStylesheet();
    } else if (CONFIG_ATTRIBUTES.includes(name)) {
      this.queueBoot();
    } else if (this.isConnected && this.cfg) {
      this.applyViewAttribute(name, value);
    }
  }

  /** Starts (again) once the current task is done, so properties set together count once. */
  queueBoot() {
    if (this.bootQueued || !this.isConnected) return;
    this.bootQueued = true;
    queueMicrotask(() => {
      this.bootQueued = false;
      if (this.isConnected) this.boot();
    });
  }

  async boot() {
    const gen = ++this.generation;
    this.stopLive();
    this.signIn.dispose();
    this.resetView();
    this.$('sign-in').hidden = true;
    this.$('config-error').hidden = true;
    try {
      this.cfg = this.readConfig();
    } catch (e) {
      this.cfg = null;
      this.showProblem('Not configured', e instanceof Error ? e.message : String(e), 'config');
      return;
    }
    this.readSelection();
    if (gen === this.generation) await this.signIn.begin();
  }

  /** The settings from the attributes (and the host's client), validated. */
  readConfig() {
    const attr = (/** @type {string} */ n) => this.getAttribute(n) ?? undefined;
    const client = this._supabase;
    return mergeConfig([
      {
        _source: 'the supabase client',
        supabaseUrl: typeof client?.supabaseUrl === 'string' ? client.supabaseUrl : undefined,
        anonKey: typeof client?.supabaseKey === 'string' ? client.supabaseKey : undefined,
      },
      {
        _source: 'attributes',
        supabaseUrl: attr('supabase-url'),
        anonKey: attr('anon-key'),
        functionsUrl: attr('functions-url'),
        realtime: attr('realtime'),
        auth: attr('auth'),
        pollSeconds: attr('poll-seconds'),
      },
    ]);
  }

  /** The host's token: the accessToken property or attribute, else the session's. */
  givenToken() {
    return this.accessToken || this._session?.access_token || null;
  }

  /** @param {string} id */
  $(id) {
    return /** @type {HTMLElement} */ (this.root.getElementById(id));
  }

  // --- selection: project, open queue, range ---------------------------------------------------

  /** The initial selection: from location.hash with the `hash` attribute, else the attributes. */
  readSelection() {
    /** @type {(n: string) => string | null} */
    let get = (n) => this.getAttribute(n);
    if (this.hasAttribute('hash')) {
      const h = new URLSearchParams(location.hash.slice(1));
      get = (n) => h.get(n) ?? this.getAttribute(n);
    }
    const project = get('project');
    this.data.project = project || null;
    this.data.projectChosen = project !== null;
    this.selected = get('queue') || null;
    const range = get('range');
    this.range = range && RANGES.includes(range) ? range : '1h';
  }

  /** Writes the selection back: to location.hash with `hash`, and to the attributes. */
  persist() {
    if (this.hasAttribute('hash')) {
      const h = new URLSearchParams();
      if (this.data.project) h.set('project', this.data.project);
      if (this.selected) h.set('queue', this.selected);
      if (this.selected && this.range !== '1h') h.set('range', this.range);
      const s = h.toString();
      history.replaceState(null, '', s ? `#${s}` : location.pathname + location.search);
    }
    this.reflecting = true;
    try {
      this.toggleAttr('project', this.data.project);
      this.toggleAttr('queue', this.selected);
      this.toggleAttr('range', this.range === '1h' ? null : this.range);
    } finally {
      this.reflecting = false;
    }
  }

  /** @param {string} name @param {string | null} value */
  toggleAttr(name, value) {
    if (value) this.setAttribute(name, value);
    else this.removeAttribute(name);
  }

  /** The host changed project, queue or range. @param {string} name @param {string | null} v */
  applyViewAttribute(name, v) {
    if (name === 'range') {
      this.setRange(v && RANGES.includes(v) ? v : '1h');
    } else if (name === 'queue') {
      if (v) this.showQueue(this.resolveQueue(v) ?? v);
      else this.closeDetail();
    } else if (name === 'project') {
      this.selectProject(v || null);
    }
  }

  /**
   * A queue id, or a bare queue name matched against the queues shown.
   * @param {string} v
   */
  resolveQueue(v) {
    if (this.data.queues.has(v)) return v;
    if (v.includes('/')) return null;
    return [...this.data.queues.values()].find((q) => q.queue === v)?.id ?? null;
  }

  /** @param {string | null} project */
  selectProject(project) {
    this.data.project = project;
    this.data.projectChosen = true;
    this.closeDetail();
    clearQueues(this.data);
    this.persist();
    renderQueues(this);
    this.live?.restart();
  }

  /** @param {string} range */
  setRange(range) {
    this.range = range;
    this.detailLoadedAt = 0;
    this.persist();
    renderDetail(this);
  }

  /**
   * The user opens a queue: `queueopen` (cancelable) first, then its detail.
   * @param {string} id
   */
  openQueue(id) {
    const q = this.data.queues.get(id);
    if (!q) return;
    const ok = this.emit('queueopen', {
      id,
      project: q.project_id,
      source: q.source,
      schema: q.source_schema,
      queue: q.queue,
      status: q.status,
    }, true);
    if (ok) this.showQueue(id);
  }

  /**
   * The user opens an alert: `alertopen` (cancelable) first, then its queue's detail.
   * @param {any} alert
   */
  openAlert(alert) {
    const id = alert.queue_name
      ? `${alert.project_id}/${alert.source}/${alert.source_schema}/${alert.queue_name}`
      : null;
    const queueId = id && this.data.queues.has(id) ? id : null;
    const ok = this.emit('alertopen', { alert: { ...alert }, queueId }, true);
    if (ok && queueId) this.showQueue(queueId);
  }

  /** @param {string} id */
  showQueue(id) {
    this.selected = id;
    this.detailLoadedAt = 0;
    this.persist();
    renderQueues(this);
    renderDetail(this);
    if (this.data.queues.has(id)) {
      this.$('detail').scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    }
  }

  closeDetail() {
    this.selected = null;
    this.$('detail').hidden = true;
    this.charts?.destroy();
    this.charts = null;
    this.persist();
    for (const tr of this.rows.values()) tr.classList.remove('selected');
  }

  // --- signed in: data in ----------------------------------------------------------------------

  /** @param {string} who */
  startDashboard(who) {
    const cfg = /** @type {import('./config.js').DashboardConfig} */ (this.cfg);
    const gen = this.generation;
    this.$('sign-in').hidden = true;
    this.$('dashboard').hidden = false;
    this.$('session-bar').hidden = false;
    // A token the host gave is the host's to take back; a session can be signed out of here.
    this.$('sign-out').hidden = this.signIn.kind === 'given';
    this.$('sign-out').title = who ? `Signed in as ${who}` : 'Signed in with an access token';
    this.api = createApi(cfg, () => this.signIn.currentToken());
    this.stopLive();
    this.live = startLive({
      config: cfg,
      api: this.api,
      project: () => this.data.project,
      channelProjects: () =>
        this.data.project ? [this.data.project] : this.data.projects.map((p) => p.id),
      token: () => this.signIn.currentToken(),
      supabase: () => this.signIn.client(),
      onReport: (r) => gen === this.generation && this.onReport(r),
      onSnapshot: (p) => gen === this.generation && this.onSnapshot(p),
      onMode: (m, d) => this.setMode(m, d),
      onUnauthorized: (e) => this.signedOut(`Signed out: ${e.message}.`, true),
      onError: (e) => this.showBanner(e.message),
    });
  }

  /** @param {any} report */
  onReport(report) {
    this.hideBanner();
    if (applyReport(this.data, report) === 'restart') {
      this.persist();
      this.live?.restart();
      return;
    }
    if (this.selected && !this.data.queues.has(this.selected)) {
      const id = this.resolveQueue(this.selected);
      if (id) {
        this.selected = id;
        this.persist();
      }
    }
    renderAll(this);
    if (this.api) backfillSparklines(this.data, this.api, (id) => updateSparkline(this, id));
    const status = report.healthy === false && report.status === 'ok' ? 'unhealthy' : report.status;
    if (status !== this.lastStatus) {
      this.lastStatus = status;
      this.emit('statuschange', { status, healthy: report.healthy !== false });
    }
  }

  /** @param {any} payload */
  onSnapshot(payload) {
    if (!applySnapshot(this.data, payload)) return;
    renderOverview(this);
    renderQueues(this);
    renderDetail(this);
  }

  /** @param {import('./live.js').Mode} mode @param {string} detail */
  setMode(mode, detail) {
    this._mode = mode;
    renderMode(this, mode, detail, this.cfg?.pollSeconds ?? 2.5);
    this.dataset.mode = mode;
    this.emit('modechange', { mode, detail });
  }

  /**
   * Back to signed out. A token the host gave cannot be replaced here: when queue-health refused
   * it, the element says why (expired, not a JWT, not valid here) instead of going blank.
   * @param {string} message
   * @param {boolean} [rejected] queue-health answered 401 to the current token
   */
  async signedOut(message, rejected = false) {
    const given = this.signIn.kind === 'given';
    const token = this.signIn.currentToken();
    this.signIn.forget();
    this.stopLive();
    this.resetView();
    if (given && rejected) {
      const reason = rejectedTokenReason(token);
      this.emit('signedout', { reason });
      this.showProblem('Access token rejected', reason, 'token');
      return;
    }
    this.emit('signedout', { reason: message });
    if (given) {
      this.showProblem('Signed out', message || 'Signed out.', null);
      return;
    }
    this.signIn.show(await this.signIn.authAvailable(), message);
  }

  /**
   * The card in place of the dashboard when it cannot run: a title, what went wrong, and a hint
   * for the host page's author (how to configure it, or how to give it a token).
   * @param {string} title
   * @param {string} text
   * @param {'config' | 'token' | null} hint
   */
  showProblem(title, text, hint) {
    this.$('config-error-title').textContent = title;
    this.$('config-error-text').textContent = text;
    this.$('config-error-hint').hidden = hint !== 'config';
    this.$('token-error-hint').hidden = hint !== 'token';
    this.$('config-error').hidden = false;
  }

  stopLive() {
    this.live?.stop();
    this.live = null;
  }

  /** Back to nothing shown (before a sign-in). */
  resetView() {
    this.charts?.destroy();
    this.charts = null;
    this.$('detail').hidden = true;
    clearQueues(this.data);
    this.data.report = null;
    this.data.projects = [];
    this.rows.clear();
    this.$('queue-rows').textContent = '';
    this.$('dashboard').hidden = true;
    this.$('session-bar').hidden = true;
    this.lastStatus = null;
  }

  /** @param {string} text */
  showBanner(text) {
    const b = this.$('banner');
    b.textContent = text;
    b.hidden = false;
  }

  hideBanner() {
    this.$('banner').hidden = true;
  }

  /**
   * Dispatches a CustomEvent from the element (bubbles, leaves the shadow root).
   * @param {string} type
   * @param {unknown} detail
   * @param {boolean} [cancelable]
   * @returns {boolean} false when a listener called preventDefault()
   */
  emit(type, detail, cancelable = false) {
    return this.dispatchEvent(
      new CustomEvent(type, { detail, bubbles: true, composed: true, cancelable }),
    );
  }

  bindControls() {
    this.$('detail-close').addEventListener('click', () => this.closeDetail());
    for (const b of this.root.querySelectorAll('.range-tabs button')) {
      b.addEventListener(
        'click',
        () => this.setRange(/** @type {HTMLElement} */ (b).dataset.range ?? '1h'),
      );
    }
    this.$('project-select').addEventListener('change', (ev) => {
      this.selectProject(/** @type {HTMLSelectElement} */ (ev.target).value || null);
    });
    this.$('sign-out').addEventListener('click', () => this.signOut());
  }
}

if (!customElements.get(TAG)) customElements.define(TAG, QueueHealthDashboard);
