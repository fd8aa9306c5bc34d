/**
 * The local stand-in for pg_net's background worker (supabase/pg_net src/worker.c), over the
 * stand-in's tables (local/stack/sql/pg_net.sql):
 *
 * - It wakes on `NOTIFY pg_net_wake`, which net.http_get/http_post/http_delete send through
 *   net.wake(). PostgreSQL delivers a NOTIFY at commit only, so, as with pg_net's commit-time wake,
 *   a request is seen only once its transaction has committed, and never if it rolled back. It
 *   also looks on its own every `idlePollMs` (5 s), and once at start.
 * - Each round is one transaction, as pg_net's: delete up to `batch_size` responses older than
 *   `ttl`; take (delete) up to `batch_size` requests in id order; send them all at once, each with
 *   its own timeout_milliseconds; insert one net._http_response row per request with the request's
 *   id; commit. While a round found work it goes on after at most 1 s (sooner when woken).
 * - batch_size and ttl come from the settings pg_net.batch_size (default 200) and pg_net.ttl
 *   (default 6 hours) when set, else from the options.
 *
 * Results as pg_net writes them: status_code, content (null when the body is empty), headers (a
 * JSON object), content_type, timed_out false; on a timeout timed_out true and error_msg
 * "Timeout of N ms reached. Total time: …" (fetch cannot split DNS / handshake / transfer times,
 * so the whole time is given as the transfer's); on another failure timed_out false and curl's
 * wording for it ("Couldn't connect to server", "Couldn't resolve host name", …).
 * @module
 */
import postgres from 'postgres';

/** Settings of the worker; all optional. */
export interface PgNetWorkerOptions {
  /** Requests (and expired responses) per round when pg_net.batch_size is unset. Default 200. */
  batchSize?: number;
  /** Response lifetime when pg_net.ttl is unset (an interval). Default '6 hours'. */
  ttl?: string;
  /** Look at the queue this often even without a wake-up, in ms. Default 5 000. */
  idlePollMs?: number;
  /** HTTP client (tests may replace it). */
  fetch?: typeof fetch;
  /** Called after each round that did something. */
  onRound?: (round: { sent: number; expired: number; ms: number }) => void;
  /** Called when a round fails (the worker goes on at the next wake-up or poll). */
  onError?: (error: unknown) => void;
}

/** A running worker. */
export interface PgNetWorker {
  /** Stops listening and polling; waits for a round in progress to finish. */
  stop(): Promise<void>;
}

interface QueuedRequest {
  id: string;
  method: string;
  url: string;
  timeout_milliseconds: number;
  headers: Record<string, unknown> | null;
  body: Uint8Array | null;
}

interface ResponseRow {
  id: string;
  status_code: number | null;
  content_type: string | null;
  headers: Record<string, string> | null;
  content: string | null;
  timed_out: boolean;
  error_msg: string | null;
}

/** The application_name of the worker's sessions (net.check_worker_is_up() looks for it). */
export const WORKER_APPLICATION_NAME = 'pg_net worker';

const ONE_SECOND = 1_000;

/** curl's words for what went wrong, from a fetch error. */
function curlError(e: unknown, url: string): string {
  let text = '';
  for (let c: unknown = e, depth = 0; c !== undefined && c !== null && depth < 4; depth++) {
    text += c instanceof Error ? ` ${c.name}: ${c.message}` : ` ${String(c)}`;
    c = c instanceof Error ? c.cause : undefined;
  }
  text = text.trim();
  let scheme = '';
  try {
    scheme = new URL(url).protocol;
  } catch {
    return 'URL using bad/illegal format or missing URL';
  }
  if (scheme !== 'http:' && scheme !== 'https:') return 'Unsupported protocol';
  if (/connection refused|ECONNREFUSED/i.test(text)) return "Couldn't connect to server";
  if (/dns error|failed to lookup|name or service not known|ENOTFOUND/i.test(text)) {
    return "Couldn't resolve host name";
  }
  if (/certificate|tls|ssl/i.test(text)) return 'SSL peer certificate or SSH remote key was not OK';
  return text;
}

/** "key: value" headers as pg_net hands them to curl (non-string JSON values as JSON text). */
function requestHeaders(headers: Record<string, unknown> | null): Headers {
  const h = new Headers();
  for (const [k, v] of Object.entries(headers ?? {})) {
    h.append(k, typeof v === 'string' ? v : JSON.stringify(v));
  }
  return h;
}

/** Sends one queued request; never throws. */
async function send(req: QueuedRequest, fetchFn: typeof fetch): Promise<ResponseRow> {
  const started = performance.now();
  const row: ResponseRow = {
    id: req.id,
    status_code: null,
    content_type: null,
    headers: null,
    content: null,
    timed_out: false,
    error_msg: null,
  };
  try {
    const res = await fetchFn(req.url, {
      method: req.method.toUpperCase(),
      headers: requestHeaders(req.headers),
      body: req.body && req.body.length > 0 ? new Uint8Array(req.body) : undefined,
      redirect: 'follow',
      signal: AbortSignal.timeout(req.timeout_milliseconds),
    });
    const text = await res.text();
    row.status_code = res.status;
    row.headers = Object.fromEntries(res.headers.entries());
    row.content_type = res.headers.get('content-type');
    row.content = text === '' ? null : text;
  } catch (e) {
    const name = e instanceof Error ? e.name : '';
    if (name === 'TimeoutError' || (name === 'AbortError' && /timed? ?out/i.test(String(e)))) {
      const total = (performance.now() - started).toFixed(6);
      row.timed_out = true;
      row.error_msg =
        `Timeout of ${req.timeout_milliseconds} ms reached. Total time: ${total} ms ` +
        `(DNS time: 0.000000 ms, TCP/SSL handshake time: 0.000000 ms, ` +
        `HTTP Request/Response time: ${total} ms)`;
    } else {
      row.error_msg = curlError(e, req.url);
    }
  }
  return row;
}

/**
 * Starts the worker on the database at `databaseUrl` (any role that may use pg_net's tables).
 * @returns the running worker; `stop()` it when done.
 */
export async function startPgNetWorker(
  databaseUrl: string,
  opts: PgNetWorkerOptions = {},
): Promise<PgNetWorker> {
  const fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  const idlePollMs = opts.idlePollMs ?? 5_000;
  const sql = postgres(databaseUrl, {
    max: 1,
    onnotice: () => {},
    connect_timeout: 5,
    connection: { application_name: WORKER_APPLICATION_NAME },
  });
  let stopped = false;
  let woken = true; // as pg_net: look once at start
  let wakeUp: (() => void) | null = null;
  const wake = () => {
    woken = true;
    wakeUp?.();
  };
  /** Waits until woken, at most `ms`. */
  const waitForWake = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wakeUp = null;
        resolve();
      }
      wakeUp = done;
    });

  const round = async (): Promise<{ sent: number; expired: number }> => {
    return await sql.begin(async (tx) => {
      const [settings] = await tx<{ batch: string | null; ttl: string | null }[]>`
        select nullif(current_setting('pg_net.batch_size', true), '') as batch,
               nullif(current_setting('pg_net.ttl', true), '') as ttl`;
      const batch = Number(settings.batch ?? opts.batchSize ?? 200);
      const ttl = settings.ttl ?? opts.ttl ?? '6 hours';
      const expired = await tx`
        with rows as (
          select ctid from net._http_response
           where created < now() - ${ttl}::interval
           order by created
           limit ${batch}::int)
        delete from net._http_response r using rows where r.ctid = rows.ctid`;
      const requests = await tx<QueuedRequest[]>`
        with rows as (select id from net.http_request_queue order by id limit ${batch}::int)
        delete from net.http_request_queue q using rows where q.id = rows.id
        returning q.id::text as id, q.method::text as method, q.url, q.timeout_milliseconds,
                  q.headers, q.body`;
      const responses = await Promise.all(requests.map((r) => send(r, fetchFn)));
      for (const r of responses) {
        await tx`
          insert into net._http_response
            (id, status_code, content, headers, content_type, timed_out, error_msg)
          values (${r.id}::bigint, ${r.status_code}, ${r.content},
                  ${r.headers === null ? null : tx.json(r.headers)}, ${r.content_type},
                  ${r.timed_out}, ${r.error_msg})`;
      }
      return { sent: requests.length, expired: expired.count };
    });
  };

  const listener = await sql.listen('pg_net_wake', wake);

  const loop = (async () => {
    while (!stopped) {
      if (!woken) await waitForWake(idlePollMs);
      if (stopped) break;
      woken = false;
      try {
        const t0 = performance.now();
        const r = await round();
        if (r.sent > 0 || r.expired > 0) {
          opts.onRound?.({ ...r, ms: Math.round(performance.now() - t0) });
          // As pg_net: more may be waiting; go on after at most a second.
          woken = true;
          await waitForWake(ONE_SECOND);
        }
      } catch (e) {
        if (stopped) break;
        opts.onError?.(e);
      }
    }
  })();

  return {
    async stop() {
      stopped = true;
      wakeUp?.();
      await loop;
      await listener.unlisten().catch(() => {});
      await sql.end({ timeout: 2 });
    },
  };
}
