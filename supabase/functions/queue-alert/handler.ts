/**
 * queue-alert: evaluates alert rules, then drains the notification outbox — claim due rows
 * (`queue_health.claim_notifications`, `for update skip locked` with a lease), send each to its
 * channel, and mark it sent, failed with the next attempt, or dead.
 *
 * `POST` (or `GET`, for cron pings) `/functions/v1/queue-alert` with a service-role credential as
 * Bearer token (see auth.ts), or the `x-queue-health-secret` header. Optional JSON body:
 * `{limit?: 1..100, evaluate?: boolean, reason?: string, wait?: boolean}`. Answers `{evaluated,
 * claimed, sent, failed, dead, errors, duration_ms}` when the run is over — except for the
 * database's own dispatch (`reason: 'dispatch'`, sent through pg_net, whose default timeout is
 * 5 s) and `?async=1`: those get `202 {accepted: true}` at once and the run goes on in the
 * background (`EdgeRuntime.waitUntil` on Supabase), unless the body says `wait: true`.
 * @module
 */
import { Resend } from 'resend';
import { z } from 'zod';
import { apiKeysOf, inlineJwksOf, jsonText } from '../_shared/api_keys.ts';
import { BodyTooLarge, readBodyLimited } from '../_shared/body.ts';
import { getSql, type Sql } from '../_shared/db.ts';
import { EnvError, type EnvSource, readEnv } from '../_shared/env.ts';
import { createJwtVerifier, jwksUrlFor, type JwtVerifier } from '../_shared/jwt.ts';
import { json } from '../_shared/json.ts';
import { createLogger, type Logger } from '../_shared/log.ts';
import { authorize } from './auth.ts';
import type { Outcome } from './classify.ts';
import {
  type DestinationPolicy,
  parseHostList,
  type Resolver,
  resolveWithDns,
  SLACK_WEBHOOK_HOSTS,
} from './destination.ts';
import { type Claimed, claimedSchema, describeZodError, parsePayload } from './payload.ts';
import { PAGERDUTY_INTERVAL_MS } from './pagerduty.ts';
import { backoffMs } from './retry.ts';
import { type EmailClient, type EmailClientFactory, errorText, send, SharedPacer } from './send.ts';
import { SMS_INTERVAL_MS } from './sms.ts';

const hostList = z.string().transform((text, ctx) => {
  try {
    return parseHostList(text);
  } catch (e) {
    ctx.issues.push({ code: 'custom', message: (e as Error).message, input: text });
    return z.NEVER;
  }
});

const addressList = z.string().transform((text) =>
  text.split(',').map((a) => a.trim()).filter(Boolean)
);

/** The largest `QUEUE_ALERT_BUDGET_MS`, under the free plan's 150 s wall clock. */
export const MAX_BUDGET_MS = 120_000;

/** Environment variables queue-alert reads. */
export const envShape = {
  SUPABASE_DB_URL: z.string().regex(/^postgres(ql)?:\/\//, {
    error: 'must be a postgres:// URL',
  }),
  SUPABASE_URL: z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).optional(),
  SUPABASE_SERVICE_ROLE_KEY: z.string().min(1).optional(),
  SUPABASE_SECRET_KEYS: jsonText.optional(),
  SUPABASE_JWKS: jsonText.optional(),
  SUPABASE_JWT_SECRET: z.string().min(32, { error: 'must have at least 32 characters' }).optional(),
  QUEUE_ALERT_SECRET: z.string().min(16, { error: 'must have at least 16 characters' }).optional(),
  RESEND_API_KEY: z.string().min(1).optional(),
  RESEND_BASE_URL: z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).optional(),
  RESEND_FROM: z.string().min(3).optional(),
  /** Twilio's API base URL for sms channels (the operator's, never a tenant's). */
  TWILIO_API_BASE_URL: z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).optional(),
  /** PagerDuty's Events API v2 URL for pagerduty channels (the operator's). */
  PAGERDUTY_EVENTS_URL: z.url({ error: 'must be an http(s) URL', protocol: /^https?$/ }).optional(),
  QUEUE_ALERT_BATCH_SIZE: z.coerce.number().int().min(1).max(100).default(10),
  QUEUE_ALERT_BUDGET_MS: z.coerce.number().int().min(1000).max(MAX_BUDGET_MS, {
    error: `must be at most ${MAX_BUDGET_MS} ms: an Edge Function is stopped after 150 s ` +
      '(wall clock, free plan), and a run should end well before',
  }).default(20_000),
  QUEUE_ALERT_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  QUEUE_ALERT_LEASE_S: z.coerce.number().int().min(10).max(3600).default(120),
  /**
   * A retry that this run scheduled at most this many seconds ahead (a 429 with `Retry-After: 5`,
   * say) is dispatched again when due, by a background task of this invocation, instead of at the
   * next minute's sweep. 0 turns it off. Needs `EdgeRuntime.waitUntil` (the edge runtime and the
   * local stack provide it).
   */
  QUEUE_ALERT_FOLLOW_UP_S: z.coerce.number().int().min(0).max(60).default(30),
  QUEUE_ALERT_SLACK_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
  QUEUE_ALERT_RESEND_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(500),
  /** Spacing of SMS per sender: a US/Canadian long code sends 1 segment a second. */
  QUEUE_ALERT_SMS_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(SMS_INTERVAL_MS),
  /** Spacing of PagerDuty events per routing key: about 120 a minute are accepted. */
  QUEUE_ALERT_PAGERDUTY_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000)
    .default(PAGERDUTY_INTERVAL_MS),
  /**
   * Lets Slack, webhook and Alertmanager channels reach private, loopback and link-local
   * addresses over plain http: for the local stack and tests, never for a deployment that serves
   * tenants.
   */
  QUEUE_ALERT_ALLOW_PRIVATE_URLS: z.enum(['true', 'false', '1', '0'], {
    error: "must be 'true' or 'false'",
  }).default('false').transform((v) => v === 'true' || v === '1'),
  /** Hosts (`host` or `host:port`, comma-separated) the operator trusts: private or http alike. */
  QUEUE_ALERT_ALLOWED_HOSTS: hostList.default([]),
  /** Hosts Slack channels may post to besides Slack's own (`hooks.slack.com`). */
  QUEUE_ALERT_SLACK_HOSTS: hostList.default([]),
  /** Senders a channel's `config.from` may name besides RESEND_FROM; comma-separated. */
  QUEUE_ALERT_EMAIL_FROM_ALLOWED: addressList.default([]),
  /** Reply-to addresses a channel's `config.reply_to` may name; comma-separated. */
  QUEUE_ALERT_EMAIL_REPLY_TO_ALLOWED: addressList.default([]),
};

/** Validated queue-alert environment. */
export type QueueAlertEnv = z.infer<z.ZodObject<typeof envShape>>;

/**
 * Reads and checks the environment. At least one way to recognise callers must be set: a
 * service-role key (legacy or `sb_secret_…`), the HS256 secret, signing keys, or the dedicated
 * secret.
 * @throws {EnvError} naming the variable.
 */
export function readQueueAlertEnv(source?: EnvSource): QueueAlertEnv {
  const env = readEnv(envShape, source);
  const secretKeys = apiKeysOf('SUPABASE_SECRET_KEYS', env.SUPABASE_SECRET_KEYS);
  const jwks = inlineJwksOf('SUPABASE_JWKS', env.SUPABASE_JWKS);
  if (
    secretKeys.length === 0 && !env.SUPABASE_SERVICE_ROLE_KEY && !env.SUPABASE_JWT_SECRET &&
    !jwks && !env.QUEUE_ALERT_SECRET
  ) {
    throw new EnvError(
      'SUPABASE_SECRET_KEYS',
      'environment variable SUPABASE_SECRET_KEYS or SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_JWT_SECRET, SUPABASE_JWKS, QUEUE_ALERT_SECRET) is required to recognise callers but none is set',
    );
  }
  return env;
}

/** Where Slack, webhook and Alertmanager channels may send, from the environment. */
export function destinationPolicy(env: QueueAlertEnv): DestinationPolicy {
  return {
    allowPrivate: env.QUEUE_ALERT_ALLOW_PRIVATE_URLS,
    trustedHosts: env.QUEUE_ALERT_ALLOWED_HOSTS,
    slackHosts: [...SLACK_WEBHOOK_HOSTS, ...env.QUEUE_ALERT_SLACK_HOSTS],
  };
}

/** `EdgeRuntime.waitUntil` where the global exists (Supabase edge-runtime), else undefined. */
export function edgeRuntimeWaitUntil(): ((promise: Promise<unknown>) => void) | undefined {
  const runtime = (globalThis as { EdgeRuntime?: { waitUntil?: unknown } }).EdgeRuntime;
  if (!runtime || typeof runtime.waitUntil !== 'function') return undefined;
  const waitUntil = runtime.waitUntil as (promise: Promise<unknown>) => void;
  return (promise) => waitUntil.call(runtime, promise);
}

/** Everything queue-alert depends on; tests replace any of it. */
export interface Deps {
  /** The database; defaults to the shared client on SUPABASE_DB_URL. */
  sql: Sql;
  /** HTTP for Slack, webhooks, Twilio, PagerDuty, Alertmanager (the resend SDK: global fetch). */
  fetch: typeof fetch;
  /** Clock, passed to SQL as `p_now` too. */
  now: () => Date;
  /** Waits; used for pacing. */
  sleep: (ms: number) => Promise<void>;
  /** Environment source (record or getter); defaults to `Deno.env`. */
  env: EnvSource;
  /** Email client factory; defaults to the resend SDK. */
  resend: EmailClientFactory;
  /** `[0, 1)` source for backoff jitter. */
  random: () => number;
  /** Resolves tenant-given hosts for the destination check; defaults to `Deno.resolveDns`. */
  resolveDns: Resolver;
  /** Log sink. */
  logger: Logger;
  /**
   * Keeps the instance alive for a run that outlives its response (the database's dispatch).
   * Defaults to `EdgeRuntime.waitUntil` where that exists; elsewhere (Deno) the run simply goes on
   * after the response. Tests pass a hook to await it.
   */
  waitUntil: (promise: Promise<unknown>) => void;
}

/** How long after a retry is due its follow-up dispatch runs (the row must be due by then). */
const FOLLOW_UP_MARGIN_MS = 250;

/** The summary queue-alert answers with. */
export interface Summary {
  /** What `evaluate_alerts()` returned; null when skipped; `{error}` when it failed. */
  evaluated: unknown;
  claimed: number;
  sent: number;
  failed: number;
  dead: number;
  /** Rows that could not be marked (they come back when their lease expires). */
  errors: number;
  duration_ms: number;
}

const bodySchema = z
  .object({
    limit: z.number({ error: "'limit' must be a number" })
      .int({ error: "'limit' must be a whole number" })
      .min(1, { error: "'limit' must be between 1 and 100" })
      .max(100, { error: "'limit' must be between 1 and 100" })
      .optional(),
    evaluate: z.boolean({ error: "'evaluate' must be a boolean" }).optional(),
    reason: z.string({ error: "'reason' must be a string" }).optional(),
    wait: z.boolean({ error: "'wait' must be a boolean" }).optional(),
  }, { error: 'body must be a JSON object' })
  .loose();

/**
 * True for errors of the database connection or server (postgres.js: a SQLSTATE, or a Node-style
 * system code such as ECONNREFUSED, or CONNECT_TIMEOUT): answered 503 with no detail.
 */
export function isDatabaseError(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' &&
    (/^[0-9A-Z]{5}$/.test(code) || /^(E[A-Z]+|CONNECT_TIMEOUT|CONNECTION_\w+)$/.test(code));
}

/** The path after `/queue-alert`, or the whole path when served at the root. */
function subPath(url: URL): string {
  const i = url.pathname.indexOf('/queue-alert');
  const rest = i >= 0 ? url.pathname.slice(i + '/queue-alert'.length) : url.pathname;
  return rest.replace(/\/+$/, '');
}

const defaultResend: EmailClientFactory = (apiKey, options) =>
  new Resend(
    apiKey,
    options.baseUrl ? { baseUrl: options.baseUrl } : undefined,
  ) as unknown as EmailClient;

/**
 * Creates the queue-alert request handler.
 * @param overrides dependencies to replace (tests); everything else comes from the environment.
 */
export function createHandler(overrides: Partial<Deps> = {}): (req: Request) => Promise<Response> {
  const logger = overrides.logger ?? createLogger({ fn: 'queue-alert' });
  const now = overrides.now ?? (() => new Date());
  const sleep = overrides.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const fetchFn = overrides.fetch ?? ((input, init) => fetch(input, init));
  const random = overrides.random ?? Math.random;
  const emailClient = overrides.resend ?? defaultResend;
  const resolveDns = overrides.resolveDns ?? resolveWithDns;
  // Where neither the caller nor the runtime keeps the instance alive, a background run simply
  // goes on after the response, and follow-ups of retries are left to the sweep.
  const runtimeWaitUntil = overrides.waitUntil ?? edgeRuntimeWaitUntil();
  const waitUntil = runtimeWaitUntil ?? (() => {});
  let env: QueueAlertEnv | null = null;
  let verifyJwt: JwtVerifier | undefined;
  let secretKeys: string[] = [];
  /** When this instance's pending follow-up dispatch runs (ms since the epoch), if any. */
  let followUpAt: number | null = null;

  /**
   * After a run whose soonest retry is due at `dueAt`: when that is within QUEUE_ALERT_FOLLOW_UP_S,
   * waits (in the background) until it is due, then asks the database to dispatch what is due
   * (queue_health.dispatch_due(): pg_net, else NOTIFY), which invokes queue-alert afresh. One
   * timer per instance unless an earlier retry needs its own; no loop: each follow-up is one call.
   */
  const scheduleFollowUp = (sql: Sql, cfg: QueueAlertEnv, dueAt: number) => {
    if (!runtimeWaitUntil || cfg.QUEUE_ALERT_FOLLOW_UP_S === 0) return;
    const wait = Math.max(0, dueAt - now().getTime()) + FOLLOW_UP_MARGIN_MS;
    if (wait > cfg.QUEUE_ALERT_FOLLOW_UP_S * 1000 + FOLLOW_UP_MARGIN_MS) return;
    if (followUpAt !== null && followUpAt <= dueAt + FOLLOW_UP_MARGIN_MS) return;
    const at = now().getTime() + wait;
    followUpAt = at;
    logger.info('follow_up_scheduled', { due_at: new Date(dueAt).toISOString(), wait_ms: wait });
    runtimeWaitUntil((async () => {
      await sleep(wait);
      if (followUpAt === at) followUpAt = null;
      try {
        const [{ result }] = await sql<{ result: unknown }[]>`
          select queue_health.dispatch_due(p_now => ${now()}::timestamptz) as result`;
        logger.info('follow_up', { result });
      } catch (e) {
        logger.error('follow_up_failed', { error: errorText(e) });
      }
    })());
  };

  return async (req: Request): Promise<Response> => {
    if (!env) {
      try {
        env = readQueueAlertEnv(overrides.env);
        secretKeys = apiKeysOf('SUPABASE_SECRET_KEYS', env.SUPABASE_SECRET_KEYS);
        const jwks = inlineJwksOf('SUPABASE_JWKS', env.SUPABASE_JWKS);
        verifyJwt = env.SUPABASE_JWT_SECRET || jwks || env.SUPABASE_URL
          ? createJwtVerifier({
            secret: env.SUPABASE_JWT_SECRET,
            jwks,
            jwksUrl: env.SUPABASE_URL ? jwksUrlFor(env.SUPABASE_URL).href : undefined,
          })
          : undefined;
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        logger.error('config_error', { error: message });
        return json(500, { error: 'misconfigured', message });
      }
    }
    const url = new URL(req.url);
    if (subPath(url) !== '') return json(404, { error: 'not_found' });
    if (req.method !== 'POST' && req.method !== 'GET') {
      return json(405, { error: 'method_not_allowed' }, { allow: 'POST, GET' });
    }
    const who = await authorize(req, {
      serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
      secretKeys,
      verifyJwt,
      alertSecret: env.QUEUE_ALERT_SECRET,
    });
    if (!who) {
      logger.warn('unauthorized', { method: req.method });
      return json(401, { error: 'unauthorized' }, { 'www-authenticate': 'Bearer' });
    }

    let input: z.infer<typeof bodySchema> = {};
    if (req.method === 'POST') {
      let text: string;
      try {
        text = await readBodyLimited(req);
      } catch (e) {
        if (!(e instanceof BodyTooLarge)) throw e;
        logger.warn('body_too_large', { limit: e.limit, caller: who });
        return json(413, { error: 'payload_too_large', message: e.message });
      }
      if (text.trim() !== '') {
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch {
          return json(400, { error: 'invalid_body', message: 'body must be JSON' });
        }
        const parsed = bodySchema.safeParse(raw);
        if (!parsed.success) {
          return json(400, { error: 'invalid_body', message: describeZodError(parsed.error) });
        }
        input = parsed.data;
      }
    }

    const sql = overrides.sql ?? getSql(env.SUPABASE_DB_URL);
    // pg_net gives up after 5 s (its default) while a run may take QUEUE_ALERT_BUDGET_MS: the
    // database's dispatch gets its answer at once. Claimed rows are leased, so a run cut short
    // (the worker killed) only delays them until the lease ends.
    const background = input.wait !== true &&
      (input.reason === 'dispatch' || url.searchParams.get('async') === '1');
    const mode = background ? 'background' : 'request';
    const started = run(sql, env, input, {
      logger,
      now,
      sleep,
      fetch: fetchFn,
      random,
      emailClient,
      resolveDns,
    })
      .then(({ summary, nextRetryAt }) => {
        logger.info('run', { ...summary, evaluated: undefined, caller: who, mode });
        if (nextRetryAt !== null) scheduleFollowUp(sql, env!, nextRetryAt);
        return summary;
      });
    if (background) {
      // Never rejects: a failure is logged here, as there is no response left to carry it.
      waitUntil(started.catch((e) => logger.error('run_failed', { error: errorText(e), mode })));
      return json(202, { accepted: true });
    }
    try {
      return json(200, await started);
    } catch (e) {
      // The detail (host:port of the database, SQL errors) is the operator's: the log has it.
      logger.error('run_failed', { error: errorText(e), mode });
      return isDatabaseError(e)
        ? json(503, { error: 'database_unavailable' }, { 'retry-after': '5' })
        : json(500, { error: 'internal' });
    }
  };
}

interface RunDeps {
  logger: Logger;
  now: () => Date;
  sleep: (ms: number) => Promise<void>;
  fetch: typeof fetch;
  random: () => number;
  emailClient: EmailClientFactory;
  resolveDns: Resolver;
}

async function evaluate(sql: Sql, now: Date, logger: Logger): Promise<unknown> {
  try {
    const [{ summary }] = await sql<{ summary: unknown }[]>`
      select queue_health.evaluate_alerts(p_now => ${now}) as summary`;
    return summary;
  } catch (e) {
    // Delivery must go on when evaluation fails: what is already in the outbox still matters.
    logger.error('evaluate_failed', { error: errorText(e) });
    return { error: errorText(e) };
  }
}

async function run(
  sql: Sql,
  env: QueueAlertEnv,
  input: z.infer<typeof bodySchema>,
  deps: RunDeps,
): Promise<{ summary: Summary; nextRetryAt: number | null }> {
  const started = deps.now().getTime();
  const summary: Summary = {
    evaluated: null,
    claimed: 0,
    sent: 0,
    failed: 0,
    dead: 0,
    errors: 0,
    duration_ms: 0,
  };
  if (input.evaluate !== false) summary.evaluated = await evaluate(sql, deps.now(), deps.logger);

  // Paced across invocations (queue_health.take_send_turn), else within this one.
  const pacer = new SharedPacer(
    async (key, intervalMs, maxWaitMs) => {
      const [{ ms }] = await sql<{ ms: number | null }[]>`
        select queue_health.take_send_turn(${key}, ${intervalMs}, ${maxWaitMs}) as ms`;
      return ms === null ? null : Number(ms);
    },
    () => deps.now().getTime(),
    deps.sleep,
    (e) => deps.logger.warn('pacing_fallback', { error: errorText(e) }),
  );
  const ctx = {
    fetch: deps.fetch,
    now: deps.now,
    pacer,
    emailClient: deps.emailClient,
    resendApiKey: env.RESEND_API_KEY,
    resendBaseUrl: env.RESEND_BASE_URL,
    resendFrom: env.RESEND_FROM,
    timeoutMs: env.QUEUE_ALERT_TIMEOUT_MS,
    slackIntervalMs: env.QUEUE_ALERT_SLACK_INTERVAL_MS,
    resendIntervalMs: env.QUEUE_ALERT_RESEND_INTERVAL_MS,
    destinations: destinationPolicy(env),
    resolve: deps.resolveDns,
    logger: deps.logger,
    emailFromAllowed: env.QUEUE_ALERT_EMAIL_FROM_ALLOWED,
    emailReplyToAllowed: env.QUEUE_ALERT_EMAIL_REPLY_TO_ALLOWED,
    twilioBaseUrl: env.TWILIO_API_BASE_URL,
    smsIntervalMs: env.QUEUE_ALERT_SMS_INTERVAL_MS,
    pagerDutyEventsUrl: env.PAGERDUTY_EVENTS_URL,
    pagerDutyIntervalMs: env.QUEUE_ALERT_PAGERDUTY_INTERVAL_MS,
  };
  const batch = input.limit ?? env.QUEUE_ALERT_BATCH_SIZE;
  /** The soonest retry this run scheduled (ms since the epoch). */
  let nextRetryAt: number | null = null;
  const leaseMs = env.QUEUE_ALERT_LEASE_S * 1000;

  while (deps.now().getTime() - started < env.QUEUE_ALERT_BUDGET_MS) {
    const rows = await sql<Record<string, unknown>[]>`
      select * from queue_health.claim_notifications(
        p_limit => ${batch}::int,
        p_lease => ${`${env.QUEUE_ALERT_LEASE_S} seconds`}::interval,
        p_now => ${deps.now()}::timestamptz)`;
    if (rows.length === 0) break;
    summary.claimed += rows.length;
    // Past this instant a send might finish after the lease ends and another worker re-sends.
    const sendDeadline = deps.now().getTime() + leaseMs - env.QUEUE_ALERT_TIMEOUT_MS - 5_000;
    const results = await Promise.all(
      rows.map((raw) => deliver(sql, raw, sendDeadline, ctx, deps)),
    );
    for (const r of results) {
      summary[r.result]++;
      if (r.nextAttemptAt !== null && (nextRetryAt === null || r.nextAttemptAt < nextRetryAt)) {
        nextRetryAt = r.nextAttemptAt;
      }
    }
    if (rows.length < batch) break;
    // Some rows could not get a turn within their lease: the lanes are full, let the next
    // invocation continue rather than claim (and spend an attempt of) the same rows again.
    if (results.some((r) => r.released)) break;
  }
  summary.duration_ms = deps.now().getTime() - started;
  return { summary, nextRetryAt };
}

type RowResult = 'sent' | 'failed' | 'dead' | 'errors';

async function deliver(
  sql: Sql,
  raw: Record<string, unknown>,
  sendDeadline: number,
  ctx: Parameters<typeof send>[2],
  deps: RunDeps,
): Promise<{ result: RowResult; released: boolean; nextAttemptAt: number | null }> {
  const id = String(raw.id);
  const t0 = deps.now().getTime();
  let row: Claimed | null = null;
  let outcome: Outcome;
  const parsed = claimedSchema.safeParse(raw);
  if (!parsed.success) {
    outcome = {
      status: 'dead',
      httpStatus: null,
      error: `invalid outbox row: ${describeZodError(parsed.error)}`,
    };
  } else {
    row = parsed.data;
    try {
      const payload = parsePayload(row.payload);
      outcome = await send(row, payload, { ...ctx, deadlineMs: sendDeadline });
    } catch (e) {
      outcome = { status: 'dead', httpStatus: null, error: errorText(e) };
    }
  }
  const nowAfter = deps.now();
  const attempt = row?.attempts ?? (typeof raw.attempts === 'number' ? raw.attempts : 1);
  let status: string;
  let nextAttemptAt: Date | null = null;
  try {
    if (outcome.status === 'sent') {
      const [r] = await sql<{ status: string }[]>`
        select queue_health.complete_notification(
          p_id => ${id}::uuid,
          p_provider_message_id => ${outcome.providerMessageId}::text,
          p_now => ${nowAfter}::timestamptz)::text as status`;
      status = r.status;
    } else {
      const permanent = outcome.status === 'dead';
      const delay = outcome.status === 'retry'
        ? outcome.retryAfterMs ?? backoffMs(attempt, deps.random)
        : 0;
      nextAttemptAt = new Date(nowAfter.getTime() + delay);
      const [r] = await sql<{ status: string }[]>`
        select queue_health.fail_notification(
          p_id => ${id}::uuid,
          p_error => ${outcome.error}::text,
          p_retry_at => ${nextAttemptAt}::timestamptz,
          p_permanent => ${permanent}::boolean,
          p_now => ${nowAfter}::timestamptz)::text as status`;
      status = r.status;
      if (status === 'dead') nextAttemptAt = null;
    }
  } catch (e) {
    deps.logger.error('mark_failed', {
      notification_id: id,
      outcome: outcome.status,
      error: errorText(e),
    });
    return { result: 'errors', released: false, nextAttemptAt: null };
  }
  deps.logger.info('delivery', {
    notification_id: id,
    channel_id: row?.channel_id ?? raw.channel_id ?? null,
    kind: row?.kind ?? raw.kind ?? null,
    status,
    outcome: outcome.status === 'retry' && outcome.released ? 'released' : outcome.status,
    http_status: outcome.httpStatus,
    provider_message_id: outcome.status === 'sent' ? outcome.providerMessageId : undefined,
    attempt,
    duration_ms: nowAfter.getTime() - t0,
    next_attempt_at: nextAttemptAt?.toISOString() ?? null,
    error: outcome.status === 'sent' ? undefined : outcome.error,
  });
  return {
    result: status === 'sent' ? 'sent' : status === 'dead' ? 'dead' : 'failed',
    released: outcome.status === 'retry' && outcome.released === true,
    nextAttemptAt: status === 'failed' && nextAttemptAt ? nextAttemptAt.getTime() : null,
  };
}
