/**
 * Operating-system helpers: running commands, checking and installing Debian packages, processes.
 */
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { log, StackError } from './log.ts';

/** The Debian packages the stack needs, and the file that shows each is installed. */
export const DEBIAN_PACKAGES: { name: string; probe: string; why: string }[] = [
  { name: 'postgresql-15', probe: '/usr/lib/postgresql/15/bin/postgres', why: 'the database' },
  {
    name: 'postgresql-15-cron',
    probe: '/usr/share/postgresql/15/extension/pg_cron.control',
    why: 'scheduled captures',
  },
  {
    name: 'postgresql-server-dev-15',
    probe: '/usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk',
    why: 'building the local supautils stand-in (local/platform)',
  },
  { name: 'make', probe: '/usr/bin/make', why: 'building the local supautils stand-in' },
  { name: 'gcc', probe: '/usr/bin/gcc', why: 'building the local supautils stand-in' },
  {
    name: 'postgresql-15-pgtap',
    probe: '/usr/share/postgresql/15/extension/pgtap.control',
    why: 'the SQL test suite',
  },
  {
    name: 'postgresql-15-plpgsql-check',
    probe: '/usr/share/postgresql/15/extension/plpgsql_check.control',
    why: '`supabase db lint`',
  },
  { name: 'libtap-parser-sourcehandler-pgtap-perl', probe: '/usr/bin/pg_prove', why: 'pg_prove' },
];

/** Result of a finished command. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion and captures its output. Never throws for a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<RunResult> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      cwd: opts.cwd,
      env: opts.env,
      stdin: opts.stdin === undefined ? 'null' : 'piped',
      stdout: 'piped',
      stderr: 'piped',
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      return { code: 127, stdout: '', stderr: `command not found: ${cmd}` };
    }
    throw e;
  }
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(opts.stdin));
    await w.close();
  }
  const out = await child.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Runs a command with inherited output; throws a StackError naming it when it fails. */
export async function runVisible(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; what?: string } = {},
): Promise<void> {
  const st = await new Deno.Command(cmd, {
    args,
    cwd: opts.cwd,
    env: opts.env,
    stdin: 'null',
    stdout: 'inherit',
    stderr: 'inherit',
  }).spawn().status;
  if (!st.success) {
    throw new StackError(`${opts.what ?? cmd} failed (exit code ${st.code}).`);
  }
}

/** True on a Debian-family system with apt-get. */
export function isDebian(): boolean {
  return existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
}

/** True when running as root. */
export function isRoot(): boolean {
  return Deno.uid() === 0;
}

/** A Debian package to have: its name, a file that shows it is installed, its services. */
export interface DebianPackage {
  name: string;
  probe: string;
  /**
   * Services the package's maintainer scripts may start on install (e.g. `prometheus` on
   * :9090): stopped and disabled right after installing, since tests start their own.
   */
  services?: string[];
}

/**
 * Stops and disables a service a package just installed may have started: with systemd through
 * systemctl, otherwise through its init script (which stops only the daemon of its pid file).
 */
async function stopPackageService(service: string): Promise<void> {
  if (existsSync('/run/systemd/system')) {
    await run('systemctl', ['disable', '--now', `${service}.service`]);
  } else if (existsSync(`/etc/init.d/${service}`)) {
    await run(`/etc/init.d/${service}`, ['stop']);
  }
}

/**
 * Installs the Debian packages that are missing (apt-get update first). Elsewhere, or without
 * root, fails with a message that names what is missing and how to get it. Services the new
 * packages started are stopped again (see {@link DebianPackage.services}).
 */
export async function ensureDebianPackages(
  extra: DebianPackage[] = [],
  opts: { debian?: boolean; root?: boolean } = {},
) {
  const missing: DebianPackage[] = [...DEBIAN_PACKAGES, ...extra].filter((p) =>
    !existsSync(p.probe)
  );
  if (missing.length === 0) return;
  const names = [...new Set(missing.map((p) => p.name))];
  if (!(opts.debian ?? isDebian())) {
    throw new StackError(
      `Missing: ${
        names.join(', ')
      }. This stack installs them itself only on Debian with apt-get. ` +
        `Install PostgreSQL 15 with pg_cron, pgTAP (pg_prove) and plpgsql_check with your system's ` +
        `package manager, or set DATABASE_URL to a PostgreSQL 15 database that has them.`,
    );
  }
  if (!(opts.root ?? isRoot())) {
    throw new StackError(
      `Missing Debian packages: ${names.join(' ')}.\n` +
        `Install them with:  sudo apt-get update && sudo apt-get install -y ${names.join(' ')}`,
    );
  }
  log.step(`installing Debian packages: ${names.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  await runVisible('apt-get', ['update', '-qq'], { env, what: 'apt-get update' });
  // Another apt-get (a parallel run) may hold the dpkg lock for a while: wait for it.
  await runVisible('apt-get', [
    'install',
    '-y',
    '-qq',
    '--no-install-recommends',
    '-o',
    'DPkg::Lock::Timeout=300',
    ...names,
  ], { env, what: `apt-get install ${names.join(' ')}` });
  for (const service of new Set(missing.flatMap((p) => p.services ?? []))) {
    await stopPackageService(service);
  }
  const still = missing.filter((p) => !existsSync(p.probe));
  if (still.length) {
    throw new StackError(
      `apt-get finished but these are still missing: ${still.map((p) => p.probe).join(', ')}`,
    );
  }
  log.ok(`installed ${names.join(' ')}`);
}

/** True when a process with this pid is alive (and not a zombie). */
export function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The command line of a process, for messages ('' when it is gone). */
export function cmdline(pid: number): string {
  try {
    return Deno.readTextFileSync(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

/** The arguments a process was started with, [] when it is gone or cannot be read. */
export function processArgs(pid: number): string[] {
  try {
    const raw = Deno.readTextFileSync(`/proc/${pid}/cmdline`);
    return raw.endsWith('\0') ? raw.slice(0, -1).split('\0') : raw.split('\0');
  } catch {
    return [];
  }
}

function readLink(path: string): string {
  try {
    return Deno.readLinkSync(path).replace(/ \(deleted\)$/, '');
  } catch {
    return '';
  }
}

/**
 * True when `pid` is a live Deno process running `script` (an absolute path): one of its
 * arguments, resolved against the process's working folder, is that file. The node wrapper that
 * node_modules/.bin/deno is (it spawns the real deno binary) does not count: it does not hold the
 * ports, and stopping it would leave the real process running.
 */
export function runsDenoScript(pid: number, script: string): boolean {
  if (!isAlive(pid)) return false;
  if (!basename(readLink(`/proc/${pid}/exe`)).startsWith('deno')) return false;
  const cwd = readLink(`/proc/${pid}/cwd`) || '/';
  return processArgs(pid).slice(1).some((a) => !a.startsWith('-') && resolve(cwd, a) === script);
}

/** The environment a process was started with ({} when it cannot be read). */
export function processEnv(pid: number): Record<string, string> {
  try {
    const env: Record<string, string> = {};
    for (const entry of Deno.readTextFileSync(`/proc/${pid}/environ`).split('\0')) {
      const i = entry.indexOf('=');
      if (i > 0) env[entry.slice(0, i)] = entry.slice(i + 1);
    }
    return env;
  } catch {
    return {};
  }
}

/** The pids of the live processes for which `match` is true (via /proc). */
export function findProcesses(match: (pid: number) => boolean): number[] {
  const found: number[] = [];
  try {
    for (const e of Deno.readDirSync('/proc')) {
      if (!/^\d+$/.test(e.name)) continue;
      const pid = Number(e.name);
      try {
        if (isAlive(pid) && match(pid)) found.push(pid);
      } catch { /* gone meanwhile */ }
    }
  } catch { /* no /proc: nothing found */ }
  return found;
}

/** Reads a pid file; null when absent or unparseable. */
export function readPid(file: string): number | null {
  try {
    const n = Number(Deno.readTextFileSync(file).trim().split('\n')[0]);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/**
 * Which process listens on a TCP port on 127.0.0.1 (via `ss`), or null. Only a listener counts: a
 * connection that merely uses the port (an outgoing one given it as its ephemeral port, or a killed
 * server's connection still closing) is not an owner — binding to test the port would say "taken"
 * for those, which made `status` and the lifecycle test see ghosts. Binding is the fallback only
 * where `ss` cannot run.
 */
export async function portOwner(
  port: number,
): Promise<{ pid: number | null; what: string } | null> {
  const r = await run('ss', ['-Hltnp', `sport = :${port}`]);
  if (r.code === 0 && !r.stdout.trim()) return null;
  if (r.code !== 0) {
    try {
      const l = Deno.listen({ hostname: '127.0.0.1', port });
      l.close();
      return null;
    } catch {
      return { pid: null, what: 'an unknown process' };
    }
  }
  const m = r.stdout.match(/pid=(\d+)/);
  const pid = m ? Number(m[1]) : null;
  const name = r.stdout.match(/\(\("([^"]+)"/)?.[1] ?? 'an unknown process';
  return { pid, what: pid ? `${name} (pid ${pid})` : name };
}

/**
 * Starts a long-running process in its own session, detached, with output to a log file. setsid
 * and sh both exec into `cmd`, so the pid returned (and written to the pid file) is the process
 * that runs `cmd` itself — pass the real binary, not a wrapper that spawns it.
 */
export async function spawnDetached(
  cmd: string,
  args: string[],
  opts: { logFile: string; pidFile: string; env?: Record<string, string>; cwd?: string },
): Promise<number> {
  await Deno.mkdir(opts.logFile.replace(/\/[^/]+$/, ''), { recursive: true });
  await Deno.mkdir(opts.pidFile.replace(/\/[^/]+$/, ''), { recursive: true });
  const quoted = [cmd, ...args].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
  const child = new Deno.Command('setsid', {
    args: ['sh', '-c', `exec ${quoted} >>'${opts.logFile}' 2>&1`],
    cwd: opts.cwd,
    env: opts.env,
    stdin: 'null',
    stdout: 'null',
    stderr: 'null',
  }).spawn();
  child.unref();
  await Deno.writeTextFile(opts.pidFile, `${child.pid}\n`);
  return child.pid;
}

/**
 * Sends SIGTERM, then SIGKILL after a grace period; resolves once the process is gone (or after
 * the SIGKILL). With `group` (the default) the signals go to the process group the pid leads, as
 * spawnDetached starts one (setsid), so its children go too; a pid that leads no group gets them
 * alone.
 */
export async function stopProcess(
  pid: number,
  graceMs = 5000,
  opts: { group?: boolean } = {},
): Promise<void> {
  const signal = (sig: Deno.Signal) => {
    if (opts.group ?? true) {
      try {
        Deno.kill(-pid, sig);
        return;
      } catch { /* leads no group: the process alone */ }
    }
    try {
      Deno.kill(pid, sig);
    } catch { /* already gone */ }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) {
    signal('SIGKILL');
    const killDeadline = Date.now() + 2000;
    while (isAlive(pid) && Date.now() < killDeadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Waits until `check` resolves true, polling; throws with `what` after the timeout, or the
 * signal's reason once it is aborted.
 */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new StackError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}
