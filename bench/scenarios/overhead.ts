import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function overhead(ctx: Context): Promise<void> {
  ctx.report.skip('overhead', 'all', 'not written yet');
  return Promise.resolve();
}
