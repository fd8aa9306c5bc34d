/**
 * Scenario 10: what a project at every quota costs alert evaluation, and the project next to it.
 *
 * Two projects of ten queues each with two hours of one-a-minute snapshots: a "victim" with the
 * default rules, and a "hostile" one at every quota (200 rules, each with a window of its own of
 * nearly two days; 50 webhook channels; 500 silences that match nothing), many of whose rules
 * fire. Its groups are held back (group_wait of a day), so what is measured is the common
 * case: evaluating, with nothing due to send.
 *
 * A/B in the same run: `_flush_notifications` of release 0.1.0 (read from its frozen migration:
 * it decides per channel whether each firing alert is silenced) and today's (once per alert),
 * swapped in with `create or replace` between blocks of evaluations; a round's figure is the
 * block's median of `evaluate_alerts()`'s own per-project times (`project_ms`). Also counted: how
 * often the victim was deferred past `alert_evaluation_budget` (never, since projects go
 * cheapest first), and one flush with every group due (rolled back): what a change that notifies
 * every channel costs, where today's renders each alert once, not once per channel.
 *
 * @module
 */
import { type Context, forgetBenchQueues, type Sql } from '../lib/context.ts';
import { fmt, median, range, summarize } from '../lib/stats.ts';
import { currentDefinition, releasedDefinition } from '../lib/definitions.ts';

const S = '10 evaluation at quota';
const VICTIM = 'qhbench_eval_v';
const HOSTILE = 'qhbench_eval_h';
/** The two projects, their queues and history, and the hostile one's rules, channels, silences. */
export async function setup(sql: Sql, channels: number, silences: number): Promise<void> {
  await sql`insert into queue_health.project (id, name)
            values (${VICTIM}, 'bench victim'), (${HOSTILE}, 'bench at every quota')`;
  await sql`insert into queue_health.project_alert_settings (project_id, group_wait)
            values (${HOSTILE}, interval '1 day')`;
  for (const p of [VICTIM, HOSTILE]) {
    await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id)
              select 'pgmq', 'pgmq', ${p} || '_q' || i, ${p} from generate_series(1, 10) i`;
    await sql`
      insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
        ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
        failed, retried, dead_lettered, interval_s)
      select date_trunc('minute', now()) - make_interval(mins => m), ${p}, 'pgmq', 'pgmq',
             ${p} || '_q' || i, 5, 1, 0, 6, false, 3, 2, 1, 1, 0, 0, 60
        from generate_series(1, 10) i, generate_series(119, 0, -1) m
       order by m desc, i`;
  }
  // Rules of five conditions over every queue (as local/test/tenant_fairness_test.ts has them):
  // some hold on every queue (half the taken work fails), some on none.
  await sql`
    insert into queue_health.alert_rule (project_id, name, condition, threshold, window_duration, queue_pattern)
    select ${HOSTILE}, 'h' || i,
           (array['failure_rate', 'stalled', 'growing_backlog', 'enqueued', 'error_rate'])[1 + i % 5],
           0.5, make_interval(hours => 47) - make_interval(mins => i), '%'
      from generate_series(1, 200 - (select count(*)::int from queue_health.alert_rule
                                      where project_id = ${HOSTILE})) i`;
  await sql`insert into queue_health.channel (project_id, name, kind, config)
            select ${HOSTILE}, 'c' || i, 'webhook', '{"url": "https://hooks.example.test/h"}'
              from generate_series(1, ${channels}) i`;
  await sql`insert into queue_health.silence (project_id, queue_pattern, ends_at, comment)
            select ${HOSTILE}, 'nothing_' || i, now() + interval '1 day', 'bench'
              from generate_series(1, ${silences}) i`;
  await sql`analyze queue_health.alert_rule`;
}

interface Round {
  hostile: number;
  victim: number;
  victimDeferred: number;
  /** ms of one flush that notifies every channel of every firing alert (rolled back). */
  burst: number;
  notifications: number;
}

/** One flush with every group of the quota project due: what a change that notifies all costs. */
async function burst(sql: Sql): Promise<{ ms: number; n: number }> {
  let out = { ms: 0, n: 0 };
  await sql.begin(async (tx) => {
    await tx`update queue_health.notification_group set flush_at = now() where project_id = ${HOSTILE}`;
    const t0 = performance.now();
    const [{ n }] = await tx<{ n: number }[]>`
      select queue_health._flush_notifications(now(), ${HOSTILE}) as n`;
    out = { ms: performance.now() - t0, n };
    throw new Error('rollback');
  }).catch((e) => {
    if (!(e instanceof Error) || e.message !== 'rollback') throw e;
  });
  return out;
}

/** `block` evaluations after one uncounted (the swap drops cached plans): medians per project. */
async function evaluations(sql: Sql, block: number): Promise<Round> {
  await sql`select queue_health.evaluate_alerts(now())`;
  const hostile: number[] = [];
  const victim: number[] = [];
  let victimDeferred = 0;
  for (let i = 0; i < block; i++) {
    const [{ r }] = await sql<{ r: { project_ms: Record<string, number> } }[]>`
      select queue_health.evaluate_alerts(now()) as r`;
    hostile.push(Number(r.project_ms[HOSTILE]));
    if (r.project_ms[VICTIM] === undefined) victimDeferred += 1;
    else victim.push(Number(r.project_ms[VICTIM]));
  }
  const b = await burst(sql);
  return {
    hostile: median(hostile),
    victim: median(victim),
    victimDeferred,
    burst: b.ms,
    notifications: b.n,
  };
}

/** Scenario 10. */
export async function evaluationQuota(ctx: Context): Promise<void> {
  const sql = ctx.connect(1, 'qhbench-evaluation');
  const channels = ctx.quick ? 10 : 50;
  const silences = ctx.quick ? 100 : 500;
  const rounds = ctx.quick ? 1 : 3;
  const block = ctx.quick ? 2 : 3;
  const label = `200 rules, ${channels} channels, ${silences} silences, 10 queues`;
  const now = await currentDefinition(sql, 'queue_health._flush_notifications(timestamptz, text)');
  try {
    await setup(sql, channels, silences);
    const old = await releasedDefinition(
      '20261126101000_queue_health_alert_outbox.sql',
      '_flush_notifications',
    );
    const sides: Round[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const side of [0, 1]) {
        await sql.unsafe(side === 0 ? old : now);
        sides[side].push(await evaluations(sql, block));
      }
    }
    await sql.unsafe(now);
    const [firing] = await sql<{ n: number }[]>`
      select count(*)::int as n from queue_health.alert where project_id = ${HOSTILE} and state = 'firing'`;
    const ratios = sides[1].map((b, i) => b.hostile / sides[0][i].hostile);
    const s = summarize(ratios);
    ctx.report.add({
      scenario: S,
      case: label,
      metric: "the quota project's evaluation ms, today ÷ 0.1.0's flush (silences per channel)",
      value: s.median,
      unit: '×',
      spread: `${range(s)}, n=${rounds}`,
      verdict: 'info',
      note: `${fmt(median(sides[0].map((x) => x.hostile)))} ms with 0.1.0's flush, ${
        fmt(median(sides[1].map((x) => x.hostile)))
      } ms today (medians of ${block}-evaluation blocks); ${firing.n} alerts firing, nothing due`,
    });
    const bursts = summarize(sides[1].map((b, i) => b.burst / sides[0][i].burst));
    ctx.report.add({
      scenario: S,
      case: label,
      metric: "a flush notifying every channel of every firing alert, ms today ÷ 0.1.0's",
      value: bursts.median,
      unit: '×',
      spread: `${range(bursts)}, n=${rounds}`,
      verdict: 'info',
      note: `${sides[1][0].notifications} notifications of ${firing.n} alerts: ${
        fmt(median(sides[0].map((x) => x.burst)))
      } ms with 0.1.0's flush, ${fmt(median(sides[1].map((x) => x.burst)))} ms today`,
    });
    const deferred = sides.flat().reduce((n, x) => n + x.victimDeferred, 0);
    ctx.report.add({
      scenario: S,
      case: `${label}, the project next to it (default rules, 10 queues)`,
      metric: "the victim's evaluation ms beside the quota project (today)",
      value: median(sides[1].map((x) => x.victim)),
      unit: 'ms',
      spread: `deferred ${deferred} of ${rounds * block * 2} evaluations`,
      goal: 'never deferred',
      verdict: deferred === 0 ? 'met' : 'missed',
      note: `with 0.1.0's flush in place: ${fmt(median(sides[0].map((x) => x.victim)))} ms`,
    });
  } finally {
    await sql.unsafe(now).catch(() => {});
    // The registry's rows first: queue.project_id does not cascade.
    await forgetBenchQueues(ctx);
    await sql`delete from queue_health.metric where project_id in (${VICTIM}, ${HOSTILE})`;
    await sql`delete from queue_health.project where id in (${VICTIM}, ${HOSTILE})`;
    await sql.end({ timeout: 2 });
  }
}
