/**
 * `npm start`'s demo workload shows every flow status (issue 22): the real pg-boss producers and
 * consumers of local/stack/demo.ts run on the test stack with a capture every 2 s, and each demo
 * queue must reach the flow status DEMO_FLOWS names for it in queue_health.metric. The flow window
 * is shortened to 20 s for the test (settings.flow_window; 10 min by default) and restored after,
 * so the whole test takes about a minute (bounded by TEST_BUDGET_MS). Also: the latency objectives
 * it sets collect seconds (reports misses its objective, emails keeps it), the healthy queues
 * stay ok and fire no alert, and the sms queue (always fails) has poison.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { DEMO_FLOWS, DEMO_OBJECTIVES, DEMO_SCHEMA, startDemoWorkload } from '../stack/demo.ts';
import { connect, databaseUrl } from './db.ts';
import { sleep } from './wait.ts';

/** The whole test must finish within this. */
const TEST_BUDGET_MS = 110_000;
/** The flow window of the test (settings.flow_window). */
const FLOW_WINDOW = '20 seconds';

Deno.test({
  name: 'the npm start demo shows every flow status, each on its queue',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const url = databaseUrl();
    const sql = connect({ url, max: 2, applicationName: 'qh-demo-test' });
    const queues = Object.keys(DEMO_FLOWS);
    const [{ flow_window: oldWindow, rate_smoothing: oldSmoothing }] = await sql`
      select flow_window::text, rate_smoothing::text from queue_health.settings where id`;
    let demo: Awaited<ReturnType<typeof startDemoWorkload>> | null = null;
    try {
      await sql`update queue_health.settings
                set flow_window = ${FLOW_WINDOW}::interval, rate_smoothing = '20 seconds'
                where id`;
      const [{ started }] = await sql`select now() as started`;
      demo = await startDemoWorkload({ url, captureEverySeconds: 2 });

      const deadline = Date.now() + TEST_BUDGET_MS - 10_000;
      let seen = new Map<string, Set<string>>();
      const missing = () =>
        Object.entries(DEMO_FLOWS).filter(([q, f]) => !seen.get(q)?.has(f)).map(([q, f]) =>
          `${q}: ${f} (saw ${[...(seen.get(q) ?? [])].join(', ') || 'none'})`
        );
      while (Date.now() < deadline) {
        await sleep(4000);
        const rows = await sql<{ queue_name: string; flows: string[] }[]>`
          select queue_name, array_agg(distinct flow_status::text) as flows
          from queue_health.metric
          where source = 'pgboss' and source_schema = ${DEMO_SCHEMA}
            and queue_name = any(${queues}) and captured_at > ${started}
            and flow_status is not null
          group by queue_name`;
        seen = new Map(rows.map((r) => [r.queue_name, new Set(r.flows)]));
        if (missing().length === 0) break;
      }
      console.log(
        `flow statuses seen: ${
          queues.map((q) => `${q} ${[...(seen.get(q) ?? [])].join('/')}`).join(', ')
        }`,
      );
      assert.deepEqual(missing(), [], 'every demo queue reaches its flow status');
      // Each status appears at least once across the demo.
      const all = new Set([...seen.values()].flatMap((s) => [...s]));
      for (const f of ['idle', 'ok', 'falling_behind', 'stalled', 'stopped', 'redelivering']) {
        assert.ok(all.has(f), `flow status ${f} appears`);
      }
      // The healthy and the idle queue never look like anything else.
      assert.deepEqual([...(seen.get('emails') ?? [])], ['ok']);
      assert.deepEqual([...(seen.get('nightly_exports') ?? [])], ['idle']);

      // The objectives collect seconds: reports (a growing backlog) misses its 60 s, emails keeps 30 s.
      const slo = await sql<{ queue_name: string; total: number; bad: number }[]>`
        select queue_name, sum(slo_total_s)::float8 as total, sum(slo_bad_s)::float8 as bad
        from queue_health.metric
        where source = 'pgboss' and source_schema = ${DEMO_SCHEMA}
          and queue_name = any(${DEMO_OBJECTIVES.map((o) => o.queue)}) and captured_at > ${started}
        group by queue_name order by queue_name`;
      const byQueue = Object.fromEntries(slo.map((r) => [r.queue_name, r]));
      assert.ok(byQueue.emails?.total > 0, 'seconds under the emails objective');
      assert.equal(byQueue.emails?.bad, 0, 'emails keeps its objective');
      assert.ok(byQueue.reports?.total > 0, 'seconds under the reports objective');

      // Poison: the sms consumer always fails, so its jobs are taken again and again.
      const [poison] = await sql<{ probed: boolean; max: number | null }[]>`
        select bool_or(poison is not null) as probed, max(poison)::int as max
        from queue_health.metric
        where source = 'pgboss' and source_schema = ${DEMO_SCHEMA} and queue_name = 'sms'
          and captured_at > ${started}`;
      assert.ok(poison.probed, 'the pg-boss sampler probed sms for poison');
      assert.ok((poison.max ?? 0) > 0, `sms has poison messages (at most ${poison.max})`);

      // The healthy queues stay ok, and no alert fires on them.
      const statuses = await sql<{ queue_name: string; status: string }[]>`
        select queue_name, status::text from queue_health.queue_status
        where source = 'pgboss' and source_schema = ${DEMO_SCHEMA}
          and queue_name in ('emails', 'nightly_exports') order by queue_name`;
      assert.deepEqual(statuses.map((r) => `${r.queue_name}: ${r.status}`), [
        'emails: ok',
        'nightly_exports: ok',
      ]);
      const firing = await sql<{ queue_name: string; name: string }[]>`
        select a.queue_name, r.name from queue_health.alert a
        join queue_health.alert_rule r on r.id = a.rule_id
        where a.source = 'pgboss' and a.source_schema = ${DEMO_SCHEMA}
          and a.queue_name in ('emails', 'nightly_exports') and a.state = 'firing'`;
      assert.deepEqual(
        firing.map((a) => `${a.queue_name}: ${a.name}`),
        [],
        'nothing fires on emails or nightly_exports',
      );
    } finally {
      await demo?.stop().catch((e) => console.error(`stopping the demo: ${e.message}`));
      await sql`update queue_health.settings
                set flow_window = ${oldWindow}::interval, rate_smoothing = ${oldSmoothing}::interval
                where id`.catch((e) => console.error(`restoring the settings: ${e.message}`));
      // The objectives are the demo's: other tests on this database do not expect them.
      await sql`delete from queue_health.queue_objective
                where project_id = 'default' and source = 'pgboss' and source_schema = ${DEMO_SCHEMA}
                  and queue_name = any(${DEMO_OBJECTIVES.map((o) => o.queue)})`.catch(() => {});
      await sql.end({ timeout: 2 });
    }
  },
});
