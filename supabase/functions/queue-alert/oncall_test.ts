/**
 * The sms (Twilio) and pagerduty (Events API v2) channels through the real queue-alert handler,
 * against the real outbox (DATABASE_URL, migrations applied) and the local stand-ins of both APIs
 * (local/receivers/oncall.ts), which check requests as the real APIs document them. Each test has
 * its own project; the outbox is shared, so assertions only look at this test's rows and requests.
 */
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { type Received, type Receivers, startReceivers } from '../../../local/receivers/server.ts';
import { TWILIO_INVALID_TO } from '../../../local/receivers/oncall.ts';
import { connect, databaseUrl } from '../../../local/test/db.ts';
import { createLogger } from '../_shared/log.ts';
import { createHandler, type Deps } from './handler.ts';
import { alert, payload } from './test_fixtures.ts';

type Sql = postgres.Sql;

const ALERT_SECRET = 'queue-alert-oncall-test-secret';
const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
const AUTH_TOKEN = 'twilio-auth-token-for-tests';
const FROM = '+14155550100';
const ROUTING_KEY = 'R0123456789abcdefABCDEF012345678';

interface World {
  sql: Sql;
  r: Receivers;
  project: string;
  logs: string[];
  call(opts?: { now?: Date; deps?: Partial<Deps>; env?: Record<string, string> }): Promise<
    Record<string, unknown>
  >;
}

let counter = 0;

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const sql = connect({ max: 4, prepare: false });
  const r = await startReceivers({ twilioAuthToken: AUTH_TOKEN });
  const project = `oncall_${Date.now().toString(36)}_${++counter}`;
  const logs: string[] = [];
  try {
    await sql`insert into queue_health.project (id, name) values (${project}, 'on-call test')`;
    await sql`update queue_health.alert_rule set enabled = false where project_id = ${project}`;
    const call: World['call'] = async (opts = {}) => {
      const handler = createHandler({
        sql,
        now: opts.now ? () => opts.now! : undefined,
        random: () => 0.5,
        logger: createLogger({ fn: 'queue-alert' }, (line) => logs.push(line)),
        env: {
          SUPABASE_DB_URL: databaseUrl(),
          QUEUE_ALERT_SECRET: ALERT_SECRET,
          TWILIO_API_BASE_URL: `${r.url}/twilio`,
          PAGERDUTY_EVENTS_URL: `${r.url}/pagerduty/v2/enqueue`,
          QUEUE_ALERT_SMS_INTERVAL_MS: '0',
          QUEUE_ALERT_PAGERDUTY_INTERVAL_MS: '0',
          QUEUE_ALERT_TIMEOUT_MS: '3000',
          ...opts.env,
        },
        ...opts.deps,
      });
      const res = await handler(
        new Request('http://127.0.0.1:54321/functions/v1/queue-alert', {
          method: 'POST',
          headers: { 'x-queue-health-secret': ALERT_SECRET },
          body: JSON.stringify({ evaluate: false }),
        }),
      );
      const body = await res.json();
      assert.equal(res.status, 200, JSON.stringify(body));
      return body;
    };
    await fn({ sql, r, project, logs, call });
  } finally {
    await sql`delete from queue_health.project where id = ${project}`.catch(() => {});
    await r.stop();
    await sql.end({ timeout: 5 });
  }
}

async function channel(
  w: World,
  kind: 'sms' | 'pagerduty',
  config: Record<string, unknown>,
  secret: Record<string, unknown>,
): Promise<string> {
  return await w.sql.begin(async (tx) => {
    await tx`set local role service_role`;
    const [{ id }] = await tx`
      insert into queue_health.channel (project_id, name, kind, config)
      values (${w.project}, ${`${kind}-${crypto.randomUUID().slice(0, 8)}`}, ${kind},
              ${tx.json(config as postgres.JSONValue)})
      returning id`;
    await tx`insert into queue_health.channel_secret (channel_id, secret)
             values (${id}, ${tx.json(secret as postgres.JSONValue)})`;
    return id as string;
  });
}

const smsChannel = (w: World, to: string[]) =>
  channel(w, 'sms', { to, from: FROM }, { account_sid: ACCOUNT_SID, auth_token: AUTH_TOKEN });
const pdChannel = (w: World) => channel(w, 'pagerduty', {}, { routing_key: ROUTING_KEY });

async function notification(w: World, channelId: string, alerts = [alert()]): Promise<string> {
  const id = crypto.randomUUID();
  const p = payload(alerts, { notification_id: id, project_id: w.project });
  await w.sql`
    insert into queue_health.notification
      (id, project_id, channel_id, group_key, payload, next_attempt_at)
    values (${id}, ${w.project}, ${channelId}, ${`${w.project}/${channelId}`},
            ${w.sql.json(p as postgres.JSONValue)}, now() - interval '1 second')`;
  return id;
}

interface Row {
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  provider_message_id: string | null;
}

async function row(w: World, id: string): Promise<Row> {
  const [r] = await w.sql<Row[]>`
    select status::text, attempts, next_attempt_at, last_error, provider_message_id
      from queue_health.notification where id = ${id}`;
  return r;
}

const MESSAGES = `/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`;
// The outbox is shared: a queue-alert run here also claims other projects' due notifications
// (the demo's sms and pagerduty channels of the default project, seeded by other test files) and
// sends them to this test's receivers. Only this file's account and routing key count.
/** Twilio requests of this file's account (its test channels). */
const ours = (m: Received) => m.path.startsWith(`/2010-04-01/Accounts/${ACCOUNT_SID}/`);
/** SMS the stand-in created (accepted POSTs), as (To, Body) pairs. */
const texts = (w: World) =>
  w.r.received('twilio').filter(ours).map((m: Received) => m.body as Record<string, string>);
const posts = (w: World) => w.r.requests('twilio').filter((m) => ours(m) && m.method === 'POST');
const lists = (w: World) => w.r.requests('twilio').filter((m) => ours(m) && m.method === 'GET');
/** PagerDuty requests with this file's routing key. */
const pdRequests = (w: World) =>
  w.r.requests('pagerduty').filter((m) =>
    (m.body as { routing_key?: unknown } | null)?.routing_key === ROUTING_KEY
  );
const events = (w: World) =>
  w.r.received('pagerduty')
    .filter((m) => (m.body as { routing_key?: unknown } | null)?.routing_key === ROUTING_KEY)
    .map((m) => m.body as Record<string, unknown>);
const secs = (d: Date) => d.getTime() / 1000;

/** A database handle whose complete_notification() fails: the worker dies after sending. */
function dyingAtComplete(sql: Sql): Sql {
  return ((strings: TemplateStringsArray, ...values: unknown[]) => {
    if (strings.join('').includes('complete_notification')) {
      return Promise.reject(new Error('worker killed'));
    }
    return (sql as unknown as (s: TemplateStringsArray, ...v: unknown[]) => unknown)(
      strings,
      ...values,
    );
  }) as unknown as Sql;
}

// ------------------------------------------------------------------------------------------ SMS

Deno.test('sms: a firing alert is one Twilio message per recipient, basic auth, form fields', async () => {
  await withWorld(async (w) => {
    const to = ['+14155550123', '+14155550124'];
    const ch = await smsChannel(w, to);
    const id = await notification(w, ch, [alert({ value: null, value_text: 'never' })]);
    await w.call();

    const got = posts(w);
    assert.equal(got.length, 2);
    for (const m of got) {
      assert.equal(m.path, MESSAGES);
      assert.equal(m.status, 201);
      assert.equal(m.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.equal(m.headers.authorization, `Basic ${btoa(`${ACCOUNT_SID}:${AUTH_TOKEN}`)}`);
    }
    assert.deepEqual(texts(w).map((t) => t.To), to);
    const ref = id.replaceAll('-', '').slice(0, 8);
    for (const t of texts(w)) {
      assert.equal(t.From, FROM);
      assert.equal(
        t.Body,
        `FIRING critical (${w.project}): queue backlog on emails = never ` +
          `https://dash.example.com/acme Ref ${ref}`,
      );
    }
    assert.equal(lists(w).length, 0, 'a first attempt does not look for earlier ones');
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.provider_message_id, got.map((m) => m.id).join(','));
    assert.match(r.provider_message_id ?? '', /^SM[0-9a-f]{32},SM[0-9a-f]{32}$/);
  });
});

Deno.test('sms: a resolved notification texts RESOLVED', async () => {
  await withWorld(async (w) => {
    const ch = await smsChannel(w, ['+14155550123']);
    await notification(w, ch, [alert({ state: 'resolved' })]);
    await w.call();
    assert.match(texts(w)[0].Body, /^RESOLVED \(oncall_[^)]+\): queue backlog on emails https/);
  });
});

Deno.test('sms: 429 with Retry-After waits that long, then sends without a duplicate', async () => {
  await withWorld(async (w) => {
    const ch = await smsChannel(w, ['+14155550123']);
    const id = await notification(w, ch);
    w.r.script({
      route: 'twilio',
      method: 'POST',
      path: MESSAGES,
      status: 429,
      headers: { 'retry-after': '20' },
      body: {
        code: 20429,
        message: 'Too Many Requests',
        more_info: 'https://www.twilio.com/docs/errors/20429',
        status: 429,
      },
    });
    const t0 = new Date();
    await w.call({ now: t0 });
    let r = await row(w, id);
    assert.equal(r.status, 'failed');
    assert.ok(Math.abs(secs(r.next_attempt_at) - (secs(t0) + 20)) < 1, `${r.next_attempt_at}`);
    assert.equal(r.last_error, 'twilio 429 20429: Too Many Requests');

    await w.call({ now: new Date(t0.getTime() + 19_000) });
    assert.equal(posts(w).length, 1, 'not retried before Retry-After');

    await w.call({ now: new Date(t0.getTime() + 21_000) });
    r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.attempts, 2);
    assert.equal(lists(w).length, 1, 'the retry first asked Twilio what was sent');
    assert.equal(texts(w).length, 1);
  });
});

Deno.test('sms: a 5xx is retried with backoff; a partial send never texts a number twice', async () => {
  await withWorld(async (w) => {
    const to = ['+14155550123', '+14155550124', '+14155550125'];
    const ch = await smsChannel(w, to);
    const id = await notification(w, ch);
    // The first recipient gets it, the second meets a 503: the round stops there.
    w.r.script({
      route: 'twilio',
      method: 'POST',
      path: MESSAGES,
      match: `To=${encodeURIComponent(to[1])}`,
      status: 503,
      body: 'Service Unavailable',
    });
    const t0 = new Date();
    await w.call({ now: t0 });
    let r = await row(w, id);
    assert.equal(r.status, 'failed');
    assert.equal(r.last_error, 'twilio 503: Service Unavailable (sent to 1 of 3)');
    // attempt 1, random 0.5: half of the 30 s ceiling
    assert.ok(Math.abs(secs(r.next_attempt_at) - (secs(t0) + 15)) < 1, `${r.next_attempt_at}`);
    assert.equal(posts(w).length, 2);
    assert.deepEqual(texts(w).map((t) => t.To), [to[0]]);
    const firstSid = posts(w)[0].id;

    await w.call({ now: new Date(t0.getTime() + 16_000) });
    r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.deepEqual(
      texts(w).map((t) => t.To),
      to,
      'each number once: the first is not texted again',
    );
    assert.equal(posts(w).length, 4, 'the retry posted only the two still owed');
    assert.equal(lists(w).length, 3, 'one look per recipient');
    assert.equal(r.provider_message_id?.split(',')[0], firstSid);
  });
});

Deno.test('sms: an invalid number is dead naming Twilio code 21211; the others still get it', async () => {
  await withWorld(async (w) => {
    const ch = await smsChannel(w, [TWILIO_INVALID_TO, '+14155550124']);
    const id = await notification(w, ch);
    await w.call();
    const r = await row(w, id);
    assert.equal(r.status, 'dead');
    assert.equal(
      r.last_error,
      `${TWILIO_INVALID_TO}: twilio 400 21211: Invalid 'To' Phone Number: ${TWILIO_INVALID_TO} ` +
        '(sent to 1 of 2)',
    );
    assert.deepEqual(texts(w).map((t) => t.To), ['+14155550124']);
  });
});

Deno.test('sms: a wrong auth token is dead at once with 20003, no secret in last_error', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'sms', { to: ['+14155550123', '+14155550124'], from: FROM }, {
      account_sid: ACCOUNT_SID,
      auth_token: 'not-the-right-auth-token',
    });
    const id = await notification(w, ch);
    await w.call();
    const r = await row(w, id);
    assert.equal(r.status, 'dead');
    assert.equal(r.last_error, 'twilio 401 20003: Authenticate');
    assert.equal(posts(w).length, 1, 'an account error stops the round');
    assert.ok(!w.logs.join('\n').includes('not-the-right-auth-token'));
  });
});

Deno.test('sms: a worker killed between claim and send: sent once after the lease', async () => {
  await withWorld(async (w) => {
    const ch = await smsChannel(w, ['+14155550123', '+14155550124']);
    const id = await notification(w, ch);
    const t0 = new Date();
    const claimed = await w.sql`
      select id from queue_health.claim_notifications(1000, interval '2 minutes', ${t0}::timestamptz)`;
    assert.ok(claimed.some((c) => c.id === id));
    await w.call({ now: new Date(t0.getTime() + 60_000) });
    assert.equal(posts(w).length, 0, 'a live lease is respected');
    await w.call({ now: new Date(t0.getTime() + 121_000) });
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.attempts, 2);
    assert.equal(lists(w).length, 2, 'the second claim looked for earlier messages first');
    assert.equal(texts(w).length, 2, 'one message per recipient');
  });
});

Deno.test('sms: a worker killed between send and mark: the retry finds the Ref, no duplicate', async () => {
  await withWorld(async (w) => {
    const to = ['+14155550123', '+14155550124'];
    const ch = await smsChannel(w, to);
    const id = await notification(w, ch);
    const t0 = new Date();
    const first = await w.call({ now: t0, deps: { sql: dyingAtComplete(w.sql) } });
    assert.equal(first.errors, 1);
    assert.equal(texts(w).length, 2, 'the messages went out');
    assert.equal((await row(w, id)).status, 'sending', 'but the row was never marked');
    const sent = posts(w).map((m) => m.id);

    await w.call({ now: new Date(t0.getTime() + 121_000) });
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(posts(w).length, 2, 'no second POST: Twilio already had both');
    assert.equal(r.provider_message_id, sent.join(','));
  });
});

Deno.test('sms: messages from one number are paced', async () => {
  await withWorld(async (w) => {
    const ch = await smsChannel(w, ['+14155550123', '+14155550124', '+14155550125']);
    await notification(w, ch);
    await w.call({ env: { QUEUE_ALERT_SMS_INTERVAL_MS: '400' } });
    const at = posts(w).map((m) => Date.parse(m.received_at));
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++) {
      assert.ok(at[i] - at[i - 1] >= 350, `gap ${at[i] - at[i - 1]} ms`);
    }
  });
});

// ------------------------------------------------------------------------------------ PagerDuty

Deno.test('pagerduty: a firing alert is one trigger with the group key and the values', async () => {
  await withWorld(async (w) => {
    const ch = await pdChannel(w);
    const id = await notification(w, ch, [alert(), alert({ queue: 'billing', value: 90 })]);
    await w.call();
    const [e] = events(w);
    assert.equal(events(w).length, 1);
    assert.equal(e.routing_key, ROUTING_KEY);
    assert.equal(e.event_action, 'trigger');
    assert.equal(e.dedup_key, `${w.project}/${ch}`);
    const p = e.payload as Record<string, unknown>;
    assert.equal(p.severity, 'critical');
    assert.equal(p.source, `queue-health:${w.project}`);
    assert.equal(p.component, 'emails');
    assert.match(String(p.summary), /^\[oncall_[^\]]+\] emails: oldest ready job is 120 s old/);
    const d = p.custom_details as { alerts: { queue: string; value: number }[] };
    assert.deepEqual(d.alerts.map((a) => [a.queue, a.value]), [['emails', 120], ['billing', 90]]);
    assert.deepEqual(e.links, [
      { href: 'https://dash.example.com/acme', text: 'Queue Health dashboard' },
      { href: 'https://runbooks.example.com/queue-backlog', text: 'Runbook' },
    ]);
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.provider_message_id, `${w.project}/${ch}`);
    assert.equal(pdRequests(w)[0].status, 202);
  });
});

Deno.test('pagerduty: resolve carries the same dedup_key and closes the alert', async () => {
  await withWorld(async (w) => {
    const ch = await pdChannel(w);
    await notification(w, ch);
    await w.call();
    await notification(w, ch, [alert({ state: 'resolved' })]);
    await w.call();
    assert.deepEqual(events(w).map((e) => [e.event_action, e.dedup_key]), [
      ['trigger', `${w.project}/${ch}`],
      ['resolve', `${w.project}/${ch}`],
    ]);
    const a = w.r.oncall.pagerDutyAlerts.get(`${ROUTING_KEY}/${w.project}/${ch}`);
    assert.deepEqual(a, { status: 'resolved', triggers: 1, opened: 1 });
  });
});

Deno.test('pagerduty: 429 with Retry-After is retried after it; a 5xx with backoff', async () => {
  await withWorld(async (w) => {
    const ch = await pdChannel(w);
    const id = await notification(w, ch);
    w.r.script({
      route: 'pagerduty',
      match: ROUTING_KEY,
      status: 429,
      headers: { 'retry-after': '12' },
      body: '',
    });
    const t0 = new Date();
    await w.call({ now: t0 });
    let r = await row(w, id);
    assert.equal(r.status, 'failed');
    assert.ok(Math.abs(secs(r.next_attempt_at) - (secs(t0) + 12)) < 1, `${r.next_attempt_at}`);
    assert.match(r.last_error ?? '', /^pagerduty 429/);

    w.r.script({ route: 'pagerduty', match: ROUTING_KEY, status: 500, body: 'internal error' });
    await w.call({ now: new Date(t0.getTime() + 13_000) });
    r = await row(w, id);
    assert.equal(r.status, 'failed');
    assert.equal(r.attempts, 2);
    assert.equal(r.last_error, 'pagerduty 500 internal error');
    // attempt 2, random 0.5: half of the 60 s ceiling
    assert.ok(
      Math.abs(secs(r.next_attempt_at) - (secs(t0) + 13 + 30)) < 1,
      `${r.next_attempt_at}`,
    );

    await w.call({ now: new Date(t0.getTime() + 44_000) });
    assert.equal((await row(w, id)).status, 'sent');
    assert.equal(events(w).length, 1);
  });
});

Deno.test("pagerduty: a 400 is dead with PagerDuty's errors in last_error", async () => {
  await withWorld(async (w) => {
    const ch = await pdChannel(w);
    const id = await notification(w, ch);
    w.r.script({
      route: 'pagerduty',
      match: ROUTING_KEY,
      status: 400,
      body: {
        status: 'invalid event',
        message: 'Event object is invalid',
        errors: ["'payload.source' is missing or blank"],
      },
    });
    await w.call();
    const r = await row(w, id);
    assert.equal(r.status, 'dead');
    assert.equal(
      r.last_error,
      "pagerduty 400 invalid event: Event object is invalid: 'payload.source' is missing or blank",
    );
    await w.call({ now: new Date(Date.now() + 3_600_000) });
    assert.equal(pdRequests(w).length, 1, 'a dead row is not tried again');
  });
});

Deno.test('pagerduty: crashes before or after sending open one PagerDuty alert, not two', async () => {
  await withWorld(async (w) => {
    const ch = await pdChannel(w);
    const before = await notification(w, ch);
    const t0 = new Date();
    await w
      .sql`select id from queue_health.claim_notifications(1000, interval '2 minutes', ${t0}::timestamptz)`;
    await w.call({ now: new Date(t0.getTime() + 121_000) });
    assert.equal((await row(w, before)).status, 'sent');
    assert.equal(events(w).length, 1);

    const after = await notification(w, ch, [alert({ value: 130 })]);
    const t1 = new Date(t0.getTime() + 200_000);
    const first = await w.call({ now: t1, deps: { sql: dyingAtComplete(w.sql) } });
    assert.equal(first.errors, 1);
    await w.call({ now: new Date(t1.getTime() + 121_000) });
    assert.equal((await row(w, after)).status, 'sent');
    // Three triggers reached PagerDuty (one per claim that sent), all with the group's key:
    // PagerDuty folds them into the one open alert.
    assert.deepEqual(
      [...new Set(events(w).map((e) => e.dedup_key))],
      [`${w.project}/${ch}`],
    );
    assert.equal(events(w).length, 3);
    assert.deepEqual(w.r.oncall.pagerDutyAlerts.get(`${ROUTING_KEY}/${w.project}/${ch}`), {
      status: 'triggered',
      triggers: 3,
      opened: 1,
    });
  });
});
