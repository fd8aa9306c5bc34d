/**
 * The user's Supabase project as the CLI sees it: where it is, its config.toml, its migrations, the
 * Queue Health files already in it, and the plan that brings it to this package's version.
 * @module
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml } from 'smol-toml';
import {
  compareVersions,
  type CopiedMigration,
  MIGRATION_NAME,
  migrationNames,
  readHeader,
  sha256,
  withHeader,
} from './lib.ts';

/** An error the user can act on: printed without a stack, exit code 1. */
export class UserError extends Error {}

/** The two Edge Functions the package ships, and their `[functions.*]` blocks. */
export const FUNCTIONS: Record<string, string> = {
  'queue-health': [
    '# Added by queue-health. false on purpose: the function verifies every caller itself (user',
    '# JWTs, the service role, Prometheus scrape tokens, which are not JWTs).',
    'verify_jwt = false',
  ].join('\n'),
  'queue-alert': [
    '# Added by queue-health. false on purpose: pg_net and pg_cron call it with a secret key that',
    '# the function checks itself before doing anything.',
    'verify_jwt = false',
  ].join('\n'),
};

/** TOML as plain JSON values (smol-toml's tables have no prototype; dates become strings). */
function parseConfig(text: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(parseToml(text))) as Record<string, unknown>;
}

/** Where the CLI records the function files it wrote (path → SHA-256), to know them later. */
export const LOCK_FILE = join('supabase', 'queue-health.lock.json');

interface Lock {
  version: string;
  files: Record<string, string>;
}

/** A located Supabase project. */
export interface Project {
  /** The project's root (the folder holding supabase/). */
  root: string;
  configPath: string;
  configText: string;
  config: Record<string, unknown>;
}

/**
 * Finds the project: `dir` must hold supabase/config.toml (or be the supabase folder itself);
 * without `dir`, the current folder and its parents are searched, as git does.
 */
export function findProject(dir: string | undefined): Project {
  let root: string | undefined;
  if (dir !== undefined) {
    const abs = resolve(dir);
    if (!existsSync(abs)) throw new UserError(`--dir ${dir}: no such directory`);
    if (!statSync(abs).isDirectory()) throw new UserError(`--dir ${dir}: not a directory`);
    if (existsSync(join(abs, 'supabase', 'config.toml'))) root = abs;
    else if (basename(abs) === 'supabase' && existsSync(join(abs, 'config.toml'))) {
      root = dirname(abs);
    } else {
      throw new UserError(
        `${abs} is not a Supabase project: there is no supabase/config.toml in it.\n` +
          `Run \`supabase init\` there first, or pass --dir <the folder that holds supabase/>.`,
      );
    }
  } else {
    for (let d = process.cwd();; d = dirname(d)) {
      if (existsSync(join(d, 'supabase', 'config.toml'))) {
        root = d;
        break;
      }
      if (dirname(d) === d) break;
    }
    if (!root) {
      throw new UserError(
        `No supabase/config.toml in ${process.cwd()} or any folder above it.\n` +
          'Run this in your Supabase project (or pass --dir <path>); `supabase init` creates one.',
      );
    }
  }
  const configPath = join(root, 'supabase', 'config.toml');
  if (!statSync(configPath).isFile()) throw new UserError(`${configPath} is not a file`);
  const configText = readFileSync(configPath, 'utf8');
  let config: Record<string, unknown>;
  try {
    config = parseConfig(configText);
  } catch (e) {
    throw new UserError(
      `${configPath} is not valid TOML, so it was left alone:\n${(e as Error).message}`,
    );
  }
  const functions = config.functions;
  if (functions !== undefined && (typeof functions !== 'object' || Array.isArray(functions))) {
    throw new UserError(
      `${configPath}: \`functions\` is not a table; Supabase expects [functions.<name>]`,
    );
  }
  const migrations = join(root, 'supabase', 'migrations');
  if (existsSync(migrations) && !statSync(migrations).isDirectory()) {
    throw new UserError(`${migrations} exists but is not a directory`);
  }
  return { root, configPath, configText, config };
}

/** A Queue Health migration found in the project. */
export interface InstalledMigration extends CopiedMigration {
  /** Its file name in the project's supabase/migrations. */
  name: string;
}

/** The Queue Health migrations copied into the project, in order. */
export function installedMigrations(project: Project): InstalledMigration[] {
  const dir = join(project.root, 'supabase', 'migrations');
  if (!existsSync(dir)) return [];
  const out: InstalledMigration[] = [];
  for (const name of migrationNames(dir)) {
    const header = readHeader(readFileSync(join(dir, name), 'utf8'));
    if (header) out.push({ name, ...header });
  }
  return out;
}

/** The newest version named in the installed migrations' headers, or undefined. */
export function installedVersion(installed: InstalledMigration[]): string | undefined {
  return installed.map((m) => m.version).sort(compareVersions).at(-1);
}

/** The queue-health package (the folder holding package.json, supabase/migrations, functions). */
export interface Package {
  root: string;
  version: string;
}

/** One change to the project. */
export interface Change {
  action: 'create' | 'update' | 'remove' | 'append';
  /** Path relative to the project root. */
  path: string;
  note?: string;
  /** New content (create, update, append: the whole new file). */
  content?: string;
}

/** UTC time as a 14-digit Supabase migration version. */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\D/g, '').slice(0, 14);
}

function timestampMs(version: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/.exec(version);
  if (!m) return undefined;
  const ms = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * Names for `sources` (package migration names, in order) that sort after every migration the
 * project has: one second apart, from now or from one second after the newest, whichever is later.
 */
export function newMigrationNames(existing: string[], sources: string[], nowMs: number): string[] {
  const newest = existing.at(-1);
  let start = Math.floor(nowMs / 1000) * 1000;
  const newestMs = newest ? timestampMs(MIGRATION_NAME.exec(newest)![1]) : undefined;
  if (newestMs !== undefined && newestMs >= start) start = newestMs + 1000;
  const names = sources.map((source, i) => {
    const rest = MIGRATION_NAME.exec(source)?.[2] ?? source.replace(/\.sql$/, '');
    const label = rest.startsWith('queue_health') ? rest : `queue_health_${rest}`;
    return `${timestamp(start + i * 1000)}_${label}.sql`;
  });
  if (newest && names.length && names[0] <= newest) {
    throw new UserError(
      `Your newest migration ${newest} has a version that no timestamp sorts after, so Queue ` +
        `Health's migrations cannot be named to run after it. Rename it to <YYYYMMDDHHMMSS>_name.sql.`,
    );
  }
  return names;
}

/** Relative imports (`from './x.ts'`, `import '../y.ts'`) of a TypeScript module. */
function relativeImports(source: string): string[] {
  const out: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (const m of source.matchAll(re)) out.push(m[1]);
  return out;
}

/**
 * The package's function files a deployment needs, as paths relative to the package root: each
 * function's deno.json and every module its index.ts reaches by relative imports (so _shared
 * comes along as far as it is used, and tests and test fixtures stay behind).
 */
export function functionFiles(pkg: Package): string[] {
  const base = join(pkg.root, 'supabase', 'functions');
  const seen = new Set<string>();
  const visit = (abs: string) => {
    const rel = relative(pkg.root, abs);
    if (seen.has(rel)) return;
    if (relative(base, abs).startsWith('..')) {
      throw new Error(
        `the package is broken: ${rel} is imported but is outside supabase/functions`,
      );
    }
    seen.add(rel);
    for (const spec of relativeImports(readFileSync(abs, 'utf8'))) {
      visit(resolve(dirname(abs), spec));
    }
  };
  for (const name of Object.keys(FUNCTIONS)) {
    visit(join(base, name, 'index.ts'));
    const denoJson = join(base, name, 'deno.json');
    if (existsSync(denoJson)) seen.add(relative(pkg.root, denoJson));
  }
  return [...seen].sort();
}

/** What install/upgrade found and would do. */
export interface Plan {
  installed: InstalledMigration[];
  installedVersion: string | undefined;
  changes: Change[];
  /** Copied migrations whose body no longer matches their header's SHA-256. */
  edited: InstalledMigration[];
  /** Function files in the way: edited after the CLI wrote them, or not the CLI's. */
  conflicts: string[];
  /** Notes to print (nothing to act on). */
  notes: string[];
  /** Project migrations without the header that are Queue Health's (same name or content). */
  handCopied: string[];
}

function readLock(project: Project): Lock | undefined {
  const path = join(project.root, LOCK_FILE);
  if (!existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Lock;
  } catch (e) {
    throw new UserError(`${path} is not valid JSON (${(e as Error).message}); restore it from git`);
  }
}

function migrationChanges(project: Project, pkg: Package, plan: Plan, nowMs: number): void {
  const dir = join(project.root, 'supabase', 'migrations');
  const existing = existsSync(dir) ? migrationNames(dir) : [];
  const sources = migrationNames(join(pkg.root, 'supabase', 'migrations'));
  const sourceHashes = new Set(
    sources.map((s) => sha256(readFileSync(join(pkg.root, 'supabase', 'migrations', s), 'utf8'))),
  );
  const ours = new Set(plan.installed.map((m) => m.name));
  for (const name of existing.filter((n) => !ours.has(n))) {
    if (sources.includes(name) || sourceHashes.has(sha256(readFileSync(join(dir, name), 'utf8')))) {
      plan.handCopied.push(name);
    }
  }
  const have = new Set(plan.installed.map((m) => m.source));
  const missing = sources.filter((s) => !have.has(s));
  const names = newMigrationNames(existing, missing, nowMs);
  missing.forEach((source, i) => {
    const body = readFileSync(join(pkg.root, 'supabase', 'migrations', source), 'utf8');
    plan.changes.push({
      action: 'create',
      path: join('supabase', 'migrations', names[i]),
      note: `from ${source}`,
      content: withHeader(pkg.version, source, body),
    });
  });
}

function functionChanges(project: Project, pkg: Package, plan: Plan, lock: Lock | undefined) {
  const wanted = functionFiles(pkg);
  const files: Record<string, string> = {};
  for (const rel of wanted) {
    const content = readFileSync(join(pkg.root, rel), 'utf8');
    files[rel] = sha256(content);
    const target = join(project.root, rel);
    if (!existsSync(target)) {
      plan.changes.push({ action: 'create', path: rel, content });
      continue;
    }
    const now = sha256(readFileSync(target, 'utf8'));
    if (now === files[rel]) continue;
    if (lock?.files[rel] === now) plan.changes.push({ action: 'update', path: rel, content });
    else plan.conflicts.push(rel);
  }
  for (const [rel, hash] of Object.entries(lock?.files ?? {})) {
    const target = join(project.root, rel);
    if (rel in files || !existsSync(target)) continue;
    if (sha256(readFileSync(target, 'utf8')) === hash) {
      plan.changes.push({ action: 'remove', path: rel, note: 'no longer part of Queue Health' });
    } else plan.notes.push(`${rel} is no longer part of Queue Health; you edited it, so it stays`);
  }
  const lockText = JSON.stringify({ version: pkg.version, files }, null, 2) + '\n';
  const lockPath = join(project.root, LOCK_FILE);
  const before = existsSync(lockPath) ? readFileSync(lockPath, 'utf8') : undefined;
  // The lock's version alone changing (same files) is no change worth a write.
  const same = lock && isDeepStrictEqual(lock.files, files);
  if (before === undefined || (!same && before !== lockText)) {
    plan.changes.push({
      action: before === undefined ? 'create' : 'update',
      path: LOCK_FILE,
      note: 'what Queue Health wrote under supabase/functions, to tell your edits apart',
      content: lockText,
    });
  }
}

function configChanges(project: Project, plan: Plan): void {
  const functions = (project.config.functions ?? {}) as Record<string, unknown>;
  const add = Object.keys(FUNCTIONS).filter((name) => !(name in functions));
  for (const name of Object.keys(FUNCTIONS)) {
    const block = functions[name] as Record<string, unknown> | undefined;
    if (block && block.verify_jwt !== false) {
      plan.notes.push(
        `[functions.${name}] in supabase/config.toml does not say verify_jwt = false; Queue Health ` +
          'needs it (callers are checked by the function itself). Left as you wrote it.',
      );
    }
  }
  if (!add.length) return;
  let text = project.configText;
  if (text.length && !text.endsWith('\n')) text += '\n';
  for (const name of add) text += `\n[functions.${name}]\n${FUNCTIONS[name]}\n`;
  // Verify with the parser: the new text parses, has the blocks, and nothing else changed.
  let after: Record<string, unknown>;
  try {
    after = parseConfig(text);
  } catch (e) {
    throw new UserError(
      `Adding [functions.*] blocks to ${project.configPath} would make it invalid TOML ` +
        `(${(e as Error).message}); add them by hand:\n${
          add.map((n) => `[functions.${n}]\nverify_jwt = false`).join('\n')
        }`,
    );
  }
  const afterFunctions = { ...(after.functions as Record<string, unknown>) };
  for (const name of add) {
    if (!isDeepStrictEqual(afterFunctions[name], { verify_jwt: false })) {
      throw new UserError(`could not add [functions.${name}] to ${project.configPath}`);
    }
    delete afterFunctions[name];
  }
  const rest = { ...after, functions: afterFunctions };
  const expected = { ...project.config, functions: project.config.functions ?? {} };
  if (!isDeepStrictEqual(rest, expected)) {
    throw new UserError(
      `adding [functions.*] to ${project.configPath} would change other settings`,
    );
  }
  plan.changes.push({
    action: 'append',
    path: relative(project.root, project.configPath),
    note: add.map((n) => `[functions.${n}]`).join(', '),
    content: text,
  });
}

/** Works out what install/upgrade would change; writes nothing. */
export function makePlan(project: Project, pkg: Package, nowMs = Date.now()): Plan {
  const installed = installedMigrations(project);
  const plan: Plan = {
    installed,
    installedVersion: installedVersion(installed),
    changes: [],
    edited: installed.filter((m) => m.actual !== m.sha256),
    conflicts: [],
    notes: [],
    handCopied: [],
  };
  migrationChanges(project, pkg, plan, nowMs);
  functionChanges(project, pkg, plan, readLock(project));
  configChanges(project, plan);
  return plan;
}
