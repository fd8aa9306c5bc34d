import assert from 'node:assert/strict';
import { alternate, compare, fmt, median, quantile, summarize } from './stats.ts';

Deno.test('quantile() interpolates between closest ranks', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(quantile([4, 1, 3, 2], 0), 1);
  assert.equal(quantile([4, 1, 3, 2], 1), 4);
  assert.equal(median([5]), 5);
});

Deno.test('quantile() refuses an empty sample and a q outside [0, 1]', () => {
  assert.throws(() => quantile([], 0.5), /at least one value/);
  assert.throws(() => quantile([1], 1.5), /'q' must be between 0 and 1: got 1.5/);
});

Deno.test('summarize() reports min, quartiles, tails and max', () => {
  const s = summarize([10, 20, 30, 40, 50]);
  assert.deepEqual([s.n, s.min, s.p25, s.median, s.p75, s.max, s.mean], [
    5,
    10,
    20,
    30,
    40,
    50,
    30,
  ]);
});

Deno.test('summarize() takes a pooled sample of half a million latencies', () => {
  const values = Array.from({ length: 500_000 }, (_, i) => (i * 7919) % 500_000);
  const s = summarize(values);
  assert.deepEqual([s.n, s.min, s.max], [500_000, 0, 499_999]);
});

Deno.test('alternate() runs the sides A B A B and pairs them by round', async () => {
  const order: string[] = [];
  const c = await alternate(
    3,
    (i) => {
      order.push(`a${i}`);
      return Promise.resolve(10);
    },
    (i) => {
      order.push(`b${i}`);
      return Promise.resolve(10 * (i + 1));
    },
  );
  assert.deepEqual(order, ['a0', 'b0', 'a1', 'b1', 'a2', 'b2']);
  assert.deepEqual(c.ratios, [1, 2, 3]);
  assert.equal(c.ratio.median, 2);
});

Deno.test('compare() refuses samples of different lengths', () => {
  assert.throws(() => compare([1, 2], [1]), /equally long/);
});

Deno.test('fmt() keeps three significant digits and groups thousands', () => {
  assert.equal(fmt(0.012345), '0.0123');
  assert.equal(fmt(12345.6), '12,346');
  assert.equal(fmt(null), '–');
});
