/**
 * The local PostgreSQL 15 cluster: created under .stack/, listening on 127.0.0.1:54322, with
 * pg_cron preloaded. Or, with DATABASE_URL set, the user's own database (no cluster is started).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import {
  databaseUrl,
  DB_PORT,
  paths,
  PG_BIN,
  redactUrl,
  ROOT,
  STATE_DIR,
  SUPERUSER,
  superuserUrl,
  usesExternalDatabase,
} from './config.ts';
import { log, StackError } from './log.ts';
import { cmdline, isAlive, isRoot, portOwner, readPid, run, waitFor } from './system.ts';

const PG_USER = 'postgres'; // the OS user that owns the cluster when we run as root

/** Runs a PostgreSQL binary as the cluster's owner (postgres refuses to run as root). */
function pgCommand(bin: string, args: string[]) {
  const exe = join(PG_BIN, bin);
  return isRoot() ? run('runuser', ['-u', PG_USER, '--', exe, ...args]) : run(exe, args);
}

/** Opens a short-lived connection to the stack's database. */
export function connect(url = databaseUrl(), max = 1) {
  return postgres(url, { max, onnotice: () => {}, connect_timeout: 5, idle_timeout: 5 });
}

/** True when the database answers a query. */
export async function isReachable(url = databaseUrl()): Promise<boolean> {
  const sql = connect(url);
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The reason the database does not answer, or null when it does. */
export async function whyUnreachable(url = databaseUrl()): Promise<string | null> {
  const sql = connect(url);
  try {
    await sql`select 1`;
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** The pid of the running postmaster of our cluster, or null. */
export function postmasterPid(): number | null {
  const pid = readPid(join(paths.pgData, 'postmaster.pid'));
  return pid && isAlive(pid) ? pid : null;
}

/** What state the cluster folder is in. */
export function clusterState(): 'absent' | 'ready' | 'half-initialised' | 'foreign' {
  if (!existsSync(paths.pgData)) return 'absent';
  const entries = [...Deno.readDirSync(paths.pgData)];
  if (entries.length === 0) return 'absent';
  if (!existsSync(join(paths.pgData, 'PG_VERSION'))) {
    return existsSync(paths.ownerFile) ? 'half-initialised' : 'foreign';
  }
  if (!existsSync(join(paths.pgData, 'postgresql.conf'))) return 'half-initialised';
  return 'ready';
}

/** The supautils stand-in's shared library, built into the state folder. */
export const PLATFORM_LIB = join(paths.platformLib, 'qh_supautils.so');

/**
 * Builds local/platform/qh_supautils.c (PGXS) into the state folder when it is missing or older
 * than its source. PostgreSQL loads it by absolute path, so nothing is installed system-wide.
 */
export async function buildPlatformLib(): Promise<void> {
  const src = join(ROOT, 'local', 'platform');
  const srcTime = Deno.statSync(join(src, 'qh_supautils.c')).mtime?.getTime() ?? 0;
  if (existsSync(PLATFORM_LIB) && (Deno.statSync(PLATFORM_LIB).mtime?.getTime() ?? 0) >= srcTime) {
    return;
  }
  await Deno.mkdir(paths.platformLib, { recursive: true });
  for (const f of ['qh_supautils.c', 'Makefile']) {
    await Deno.copyFile(join(src, f), join(paths.platformLib, f));
  }
  log.step('building the local supautils stand-in (local/platform/qh_supautils.c)');
  const r = await run('make', [
    '-s',
    '-C',
    paths.platformLib,
    `PG_CONFIG=${join(PG_BIN, 'pg_config')}`,
  ]);
  if (r.code !== 0 || !existsSync(PLATFORM_LIB)) {
    throw new StackError(`building qh_supautils failed:\n${r.stderr || r.stdout}`);
  }
}

/**
 * What the stack adds to a cluster's postgresql.conf: TCP on 127.0.0.1 only, pg_cron and the
 * supautils stand-in preloaded as on hosted Supabase. Tests that need a cluster of their own
 * (local/test/private_cluster.ts) use the same.
 */
export function clusterSettings(socketDir: string): string {
  return `
# ---- added by queue-health's local stack ----
listen_addresses = '127.0.0.1'
# the port is given on the command line (QH_DB_PORT, default 54322)
unix_socket_directories = '${socketDir}'
max_connections = 200
# pg_cron, and the stand-in for the part of supautils that lets the non-superuser postgres role
# create policies on realtime.messages and create the extensions hosted Supabase allows
# (local/platform/qh_supautils.c; values from supabase/postgres supautils.conf.j2).
shared_preload_libraries = 'pg_cron,${PLATFORM_LIB}'
qh_supautils.privileged_role = 'postgres'
qh_supautils.superuser = '${SUPERUSER}'
qh_supautils.policy_grants = 'auth.audit_log_entries, auth.identities, auth.refresh_tokens, auth.sessions, auth.users, realtime.messages, storage.buckets, storage.migrations, storage.objects, storage.s3_multipart_uploads, storage.s3_multipart_uploads_parts'
qh_supautils.privileged_extensions = 'pg_cron, pg_net, pg_partman, pg_stat_statements, pgcrypto, pgmq, pgtap, plpgsql_check, supabase_vault, uuid-ossp'
qh_supautils.reserved_roles = '${SUPERUSER}, supabase_auth_admin, supabase_storage_admin, supabase_read_only_user, supabase_replication_admin, dashboard_user, pgbouncer, service_role*, authenticator*, authenticated*, anon*'
cron.database_name = 'postgres'
# pg_cron runs jobs in background workers, so it needs no password to reach the database.
cron.use_background_workers = on
max_worker_processes = 32
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
`;
}

async function initCluster(): Promise<void> {
  const dir = join(STATE_DIR, 'postgres');
  await Deno.mkdir(dir, { recursive: true });
  await Deno.mkdir(paths.pgSocketDir, { recursive: true });
  await Deno.mkdir(paths.logs, { recursive: true });
  await Deno.writeTextFile(
    paths.ownerFile,
    'This cluster was created by queue-health; reset wipes it.\n',
  );
  const pwFile = join(dir, '.pwfile');
  await Deno.writeTextFile(pwFile, 'postgres\n');
  if (isRoot()) {
    // The postgres OS user must be able to reach the folder through every parent.
    const r = await run('runuser', ['-u', PG_USER, '--', 'test', '-x', dir]);
    if (r.code !== 0) {
      throw new StackError(
        `The OS user '${PG_USER}' cannot reach ${dir} (a parent folder is not traversable). ` +
          `Set QH_STATE_DIR to a folder it can reach, e.g. QH_STATE_DIR=/var/tmp/queue-health.`,
      );
    }
    await run('chown', ['-R', `${PG_USER}:${PG_USER}`, dir, paths.logs]);
  }
  log.step(`creating a PostgreSQL 15 cluster in ${paths.pgData}`);
  const r = await pgCommand('initdb', [
    '-D',
    paths.pgData,
    '-U',
    SUPERUSER,
    '--pwfile',
    pwFile,
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
  ]);
  await Deno.remove(pwFile).catch(() => {});
  if (r.code !== 0) {
    throw new StackError(`initdb failed:\n${r.stderr || r.stdout}`);
  }
  const conf = clusterSettings(paths.pgSocketDir);
  await Deno.writeTextFile(join(paths.pgData, 'postgresql.conf'), conf, { append: true });
  if (isRoot()) {
    await run('chown', [`${PG_USER}:${PG_USER}`, join(paths.pgData, 'postgresql.conf')]);
  }
  log.ok('cluster created');
}

/** The URL to probe our own cluster with: its superuser's (postgres exists only once bootstrapped). */
function clusterUrl(): string {
  return superuserUrl() ?? databaseUrl();
}

/** Creates (if needed) and starts the cluster; returns once it answers. Idempotent. */
export async function startCluster(): Promise<'started' | 'running' | 'external'> {
  if (usesExternalDatabase()) {
    const why = await whyUnreachable();
    if (why) {
      throw new StackError(
        `DATABASE_URL (${redactUrl(databaseUrl())}) does not answer: ${why}\n` +
          `Check the URL and that the database is running, or unset DATABASE_URL to use the ` +
          `local cluster on 127.0.0.1:${DB_PORT}.`,
      );
    }
    return 'external';
  }
  const state = clusterState();
  if (state === 'half-initialised') {
    throw new StackError(
      `The cluster folder ${paths.pgData} is half-initialised (an earlier 'up' was interrupted). ` +
        `Run 'npm run stack -- reset' to wipe and recreate it.`,
    );
  }
  if (state === 'foreign') {
    throw new StackError(
      `${paths.pgData} exists and is not a PostgreSQL cluster created by queue-health; it is left ` +
        `untouched. Move it away, or set QH_STATE_DIR to another folder.`,
    );
  }
  await buildPlatformLib();
  if (state === 'absent') await initCluster();

  const running = postmasterPid();
  if (running) {
    if (await isReachable(clusterUrl())) return 'running';
    await waitFor(
      () => isReachable(clusterUrl()),
      `PostgreSQL (pid ${running}) to accept connections`,
      30_000,
    );
    return 'running';
  }
  // A postmaster.pid left by a crash: PostgreSQL handles most cases, but say what happens.
  const lock = join(paths.pgData, 'postmaster.pid');
  if (existsSync(lock)) {
    log.warn(`removing stale lock file ${lock} (its process is gone)`);
    await Deno.remove(lock);
  }
  const owner = await portOwner(DB_PORT);
  if (owner) {
    throw new StackError(
      `Port ${DB_PORT} on 127.0.0.1 is already taken by ${owner.what}` +
        `${owner.pid ? ` (${cmdline(owner.pid).slice(0, 120)})` : ''}. ` +
        `Stop it, or choose another port with QH_DB_PORT=<port>.`,
    );
  }
  log.step(`starting PostgreSQL on 127.0.0.1:${DB_PORT}`);
  const args = [
    '-D',
    paths.pgData,
    '-l',
    paths.pgLog,
    '-o',
    `-p ${DB_PORT}`,
    '-w',
    '-t',
    '60',
    'start',
  ];
  const exe = join(PG_BIN, 'pg_ctl');
  const r = isRoot()
    ? await run('setsid', ['runuser', '-u', PG_USER, '--', exe, ...args])
    : await run('setsid', [exe, ...args]);
  if (r.code !== 0) {
    let tail = '';
    try {
      tail = Deno.readTextFileSync(paths.pgLog).split('\n').slice(-15).join('\n');
    } catch { /* no log */ }
    throw new StackError(`PostgreSQL did not start:\n${r.stderr || r.stdout}\n${tail}`);
  }
  await waitFor(() => isReachable(clusterUrl()), 'PostgreSQL to accept connections', 30_000);
  log.ok(`PostgreSQL is up on 127.0.0.1:${DB_PORT}`);
  return 'started';
}

/**
 * Stops the cluster if it runs. A cluster that another caller stopped meanwhile (`down` while
 * `npm start` stops the stack itself) is not an error.
 */
export async function stopCluster(): Promise<boolean> {
  if (usesExternalDatabase() || !postmasterPid()) return false;
  const r = await pgCommand('pg_ctl', ['-D', paths.pgData, '-m', 'fast', '-w', '-t', '60', 'stop']);
  if (r.code !== 0) {
    if (!postmasterPid()) return true;
    throw new StackError(`pg_ctl stop failed: ${r.stderr || r.stdout}`);
  }
  return true;
}

/** Stops and deletes the cluster — only one this project created. */
export async function wipeCluster(): Promise<void> {
  if (usesExternalDatabase()) {
    throw new StackError(
      'DATABASE_URL is set: reset only wipes the local cluster, not your database.',
    );
  }
  const state = clusterState();
  if (state === 'foreign') {
    throw new StackError(
      `${paths.pgData} was not created by queue-health (no marker file); refusing to delete it.`,
    );
  }
  await stopCluster().catch(() => {});
  await Deno.remove(join(STATE_DIR, 'postgres'), { recursive: true }).catch(() => {});
}
