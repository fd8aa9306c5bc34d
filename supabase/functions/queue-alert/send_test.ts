import assert from 'node:assert/strict';
import { sha256Hex } from '../_shared/hash.ts';
import { Pacer, SharedPacer } from './send.ts';

function fakeClock() {
  let t = 1_000_000;
  const sleeps: number[] = [];
  return {
    now: () => t,
    sleep: (ms: number) => {
      sleeps.push(ms);
      return Promise.resolve();
    },
    advance: (ms: number) => (t += ms),
    sleeps,
  };
}

Deno.test('Pacer spaces calls that share a key, even when they start at once', async () => {
  const c = fakeClock();
  const p = new Pacer(c.now, c.sleep);
  await Promise.all([p.wait('a', 1000), p.wait('a', 1000), p.wait('a', 1000), p.wait('b', 1000)]);
  assert.deepEqual(c.sleeps, [1000, 2000]);
});

Deno.test('Pacer lets a call through at once when the interval has passed', async () => {
  const c = fakeClock();
  const p = new Pacer(c.now, c.sleep);
  await p.wait('a', 1000);
  c.advance(1500);
  await p.wait('a', 1000);
  assert.deepEqual(c.sleeps, []);
});

Deno.test('Pacer refuses a slot after notAfter without taking it', async () => {
  const c = fakeClock();
  const p = new Pacer(c.now, c.sleep);
  assert.equal(await p.wait('a', 1000, c.now() + 500), true);
  assert.equal(await p.wait('a', 1000, c.now() + 500), false, 'next slot is 1000 ms away');
  assert.equal(await p.wait('a', 1000, c.now() + 1000), true, 'the refused slot was not taken');
  assert.deepEqual(c.sleeps, [1000]);
});

Deno.test('SharedPacer waits what the shared turn says, under a hashed key, and not for unpaced keys', async () => {
  const c = fakeClock();
  const calls: [string, number, number | null][] = [];
  const waits = [0, 700, null];
  const p = new SharedPacer(
    (key, interval, maxWait) => {
      calls.push([key, interval, maxWait]);
      return Promise.resolve(waits.shift()!);
    },
    c.now,
    c.sleep,
  );
  assert.equal(await p.wait('slack:https://hooks.slack.com/services/T/B/x', 1000), true);
  assert.equal(
    await p.wait('slack:https://hooks.slack.com/services/T/B/x', 1000, c.now() + 5000),
    true,
  );
  assert.equal(
    await p.wait('slack:https://hooks.slack.com/services/T/B/x', 1000, c.now() + 200),
    false,
  );
  assert.equal(await p.wait('webhook:https://example.com/hook', 0), true);
  const hashed = await sha256Hex('slack:https://hooks.slack.com/services/T/B/x');
  assert.match(hashed, /^[0-9a-f]{64}$/);
  assert.deepEqual(calls, [[hashed, 1000, null], [hashed, 1000, 5000], [hashed, 1000, 200]]);
  assert.deepEqual(c.sleeps, [700]);
});

Deno.test('SharedPacer falls back to its own pacing, once told why, when the database fails', async () => {
  const c = fakeClock();
  const told: unknown[] = [];
  let asked = 0;
  const p = new SharedPacer(
    () => {
      asked++;
      return Promise.reject(new Error('function queue_health.take_send_turn does not exist'));
    },
    c.now,
    c.sleep,
    (e) => told.push(e),
  );
  await Promise.all([p.wait('a', 1000), p.wait('a', 1000)]);
  await p.wait('a', 1000);
  assert.equal(told.length >= 1 && told.length <= 2, true, 'told when it failed');
  assert.equal(asked, told.length, 'the database is not asked again after a failure');
  assert.deepEqual(c.sleeps, [1000, 2000], 'paced locally instead');
});
