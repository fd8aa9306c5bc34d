/**
 * Integration tests of the pg-boss sampler (`queue_health._sample_pgboss`) against real pg-boss
 * v10, v11 and v12, each in its own schema: a known workload (send, consume, fail, retry, delay,
 * dead-letter), then every metric compared with what the test itself counted.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { dbNow, later } from './clock.ts';
import { rolledBack } from './rollback.ts';
import { commonApi, PG_BOSS_VERSIONS, type PgBossVersion, startPgBoss } from './pgboss.ts';
import { assertCounts, type Sample } from './sample.ts';

/** percentile_cont, as Postgres defines it (linear interpolation between closest ranks). */
function percentileCont(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Cursors as capture() would have stored them, kept by the test. */
type Cursors = Sample[];

/**
 * Runs the pg-boss sampler at p_now, after putting `previous` samples' cursors into the registry
 * the way capture() stores them, all in one transaction that is rolled back: a capture running
 * at the same time (pg_cron on the shared database) can neither disturb nor see the test's state.
 */
async function samplePgBoss(
  sql: Sql,
  schema: string,
  now: string,
  previous: Cursors = [],
  settings: { exact_count_limit?: number; window_read_limit?: number } = {},
  prepare?: (tx: Sql) => Promise<unknown>,
): Promise<Map<string, Sample>> {
  let rows: Sample[] = [];
  await rolledBack(sql, async (tx) => {
    if (settings.exact_count_limit !== undefined) {
      await tx`update queue_health.settings set exact_count_limit = ${settings.exact_count_limit}`;
    }
    if (settings.window_read_limit !== undefined) {
      await tx`update queue_health.settings set window_read_limit = ${settings.window_read_limit}`;
    }
    if (prepare) await prepare(tx as unknown as Sql);
    for (const s of previous) {
      await tx`
        insert into queue_health.queue (source, source_schema, queue_name, project_id, cursor,
          first_seen_at, last_seen_at)
        values (${s.source}, ${s.source_schema}, ${s.queue_name}, 'default',
          ${JSON.stringify(s.cursor)}::text::jsonb, now(), now())
        on conflict (source, source_schema, queue_name) do update set cursor = excluded.cursor`;
    }
    rows = await tx<Sample[]>`
      select * from queue_health._sample_pgboss(${now}::text::timestamptz)
      where source_schema = ${schema}`;
  });
  return new Map(rows.map((r) => [r.queue_name, r]));
}

/** Ground truth computed from the raw job rows (durations in ms as Postgres computes them). */
async function finishedDurations(
  sql: Sql,
  schema: string,
  queue: string,
  from: string,
  to: string,
): Promise<{ wait: number[]; run: number[] }> {
  const rows = await sql<{ wait_ms: number; run_ms: number }[]>`
    select (extract(epoch from started_on - created_on) * 1000)::float8 as wait_ms,
           (extract(epoch from completed_on - started_on) * 1000)::float8 as run_ms
    from ${sql(schema)}.job
    where name = ${queue} and state in ('completed', 'failed')
      and completed_on > ${from}::text::timestamptz and completed_on <= ${to}::text::timestamptz`;
  return { wait: rows.map((r) => r.wait_ms), run: rows.map((r) => r.run_ms) };
}

/** Age of the oldest ready job at p_now, from the raw rows. */
async function oldestReadyAge(sql: Sql, schema: string, queue: string, now: string) {
  const rows = await sql<{ age: number }[]>`
    select extract(epoch from ${now}::text::timestamptz - start_after)::float8 as age
    from ${sql(schema)}.job
    where name = ${queue} and state in ('created', 'retry') and start_after <= ${now}::text::timestamptz`;
  return rows.length === 0 ? 0 : Math.max(...rows.map((r) => r.age));
}

function assertClose(actual: number | null, expected: number | null, what: string) {
  if (expected === null) {
    assert.equal(actual, null, `${what}: expected null, got ${actual}`);
    return;
  }
  assert.ok(actual !== null, `${what}: expected ${expected}, got null`);
  assert.ok(Math.abs(actual - expected) < 0.01, `${what}: expected ${expected}, got ${actual}`);
}

/**
 * Removes what a capture() running meanwhile (pg_cron on the shared database) may have recorded
 * about the test's schema.
 */
async function forgetSchema(sql: Sql, schema: string) {
  await sql`delete from queue_health.metric where source = 'pgboss' and source_schema = ${schema}`;
  await sql`delete from queue_health.queue where source = 'pgboss' and source_schema = ${schema}`;
}

function uniqueSchema(version: PgBossVersion): string {
  return `qh_test_src_v${version}_${crypto.randomUUID().slice(0, 8)}`;
}

for (const version of PG_BOSS_VERSIONS) {
  Deno.test(`pg-boss v${version}: every metric equals the workload's ground truth`, async () => {
    const sql = connect();
    const schema = uniqueSchema(version);
    const pb = await startPgBoss(version, { schema, fresh: true });
    try {
      const boss = commonApi(pb);
      await boss.createQueue('work', { retryLimit: 0 });
      await boss.createQueue('flaky_dlq');
      await boss.createQueue('flaky', { retryLimit: 1, retryDelay: 0, deadLetter: 'flaky_dlq' });

      // Phase 1: some history before the first snapshot.
      for (let i = 0; i < 3; i++) await boss.send('work', { i });
      const t1 = await dbNow(sql);
      const first = await samplePgBoss(sql, schema, t1);
      assert.deepEqual([...first.keys()].sort(), ['flaky', 'flaky_dlq', 'work']);
      // First sight: gauges, and zero (not null) counts since the previous snapshot.
      assertCounts(first.get('work'), {
        ready: 3,
        in_flight: 0,
        delayed: 0,
        enqueued: 0,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
      }, 'work, first sight');
      assert.equal(first.get('work')!.wait_p50_ms, null);

      // Phase 2: the workload between two snapshots.
      for (let i = 0; i < 6; i++) await boss.send('work', { i });
      for (let i = 0; i < 2; i++) await boss.send('work', { delayed: i }, { startAfter: 3600 });
      const taken = await boss.fetch('work', { batchSize: 5 });
      assert.equal(taken.length, 5);
      await boss.complete('work', taken[0].id);
      await boss.complete('work', taken[1].id);

      await boss.send('flaky', { a: 1 });
      await boss.send('flaky', { a: 2 });
      const firstTry = await boss.fetch('flaky', { batchSize: 2 });
      assert.equal(firstTry.length, 2);
      for (const job of firstTry) await boss.fail('flaky', job.id, { why: 'first try' });
      const secondTry = await boss.fetch('flaky', { batchSize: 2 });
      assert.equal(secondTry.length, 2, 'both flaky jobs are retried');
      for (const job of secondTry) await boss.fail('flaky', job.id, { why: 'second try' });

      const t2 = await dbNow(sql);
      const second = await samplePgBoss(sql, schema, t2, [...first.values()]);
      assertCounts(second.get('work'), {
        ready: 9 - 5,
        in_flight: 5 - 2,
        delayed: 2,
        enqueued: 6 + 2,
        completed: 2,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
      }, `v${version} work`);
      assertCounts(second.get('flaky'), {
        ready: 0,
        in_flight: 0,
        delayed: 0,
        enqueued: 2,
        completed: 0,
        failed: 2,
        retried: 2,
        dead_lettered: 2,
      }, `v${version} flaky`);
      assertCounts(second.get('flaky_dlq'), {
        ready: 2,
        in_flight: 0,
        delayed: 0,
        enqueued: 2,
        completed: 0,
        failed: 0,
        retried: 0,
        dead_lettered: 0,
      }, `v${version} flaky_dlq`);

      for (const queue of ['work', 'flaky', 'flaky_dlq']) {
        const s = second.get(queue)!;
        assertClose(
          s.oldest_ready_age_s,
          await oldestReadyAge(sql, schema, queue, t2),
          `${queue} oldest_ready_age_s`,
        );
        const d = await finishedDurations(sql, schema, queue, t1, t2);
        assertClose(s.wait_p50_ms, percentileCont(d.wait, 0.5), `${queue} wait_p50_ms`);
        assertClose(s.wait_p95_ms, percentileCont(d.wait, 0.95), `${queue} wait_p95_ms`);
        assertClose(s.run_p50_ms, percentileCont(d.run, 0.5), `${queue} run_p50_ms`);
        assertClose(s.run_p95_ms, percentileCont(d.run, 0.95), `${queue} run_p95_ms`);
      }
      assert.ok(second.get('work')!.wait_p50_ms !== null, 'work has finished jobs to measure');
      assert.ok(second.get('flaky')!.run_p95_ms !== null, 'flaky has finished jobs to measure');
    } finally {
      await pb.stop({ dropSchema: true });
      await forgetSchema(sql, schema);
      await sql.end();
    }
  });

  Deno.test(
    `pg-boss v${version}: above exact_count_limit the depth is flagged estimated`,
    async () => {
      const sql = connect();
      const schema = uniqueSchema(version);
      const pb = await startPgBoss(version, {
        schema,
        fresh: true,
        // v11+ refresh pg-boss's queue counts cache every second while supervising.
        supervise: version !== 10,
        constructorOptions: version === 10 ? {} : {
          superviseIntervalSeconds: 1,
          monitorIntervalSeconds: 1,
          maintenanceIntervalSeconds: 1,
        },
      });
      try {
        const boss = commonApi(pb);
        await boss.createQueue('big');
        const beforeSends = await dbNow(sql);
        for (let i = 0; i < 7; i++) await boss.send('big', { i });
        for (let i = 0; i < 4; i++) await boss.send('big', { i }, { startAfter: 3600 });
        const sentAt = await dbNow(sql);
        if (version !== 10) {
          // Wait (bounded) for pg-boss's monitor to refresh the cache after the sends.
          const deadline = Date.now() + 15_000;
          for (;;) {
            const [{ fresh }] = await sql<{ fresh: boolean }[]>`
              select coalesce(monitor_on > ${sentAt}::text::timestamptz, false) as fresh
              from ${sql(schema)}.queue where name = 'big'`;
            if (fresh) break;
            assert.ok(Date.now() < deadline, 'pg-boss refreshed its queue cache within 15 s');
            await new Promise((r) => setTimeout(r, 200));
          }
        }
        // Settings changes stay inside this transaction: other tests never see them.
        await rolledBack(sql, async (tx) => {
          // The gauges' bound, and v12's per-window read bound for the counts since the previous
          // snapshot.
          await tx`update queue_health.settings set exact_count_limit = 3, window_read_limit = 3`;
          // A previous snapshot from before the sends, so the 11 jobs count as enqueued since.
          await tx`
            insert into queue_health.queue (source, source_schema, queue_name, project_id, cursor)
            values ('pgboss', ${schema}, 'big', 'default',
              jsonb_build_object('at', ${beforeSends}::text::timestamptz))
            on conflict (source, source_schema, queue_name) do update set cursor = excluded.cursor`;
          const now = await dbNow(tx as unknown as Sql);
          const [s] = await tx<Sample[]>`
            select * from queue_health._sample_pgboss(${now}::text::timestamptz)
            where source_schema = ${schema} and queue_name = 'big'`;
          assert.equal(s.error, null);
          assert.equal(s.depth_estimated, true);
          const counts = (s.cursor as { counts: Record<string, string> }).counts;
          const capped = (s.cursor as { capped: string[] }).capped;
          if (version === 12) {
            // Above window_read_limit, v12 extrapolates from its (name, created_on) index, and says so.
            assert.deepEqual(capped, ['enqueued']);
            assert.ok(Number(s.enqueued) >= 3, `enqueued ${s.enqueued} is at least the bound`);
          } else {
            // v10/v11 count everything since the previous snapshot in one exact pass.
            assert.deepEqual(capped, []);
            assert.equal(Number(s.enqueued), 11);
          }
          if (version === 10) {
            // No cache in v10: the table statistics' estimate, never below what was counted.
            assert.equal(counts.ready, 'statistics');
            assert.ok(Number(s.ready) >= 3 && Number(s.delayed) >= 3);
          } else {
            // A fresh cache holds exactly what pg-boss counted after the sends.
            // v11 has no index on state: it takes in_flight from a fresh cache whatever its size.
            assert.deepEqual(counts, {
              ready: 'cache',
              delayed: 'cache',
              in_flight: version === 11 ? 'cache' : 'exact',
            });
            assert.equal(Number(s.ready), 7);
            assert.equal(Number(s.delayed), 4);
            assert.equal(Number(s.depth), 11);
          }
          assert.equal(Number(s.in_flight), 0);

          // A stale cache is not used: the table statistics answer instead.
          await tx`update queue_health.settings set pgboss_cache_max_age = '0 seconds'`;
          const later = await dbNow(tx as unknown as Sql);
          const [stale] = await tx<Sample[]>`
            select * from queue_health._sample_pgboss(${later}::text::timestamptz)
            where source_schema = ${schema} and queue_name = 'big'`;
          assert.equal(stale.depth_estimated, true);
          assert.equal(
            (stale.cursor as { counts: Record<string, string> }).counts.ready,
            'statistics',
          );
        });
      } finally {
        await pb.stop({ dropSchema: true });
        await forgetSchema(sql, schema);
        await sql.end();
      }
    },
  );
}

/** The qualified name of the pg-boss schema's job state enum (for casts in raw inserts). */
async function jobStateType(sql: Sql, schema: string): Promise<string> {
  const [{ state_type }] = await sql<{ state_type: string }[]>`
    select atttypid::regtype::text as state_type from pg_attribute
    where attrelid = ${schema + '.job'}::regclass and attname = 'state'`;
  return state_type;
}

/**
 * A fresh pg-boss 12 schema with one queue, `busy`, whose jobs `jobs` inserts (raw SQL, given the
 * schema and the qualified name of its state enum), sampled once a minute ago; `check` gets a
 * sampler for now that has that first snapshot as the previous one.
 */
async function withBusyV12Queue(
  jobs: (schema: string, stateType: string) => string,
  check: (
    sampleNow: (
      settings?: { exact_count_limit?: number; window_read_limit?: number },
    ) => Promise<Sample>,
  ) => Promise<void>,
): Promise<void> {
  const sql = connect();
  const schema = uniqueSchema(12);
  const pb = await startPgBoss(12, { schema, fresh: true });
  try {
    await commonApi(pb).createQueue('busy');
    await sql.unsafe(jobs(schema, await jobStateType(sql, schema)));
    const [{ earlier, now }] = await sql<{ earlier: string; now: string }[]>`
      select (now() - interval '1 minute')::text as earlier, now()::text as now`;
    const first = (await samplePgBoss(sql, schema, earlier)).get('busy')!;
    await check(async (settings = {}) =>
      (await samplePgBoss(sql, schema, now, [first], settings)).get('busy')!
    );
  } finally {
    await pb.stop({ dropSchema: true });
    await forgetSchema(sql, schema);
    await sql.end();
  }
}

Deno.test(
  'pg-boss v12 retried reads at most 1 000 live jobs from the heap: beyond them a lower bound, flagged',
  () =>
    withBusyV12Queue(
      // 1 200 jobs in flight, each a retry attempt started 30 s ago: more than the live-job
      // budget, far less than exact_count_limit (10 000).
      (schema, stateType) =>
        `insert into ${schema}.job (name, data, state, start_after, started_on, retry_count)
         select 'busy', '{}'::jsonb, 'active'::${stateType}, now() - interval '1 hour',
           now() - interval '30 seconds', 1
         from generate_series(1, 1200)`,
      async (sampleNow) => {
        const s = await sampleNow();
        assert.equal(s.error, null);
        // The gauge is an index-only count: exact below the bound.
        assert.equal(Number(s.in_flight), 1200);
        assert.equal(s.depth_estimated, false);
        // retry_count and started_on are in no index: 1 000 heap rows read, a lower bound.
        assert.equal(Number(s.retried), 1000);
        assert.deepEqual((s.cursor as { capped: string[] }).capped, ['retried']);
      },
    ),
);

Deno.test(
  'pg-boss v12 reads at most window_read_limit jobs per window: counts extrapolated above it, exact below, flagged',
  () =>
    withBusyV12Queue(
      // 3 000 jobs created and completed in the last minute, one every 10 ms from 50 s ago, 1 s
      // each: more than the default window_read_limit (2 000), far less than exact_count_limit.
      (schema, stateType) =>
        `insert into ${schema}.job (name, data, state, created_on, start_after, started_on, completed_on)
         select 'busy', '{}'::jsonb, 'completed'::${stateType}, t, t, t + interval '100 ms', t + interval '1 s'
         from generate_series(1, 3000) i,
           lateral (select now() - interval '50 seconds' + i * interval '10 ms' as t) x`,
      async (sampleNow) => {
        const bounded = await sampleNow();
        assert.equal(bounded.error, null);
        // The newest 2 000 of each, scaled to the window by the time they span: close to the truth.
        for (
          const [name, value] of [['enqueued', bounded.enqueued], [
            'completed',
            bounded.completed,
          ]] as const
        ) {
          assert.ok(
            Number(value) >= 2000 && Math.abs(Number(value) - 3000) <= 450,
            `${name} ${value} is extrapolated near 3 000`,
          );
        }
        // retried too: the finished jobs not read may hold retry attempts (a lower bound).
        assert.deepEqual((bounded.cursor as { capped: string[] }).capped, [
          'enqueued',
          'finished',
          'retried',
        ]);
        // The percentiles come from the 2 000 jobs read (all took 100 ms to start, 900 ms to run).
        assertClose(bounded.wait_p95_ms, 100, 'wait_p95_ms from the jobs read');
        assertClose(bounded.run_p50_ms, 900, 'run_p50_ms from the jobs read');

        const exact = await sampleNow({ window_read_limit: 5000 });
        assert.equal(Number(exact.enqueued), 3000);
        assert.equal(Number(exact.completed), 3000);
        assert.deepEqual((exact.cursor as { capped: string[] }).capped, []);
      },
    ),
);

/** Gauges from the raw job rows (what the sampler must not read on a big queue). */
async function gaugeTruth(sql: Sql, schema: string, queue: string, now: string) {
  const [t] = await sql<{ ready: number; delayed: number; in_flight: number }[]>`
    select
      count(*) filter (where state in ('created', 'retry') and start_after <= ${now}::text::timestamptz)::int as ready,
      count(*) filter (where state in ('created', 'retry') and start_after > ${now}::text::timestamptz)::int as delayed,
      count(*) filter (where state = 'active')::int as in_flight
    from ${sql(schema)}.job where name = ${queue}`;
  return t;
}

for (const version of PG_BOSS_VERSIONS) {
  Deno.test(
    `pg-boss v${version} queue far above exact_count_limit: estimated without counting, counted again once shrunk`,
    async () => {
      const sql = connect();
      const schema = uniqueSchema(version);
      // No supervisor: pg-boss's counts cache stays stale, the table statistics answer (the
      // cache is put in by hand below).
      const pb = await startPgBoss(version, { schema, fresh: true });
      try {
        await commonApi(pb).createQueue('huge');
        const state_type = await jobStateType(sql, schema);
        // 1 000 jobs, interleaved: 150 in flight, 200 delayed, 650 ready (the oldest an hour ago).
        await sql.unsafe(
          `insert into ${schema}.job (name, data, state, start_after, started_on)
           select 'huge', '{}'::jsonb,
             (case when g % 20 < 3 then 'active' else 'created' end)::${state_type},
             case when g % 20 between 3 and 6 then now() + interval '1 hour'
                  else now() - interval '1 hour' + g * interval '1 second' end,
             case when g % 20 < 3 then now() - interval '1 minute' end
           from generate_series(1, 1000) g`,
        );
        await sql.unsafe(`analyze ${schema}.job`);
        const bound = { exact_count_limit: 50 };
        const now = await dbNow(sql);
        const t = await gaugeTruth(sql, schema, 'huge', now);
        assert.deepEqual(t, { ready: 650, delayed: 200, in_flight: 150 });
        const oldest = await oldestReadyAge(sql, schema, 'huge', now);
        const check = (s: Sample, source: string, what: string) => {
          assert.equal(s.error, null, what);
          assert.equal(s.depth_estimated, true, what);
          const c = s.cursor as { counts: Record<string, string> } & Record<string, unknown>;
          assert.deepEqual(c.counts, { ready: source, delayed: source, in_flight: source }, what);
          for (const k of ['ready', 'delayed', 'in_flight'] as const) {
            // The statistics take state and start_after as independent: within 25 %.
            assert.ok(
              Math.abs(Number(s[k]) - t[k]) <= 0.25 * t[k],
              `${what}: ${k} ${s[k]} within 25 % of ${t[k]}`,
            );
            assert.equal(Number(c[k]), Number(s[k]), `${what}: the cursor keeps ${k}`);
          }
          assert.equal(Number(s.depth), Number(s.ready) + Number(s.delayed) + Number(s.in_flight));
          // The oldest ready job stays exact: the first entry of the index.
          assertClose(s.oldest_ready_age_s, oldest, `${what}: oldest_ready_age_s`);
        };

        // First sight: counted up to the bound, then estimated.
        const first = (await samplePgBoss(sql, schema, now, [], bound)).get('huge')!;
        check(first, 'statistics', 'first sight');
        assert.equal((first.cursor as { v: number }).v, 2);
        assert.deepEqual((first.cursor as { skipped: string[] }).skipped, []);
        // Small at its previous snapshot (the schema's statement is then built without the table
        // statistics) and above the bound now: the full statement answers, as on first sight.
        const wasSmall = {
          ...first,
          cursor: {
            ...(first.cursor as Record<string, unknown>),
            ready: 3,
            delayed: 2,
            in_flight: 1,
            counts: { ready: 'exact', delayed: 'exact', in_flight: 'exact' },
          },
        };
        const [{ lean, full }] = await sql<{ lean: string; full: string }[]>`
          select queue_health._pgboss_sample_sql(${schema}, l.layout, null, false) as lean,
                 queue_health._pgboss_sample_sql(${schema}, l.layout) as full
          from queue_health._pgboss_schemas() l where l.schema_name = ${schema}`;
        assert.ok(!lean.includes('pg_stats') && full.includes('pg_stats'));
        const grown = (await samplePgBoss(sql, schema, now, [wasSmall], bound)).get('huge')!;
        check(grown, 'statistics', 'grown since a small snapshot');
        // Far above the bound at the previous snapshot and still by the statistics: not counted.
        const again = (await samplePgBoss(sql, schema, now, [first], bound)).get('huge')!;
        check(again, 'statistics', 'again');
        assert.deepEqual(
          (again.cursor as { skipped: string[] }).skipped,
          ['ready', 'delayed', 'in_flight'],
        );
        // v12 reads live jobs for retried only up to the bound: with in_flight not counted they
        // are not read at all, and retried (0 here: nothing was retried) is flagged as capped.
        assert.equal(Number(again.retried), 0);
        assert.deepEqual(
          (again.cursor as { capped: string[] }).capped,
          version === 12 ? ['retried'] : [],
        );

        if (version !== 10) {
          // A fresh pg-boss counts cache is the estimate when there is one.
          const [cols] = await sql<{ ready_count: boolean; blocked_count: boolean }[]>`
            select bool_or(attname = 'ready_count') as ready_count,
                   bool_or(attname = 'blocked_count') as blocked_count
            from pg_attribute where attrelid = ${schema + '.queue'}::regclass and not attisdropped`;
          const cache = { ready: 640, delayed: 210, in_flight: 155 };
          const cached = (await samplePgBoss(sql, schema, now, [again], bound, async (tx) => {
            await tx.unsafe(
              `update ${schema}.queue set monitor_on = $1::text::timestamptz,
                 queued_count = $2, deferred_count = $3, active_count = $4
                 ${cols.ready_count ? ', ready_count = $5' : ''}
                 ${cols.blocked_count ? ', blocked_count = 0' : ''}
               where name = 'huge'`,
              [
                now,
                cache.ready + cache.delayed,
                cache.delayed,
                cache.in_flight,
                ...(cols.ready_count ? [cache.ready] : []),
              ],
            );
          })).get('huge')!;
          check(cached, 'cache', 'cache');
          assert.deepEqual(
            [Number(cached.ready), Number(cached.delayed), Number(cached.in_flight)],
            [cache.ready, cache.delayed, cache.in_flight],
          );
          assert.deepEqual(
            (cached.cursor as { skipped: string[] }).skipped,
            ['ready', 'delayed', 'in_flight'],
          );
        }

        // Shrunk below the bound since (and analyzed): counted exactly again.
        // 35 jobs left: the oldest 30 (ready or in flight) and 5 delayed.
        await sql.unsafe(`delete from ${schema}.job where name = 'huge' and id not in (
          (select id from ${schema}.job where name = 'huge' order by start_after limit 30)
          union all
          (select id from ${schema}.job where name = 'huge' and start_after > now() limit 5))`);
        await sql.unsafe(`analyze ${schema}.job`);
        const later = await dbNow(sql);
        const small = await gaugeTruth(sql, schema, 'huge', later);
        assert.ok(small.ready + small.delayed + small.in_flight < 100, JSON.stringify(small));
        const shrunk = (await samplePgBoss(sql, schema, later, [again], bound)).get('huge')!;
        assert.equal(shrunk.error, null);
        assert.equal(shrunk.depth_estimated, false, 'a shrunk queue is counted exactly');
        assert.deepEqual((shrunk.cursor as { skipped: string[] }).skipped, []);
        assert.deepEqual(
          [Number(shrunk.ready), Number(shrunk.delayed), Number(shrunk.in_flight)],
          [small.ready, small.delayed, small.in_flight],
        );
        assertClose(
          shrunk.oldest_ready_age_s,
          await oldestReadyAge(sql, schema, 'huge', later),
          'shrunk: oldest_ready_age_s',
        );
      } finally {
        await pb.stop({ dropSchema: true });
        await forgetSchema(sql, schema);
        await sql.end();
      }
    },
  );
}

Deno.test('pg-boss sampler skips excluded schemas (Supabase Storage keeps one in pgboss_v10)', async () => {
  const sql = connect();
  const schema = uniqueSchema(12);
  const pb = await startPgBoss(12, { schema, fresh: true });
  try {
    await commonApi(pb).createQueue('hidden');
    await rolledBack(sql, async (tx) => {
      const before = await tx<Sample[]>`
        select * from queue_health._sample_pgboss() where source_schema = ${schema}`;
      assert.equal(before.length, 1);
      await tx`update queue_health.settings
        set excluded_pgboss_schemas = excluded_pgboss_schemas || ${schema}::text`;
      const after = await tx<Sample[]>`
        select * from queue_health._sample_pgboss() where source_schema = ${schema}`;
      assert.equal(after.length, 0);
    });
  } finally {
    await pb.stop({ dropSchema: true });
    await forgetSchema(sql, schema);
    await sql.end();
  }
});

Deno.test('pg-boss v10 queue deleted while it is being sampled: no exception, other queues sampled', async () => {
  const sql = connect({ max: 3 });
  const schema = uniqueSchema(10);
  const pb = await startPgBoss(10, { schema, fresh: true });
  const dropper = connect({ max: 1, applicationName: 'queue-health-test-dropper' });
  try {
    const boss = commonApi(pb);
    await boss.createQueue('doomed');
    await boss.createQueue('keeper');
    await boss.send('doomed', { a: 1 });
    await boss.send('keeper', { a: 1 });
    const [{ partition }] = await sql<{ partition: string }[]>`
      select partition_name as partition from ${sql(schema)}.queue where name = 'doomed'`;

    const before = await samplePgBoss(sql, schema, await dbNow(sql));
    // What deleteQueue() does in v10 (drop the queue's partition, delete its row), held open.
    const reserved = await dropper.reserve();
    try {
      await reserved`begin`;
      await reserved`drop table ${sql(schema)}.${sql(partition)}`;
      await reserved`delete from ${sql(schema)}.queue where name = 'doomed'`;

      // 1. The locks outlast the sampler's wait (deleteQueue() also locks the schema's queue
      //    table, so listing the queues waits too): every queue the registry knows comes back
      //    as an error instead of an exception or a stalled capture, and none goes missing
      //    (capture() would take a missing queue for a dropped one).
      const started = Date.now();
      const during = await samplePgBoss(sql, schema, await dbNow(sql), [...before.values()]);
      assert.ok(Date.now() - started < 10_000, 'a locked schema does not stall the sampler');
      assert.deepEqual([...during.keys()].sort(), ['doomed', 'keeper']);
      for (const s of during.values()) {
        assert.ok(s.error === null || /lock/.test(s.error), `${s.queue_name}: ${s.error}`);
      }

      // 2. The delete commits while the sampler waits: the queue is skipped.
      const pending = samplePgBoss(sql, schema, await dbNow(sql));
      await new Promise((r) => setTimeout(r, 150));
      await reserved`commit`;
      const after = await pending;
      assert.equal(Number(after.get('keeper')!.depth), 1);
      assert.equal(after.has('doomed'), false);
    } finally {
      await reserved`rollback`.catch(() => {});
      reserved.release();
    }
  } finally {
    await pb.stop({ dropSchema: true });
    await forgetSchema(sql, schema);
    await dropper.end();
    await sql.end();
  }
});

/** A sample's gauges, as numbers. */
function gauges(s: Sample) {
  return { ready: Number(s.ready), in_flight: Number(s.in_flight), delayed: Number(s.delayed) };
}

Deno.test(
  'pg-boss per-schema statement prepared once per session: reused with the same numbers, a queue created since included, prepared again once deallocated, not past 200 in a session',
  async () => {
    // One connection: prepared statements belong to the session.
    const sql = connect({ max: 1 });
    const schema = uniqueSchema(12);
    const pb = await startPgBoss(12, { schema, fresh: true });
    // This schema's statements (other tests' schemas may be sampled by the same calls).
    const ours = async () => (await sql<{ name: string; statement: string }[]>`
        select name, statement from pg_prepared_statements where name like 'queue\\_health\\_%'`);
    const mine = async () => (await ours()).filter((r) => r.statement.includes(schema));
    // Ours only: DEALLOCATE ALL would also drop the statements postgres.js keeps for itself.
    const deallocateOurs = async () => {
      for (const { name } of await ours()) await sql.unsafe(`deallocate ${name}`);
    };
    const numbers = (m: Map<string, Sample>) =>
      [...m.values()].map((x) => [x.queue_name, x.ready, x.in_flight, x.delayed, x.depth].join(' '))
        .sort();
    try {
      await deallocateOurs();
      const api = commonApi(pb);
      await api.createQueue('one');
      await api.send('one', { n: 1 });
      await api.send('one', { n: 2 });
      const now = await dbNow(sql);
      const first = await samplePgBoss(sql, schema, now);
      assert.equal(Number(first.get('one')!.ready), 2);
      assert.equal((await mine()).length, 1, 'prepared at first use');
      const reused = await samplePgBoss(sql, schema, now);
      assert.deepEqual(numbers(reused), numbers(first));
      assert.equal((await mine()).length, 1, 'reused, not prepared twice');
      // The statement is not specific to the queues it first saw.
      await api.createQueue('two');
      await api.send('two', { n: 3 });
      const more = await samplePgBoss(sql, schema, await dbNow(sql));
      assert.equal(Number(more.get('two')!.ready), 1);
      assert.equal((await mine()).length, 1);
      // Deallocated (DEALLOCATE ALL, a pooler's DISCARD ALL): prepared again when next needed.
      await deallocateOurs();
      const again = await samplePgBoss(sql, schema, now);
      assert.equal((await mine()).length, 1);
      assert.equal(Number(again.get('one')!.ready), 2);
      // 200 statements named like ours: planned each time, the same numbers, nothing prepared.
      await deallocateOurs();
      for (let i = 0; i < 200; i++) {
        await sql.unsafe(`prepare queue_health_filler_${i} as select 1`);
      }
      const planned = await samplePgBoss(sql, schema, now);
      assert.deepEqual(numbers(planned), numbers(again));
      assert.equal((await mine()).length, 0, 'nothing prepared past 200');
    } finally {
      await deallocateOurs().catch(() => {});
      await pb.stop({ dropSchema: true });
      await forgetSchema(sql, schema);
      await sql.end();
    }
  },
);

Deno.test(
  'pg-boss v12 queue unchanged since it was read: previous gauges repeated without counting; a send, a finish, any other write, a delayed job falling due or the re-read interval makes it read again',
  async () => {
    const sql = connect();
    const schema = uniqueSchema(12);
    const pb = await startPgBoss(12, { schema, fresh: true });
    try {
      const api = commonApi(pb);
      await api.createQueue('quiet');
      await api.send('quiet', { n: 1 });
      await api.send('quiet', { n: 2 });
      await api.send('quiet', { n: 3 }, { startAfter: 120 }); // due in two minutes
      assert.equal((await api.fetch('quiet')).length, 1);
      // pg-boss's sessions end, so their table statistics are published (a session publishes
      // them up to ~10 s after its last statement, at once when it ends).
      await pb.stop();
      const readAt = (s: Sample) => String((s.cursor as { read_at: string }).read_at);
      const t0 = await dbNow(sql);
      const first = (await samplePgBoss(sql, schema, t0)).get('quiet')!;
      assert.equal(first.error, null);
      assert.deepEqual(gauges(first), { ready: 1, in_flight: 1, delayed: 1 });
      assert.equal(Date.parse(readAt(first)), Date.parse(t0));

      // Ten seconds later, nothing written: the previous snapshot repeated, its age moving on.
      const t1 = await later(sql, t0, 10);
      const same = (await samplePgBoss(sql, schema, t1, [first])).get('quiet')!;
      assert.equal(same.error, null);
      assert.deepEqual(gauges(same), { ready: 1, in_flight: 1, delayed: 1 });
      assert.equal(readAt(same), readAt(first), 'not read: read_at stays');
      assert.equal(Number(same.enqueued), 0);
      assert.equal(Number(same.completed), 0);
      assertClose(
        same.oldest_ready_age_s,
        Number(first.oldest_ready_age_s) + 10,
        'oldest_ready_age_s',
      );
      // Still unchanged from the repeated snapshot (its cursor keeps read_at).
      const t2 = await later(sql, t0, 20);
      const again = (await samplePgBoss(sql, schema, t2, [same])).get('quiet')!;
      assert.equal(readAt(again), readAt(first));

      // A delayed job fell due since: read, and the job counts as ready.
      const due = (await samplePgBoss(sql, schema, await later(sql, t0, 125), [same])).get(
        'quiet',
      )!;
      assert.deepEqual(gauges(due), { ready: 2, in_flight: 1, delayed: 0 });
      assert.ok(Date.parse(readAt(due)) > Date.parse(t0), 'read again');

      const published = async (text: string) => {
        const session = await sql.reserve();
        try {
          await session.unsafe(text);
          await session`select pg_stat_force_next_flush()`; // published before it returns
        } finally {
          session.release();
        }
      };

      // A send (a job created after read_at) is seen at once, statistics published or not; the
      // counts since the last read include it.
      await published(`insert into ${schema}.job (name, data) values ('quiet', '{}')`);
      const sent = (await samplePgBoss(sql, schema, t1, [first])).get('quiet')!;
      assert.deepEqual(gauges(sent), { ready: 2, in_flight: 1, delayed: 1 });
      assert.equal(Number(sent.enqueued), 1);
      assert.ok(Date.parse(readAt(sent)) > Date.parse(t0), 'read again');

      // Any other write (here a job fetched by hand: neither created_on nor completed_on moves)
      // is seen through the table statistics, once the writing session has published them.
      const tb = await dbNow(sql);
      const base = (await samplePgBoss(sql, schema, tb)).get('quiet')!;
      assert.deepEqual(gauges(base), { ready: 2, in_flight: 1, delayed: 1 });
      const tb1 = await later(sql, tb, 5);
      assert.equal(
        readAt((await samplePgBoss(sql, schema, tb1, [base])).get('quiet')!),
        readAt(base),
      );
      await published(
        `update ${schema}.job set state = 'active', started_on = now()
          where id = (select id from ${schema}.job where name = 'quiet' and state = 'created'
                        and start_after <= now() limit 1)`,
      );
      const moved = (await samplePgBoss(sql, schema, tb1, [base])).get('quiet')!;
      assert.ok(Date.parse(readAt(moved)) > Date.parse(tb), 'the statistics moved: read again');
      assert.deepEqual(gauges(moved), { ready: 1, in_flight: 2, delayed: 1 });

      // A job finished after read_at: seen at once too, and counted.
      const td = await dbNow(sql);
      const base3 = (await samplePgBoss(sql, schema, td)).get('quiet')!;
      await published(
        `update ${schema}.job set state = 'completed', completed_on = now()
          where id = (select id from ${schema}.job where name = 'quiet' and state = 'active' limit 1)`,
      );
      const finished = (await samplePgBoss(sql, schema, await later(sql, td, 5), [base3])).get(
        'quiet',
      )!;
      assert.ok(Date.parse(readAt(finished)) > Date.parse(td), 'a finish: read again');
      assert.deepEqual(gauges(finished), { ready: 1, in_flight: 1, delayed: 1 });
      assert.equal(Number(finished.completed), 1);

      // Unchanged, but not read for longer than the re-read interval (five times
      // unchanged_reread_interval while no statement has run longer than it): read.
      const tc = await dbNow(sql);
      const base2 = (await samplePgBoss(sql, schema, tc)).get('quiet')!;
      const tenSeconds = (tx: Sql) =>
        tx`update queue_health.settings set unchanged_reread_interval = '10 seconds'`;
      const quiet =
        (await samplePgBoss(sql, schema, await later(sql, tc, 5), [base2], {}, tenSeconds))
          .get('quiet')!;
      assert.equal(readAt(quiet), readAt(base2), 'unchanged within the interval');
      const stale =
        (await samplePgBoss(sql, schema, await later(sql, tc, 55), [base2], {}, tenSeconds))
          .get('quiet')!;
      assert.ok(Date.parse(readAt(stale)) > Date.parse(tc), 'read once the interval has passed');
      // unchanged_reread_interval = 0: every queue read on every capture.
      const always = (await samplePgBoss(sql, schema, await later(sql, tc, 5), [base2], {}, (tx) =>
        tx`update queue_health.settings set unchanged_reread_interval = '0'`)).get('quiet')!;
      assert.ok(Date.parse(readAt(always)) > Date.parse(tc), 'read with the interval at 0');
    } finally {
      await pb.stop({ dropSchema: true });
      await forgetSchema(sql, schema);
      await sql.end();
    }
  },
);

for (const version of [11, 12] as const) {
  Deno.test(
    `pg-boss v${version}: queues in job_common are read from it directly, a queue with its own partition through job; both sampled`,
    async () => {
      const sql = connect();
      const schema = uniqueSchema(version);
      const pb = await startPgBoss(version, { schema, fresh: true });
      try {
        const api = commonApi(pb);
        await api.createQueue('shared');
        // A dedicated partition (createQueue's partition option, pg-boss 11+).
        await (pb.boss as unknown as {
          createQueue(name: string, options: { partition: boolean }): Promise<void>;
        }).createQueue('own', { partition: true });
        const [{ own_table }] = await sql<{ own_table: string }[]>`
          select table_name as own_table from ${sql(schema)}.queue where name = 'own'`;
        assert.notEqual(own_table, 'job_common');
        for (const q of ['shared', 'own']) {
          await api.send(q, { n: 1 });
          await api.send(q, { n: 2 });
          await api.send(q, { n: 3 }, { startAfter: 3600 });
          assert.equal((await api.fetch(q)).length, 1);
        }
        const now = await dbNow(sql);
        const samples = await samplePgBoss(sql, schema, now);
        for (const q of ['shared', 'own']) {
          const s = samples.get(q);
          assert.ok(s, `${q} sampled`);
          assert.equal(s.error, null);
          assert.deepEqual(gauges(s), { ready: 1, in_flight: 1, delayed: 1 }, q);
        }
        // The statements behind it: job_common's queues from job_common, the others through job.
        const [{ common, other }] = await sql<{ common: string; other: string }[]>`
          select queue_health._pgboss_sample_sql(${schema}, l.layout, null, false, 'job_common') as common,
                 queue_health._pgboss_sample_sql(${schema}, l.layout, null, false, null, 'job_common') as other
          from queue_health._pgboss_schemas() l where l.schema_name = ${schema}`;
        assert.ok(common.includes(`${schema}.job_common j`) && !common.includes(`${schema}.job j`));
        assert.ok(other.includes(`${schema}.job j`) && !other.includes(`${schema}.job_common j`));
      } finally {
        await pb.stop({ dropSchema: true });
        await forgetSchema(sql, schema);
        await sql.end();
      }
    },
  );
}
