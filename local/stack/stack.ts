/**
 * The local stack's operations: up, down, status, reset. See docs/development.md.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
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
  usesExternalDatabase,
} from './config.ts';
import { localKeys } from './keys.ts';
import { buildDashboard } from '../dashboard/build.ts';
import { log, StackError } from './log.ts';
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
  isAlive,
  portOwner,
  readPid,
  spawnDetached,
  stopProcess,
  waitFor,
} from './system.ts';

const DENO = join(ROOT, 'node_modules', '.bin', 'deno');
const MODE_FILE = join(paths.run, 'functions.mode');

/** Options for `up`. */
export interface UpOptions {
  /**
   * 'dev' configures dispatch (database → pg_net → queue-alert); 'test' leaves queue-alert to the
   * tests. Both run the pg_net stand-in's worker.
   */
  serverMode?: 'dev' | 'test';
}

async function serverAnswers(): Promise<boolean> {
  try {
    const res = await fetch(`${API_URL}/_stack/health`, { signal: AbortSignal.timeout(1000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

function serverPid(): number | null {
  const pid = readPid(paths.serverPid);
  return pid && isAlive(pid) ? pid : null;
}

async function startServer(mode: 'dev' | 'test'): Promise<void> {
  const pid = serverPid();
  const currentMode = existsSync(MODE_FILE) ? Deno.readTextFileSync(MODE_FILE).trim() : '';
  const wanted = `${mode}:${dispatchMode()}`;
  if (pid && currentMode === wanted && (await serverAnswers())) return;
  if (pid) {
    log.step(`restarting the functions server (mode ${currentMode || '?'} → ${wanted})`);
    await stopProcess(pid);
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
  await spawnDetached(DENO, ['run', '-A', '--quiet', join(ROOT, 'local', 'stack', 'server.ts')], {
    logFile: paths.serverLog,
    pidFile: paths.serverPid,
    cwd: ROOT,
    env: { QH_SERVER_MODE: mode },
  });
  await Deno.writeTextFile(MODE_FILE, wanted);
  try {
    await waitFor(serverAnswers, `the functions server on ${API_URL}`, 60_000);
  } catch (e) {
    let tail = '';
    try {
      tail = Deno.readTextFileSync(paths.serverLog).split('\n').slice(-20).join('\n');
    } catch { /* none */ }
    throw new StackError(`${(e as Error).message}\nLast lines of ${paths.serverLog}:\n${tail}`);
  }
  log.ok(`functions server up (${mode} mode)`);
}

/**
 * Dev mode: points dispatch at the local queue-alert with the service-role key, as a user does
 * with the Vault secrets queue_health_alert_url / queue_health_alert_key on hosted Supabase, so
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
        values (true, ${QUEUE_ALERT_URL}, ${keys.serviceRole})
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
  await Deno.mkdir(paths.logs, { recursive: true });
  await Deno.mkdir(paths.run, { recursive: true });
  if (!usesExternalDatabase()) await ensureDebianPackages();
  await startCluster();
  await bootstrapPlatform();
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
  await buildDashboard(); // vendors supabase-js and uPlot into dashboard/vendor (git-ignored)
  await startServer(opts.serverMode ?? 'dev');
}

async function stopServer(): Promise<boolean> {
  const pid = serverPid();
  if (!pid) return false;
  await stopProcess(pid);
  await Deno.remove(paths.serverPid).catch(() => {});
  return true;
}

/** Stops everything the stack started. */
export async function down(): Promise<void> {
  const demo = readPid(paths.demoPid);
  if (demo && isAlive(demo)) {
    await stopProcess(demo);
    log.ok('demo stopped');
  }
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

/** Prints URLs, keys and what runs. */
export async function status(): Promise<boolean> {
  const keys = await localKeys();
  const db = databaseUrl();
  const dbUp = await isReachable(db);
  const pg = postmasterPid();
  const srv = serverPid();
  const srvUp = await serverAnswers();
  const demo = readPid(paths.demoPid);
  const line = (k: string, v: string) => console.log(`${k.padEnd(22)} ${v}`);
  console.log('Queue Health local stack');
  line(
    'Database',
    `${redactUrl(db)}  ${dbUp ? 'up' : 'DOWN'}${
      usesExternalDatabase() ? ' (DATABASE_URL)' : pg ? ` (pid ${pg}, port ${DB_PORT})` : ''
    }`,
  );
  line('DB URL', db);
  line(
    'API (functions)',
    `${API_URL}/functions/v1/<name>  ${srvUp ? 'up' : 'DOWN'}${srv ? ` (pid ${srv})` : ''}`,
  );
  line('queue-health', `${API_URL}/functions/v1/queue-health`);
  line('queue-alert', `${API_URL}/functions/v1/queue-alert`);
  line('Dashboard', `${API_URL}/`);
  line(
    'Receivers',
    `${RECEIVERS_URL}/_received  (Resend: /resend, Slack: /slack, webhooks: /webhook)`,
  );
  line('Demo workload', demo && isAlive(demo) ? `running (pid ${demo})` : 'not running');
  line('anon key', keys.anon);
  line('service_role key', keys.serviceRole);
  line('Logs', paths.logs);
  return dbUp && srvUp;
}
