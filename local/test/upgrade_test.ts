/**
 * Upgrade without loss (issue 21): a project that has run the previous release for a day is
 * upgraded to the next one, as a user does it, and nothing it holds is lost or repeated.
 *
 *   the previous release's migrations (supabase/migrations.manifest.json, or supabase/migrations
 *   while nothing is released) ─▶ `queue-health install` (the CLI as built for npm) into a project
 *   made by the real `supabase init` ─▶ `supabase migration up --db-url` into a database of its
 *   own (built like a hosted project, pgmq fixture) ─▶ projects, members, rules, channels with
 *   secrets, silences, a scrape token, and a day of captures (p_now stepping every 10 minutes,
 *   hourly maintain()) that leave alerts firing, notifications delivered and others pending ─▶
 *   `queue-health upgrade` to the next version ─▶ `supabase migration up` again.
 *
 * The next version is this checkout once the manifest has a release older than package.json's
 * version. Until then (one release so far) it is synthetic: the test writes the migration a
 * release would bring (version() replaced, a function capture() uses replaced with the same
 * signature, a nullable column added to the table with the most rows, a new index) into a copy
 * of the package. Then: every row of every queue_health table is still there (count and a hash of
 * each table's rows over the columns it had; rows a release adds by itself, ADDED_BY_RELEASE, are
 * compared apart and counted), version() names the new version, the next capture
 * continues every queue's series (interval_s is the time since the last capture before the
 * upgrade, the running totals go on, no two rows of a queue at one instant), firing alerts stay
 * as they were and nothing is notified again, and the pending notifications reach the receivers
 * exactly once through the real queue-alert handler.
 * @module
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger } from '../../supabase/functions/_shared/log.ts';
import { createHandler } from '../../supabase/functions/queue-alert/handler.ts';
import {
  compareVersions,
  type Manifest,
  manifestVersions,
  migrationNames,
  sha256,
} from '../../cli/lib.ts';
import { type Receivers, startReceivers } from '../receivers/server.ts';
import { connect, type Sql } from './db.ts';
import { createHostedDatabase, type PrivateDatabase } from './private_db.ts';
import { ok, type Ran, run } from './commands.ts';
import { withSslDisabled } from '../stack/config.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SUPABASE = join(ROOT, 'node_modules', '.bin', 'supabase');

/** The day of captures: one every STEP_S seconds, STEPS of them after the first. */
const STEP_S = 600;
const STEPS = 144;
/** When the shop's two queues back up, when the pre-upgrade delivery runs, when billing backs up. */
const SHOP_BACKS_UP = 120;
const DELIVER_BEFORE_UPGRADE = 130;
const BILLING_BACKS_UP = 139;
/** Messages the healthy queues get (and lose again) per step, and a backlog's size. */
const HEALTHY_PER_STEP = 5;
const BACKLOG = 80;

const P_SHOP = 'upg_shop';
const P_BILLING = 'upg_billing';
const Q = {
  orders: 'upg_shop_orders',
  emails: 'upg_shop_emails',
  silenced: 'upg_shop_silenced',
  invoices: 'upg_billing_invoices',
  other: 'upg_other_jobs',
} as const;
const HEALTHY: string[] = [Q.orders, Q.other];
const ALERT_SECRET = `upgrade-${crypto.randomUUID()}`;

/** A release: its version and its migration files (name → text), in order. */
interface Release {
  version: string;
  files: [string, string][];
}

/** What the test upgrades from and to; `synthetic` when `to` is made up by the test. */
interface UpgradePath {
  from: Release;
  to: Release;
  synthetic: boolean;
}

const MIGRATIONS = join(ROOT, 'supabase', 'migrations');

function readMigration(name: string): [string, string] {
  return [name, readFileSync(join(MIGRATIONS, name), 'utf8')];
}

/** A version recorded in the manifest, its files checked against their SHA-256. */
function released(manifest: Manifest, version: string): Release {
  const names = Object.keys(manifest.versions[version].files).sort();
  return {
    version,
    files: names.map((name) => {
      const file = readMigration(name);
      assert.equal(
        sha256(file[1]),
        manifest.versions[version].files[name],
        `${name} is the file released in ${version}`,
      );
      return file;
    }),
  };
}

/**
 * From the newest release older than package.json's version to this checkout; with no such release
 * (one release so far), from package.json's version (its manifest entry, or every migration file
 * while nothing is released) to a synthetic next patch version.
 */
function upgradePath(): UpgradePath {
  const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    version: string;
  }).version;
  const current: Release = { version, files: migrationNames(MIGRATIONS).map(readMigration) };
  const manifestPath = join(ROOT, 'supabase', 'migrations.manifest.json');
  const manifest = existsSync(manifestPath)
    ? JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest
    : undefined;
  const older = manifest
    ? manifestVersions(manifest).filter((v) => compareVersions(v, version) < 0)
    : [];
  if (manifest && older.length) {
    return { from: released(manifest, older.at(-1)!), to: current, synthetic: false };
  }
  const from = manifest?.versions[version] ? released(manifest, version) : current;
  const [major, minor, patch] = from.version.split('.').map(Number);
  const next = `${major}.${minor}.${patch + 1}`;
  const name = `${stamp(Date.now())}_queue_health_${next.replaceAll('.', '_')}.sql`;
  return {
    from,
    to: { version: next, files: [...from.files, [name, syntheticMigration(next)]] },
    synthetic: true,
  };
}

/** UTC `ms` as a 14-digit migration version. */
function stamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\D/g, '').slice(0, 14);
}

/**
 * What a release's migration does: replaces version(), replaces a function capture() calls on
 * every run (same signature; the duration is clamped at 0, which it always is), adds a nullable
 * column to the table with the most rows and an index.
 */
function syntheticMigration(version: string): string {
  return `-- Queue Health ${version}: a synthetic release, written by local/test/upgrade_test.ts.
alter table queue_health.metric add column upgrade_note text;
comment on column queue_health.metric.upgrade_note is 'Added by the synthetic ${version} (upgrade test).';

create index metric_project_captured_at_idx on queue_health.metric (project_id, captured_at);

create or replace function queue_health._capture_record_run(
  p_now timestamptz, p_started timestamptz, p_queues int, p_rows int,
  p_status queue_health.capture_run_status, p_error text, p_errors jsonb)
returns bigint
volatile
set search_path = ''
language plpgsql
as $$
declare
  v_duration_ms double precision :=
    greatest(extract(epoch from pg_catalog.clock_timestamp() - p_started) * 1000, 0);
  v_run_id bigint;
begin
  insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows,
    status, error, errors)
  values (p_now, p_now + v_duration_ms * interval '1 millisecond', v_duration_ms, p_queues, p_rows,
    p_status, p_error, p_errors)
  returning id into v_run_id;
  return v_run_id;
end;
$$;
comment on function queue_health._capture_record_run(timestamptz, timestamptz, int, int, queue_health.capture_run_status, text, jsonb) is 'capture() step: inserts the capture_run row (started at p_now, its duration so far since p_started) and returns its id.';
revoke execute on function queue_health._capture_record_run(timestamptz, timestamptz, int, int, queue_health.capture_run_status, text, jsonb) from public, anon, authenticated;

create or replace function queue_health.version()
returns text
immutable
set search_path = ''
language sql
as $$
  select '${version}'
$$;
comment on function queue_health.version() is 'The Queue Health release whose migrations this database has, e.g. 0.1.0.';
revoke execute on function queue_health.version() from public, anon, authenticated;
grant execute on function queue_health.version() to service_role;
`;
}

const temps: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const d = await Deno.makeTempDir({ prefix });
  temps.push(d);
  return d;
}

/** The CLI built as `npm pack` builds it (dist/cli.mjs); returns its text. */
async function buildCli(): Promise<string> {
  ok(await run('npm', ['run', 'build', '--silent'], ROOT), 'npm run build');
  return await Deno.readTextFile(join(ROOT, 'dist', 'cli.mjs'));
}

/**
 * A package folder as npm installs it, for `release`: package.json, dist/cli.mjs, the release's
 * migrations and this checkout's functions.
 */
async function packageOf(cli: string, release: Release): Promise<(args: string[]) => Promise<Ran>> {
  const root = await tempDir(`qh_pkg_${release.version.replaceAll('.', '_')}_`);
  await Deno.mkdir(join(root, 'dist'));
  await Deno.mkdir(join(root, 'supabase', 'migrations'), { recursive: true });
  await Deno.writeTextFile(
    join(root, 'package.json'),
    JSON.stringify({ name: 'queue-health', version: release.version, type: 'module' }),
  );
  await Deno.writeTextFile(join(root, 'dist', 'cli.mjs'), cli);
  for (const [name, text] of release.files) {
    await Deno.writeTextFile(join(root, 'supabase', 'migrations', name), text);
  }
  await Deno.symlink(join(ROOT, 'supabase', 'functions'), join(root, 'supabase', 'functions'));
  return (args: string[]) => run('node', [join(root, 'dist', 'cli.mjs'), ...args], ROOT);
}

/** The CLI of one package folder. */
type Cli = (args: string[]) => Promise<Ran>;

/** A database built like a hosted project with pgmq enabled (the fixture stands in for it). */

/** `supabase migration up` in the project; the names of the migrations it applied. */
async function migrationUp(project: string, db: PrivateDatabase): Promise<string[]> {
  const r = ok(
    await run(SUPABASE, ['migration', 'up', '--db-url', withSslDisabled(db.url)], project),
    'supabase migration up',
  );
  return [...`${r.stdout}\n${r.stderr}`.matchAll(/Applying migration (\S+\.sql)/g)].map((m) =>
    m[1]
  );
}

/** `name` as a LIKE pattern matching exactly itself. */
function likeExactly(name: string): string {
  return name.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** What the synthetic migration changed is in place. */
async function assertSyntheticShape(sql: Sql): Promise<void> {
  const [shape] = await sql<{ col: boolean; idx: boolean; fn: boolean }[]>`
    select exists (select 1 from information_schema.columns
                    where table_schema = 'queue_health' and table_name = 'metric'
                      and column_name = 'upgrade_note') as col,
           to_regclass('queue_health.metric_project_captured_at_idx') is not null as idx,
           pg_get_functiondef(to_regprocedure('queue_health._capture_record_run(timestamptz, '
             || 'timestamptz, int, int, queue_health.capture_run_status, text, jsonb)'))
             like '%greatest(%' as fn`;
  assert.deepEqual({ ...shape }, { col: true, idx: true, fn: true });
}

/** The people, projects, rules, channels and silences of the day; returns the channel ids. */
async function createTenants(sql: Sql, admin: Sql, receivers: Receivers, t0: string) {
  const users = await admin<{ id: string }[]>`
    insert into auth.users (id, email, raw_user_meta_data)
    select gen_random_uuid(), e, '{}'::jsonb
      from unnest(array['ada@shop.test', 'bob@billing.test']) e
    returning id`;
  await sql`insert into queue_health.project (id, name)
            values (${P_SHOP}, 'Shop'), (${P_BILLING}, 'Billing')`;
  await sql`insert into queue_health.project_member (project_id, user_id, role)
            values (${P_SHOP}, ${users[0].id}, 'admin'), (${P_BILLING}, ${users[1].id}, 'viewer'),
                   (${P_SHOP}, ${users[1].id}, 'viewer')`;
  await sql`insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
            values (${P_SHOP}, 'pgmq', ${likeExactly('upg_shop_') + '%'}, 10),
                   (${P_BILLING}, null, ${likeExactly('upg_billing_') + '%'}, 20)`;
  // Captures every STEP_S: the monitor is stale only after three of them.
  await sql`update queue_health.settings set capture_interval = make_interval(secs => ${STEP_S})`;
  // One notification per group at first; nothing repeats within the day after the upgrade.
  await sql`insert into queue_health.project_alert_settings
              (project_id, group_wait, group_interval, repeat_interval, dashboard_url)
            select p, interval '1 minute', interval '5 minutes', interval '12 hours',
                   'https://dash.example.test/' || p
              from unnest(array[${P_SHOP}, ${P_BILLING}]::text[]) p`;
  const hook = (path: string) => sql.json({ url: `${receivers.url}/webhook/${path}` });
  const channels = await sql<{ id: string; name: string }[]>`
    insert into queue_health.channel (project_id, name, kind, config)
    values (${P_SHOP}, 'shop-hook', 'webhook', ${hook('shop')}),
           (${P_BILLING}, 'billing-hook', 'webhook', ${hook('billing')}),
           (${P_BILLING}, 'billing-slack', 'slack', '{}'::jsonb)
    returning id, name`;
  const id = (name: string) => channels.find((c) => c.name === name)!.id;
  const secrets = {
    'shop-hook': { signing_secret: `shop-${crypto.randomUUID()}` },
    'billing-hook': { signing_secret: `billing-${crypto.randomUUID()}` },
    'billing-slack': { url: `${receivers.url}/slack/billing` },
  };
  for (const [name, secret] of Object.entries(secrets)) {
    await sql`insert into queue_health.channel_secret (channel_id, secret)
              values (${id(name)}, ${sql.json(secret)})`;
  }
  await sql`insert into queue_health.alert_rule
              (project_id, name, source, queue_name, queue_pattern, condition, comparator, threshold,
               for_duration, severity, summary)
            values (${P_SHOP}, 'shop backlog', 'pgmq', null, ${likeExactly('upg_shop_') + '%'},
                    'depth', '>', 50, interval '20 minutes', 'critical', '{{queue}}: {{value}} jobs'),
                   (${P_BILLING}, 'billing backlog', null, ${Q.invoices}, null, 'depth', '>', 50,
                    interval '0', 'warning', null)`;
  await sql`insert into queue_health.silence
              (project_id, queue_pattern, starts_at, ends_at, comment)
            values (${P_SHOP}, ${likeExactly(Q.silenced)}, ${t0}::timestamptz,
                    ${t0}::timestamptz + interval '30 days', 'known backlog, being migrated'),
                   (${P_SHOP}, ${likeExactly(Q.orders)}, ${t0}::timestamptz - interval '2 days',
                    ${t0}::timestamptz - interval '1 day', 'an old, expired silence')`;
  // The shop's admin makes a Prometheus scrape token, as PostgREST would let her.
  await sql.begin(async (tx) => {
    const claims = { sub: users[0].id, role: 'authenticated', aud: 'authenticated' };
    await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    await tx`set local role authenticated`;
    await tx`select * from queue_health.create_scrape_token(${P_SHOP}, 'prometheus')`;
  });
  return { shopHook: id('shop-hook'), billingHook: id('billing-hook') };
}

/** One capture at `pNow`; fails on anything but a clean run. */
async function captureAt(sql: Sql, pNow: string): Promise<void> {
  const [{ r }] = await sql<{ r: { status: string; skipped: boolean } }[]>`
    select queue_health.capture(${pNow}::timestamptz) as r`;
  assert.equal(r.status, 'ok', `capture at ${pNow}: ${JSON.stringify(r)}`);
}

/** What the workload does before capture number `k`. */
async function workloadStep(sql: Sql, k: number): Promise<void> {
  for (const q of HEALTHY) {
    // Sent and worked off between two captures: counted as enqueued and completed.
    await sql`select pgmq.delete(${q}, array(
                select pgmq.send_batch(${q}, array_fill('{}'::jsonb, array[${HEALTHY_PER_STEP}::int]))))`;
  }
  const backlogs = k === SHOP_BACKS_UP
    ? [Q.emails, Q.silenced]
    : k === BILLING_BACKS_UP
    ? [Q.invoices]
    : [];
  for (const q of backlogs) {
    await sql`select pgmq.send_batch(${q}, array_fill('{"stuck": true}'::jsonb, array[${BACKLOG}::int]))`;
  }
}

/** The real queue-alert handler on the private database: POST {evaluate: false}. */
function deliverer(sql: Sql, db: PrivateDatabase) {
  const handler = createHandler({
    sql,
    logger: createLogger({ fn: 'queue-alert' }, () => {}),
    env: {
      SUPABASE_DB_URL: db.url,
      QUEUE_ALERT_SECRET: ALERT_SECRET,
      QUEUE_ALERT_TIMEOUT_MS: '5000',
      QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
      QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
      QUEUE_ALERT_SLACK_INTERVAL_MS: '0',
    },
  });
  return async (): Promise<{ claimed: number; sent: number; failed: number; dead: number }> => {
    const res = await handler(
      new Request('http://127.0.0.1/functions/v1/queue-alert', {
        method: 'POST',
        headers: { 'x-queue-health-secret': ALERT_SECRET, 'content-type': 'application/json' },
        body: JSON.stringify({ evaluate: false, wait: true }),
      }),
    );
    const body = await res.json();
    assert.equal(res.status, 200, `queue-alert answered ${res.status}: ${JSON.stringify(body)}`);
    return body;
  };
}

/**
 * For every queue_health table (partitioned ones as a whole), a query giving its row count and a
 * hash of its rows over the columns it has now: run again after the upgrade, it ignores columns
 * the upgrade added.
 */
/**
 * Rows a release adds to tables that already have data, by itself and as its changelog says. They
 * are left out of the before/after comparison (every other row must be there unchanged), and the
 * upgrade must add exactly `perProject` of them for each project.
 */
const ADDED_BY_RELEASE: Record<string, Record<string, { where: string; perProject: number }>> = {
  // The signals' default rules, installed once for the projects that existed before them
  // (20261207100300_queue_health_signal_alerts.sql).
  '0.2.0': {
    alert_rule: {
      where: `is_default and name in ('flow_stopped', 'poison', 'consumer_silent')`,
      perProject: 3,
    },
  },
};

/** The additions of every release after `from` up to `to`, per table (predicates or-ed). */
function additions(path: UpgradePath): Record<string, { where: string; perProject: number }> {
  const out: Record<string, { where: string; perProject: number }> = {};
  for (const [version, tables] of Object.entries(ADDED_BY_RELEASE)) {
    if (compareVersions(version, path.from.version) <= 0) continue;
    if (compareVersions(version, path.to.version) > 0) continue;
    for (const [table, a] of Object.entries(tables)) {
      const prev = out[table];
      out[table] = prev
        ? { where: `(${prev.where}) or (${a.where})`, perProject: prev.perProject + a.perProject }
        : a;
    }
  }
  return out;
}

async function rowQueries(
  admin: Sql,
  added: Record<string, { where: string }> = {},
): Promise<Record<string, string>> {
  const predicates = JSON.stringify(
    Object.fromEntries(Object.entries(added).map(([t, a]) => [t, `(${a.where})`])),
  );
  const rows = await admin<{ name: string; query: string }[]>`
    select c.relname as name,
           format('select count(*)::int as n, md5(coalesce(string_agg(r, e''\\n'' order by r), ''''))'
                  ' as h from (select row(%s)::text as r from queue_health.%I where not coalesce(%s, false)) s',
                  string_agg(format('%I', a.attname), ', ' order by a.attnum), c.relname,
                  coalesce(${predicates}::text::jsonb ->> c.relname::text, 'false')) as query
      from pg_catalog.pg_class c
      join pg_catalog.pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
     where c.relnamespace = 'queue_health'::regnamespace and c.relkind in ('r', 'p')
       and not c.relispartition
     group by c.relname
     order by c.relname`;
  return Object.fromEntries(rows.map((r) => [r.name, r.query]));
}

async function tableContents(admin: Sql, queries: Record<string, string>) {
  const out: Record<string, { n: number; h: string }> = {};
  for (const [name, query] of Object.entries(queries)) {
    const [{ n, h }] = await admin.unsafe<{ n: number; h: string }[]>(query);
    out[name] = { n, h };
  }
  return out;
}

interface AlertRow {
  id: string;
  project_id: string;
  rule: string;
  queue_name: string;
  state: string;
  fired_at: string | null;
}

async function alertsOf(sql: Sql): Promise<AlertRow[]> {
  return await sql<AlertRow[]>`
    select a.id::text, a.project_id, r.name as rule, a.queue_name, a.state::text,
           a.fired_at::text
      from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
     where a.project_id in (${P_SHOP}, ${P_BILLING})
     order by a.id`;
}

interface NotificationRow {
  id: string;
  project_id: string;
  channel_id: string;
  status: string;
  attempts: number;
  /** Whether the payload lists the silenced queue (it must not). */
  silenced_listed: boolean;
}

async function notificationsOf(sql: Sql): Promise<NotificationRow[]> {
  return await sql<NotificationRow[]>`
    select id::text, project_id, channel_id::text, status::text, attempts,
           exists (select 1 from jsonb_array_elements(payload -> 'alerts') a
                    where a ->> 'queue' = ${Q.silenced}) as silenced_listed
      from queue_health.notification order by id`;
}

interface MetricRow {
  queue_name: string;
  captured_at: string;
  enqueued: number;
  interval_s: number | null;
  cum_enqueued: number;
  cum_completed: number;
  cum_interval_s: number;
  cum_idle: number;
}

/** The newest metric row of each of the test's queues at or before `at`. */
async function lastRows(sql: Sql, at: string): Promise<Record<string, MetricRow>> {
  const rows = await sql<MetricRow[]>`
    select distinct on (queue_name) queue_name, captured_at::text, enqueued::int,
           interval_s, cum_enqueued::int, cum_completed::int, cum_interval_s, cum_idle::int
      from queue_health.metric
     where queue_name = any (${Object.values(Q)}) and captured_at <= ${at}::timestamptz
     order by queue_name, captured_at desc`;
  return Object.fromEntries(rows.map((r) => [r.queue_name, r]));
}

/** What the phases of the test share. */
interface World {
  path: UpgradePath;
  db: PrivateDatabase;
  sql: Sql;
  admin: Sql;
  receivers: Receivers;
  project: string;
  channels: { shopHook: string; billingHook: string };
  /** The p_now of capture number k (k = 0 .. STEPS before the upgrade). */
  at: (k: number) => Promise<string>;
  deliver: () => Promise<{ claimed: number; sent: number; failed: number; dead: number }>;
}

/** What the database held right before the upgrade. */
interface Before {
  alerts: AlertRow[];
  firing: AlertRow[];
  notes: NotificationRow[];
  shopNotes: NotificationRow[];
  pending: NotificationRow[];
  shopHook: number;
  queries: Record<string, string>;
  contents: Record<string, { n: number; h: string }>;
  rows: Record<string, MetricRow>;
}

/** Tables a day of use fills: each must have rows for the comparison to mean something. */
const FILLED_TABLES = [
  'project',
  'project_member',
  'project_queue_map',
  'queue',
  'metric',
  'metric_1m',
  'metric_1h',
  'capture_run',
  'channel',
  'channel_secret',
  'project_alert_settings',
  'alert_rule',
  'silence',
  'alert',
  'alert_event',
  'notification_group',
  'notification',
  'scrape_token',
];

/** The day: STEPS + 1 captures, hourly maintenance, one delivery round in the afternoon. */
async function liveADay(w: World): Promise<void> {
  for (let k = 0; k <= STEPS; k++) {
    await workloadStep(w.sql, k);
    const pNow = await w.at(k);
    await captureAt(w.sql, pNow);
    if (k % 6 === 5) await w.sql`select queue_health.maintain(${pNow}::timestamptz)`;
    if (k === DELIVER_BEFORE_UPGRADE) {
      const d = await w.deliver();
      assert.ok(d.sent > 0 && d.failed === 0 && d.dead === 0, JSON.stringify(d));
    }
  }
}

/** Reads what the day left and checks it is what the test needs: alerts firing, notifications. */
async function beforeUpgrade(w: World): Promise<Before> {
  const alerts = await alertsOf(w.sql);
  const firing = alerts.filter((a) => a.state === 'firing');
  for (
    const [rule, queue] of [
      ['shop backlog', Q.emails],
      ['shop backlog', Q.silenced],
      ['billing backlog', Q.invoices],
    ]
  ) {
    assert.ok(
      firing.some((a) => a.rule === rule && a.queue_name === queue),
      `${rule} fires on ${queue}: ${JSON.stringify(alerts)}`,
    );
  }
  const notes = await notificationsOf(w.sql);
  const shopNotes = notes.filter((n) => n.project_id === P_SHOP);
  const pending = notes.filter((n) => n.project_id === P_BILLING);
  assert.ok(
    shopNotes.length > 0 &&
      shopNotes.every((n) => n.status === 'sent' && n.channel_id === w.channels.shopHook),
    `the shop's notifications were delivered before the upgrade: ${JSON.stringify(shopNotes)}`,
  );
  assert.ok(
    pending.length > 0 && pending.every((n) => n.status === 'pending'),
    `billing's notifications are pending at the upgrade: ${JSON.stringify(pending)}`,
  );
  const shopHook = w.receivers.received('webhook').filter((r) => r.path === '/shop').length;
  assert.equal(shopHook, shopNotes.length, 'each shop notification arrived once');
  assert.equal(w.receivers.received('webhook').filter((r) => r.path === '/billing').length, 0);
  const added = additions(w.path);
  for (const [table, a] of Object.entries(added)) {
    const [{ n }] = await w.admin.unsafe<{ n: number }[]>(
      `select count(*)::int as n from queue_health.${table} where ${a.where}`,
    );
    assert.equal(n, 0, `${table} has none of the rows the upgrade will add before it`);
  }
  const queries = await rowQueries(w.admin, added);
  const contents = await tableContents(w.admin, queries);
  for (const t of FILLED_TABLES) {
    assert.ok(
      contents[t]?.n > 0,
      `${t} has rows before the upgrade: ${JSON.stringify(contents[t])}`,
    );
  }
  const rows = await lastRows(w.sql, await w.at(STEPS));
  return { alerts, firing, notes, shopNotes, pending, shopHook, queries, contents, rows };
}

/** `queue-health upgrade`, then `supabase migration up`: only the new migrations are applied. */
async function upgrade(w: World, nextCli: Cli): Promise<void> {
  const { from, to } = w.path;
  const up = ok(await nextCli(['upgrade', '--dir', w.project]), `upgrade to ${to.version}`);
  const added = [...up.stdout.matchAll(/\+ create supabase\/migrations\/(\S+\.sql)/g)]
    .map((m) => m[1]);
  // Renamed to sort after the project's newest migration: the part after the timestamp stays.
  assert.deepEqual(
    added.map((n) => n.slice(15)),
    to.files.slice(from.files.length).map(([name]) => name.slice(15)),
    `upgrade adds the new release's migrations: ${up.stdout}`,
  );
  assert.deepEqual(await migrationUp(w.project, w.db), added, 'only the new ones are applied');
  const [{ n }] = await w.sql<{ n: number }[]>`
    select count(*)::int as n from supabase_migrations.schema_migrations`;
  assert.equal(n, to.files.length);
}

/** Every table and row of before is still there; version() names the new release. */
async function assertNothingLost(w: World, before: Before): Promise<void> {
  const tablesAfter = Object.keys(await rowQueries(w.admin));
  for (const t of Object.keys(before.queries)) {
    assert.ok(tablesAfter.includes(t), `${t} is still there`);
  }
  assert.deepEqual(await tableContents(w.admin, before.queries), before.contents);
  const [{ projects }] = await w.admin<{ projects: number }[]>`
    select count(*)::int as projects from queue_health.project`;
  for (const [table, a] of Object.entries(additions(w.path))) {
    const [{ n }] = await w.admin.unsafe<{ n: number }[]>(
      `select count(*)::int as n from queue_health.${table} where ${a.where}`,
    );
    assert.equal(n, a.perProject * projects, `the upgrade added ${table} rows (${a.where})`);
  }
  const [{ v }] = await w.sql<{ v: string }[]>`select queue_health.version() as v`;
  assert.equal(v, w.path.to.version, `queue_health.version() says ${w.path.to.version}`);
  if (w.path.synthetic) await assertSyntheticShape(w.sql);
}

/** The first capture after the upgrade continues every queue's series. */
async function assertCapturesContinue(w: World, before: Before): Promise<void> {
  await workloadStep(w.sql, STEPS + 1);
  const lastBefore = await w.at(STEPS);
  const firstAfter = await w.at(STEPS + 1);
  await captureAt(w.sql, firstAfter);
  const rowsAfter = await lastRows(w.sql, firstAfter);
  for (const q of Object.values(Q)) {
    const b = before.rows[q];
    const a = rowsAfter[q];
    assert.equal(b.captured_at, lastBefore, `${q}: captured by the last capture before`);
    assert.equal(a.captured_at, firstAfter, `${q}: captured by the first capture after`);
    assert.equal(a.interval_s, STEP_S, `${q}: interval_s runs from the last capture before`);
    assert.equal(a.enqueued, HEALTHY.includes(q) ? HEALTHY_PER_STEP : 0, `${q}: enqueued`);
    assert.equal(a.cum_enqueued, b.cum_enqueued + a.enqueued, `${q}: cum_enqueued continues`);
    assert.equal(a.cum_interval_s, b.cum_interval_s + STEP_S, `${q}: cum_interval_s continues`);
    assert.ok(a.cum_completed >= b.cum_completed && a.cum_idle >= b.cum_idle, q);
  }
  const [{ dup }] = await w.sql<{ dup: number }[]>`
    select count(*)::int as dup from (
      select 1 from queue_health.metric
       group by source, source_schema, queue_name, captured_at having count(*) > 1) d`;
  assert.equal(dup, 0, 'no two rows of a queue at one instant');
  const [{ n }] = await w.sql<{ n: number }[]>`
    select count(*)::int as n from queue_health.metric where queue_name = ${Q.orders}`;
  assert.equal(n, STEPS + 2, 'one row per capture, before and after the upgrade');
}

/** Firing alerts stay as they were, and that capture notified nobody. */
async function assertAlertsHold(w: World, before: Before): Promise<void> {
  assert.deepEqual(await alertsOf(w.sql), before.alerts);
  const notes = await notificationsOf(w.sql);
  assert.deepEqual(notes.map((n) => n.id), before.notes.map((n) => n.id), 'no new notification');
}

/** The pending notifications reach their receivers once; nothing else is sent. */
async function assertDeliveredOnce(w: World, before: Before): Promise<void> {
  const { pending } = before;
  const first = await w.deliver();
  assert.deepEqual(
    { claimed: first.claimed, sent: first.sent, failed: first.failed, dead: first.dead },
    { claimed: pending.length, sent: pending.length, failed: 0, dead: 0 },
  );
  const again = await w.deliver();
  assert.equal(again.claimed, 0, 'nothing is left to deliver');
  for (const n of await notificationsOf(w.sql)) {
    assert.equal(n.status, 'sent', JSON.stringify(n));
    assert.equal(n.attempts, 1, JSON.stringify(n));
    assert.equal(n.silenced_listed, false, `the silence held: ${JSON.stringify(n)}`);
  }
  const hooks = w.receivers.received('webhook');
  assert.deepEqual(
    hooks.filter((r) => r.path === '/billing').map((r) => (r.body as { id: string }).id).sort(),
    pending.filter((n) => n.channel_id === w.channels.billingHook).map((n) => n.id).sort(),
    'each pending webhook notification arrived exactly once',
  );
  assert.equal(
    w.receivers.received('slack').filter((r) => r.path === '/billing').length,
    pending.filter((n) => n.channel_id !== w.channels.billingHook).length,
    'each pending Slack notification arrived exactly once',
  );
  assert.equal(
    hooks.filter((r) => r.path === '/shop').length,
    before.shopHook,
    'the shop, notified before the upgrade, hears nothing more',
  );
}

Deno.test('Upgrade without loss: a day of data survives the upgrade to the next release', async () => {
  const path = upgradePath();
  const receivers = await startReceivers({});
  let db: PrivateDatabase | undefined;
  let sql: Sql | undefined;
  let admin: Sql | undefined;
  try {
    const cli = await buildCli();
    const prevCli = await packageOf(cli, path.from);
    const nextCli = await packageOf(cli, path.to);
    const project = await tempDir('qh_upgrade_project_');
    ok(await run(SUPABASE, ['init'], project), 'supabase init');

    // The previous release, installed and applied as a user does it.
    ok(await prevCli(['install', '--dir', project]), `install ${path.from.version}`);
    db = await createHostedDatabase('qh_upgrade');
    const installed = await migrationUp(project, db);
    assert.equal(installed.length, path.from.files.length, `applied: ${installed}`);
    sql = connect({ url: db.url, max: 2, prepare: false });
    admin = connect({ url: db.superuserUrl, max: 1 });
    const [{ v }] = await sql<{ v: string }[]>`select queue_health.version() as v`;
    assert.equal(v, path.from.version);

    const [{ t0 }] = await sql<{ t0: string }[]>`
      select (date_trunc('minute', now())
              - make_interval(secs => ${STEP_S * (STEPS + 2)}))::text as t0`;
    const base = sql;
    const w: World = {
      path,
      db,
      sql,
      admin,
      receivers,
      project,
      channels: await createTenants(sql, admin, receivers, t0),
      at: async (k) => {
        const [{ t }] = await base<{ t: string }[]>`
          select (${t0}::timestamptz + make_interval(secs => ${k * STEP_S}))::text as t`;
        return t;
      },
      deliver: deliverer(sql, db),
    };
    for (const q of Object.values(Q)) await sql`select pgmq.create(${q})`;

    await liveADay(w);
    const before = await beforeUpgrade(w);
    await upgrade(w, nextCli);
    await assertNothingLost(w, before);
    await assertCapturesContinue(w, before);
    await assertAlertsHold(w, before);
    await assertDeliveredOnce(w, before);

    console.log(JSON.stringify({
      event: 'upgrade_without_loss',
      from: path.from.version,
      to: path.to.version,
      synthetic: path.synthetic,
      tables: Object.keys(before.contents).length,
      rows: Object.values(before.contents).reduce((sum, c) => sum + c.n, 0),
      metric_rows: before.contents.metric.n,
      firing_alerts: before.firing.length,
      notified_before: before.shopNotes.length,
      pending_at_upgrade: before.pending.length,
    }));
  } finally {
    await sql?.end({ timeout: 5 });
    await admin?.end({ timeout: 5 });
    await db?.drop();
    await receivers.stop();
    for (const d of temps) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
