/**
 * Scenario 4: from a capture's commit to the snapshot reaching a subscriber. The metric table's
 * statement trigger calls realtime.send(); the local stand-in (local/stack/sql/hosted_platform.sql)
 * stores the message in realtime.messages and NOTIFYs 'realtime:broadcast' with its id, which is
 * what a Realtime server reads. A LISTEN subscriber on its own connection receives the NOTIFY and
 * reads the message, as Realtime would. Then the same in a browser: the stack's dashboard in
 * headless Chromium, live over the stack's Realtime stand-in (live_browser.ts).
 *
 * @module
 */
import {
  type Context,
  dropBenchPgmqQueues,
  ensureBenchProject,
  forgetBenchQueues,
  PROJECT,
  sleep,
} from '../lib/context.ts';
import { createFilledQueues, queueNames } from '../lib/pgmq_data.ts';
import { fmt, range, summarize } from '../lib/stats.ts';
import { browserLatency } from './live_browser.ts';

const S = '4 live latency';

/** Runs scenario 4. */
export async function liveLatency(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.capture(timestamptz)'))) {
    ctx.report.skip(S, 'all', 'queue_health.capture() is not installed (CORE migration 100200)');
    return;
  }
  if (!(await ctx.hasFunction('realtime.send(jsonb,text,text,boolean)'))) {
    ctx.report.skip(
      S,
      'NOTIFY path',
      'realtime.send() is absent (apply local/stack/sql/hosted_platform.sql)',
    );
    return;
  }
  const [{ has_trigger }] = await ctx.sql`
    select exists (select 1 from pg_trigger where tgrelid = to_regclass('queue_health.metric')
      and tgname = 'metric_broadcast_snapshot') as has_trigger`;
  if (!has_trigger) {
    ctx.report.skip(
      S,
      'NOTIFY path',
      'the metric broadcast trigger is not installed (CORE 100200)',
    );
    return;
  }
  await ensureBenchProject(ctx);
  const hasPgmq = await ctx.hasRelation('pgmq.meta');
  if (hasPgmq) {
    const fill = ctx.connect(2, 'qhbench-fill');
    try {
      await createFilledQueues(fill, queueNames('qhbench_live', 20), 100);
    } finally {
      await fill.end();
    }
  }
  const listener = ctx.connect(2, 'qhbench-live-subscriber');
  const topic = `queue_health:${PROJECT}`;
  const arrivals: { at: number; captured_at: string; bytes: number }[] = [];
  try {
    await listener.listen('realtime:broadcast', async (raw) => {
      const at0 = performance.now();
      let note: { id?: string; topic?: string };
      try {
        note = JSON.parse(raw);
      } catch {
        return;
      }
      if (note.topic !== topic || !note.id) return;
      const [row] = await listener<{ payload: { captured_at: string }; bytes: number }[]>`
        select payload, octet_length(payload::text) as bytes from realtime.messages
        where id = ${note.id}::uuid`;
      if (row) {
        arrivals.push({
          at: Math.max(at0, performance.now()),
          captured_at: row.payload.captured_at,
          bytes: row.bytes,
        });
      }
    });
    const sinceCommit: number[] = [];
    const sinceStart: number[] = [];
    const payloadBytes: number[] = [];
    let missing = 0;
    for (let i = 0; i < ctx.sizes.liveSamples && Date.now() < ctx.deadline; i++) {
      const seen = arrivals.length;
      const t0 = performance.now();
      const [{ r }] = await ctx.sql`select queue_health.capture() as r`;
      const committed = performance.now();
      if (r.status === 'skipped') continue;
      const until = committed + 5_000;
      while (arrivals.length === seen && performance.now() < until) await sleep(2);
      const got = arrivals[seen];
      if (!got) {
        missing++;
        continue;
      }
      sinceCommit.push(got.at - committed);
      sinceStart.push(got.at - t0);
      payloadBytes.push(got.bytes);
      await sleep(100 + Math.random() * 200);
    }
    if (sinceCommit.length === 0) {
      ctx.report.add({
        scenario: S,
        case: 'capture → LISTEN subscriber',
        metric: 'received',
        value: 0,
        unit: '',
        verdict: 'missed',
        note: `no broadcast for topic ${topic} arrived within 5 s of ${missing} captures`,
      });
      return;
    }
    const s = summarize(sinceCommit);
    const total = summarize(sinceStart);
    ctx.report.add({
      scenario: S,
      case: 'capture commit → NOTIFY → message read by subscriber',
      metric: 'latency beyond the capture (p95)',
      value: s.p95,
      unit: 'ms',
      spread: `median ${fmt(s.median)}, ${range(s)}, n=${s.n}`,
      goal: ctx.quick ? undefined : '< 1000 ms',
      verdict: ctx.quick ? 'info' : s.p95 < 1000 ? 'met' : 'missed',
      note: `from the capture call's start: median ${fmt(total.median)} ms; payload ${
        fmt(summarize(payloadBytes).median)
      } B; ${missing} lost. Negative = NOTIFY arrived before the capture's reply`,
    });
    if (hasPgmq) {
      await browserLatency(ctx, queueNames('qhbench_live', 20)[0], ctx.sizes.liveBrowserSamples);
    } else {
      ctx.report.skip(S, 'browser (dashboard)', 'no pgmq (extension or fixture) in the database');
    }
    ctx.report.details['4_live_latency'] = {
      since_commit_ms: sinceCommit,
      since_start_ms: sinceStart,
      payload_bytes: payloadBytes,
      missing,
    };
  } finally {
    await listener.end({ timeout: 2 });
    await dropBenchPgmqQueues(ctx.sql, 'qhbench_live%');
    await forgetBenchQueues(ctx);
  }
}
