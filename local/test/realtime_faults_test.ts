/**
 * A broken Realtime never fails a capture: when `realtime.send()` raises, or does not exist, a
 * metric insert still succeeds and the row is stored. Replacing Realtime's function takes its
 * owner (supabase_realtime_admin on hosted), so the fault is injected by the platform superuser
 * and the insert then runs as `postgres`, in one transaction that is always rolled back.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql, superuserUrl } from './db.ts';
import { rolledBack } from './rollback.ts';

async function asPostgresAfter(setup: string, body: (tx: Sql) => Promise<void>): Promise<void> {
  const sql = connect({ url: superuserUrl(), max: 1 });
  try {
    await rolledBack(sql, async (tx) => {
      await tx.unsafe(setup);
      await tx`set local role postgres`;
      await body(tx as unknown as Sql);
    });
  } finally {
    await sql.end();
  }
}

async function insertSnapshot(tx: Sql, at: string): Promise<number> {
  await tx`select queue_health.ensure_partitions(${at}::timestamptz, 0)`;
  await tx`
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name, depth)
    values (${at}, 'default', 'pgmq', 'pgmq', 'emails', 1)`;
  const [{ n }] = await tx<{ n: number }[]>`
    select count(*)::int as n from queue_health.metric where captured_at = ${at}`;
  return n;
}

Deno.test('a metric insert succeeds and is stored when realtime.send() raises', async () => {
  await asPostgresAfter(
    `create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
       returns void language plpgsql as $$ begin raise exception 'realtime is down'; end $$`,
    async (tx) => {
      const [{ role }] = await tx<{ role: string }[]>`select current_user as role`;
      assert.equal(role, 'postgres');
      assert.equal(await insertSnapshot(tx, '2026-11-26 12:00:20+00'), 1);
    },
  );
});

Deno.test('a metric insert succeeds and is stored where realtime.send() does not exist', async () => {
  await asPostgresAfter('drop function realtime.send(jsonb, text, text, boolean)', async (tx) => {
    assert.equal(await insertSnapshot(tx, '2026-11-26 12:00:30+00'), 1);
  });
});
