/**
 * Queue (and schema) names that break naive dynamic SQL: quotes, spaces, unicode, the 47
 * characters pgmq allows, SQL keywords. Both samplers must count them exactly like any other.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { dbNow } from './clock.ts';
import { rolledBack } from './rollback.ts';
import { createPgmqQueue, loadPgmqFixture } from './fixture.ts';
import { commonApi, type PgBossVersion, startPgBoss } from './pgboss.ts';
import type { Sample as FullSample } from './sample.ts';

type Sample = Pick<
  FullSample,
  | 'source_schema'
  | 'queue_name'
  | 'ready'
  | 'in_flight'
  | 'delayed'
  | 'depth'
  | 'depth_estimated'
  | 'enqueued'
  | 'completed'
  | 'cursor'
  | 'error'
>;

/**
 * Runs a sampler with `previous` cursors in the registry, in a rolled-back transaction.
 */
async function sample(
  sql: Sql,
  fn: '_sample_pgmq' | '_sample_pgboss',
  now: string,
  previous: (Sample & { source: string })[] = [],
): Promise<(Sample & { source: string })[]> {
  let rows: (Sample & { source: string })[] = [];
  await rolledBack(sql, async (tx) => {
    for (const s of previous) {
      await tx`
        insert into queue_health.queue (source, source_schema, queue_name, project_id, cursor)
        values (${s.source}, ${s.source_schema}, ${s.queue_name}, 'default',
          ${JSON.stringify(s.cursor)}::text::jsonb)
        on conflict (source, source_schema, queue_name) do update set cursor = excluded.cursor`;
    }
    rows = fn === '_sample_pgmq'
      ? await tx`select * from queue_health._sample_pgmq(${now}::text::timestamptz)`
      : await tx`select * from queue_health._sample_pgboss(${now}::text::timestamptz)`;
  });
  return rows;
}

const suffix = crypto.randomUUID().slice(0, 6);
const PGMQ_NAMES = [
  `we"ird ${suffix}`,
  `with  spaces ${suffix}`,
  `ünïcødé_队列_${suffix}`,
  `Mixed_Case_${suffix}`,
  `l${suffix}`.padEnd(47, 'x'),
  'select',
  'order',
];

Deno.test('pgmq sampler counts queues with quotes, spaces, unicode, 47 chars and keyword names', async () => {
  const sql = connect();
  await loadPgmqFixture(sql);
  try {
    assert.equal(PGMQ_NAMES[4].length, 47);
    for (const name of PGMQ_NAMES) {
      await createPgmqQueue(sql, name);
      await sql`select pgmq.send(${name}, '{}'::jsonb) from generate_series(1, 3)`;
      await sql`select * from pgmq.read(${name}, 300, 1)`;
    }
    const first = (await sample(sql, '_sample_pgmq', await dbNow(sql)))
      .filter((s) => PGMQ_NAMES.includes(s.queue_name));
    assert.deepEqual(first.map((s) => s.queue_name).sort(), [...PGMQ_NAMES].sort());
    for (const s of first) {
      assert.equal(s.error, null, `${s.queue_name}: ${s.error}`);
      assert.deepEqual(
        [Number(s.ready), Number(s.in_flight), Number(s.delayed)],
        [2, 1, 0],
        s.queue_name,
      );
    }
    for (const name of PGMQ_NAMES) {
      await sql`select pgmq.send(${name}, '{}'::jsonb)`;
      await sql`select pgmq.archive(${name}, 1::bigint)`;
    }
    const second = (await sample(sql, '_sample_pgmq', await dbNow(sql), first))
      .filter((s) => PGMQ_NAMES.includes(s.queue_name));
    for (const s of second) {
      assert.equal(s.error, null, `${s.queue_name}: ${s.error}`);
      assert.deepEqual(
        [Number(s.depth), Number(s.enqueued), Number(s.completed), s.cursor!.archived],
        [3, 1, 1, 1],
        s.queue_name,
      );
    }
  } finally {
    for (const name of PGMQ_NAMES) {
      await sql`select pgmq.drop_queue(${name})
        where exists (select 1 from pgmq.meta where queue_name = ${name})`;
      await sql`delete from queue_health.metric where source = 'pgmq' and queue_name = ${name}`;
      await sql`delete from queue_health.queue where source = 'pgmq' and queue_name = ${name}`;
    }
    await sql.end();
  }
});

/** A table that the hostile queue name below would drop if it were ever run as SQL. */
const CANARY = `qh_canary_${suffix}`;

/**
 * Queue names each pg-boss version accepts (v12 allows only [A-Za-z0-9_.\-/]); v10 and v11 also
 * get names that broke the statement while it was patched by text replacement (`$4` became the
 * schema's literal inside a quoted name), and v10 one that would inject if quoted wrongly.
 */
function pgBossNames(version: PgBossVersion): string[] {
  const strict = ['select', 'order', `a.b-c/${suffix}`, `l${suffix}`.padEnd(47, 'x')];
  if (version === 12) return strict;
  const odd = [
    ...strict,
    `we"ird q ü ${suffix}`,
    `with space ${suffix}`,
    `a$4b ${suffix}`,
    `x$1 ${suffix}`,
  ];
  // pg-boss 11's own createQueue() puts the name in its SQL between quotes: only v10 takes a quote.
  return version === 10 ? [...odd, `'; drop table public.${CANARY}; --`] : odd;
}

for (const version of [10, 11, 12] as const) {
  Deno.test(`pg-boss v${version} sampler counts odd and hostile queue names, and a schema named with $4`, async () => {
    const sql = connect();
    const schema = `qh_test_odd_v${version}_${suffix}`;
    const odd = `qh test "odd" $4 ü ${version} ${suffix}`;
    await sql`create table if not exists public.${sql(CANARY)} ()`;
    const pb = await startPgBoss(version, { schema, fresh: true });
    let renamed = false;
    try {
      const boss = commonApi(pb);
      const names = pgBossNames(version);
      for (const name of names) {
        await boss.createQueue(name);
        await boss.send(name, { a: 1 });
        await boss.send(name, { a: 2 });
        await boss.send(name, { a: 3 }, { startAfter: 3600 });
        assert.equal((await boss.fetch(name)).length, 1, `${name}: fetched`);
      }
      const check = (rows: Sample[], schemaName: string) => {
        const mine = rows.filter((s) => s.source_schema === schemaName);
        assert.deepEqual(mine.map((s) => s.queue_name).sort(), [...names].sort());
        for (const s of mine) {
          assert.equal(s.error, null, `${s.queue_name}: ${s.error}`);
          assert.deepEqual(
            [Number(s.ready), Number(s.in_flight), Number(s.delayed)],
            [1, 1, 1],
            s.queue_name,
          );
        }
      };
      check(await sample(sql, '_sample_pgboss', await dbNow(sql)), schema);

      // The same pg-boss tables under a schema name that needs quoting.
      await pb.stop();
      await sql`alter schema ${sql(schema)} rename to ${sql(odd)}`;
      renamed = true;
      check(await sample(sql, '_sample_pgboss', await dbNow(sql)), odd);

      // The per-queue statement (the fallback when the schema's fails), which names the queue
      // as a constant: every name is sampled as itself.
      const perQueue = await sql<Sample[]>`
        select (queue_health._sample_pgboss_queue(s.schema_name, s.layout, n.name,
                  clock_timestamp(), 10000, interval '2 minutes', null, 2000)).*
          from queue_health._pgboss_schemas(array[]::text[]) s
         cross join unnest(${names}::text[]) n(name)
         where s.schema_name = ${odd}`;
      check(perQueue, odd);
      const [{ canary }] = await sql<{ canary: boolean }[]>`
        select to_regclass(${'public.' + CANARY}) is not null as canary`;
      assert.ok(canary, 'no queue name was run as SQL');
    } finally {
      if (renamed) await sql`alter schema ${sql(odd)} rename to ${sql(schema)}`;
      await pb.stop({ dropSchema: true });
      for (const name of [schema, odd]) {
        await sql`delete from queue_health.metric where source = 'pgboss' and source_schema = ${name}`;
        await sql`delete from queue_health.queue where source = 'pgboss' and source_schema = ${name}`;
      }
      await sql`drop table if exists public.${sql(CANARY)}`;
      await sql.end();
    }
  });
}
