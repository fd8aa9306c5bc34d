/**
 * Operating-system helpers: running commands, checking and installing Debian packages, processes.
 */
import { existsSync } from 'node:fs';
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

/**
 * Installs the Debian packages that are missing (apt-get update first). Elsewhere, or without
 * root, fails with a message that names what is missing and how to get it.
 */
export async function ensureDebianPackages(
  extra: { name: string; probe: string }[] = [],
  opts: { debian?: boolean; root?: boolean } = {},
) {
  const missing = [...DEBIAN_PACKAGES, ...extra].filter((p) => !existsSync(p.probe));
  if (missing.length === 0) return;
  const names = missing.map((p) => p.name);
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
  await runVisible('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
    env,
    what: `apt-get install ${names.join(' ')}`,
  });
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

/** Reads a pid file; null when absent or unparseable. */
export function readPid(file: string): number | null {
  try {
    const n = Number(Deno.readTextFileSync(file).trim().split('\n')[0]);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}

/** Which process listens on a TCP port on 127.0.0.1 (via `ss`), or null. */
export async function portOwner(
  port: number,
): Promise<{ pid: number | null; what: string } | null> {
  const r = await run('ss', ['-Hltnp', `sport = :${port}`]);
  if (r.code !== 0 || !r.stdout.trim()) {
    // Fall back to trying to bind.
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

/** Starts a long-running process in its own session, detached, with output to a log file. */
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

/** Sends SIGTERM to a process group, then SIGKILL after a grace period. */
export async function stopProcess(pid: number, graceMs = 5000): Promise<void> {
  const signal = (sig: Deno.Signal) => {
    try {
      Deno.kill(-pid, sig); // the whole session/process group (spawnDetached uses setsid)
    } catch {
      try {
        Deno.kill(pid, sig);
      } catch { /* already gone */ }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid)) signal('SIGKILL');
}

/** Waits until `check` resolves true, polling; throws with `what` after the timeout. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new StackError(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
}
