/**
 * `queue_health.uninstall()` leaves the catalog as it was before the install (issue 21): on a
 * cluster of the test's own (pg_cron works only in its `postgres` database, which in the shared
 * test cluster every other test uses), built like a hosted project, the migrations applied as
 * `postgres` with the Supabase CLI as `supabase db push` does.
 *
 * Round 0: neither pg_cron nor pg_net there before: the install creates both, uninstall drops
 * both. Round 1: pg_cron there before (with a job of the user's), pg_net not: the install creates
 * pg_net and uninstall drops it; schedule()'s jobs and the Realtime policy go, the user's job
 * stays. Round 2, in the same database: the user has pg_net, pgmq queues and the Vault secrets;
 * the install is applied again (after the migration history rows are removed, as docs/install.md
 * says), captures, refuses to uninstall while a view of the user's depends on it, then uninstalls
 * and keeps pg_net and the secrets.
 *
 * Compared before and after: `pg_dump --schema-only` of the whole database and a listing of
 * schemas, relations, functions, policies, extensions, default privileges, role memberships,
 * triggers and pg_cron jobs. Left out of both: pg_cron's run history (data), and the schema
 * supabase_migrations, the Supabase CLI's migration history, which is the user's project's.
 * @module
 */
import assert from 'node:assert/strict';
import { applyMigrations, applyPlatformSql } from '../stack/migrate.ts';
import { run } from '../stack/system.ts';
import { connect, type Sql } from './db.ts';
import { createPgmqQueue, loadPgmqFixture } from './fixture.ts';
import {
  type PrivateCluster,
  privateClusterAvailable,
  startPrivateCluster,
} from './private_cluster.ts';

const JOBS = [
  'queue-health-alert-sweep',
  'queue-health-capture',
  'queue-health-cron-cleanup',
  'queue-health-maintenance',
  'queue-health-monitor-stale',
];
const POLICY = 'Project members can receive Queue Health snapshots';
const VERSIONS = [...Deno.readDirSync(new URL('../../supabase/migrations', import.meta.url))]
  .map((e) => e.name).filter((n) => n.endsWith('.sql')).map((n) => n.split('_')[0]);

interface Catalog {
  dump: string;
  objects: Record<string, string[] | null>;
}

/** The database's catalog as the superuser sees it (see the module doc for what is left out). */
async function catalog(cluster: PrivateCluster): Promise<Catalog> {
  const r = await run(cluster.bin('pg_dump'), [
    '--schema-only',
    '--exclude-schema=supabase_migrations',
    '--dbname',
    cluster.superuserUrl(),
  ]);
  assert.equal(r.code, 0, `pg_dump failed: ${r.stderr}`);
  const sql = connect({ url: cluster.superuserUrl(), max: 1 });
  try {
    // Each list is (select jsonb_agg(v order by v) from (select <text> as v from ...) s).
    const [{ objects }] = await sql<{ objects: Record<string, string[] | null> }[]>`
      with ns as (
        select n.oid, n.nspname from pg_namespace n
         where n.nspname !~ '^pg_(toast_)?temp_' and n.nspname not in ('pg_toast', 'supabase_migrations')
      ),
      item (kind, v) as (
        select 'schemas', format('%s %s %s', n.nspname, x.nspowner::regrole, x.nspacl)
          from ns n join pg_namespace x on x.oid = n.oid
        union all
        select 'relations', format('%s.%s %s %s %s', n.nspname, c.relname, c.relkind, c.relowner::regrole, c.relacl)
          from pg_class c join ns n on n.oid = c.relnamespace
        union all
        select 'types', format('%s.%s', n.nspname, t.typname) from pg_type t join ns n on n.oid = t.typnamespace
        union all
        select 'functions', format('%s %s %s', p.oid::regprocedure, p.proowner::regrole, p.proacl)
          from pg_proc p join ns n on n.oid = p.pronamespace
        union all
        select 'policies', format('%s %s', p.polrelid::regclass, p.polname) from pg_policy p
        union all
        select 'extensions', format('%s %s %s', e.extname, e.extversion, e.extnamespace::regnamespace)
          from pg_extension e
        union all
        select 'default_acls', format('%s %s %s %s', d.defaclrole::regrole, d.defaclnamespace::regnamespace,
                                      d.defaclobjtype, d.defaclacl) from pg_default_acl d
        union all
        select 'roles', r.rolname::text from pg_roles r
        union all
        select 'memberships', format('%s in %s', m.member::regrole, m.roleid::regrole) from pg_auth_members m
        union all
        select 'triggers', format('%s %s', t.tgrelid::regclass, t.tgname) from pg_trigger t where not t.tgisinternal
        union all
        select 'event_triggers', e.evtname::text from pg_event_trigger e
        union all
        select 'publications', p.pubname::text from pg_publication p

      )
      select jsonb_object_agg(k.kind, k.vs) as objects
        from (select i.kind, jsonb_agg(i.v order by i.v) as vs from item i group by i.kind) k`;
    const [{ cron }] = await sql<{ cron: boolean }[]>`
      select to_regclass('cron.job') is not null as cron`;
    objects.cron_jobs = cron
      ? (await sql<{ v: string }[]>`
        select format('%s %s %s %s', j.jobname, j.username, j.schedule, j.command) as v
          from cron.job j order by 1`).map((j) => j.v)
      : null;
    // pg_dump 15.14+ fences the dump with \restrict <random key>: not part of the catalog.
    return { dump: r.stdout.replace(/^\\(un)?restrict .*$/gm, ''), objects };
  } finally {
    await sql.end();
  }
}

function assertSameCatalog(after: Catalog, before: Catalog, what: string) {
  assert.deepEqual(after.objects, before.objects, `${what}: the catalog listing differs`);
  assert.equal(after.dump, before.dump, `${what}: pg_dump --schema-only differs`);
}

async function extensions(sql: Sql): Promise<string[]> {
  const rows = await sql<{ extname: string }[]>`select extname from pg_extension order by 1`;
  return rows.map((r) => r.extname);
}

async function install(cluster: PrivateCluster, sql: Sql) {
  await applyMigrations(cluster.url(), { stamp: false });
  const [{ r }] = await sql<
    { r: { jobs: { name: string }[] } }[]
  >`select queue_health.schedule() as r`;
  assert.deepEqual(r.jobs.map((j) => j.name).sort(), JOBS);
  await sql`insert into queue_health.project (id, name) values ('shop', 'Shop')`;
  const [{ run }] = await sql<{ run: { status: string } }[]>`select queue_health.capture() as run`;
  assert.equal(run.status, 'ok', JSON.stringify(run));
  const [{ policy }] = await sql<{ policy: boolean }[]>`
    select exists (select 1 from pg_policy where polrelid = 'realtime.messages'::regclass
                    and polname = ${POLICY}) as policy`;
  assert.equal(policy, true, 'the install created the Realtime policy');
}

/** What docs/install.md says to do with the CLI's history after an uninstall, to install again. */
async function forgetMigrations(sql: Sql) {
  const history = await sql<{ version: string }[]>`
    select version from supabase_migrations.schema_migrations where version = any (${VERSIONS})`;
  assert.equal(history.length, VERSIONS.length, 'uninstall leaves the migration history alone');
  await sql`delete from supabase_migrations.schema_migrations where version = any (${VERSIONS})`;
}

interface Uninstalled {
  unscheduled: string[];
  realtime_policy: string;
  schema: string;
  extensions_dropped: string[];
  extensions_kept: unknown[];
  left_alone: Record<string, string[]>;
}

async function uninstall(sql: Sql): Promise<Uninstalled> {
  const [{ r }] = await sql<{ r: Uninstalled }[]>`select queue_health.uninstall() as r`;
  return r;
}

Deno.test({
  name: 'uninstall() leaves the catalog as before the install; installing again works',
  ignore: !privateClusterAvailable(),
  async fn() {
    const cluster = await startPrivateCluster();
    const notices: string[] = [];
    let sql: Sql | undefined;
    try {
      await applyPlatformSql(cluster.superuserUrl());
      sql = connect({ url: cluster.url(), max: 1, onNotice: (m) => notices.push(m) });

      // Round 0: neither pg_cron nor pg_net is there: the install creates both, uninstall drops both.
      const admin = connect({ url: cluster.superuserUrl(), max: 1 });
      await admin`drop extension pg_cron`.finally(() => admin.end());
      const before0 = await catalog(cluster);
      await install(cluster, sql);
      const zeroth = await uninstall(sql);
      assert.deepEqual([...zeroth.unscheduled].sort(), JOBS);
      assert.deepEqual(zeroth.extensions_dropped, ['pg_cron', 'pg_net']);
      assertSameCatalog(await catalog(cluster), before0, 'round 0');
      await forgetMigrations(sql);
      await applyPlatformSql(cluster.superuserUrl()); // pg_cron again, as the platform has it
      // A new session: pg_cron keeps cron.job's OID per session, and the session that saw the
      // extension dropped and created again would look for the old table.
      await sql.end();
      sql = connect({ url: cluster.url(), max: 1, onNotice: (m) => notices.push(m) });

      // Round 1: pg_cron is there (with a job of the user's), pg_net is not.
      await sql`select cron.schedule('user-nightly', '0 4 * * *', 'select 1')`;
      assert.equal((await extensions(sql)).includes('pg_net'), false);
      assert.equal((await extensions(sql)).includes('pg_cron'), true);
      const before = await catalog(cluster);

      await install(cluster, sql);
      const recorded = await sql<{ name: string }[]>`
        select name from queue_health.uninstall_extension order by 1`;
      assert.deepEqual(recorded.map((r) => r.name), ['pg_net'], 'the install recorded pg_net only');

      const first = await uninstall(sql);
      assert.deepEqual([...first.unscheduled].sort(), JOBS);
      assert.equal(first.realtime_policy, 'dropped');
      assert.equal(first.schema, 'dropped');
      assert.deepEqual(
        first.extensions_dropped,
        ['pg_net'],
        'pg_net, which the install created, goes',
      );
      assert.deepEqual(first.extensions_kept, []);
      assertSameCatalog(await catalog(cluster), before, 'round 1');

      // Round 2: the user has pg_net, pgmq queues and the Vault secrets. The CLI's history still
      // lists our migrations: remove those rows (docs/install.md) and apply them again.
      await forgetMigrations(sql);
      await sql`create extension pg_net`;
      await loadPgmqFixture(sql);
      await createPgmqQueue(sql, 'orders');
      await sql`select pgmq.send('orders', '{"n": 1}'::jsonb)`;
      await sql`select vault.create_secret('https://example.test/functions/v1/queue-alert',
                                           'queue_health_alert_url')`;
      await sql`select vault.create_secret('a-key-of-sixteen-or-more', 'queue_health_alert_key')`;
      const before2 = await catalog(cluster);

      await install(cluster, sql);
      const [{ n, recorded2 }] = await sql<{ n: number; recorded2: number }[]>`
        select (select count(*)::int from queue_health.metric where queue_name = 'orders') as n,
               (select count(*)::int from queue_health.uninstall_extension) as recorded2`;
      assert.ok(n >= 1, 'the reinstalled monitor captures the pgmq queue');
      assert.equal(recorded2, 0, "pg_net was the user's: not recorded");

      // A view of the user's over Queue Health: uninstall refuses and removes nothing.
      await sql`create view public.my_queues as select * from queue_health.queue_status`;
      await assert.rejects(
        () => uninstall(sql!),
        (e: Error & { code?: string }) => {
          assert.equal(e.code, '2BP01');
          assert.match(e.message, /view public\.my_queues/);
          return true;
        },
      );
      const [{ jobs, schema }] = await sql<{ jobs: number; schema: boolean }[]>`
        select (select count(*)::int from cron.job where jobname like 'queue-health-%') as jobs,
               to_regnamespace('queue_health') is not null as schema`;
      assert.deepEqual({ jobs, schema }, { jobs: 5, schema: true }, 'the refusal removed nothing');
      await sql`drop view public.my_queues`;

      notices.length = 0;
      const second = await uninstall(sql);
      assert.deepEqual([...second.unscheduled].sort(), JOBS);
      assert.deepEqual(second.extensions_dropped, [], "the user's pg_net stays");
      assert.deepEqual(second.left_alone.vault_secrets, [
        'queue_health_alert_key',
        'queue_health_alert_url',
      ]);
      assert.match(notices.join('\n'), /Vault secrets .* are yours and stay/);
      assertSameCatalog(await catalog(cluster), before2, 'round 2');
      const [{ secrets, messages }] = await sql<{ secrets: number; messages: number }[]>`
        select (select count(*)::int from vault.secrets where name like 'queue_health_alert_%') as secrets,
               (select count(*)::int from pgmq.q_orders) as messages`;
      assert.deepEqual({ secrets, messages }, { secrets: 2, messages: 1 }, "the user's data stays");
    } finally {
      await sql?.end();
      await cluster.stop();
    }
  },
});
