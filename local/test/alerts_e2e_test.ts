/**
 * Alerting end to end, against real Postgres (DATABASE_URL), a real pg-boss v12 queue in a schema
 * of its own and real HTTP receivers on 127.0.0.1 (local/receivers):
 *
 *   producers keep sending, the consumer stops ─▶ capture() every second ─▶ evaluate_alerts()
 *   ─▶ outbox ─▶ queue-alert (its real handler, called after each capture as the local dispatcher
 *   would) ─▶ the Slack and Resend receivers; then the consumer resumes, the queue drains and the
 *   RESOLVED message arrives.
 *
 * The second test takes the path through the local stack's dispatcher (NOTIFY
 * queue_health_dispatch ─▶ the functions server invokes queue-alert) when a functions server in
 * dev mode listens on this database; `npm test` runs the stack in test mode, so that part is
 * usually skipped, with the reason logged.
 *
 * Other test files share the database: everything here has unique names (project, queue, pg-boss
 * schema), assertions only look at this test's project, and everything is removed at the end.
 * Captures see every queue in the database; the project_queue_map rule puts only ours into our
 * project. queue_health.schedule() is never called (cron captures would race other tests).
 *
 * @module
 */
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createLogger } from '../../supabase/functions/_shared/log.ts';
import { createHandler } from '../../supabase/functions/queue-alert/handler.ts';
import { type Received, type Receivers, startReceivers } from '../receivers/server.ts';
import { API_URL, RECEIVERS_URL } from '../stack/config.ts';
import { connect, databaseUrl } from './db.ts';
import { type StartedPgBoss, startPgBoss } from './pgboss.ts';
import { sleep } from './wait.ts';

type Sql = postgres.Sql;

/** How often the test captures (the capture interval of this scenario). */
const CAPTURE_EVERY_MS = 1_000;
/** Producer: one job per this many ms, all the time. */
const PRODUCE_EVERY_MS = 100;
/** Consumer: polls this often while it runs, completing everything it fetched. */
const CONSUME_EVERY_MS = 50;
/** The backlog rule: depth > BACKLOG_DEPTH for BACKLOG_FOR_S. */
const BACKLOG_DEPTH = 5;
const BACKLOG_FOR_S = 2;
/** The stalled rule: nothing completed over STALL_WINDOW_S, for STALL_FOR_S more. */
const STALL_WINDOW_S = 2;
const STALL_FOR_S = 3;
/**
 * How late a firing message may be beyond capture interval + window + `for`: the condition needs
 * a moment to become measurable (depth passes 5 about 0.6 s after the stop at 10 jobs/s), plus
 * capture, evaluation and delivery time. Rounds (capture + queue-alert) that take longer than the
 * interval on a loaded database stretch the interval; their overrun is added to this allowance.
 */
const MAX_EXCESS_MS = 2_500;

const RESEND_KEY = 're_e2e_test';
/** application_name of this file's connections (its own LISTEN is not the stack's dispatcher). */
const APPLICATION_NAME = 'queue-health-alerts-e2e';
const ALERT_SECRET = `e2e-${crypto.randomUUID()}`;

/** A fresh id for this run: `e2e_` + 10 lower-case hex digits. */
function uniqueId(): string {
  return `e2e_${crypto.randomUUID().replaceAll('-', '').slice(0, 10)}`;
}

/** `name` as a LIKE pattern matching exactly itself. */
function likeExactly(name: string): string {
  return name.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * Why the local stack's dispatcher will not deliver this database's notifications, or null when
 * it will: a functions server in dev mode answers on API_URL and a session LISTENs on
 * queue_health_dispatch in this very database.
 */
async function dispatcherAbsence(sql: Sql): Promise<string | null> {
  let mode: unknown;
  try {
    const res = await fetch(`${API_URL}/_stack/health`, { signal: AbortSignal.timeout(1_500) });
    const body = await res.json().catch(() => null) as { mode?: unknown } | null;
    mode = body?.mode;
  } catch (e) {
    return `no functions server answers at ${API_URL}/_stack/health (${
      e instanceof Error ? e.message : String(e)
    })`;
  }
  if (mode !== 'dev') {
    return `the functions server at ${API_URL} runs in mode ${
      JSON.stringify(mode)
    }, which has no dispatcher (npm test runs the stack in test mode)`;
  }
  const [{ listening }] = await sql<{ listening: boolean }[]>`
    select exists (
      select 1 from pg_catalog.pg_stat_activity
       where datname = current_database() and application_name <> ${APPLICATION_NAME}
         and query ilike 'listen%queue_health_dispatch%') as listening`;
  if (!listening) {
    return `the functions server at ${API_URL} is in dev mode, but nothing LISTENs on ` +
      `queue_health_dispatch in database ${new URL(databaseUrl()).pathname.slice(1)}`;
  }
  return null;
}

/** One notification as a person sees it at a receiver. */
interface Message {
  receiver: 'slack' | 'email';
  /** When the receiver got it (ms since the epoch). */
  at: number;
  /** Subject (email) or the first line of the fallback text (Slack). */
  headline: string;
  /** The whole plain text (Slack fallback text, or the email's text part). */
  text: string;
  /** The email's notification id header (Slack carries none). */
  notificationId: string | null;
}

function slackMessage(r: Received): Message {
  const b = r.body as { text: string };
  return {
    receiver: 'slack',
    at: Date.parse(r.received_at),
    headline: b.text.split('\n')[0],
    text: b.text,
    notificationId: null,
  };
}

function emailMessage(r: Received): Message {
  const b = r.body as { subject: string; text: string; headers?: Record<string, string> };
  return {
    receiver: 'email',
    at: Date.parse(r.received_at),
    headline: b.subject,
    text: b.text,
    notificationId: b.headers?.['X-Queue-Health-Notification'] ?? null,
  };
}

/** Whether `m` lists the rule's alert in the given state. */
function lists(m: Message, rule: string, state: 'firing' | 'resolved'): boolean {
  return m.receiver === 'slack'
    ? m.text.split('\n').some((l) => l.startsWith(`• ${state}: ${rule}:`))
    : m.text.split('\n').some((l) =>
      l.startsWith(`- [${state.toUpperCase()}] `) && l.includes(rule)
    );
}

/** A running producer/consumer pair on one pg-boss queue. */
interface Workload {
  /** Stops the consumer after its current batch; resolves when nothing more will complete. */
  stopConsumer(): Promise<void>;
  /** Starts the consumer again. */
  resumeConsumer(): void;
  /** Stops everything. */
  stop(): Promise<void>;
  /** Errors the loops met (a test with errors here must fail). */
  errors: unknown[];
  /** Jobs sent so far. */
  sent(): number;
}

function startWorkload(pb: StartedPgBoss<12>, queue: string): Workload {
  const errors: unknown[] = [];
  let producing = true;
  let sent = 0;
  const producer = (async () => {
    while (producing) {
      try {
        await pb.boss.send(queue, { n: sent });
        sent++;
      } catch (e) {
        errors.push(e);
      }
      await sleep(PRODUCE_EVERY_MS);
    }
  })();

  let consumer: { on: boolean; done: Promise<void> } | null = null;
  const consume = () => {
    const c = { on: true, done: Promise.resolve() };
    c.done = (async () => {
      while (c.on) {
        try {
          const jobs = await pb.boss.fetch(queue, { batchSize: 100 });
          if (jobs.length > 0) await pb.boss.complete(queue, jobs.map((j) => j.id));
        } catch (e) {
          errors.push(e);
        }
        if (c.on) await sleep(CONSUME_EVERY_MS);
      }
    })();
    return c;
  };
  consumer = consume();

  return {
    errors,
    sent: () => sent,
    async stopConsumer() {
      if (!consumer) return;
      consumer.on = false;
      await consumer.done;
      consumer = null;
    },
    resumeConsumer() {
      if (!consumer) consumer = consume();
    },
    async stop() {
      producing = false;
      await producer;
      await this.stopConsumer();
    },
  };
}

/** What a test world holds: one project with its map, a pg-boss queue, receivers. */
interface World {
  sql: Sql;
  receivers: Receivers;
  project: string;
  queue: string;
  schema: string;
  pb: StartedPgBoss<12>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const id = uniqueId();
  const project = id;
  const queue = `${id}_orders`;
  const schema = `qh_test_${id}`;
  const sql = connect({ max: 4, prepare: false, applicationName: APPLICATION_NAME });
  const receivers = await startReceivers({ resendApiKey: RESEND_KEY });
  let pb: StartedPgBoss<12> | null = null;
  try {
    await sql`insert into queue_health.project (id, name) values (${project}, 'alerts e2e test')`;
    // The default rules would also route to our channels (monitor_stale fires at once on a shared
    // database whose captures are not scheduled): this test is about its own two rules.
    await sql`update queue_health.alert_rule set enabled = false
               where project_id = ${project} and is_default`;
    await sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
               values (${project}, 'pgboss', ${likeExactly(queue)}, 0)`;
    });
    pb = await startPgBoss(12, { schema, max: 4 });
    await pb.boss.createQueue(queue);
    await fn({ sql, receivers, project, queue, schema, pb });
  } finally {
    await pb?.stop({ dropSchema: true }).catch((e) => console.error('pg-boss stop failed', e));
    // Metric and registry rows first: the registry refers to the project.
    await sql`delete from queue_health.metric where source = 'pgboss' and source_schema = ${schema}`
      .catch((e) => console.error('cleanup failed', e));
    await sql`delete from queue_health.queue where source = 'pgboss' and source_schema = ${schema}`
      .catch((e) => console.error('cleanup failed', e));
    // Cascades to the map, rules, channels, secrets, alerts, groups and notifications.
    await sql`delete from queue_health.project where id = ${project}`.catch((e) =>
      console.error('cleanup failed', e)
    );
    await receivers.stop();
    await sql.end({ timeout: 5 });
  }
}

/** Creates a channel (and its secret) as the service role; returns its id. */
async function channel(
  w: World,
  name: string,
  kind: 'slack' | 'email',
  config: Record<string, unknown>,
  secret: Record<string, unknown> | null,
): Promise<string> {
  return await w.sql.begin(async (tx) => {
    await tx`set local role service_role`;
    const [{ id }] = await tx<{ id: string }[]>`
      insert into queue_health.channel (project_id, name, kind, config)
      values (${w.project}, ${name}, ${kind}, ${tx.json(config as postgres.JSONValue)})
      returning id`;
    if (secret) {
      await tx`insert into queue_health.channel_secret (channel_id, secret)
               values (${id}, ${tx.json(secret as postgres.JSONValue)})`;
    }
    return id;
  });
}

/** Runs one capture as the test's postgres connection, again if another capture held the lock. */
async function capture(sql: Sql): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const [{ r }] = await sql<{ r: { status: string; skipped: boolean } }[]>`
      select queue_health.capture() as r`;
    if (!r.skipped) {
      assert.notEqual(r.status, 'error', `capture failed: ${JSON.stringify(r)}`);
      return;
    }
    await sleep(100);
  }
  throw new Error('capture was skipped for 10 s (another capture kept running)');
}

Deno.test('a pg-boss queue that backs up and stalls alerts Slack and email once, then resolves', async () => {
  await withWorld(async (w) => {
    const email = `oncall+${w.project}@example.test`;
    const slackId = await channel(w, 'e2e-slack', 'slack', {}, {
      url: `${w.receivers.url}/slack/e2e`,
    });
    const emailId = await channel(w, 'e2e-email', 'email', { to: [email] }, null);
    await w.sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`
        insert into queue_health.alert_rule
          (project_id, name, source, source_schema, queue_name, condition, comparator, threshold,
           window_duration, for_duration, severity, group_wait, group_interval, send_resolved,
           runbook_url)
        values
          (${w.project}, 'e2e backlog', 'pgboss', ${w.schema}, ${w.queue}, 'depth', '>',
           ${BACKLOG_DEPTH}, null, ${`${BACKLOG_FOR_S} seconds`}, 'warning', '0', '1 second', true,
           'https://runbooks.example.com/{{queue}}'),
          (${w.project}, 'e2e stalled', 'pgboss', ${w.schema}, ${w.queue}, 'stalled', '>', 0,
           ${`${STALL_WINDOW_S} seconds`}, ${`${STALL_FOR_S} seconds`}, 'critical', '0',
           '1 second', true, null)`;
    });

    // Where a dev-mode stack dispatcher listens on this database it races our handler for the
    // outbox: Slack still lands here (the URL is the channel's secret), email at the stack's
    // Resend receiver. Then both inboxes count.
    const raced = (await dispatcherAbsence(w.sql)) === null;
    const logs: string[] = [];
    const handler = createHandler({
      sql: w.sql,
      logger: createLogger({ fn: 'queue-alert' }, (line) => logs.push(line)),
      env: {
        SUPABASE_DB_URL: databaseUrl(),
        QUEUE_ALERT_SECRET: ALERT_SECRET,
        RESEND_API_KEY: RESEND_KEY,
        RESEND_BASE_URL: `${w.receivers.url}/resend`,
        RESEND_FROM: 'Queue Health <alerts@example.test>',
        // The outbox is shared: rows other tests left behind are claimed too. Keep a round short
        // even if one of their endpoints hangs.
        QUEUE_ALERT_TIMEOUT_MS: '2000',
        // The receivers listen on loopback over http.
        QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
        QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
      },
    });
    /** What the local dispatcher does on NOTIFY: POST {} to queue-alert (evaluate, deliver). */
    const dispatch = async () => {
      const res = await handler(
        new Request('http://127.0.0.1:54321/functions/v1/queue-alert', {
          method: 'POST',
          headers: { 'x-queue-health-secret': ALERT_SECRET, 'content-type': 'application/json' },
          body: '{}',
        }),
      );
      const body = await res.json();
      assert.equal(res.status, 200, `queue-alert answered ${res.status}: ${JSON.stringify(body)}`);
    };

    let stackEmails: Received[] = [];
    const messages = async (): Promise<Message[]> => {
      if (raced) {
        const res = await fetch(`${RECEIVERS_URL}/_received?route=resend`);
        stackEmails = ((await res.json()) as { received: Received[] }).received;
      }
      const slack = w.receivers.received('slack').filter((r) => r.path === '/e2e')
        .map(slackMessage);
      const emails = [...w.receivers.received('resend'), ...stackEmails]
        .filter((r) => JSON.stringify((r.body as { to?: unknown })?.to ?? null).includes(email))
        .map(emailMessage);
      return [...slack, ...emails].sort((a, b) => a.at - b.at);
    };
    const of = (all: Message[], receiver: Message['receiver']) =>
      all.filter((m) => m.receiver === receiver);
    /** The first message at `receiver` listing `rule` in `state`. */
    const first = (
      all: Message[],
      receiver: Message['receiver'],
      rule: string,
      state: 'firing' | 'resolved',
    ) => of(all, receiver).find((m) => lists(m, rule, state));

    /**
     * Captures every CAPTURE_EVERY_MS, dispatching after each, until `done` holds. Returns how
     * far the rounds overran the interval in total (ms) and the longest round.
     */
    const captureUntil = async (label: string, timeoutMs: number, done: () => Promise<boolean>) => {
      const deadline = Date.now() + timeoutMs;
      let next = Date.now();
      let overrunMs = 0;
      let longestMs = 0;
      for (;;) {
        const t0 = Date.now();
        await capture(w.sql);
        await dispatch();
        const roundMs = Date.now() - t0;
        overrunMs += Math.max(0, roundMs - CAPTURE_EVERY_MS);
        longestMs = Math.max(longestMs, roundMs);
        if (await done()) return { overrunMs, longestMs };
        if (Date.now() > deadline) {
          const [{ alerts }] = await w.sql`
            select coalesce(jsonb_agg(jsonb_build_object('rule', r.name, 'state', a.state,
                     'value', a.value) order by r.name), '[]') as alerts
              from queue_health.alert a join queue_health.alert_rule r on r.id = a.rule_id
             where a.project_id = ${w.project}`;
          throw new Error(
            `${label}: not within ${timeoutMs} ms. alerts: ${JSON.stringify(alerts)}; messages: ${
              JSON.stringify((await messages()).map((m) => [m.receiver, m.headline]))
            }; queue-alert log tail: ${logs.slice(-5).join(' | ')}`,
          );
        }
        next = Math.max(next + CAPTURE_EVERY_MS, Date.now());
        await sleep(next - Date.now());
      }
    };

    const load = startWorkload(w.pb, w.queue);
    try {
      // Healthy: the consumer keeps up. Long enough for the stalled window to find the queue
      // observed before it begins; nothing may fire.
      await sleep(500);
      let healthy = 0;
      await captureUntil('healthy phase', 10_000, () => Promise.resolve(++healthy >= 3));
      const [{ n: quiet }] = await w.sql<{ n: number }[]>`
        select count(*)::int as n from queue_health.notification where project_id = ${w.project}`;
      assert.equal(quiet, 0, 'a healthy queue must not notify');
      assert.deepEqual(await messages(), []);
      const [{ project_id: mapped }] = await w.sql<{ project_id: string }[]>`
        select project_id from queue_health.queue
         where source = 'pgboss' and source_schema = ${w.schema} and queue_name = ${w.queue}`;
      assert.equal(mapped, w.project, 'project_queue_map puts the queue into the test project');

      // The consumer stops; producers go on. The condition is true from this moment.
      await load.stopConsumer();
      const stoppedAt = Date.now();
      const firingRounds = await captureUntil('firing', 25_000, async () => {
        const all = await messages();
        return ['slack', 'email'].every((r) =>
          ['e2e backlog', 'e2e stalled'].every((rule) =>
            first(all, r as Message['receiver'], rule, 'firing')
          )
        );
      });
      const firingAll = await messages();

      // The consumer resumes and drains the backlog while producers go on; capture once it is
      // drained, so both alerts resolve in one evaluation.
      load.resumeConsumer();
      const resumedAt = Date.now();
      const drainDeadline = Date.now() + 10_000;
      for (;;) {
        const [{ n }] = await w.sql.unsafe<{ n: number }[]>(
          `select count(*)::int as n from ${postgresIdent(w.schema)}.job
            where name = $1 and state in ('created', 'retry', 'active')`,
          [w.queue],
        );
        if (n <= 2) break;
        assert.ok(Date.now() < drainDeadline, `the queue did not drain: ${n} jobs left`);
        await sleep(50);
      }
      await captureUntil('resolved', 15_000, async () => {
        const all = await messages();
        return ['slack', 'email'].every((r) =>
          of(all, r as Message['receiver']).some((m) => /^(\S+ )?\[RESOLVED:/.test(m.headline))
        );
      });
      // One more round: nothing further may arrive (no duplicate, no repeat).
      await sleep(CAPTURE_EVERY_MS);
      await capture(w.sql);
      await dispatch();
      const all = await messages();

      assert.deepEqual(load.errors, [], 'the pg-boss workload ran without errors');
      const RULES = ['e2e backlog', 'e2e stalled'] as const;
      for (const receiver of ['slack', 'email'] as const) {
        const got = of(all, receiver);
        const heads = JSON.stringify(got.map((m) => m.headline));
        // Expected: [FIRING:1] backlog (for 2 s), [FIRING:2] when stalled joins (2 s window + 3 s),
        // one [RESOLVED:2]. Both firing in one evaluation gives one firing message, and a capture
        // of someone else between resume and drain may resolve stalled first: those shapes pass
        // too, as long as every message says something new and each alert resolves once.
        assert.ok(got.length >= 2 && got.length <= 4, `${receiver}: ${heads}`);
        const firingIn = (m: Message) => new Set(RULES.filter((r) => lists(m, r, 'firing')));
        const resolvedIn = (m: Message) => new Set(RULES.filter((r) => lists(m, r, 'resolved')));

        // The first message: FIRING, the backlog alert (warning, alone) or both (critical).
        const opening = firingIn(got[0]);
        assert.ok(
          opening.has('e2e backlog'),
          `${receiver}: the backlog alert fires first: ${heads}`,
        );
        assert.match(
          got[0].headline,
          opening.size === 1
            ? new RegExp(`^\\[FIRING:1\\] warning — e2e backlog on ${w.queue} \\(pgboss:`)
            : /^\[FIRING:2\] critical — 2 alerts in project /,
        );
        // No repeats: each message announces a newly firing or a resolved alert.
        for (let i = 1; i < got.length; i++) {
          const before = firingIn(got[i - 1]);
          const news = [...firingIn(got[i])].filter((r) => !before.has(r)).length +
            resolvedIn(got[i]).size;
          assert.ok(news > 0, `${receiver}: message ${i} repeats the previous one: ${heads}`);
        }
        // Each alert fired, was announced with its severity, and resolved exactly once, after.
        for (const rule of RULES) {
          const firedAt = got.findIndex((m) => firingIn(m).has(rule));
          const resolvedAt = got.map((m, i) => (resolvedIn(m).has(rule) ? i : -1))
            .filter((i) => i >= 0);
          assert.ok(firedAt >= 0, `${receiver}: ${rule} never fired: ${heads}`);
          assert.equal(resolvedAt.length, 1, `${receiver}: ${rule} resolved once: ${heads}`);
          assert.ok(firedAt < resolvedAt[0], `${receiver}: ${rule} fired before it resolved`);
          assert.ok(
            got.slice(resolvedAt[0]).every((m) => !firingIn(m).has(rule)),
            `${receiver}: ${rule} does not fire again`,
          );
        }
        assert.ok(
          got.some((m) => firingIn(m).has('e2e stalled') && /\] critical — /.test(m.headline)),
          `${receiver}: the stalled alert is critical: ${heads}`,
        );
        // The last message says RESOLVED; every message names the queue and the project.
        assert.match(got[got.length - 1].headline, /^\[RESOLVED:\d\] (critical|warning) — /, heads);
        for (const m of got) {
          assert.ok(m.text.includes(w.queue), `${receiver}: the queue is named: ${m.text}`);
          assert.ok(m.headline.includes(`in project ${w.project}`), m.headline);
        }
      }
      // Slack gets the runbook link of the backlog rule, templated with the queue.
      const slackFiring = w.receivers.received('slack').filter((r) => r.path === '/e2e')[0];
      assert.ok(
        JSON.stringify(slackFiring.body).includes(`runbooks.example.com/${w.queue}|Runbook`),
        'the Slack message links the runbook',
      );

      // The outbox agrees: each notification sent once, on the first attempt, one per message.
      const rows = await w.sql<
        { id: string; channel_id: string; status: string; attempts: number }[]
      >`
        select id, channel_id, status::text as status, attempts from queue_health.notification
         where project_id = ${w.project} order by created_at`;
      for (const r of rows) {
        assert.equal(r.status, 'sent', JSON.stringify(r));
        assert.equal(r.attempts, 1, JSON.stringify(r));
      }
      assert.equal(rows.filter((r) => r.channel_id === slackId).length, of(all, 'slack').length);
      const emailRows = rows.filter((r) => r.channel_id === emailId).map((r) => r.id);
      assert.deepEqual(of(all, 'email').map((m) => m.notificationId), emailRows);

      // Latency from the condition becoming true (the consumer stopped) to each receiver.
      const ms = (m: Message | undefined) => (m ? m.at - stoppedAt : null);
      const entry = (rule: string, budgetMs: number) => {
        const slack = ms(first(firingAll, 'slack', rule, 'firing'));
        const mail = ms(first(firingAll, 'email', rule, 'firing'));
        return {
          budget_ms: budgetMs,
          slack_ms: slack,
          email_ms: mail,
          slack_excess_ms: slack === null ? null : slack - budgetMs,
          email_excess_ms: mail === null ? null : mail - budgetMs,
        };
      };
      const backlog = entry('e2e backlog', CAPTURE_EVERY_MS + BACKLOG_FOR_S * 1000);
      const stalled = entry(
        'e2e stalled',
        CAPTURE_EVERY_MS + (STALL_WINDOW_S + STALL_FOR_S) * 1000,
      );
      const resolvedAt = (r: Message['receiver']) => {
        const m = of(all, r).find((x) => /\[RESOLVED:/.test(x.headline));
        return m ? m.at - resumedAt : null;
      };
      console.log(JSON.stringify({
        event: 'alert_e2e_latency',
        capture_interval_ms: CAPTURE_EVERY_MS,
        backlog: { rule: `depth > ${BACKLOG_DEPTH} for ${BACKLOG_FOR_S} s`, ...backlog },
        stalled: {
          rule: `stalled over ${STALL_WINDOW_S} s for ${STALL_FOR_S} s`,
          ...stalled,
        },
        resolved: {
          from: 'consumer resumed',
          slack_ms: resolvedAt('slack'),
          email_ms: resolvedAt('email'),
        },
        longest_round_ms: firingRounds.longestMs,
        rounds_overrun_ms: firingRounds.overrunMs,
        jobs_sent: load.sent(),
        raced_by_stack_dispatcher: raced,
      }));
      const allowedMs = MAX_EXCESS_MS + firingRounds.overrunMs;
      for (const [name, e] of [['backlog', backlog], ['stalled', stalled]] as const) {
        for (const x of [e.slack_excess_ms, e.email_excess_ms]) {
          assert.ok(
            x !== null && x <= allowedMs,
            `${name}: delivered ${x} ms after capture interval + window + for (max ${allowedMs})`,
          );
        }
      }
    } finally {
      await load.stop();
    }
  });
});

Deno.test('a capture NOTIFYs queue_health_dispatch, and the local stack dispatcher delivers it', async () => {
  await withWorld(async (w) => {
    await channel(w, 'e2e-slack', 'slack', {}, { url: `${w.receivers.url}/slack/e2e-dispatch` });
    await w.sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`
        insert into queue_health.alert_rule
          (project_id, name, source, source_schema, queue_name, condition, comparator, threshold,
           for_duration, severity, group_wait)
        values (${w.project}, 'e2e depth', 'pgboss', ${w.schema}, ${w.queue}, 'depth', '>', 0,
                '0', 'critical', '0')`;
    });
    for (let i = 0; i < 3; i++) await w.pb.boss.send(w.queue, { i });
    const [{ mode }] = await w.sql<{ mode: string }[]>`
      select queue_health.dispatch_mode() ->> 'mode' as mode`;
    if (mode === 'http') {
      // A dev stack dispatches through pg_net (pgnet_delivery_e2e_test.ts covers that path).
      console.log(JSON.stringify({ event: 'alert_e2e_notify_skipped', dispatch_mode: mode }));
      return;
    }

    // Listen as the local stack does; postgres.js keeps one extra connection for it.
    const notified: string[] = [];
    const listener = await w.sql.listen('queue_health_dispatch', (payload) => {
      notified.push(payload);
    });
    try {
      const capturedAt = Date.now();
      await capture(w.sql);
      // depth 3 > 0 with for 0 and group_wait 0: firing and in the outbox in that capture.
      const deadline = Date.now() + 5_000;
      while (!notified.includes(w.project)) {
        assert.ok(
          Date.now() < deadline,
          `no NOTIFY for ${w.project}: got ${JSON.stringify(notified)}`,
        );
        await sleep(25);
      }
      const notifyMs = Date.now() - capturedAt;

      const absent = await dispatcherAbsence(w.sql);
      if (absent) {
        console.log(JSON.stringify({
          event: 'alert_e2e_dispatcher_skipped',
          reason: absent,
          checked: 'capture wrote the notification and NOTIFYed queue_health_dispatch',
          notify_ms: notifyMs,
        }));
        return;
      }
      const slack = () => w.receivers.received('slack').filter((r) => r.path === '/e2e-dispatch');
      const until = Date.now() + 15_000;
      while (slack().length === 0) {
        assert.ok(Date.now() < until, 'the stack dispatcher did not deliver within 15 s');
        await sleep(50);
      }
      // Nothing more should come: one notification, one message.
      await sleep(1_500);
      const got = slack();
      assert.equal(got.length, 1);
      const text = (got[0].body as { text: string }).text;
      assert.match(text, /^\[FIRING:1\] critical — e2e depth on /);
      assert.ok(text.includes(w.queue));
      const [{ status }] = await w.sql<{ status: string }[]>`
        select status::text as status from queue_health.notification where project_id = ${w.project}`;
      assert.equal(status, 'sent');
      console.log(JSON.stringify({
        event: 'alert_e2e_dispatcher',
        notify_ms: notifyMs,
        capture_to_slack_ms: Date.parse(got[0].received_at) - capturedAt,
      }));
    } finally {
      await listener.unlisten();
    }
  });
});

/** A schema name as a quoted identifier. */
function postgresIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
