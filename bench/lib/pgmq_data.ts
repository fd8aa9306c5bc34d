/**
 * Fills pgmq (fixture or real) queues with generated messages straight into their `q_`/`a_`
 * tables (`insert … select generate_series`), much faster than `pgmq.send`: indexes are dropped
 * and rebuilt around big inserts, and the msg_id sequence is advanced as if every message had
 * been sent. Per queue: 5 % in flight (read, vt in the future), 5 % delayed (never read, vt in the
 * future), 2 % redelivered (read_ct 2), the rest ready, spread over the last two hours, plus 10 %
 * as many archived messages in `a_<name>`. Queues of 10 000 messages or more are then vacuumed and
 * analyzed, as autovacuum would do shortly after such a load.
 *
 * @module
 */
import type { Sql } from './context.ts';

/** Options of {@link createFilledQueues}. */
export interface FillOptions {
  /** Parallel connections used to fill (default 2: one per core on the target machine). */
  parallel?: number;
  /** Progress callback. */
  onProgress?: (done: number, total: number) => void;
}

/** Names `<prefix>_<i>` for i in 0..count-1, zero-padded. */
export function queueNames(prefix: string, count: number): string[] {
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, i) => `${prefix}_${String(i).padStart(width, '0')}`);
}

/** Creates and fills one queue with `messages` messages. */
export async function fillQueue(sql: Sql, name: string, messages: number): Promise<void> {
  const q = `q_${name}`;
  const a = `a_${name}`;
  const archived = Math.floor(messages / 10);
  const big = messages > 20_000;
  await sql.begin(async (tx) => {
    await tx`set local synchronous_commit = off`;
    await tx`set local maintenance_work_mem = '128MB'`;
    await tx`select pgmq.create(${name})`;
    if (big) {
      await tx`alter table pgmq.${tx(q)} drop constraint ${tx(`${q}_pkey`)}`;
      await tx`drop index pgmq.${tx(`${q}_vt_idx`)}`;
    }
    await tx`
      insert into pgmq.${tx(q)} (msg_id, read_ct, enqueued_at, vt, message)
      overriding system value
      select g,
        case when g % 20 = 0 then 1 when g % 50 = 2 then 2 else 0 end,
        now() - interval '2 hours' + (g - ${archived}) * (interval '7200 seconds' / ${messages}),
        case
          when g % 20 = 0 then now() + interval '5 minutes'
          when g % 20 = 1 then now() + interval '1 hour'
          else now() - interval '2 hours' + (g - ${archived}) * (interval '7200 seconds' / ${messages})
        end,
        '{"job": "bench"}'::jsonb
      from generate_series(${archived + 1}::bigint, ${archived + messages}::bigint) g`;
    if (archived > 0) {
      await tx`
        insert into pgmq.${tx(a)} (msg_id, read_ct, enqueued_at, archived_at, vt, message)
        select g, 1, now() - interval '3 hours', now() - (g % 3600) * interval '1 second',
          now() - interval '3 hours', '{"job": "bench"}'::jsonb
        from generate_series(1::bigint, ${archived}::bigint) g`;
    }
    if (big) {
      await tx`alter table pgmq.${tx(q)} add constraint ${tx(`${q}_pkey`)} primary key (msg_id)`;
      await tx`create index ${tx(`${q}_vt_idx`)} on pgmq.${tx(q)} (vt)`;
    }
    await tx`select setval(pg_get_serial_sequence(${`pgmq.${q}`}, 'msg_id'), ${
      archived + messages
    })`;
  });
  // What autovacuum does after this many inserts (autovacuum_vacuum_insert_threshold): statistics
  // for the estimates, and the visibility map that keeps index-only scans off the heap. Both sides
  // of every comparison (the capture and pgmq.metrics_all()) read the same vacuumed tables.
  if (messages >= 10_000) await sql`vacuum analyze pgmq.${sql(q)}`;
}

/**
 * Creates `names.length` queues of `messages` messages each, `parallel` at a time.
 */
export async function createFilledQueues(
  sql: Sql,
  names: string[],
  messages: number,
  options: FillOptions = {},
): Promise<void> {
  const parallel = Math.max(1, options.parallel ?? 2);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < names.length) {
      const name = names[next++];
      await fillQueue(sql, name, messages);
      done++;
      if (options.onProgress && (done % Math.max(1, Math.floor(names.length / 10)) === 0)) {
        options.onProgress(done, names.length);
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}
