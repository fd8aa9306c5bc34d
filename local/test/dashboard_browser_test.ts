/**
 * The live dashboard in headless Chromium against the running local stack, with the demo
 * workload on real pg-boss queues: sign in with a local access token, see the demo queues, back
 * up a queue of the test's own, capture, and see the page show the new status and numbers
 * without reloading — within 10 s of the capture's commit. Prints the measured capture→page
 * latency (also written to dashboard-latency.json) and saves screenshots (dashboard.png,
 * dashboard-phone.png, dashboard-realtime.png) to $QH_TEST_ARTIFACTS (default .test-artifacts/).
 *
 * Then, with the flow window shortened to 10 s, each demo queue's flow status in words, "clears
 * in" and poison must match the registry (queue_health.queue); the test queue (405 jobs, no
 * worker) reads "stopped"; its latency objective's budget and burn chart show in the detail view
 * (dashboard-detail.png).
 *
 * Signing in with email and password at the stack's Auth stand-in: auth_browser_test.ts.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildDashboard } from '../dashboard/build.ts';
import { launchChromium } from '../dashboard/chromium.ts';
import { startLocalRealtime } from '../dashboard/realtime_local.ts';
import { API_URL, JWT_SECRET } from '../stack/config.ts';
import { DEMO_FLOWS, DEMO_SCHEMA, seedDemo, startDemoWorkload } from '../stack/demo.ts';
import { flowWords, formatBudget, formatEta, formatPoison } from '../../dashboard/format.js';
import { artifactsDir, visible, within } from './browser.ts';
import { connect, databaseUrl } from './db.ts';
import { startPgBoss } from './pgboss.ts';
import { sleep } from './wait.ts';

/** The whole test must finish within this. */
const TEST_BUDGET_MS = 150_000;
/** The page must show a capture within this of its commit (the bound). */
const SHOW_WITHIN_MS = 10_000;

/** The little of the DOM the page functions below use (this file is type-checked without DOM). */
interface BrowserElement {
  textContent: string | null;
  /** The element's open shadow root (the dashboard renders into one). */
  shadowRoot?: BrowserElement | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): BrowserElement | null;
}
interface BrowserDocument {
  querySelector(selector: string): BrowserElement | null;
  documentElement: { scrollWidth: number };
}
interface BrowserWindow {
  scrollTo(x: number, y: number): void;
}

/** A read of the health report (an Edge Function invocation), not of history. */
const isReportRead = (url: string) => new URL(url).pathname === '/functions/v1/queue-health';

/**
 * Makes the page's tab hidden or visible as the browser does when a tab goes to the background:
 * document.visibilityState / document.hidden, then a `visibilitychange` event. (Headless Chromium
 * keeps every page visible, whatever is in front.)
 */
function setHidden(page: { evaluate<A>(fn: (a: A) => void, arg: A): Promise<void> }, h: boolean) {
  return page.evaluate((hide: boolean) => {
    const doc = globalThis as unknown as {
      document: { dispatchEvent(e: unknown): void };
      Event: new (type: string) => unknown;
    };
    Object.defineProperty(doc.document, 'visibilityState', {
      configurable: true,
      get: () => (hide ? 'hidden' : 'visible'),
    });
    Object.defineProperty(doc.document, 'hidden', { configurable: true, get: () => hide });
    doc.document.dispatchEvent(new doc.Event('visibilitychange'));
  }, h);
}

async function stackIsUp(): Promise<boolean> {
  try {
    const res = await fetch(`${API_URL}/_stack/health`, { signal: AbortSignal.timeout(2000) });
    await res.body?.cancel();
    return res.ok;
  } catch {
    return false;
  }
}

Deno.test({
  name:
    'dashboard shows the demo queues and a backed-up queue’s new status and depth within 10 s of the capture, without reloading',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    assert.ok(
      await stackIsUp(),
      `the local stack is not answering on ${API_URL}: start it with 'npm run stack -- up'`,
    );
    await buildDashboard();
    const url = databaseUrl();
    const sql = connect({ url, max: 2, applicationName: 'qh-dashboard-browser-test' });
    const testQueue = `qh_browser_${Date.now().toString(36)}`;
    const started: { stop: () => Promise<void> }[] = [];
    const userDataDir = await Deno.makeTempDir({ prefix: 'qh-chromium-' });
    const deadline = Date.now() + TEST_BUDGET_MS;
    const left = () => Math.max(1000, deadline - Date.now());

    /** Runs one capture (retrying while another holds the capture lock); returns when committed. */
    async function capture(): Promise<{ committedAt: number; startedAt: number }> {
      for (let attempt = 0; attempt < 50; attempt++) {
        const startedAt = Date.now();
        const [{ summary }] = await sql`select queue_health.capture() as summary`;
        const committedAt = Date.now(); // autocommit: the statement returned after COMMIT
        if (summary?.status !== 'skipped') {
          assert.notEqual(summary?.status, 'error', `capture failed: ${JSON.stringify(summary)}`);
          return { committedAt, startedAt };
        }
        await sleep(200);
      }
      throw new Error('capture was skipped 50 times in a row (another capture kept the lock)');
    }

    /** What the page should show of a demo queue's signals, from the registry's newest row. */
    async function signalsShown(queue: string) {
      const [q] = await sql<
        { flow_status: string | null; drain_eta_s: number | null; poison: number | null }[]
      >`
        select flow_status::text, drain_eta_s, poison::int as poison from queue_health.queue
        where source = 'pgboss' and source_schema = ${DEMO_SCHEMA} and queue_name = ${queue}`;
      assert.ok(q, `the registry has ${queue}`);
      return {
        flow: flowWords(q.flow_status),
        eta: formatEta(q.drain_eta_s === Infinity ? 'never' : q.drain_eta_s),
        poison: formatPoison(q.poison),
      };
    }

    async function expected(): Promise<{ project: string; status: string; depth: number }> {
      const [row] = await sql`
        select project_id, status, depth::int as depth from queue_health.queue_status
        where source = 'pgboss' and source_schema = ${DEMO_SCHEMA} and queue_name = ${testQueue}`;
      assert.ok(row, `queue_status has no row for ${testQueue} after the capture`);
      return { project: row.project_id, status: row.status, depth: row.depth };
    }

    // A latency objective on the test queue (99.9 % over a day: an 86 s budget) for the detail
    // view; the flow window is shortened later (restored at the end).
    const [{ flow_window: oldWindow }] = await sql`
      select flow_window::text from queue_health.settings where id`;
    started.push({
      stop: async () => {
        await sql`update queue_health.settings set flow_window = ${oldWindow}::interval where id`;
      },
    });
    await sql`
      insert into queue_health.queue_objective
        (project_id, source, source_schema, queue_name, target_wait_s, objective, period)
      values ('default', 'pgboss', ${DEMO_SCHEMA}, ${testQueue}, 60, 0.999, '1 day')`;

    const browser = await launchChromium(userDataDir, { width: 1280, height: 900 });
    started.push({ stop: () => browser.close() });
    const pageErrors: string[] = [];
    try {
      // No alert channels: the page needs the user, and channels in 'default' would collect the
      // demo's notifications for every later test that runs queue-alert.
      const { token } = await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], {
        channels: false,
      });
      const demo = await startDemoWorkload({ url, captureEverySeconds: 0, objectives: false });
      started.push(demo);
      const pb = await startPgBoss(12, { schema: DEMO_SCHEMA, databaseUrl: url });
      started.push({ stop: () => pb.stop() });
      const boss = pb.boss;
      await boss.createQueue(testQueue);
      await boss.insert(testQueue, Array.from({ length: 5 }, (_, i) => ({ data: { i } })));
      await sleep(1500); // let the demo produce a little
      await capture();
      await sleep(1100);
      await capture(); // a second snapshot: rates over an interval
      const before = await expected();

      const page = browser.pages()[0] ?? await browser.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      const pollReads: number[] = [];
      page.on('request', (r) => {
        if (isReportRead(r.url())) pollReads.push(Date.now());
      });
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
      });
      // This page polls (the stack also serves a Realtime stand-in: the third page below uses it).
      // auth=false: this page signs in with a pasted token (auth_browser_test.ts signs in with
      // email and password at the stack's Auth stand-in).
      await within(
        15_000,
        'the page to load',
        page.goto(`${API_URL}/?realtime=false&auth=false`),
      );
      await page.locator('#token').fill(token);
      await page.locator('#token-form button[type=submit]').click();

      const rowOf = (queue: string, project = before.project) =>
        `#queue-rows tr[data-queue="${project}/pgboss/${DEMO_SCHEMA}/${queue}"]`;
      for (const q of ['emails', 'webhooks', 'reports', 'thumbnails', testQueue]) {
        await visible(page.locator(rowOf(q)), `queue ${q} on the page`, 15_000);
      }
      const mode = await page.locator('#mode').getAttribute('data-mode');
      assert.equal(mode, 'polling', 'with realtime=false the page says it polls');
      assert.match(String(await page.locator('#mode-text').textContent()), /Polling/);
      const row = page.locator(rowOf(testQueue));
      assert.equal(await row.getAttribute('data-status'), before.status);
      assert.equal(await row.locator('[data-field="depth"]').getAttribute('data-value'), '5');
      // Mark the document: a reload would lose this.
      await page.evaluate(
        () => ((globalThis as unknown as { __qhNoReload: number }).__qhNoReload = 1),
      );

      // Back the queue up: 400 jobs that have been ready for 10 minutes, and no worker.
      const startAfter = new Date(Date.now() - 10 * 60_000);
      await boss.insert(
        testQueue,
        Array.from({ length: 400 }, (_, i) => ({ data: { i }, startAfter })),
      );
      const backlogCapture = await capture();
      const { committedAt } = backlogCapture;
      const after = await expected();
      assert.equal(after.depth, 405);
      assert.notEqual(after.status, before.status, 'the backlog changes the queue status');

      await within(
        Math.min(left(), SHOW_WITHIN_MS + 5000),
        'the page to show the backed-up queue',
        page.waitForFunction(
          ({ sel, status, depth }) => {
            const tr = (globalThis as unknown as { document: BrowserDocument }).document
              .querySelector('queue-health-dashboard')?.shadowRoot?.querySelector(sel);
            return tr?.getAttribute('data-status') === status &&
              tr.querySelector('[data-field="depth"]')?.getAttribute('data-value') ===
                String(depth);
          },
          { sel: rowOf(testQueue, after.project), status: after.status, depth: after.depth },
          { polling: 50, timeout: SHOW_WITHIN_MS + 5000 },
        ),
      );
      const latencyMs = Date.now() - committedAt;
      console.log(
        `capture→page latency: ${latencyMs} ms (status ${before.status} → ${after.status}, depth 5 → ${after.depth}; polling mode)`,
      );
      assert.ok(
        latencyMs <= SHOW_WITHIN_MS,
        `the page showed the capture ${latencyMs} ms after its commit (limit ${SHOW_WITHIN_MS})`,
      );
      assert.equal(
        await page.evaluate(() =>
          (globalThis as unknown as { __qhNoReload?: number }).__qhNoReload
        ),
        1,
        'the page was not reloaded',
      );
      const rowText = String(await row.textContent());
      assert.match(rowText, /405 jobs/, `the row shows the depth with its unit: ${rowText}`);
      assert.match(rowText, /10 min|9 min/, `the row shows the oldest ready age: ${rowText}`);
      assert.equal(
        await page.locator('#overall').getAttribute('data-status') !== 'ok',
        true,
        'the overall status is not ok while a queue is backed up',
      );

      // The signals: with a 10 s flow window (10 min by default), a capture 12 s after the last
      // one judges every queue's flow over it (a capture itself may take seconds on a busy
      // machine: at least one window apart, less than two).
      await sql`update queue_health.settings set flow_window = '10 seconds' where id`;
      await sleep(Math.max(0, backlogCapture.startedAt + 12_000 - Date.now()));
      await capture();
      assert.equal(
        (await signalsShown(testQueue)).flow,
        flowWords('stopped'),
        '405 jobs ready and no worker over the window: stopped',
      );
      // Each queue's flow status in words, "clears in" and poison, as the registry has them.
      const shown: Record<string, string> = {};
      for (const q of [...Object.keys(DEMO_FLOWS), testQueue]) {
        const want = await signalsShown(q);
        const r = page.locator(rowOf(q));
        await within(
          10_000,
          `the signals of ${q} on the page`,
          page.waitForFunction(
            ({ sel, flow }) => {
              const words = (globalThis as unknown as { document: BrowserDocument }).document
                .querySelector('queue-health-dashboard')?.shadowRoot?.querySelector(sel)
                ?.querySelector('[data-field="status"] .flow');
              return (words?.textContent ?? '') === flow;
            },
            { sel: rowOf(q), flow: want.flow },
            { polling: 100, timeout: 10_000 },
          ),
        );
        assert.equal(String(await r.locator('[data-field="eta"]').textContent()), want.eta, q);
        assert.equal(
          String(await r.locator('[data-field="poison"]').textContent()),
          want.poison,
          q,
        );
        shown[q] = `${
          want.flow || '(no flow yet)'
        } · clears in ${want.eta} · poison ${want.poison}`;
      }
      console.log(`signals on the page: ${JSON.stringify(shown, null, 1)}`);
      assert.match(String(await row.textContent()), /stopped — backlog, nothing taken/);

      // The detail view: charts from the history endpoint.
      await row.click();
      await visible(page.locator('#chart-depth canvas'), 'the detail charts', 15_000);
      assert.match(
        String(await page.locator('#detail-title').textContent()),
        new RegExp(testQueue),
      );
      // The objective: its budget (10 min old jobs: the last interval missed it) and burn chart.
      await visible(
        page.locator('#chart-burn canvas'),
        'the objective’s budget and burn chart',
        15_000,
      );
      const [{ budget }] = await sql<{ budget: number }[]>`
        select queue_health.slo_budget_remaining('pgboss', ${DEMO_SCHEMA}, ${testQueue}) as budget`;
      assert.ok(budget < 1, `the backed-up queue spent some of its budget (${budget})`);
      const budgetText = String(await page.locator('#detail-budget').textContent());
      assert.equal(budgetText, formatBudget(budget));
      assert.match(String(await page.locator('#detail-burn').textContent()), /^5m .+ · 3d .+$/);
      console.log(`detail: error budget ${budgetText}`);
      await page.evaluate(() => (globalThis as unknown as BrowserWindow).scrollTo(0, 0));
      await Deno.mkdir(artifactsDir(), { recursive: true });
      await page.screenshot({ path: join(artifactsDir(), 'dashboard.png'), fullPage: true });
      // The detail alone, clipped from the full page (an element screenshot would scroll it under
      // the sticky top bar).
      const box = await page.locator('#detail').boundingBox();
      const scrollY = await page.evaluate(() =>
        (globalThis as unknown as { scrollY: number }).scrollY
      );
      if (box) {
        await page.screenshot({
          path: join(artifactsDir(), 'dashboard-detail.png'),
          fullPage: true,
          clip: { ...box, y: box.y + scrollY },
        });
      }

      // A phone: the saved token signs in by itself; one card per queue.
      const phone = await browser.newPage();
      await phone.setViewportSize({ width: 390, height: 844 });
      await within(15_000, 'the phone page', phone.goto(`${API_URL}/?realtime=false`));
      await within(
        15_000,
        'the queue on the phone page',
        phone.locator(rowOf(testQueue, after.project)).waitFor({
          state: 'visible',
          timeout: 15_000,
        }),
      );
      const width = await phone.evaluate(() =>
        (globalThis as unknown as { document: BrowserDocument }).document.documentElement
          .scrollWidth
      );
      assert.ok(width <= 390, `the phone layout does not scroll sideways (${width}px wide)`);
      await phone.screenshot({ path: join(artifactsDir(), 'dashboard-phone.png'), fullPage: true });
      console.log(`screenshots: ${join(artifactsDir(), 'dashboard.png')}, dashboard-phone.png`);

      // Live over Realtime: the same page joined to the private channel queue_health:<project>
      // through the local Realtime stand-in, fed by the capture trigger's realtime.send().
      // The page is served by the stack (API_URL), another origin than this stand-in's.
      const realtime = await startLocalRealtime({
        databaseUrl: url,
        jwtSecret: JWT_SECRET,
        allowedOrigins: [new URL(API_URL).origin],
      });
      started.push({ stop: () => realtime.close() });
      const live = await browser.newPage();
      live.on('pageerror', (e) => pageErrors.push(`(realtime page) ${e.message}`));
      const liveReads: number[] = [];
      live.on('request', (r) => {
        if (isReportRead(r.url())) liveReads.push(Date.now());
      });
      live.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) pageErrors.push(m.text());
      });
      const params = new URLSearchParams({
        supabaseUrl: realtime.url,
        functionsUrl: `${API_URL}/functions/v1`,
        realtime: 'true',
        auth: 'false',
      });
      await within(
        15_000,
        'the Realtime page',
        live.goto(`${API_URL}/?${params}#project=${after.project}`),
      );
      await within(
        15_000,
        'the page to join Realtime',
        live.waitForFunction(
          () =>
            (globalThis as unknown as { document: { body: { dataset: { mode?: string } } } })
              .document.body.dataset.mode === 'realtime',
          undefined,
          { polling: 50, timeout: 15_000 },
        ),
      );
      await boss.insert(testQueue, Array.from({ length: 200 }, (_, i) => ({ data: { i } })));
      const pushed = await capture();
      const depthNow = (await expected()).depth;
      assert.equal(depthNow, 605);
      await within(
        SHOW_WITHIN_MS + 5000,
        'the Realtime page to show the new depth',
        live.waitForFunction(
          ({ sel, depth }) =>
            (globalThis as unknown as { document: BrowserDocument }).document
              .querySelector('queue-health-dashboard')?.shadowRoot?.querySelector(sel)
              ?.querySelector('[data-field="depth"]')?.getAttribute('data-value') === String(depth),
          { sel: rowOf(testQueue, after.project), depth: depthNow },
          { polling: 20, timeout: SHOW_WITHIN_MS + 5000 },
        ),
      );
      const realtimeLatencyMs = Date.now() - pushed.committedAt;
      const rs = realtime.stats();
      console.log(
        `capture→page latency over Realtime: ${realtimeLatencyMs} ms (depth 405 → ${depthNow}; ${rs.relayed} broadcast(s) relayed, ${rs.refused} join(s) refused)`,
      );
      // `deno test --quiet` (npm test) hides console output: keep the numbers as an artefact too.
      await Deno.writeTextFile(
        join(artifactsDir(), 'dashboard-latency.json'),
        JSON.stringify(
          {
            measured_at: new Date().toISOString(),
            capture_to_page_ms: { polling: latencyMs, realtime: realtimeLatencyMs },
            poll_seconds: 2.5,
            limit_ms: SHOW_WITHIN_MS,
          },
          null,
          2,
        ) + '\n',
      );
      assert.ok(realtimeLatencyMs <= SHOW_WITHIN_MS, `Realtime latency ${realtimeLatencyMs} ms`);
      assert.ok(rs.relayed > 0, 'the update came as a Realtime broadcast');
      assert.equal(await live.locator('#mode').getAttribute('data-mode'), 'realtime');
      assert.match(String(await live.locator('#mode-text').textContent()), /Realtime/);
      await live.screenshot({ path: join(artifactsDir(), 'dashboard-realtime.png') });

      // Over Realtime the numbers come from the (slim) snapshots: more captures within the minute
      // show on the page with no further read of the report.
      let depthShown = depthNow;
      for (let i = 0; i < 3; i++) {
        await boss.insert(testQueue, Array.from({ length: 10 }, (_, j) => ({ data: { j } })));
        await capture();
        depthShown = (await expected()).depth;
        await within(
          SHOW_WITHIN_MS,
          `the Realtime page to show depth ${depthShown}`,
          live.waitForFunction(
            ({ sel, depth }) =>
              (globalThis as unknown as { document: BrowserDocument }).document
                .querySelector('queue-health-dashboard')?.shadowRoot?.querySelector(sel)
                ?.querySelector('[data-field="depth"]')?.getAttribute('data-value') ===
                String(depth),
            { sel: rowOf(testQueue, after.project), depth: depthShown },
            { polling: 20, timeout: SHOW_WITHIN_MS },
          ),
        );
      }
      assert.equal(depthShown, depthNow + 30);
      const gaps = liveReads.slice(1).map((t, i) => t - liveReads[i]);
      assert.ok(liveReads.length >= 1, 'the Realtime page read the report once to start');
      assert.ok(
        gaps.every((g) => g >= 59_000),
        `the Realtime page read the report at most once a minute: reads ${
          liveReads.map((t) => t - liveReads[0]).join(', ')
        } ms after the first, over 4 snapshots`,
      );

      // A hidden tab reads nothing (the polling page, which otherwise reads every 2.5 s), and
      // reads once on becoming visible.
      const visibleFrom = Date.now();
      await sleep(5500);
      const visibleReads = pollReads.filter((t) => t >= visibleFrom).length;
      assert.ok(visibleReads >= 2, `the visible polling page read ${visibleReads} times in 5.5 s`);
      await setHidden(page, true);
      const hiddenFrom = Date.now();
      await sleep(7000);
      const hiddenReads = pollReads.filter((t) => t >= hiddenFrom).length;
      assert.equal(hiddenReads, 0, 'the hidden page made no report request in 7 s');
      await setHidden(page, false);
      const shownAt = Date.now();
      await within(
        5000,
        'a read once the tab is visible again',
        (async () => {
          while (!pollReads.some((t) => t >= shownAt)) await sleep(50);
        })(),
      );

      assert.deepEqual(pageErrors, [], 'no uncaught errors on the pages');

      await boss.deleteQueue(testQueue);
    } finally {
      for (const s of started.reverse()) {
        await within(15_000, 'cleanup', s.stop()).catch((e) => console.error(String(e)));
      }
      // Remove every trace of the test queue from the monitor.
      await sql.begin(async (tx) => {
        const where = { source: 'pgboss', schema: DEMO_SCHEMA, queue: testQueue };
        for (
          const table of ['metric', 'metric_1m', 'metric_1h', 'alert', 'queue', 'queue_objective']
        ) {
          const [{ present }] = await tx`
            select to_regclass(${'queue_health.' + table}) is not null as present`;
          if (!present) continue;
          await tx`delete from ${tx('queue_health')}.${tx(table)}
                   where source = ${where.source} and source_schema = ${where.schema}
                     and queue_name = ${where.queue}`;
        }
      }).catch((e) => console.error(`cleanup of ${testQueue} failed: ${e.message}`));
      await sql`delete from ${sql(DEMO_SCHEMA)}.job where name = ${testQueue}`.catch(() => {});
      await sql`delete from ${sql(DEMO_SCHEMA)}.queue where name = ${testQueue}`.catch(() => {});
      await sql.end({ timeout: 2 });
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    }
  },
});
