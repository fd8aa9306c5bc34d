/**
 * Makes the local pg_net stand-in available as the extension `pg_net`, as Supabase's image has it
 * available: its control file and install script (local/stack/sql/pg_net.control, pg_net.sql) are
 * copied into PostgreSQL's extension folder. Creating it is then what it is on hosted Supabase:
 * `create extension pg_net` (our alerting migration does it) by postgres, run as the superuser
 * (supautils' privileged_extensions; locally local/platform/qh_supautils.c), and the grants come
 * from the platform's `issue_pg_net_access` event trigger (local/stack/sql/hosted_platform.sql).
 * Its worker is local/stack/pg_net_worker.ts.
 * @module
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PG_BIN, ROOT } from './config.ts';
import { StackError } from './log.ts';
import { run } from './system.ts';

const SQL_DIR = join(ROOT, 'local', 'stack', 'sql');

/** The stand-in's version, as pg_net's current release. */
export const PG_NET_VERSION = '0.20.4';

/**
 * Copies the stand-in's control file and script into `<sharedir>/extension` when they are missing
 * or differ. Returns what it did.
 * @throws {StackError} when that folder cannot be written (not root), naming the commands to run.
 */
export async function ensurePgNetExtensionFiles(): Promise<'installed' | 'present'> {
  const r = await run(join(PG_BIN, 'pg_config'), ['--sharedir']);
  if (r.code !== 0) throw new StackError(`pg_config --sharedir failed: ${r.stderr}`);
  const dir = join(r.stdout.trim(), 'extension');
  const files: [string, string][] = [
    [join(SQL_DIR, 'pg_net.control'), join(dir, 'pg_net.control')],
    [join(SQL_DIR, 'pg_net.sql'), join(dir, `pg_net--${PG_NET_VERSION}.sql`)],
  ];
  const stale = files.filter(([from, to]) =>
    !existsSync(to) || Deno.readTextFileSync(to) !== Deno.readTextFileSync(from)
  );
  if (stale.length === 0) return 'present';
  try {
    for (const [from, to] of stale) await Deno.copyFile(from, to);
  } catch (e) {
    throw new StackError(
      `Cannot install the local pg_net stand-in into ${dir} (${(e as Error).message}). Run once ` +
        `as root:\n` + stale.map(([from, to]) => `  install -m 644 ${from} ${to}`).join('\n'),
    );
  }
  return 'installed';
}
