/**
 * `supabase db push` on a hosted project, reproduced: the migrations are applied with the real
 * Supabase CLI, as `postgres` (not a superuser), to fresh databases built like a hosted project —
 * one where Realtime has created `realtime.messages` (owned by supabase_realtime_admin; postgres
 * may create policies on it but not comment on them), and one where Realtime has not connected
 * yet. Both installs complete; the Realtime policy is there at once in the first, and in the
 * second once Realtime's table exists and `install_realtime_policy()` (which schedule() calls)
 * runs.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { connect, databaseUrl, superuserUrl } from './db.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SUPABASE = join(ROOT, 'node_modules', '.bin', 'supabase');
const POLICY = 'Project members can receive Queue Health snapshots';

function withDatabase(url: string, database: string, sslDisabled = false): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  if (sslDisabled) u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

/** Builds the hosted platform in `database` as the superuser (local/stack/sql/hosted_platform.sql). */
async function buildPlatform(database: string, realtimeConnected: boolean): Promise<void> {
  const admin = connect({ url: withDatabase(superuserUrl(), database), max: 1 });
  try {
    const text = await Deno.readTextFile(
      join(ROOT, 'local', 'stack', 'sql', 'hosted_platform.sql'),
    );
    await admin.unsafe(
      `set qh_platform.realtime_connected = '${realtimeConnected ? 'on' : 'off'}';\n${text}`,
    );
  } finally {
    await admin.end();
  }
}

/** `supabase migration up --db-url` as postgres; returns the CLI's output. */
async function migrationUp(database: string): Promise<string> {
  const out = await new Deno.Command(SUPABASE, {
    args: ['migration', 'up', '--db-url', withDatabase(databaseUrl(), database, true)],
    cwd: ROOT,
    env: { SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', NO_COLOR: '1' },
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `supabase migration up failed:\n${text}`);
  return text;
}

async function withScratchDatabase(
  name: string,
  body: (database: string) => Promise<void>,
): Promise<void> {
  const database = `qh_install_${name}_${Deno.pid}`;
  const sql = connect({ max: 1 });
  try {
    await sql.unsafe(`drop database if exists ${database}`);
    await sql.unsafe(`create database ${database}`); // postgres has CREATEDB on hosted
    await body(database);
  } finally {
    await sql.unsafe(`drop database if exists ${database} with (force)`).catch(() => {});
    await sql.end();
  }
}

async function policyState(database: string) {
  const sql = connect({ url: withDatabase(databaseUrl(), database), max: 1 });
  try {
    const [row] = await sql<{ user: string; policy: boolean; comment: string | null }[]>`
      select current_user as user,
             exists (select 1 from pg_policy p where p.polrelid = to_regclass('realtime.messages')
                      and p.polname = ${POLICY}) as policy,
             (select obj_description(p.oid, 'pg_policy') from pg_policy p
               where p.polrelid = to_regclass('realtime.messages') and p.polname = ${POLICY}) as comment`;
    return row;
  } finally {
    await sql.end();
  }
}

Deno.test("migrations install as postgres where realtime.messages is Realtime's and its policies cannot be commented", async () => {
  await withScratchDatabase('rt', async (database) => {
    await buildPlatform(database, true);
    await migrationUp(database);
    const state = await policyState(database);
    assert.equal(state.user, 'postgres');
    assert.equal(state.policy, true, 'the Realtime policy is installed by the migration');
    assert.equal(state.comment, null, 'postgres may not comment on it, and the install went on');
  });
});

Deno.test('migrations install before Realtime has connected; the policy follows once its table exists', async () => {
  await withScratchDatabase('nort', async (database) => {
    await buildPlatform(database, false);
    await migrationUp(database);
    assert.equal((await policyState(database)).policy, false);
    const notices: string[] = [];
    const before = connect({
      url: withDatabase(databaseUrl(), database),
      max: 1,
      onNotice: (m) => notices.push(m),
    });
    try {
      const [{ r }] = await before`select queue_health.install_realtime_policy() as r`;
      assert.equal(r, 'realtime_absent');
      assert.match(
        notices.join('\n'),
        /realtime\.messages does not exist yet/,
        'a notice says why',
      );
    } finally {
      await before.end();
    }

    // Realtime connects and creates its table; then schedule() (or this call) installs the policy.
    await buildPlatform(database, true);
    const sql = connect({ url: withDatabase(databaseUrl(), database), max: 1 });
    try {
      const [{ r }] = await sql`select queue_health.install_realtime_policy() as r`;
      assert.equal(r, 'installed');
      const [{ again }] = await sql`select queue_health.install_realtime_policy() as again`;
      assert.equal(again, 'installed', 'running it again is harmless');
    } finally {
      await sql.end();
    }
    assert.equal((await policyState(database)).policy, true);
  });
});
