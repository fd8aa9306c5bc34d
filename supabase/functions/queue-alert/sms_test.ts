import assert from 'node:assert/strict';
import { parsePayload } from './payload.ts';
import {
  classifyTwilio,
  clipSms,
  formEncode,
  gsm7Length,
  renderSms,
  SMS_MAX_CHARS,
  smsConfigSchema,
  smsReference,
  smsSegments,
} from './sms.ts';
import { alert, payload } from './test_fixtures.ts';

const ID = '1a2b3c4d-0000-4000-8000-000000000001';

Deno.test('an SMS names status, severity, project, rule, queue, value, link and reference in one segment', () => {
  const text = renderSms(
    parsePayload(payload([alert(), alert({ queue: 'billing', severity: 'warning' })])),
    smsReference(ID),
  );
  assert.equal(
    text,
    'FIRING critical (acme): queue backlog on emails = 120 (threshold 60), +1 more ' +
      'https://dash.example.com/acme Ref 1a2b3c4d',
  );
  assert.equal(smsSegments(text), 1);
});

Deno.test('value_text is shown instead of the number; a resolved SMS says RESOLVED', () => {
  const eta = renderSms(
    parsePayload(payload([alert({ condition: 'drain_eta_s', value: null, value_text: 'never' })])),
    'abcdef01',
  );
  assert.match(eta, /queue backlog on emails = never https/);
  const resolved = renderSms(
    parsePayload(payload([alert({ state: 'resolved' }), alert({ state: 'resolved', queue: 'b' })])),
    'abcdef01',
  );
  assert.equal(
    resolved,
    'RESOLVED (acme): queue backlog on emails, +1 more https://dash.example.com/acme Ref abcdef01',
  );
});

Deno.test('long names are cut to keep one segment; the link and the reference are never cut', () => {
  const long = 'r'.repeat(400);
  const text = renderSms(parsePayload(payload([alert({ rule_name: long })])), 'abcdef01');
  assert.ok(text.length <= 160, `${text.length}`);
  assert.ok(text.endsWith(' https://dash.example.com/acme Ref abcdef01'));
  assert.match(text, /r\.\.\. https/);

  // A dashboard link too long for one segment still goes out whole, within Twilio's limit.
  const link = `https://dash.example.com/${'x'.repeat(300)}`;
  const withLink = renderSms(
    parsePayload(payload([alert({ rule_name: long })], { dashboard_url: link })),
    'abcdef01',
  );
  assert.ok(withLink.includes(link));
  assert.ok(withLink.length <= SMS_MAX_CHARS);
  assert.match(withLink, /^FIRING critical \(acme\): r{20}/, 'the head keeps at least 60 chars');
});

Deno.test('a non-GSM character makes a UCS-2 text: the head is cut to one 70-character segment', () => {
  const text = renderSms(
    parsePayload(payload([alert({ queue: 'émails→eu', rule_name: 'backlog 🚨 too long' })], {
      dashboard_url: null,
    })),
    'abcdef01',
  );
  assert.equal(gsm7Length(text), null);
  assert.ok(text.length <= 75, `${text.length}: ${text}`);
  assert.ok(text.endsWith(' Ref abcdef01'));
});

Deno.test('clipSms never leaves half a surrogate pair and marks the cut with "..."', () => {
  const emoji = '🚨'; // two UTF-16 units
  const text = `ab${emoji.repeat(10)}`;
  for (let max = 4; max < text.length; max++) {
    const out = clipSms(text, max);
    assert.ok(out.length <= max, `${max}: ${out.length}`);
    assert.ok(out.endsWith('...'));
    const body = out.slice(0, -3);
    // No lone surrogate: re-encoding as UTF-8 and back gives the same string.
    assert.equal(new TextDecoder().decode(new TextEncoder().encode(body)), body, `max ${max}`);
  }
  assert.equal(clipSms('short', 10), 'short');
});

Deno.test('GSM-7 length counts extension characters twice; segments split at 153 septets', () => {
  assert.equal(gsm7Length('abc'), 3);
  assert.equal(gsm7Length('a[b]€'), 8);
  assert.equal(gsm7Length('é_ok'), 4);
  assert.equal(gsm7Length('🚨'), null);
  assert.equal(smsSegments('x'.repeat(160)), 1);
  assert.equal(smsSegments('x'.repeat(161)), 2);
  assert.equal(smsSegments('é'.repeat(306)), 2);
  assert.equal(smsSegments('→'.repeat(70)), 1);
  assert.equal(smsSegments('→'.repeat(71)), 2);
});

Deno.test('the form body is URL-encoded UTF-8 in field order, spaces as +', () => {
  assert.equal(
    formEncode({ To: '+14155550123', From: '+14155550100', Body: 'a b&c=d é🚨' }),
    'To=%2B14155550123&From=%2B14155550100&Body=a+b%26c%3Dd+%C3%A9%F0%9F%9A%A8',
  );
  const back = new URLSearchParams(formEncode({ Body: 'FIRING (acme): x = 1 Ref 0a' }));
  assert.equal(back.get('Body'), 'FIRING (acme): x = 1 Ref 0a');
});

Deno.test('the reference is the first 8 hex digits of the notification id', () => {
  assert.equal(smsReference(ID), '1a2b3c4d');
  assert.equal(smsReference('ABCDEF12-3456'), 'abcdef12');
});

Deno.test("Twilio's answers: 201 sent, 429/5xx/21611 retried, other 4xx dead naming the code", () => {
  assert.equal(classifyTwilio(201, '{"sid":"SM1"}', null).status, 'sent');
  const limited = classifyTwilio(
    429,
    '{"code":20429,"message":"Too Many Requests","more_info":"https://www.twilio.com/docs/errors/20429","status":429}',
    5000,
  );
  assert.deepEqual(limited, {
    status: 'retry',
    httpStatus: 429,
    error: 'twilio 429 20429: Too Many Requests',
    retryAfterMs: 5000,
  });
  assert.equal(classifyTwilio(503, 'upstream down', null).status, 'retry');
  assert.equal(
    classifyTwilio(400, '{"code":21611,"message":"queue full","status":400}', null).status,
    'retry',
  );
  const bad = classifyTwilio(
    400,
    `{"code":21211,"message":"Invalid 'To' Phone Number: +1500","status":400}`,
    null,
  );
  assert.deepEqual(bad, {
    status: 'dead',
    httpStatus: 400,
    error: "twilio 400 21211: Invalid 'To' Phone Number: +1500",
  });
  assert.equal(
    classifyTwilio(401, '{"code":20003,"message":"Authenticate","status":401}', null).status,
    'dead',
  );
});

Deno.test('the sms config takes 1 to 10 E.164 numbers and exactly one sender', () => {
  const ok = smsConfigSchema.safeParse({ to: '+14155550123, +14155550124', from: '+14155550100' });
  assert.ok(ok.success);
  assert.deepEqual(ok.data.to, ['+14155550123', '+14155550124']);
  assert.ok(!smsConfigSchema.safeParse({ to: ['0155'], from: '+14155550100' }).success);
  assert.ok(!smsConfigSchema.safeParse({ to: ['+14155550123'] }).success);
  assert.ok(
    !smsConfigSchema.safeParse({
      to: ['+14155550123'],
      from: '+14155550100',
      messaging_service_sid: `MG${'0'.repeat(32)}`,
    }).success,
  );
});
