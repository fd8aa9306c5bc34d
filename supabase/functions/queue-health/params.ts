/**
 * Query-parameter validation for queue-health, in one place, before any SQL runs. Every failure
 * is a {@link ParamError} that names the parameter, answered with HTTP 400.
 * @module
 */
import { z } from 'zod';

/** A bad query parameter; `parameter` names it. */
export class ParamError extends Error {
  /** The offending query parameter. */
  readonly parameter: string;

  /** @param parameter its name; @param message what is wrong with it. */
  constructor(parameter: string, message: string) {
    super(message);
    this.name = 'ParamError';
    this.parameter = parameter;
  }
}

/** Queue statuses as `queue_health.queue_status.status` reports them. */
export const QUEUE_STATUSES = ['ok', 'warning', 'critical', 'stale'] as const;
/** One queue status. */
export type QueueStatus = (typeof QUEUE_STATUSES)[number];

/** Queue sources. */
export const SOURCES = ['pgmq', 'pgboss'] as const;

const projectId = z
  .string()
  .regex(/^[a-z0-9_-]{1,63}$/, "'project' must be a project id: lower-case [a-z0-9_-], 1-63 chars");
const source = z.enum(SOURCES, { error: "'source' must be 'pgmq' or 'pgboss'" });
const queuePattern = z
  .string()
  .min(1, "'queue' must not be empty")
  .max(255, "'queue' must be at most 255 characters");

const healthSchema = z.object({
  project: projectId.optional(),
  source: source.optional(),
  queue: queuePattern.optional(),
  status: z
    .string()
    .transform((s) => s.split(',').map((part) => part.trim()).filter((part) => part !== ''))
    .pipe(
      z
        .array(z.enum(QUEUE_STATUSES, {
          error: "'status' must be a comma-separated list of ok, warning, critical, stale",
        }))
        .min(1, "'status' must name at least one of ok, warning, critical, stale"),
    )
    .optional(),
  format: z.enum(['json', 'prometheus', 'openmetrics'], {
    error: "'format' must be 'json', 'prometheus' or 'openmetrics'",
  }).optional(),
});

/** Validated filters of `GET /queue-health`. */
export interface HealthParams {
  /** Only this project. */
  project?: string;
  /** Only this source. */
  source?: 'pgmq' | 'pgboss';
  /** Queue-name pattern: `*` matches any run of characters, `?` one character. */
  queue?: string;
  /** Only queues in these statuses (alerts and monitor health are not filtered by it). */
  status?: QueueStatus[];
  /**
   * Response format asked for in the query string, if any: `prometheus` is an exposition in the
   * format Accept prefers (OpenMetrics or the classic text), `openmetrics` always OpenMetrics.
   */
  format?: 'json' | 'prometheus' | 'openmetrics';
}

const MAX_RANGE_MS = 400 * 24 * 3600 * 1000;
const DURATION = /^(\d+)(m|h|d)$/;
const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** The years a `from`/`to` may name: Queue Health has no data outside them. */
export const YEAR_RANGE = { min: 2000, max: 2100 } as const;

/**
 * ISO 8601 / RFC 3339: a date, or a date-time with seconds optional and a zone required. A space
 * for the offset's sign is a `+` that the query string decoded (`+02:00` unencoded in a URL).
 */
const ISO_TIMESTAMP =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?([Zz]|[+\- ]\d{2}:?\d{2}))?$/;

/**
 * Parses an ISO 8601 timestamp strictly: a real calendar date (no 30 February rolled into March),
 * hours 0-23, minutes and seconds 0-59, a zone (`Z` or `±hh:mm`) whenever a time is given, a
 * four-digit year within {@link YEAR_RANGE}. A bare date is midnight UTC. Returns the Date, or a
 * message saying what is wrong (without the parameter's name).
 */
export function parseTimestamp(text: string): Date | string {
  const m = ISO_TIMESTAMP.exec(text);
  if (!m) return 'must be an ISO 8601 timestamp with a zone, e.g. 2026-11-26T10:00:00Z';
  const [, y, mo, d, h = '0', mi = '0', sec = '0', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  if (year < YEAR_RANGE.min || year > YEAR_RANGE.max) {
    return `must be a date between the years ${YEAR_RANGE.min} and ${YEAR_RANGE.max}: got ${y}`;
  }
  const month = Number(mo);
  const day = Number(d);
  const daysInMonth = month >= 1 && month <= 12
    ? new Date(Date.UTC(year, month, 0)).getUTCDate()
    : 0;
  if (daysInMonth === 0) return `must have a month 01-12: got ${mo}`;
  if (day < 1 || day > daysInMonth) {
    return `must be a real calendar date: ${y}-${mo} has no day ${d}`;
  }
  if (Number(h) > 23 || Number(mi) > 59 || Number(sec) > 59) {
    return `must have a time 00:00:00-23:59:59: got ${h}:${mi}:${sec}`;
  }
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const zm = /^([+\- ])(\d{2}):?(\d{2})$/.exec(zone)!;
    if (Number(zm[2]) > 23 || Number(zm[3]) > 59) return `must have a zone offset within ±23:59`;
    offsetMin = (zm[1] === '-' ? -1 : 1) * (Number(zm[2]) * 60 + Number(zm[3]));
  }
  const ms = Number((frac + '000').slice(0, 3));
  return new Date(
    Date.UTC(year, month - 1, day, Number(h), Number(mi), Number(sec), ms) - offsetMin * 60_000,
  );
}

const timestamp = (name: string) =>
  z.string().transform((s, ctx) => {
    const parsed = parseTimestamp(s);
    if (typeof parsed === 'string') {
      ctx.issues.push({ code: 'custom', message: `'${name}' ${parsed}`, input: s });
      return z.NEVER;
    }
    return parsed;
  });

const historySchema = z.object({
  queue: z.string({ error: "'queue' is required: the queue's name" }).min(1, "'queue' is required")
    .max(255, "'queue' must be at most 255 characters"),
  source: source.optional(),
  project: projectId.optional(),
  from: timestamp('from').optional(),
  to: timestamp('to').optional(),
  range: z.string().regex(DURATION, "'range' must be a duration like 30m, 6h, 7d").optional(),
});

/** Validated parameters of `GET /queue-health/history`. */
export interface HistoryParams {
  /** The queue's exact name. */
  queue: string;
  /** Only this source. */
  source?: 'pgmq' | 'pgboss';
  /** Only this project. */
  project?: string;
  /** Start of the range (inclusive). */
  from: Date;
  /** End of the range. */
  to: Date;
}

function toObject(query: URLSearchParams, known: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of query) {
    if (key === 'token') continue; // a credential (scrape token), read by auth.ts
    if (!known.includes(key)) throw new ParamError(key, `unknown query parameter '${key}'`);
    if (key in out) throw new ParamError(key, `query parameter '${key}' is given more than once`);
    out[key] = value;
  }
  return out;
}

function fail(error: z.ZodError): never {
  const issue = error.issues[0];
  const parameter = String(issue.path[0] ?? '(unknown)');
  const message = issue.message.includes(`'${parameter}'`)
    ? issue.message
    : `'${parameter}' is invalid: ${issue.message}`;
  throw new ParamError(parameter, message);
}

/** Validates the query of `GET /queue-health`. @throws {ParamError} */
export function parseHealthParams(query: URLSearchParams): HealthParams {
  const parsed = healthSchema.safeParse(toObject(query, Object.keys(healthSchema.shape)));
  if (!parsed.success) fail(parsed.error);
  return parsed.data;
}

/**
 * Validates the query of `GET /queue-health/history`. Without `from`, the range ends at `to`
 * (default: now) and spans `range` (default 1h). @throws {ParamError}
 */
export function parseHistoryParams(query: URLSearchParams, now: Date): HistoryParams {
  const parsed = historySchema.safeParse(toObject(query, Object.keys(historySchema.shape)));
  if (!parsed.success) fail(parsed.error);
  const { queue, source, project, from, to, range } = parsed.data;
  if (from && range) {
    throw new ParamError('range', "give either 'from' or 'range', not both");
  }
  const end = to ?? now;
  let start = from;
  if (!start) {
    const [, amount, unit] = DURATION.exec(range ?? '1h')!;
    const ms = Number(amount) * UNIT_MS[unit];
    if (ms <= 0) throw new ParamError('range', "'range' must be longer than zero");
    if (ms > MAX_RANGE_MS) throw new ParamError('range', "'range' must be at most 400d");
    start = new Date(end.getTime() - ms);
  }
  if (start.getTime() >= end.getTime()) {
    throw new ParamError('from', "'from' must be before 'to'");
  }
  if (end.getTime() - start.getTime() > MAX_RANGE_MS) {
    throw new ParamError('from', "'from' must be at most 400 days before 'to'");
  }
  return { queue, source, project, from: start, to: end };
}

/**
 * The resolution `queue_health.queue_history` uses for a range: raw samples up to 6 h, 1-minute
 * rollups up to 7 days, hourly beyond.
 */
export function resolutionFor(from: Date, to: Date): 'raw' | '1m' | '1h' {
  const ms = to.getTime() - from.getTime();
  if (ms <= 6 * 3_600_000) return 'raw';
  if (ms <= 7 * 86_400_000) return '1m';
  return '1h';
}

/**
 * Turns a queue-name pattern (`*` any run, `?` one character, everything else literal) into a
 * SQL LIKE pattern with `\` as the escape character.
 */
export function likePattern(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '%' || ch === '_' || ch === '\\') out += '\\' + ch;
    else out += ch;
  }
  return out;
}
