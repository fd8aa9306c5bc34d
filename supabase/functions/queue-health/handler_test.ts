/**
 * queue-health against the real database (env DATABASE_URL): the handler is called directly, with
 * JWTs minted from the local secret. Each run creates its own projects, users, queues and metric
 * rows under a random suffix and removes them at the end.
 */
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { connect, databaseUrl } from '../../../local/test/db.ts';
import { signJwt } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import { createJwtVerifier } from '../_shared/jwt.ts';
import { closeAllSql } from '../_shared/db.ts';
import { depsFromEnv } from './config.ts';
import { parseExposition, parseOpenMetrics } from './exposition_parser.ts';
import { createHandler, databaseReason, routeOf } from './handler.ts';
import { startAuthServer } from './test_auth_server.ts';

const SECRET = Deno.env.get('SUPABASE_JWT_SECRET') ||
  'super-secret-jwt-token-with-at-least-32-characters-long';
const BASE = 'http://127.0.0.1:54321/functions/v1/queue-health';

const sfx = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const P_A = `api_${sfx}_a`;
const P_B = `api_${sfx}_b`;
const MEMBER = crypto.randomUUID();
const ADMIN = crypto.randomUUID();
const STRANGER = crypto.randomUUID();
const ORDERS = `orders_${sfx}`;
const NASTY = `we"ird\\q\nname_${sfx}`;
const MAIL = `mail_${sfx}`;

type Json = Record<string, unknown> & {
  queues: { project_id: string; queue: string; status: string; reasons: unknown[] }[];
};

function setup() {
  const admin = connect({ max: 3, prepare: false });
  const sql = connect({ max: 3, prepare: false });
  const lines: string[] = [];
  const logger = createLogger({ fn: 'queue-health' }, (line) => lines.push(line));
  const handler = createHandler({
    sql,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    logger,
    evaluateEveryMs: 0,
  });
  return { admin, sql, handler, lines };
}

async function seed(admin: postgres.Sql) {
  await admin`select queue_health.ensure_partitions(now())`;
  await admin`insert into auth.users (id, email) values
    (${MEMBER}, ${`member-${sfx}@example.test`}),
    (${ADMIN}, ${`admin-${sfx}@example.test`}),
    (${STRANGER}, ${`stranger-${sfx}@example.test`})`;
  await admin`insert into queue_health.project (id, name) values (${P_A}, 'A'), (${P_B}, 'B')`;
  // Default rules would evaluate the shared test monitor; these tests control alerts themselves.
  await admin`update queue_health.alert_rule set enabled = false where project_id in (${P_A}, ${P_B})`;
  await admin`insert into queue_health.project_member (project_id, user_id, role) values
    (${P_A}, ${MEMBER}, 'viewer'), (${P_A}, ${ADMIN}, 'admin'), (${P_B}, ${ADMIN}, 'viewer')`;
  await admin`insert into queue_health.queue (source, source_schema, queue_name, project_id) values
    ('pgmq', 'pgmq', ${ORDERS}, ${P_A}),
    ('pgmq', 'pgmq', ${NASTY}, ${P_A}),
    ('pgboss', 'pgboss', ${MAIL}, ${P_B})`;
  // Ten minutes of history for ORDERS, one snapshot a minute, and a current one for every queue.
  // One statement per row, oldest first: the running-totals trigger reads the row before, which
  // rows of the same statement do not see.
  for (let i = 10; i >= 1; i--) {
    await admin`
      insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
        ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
        failed, retried, dead_lettered, interval_s)
      values (now() - make_interval(mins => ${i}), ${P_A}, 'pgmq', 'pgmq', ${ORDERS},
        ${10 + i}, 1, 0, ${11 + i}, false, 1, 5, 5, 0, 0, 0, 60)`;
  }
  await insertCurrent(admin, 1);
}

async function insertCurrent(admin: postgres.Sql, oldestReadyAge: number) {
  await admin`
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
      ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
      failed, retried, dead_lettered, interval_s)
    values
      (now(), ${P_A}, 'pgmq', 'pgmq', ${ORDERS}, 7, 2, 1, 10, false, ${oldestReadyAge}, 4, 3, 1, 0, 0, 10),
      (now(), ${P_A}, 'pgmq', 'pgmq', ${NASTY}, 0, 0, 0, 0, false, null, 0, 0, 0, 0, 0, 10),
      (now(), ${P_B}, 'pgboss', 'pgboss', ${MAIL}, 3, 0, 0, 3, false, 2, 1, 1, 0, 0, 0, 10)`;
}

/** A fresh successful capture run, so the shared monitor reads healthy. Returns its id. */
async function freshCapture(admin: postgres.Sql): Promise<number> {
  const [{ id }] = await admin<{ id: number }[]>`
    insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows, status)
    values (now(), now(), 12.5, 3, 3, 'ok') returning id`;
  return Number(id);
}

async function cleanup(admin: postgres.Sql, runIds: number[]) {
  await admin`delete from queue_health.metric where project_id in (${P_A}, ${P_B})`;
  await admin`delete from queue_health.queue where project_id in (${P_A}, ${P_B})`;
  await admin`delete from queue_health.project where id in (${P_A}, ${P_B})`;
  await admin`delete from auth.users where id in (${MEMBER}, ${ADMIN}, ${STRANGER})`;
  // realtime.messages is Realtime's: postgres may not delete from it (Realtime drops messages
  // after 72 hours), so its rows stay; every run uses projects of its own.
  if (runIds.length) await admin`delete from queue_health.capture_run where id in ${admin(runIds)}`;
}

const user = (sub: string) => signJwt({ role: 'authenticated', sub, aud: 'authenticated' }, SECRET);
const service = () => signJwt({ role: 'service_role' }, SECRET);
const anon = () => signJwt({ role: 'anon' }, SECRET);

function get(path: string, headers: Record<string, string> = {}): Request {
  return new Request(BASE + path, { headers });
}

async function call(
  handler: (r: Request) => Promise<Response>,
  path: string,
  token?: string,
  headers: Record<string, string> = {},
) {
  const res = await handler(
    get(path, token ? { authorization: `Bearer ${token}`, ...headers } : headers),
  );
  const text = await res.text();
  let body: unknown = text;
  if (res.headers.get('content-type')?.startsWith('application/json')) body = JSON.parse(text);
  return { res, body: body as Json, text };
}

const projectsOf = (body: Json) => [...new Set(body.queues.map((q) => q.project_id))].sort();

Deno.test('routeOf() routes on the part after /queue-health, with or without the prefix', () => {
  assert.equal(routeOf('/functions/v1/queue-health'), '');
  assert.equal(routeOf('/functions/v1/queue-health/'), '');
  assert.equal(routeOf('/functions/v1/queue-health/history'), '/history');
  assert.equal(routeOf('/queue-health/history/'), '/history');
  assert.equal(routeOf('/functions/v1/queue-alert'), null);
});

Deno.test('databaseReason() gives a short reason and never the error message', () => {
  const err = (code: string) => Object.assign(new Error('secret detail'), { code });
  assert.equal(databaseReason(err('ECONNREFUSED')), 'connection failed');
  assert.equal(databaseReason(err('57P01')), 'connection failed');
  assert.equal(databaseReason(err('57014')), 'query timeout');
  assert.equal(databaseReason(err('42P01')), 'queue_health schema missing or out of date');
  assert.equal(databaseReason(err('XX000')), 'query failed (XX000)');
  assert.equal(databaseReason(new Error('boom')), 'connection failed');
});

Deno.test('queue-health endpoints, for every kind of caller, on the real database', async (t) => {
  const { admin, sql, handler, lines } = setup();
  const runIds: number[] = [];
  // Hold capture()'s lock for the whole test: a background capture (the demo workload, pg_cron)
  // would otherwise mark these hand-made queues dropped and write snapshots over the ones this
  // test controls. capture() records a skipped run instead.
  const lock = await admin.reserve();
  await lock`select pg_advisory_lock(hashtextextended('queue_health.capture', 0))`;
  try {
    await seed(admin);
    runIds.push(await freshCapture(admin));

    await t.step('a member sees only their projects, with metric values', async () => {
      const { res, body } = await call(handler, `?queue=*_${sfx}`, await user(MEMBER));
      assert.equal(res.status, 200);
      assert.deepEqual(projectsOf(body), [P_A]);
      const orders = body.queues.find((q) => q.queue === ORDERS) as unknown as {
        metrics: Record<string, unknown>;
        status: string;
      };
      assert.equal(orders.metrics.depth, 10);
      assert.equal(orders.metrics.ready, 7);
      assert.equal(orders.metrics.error_rate, 0.25);
      assert.equal(orders.status, 'warning', 'error rate 1/4 is above the 5 % warning level');
      // Ten history rows of 5 in / 5 done, then the current one's 4 in / 3 done / 1 failed.
      assert.deepEqual((orders as unknown as { totals: unknown }).totals, {
        enqueued: 54,
        completed: 53,
        failed: 1,
        retried: 0,
        dead_lettered: 0,
      });
      assert.ok(body.queues.some((q) => q.queue === NASTY));
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
    });

    await t.step('the service role sees every project', async () => {
      const { res, body } = await call(handler, `?queue=*_${sfx}`, await service());
      assert.equal(res.status, 200, JSON.stringify(body.monitor ?? body));
      assert.deepEqual(projectsOf(body), [P_A, P_B]);
    });

    await t.step('a signed-in non-member and the anon key see nothing', async () => {
      const stranger = await call(handler, `?queue=*_${sfx}`, await user(STRANGER));
      assert.equal(stranger.res.status, 200);
      assert.deepEqual(stranger.body.queues, []);
      assert.deepEqual(stranger.body.projects, []);
      const anonymous = await call(handler, `?queue=*_${sfx}`, undefined, { apikey: await anon() });
      assert.equal(anonymous.res.status, 200);
      assert.deepEqual(anonymous.body.queues, []);
      const history = await call(handler, `/history?queue=${ORDERS}`, await user(STRANGER));
      assert.equal(history.res.status, 200);
      assert.deepEqual((history.body as unknown as { series: unknown[] }).series, []);
    });

    await t.step(
      'configured as hosted (new API keys, no HS256 secret): sb_secret_ is the service role, sb_publishable_ is anon, user tokens are checked by Auth',
      async () => {
        // Supabase Auth holds the HS256 secret; the function does not.
        const auth = startAuthServer(SECRET);
        const hostedLines: string[] = [];
        try {
          const hosted = createHandler({
            ...depsFromEnv({
              SUPABASE_DB_URL: databaseUrl(),
              SUPABASE_URL: auth.url,
              SUPABASE_SECRET_KEYS: JSON.stringify({ default: `sb_secret_${sfx}` }),
              SUPABASE_PUBLISHABLE_KEYS: JSON.stringify({ default: `sb_publishable_${sfx}` }),
            }, {
              logger: createLogger({ fn: 'queue-health' }, (l) => hostedLines.push(l)),
              warned: new Set(),
            }),
            sql,
            evaluateEveryMs: 0,
          });
          const secretKey = await call(hosted, `?queue=*_${sfx}`, `sb_secret_${sfx}`);
          assert.equal(
            secretKey.res.status,
            200,
            JSON.stringify(secretKey.body.monitor ?? secretKey.body),
          );
          assert.deepEqual(projectsOf(secretKey.body), [P_A, P_B]);
          const publishable = await call(hosted, `?queue=*_${sfx}`, undefined, {
            apikey: `sb_publishable_${sfx}`,
          });
          assert.equal(publishable.res.status, 200);
          assert.deepEqual(publishable.body.queues, []);
          const member = await call(hosted, `?queue=*_${sfx}`, await user(MEMBER), {
            apikey: `sb_publishable_${sfx}`,
          });
          assert.equal(member.res.status, 200);
          assert.deepEqual(projectsOf(member.body), [P_A]);
          assert.equal(auth.calls.length, 1);
          assert.equal(auth.calls[0].apikey, `sb_publishable_${sfx}`);
          const wrong = await signJwt(
            { role: 'authenticated', sub: MEMBER, aud: 'authenticated' },
            SECRET + '-not-this-one',
          );
          assert.equal((await call(hosted, '', wrong)).res.status, 401);
          assert.equal((await call(hosted, '', `sb_secret_${sfx}x`)).res.status, 401);
          const startup = hostedLines.map((l) => JSON.parse(l).event)
            .filter((e) => e.startsWith('hs256_'));
          assert.deepEqual(startup, ['hs256_tokens_verified_by_auth']);
        } finally {
          await auth.stop();
          await closeAllSql();
        }
      },
    );

    await t.step(
      'forged, expired, wrong-secret and missing credentials get a bare 401',
      async () => {
        const good = await user(MEMBER);
        const [h, p] = good.split('.');
        const forged = `${h}.${p}.${'A'.repeat(43)}`;
        const expired = await signJwt({ role: 'service_role' }, SECRET, -120);
        const wrong = await signJwt({ role: 'service_role' }, SECRET + '-not-this-one');
        for (const token of [forged, expired, wrong, 'qhst_' + '0'.repeat(64), undefined]) {
          for (const path of ['', '/history?queue=x', '?format=prometheus', '/nope']) {
            const { res, body } = await call(handler, path, token);
            assert.equal(res.status, 401, `${path} with ${token?.slice(0, 12)}`);
            assert.deepEqual(body, { error: 'unauthorized' });
          }
        }
      },
    );

    await t.step('filters narrow the report: project, source, queue pattern, status', async () => {
      const token = await service();
      const byProject = await call(handler, `?project=${P_B}`, token);
      assert.deepEqual(byProject.body.queues.map((q) => q.queue), [MAIL]);
      const bySource = await call(handler, `?source=pgboss&queue=*_${sfx}`, token);
      assert.deepEqual(bySource.body.queues.map((q) => q.queue), [MAIL]);
      const byPattern = await call(handler, `?queue=orders_${sfx.slice(0, 4)}*`, token);
      assert.deepEqual(byPattern.body.queues.map((q) => q.queue), [ORDERS]);
      const byStatus = await call(handler, `?queue=*_${sfx}&status=critical`, token);
      assert.deepEqual(byStatus.body.queues, []);
    });

    await t.step('bad parameters get 400 naming the parameter', async () => {
      const token = await service();
      const cases: [string, string][] = [
        ['?source=redis', 'source'],
        ['?status=ok,purple', 'status'],
        ['?project=NOT%20OK', 'project'],
        ['?format=xml', 'format'],
        ['?bogus=1', 'bogus'],
        ['/history', 'queue'],
        [`/history?queue=${ORDERS}&from=yesterday`, 'from'],
        [`/history?queue=${ORDERS}&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z`, 'from'],
        [`/history?queue=${ORDERS}&range=2w`, 'range'],
        // Hostile dates: once 503 "database unavailable" (Postgres refused the year) or silently
        // moved (30 February became 2 March).
        [`/history?queue=${ORDERS}&to=+010000-01-01T00:00:00Z`, 'to'],
        [`/history?queue=${ORDERS}&to=%2B010000-01-01T00:00:00Z`, 'to'],
        [`/history?queue=${ORDERS}&to=-000001-01-01T00:00:00Z`, 'to'],
        [`/history?queue=${ORDERS}&from=2026-02-30&to=2026-03-05T00:00:00Z`, 'from'],
        [`/history?queue=${ORDERS}&from=1970-01-01T00:00:00Z`, 'from'],
        [`/history?queue=${ORDERS}&to=2026-11-26T10:00:00`, 'to'],
      ];
      for (const [path, parameter] of cases) {
        const { res, body } = await call(handler, path, token);
        assert.equal(res.status, 400, path);
        assert.equal(body.parameter, parameter, path);
        assert.match(String(body.message), new RegExp(parameter));
      }
    });

    await t.step(
      '200/503 follow the alert state: a critical alert firing answers 503',
      async () => {
        const [{ id: ruleId }] = await admin<{ id: string }[]>`
        insert into queue_health.alert_rule (project_id, name, queue_name, condition, comparator,
          threshold, severity, summary)
        values (${P_A}, 'orders backlog', ${ORDERS}, 'oldest_ready_age_s', '>', 60, 'critical',
          '{{queue}} oldest ready {{value}} s')
        returning id`;
        await insertCurrent(admin, 600);
        await admin`select queue_health.evaluate_alerts(now())`;
        runIds.push(await freshCapture(admin));
        const firing = await call(handler, `?project=${P_A}`, await user(MEMBER));
        assert.equal(firing.res.status, 503);
        assert.equal(firing.body.healthy, false);
        assert.equal(firing.body.status, 'critical');
        const alerts = firing.body.alerts as { rule_name: string; severity: string }[];
        assert.deepEqual(alerts.map((a) => [a.rule_name, a.severity]), [[
          'orders backlog',
          'critical',
        ]]);
        const orders = firing.body.queues.find((q) => q.queue === ORDERS)!;
        assert.equal(orders.reasons.length, 1);
        assert.equal(orders.status, 'critical');
        // Project B's member view is unaffected by A's alert.
        const other = await call(handler, `?project=${P_B}`, await service());
        assert.equal(other.res.status, 200);

        await insertCurrent(admin, 1);
        await admin`select queue_health.evaluate_alerts(now() + interval '1 second')`;
        runIds.push(await freshCapture(admin));
        const resolved = await call(handler, `?project=${P_A}`, await user(MEMBER));
        assert.equal(resolved.res.status, 200);
        assert.equal(resolved.body.healthy, true);
        assert.deepEqual(resolved.body.alerts, []);
        await admin`delete from queue_health.alert_rule where id = ${ruleId}`;
      },
    );

    await t.step('a stale monitor answers 503 and monitor_up 0', async () => {
      const [{ id }] = await admin<{ id: number }[]>`
        insert into queue_health.capture_run (started_at, finished_at, duration_ms, status, error)
        values (now() + interval '1 minute', now() + interval '1 minute', 3, 'error', 'test: broken')
        returning id`;
      runIds.push(Number(id));
      const { res, body } = await call(handler, `?project=${P_A}`, await user(MEMBER));
      assert.equal(res.status, 503);
      assert.equal((body.monitor as { status: string }).status, 'stale');
      const prom = await call(handler, `?project=${P_A}&format=prometheus`, await user(MEMBER));
      assert.equal(prom.res.status, 200, 'Prometheus scrapes succeed whatever the health');
      const up = parseExposition(prom.text).samples.find((s) =>
        s.name === 'queue_health_monitor_up'
      );
      assert.equal(up?.value, 0);
      await admin`delete from queue_health.capture_run where id = ${id}`;
      runIds.push(await freshCapture(admin));
    });

    await t.step('a request runs the monitor_stale evaluation, so its alert can fire', async () => {
      // A monitor_stale rule that holds whatever the lag (>= 0 intervals): only an evaluation
      // is needed for it to fire, and the request is what runs one.
      const [{ id: ruleId }] = await admin<{ id: string }[]>`
        insert into queue_health.alert_rule (project_id, name, condition, comparator, threshold,
          severity)
        values (${P_B}, 'always stale', 'monitor_stale', '>=', 0, 'critical')
        returning id`;
      try {
        const before = await call(handler, `?project=${P_B}`, await user(ADMIN));
        assert.equal(before.res.status, 200, 'not evaluated yet: nothing fires');
        const evaluating = createHandler({
          sql,
          verifyJwt: createJwtVerifier({ secret: SECRET }),
          logger: createLogger({}, (line) => lines.push(line)),
          evaluateEveryMs: 1,
        });
        const { res, body } = await call(evaluating, `?project=${P_B}`, await user(ADMIN));
        assert.equal(res.status, 503);
        const alerts = body.alerts as { rule_name: string; queue_name: string | null }[];
        assert.deepEqual(alerts.map((a) => [a.rule_name, a.queue_name]), [['always stale', null]]);
      } finally {
        await admin`delete from queue_health.alert_rule where id = ${ruleId}`;
      }
    });

    await t.step('Prometheus output is valid 0.0.4 text with escaped queue names', async () => {
      const { res, text } = await call(handler, '', await service(), {
        accept: 'text/plain; version=0.0.4',
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
      const parsed = parseExposition(text);
      const depth = parsed.samples.filter((s) =>
        s.name === 'queue_health_depth' && s.labels.queue.endsWith(sfx)
      );
      assert.deepEqual(depth.map((s) => s.labels.queue).sort(), [MAIL, NASTY, ORDERS].sort());
      assert.ok(text.includes(`queue="we\\"ird\\\\q\\nname_${sfx}"`), 'escaped in the raw text');
      for (const name of new Set(parsed.samples.map((s) => s.name))) {
        assert.ok(parsed.help.has(name) && parsed.type.has(name), name);
      }
      assert.ok(parsed.samples.some((s) => s.name === 'queue_health_monitor_up'));
      assert.ok(parsed.samples.some((s) => s.name === 'queue_health_alerts_firing'));
      const completed = parsed.samples.find((s) =>
        s.name === 'queue_health_completed_total' && s.labels.queue === ORDERS
      );
      assert.ok(completed && completed.value >= 53, 'the running total as a counter');
      assert.equal(res.headers.get('content-encoding'), null, 'not asked for gzip');
      assert.equal(res.headers.get('vary'), 'Accept, Accept-Encoding');
    });

    await t.step(
      "Prometheus's own Accept gets OpenMetrics; Accept-Encoding: gzip a gzipped body",
      async () => {
        const token = await service();
        const res = await handler(get(`?queue=*_${sfx}`, {
          authorization: `Bearer ${token}`,
          accept: 'application/openmetrics-text;version=1.0.0,' +
            'application/openmetrics-text;version=0.0.1;q=0.75,' +
            'text/plain;version=0.0.4;q=0.5,*/*;q=0.1',
          'accept-encoding': 'gzip',
        }));
        assert.equal(res.status, 200);
        assert.equal(
          res.headers.get('content-type'),
          'application/openmetrics-text; version=1.0.0; charset=utf-8',
        );
        assert.equal(res.headers.get('content-encoding'), 'gzip');
        assert.equal(res.headers.get('vary'), 'Accept, Accept-Encoding');
        const gz = new Uint8Array(await res.arrayBuffer());
        assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b], 'gzip magic number');
        const om = await new Response(
          new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip')),
        ).text();
        const parsed = parseOpenMetrics(om);
        assert.equal(parsed.families.get('queue_health_completed')?.type, 'counter');
        assert.ok(
          parsed.samples.some((s) =>
            s.name === 'queue_health_completed_total' && s.labels.queue === NASTY
          ),
        );
        // JSON is gzipped too when asked, and a HEAD gets the headers only.
        const jsonGz = await handler(get(`?queue=*_${sfx}`, {
          authorization: `Bearer ${token}`,
          'accept-encoding': 'gzip, br',
        }));
        assert.equal(jsonGz.headers.get('content-encoding'), 'gzip');
        const body = JSON.parse(
          await new Response(jsonGz.body!.pipeThrough(new DecompressionStream('gzip'))).text(),
        );
        assert.equal(body.queues.length, 3);
        const head = await handler(
          new Request(BASE + '?format=prometheus', {
            method: 'HEAD',
            headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' },
          }),
        );
        assert.equal(head.status, 200);
        assert.equal(head.body, null);
      },
    );

    await t.step(
      'a scrape token reads only its project, never history, and stops when revoked',
      async () => {
        const [{ id, token }] = await admin.begin(async (tx) => {
          await tx`set local role authenticated`;
          await tx`select set_config('request.jwt.claims', ${
            JSON.stringify({ role: 'authenticated', sub: ADMIN })
          }, true)`;
          return await tx<{ id: string; token: string }[]>`
          select * from queue_health.create_scrape_token(${P_A}, 'prometheus-test')`;
        });
        assert.match(token, /^qhst_[0-9a-f]{64}$/);
        const [stored] =
          await admin`select token_hash from queue_health.scrape_token where id = ${id}`;
        assert.notEqual(stored.token_hash, token, 'only a hash is stored');

        const prom = await call(handler, '?format=prometheus', token);
        assert.equal(prom.res.status, 200);
        const projects = new Set(
          parseExposition(prom.text).samples.filter((s) => s.labels.project).map((s) =>
            s.labels.project
          ),
        );
        assert.deepEqual([...projects], [P_A]);
        const viaQuery = await call(handler, `?token=${token}`);
        assert.equal(viaQuery.res.status, 200);
        assert.deepEqual(projectsOf(viaQuery.body), [P_A]);
        const otherProject = await call(handler, `?project=${P_B}`, token);
        assert.deepEqual(otherProject.body.queues, []);
        const history = await call(handler, `/history?queue=${ORDERS}`, token);
        assert.equal(history.res.status, 403);

        // Prometheus's `authorization` block sends "Authorization: Bearer <token>"; the query
        // parameter still works; both at once must agree. A wrong token is a 401 either way.
        const wrong = 'qhst_' + 'f'.repeat(64);
        for (
          const [path, headers] of [
            ['?format=prometheus', { authorization: `Bearer ${wrong}` }],
            [`?format=prometheus&token=${wrong}`, {}],
            [`?format=prometheus&token=${token}`, { authorization: `Bearer ${wrong}` }],
            ['?format=prometheus', { authorization: `Basic ${btoa(`x:${token}`)}` }],
            ['?format=prometheus', { authorization: token }],
          ] as const
        ) {
          const res = await handler(get(path, headers));
          assert.equal(res.status, 401, `${path} ${JSON.stringify(headers).slice(0, 30)}`);
          await res.body?.cancel();
        }
        const both = await handler(
          get(`?format=prometheus&token=${token}`, { authorization: `bearer ${token}` }),
        );
        assert.equal(both.status, 200);
        await both.body?.cancel();
        // Another project's token never sees this project, whatever it asks for.
        const [{ token: tokenB }] = await admin.begin(async (tx) => {
          await tx`set local role service_role`;
          await tx`select set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
          return await tx<{ token: string }[]>`
            select token from queue_health.create_scrape_token(${P_B}, 'other project')`;
        });
        for (
          const path of [
            '?format=prometheus',
            `?format=prometheus&project=${P_A}`,
            `?project=${P_A}`,
          ]
        ) {
          const other = await call(handler, path, tokenB);
          assert.equal(other.res.status, 200, path);
          assert.ok(!other.text.includes(P_A), `${path}: nothing of ${P_A}`);
          assert.ok(!other.text.includes(ORDERS), `${path}: not its queues`);
        }
        const ofB = await call(handler, '?format=openmetrics', tokenB);
        const projectsOfB = new Set(
          parseOpenMetrics(ofB.text).samples.map((s) => s.labels.project).filter(Boolean),
        );
        assert.deepEqual([...projectsOfB], [P_B]);

        // A viewer cannot create one; a stranger cannot revoke one.
        await assert.rejects(
          admin.begin(async (tx) => {
            await tx`set local role authenticated`;
            await tx`select set_config('request.jwt.claims', ${
              JSON.stringify({ role: 'authenticated', sub: MEMBER })
            }, true)`;
            await tx`select * from queue_health.create_scrape_token(${P_A})`;
          }),
          /only an admin/,
        );
        const asUser = (sub: string) =>
          admin.begin(async (tx) => {
            await tx`set local role authenticated`;
            await tx`select set_config('request.jwt.claims', ${
              JSON.stringify({ role: 'authenticated', sub })
            }, true)`;
            const [r] = await tx`select queue_health.revoke_scrape_token(${id}) as revoked`;
            return r.revoked as boolean;
          });
        assert.equal(await asUser(STRANGER), false);
        assert.equal((await call(handler, '', token)).res.status !== 401, true);
        assert.equal(await asUser(ADMIN), true);
        const after = await call(handler, '?format=prometheus', token);
        assert.equal(after.res.status, 401);
      },
    );

    await t.step('history resolution follows the range', async () => {
      const token = await user(MEMBER);
      const cases: [string, string][] = [['1h', 'raw'], ['24h', '1m'], ['30d', '1h']];
      for (const [range, resolution] of cases) {
        const { res, body } = await call(
          handler,
          `/history?queue=${ORDERS}&range=${range}`,
          token,
        );
        assert.equal(res.status, 200, range);
        const b = body as unknown as {
          resolution: string;
          series: { project_id: string; points: { t: string; depth: number }[] }[];
        };
        assert.equal(b.resolution, resolution, range);
        assert.equal(b.series.length, 1, range);
        assert.equal(b.series[0].project_id, P_A);
        assert.ok(b.series[0].points.length > 0, range);
        if (resolution === 'raw') assert.ok(b.series[0].points.length >= 11);
        const times = b.series[0].points.map((p) => Date.parse(p.t));
        assert.deepEqual(times, [...times].sort((x, y) => x - y), 'points in time order');
      }
    });

    await t.step('HEAD answers the status of GET without a body; POST is 405', async () => {
      const token = await service();
      const head = await handler(
        new Request(BASE + `?project=${P_A}`, {
          method: 'HEAD',
          headers: { authorization: `Bearer ${token}` },
        }),
      );
      assert.equal(head.status, 200);
      assert.equal(head.body, null);
      const post = await handler(
        new Request(BASE, { method: 'POST', headers: { authorization: `Bearer ${token}` } }),
      );
      assert.equal(post.status, 405);
      await post.body?.cancel();
    });

    await t.step('OPTIONS is answered 204 with CORS headers and no credentials', async () => {
      const res = await handler(new Request(BASE, { method: 'OPTIONS' }));
      assert.equal(res.status, 204);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('access-control-allow-headers')!, /authorization.*apikey/);
      await res.body?.cancel();
    });

    await t.step('one JSON log line per request, with no token in it', () => {
      const requests = lines.map((l) => JSON.parse(l)).filter((l) => l.event === 'request');
      assert.ok(requests.length > 20);
      for (const line of requests) {
        for (const key of ['method', 'path', 'status', 'duration_ms', 'role']) {
          assert.ok(key in line, key);
        }
      }
      const all = lines.join('\n');
      assert.ok(!all.includes('qhst_') && !all.includes('eyJ'), 'no credentials in logs');
    });
  } finally {
    await cleanup(admin, runIds).catch((e) => console.error('cleanup failed', e));
    await lock`select pg_advisory_unlock(hashtextextended('queue_health.capture', 0))`;
    lock.release();
    await admin.end();
    await sql.end();
  }
});

Deno.test('queue-health answers 503 with a short reason when the database is down', async () => {
  const sql = postgres('postgres://postgres:postgres@127.0.0.1:1/postgres', {
    max: 1,
    connect_timeout: 2,
    prepare: false,
  });
  const lines: string[] = [];
  const handler = createHandler({
    sql,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    logger: createLogger({}, (line) => lines.push(line)),
    evaluateEveryMs: 1,
  });
  try {
    const res = await handler(get('', { authorization: `Bearer ${await service()}` }));
    assert.equal(res.status, 503);
    const body = await res.json();
    assert.deepEqual(body, { error: 'database unavailable', reason: 'connection failed' });
    const scrape = await handler(get('', { authorization: `Bearer qhst_${'1'.repeat(64)}` }));
    assert.equal(scrape.status, 503, 'a token that cannot be checked is not called invalid');
    await scrape.body?.cancel();
  } finally {
    await sql.end();
  }
});

/** A request body of `total` bytes made on demand; `pulled()` says how many were read. */
function hugeBody(total: number, chunk = 64 * 1024) {
  let sent = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      sent += chunk;
      controller.enqueue(new Uint8Array(chunk));
    },
  });
  return { stream, pulled: () => sent };
}

Deno.test('a 300 MB body is refused with 413 after reading at most the limit, whatever Content-Length says', async () => {
  const sql = postgres('postgres://postgres:postgres@127.0.0.1:1/postgres', {
    max: 1,
    connect_timeout: 2,
    prepare: false,
  });
  const handler = createHandler({
    sql,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    logger: createLogger({}, () => {}),
    evaluateEveryMs: 0,
  });
  try {
    for (const declared of [undefined, '10']) {
      const body = hugeBody(300 * 1024 * 1024);
      const res = await handler(
        new Request(BASE, {
          method: 'POST',
          body: body.stream,
          headers: declared ? { 'content-length': declared } : {},
        } as RequestInit),
      );
      assert.equal(res.status, 413, `content-length ${declared}`);
      assert.match((await res.json()).message, /at most 65536 bytes/);
      assert.ok(body.pulled() <= 192 * 1024, `read ${body.pulled()} bytes, not 300 MB`);
    }
    const declared = await handler(
      new Request(BASE, { method: 'POST', body: 'x', headers: { 'content-length': '314572800' } }),
    );
    assert.equal(declared.status, 413, 'an honest Content-Length over the limit');
    await declared.body?.cancel();
  } finally {
    await sql.end();
  }
});

Deno.test("the trigger's real Realtime payload parses with the exported schema, slim and full", async () => {
  const { parseRealtimeSnapshot, snapshotQueues, snapshotTopic } = await import(
    '../_shared/realtime_payload.ts'
  );
  const admin = connect({ max: 1, prepare: false });
  const project = `api_${sfx}_rt`;
  const rollback = new Error('rollback');
  try {
    await admin`select queue_health.ensure_partitions(now())`;
    for (const [mode, version] of [['slim', 2], ['full', 1]] as const) {
      // Each mode in a transaction of its own that is rolled back: the setting is installation-wide.
      await admin.begin(async (tx) => {
        await tx`insert into queue_health.project (id, name) values (${project}, 'RT')`;
        await tx`update queue_health.settings set realtime_payload = ${mode}`;
        await tx`set local role service_role`;
        await tx`select set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
        await tx`
          insert into queue_health.metric (captured_at, project_id, source, source_schema,
            queue_name, ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s,
            enqueued, completed, failed, retried, dead_lettered, interval_s)
          values
            (now(), ${project}, 'pgmq', 'pgmq', 'rt_a', 4, 1, 0, 5, false, 2.5, 3, 2, 0, 0, 0, 10),
            (now(), ${project}, 'pgboss', 'pgboss', 'rt_b', 0, 0, 2, 2, true, null, 0, 0, 0, 0, 1, null)`;
        await tx`reset role`;
        const rows = await tx<{ payload: unknown; event: string; private: boolean }[]>`
          select payload, event, private from realtime.messages where topic = ${
          snapshotTopic(project)
        }`;
        assert.equal(rows.length, 1, mode);
        assert.equal(rows[0].event, 'snapshot');
        assert.equal(rows[0].private, true);
        const snapshot = parseRealtimeSnapshot(rows[0].payload);
        assert.equal(snapshot.v, version, `${mode} payloads are version ${version}`);
        assert.equal(snapshot.project_id, project);
        const queues = snapshotQueues(snapshot);
        assert.deepEqual(
          queues.map((q) => [q.source, q.queue, q.depth, q.oldest_ready_age_s, q.enqueued]),
          [['pgboss', 'rt_b', 2, null, 0], ['pgmq', 'rt_a', 5, 2.5, 3]],
          mode,
        );
        assert.equal(queues[0].depth_estimated, true);
        // The slim form leaves out what the dashboard's table does not show.
        assert.equal(queues[0].dead_lettered, mode === 'full' ? 1 : undefined, mode);
        throw rollback;
      }).catch((e) => {
        if (e !== rollback) throw e;
      });
    }
  } finally {
    await admin.end();
  }
});
