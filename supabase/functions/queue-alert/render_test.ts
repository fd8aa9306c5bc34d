import assert from 'node:assert/strict';
import { parsePayload } from './payload.ts';
import {
  escapeHtml,
  MAX_LISTED_ALERTS,
  renderEmail,
  renderSlack,
  renderWebhook,
  subject,
} from './render.ts';
import { alert, payload } from './test_fixtures.ts';

const many = (n: number) =>
  Array.from({ length: n }, (_, i) => alert({ alert_id: String(i), queue: `q${i}` }));

Deno.test('subject says FIRING or RESOLVED with the count, severity, rule and project', () => {
  assert.equal(
    subject(parsePayload(payload(many(3)))),
    '[FIRING:3] critical — queue backlog in project acme',
  );
  assert.equal(
    subject(parsePayload(payload([alert()]))),
    '[FIRING:1] critical — queue backlog on emails (pgboss) in project acme',
  );
  const resolved = parsePayload(
    payload([alert({ state: 'resolved', resolved_at: '2026-11-26T10:09:00Z' })], {
      severity: 'warning',
    }),
  );
  assert.match(subject(resolved), /^\[RESOLVED:1\] warning — /);
});

Deno.test('email escapes queue names with <, & and quotes in HTML but not in text', () => {
  const evil = `<script>alert("x")</script> & 'q'`;
  const email = renderEmail(parsePayload(payload([alert({ queue: evil, summary: evil })])));
  assert.ok(!email.html.includes('<script>'), 'raw tag in html');
  assert.ok(
    email.html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;q&#39;'),
  );
  assert.ok(email.text.includes(evil), 'plain text keeps the name as is');
  assert.ok(email.html.includes('href="https://runbooks.example.com/queue-backlog"'));
  assert.ok(email.text.includes('Runbook: https://runbooks.example.com/queue-backlog'));
});

Deno.test('a runbook URL that is not http(s) is dropped, not linked', () => {
  const email = renderEmail(
    parsePayload(payload([alert({ runbook_url: 'javascript:alert(1)' })])),
  );
  assert.ok(!email.html.includes('javascript:'));
});

Deno.test('Slack message: valid block shapes, text fallback, header tells firing from resolved', () => {
  const firing = renderSlack(parsePayload(payload(many(2))));
  assert.ok(firing.text.startsWith('[FIRING:2] critical'));
  const header = firing.blocks[0] as { type: string; text: { type: string; text: string } };
  assert.equal(header.type, 'header');
  assert.equal(header.text.type, 'plain_text');
  assert.ok(header.text.text.length <= 150);
  assert.match(header.text.text, /FIRING/);
  for (const b of firing.blocks) {
    assert.ok(['header', 'section', 'context', 'actions'].includes(b.type as string));
    if (b.type === 'section') {
      const t = (b as { text: { type: string; text: string } }).text;
      assert.equal(t.type, 'mrkdwn');
      assert.ok(t.text.length > 0 && t.text.length <= 3000);
    }
    if (b.type === 'context') {
      assert.ok(Array.isArray((b as { elements: unknown[] }).elements));
    }
  }
  assert.ok(firing.blocks.length <= 50);
  const sections = firing.blocks.filter((b) => b.type === 'section');
  assert.equal(sections.length, 2);
  assert.match(
    JSON.stringify(sections[0]),
    /<https:\/\/runbooks\.example\.com\/queue-backlog\|Runbook>/,
  );
  assert.match(JSON.stringify(sections[0]), /Firing/);

  const resolved = renderSlack(parsePayload(payload([alert({ state: 'resolved' })])));
  assert.match((resolved.blocks[0] as { text: { text: string } }).text.text, /RESOLVED/);
  assert.match(JSON.stringify(resolved.blocks[1]), /white_check_mark.*Resolved/);
  assert.ok(resolved.text.startsWith('[RESOLVED:1]'));
});

Deno.test('Slack lists at most MAX_LISTED_ALERTS queues and says "and N more"', () => {
  const msg = renderSlack(parsePayload(payload(many(MAX_LISTED_ALERTS + 5))));
  assert.equal(msg.blocks.filter((b) => b.type === 'section').length, MAX_LISTED_ALERTS);
  assert.match(JSON.stringify(msg.blocks), /and 5 more/);
  assert.match(msg.text, /and 5 more/);
});

Deno.test('Slack escapes &, < and > in queue names so they cannot form links or mentions', () => {
  const msg = renderSlack(
    parsePayload(payload([alert({ queue: '<!channel> & <x|y>', summary: null })])),
  );
  // mrkdwn (sections, context, the text fallback) is parsed by Slack; plain_text headers are not.
  const s = JSON.stringify([msg.text, msg.blocks.filter((b) => b.type !== 'header')]);
  assert.ok(!s.includes('<!channel>'));
  assert.ok(s.includes('&lt;!channel&gt; &amp; &lt;x|y&gt;'));
});

Deno.test('firing alerts are listed before resolved ones, critical before warning', () => {
  const p = parsePayload(payload([
    alert({ queue: 'a', state: 'resolved' }),
    alert({ queue: 'b', severity: 'warning' }),
    alert({ queue: 'c', severity: 'critical' }),
  ]));
  assert.deepEqual(p.alerts.map((a) => a.queue), ['c', 'b', 'a']);
});

Deno.test('webhook body is versioned and carries every alert', () => {
  const body = renderWebhook('n-1', 'c-1', parsePayload(payload(many(12))));
  assert.equal(body.version, '1');
  assert.equal(body.id, 'n-1');
  assert.equal(body.type, 'queue_health.alert');
  assert.equal(body.alerts.length, 12);
  assert.deepEqual(body.counts, { firing: 12, resolved: 0 });
  assert.deepEqual(Object.keys(body.alerts[0]).sort(), [
    'alert_id',
    'condition',
    'fired_at',
    'queue',
    'queue_labels',
    'resolved_at',
    'rule_id',
    'rule_name',
    'runbook_url',
    'severity',
    'source',
    'source_schema',
    'started_at',
    'state',
    'summary',
    'threshold',
    'value',
    'value_text',
  ]);
});

Deno.test('parsePayload() names the bad field', () => {
  assert.throws(() => parsePayload({ ...payload(), status: 'odd' }), /payload.status/);
  assert.throws(() => parsePayload({ ...payload(), v: 2 }), /payload.v/);
  assert.throws(
    () => parsePayload(payload([alert({ severity: 'meh' })])),
    /severity/,
  );
});

Deno.test('escapeHtml() escapes the five HTML specials', () => {
  assert.equal(
    escapeHtml(`<a href="x">'&'</a>`),
    '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
  );
});

Deno.test('a firing alert says since when, a resolved one says when it resolved', () => {
  const p = parsePayload(payload([
    alert(),
    alert({ queue: 'b', state: 'resolved', resolved_at: '2026-11-26T10:09:00Z' }),
  ]));
  const { text } = renderEmail(p);
  assert.match(text, /since 2026-11-26T10:02:00Z/);
  assert.match(text, /resolved 2026-11-26T10:09:00Z/);
  assert.match(JSON.stringify(renderSlack(p).blocks), /resolved 2026-11-26T10:09:00Z/);
});

Deno.test('a value SQL can only say in words (never, a flow status) shows as words everywhere', () => {
  const p = parsePayload(
    payload([
      alert({ condition: 'drain_eta', value: null, value_text: 'never', threshold: 3600 }),
      alert({ alert_id: 'b', condition: 'flow_status', value: null, value_text: 'stalled' }),
    ]),
  );
  const email = renderEmail(p);
  assert.ok(email.text.includes('value never'), email.text);
  assert.ok(email.text.includes('value stalled'), email.text);
  assert.ok(!email.text.includes('threshold 3600'), 'a threshold next to a word means nothing');
  assert.ok(JSON.stringify(renderSlack(p)).includes('value never'));
  const hook = renderWebhook('n1', 'c1', p);
  assert.deepEqual(hook.alerts.map((a) => [a.value, a.value_text]), [[null, 'never'], [
    null,
    'stalled',
  ]]);
  assert.throws(
    () => parsePayload(payload([alert({ value_text: 'x'.repeat(201) })])),
    /alerts\[\]\.value_text/,
  );
});
