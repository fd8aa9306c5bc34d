/**
 * The local stack's own lifecycle, with real processes: `npm start` stops everything on Ctrl-C even
 * when its output went to a pipe whose reader died, and on SIGHUP and SIGTERM; the functions pid
 * file names the process that holds the port, and `down` stops what the stack started whatever
 * state the pid files are in — never a process that is not ours.
 *
 * One throwaway cluster serves every test (initdb once), on ports 32760-32762 so that neither the
 * test runner's stack (54330-54334) nor a developer's `npm start` is touched, and below Linux's
 * ephemeral range (32768-60999): a port there can be handed to any outgoing connection between the
 * test's stops and starts, which once failed "the killed process held the port".
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PG_BIN, ROOT } from './config.ts';
import {
  cmdline,
  findProcesses,
  isAlive,
  isRoot,
  portOwner,
  readPid,
  run,
  runsDenoScript,
} from './system.ts';

const DB_PORT = 32760;
const API_PORT = 32761;
const RECEIVERS_PORT = 32762;
const PORTS = [DB_PORT, API_PORT, RECEIVERS_PORT];
const MAIN = join(ROOT, 'local', 'stack', 'main.ts');
const SERVER = join(ROOT, 'local', 'stack', 'server.ts');

/**
 * The roles tried, in order, for what only a superuser may see (every user's pg_cron jobs):
 * supabase_admin on a hosted-faithful stack, postgres before it. Change here if the roles change.
 */
const SUPERUSER_CANDIDATES = ['supabase_admin', 'postgres'];

let stateDir: string | null = null;

/** The shared state folder (created once; removed when the module unloads). */
async function state(): Promise<string> {
  if (stateDir) return stateDir;
  for (const port of PORTS) {
    const owner = await portOwner(port);
    assert.equal(owner, null, `port ${port} is needed by this test and taken by ${owner?.what}`);
  }
  stateDir = await Deno.makeTempDir({ prefix: 'qh-lifecycle-test-' });
  await Deno.chmod(stateDir, 0o755); // the postgres OS user must reach it
  const dir = stateDir;
  globalThis.addEventListener('unload', () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* best effort */ }
  });
  return dir;
}

function env(dir: string): Record<string, string> {
  return {
    NO_COLOR: '1',
    DATABASE_URL: '',
    QH_STATE_DIR: dir,
    QH_DB_PORT: String(DB_PORT),
    QH_API_PORT: String(API_PORT),
    QH_RECEIVERS_PORT: String(RECEIVERS_PORT),
  };
}

const files = (dir: string) => ({
  serverPid: join(dir, 'run', 'functions.pid'),
  demoPid: join(dir, 'run', 'demo.pid'),
  pgData: join(dir, 'postgres', 'data'),
  socketDir: join(dir, 'postgres', 'run'),
});

/** Runs `main.ts <cmd>` on the real deno binary; returns exit code, stdout and stderr. */
async function stack(cmd: string, dir: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ['run', '-A', '--quiet', MAIN, cmd],
    env: env(dir),
    cwd: ROOT,
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.fail(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
}

/** The pid of a process that has exited (a pid file naming it is stale). */
async function deadPid(): Promise<number> {
  const child = new Deno.Command('true').spawn();
  await child.status;
  return child.pid;
}

function apiLine(statusOut: string): string {
  return statusOut.split('\n').find((l) => l.startsWith('API (functions)')) ?? '';
}

/** Runs a query as the cluster's superuser over its socket; the cluster must be running. */
async function asSuperuser(dir: string, query: string): Promise<string> {
  const psql = (user: string, q: string) =>
    run(join(PG_BIN, 'psql'), [
      '-X',
      '-A',
      '-t',
      '-q',
      '-h',
      files(dir).socketDir,
      '-p',
      String(DB_PORT),
      '-U',
      user,
      '-d',
      'postgres',
      '-c',
      q,
    ]);
  for (const user of SUPERUSER_CANDIDATES) {
    const r = await psql(user, 'select rolsuper from pg_roles where rolname = current_user');
    if (r.code === 0 && r.stdout.trim() === 't') {
      const q = await psql(user, query);
      assert.equal(q.code, 0, q.stderr);
      return q.stdout.trim();
    }
  }
  throw new Error(`none of ${SUPERUSER_CANDIDATES.join(', ')} is a superuser that answers`);
}

/** pg_ctl on the test cluster, as its OS user. */
function pgCtl(dir: string, args: string[]) {
  const exe = join(PG_BIN, 'pg_ctl');
  const all = ['-D', files(dir).pgData, ...args];
  return isRoot() ? run('runuser', ['-u', 'postgres', '--', exe, ...all]) : run(exe, all);
}

const OUR_JOBS = `select count(*) from cron.job where jobname like 'queue-health-%'`;

/** Nothing of the stack runs, and, after a restart of its cluster, none of its pg_cron jobs. */
async function assertStackStopped(dir: string) {
  for (const port of PORTS) {
    const owner = await portOwner(port);
    assert.equal(owner, null, `port ${port} is still taken by ${owner?.what}`);
  }
  const postgres = findProcesses((p) => cmdline(p).includes(files(dir).pgData));
  assert.deepEqual(postgres, [], `postgres of ${dir} still runs: ${postgres.map(cmdline)}`);
  assert.ok(!existsSync(files(dir).demoPid), 'the demo pid file is removed');
  const started = await pgCtl(dir, [
    '-o',
    `-p ${DB_PORT}`,
    '-l',
    join(dir, 'logs', 'postgres.log'),
    '-w',
    '-t',
    '60',
    'start',
  ]);
  assert.equal(started.code, 0, started.stderr);
  try {
    assert.equal(await asSuperuser(dir, OUR_JOBS), '0', 'no pg_cron job of ours is left');
  } finally {
    await pgCtl(dir, ['-m', 'fast', '-w', '-t', '60', 'stop']);
  }
}

/** Waits until a started `npm start` / `main.ts start` has the demo running; its pid. */
async function demoRunning(dir: string, output: () => string): Promise<number> {
  await until('the demo to run', () => /Ctrl-C stops everything/.test(output()), 120_000);
  const pid = readPid(files(dir).demoPid);
  assert.ok(pid && runsDenoScript(pid, MAIN), `the demo pid file names main.ts (${pid})`);
  assert.notEqual(await asSuperuser(dir, OUR_JOBS), '0', 'the demo scheduled its pg_cron jobs');
  return pid;
}

Deno.test({
  name: "the pid file names the listener; down stops a stale or killed server, no one else's",
  async fn() {
    const dir = await state();
    const f = files(dir);
    try {
      const up = await stack('up', dir);
      assert.equal(up.code, 0, up.stderr);
      const pid = readPid(f.serverPid);
      assert.equal((await portOwner(API_PORT))?.pid, pid, 'the pid file names the listener');
      assert.ok(pid && runsDenoScript(pid, SERVER));

      // A stale pid file while our server still listens (what a killed wrapper used to leave).
      await Deno.writeTextFile(f.serverPid, `${await deadPid()}\n`);
      const stale = await stack('status', dir);
      assert.equal(stale.code, 0, stale.stdout);
      assert.match(apiLine(stale.stdout), new RegExp(`up \\(pid ${pid}; its pid file is stale\\)`));
      const down1 = await stack('down', dir);
      assert.equal(down1.code, 0, down1.stderr);
      assert.match(down1.stderr, new RegExp(`pid file is stale: stopping pid ${pid}`));
      assert.equal(await portOwner(API_PORT), null, 'nothing listens on the API port');
      assert.ok(!isAlive(pid), 'the server is gone');

      // kill -9 of the process the pid file names: status says DOWN, down stops the rest.
      const up2 = await stack('up', dir);
      assert.equal(up2.code, 0, up2.stderr);
      const pid2 = readPid(f.serverPid)!;
      Deno.kill(pid2, 'SIGKILL');
      await until('the killed server to be gone', () => !isAlive(pid2), 5000);
      // Its listening socket goes with its last thread, which may exit a moment after the thread
      // group leader shows as a zombie (isAlive() false): `ss` then lists the socket without an
      // owner. Wait for the port rather than assume both happen at once (CI saw the gap twice).
      await until(
        'the killed server to release the API port',
        async () => await portOwner(API_PORT) === null,
        5000,
      );
      const after = await stack('status', dir);
      assert.equal(after.code, 1);
      assert.match(apiLine(after.stdout), /DOWN$/);

      // The same checkout's server for another state folder (as the test runner's stack is)
      // listening on this stack's API port is not ours either.
      const other = await Deno.makeTempDir({ prefix: 'qh-lifecycle-other-' });
      const otherServer = new Deno.Command(Deno.execPath(), {
        args: ['run', '-A', '--quiet', SERVER],
        env: { ...env(dir), QH_STATE_DIR: other, QH_SERVER_MODE: 'test' },
        cwd: ROOT,
        stdin: 'null',
        stdout: 'null',
        stderr: 'null',
      }).spawn();
      try {
        await until(
          "the other folder's server to listen",
          async () => (await portOwner(API_PORT))?.pid === otherServer.pid,
          30_000,
        );
        const down2 = await stack('down', dir);
        assert.equal(down2.code, 0, down2.stderr);
        assert.match(down2.stderr, /PostgreSQL stopped/);
        assert.match(down2.stderr, /not this stack's functions server; left running/);
        assert.ok(isAlive(otherServer.pid), "the other folder's server still runs");
      } finally {
        otherServer.kill('SIGKILL');
        await otherServer.status;
        await Deno.remove(other, { recursive: true });
      }
      for (const port of PORTS) assert.equal(await portOwner(port), null, `port ${port}`);

      // A stranger on the API port, named by both pid files: left alone, and said so.
      const stranger = Deno.listen({ hostname: '127.0.0.1', port: API_PORT });
      try {
        await Deno.writeTextFile(f.serverPid, `${Deno.pid}\n`);
        await Deno.writeTextFile(f.demoPid, `${Deno.pid}\n`);
        const st = await stack('status', dir);
        assert.match(apiLine(st.stdout), new RegExp(`DOWN \\(port ${API_PORT} taken by`));
        assert.match(st.stdout, /Demo workload +not running/);
        const down3 = await stack('down', dir);
        assert.equal(down3.code, 0, down3.stderr);
        assert.match(down3.stderr, /not this stack's functions server; left running/);
        assert.equal((await portOwner(API_PORT))?.pid, Deno.pid, 'the stranger still listens');
      } finally {
        stranger.close();
      }
    } finally {
      await stack('down', dir);
    }
  },
});

Deno.test({
  name: 'Ctrl-C on npm start piped into a process that died stops everything and its cron jobs',
  async fn() {
    const dir = await state();
    const log = join(dir, 'start.log');
    // As in a terminal: `npm start 2>&1 | tee log` in a process group of its own, SIGINT not
    // ignored (a background job of a non-interactive shell would inherit it ignored).
    const child = new Deno.Command('setsid', {
      args: [
        'perl',
        '-e',
        '$SIG{INT} = "DEFAULT"; exec @ARGV or die',
        'sh',
        '-c',
        'npm start 2>&1 | tee "$QH_TEST_LOG"',
      ],
      env: { ...env(dir), QH_TEST_LOG: log },
      cwd: ROOT,
      stdin: 'null',
      stdout: 'null',
      stderr: 'null',
    }).spawn();
    // setsid makes the pipeline's first process the leader of a new process group.
    const pgid = child.pid;
    const groupOf = (pid: number) => {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
      } catch {
        return null;
      }
    };
    const read = () => {
      try {
        return Deno.readTextFileSync(log);
      } catch {
        return '';
      }
    };
    try {
      await until('setsid', () => groupOf(child.pid) === pgid, 5000);
      const demo = await demoRunning(dir, read);
      // The reader dies first, so every write of the shutdown meets a dead pipe (EPIPE).
      const tee = findProcesses((p) => cmdline(p).startsWith('tee ') && cmdline(p).includes(log));
      assert.equal(tee.length, 1, 'tee runs');
      Deno.kill(tee[0], 'SIGKILL');
      await until('tee to be gone', () => !isAlive(tee[0]), 5000);
      Deno.kill(-pgid, 'SIGINT');
      await until('npm start to finish stopping', () => !isAlive(demo), 90_000);
      await assertStackStopped(dir);
      assert.doesNotMatch(read(), /stopping the demo/, 'the shutdown wrote nothing to the log');
    } finally {
      try {
        if (groupOf(child.pid) === pgid) Deno.kill(-pgid, 'SIGKILL');
      } catch { /* gone */ }
      await child.status;
      await stack('down', dir);
    }
  },
});

/** Starts `main.ts start` directly (no npm); its output is read by this test. */
function startDirect(dir: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ['run', '-A', '--quiet', MAIN, 'start'],
    env: env(dir),
    cwd: ROOT,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn();
  let out = '';
  const dec = new TextDecoder();
  const reader = child.stdout.getReader();
  const errDone = child.stderr.pipeTo(new WritableStream());
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
      if (done) return;
      out += dec.decode(value);
    }
  })();
  return {
    child,
    output: () => out,
    /** Closes the reading end of its stdout: later writes meet EPIPE. */
    async closeStdout() {
      await reader.cancel();
      await pump;
    },
    async finish() {
      await reader.cancel().catch(() => {});
      await pump;
      await errDone.catch(() => {});
      return await child.status;
    },
  };
}

Deno.test({
  name: 'SIGHUP (a closed terminal) stops npm start and everything it started',
  async fn() {
    const dir = await state();
    const start = startDirect(dir);
    try {
      const demo = await demoRunning(dir, start.output);
      assert.equal(demo, start.child.pid);
      await start.closeStdout();
      Deno.kill(start.child.pid, 'SIGHUP');
      const st = await start.finish();
      assert.equal(st.code, 0);
      await assertStackStopped(dir);
    } finally {
      try {
        start.child.kill('SIGKILL');
      } catch { /* gone */ }
      await start.finish().catch(() => {});
      await stack('down', dir);
    }
  },
});

Deno.test({
  name: 'down finds npm start without its pid file and stops it, which unschedules its jobs',
  async fn() {
    const dir = await state();
    const start = startDirect(dir);
    try {
      const demo = await demoRunning(dir, start.output);
      await Deno.remove(files(dir).demoPid);
      const st = await stack('status', dir);
      assert.match(st.stdout, new RegExp(`Demo workload +running \\(pid ${demo}\\)`));
      const down = await stack('down', dir);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stderr, new RegExp(`stopping the demo \\(pid ${demo}\\)`));
      assert.equal((await start.finish()).code, 0, 'npm start ended by itself (SIGTERM)');
      await assertStackStopped(dir);
    } finally {
      try {
        start.child.kill('SIGKILL');
      } catch { /* gone */ }
      await start.finish().catch(() => {});
      await stack('down', dir);
    }
  },
});
