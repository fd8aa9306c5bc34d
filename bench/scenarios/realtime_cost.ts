/**
 * Scenario 8: what Realtime costs a hosted project at 100 queues captured every 10 s.
 *
 * Bytes: hosted Realtime stores every broadcast as a row of realtime.messages and drops a day's
 * partition once it is more than 72 h old (supabase/realtime, lib/realtime/messages.ex), so up to
 * four days are kept. For slim and full payloads, `captures` real broadcasts of 100 queues (rows
 * inserted into queue_health.metric, so the real trigger and realtime.send() run) are copied, with
 * the `id` hosted realtime.send() adds to the payload, into a fresh table shaped like hosted's
 * realtime.messages (its primary key and replay index); that table's total size (heap, TOAST,
 * indexes, less the empty table's) over the rows is the bytes one broadcast stores. × 8 640
 * captures a day.
 *
 * Invocations: the stack's dashboard in headless Chromium over the Realtime stand-in, with
 * Playwright's clock so `minutes` of 10 s captures pass in seconds: each step is a real capture
 * (a real snapshot over the websocket), then 10 s of the page's time. Counts the page's reads of
 * the report (each an Edge Function invocation) after its first, visible and hidden, × a day.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { CHROMIUM, launchChromium } from '../../local/dashboard/chromium.ts';
import { type Context, PROJECT } from '../lib/context.ts';

const S = '8 realtime cost';
const QUEUES = 100;
const CAPTURES_A_DAY = 8_640;
const FREE_DB_BYTES = 500 * 1024 * 1024;
const FREE_INVOCATIONS_A_MONTH = 500_000;
const USER_ID = '00000000-0000-4000-8000-0000000be7c8';
const USER_EMAIL = 'qhbench-rt@queue-health.local';

/** Bytes one broadcast of 100 queues stores, in `mode`. */
async function bytesPerBroadcast(ctx: Context, mode: 'slim' | 'full', captures: number) {
  const sql = ctx.sql;
  const topic = `queue_health:${PROJECT}`;
  // postgres may not delete from realtime.messages (Realtime's table; it drops messages after 72
  // hours): this run's broadcasts are told apart by when they were stored.
  const [{ since }] = await sql<{ since: string }[]>`select localtimestamp::text as since`;
  await sql`update queue_health.settings set realtime_payload = ${mode}`;
  const t0 = Date.now();
  for (let c = 0; c < captures; c++) {
    // Varied numbers, as busy queues have (idle ones compress better).
    await sql`
      insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
        ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued,
        completed, failed, retried, dead_lettered)
      select ${new Date(t0 + c * 1000 + (mode === 'full' ? 500 : 0))}::timestamptz, ${PROJECT},
        'pgmq', 'pgmq', 'qhbench_rt_' || lpad(i::text, 3, '0'),
        (i * 7919 + ${c} * 131) % 500, (i * 104729 + ${c}) % 40, (i * 31) % 7,
        (i * 7919 + ${c} * 131) % 500 + (i * 104729 + ${c}) % 40 + (i * 31) % 7, false,
        round((((i + ${c}) * 2654435761) % 100000) / 1000.0, 3)::float8,
        (i * 613 + ${c} * 7) % 300, (i * 577 + ${c} * 5) % 290, (i * 13 + ${c}) % 5, 0, (i * 3) % 2
      from generate_series(1, ${QUEUES}) i`;
  }
  await sql`drop table if exists qhbench_rt_messages`;
  await sql`create table qhbench_rt_messages (like realtime.messages including defaults)`;
  await sql`alter table qhbench_rt_messages add primary key (id, inserted_at)`;
  await sql`create index on qhbench_rt_messages (inserted_at desc, topic)
    where extension = 'broadcast' and private is true`;
  const [{ empty }] = await sql<{ empty: number }[]>`
    select pg_total_relation_size('qhbench_rt_messages')::float8 as empty`;
  await sql`
    insert into qhbench_rt_messages (topic, extension, payload, event, private, updated_at,
      inserted_at, id)
    select topic, extension, case when payload ? 'id' then payload
                                  else jsonb_set(payload, '{id}', to_jsonb(id)) end,
      event, private, updated_at, inserted_at, id
    from realtime.messages where topic = ${topic} and inserted_at >= ${since}::timestamp`;
  const [r] = await sql<{ n: number; total: number; payload: number; raw: number }[]>`
    select count(*)::int as n, pg_total_relation_size('qhbench_rt_messages')::float8 as total,
      avg(pg_column_size(payload))::float8 as payload,
      avg(pg_column_size(payload::text::jsonb))::float8 as raw
    from qhbench_rt_messages`;
  await sql`drop table qhbench_rt_messages`;
  await sql`delete from queue_health.metric where project_id = ${PROJECT}`;
  if (r.n !== captures) {
    throw new Error(`${mode}: ${r.n} broadcasts stored for ${captures} captures`);
  }
  return { perBroadcast: (r.total - empty) / r.n, payload: r.payload, raw: r.raw, n: r.n };
}

/** Report reads the dashboard makes in `minutes` of 10 s captures, visible or hidden. */
async function dashboardReads(ctx: Context, minutes: number) {
  const { API_URL } = await import('../../local/stack/config.ts');
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM}`;
  if (!(await ctx.hasRelation('auth.users'))) return 'no auth.users table';
  try {
    const res = await fetch(`${API_URL}/_stack/config.json`, { signal: AbortSignal.timeout(2000) });
    if (!((await res.json()) as { realtime?: boolean }).realtime) {
      return `the stack at ${API_URL} serves no Realtime`;
    }
  } catch (e) {
    return `the local stack's dashboard is not answering on ${API_URL} (${(e as Error).message})`;
  }
  const { buildDashboard } = await import('../../local/dashboard/build.ts');
  const { userAccessToken } = await import('../../local/stack/keys.ts');
  await buildDashboard();
  const sql = ctx.sql;
  await sql`insert into queue_health.project (id, name) values (${PROJECT}, 'bench')
    on conflict do nothing`;
  await sql`insert into auth.users (id, email) values (${USER_ID}, ${USER_EMAIL})
    on conflict (id) do nothing`;
  await sql`insert into queue_health.project_member (project_id, user_id, role)
    values (${PROJECT}, ${USER_ID}, 'viewer') on conflict do nothing`;
  const token = await userAccessToken(USER_ID, USER_EMAIL);
  const out: Record<string, { reads: number; minutes: number; mode: string }> = {};
  for (const hidden of [false, true]) {
    const dir = await Deno.makeTempDir({ prefix: 'qhbench-chromium-' });
    const browser = await launchChromium(dir, { width: 1024, height: 768 });
    try {
      await browser.clock.install();
      const page = browser.pages()[0] ?? await browser.newPage();
      const reads: number[] = [];
      page.on('request', (r) => {
        if (new URL(r.url()).pathname === '/functions/v1/queue-health') reads.push(Date.now());
      });
      await page.goto(`${API_URL}/?auth=false#project=${PROJECT}`, { timeout: 15_000 });
      await page.locator('#token').fill(token);
      await page.locator('#token-form button[type=submit]').click();
      await page.waitForFunction(
        () =>
          (globalThis as unknown as { document: { body: { dataset: { mode?: string } } } })
            .document.body.dataset.mode === 'realtime',
        undefined,
        { polling: 50, timeout: 15_000 },
      );
      if (hidden) {
        await page.evaluate(() => {
          const g = globalThis as unknown as {
            document: { dispatchEvent(e: unknown): void };
            Event: new (type: string) => unknown;
          };
          Object.defineProperty(g.document, 'visibilityState', { get: () => 'hidden' });
          Object.defineProperty(g.document, 'hidden', { get: () => true });
          g.document.dispatchEvent(new g.Event('visibilitychange'));
        });
      }
      const first = reads.length;
      const steps = minutes * 6;
      for (let i = 0; i < steps && Date.now() < ctx.deadline; i++) {
        await sql`
          insert into queue_health.metric (captured_at, project_id, source, source_schema,
            queue_name, depth, oldest_ready_age_s, enqueued, completed, failed)
          values (now(), ${PROJECT}, 'pgmq', 'pgmq', 'qhbench_rt_page', ${i}, 1, 1, 1, 0)`;
        await new Promise((r) => setTimeout(r, 150)); // the snapshot reaches the page
        await browser.clock.runFor(10_000);
      }
      await new Promise((r) => setTimeout(r, 300)); // a read started in the last step
      const mode = String(
        await page.evaluate(() =>
          (globalThis as unknown as { document: { body: { dataset: { mode?: string } } } })
            .document.body.dataset.mode
        ),
      );
      out[hidden ? 'hidden' : 'visible'] = { reads: reads.length - first, minutes, mode };
    } finally {
      await browser.close().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  }
  await sql`delete from queue_health.metric where project_id = ${PROJECT}`;
  await sql`delete from queue_health.project_member where user_id = ${USER_ID}`;
  await sql`delete from auth.users where id = ${USER_ID}`;
  return out;
}

/** Runs scenario 8. */
export async function realtimeCost(ctx: Context): Promise<void> {
  if (
    !(await ctx.hasFunction('realtime.send(jsonb,text,text,boolean)')) ||
    !(await ctx.hasRelation('realtime.messages'))
  ) {
    ctx.report.skip(S, 'all', 'realtime.send() / realtime.messages are not installed');
    return;
  }
  const [{ mode: before }] = await ctx.sql<{ mode: string }[]>`
    select realtime_payload as mode from queue_health.settings`;
  const captures = ctx.quick ? 50 : 300;
  await ctx.sql`select queue_health.ensure_partitions(now(), 0)`;
  await ctx.sql`insert into queue_health.project (id, name) values (${PROJECT}, 'bench')
    on conflict do nothing`;
  try {
    const bytes: Record<string, unknown> = {};
    for (const mode of ['slim', 'full'] as const) {
      const b = await bytesPerBroadcast(ctx, mode, captures);
      const perDay = b.perBroadcast * CAPTURES_A_DAY;
      bytes[mode] = { ...b, per_day: perDay };
      ctx.report.add({
        scenario: S,
        case: `${QUEUES} queues every 10 s, ${mode} payload`,
        metric: 'Realtime bytes stored a day',
        value: Math.round(perDay / 1e5) / 10,
        unit: 'MB',
        spread: `${Math.round(b.perBroadcast)} B a broadcast (payload ${
          Math.round(b.payload)
        } B stored, ${Math.round(b.raw)} B uncompressed), n=${b.n}`,
        verdict: 'info',
        note: `kept up to 4 days: ${Math.round((perDay * 4) / 1e6)} MB, ${
          Math.round((perDay * 4 * 100) / FREE_DB_BYTES)
        } % of the free plan's 500 MB`,
      });
    }
    ctx.report.details['8_realtime_bytes'] = bytes;
  } finally {
    await ctx.sql`update queue_health.settings set realtime_payload = ${before}`;
  }
  const minutes = ctx.quick ? 2 : 10;
  const reads = await dashboardReads(ctx, minutes);
  if (typeof reads === 'string') {
    ctx.report.skip(S, 'dashboard invocations', reads);
    return;
  }
  for (const [state, r] of Object.entries(reads)) {
    const perDay = (r.reads / r.minutes) * 1440;
    ctx.report.add({
      scenario: S,
      case: `one open dashboard over Realtime, tab ${state}`,
      metric: 'Edge Function invocations a day',
      value: Math.round(perDay),
      unit: '',
      spread:
        `${r.reads} report reads in ${r.minutes} min of 10 s snapshots (page clock), mode ${r.mode}`,
      verdict: 'info',
      note: `${
        Math.round((perDay * 30 * 100) / FREE_INVOCATIONS_A_MONTH)
      } % of the free plan's 500 000 a month`,
    });
  }
  ctx.report.details['8_dashboard_reads'] = reads;
}
