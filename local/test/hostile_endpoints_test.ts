/**
 * The hostile-tenant suite, endpoint half (issue 19; the SQL half is
 * supabase/tests/database/900_hostile_tenant.test.sql): queue-health (JSON, Prometheus, /history,
 * ?project=) and queue-alert, called against the real database as anon, as a signed-in
 * non-member, as a viewer and an admin of another project Q, and with a scrape token of Q. Every
 * answer is refused (401/403) or carries nothing of the victim project P: not its id, not its
 * queue's name, not its values — the capture error that names P's queue included.
 */
import assert from 'node:assert/strict';
import { createHandler as createAlertHandler } from '../../supabase/functions/queue-alert/handler.ts';
import { createHandler as createHealthHandler } from '../../supabase/functions/queue-health/handler.ts';
import { createJwtVerifier, signJwt } from '../../supabase/functions/_shared/jwt.ts';
import { createLogger } from '../../supabase/functions/_shared/log.ts';
import { connect, databaseUrl, type Sql } from './db.ts';

const SECRET = Deno.env.get('SUPABASE_JWT_SECRET') ||
  'super-secret-jwt-token-with-at-least-32-characters-long';
const sfx = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const P = `hostile_${sfx}_p`;
const Q = `hostile_${sfx}_q`;
/** P's queue: its name must appear in no answer to a hostile caller. */
const P_QUEUE = `victim_${sfx}_jobs`;
const Q_QUEUE = `attacker_${sfx}_jobs`;
const users = {
  pAdmin: crypto.randomUUID(),
  stranger: crypto.randomUUID(),
  qViewer: crypto.randomUUID(),
  qAdmin: crypto.randomUUID(),
};
const Q_TOKEN = `qhst_${'a1'.repeat(16)}${sfx.repeat(4)}`;

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const user = (sub: string) => signJwt({ role: 'authenticated', sub, aud: 'authenticated' }, SECRET);

/** The hostile callers, as request headers. */
async function callers(): Promise<[string, Record<string, string>][]> {
  const anonKey = await signJwt({ role: 'anon' }, SECRET);
  const bearer = async (sub: string) => ({
    authorization: `Bearer ${await user(sub)}`,
    apikey: anonKey,
  });
  return [
    ['no key at all', {}],
    ['the anon key', { apikey: anonKey, authorization: `Bearer ${anonKey}` }],
    ['a signed-in non-member', await bearer(users.stranger)],
    ['a viewer of another project', await bearer(users.qViewer)],
    ['an admin of another project', await bearer(users.qAdmin)],
    ["another project's scrape token", { authorization: `Bearer ${Q_TOKEN}` }],
  ];
}

async function seed(sql: Sql): Promise<number> {
  await sql`select queue_health.ensure_partitions(now())`;
  await sql`insert into auth.users (id, email)
            select id, id || '@hostile.test' from unnest(${Object.values(users)}::uuid[]) id`;
  await sql`insert into queue_health.project (id, name) values (${P}, 'Victim'), (${Q}, 'Attacker')`;
  await sql`update queue_health.alert_rule set enabled = false where project_id in (${P}, ${Q})`;
  await sql`insert into queue_health.project_member (project_id, user_id, role) values
    (${P}, ${users.pAdmin}, 'admin'), (${Q}, ${users.qViewer}, 'viewer'),
    (${Q}, ${users.qAdmin}, 'admin')`;
  await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id) values
    ('pgmq', 'pgmq', ${P_QUEUE}, ${P}), ('pgmq', 'pgmq', ${Q_QUEUE}, ${Q})`;
  await sql`
    insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
      ready, in_flight, delayed, depth, depth_estimated, oldest_ready_age_s, enqueued, completed,
      failed, retried, dead_lettered, interval_s)
    select now() - make_interval(mins => i), x.p, 'pgmq', 'pgmq', x.q, x.ready, 1, 0, x.ready + 1,
      false, 1, 5, 5, 0, 0, 0, 60
      from generate_series(0, 5) i,
           (values (${P}, ${P_QUEUE}, 918273645), (${Q}, ${Q_QUEUE}, 7)) x (p, q, ready)`;
  await sql`insert into queue_health.scrape_token (project_id, name, token_hash, token_prefix)
            values (${Q}, 'q-prom', ${await sha256Hex(Q_TOKEN)}, ${Q_TOKEN.slice(0, 12)})`;
  // The newest capture run failed on P's queue, as a broken queue of P's would make it.
  const [{ id }] = await sql<{ id: number }[]>`
    insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows,
      status, error, errors)
    values (now(), now(), 3, 2, 1, 'partial',
      ${`1 error(s); first: relation "pgmq.q_${P_QUEUE}" does not exist`},
      ${sql.json([{ source: 'pgmq', source_schema: 'pgmq', queue_name: P_QUEUE, error: 'boom' }])})
    returning id`;
  return Number(id);
}

async function cleanup(sql: Sql, runId: number | null) {
  await sql`delete from queue_health.metric where project_id in (${P}, ${Q})`;
  await sql`delete from queue_health.queue where project_id in (${P}, ${Q})`;
  await sql`delete from queue_health.project where id in (${P}, ${Q})`;
  await sql`delete from auth.users where id = any(${Object.values(users)}::uuid[])`;
  if (runId !== null) await sql`delete from queue_health.capture_run where id = ${runId}`;
}

/**
 * The parts of P an answer must not contain, once the echo of what the caller asked for (the
 * `queue` and `project` it sent) is taken out.
 */
function leaks(text: string): string[] {
  const rest = text.replaceAll(`"queue":"${P_QUEUE}"`, '').replaceAll(`"project":"${P}"`, '');
  return [P, P_QUEUE, '918273645', '918273646'].filter((s) => rest.includes(s));
}

Deno.test({
  name: 'hostile callers get nothing of another project from queue-health or queue-alert',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const sql = connect({ max: 3, prepare: false });
    const handlerSql = connect({ max: 3, prepare: false });
    const lines: string[] = [];
    const health = createHealthHandler({
      sql: handlerSql,
      verifyJwt: createJwtVerifier({ secret: SECRET }),
      logger: createLogger({ fn: 'queue-health' }, (l) => lines.push(l)),
      evaluateEveryMs: 0,
    });
    const alert = createAlertHandler({
      sql: handlerSql,
      logger: createLogger({ fn: 'queue-alert' }, (l) => lines.push(l)),
      env: {
        SUPABASE_DB_URL: databaseUrl(),
        SUPABASE_SERVICE_ROLE_KEY: await signJwt({ role: 'service_role' }, SECRET),
        SUPABASE_JWT_SECRET: SECRET,
        QUEUE_ALERT_SECRET: `queue-alert-secret-${sfx}`,
        RESEND_API_KEY: 're_hostile',
        RESEND_FROM: 'Queue Health <alerts@example.com>',
      },
      fetch: () => Promise.reject(new Error('queue-alert must send nothing for a hostile caller')),
    });
    // Hold capture()'s lock: a background capture would mark these hand-made queues dropped.
    const lock = await sql.reserve();
    await lock`select pg_advisory_lock(hashtextextended('queue_health.capture', 0))`;
    let runId: number | null = null;
    try {
      runId = await seed(sql);
      // The fixture is visible to P's own admin: the checks below are not empty by accident.
      const own = await health(
        new Request(`http://127.0.0.1/functions/v1/queue-health?project=${P}`, {
          headers: { authorization: `Bearer ${await user(users.pAdmin)}` },
        }),
      );
      const ownText = await own.text();
      assert.equal(own.status, 200);
      assert.ok(ownText.includes(P_QUEUE), `P's admin sees P's queue: ${ownText.slice(0, 300)}`);

      const paths = [
        '',
        `?project=${P}`,
        `?queue=${P_QUEUE}`,
        '?format=prometheus',
        `?format=prometheus&project=${P}`,
        `/history?queue=${P_QUEUE}`,
        `/history?queue=${P_QUEUE}&project=${P}&source=pgmq`,
      ];
      for (const [who, headers] of await callers()) {
        await t.step(`queue-health as ${who}`, async () => {
          // Every path is tried before the step fails, so one report names them all.
          const problems: string[] = [];
          for (const path of paths) {
            const res = await health(
              new Request(`http://127.0.0.1/functions/v1/queue-health${path}`, { headers }),
            );
            const text = await res.text();
            if (![200, 401, 403, 404].includes(res.status)) {
              problems.push(`${path || '/'}: status ${res.status} (${text.slice(0, 200)})`);
            }
            const found = leaks(text);
            if (found.length) {
              const at = text.indexOf(found[0]);
              problems.push(
                `${path || '/'} (${res.status}) shows ${found.join(', ')}: …${
                  text.slice(Math.max(0, at - 120), at + 80)
                }…`,
              );
            }
          }
          assert.deepEqual(problems, [], `${who} reaches P's data`);
        });
      }

      // A due notification of P's: no hostile call may send, claim or change it.
      const [{ id: channelId }] = await sql`
        insert into queue_health.channel (project_id, name, kind, config)
        values (${P}, 'p-hook', 'webhook', ${sql.json({ url: 'https://hooks.example.test/p' })})
        returning id`;
      const [{ id: noteId }] = await sql`
        insert into queue_health.notification (project_id, channel_id, group_key, payload)
        values (${P}, ${channelId}, 'g', ${sql.json({ v: 1 })}) returning id`;
      for (const [who, headers] of await callers()) {
        await t.step(`queue-alert as ${who}`, async () => {
          for (const query of ['', `?project=${P}`]) {
            const res = await alert(
              new Request(`http://127.0.0.1/functions/v1/queue-alert${query}`, {
                method: 'POST',
                headers: { ...headers, 'content-type': 'application/json' },
                body: JSON.stringify({ evaluate: true, project_id: P }),
              }),
            );
            const text = await res.text();
            assert.equal(res.status, 401, `${who}: ${text.slice(0, 200)}`);
            assert.deepEqual(leaks(text), [], `${who}: ${text}`);
          }
        });
      }
      const [note] = await sql`
        select status, attempts, lease_until from queue_health.notification where id = ${noteId}`;
      assert.deepEqual(
        { status: note.status, attempts: note.attempts, leased: note.lease_until !== null },
        { status: 'pending', attempts: 0, leased: false },
        "P's notification is untouched",
      );
    } finally {
      await lock`select pg_advisory_unlock(hashtextextended('queue_health.capture', 0))`;
      lock.release();
      await cleanup(sql, runId).catch(() => {});
      await handlerSql.end({ timeout: 2 });
      await sql.end({ timeout: 2 });
    }
  },
});
