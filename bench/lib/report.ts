/**
 * The benchmark's output: one row per reported number, printed as one table and written as JSON.
 *
 * @module
 */
import { fmt } from './stats.ts';

/** Whether a row met its goal. */
export type Verdict = 'met' | 'missed' | 'info' | 'skipped' | 'error';

/** One reported number. */
export interface Row {
  /** Scenario number and name, e.g. "1 capture cost". */
  scenario: string;
  /** What was measured in that scenario, e.g. "pgmq 100 × 100k". */
  case: string;
  /** The quantity, e.g. "capture ms (median)". */
  metric: string;
  /** The value, or null when skipped. */
  value: number | null;
  /** Unit of value (ms, ×, %, rps, B, …). */
  unit: string;
  /** Spread of the value: "min–max" or "IQR a–b", with n. */
  spread?: string;
  /** The goal, in words ("≥ 20×", "< 250 ms"). */
  goal?: string;
  verdict: Verdict;
  /** Why (skips, misses) or how to read the number. */
  note?: string;
}

/** Collects rows and scenario details. */
export class Report {
  readonly rows: Row[] = [];
  readonly details: Record<string, unknown> = {};

  /** Adds a row and echoes it as one progress line. */
  add(row: Row): void {
    this.rows.push(row);
    const v = row.value === null ? '' : ` ${fmt(row.value)} ${row.unit}`;
    console.error(
      `  [${row.verdict}] ${row.scenario} | ${row.case} | ${row.metric}:${v}${
        row.spread ? ` (${row.spread})` : ''
      }${row.note && row.verdict !== 'info' && row.verdict !== 'met' ? ` — ${row.note}` : ''}`,
    );
  }

  /** Adds a "skipped: <why>" row for a scenario (or part) that could not run. */
  skip(scenario: string, kase: string, why: string): void {
    this.add({
      scenario,
      case: kase,
      metric: 'skipped',
      value: null,
      unit: '',
      verdict: 'skipped',
      note: `skipped: ${why}`,
    });
  }

  /** Adds an error row for a scenario that failed part-way. */
  error(scenario: string, kase: string, e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.add({
      scenario,
      case: kase,
      metric: 'error',
      value: null,
      unit: '',
      verdict: 'error',
      note: message.split('\n')[0].slice(0, 300),
    });
  }

  /** The table as Markdown (the same text goes to the terminal and docs/benchmarks.md). */
  table(): string {
    const head = ['scenario', 'case', 'metric', 'value', 'spread', 'goal', 'verdict'];
    const lines = [
      `| ${head.join(' | ')} |`,
      `| ${head.map(() => '---').join(' | ')} |`,
    ];
    for (const r of this.rows) {
      const value = r.value === null ? '' : `${fmt(r.value)}${r.unit ? ` ${r.unit}` : ''}`;
      const verdict = r.verdict === 'skipped' || r.verdict === 'error'
        ? `${r.verdict}: ${(r.note ?? '').replace(/^skipped: /, '')}`
        : r.verdict === 'missed' && r.note
        ? `MISSED (${r.note})`
        : r.verdict === 'met'
        ? (r.note ? `met (${r.note})` : 'met')
        : r.note ?? '';
      lines.push(
        `| ${
          [r.scenario, r.case, r.metric, value, r.spread ?? '', r.goal ?? '', verdict]
            .map((c) => c.replaceAll('|', '\\|'))
            .join(' | ')
        } |`,
      );
    }
    return lines.join('\n');
  }
}
