/**
 * Integration tests of the pgmq sampler (`queue_health._sample_pgmq`) on the pgmq fixture
 * (supabase/tests/fixtures/pgmq.sql): 1.4.4 and 1.5.1 layouts; standard, unlogged and partitioned
 * queues; a known workload compared metric by metric with what the test counted; estimates above
 * exact_count_limit; a queue dropped while it is being sampled; capture() storing the cursor.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { dbNow, later } from './clock.ts';
import { rolledBack } from './rollback.ts';
import { createPgmqQueue, loadPgmqFixture, type PgmqLayout } from './fixture.ts';
import { assertCounts as assertSampleCounts, type Expected, type Sample } from './sample.ts';

/**
 * Runs the pgmq sampler at p_now for the given queues, after putting `previous` samples' cursors
 * into the registry as capture() stores them, in a transaction that is rolled back (a capture
 * running meanwhile on the shared database neither disturbs nor sees the test's state).
 * `settings` are applied inside the same transaction.
 */
async function samplePgmq(
  sql: Sql,
  queues: string[],
  now: string,
  previous: Sample[] = [],
  settings: { exact_count_limit?: number; unchanged_reread_interval?: string } = {},
): Promise<Map<string, Sample>> {
  let rows: Sample[] = [];
  await rolledBack(sql, async (tx) => {
    if (settings.exact_count_limit !== undefined) {
      await tx`update queue_health.settings set exact_count_limit = ${settings.exact_count_limit}`;
    }
    if (settings.unchanged_reread_interval !== undefined) {
      await tx`update queue_health.settings
               set unchanged_reread_interval = ${settings.unchanged_reread_interval}::interval`;
    }
    for (const s of previous) {
      await tx`
        insert into queue_health.queue (source, source_schema, queue_name, project_id, cursor,
          first_seen_at, last_seen_at)
        values (${s.source}, ${s.source_schema}, ${s.queue_name}, 'default',
          ${JSON.stringify(s.cursor)}::text::jsonb, now(), now())
        on conflict (source, source_schema, queue_name) do update set cursor = excluded.cursor`;
    }
    rows = await tx<Sample[]>`
      select * from queue_health._sample_pgmq(${now}::text::timestamptz)
      where queue_name = any(${queues}::text[])`;
  });
  return new Map(rows.map((r) => [r.queue_name, r]));
}

/** Ground truth from a full read of the queue table (what the sampler must not do). */
async function truth(sql: Sql, queue: string, now: string) {
  const rows = await sql<{ ready: boolean; read_ct: number; age: number }[]>`
    select vt <= ${now}::text::timestamptz as ready, read_ct,
           extract(epoch from ${now}::text::timestamptz - vt)::float8 as age
    from ${sql('pgmq')}.${sql('q_' + queue.toLowerCase())}`;
  const ready = rows.filter((r) => r.ready);
  return {
    ready: ready.length,
    in_flight: rows.filter((r) => !r.ready && r.read_ct > 0).length,
    delayed: rows.filter((r) => !r.ready && r.read_ct === 0).length,
    oldest_ready_age_s: ready.length === 0 ? 0 : Math.max(...ready.map((r) => r.age)),
  };
}

function uniqueName(prefix: string): string {
  return `${prefix}_${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * Drops the test's queues, and whatever a capture() running meanwhile (pg_cron on the shared
 * database) recorded about them.
 */
async function dropQueues(sql: Sql, names: string[]) {
  for (const name of names) {
    await sql`select pgmq.drop_queue(${name}) where exists (
      select 1 from pgmq.meta where queue_name = ${name})`;
    await sql`delete from queue_health.metric where source = 'pgmq' and queue_name = ${name}`;
    await sql`delete from queue_health.queue where source = 'pgmq' and queue_name = ${name}`;
  }
}

/** The shared count checks, and pgmq cannot tell wait or run times. */
function assertCounts(sample: Sample | undefined, expected: Expected, what: string) {
  assertSampleCounts(sample, expected, what);
  assert.deepEqual(
    [sample!.wait_p50_ms, sample!.wait_p95_ms, sample!.run_p50_ms, sample!.run_p95_ms],
    [null, null, null, null],
  );
}

const SHAPES: { layout: PgmqLayout; kind: 'standard' | 'unlogged' | 'partitioned' }[] = [
  { layout: '1.4.4', kind: 'standard' },
  { layout: '1.5.1', kind: 'standard' },
  { layout: '1.5.1', kind: 'unlogged' },
  { layout: '1.4.4', kind: 'partitioned' },
  { layout: '1.5.1', kind: 'partitioned' },
];

for (const { layout, kind } of SHAPES) {
  Deno.test(`pgmq ${layout} ${kind} queue: every metric equals the workload's ground truth`, async () => {
    const sql = connect();
    await loadPgmqFixture(sql);
    const name = uniqueName(`qh_src_${kind}`);
    const dlq = `${name}_dlq`;
    try {
      await createPgmqQueue(sql, name, { layout, kind });
      await createPgmqQueue(sql, dlq, { layout, kind: 'standard' });

      // Phase 1: three messages before the first snapshot (msg_id 1..3).
      await sql`select pgmq.send(${name}, ${sql.json({ i: 0 })}) from generate_series(1, 3)`;
      const t1 = await dbNow(sql);
      const first = await samplePgmq(sql, [name, dlq], t1);
      assertCounts(first.get(name), {
        ready: 3,
        in_flight: 0,
        delayed: 0,
        enqueued: 0,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
      }, 'first sight');

      // Phase 2. msg_id 4..9 now, 10..11 in an hour.
      await sql`select pgmq.send(${name}, ${sql.json({ i: 1 })}) from generate_series(1, 6)`;
      await sql`select pgmq.send(${name}, ${sql.json({ i: 2 })}, 3600) from generate_series(1, 2)`;
      // read takes the lowest visible ids: 1..5 are in flight for 5 minutes.
      const read = await sql<{ msg_id: string }[]>`select msg_id from pgmq.read(${name}, 300, 5)`;
      assert.deepEqual(read.map((r) => Number(r.msg_id)), [1, 2, 3, 4, 5]);
      await sql`select pgmq.delete(${name}, 1::bigint)`;
      await sql`select pgmq.delete(${name}, 2::bigint)`;
      await sql`select pgmq.archive(${name}, 3::bigint)`;
      // 4 comes back and is redelivered (read_ct 2); 5 comes back and waits (read_ct 1).
      await sql`select pgmq.set_vt(${name}, 4::bigint, 0)`;
      const again = await sql<{ msg_id: string; read_ct: number }[]>`
        select msg_id, read_ct from pgmq.read(${name}, 300, 1)`;
      assert.deepEqual(again.map((r) => [Number(r.msg_id), r.read_ct]), [[4, 2]]);
      await sql`select pgmq.set_vt(${name}, 5::bigint, 0)`;
      // Two poison messages moved to the <name>_dlq queue by the application.
      await sql`select pgmq.send(${dlq}, ${sql.json({ dead: true })}) from generate_series(1, 2)`;

      const t2 = await dbNow(sql);
      const second = await samplePgmq(sql, [name, dlq], t2, [...first.values()]);
      const expected = {
        ready: 5, // 5 (abandoned, read_ct 1), 6, 7, 8, 9
        in_flight: 1, // 4
        delayed: 2, // 10, 11
        enqueued: 8,
        completed: 3, // 1, 2 deleted and 3 archived
        failed: 0,
        retried: 1, // 4 delivered a second time
        dead_lettered: 2,
      };
      assertCounts(second.get(name), expected, `${layout} ${kind}`);
      const t = await truth(sql, name, t2);
      assert.deepEqual(
        { ready: t.ready, in_flight: t.in_flight, delayed: t.delayed },
        { ready: expected.ready, in_flight: expected.in_flight, delayed: expected.delayed },
        'the table agrees with the bookkeeping',
      );
      assert.ok(
        Math.abs(second.get(name)!.oldest_ready_age_s - t.oldest_ready_age_s) < 1e-6,
        `oldest_ready_age_s ${second.get(name)!.oldest_ready_age_s} vs ${t.oldest_ready_age_s}`,
      );
      assert.equal(second.get(name)!.cursor!.archived, 1, 'archived since the previous snapshot');
      assertCounts(second.get(dlq), {
        ready: 2,
        in_flight: 0,
        delayed: 0,
        enqueued: 2,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
      }, 'dlq');
    } finally {
      await dropQueues(sql, [name, dlq]);
      await sql.end();
    }
  });
}

for (const kind of ['standard', 'partitioned'] as const) {
  Deno.test(
    `pgmq ${kind} queue above exact_count_limit: depth estimated within 10 %`,
    async () => {
      const sql = connect();
      await loadPgmqFixture(sql);
      const name = uniqueName(`qh_src_big_${kind}`);
      try {
        await createPgmqQueue(sql, name, { kind });
        const table = sql('q_' + name.toLowerCase());
        // 6000 messages: 60 % ready, 20 % in flight, 20 % delayed, interleaved; then every
        // seventh deleted, as consumers finishing out of order leave gaps in msg_id.
        await sql`
          insert into ${sql('pgmq')}.${table} (vt, read_ct, message)
          select case when g % 10 < 6 then now() - interval '1 minute'
                      else now() + interval '10 minutes' end,
                 case when g % 10 in (6, 7) then 1 else 0 end,
                 '{}'::jsonb
          from generate_series(1, 6000) g`;
        await sql`delete from ${sql('pgmq')}.${table} where msg_id % 7 = 0`;
        await sql`analyze ${sql('pgmq')}.${table}`;
        const now = await dbNow(sql);
        const t = await truth(sql, name, now);
        const truthDepth = t.ready + t.in_flight + t.delayed;
        const bound = { exact_count_limit: 50, unchanged_reread_interval: '0' };
        const check = (s: Sample, what: string) => {
          assert.equal(s.error, null);
          assert.equal(s.depth_estimated, true);
          const depth = Number(s.depth);
          assert.ok(
            Math.abs(depth - truthDepth) <= 0.1 * truthDepth,
            `${what}: depth ${depth} within 10 % of ${truthDepth}`,
          );
          assert.equal(depth, Number(s.ready) + Number(s.in_flight) + Number(s.delayed));
          // The split comes from a block sample: within 25 % per class.
          for (const k of ['ready', 'in_flight', 'delayed'] as const) {
            assert.ok(
              Math.abs(Number(s[k]) - t[k]) <= 0.25 * t[k],
              `${what}: ${k} ${s[k]} within 25 % of ${t[k]}`,
            );
          }
          // The oldest ready message is found through the vt index (or the bounded rows).
          assert.ok(
            s.oldest_ready_age_s >= 59,
            `${what}: oldest_ready_age_s ${s.oldest_ready_age_s}`,
          );
        };
        const s = (await samplePgmq(sql, [name], now, [], bound)).get(name)!;
        check(s, 'first sight');
        // Far above the bound at the previous snapshot too: estimated without counting first.
        const again = (await samplePgmq(sql, [name], now, [s], bound)).get(name)!;
        check(again, 'again');
        assert.equal(again.cursor!.scan, kind === 'standard' ? 'estimate' : 'bounded_rows');
        // Under the bound the same queue is counted exactly.
        const exact = (await samplePgmq(sql, [name], now, [], { exact_count_limit: 100000 }))
          .get(name)!;
        assert.equal(exact.depth_estimated, false);
        assert.equal(Number(exact.depth), truthDepth);
        // Shrunk below the bound since (the statistics still say 5 000 rows): counted again.
        await sql`delete from ${sql('pgmq')}.${table} where msg_id <= 5920`;
        const later = await dbNow(sql);
        const small = await truth(sql, name, later);
        const shrunk = (await samplePgmq(sql, [name], later, [again], {
          exact_count_limit: 100,
          unchanged_reread_interval: '0',
        })).get(name)!;
        assert.equal(shrunk.depth_estimated, false, 'a shrunk queue is counted exactly');
        assert.equal(Number(shrunk.depth), small.ready + small.in_flight + small.delayed);
      } finally {
        await dropQueues(sql, [name]);
        await sql.end();
      }
    },
  );
}

Deno.test(
  'pgmq big queue estimate as a prepared statement: the same numbers as planned each time; prepared again once deallocated; follows a queue dropped and created again; not past 200 in a session',
  async () => {
    // One connection: prepared statements belong to the session.
    const sql = connect({ max: 1 });
    await loadPgmqFixture(sql);
    const name = uniqueName('qh_src_prep');
    const fill = async (ready: number) => {
      const table = sql('q_' + name.toLowerCase());
      await sql`
        insert into ${sql('pgmq')}.${table} (vt, read_ct, message)
        select case when g % 10 < ${ready} then now() - interval '1 minute'
                    else now() + interval '10 minutes' end,
               case when g % 10 = 9 then 1 else 0 end, '{}'::jsonb
        from generate_series(1, 6000) g`;
      await sql`analyze ${sql('pgmq')}.${table}`;
    };
    const ours = async () =>
      (await sql<{ statement: string }[]>`
        select statement from pg_prepared_statements where name like 'queue\_health\_%'`)
        .map((r) => r.statement);
    // Ours only: DEALLOCATE ALL would also drop the statements postgres.js keeps for itself.
    const deallocateOurs = async () => {
      for (
        const { name: n } of await sql<{ name: string }[]>`
        select name from pg_prepared_statements where name like 'queue\\_health\\_%'`
      ) {
        await sql.unsafe(`deallocate ${n}`);
      }
    };
    const bound = { exact_count_limit: 50, unchanged_reread_interval: '0' };
    const gauges = (x: Sample) =>
      [x.ready, x.in_flight, x.delayed, x.oldest_ready_age_s].map(Number);
    try {
      await deallocateOurs();
      await createPgmqQueue(sql, name);
      await fill(6);
      const now = await dbNow(sql);
      const first = (await samplePgmq(sql, [name], now, [], bound)).get(name)!;
      assert.deepEqual(await ours(), [], 'counted (first sight): nothing prepared');
      // Far above the bound at the previous snapshot: the one-statement estimate, prepared.
      const prepared = (await samplePgmq(sql, [name], now, [first], bound)).get(name)!;
      assert.equal(prepared.error, null);
      assert.equal(prepared.cursor!.scan, 'estimate');
      const held = await ours();
      assert.equal(held.length, 1);
      assert.match(held[0], new RegExp(`q_${name.toLowerCase()} tablesample system`));
      // Executed again: the same statement, the same numbers (same p_now, same sample seed).
      const reused = (await samplePgmq(sql, [name], now, [first], bound)).get(name)!;
      assert.deepEqual(gauges(reused), gauges(prepared));
      assert.equal((await ours()).length, 1, 'reused, not prepared twice');
      // Planned each time (the session holds 200 statements named like ours): the same numbers.
      await deallocateOurs();
      for (let i = 0; i < 200; i++) {
        await sql.unsafe(`prepare queue_health_filler_${i} as select 1`);
      }
      const planned = (await samplePgmq(sql, [name], now, [first], bound)).get(name)!;
      assert.equal(planned.cursor!.scan, 'estimate');
      assert.deepEqual(gauges(planned), gauges(prepared));
      const full = await ours();
      assert.equal(full.length, 200, 'nothing prepared past 200');
      assert.ok(full.every((t) => t.startsWith('prepare queue_health_filler_')), 'fillers only');
      // Deallocated (as DEALLOCATE ALL or a pooler's DISCARD ALL does): prepared when next needed.
      await deallocateOurs();
      const again = (await samplePgmq(sql, [name], now, [first], bound)).get(name)!;
      assert.deepEqual(gauges(again), gauges(prepared));
      assert.equal((await ours()).length, 1);
      // The queue dropped and created again under its name, with other contents: the statement
      // (same text, same name) is planned again by PostgreSQL for the new table.
      await dropQueues(sql, [name]);
      await createPgmqQueue(sql, name);
      await fill(3);
      const later = await dbNow(sql);
      const t = await truth(sql, name, later);
      const renewed = (await samplePgmq(sql, [name], later, [first], bound)).get(name)!;
      assert.equal(renewed.error, null);
      assert.equal(renewed.cursor!.scan, 'estimate');
      assert.equal((await ours()).length, 1, 'the same statement');
      const depth = t.ready + t.in_flight + t.delayed;
      assert.ok(
        Math.abs(Number(renewed.depth) - depth) <= 0.1 * depth,
        `depth ${renewed.depth} ~ ${depth}`,
      );
      assert.ok(
        Math.abs(Number(renewed.ready) - t.ready) <= 0.25 * t.ready,
        `ready ${renewed.ready} within 25 % of ${t.ready} (the new table's, not the old one's 60 %)`,
      );
    } finally {
      await deallocateOurs().catch(() => {});
      await dropQueues(sql, [name]);
      await sql.end();
    }
  },
);

Deno.test('pgmq queue dropped while it is being sampled: no exception, other queues sampled', async () => {
  // One connection for the test's own work, so that the previous snapshots below find both
  // queues unchanged (the fingerprint counts this session's unreported writes).
  const sql = connect({ max: 1 });
  await loadPgmqFixture(sql);
  const doomed = uniqueName('qh_src_doomed');
  const keeper = uniqueName('qh_src_keeper');
  const dropper = connect({ max: 1, applicationName: 'queue-health-test-dropper' });
  try {
    await createPgmqQueue(sql, doomed);
    await createPgmqQueue(sql, keeper);
    await sql`select pgmq.send(${keeper}, '{}'::jsonb)`;
    const before = [...(await samplePgmq(sql, [doomed, keeper], await dbNow(sql))).values()];
    const unchanged = await samplePgmq(sql, [doomed, keeper], await dbNow(sql), before);
    assert.ok(
      Date.parse(String(unchanged.get(keeper)!.cursor!.read_at)) <
        Date.parse(String(unchanged.get(keeper)!.cursor!.at)),
      'both queues unchanged since the previous snapshot',
    );

    // 1. The drop holds its lock for longer than the sampler waits: this queue's sample is an
    //    error (lock timeout), the others are fine, and the sampler returns. The unchanged check
    //    cannot read the doomed queue's sequence either, so every queue is read instead.
    const reserved = await dropper.reserve();
    try {
      await reserved`begin`;
      await reserved`select pgmq.drop_queue(${doomed})`;
      const started = Date.now();
      const t1 = await dbNow(sql);
      const samples = await samplePgmq(sql, [doomed, keeper], t1, before);
      assert.ok(Date.now() - started < 10_000, 'a locked queue does not stall the sampler');
      assert.equal(Number(samples.get(keeper)!.depth), 1);
      assert.equal(
        Date.parse(String(samples.get(keeper)!.cursor!.read_at)),
        Date.parse(String(samples.get(keeper)!.cursor!.at)),
        'after a failed unchanged check every queue is read',
      );
      const d = samples.get(doomed);
      assert.ok(d === undefined || d.error !== null, 'the locked queue is skipped or an error');
      if (d) assert.match(d.error!, /lock/);

      // 2. The drop commits while the sampler waits for the lock: the queue is skipped.
      const pending = samplePgmq(sql, [doomed, keeper], await dbNow(sql));
      await new Promise((r) => setTimeout(r, 150));
      await reserved`commit`;
      const after = await pending;
      assert.equal(Number(after.get(keeper)!.depth), 1);
      assert.ok(!after.has(doomed) || after.get(doomed)!.error !== null);
    } finally {
      await reserved`rollback`.catch(() => {});
      reserved.release();
    }
    // 3. Once dropped, the queue simply is not there.
    const later = await samplePgmq(sql, [doomed, keeper], await dbNow(sql));
    assert.equal(later.has(doomed), false);
  } finally {
    await dropQueues(sql, [doomed, keeper]);
    await dropper.end();
    await sql.end();
  }
});

Deno.test('capture() stores the pgmq cursor and writes the metric rows the sampler computed', async () => {
  const sql = connect();
  await loadPgmqFixture(sql);
  const name = uniqueName('qh_src_capture');
  const [{ present }] = await sql<{ present: boolean }[]>`
    select to_regprocedure('queue_health.capture(timestamptz)') is not null as present`;
  if (!present) {
    await sql.end();
    return; // capture() is CORE's; without it there is nothing to check here
  }
  /** capture(), retried while another capture (pg_cron) holds the lock. */
  const capture = async (): Promise<string> => {
    for (let attempt = 0; attempt < 50; attempt++) {
      const now = await dbNow(sql);
      const [{ summary }] = await sql<{ summary: { status: string } }[]>`
        select queue_health.capture(${now}::text::timestamptz) as summary`;
      if (summary.status !== 'skipped') return now;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error('capture() was skipped 50 times in a row');
  };
  try {
    await createPgmqQueue(sql, name);
    await sql`select pgmq.send(${name}, '{}'::jsonb) from generate_series(1, 4)`;
    const t1 = await capture();
    await sql`select pgmq.send(${name}, '{}'::jsonb) from generate_series(1, 3)`;
    await sql`select pgmq.delete(${name}, msg_id) from pgmq.read(${name}, 30, 2)`;
    const t2 = await capture();
    const rows = await sql<
      { captured_at: string; depth: string; enqueued: string; completed: string }[]
    >`
      select captured_at::text, depth, enqueued, completed from queue_health.metric
      where source = 'pgmq' and queue_name = ${name} and captured_at >= ${t1}::text::timestamptz
      order by captured_at`;
    assert.ok(rows.length >= 2, 'one metric row per capture');
    // Another capture may have run in between: the counts add up across the rows after t1.
    const later = rows.slice(1);
    assert.equal(later.reduce((n, r) => n + Number(r.enqueued), 0), 3);
    assert.equal(later.reduce((n, r) => n + Number(r.completed), 0), 2);
    const last = rows[rows.length - 1];
    assert.equal(Number(last.depth), 4 + 3 - 2);
    const [{ cursor }] = await sql<{ cursor: { sent: number; depth: number } }[]>`
      select cursor from queue_health.queue where source = 'pgmq' and queue_name = ${name}`;
    assert.equal(cursor.sent, 7);
    assert.equal(cursor.depth, 5);
    assert.ok(t2 > t1);
  } finally {
    await dropQueues(sql, [name]);
    await sql`delete from queue_health.metric where source = 'pgmq' and queue_name = ${name}`;
    await sql`delete from queue_health.queue where source = 'pgmq' and queue_name = ${name}`;
    await sql.end();
  }
});

Deno.test('pgmq with last_read_at (1.10+): retried counts redeliveries read since the previous snapshot', async () => {
  const sql = connect();
  await loadPgmqFixture(sql);
  const name = uniqueName('qh_src_lastread');
  const table = sql('q_' + name.toLowerCase());
  try {
    await createPgmqQueue(sql, name);
    // The fixture builds 1.4/1.5 tables; add the column newer pgmq versions have and stamp it
    // the way their read() does.
    await sql`alter table ${sql('pgmq')}.${table} add column last_read_at timestamptz`;
    await sql`select pgmq.send(${name}, '{}'::jsonb) from generate_series(1, 4)`;
    // Before the first snapshot: 1 and 2 read twice (a redelivery that is old news by then).
    await sql`select * from pgmq.read(${name}, 0, 2)`;
    await sql`select * from pgmq.read(${name}, 300, 2)`;
    await sql`update ${
      sql('pgmq')
    }.${table} set last_read_at = clock_timestamp() where read_ct > 0`;
    const t1 = await dbNow(sql);
    const first = await samplePgmq(sql, [name], t1);
    assert.equal(Number(first.get(name)!.in_flight), 2);

    // After it: 3 is read for the first time (not a redelivery); 1 comes back and is read again.
    await sql`select pgmq.set_vt(${name}, 1::bigint, 0)`;
    await sql`update ${sql('pgmq')}.${table} set vt = clock_timestamp() + interval '1 hour'
              where msg_id = 4`;
    const reread = await sql<{ msg_id: string }[]>`select msg_id from pgmq.read(${name}, 300, 2)`;
    assert.deepEqual(reread.map((r) => Number(r.msg_id)), [1, 3]);
    await sql`update ${sql('pgmq')}.${table} set last_read_at = clock_timestamp()
              where msg_id in (1, 3)`;
    const t2 = await dbNow(sql);
    const second = (await samplePgmq(sql, [name], t2, [...first.values()])).get(name)!;
    assert.equal(second.error, null);
    assert.equal(Number(second.retried), 1, 'only message 1 was redelivered since the snapshot');
    assert.equal(Number(second.in_flight), 3); // 1, 2, 3
    assert.equal(Number(second.delayed), 1); // 4: vt in the future, never read
  } finally {
    await dropQueues(sql, [name]);
    await sql.end();
  }
});

Deno.test('pgmq queue unchanged since the previous snapshot: repeated without reading it, read again on any change', async () => {
  // One connection for everything: the fingerprint counts this session's writes that are not yet
  // in the shared statistics, so what it says does not depend on when they are flushed.
  const sql = connect({ max: 1 });
  await loadPgmqFixture(sql);
  const name = uniqueName('qh_src_unchanged');
  const readAt = (s: Sample) => Date.parse(String(s.cursor!.read_at));
  const quiet = { enqueued: 0, completed: 0, failed: 0, retried: 0, dead_lettered: 0 };
  try {
    await createPgmqQueue(sql, name);
    await sql`select pgmq.send(${name}, '{}'::jsonb) from generate_series(1, 4)`;
    await sql`select * from pgmq.read(${name}, 300, 1)`; // msg 1 in flight for 5 minutes
    await sql`select pgmq.send(${name}, '{}'::jsonb, 600)`; // msg 5 delayed 10 minutes
    const t1 = await dbNow(sql);
    const first = (await samplePgmq(sql, [name], t1)).get(name)!;
    assertCounts(first, { ready: 3, in_flight: 1, delayed: 1, ...quiet }, 'first sight');
    assert.equal(readAt(first), Date.parse(String(first.cursor!.at)), 'read at first sight');

    // 1. Nothing happened: the same counts, the oldest message 5 s older, the table not read.
    const t2 = await later(sql, t1, 5);
    const second = (await samplePgmq(sql, [name], t2, [first])).get(name)!;
    assertCounts(second, { ready: 3, in_flight: 1, delayed: 1, ...quiet }, 'unchanged');
    assert.equal(readAt(second), readAt(first), 'an unchanged queue is not read again');
    assert.ok(Math.abs(second.oldest_ready_age_s - first.oldest_ready_age_s - 5) < 1e-3);
    const unread = (await samplePgmq(sql, [name], t2, [first], { unchanged_reread_interval: '0' }))
      .get(name)!;
    assert.ok(readAt(unread) > readAt(first), 'unchanged_reread_interval 0 reads every queue');

    // 2. A delete (a write the statistics count): read again.
    await sql`select pgmq.delete(${name}, 2::bigint)`;
    const t3 = await later(sql, t1, 6);
    const third = (await samplePgmq(sql, [name], t3, [second])).get(name)!;
    assert.ok(readAt(third) > readAt(first), 'a delete makes the queue read again');
    assertCounts(
      third,
      { ready: 2, in_flight: 1, delayed: 1, ...quiet, completed: 1 },
      'after delete',
    );

    // 3. A message id handed out (the sequence, read every time): read again.
    await sql`select nextval(pg_get_serial_sequence(${`pgmq.q_${name.toLowerCase()}`}, 'msg_id'))`;
    const t4 = await later(sql, t1, 7);
    const fourth = (await samplePgmq(sql, [name], t4, [third])).get(name)!;
    assert.equal(readAt(fourth), Date.parse(String(fourth.cursor!.at)), 'a new msg_id is a change');
    assert.equal(Number(fourth.enqueued), 1);

    // 4. Unchanged, but the in-flight message's visibility timeout ends between the two
    //    snapshots: read again, and it is ready (read interval long enough to rule that out).
    const hour = { unchanged_reread_interval: '1 hour' };
    const t5 = await later(sql, t1, 200);
    const fifth = (await samplePgmq(sql, [name], t5, [fourth], hour)).get(name)!;
    assert.equal(readAt(fifth), readAt(fourth), 'nothing due yet: not read');
    const t6 = await later(sql, t1, 301);
    const sixth = (await samplePgmq(sql, [name], t6, [fifth], hour)).get(name)!;
    assert.ok(readAt(sixth) > readAt(fourth), 'a message became visible: read again');
    assertCounts(
      sixth,
      { ready: 3, in_flight: 0, delayed: 1, ...quiet },
      'visibility timeout over',
    );

    // 5. Unchanged for longer than unchanged_reread_interval while another session has been
    //    running one statement for longer than that (a consumer procedure that commits as it
    //    goes publishes its statistics only when it ends): read again. Without such a session
    //    the statistics show every write within seconds: read again only after five intervals,
    //    a backstop. Default interval 1 minute; 2 s (real time for the session) below.
    const t7 = await later(sql, t1, 7 + 121);
    const quietMinute = (await samplePgmq(sql, [name], t7, [fourth])).get(name)!;
    assert.equal(readAt(quietMinute), readAt(fourth), 'no long statement: not read after 2 min');
    const t7b = await later(sql, t1, 7 + 301);
    const backstop = (await samplePgmq(sql, [name], t7b, [fourth])).get(name)!;
    assert.ok(readAt(backstop) > readAt(fourth), 'read again after five intervals in any case');
    const short = { unchanged_reread_interval: '2 seconds' };
    const t7c = await later(sql, t1, 7 + 4);
    const quiet4s = (await samplePgmq(sql, [name], t7c, [fourth], short)).get(name)!;
    assert.equal(readAt(quiet4s), readAt(fourth), 'no long statement: not read after 2 intervals');
    const long = connect({ max: 1 });
    try {
      const sleeping = long`select pg_sleep(30)`.execute();
      // Bounded wait until the statement has been running for longer than the interval.
      for (let i = 0; i < 100; i++) {
        const [{ n }] = await sql<{ n: number }[]>`
          select count(*)::int as n from pg_stat_activity
          where state = 'active' and query like 'select pg_sleep(30)%'
            and query_start < clock_timestamp() - interval '2.5 seconds'`;
        if (n > 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const seventh = (await samplePgmq(sql, [name], t7c, [fourth], short)).get(name)!;
      assert.ok(readAt(seventh) > readAt(fourth), 'a long statement running: read again');
      sleeping.cancel();
      await sleeping.catch(() => {});
    } finally {
      await long.end();
    }

    // 6. TRUNCATE (pgmq's purge in newer versions) leaves the counters but not the relfilenode.
    await sql`truncate ${sql('pgmq')}.${sql('q_' + name.toLowerCase())}`;
    const t8 = await later(sql, t1, 8);
    const eighth = (await samplePgmq(sql, [name], t8, [fourth])).get(name)!;
    assert.equal(Number(eighth.depth), 0, 'a truncated queue is read again');
  } finally {
    await dropQueues(sql, [name]);
    await sql.end();
  }
});
