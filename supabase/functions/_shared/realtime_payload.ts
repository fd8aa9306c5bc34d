/**
 * The payload of the Realtime broadcasts Queue Health sends after each capture: event `snapshot`
 * on the private channel `queue_health:<project_id>`, one message per project per capture (split
 * into `parts` messages when a project has many queues). The database trigger builds it, in the
 * form `queue_health.settings.realtime_payload` asks for: `slim` (the default, payload version 2:
 * per queue an array of its ids and the gauges the dashboard shows) or `full` (version 1: an object
 * with every gauge and count of the snapshot row). This module is their one TypeScript
 * description; consumers should accept both (use {@link snapshotQueues}). A test checks the
 * trigger's real output against {@link realtimeSnapshotSchema}. Both forms carry three signals per
 * queue since the signals migration (flow_status, drain_eta_s, poison); they are optional here, so
 * a snapshot from a database without them still parses.
 * @module
 */
import { z } from 'zod';

/** Broadcast event name of a snapshot message. */
export const SNAPSHOT_EVENT = 'snapshot';

/** The Realtime topic a project's snapshots are sent to (subscribe with `private: true`). */
export function snapshotTopic(projectId: string): string {
  return `queue_health:${projectId}`;
}

const count = (field: string) =>
  z.number({ error: `'${field}' must be a number or null` }).nullable();

/** A queue's flow status over the flow window (docs/metrics.md, "flow_status"). */
export const flowStatusSchema = z.enum(
  ['idle', 'ok', 'falling_behind', 'stalled', 'stopped', 'redelivering'],
  { error: "'flow_status' must be a flow status" },
);

/** Whole seconds until nothing is ready, `'never'` when the backlog does not shrink, or null. */
export const drainEtaSchema = z.union([z.number(), z.literal('never')], {
  error: "'drain_eta_s' must be a number, 'never' or null",
}).nullable();

/** One queue in a full snapshot message (payload version 1). */
export const realtimeQueueSchema = z.object({
  source: z.enum(['pgmq', 'pgboss'], { error: "'source' must be 'pgmq' or 'pgboss'" }),
  source_schema: z.string({ error: "'source_schema' must be a string" }),
  queue: z.string({ error: "'queue' must be a string" }),
  depth: count('depth'),
  ready: count('ready'),
  in_flight: count('in_flight'),
  delayed: count('delayed'),
  oldest_ready_age_s: count('oldest_ready_age_s'),
  enqueued: count('enqueued'),
  completed: count('completed'),
  failed: count('failed'),
  dead_lettered: count('dead_lettered'),
  depth_estimated: z.boolean({ error: "'depth_estimated' must be a boolean" }).nullable(),
  /** Flow status; null while the queue's history is shorter than the flow window. */
  flow_status: flowStatusSchema.nullable().optional(),
  /** Drain ETA in whole seconds, 'never', or null without enough data. */
  drain_eta_s: drainEtaSchema.optional(),
  /** Poison messages; null when not probed. */
  poison: count('poison').optional(),
});

const envelope = {
  project_id: z.string({ error: "'project_id' must be a string" }).min(1),
  captured_at: z.string({ error: "'captured_at' must be a timestamp string" }).refine(
    (s) => !Number.isNaN(Date.parse(s)),
    { error: "'captured_at' must be an ISO 8601 timestamp" },
  ),
  part: z.number({ error: "'part' must be an integer" }).int().min(1),
  parts: z.number({ error: "'parts' must be an integer" }).int().min(1),
};

/** A full snapshot message (`realtime_payload = 'full'`, payload version 1). */
export const realtimeFullSnapshotSchema = z.object({
  v: z.literal(1, { error: "'v' must be 1 or 2" }),
  ...envelope,
  queues: z.array(realtimeQueueSchema, { error: "'queues' must be an array" }),
});

/**
 * The order of the fields of a queue in a slim message (payload version 2): ids first, then the
 * gauges the dashboard's queue table shows (depth, oldest ready age, and the counts its in, out
 * and error-rate columns are computed from), then the signals (appended: a database without them
 * sends the first nine).
 */
export const SLIM_QUEUE_FIELDS = [
  'source',
  'source_schema',
  'queue',
  'depth',
  'oldest_ready_age_s',
  'enqueued',
  'completed',
  'failed',
  'depth_estimated',
  'flow_status',
  'drain_eta_s',
  'poison',
] as const;

/** One queue in a slim message: `[source, source_schema, queue, depth, ...]` ({@link SLIM_QUEUE_FIELDS}). */
export const realtimeSlimQueueSchema = z.tuple([
  realtimeQueueSchema.shape.source,
  realtimeQueueSchema.shape.source_schema,
  realtimeQueueSchema.shape.queue,
  realtimeQueueSchema.shape.depth,
  realtimeQueueSchema.shape.oldest_ready_age_s,
  realtimeQueueSchema.shape.enqueued,
  realtimeQueueSchema.shape.completed,
  realtimeQueueSchema.shape.failed,
  realtimeQueueSchema.shape.depth_estimated,
  realtimeQueueSchema.shape.flow_status,
  realtimeQueueSchema.shape.drain_eta_s,
  realtimeQueueSchema.shape.poison,
], { error: `a slim queue must be an array [${SLIM_QUEUE_FIELDS.join(', ')}]` });

/** A slim snapshot message (`realtime_payload = 'slim'`, the default; payload version 2). */
export const realtimeSlimSnapshotSchema = z.object({
  v: z.literal(2, { error: "'v' must be 1 or 2" }),
  ...envelope,
  queues: z.array(realtimeSlimQueueSchema, { error: "'queues' must be an array" }),
});

/** A snapshot message as broadcast by the capture trigger: version 1 (full) or 2 (slim). */
export const realtimeSnapshotSchema = z.discriminatedUnion('v', [
  realtimeFullSnapshotSchema,
  realtimeSlimSnapshotSchema,
], { error: "'v' must be 1 (full) or 2 (slim)" });

/** One queue in a {@link RealtimeSnapshot}. */
export type RealtimeQueue = z.infer<typeof realtimeQueueSchema>;

/**
 * The payload of a `snapshot` broadcast, either
 * `{v: 1, project_id, captured_at, part, parts, queues: [{source, source_schema, queue, depth,
 * ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, dead_lettered,
 * depth_estimated, flow_status, drain_eta_s, poison}]}` (full) or
 * `{v: 2, project_id, captured_at, part, parts, queues: [[source, source_schema, queue, depth,
 * oldest_ready_age_s, enqueued, completed, failed, depth_estimated, flow_status, drain_eta_s,
 * poison]]}` (slim). Counts (`enqueued`, ...) are since the previous snapshot of that queue;
 * `oldest_ready_age_s` is in seconds, `drain_eta_s` in whole seconds or `'never'`.
 */
export type RealtimeSnapshot = z.infer<typeof realtimeSnapshotSchema>;

/** A queue of either form as an object; the fields a message does not carry are absent. */
export type SnapshotQueue =
  & Pick<RealtimeQueue, (typeof SLIM_QUEUE_FIELDS)[number]>
  & Partial<RealtimeQueue>;

/** The queues of a snapshot message of either version, as objects. */
export function snapshotQueues(snapshot: RealtimeSnapshot): SnapshotQueue[] {
  if (snapshot.v === 1) return snapshot.queues;
  return snapshot.queues.map((row) =>
    Object.fromEntries(
      SLIM_QUEUE_FIELDS.slice(0, row.length).map((f, i) => [f, row[i]]),
    ) as SnapshotQueue
  );
}

/**
 * Parses a received payload; throws a `ZodError` naming the bad field when it does not match.
 * supabase-js hands broadcast handlers `{type, event, payload}`: pass `message.payload`.
 */
export function parseRealtimeSnapshot(payload: unknown): RealtimeSnapshot {
  return realtimeSnapshotSchema.parse(payload);
}
