import assert from 'node:assert/strict';
import { classifyResend, classifySlack, classifyWebhook } from './classify.ts';

Deno.test('Slack: each documented answer maps to sent, retry or dead', () => {
  const table: [number, string, string][] = [
    [200, 'ok', 'sent'],
    [429, 'rate_limited', 'retry'],
    [500, 'rollup_error', 'retry'],
    [503, '', 'retry'],
    [408, '', 'retry'],
    [400, 'invalid_payload', 'dead'],
    [400, 'no_text', 'dead'],
    [403, 'invalid_token', 'dead'],
    [403, 'action_prohibited', 'dead'],
    [404, 'no_service', 'dead'],
    [404, 'channel_not_found', 'dead'],
    [410, 'channel_is_archived', 'dead'],
  ];
  for (const [status, body, expected] of table) {
    const o = classifySlack(status, body, null);
    assert.equal(o.status, expected, `${status} ${body}`);
    if (o.status !== 'sent') assert.ok(o.error.includes(body), o.error);
  }
});

Deno.test('Slack 429 carries Retry-After through', () => {
  const o = classifySlack(429, 'rate_limited', 2000);
  assert.ok(o.status === 'retry' && o.retryAfterMs === 2000);
});

Deno.test('Resend: 429/5xx/network/concurrent retry; validation and key errors are dead', () => {
  const table: [number | null, string, string][] = [
    [429, 'rate_limit_exceeded', 'retry'],
    [429, 'daily_quota_exceeded', 'retry'],
    [500, 'internal_server_error', 'retry'],
    [null, 'application_error', 'retry'],
    [409, 'concurrent_idempotent_requests', 'retry'],
    [409, 'invalid_idempotent_request', 'dead'],
    [400, 'validation_error', 'dead'],
    [401, 'missing_api_key', 'dead'],
    [403, 'invalid_api_key', 'dead'],
    [404, 'not_found', 'dead'],
    [422, 'invalid_from_address', 'dead'],
    [422, 'missing_required_field', 'dead'],
  ];
  for (const [statusCode, name, expected] of table) {
    const o = classifyResend({ statusCode, name, message: 'm' }, null);
    assert.equal(o.status, expected, `${statusCode} ${name}`);
  }
  const limited = classifyResend({ statusCode: 429, name: 'rate_limit_exceeded' }, 1000);
  assert.ok(limited.status === 'retry' && limited.retryAfterMs === 1000);
});

Deno.test('webhook: 2xx sent with provider id, 410 and redirects dead, anything else retried', () => {
  assert.deepEqual(classifyWebhook(204, '', null, 'req-1'), {
    status: 'sent',
    httpStatus: 204,
    providerMessageId: 'req-1',
  });
  assert.equal(classifyWebhook(410, 'gone', null, null).status, 'dead');
  assert.equal(classifyWebhook(301, '', null, null).status, 'dead');
  for (const s of [400, 401, 404, 429, 500, 502]) {
    assert.equal(classifyWebhook(s, '', null, null).status, 'retry', String(s));
  }
  const secretish = classifyWebhook(500, 'internal-token-abc', null, null);
  assert.ok(secretish.status === 'retry' && !secretish.error.includes('internal-token'));
  assert.equal(secretish.error, 'webhook 500 Internal Server Error');
  const o = classifyWebhook(429, '', 5000, null);
  assert.ok(o.status === 'retry' && o.retryAfterMs === 5000);
});
