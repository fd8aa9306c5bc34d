/**
 * Vendors the dashboard's two browser dependencies into `dashboard/vendor/` (git-ignored), from
 * the npm packages pinned in deno.json, so the static page needs no CDN and no bundler:
 *
 * - `@supabase/supabase-js` → `vendor/supabase.js` (its UMD bundle: global `supabase`), loaded by
 *   the page only when it signs in with Supabase Auth or subscribes to Realtime;
 * - `uplot` → `vendor/uPlot.iife.min.js` (global `uPlot`) and `vendor/uPlot.min.css`, loaded when a
 *   queue's detail charts are first opened.
 *
 * `vendor/manifest.json` records each file's package, version and SHA-256.
 *
 * Run from the repository root: `deno run -A local/dashboard/build.ts` (or `deno task
 * dashboard:build`). It is idempotent and takes well under a second once the packages are cached.
 * @module
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Imported (not only resolved) so that Deno installs both packages into node_modules/.
import { createClient } from '@supabase/supabase-js';
import uPlot from 'uplot';

/** The repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the vendored files go. */
export const VENDOR_DIR = join(ROOT, 'dashboard', 'vendor');

/** One vendored file: `from` inside package `pkg`, copied to `vendor/<to>`. */
interface VendoredFile {
  pkg: string;
  from: string;
  to: string;
}

/** The files the page loads from `vendor/`. */
export const VENDORED: readonly VendoredFile[] = [
  { pkg: '@supabase/supabase-js', from: 'dist/umd/supabase.js', to: 'supabase.js' },
  { pkg: 'uplot', from: 'dist/uPlot.iife.min.js', to: 'uPlot.iife.min.js' },
  { pkg: 'uplot', from: 'dist/uPlot.min.css', to: 'uPlot.min.css' },
];

/** What {@link buildDashboard} wrote. */
export interface BuildResult {
  /** The vendor directory. */
  dir: string;
  /** Per file: package, version, bytes, sha256. */
  files: { file: string; pkg: string; version: string; bytes: number; sha256: string }[];
}

/** Copies the vendored files into {@link VENDOR_DIR} and writes `manifest.json`. */
export async function buildDashboard(outDir: string = VENDOR_DIR): Promise<BuildResult> {
  // Referencing the imports keeps them from being dropped as unused.
  if (typeof createClient !== 'function' || typeof uPlot !== 'function') {
    throw new Error('could not load @supabase/supabase-js and uplot from node_modules');
  }
  const require = createRequire(join(ROOT, 'package.json'));
  await Deno.mkdir(outDir, { recursive: true });
  const files: BuildResult['files'] = [];
  for (const f of VENDORED) {
    let pkgJson: string;
    try {
      pkgJson = require.resolve(`${f.pkg}/package.json`);
    } catch {
      throw new Error(
        `package '${f.pkg}' is not in node_modules: it must be pinned in deno.json "imports"`,
      );
    }
    const { version } = JSON.parse(await Deno.readTextFile(pkgJson)) as { version: string };
    const source = join(dirname(pkgJson), f.from);
    const bytes = await Deno.readFile(source).catch(() => {
      throw new Error(`'${f.pkg}@${version}' has no file '${f.from}'`);
    });
    const target = join(outDir, f.to);
    const tmp = `${target}.tmp`;
    await Deno.writeFile(tmp, bytes);
    await Deno.rename(tmp, target); // a page being served never sees a half-written file
    files.push({
      file: f.to,
      pkg: f.pkg,
      version,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  await Deno.writeTextFile(
    join(outDir, 'manifest.json'),
    JSON.stringify({ built_at: new Date().toISOString(), files }, null, 2) + '\n',
  );
  return { dir: outDir, files };
}

if (import.meta.main) {
  try {
    const result = await buildDashboard();
    for (const f of result.files) {
      console.log(
        `dashboard/vendor/${f.file.padEnd(18)} ${f.pkg}@${f.version}  ${
          (f.bytes / 1024).toFixed(0)
        } KiB`,
      );
    }
  } catch (e) {
    console.error(`dashboard build failed: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
