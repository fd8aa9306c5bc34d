/**
 * The local stack's operations: up, down, status, reset. See docs/development.md.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  API_PORT,
  API_URL,
  databaseUrl,
  DB_PORT,
  dispatchMode,
  paths,
  QUEUE_ALERT_URL,
  RECEIVERS_URL,
  redactUrl,
  ROOT,
  STATE_DIR,
  usesExternalDatabase,
} from './config.ts';
import { localKeys } from './keys.ts';
import { DEMO_USER_EMAIL, DEMO_USER_PASSWORD } from './demo_user.ts';
import { buildDashboard } from '../dashboard/build.ts';
import { log, say, StackError } from './log.ts';
import { defaultStateDir } from './state_dir.ts';
import { applyMigrations, bootstrapPlatform, changedMigrations } from './migrate.ts';
import {
  connect,
  isReachable,
  postmasterPid,
  startCluster,
  stopCluster,
  wipeCluster,
} from './postgres.ts';
import { ensurePgNetExtensionFiles } from './pg_net.ts';
import {
  cmdline,
  ensureDebianPackages,
  findProcesses,
  portOwner,
  processArgs,
  processEnv,
  readPid,
  runsDenoScript,
  spawnDetached,
  stopProcess,
  waitFor,
} from './system.ts';

/**
 * The Deno binary this process runs on. `npm start` / `npm run stack` reach us through
 * node_modules/.bin/deno, a node wrapper that spawns the real binary; spawning the server through
 * that wrapper again would put the wrapper's pid in the pid file, and stopping it would orphan the
 * real server that holds the port.
 *
 * On the first run after `npm install` the deno package links its native binary into
 * node_modules/deno/deno while we already run, so /proc/self/exe can name a path that is gone
 * ("… (deleted)"); the package's own copy of the binary is then the one to spawn.
 */
const DENO = denoBinary();

function denoBinary(): string {
  const self = Deno.execPath();
  if (!self.endsWith(' (deleted)') && existsSync(self)) return self;
  // The native binary the npm packages ship (@deno/<platform>), at the top of node_modules or in
  // Deno's own node_modules/.deno layout; the node shim in .bin as the last resort.
  const modules = join(ROOT, 'node_modules');
  const candidates = [join(modules, 'deno', 'deno')];
  for (const dir of [join(modules, '@deno'), join(modules, '.deno')]) {
    if (!existsSync(dir)) continue;
    for (const e of Deno.readDirSync(dir)) {
      candidates.push(join(dir, e.name, 'deno'));
      if (e.name.startsWith('@deno+')) {
        candidates.push(
          join(
            dir,
            e.name,
            'node_modules',
            '@deno',
            e.name.slice(6).replace(/@[^@]*$/, ''),
            'deno',
          ),
        );
      }
    }
  }
  return candidates.find((c) => existsSync(c) && Deno.statSync(c).isFile) ??
    join(modules, '.bin', 'deno');
}
const SERVER_SCRIPT = join(ROOT, 'local', 'stack', 'server.ts');
const MAIN_SCRIPT = join(ROOT, 'local', 'stack', 'main.ts');

/** Options for `up`. */
export interface UpOptions {
  /**
   * 'dev' configures dispatch (database → pg_net → queue-alert); 'test' leaves queue-alert to the
   * tests. Both run the pg_net stand-in's worker.
   */
  serverMode?: 'dev' | 'test';
  /** Aborting it makes `up` stop at its next step (Ctrl-C during `npm start`). */
  signal?: AbortSignal;
}

/** What /_stack/health answers. */
interface Health {
  ok: boolean;
  mode?: string;
  /** How the server wakes queue-alert: 'pg_net' (its worker) or 'notify' (QH_DISPATCH=notify). */
  dispatch?: string;
  /** The server's own pid (servers from before it was reported leave it out). */
  pid?: number;
}

async function serverHealth(): Promise<Health | null> {
  try {
    const res = await fetch(`${API_URL}/_stack/health`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    const body = await res.json();
    return body && typeof body === 'object' ? body as Health : null;
  } catch {
    return null;
  }
}

async function serverAnswers(): Promise<boolean> {
  return (await serverHealth())?.ok === true;
}

/** This checkout's functions server, and how it was found. */
interface ServerProcess {
  pid: number;
  /** 'port' when the pid file is stale or missing and the process was found by the API port. */
  foundBy: 'pid file' | 'port';
}

/** The state folder a process of this checkout was started for (its QH_STATE_DIR or default). */
function stateDirOf(pid: number): string {
  const env = processEnv(pid);
  let cwd = '/';
  try {
    cwd = Deno.readLinkSync(`/proc/${pid}/cwd`);
  } catch { /* gone */ }
  return resolve(cwd, env.QH_STATE_DIR || defaultStateDir(ROOT));
}

/**
 * True when `pid` is this stack's functions server: this checkout's local/stack/server.ts, started
 * for this state folder (the test runner's stack runs the same script for another folder).
 */
function isOurServer(pid: number): boolean {
  return runsDenoScript(pid, SERVER_SCRIPT) && stateDirOf(pid) === STATE_DIR;
}

/**
 * The functions server of this stack: the process the pid file names, if it is ours
 * (isOurServer); else the process listening on the API port, if it is (a server whose pid file
 * went stale or was never written). Null when neither: any other process is never taken for ours,
 * whatever its pid or port.
 */
async function findServer(): Promise<ServerProcess | null> {
  const pid = readPid(paths.serverPid);
  if (pid && isOurServer(pid)) return { pid, foundBy: 'pid file' };
  const owner = await portOwner(API_PORT);
  if (owner?.pid && isOurServer(owner.pid)) return { pid: owner.pid, foundBy: 'port' };
  return null;
}

/** True when `pid` is an `npm start` (main.ts start) of this checkout and this state folder. */
function isOurDemo(pid: number): boolean {
  return pid !== Deno.pid && runsDenoScript(pid, MAIN_SCRIPT) &&
    processArgs(pid).includes('start') && stateDirOf(pid) === STATE_DIR;
}

/**
 * The running demo (`npm start`) of this stack, never this process: the one its pid file names,
 * else one found among the running processes (a pid file deleted or never written).
 */
export function runningDemo(): number | null {
  const pid = readPid(paths.demoPid);
  if (pid && isOurDemo(pid)) return pid;
  return findProcesses(isOurDemo)[0] ?? null;
}

async function startServer(mode: 'dev' | 'test', signal?: AbortSignal): Promise<void> {
  const found = await findServer();
  const health = await serverHealth();
  if (
    found && health?.ok && health.mode === mode && health.dispatch === dispatchMode() &&
    (health.pid ?? found.pid) === found.pid
  ) {
    if (found.foundBy === 'port') {
      await Deno.writeTextFile(paths.serverPid, `${found.pid}\n`);
      log.warn(`the functions server's pid file was stale; it now names pid ${found.pid}`);
    }
    return;
  }
  if (found) {
    log.step(
      `restarting the functions server (pid ${found.pid}, mode ${health?.mode ?? '?'} → ${mode})`,
    );
    await stopProcess(found.pid);
  }
  const owner = await portOwner(API_PORT);
  if (owner) {
    throw new StackError(
      `Port ${API_PORT} on 127.0.0.1 is already taken by ${owner.what}` +
        `${owner.pid ? ` (${cmdline(owner.pid).slice(0, 120)})` : ''}. ` +
        `Stop it, or choose another port with QH_API_PORT=<port>.`,
    );
  }
  log.step(`starting the functions server on ${API_URL}`);
  // The server also writes its own pid to the pid file once it listens.
  await spawnDetached(DENO, ['run', '-A', '--quiet', SERVER_SCRIPT], {
    logFile: paths.serverLog,
    pidFile: paths.serverPid,
    cwd: ROOT,
    env: { QH_SERVER_MODE: mode, QH_STATE_DIR: STATE_DIR },
  });
  try {
    await waitFor(serverAnswers, `the functions server on ${API_URL}`, 60_000, signal);
  } catch (e) {
    if (signal?.aborted) throw e;
    let tail = '';
    try {
      tail = Deno.readTextFileSync(paths.serverLog).split('\n').slice(-20).join('\n');
    } catch { /* none */ }
    throw new StackError(`${(e as Error).message}\nLast lines of ${paths.serverLog}:\n${tail}`);
  }
  log.ok(`functions server up (${mode} mode)`);
}

/**
 * Dev mode: points dispatch at the local queue-alert with the secret key (`sb_secret_…`), as a
 * user does with the Vault secrets queue_health_alert_url / queue_health_alert_key on hosted
 * Supabase (README, docs/install.md), so
 * alerts go database → pg_net → queue-alert. Test mode and QH_DISPATCH=notify: removes that
 * setting again (tests drive queue-alert themselves; notify means NOTIFY only).
 */
async function configureDispatch(mode: 'dev' | 'test'): Promise<void> {
  const sql = connect(databaseUrl());
  try {
    if (mode === 'dev' && dispatchMode() === 'pg_net') {
      const keys = await localKeys();
      await sql`
        insert into queue_health.dispatch_settings (id, queue_alert_url, queue_alert_key)
        values (true, ${QUEUE_ALERT_URL}, ${keys.secret})
        on conflict (id) do update
          set queue_alert_url = excluded.queue_alert_url, queue_alert_key = excluded.queue_alert_key`;
    } else {
      await sql`delete from queue_health.dispatch_settings where queue_alert_url = ${QUEUE_ALERT_URL}`;
    }
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** Brings everything up; idempotent. */
export async function up(opts: UpOptions = {}): Promise<void> {
  const interrupted = () => opts.signal?.throwIfAborted();
  await Deno.mkdir(paths.logs, { recursive: true });
  await Deno.mkdir(paths.run, { recursive: true });
  if (!usesExternalDatabase()) await ensureDebianPackages();
  interrupted();
  await startCluster();
  interrupted();
  await bootstrapPlatform();
  interrupted();
  const changed = await changedMigrations();
  if (changed.length) {
    log.warn(
      `these migrations changed after they were applied: ${changed.join(', ')}. ` +
        `Run 'npm run stack -- reset' to rebuild the database from scratch.`,
    );
  }
  // pg_net is available to `create extension` as on Supabase; the alerting migration creates it.
  if (!usesExternalDatabase() && (await ensurePgNetExtensionFiles()) === 'installed') {
    log.ok('pg_net stand-in made available as an extension');
  }
  await applyMigrations();
  if (!usesExternalDatabase()) await configureDispatch(opts.serverMode ?? 'dev');
  interrupted();
  await buildDashboard(); // vendors supabase-js and uPlot into dashboard/vendor (git-ignored)
  interrupted();
  await startServer(opts.serverMode ?? 'dev', opts.signal);
}

/**
 * Stops this stack's functions server, found by its pid file or, when that is stale or missing,
 * by the API port (findServer). A process on the API port that is not our server is left alone.
 */
async function stopServer(): Promise<boolean> {
  let stopped = false;
  for (let i = 0; i < 3; i++) {
    const found = await findServer();
    if (!found) break;
    if (found.foundBy === 'port') {
      log.warn(
        `the functions server's pid file is stale: stopping pid ${found.pid}, which listens on ` +
          `port ${API_PORT} and runs ${SERVER_SCRIPT} for ${STATE_DIR}`,
      );
    }
    await stopProcess(found.pid);
    stopped = true;
  }
  await Deno.remove(paths.serverPid).catch(() => {});
  const owner = await portOwner(API_PORT);
  if (owner) {
    log.warn(
      `port ${API_PORT} is taken by ${owner.what}, which is not this stack's functions server; ` +
        `left running`,
    );
  }
  return stopped;
}

/**
 * Stops everything the stack started, whatever state its pid files are in: the demo (`npm start`,
 * which stops the rest itself when it can), the functions server, PostgreSQL.
 */
export async function down(): Promise<void> {
  const demo = runningDemo();
  if (demo) {
    log.step(`stopping the demo (pid ${demo})`);
    // SIGTERM: the demo unschedules its pg_cron jobs and stops the stack; give it the time.
    await stopProcess(demo, 30_000, { group: false });
    log.ok('demo stopped');
  }
  await Deno.remove(paths.demoPid).catch(() => {});
  if (await stopServer()) log.ok('functions server stopped');
  if (await stopCluster()) log.ok('PostgreSQL stopped');
  log.ok('stack is down');
}

/** Wipes and recreates the cluster. */
export async function reset(opts: UpOptions = {}): Promise<void> {
  await stopServer();
  await wipeCluster();
  log.ok('cluster wiped');
  await up(opts);
}

/** Prints URLs, keys and what runs; true when the database and the functions server answer. */
export async function status(): Promise<boolean> {
  const keys = await localKeys();
  const db = databaseUrl();
  const dbUp = await isReachable(db);
  const pg = postmasterPid();
  const health = await serverHealth();
  const srvUp = health?.ok === true;
  const srv = await findServer();
  const demo = runningDemo();
  let api = srvUp ? 'up' : 'DOWN';
  if (srvUp) {
    const pid = health?.pid ?? srv?.pid;
    if (pid && !isOurServer(pid)) {
      api += ` (pid ${pid}, not this stack's server: ${cmdline(pid).slice(0, 120)})`;
    } else if (pid) {
      api += ` (pid ${pid}${srv?.foundBy === 'port' ? '; its pid file is stale' : ''})`;
    }
  } else {
    if (srv) api += ` (pid ${srv.pid} runs but does not answer)`;
    else {
      const owner = await portOwner(API_PORT);
      if (owner) api += ` (port ${API_PORT} taken by ${owner.what})`;
    }
  }
  const line = (k: string, v: string) => say(`${k.padEnd(22)} ${v}`);
  say('Queue Health local stack');
  line(
    'Database',
    `${redactUrl(db)}  ${dbUp ? 'up' : 'DOWN'}${
      usesExternalDatabase() ? ' (DATABASE_URL)' : pg ? ` (pid ${pg}, port ${DB_PORT})` : ''
    }`,
  );
  line('DB URL', db);
  line('API (functions)', `${API_URL}/functions/v1/<name>  ${api}`);
  line('queue-health', `${API_URL}/functions/v1/queue-health`);
  line('queue-alert', `${API_URL}/functions/v1/queue-alert`);
  line('Dashboard', `${API_URL}/`);
  line('Auth (GoTrue stand-in)', `${API_URL}/auth/v1`);
  line('Demo sign-in', `${DEMO_USER_EMAIL}  password ${DEMO_USER_PASSWORD}`);
  line(
    'Receivers',
    `${RECEIVERS_URL}/_received  (Resend: /resend, Slack: /slack, webhooks: /webhook, ` +
      'Twilio: /twilio, PagerDuty: /pagerduty)',
  );
  line('Demo workload', demo ? `running (pid ${demo})` : 'not running');
  line('Publishable key', keys.publishable);
  line('Secret key', keys.secret);
  line('anon key (legacy)', keys.anon);
  line('service_role (legacy)', keys.serviceRole);
  line('Logs', paths.logs);
  return dbUp && srvUp;
}
