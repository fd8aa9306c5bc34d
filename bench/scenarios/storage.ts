import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function storage(ctx: Context): Promise<void> {
  ctx.report.skip('storage', 'all', 'not written yet');
  return Promise.resolve();
}
