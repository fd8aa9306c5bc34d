import assert from 'node:assert/strict';
import { createLogger, redactUrls } from './log.ts';

Deno.test('createLogger() writes one JSON line per event with base fields', () => {
  const lines: string[] = [];
  const logger = createLogger({ fn: 'queue-alert' }, (line) => lines.push(line));
  logger.info('delivery', { status: 'sent', http_status: 200 });
  assert.equal(lines.length, 1);
  const record = JSON.parse(lines[0]);
  assert.equal(record.event, 'delivery');
  assert.equal(record.fn, 'queue-alert');
  assert.equal(record.http_status, 200);
  assert.ok(!lines[0].includes('\n'));
});

Deno.test('createLogger() never prints secrets or secret-bearing URLs', () => {
  const lines: string[] = [];
  const logger = createLogger({}, (line) => lines.push(line));
  logger.error('oops', {
    signing_secret: 'whsec_abc',
    api_key: 're_123',
    nested: { url: 'https://hooks.slack.com/services/T0/B0/XYZ' },
    error: 'fetch https://hooks.slack.com/services/T0/B0/XYZ failed',
  });
  assert.ok(!lines[0].includes('whsec_abc'));
  assert.ok(!lines[0].includes('re_123'));
  assert.ok(!lines[0].includes('XYZ'), lines[0]);
});

Deno.test('redactUrls() keeps scheme and host only', () => {
  assert.equal(
    redactUrls('see https://u:p@example.com/a/b?token=1 now'),
    'see https://example.com/… now',
  );
});
