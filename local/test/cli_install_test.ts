/**
 * The queue-health CLI as a user meets it: the package is packed with `npm pack` and run from the
 * tarball with `npx` (offline, with an empty npm cache: nothing is fetched), against a scratch
 * project made by the real `supabase init` that already has a migration of its own (a table and a
 * pgmq queue). The project's migrations are then applied with the real `supabase migration up` to
 * a fresh database built like a hosted project, a capture sees the user's queue, and `status`
 * reads the version from the files and the database. Around that: a second install changes
 * nothing, --dry-run writes nothing, an edited file is refused, bad projects and flags fail
 * clearly, and `upgrade` to a synthetic next version adds only what is new.
 * @module
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { connect } from './db.ts';
import { createHostedDatabase, type PrivateDatabase } from './private_db.ts';
import { ok, type Ran, run } from './commands.ts';
import { withSslDisabled } from '../stack/config.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const SUPABASE = join(ROOT, 'node_modules', '.bin', 'supabase');
const PACKAGE_VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
}).version;
const PACKAGE_MIGRATIONS = readdirSync(join(ROOT, 'supabase', 'migrations'))
  .filter((n) => /^\d+_.+\.sql$/.test(n)).sort();

/** Every file under `dir` (relative path → SHA-256), to see that a run changed nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const temps: string[] = [];
async function tempDir(prefix: string): Promise<string> {
  const d = await Deno.makeTempDir({ prefix });
  temps.push(d);
  return d;
}

/** `npm pack` of this checkout (prepack builds dist/cli.mjs); the tarball's path. */
async function pack(): Promise<string> {
  const dest = await tempDir('qh_pack_');
  const r = ok(
    await run('npm', ['pack', '--pack-destination', dest, '--silent'], ROOT),
    'npm pack',
  );
  const name = r.stdout.trim().split('\n').at(-1)!;
  assert.match(name, /^queue-health-.+\.tgz$/);
  return join(dest, name);
}

/** A project from `supabase init`, with a migration of its own: a table and a pgmq queue. */
async function scratchProject(): Promise<{ dir: string; own: string }> {
  const dir = await tempDir('qh_scratch_');
  ok(await run(SUPABASE, ['init'], dir), 'supabase init');
  ok(await run(SUPABASE, ['migration', 'new', 'orders'], dir), 'supabase migration new');
  const own = readdirSync(join(dir, 'supabase', 'migrations'))[0];
  await Deno.writeTextFile(
    join(dir, 'supabase', 'migrations', own),
    `create table public.orders (id bigint generated always as identity primary key, item text);
select pgmq.create('cli_orders');
select pgmq.send('cli_orders', '{"order": 1}'::jsonb);
`,
  );
  return { dir, own };
}

let npmCache: string;
/** `npx` of the tarball, offline with an empty cache of its own: proves nothing is downloaded. */
function npx(tarball: string, args: string[], cwd = ROOT): Promise<Ran> {
  return run('npx', ['--yes', `--package=${tarball}`, 'queue-health', ...args], cwd, {
    npm_config_cache: npmCache,
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
  });
}

/** A database built like a hosted project with pgmq enabled (the fixture stands in for it). */

Deno.test('queue-health CLI from the packed tarball: install, apply, capture, status, upgrade', async (t) => {
  npmCache = await tempDir('qh_npm_cache_');
  const tarball = await pack();
  const { dir, own } = await scratchProject();
  const configBefore = readFileSync(join(dir, 'supabase', 'config.toml'), 'utf8');
  let db: PrivateDatabase | undefined;
  try {
    await t.step('--version and --help', async () => {
      assert.equal(
        ok(await npx(tarball, ['--version']), '--version').stdout.trim(),
        PACKAGE_VERSION,
      );
      const help = ok(await npx(tarball, ['--help']), '--help').stdout;
      for (const word of ['install', 'upgrade', 'status', '--dir', '--dry-run', '--db-url']) {
        assert.ok(help.includes(word), `--help mentions ${word}`);
      }
    });

    await t.step('--dry-run lists the changes and writes nothing', async () => {
      const before = snapshot(dir);
      const r = ok(await npx(tarball, ['install', '--dir', dir, '--dry-run']), 'install --dry-run');
      assert.match(r.stdout, /dry run, nothing written/);
      assert.equal(
        r.stdout.match(/\+ create supabase\/migrations\//g)?.length,
        PACKAGE_MIGRATIONS.length,
      );
      assert.deepEqual(snapshot(dir), before);
    });

    await t.step('install copies migrations, functions and config blocks', async () => {
      const r = ok(await npx(tarball, ['install', '--dir', dir]), 'install');
      for (
        const step of [
          'supabase db push',
          'supabase functions deploy queue-health',
          'supabase functions deploy queue-alert',
          'supabase secrets set',
          'select queue_health.schedule();',
          'queue_health.project_member',
        ]
      ) {
        assert.ok(r.stdout.includes(step), `next steps mention ${step}`);
      }
      const names = readdirSync(join(dir, 'supabase', 'migrations')).sort();
      assert.equal(names[0], own, "the user's migration still sorts first");
      const ours = names.slice(1);
      assert.equal(ours.length, PACKAGE_MIGRATIONS.length);
      ours.forEach((name, i) => {
        const text = readFileSync(join(dir, 'supabase', 'migrations', name), 'utf8');
        const first = text.slice(0, text.indexOf('\n'));
        assert.ok(
          first.includes(`queue-health ${PACKAGE_VERSION} `),
          `${name}: header names the version`,
        );
        assert.ok(
          first.includes(`source ${PACKAGE_MIGRATIONS[i]} `),
          `${name}: header names its source`,
        );
        const body = readFileSync(
          join(ROOT, 'supabase', 'migrations', PACKAGE_MIGRATIONS[i]),
          'utf8',
        );
        assert.ok(text.endsWith(body), `${name}: the body is the package's file unchanged`);
      });
      for (const fn of ['queue-health', 'queue-alert']) {
        assert.ok(existsSync(join(dir, 'supabase', 'functions', fn, 'index.ts')));
        assert.ok(existsSync(join(dir, 'supabase', 'functions', fn, 'deno.json')));
      }
      const copied = Object.keys(snapshot(join(dir, 'supabase', 'functions')));
      assert.ok(copied.some((p) => p.startsWith('_shared/')), '_shared comes along');
      assert.deepEqual(
        copied.filter((p) => /_test\.ts$|(^|\/)test_/.test(p)),
        [],
        'no tests, no fixtures',
      );
      const config = readFileSync(join(dir, 'supabase', 'config.toml'), 'utf8');
      assert.ok(
        config.startsWith(configBefore),
        'config.toml: everything before is kept as it was',
      );
      const parsed = parseToml(config) as { functions: Record<string, { verify_jwt: boolean }> };
      assert.equal(parsed.functions['queue-health'].verify_jwt, false);
      assert.equal(parsed.functions['queue-alert'].verify_jwt, false);
      const { functions: _, ...rest } = parsed;
      const { functions: __, ...restBefore } = parseToml(configBefore) as Record<string, unknown>;
      assert.deepEqual(JSON.parse(JSON.stringify(rest)), JSON.parse(JSON.stringify(restBefore)));
    });

    await t.step('a second install changes nothing and says so', async () => {
      const before = snapshot(dir);
      const r = ok(await npx(tarball, ['install', '--dir', dir]), 'second install');
      assert.match(r.stdout, /already installed .*nothing to change/);
      assert.deepEqual(snapshot(dir), before);
    });

    await t.step('status: the version in the files; the database before migrations', async () => {
      db = await createHostedDatabase('qh_cli');
      const r = ok(
        await npx(tarball, ['status', '--dir', dir, '--db-url', withSslDisabled(db.url)]),
        'status',
      );
      assert.match(
        r.stdout,
        new RegExp(
          `Files: +${
            PACKAGE_VERSION.replaceAll('.', '\\.')
          } \\(${PACKAGE_MIGRATIONS.length} migration`,
        ),
      );
      assert.match(r.stdout, /up to date/);
      assert.match(r.stdout, /Database: +not installed/);
    });

    await t.step(
      'supabase migration up applies the project; a capture sees its pgmq queue',
      async () => {
        ok(
          await run(SUPABASE, ['migration', 'up', '--db-url', withSslDisabled(db!.url)], dir),
          'supabase migration up',
        );
        const sql = connect({ url: db!.url, max: 1 });
        try {
          const [{ user }] = await sql`select current_user as user`;
          assert.equal(user, 'postgres');
          await sql`select queue_health.capture()`;
          const rows = await sql`
          select source, queue_name from queue_health.queue where queue_name = 'cli_orders'`;
          assert.deepEqual(rows.map((r) => ({ ...r })), [{
            source: 'pgmq',
            queue_name: 'cli_orders',
          }]);
          const [{ applied }] = await sql`
          select count(*)::int as applied from supabase_migrations.schema_migrations`;
          assert.equal(applied, 1 + PACKAGE_MIGRATIONS.length);
          const [{ versioned }] = await sql`
          select to_regprocedure('queue_health.version()') is not null as versioned`;
          const r = ok(
            await npx(tarball, ['status', '--db-url', withSslDisabled(db!.url)]),
            'status',
          );
          if (versioned) {
            const [{ v }] = await sql`select queue_health.version() as v`;
            assert.match(
              r.stdout,
              new RegExp(`Database: +${String(v).replaceAll('.', '\\.')}$`, 'm'),
            );
          } else assert.match(r.stdout, /Database: +installed before versioning/);
        } finally {
          await sql.end();
        }
      },
    );

    await t.step('an edited migration is refused, and nothing is written', async () => {
      const name = readdirSync(join(dir, 'supabase', 'migrations')).sort().at(-1)!;
      const path = join(dir, 'supabase', 'migrations', name);
      const original = readFileSync(path, 'utf8');
      await Deno.writeTextFile(path, original + '\n-- my own change\n');
      const before = snapshot(dir);
      for (const command of ['install', 'upgrade']) {
        const r = await npx(tarball, [command, '--dir', dir]);
        assert.equal(r.code, 1, `${command} refuses: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, new RegExp(`${name} was edited after Queue Health`));
        assert.match(r.stderr, /supabase migration new/, 'says how to resolve it');
      }
      assert.deepEqual(snapshot(dir), before);
      const st = ok(await npx(tarball, ['status', '--dir', dir]), 'status');
      assert.match(st.stdout, new RegExp(`edited: +supabase/migrations/${name}`));
      await Deno.writeTextFile(path, original);
    });

    await t.step('an edited function file is refused', async () => {
      const path = join(dir, 'supabase', 'functions', '_shared', 'log.ts');
      const original = readFileSync(path, 'utf8');
      await Deno.writeTextFile(path, original + '// mine\n');
      const r = await npx(tarball, ['upgrade', '--dir', dir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /_shared\/log\.ts exists and is not the file Queue Health wrote/);
      assert.equal(readFileSync(path, 'utf8'), original + '// mine\n');
      await Deno.writeTextFile(path, original);
    });

    await t.step('bad projects and bad flags fail clearly', async () => {
      const missing = await npx(tarball, ['install', '--dir', join(dir, 'no-such-dir')]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /no-such-dir: no such directory/);
      const empty = await tempDir('qh_empty_');
      const bare = await npx(tarball, ['install', '--dir', empty]);
      assert.equal(bare.code, 1);
      assert.match(bare.stderr, /no supabase\/config\.toml/);
      assert.match(bare.stderr, /supabase init/);
      const noDir = await npx(tarball, ['install'], empty);
      assert.equal(noDir.code, 1, 'without --dir, a folder outside any project');
      assert.match(noDir.stderr, /No supabase\/config\.toml in /);
      await Deno.mkdir(join(empty, 'supabase'));
      await Deno.writeTextFile(join(empty, 'supabase', 'config.toml'), 'project_id = "x"\n[api\n');
      const odd = await npx(tarball, ['install', '--dir', empty]);
      assert.equal(odd.code, 1);
      assert.match(odd.stderr, /not valid TOML/);
      assert.equal(
        readFileSync(join(empty, 'supabase', 'config.toml'), 'utf8'),
        'project_id = "x"\n[api\n',
      );
      assert.equal(existsSync(join(empty, 'supabase', 'migrations')), false);
      const copied = await tempDir('qh_by_hand_');
      await Deno.mkdir(join(copied, 'supabase', 'migrations'), { recursive: true });
      await Deno.writeTextFile(join(copied, 'supabase', 'config.toml'), 'project_id = "x"\n');
      await Deno.copyFile(
        join(ROOT, 'supabase', 'migrations', PACKAGE_MIGRATIONS[0]),
        join(copied, 'supabase', 'migrations', `20250101000000_${PACKAGE_MIGRATIONS[0].slice(15)}`),
      );
      const byHand = await npx(tarball, ['install', '--dir', copied]);
      assert.equal(byHand.code, 1);
      assert.match(byHand.stderr, /is a Queue Health migration copied without this CLI/);
      for (
        const args of [['install', '--force'], ['instal'], ['status', '--dry-run'], [
          'install',
          '--dir',
        ]]
      ) {
        const r = await npx(tarball, args);
        assert.equal(r.code, 2, `${args.join(' ')}: usage error`);
        assert.match(r.stderr, /queue-health: .+\nRun `queue-health --help`/);
      }
    });

    await t.step('upgrade to a synthetic next version adds only the new migration', async () => {
      // The tarball unpacked and changed as a next release would be: a new migration, a newer
      // version, a changed function file. Run with node directly (npx would need it packed again).
      const unpacked = await tempDir('qh_next_');
      ok(await run('tar', ['xzf', tarball, '-C', unpacked], ROOT), 'tar');
      const pkg = join(unpacked, 'package');
      const meta = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
      meta.version = '99.0.0';
      await Deno.writeTextFile(join(pkg, 'package.json'), JSON.stringify(meta));
      await Deno.writeTextFile(
        join(pkg, 'supabase', 'migrations', '29990101000000_queue_health_next.sql'),
        'create table queue_health.next_release_marker (id int);\n',
      );
      const index = join(pkg, 'supabase', 'functions', 'queue-health', 'index.ts');
      await Deno.writeTextFile(index, readFileSync(index, 'utf8') + '// next release\n');
      const next = (args: string[]) => run('node', [join(pkg, 'dist', 'cli.mjs'), ...args], ROOT);

      const install = await next(['install', '--dir', dir]);
      assert.equal(install.code, 1);
      assert.match(install.stderr, /Run `queue-health upgrade`/);
      const before = snapshot(dir);
      const dry = ok(await next(['upgrade', '--dir', dir, '--dry-run']), 'upgrade --dry-run');
      assert.match(dry.stdout, /\+ create supabase\/migrations\/\d{14}_queue_health_next\.sql/);
      assert.match(dry.stdout, /~ update supabase\/functions\/queue-health\/index\.ts/);
      assert.deepEqual(snapshot(dir), before);

      ok(await next(['upgrade', '--dir', dir]), 'upgrade');
      const after = snapshot(dir);
      const added = Object.keys(after).filter((p) => !(p in before));
      assert.equal(added.length, 1, `one new file: ${added}`);
      assert.match(added[0], /^supabase\/migrations\/\d{14}_queue_health_next\.sql$/);
      assert.ok(readFileSync(join(dir, added[0]), 'utf8').startsWith('-- queue-health 99.0.0 '));
      const changed = Object.keys(before).filter((p) => after[p] !== before[p]).sort();
      assert.deepEqual(changed, [
        'supabase/functions/queue-health/index.ts',
        'supabase/queue-health.lock.json',
      ]);
      const again = ok(await next(['upgrade', '--dir', dir]), 'second upgrade');
      assert.match(again.stdout, /already current.*nothing to change/);
      assert.match(ok(await next(['status', '--dir', dir]), 'status').stdout, /Files: +99\.0\.0 /);

      ok(
        await run(SUPABASE, ['migration', 'up', '--db-url', withSslDisabled(db!.url)], dir),
        'supabase migration up after the upgrade',
      );
      const sql = connect({ url: db!.url, max: 1 });
      try {
        const [{ marker, queues }] = await sql`
          select to_regclass('queue_health.next_release_marker') is not null as marker,
                 (select count(*)::int from queue_health.queue where queue_name = 'cli_orders') as queues`;
        assert.equal(marker, true);
        assert.equal(queues, 1, 'what was there before the upgrade is still there');
      } finally {
        await sql.end();
      }
    });
  } finally {
    await db?.drop();
    for (const d of temps) await Deno.remove(d, { recursive: true }).catch(() => {});
  }
});
