/**
 * The manifest of released migrations, supabase/migrations.manifest.json: for every released
 * version, each migration file it consists of and the file's SHA-256. Released files are frozen;
 * new work goes into new migration files.
 *
 *   npm run manifest                 check: every file of every released version is unchanged
 *                                    (npm test runs this; exit 1 naming each changed file)
 *   npm run manifest -- --release    record package.json's version with the current migrations
 *                                    (refused when that version is recorded with other files;
 *                                    --replace overwrites it, only for a version never published)
 *
 * `--root <dir>` works on another checkout (tests use it).
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  compareVersions,
  type Manifest,
  manifestVersions,
  migrationNames,
  sha256,
} from '../../cli/lib.ts';

/** Where the files of a checkout are. */
export interface Layout {
  migrations: string;
  manifest: string;
  packageJson: string;
}

export function layout(root: string): Layout {
  return {
    migrations: join(root, 'supabase', 'migrations'),
    manifest: join(root, 'supabase', 'migrations.manifest.json'),
    packageJson: join(root, 'package.json'),
  };
}

/** The manifest, or undefined when none is committed yet (nothing released). */
export function readManifest(l: Layout): Manifest | undefined {
  if (!existsSync(l.manifest)) return undefined;
  return JSON.parse(readFileSync(l.manifest, 'utf8')) as Manifest;
}

/** SHA-256 of every migration file now, by name. */
export function currentFiles(l: Layout): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of migrationNames(l.migrations)) {
    out[name] = sha256(readFileSync(join(l.migrations, name), 'utf8'));
  }
  return out;
}

/** What breaks the freeze: a released file changed or gone, or a version that drops files. */
export function checkManifest(manifest: Manifest, files: Record<string, string>): string[] {
  const problems: string[] = [];
  let previous: { version: string; names: string[] } | undefined;
  for (const version of manifestVersions(manifest)) {
    const listed = manifest.versions[version].files;
    for (const [name, hash] of Object.entries(listed)) {
      if (!(name in files)) problems.push(`${version}: ${name} is gone (released files stay)`);
      else if (files[name] !== hash) {
        problems.push(
          `${version}: ${name} changed after its release (sha256 ${hash.slice(0, 12)}… in the ` +
            `manifest, ${files[name].slice(0, 12)}… now); put the change in a new migration file`,
        );
      }
    }
    for (const name of previous?.names ?? []) {
      if (!(name in listed)) problems.push(`${version}: drops ${name} of ${previous!.version}`);
    }
    previous = { version, names: Object.keys(listed) };
  }
  return problems;
}

/** Files newer than the last release: the work that the next release will freeze. */
export function unreleased(
  manifest: Manifest | undefined,
  files: Record<string, string>,
): string[] {
  const released = new Set(
    Object.values(manifest?.versions ?? {}).flatMap((v) => Object.keys(v.files)),
  );
  return Object.keys(files).filter((n) => !released.has(n));
}

/** The manifest with `version` recorded as the current files; throws when that would unfreeze. */
export function release(
  manifest: Manifest | undefined,
  version: string,
  files: Record<string, string>,
  replace: boolean,
): Manifest {
  const next: Manifest = { versions: { ...(manifest?.versions ?? {}) } };
  const recorded = next.versions[version];
  if (recorded && JSON.stringify(recorded.files) !== JSON.stringify(files) && !replace) {
    throw new Error(
      `${version} is already released with other files; bump package.json's version, or pass ` +
        '--replace if that version was never published',
    );
  }
  const newer = manifestVersions(next).filter((v) => compareVersions(v, version) > 0);
  if (newer.length) throw new Error(`${version} is older than the released ${newer.join(', ')}`);
  next.versions[version] = { files };
  const problems = checkManifest(next, files);
  if (problems.length) throw new Error(problems.join('\n'));
  return next;
}

function main(args: string[]): number {
  const rootAt = args.indexOf('--root');
  const root = rootAt >= 0 ? args[rootAt + 1] : new URL('../..', import.meta.url).pathname;
  const l = layout(root);
  const manifest = readManifest(l);
  const files = currentFiles(l);
  if (args.includes('--release')) {
    const version =
      (JSON.parse(readFileSync(l.packageJson, 'utf8')) as { version: string }).version;
    let next: Manifest;
    try {
      next = release(manifest, version, files, args.includes('--replace'));
    } catch (e) {
      console.error(`manifest: ${(e as Error).message}`);
      return 1;
    }
    const text = JSON.stringify(next, null, 2) + '\n';
    if (existsSync(l.manifest) && readFileSync(l.manifest, 'utf8') === text) {
      console.log(
        `manifest: ${version} already recorded with these ${Object.keys(files).length} files`,
      );
    } else {
      writeFileSync(l.manifest, text);
      console.log(`manifest: recorded ${version}: ${Object.keys(files).length} files`);
    }
    return 0;
  }
  if (!manifest) {
    console.log(`manifest: no ${l.manifest} yet: nothing released, nothing frozen`);
    return 0;
  }
  const problems = checkManifest(manifest, files);
  for (const p of problems) console.error(`✗ ${p}`);
  const versions = manifestVersions(manifest);
  const fresh = unreleased(manifest, files);
  console.log(
    `manifest: ${versions.length} released version(s) (${versions.join(', ')}), ` +
      `${problems.length} problem(s); ${fresh.length} unreleased file(s)${
        fresh.length ? `: ${fresh.join(', ')}` : ''
      }`,
  );
  return problems.length ? 1 : 0;
}

if (import.meta.main) Deno.exit(main(Deno.args));
