// @ts-check
/// <reference lib="dom" />
/**
 * The detail view's charts (depth, oldest ready age, throughput) drawn with uPlot, which is
 * loaded the first time a queue is opened. Series come from
 * `GET /queue-health/history`.
 * @module
 */
import { bucketBurn, formatBurn, formatCount, formatDuration, rateTicks } from './format.js';

/** uPlot's constructor, once loaded. @type {any} */
let UPlot = null;

/** @typedef {{t: string, [k: string]: unknown}} Point */

/**
 * Columns for uPlot from history points: x in epoch seconds; rates per second from each
 * bucket's counts divided by the time since the previous bucket (or the nominal bucket width).
 * @param {Point[]} points
 * @param {string} resolution raw | 1m | 1h
 */
export function historyColumns(points, resolution) {
  const nominal = resolution === '1h' ? 3600 : resolution === '1m' ? 60 : null;
  /** @type {number[]} */ const t = [];
  /** @type {(number | null)[][]} */ const c = [[], [], [], [], [], [], [], []];
  const num = (
    /** @type {unknown} */ v,
  ) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    const x = Date.parse(p.t) / 1000;
    const prev = i > 0 ? Date.parse(points[i - 1].t) / 1000 : null;
    const width = nominal ?? (prev !== null && x > prev ? x - prev : null);
    const rate = (/** @type {unknown} */ v) => {
      const n = num(v);
      return n !== null && width ? n / width : null;
    };
    t.push(x);
    c[0].push(num(p.depth));
    c[1].push(num(p.ready));
    c[2].push(num(p.in_flight));
    c[3].push(num(p.delayed));
    c[4].push(num(p.oldest_ready_age_s));
    c[5].push(rate(p.enqueued));
    c[6].push(rate(p.completed));
    c[7].push(rate(p.failed));
  }
  return { t, c };
}

/** The default burn-rate rules' factors (docs/alerts.md): page at 14.4×, ticket at 6×. */
export const BURN_PAGE = 14.4;
export const BURN_TICKET = 6;

/**
 * Columns for the burn-rate chart: x in epoch seconds and each bucket's burn rate,
 * (slo_bad_s / slo_total_s) / (1 - objective) — null where the bucket has no seconds under the
 * objective (before it was set, or a row without the columns).
 * @param {Point[]} points
 * @param {number} objective e.g. 0.99
 */
export function burnColumns(points, objective) {
  /** @type {number[]} */ const t = [];
  /** @type {(number | null)[]} */ const burn = [];
  for (const p of points) {
    t.push(Date.parse(p.t) / 1000);
    burn.push(bucketBurn(p.slo_bad_s, p.slo_total_s, objective));
  }
  return { t, burn };
}

const COLORS = {
  depth: '#2563eb',
  ready: '#0891b2',
  inFlight: '#7c3aed',
  delayed: '#a3a3a3',
  age: '#ea580c',
  in: '#2563eb',
  out: '#16a34a',
  failed: '#dc2626',
  burn: '#b45309',
  page: '#dc2626',
  ticket: '#a3a3a3',
};

/** The detail charts of one queue; `set()` replaces the data, `destroy()` removes them. */
export class DetailCharts {
  /** @param {{depth: HTMLElement, age: HTMLElement, rate: HTMLElement, burn?: HTMLElement}} els */
  constructor(els) {
    this.els = els;
    /** @type {any[]} */
    this.plots = [];
    /** @type {[number, number] | null} */
    this.xRange = null;
    this.observer = new ResizeObserver(() => this.resize());
    this.observer.observe(els.depth);
  }

  /**
   * Loads uPlot (once): bundled into the element's module by the build (local/dashboard/build.ts),
   * its stylesheet into the element's CSS.
   */
  static async load() {
    UPlot ??= (await import('uplot')).default;
  }

  /**
   * @param {Point[]} points
   * @param {string} resolution
   * @param {{from: string, to: string}} range the asked-for range: the x axis spans all of it
   * @param {number | null} [objective] the queue's latency objective (0.99): adds the burn chart
   */
  set(points, resolution, range, objective = null) {
    const { t, c } = historyColumns(points, resolution);
    const width = Math.max(240, this.els.depth.clientWidth);
    /** @param {(v: number) => string} fmt @param {(ticks: number[]) => string[]} [all] */
    const axes = (fmt, all) => [
      { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,.15)' } },
      {
        stroke: 'currentColor',
        grid: { stroke: 'rgba(128,128,128,.15)' },
        size: 64,
        values: (/** @type {any} */ _u, /** @type {number[]} */ ticks) =>
          all ? all(ticks) : ticks.map(fmt),
      },
    ];
    const line = (/** @type {string} */ label, /** @type {string} */ stroke, fill = false) => ({
      label,
      stroke,
      width: 1.5,
      fill: fill ? `${stroke}22` : undefined,
      spanGaps: false,
      points: { show: false },
    });
    // The x axis spans the asked-for range; setData() re-reads it through the closure below.
    this.xRange = [Date.parse(range.from) / 1000, Date.parse(range.to) / 1000];
    const base = (/** @type {number} */ height) => ({
      width,
      height,
      cursor: { drag: { x: false, y: false } },
      legend: { live: true },
      scales: {
        x: { time: true, range: () => /** @type {[number, number]} */ (this.xRange) },
        y: {
          range: (
            /** @type {any} */ _u,
            /** @type {number} */ _min,
            /** @type {number} */ max,
          ) => [0, max > 0 ? max * 1.1 : 1],
        },
      },
    });
    const specs = [
      {
        el: this.els.depth,
        opts: {
          ...base(180),
          axes: axes((v) => formatCount(v)),
          series: [
            {},
            line('depth', COLORS.depth, true),
            line('ready', COLORS.ready),
            line('in flight', COLORS.inFlight),
            line('delayed', COLORS.delayed),
          ],
        },
        data: [t, c[0], c[1], c[2], c[3]],
      },
      {
        el: this.els.age,
        opts: {
          ...base(140),
          axes: axes((v) => formatDuration(v)),
          series: [{}, line('oldest ready', COLORS.age, true)],
        },
        data: [t, c[4]],
      },
      {
        el: this.els.rate,
        opts: {
          ...base(160),
          axes: axes(String, rateTicks),
          series: [
            {},
            line('in', COLORS.in),
            line('out', COLORS.out),
            line('failed', COLORS.failed),
          ],
        },
        data: [t, c[5], c[6], c[7]],
      },
    ];
    if (objective !== null && this.els.burn) {
      const b = burnColumns(points, objective);
      specs.push({
        el: this.els.burn,
        opts: {
          ...base(140),
          axes: axes((v) => formatBurn(v)),
          series: [
            {},
            line('burn rate', COLORS.burn, true),
            { ...line(`page ${BURN_PAGE}×`, COLORS.page), dash: [6, 4], width: 1 },
            { ...line(`ticket ${BURN_TICKET}×`, COLORS.ticket), dash: [6, 4], width: 1 },
          ],
        },
        data: [
          b.t,
          b.burn,
          b.t.map(() => BURN_PAGE),
          b.t.map(() => BURN_TICKET),
        ],
      });
    }
    if (this.plots.length === specs.length) {
      specs.forEach((s, i) => this.plots[i].setData(s.data));
      return;
    }
    this.destroyPlots();
    for (const s of specs) {
      s.el.textContent = '';
      this.plots.push(new UPlot(s.opts, s.data, s.el));
    }
  }

  resize() {
    const width = Math.max(240, this.els.depth.clientWidth);
    for (const p of this.plots) p.setSize({ width, height: p.height });
  }

  destroyPlots() {
    for (const p of this.plots) p.destroy();
    this.plots = [];
  }

  destroy() {
    this.observer.disconnect();
    this.destroyPlots();
  }
}
