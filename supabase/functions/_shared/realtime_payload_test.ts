import assert from 'node:assert/strict';
import {
  parseRealtimeSnapshot,
  SLIM_QUEUE_FIELDS,
  snapshotQueues,
  snapshotTopic,
} from './realtime_payload.ts';

const envelope = {
  project_id: 'acme',
  captured_at: '2026-11-26T12:00:00+00:00',
  part: 1,
  parts: 1,
};

Deno.test('a slim (v2) snapshot reads as queue objects with the slim fields only', () => {
  const snapshot = parseRealtimeSnapshot({
    v: 2,
    ...envelope,
    queues: [
      ['pgmq', 'pgmq', 'emails', 7, 12.5, 10, 8, 1, false, 'falling_behind', 'never', 2],
      ['pgmq', 'pgmq', 'sms', 0, null, 0, 0, 0, false, null, null, null],
    ],
  });
  assert.deepEqual(snapshotQueues(snapshot), [{
    source: 'pgmq',
    source_schema: 'pgmq',
    queue: 'emails',
    depth: 7,
    oldest_ready_age_s: 12.5,
    enqueued: 10,
    completed: 8,
    failed: 1,
    depth_estimated: false,
    flow_status: 'falling_behind',
    drain_eta_s: 'never',
    poison: 2,
  }, {
    source: 'pgmq',
    source_schema: 'pgmq',
    queue: 'sms',
    depth: 0,
    oldest_ready_age_s: null,
    enqueued: 0,
    completed: 0,
    failed: 0,
    depth_estimated: false,
    flow_status: null,
    drain_eta_s: null,
    poison: null,
  }]);
  assert.equal(SLIM_QUEUE_FIELDS.length, 12);
});

Deno.test('a slim snapshot from a database without the signals (nine fields) still reads', () => {
  const snapshot = parseRealtimeSnapshot({
    v: 2,
    ...envelope,
    queues: [['pgmq', 'pgmq', 'emails', 7, 12.5, 10, 8, 1, false]],
  });
  assert.deepEqual(snapshotQueues(snapshot), [{
    source: 'pgmq',
    source_schema: 'pgmq',
    queue: 'emails',
    depth: 7,
    oldest_ready_age_s: 12.5,
    enqueued: 10,
    completed: 8,
    failed: 1,
    depth_estimated: false,
  }]);
});

Deno.test('a full (v1) snapshot still parses, with every field of the row', () => {
  const queue = {
    source: 'pgboss',
    source_schema: 'pgboss',
    queue: 'reports',
    depth: 0,
    ready: 0,
    in_flight: 0,
    delayed: 0,
    oldest_ready_age_s: null,
    enqueued: 0,
    completed: 0,
    failed: 0,
    dead_lettered: 2,
    depth_estimated: null,
  };
  const snapshot = parseRealtimeSnapshot({ v: 1, ...envelope, queues: [queue] });
  assert.deepEqual(snapshotQueues(snapshot), [queue]);
});

Deno.test('hosted Realtime adds an id to the payload; it is accepted', () => {
  const snapshot = parseRealtimeSnapshot({
    v: 2,
    ...envelope,
    id: '0b7b2a55-9f0c-4a4e-8d2e-7f1f2a3b4c5d',
    queues: [],
  });
  assert.equal(snapshot.v, 2);
});

Deno.test('an unknown version or a slim queue of the wrong shape is refused, naming the field', () => {
  assert.throws(() => parseRealtimeSnapshot({ v: 3, ...envelope, queues: [] }), /'v' must be 1/);
  assert.throws(
    () => parseRealtimeSnapshot({ v: 2, ...envelope, queues: [['pgmq', 'pgmq', 'emails', 7]] }),
    /slim queue must be an array \[source, source_schema, queue, depth/,
  );
  assert.throws(
    () => parseRealtimeSnapshot({ v: 2, ...envelope, captured_at: 'soon', queues: [] }),
    /'captured_at' must be an ISO 8601 timestamp/,
  );
  assert.throws(
    () =>
      parseRealtimeSnapshot({
        v: 2,
        ...envelope,
        queues: [['pgmq', 'pgmq', 'emails', 7, 1, 1, 1, 0, false, 'ok', 'soon', 0]],
      }),
    /'drain_eta_s' must be a number, 'never' or null/,
  );
  assert.throws(
    () =>
      parseRealtimeSnapshot({
        v: 2,
        ...envelope,
        queues: [['pgmq', 'pgmq', 'emails', 7, 1, 1, 1, 0, false, 'fine', 5, 0]],
      }),
    /'flow_status' must be a flow status/,
  );
  assert.equal(snapshotTopic('acme'), 'queue_health:acme');
});
