/**
 * queue-health: JSON health (200 healthy / 503 not), Prometheus text, and history series, for
 * Supabase JWT callers (RLS decides what they see), the service role, and per-project scrape
 * tokens.
 *
 * Routes (after the `/functions/v1/queue-health` prefix):
 * - `GET /` — health report as JSON; `?format=prometheus`, or an Accept that names
 *   `application/openmetrics-text` or `text/plain; version=0.0.4`, for a Prometheus exposition
 *   (OpenMetrics 1.0.0 or the classic text format, whichever Accept prefers; `?format=openmetrics`
 *   forces OpenMetrics). Gzipped when Accept-Encoding allows it.
 * - `GET /history?queue=…` — series for charts.
 * @module
 */
import { BodyTooLarge, readBodyLimited } from '../_shared/body.ts';
import type { Sql } from '../_shared/db.ts';
import type { JwtVerifier } from '../_shared/jwt.ts';
import { json } from '../_shared/json.ts';
import { createLogger, type Logger } from '../_shared/log.ts';
import { type Caller, type DbRole, describeCaller, resolveCaller } from './auth.ts';
import { depsFromEnv } from './config.ts';
import { buildReport, eta } from './health.ts';
import {
  likePattern,
  ParamError,
  parseHealthParams,
  parseHistoryParams,
  resolutionFor,
} from './params.ts';
import { acceptsGzip, gzipStream, negotiateFormat } from './negotiate.ts';
import { contentTypeOf, renderPrometheus } from './prometheus.ts';
import {
  type DbSession,
  errorCode,
  evaluateMonitorStale,
  inSession,
  lookupScrapeToken,
  readHealth,
  readHistory,
  type Row,
} from './queries.ts';

/** What the handler depends on; tests pass their own. */
export interface Deps {
  /** The database (postgres.js, `prepare: false`). */
  sql: Sql;
  /** Verifies Supabase JWTs. */
  verifyJwt: JwtVerifier;
  /** API keys accepted as they are (new non-JWT keys, legacy anon / service-role keys). */
  staticKeys: Map<string, DbRole>;
  /** One JSON line per request. */
  logger: Logger;
  /** The clock. */
  now: () => Date;
  /**
   * Run `queue_health.evaluate_monitor_stale()` (when installed) at most this often per isolate,
   * so a stalled monitor is noticed even when pg_cron stopped; 0 turns it off. Default 5000 ms.
   */
  evaluateEveryMs: number;
}

/** CORS headers on every response. */
export const CORS_HEADERS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-headers': 'authorization, apikey, content-type, x-client-info',
  'access-control-allow-methods': 'GET, HEAD, OPTIONS',
  'access-control-max-age': '86400',
};

/** Headers of every answer but OPTIONS: CORS, and never cached. */
const ANSWER_HEADERS: Record<string, string> = { ...CORS_HEADERS, 'cache-control': 'no-store' };

/** A database failure, answered 503 with `reason`. */
class DatabaseError extends Error {
  constructor(readonly reason: string, readonly code: string | undefined) {
    super(reason);
  }
}

/** A short, safe reason for a database failure (never a message, query or stack). */
export function databaseReason(error: unknown): string {
  const code = errorCode(error) ?? '';
  if (/^(08|57P0)/.test(code) || /^(E[A-Z]+|CONNECT_TIMEOUT|CONNECTION_\w+)$/.test(code)) {
    return 'connection failed';
  }
  if (code === '57014') return 'query timeout';
  if (code === '55P03') return 'lock timeout';
  if (code.startsWith('53')) return 'database overloaded';
  if (['42P01', '42883', '42703', '3F000'].includes(code)) {
    return 'queue_health schema missing or out of date';
  }
  if (code === '42501') return 'permission denied';
  if (code === '28P01' || code === '28000') return 'database authentication failed';
  return code ? `query failed (${code})` : 'connection failed';
}

async function db<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw new DatabaseError(databaseReason(error), errorCode(error));
  }
}

/** The part of the path after `/queue-health` ('' for the function itself). */
export function routeOf(pathname: string): string | null {
  const match = /(?:^|\/)queue-health(\/.*)?$/.exec(pathname);
  if (!match) return null;
  return (match[1] ?? '').replace(/\/+$/, '');
}

/**
 * A health answer: `body` gzipped when the caller accepts it. The body depends on Accept and
 * Accept-Encoding, so both are named in Vary.
 */
function healthResponse(
  req: Request,
  status: number,
  contentType: string,
  body: string,
): Response {
  const headers: Record<string, string> = {
    ...ANSWER_HEADERS,
    'content-type': contentType,
    vary: 'Accept, Accept-Encoding',
  };
  if (!acceptsGzip(req.headers.get('accept-encoding'))) {
    return new Response(body, { status, headers });
  }
  return new Response(gzipStream(body), {
    status,
    headers: { ...headers, 'content-encoding': 'gzip' },
  });
}

function sessionOf(caller: Caller): DbSession {
  if (caller.kind === 'scrape_token') {
    return { role: 'service_role', claims: { role: 'service_role' } };
  }
  return { role: caller.role, claims: caller.claims };
}

/** Creates the request handler. Without `deps` it reads its environment (see config.ts). */
export function createHandler(deps: Partial<Deps> = {}): (req: Request) => Promise<Response> {
  const d: Deps = deps.sql && deps.verifyJwt
    ? {
      logger: createLogger({ fn: 'queue-health' }),
      now: () => new Date(),
      evaluateEveryMs: 5_000,
      staticKeys: new Map(),
      ...deps as Pick<Deps, 'sql' | 'verifyJwt'>,
    }
    : { ...depsFromEnv(), ...deps };
  let lastEvaluation = -Infinity;

  async function maybeEvaluate(): Promise<void> {
    const now = d.now().getTime();
    if (d.evaluateEveryMs <= 0 || now - lastEvaluation < d.evaluateEveryMs) return;
    lastEvaluation = now;
    try {
      await evaluateMonitorStale(d.sql);
    } catch (error) {
      // Reading health must not fail because evaluation did (e.g. a lock held by capture).
      d.logger.warn('evaluate_monitor_stale failed', { reason: databaseReason(error) });
    }
  }

  async function health(req: Request, url: URL, caller: Caller): Promise<Response> {
    const params = parseHealthParams(url.searchParams);
    const format = negotiateFormat(params.format, req.headers.get('accept'));
    await maybeEvaluate();
    const checkedAt = d.now();
    const onSkip = (part: string, code: string) =>
      d.logger.warn('health part unavailable', { part, code, role: describeCaller(caller) });
    const rows = await db(() =>
      inSession(d.sql, sessionOf(caller), (tx) =>
        readHealth(tx, {
          project: params.project,
          forcedProject: caller.kind === 'scrape_token' ? caller.projectId : undefined,
          source: params.source,
          queueLike: params.queue === undefined ? undefined : likePattern(params.queue),
          statuses: params.status,
        }, onSkip))
    );
    const report = buildReport(rows, checkedAt);
    if (format !== 'json') {
      return healthResponse(req, 200, contentTypeOf(format), renderPrometheus(report, format));
    }
    return healthResponse(
      req,
      report.healthy ? 200 : 503,
      'application/json; charset=utf-8',
      JSON.stringify(report),
    );
  }

  async function history(url: URL, caller: Caller): Promise<Response> {
    if (caller.kind === 'scrape_token') {
      return json(
        403,
        { error: 'forbidden', message: 'scrape tokens read health only' },
        ANSWER_HEADERS,
      );
    }
    const p = parseHistoryParams(url.searchParams, d.now());
    const onSkip = (part: string, code: string) =>
      d.logger.warn('history unavailable', { part, code, role: describeCaller(caller) });
    const rows = await db(() =>
      inSession(d.sql, sessionOf(caller), (tx) => readHistory(tx, p, onSkip))
    );
    const series = new Map<string, { key: Row; points: Row[] }>();
    let resolution: string = resolutionFor(p.from, p.to);
    for (const row of rows) {
      const key = {
        project_id: row.project_id,
        source: row.source,
        source_schema: row.source_schema ?? null,
        queue: row.queue_name,
      };
      const id = JSON.stringify(key);
      if (!series.has(id)) series.set(id, { key, points: [] });
      if (typeof row.resolution === 'string') resolution = row.resolution;
      const {
        bucket,
        project_id: _p,
        source: _s,
        queue_name: _q,
        resolution: _r,
        source_schema: _ss,
        ...values
      } = row;
      // The JSON convention: a drain ETA or expected wait of Infinity is "never".
      for (const k of ['drain_eta_s', 'expected_wait_s']) {
        if (k in values) values[k] = eta(values[k]);
      }
      series.get(id)!.points.push({ t: new Date(String(bucket)).toISOString(), ...values });
    }
    return json(200, {
      queue: p.queue,
      source: p.source ?? null,
      project: p.project ?? null,
      from: p.from.toISOString(),
      to: p.to.toISOString(),
      resolution,
      series: [...series.values()].map(({ key, points }) => ({ ...key, points })),
    }, ANSWER_HEADERS);
  }

  return async (req: Request): Promise<Response> => {
    const started = performance.now();
    const url = new URL(req.url);
    let caller: Caller | null = null;
    let response: Response;
    try {
      response = await (async () => {
        if (req.method === 'OPTIONS') {
          return new Response(null, { status: 204, headers: CORS_HEADERS });
        }
        // No route takes a body: one is read (and dropped) only up to the limit, never whole.
        if (req.body) await readBodyLimited(req);
        caller = await db(() =>
          resolveCaller(req, url, {
            verifyJwt: d.verifyJwt,
            staticKeys: d.staticKeys,
            lookupScrapeToken: (hash) => lookupScrapeToken(d.sql, hash),
          })
        );
        if (!caller) return json(401, { error: 'unauthorized' }, ANSWER_HEADERS);
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          return json(405, { error: 'method not allowed' }, {
            ...ANSWER_HEADERS,
            allow: 'GET, HEAD, OPTIONS',
          });
        }
        const route = routeOf(url.pathname);
        if (route === '') return await health(req, url, caller);
        if (route === '/history') return await history(url, caller);
        return json(404, { error: 'not found' }, ANSWER_HEADERS);
      })();
    } catch (error) {
      if (error instanceof BodyTooLarge) {
        response = json(
          413,
          { error: 'payload too large', message: error.message },
          ANSWER_HEADERS,
        );
      } else if (error instanceof ParamError) {
        response = json(400, {
          error: 'invalid parameter',
          parameter: error.parameter,
          message: error.message,
        }, ANSWER_HEADERS);
      } else if (error instanceof DatabaseError) {
        d.logger.error('database error', { reason: error.reason, code: error.code });
        response = json(
          503,
          { error: 'database unavailable', reason: error.reason },
          ANSWER_HEADERS,
        );
      } else {
        d.logger.error('unexpected error', {
          error: error instanceof Error ? error.name : typeof error,
        });
        response = json(500, { error: 'internal error' }, ANSWER_HEADERS);
      }
    }
    if (req.method === 'HEAD' && response.body) {
      // Uptime checkers that use HEAD get the status code and headers of the GET.
      await response.body.cancel();
      response = new Response(null, { status: response.status, headers: response.headers });
    }
    d.logger.info('request', {
      method: req.method,
      path: url.pathname,
      status: response.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
      role: describeCaller(caller),
    });
    return response;
  };
}
