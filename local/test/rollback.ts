/**
 * Runs test code in a transaction that is always rolled back, so nothing it writes outlives it.
 *
 * @module
 */
import type { Sql } from './db.ts';

/** Thrown inside the transaction to roll it back on purpose; never escapes {@link rolledBack}. */
class RollbackSignal extends Error {}

/**
 * Runs `body` in a transaction on `sql` that is rolled back whatever `body` does, and returns
 * what `body` returned. An error `body` throws is rethrown after the rollback.
 *
 * @example
 * ```ts
 * const rows = await rolledBack(sql, (tx) => tx`select * from queue_health._sample_pgmq(now())`);
 * ```
 */
export async function rolledBack<T>(sql: Sql, body: (tx: Sql) => Promise<T>): Promise<T> {
  let result: T | undefined;
  await sql.begin(async (tx) => {
    result = await body(tx as unknown as Sql);
    throw new RollbackSignal();
  }).catch((e) => {
    if (!(e instanceof RollbackSignal)) throw e;
  });
  return result as T;
}
