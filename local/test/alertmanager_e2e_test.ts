/**
 * The alertmanager channel against the real Alertmanager (Debian's `prometheus-alertmanager`,
 * which `npm test` installs): a pgmq queue backs up ─▶ capture() ─▶ evaluate_alerts() ─▶ outbox
 * ─▶ queue-alert (its real handler) ─▶ `POST /api/v2/alerts` of an Alertmanager this test starts on
 * 127.0.0.1 (no clustering, a temporary storage path, a config with one receiver that sends
 * nothing). Then Alertmanager's own `GET /api/v2/alerts` must show the alert with our labels
 * (the queue's own `team` label among them, routed by it to the receiver that matches it),
 * annotations and link; a resend must move its endsAt on; once the queue is drained and the alert
 * resolves, Alertmanager must list it no more (it hides alerts whose endsAt has passed).
 *
 * A database of the test's own (the hosted platform, the pgmq fixture, the migrations): the
 * resend interval is a global setting, shortened here to 10 s, and captures see every queue.
 * @module
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import postgres from 'postgres';
import { createLogger } from '../../supabase/functions/_shared/log.ts';
import { createHandler } from '../../supabase/functions/queue-alert/handler.ts';
import { applyMigrations } from '../stack/migrate.ts';
import { connect } from './db.ts';
import { createPgmqQueue } from './fixture.ts';
import { createHostedDatabase, type PrivateDatabase } from './private_db.ts';
import { sleep, waitFor } from './wait.ts';
import { freePort } from './private_cluster.ts';

const ALERTMANAGER = '/usr/bin/prometheus-alertmanager';
const PROJECT = 'am_e2e';
const QUEUE = 'am_e2e_jobs';
const DASHBOARD = 'https://dash.example.test/am_e2e';
const RESEND_S = 10;
const ALERT_SECRET = `am-e2e-${crypto.randomUUID()}`;

/** The alert as Alertmanager's API v2 lists it. */
interface GettableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL?: string;
  fingerprint: string;
  status: { state: string };
  receivers: { name: string }[];
}

/** Starts Alertmanager on loopback; `stop()` kills it and removes its files. */
async function startAlertmanager(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: 'qh-alertmanager-' });
  await Deno.writeTextFile(
    `${dir}/alertmanager.yml`,
    // Receivers with no integrations: Alertmanager keeps and groups alerts, notifies nobody. A
    // route on the queue's own label `team` sends ours to `payments`, which the alert lists.
    [
      'route:',
      '  receiver: blackhole',
      '  routes:',
      '    - receiver: payments',
      '      matchers: [\'team="payments"\']',
      'receivers:',
      '  - name: blackhole',
      '  - name: payments',
      '',
    ].join('\n'),
  );
  const port = freePort();
  const child = new Deno.Command(ALERTMANAGER, {
    args: [
      `--config.file=${dir}/alertmanager.yml`,
      `--storage.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
      '--log.level=warn',
    ],
    stdin: 'null',
    stdout: 'null',
    stderr: 'piped',
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill('SIGTERM');
    } catch { /* already gone */ }
    await child.status;
    await stderr.catch(() => '');
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor('Alertmanager to be ready', 20_000, async () => {
      const res = await fetch(`${url}/-/ready`).catch(() => null);
      await res?.body?.cancel();
      return res?.ok ? true : null;
    });
  } catch (e) {
    await stop();
    throw new Error(`Alertmanager did not start: ${(e as Error).message}\n${await stderr}`);
  }
  return { url, stop };
}

/** Our project's alerts in Alertmanager (`filter` by the project label). */
async function amAlerts(amUrl: string): Promise<GettableAlert[]> {
  const res = await fetch(
    `${amUrl}/api/v2/alerts?filter=${encodeURIComponent(`project="${PROJECT}"`)}`,
  );
  assert.equal(res.status, 200, `GET /api/v2/alerts: ${res.status}`);
  return await res.json() as GettableAlert[];
}

interface World {
  db: PrivateDatabase;
  sql: postgres.Sql;
  /** Runs queue-alert's handler once (evaluating first), as the dispatcher would. */
  runQueueAlert(): Promise<Record<string, unknown>>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const db = await createHostedDatabase('qh_am_e2e');
  const sql = connect({ url: db.url, max: 2 });
  const fnSql = connect({ url: db.url, max: 3, prepare: false });
  try {
    await applyMigrations(db.url, { stamp: false });
    const handler = createHandler({
      sql: fnSql,
      env: {
        SUPABASE_DB_URL: db.url,
        QUEUE_ALERT_SECRET: ALERT_SECRET,
        // Alertmanager and the test's server listen on loopback over http.
        QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
      },
      logger: createLogger({ fn: 'queue-alert' }, () => {}),
    });
    const runQueueAlert = async () => {
      const res = await handler(
        new Request('http://127.0.0.1/functions/v1/queue-alert', {
          method: 'POST',
          headers: { 'x-queue-health-secret': ALERT_SECRET },
          body: JSON.stringify({ evaluate: true }),
        }),
      );
      assert.equal(res.status, 200);
      return await res.json();
    };
    await fn({ db, sql, runQueueAlert });
  } finally {
    await fnSql.end({ timeout: 2 });
    await sql.end({ timeout: 2 });
    await db.drop();
  }
}

/** A project whose pgmq queue goes to it, a depth rule, and an alertmanager channel at `url`. */
async function setup(sql: postgres.Sql, url: string, secret?: Record<string, string>) {
  await sql`select queue_health.ensure_partitions(now() - interval '1 day', 3)`;
  await sql`update queue_health.settings
               set alertmanager_resend_interval = ${`${RESEND_S} seconds`}::interval`;
  await sql`insert into queue_health.project (id, name) values (${PROJECT}, 'Alertmanager e2e')`;
  await sql`update queue_health.alert_rule set enabled = false where project_id = ${PROJECT}`;
  await sql`insert into queue_health.project_queue_map (project_id, source, queue_pattern)
            values (${PROJECT}, 'pgmq', ${QUEUE})`;
  await sql`insert into queue_health.project_alert_settings (project_id, dashboard_url)
            values (${PROJECT}, ${DASHBOARD})`;
  const [{ id }] = await sql`
    insert into queue_health.channel (project_id, name, kind, config)
    values (${PROJECT}, 'alertmanager', 'alertmanager', ${sql.json({ url })}) returning id`;
  if (secret) {
    await sql`insert into queue_health.channel_secret (channel_id, secret)
              values (${id}, ${sql.json(secret)})`;
  }
  await sql`
    insert into queue_health.alert_rule (project_id, name, condition, threshold, queue_name,
      severity, summary, runbook_url)
    values (${PROJECT}, 'jobs backing up', 'depth', 3, ${QUEUE}, 'critical',
            '{{queue}} holds {{value}} jobs', 'https://runbooks.example.test/{{queue}}')`;
  // The queue's own labels (set before its first capture here; any time in practice).
  await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id, labels)
            values ('pgmq', 'pgmq', ${QUEUE}, ${PROJECT}, ${sql.json({ team: 'payments' })})`;
  await createPgmqQueue(sql, QUEUE);
  return id as string;
}

async function capture(sql: postgres.Sql): Promise<void> {
  await sql`select queue_health.capture()`;
}

async function notifications(sql: postgres.Sql) {
  return await sql<
    { status: string; last_error: string | null; payload: Record<string, unknown> }[]
  >`
    select status::text, last_error, payload from queue_health.notification
     where project_id = ${PROJECT} order by created_at, id`;
}

Deno.test({
  name: 'the real Alertmanager shows our alert, keeps it active on resend, and resolves it',
  ignore: !existsSync(ALERTMANAGER),
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const am = await startAlertmanager();
    try {
      await withWorld(async ({ sql, runQueueAlert }) => {
        await setup(sql, am.url);
        for (let i = 0; i < 5; i++) await sql`select pgmq.send(${QUEUE}, ${sql.json({ i })})`;
        await capture(sql);
        const first = await runQueueAlert();
        assert.equal(first.sent, 1, `one notification sent: ${JSON.stringify(first)}`);

        const [alert] = await waitFor(
          'the alert to be active in Alertmanager',
          10_000,
          async () => {
            const list = await amAlerts(am.url);
            return list.length === 1 && list[0].status.state === 'active' ? list : null;
          },
        );
        assert.deepEqual(alert.labels, {
          alertname: 'jobs backing up',
          severity: 'critical',
          project: PROJECT,
          source: 'pgmq',
          source_schema: 'pgmq',
          queue: QUEUE,
          team: 'payments',
        });
        assert.deepEqual(
          alert.receivers.map((r) => r.name),
          ['payments'],
          "Alertmanager routes it by the queue's label",
        );
        assert.equal(alert.annotations.summary, `${QUEUE} holds 5 jobs`);
        assert.equal(alert.annotations.runbook_url, `https://runbooks.example.test/${QUEUE}`);
        assert.equal(alert.annotations.value, '5');
        assert.equal(alert.annotations.threshold, '3');
        assert.equal(alert.generatorURL, DASHBOARD);
        const [n1] = await notifications(sql);
        assert.equal(
          Date.parse(alert.endsAt),
          Date.parse(String(n1.payload.valid_until)),
          'endsAt is the notification valid_until',
        );
        const validity = Date.parse(alert.endsAt) - Date.parse(alert.startsAt);
        assert.ok(
          validity >= 4 * RESEND_S * 1000 - 1000,
          `endsAt is 4 resend intervals after the alert fired (${validity} ms)`,
        );

        // A resend, one resend interval later: the same alert, its endsAt moved on.
        await sleep(RESEND_S * 1000 + 200);
        await capture(sql);
        const second = await runQueueAlert();
        assert.equal(second.sent, 1, `the resend was sent: ${JSON.stringify(second)}`);
        const resent = await waitFor('the resend to move endsAt on', 10_000, async () => {
          const list = await amAlerts(am.url);
          return list.length === 1 && Date.parse(list[0].endsAt) > Date.parse(alert.endsAt)
            ? list[0]
            : null;
        });
        assert.equal(resent.fingerprint, alert.fingerprint, 'the same alert in Alertmanager');
        assert.equal(resent.startsAt, alert.startsAt, 'startsAt unchanged');
        assert.equal(resent.status.state, 'active');
        assert.ok(Date.parse(resent.endsAt) - Date.parse(alert.endsAt) >= RESEND_S * 1000 - 1000);

        // The queue drains: the alert resolves, and Alertmanager is told at once.
        await sql`select pgmq.purge_queue(${QUEUE})`;
        await capture(sql);
        const third = await runQueueAlert();
        assert.equal(third.sent, 1, `the resolve was sent: ${JSON.stringify(third)}`);
        const all = await notifications(sql);
        const last = all.at(-1)!;
        assert.equal(last.payload.status, 'resolved');
        assert.deepEqual(all.map((n) => n.status), ['sent', 'sent', 'sent']);
        await waitFor(
          'Alertmanager to list the resolved alert no more',
          10_000,
          async () => (await amAlerts(am.url)).length === 0 ? true : null,
        );
        // Well before the endsAt the resend gave it: the resolve, not a timeout, ended it.
        assert.ok(Date.now() < Date.parse(resent.endsAt), 'resolved before its endsAt ran out');
        const history = await fetch(
          `${am.url}/api/v2/alerts/groups?filter=${encodeURIComponent(`project="${PROJECT}"`)}`,
        ).then((r) => r.json()) as unknown[];
        assert.deepEqual(history, [], 'no alert group is left for the project');
      });
    } finally {
      await am.stop();
    }
  },
});

/** A loopback server standing in for an Alertmanager behind a proxy: records, answers `status`. */
function recorder(status: number, body = '') {
  const seen: { path: string; authorization: string | null; body: unknown }[] = [];
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: 0, onListen: () => {} },
    async (req) => {
      seen.push({
        path: new URL(req.url).pathname,
        authorization: req.headers.get('authorization'),
        body: await req.json().catch(() => null),
      });
      return new Response(body, { status, headers: { 'content-type': 'application/json' } });
    },
  );
  return { url: `http://127.0.0.1:${server.addr.port}/am`, seen, stop: () => server.shutdown() };
}

Deno.test({
  name: 'alertmanager channel: basic auth is sent, and a 400 goes dead with the reason',
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = recorder(400, '"start time must be before end time"');
    try {
      await withWorld(async ({ sql, runQueueAlert }) => {
        await setup(sql, server.url, { username: 'queue-health', password: 'pä55:word' });
        for (let i = 0; i < 5; i++) await sql`select pgmq.send(${QUEUE}, ${sql.json({ i })})`;
        await capture(sql);
        const run = await runQueueAlert();
        assert.equal(run.dead, 1, JSON.stringify(run));
        assert.equal(server.seen.length, 1);
        assert.equal(server.seen[0].path, '/am/api/v2/alerts');
        const expected = btoa(
          String.fromCharCode(...new TextEncoder().encode('queue-health:pä55:word')),
        );
        assert.equal(server.seen[0].authorization, `Basic ${expected}`);
        const body = server.seen[0].body as { labels: Record<string, string> }[];
        assert.equal(body.length, 1);
        assert.equal(body[0].labels.alertname, 'jobs backing up');
        const [n] = await notifications(sql);
        assert.equal(n.status, 'dead');
        assert.equal(
          n.last_error,
          'alertmanager 400 Bad Request: Alertmanager refused the alerts: start time must be ' +
            'before end time',
        );
      });
    } finally {
      await server.stop();
    }
  },
});
