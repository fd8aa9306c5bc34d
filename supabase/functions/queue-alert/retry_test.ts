import assert from 'node:assert/strict';
import { backoffMs, parseRetryAfter, RETRY_AFTER_MAX_MS } from './retry.ts';

const now = new Date('2026-11-26T12:00:00Z');

Deno.test('parseRetryAfter() reads delay-seconds', () => {
  assert.equal(parseRetryAfter('2', now), 2000);
  assert.equal(parseRetryAfter(' 120 ', now), 120_000);
  assert.equal(parseRetryAfter('1.5', now), 1500);
  assert.equal(parseRetryAfter('0', now), 0);
});

Deno.test('parseRetryAfter() reads an HTTP date relative to now, never negative', () => {
  assert.equal(parseRetryAfter('Thu, 26 Nov 2026 12:00:30 GMT', now), 30_000);
  assert.equal(parseRetryAfter('Thu, 26 Nov 2026 11:00:00 GMT', now), 0);
});

Deno.test('parseRetryAfter() returns null for absent or unreadable values and caps huge ones', () => {
  assert.equal(parseRetryAfter(null, now), null);
  assert.equal(parseRetryAfter(undefined, now), null);
  assert.equal(parseRetryAfter('', now), null);
  assert.equal(parseRetryAfter('soon', now), null);
  assert.equal(parseRetryAfter('-5', now), null);
  assert.equal(parseRetryAfter('99999999', now), RETRY_AFTER_MAX_MS);
});

Deno.test('backoffMs() uses full jitter within [1 s, min(1 h, 30 s·2^(n−1))]', () => {
  assert.equal(backoffMs(1, () => 0), 1000);
  assert.equal(backoffMs(1, () => 0.999999), 29_999);
  assert.equal(backoffMs(2, () => 0.5), 30_000);
  assert.equal(backoffMs(3, () => 0.5), 60_000);
  assert.equal(backoffMs(8, () => 0.999999), 3_599_996);
  assert.equal(backoffMs(50, () => 0.999999), 3_599_996);
  for (let attempt = 1; attempt <= 12; attempt++) {
    for (const r of [0, 0.1, 0.5, 0.9, 0.999]) {
      const d = backoffMs(attempt, () => r);
      assert.ok(d >= 1000 && d <= 3_600_000, `attempt ${attempt} r ${r}: ${d}`);
      assert.ok(d <= Math.max(1000, 30_000 * 2 ** (attempt - 1)));
    }
  }
});
