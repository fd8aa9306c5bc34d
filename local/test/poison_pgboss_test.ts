/**
 * Poison jobs with real pg-boss v10, v11 and v12 (issue 22): a worker whose handler always fails
 * makes pg-boss retry its jobs; once a job has been taken settings.poison_read_count (3) times it
 * is poison, and the pg-boss sampler's cursor counts it (`poison`) with the creation time of the
 * oldest (`oldest_poison_at`), which capture() turns into metric.poison and oldest_poison_age_s.
 * The expected values come from the job rows themselves (state retry or active, retry_count + 1
 * >= 3); a queue whose handler succeeds has none.
 *
 * Above settings.exact_count_limit (lowered for the test, not thousands of jobs more) the
 * sampler estimates: the share of poison among a sample of up to 1000 live jobs in primary-key
 * (random id) order times the depth, flagged `poison_estimated`; below it the count is exact and
 * not flagged.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { dbNow } from './clock.ts';
import { rolledBack } from './rollback.ts';
import { commonApi, PG_BOSS_VERSIONS, startPgBoss } from './pgboss.ts';
import type { Sample } from './sample.ts';
import { waitFor } from './wait.ts';

/** The worker part of the API, the same in v10, v11 and v12. */
interface Worker {
  work(
    name: string,
    options: { pollingIntervalSeconds: number; batchSize: number },
    handler: (jobs: unknown[]) => Promise<void>,
  ): Promise<string>;
  offWork(name: string): Promise<void>;
}

/** The batch part of the API: `fail` takes many ids in v10, v11 and v12; `insert` differs. */
interface Batch {
  fail(name: string, ids: string[]): Promise<unknown>;
  insert(...args: unknown[]): Promise<unknown>;
}

/**
 * The pg-boss sampler's rows for `schema` at `now`, after storing `previous` cursors in the
 * registry as capture() does (and, with `limit`, settings.exact_count_limit set to it); in a
 * transaction that is rolled back.
 */
async function sample(
  sql: Sql,
  schema: string,
  now: string,
  previous: Sample[] = [],
  limit?: number,
): Promise<Map<string, Sample>> {
  let rows: Sample[] = [];
  await rolledBack(sql, async (tx) => {
    if (limit !== undefined) {
      const set = await tx`update queue_health.settings set exact_count_limit = ${limit}`;
      assert.equal(set.count, 1, 'the settings row exists');
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
      select * from queue_health._sample_pgboss(${now}::text::timestamptz)
      where source_schema = ${schema}`;
  });
  return new Map(rows.map((r) => [r.queue_name, r]));
}

/** Poison by the job rows: live jobs taken 3 times or more, and the oldest one's created_on. */
async function poisonOf(sql: Sql, schema: string, queue: string) {
  const [row] = await sql<{ n: number; first: string | null }[]>`
    select count(*)::int as n, min(created_on)::text as first
    from ${sql(schema)}.job
    where name = ${queue} and state in ('retry', 'active') and retry_count + 1 >= 3`;
  return row;
}

/** The sample's cursor key `key` as a timestamp (ms), or null. */
function cursorTime(s: Sample, key: string): number | null {
  const v = (s.cursor as Record<string, unknown> | null)?.[key];
  return typeof v === 'string' ? Date.parse(v) : null;
}

/** A timestamp as the database prints it, in ms. */
function dbTime(t: string): number {
  return Date.parse(t.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00'));
}

for (const version of PG_BOSS_VERSIONS) {
  Deno.test(`pg-boss v${version}: jobs a failing handler keeps retrying show as poison`, async () => {
    const sql = connect();
    const schema = `qh_test_poison_v${version}_${crypto.randomUUID().slice(0, 8)}`;
    const pb = await startPgBoss(version, { schema, fresh: true });
    const boss = commonApi(pb);
    const worker = pb.boss as unknown as Worker;
    try {
      await boss.createQueue('failing', { retryLimit: 10, retryDelay: 0 });
      await boss.createQueue('fine', { retryLimit: 10, retryDelay: 0 });
      for (let i = 0; i < 4; i++) await boss.send('failing', { i });
      for (let i = 0; i < 3; i++) await boss.send('fine', { i });

      const t1 = await dbNow(sql);
      const first = await sample(sql, schema, t1);
      assert.equal(first.get('failing')!.error, null, `v${version}: sampled without error`);
      assert.equal(first.get('failing')!.cursor!.poison, 0, 'nothing taken yet: no poison');
      assert.equal(first.get('failing')!.cursor!.oldest_poison_at, null);

      let fineTaken = 0;
      await worker.work('fine', { pollingIntervalSeconds: 0.5, batchSize: 5 }, (jobs) => {
        fineTaken += jobs.length;
        return Promise.resolve();
      });
      await worker.work('failing', { pollingIntervalSeconds: 0.5, batchSize: 5 }, () => {
        return Promise.reject(new Error('this handler always fails'));
      });
      // Every failing job taken three times or more (bounded: 60 s), then the workers stop, so
      // the rows hold still while the sampler and the test read them.
      await waitFor('every failing job taken three times', 60_000, async () => {
        const [{ n }] = await sql<{ n: number }[]>`
          select count(*)::int as n from ${sql(schema)}.job
          where name = 'failing' and state in ('retry', 'active') and retry_count + 1 >= 3`;
        return n === 4 && fineTaken >= 3 ? n : null;
      });
      await worker.offWork('failing');
      await worker.offWork('fine');

      const expected = await poisonOf(sql, schema, 'failing');
      assert.equal(expected.n, 4, 'the job rows: four jobs taken three times or more');
      const t2 = await dbNow(sql);
      const second = await sample(sql, schema, t2, [...first.values()]);
      const failing = second.get('failing')!;
      assert.ok(
        Number(failing.retried) > 0,
        `v${version}: the retries were seen (${failing.retried})`,
      );
      assert.equal(failing.cursor!.poison, expected.n, `v${version}: poison = the job rows'`);
      assert.equal(
        cursorTime(failing, 'oldest_poison_at'),
        dbTime(expected.first!),
        `v${version}: oldest_poison_at is the oldest poison job's created_on`,
      );
      assert.equal(second.get('fine')!.cursor!.poison, 0, `v${version}: a handler that succeeds`);

      // Poison at the previous snapshot: probed again, still counted.
      const t3 = await dbNow(sql);
      const third = await sample(sql, schema, t3, [...second.values()]);
      assert.equal(third.get('failing')!.cursor!.poison, expected.n);

      // capture() turns the cursor into metric.poison and oldest_poison_age_s.
      await rolledBack(sql, async (tx) => {
        await tx`select queue_health.capture(${t3}::text::timestamptz)`;
        const [m] = await tx<{ poison: number; age: number }[]>`
          select poison::int, oldest_poison_age_s as age from queue_health.metric
          where source = 'pgboss' and source_schema = ${schema} and queue_name = 'failing'
            and captured_at = ${t3}::text::timestamptz`;
        assert.equal(m.poison, expected.n);
        assert.ok(
          Math.abs(m.age - (dbTime(t3) - dbTime(expected.first!)) / 1000) < 0.01,
          `v${version}: oldest_poison_age_s ${m.age}`,
        );
      });
    } finally {
      await pb.stop({ dropSchema: true });
      await sql.end();
    }
  });
}

/**
 * Inserts `n` jobs into `queue` with pg-boss's own `insert` (v10 takes the queue name in each
 * job, v11 and v12 as the first argument).
 */
async function insertJobs(pb: Batch, version: number, queue: string, n: number) {
  const jobs = Array.from({ length: n }, (_, i) => ({ data: { i } }));
  if (version === 10) await pb.insert(jobs.map((j) => ({ name: queue, ...j })));
  else await pb.insert(queue, jobs);
}

/**
 * Takes every job of `queue` (`n` of them, all ready) `times` times: fetch them all, fail them
 * all (retryDelay 0: ready again at once), as a consumer whose handler always throws does.
 */
async function takeAndFail(
  boss: ReturnType<typeof commonApi>,
  pb: Batch,
  queue: string,
  n: number,
  times: number,
) {
  for (let round = 0; round < times; round++) {
    const jobs = await boss.fetch(queue, { batchSize: n });
    assert.equal(jobs.length, n, `round ${round + 1}: every job of ${queue} fetched`);
    await pb.fail(queue, jobs.map((j) => j.id));
  }
}

for (const version of PG_BOSS_VERSIONS) {
  Deno.test(`pg-boss v${version}: poison above exact_count_limit is estimated, below it exact`, async () => {
    const sql = connect();
    const schema = `qh_test_poisonx_v${version}_${crypto.randomUUID().slice(0, 8)}`;
    const pb = await startPgBoss(version, { schema, fresh: true });
    const boss = commonApi(pb);
    const batch = pb.boss as unknown as Batch;
    try {
      // big: 1 000 jobs taken three times (poison, in retry), then 2 000 never taken: 3 000 live
      // jobs, a third of them poison, far above the bound of 100. small: 10 poison and 20 never
      // taken: its 10 retrying jobs stay under the bound, so it is counted exactly.
      await boss.createQueue('big', { retryLimit: 10, retryDelay: 0 });
      await boss.createQueue('small', { retryLimit: 10, retryDelay: 0 });
      await insertJobs(batch, version, 'big', 1000);
      await takeAndFail(boss, batch, 'big', 1000, 3);
      await insertJobs(batch, version, 'big', 2000);
      await insertJobs(batch, version, 'small', 10);
      await takeAndFail(boss, batch, 'small', 10, 3);
      await insertJobs(batch, version, 'small', 20);
      // Depth above the bound comes from the table statistics (no fresh counts cache here).
      await sql`analyze ${sql(schema)}.job`;

      const big = await poisonOf(sql, schema, 'big');
      const small = await poisonOf(sql, schema, 'small');
      assert.equal(big.n, 1000, 'the job rows: 1 000 poison jobs in big');
      assert.equal(small.n, 10, 'the job rows: 10 poison jobs in small');

      const t = await dbNow(sql);
      const rows = await sample(sql, schema, t, [], 100);
      const b = rows.get('big')!;
      const s = rows.get('small')!;
      assert.equal(b.error, null);
      assert.equal(s.error, null);

      // Above the bound: a sample's share times the depth. 1 000 of 3 000 live jobs are poison; a
      // sample of n = 1000 of them has a standard error of sqrt(p(1-p)/n · (N-n)/(N-1)) ≈ 1.2
      // percentage points (3.7 % of the count): 15 % is four of those, plus the depth's own error.
      const bc = b.cursor as Record<string, unknown>;
      assert.equal(bc.poison_estimated, true, `v${version}: big is flagged estimated`);
      assert.equal(bc.poison_sample, 1000, `v${version}: a sample of 1 000 live jobs`);
      const est = Number(bc.poison);
      assert.ok(
        Math.abs(est - big.n) <= 0.15 * big.n,
        `v${version}: estimate ${est} within 15 % of ${big.n} (depth ${b.depth})`,
      );
      // The oldest poison job seen: its age is a lower bound of the true oldest's.
      assert.ok(
        cursorTime(b, 'oldest_poison_at')! >= dbTime(big.first!),
        `v${version}: oldest_poison_at ${bc.oldest_poison_at} not before the oldest ${big.first}`,
      );

      // Below the bound: counted, exact, not flagged.
      const sc = s.cursor as Record<string, unknown>;
      assert.equal(sc.poison_estimated, false, `v${version}: small is not flagged`);
      assert.equal(sc.poison_sample, null, `v${version}: small was not sampled`);
      assert.equal(sc.poison, small.n, `v${version}: small's poison is exact`);
      assert.equal(cursorTime(s, 'oldest_poison_at'), dbTime(small.first!));
    } finally {
      await pb.stop({ dropSchema: true });
      await sql.end();
    }
  });
}
