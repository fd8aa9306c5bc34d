/**
 * The local stack's answers to bad situations: each ends with a message that says what is wrong
 * and what to do, and nothing it did not create is deleted. Runs the real CLI in a throwaway
 * state folder on spare ports, so the stack the other tests use is left alone.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './config.ts';
import { ensureDebianPackages } from './system.ts';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');

function freePort(): number {
  const l = Deno.listen({ hostname: '127.0.0.1', port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

async function tempStateDir(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: 'qh-stack-test-' });
  await Deno.chmod(dir, 0o755); // the postgres OS user must reach it
  return dir;
}

/** Free ports for every port setting, so that no test reaches a stack that is not its own. */
const isolatedPorts = () => ({
  QH_DB_PORT: String(freePort()),
  QH_API_PORT: String(freePort()),
  QH_RECEIVERS_PORT: String(freePort()),
});

/** Runs `main.ts <cmd>` with an isolated state folder and ports; returns exit code and stderr. */
async function stack(cmd: string, env: Record<string, string>) {
  const out = await new Deno.Command(DENO, {
    args: ['run', '-A', '--quiet', join(ROOT, 'local', 'stack', 'main.ts'), cmd],
    env: { NO_COLOR: '1', DATABASE_URL: '', ...isolatedPorts(), ...env },
    cwd: ROOT,
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test('up with DATABASE_URL pointing at nothing says so and names the fix', async () => {
  const port = freePort();
  const r = await stack('up', {
    DATABASE_URL: `postgresql://postgres:secret@127.0.0.1:${port}/postgres`,
    QH_STATE_DIR: await tempStateDir(),
  });
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /DATABASE_URL \(postgresql:\/\/postgres:\*\*\*@127\.0\.0\.1:\d+\/postgres\) does not answer/,
  );
  assert.match(r.stderr, /unset DATABASE_URL/);
  assert.doesNotMatch(r.stderr, /secret/, 'the password is never printed');
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
});

Deno.test('up refuses a half-initialised cluster folder and points at reset', async () => {
  const state = await tempStateDir();
  await Deno.mkdir(join(state, 'postgres', 'data'), { recursive: true });
  await Deno.writeTextFile(join(state, 'postgres', 'created-by-queue-health'), 'x');
  await Deno.writeTextFile(join(state, 'postgres', 'data', 'base'), 'partial');
  const r = await stack('up', { QH_STATE_DIR: state, QH_DB_PORT: String(freePort()) });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /half-initialised/);
  assert.match(r.stderr, /npm run stack -- reset/);
  assert.ok(existsSync(join(state, 'postgres', 'data', 'base')), 'nothing was deleted');
  await Deno.remove(state, { recursive: true });
});

Deno.test('up and reset leave a folder they did not create untouched', async () => {
  const state = await tempStateDir();
  await Deno.mkdir(join(state, 'postgres', 'data'), { recursive: true });
  await Deno.writeTextFile(join(state, 'postgres', 'data', 'precious.txt'), 'keep me');
  const env = { QH_STATE_DIR: state, QH_DB_PORT: String(freePort()) };
  const up = await stack('up', env);
  assert.equal(up.code, 1);
  assert.match(up.stderr, /not a PostgreSQL cluster created by queue-health/);
  const reset = await stack('reset', env);
  assert.equal(reset.code, 1);
  assert.match(reset.stderr, /refusing to delete it/);
  assert.equal(await Deno.readTextFile(join(state, 'postgres', 'data', 'precious.txt')), 'keep me');
  await Deno.remove(state, { recursive: true });
});

Deno.test('a missing package on a non-Debian system is named with how to get it', async () => {
  await assert.rejects(
    () =>
      ensureDebianPackages([{ name: 'postgresql-15-imaginary', probe: '/nonexistent/imaginary' }], {
        debian: false,
      }),
    (e: Error) => {
      assert.match(e.message, /Missing: postgresql-15-imaginary/);
      assert.match(e.message, /DATABASE_URL/);
      return true;
    },
  );
  await assert.rejects(
    () =>
      ensureDebianPackages([{ name: 'postgresql-15-imaginary', probe: '/nonexistent/imaginary' }], {
        debian: true,
        root: false,
      }),
    /sudo apt-get install -y postgresql-15-imaginary/,
  );
});

Deno.test({
  name: 'a taken port, a stale lock file, and up twice: clear messages, then a working cluster',
  // initdb + two starts: a few seconds.
  async fn() {
    const state = await tempStateDir();
    const taken = Deno.listen({ hostname: '127.0.0.1', port: 0 });
    const takenPort = (taken.addr as Deno.NetAddr).port;
    const apiPort = freePort();
    const env = {
      QH_STATE_DIR: state,
      QH_API_PORT: String(apiPort),
      QH_RECEIVERS_PORT: String(freePort()),
    };
    try {
      const r = await stack('up', { ...env, QH_DB_PORT: String(takenPort) });
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`Port ${takenPort} on 127\\.0\\.0\\.1 is already taken`));
      assert.match(r.stderr, /QH_DB_PORT/);
      taken.close();

      // Now the cluster exists but is stopped; fake a crash: a lock file naming a dead process.
      const dbPort = String(freePort());
      const lock = join(state, 'postgres', 'data', 'postmaster.pid');
      await Deno.writeTextFile(lock, `999999\n${state}/postgres/data\n0\n${dbPort}\n`);
      const up1 = await stack('up', { ...env, QH_DB_PORT: dbPort });
      assert.equal(up1.code, 0, up1.stderr);
      assert.match(up1.stderr, /removing stale lock file/);
      assert.match(up1.stdout, /Database .* up/);

      const up2 = await stack('up', { ...env, QH_DB_PORT: dbPort });
      assert.equal(up2.code, 0, up2.stderr);
      assert.doesNotMatch(up2.stderr, /starting PostgreSQL/, 'up twice reuses what runs');

      const down = await stack('down', { ...env, QH_DB_PORT: dbPort });
      assert.equal(down.code, 0, down.stderr);
      const status = await stack('status', { ...env, QH_DB_PORT: dbPort });
      assert.equal(status.code, 1);
      assert.match(status.stdout, /DOWN/);
    } finally {
      try {
        taken.close();
      } catch { /* closed */ }
      await stack('down', { ...env }).catch(() => {});
      await Deno.remove(state, { recursive: true }).catch(() => {});
    }
  },
});
