import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function liveLatency(ctx: Context): Promise<void> {
  ctx.report.skip('live_latency', 'all', 'not written yet');
  return Promise.resolve();
}
