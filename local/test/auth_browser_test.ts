/**
 * The standalone dashboard in headless Chromium signs in as a person does on hosted Supabase:
 * the demo user's email and password in the page's form, through supabase-js, at the local
 * stack's Auth stand-in. A wrong password shows GoTrue's message; the right one shows the queues,
 * which go live over Realtime (a capture's new depth shows without a reload); a reload keeps the
 * session; signing out ends it at Auth; pasting an access token still works as the fallback.
 * Saves dashboard-sign-in.png to $QH_TEST_ARTIFACTS (default .test-artifacts/).
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildDashboard } from '../dashboard/build.ts';
import { launchChromium } from '../dashboard/chromium.ts';
import { API_URL } from '../stack/config.ts';
import {
  DEMO_SCHEMA,
  DEMO_USER_EMAIL,
  DEMO_USER_ID,
  DEMO_USER_PASSWORD,
  seedDemo,
} from '../stack/demo.ts';
import { artifactsDir, captureNow, removePgBossQueue } from './browser.ts';
import { connect } from './db.ts';
import { startPgBoss } from './pgboss.ts';

/** The little of the DOM the page functions below use (this file is type-checked without DOM). */
interface PageGlobals {
  document: {
    body: { dataset: { mode?: string } };
    querySelector(s: string): {
      getAttribute(n: string): string | null;
      /** The dashboard element's open shadow root, where it renders. */
      shadowRoot?: { querySelector(s: string): { getAttribute(n: string): string | null } | null };
    } | null;
  };
  __qhNoReload?: number;
}

Deno.test({
  name: 'the dashboard signs in with the demo user’s email and password and goes live',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const up = await fetch(`${API_URL}/_stack/health`).then((r) => r.ok, () => false);
    assert.ok(up, `the local stack is not answering on ${API_URL}: 'npm run stack -- up'`);
    await buildDashboard();
    const sql = connect({ max: 2, applicationName: 'qh-auth-browser-test' });
    const queue = `qh_signin_${Date.now().toString(36)}`;
    const userDataDir = await Deno.makeTempDir({ prefix: 'qh-chromium-' });
    const stops: (() => Promise<unknown>)[] = [];
    const capture = () => captureNow(sql);
    const depthOf = async () => {
      const [row] = await sql`
        select project_id, depth::int as depth from queue_health.queue_status
         where source = 'pgboss' and source_schema = ${DEMO_SCHEMA} and queue_name = ${queue}`;
      assert.ok(row, `queue_status has ${queue}`);
      return row as unknown as { project_id: string; depth: number };
    };
    try {
      const { token } = await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], {
        channels: false,
      });
      const pb = await startPgBoss(12, { schema: DEMO_SCHEMA });
      stops.push(() => pb.stop());
      await pb.boss.createQueue(queue);
      await pb.boss.insert(queue, Array.from({ length: 5 }, (_, i) => ({ data: { i } })));
      await capture();
      const { project_id: project } = await depthOf();
      const row = `#queue-rows tr[data-queue="${project}/pgboss/${DEMO_SCHEMA}/${queue}"]`;

      const browser = await launchChromium(userDataDir, { width: 1280, height: 900 });
      stops.push(() => browser.close());
      const page = browser.pages()[0] ?? await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      const authCalls: string[] = [];
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname.startsWith('/auth/v1/')) authCalls.push(`${r.method()} ${u.pathname}`);
      });

      // The stack's own config: Auth and Realtime on, nothing in the URL.
      await page.goto(`${API_URL}/#project=${project}`, { timeout: 15_000 });
      await page.locator('#password-form').waitFor({ state: 'visible', timeout: 10_000 });
      await page.locator('#email').fill(DEMO_USER_EMAIL);
      await page.locator('#password').fill('not the password');
      await page.locator('#password-form button[type=submit]').click();
      await page.locator('#sign-in-error').waitFor({ state: 'visible', timeout: 10_000 });
      assert.match(
        String(await page.locator('#sign-in-error').textContent()),
        /Invalid login credentials/,
      );

      await page.locator('#password').fill(DEMO_USER_PASSWORD);
      await page.locator('#password-form button[type=submit]').click();
      await page.locator(row).waitFor({ state: 'visible', timeout: 15_000 });
      assert.equal(
        await page.locator('#sign-out').getAttribute('title'),
        `Signed in as ${DEMO_USER_EMAIL}`,
      );
      assert.equal(
        await page.locator(row).locator('[data-field="depth"]').getAttribute('data-value'),
        '5',
      );
      assert.ok(authCalls.includes('POST /auth/v1/token'), authCalls.join(', '));
      const [{ sessions }] = await sql`
        select count(*)::int as sessions from auth.sessions where user_id = ${DEMO_USER_ID}`;
      assert.ok(sessions >= 1, 'the sign-in made a session at Auth');

      // Live: the page joins Realtime with the session's token and shows a new capture.
      await page.waitForFunction(
        () => (globalThis as unknown as PageGlobals).document.body.dataset.mode === 'realtime',
        undefined,
        {
          polling: 50,
          timeout: 15_000,
        },
      );
      await page.evaluate(() => ((globalThis as unknown as PageGlobals).__qhNoReload = 1));
      await pb.boss.insert(queue, Array.from({ length: 20 }, (_, i) => ({ data: { i } })));
      await capture();
      assert.equal((await depthOf()).depth, 25);
      await page.waitForFunction(
        (sel: string) =>
          (globalThis as unknown as PageGlobals).document.querySelector('queue-health-dashboard')
              ?.shadowRoot?.querySelector(sel)?.getAttribute(
                'data-queue',
              ) !== null &&
          (globalThis as unknown as PageGlobals).document.querySelector('queue-health-dashboard')
              ?.shadowRoot?.querySelector(`${sel} [data-field="depth"]`)?.getAttribute(
                'data-value',
              ) === '25',
        row,
        { polling: 50, timeout: 15_000 },
      );
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as PageGlobals).__qhNoReload),
        1,
        'no reload',
      );
      assert.equal(await page.locator('#mode').getAttribute('data-mode'), 'realtime');
      const artifacts = artifactsDir();
      await Deno.mkdir(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'dashboard-sign-in.png') });

      // supabase-js keeps the session: a reload stays signed in.
      await page.reload();
      await page.locator(row).waitFor({ state: 'visible', timeout: 15_000 });

      // Signing out ends the session at Auth, not only in the page.
      await page.locator('#sign-out').click();
      await page.locator('#password-form').waitFor({ state: 'visible', timeout: 10_000 });
      assert.ok(authCalls.includes('POST /auth/v1/logout'), authCalls.join(', '));
      const [{ left }] = await sql`
        select count(*)::int as left from auth.sessions where user_id = ${DEMO_USER_ID}`;
      assert.equal(left, 0, 'no session of the demo user is left at Auth');

      // The fallback: an access token pasted into the form.
      await page.locator('#token-details summary').click();
      await page.locator('#token').fill(token);
      await page.locator('#token-form button[type=submit]').click();
      await page.locator(row).waitFor({ state: 'visible', timeout: 15_000 });
      assert.deepEqual(errors, [], 'no uncaught errors on the page');
      await pb.boss.deleteQueue(queue);
    } finally {
      for (const stop of stops.reverse()) await stop().catch((e) => console.error(String(e)));
      await removePgBossQueue(sql, DEMO_SCHEMA, queue);
      await sql.end({ timeout: 2 });
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
});
