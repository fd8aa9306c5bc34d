/**
 * Two `queue_health.capture()` calls at once, on two connections: the transaction-scoped advisory
 * lock makes the second one record a skipped run and return at once, instead of waiting or
 * failing. Runs against the real database (env `DATABASE_URL`).
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from './db.ts';
import { rolledBack } from './rollback.ts';

interface CaptureSummary {
  run_id: number;
  status: 'ok' | 'skipped' | 'error' | 'partial';
  queues: number;
  rows: number;
  duration_ms: number;
  skipped: boolean;
}

/** A promise with its resolve function, to hand control between two connections. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve = () => {};
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Calls capture() in `sql` (a connection or a transaction). */
async function capture(sql: Sql): Promise<CaptureSummary> {
  const [{ summary }] = await sql<{ summary: CaptureSummary }[]>`
    select queue_health.capture() as summary`;
  return summary;
}

Deno.test('capture() records a skipped run and returns at once while another capture holds the lock', async () => {
  const first = connect({ max: 1, applicationName: 'qh-capture-concurrency-a' });
  const second = connect({ max: 1, applicationName: 'qh-capture-concurrency-b' });
  try {
    const firstDone = deferred();
    const secondDone = deferred();
    let firstSummary: CaptureSummary | undefined;
    let secondSummary: CaptureSummary | undefined;
    let skippedRunVisible = false;

    // The first capture keeps its transaction (and so the lock) open until the second is done.
    const holder = rolledBack(first, async (tx) => {
      firstSummary = await capture(tx);
      firstDone.resolve();
      await secondDone.promise;
    });
    await firstDone.promise;
    const started = performance.now();
    await rolledBack(second, async (tx) => {
      // Were capture() to wait for the lock, this fails the test instead of hanging it.
      await tx`set local statement_timeout = '5s'`;
      secondSummary = await capture(tx);
      const [{ status }] = await tx<{ status: string }[]>`
        select status::text from queue_health.capture_run where id = ${secondSummary.run_id}`;
      skippedRunVisible = status === 'skipped';
    }).finally(() => secondDone.resolve());
    const waitedMs = performance.now() - started;
    await holder;

    assert.ok(firstSummary, 'the first capture returned a summary');
    assert.notEqual(firstSummary.status, 'error', 'the first capture succeeded');
    assert.equal(firstSummary.skipped, false, 'the first capture was not skipped');
    assert.ok(secondSummary, 'the second capture returned a summary');
    assert.equal(secondSummary.skipped, true, 'the overlapping capture says it was skipped');
    assert.equal(secondSummary.status, 'skipped');
    assert.equal(secondSummary.rows, 0, 'a skipped capture writes no metric rows');
    assert.ok(skippedRunVisible, 'the skipped run is recorded in capture_run');
    assert.ok(
      waitedMs < 5000,
      `the skipped capture returned without waiting (took ${waitedMs} ms)`,
    );
  } finally {
    await Promise.all([first.end(), second.end()]);
  }
});

Deno.test('two capture() calls started together never fail: one is skipped or both run in turn', async () => {
  const a = connect({ max: 1, applicationName: 'qh-capture-concurrency-a' });
  const b = connect({ max: 1, applicationName: 'qh-capture-concurrency-b' });
  try {
    for (let round = 0; round < 5; round++) {
      const results = await Promise.allSettled([capture(a), capture(b)]);
      for (const r of results) {
        assert.equal(r.status, 'fulfilled', `capture() raised: ${JSON.stringify(r)}`);
      }
      const summaries = results.map((r) => (r as PromiseFulfilledResult<CaptureSummary>).value);
      for (const s of summaries) {
        assert.notEqual(s.status, 'error', `a concurrent capture errored: ${JSON.stringify(s)}`);
      }
      const ran = summaries.filter((s) => !s.skipped);
      assert.ok(ran.length >= 1, 'at least one of two concurrent captures runs');
      if (ran.length === 2) {
        assert.notEqual(ran[0].run_id, ran[1].run_id, 'two captures that both ran are two runs');
      }
    }
  } finally {
    await Promise.all([a.end(), b.end()]);
  }
});
