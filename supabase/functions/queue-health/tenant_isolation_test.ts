/**
 * Issue 19, findings 7 and 8, through the endpoint against the real database (env DATABASE_URL):
 * capture errors of one project (its queue names, SQL error text) reach neither another
 * project's members nor its scrape token, in JSON or Prometheus; `monitor` carries only
 * whitelisted fields; a project whose alert evaluation fails makes the monitor "failing" for
 * those who can see that project, and only for them.
 */
import assert from 'node:assert/strict';
import { connect } from '../../../local/test/db.ts';
import { closeAllSql } from '../_shared/db.ts';
import { createJwtVerifier, signJwt } from '../_shared/jwt.ts';
import { createLogger } from '../_shared/log.ts';
import { createHandler } from './handler.ts';

const SECRET = Deno.env.get('SUPABASE_JWT_SECRET') ||
  'super-secret-jwt-token-with-at-least-32-characters-long';
const BASE = 'http://127.0.0.1:54321/functions/v1/queue-health';
const sfx = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const P_A = `ten_${sfx}_a`;
const P_B = `ten_${sfx}_b`;
const MEMBER_A = crypto.randomUUID();
const MEMBER_B = crypto.randomUUID();
const SECRET_QUEUE = `payroll_secret_${sfx}`;
const B_ERROR = `relation "pgmq.q_${SECRET_QUEUE}" does not exist`;
const B_ALERT_ERROR = `b-only evaluation failure ${sfx}`;

Deno.test('capture errors and alerting failures stay within their project', async (t) => {
  const admin = connect({ max: 2, prepare: false });
  const sql = connect({ max: 3, prepare: false });
  const handler = createHandler({
    sql,
    verifyJwt: createJwtVerifier({ secret: SECRET }),
    logger: createLogger({ fn: 'queue-health' }, () => {}),
    evaluateEveryMs: 0,
  });
  let runId = 0;
  try {
    await admin`insert into auth.users (id, email) values
      (${MEMBER_A}, ${`ten-a-${sfx}@example.test`}), (${MEMBER_B}, ${`ten-b-${sfx}@example.test`})`;
    await admin`insert into queue_health.project (id, name) values (${P_A}, 'A'), (${P_B}, 'B')`;
    await admin`insert into queue_health.project_member (project_id, user_id, role) values
      (${P_A}, ${MEMBER_A}, 'viewer'), (${P_B}, ${MEMBER_B}, 'viewer')`;
    await admin`insert into queue_health.queue (source, source_schema, queue_name, project_id) values
      ('pgmq', 'pgmq', ${SECRET_QUEUE}, ${P_B})`;
    const errors = [{
      source: 'pgmq',
      source_schema: 'pgmq',
      queue_name: SECRET_QUEUE,
      error: B_ERROR,
    }];
    const [run] = await admin<{ id: number }[]>`
      insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows, status,
        error, errors)
      values (now(), now(), 5, 1, 0, 'partial', ${'1 error(s); first: ' + B_ERROR},
        ${admin.json(errors)})
      returning id`;
    runId = Number(run.id);
    await admin`insert into queue_health.alert_evaluation (project_id, failing, failures, last_error, last_error_at)
      values (${P_B}, true, 1, ${B_ALERT_ERROR}, now())`;
    const token = await admin.begin(async (tx) => {
      await tx`set local role service_role`;
      const [row] = await tx<{ token: string }[]>`
        select token from queue_health.create_scrape_token(${P_A}, 'tenant-test')`;
      return row.token;
    });

    const userA = await signJwt(
      { role: 'authenticated', sub: MEMBER_A, aud: 'authenticated' },
      SECRET,
    );
    const userB = await signJwt(
      { role: 'authenticated', sub: MEMBER_B, aud: 'authenticated' },
      SECRET,
    );
    const service = await signJwt({ role: 'service_role' }, SECRET);
    const call = async (path: string, bearer: string) => {
      const res = await handler(
        new Request(BASE + path, { headers: { authorization: `Bearer ${bearer}` } }),
      );
      return { status: res.status, text: await res.text() };
    };
    const leaks = (text: string) =>
      [SECRET_QUEUE, B_ERROR, B_ALERT_ERROR, P_B].filter((s) => text.includes(s));

    await t.step('a member of A sees none of B in JSON or Prometheus', async () => {
      const json = await call('', userA);
      assert.deepEqual(leaks(json.text), []);
      const monitor = JSON.parse(json.text).monitor;
      assert.equal(monitor.detail, undefined, 'no raw capture_status row');
      assert.deepEqual(monitor.alerting, { status: 'ok', failing_projects: 0 });
      const prom = await call('?format=prometheus', userA);
      assert.equal(prom.status, 200);
      assert.deepEqual(leaks(prom.text), []);
    });

    await t.step("a scrape token for A sees none of B, and A's alerting is ok", async () => {
      for (const path of ['', '?format=prometheus']) {
        const res = await call(path, token);
        assert.deepEqual(leaks(res.text), [], path);
      }
      const monitor = JSON.parse((await call('', token)).text).monitor;
      assert.deepEqual(monitor.alerting, { status: 'ok', failing_projects: 0 });
    });

    await t.step("the view and the table refuse B's errors to a member of A", async () => {
      await sql.begin(async (tx) => {
        await tx`set local role authenticated`;
        await tx`select set_config('request.jwt.claims', ${
          JSON.stringify({ role: 'authenticated', sub: MEMBER_A })
        }, true)`;
        const [status] = await tx<
          { e: string | null }[]
        >`select last_run_error as e from queue_health.capture_status`;
        assert.ok(!String(status.e).includes(SECRET_QUEUE), 'capture_status.last_run_error');
        const [visible] = await tx<
          { e: unknown[] }[]
        >`select queue_health.capture_run_errors(${runId}) as e`;
        assert.equal(
          JSON.stringify(visible.e).includes(SECRET_QUEUE),
          false,
          'capture_run_errors()',
        );
        await assert.rejects(
          tx.savepoint((sp) => sp`select errors from queue_health.capture_run`),
          /permission denied/,
        );
      });
    });

    await t.step("B's member and the operator see the monitor failing (503)", async () => {
      for (const bearer of [userB, service]) {
        const res = await call('', bearer);
        const body = JSON.parse(res.text);
        assert.equal(body.monitor.alerting.status, 'failing');
        assert.equal(body.monitor.status, 'failing');
        assert.equal(res.status, 503);
      }
    });
  } finally {
    await admin`delete from queue_health.capture_run where id = ${runId}`;
    await admin`delete from queue_health.queue where project_id in (${P_A}, ${P_B})`;
    await admin`delete from queue_health.project where id in (${P_A}, ${P_B})`;
    await admin`delete from auth.users where id in (${MEMBER_A}, ${MEMBER_B})`;
    await admin.end();
    await sql.end();
    await closeAllSql();
  }
});
