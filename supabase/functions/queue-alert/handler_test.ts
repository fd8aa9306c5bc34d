/**
 * queue-alert against the real outbox (DATABASE_URL, migrations applied) and real HTTP receivers
 * (local/receivers) on a free port. Each test uses its own project, so rows of other tests are
 * never asserted on.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SignJWT } from 'jose';
import postgres from 'postgres';
import { type Received, type Receivers, startReceivers } from '../../../local/receivers/server.ts';
import { connect, databaseUrl } from '../../../local/test/db.ts';
import { createLogger } from '../_shared/log.ts';
import { createHandler, type Deps, MAX_BUDGET_MS } from './handler.ts';
import { alert, loopbackListener, payload } from './test_fixtures.ts';

const JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';
const ALERT_SECRET = 'queue-alert-test-secret';
const RESEND_KEY = 're_test_key';
const SIGNING_SECRET = 'whsec_dGVzdC1zaWduaW5nLXNlY3JldC0xMjM0NQ==';
const SLACK_TOKEN = 'XyZsecretSlackToken';

const jwt = (role: string) =>
  new SignJWT({ role, iss: 'supabase-demo' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .sign(new TextEncoder().encode(JWT_SECRET));
const SERVICE_ROLE_KEY = await jwt('service_role');

type Sql = postgres.Sql;

interface World {
  sql: Sql;
  r: Receivers;
  project: string;
  logs: string[];
  /** Runs the handler once (service role unless `headers` say otherwise). */
  call(
    opts?: {
      now?: Date;
      headers?: Record<string, string>;
      body?: unknown;
      deps?: Partial<Deps>;
      env?: Record<string, string>;
      query?: string;
    },
  ): Promise<{ status: number; body: Record<string, unknown> }>;
}

let counter = 0;

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const sql = connect({ max: 4, prepare: false });
  const r = await startReceivers({ resendApiKey: RESEND_KEY });
  const project = `qa_test_${Date.now().toString(36)}_${++counter}`;
  const logs: string[] = [];
  try {
    await sql`insert into queue_health.project (id, name) values (${project}, 'queue-alert test')`;
    // Default rules would route to our channels: this file tests delivery, not rules.
    await sql`update queue_health.alert_rule set enabled = false where project_id = ${project}`;
    const call: World['call'] = async (opts = {}) => {
      const handler = createHandler({
        sql,
        now: opts.now ? () => opts.now! : undefined,
        random: () => 0.5,
        logger: createLogger({ fn: 'queue-alert' }, (line) => logs.push(line)),
        env: {
          SUPABASE_DB_URL: databaseUrl(),
          SUPABASE_SERVICE_ROLE_KEY: SERVICE_ROLE_KEY,
          SUPABASE_JWT_SECRET: JWT_SECRET,
          QUEUE_ALERT_SECRET: ALERT_SECRET,
          RESEND_API_KEY: RESEND_KEY,
          RESEND_BASE_URL: `${r.url}/resend`,
          RESEND_FROM: 'Queue Health <alerts@example.com>',
          QUEUE_ALERT_SLACK_INTERVAL_MS: '0',
          QUEUE_ALERT_RESEND_INTERVAL_MS: '0',
          // The receivers listen on loopback over http.
          QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
          QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
          ...opts.env,
        },
        ...opts.deps,
      });
      const res = await handler(
        new Request(`http://127.0.0.1:54321/functions/v1/queue-alert${opts.query ?? ''}`, {
          method: 'POST',
          headers: opts.headers ?? { authorization: `Bearer ${SERVICE_ROLE_KEY}` },
          body: JSON.stringify(opts.body ?? { evaluate: false }),
        }),
      );
      return { status: res.status, body: await res.json() };
    };
    await fn({ sql, r, project, logs, call });
  } finally {
    await sql`delete from queue_health.project where id = ${project}`.catch(() => {});
    await r.stop();
    await sql.end({ timeout: 5 });
  }
}

/** Creates a channel and its secret as the service role; returns the channel id. */
async function channel(
  w: World,
  kind: 'email' | 'slack' | 'webhook',
  config: Record<string, unknown>,
  secret: Record<string, unknown> | null,
): Promise<string> {
  return await w.sql.begin(async (tx) => {
    await tx`set local role service_role`;
    const [{ id }] = await tx`
      insert into queue_health.channel (project_id, name, kind, config)
      values (${w.project}, ${`${kind}-${crypto.randomUUID().slice(0, 8)}`}, ${kind}, ${
      tx.json(config as postgres.JSONValue)
    })
      returning id`;
    if (secret) {
      await tx`insert into queue_health.channel_secret (channel_id, secret)
               values (${id}, ${tx.json(secret as postgres.JSONValue)})`;
    }
    return id as string;
  });
}

/** Writes a due notification (as the service role) whose payload has the given alerts. */
async function notification(
  w: World,
  channelId: string,
  alerts = [alert()],
  extra: { max_attempts?: number } = {},
): Promise<string> {
  const id = crypto.randomUUID();
  const p = payload(alerts, { notification_id: id, project_id: w.project });
  await w.sql.begin(async (tx) => {
    await tx`set local role service_role`;
    await tx`
      insert into queue_health.notification
        (id, project_id, channel_id, group_key, payload, next_attempt_at, max_attempts)
      values (${id}, ${w.project}, ${channelId}, ${`${w.project}/${channelId}`},
              ${tx.json(p as postgres.JSONValue)}, now() - interval '1 second',
              ${extra.max_attempts ?? 8})`;
  });
  return id;
}

interface Row {
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  provider_message_id: string | null;
  sent_at: Date | null;
}

async function row(w: World, id: string): Promise<Row> {
  const [r] = await w.sql<Row[]>`
    select status::text, attempts, next_attempt_at, last_error, provider_message_id, sent_at
      from queue_health.notification where id = ${id}`;
  return r;
}

function verifySignature(secret: string, m: Received): boolean {
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice(6), 'base64')
    : Buffer.from(secret);
  const expected = createHmac('sha256', key)
    .update(`${m.headers['webhook-id']}.${m.headers['webhook-timestamp']}.${m.raw}`)
    .digest('base64');
  return m.headers['webhook-signature'] === `v1,${expected}`;
}

const deliveries = (logs: string[]) =>
  logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'delivery');

const secs = (d: Date) => d.getTime() / 1000;

Deno.test('an email is sent once through the resend SDK and the row is marked sent with its id', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'email', { to: ['oncall@example.com'] }, null);
    const id = await notification(w, ch, [alert({ queue: 'emails' }), alert({ queue: 'billing' })]);

    const res = await w.call();
    assert.equal(res.status, 200);
    assert.ok((res.body.sent as number) >= 1);

    const emails = w.r.received('resend');
    assert.equal(emails.length, 1);
    const email = emails[0];
    assert.equal(email.headers['idempotency-key'], id);
    assert.equal(email.headers['authorization'], `Bearer ${RESEND_KEY}`);
    const body = email.body as Record<string, unknown>;
    assert.deepEqual(body.to, ['oncall@example.com']);
    assert.equal(body.from, 'Queue Health <alerts@example.com>');
    assert.equal(body.subject, `[FIRING:2] critical — queue backlog in project ${w.project}`);
    assert.match(String(body.html), /<table/);
    assert.match(String(body.text), /billing/);

    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.attempts, 1);
    assert.equal(r.provider_message_id, email.id);

    const [line] = deliveries(w.logs).filter((l) => l.notification_id === id);
    assert.equal(line.status, 'sent');
    assert.equal(line.kind, 'email');
    assert.equal(line.http_status, 200);
    assert.equal(line.attempt, 1);
    assert.equal(typeof line.duration_ms, 'number');
    assert.ok(!w.logs.join('\n').includes(RESEND_KEY), 'the API key is never logged');
  });
});

Deno.test('Slack gets Block Kit with a text fallback; a webhook gets a signed versioned body', async () => {
  await withWorld(async (w) => {
    const slackUrl = `${w.r.url}/slack/services/T0/B0/${SLACK_TOKEN}`;
    const slack = await channel(w, 'slack', {}, { url: slackUrl });
    const hook = await channel(w, 'webhook', { url: `${w.r.url}/webhook/ops` }, {
      signing_secret: SIGNING_SECRET,
    });
    const sid = await notification(w, slack, [alert({ state: 'resolved' })]);
    const wid = await notification(w, hook);

    const res = await w.call();
    assert.equal(res.status, 200);

    const [msg] = w.r.received('slack');
    assert.equal(w.r.received('slack').length, 1);
    const sbody = msg.body as { text: string; blocks: { type: string }[] };
    assert.match(sbody.text, /^\[RESOLVED:1\]/);
    assert.equal(sbody.blocks[0].type, 'header');
    assert.equal((await row(w, sid)).status, 'sent');

    const [got] = w.r.received('webhook');
    assert.equal(w.r.received('webhook').length, 1);
    assert.equal(got.headers['webhook-id'], wid);
    assert.ok(Math.abs(Number(got.headers['webhook-timestamp']) - Date.now() / 1000) < 60);
    assert.ok(verifySignature(SIGNING_SECRET, got), 'signature verifies');
    const wbody = got.body as Record<string, unknown>;
    assert.equal(wbody.version, '1');
    assert.equal(wbody.type, 'queue_health.alert');
    assert.equal(wbody.id, wid);
    assert.equal(wbody.status, 'firing');
    const wr = await row(w, wid);
    assert.equal(wr.status, 'sent');
    assert.equal(wr.provider_message_id, got.id, "the receiver's x-request-id is kept");

    const all = w.logs.join('\n');
    assert.ok(!all.includes(SLACK_TOKEN), 'the Slack URL secret is never logged');
    assert.ok(!all.includes('dGVzdC1zaWduaW5n'), 'the signing secret is never logged');
  });
});

Deno.test('429 with Retry-After: failed until then, sent on the first call after it', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/x` });
    const id = await notification(w, ch);
    w.r.script({
      route: 'slack',
      status: 429,
      headers: { 'retry-after': '30' },
      body: 'rate_limited',
    });

    const t0 = new Date();
    await w.call({ now: t0 });
    let r = await row(w, id);
    assert.equal(r.status, 'failed');
    assert.equal(r.attempts, 1);
    assert.ok(Math.abs(secs(r.next_attempt_at) - (secs(t0) + 30)) < 1, `${r.next_attempt_at}`);
    assert.match(r.last_error ?? '', /429 rate_limited/);
    const [line] = deliveries(w.logs).filter((l) => l.notification_id === id);
    assert.equal(line.status, 'failed');
    assert.equal(line.http_status, 429);
    assert.equal(line.next_attempt_at, r.next_attempt_at.toISOString());

    await w.call({ now: new Date(t0.getTime() + 29_000) });
    assert.equal((await row(w, id)).status, 'failed', 'not retried before Retry-After');
    assert.equal(w.r.received('slack').length, 0);

    await w.call({ now: new Date(t0.getTime() + 31_000) });
    r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.attempts, 2);
    assert.equal(w.r.received('slack').length, 1);
    assert.equal(w.r.requests('slack').length, 2);
  });
});

Deno.test('500 schedules a jittered backoff retry (base 30 s), then the row is sent', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'webhook', { url: `${w.r.url}/webhook/x` }, {
      signing_secret: SIGNING_SECRET,
    });
    const id = await notification(w, ch);
    w.r.script({ route: 'webhook', status: 500, body: 'boom' });
    const t0 = new Date();
    await w.call({ now: t0 });
    const r = await row(w, id);
    assert.equal(r.status, 'failed');
    // attempt 1, random 0.5: half of the 30 s ceiling
    assert.ok(Math.abs(secs(r.next_attempt_at) - (secs(t0) + 15)) < 1, `${r.next_attempt_at}`);
    await w.call({ now: new Date(t0.getTime() + 16_000) });
    assert.equal((await row(w, id)).status, 'sent');
    const got = w.r.received('webhook');
    assert.equal(got.length, 1);
    const ids = w.r.requests('webhook').map((m) => m.headers['webhook-id']);
    assert.deepEqual(ids, [id, id], 'a retry keeps the delivery id');
  });
});

Deno.test('Slack 404 no_service is dead at once, never retried, and shows in channel_health', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/gone` });
    const id = await notification(w, ch);
    w.r.script({ route: 'slack', status: 404, body: 'no_service' });
    const res = await w.call();
    assert.ok((res.body.dead as number) >= 1);
    const r = await row(w, id);
    assert.equal(r.status, 'dead');
    assert.equal(r.attempts, 1);
    assert.match(r.last_error ?? '', /404 no_service/);

    await w.call({ now: new Date(Date.now() + 3_600_000) });
    assert.equal(w.r.requests('slack').length, 1, 'a dead row is not tried again');

    const [health] = await w.sql`
      select last_success_at, last_error, dead::int, pending::int
        from queue_health.channel_health where channel_id = ${ch}`;
    assert.equal(health.dead, 1);
    assert.equal(health.pending, 0);
    assert.equal(health.last_success_at, null);
    assert.match(health.last_error, /no_service/);
    assert.ok(!String(health.last_error).includes('/slack/T/B/gone'));
  });
});

Deno.test('a Resend validation error (422) is dead; a Resend 500 is retried', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'email', { to: ['a@example.com'] }, null);
    const bad = await notification(w, ch);
    w.r.script({
      route: 'resend',
      status: 422,
      body: { statusCode: 422, name: 'validation_error', message: 'Invalid `to` field.' },
    });
    await w.call();
    const r = await row(w, bad);
    assert.equal(r.status, 'dead');
    assert.match(r.last_error ?? '', /resend 422 validation_error/);

    const flaky = await notification(w, ch, [alert({ queue: 'other' })]);
    w.r.script({
      route: 'resend',
      status: 500,
      body: { statusCode: 500, name: 'internal_server_error', message: 'oops' },
    });
    await w.call();
    assert.equal((await row(w, flaky)).status, 'failed');
  });
});

Deno.test('after max_attempts a retryable failure makes the row dead', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/x` });
    const id = await notification(w, ch, [alert()], { max_attempts: 2 });
    w.r.script({ route: 'slack', status: 503, body: 'down', times: 2 });
    const t0 = Date.now();
    await w.call({ now: new Date(t0) });
    assert.equal((await row(w, id)).status, 'failed');
    await w.call({ now: new Date(t0 + 3_600_000) });
    const r = await row(w, id);
    assert.equal(r.status, 'dead');
    assert.equal(r.attempts, 2);
  });
});

Deno.test('a network error or a timeout is retried and logs no URL secret', async () => {
  await withWorld(async (w) => {
    const closed = await channel(w, 'slack', {}, {
      url: `http://127.0.0.1:9/services/T/B/${SLACK_TOKEN}`,
    });
    const slow = await channel(w, 'webhook', { url: `${w.r.url}/webhook/slow` }, {
      signing_secret: SIGNING_SECRET,
    });
    const a = await notification(w, closed);
    const b = await notification(w, slow);
    w.r.script({ route: 'webhook', status: 200, delay_ms: 1_500 });
    await w.call({ env: { QUEUE_ALERT_TIMEOUT_MS: '300' } });
    const ra = await row(w, a);
    const rb = await row(w, b);
    assert.equal(ra.status, 'failed');
    assert.equal(rb.status, 'failed');
    assert.match(rb.last_error ?? '', /timeout/);
    assert.ok(!(ra.last_error ?? '').includes(SLACK_TOKEN), ra.last_error ?? '');
    assert.ok(!w.logs.join('\n').includes(SLACK_TOKEN));
  });
});

Deno.test('a worker killed between claim and send: the row comes back after its lease and is sent', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'email', { to: ['a@example.com'] }, null);
    const id = await notification(w, ch);
    const t0 = new Date();
    // The "worker" claims and dies; claim_notifications orders by due time, so include ours.
    const claimed = await w.sql`
      select id from queue_health.claim_notifications(1000, interval '2 minutes', ${t0}::timestamptz)`;
    assert.ok(claimed.some((c) => c.id === id));
    assert.equal((await row(w, id)).status, 'sending');

    await w.call({ now: new Date(t0.getTime() + 60_000) });
    assert.equal(w.r.requests('resend').length, 0, 'a live lease is respected');

    await w.call({ now: new Date(t0.getTime() + 121_000) });
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    assert.equal(r.attempts, 2);
    assert.equal(w.r.received('resend').length, 1);
  });
});

Deno.test('a worker killed between send and mark: the retry reuses the Idempotency-Key, one email', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'email', { to: ['a@example.com'] }, null);
    const id = await notification(w, ch);
    // A database handle that dies when the worker tries to mark the row sent.
    const dying = ((strings: TemplateStringsArray, ...values: unknown[]) => {
      if (strings.join('').includes('complete_notification')) {
        return Promise.reject(new Error('worker killed'));
      }
      return (w.sql as unknown as (s: TemplateStringsArray, ...v: unknown[]) => unknown)(
        strings,
        ...values,
      );
    }) as unknown as Sql;
    const t0 = new Date();
    const first = await w.call({ now: t0, deps: { sql: dying } });
    assert.equal(first.body.errors, 1);
    assert.equal(w.r.received('resend').length, 1, 'the email went out');
    assert.equal((await row(w, id)).status, 'sending', 'but the row was never marked');

    await w.call({ now: new Date(t0.getTime() + 121_000) });
    const r = await row(w, id);
    assert.equal(r.status, 'sent');
    const requests = w.r.requests('resend');
    assert.equal(requests.length, 2, 'sent twice (at least once)...');
    assert.deepEqual(requests.map((q) => q.headers['idempotency-key']), [id, id]);
    assert.equal(w.r.received('resend').length, 1, '...recorded once (effectively once)');
    assert.equal(r.provider_message_id, w.r.received('resend')[0].id);
  });
});

Deno.test('two invocations at once send each row exactly once', async () => {
  await withWorld(async (w) => {
    const hook = await channel(w, 'webhook', { url: `${w.r.url}/webhook/c` }, {
      signing_secret: SIGNING_SECRET,
    });
    const slack = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/c` });
    const ids: string[] = [];
    for (let i = 0; i < 12; i++) ids.push(await notification(w, hook, [alert({ queue: `w${i}` })]));
    for (let i = 0; i < 6; i++) ids.push(await notification(w, slack, [alert({ queue: `s${i}` })]));

    const body = { evaluate: false, limit: 3 };
    const [a, b] = await Promise.all([w.call({ body }), w.call({ body })]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);

    const hookIds = w.r.requests('webhook').map((m) => m.headers['webhook-id']);
    assert.equal(hookIds.length, 12);
    assert.equal(new Set(hookIds).size, 12);
    const slackTexts = w.r.requests('slack').map((m) => (m.body as { text: string }).text);
    assert.equal(slackTexts.length, 6);
    assert.equal(new Set(slackTexts).size, 6);
    for (const id of ids) assert.equal((await row(w, id)).status, 'sent');
    const [{ n }] = await w.sql`
      select count(*)::int as n from queue_health.notification
       where project_id = ${w.project} and attempts <> 1`;
    assert.equal(n, 0, 'no row was claimed twice');
  });
});

Deno.test('messages to one Slack webhook are paced about one per second', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/paced` });
    for (let i = 0; i < 3; i++) await notification(w, ch, [alert({ queue: `p${i}` })]);
    await w.call({ env: { QUEUE_ALERT_SLACK_INTERVAL_MS: '1000' } });
    const at = w.r.received('slack').map((m) => Date.parse(m.received_at));
    assert.equal(at.length, 3);
    for (let i = 1; i < at.length; i++) {
      assert.ok(at[i] - at[i - 1] >= 900, `gap ${at[i] - at[i - 1]} ms`);
    }
  });
});

Deno.test('a backlog for one paced Slack webhook does not hold back other channels', async () => {
  await withWorld(async (w) => {
    const slack = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/busy` });
    for (let i = 0; i < 4; i++) await notification(w, slack, [alert({ queue: `b${i}` })]);
    // Queued after the four Slack messages, which take ~3 s at one a second.
    const hook = await channel(w, 'webhook', { url: `${w.r.url}/webhook/other` }, {
      signing_secret: 'whsec-0123456789abcdef',
    });
    await notification(w, hook);
    const res = await w.call({
      env: { QUEUE_ALERT_SLACK_INTERVAL_MS: '1000', QUEUE_ALERT_BATCH_SIZE: '2' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.sent, 5);
    const slackAt = w.r.received('slack').map((m) => Date.parse(m.received_at)).sort((a, b) =>
      a - b
    );
    const [hookAt] = w.r.received('webhook').map((m) => Date.parse(m.received_at));
    assert.equal(slackAt.length, 4);
    // Claimed in the first batch with the first Slack message, not after the backlog.
    assert.ok(
      hookAt < slackAt[1],
      `webhook at +${hookAt - slackAt[0]} ms, 2nd Slack at +${slackAt[1] - slackAt[0]} ms`,
    );
  });
});

Deno.test('two overlapping invocations space their messages to one Slack webhook as one would', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/shared` });
    for (let i = 0; i < 4; i++) await notification(w, ch, [alert({ queue: `s${i}` })]);
    // Two rows each (limit 2): both invocations send at the same time, to the same webhook.
    const env = { QUEUE_ALERT_SLACK_INTERVAL_MS: '1000' };
    const [a, b] = await Promise.all([
      w.call({ env, body: { evaluate: false, limit: 2 } }),
      w.call({ env, body: { evaluate: false, limit: 2 } }),
    ]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 200);
    assert.ok((a.body.claimed as number) > 0 && (b.body.claimed as number) > 0, 'both sent some');
    const at = w.r.received('slack').map((m) => Date.parse(m.received_at)).sort((x, y) => x - y);
    assert.equal(at.length, 4);
    for (let i = 1; i < at.length; i++) {
      assert.ok(at[i] - at[i - 1] >= 900, `gap ${at[i] - at[i - 1]} ms`);
    }
    assert.ok(!w.logs.some((l) => l.includes('pacing_fallback')), 'paced through the database');
  });
});

Deno.test('callers other than the service role or the queue-alert secret get 401 and nothing moves', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/auth` });
    const id = await notification(w, ch);
    const refused: Record<string, string>[] = [
      {},
      { authorization: `Bearer ${await jwt('anon')}` },
      { authorization: `Bearer ${await jwt('authenticated')}` },
      { authorization: 'Bearer not-a-jwt' },
      { 'x-queue-health-secret': 'wrong-secret-value' },
    ];
    for (const headers of refused) {
      const res = await w.call({ headers });
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.deepEqual(res.body, { error: 'unauthorized' });
    }
    assert.equal((await row(w, id)).status, 'pending');
    assert.equal(w.r.requests('slack').length, 0);

    const bySecret = await w.call({ headers: { 'x-queue-health-secret': ALERT_SECRET } });
    assert.equal(bySecret.status, 200);
    assert.equal((await row(w, id)).status, 'sent');
    const byJwt = await w.call({
      headers: { authorization: `Bearer ${await jwt('service_role')}` },
    });
    assert.equal(byJwt.status, 200);
  });
});

Deno.test('each call evaluates alert rules first and reports the summary', async () => {
  await withWorld(async (w) => {
    const res = await w.call({ body: {} });
    assert.equal(res.status, 200);
    const evaluated = res.body.evaluated as Record<string, unknown>;
    assert.ok(
      evaluated && typeof evaluated === 'object' && !('error' in evaluated),
      JSON.stringify(evaluated),
    );
    for (const k of ['claimed', 'sent', 'failed', 'dead', 'duration_ms']) {
      assert.equal(typeof res.body[k], 'number', k);
    }
  });
});

Deno.test('bad requests: invalid body 400, other paths 404, other methods 405, bad env 500 naming it', async () => {
  await withWorld(async (w) => {
    const bad = await w.call({ body: { limit: 0 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.message, "'limit' must be between 1 and 100");
    const text = await w.call({ body: { limit: 'ten' } });
    assert.equal(text.body.message, "'limit' must be a number");
    const fraction = await w.call({ body: { limit: 1.5 } });
    assert.equal(fraction.body.message, "'limit' must be a whole number");
    const array = await w.call({ body: [1] });
    assert.equal(array.status, 400);
    assert.equal(array.body.message, 'body must be a JSON object');
    const handler = createHandler({ sql: w.sql, env: { SUPABASE_DB_URL: databaseUrl() } });
    const misconfigured = await handler(
      new Request('http://x/functions/v1/queue-alert', { method: 'POST' }),
    );
    assert.equal(misconfigured.status, 500);
    assert.match((await misconfigured.json()).message, /SUPABASE_SERVICE_ROLE_KEY/);
    const ok = createHandler({
      sql: w.sql,
      env: { SUPABASE_DB_URL: databaseUrl(), QUEUE_ALERT_SECRET: ALERT_SECRET },
    });
    const h = { 'x-queue-health-secret': ALERT_SECRET };
    const other = await ok(new Request('http://x/functions/v1/queue-alert/nope', { headers: h }));
    assert.equal(other.status, 404);
    await other.body?.cancel();
    const put = await ok(
      new Request('http://x/functions/v1/queue-alert', { method: 'PUT', headers: h }),
    );
    assert.equal(put.status, 405);
    await put.body?.cancel();
  });
});

Deno.test('end to end: a rule fires on a snapshot, Slack gets FIRING, then RESOLVED after recovery', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/e2e` });
    const queue = `${w.project}_jobs`;
    await w.sql`insert into queue_health.queue (source, source_schema, queue_name, project_id)
                values ('pgmq', 'pgmq', ${queue}, ${w.project})`;
    await w.sql.begin(async (tx) => {
      await tx`set local role service_role`;
      await tx`insert into queue_health.alert_rule
                 (project_id, name, condition, comparator, threshold, for_duration, group_wait,
                  group_interval, severity, channel_ids, runbook_url)
               values (${w.project}, 'deep <queue> & "co"', 'depth', '>', 10, '0', '0', '1 second',
                       'critical', ${[ch]}::uuid[], 'https://runbooks.example.com/{{queue}}')`;
    });
    const snapshot = (at: Date, depth: number) =>
      w.sql`insert into queue_health.metric
              (captured_at, project_id, source, source_schema, queue_name, ready, in_flight,
               delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed, failed,
               retried, dead_lettered)
            values (${at}, ${w.project}, 'pgmq', 'pgmq', ${queue}, ${depth}, 0, 0, ${depth}, false,
                    ${depth ? 12.5 : null}, 5, 0, 0, 0, 0)`;

    const t0 = new Date();
    await snapshot(t0, 50);
    const fired = await w.call({ now: t0, body: {} });
    assert.equal(fired.status, 200);
    const firing = w.r.received('slack');
    assert.equal(firing.length, 1);
    const latencyMs = Date.parse(firing[0].received_at) - t0.getTime();
    console.log(`snapshot written → Slack message received: ${latencyMs} ms`);
    const f = firing[0].body as { text: string; blocks: unknown[] };
    assert.match(f.text, /^\[FIRING:1\] critical — deep &lt;queue&gt; &amp; "co" on /);
    assert.match(
      JSON.stringify(f.blocks),
      new RegExp(`runbooks\\.example\\.com/${queue}\\|Runbook`),
    );

    const t1 = new Date(t0.getTime() + 5_000);
    await snapshot(t1, 0);
    await w.call({ now: new Date(t1.getTime() + 1_000), body: {} });
    const all = w.r.received('slack');
    assert.equal(all.length, 2);
    const resolved = all[1].body as {
      text: string;
      blocks: { type: string; text?: { text: string } }[];
    };
    assert.match(resolved.text, /^\[RESOLVED:1\] critical/);
    assert.match(resolved.blocks[0].text?.text ?? '', /RESOLVED/);
    const [{ n }] = await w.sql`select count(*)::int as n from queue_health.notification
                                 where project_id = ${w.project} and status = 'sent'`;
    assert.equal(n, 2);
  });
});

Deno.test('rows whose lease would end before their pacing turn are handed back unsent', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/slow-lane` });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await notification(w, ch, [alert({ queue: `l${i}` })]));
    const env = {
      QUEUE_ALERT_SLACK_INTERVAL_MS: '1000',
      QUEUE_ALERT_LEASE_S: '10',
      QUEUE_ALERT_TIMEOUT_MS: '2500',
    };
    // Sends may start until 10 s − 2.5 s − 5 s = 2.5 s after the claim: turns at 0, 1, 2 s.
    const first = await w.call({ env, body: { evaluate: false, limit: 5 } });
    assert.equal(w.r.received('slack').length, 3);
    assert.equal(first.body.sent, 3);
    assert.equal(first.body.claimed, 5, 'released rows are not claimed again by the same call');
    const released = [];
    for (const id of ids) {
      const r = await row(w, id);
      if (r.status !== 'sent') released.push(r);
    }
    assert.equal(released.length, 2);
    for (const r of released) {
      assert.equal(r.status, 'failed');
      assert.match(r.last_error ?? '', /not attempted/);
    }
    assert.equal(deliveries(w.logs).filter((l) => l.outcome === 'released').length, 2);
    assert.ok(Number(first.body.duration_ms) < 2_900, 'released rows do not wait for a turn');

    await w.call({ env, body: { evaluate: false, limit: 5 } });
    assert.equal(w.r.received('slack').length, 5);
    for (const id of ids) assert.equal((await row(w, id)).status, 'sent');
  });
});

/** A fetch that holds every request until `open()` is called, then passes it on. */
function gatedFetch() {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  let waiting = 0;
  const fetchFn: typeof fetch = async (input, init) => {
    waiting++;
    await gate;
    return await fetch(input, init);
  };
  return { fetch: fetchFn, open: () => open(), waiting: () => waiting };
}

Deno.test("the database's dispatch is answered 202 at once; the run finishes in the background", async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/dispatch` });
    const id = await notification(w, ch);
    const gated = gatedFetch();
    const background: Promise<unknown>[] = [];
    // The body queue_health._dispatch() sends through pg_net.
    const pending = w.call({
      body: { reason: 'dispatch', project_ids: [w.project], evaluate: false },
      deps: { fetch: gated.fetch, waitUntil: (p) => background.push(p) },
    });
    // pg_net would give up after 5 s; a response that waits for the held delivery never comes.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const res = await Promise.race([
      pending,
      new Promise<null>((r) => (timer = setTimeout(() => r(null), 3_000))),
    ]);
    clearTimeout(timer);
    if (res === null) {
      gated.open();
      await pending;
      assert.fail('the dispatch was answered only after the run');
    }
    assert.equal(res.status, 202);
    assert.deepEqual(res.body, { accepted: true });
    assert.equal(background.length, 1, 'the run was handed to waitUntil');
    // Answered while the delivery is still held: the response did not wait for the run.
    while (gated.waiting() === 0) await new Promise((r) => setTimeout(r, 10));
    assert.equal((await row(w, id)).status, 'sending');
    gated.open();
    await Promise.all(background);
    assert.equal((await row(w, id)).status, 'sent');
    assert.equal(w.r.received('slack').length, 1);
    const run = w.logs.map((l) => JSON.parse(l)).find((l) => l.event === 'run');
    assert.equal(run?.mode, 'background');
    assert.equal(run?.sent, 1);
  });
});

Deno.test('?async=1 is answered 202 too; wait: true and calls without a reason get the summary', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/modes` });
    const background: Promise<unknown>[] = [];
    const deps = { waitUntil: (p: Promise<unknown>) => background.push(p) };

    const first = await notification(w, ch);
    const queued = await w.call({ query: '?async=1', deps });
    assert.equal(queued.status, 202);
    await Promise.all(background);
    assert.equal((await row(w, first)).status, 'sent');

    const second = await notification(w, ch);
    const waited = await w.call({
      body: { reason: 'dispatch', wait: true, evaluate: false },
      deps,
    });
    assert.equal(waited.status, 200);
    assert.equal(waited.body.sent, 1);
    assert.equal((await row(w, second)).status, 'sent');

    const plain = await w.call({ body: { evaluate: false }, deps });
    assert.equal(plain.status, 200);
    assert.equal(typeof plain.body.claimed, 'number');
    assert.equal(background.length, 1, 'only the ?async=1 call ran in the background');

    const unauthorized = await w.call({
      headers: { authorization: 'Bearer nope' },
      body: { reason: 'dispatch' },
      deps,
    });
    assert.equal(unauthorized.status, 401, 'a dispatch is authorised before it is accepted');
    const invalid = await w.call({ body: { reason: 'dispatch', limit: 0 }, deps });
    assert.equal(invalid.status, 400, 'and validated');
  });
});

Deno.test('on Supabase edge-runtime the background run is handed to EdgeRuntime.waitUntil', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'email', { to: ['edge@example.com'] }, null);
    const id = await notification(w, ch);
    const handed: Promise<unknown>[] = [];
    const g = globalThis as { EdgeRuntime?: unknown };
    g.EdgeRuntime = { waitUntil: (p: Promise<unknown>) => handed.push(p) };
    try {
      const res = await w.call({ body: { reason: 'dispatch', evaluate: false } });
      assert.equal(res.status, 202);
    } finally {
      delete g.EdgeRuntime;
    }
    assert.equal(handed.length, 1);
    await Promise.all(handed);
    assert.equal((await row(w, id)).status, 'sent');
  });
});

Deno.test('QUEUE_ALERT_BUDGET_MS above 120 s is refused with a message naming it', async () => {
  await withWorld(async (w) => {
    const over = await w.call({ env: { QUEUE_ALERT_BUDGET_MS: String(MAX_BUDGET_MS + 1) } });
    assert.equal(over.status, 500);
    assert.match(String(over.body.message), /QUEUE_ALERT_BUDGET_MS/);
    assert.match(String(over.body.message), /120000/);
    const max = await w.call({ env: { QUEUE_ALERT_BUDGET_MS: String(MAX_BUDGET_MS) } });
    assert.equal(max.status, 200);
  });
});

Deno.test('with only SUPABASE_SECRET_KEYS set, every sb_secret_ key is the service role', async () => {
  await withWorld(async (w) => {
    const ch = await channel(w, 'slack', {}, { url: `${w.r.url}/slack/T/B/secretkeys` });
    const id = await notification(w, ch);
    const env = {
      SUPABASE_SERVICE_ROLE_KEY: '',
      SUPABASE_JWT_SECRET: '',
      QUEUE_ALERT_SECRET: '',
      SUPABASE_SECRET_KEYS: JSON.stringify({
        default: 'sb_secret_default_0123456789',
        ci: 'sb_secret_ci_0123456789',
      }),
    };
    for (const token of ['sb_secret_default_012345678', SERVICE_ROLE_KEY, ALERT_SECRET]) {
      const res = await w.call({ env, headers: { authorization: `Bearer ${token}` } });
      assert.equal(res.status, 401, token.slice(0, 12));
    }
    assert.equal((await row(w, id)).status, 'pending');
    const ci = await w.call({ env, headers: { authorization: 'Bearer sb_secret_ci_0123456789' } });
    assert.equal(ci.status, 200);
    assert.equal((await row(w, id)).status, 'sent');
    const byDefault = await w.call({
      env,
      headers: { authorization: 'Bearer sb_secret_default_0123456789' },
    });
    assert.equal(byDefault.status, 200);
    assert.ok(w.logs.some((l) => JSON.parse(l).caller === 'secret_key'));
  });
});

Deno.test('a webhook at a private address is dead with a generic last_error; nothing arrives', async () => {
  const v4 = loopbackListener('127.0.0.1');
  const v6 = loopbackListener('::1');
  try {
    await withWorld(async (w) => {
      const strict = { QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'false', QUEUE_ALERT_SLACK_HOSTS: '' };
      const hook = await channel(w, 'webhook', { url: `https://127.0.0.1:${v4.port}/probe` }, {
        signing_secret: SIGNING_SECRET,
      });
      const mapped = await channel(
        w,
        'webhook',
        { url: `https://[::ffff:127.0.0.1]:${v4.port}/probe` },
        { signing_secret: SIGNING_SECRET },
      );
      const slack = await channel(w, 'slack', {}, {
        url: `https://[::1]:${v6.port}/services/T/B/${SLACK_TOKEN}`,
      });
      const ids = [
        await notification(w, hook),
        await notification(w, mapped),
        await notification(w, slack),
      ];
      const res = await w.call({ env: strict });
      assert.equal(res.status, 200);
      assert.equal(res.body.dead, 3);
      assert.equal(v4.connections + v6.connections, 0, 'nothing reached the listeners');
      for (const id of ids) {
        const r = await row(w, id);
        assert.equal(r.status, 'dead');
        assert.equal(r.attempts, 1);
        assert.match(r.last_error ?? '', /^destination refused: /);
        assert.ok(!(r.last_error ?? '').includes(String(v4.port)), 'no port in last_error');
      }
      const health = await w.sql<{ last_error: string }[]>`
        select last_error from queue_health.channel_health where channel_id in (${hook}, ${mapped})`;
      assert.deepEqual(health.map((h) => h.last_error), [
        'destination refused: private address',
        'destination refused: private address',
      ]);
      // Slack: not a Slack host at all (the allow-list is empty), so that is what it says.
      assert.equal(
        (await row(w, ids[2])).last_error,
        'destination refused: not a Slack webhook host',
      );
      const refused = w.logs.map((l) => JSON.parse(l)).filter((l) =>
        l.event === 'destination_refused'
      );
      assert.ok(
        refused.some((l) =>
          l.channel_id === hook && l.host === '127.0.0.1' && l.why === 'loopback'
        ),
        "the operator's log has the host and why",
      );
      assert.ok(!w.logs.join('\n').includes(SLACK_TOKEN), 'the Slack URL is never logged');
    });
  } finally {
    await v4.close();
    await v6.close();
  }
});

Deno.test("an email is sent from the operator's address whatever from/reply_to the channel sets", async () => {
  await withWorld(async (w) => {
    // As a channel written before senders were the operator's: a from and reply_to of its own.
    const ch = await channel(w, 'email', {
      to: ['oncall@example.com'],
      from: 'IT Security <security@example.com>',
      reply_to: 'attacker@evil.example',
    }, null);
    const id = await notification(w, ch);
    assert.equal((await w.call()).status, 200);
    const [email] = w.r.received('resend');
    const body = email.body as Record<string, unknown>;
    assert.equal(body.from, 'Queue Health <alerts@example.com>', 'RESEND_FROM, not the channel');
    assert.equal(body.reply_to ?? body.replyTo, undefined, 'no reply-to');
    assert.equal((await row(w, id)).status, 'sent');
    const events = w.logs.map((l) => JSON.parse(l).event);
    assert.ok(events.includes('email_from_ignored') && events.includes('email_reply_to_ignored'));

    // A sender and reply-to the operator lists are used.
    const listed = await channel(w, 'email', {
      to: ['oncall@example.com'],
      from: 'Ops <ops@example.com>',
      reply_to: 'oncall@example.com',
    }, null);
    await notification(w, listed);
    await w.call({
      env: {
        QUEUE_ALERT_EMAIL_FROM_ALLOWED: 'ops@example.com, Ops <ops@example.com>',
        QUEUE_ALERT_EMAIL_REPLY_TO_ALLOWED: 'oncall@example.com',
      },
    });
    const second = w.r.received('resend')[1].body as Record<string, unknown>;
    assert.equal(second.from, 'Ops <ops@example.com>');
    assert.equal(second.reply_to, 'oncall@example.com');
  });
});

Deno.test('queue-alert refuses a 300 MB body with 413 after reading at most 64 KiB', async () => {
  await withWorld(async (w) => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled >= 300 * 1024 * 1024) return controller.close();
        pulled += 64 * 1024;
        controller.enqueue(new Uint8Array(64 * 1024).fill(32));
      },
    });
    const handler = createHandler({
      sql: w.sql,
      logger: createLogger({}, () => {}),
      env: { SUPABASE_DB_URL: databaseUrl(), QUEUE_ALERT_SECRET: ALERT_SECRET },
    });
    const res = await handler(
      new Request('http://x/functions/v1/queue-alert', {
        method: 'POST',
        headers: { 'x-queue-health-secret': ALERT_SECRET, 'content-length': '2' },
        body: stream,
      }),
    );
    assert.equal(res.status, 413);
    assert.match((await res.json()).message, /at most 65536 bytes/);
    assert.ok(pulled <= 192 * 1024, `read ${pulled} bytes`);
  });
});

Deno.test('with the database down queue-alert answers 503 without its address', async () => {
  const sql = postgres('postgres://postgres:postgres@127.0.0.1:1/postgres', {
    max: 1,
    connect_timeout: 2,
    prepare: false,
    onnotice: () => {},
  });
  const logs: string[] = [];
  try {
    const handler = createHandler({
      sql,
      logger: createLogger({ fn: 'queue-alert' }, (line) => logs.push(line)),
      env: {
        SUPABASE_DB_URL: 'postgres://postgres:postgres@127.0.0.1:1/postgres',
        QUEUE_ALERT_SECRET: ALERT_SECRET,
      },
    });
    const res = await handler(
      new Request('http://x/functions/v1/queue-alert', {
        method: 'POST',
        headers: { 'x-queue-health-secret': ALERT_SECRET },
        body: '{}',
      }),
    );
    assert.equal(res.status, 503);
    const text = await res.text();
    assert.deepEqual(JSON.parse(text), { error: 'database_unavailable' });
    assert.ok(!/127\.0\.0\.1|ECONNREFUSED|:1\b/.test(text), text);
    assert.match(logs.join('\n'), /ECONNREFUSED/, 'the operator still sees why');
  } finally {
    await sql.end();
  }
});
