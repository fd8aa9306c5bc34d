/**
 * The `<queue-health-dashboard>` element inside a real SvelteKit app (examples/sveltekit), in
 * headless Chromium against the running local stack:
 *
 * - installs the example's npm packages when they are missing (`npm ci`, its own lockfile) and
 *   builds it with `vite build` (adapter-static) when its sources or the element changed since the
 *   last build (a hash of the inputs is kept in build/.qh-inputs);
 * - serves the built app on 127.0.0.1:QH_EXAMPLE_PORT (another origin than the stack's: the stack's
 *   Realtime stand-in admits it only because `npm test` lists it in QH_REALTIME_ALLOWED_ORIGINS),
 *   with /config.json pointing at the stack;
 * - signs in through the element's token form (the app hands the element its supabase-js client),
 *   sees the queues, waits for the element to go live over Realtime, drives a capture and sees the
 *   new depth arrive as a broadcast (no report read in between), opens a queue and then a firing
 *   alert (a rule of the test's own) and sees the app's `queueopen` / `alertopen` handlers run;
 * - dark mode and phone width: screenshots sveltekit.png, sveltekit-dark.png, sveltekit-phone.png,
 *   and of the standalone page dashboard-dark.png, dashboard-phone-dark.png; the `theme` attribute
 *   overrides the colour scheme either way.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { buildDashboard, DIST_DIR, ELEMENT_CSS, ELEMENT_JS } from '../dashboard/build.ts';
import { launchChromium } from '../dashboard/chromium.ts';
import { API_URL, EXAMPLE_PORT, ROOT } from '../stack/config.ts';
import { DEMO_SCHEMA, seedDemo } from '../stack/demo.ts';
import {
  artifactsDir,
  captureNow,
  type PageWindow as Win,
  removePgBossQueue,
  serveStatic,
  visible,
  within,
} from './browser.ts';
import { connect, databaseUrl } from './db.ts';
import { startPgBoss } from './pgboss.ts';

const EXAMPLE = join(ROOT, 'examples', 'sveltekit');
const BUILD = join(EXAMPLE, 'build');
const TAG = 'queue-health-dashboard';

async function run(cmd: string, args: string[], cwd: string, what: string): Promise<void> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
    env: { NO_COLOR: '1' },
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${what} failed (exit ${out.code}):\n${text.slice(-3000)}`);
  }
}

/** SHA-256 over the example's sources, its lockfile and the built element. */
async function inputsHash(): Promise<string> {
  const h = createHash('sha256');
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const p = join(dir, e.name);
      if (e.isDirectory) walk(p);
      else files.push(p);
    }
  };
  walk(join(EXAMPLE, 'src', 'routes'));
  for (const f of ['app.html', 'lib/supabase.js']) files.push(join(EXAMPLE, 'src', f));
  for (
    const f of [
      'package-lock.json',
      'svelte.config.js',
      'vite.config.js',
      'scripts/copy-element.js',
    ]
  ) {
    files.push(join(EXAMPLE, f));
  }
  files.push(
    join(DIST_DIR, ELEMENT_JS),
    join(DIST_DIR, ELEMENT_CSS),
  );
  for (const f of files.sort()) h.update(f).update(await Deno.readFile(f));
  return h.digest('hex');
}

/** npm ci when node_modules is missing or older than the lockfile; vite build when inputs changed. */
async function ensureBuilt(): Promise<{ installed: boolean; built: boolean; seconds: number }> {
  const t0 = performance.now();
  const marker = join(EXAMPLE, 'node_modules', '.package-lock.json');
  let installed = false;
  if (
    !existsSync(marker) ||
    Deno.statSync(marker).mtime! < Deno.statSync(join(EXAMPLE, 'package-lock.json')).mtime!
  ) {
    await run('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], EXAMPLE, 'npm ci');
    installed = true;
  }
  const hash = await inputsHash();
  const stamp = join(BUILD, '.qh-inputs');
  let built = false;
  if (!existsSync(stamp) || Deno.readTextFileSync(stamp) !== hash) {
    await run('npm', ['run', 'build'], EXAMPLE, 'the example build (vite build)');
    await Deno.writeTextFile(stamp, hash);
    built = true;
  }
  return { installed, built, seconds: (performance.now() - t0) / 1000 };
}

Deno.test({
  name:
    'the element in the SvelteKit example shows the queues, goes live over Realtime and opens a queue (queueopen)',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const health = await fetch(`${API_URL}/_stack/config.json`).catch(() => null);
    assert.ok(health?.ok, `the local stack is not answering on ${API_URL}: 'npm run stack -- up'`);
    const stack = await health.json() as { anonKey: string };
    await buildDashboard();
    const build = await ensureBuilt();
    console.log(
      `example: ${build.installed ? 'npm ci + ' : ''}${
        build.built ? 'vite build' : 'build cached'
      } in ${build.seconds.toFixed(1)} s`,
    );

    const url = databaseUrl();
    const sql = connect({ url, max: 2, applicationName: 'qh-sveltekit-example-test' });
    const testQueue = `qh_svelte_${Date.now().toString(36)}`;
    const ruleName = `${testQueue}_deep`;
    const stops: (() => Promise<unknown>)[] = [];
    const userDataDir = await Deno.makeTempDir({ prefix: 'qh-chromium-' });
    const capture = () => captureNow(sql);
    try {
      const { token } = await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], {
        channels: false,
      });
      const pb = await startPgBoss(12, { schema: DEMO_SCHEMA, databaseUrl: url });
      stops.push(() => pb.stop());
      await pb.boss.createQueue(testQueue);
      await pb.boss.insert(testQueue, Array.from({ length: 7 }, (_, i) => ({ data: { i } })));
      // A rule that fires on the test queue at once (depth > 5, no for-duration), so the element
      // lists a firing alert to open.
      await sql`
        insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name, group_wait)
        values ('default', ${ruleName}, 'depth', 5, ${testQueue}, '0')`;
      await capture();

      const config = { supabaseUrl: API_URL, anonKey: stack.anonKey };
      const server = serveStatic(BUILD, EXAMPLE_PORT, {
        spaFallback: true,
        routes: { '/config.json': () => Response.json(config) },
      });
      stops.push(() => server.shutdown());
      const origin = `http://127.0.0.1:${EXAMPLE_PORT}`;

      const browser = await launchChromium(userDataDir, { width: 1280, height: 900 });
      stops.push(() => browser.close());
      const page = browser.pages()[0] ?? await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const reads: number[] = [];
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/functions/v1/queue-health') reads.push(Date.now());
      });
      // The example's dashboard under the user's own queue: #project=… is not used; the element's
      // project attribute is left to its default (the one project the demo user sees).
      await within(20_000, 'the example app', page.goto(`${origin}/`));
      await visible(page.locator('#token-details'), 'the element’s sign-in form', 15_000);
      assert.equal(
        await page.locator('#password-form').isVisible(),
        true,
        'with the app’s supabase-js client the element offers email and password',
      );
      await page.locator('#token-details summary').click();
      await page.locator('#token').fill(token);
      await page.locator('#token-form button[type=submit]').click();

      const rowSel = `#queue-rows tr[data-queue="default/pgboss/${DEMO_SCHEMA}/${testQueue}"]`;
      await visible(page.locator(rowSel), 'the test queue in the element', 15_000);
      assert.equal(
        await page.locator(`${rowSel} [data-field="depth"]`).getAttribute('data-value'),
        '7',
      );

      await within(
        15_000,
        `the element to go live over Realtime (the stack must admit ${origin}: QH_REALTIME_ALLOWED_ORIGINS)`,
        page.waitForFunction(
          (tag) =>
            (globalThis as unknown as Win).document.querySelector(tag)?.dataset.mode === 'realtime',
          TAG,
          { polling: 50, timeout: 15_000 },
        ),
      );
      const readsBefore = reads.length;
      await pb.boss.insert(testQueue, Array.from({ length: 30 }, (_, i) => ({ data: { i } })));
      const t0 = Date.now();
      await capture();
      await within(
        10_000,
        'the pushed depth (37) in the element',
        page.waitForFunction(
          ({ tag, sel }) =>
            (globalThis as unknown as Win).document.querySelector(tag)?.shadowRoot?.querySelector(
              sel,
            )
              ?.querySelector('[data-field="depth"]')?.getAttribute('data-value') === '37',
          { tag: TAG, sel: rowSel },
          { polling: 20, timeout: 10_000 },
        ),
      );
      console.log(`example: capture→element over Realtime ${Date.now() - t0} ms`);
      assert.equal(reads.length, readsBefore, 'the update came as a broadcast, not a report read');
      assert.equal(await page.locator('#mode-text').textContent(), 'Live · Realtime');

      // Open the queue: the element shows its detail and the app's onqueueopen handler runs.
      await page.locator(rowSel).click();
      await visible(page.locator('#chart-depth canvas'), 'the detail charts', 15_000);
      assert.match(
        String(await page.locator('#detail-title').textContent()),
        new RegExp(testQueue),
      );
      const status = await page.locator(rowSel).getAttribute('data-status');
      assert.equal(
        await page.locator('p#opened').textContent(),
        `Opened queue ${testQueue} (${status})`,
      );
      assert.equal(
        await page.locator(TAG).getAttribute('queue'),
        `default/pgboss/${DEMO_SCHEMA}/${testQueue}`,
      );
      // Open its firing alert: the app's onalertopen handler runs and the alert's queue opens.
      const alertItem = page.locator('#alerts li.clickable', { hasText: ruleName });
      await visible(alertItem, 'the test queue’s firing alert', 10_000);
      await page.locator('#detail-close').click();
      await alertItem.click();
      assert.equal(await page.locator('p#opened').textContent(), `Opened alert ${ruleName}`);
      assert.equal(await page.locator('#detail').isVisible(), true, 'the alert opened its queue');
      assert.match(
        String(await page.locator('#detail-title').textContent()),
        new RegExp(testQueue),
      );
      const dir = artifactsDir();
      await Deno.mkdir(dir, { recursive: true });
      // Full-page screenshots from the top (the sticky header would otherwise sit mid-page).
      await page.evaluate(() =>
        (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0)
      );
      await page.screenshot({ path: join(dir, 'sveltekit.png'), fullPage: true });

      // Dark mode (the colour scheme), and the theme attribute overriding it.
      const bg = () =>
        page.evaluate(
          (tag) =>
            (globalThis as unknown as Win).getComputedStyle(
              (globalThis as unknown as Win).document.querySelector(tag)!,
            ).backgroundColor,
          TAG,
        );
      await page.emulateMedia({ colorScheme: 'dark' });
      assert.equal(await bg(), 'rgb(15, 17, 21)', 'dark colour scheme: the dark background');
      await page.screenshot({ path: join(dir, 'sveltekit-dark.png'), fullPage: true });
      await page.evaluate(
        (tag) =>
          (globalThis as unknown as Win).document.querySelector(tag)!.setAttribute(
            'theme',
            'light',
          ),
        TAG,
      );
      assert.equal(await bg(), 'rgb(246, 247, 249)', 'theme="light" wins over a dark scheme');
      await page.emulateMedia({ colorScheme: 'light' });
      await page.evaluate(
        (tag) =>
          (globalThis as unknown as Win).document.querySelector(tag)!.setAttribute('theme', 'dark'),
        TAG,
      );
      assert.equal(await bg(), 'rgb(15, 17, 21)', 'theme="dark" wins over a light scheme');

      // A phone, dark: the saved token signs in by itself; no sideways scrolling.
      const phone = await browser.newPage();
      await phone.setViewportSize({ width: 390, height: 844 });
      await phone.emulateMedia({ colorScheme: 'dark' });
      await within(20_000, 'the example on a phone', phone.goto(`${origin}/`));
      await visible(phone.locator(rowSel), 'the test queue on the phone', 15_000);
      const width = await phone.evaluate(() =>
        (globalThis as unknown as Win).document.documentElement.scrollWidth
      );
      assert.ok(width <= 390, `the phone layout does not scroll sideways (${width}px wide)`);
      await phone.screenshot({ path: join(dir, 'sveltekit-phone.png'), fullPage: true });

      // The standalone page hosts the same element: dark, desktop and phone.
      const standalone = await browser.newPage();
      await standalone.emulateMedia({ colorScheme: 'dark' });
      await within(15_000, 'the standalone page', standalone.goto(`${API_URL}/?realtime=false`));
      await visible(standalone.locator('#sign-in'), 'the standalone sign-in card', 15_000);
      // The token form is open when the stack has no Supabase Auth; behind its summary otherwise.
      if ((await standalone.locator('#token-details').getAttribute('open')) === null) {
        await standalone.locator('#token-details summary').click();
      }
      await standalone.locator('#token').fill(token);
      await standalone.locator('#token-form button[type=submit]').click();
      await visible(standalone.locator(rowSel), 'the test queue on the standalone page', 15_000);
      assert.equal(
        await standalone.evaluate(
          (tag) =>
            (globalThis as unknown as Win).getComputedStyle(
              (globalThis as unknown as Win).document.querySelector(tag)!,
            ).backgroundColor,
          TAG,
        ),
        'rgb(15, 17, 21)',
      );
      await standalone.screenshot({ path: join(dir, 'dashboard-dark.png'), fullPage: true });
      await standalone.setViewportSize({ width: 390, height: 844 });
      await standalone.screenshot({ path: join(dir, 'dashboard-phone-dark.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no uncaught errors in the example');
    } finally {
      for (const stop of stops.reverse()) await stop().catch((e) => console.error(String(e)));
      await removePgBossQueue(sql, DEMO_SCHEMA, testQueue);
      await sql`delete from queue_health.alert_rule where name = ${ruleName}`.catch(() => {});
      await sql.end({ timeout: 2 });
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
});
