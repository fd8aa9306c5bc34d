/**
 * Scenario 3: alert latency. A pgmq queue with a producer (20 messages/s) and a consumer; the
 * consumer stops; the rule `ready > 20` (for F seconds) becomes true when the 21st message after
 * the stop is sent. Captures run every I seconds (driven here: pg_cron 1.4 has minute schedules);
 * capture() evaluates the rules and writes the outbox, the dispatch NOTIFY wakes queue-alert
 * (through the same pg_net stand-in the local stack runs), and queue-alert posts to the local
 * Slack receiver. Reported: time from the condition becoming true to the receiver getting the
 * message, minus I + F (the wait the rule asks for).
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
import { createChannel, forgetBenchAlerting, startLocalReceivers } from '../lib/alerting.ts';
import { hasFunctionHandler, serveFunctions, startDispatcher } from '../lib/functions.ts';
import { fmt, range, summarize } from '../lib/stats.ts';

const S = '3 alert latency';
const QUEUE = 'qhbench_alert';
const THRESHOLD = 20;

/** Runs scenario 3. */
export async function alertLatency(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.evaluate_alerts(timestamptz)'))) {
    ctx.report.skip(S, 'all', 'queue_health.evaluate_alerts() is not installed (ALERTING 100300)');
    return;
  }
  if (!hasFunctionHandler('queue-alert')) {
    ctx.report.skip(S, 'all', 'supabase/functions/queue-alert/handler.ts is missing');
    return;
  }
  if (!(await ctx.hasRelation('pgmq.meta'))) {
    ctx.report.skip(S, 'all', 'no pgmq (extension or fixture) for the watched queue');
    return;
  }
  const intervalS = 1;
  const forS = ctx.quick ? 1 : 2;
  await ensureBenchProject(ctx);
  const sql = ctx.sql;
  const receivers = await startLocalReceivers();
  const fns = await serveFunctions(ctx, { RESEND_BASE_URL: `${receivers.url}/resend` });
  const listener = ctx.connect(1, 'qhbench-dispatcher');
  const work = ctx.connect(2, 'qhbench-alert-work');
  let stopDispatcher = async () => {};
  let capturing = true;
  let captureLoop: Promise<void> = Promise.resolve();
  const details: Record<string, unknown> = { interval_s: intervalS, for_s: forS };
  try {
    await forgetBenchAlerting(ctx);
    await sql`update queue_health.alert_rule set enabled = false where project_id = ${PROJECT}`;
    await sql`select pgmq.create(${QUEUE})`;
    const channel = await createChannel(ctx, 'qhbench-slack', 'slack', {}, {
      url: `${receivers.url}/slack/qhbench-alert`,
    });
    await sql`
      insert into queue_health.alert_rule (project_id, name, queue_name, source, condition, comparator,
        threshold, for_duration, severity, channel_ids, send_resolved, group_wait, group_interval,
        repeat_interval, summary)
      values (${PROJECT}, 'qhbench ready backlog', ${QUEUE}, 'pgmq', 'ready', '>', ${THRESHOLD},
        ${`${forS} seconds`}::interval, 'critical', array[${channel}::uuid], false, '0 seconds',
        '1 second', '1 hour', 'bench: {{queue}} has {{value}} ready')`;
    stopDispatcher = await startDispatcher(listener, fns);

    // Captures every interval, on their own connection, for the whole scenario.
    const capSql = ctx.connect(1, 'qhbench-capture');
    captureLoop = (async () => {
      try {
        while (capturing) {
          const t0 = performance.now();
          await capSql`select queue_health.capture()`;
          await sleep(Math.max(0, intervalS * 1000 - (performance.now() - t0)));
        }
      } finally {
        await capSql.end();
      }
    })();

    const excess: number[] = [];
    const total: number[] = [];
    const trials = [];
    for (let t = 0; t < ctx.sizes.alertTrials && Date.now() < ctx.deadline; t++) {
      // Producer and consumer running: the queue stays near empty.
      let producing = true;
      let consuming = true;
      const sends: number[] = [];
      const producer = (async () => {
        while (producing) {
          await work`select pgmq.send(${QUEUE}, '{"job": "bench"}'::jsonb)`;
          sends.push(Date.now());
          await sleep(50);
        }
      })();
      const consumer = (async () => {
        while (consuming) {
          const got = await work<
            { msg_id: string }[]
          >`select msg_id from pgmq.read(${QUEUE}, 30, 100)`;
          if (got.length) {
            await work`select pgmq.delete(${QUEUE}, ${got.map((g) => g.msg_id)}::bigint[])`;
          }
          await sleep(50);
        }
      })();
      // Let the alert from any previous trial resolve, with the consumer running.
      const settleUntil = Date.now() + 15_000;
      await sleep(2_500);
      while (Date.now() < settleUntil) {
        const [{ active }] = await sql<{ active: number }[]>`
          select count(*)::int as active from queue_health.alert
          where project_id = ${PROJECT} and state in ('pending', 'firing')`;
        if (active === 0) break;
        await sleep(250);
      }
      const before = receivers.received('slack').length;
      consuming = false;
      await consumer;
      const [{ r0 }] = await work<{ r0: number }[]>`
        select count(*)::int as r0 from pgmq.${work(`q_${QUEUE}`)} where vt <= clock_timestamp()`;
      const stopIndex = sends.length;
      const need = Math.max(1, THRESHOLD + 1 - r0);
      // Wait for the Slack message (bounded).
      const until = Date.now() + (intervalS + forS) * 1000 + 20_000;
      while (receivers.received('slack').length === before && Date.now() < until) await sleep(20);
      producing = false;
      await producer;
      const got = receivers.received('slack')[before];
      const tTrue = sends[stopIndex + need - 1];
      if (!got || tTrue === undefined) {
        trials.push({ trial: t, received: false });
        continue;
      }
      const tRecv = Date.parse(got.received_at);
      total.push(tRecv - tTrue);
      excess.push(tRecv - tTrue - (intervalS + forS) * 1000);
      trials.push({ trial: t, received: true, condition_true_at: tTrue, received_at: tRecv });
      // Drain so the next trial starts from an empty queue.
      await work`select pgmq.purge_queue(${QUEUE})`;
    }
    details.trials = trials;
    details.excess_ms = excess;
    if (excess.length === 0) {
      ctx.report.add({
        scenario: S,
        case: `ready > ${THRESHOLD}, capture every ${intervalS} s, for ${forS} s`,
        metric: 'Slack message received',
        value: 0,
        unit: '',
        verdict: 'missed',
        note: 'no Slack message arrived within interval + for + 20 s',
      });
      return;
    }
    const s = summarize(excess);
    const tot = summarize(total);
    ctx.report.add({
      scenario: S,
      case: `consumer stops → Slack receiver; capture every ${intervalS} s, for ${forS} s`,
      metric: 'excess over interval + for (p95)',
      value: s.p95,
      unit: 'ms',
      spread: `median ${fmt(s.median)}, ${range(s)}, n=${s.n}`,
      goal: ctx.quick ? undefined : '< 2000 ms',
      verdict: ctx.quick ? 'info' : s.p95 < 2000 ? 'met' : 'missed',
      note: `condition true → message: median ${fmt(tot.median)} ms, max ${fmt(tot.max)} ms; ${
        trials.length - excess.length
      } trials without a message`,
    });
  } finally {
    capturing = false;
    await captureLoop.catch(() => {});
    await stopDispatcher().catch(() => {});
    ctx.report.details['3_alert_latency'] = details;
    await listener.end({ timeout: 2 });
    await work.end({ timeout: 2 });
    await fns.stop();
    await receivers.stop();
    await forgetBenchAlerting(ctx);
    await dropBenchPgmqQueues(sql, `${QUEUE}%`);
    await forgetBenchQueues(ctx);
  }
}
