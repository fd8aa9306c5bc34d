import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function alertLatency(ctx: Context): Promise<void> {
  ctx.report.skip('alert_latency', 'all', 'not written yet');
  return Promise.resolve();
}
