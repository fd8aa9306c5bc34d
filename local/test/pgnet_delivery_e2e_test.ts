/**
 * Alert delivery the way a hosted project does it, and nothing else: database → net.http_post
 * (the pg_net stand-in, sent after commit by its worker) → queue-alert (its real handler, served
 * over HTTP on 127.0.0.1) → the local Slack receiver. Each test has a database of its own (the
 * Supabase stand-ins, pg_net installed by the superuser as the platform does, then the project's
 * migrations) in which no session LISTENs on queue_health_dispatch: the NOTIFY path cannot be
 * what delivered.
 * @module
 */
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { createLogger } from '../../supabase/functions/_shared/log.ts';
import { createHandler } from '../../supabase/functions/queue-alert/handler.ts';
import { type Receivers, startReceivers } from '../receivers/server.ts';
import { localKeys } from '../stack/keys.ts';
import { startPgNetWorker } from '../stack/pg_net_worker.ts';
import {
  applyProject,
  createPrivateDatabase,
  installPgNet,
  type PrivateDatabase,
} from './private_db.ts';
import { connect } from './db.ts';
import { sleep, waitFor } from './wait.ts';

const PROJECT = 'pgnet_e2e';

interface World {
  db: PrivateDatabase;
  sql: postgres.Sql;
  receivers: Receivers;
  queueAlertUrl: string;
}

/**
 * A private database with the project installed, the receivers, queue-alert served with `env`
 * (background work as the edge runtime's EdgeRuntime.waitUntil), and the pg_net worker.
 */
async function withWorld(
  env: (w: { dbUrl: string; receiversUrl: string; selfUrl: string }) => Record<string, string>,
  fn: (w: World) => Promise<void>,
): Promise<void> {
  const db = await createPrivateDatabase('qh_pgnet_e2e');
  const sql = connect({ url: db.url, max: 3 });
  const fnSql = connect({ url: db.url, max: 3, prepare: false });
  const receivers = await startReceivers();
  const tasks: Promise<unknown>[] = [];
  let server: Deno.HttpServer<Deno.NetAddr> | null = null;
  let worker: Awaited<ReturnType<typeof startPgNetWorker>> | null = null;
  try {
    await installPgNet(db); // platform setup: pg_net enabled (superuser)
    await applyProject(db);
    let handler: ((req: Request) => Promise<Response>) | null = null;
    server = Deno.serve(
      { hostname: '127.0.0.1', port: 0, onListen: () => {} },
      (req) => handler ? handler(req) : new Response('starting', { status: 503 }),
    );
    const selfUrl = `http://127.0.0.1:${server.addr.port}`;
    handler = createHandler({
      sql: fnSql,
      env: {
        // The receivers listen on loopback over http.
        QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
        QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
        ...env({ dbUrl: db.url, receiversUrl: receivers.url, selfUrl }),
      },
      waitUntil: (p) => tasks.push(p),
      logger: createLogger({ fn: 'queue-alert' }, () => {}),
    });
    worker = await startPgNetWorker(db.url);
    await fn({ db, sql, receivers, queueAlertUrl: `${selfUrl}/functions/v1/queue-alert` });
  } finally {
    await worker?.stop();
    await Promise.allSettled(tasks);
    await server?.shutdown();
    await receivers.stop();
    await fnSql.end({ timeout: 2 });
    await sql.end({ timeout: 2 });
    await db.drop();
  }
}

/** A project whose queue is 500 deep with a depth > 100 rule (fires at once) and a Slack channel. */
async function firingSetup(w: World, dispatchKey: string): Promise<void> {
  const { sql } = w;
  await sql`insert into queue_health.dispatch_settings (queue_alert_url, queue_alert_key)
            values (${w.queueAlertUrl}, ${dispatchKey})`;
  await sql`select queue_health.ensure_partitions(now() - interval '1 day', 3)`;
  await sql`insert into queue_health.project (id, name) values (${PROJECT}, 'pg_net e2e')`;
  await sql`update queue_health.alert_rule set enabled = false
             where project_id = ${PROJECT} and is_default`;
  const [{ id }] = await sql`
    insert into queue_health.channel (project_id, name, kind, config)
    values (${PROJECT}, 'ops', 'slack', '{}') returning id`;
  await sql`insert into queue_health.channel_secret (channel_id, secret)
            values (${id}, ${sql.json({ url: `${w.receivers.url}/slack/pgnet` })})`;
  await sql`
    insert into queue_health.queue
      (source, source_schema, queue_name, project_id, first_seen_at, last_seen_at)
    values ('pgmq', 'pgmq', 'jobs', ${PROJECT}, now() - interval '1 hour', now())`;
  await sql`
    insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name, group_wait)
    values (${PROJECT}, 'deep', 'depth', 100, 'jobs', '0')`;
  await sql`
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
      ready, in_flight, delayed, depth, enqueued, completed, failed, retried, dead_lettered,
      interval_s)
    select now() - m * interval '1 minute', ${PROJECT}, 'pgmq', 'pgmq', 'jobs', 500, 0, 0, 500,
           0, 0, 0, 0, 0, 60
      from generate_series(10, 0, -1) m`;
}

/** Evaluates (as capture() and pg_cron do); asserts dispatch went to pg_net. */
async function evaluate(w: World): Promise<void> {
  const [{ r }] = await w.sql<{ r: { dispatch: string; notifications: number } }[]>`
    select queue_health.evaluate_alerts() as r`;
  assert.equal(r.dispatch, 'http', `dispatch through pg_net: ${JSON.stringify(r)}`);
}

/** Asserts that no session of the database LISTENs on queue_health_dispatch. */
async function assertNoListener(w: World): Promise<void> {
  const [{ n }] = await w.sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity
     where datname = current_database() and pid <> pg_backend_pid()
       and query ilike '%listen%queue_health_dispatch%'`;
  assert.equal(n, 0, 'nothing LISTENs on queue_health_dispatch');
}

Deno.test('an alert reaches Slack through pg_net alone, with an sb_secret_ key', async () => {
  const secretKey = `sb_secret_${crypto.randomUUID().replaceAll('-', '')}`;
  const keys = await localKeys();
  await withWorld(({ dbUrl, receiversUrl, selfUrl }) => ({
    // As on a hosted project with the new API keys: no SUPABASE_JWT_SECRET.
    SUPABASE_URL: selfUrl,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_SECRET_KEYS: JSON.stringify({ default: secretKey }),
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    RESEND_API_KEY: 're_pgnet_e2e',
    RESEND_BASE_URL: `${receiversUrl}/resend`,
  }), async (w) => {
    await firingSetup(w, secretKey);
    await assertNoListener(w);
    const t0 = Date.now();
    await evaluate(w);
    const responses = () =>
      w.sql<{ status_code: number | null; content: string | null; error_msg: string | null }[]>`
        select status_code, content, error_msg from net._http_response order by created`;
    let seen: { status_code: number | null; content: string | null; error_msg: string | null }[] =
      [];
    const deadline = Date.now() + 15_000;
    while (w.receivers.received('slack').length === 0 && Date.now() < deadline) {
      seen = [...await responses()];
      if (seen.some((r) => r.status_code !== null && r.status_code !== 202)) break;
      await sleep(100);
    }
    assert.deepEqual(
      seen.filter((r) => r.status_code !== 202).map((r) => [r.status_code, r.content, r.error_msg]),
      [],
      'queue-alert accepted the sb_secret_ key (net._http_response shows what it answered)',
    );
    const [message] = w.receivers.received('slack');
    assert.ok(message, 'the alert reached the Slack receiver within 15 s');
    assert.match((message.body as { text: string }).text, /deep/);
    // queue-alert answers the database's dispatch at once (202) and delivers in the background,
    // well within pg_net's 5 s timeout.
    const [{ n }] = await w.sql`
      select count(*)::int as n from net._http_response
       where status_code = 202 and content = '{"accepted":true}'`;
    assert.ok(n >= 1, 'pg_net recorded queue-alert accepting the dispatch (202)');
    await assertNoListener(w);
    console.log(JSON.stringify({ event: 'pgnet_e2e_delivered', ms: Date.now() - t0 }));
  });
});

Deno.test('a Slack 429 with Retry-After: 5 is retried through pg_net within 15 s', async () => {
  const keys = await localKeys();
  await withWorld(({ dbUrl, receiversUrl }) => ({
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    RESEND_API_KEY: 're_pgnet_e2e',
    RESEND_BASE_URL: `${receiversUrl}/resend`,
  }), async (w) => {
    await firingSetup(w, keys.serviceRole);
    w.receivers.script({
      route: 'slack',
      status: 429,
      headers: { 'retry-after': '5' },
      body: 'rate_limited',
      times: 1,
    });
    await assertNoListener(w);
    await evaluate(w);
    const delivered = await waitFor('the retried Slack message', 20_000, () => {
      const ok = w.receivers.received('slack');
      return ok.length ? ok[0] : null;
    });
    const [first] = w.receivers.requests('slack');
    assert.equal(first.status, 429, 'the first attempt was refused');
    const gap = Date.parse(delivered.received_at) - Date.parse(first.received_at);
    assert.ok(gap >= 4_900, `Retry-After is honoured: retried ${gap} ms later`);
    assert.ok(gap < 15_000, `retried within 15 s of the first attempt: ${gap} ms`);
    const [{ n }] = await w.sql`
      select count(*)::int as n from net._http_response where status_code = 202`;
    assert.ok(n >= 2, `both attempts were pg_net calls of queue-alert (${n} answered 202)`);
    await assertNoListener(w);
    console.log(JSON.stringify({ event: 'pgnet_e2e_retry', gap_ms: gap }));
  });
});

Deno.test('schedule() warns with the Vault steps while pg_net has no queue-alert URL or key', async () => {
  const db = await createPrivateDatabase('qh_pgnet_mode');
  const notices: postgres.Notice[] = [];
  const sql = postgres(db.url, { max: 1, onnotice: (n) => notices.push(n) });
  // pg_cron lives in the cluster's cron.database_name only, so schedule() ends here by saying
  // pg_cron is missing: the dispatch warning comes before that.
  const schedule = () =>
    sql`select queue_health.schedule()`.then(() => null, (e: { code?: string }) => e.code);
  try {
    await installPgNet(db);
    await applyProject(db);
    notices.length = 0;
    assert.equal(await schedule(), '55000', 'schedule() fails on the missing pg_cron');
    const [{ mode }] = await sql<{ mode: string }[]>`
      select queue_health.dispatch_mode() ->> 'mode' as mode`;
    assert.equal(mode, 'not_configured');
    const warning = notices.find((n) => n.severity === 'WARNING');
    assert.ok(warning, `a WARNING is raised: got ${JSON.stringify(notices)}`);
    assert.match(String(warning.message), /alerts cannot leave the database.*not_configured/);
    assert.match(String(warning.message), /URL and key are not configured/);
    assert.match(String(warning.hint), /select vault\.create_secret\('https:\/\/<project-ref>/);
    assert.match(String(warning.hint), /'queue_health_alert_key'\)/);

    await sql`insert into queue_health.dispatch_settings (queue_alert_url, queue_alert_key)
              values ('https://ref.example.test/functions/v1/queue-alert', 'sb_secret_x')`;
    notices.length = 0;
    assert.equal(await schedule(), '55000', 'schedule() still fails on the missing pg_cron');
    const [{ mode: ok }] = await sql<{ mode: string }[]>`
      select queue_health.dispatch_mode() ->> 'mode' as mode`;
    assert.equal(ok, 'http');
    assert.deepEqual(notices.filter((n) => n.severity === 'WARNING'), [], 'no warning once set');
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
});
