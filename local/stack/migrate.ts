/**
 * Prepares the database: the Supabase stand-ins (only where missing), then the project's
 * migrations with the real Supabase CLI (`supabase migration up --db-url`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { databaseUrl, paths, ROOT, withSslDisabled } from './config.ts';
import { log, StackError } from './log.ts';
import { connect } from './postgres.ts';
import { run } from './system.ts';

const MIGRATIONS = join(ROOT, 'supabase', 'migrations');
const SUPABASE_BIN = join(ROOT, 'node_modules', '.bin', 'supabase');

/** Applies local/stack/sql/supabase_compat.sql; every statement in it is guarded. */
export async function bootstrapSupabaseCompat(url = databaseUrl()): Promise<void> {
  const sql = connect(url);
  try {
    const text = await Deno.readTextFile(
      join(ROOT, 'local', 'stack', 'sql', 'supabase_compat.sql'),
    );
    await sql.unsafe(text);
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
