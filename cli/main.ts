#!/usr/bin/env node
/**
 * `queue-health`: installs Queue Health into an existing Supabase project and upgrades it.
 * Runs on Node ≥ 20 (built to dist/cli.mjs by `npm run build`); see docs/cli.md.
 * @module
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { compareVersions } from './lib.ts';
import {
  type Change,
  findProject,
  installedMigrations,
  installedVersion,
  makePlan,
  type Package,
  type Plan,
  type Project,
  UserError,
} from './project.ts';

const HELP = `queue-health — Postgres-native queue monitoring for Supabase

Usage:
  queue-health install [--dir <path>] [--dry-run]   copy Queue Health into a Supabase project
  queue-health upgrade [--dir <path>] [--dry-run]   add newer migrations, refresh the functions
  queue-health status  [--dir <path>] [--db-url <url>]
                                                    the version in the files (and the database)
  queue-health --help | --version

Options:
  --dir <path>     the Supabase project (the folder holding supabase/config.toml);
                   default: the current folder or the nearest one above it that has one
  --dry-run        print what would change, change nothing
  --db-url <url>   (status) a Postgres URL; reports queue_health.version() there

Exit codes: 0 done (or nothing to do), 1 refused or failed, 2 bad usage.
Docs: docs/cli.md in the package.`;

/** Bad usage: printed with a pointer to --help, exit code 2. */
class UsageError extends Error {}

interface Args {
  command: 'install' | 'upgrade' | 'status' | 'help' | 'version';
  dir?: string;
  dryRun: boolean;
  dbUrl?: string;
  /** The options given, to check they belong to the command. */
  flags: string[];
}

const OPTIONS: Record<string, { value: boolean; commands: string[] }> = {
  '--dir': { value: true, commands: ['install', 'upgrade', 'status'] },
  '--dry-run': { value: false, commands: ['install', 'upgrade'] },
  '--db-url': { value: true, commands: ['status'] },
};

export function parseArgs(argv: string[]): Args {
  const args: Args = { command: 'help', dryRun: false, flags: [] };
  let command: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') return { ...args, command: 'help' };
    if (a === '--version' || a === '-v') return { ...args, command: 'version' };
    if (!a.startsWith('-')) {
      if (command !== undefined) throw new UsageError(`unexpected argument: ${a}`);
      if (!['install', 'upgrade', 'status'].includes(a)) {
        throw new UsageError(`unknown command: ${a} (commands: install, upgrade, status)`);
      }
      command = a;
      continue;
    }
    const [flag, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    const spec = OPTIONS[flag];
    if (!spec) throw new UsageError(`unknown option: ${flag}`);
    let value: string | undefined;
    if (spec.value) {
      value = inline ?? argv[++i];
      if (value === undefined || value === '' || (inline === undefined && value.startsWith('--'))) {
        throw new UsageError(`${flag} needs a value`);
      }
    } else if (inline !== undefined) throw new UsageError(`${flag} takes no value`);
    if (flag === '--dir') args.dir = value;
    if (flag === '--db-url') args.dbUrl = value;
    if (flag === '--dry-run') args.dryRun = true;
    args.flags.push(flag);
  }
  if (command === undefined) {
    if (argv.length) throw new UsageError('no command given (commands: install, upgrade, status)');
    return args;
  }
  for (const flag of args.flags) {
    if (!OPTIONS[flag].commands.includes(command)) {
      throw new UsageError(`${flag} is not an option of \`${command}\``);
    }
  }
  return { ...args, command: command as Args['command'] };
}

/** The package this file was built into: dist/cli.mjs → its parent folder. */
function thisPackage(): Package {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
    version: string;
  }).version;
  if (!existsSync(join(root, 'supabase', 'migrations'))) {
    throw new Error(`the package at ${root} has no supabase/migrations`);
  }
  return { root, version };
}

const SYMBOL: Record<Change['action'], string> = {
  create: '+ create',
  update: '~ update',
  remove: '- remove',
  append: '~ append',
};

function printChanges(changes: Change[], dryRun: boolean): void {
  console.log(dryRun ? 'Would change (dry run, nothing written):' : 'Changed:');
  for (const c of changes) {
    console.log(`  ${SYMBOL[c.action]} ${c.path}${c.note ? `  (${c.note})` : ''}`);
  }
}

function applyChanges(project: Project, changes: Change[]): void {
  for (const c of changes) {
    const target = join(project.root, c.path);
    if (c.action === 'remove') {
      rmSync(target);
      continue;
    }
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, c.content!, c.action === 'create' ? { flag: 'wx' } : undefined);
  }
}

function refuseEditedOrConflicting(plan: Plan, pkg: Package): void {
  const lines: string[] = [];
  for (const m of plan.edited) {
    lines.push(
      `  supabase/migrations/${m.name} was edited after Queue Health ${m.version} copied it ` +
        `(sha256 in its header ${m.sha256.slice(0, 12)}…, now ${m.actual.slice(0, 12)}…).`,
    );
  }
  if (plan.edited.length) {
    lines.push(
      '  Migrations are history: restore each file (`git checkout -- <file>`; its original body, ' +
        `below the three header lines, is ${join(pkg.root, 'supabase', 'migrations')}/<source>), ` +
        'and put your change in a migration of your own (`supabase migration new`).',
    );
  }
  for (const name of plan.handCopied) {
    lines.push(
      `  supabase/migrations/${name} is a Queue Health migration copied without this CLI.`,
    );
  }
  if (plan.handCopied.length) {
    lines.push(
      '  Installing next to it would create every object twice, and the CLI cannot adopt such ' +
        'files yet; see "When it refuses" in docs/cli.md.',
    );
  }
  for (const path of plan.conflicts) {
    lines.push(`  ${path} exists and is not the file Queue Health wrote there (edited, or yours).`);
  }
  if (plan.conflicts.length) {
    lines.push(
      '  Move your changes out of these files (into a function or folder of your own) and delete ' +
        "them; the next run writes Queue Health's version.",
    );
  }
  if (lines.length) {
    throw new UserError(`Refusing to continue:\n${lines.join('\n')}\nNothing was changed.`);
  }
}

function nextSteps(): string {
  return `Next steps:
  1. Apply the migrations:   supabase db push          (local stack: supabase migration up)
  2. Deploy the functions:   supabase functions deploy queue-health
                             supabase functions deploy queue-alert
  3. Secrets for alerts:     supabase secrets set RESEND_API_KEY=… RESEND_FROM=…   (email channels)
                             and in the SQL editor the Vault secrets queue_health_alert_url and
                             queue_health_alert_key (docs/install.md, "Let alerts leave the database")
  4. Start capturing:        select queue_health.schedule();
  5. Give people access:     insert into queue_health.project_member (project_id, user_id, role)
                             select 'default', id, 'admin' from auth.users where email = '…';`;
}

function installOrUpgrade(args: Args): number {
  const pkg = thisPackage();
  const project = findProject(args.dir);
  const plan = makePlan(project, pkg);
  const rel = relative(process.cwd(), project.root);
  const where = rel === '' ? '.' : rel.startsWith('..') ? project.root : rel;
  if (
    args.command === 'install' && plan.installedVersion &&
    compareVersions(plan.installedVersion, pkg.version) < 0
  ) {
    throw new UserError(
      `Queue Health ${plan.installedVersion} is installed in ${where}; this is ${pkg.version}. ` +
        'Run `queue-health upgrade` to move to it.',
    );
  }
  if (args.command === 'upgrade' && !plan.installedVersion) {
    throw new UserError(`Queue Health is not installed in ${where}; run \`queue-health install\`.`);
  }
  if (plan.installedVersion && compareVersions(plan.installedVersion, pkg.version) > 0) {
    throw new UserError(
      `${where} has Queue Health ${plan.installedVersion}, newer than this package (${pkg.version}); ` +
        'use the newer package (npx queue-health@latest …).',
    );
  }
  refuseEditedOrConflicting(plan, pkg);
  for (const n of plan.notes) console.log(`note: ${n}`);
  if (!plan.changes.length) {
    console.log(
      `Queue Health ${pkg.version} is already ${
        args.command === 'upgrade' ? 'current' : 'installed'
      } ` +
        `in ${where}: nothing to change.`,
    );
    return 0;
  }
  printChanges(plan.changes, args.dryRun);
  if (args.dryRun) return 0;
  applyChanges(project, plan.changes);
  const migrations = plan.changes.filter((c) => c.path.startsWith(join('supabase', 'migrations')));
  console.log(
    `\nQueue Health ${pkg.version} ${
      args.command === 'install' ? 'installed' : 'upgraded'
    } in ${where}` +
      ` (${migrations.length} new migration(s)).\n`,
  );
  console.log(nextSteps());
  return 0;
}

async function databaseVersion(url: string): Promise<string> {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    const [row] = await sql<{ schema: boolean; fn: boolean }[]>`
      select to_regnamespace('queue_health') is not null as schema,
             to_regprocedure('queue_health.version()') is not null as fn`;
    if (!row.schema) return 'not installed (no schema queue_health)';
    if (!row.fn) {
      return 'installed before versioning (schema queue_health has no version() function): ' +
        'older than 0.1.0';
    }
    const [{ v }] = await sql<{ v: string }[]>`select queue_health.version() as v`;
    return v;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function status(args: Args): Promise<number> {
  const pkg = thisPackage();
  let project: Project | undefined;
  try {
    project = findProject(args.dir);
  } catch (e) {
    if (!(e instanceof UserError) || !args.dbUrl) throw e;
    console.log(`Files:     no Supabase project (${e.message.split('\n')[0]})`);
  }
  console.log(`Package:   queue-health ${pkg.version}`);
  if (project) {
    const installed = installedMigrations(project);
    const version = installedVersion(installed);
    console.log(`Project:   ${project.root}`);
    if (!version) console.log('Files:     not installed (no Queue Health migrations)');
    else {
      console.log(
        `Files:     ${version} (${installed.length} migration(s), newest ${
          installed.at(-1)!.name
        })`,
      );
      const plan = makePlan(project, pkg);
      for (const m of plan.edited) console.log(`  edited:  supabase/migrations/${m.name}`);
      for (const p of plan.conflicts) console.log(`  differs: ${p}`);
      for (const n of plan.handCopied) console.log(`  copied by hand: supabase/migrations/${n}`);
      const pending = plan.changes.length;
      if (plan.edited.length || plan.conflicts.length || plan.handCopied.length) {
        console.log('           local edits above: install/upgrade refuse until they are resolved');
      } else if (compareVersions(version, pkg.version) < 0 || pending) {
        console.log(`           ${pending} change(s) pending: run \`queue-health upgrade\``);
      } else console.log('           up to date with this package');
    }
  }
  if (args.dbUrl) {
    let v: string;
    try {
      v = await databaseVersion(args.dbUrl);
    } catch (e) {
      throw new UserError(`could not read the database: ${(e as Error).message}`);
    }
    console.log(`Database:  ${v}`);
  }
  return 0;
}

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`queue-health: ${e.message}\nRun \`queue-health --help\` for usage.`);
    return 2;
  }
  try {
    if (args.command === 'help') console.log(HELP);
    else if (args.command === 'version') console.log(thisPackage().version);
    else if (args.command === 'status') return await status(args);
    else return installOrUpgrade(args);
    return 0;
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    console.error(`queue-health: ${e.message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
