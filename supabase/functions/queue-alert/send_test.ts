import assert from 'node:assert/strict';
import { Pacer } from './send.ts';

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
