/**
 * Builds what the dashboard serves, from the npm packages pinned in deno.json (all git-ignored):
 *
 * - `dashboard/dist/queue-health-dashboard.js`: the `<queue-health-dashboard>` custom element as
 *   one ES module (dashboard/element.js and its modules, with uPlot inside), bundled by esbuild;
 * - `dashboard/dist/queue-health-dashboard.css`: its stylesheet (uPlot's, then
 *   dashboard/styles.css), which the element links into its shadow root from next to the module;
 * - `dashboard/vendor/supabase.js`: supabase-js's UMD bundle (global `supabase`), which the
 *   standalone page loads only when it signs in with Supabase Auth or subscribes to Realtime (an
 *   app that embeds the element hands it its own client instead).
 *
 * `dist/manifest.json` and `vendor/manifest.json` record each file's package, version, size and
 * SHA-256.
 *
 * Run from the repository root: `deno run -A local/dashboard/build.ts` (or `deno task
 * dashboard:build`). `npm start` and `npm test` run it. It is idempotent and takes about a second.
 * @module
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
// Imported (not only resolved) so that Deno installs both packages into node_modules/.
import { createClient } from '@supabase/supabase-js';
import uPlot from 'uplot';

/** The repository root. */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the vendored files go. */
export const VENDOR_DIR = join(ROOT, 'dashboard', 'vendor');

/** Where the element's bundle goes. */
export const DIST_DIR = join(ROOT, 'dashboard', 'dist');

/** The element's module and stylesheet, as built into {@link DIST_DIR}. */
export const ELEMENT_JS = 'queue-health-dashboard.js';
export const ELEMENT_CSS = 'queue-health-dashboard.css';

/** One vendored file: `from` inside package `pkg`, copied to `vendor/<to>`. */
interface VendoredFile {
  pkg: string;
  from: string;
  to: string;
}

/** The files the page loads from `vendor/`. */
export const VENDORED: readonly VendoredFile[] = [
  { pkg: '@supabase/supabase-js', from: 'dist/umd/supabase.js', to: 'supabase.js' },
];

/** What {@link buildDashboard} wrote. */
export interface BuildResult {
  /** The vendor directory. */
  dir: string;
  /** Per file: package, version, bytes, sha256. */
  files: { file: string; pkg: string; version: string; bytes: number; sha256: string }[];
}

/** Vendors supabase-js and bundles the element: see the module doc. */
export async function buildDashboard(outDir: string = VENDOR_DIR): Promise<BuildResult> {
  const vendored = await vendor(outDir);
  await bundleElement();
  return vendored;
}

/** Writes `bytes` to `target` through a temporary file: a page being served never sees half. */
async function writeAtomic(target: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${target}.tmp`;
  await Deno.writeFile(tmp, bytes);
  await Deno.rename(tmp, target);
}

/** The file `from` of npm package `pkg` (resolved from node_modules), with its version. */
async function packageFile(pkg: string, from: string): Promise<{ path: string; version: string }> {
  const require = createRequire(join(ROOT, 'package.json'));
  let pkgJson: string;
  try {
    pkgJson = require.resolve(`${pkg}/package.json`);
  } catch {
    throw new Error(
      `package '${pkg}' is not in node_modules: it must be pinned in deno.json "imports"`,
    );
  }
  const { version } = JSON.parse(await Deno.readTextFile(pkgJson)) as { version: string };
  return { path: join(dirname(pkgJson), from), version };
}

/**
 * Bundles dashboard/element.js (with uPlot) into one ES module with esbuild (the pinned
 * devDependency), and uPlot's CSS + dashboard/styles.css into one stylesheet, in {@link DIST_DIR}.
 */
export async function bundleElement(outDir: string = DIST_DIR): Promise<BuildResult['files']> {
  await Deno.mkdir(outDir, { recursive: true });
  const esbuild = join(ROOT, 'node_modules', '.bin', 'esbuild');
  const jsTmp = join(outDir, `${ELEMENT_JS}.tmp.js`);
  const out = await new Deno.Command(esbuild, {
    args: [
      relative(ROOT, join(ROOT, 'dashboard', 'element.js')),
      '--bundle',
      '--format=esm',
      '--target=es2022',
      '--minify',
      '--legal-comments=eof',
      `--outfile=${jsTmp}`,
      '--log-level=warning',
    ],
    cwd: ROOT,
    stdout: 'piped',
    stderr: 'piped',
  }).output().catch((e) => {
    throw new Error(`cannot run ${esbuild} (npm install installs it): ${e.message}`);
  });
  if (!out.success) {
    throw new Error(`esbuild failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  await Deno.rename(jsTmp, join(outDir, ELEMENT_JS));
  const uplotCss = await packageFile('uplot', 'dist/uPlot.min.css');
  const css = [
    `/* uplot@${uplotCss.version} dist/uPlot.min.css (MIT) */`,
    (await Deno.readTextFile(uplotCss.path)).trim(),
    await Deno.readTextFile(join(ROOT, 'dashboard', 'styles.css')),
  ].join('\n');
  await writeAtomic(join(outDir, ELEMENT_CSS), new TextEncoder().encode(css));
  const files: BuildResult['files'] = [];
  for (const file of [ELEMENT_JS, ELEMENT_CSS]) {
    const bytes = await Deno.readFile(join(outDir, file));
    files.push({
      file,
      pkg: 'queue-health (dashboard/element.js + uplot)',
      version: uplotCss.version,
      bytes: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
    });
  }
  await Deno.writeTextFile(
    join(outDir, 'manifest.json'),
    JSON.stringify({ built_at: new Date().toISOString(), files }, null, 2) + '\n',
  );
  return files;
}

/** Copies the vendored files into `outDir` and writes `manifest.json`. */
async function vendor(outDir: string): Promise<BuildResult> {
  // Referencing the imports keeps them from being dropped as unused.
  if (typeof createClient !== 'function' || typeof uPlot !== 'function') {
    throw new Error('could not load @supabase/supabase-js and uplot from node_modules');
  }
  await Deno.mkdir(outDir, { recursive: true });
  const files: BuildResult['files'] = [];
  for (const f of VENDORED) {
    const { path: source, version } = await packageFile(f.pkg, f.from);
    const bytes = await Deno.readFile(source).catch(() => {
      throw new Error(`'${f.pkg}@${version}' has no file '${f.from}'`);
    });
    await writeAtomic(join(outDir, f.to), bytes);
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
        `dashboard/vendor/${f.file.padEnd(26)} ${f.pkg}@${f.version}  ${
          (f.bytes / 1024).toFixed(0)
        } KiB`,
      );
    }
    for (const file of [ELEMENT_JS, ELEMENT_CSS]) {
      const { size } = await Deno.stat(join(DIST_DIR, file));
      console.log(`dashboard/dist/${file.padEnd(28)} ${(size / 1024).toFixed(0)} KiB`);
    }
  } catch (e) {
    console.error(`dashboard build failed: ${e instanceof Error ? e.message : String(e)}`);
    Deno.exit(1);
  }
}
