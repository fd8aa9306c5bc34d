/**
 * Small statistics for benchmark samples: quantiles, summaries, and A/B comparisons measured by
 * alternating the two sides (A B A B …) so that drift on a noisy machine hits both equally.
 *
 * @module
 */

/** A summary of a sample of numbers. */
export interface Summary {
  /** How many values. */
  n: number;
  min: number;
  p25: number;
  median: number;
  p75: number;
  p95: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of `values` with linear interpolation between closest ranks.
 *
 * @throws Error when `values` is empty or `q` is outside [0, 1].
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile() needs at least one value: got none');
  if (!(q >= 0 && q <= 1)) throw new Error(`'q' must be between 0 and 1: got ${q}`);
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** The median of `values`. */
export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Summarises a non-empty sample. */
export function summarize(values: readonly number[]): Summary {
  // A loop, not Math.min(...values): spreading a pooled sample of 100 000+ job latencies
  // overflows the call stack.
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return {
    n: values.length,
    min,
    p25: quantile(values, 0.25),
    median: quantile(values, 0.5),
    p75: quantile(values, 0.75),
    p95: quantile(values, 0.95),
    p99: quantile(values, 0.99),
    max,
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

/** The result of {@link alternate}: each side's measurements and the per-round ratios b/a. */
export interface Comparison {
  a: number[];
  b: number[];
  /** b[i] / a[i] for each round. */
  ratios: number[];
  ratio: Summary;
}

/**
 * Measures two sides alternately, `rounds` times (A B A B …), and compares them round by round.
 * Each side returns its own measurement (a duration, a throughput, …).
 *
 * @throws Error naming `rounds` when it is not a positive integer.
 */
export async function alternate(
  rounds: number,
  a: (round: number) => Promise<number>,
  b: (round: number) => Promise<number>,
): Promise<Comparison> {
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`'rounds' must be a positive integer: got ${rounds}`);
  }
  const as: number[] = [];
  const bs: number[] = [];
  for (let i = 0; i < rounds; i++) {
    as.push(await a(i));
    bs.push(await b(i));
  }
  return compare(as, bs);
}

/** Compares paired measurements: ratios b[i]/a[i] and their summary. */
export function compare(a: number[], b: number[]): Comparison {
  if (a.length !== b.length || a.length === 0) {
    throw new Error(
      `compare() needs two equally long, non-empty samples: got ${a.length}, ${b.length}`,
    );
  }
  const ratios = a.map((x, i) => b[i] / x);
  return { a, b, ratios, ratio: summarize(ratios) };
}

/** Rounds to a sensible number of significant digits for a table. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '–';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs === 0) return '0';
  return Number(value.toPrecision(digits)).toString();
}

/** "min–max" of a summary, formatted. */
export function range(s: Summary, digits = 3): string {
  return `${fmt(s.min, digits)}–${fmt(s.max, digits)}`;
}

/** "IQR p25–p75" of a summary, formatted. */
export function iqr(s: Summary, digits = 3): string {
  return `IQR ${fmt(s.p25, digits)}–${fmt(s.p75, digits)}`;
}
