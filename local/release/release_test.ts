/**
 * The release tooling on scratch checkouts and on a real database: `npm run manifest` fails when
 * a released migration changes, `--release` records a version and refuses to unfreeze one, and
 * `npm run bundle` writes one transaction-safe file per version (applied here as the SQL editor
 * would, as postgres, to a fresh hosted-like database: it installs, and a failing statement leaves
 * nothing behind) plus an upgrade bundle between consecutive released versions.
 * @module
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyPlatformSql } from '../stack/migrate.ts';
import { connect } from '../test/db.ts';
import { createPrivateDatabase } from '../test/private_db.ts';
import { assertTransactionSafe } from './bundle.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const DENO = join(ROOT, 'node_modules', '.bin', 'deno');

async function script(name: string, args: string[]) {
  const out = await new Deno.Command(DENO, {
    args: ['run', '-A', '--quiet', join(ROOT, 'local', 'release', name), ...args],
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

/** A checkout with only what the release scripts read. */
async function scratchCheckout(version: string, files: Record<string, string>): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: 'qh_release_' });
  mkdirSync(join(root, 'supabase', 'migrations'), { recursive: true });
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version }));
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(root, 'supabase', 'migrations', name), text);
  }
  return root;
}

function setVersion(root: string, version: string) {
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version }));
}

Deno.test('manifest: records releases, and fails when a released file changes', async () => {
  const root = await scratchCheckout('1.0.0', {
    '20260101000000_a.sql': 'create table a (id int);\n',
    '20260101000100_b.sql': 'create table b (id int);\n',
  });
  try {
    const none = await script('manifest.ts', ['--root', root]);
    assert.equal(none.code, 0, none.text);
    assert.match(none.text, /nothing released/);

    const rel = await script('manifest.ts', ['--root', root, '--release']);
    assert.equal(rel.code, 0, rel.text);
    const manifest = JSON.parse(
      readFileSync(join(root, 'supabase', 'migrations.manifest.json'), 'utf8'),
    );
    assert.deepEqual(Object.keys(manifest.versions['1.0.0'].files), [
      '20260101000000_a.sql',
      '20260101000100_b.sql',
    ]);
    assert.equal((await script('manifest.ts', ['--root', root])).code, 0);
    const again = await script('manifest.ts', ['--root', root, '--release']);
    assert.match(
      again.text,
      /already recorded/,
      'recording the same release twice changes nothing',
    );

    // New work is a new file: fine, reported as unreleased.
    writeFileSync(
      join(root, 'supabase', 'migrations', '20260201000000_c.sql'),
      'create table c (id int);\n',
    );
    const fresh = await script('manifest.ts', ['--root', root]);
    assert.equal(fresh.code, 0, fresh.text);
    assert.match(fresh.text, /1 unreleased file\(s\): 20260201000000_c\.sql/);

    // Editing a released file fails the check, naming the file and the version.
    const b = join(root, 'supabase', 'migrations', '20260101000100_b.sql');
    writeFileSync(b, 'create table b (id bigint);\n');
    const edited = await script('manifest.ts', ['--root', root]);
    assert.equal(edited.code, 1, edited.text);
    assert.match(edited.text, /1\.0\.0: 20260101000100_b\.sql changed after its release/);
    setVersion(root, '1.1.0');
    const refused = await script('manifest.ts', ['--root', root, '--release']);
    assert.equal(refused.code, 1, 'a new release cannot unfreeze an older one');
    assert.match(refused.text, /20260101000100_b\.sql changed after its release/);
    setVersion(root, '1.0.0');
    writeFileSync(b, 'create table b (id int);\n');

    // The same version with other files is refused without --replace.
    const same = await script('manifest.ts', ['--root', root, '--release']);
    assert.equal(same.code, 1);
    assert.match(same.text, /already released with other files/);

    // A deleted released file fails too.
    Deno.removeSync(join(root, 'supabase', 'migrations', '20260101000000_a.sql'));
    const gone = await script('manifest.ts', ['--root', root]);
    assert.equal(gone.code, 1);
    assert.match(gone.text, /20260101000000_a\.sql is gone/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test('bundle: one file per version and an upgrade bundle between consecutive versions', async () => {
  const root = await scratchCheckout('1.0.0', {
    '20260101000000_a.sql': 'create table a (id int);\n',
    '20260101000100_b.sql':
      'create function f() returns void language plpgsql as $$ begin commit; end $$;\n',
  });
  try {
    assert.equal((await script('manifest.ts', ['--root', root, '--release'])).code, 0);
    writeFileSync(
      join(root, 'supabase', 'migrations', '20260201000000_c.sql'),
      'create table c (id int);\n',
    );
    setVersion(root, '1.1.0');
    assert.equal((await script('manifest.ts', ['--root', root, '--release'])).code, 0);
    const out = join(root, 'dist');
    const r = await script('bundle.ts', ['--root', root, '--out', out]);
    assert.equal(r.code, 0, r.text);
    assert.deepEqual(readdirSync(out).sort(), [
      'queue_health--1.0.0--1.1.0.sql',
      'queue_health--1.1.0.sql',
    ]);
    const full = readFileSync(join(out, 'queue_health--1.1.0.sql'), 'utf8');
    const order = ['_a.sql', '_b.sql', '_c.sql'].map((n) => full.indexOf(`${n} (sha256`));
    assert.ok(
      order.every((at, i) => at > 0 && (i === 0 || at > order[i - 1])),
      'all files, in order',
    );
    assert.match(full, /^begin;$[\s\S]*^commit;$/m);
    const upgrade = readFileSync(join(out, 'queue_health--1.0.0--1.1.0.sql'), 'utf8');
    assert.ok(upgrade.includes('create table c'));
    assert.ok(!upgrade.includes('create table a'), 'the upgrade bundle holds only what is new');

    writeFileSync(join(root, 'supabase', 'migrations', '20260301000000_d.sql'), 'vacuum a;\n');
    setVersion(root, '1.2.0');
    const unsafe = await script('bundle.ts', ['--root', root, '--out', out]);
    assert.equal(unsafe.code, 1);
    assert.match(unsafe.text, /20260301000000_d\.sql: `vacuum` cannot run inside/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  assert.throws(() => assertTransactionSafe('x.sql', 'select 1;\ncommit;\n'), /`commit`/);
  assert.throws(() => assertTransactionSafe('x.sql', 'create index concurrently i on t (a);'));
  assertTransactionSafe(
    'x.sql',
    "select 'commit;'; -- commit;\n/* begin; */ do $x$ begin commit; end $x$;",
  );
});

Deno.test('bundle of this checkout installs Queue Health as postgres in one transaction', async () => {
  const out = await Deno.makeTempDir({ prefix: 'qh_bundle_' });
  const good = await createPrivateDatabase('qh_bundle');
  const bad = await createPrivateDatabase('qh_bundle_bad');
  try {
    const r = await script('bundle.ts', ['--out', out]);
    assert.equal(r.code, 0, r.text);
    const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
    const text = readFileSync(join(out, `queue_health--${version}.sql`), 'utf8');
    for (const db of [good, bad]) await applyPlatformSql(db.superuserUrl);

    // As the SQL editor sends it: one simple-protocol query with every statement.
    const sql = connect({ url: good.url, max: 1 });
    try {
      await sql.unsafe(text);
      const [{ user, n }] = await sql`
        select current_user as user,
               (select count(*)::int from pg_catalog.pg_proc
                 where pronamespace = 'queue_health'::regnamespace) as n`;
      assert.equal(user, 'postgres');
      assert.ok(n > 20, `queue_health has its functions (${n})`);
      await sql`select queue_health.capture()`;
    } finally {
      await sql.end();
    }

    // A statement failing at the end leaves nothing behind: the bundle is one transaction.
    const broken = text.replace(/^commit;$/m, 'select 1 / 0;\ncommit;');
    const sql2 = connect({ url: bad.url, max: 1 });
    try {
      await assert.rejects(() => sql2.unsafe(broken), /division by zero/);
    } finally {
      await sql2.end(); // its session is left in the failed transaction, as an editor's would be
    }
    const sql3 = connect({ url: bad.url, max: 1 });
    try {
      const [{ schema }] = await sql3`select to_regnamespace('queue_health') is not null as schema`;
      assert.equal(schema, false);
    } finally {
      await sql3.end();
    }
  } finally {
    await good.drop();
    await bad.drop();
    await Deno.remove(out, { recursive: true });
  }
});
