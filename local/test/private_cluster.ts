/**
 * A PostgreSQL cluster of a test's own, built like the stack's (pg_cron and the supautils
 * stand-in preloaded, the superuser supabase_admin, `postgres` not a superuser once the platform
 * is applied), for a test that must change what only one database of a cluster may have: pg_cron
 * works only in the database named by cron.database_name (`postgres`), which in the shared test
 * cluster is the database every other test uses. Listens on 127.0.0.1 on a free port; `stop()` it
 * in a `finally` (it also removes its folder).
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PG_BIN, SUPERUSER } from '../stack/config.ts';
import { buildPlatformLib, clusterSettings, PLATFORM_LIB } from '../stack/postgres.ts';
import { isRoot, run } from '../stack/system.ts';

const PG_USER = 'postgres'; // the OS user that owns the cluster when we run as root

/** A running private cluster. */
export interface PrivateCluster {
  port: number;
  /** URL of `database` (default postgres) as the role `postgres` (after the platform is applied). */
  url(database?: string): string;
  /** URL of `database` (default postgres) as the platform superuser. */
  superuserUrl(database?: string): string;
  /** Path of a PostgreSQL client program of the cluster's version (pg_dump). */
  bin(name: string): string;
  stop(): Promise<void>;
}

/** True when the PostgreSQL server programs a private cluster needs are installed. */
export function privateClusterAvailable(): boolean {
  return existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'pg_ctl'));
}

/** Runs a server program as the cluster's owner (PostgreSQL refuses to run as root). */
async function pg(bin: string, args: string[]): Promise<void> {
  const exe = join(PG_BIN, bin);
  const r = isRoot()
    ? await run('setsid', ['runuser', '-u', PG_USER, '--', exe, ...args])
    : await run('setsid', [exe, ...args]);
  if (r.code !== 0) throw new Error(`${bin} failed:\n${r.stderr || r.stdout}`);
}

/** A free TCP port on 127.0.0.1 (closed again for a server to take). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: '127.0.0.1', port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Creates and starts a cluster in a temporary folder. */
export async function startPrivateCluster(): Promise<PrivateCluster> {
  if (!existsSync(PLATFORM_LIB)) await buildPlatformLib();
  const dir = await Deno.makeTempDir({ prefix: 'qh_cluster_' });
  const data = join(dir, 'data');
  const socketDir = join(dir, 'run');
  await Deno.mkdir(socketDir);
  await Deno.writeTextFile(join(dir, 'pwfile'), 'postgres\n');
  if (isRoot()) await run('chown', ['-R', `${PG_USER}:${PG_USER}`, dir]);
  const port = freePort();
  const stop = async () => {
    if (existsSync(join(data, 'postmaster.pid'))) {
      await pg('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await pg('initdb', [
      '-D',
      data,
      '-U',
      SUPERUSER,
      '--pwfile',
      join(dir, 'pwfile'),
      '--auth-local=trust',
      '--auth-host=scram-sha-256',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
    ]);
    await Deno.writeTextFile(join(data, 'postgresql.conf'), clusterSettings(socketDir), {
      append: true,
    });
    await pg('pg_ctl', [
      '-D',
      data,
      '-l',
      join(dir, 'postgres.log'),
      '-o',
      `-p ${port}`,
      '-w',
      '-t',
      '60',
      'start',
    ]);
  } catch (e) {
    await stop();
    throw e;
  }
  const url = (user: string, database: string) =>
    `postgresql://${user}:postgres@127.0.0.1:${port}/${database}`;
  return {
    port,
    url: (database = 'postgres') => url('postgres', database),
    superuserUrl: (database = 'postgres') => url(SUPERUSER, database),
    bin: (name) => join(PG_BIN, name),
    stop,
  };
}
