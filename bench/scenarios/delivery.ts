import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function delivery(ctx: Context): Promise<void> {
  ctx.report.skip('delivery', 'all', 'not written yet');
  return Promise.resolve();
}
