/**
 * Prepares the database: the Supabase stand-ins (only where missing), then the project's
 * migrations with the real Supabase CLI (`supabase migration up --db-url`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  databaseUrl,
  paths,
  redactUrl,
  ROOT,
  SUPERUSER,
  superuserUrl,
  withSslDisabled,
} from './config.ts';
import { log, StackError } from './log.ts';
import { connect } from './postgres.ts';
import { run } from './system.ts';

const MIGRATIONS = join(ROOT, 'supabase', 'migrations');
const SUPABASE_BIN = join(ROOT, 'node_modules', '.bin', 'supabase');

/**
 * Builds what a hosted Supabase project has before our migrations run
 * (local/stack/sql/hosted_platform.sql), as the platform's superuser. Every statement in it is
 * guarded, so this is safe to repeat. With DATABASE_URL and no QH_SUPERUSER_URL, the database is
 * taken to be a Supabase one and only checked.
 */
export async function bootstrapPlatform(url = databaseUrl()): Promise<void> {
  const admin = superuserUrl(url);
  if (!admin) {
    const sql = connect(url);
    try {
      const [{ ok }] = await sql`
        select to_regprocedure('realtime.send(jsonb, text, text, boolean)') is not null
           and to_regprocedure('auth.uid()') is not null as ok`;
      if (!ok) {
        log.warn(
          `${redactUrl(url)} has no realtime.send() / auth.uid(): it is not a Supabase database. ` +
            `Set QH_SUPERUSER_URL to a superuser's URL for it and the stack builds the platform there.`,
        );
      }
    } finally {
      await sql.end({ timeout: 1 });
    }
    return;
  }
  const sql = connect(admin);
  try {
    const text = await Deno.readTextFile(
      join(ROOT, 'local', 'stack', 'sql', 'hosted_platform.sql'),
    );
    await sql.unsafe(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (/role "supabase_admin" does not exist|password authentication failed/.test(message)) {
      throw new StackError(
        `This cluster has no ${SUPERUSER} superuser: it was created before the local stack took ` +
          `hosted Supabase's roles. Run 'npm run stack -- reset' to recreate it.`,
      );
    }
    throw e;
  }
}

/** Runs local/stack/sql/hosted_platform.sql in the database of `superuserUrl`, as that superuser. */
export async function applyPlatformSql(superuserUrl: string): Promise<void> {
  const sql = connect(superuserUrl);
  try {
    await sql.unsafe(
      await Deno.readTextFile(join(ROOT, 'local', 'stack', 'sql', 'hosted_platform.sql')),
    );
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/** sha256 of each migration file, by name. */
export async function migrationHashes(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const names = [...Deno.readDirSync(MIGRATIONS)].filter((e) => e.name.endsWith('.sql'))
    .map((e) => e.name).sort();
  for (const name of names) {
    const bytes = await Deno.readFile(join(MIGRATIONS, name));
    const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    out[name] = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
  }
  return out;
}

/** Names of migrations that changed after they were applied to this cluster. */
export async function changedMigrations(): Promise<string[]> {
  if (!existsSync(paths.migrationsStamp)) return [];
  const applied = JSON.parse(await Deno.readTextFile(paths.migrationsStamp)) as Record<
    string,
    string
  >;
  const now = await migrationHashes();
  const last = Object.keys(applied).sort().at(-1) ?? '';
  const edited = Object.keys(applied).filter((n) => now[n] !== undefined && now[n] !== applied[n]);
  // A new file that sorts before one already applied would run out of order.
  const inserted = Object.keys(now).filter((n) => !(n in applied) && n < last);
  return [...edited, ...inserted.map((n) => `${n} (new, sorts before ${last})`)];
}

/**
 * Runs `supabase migration up` against the database. `stamp: false` leaves the stack's record of
 * applied migrations alone (for a database other than the stack's own).
 */
export async function applyMigrations(
  url = databaseUrl(),
  { stamp = true }: { stamp?: boolean } = {},
): Promise<void> {
  if (!existsSync(SUPABASE_BIN)) {
    throw new StackError(`The Supabase CLI is missing (${SUPABASE_BIN}); run 'npm install'.`);
  }
  // --include-all: apply a migration that sorts before one already applied (the stack warns).
  const args = ['migration', 'up', '--include-all', '--db-url', withSslDisabled(url)];
  const r = await run(SUPABASE_BIN, args, {
    cwd: ROOT,
    env: { SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' },
  });
  const out = `${r.stdout}\n${r.stderr}`.trim();
  if (r.code !== 0) {
    throw new StackError(`supabase migration up failed:\n${out}`);
  }
  const applied = out.split('\n').filter((l) => /Applying migration/i.test(l));
  if (!stamp) return;
  if (applied.length) log.ok(`applied ${applied.length} migration(s)`);
  await Deno.mkdir(join(paths.migrationsStamp, '..'), { recursive: true }).catch(() => {});
  await Deno.writeTextFile(paths.migrationsStamp, JSON.stringify(await migrationHashes(), null, 2));
}
