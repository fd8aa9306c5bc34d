/**
 * The plain-HTML example (examples/plain-html/index.html) deployed as a user deploys it, in
 * headless Chromium against the running local stack:
 *
 * - a temporary site directory gets the example page with its two placeholders
 *   (`https://YOUR-PROJECT-REF.supabase.co`, `YOUR-ANON-KEY`) replaced by the stack's URL and anon
 *   key — the only edit; the test fails when either is not in the page exactly once — and, under
 *   `queue-health/`, the element's two dist files and supabase-js's UMD bundle
 *   (dashboard/vendor/supabase.js); it is served on 127.0.0.1:QH_EXAMPLE_PORT (another origin, which
 *   `npm test` lets join the stack's Realtime stand-in: QH_REALTIME_ALLOWED_ORIGINS);
 * - the element shows its sign-in form; the demo user signs in with email and password (through
 *   the element's own supabase-js client, at the stack's Auth stand-in); the test's queue shows; the
 *   element goes live over Realtime and a capture's new depth arrives as a broadcast (no report read
 *   in between); opening the queue runs the page's `queueopen` handler, which logs to the console;
 *   screenshot plain-html.png;
 * - a second page the test writes (not a committed file): the element with only `functions-url` and
 *   `access-token`, no supabase-js at all. It shows exactly the queues queue-health reports for that
 *   token (none of a project the user is not a member of), polls (it has no client for Realtime) and
 *   says why; an expired token and a token that is not a JWT each show a clear message in the
 *   element; screenshot plain-html-token-rejected.png.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import {
  buildDashboard,
  DIST_DIR,
  ELEMENT_CSS,
  ELEMENT_JS,
  VENDOR_DIR,
} from '../dashboard/build.ts';
import { launchChromium } from '../dashboard/chromium.ts';
import { API_URL, EXAMPLE_PORT, ROOT } from '../stack/config.ts';
import {
  DEMO_SCHEMA,
  DEMO_USER_EMAIL,
  DEMO_USER_ID,
  DEMO_USER_PASSWORD,
  seedDemo,
} from '../stack/demo.ts';
import { mintJwt } from '../stack/keys.ts';
import {
  artifactsDir,
  captureNow,
  type PageWindow,
  removePgBossQueue,
  serveStatic,
  visible,
  within,
} from './browser.ts';
import { connect, databaseUrl } from './db.ts';
import { startPgBoss } from './pgboss.ts';

const EXAMPLE = join(ROOT, 'examples', 'plain-html', 'index.html');
const TAG = 'queue-health-dashboard';
/** The example's placeholders, and what the test puts in their place. */
const URL_PLACEHOLDER = 'https://YOUR-PROJECT-REF.supabase.co';
const KEY_PLACEHOLDER = 'YOUR-ANON-KEY';

/** `text` with `placeholder` (which must occur exactly once) replaced by `value`. */
function fillIn(text: string, placeholder: string, value: string): string {
  const parts = text.split(placeholder);
  assert.equal(
    parts.length,
    2,
    `examples/plain-html/index.html must contain '${placeholder}' exactly once (found ${
      parts.length - 1
    }): the example and this test have drifted apart`,
  );
  return parts.join(value);
}

/** Deploys the example into `dir`: the page (placeholders filled in) and queue-health/. */
async function deployExample(dir: string, supabaseUrl: string, anonKey: string): Promise<void> {
  const page = await Deno.readTextFile(EXAMPLE);
  const filled = fillIn(fillIn(page, URL_PLACEHOLDER, supabaseUrl), KEY_PLACEHOLDER, anonKey);
  await Deno.writeTextFile(join(dir, 'index.html'), filled);
  await Deno.mkdir(join(dir, 'queue-health'));
  for (
    const [from, name] of [[DIST_DIR, ELEMENT_JS], [DIST_DIR, ELEMENT_CSS], [
      VENDOR_DIR,
      'supabase.js',
    ]]
  ) {
    await Deno.copyFile(join(from, name), join(dir, 'queue-health', name));
  }
}

/** A page with the element given only a functions URL and an access token: no supabase-js. */
function tokenOnlyPage(functionsUrl: string, token: string): string {
  const attr = (v: string) => v.replace(/&/g, '&amp;').replace(/"/g, '&quot;');
  return `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>Queues (token only)</title>
    <script type="module" src="queue-health/${ELEMENT_JS}"></script>
  </head>
  <body>
    <${TAG} functions-url="${attr(functionsUrl)}" access-token="${attr(token)}"></${TAG}>
  </body>
</html>
`;
}

Deno.test({
  name:
    'the plain-HTML example signs in with email and password, goes live and opens a queue; with only a functions URL and a token the element shows that user’s queues or says the token was rejected',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const health = await fetch(`${API_URL}/_stack/config.json`).catch(() => null);
    assert.ok(health?.ok, `the local stack is not answering on ${API_URL}: 'npm run stack -- up'`);
    const stack = await health.json() as { anonKey: string };
    assert.ok(stack.anonKey, 'the stack serves its anon key');
    await buildDashboard();

    const url = databaseUrl();
    const sql = connect({ url, max: 2, applicationName: 'qh-plain-html-example-test' });
    const suffix = Date.now().toString(36);
    const testQueue = `qh_plain_${suffix}`;
    const otherProject = `qh_plain_other_${suffix}`;
    const otherQueue = `qh_plain_theirs_${suffix}`;
    const stops: (() => Promise<unknown>)[] = [];
    const site = await Deno.makeTempDir({ prefix: 'qh-plain-html-' });
    const userDataDir = await Deno.makeTempDir({ prefix: 'qh-chromium-' });
    const functionsUrl = `${API_URL}/functions/v1`;
    try {
      await deployExample(site, API_URL, stack.anonKey);
      const { token } = await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], {
        channels: false,
      });
      const pb = await startPgBoss(12, { schema: DEMO_SCHEMA, databaseUrl: url });
      stops.push(() => pb.stop());
      await pb.boss.createQueue(testQueue);
      await pb.boss.insert(testQueue, Array.from({ length: 7 }, (_, i) => ({ data: { i } })));
      // A project the demo user is not a member of, with a pg-boss queue of its own (mapped to it
      // by project_queue_map, as an operator does).
      await sql`insert into queue_health.project (id, name) values (${otherProject}, 'Not theirs')`;
      await sql.begin(async (tx) => {
        await tx`set local role service_role`;
        await tx`insert into queue_health.project_queue_map
                   (project_id, source, queue_pattern, priority)
                 values (${otherProject}, 'pgboss', ${otherQueue.replace(/[\\%_]/g, '\\$&')}, 0)`;
      });
      await pb.boss.createQueue(otherQueue);
      await pb.boss.insert(otherQueue, [{ data: { theirs: true } }]);
      await captureNow(sql);
      const otherListed = async () => {
        const [{ n }] = await sql`
          select count(*)::int as n from queue_health.queue_status
           where project_id = ${otherProject} and queue_name = ${otherQueue}`;
        return n;
      };
      assert.equal(await otherListed(), 1, 'the other project’s queue is in queue_status');

      const server = serveStatic(site, EXAMPLE_PORT);
      stops.push(() => server.shutdown());
      const origin = `http://127.0.0.1:${EXAMPLE_PORT}`;
      const browser = await launchChromium(userDataDir, { width: 1280, height: 900 });
      stops.push(() => browser.close());

      // --- the example page: email and password, live, queueopen ------------------------------
      const page = browser.pages()[0] ?? await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const logged: string[] = [];
      page.on('console', (m) => logged.push(m.text()));
      const reads: number[] = [];
      const authCalls: string[] = [];
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname === '/functions/v1/queue-health') reads.push(Date.now());
        if (u.pathname.startsWith('/auth/v1/')) authCalls.push(`${r.method()} ${u.pathname}`);
      });
      await within(15_000, 'the example page', page.goto(`${origin}/`));
      await visible(
        page.locator('#password-form'),
        'the element’s email and password form',
        10_000,
      );
      assert.equal(
        await page.locator('#sign-in-target').textContent(),
        `Sign in to ${API_URL} with your Supabase account, or use an access token.`,
      );
      await page.locator('#email').fill(DEMO_USER_EMAIL);
      await page.locator('#password').fill(DEMO_USER_PASSWORD);
      await page.locator('#password-form button[type=submit]').click();

      const rowSel = `#queue-rows tr[data-queue="default/pgboss/${DEMO_SCHEMA}/${testQueue}"]`;
      await visible(page.locator(rowSel), 'the test queue after signing in', 15_000);
      assert.ok(authCalls.includes('POST /auth/v1/token'), authCalls.join(', '));
      assert.equal(
        await page.locator('#sign-out').getAttribute('title'),
        `Signed in as ${DEMO_USER_EMAIL}`,
      );
      assert.equal(
        await page.locator(`${rowSel} [data-field="depth"]`).getAttribute('data-value'),
        '7',
      );

      await within(
        15_000,
        `the element to go live over Realtime (the stack must admit ${origin}: QH_REALTIME_ALLOWED_ORIGINS)`,
        page.waitForFunction(
          (tag) =>
            (globalThis as unknown as PageWindow).document.querySelector(tag)?.dataset.mode ===
              'realtime',
          TAG,
          { polling: 50, timeout: 15_000 },
        ),
      );
      const readsBefore = reads.length;
      await pb.boss.insert(testQueue, Array.from({ length: 30 }, (_, i) => ({ data: { i } })));
      await captureNow(sql);
      await within(
        10_000,
        'the pushed depth (37) in the element',
        page.waitForFunction(
          ({ tag, sel }) =>
            (globalThis as unknown as PageWindow).document.querySelector(tag)?.shadowRoot
              ?.querySelector(sel)?.querySelector('[data-field="depth"]')
              ?.getAttribute('data-value') === '37',
          { tag: TAG, sel: rowSel },
          { polling: 20, timeout: 10_000 },
        ),
      );
      assert.equal(reads.length, readsBefore, 'the update came as a broadcast, not a report read');
      assert.equal(await page.locator('#mode-text').textContent(), 'Live · Realtime');

      const status = await page.locator(rowSel).getAttribute('data-status');
      assert.ok(status, 'the row carries its status');
      await page.locator(rowSel).click();
      const opened = `opened ${testQueue} (${status})`;
      await within(
        5_000,
        `the page's queueopen handler to log '${opened}'`,
        (async () => {
          while (!logged.includes(opened)) await new Promise((r) => setTimeout(r, 50));
        })(),
      ).catch((e) => {
        throw new Error(`${e.message}; console: ${JSON.stringify(logged)}`);
      });
      await visible(page.locator('#chart-depth canvas'), 'the detail charts', 10_000);
      const dir = artifactsDir();
      await Deno.mkdir(dir, { recursive: true });
      await page.screenshot({ path: join(dir, 'plain-html.png'), fullPage: true });
      assert.deepEqual(errors, [], 'no uncaught errors on the example page');

      // --- only a functions URL and an access token: no supabase-js -------------------------
      await Deno.writeTextFile(join(site, 'token.html'), tokenOnlyPage(functionsUrl, token));
      const bare = await browser.newPage();
      const bareErrors: string[] = [];
      bare.on('pageerror', (e) => bareErrors.push(e.message));
      const bareRequests: string[] = [];
      bare.on('request', (r) => bareRequests.push(new URL(r.url()).pathname));
      const sockets: string[] = [];
      bare.on('websocket', (ws) => sockets.push(ws.url()));
      await within(15_000, 'the token-only page', bare.goto(`${origin}/token.html`));
      await visible(bare.locator(rowSel), 'the test queue on the token-only page', 15_000);
      // What queue-health reports for this token is what the element shows, and nothing else.
      assert.equal(await otherListed(), 1, 'the other project’s queue is still in queue_status');
      const res = await fetch(`${functionsUrl}/queue-health`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const report = await res.json() as {
        queues: { project_id: string; source: string; source_schema: string; queue: string }[];
        projects: { id: string }[];
      };
      const reported = report.queues.map((q) =>
        `${q.project_id}/${q.source}/${q.source_schema}/${q.queue}`
      ).sort();
      assert.ok(reported.length > 0);
      assert.equal(
        reported.some((id) => id.startsWith(`${otherProject}/`)),
        false,
        'queue-health reports no queue of a project the user is not a member of',
      );
      const shown = (await bare.locator('#queue-rows tr[data-queue]').evaluateAll((trs) =>
        trs.map((tr) =>
          (tr as unknown as { dataset: { queue: string } }).dataset.queue
        )
      )).sort();
      assert.deepEqual(shown, reported, 'the element shows the token’s user’s queues');
      const projects = await bare.locator('#project-select option').evaluateAll((os) =>
        os.map((o) => (o as unknown as { value: string }).value)
      );
      assert.equal(projects.includes(otherProject), false, `no ${otherProject} in the picker`);
      assert.deepEqual(
        report.projects.map((p) => p.id),
        [...new Set(reported.map((id) => id.split('/')[0]))],
      );
      // No client: it polls, and says why.
      await within(
        10_000,
        'polling mode on the token-only page',
        bare.waitForFunction(
          (tag) =>
            (globalThis as unknown as PageWindow).document.querySelector(tag)?.dataset.mode ===
              'polling',
          TAG,
          { polling: 50, timeout: 10_000 },
        ),
      );
      assert.match(String(await bare.locator('#mode').getAttribute('title')), /no Supabase client/);
      assert.equal(
        await bare.evaluate(() => typeof (globalThis as { supabase?: unknown }).supabase),
        'undefined',
        'no supabase-js on the page',
      );
      assert.equal(bareRequests.some((p) => p.endsWith('/supabase.js')), false);
      assert.equal(bareRequests.some((p) => p.startsWith('/auth/v1/')), false, 'no Auth calls');
      assert.deepEqual(sockets, [], 'no WebSocket (no Realtime without a client)');
      assert.equal(await bare.locator('#sign-in').isVisible(), false, 'no sign-in form');

      // A token that has expired: a clear message in the element, not a blank page.
      const now = Math.floor(Date.now() / 1000);
      const expired = await mintJwt(
        { sub: DEMO_USER_ID, role: 'authenticated', email: DEMO_USER_EMAIL, aud: 'authenticated' },
        { issuedAt: now - 7200, expiresAt: now - 3600 },
      );
      const rejected = async (tokenValue: string, title: RegExp, text: RegExp) => {
        await bare.evaluate(
          ({ tag, t }) =>
            (globalThis as unknown as PageWindow).document.querySelector(tag)!.setAttribute(
              'access-token',
              t,
            ),
          { tag: TAG, t: tokenValue },
        );
        await visible(
          bare.locator('#config-error'),
          'the element’s message about the rejected token',
          10_000,
        );
        assert.match(String(await bare.locator('#config-error h2').textContent()), title);
        assert.match(String(await bare.locator('#config-error-text').textContent()), text);
        assert.equal(await bare.locator('#dashboard').isVisible(), false, 'no stale queues');
      };
      await rejected(expired, /Access token rejected/, /expired .*ago/);
      await bare.screenshot({ path: join(dir, 'plain-html-token-rejected.png') });
      // A token the page mangled (not a JWT at all).
      await rejected('not-a-token', /Access token rejected/, /refused/);
      // A good token again: the queues come back.
      await bare.evaluate(
        ({ tag, t }) =>
          (globalThis as unknown as PageWindow).document.querySelector(tag)!.setAttribute(
            'access-token',
            t,
          ),
        { tag: TAG, t: token },
      );
      await visible(bare.locator(rowSel), 'the test queue with the good token again', 15_000);
      assert.equal(await bare.locator('#config-error').isVisible(), false);
      assert.deepEqual(bareErrors, [], 'no uncaught errors on the token-only page');
    } finally {
      for (const stop of stops.reverse()) await stop().catch((e) => console.error(String(e)));
      await removePgBossQueue(sql, DEMO_SCHEMA, testQueue);
      await removePgBossQueue(sql, DEMO_SCHEMA, otherQueue);
      await sql`delete from queue_health.project where id = ${otherProject}`.catch(() => {});
      await sql.end({ timeout: 2 });
      await Deno.remove(site, { recursive: true }).catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
});
