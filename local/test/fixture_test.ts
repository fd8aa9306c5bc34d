import assert from 'node:assert/strict';
import { connect } from './db.ts';
import { createPgmqQueue, loadPgmqFixture } from './fixture.ts';

function queueName(label: string): string {
  return `qh_fixture_${label}_${crypto.randomUUID().slice(0, 8)}`;
}

Deno.test('loadPgmqFixture() can run again without losing existing queues', async () => {
  const sql = connect();
  const name = queueName('reload');
  try {
    await loadPgmqFixture(sql);
    await createPgmqQueue(sql, name);
    await sql`select pgmq.send(${name}, '{"kept": true}'::jsonb)`;
    await loadPgmqFixture(sql);
    const [{ length }] = await sql<{ length: string }[]>`
      select queue_length::text as length from pgmq.metrics(${name})`;
    assert.equal(length, '1');
  } finally {
    await sql`select pgmq.drop_queue(${name})`;
    await sql.end();
  }
});

Deno.test('createPgmqQueue() builds the requested layout without leaking the setting', async () => {
  const sql = connect({ max: 1 });
  const old = queueName('old');
  const current = queueName('new');
  const partitioned = queueName('part');
  try {
    await loadPgmqFixture(sql);
    await createPgmqQueue(sql, old, { layout: '1.4.4' });
    await createPgmqQueue(sql, current, { layout: '1.5.1' });
    await createPgmqQueue(sql, partitioned, { kind: 'partitioned' });
    const rows = await sql<{ table_name: string }[]>`
      select table_name::text from information_schema.columns
      where table_schema = 'pgmq' and column_name = 'headers'
        and table_name in (${'q_' + old}, ${'q_' + current})`;
    assert.deepEqual(rows.map((r) => r.table_name), ['q_' + current]);
    const [{ setting }] = await sql<{ setting: string | null }[]>`
      select nullif(current_setting('pgmq_fixture.version', true), '') as setting`;
    assert.equal(setting, null, 'the layout setting stays inside createPgmqQueue()');
    const [{ relkind, is_partitioned }] = await sql<
      { relkind: string; is_partitioned: boolean }[]
    >`
      select c.relkind::text, m.is_partitioned from pgmq.meta m, pg_class c
      where m.queue_name = ${partitioned} and c.oid = ${'pgmq.q_' + partitioned}::regclass`;
    assert.deepEqual({ relkind, is_partitioned }, { relkind: 'p', is_partitioned: true });
  } finally {
    for (const name of [old, current, partitioned]) await sql`select pgmq.drop_queue(${name})`;
    await sql.end();
  }
});

Deno.test('pgmq.read() skips a message another transaction holds instead of waiting', async () => {
  const worker1 = connect({ max: 1 });
  const worker2 = connect({ max: 1 });
  const name = queueName('skip');
  try {
    await loadPgmqFixture(worker1);
    await createPgmqQueue(worker1, name);
    await worker1`select pgmq.send_batch(${name}, array['{"n": 1}', '{"n": 2}']::jsonb[])`;
    await worker1.begin(async (tx) => {
      // vt 0: the message stays visible, but this open transaction holds its row lock.
      const held = await tx<{ msg_id: string }[]>`
        select msg_id::text from pgmq.read(${name}, 0, 1)`;
      assert.deepEqual(held.map((r) => r.msg_id), ['1']);
      const other = await worker2.begin(async (tx2) => {
        await tx2`set local lock_timeout = '2s'`;
        return await tx2<{ msg_id: string }[]>`select msg_id::text from pgmq.read(${name}, 30, 5)`;
      });
      assert.deepEqual(other.map((r) => r.msg_id), ['2'], 'the locked message is skipped');
    });
  } finally {
    await worker1`select pgmq.drop_queue(${name})`;
    await worker1.end();
    await worker2.end();
  }
});
