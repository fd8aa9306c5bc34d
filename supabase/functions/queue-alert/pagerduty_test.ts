import assert from 'node:assert/strict';
import { classifyPagerDuty, dedupKey, PAGERDUTY_MAX_ALERTS, renderPagerDuty } from './pagerduty.ts';
import { parsePayload } from './payload.ts';
import { alert, payload } from './test_fixtures.ts';

const KEY = 'R0123456789abcdefABCDEF012345678';
const NOW = new Date('2026-11-26T10:05:00Z');

function render(p: Record<string, unknown>, config = {}) {
  return renderPagerDuty(parsePayload(p), {
    routingKey: KEY,
    dedupKey: 'acme/c1',
    notificationId: 'n1',
    config,
    now: NOW,
  });
}

Deno.test('a firing notification is a trigger with the group key, mapped severity and the values', () => {
  const e = render(payload([
    alert({
      severity: 'warning',
      queue: 'billing',
      value: 70,
      fired_at: '2026-11-26T10:03:00Z',
      queue_labels: { team: 'payments' },
    }),
    alert({ value: null, value_text: 'never', condition: 'drain_eta_s', queue_labels: {} }),
  ]));
  assert.equal(e.event_action, 'trigger');
  assert.equal(e.routing_key, KEY);
  assert.equal(e.dedup_key, 'acme/c1');
  assert.equal(e.payload?.severity, 'critical', 'the highest firing severity');
  // Firing alerts are sorted critical first by parsePayload: the critical one leads.
  assert.equal(
    e.payload?.summary,
    '[acme] emails: oldest ready job is 120 s old (threshold 60 s) (+1 more firing)',
  );
  assert.equal(e.payload?.source, 'queue-health:acme');
  assert.equal(e.payload?.component, 'emails');
  assert.equal(e.payload?.group, 'pgboss');
  assert.equal(e.payload?.class, 'drain_eta_s');
  assert.equal(e.payload?.timestamp, '2026-11-26T10:02:00.000Z', 'the earliest fired_at');
  const d = e.payload?.custom_details as { alerts: Record<string, unknown>[]; firing: number };
  assert.equal(d.firing, 2);
  assert.deepEqual(
    d.alerts.map((a) => [a.queue, a.value, a.value_text, a.threshold]),
    [['emails', null, 'never', 60], ['billing', 70, null, 60]],
  );
  assert.deepEqual(
    d.alerts.map((a) => a.labels),
    [undefined, { team: 'payments' }],
    "the queue's labels, where it has any",
  );
  assert.deepEqual(e.links, [
    { href: 'https://dash.example.com/acme', text: 'Queue Health dashboard' },
    { href: 'https://runbooks.example.com/queue-backlog', text: 'Runbook' },
  ]);
  assert.equal(e.client, 'Queue Health');
  assert.equal(e.client_url, 'https://dash.example.com/acme');
});

Deno.test("the channel's source/component/group/class win; info and warning map to themselves", () => {
  const e = render(payload([alert({ severity: 'info' })]), {
    source: 'db-prod',
    component: 'jobs',
    group: 'payments',
    class: 'queue latency',
  });
  assert.equal(e.payload?.severity, 'info');
  assert.deepEqual(
    [e.payload?.source, e.payload?.component, e.payload?.group, e.payload?.class],
    ['db-prod', 'jobs', 'payments', 'queue latency'],
  );
  assert.equal(render(payload([alert({ severity: 'warning' })])).payload?.severity, 'warning');
});

Deno.test('a resolved notification is a resolve with the same dedup_key and nothing else', () => {
  const e = render(payload([alert({ state: 'resolved' })]));
  assert.deepEqual(e, { routing_key: KEY, dedup_key: 'acme/c1', event_action: 'resolve' });
});

Deno.test('the summary is at most 1024 characters, cut between characters; alerts are capped', () => {
  const e = render(payload([alert({ summary: `${'🚨'.repeat(600)}` })]));
  const s = e.payload!.summary;
  assert.ok(s.length <= 1024, `${s.length}`);
  assert.ok(s.endsWith('…'));
  assert.equal(new TextDecoder().decode(new TextEncoder().encode(s)), s, 'no lone surrogate');
  const many = render(payload(Array.from({ length: 150 }, (_, i) => alert({ queue: `q${i}` }))));
  const d = many.payload!.custom_details as { alerts: unknown[]; alerts_not_listed: number };
  assert.equal(d.alerts.length, PAGERDUTY_MAX_ALERTS);
  assert.equal(d.alerts_not_listed, 50);
  assert.ok(JSON.stringify(many).length < 512 * 1024);
});

Deno.test('the dedup key is the group key, hashed only when longer than 255 characters', async () => {
  assert.equal(await dedupKey('acme', 'c1'), 'acme/c1');
  const long = await dedupKey('p'.repeat(300), 'c1');
  assert.match(long, /^sha256:[0-9a-f]{64}$/);
  assert.equal(long, await dedupKey('p'.repeat(300), 'c1'), 'the same group, the same key');
});

Deno.test("PagerDuty's answers: 202 sent with its dedup_key, 400 dead with errors, 429/5xx retried", () => {
  assert.deepEqual(
    classifyPagerDuty(
      202,
      '{"status":"success","message":"Event processed","dedup_key":"acme/c1"}',
      null,
    ),
    { status: 'sent', httpStatus: 202, providerMessageId: 'acme/c1' },
  );
  assert.deepEqual(
    classifyPagerDuty(
      400,
      `{"status":"invalid event","message":"Event object is invalid","errors":["'payload.summary' is missing or blank"]}`,
      null,
    ),
    {
      status: 'dead',
      httpStatus: 400,
      error:
        "pagerduty 400 invalid event: Event object is invalid: 'payload.summary' is missing or blank",
    },
  );
  const limited = classifyPagerDuty(429, '', null);
  assert.equal(limited.status, 'retry');
  assert.equal(limited.status === 'retry' && limited.retryAfterMs, 30_000, 'PD suggests 30 s');
  const told = classifyPagerDuty(429, '', 7_000);
  assert.equal(told.status === 'retry' && told.retryAfterMs, 7_000);
  assert.equal(classifyPagerDuty(502, 'bad gateway', null).status, 'retry');
  assert.equal(classifyPagerDuty(403, '', null).status, 'dead');
});
