import type { Context } from '../lib/context.ts';

/** Placeholder until written. */
export function readPaths(ctx: Context): Promise<void> {
  ctx.report.skip('read_paths', 'all', 'not written yet');
  return Promise.resolve();
}
