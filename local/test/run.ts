/**
 * `npm test` (entry: main.ts): installs what is missing, recreates the test stack (functions
 * server in test mode), then runs every check and test suite and ends with one line
 * `N passed, N failed`.
 *
 * Steps: deno fmt --check, deno lint, deno check, supabase db lint, supabase db advisors (no
 * WARN/ERROR on queue_health objects), pgTAP (pg_prove over
 * supabase/tests/database), Deno tests (*_test.ts: among them promtool check metrics / check
 * rules / test rules and the real Prometheus scraping the functions server), and the quick
 * benchmark run.
 * `npm test -- --only=pgtap,deno` runs a subset; `--keep` leaves the test stack running after.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  databaseUrl,
  DB_PORT,
  ROOT,
  STATE_DIR,
  superuserUrl,
  usesExternalDatabase,
  withSslDisabled,
} from '../stack/config.ts';
import { functionEnv } from '../stack/env.ts';
import { log, StackError } from '../stack/log.ts';
import { connect } from '../stack/postgres.ts';
import { down, reset, up } from '../stack/stack.ts';
import { ensureDebianPackages } from '../stack/system.ts';
import { z } from 'zod';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const SUPABASE = join(ROOT, 'node_modules', '.bin', 'supabase');

interface StepResult {
  name: string;
  passed: number;
  failed: number;
  seconds: number;
  note?: string;
}

const results: StepResult[] = [];
const only = Deno.args.find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',');
const wanted = (name: string) => !only || only.includes(name);

/** QH_SUPERUSER_URL for the test and bench processes (the platform superuser, when there is one). */
function superuserEnv(): Record<string, string> {
  const url = superuserUrl();
  return url ? { QH_SUPERUSER_URL: url } : {};
}

/** Runs a command, streaming its output, and returns its exit code and full output. */
async function stream(
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: '1', ...env },
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn();
  let output = '';
  const dec = new TextDecoder();
  const pump = async (s: ReadableStream<Uint8Array>, out: typeof Deno.stdout) => {
    for await (const chunk of s) {
      output += dec.decode(chunk, { stream: true });
      await out.write(chunk);
    }
  };
  await Promise.all([pump(child.stdout, Deno.stdout), pump(child.stderr, Deno.stderr)]);
  const { code } = await child.status;
  return { code, output };
}

async function step(name: string, fn: () => Promise<Omit<StepResult, 'name' | 'seconds'>>) {
  if (!wanted(name)) return;
  console.log(`\n━━━ ${name} ━━━`);
  const t0 = performance.now();
  let r: Omit<StepResult, 'name' | 'seconds'>;
  try {
    r = await fn();
  } catch (e) {
    r = { passed: 0, failed: 1, note: e instanceof Error ? e.message : String(e) };
    log.fail(`${name}: ${r.note}`);
  }
  const seconds = (performance.now() - t0) / 1000;
  results.push({ name, seconds, ...r });
  (r.failed ? log.fail : log.ok)(
    `${name}: ${r.passed} passed, ${r.failed} failed (${seconds.toFixed(1)} s)${
      r.note ? ` — ${r.note}` : ''
    }`,
  );
}

/** A check that either passes or fails as a whole. */
async function check(cmd: string, args: string[], env: Record<string, string> = {}) {
  const { code } = await stream(cmd, args, env);
  return { passed: code === 0 ? 1 : 0, failed: code === 0 ? 0 : 1 };
}

/** Prepares the database for tests: pgTAP, the tests.* helpers, the pgmq fixture. */
async function prepareDatabase(): Promise<void> {
  const sql = connect(databaseUrl());
  try {
    // Scheduled captures would race with tests that measure deltas between two captures.
    const [{ has }] =
      await sql`select to_regprocedure('queue_health.unschedule()') is not null as has`;
    if (has) {
      const [{ n }] = await sql`
        select count(*)::int as n from pg_catalog.pg_namespace where nspname = 'cron'`;
      if (n) await sql`select queue_health.unschedule()`;
    }
    await sql`create extension if not exists pgtap with schema extensions`;
    await sql.unsafe(await Deno.readTextFile(join(ROOT, 'supabase', 'tests', 'helpers.sql')));
    const [{ real }] = await sql`
      select exists (select 1 from pg_catalog.pg_extension where extname = 'pgmq') as real`;
    const fixture = join(ROOT, 'supabase', 'tests', 'fixtures', 'pgmq.sql');
    // The fixture is safe to reload: loading it always keeps an edited fixture current. As on
    // hosted, the superuser installs pgmq and hands its objects to postgres (after-create).
    const admin = superuserUrl();
    if (!real && existsSync(fixture)) {
      const asAdmin = admin ? connect(admin) : sql;
      try {
        await asAdmin.unsafe(await Deno.readTextFile(fixture));
        await asAdmin.unsafe(
          await Deno.readTextFile(join(ROOT, 'local', 'stack', 'sql', 'pgmq_after_create.sql')),
        );
      } finally {
        if (asAdmin !== sql) await asAdmin.end({ timeout: 1 });
      }
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * Security-advisor findings on queue_health objects that stay, each explained in
 * docs/security-advisors.md (`<lint name>:<schema>.<object>`). None at present.
 */
const ADVISOR_ACCEPTED = new Set<string>();

const advisorReport = z.object({
  results: z.array(
    z.object({
      name: z.string(),
      level: z.enum(['INFO', 'WARN', 'ERROR']),
      detail: z.string(),
      metadata: z.object({ schema: z.string().optional(), name: z.string().optional() })
        .passthrough().nullish(),
    }).passthrough(),
  ),
});

/**
 * Supabase's security and performance advisor (`supabase db advisors`, the pinned CLI): fails on
 * any WARN or ERROR about an object in schema queue_health that is not in ADVISOR_ACCEPTED (other
 * schemas' findings, pg-boss's or the platform's, are not ours); prints queue_health's INFO items.
 */
async function advisors() {
  const out = await new Deno.Command(SUPABASE, {
    args: [
      'db',
      'advisors',
      '--db-url',
      withSslDisabled(databaseUrl()),
      '--type',
      'all',
      '--level',
      'info',
      '--output-format',
      'json',
    ],
    cwd: ROOT,
    env: { NO_COLOR: '1' },
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    await Deno.stderr.write(out.stderr);
    return { passed: 0, failed: 1, note: `supabase db advisors exited ${out.code}` };
  }
  const parsed = advisorReport.safeParse(JSON.parse(text.slice(text.indexOf('{'))));
  if (!parsed.success) {
    return { passed: 0, failed: 1, note: `advisor output: ${parsed.error.issues[0]?.message}` };
  }
  const ours = parsed.data.results.filter((r) => r.metadata?.schema === 'queue_health');
  const blocking = ours.filter((r) =>
    r.level !== 'INFO' && !ADVISOR_ACCEPTED.has(`${r.name}:queue_health.${r.metadata?.name}`)
  );
  for (const r of ours) {
    const mark = blocking.includes(r) ? '✗' : r.level === 'INFO' ? '·' : '✓ accepted';
    console.log(`${mark} ${r.level} ${r.name}: ${r.detail}`);
  }
  console.log(
    `${ours.length} finding(s) on queue_health, ${blocking.length} WARN/ERROR not accepted; ` +
      `${parsed.data.results.length - ours.length} on other schemas (not ours)`,
  );
  return blocking.length
    ? { passed: 0, failed: 1, note: `${blocking.length} WARN/ERROR on queue_health objects` }
    : { passed: 1, failed: 0 };
}

async function pgTap() {
  const dir = join(ROOT, 'supabase', 'tests', 'database');
  const files = [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith('.sql')).map((e) =>
    join('supabase', 'tests', 'database', e.name)
  ).sort();
  if (files.length === 0) return { passed: 0, failed: 1, note: 'no pgTAP files found' };
  const u = new URL(databaseUrl());
  const { code, output } = await stream('pg_prove', [
    '--verbose',
    '--host',
    u.hostname,
    '--port',
    u.port || '5432',
    '--username',
    decodeURIComponent(u.username),
    '--dbname',
    u.pathname.slice(1),
    ...files,
  ], { PGPASSWORD: decodeURIComponent(u.password) });
  const ok = output.match(/^ok \d+/gm)?.length ?? 0;
  const notOk = output.match(/^not ok \d+/gm)?.length ?? 0;
  const broken = output.match(/Dubious, test returned/g)?.length ?? 0;
  const failed = notOk + (code !== 0 && notOk === 0 ? Math.max(broken, 1) : 0);
  return { passed: ok, failed };
}

async function denoTests() {
  const { code, output } = await stream(DENO, [
    'test',
    '-A',
    '--no-check',
    '--quiet',
  ], {
    DATABASE_URL: databaseUrl(),
    ...superuserEnv(),
    QH_TEST_ARTIFACTS: join(ROOT, '.test-artifacts'),
    ...(await functionEnv()),
  });
  const m = output.match(/(\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/);
  if (!m) {
    return { passed: 0, failed: 1, note: `could not read deno test's summary (exit ${code})` };
  }
  const failed = Number(m[2]);
  return { passed: Number(m[1]), failed: failed || (code !== 0 ? 1 : 0) };
}

async function main(): Promise<number> {
  const t0 = performance.now();
  try {
    await ensureDebianPackages([
      { name: 'chromium', probe: '/usr/bin/chromium' },
      // The real Prometheus and promtool (2.42 on bookworm) for the exposition and rules tests;
      // its package may start a daemon on :9090, which is stopped again at once.
      { name: 'prometheus', probe: '/usr/bin/prometheus', services: ['prometheus'] },
      { name: 'prometheus', probe: '/usr/bin/promtool', services: ['prometheus'] },
    ]);
    if (usesExternalDatabase()) {
      await up({ serverMode: 'test' });
    } else {
      log.step(`recreating the test stack in ${STATE_DIR} (database on 127.0.0.1:${DB_PORT})`);
      await reset({ serverMode: 'test' });
    }
    await prepareDatabase();
  } catch (e) {
    log.fail(e instanceof StackError ? e.message : `setting up failed: ${(e as Error).stack}`);
    // Leave nothing running: a half-started test stack would hold its ports for the next run.
    if (!usesExternalDatabase() && !Deno.args.includes('--keep')) {
      await down().catch((err) => log.warn(`stopping the test stack: ${err.message}`));
    }
    console.log('\n0 passed, 1 failed');
    return 1;
  }
  log.ok(`stack ready (database on 127.0.0.1:${DB_PORT})`);

  await step('fmt', () => check(DENO, ['fmt', '--check']));
  await step('lint', () => check(DENO, ['lint']));
  await step(
    'typecheck',
    () =>
      check(DENO, [
        'check',
        'supabase/functions',
        'cli',
        'local',
        ...(existsSync(join(ROOT, 'bench')) ? ['bench'] : []),
      ]),
  );
  await step(
    'db-lint',
    () =>
      check(SUPABASE, [
        'db',
        'lint',
        '--db-url',
        withSslDisabled(databaseUrl()),
        '--schema',
        'queue_health',
        '--level',
        'warning',
        '--fail-on',
        'error',
      ]),
  );
  await step('advisors', advisors);
  // Released migrations are frozen: fails when a file listed in the manifest changed.
  await step('manifest', () => check(DENO, ['run', '-A', '--quiet', 'local/release/manifest.ts']));
  await step('pgtap', pgTap);
  await step('deno', denoTests);
  if (existsSync(join(ROOT, 'bench', 'main.ts'))) {
    await step(
      'bench-quick',
      () =>
        check(DENO, ['run', '-A', '--quiet', 'bench/main.ts', '--quick'], {
          DATABASE_URL: databaseUrl(),
          ...superuserEnv(),
        }),
    );
  }

  if (!usesExternalDatabase() && !Deno.args.includes('--keep')) {
    await down().catch((e) => log.warn(`stopping the test stack: ${e.message}`));
  }

  console.log('\n━━━ summary ━━━');
  for (const r of results) {
    console.log(
      `${r.failed ? '✗' : '✓'} ${r.name.padEnd(12)} ${String(r.passed).padStart(4)} passed ${
        String(r.failed).padStart(3)
      } failed  ${r.seconds.toFixed(1).padStart(6)} s`,
    );
  }
  const passed = results.reduce((a, r) => a + r.passed, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  console.log(`total time ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  console.log(`\n${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

Deno.exit(await main());
