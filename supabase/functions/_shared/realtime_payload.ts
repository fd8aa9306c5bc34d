/**
 * The payload of the Realtime broadcasts Queue Health sends after each capture: event `snapshot`
 * on the private channel `queue_health:<project_id>`, one message per project per capture (split
 * into `parts` messages when a project has many queues). The database trigger builds it; this
 * module is its one TypeScript description, and a test checks the trigger's real output against
 * {@link realtimeSnapshotSchema}.
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

/** One queue in a snapshot message. */
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
});

/** A snapshot message as broadcast by the capture trigger (payload version 1). */
export const realtimeSnapshotSchema = z.object({
  v: z.literal(1, { error: "'v' must be 1" }),
  project_id: z.string({ error: "'project_id' must be a string" }).min(1),
  captured_at: z.string({ error: "'captured_at' must be a timestamp string" }).refine(
    (s) => !Number.isNaN(Date.parse(s)),
    { error: "'captured_at' must be an ISO 8601 timestamp" },
  ),
  part: z.number({ error: "'part' must be an integer" }).int().min(1),
  parts: z.number({ error: "'parts' must be an integer" }).int().min(1),
  queues: z.array(realtimeQueueSchema, { error: "'queues' must be an array" }),
});

/** One queue in a {@link RealtimeSnapshot}. */
export type RealtimeQueue = z.infer<typeof realtimeQueueSchema>;

/**
 * The payload of a `snapshot` broadcast:
 * `{v: 1, project_id, captured_at, part, parts, queues: [{source, source_schema, queue, depth,
 * ready, in_flight, delayed, oldest_ready_age_s, enqueued, completed, failed, dead_lettered,
 * depth_estimated}]}`. Counts (`enqueued`, ...) are
 * since the previous snapshot of that queue; `oldest_ready_age_s` is in seconds.
 */
export type RealtimeSnapshot = z.infer<typeof realtimeSnapshotSchema>;

/**
 * Parses a received payload; throws a `ZodError` naming the bad field when it does not match.
 * supabase-js hands broadcast handlers `{type, event, payload}`: pass `message.payload`.
 */
export function parseRealtimeSnapshot(payload: unknown): RealtimeSnapshot {
  return realtimeSnapshotSchema.parse(payload);
}
