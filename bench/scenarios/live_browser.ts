/**
 * Scenario 4, browser step: from a capture's commit to the dashboard page showing it. The page is
 * the local stack's dashboard (served on API_URL) in headless Chromium, signed in as a viewer of
 * the bench project, live over the stack's Realtime stand-in (`/realtime/v1/websocket`, fed by
 * the capture trigger's realtime.send()). Each trial sends one message to a pgmq queue, captures,
 * and waits for the page's row of that queue to show the new depth; the page notes the moment it
 * saw it (the same clock: one machine).
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { CHROMIUM, launchChromium } from '../../local/dashboard/chromium.ts';
import { type Context, PROJECT } from '../lib/context.ts';
import { fmt, range, summarize } from '../lib/stats.ts';

const S = '4 live latency';
const CASE = 'capture commit → Realtime → dashboard page shows it (browser)';
/** A fixed id for the bench's dashboard user (removed at the end). */
const USER_ID = '00000000-0000-4000-8000-0000000be7c4';
const USER_EMAIL = 'qhbench@queue-health.local';

/** The little of the DOM the page function uses (this file is type-checked without DOM). */
interface PageDocument {
  body: { dataset: { mode?: string } };
  querySelector(sel: string): {
    querySelector(sel: string): { getAttribute(name: string): string | null } | null;
  } | null;
}

/** Why the browser step cannot run here, or null when it can. */
async function unavailable(ctx: Context, apiUrl: string): Promise<string | null> {
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM} (Debian package chromium)`;
  if (!(await ctx.hasRelation('auth.users'))) return 'no auth.users table to hold a dashboard user';
  try {
    const res = await fetch(`${apiUrl}/_stack/config.json`, { signal: AbortSignal.timeout(2000) });
    const config = await res.json() as { realtime?: boolean };
    if (!config.realtime) {
      return `the stack at ${apiUrl} serves no Realtime (its /_stack/config.json says realtime: false)`;
    }
  } catch (e) {
    return `the local stack's dashboard is not answering on ${apiUrl} (${
      (e as Error).message
    }); start it with npm run stack -- up`;
  }
  return null;
}

/**
 * Measures capture → page over Realtime for `trials` captures of `queue` (a pgmq queue of the
 * bench project). Reports one row, or a skip with the reason.
 */
export async function browserLatency(ctx: Context, queue: string, trials: number): Promise<void> {
  const { API_URL } = await import('../../local/stack/config.ts');
  const why = await unavailable(ctx, API_URL);
  if (why) {
    ctx.report.skip(S, CASE, why);
    return;
  }
  const { buildDashboard } = await import('../../local/dashboard/build.ts');
  const { userAccessToken } = await import('../../local/stack/keys.ts');
  await buildDashboard();
  const sql = ctx.sql;
  await sql`insert into auth.users (id, email) values (${USER_ID}, ${USER_EMAIL})
    on conflict (id) do nothing`;
  await sql`insert into queue_health.project_member (project_id, user_id, role)
    values (${PROJECT}, ${USER_ID}, 'viewer') on conflict do nothing`;
  const token = await userAccessToken(USER_ID, USER_EMAIL);
  const userDataDir = await Deno.makeTempDir({ prefix: 'qhbench-chromium-' });
  const browser = await launchChromium(userDataDir, { width: 1280, height: 900 });
  const errors: string[] = [];
  try {
    const page = browser.pages()[0] ?? await browser.newPage();
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${API_URL}/?auth=false#project=${PROJECT}`, { timeout: 15_000 });
    await page.locator('#token').fill(token);
    await page.locator('#token-form button[type=submit]').click();
    await page.waitForFunction(
      () =>
        (globalThis as unknown as { document: PageDocument }).document.body.dataset.mode ===
          'realtime',
      undefined,
      { polling: 50, timeout: 15_000 },
    );
    const sel = `#queue-rows tr[data-queue="${PROJECT}/pgmq/pgmq/${queue}"]`;
    await page.locator(sel).waitFor({ state: 'visible', timeout: 15_000 });

    const latencies: number[] = [];
    let missed = 0;
    for (let i = 0; i < trials && Date.now() < ctx.deadline; i++) {
      await sql`select pgmq.send(${queue}, '{"bench": "browser"}'::jsonb)`;
      const [{ r }] = await sql`select queue_health.capture() as r`;
      const committedAt = Date.now(); // autocommit: the reply comes after COMMIT
      if (r.status === 'skipped') continue;
      const [{ depth }] = await sql<{ depth: string }[]>`
        select depth::text from queue_health.metric
        where source = 'pgmq' and source_schema = 'pgmq' and queue_name = ${queue}
        order by captured_at desc limit 1`;
      try {
        // The page's own clock when its row shows the new depth (polled every 5 ms in the page).
        const seen = await page.waitForFunction(
          ({ sel, depth }) => {
            const tr = (globalThis as unknown as { document: PageDocument }).document
              .querySelector(sel);
            return tr?.querySelector('[data-field="depth"]')?.getAttribute('data-value') === depth
              ? Date.now()
              : false;
          },
          { sel, depth },
          { polling: 5, timeout: 10_000 },
        );
        latencies.push(Number(await seen.jsonValue()) - committedAt);
      } catch {
        missed++;
      }
      await new Promise((res) => setTimeout(res, 300 + Math.random() * 300));
    }
    if (latencies.length === 0) {
      ctx.report.add({
        scenario: S,
        case: CASE,
        metric: 'received',
        value: 0,
        unit: '',
        verdict: 'missed',
        note: `the page did not show any of ${missed} captures within 10 s; page errors: ${
          errors.join('; ') || 'none'
        }`,
      });
      return;
    }
    const s = summarize(latencies);
    ctx.report.add({
      scenario: S,
      case: CASE,
      metric: 'latency beyond the capture (p95)',
      value: s.p95,
      unit: 'ms',
      spread: `median ${fmt(s.median)}, ${range(s)}, n=${s.n}`,
      goal: ctx.quick ? undefined : '< 1000 ms',
      verdict: ctx.quick ? 'info' : s.p95 < 1000 && missed === 0 ? 'met' : 'missed',
      note:
        `the stack's dashboard in headless Chromium over its Realtime stand-in; ${missed} not shown within 10 s${
          errors.length ? `; page errors: ${errors.join('; ')}` : ''
        }`,
    });
    ctx.report.details['4_live_latency_browser'] = { latencies_ms: latencies, missed, errors };
  } finally {
    await browser.close().catch(() => {});
    await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    await sql`delete from queue_health.project_member where user_id = ${USER_ID}`;
    await sql`delete from auth.users where id = ${USER_ID}`;
  }
}
