/**
 * Starts real pg-boss instances (v10, v11, v12 from the npm aliases `pg-boss-10`, `pg-boss-11`,
 * `pg-boss-12` pinned in deno.json), each in its own schema, for tests and the demo workload.
 *
 * What differs between the versions, where it matters to us:
 *
 * | | v10 | v11 | v12 |
 * | --- | --- | --- | --- |
 * | import | default export | default export | named export `{ PgBoss }` |
 * | queues | `createQueue(name, options?)` required before `send` | same, also `createQueue({ name, ... })` | `createQueue(name, options?)` |
 * | dead letters | `deadLetter` on the queue or per job in `send()`; the dead-letter queue must exist first | `deadLetter` on the queue only (must exist first) | same as v11 |
 * | retention | `retentionMinutes`/`Hours`/`Days`, `deleteAfter*` on the constructor | `retentionSeconds`, `deleteAfterSeconds` on the queue | same as v11 |
 * | `send` | `send(name, data, options?)` → id or null | same | `send(name, data?, options?)` → id or null |
 * | `fetch` | `fetch(name, { batchSize })` → `Job[]` (always an array) | same | same; jobs also carry `retryCount` and an abort `signal` |
 * | `complete` / `fail` | `(name, id \| ids, data?)` → void | same | `(name, id \| ids \| attempts, data?)` → `CommandResponse` |
 * | `version.version` (schema) | 24 | 26 | 46 (12.38) |
 * | dead letter, missing queue | foreign-key violation `queue_dead_letter_fkey` | `Queue <name> does not exist` | same as v11 |
 * | queue counts cache | none (count `job`); `queue.retention_minutes` | `queue.queued_count`, `active_count`, `deferred_count`, `total_count`, `monitor_on`, refreshed by the supervisor | same, 12.21+ `ready_count`, `failed_count`, also `created_delta`, `completed_delta`, `failed_delta`, `wait_bins`, `run_bins`, `ready_oldest_seconds`; `persistQueueStats` keeps `queue_stats` |
 * | `stop` | `{ graceful, close, wait, timeout }` | same | `{ graceful, close, timeout }` |
 *
 * Every version keeps `version`, `job` and `queue` tables in its schema (a pg-boss schema is
 * recognised by them); `job.state` is `created | retry | active | completed | cancelled | failed`.
 * `job` is a partitioned table in all three (statistics such as `reltuples` live on its
 * partitions): v10 gives every queue its own partition (named in `queue.partition_name`) and moves
 * finished jobs to an `archive` table; v11/v12 keep queues in `job_common` unless created with
 * `partition: true` (`queue.table_name`).
 *
 * @module
 */
import PgBoss10 from 'pg-boss-10';
import PgBoss11 from 'pg-boss-11';
import { PgBoss as PgBoss12 } from 'pg-boss-12';
import { z } from 'zod';
import { connect, databaseUrl } from './db.ts';

/** The pg-boss major versions the project supports. */
export const PG_BOSS_VERSIONS = [10, 11, 12] as const;

/** One of {@link PG_BOSS_VERSIONS}. */
export type PgBossVersion = typeof PG_BOSS_VERSIONS[number];

/** The pg-boss instance type of a major version. */
export type PgBossOf<V extends PgBossVersion> = V extends 10 ? PgBoss10
  : V extends 11 ? PgBoss11
  : PgBoss12;

/** Options of {@link startPgBoss}. */
export interface StartPgBossOptions {
  /** Schema to install into; default {@link defaultPgBossSchema}(version). */
  schema?: string;
  /** Database; default {@link databaseUrl}(). */
  databaseUrl?: string;
  /**
   * Run pg-boss's supervisor (maintenance, expiry and, in v11+, the queue counts cache refresh).
   * Default false: tests decide when things happen. Turn it on to test the counts cache.
   */
  supervise?: boolean;
  /** Run the cron scheduler. Default false. */
  schedule?: boolean;
  /** pg-boss's pool size. Default 3. */
  max?: number;
  /**
   * Drop the schema first if it exists, for a clean slate. Only allowed for schemas named
   * `qh_test_*`, so a test can never wipe a real pg-boss. Default false.
   */
  fresh?: boolean;
  /**
   * Further constructor options, passed through as they are (they differ per version: see the
   * table above), e.g. `{ superviseIntervalSeconds: 1, queueCacheIntervalSeconds: 1 }`.
   */
  constructorOptions?: Record<string, unknown>;
}

/** Options of {@link StartedPgBoss.stop}. */
export interface StopPgBossOptions {
  /**
   * Drop the schema after stopping. Only done when {@link startPgBoss} created the schema (it did
   * not exist before, or `fresh` dropped it), so data this helper did not create is never deleted.
   * Default false.
   */
  dropSchema?: boolean;
}

/** A running pg-boss, as {@link startPgBoss} returns it. */
export interface StartedPgBoss<V extends PgBossVersion> {
  /** The major version. */
  version: V;
  /** The pg-boss instance, started. */
  boss: PgBossOf<V>;
  /** The schema it lives in. */
  schema: string;
  /** Whether this helper created the schema (so `stop({ dropSchema: true })` may drop it). */
  createdSchema: boolean;
  /** Errors pg-boss emitted (its `error` event), in order. */
  errors: unknown[];
  /** Stops pg-boss (not gracefully: tests do not wait for workers) and closes its pool. */
  stop(options?: StopPgBossOptions): Promise<void>;
}

const schemaName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, {
    message: 'schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)',
  });

const versionSchema = z.union([z.literal(10), z.literal(11), z.literal(12)], {
  message: `version must be one of ${PG_BOSS_VERSIONS.join(', ')}`,
});

/** The schema a version gets by default: `qh_test_pgboss_v10`, `…_v11`, `…_v12`. */
export function defaultPgBossSchema(version: PgBossVersion): string {
  return `qh_test_pgboss_v${version}`;
}

/**
 * Starts pg-boss `version` in its own schema (installing or migrating it) and returns it with a
 * `stop()`. Test files that run in parallel must pass distinct `schema`s.
 *
 * @example
 * ```ts
 * const pb = await startPgBoss(12, { fresh: true });
 * try {
 *   await pb.boss.createQueue('emails');
 *   await pb.boss.send('emails', { to: 'a@example.test' });
 * } finally {
 *   await pb.stop({ dropSchema: true });
 * }
 * ```
 *
 * @throws Error naming `version` or `schema` when they are invalid, or when `fresh` is asked for a
 *   schema not named `qh_test_*`.
 */
export async function startPgBoss<V extends PgBossVersion>(
  version: V,
  options: StartPgBossOptions = {},
): Promise<StartedPgBoss<V>> {
  const parsedVersion = versionSchema.safeParse(version);
  if (!parsedVersion.success) {
    throw new Error(`${parsedVersion.error.issues[0].message}: got ${JSON.stringify(version)}`);
  }
  const schema = options.schema ?? defaultPgBossSchema(version);
  const parsedSchema = schemaName.safeParse(schema);
  if (!parsedSchema.success) {
    throw new Error(`${parsedSchema.error.issues[0].message}: got ${JSON.stringify(schema)}`);
  }
  if (options.fresh && !schema.startsWith('qh_test_')) {
    throw new Error(
      `fresh: true only drops schemas named qh_test_*: got ${JSON.stringify(schema)}`,
    );
  }
  const url = options.databaseUrl ?? databaseUrl();

  const sql = connect({ url, max: 1, applicationName: 'queue-health-test-pgboss' });
  let createdSchema: boolean;
  try {
    if (options.fresh) await sql`drop schema if exists ${sql(schema)} cascade`;
    const [{ exists }] = await sql<{ exists: boolean }[]>`
      select exists (select 1 from pg_namespace where nspname = ${schema}) as exists`;
    createdSchema = !exists;
  } finally {
    await sql.end();
  }

  const common = {
    connectionString: url,
    schema,
    max: options.max ?? 3,
    application_name: `queue-health-test-pgboss-v${version}`,
    supervise: options.supervise ?? false,
    schedule: options.schedule ?? false,
    migrate: true,
    ...options.constructorOptions,
  };
  const boss = createBoss(version, common);
  const errors: unknown[] = [];
  // pg-boss emits 'error' for background failures; an EventEmitter without a listener would throw.
  (boss as { on(event: 'error', listener: (error: unknown) => void): unknown }).on(
    'error',
    (error: unknown) => errors.push(error),
  );
  await boss.start();

  let stopped = false;
  return {
    version,
    boss: boss as PgBossOf<V>,
    schema,
    createdSchema,
    errors,
    async stop(stopOptions: StopPgBossOptions = {}) {
      if (!stopped) {
        stopped = true;
        await stopBoss(version, boss);
      }
      if (stopOptions.dropSchema && createdSchema) {
        const admin = connect({ url, max: 1, applicationName: 'queue-health-test-pgboss' });
        try {
          await admin`drop schema if exists ${admin(schema)} cascade`;
        } finally {
          await admin.end();
        }
      }
    },
  };
}

function createBoss(
  version: PgBossVersion,
  options: Record<string, unknown>,
): PgBoss10 | PgBoss11 | PgBoss12 {
  switch (version) {
    case 10:
      return new PgBoss10(options as ConstructorParameters<typeof PgBoss10>[0] & object);
    case 11:
      return new PgBoss11(options as ConstructorParameters<typeof PgBoss11>[0] & object);
    case 12:
      return new PgBoss12(
        {
          // v12 registers itself in an instance table and heartbeats it; tests do not need that.
          registerInstance: false,
          ...options,
        } as ConstructorParameters<typeof PgBoss12>[0] & object,
      );
  }
}

async function stopBoss(version: PgBossVersion, boss: PgBoss10 | PgBoss11 | PgBoss12) {
  if (version === 12) {
    await (boss as PgBoss12).stop({ graceful: false, close: true, timeout: 5_000 });
  } else {
    // v10/v11 resolve stop() early unless wait is true, leaving the pool open.
    await (boss as PgBoss10 | PgBoss11).stop({
      graceful: false,
      close: true,
      wait: true,
      timeout: 5_000,
    });
  }
}

/**
 * The part of the pg-boss API that is the same in v10, v11 and v12 (the compiler checks that each
 * version's class fits it), so a test or the demo can drive any version the same way.
 */
export interface PgBossCommon {
  /** Creates a queue (required before `send` in v10+). The dead-letter queue must exist first. */
  createQueue(
    name: string,
    options?: { retryLimit?: number; retryDelay?: number; deadLetter?: string },
  ): Promise<void>;
  /** Sends a job; resolves its id, or null when a singleton/throttle policy dropped it. */
  send(
    name: string,
    data: object,
    options?: {
      startAfter?: number | string | Date;
      retryLimit?: number;
      priority?: number;
      singletonKey?: string;
    },
  ): Promise<string | null>;
  /** Fetches up to `batchSize` (default 1) jobs, moving them to `active`. */
  fetch<T>(
    name: string,
    options?: { batchSize?: number },
  ): Promise<{ id: string; name: string; data: T }[]>;
  /** Completes an active job. */
  complete(name: string, id: string, data?: object): Promise<unknown>;
  /** Fails an active job (retried while its retry limit allows, else `failed`). */
  fail(name: string, id: string, data?: object): Promise<unknown>;
}

/** The version-independent view of a started pg-boss (see {@link PgBossCommon}). */
export function commonApi(started: StartedPgBoss<PgBossVersion>): PgBossCommon {
  return started.boss;
}
