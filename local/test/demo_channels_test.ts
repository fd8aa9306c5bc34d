/**
 * `npm start`'s demo alerts reach every channel it seeds (issue 23: "the demo shows an SMS and a
 * PagerDuty event at the local receivers"), through the stack as `npm start` runs it: seedDemo()
 * creates the demo project's channels (Slack, email, sms, pagerduty) with the secrets the demo
 * uses; a real pgmq queue of the default project backs up; capture() and the queue-alert function
 * of the running functions server (evaluate, claim, send — with the environment the stack gives
 * it, TWILIO_API_BASE_URL and PAGERDUTY_EVENTS_URL pointing at the local stand-ins) deliver the
 * alert; the stack's receivers (local/receivers) record a Twilio message to the demo's number and a
 * PagerDuty trigger with the demo's routing key, both accepted by the stand-ins' request checks.
 * Then the queue drains and the PagerDuty alert is resolved with the same dedup_key.
 *
 * The rule is the test's own (a backlog on its own queue, `for` 0, no group wait, a 1 s group
 * interval) so it fires and resolves in seconds; routing it to the demo's channels is what the
 * demo's rules do too (channel_ids null: every channel of the project). Needs the stack (`npm
 * test` brings it up in test mode).
 */
import assert from 'node:assert/strict';
import type { Received } from '../receivers/server.ts';
import { DEMO_PAGERDUTY_KEY, DEMO_TWILIO, seedDemo } from '../stack/demo.ts';
import { localKeys } from '../stack/keys.ts';
import { QUEUE_ALERT_URL, RECEIVERS_URL } from '../stack/config.ts';
import { connect } from './db.ts';
import { sleep } from './wait.ts';

/** What the stack's receivers accepted on one route since `since` (ISO). */
async function received(route: string, since: string): Promise<Received[]> {
  const res = await fetch(`${RECEIVERS_URL}/_received?route=${route}`);
  assert.equal(res.status, 200, `GET /_received?route=${route}`);
  const { received } = await res.json() as { received: Received[] };
  return received.filter((r) => r.received_at >= since);
}

/** Runs the stack's queue-alert (evaluate, then send what is due) as the service role. */
async function runQueueAlert(serviceRole: string): Promise<Record<string, unknown>> {
  const res = await fetch(QUEUE_ALERT_URL, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceRole}`, 'content-type': 'application/json' },
    body: JSON.stringify({ evaluate: true }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body;
}

Deno.test({
  name: "the demo's sms and pagerduty channels get its alerts at the local Twilio and PagerDuty",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const sql = connect({ max: 2, prepare: false });
    const queue = `dc_${crypto.randomUUID().replaceAll('-', '').slice(0, 8)}`;
    const rule = queue;
    const { serviceRole } = await localKeys();
    // Other tests leave queues in the default project, where the default rules may fire: while
    // this test runs, only its own rule is enabled there, so the channels' group holds its alert
    // alone (and resolves when it does).
    const paused = await sql<{ id: string }[]>`
      update queue_health.alert_rule set enabled = false
       where project_id = 'default' and enabled returning id`;
    // The demo's channels are removed again unless they were there before: left in 'default',
    // they would collect the notifications of every later test's queue-alert run.
    const before = await sql<{ id: string }[]>`
      select id from queue_health.channel where project_id = 'default'`;
    try {
      await seedDemo(sql);
      const channels = await sql<{ id: string; kind: string }[]>`
        select id, kind from queue_health.channel
         where project_id = 'default' and name in ('demo-sms', 'demo-pagerduty') and enabled
         order by kind`;
      assert.deepEqual(channels.map((c) => c.kind), ['pagerduty', 'sms'], 'seeded by seedDemo');

      const [{ since }] = await sql<{ since: string }[]>`
        select to_char(now() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as since`;
      await sql`select pgmq.create(${queue})`;
      await sql`select pgmq.send_batch(${queue}, array_fill('{"demo": true}'::jsonb, array[5]))`;
      await sql`
        insert into queue_health.alert_rule
          (project_id, name, condition, comparator, threshold, queue_name, for_duration,
           group_wait, group_interval, channel_ids, severity, summary)
        values ('default', ${rule}, 'depth', '>', 3, ${queue}, '0', '0', '1 second',
                ${channels.map((c) => c.id)}::uuid[], 'critical',
                '{{queue}} holds {{value}} messages')`;
      await sql`select queue_health.capture()`;

      let sms: Received[] = [];
      let pd: Received[] = [];
      for (let i = 0; i < 10 && (sms.length === 0 || pd.length === 0); i++) {
        await runQueueAlert(serviceRole);
        sms = (await received('twilio', since)).filter((r) =>
          new URLSearchParams(r.raw).get('Body')?.includes(queue)
        );
        pd = (await received('pagerduty', since)).filter((r) =>
          JSON.stringify(r.body).includes(queue)
        );
        if (sms.length === 0 || pd.length === 0) await sleep(500);
      }

      assert.equal(sms.length, 1, 'one text to the demo number');
      const form = new URLSearchParams(sms[0].raw);
      assert.deepEqual(form.getAll('To'), DEMO_TWILIO.to);
      assert.equal(form.get('From'), DEMO_TWILIO.from);
      assert.match(form.get('Body')!, /^FIRING critical \(default\)/);
      assert.ok(sms[0].path.includes(DEMO_TWILIO.account_sid), sms[0].path);

      assert.equal(pd.length, 1, 'one PagerDuty event');
      const trigger = pd[0].body as {
        routing_key: string;
        event_action: string;
        dedup_key: string;
        payload: { severity: string; source: string };
      };
      assert.equal(trigger.routing_key, DEMO_PAGERDUTY_KEY);
      assert.equal(trigger.event_action, 'trigger');
      assert.equal(trigger.payload.severity, 'critical');
      assert.equal(trigger.payload.source, 'queue-health-demo', "the demo channel's config");

      // The queue drains: the PagerDuty alert resolves under the same key.
      await sql`select pgmq.purge_queue(${queue})`;
      await sql`select queue_health.capture()`;
      let resolve: Received | undefined;
      for (let i = 0; i < 10 && !resolve; i++) {
        await runQueueAlert(serviceRole);
        resolve = (await received('pagerduty', since)).find((r) =>
          (r.body as { event_action?: string; dedup_key?: string }).event_action === 'resolve' &&
          (r.body as { dedup_key?: string }).dedup_key === trigger.dedup_key
        );
        if (!resolve) await sleep(500);
      }
      assert.ok(resolve, 'a resolve with the trigger dedup_key');
    } finally {
      await sql`delete from queue_health.alert_rule where project_id = 'default' and name = ${rule}`
        .catch(() => {});
      await sql`select pgmq.drop_queue(${queue})`.catch(() => {});
      await sql`delete from queue_health.channel
                 where project_id = 'default'
                   and not (id = any (${before.map((c) => c.id)}::uuid[]))`.catch(() => {});
      if (paused.length) {
        await sql`update queue_health.alert_rule set enabled = true
                   where id in ${sql(paused.map((r) => r.id))}`.catch(() => {});
      }
      await sql`select queue_health.capture()`.catch(() => {});
      await sql.end({ timeout: 5 });
    }
  },
});
