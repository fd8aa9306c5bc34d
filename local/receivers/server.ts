/**
 * Local stand-ins for Resend and Slack (and any webhook endpoint), so alerts can be delivered and
 * inspected without the real services. One HTTP server on 127.0.0.1:
 *
 * | route | behaves like |
 * | --- | --- |
 * | `POST /resend/emails` | Resend's send-email API: checks `Authorization: Bearer`, validates, answers `{id}`; a repeated `Idempotency-Key` gets the first answer and records nothing new |
 * | `POST /slack/<any path>` | a Slack incoming webhook: answers `ok`, or `400 no_text` / `invalid_payload` |
 * | `POST /webhook/<any path>` | a webhook endpoint: records body and headers, answers 200 with `x-request-id` |
 * | `POST`/`GET /twilio/2010-04-01/Accounts/<AC…>/Messages.json` | Twilio's Messages API: create (form, basic auth) and list (local/receivers/oncall.ts) |
 * | `POST /pagerduty/v2/enqueue` | PagerDuty's Events API v2 (local/receivers/oncall.ts) |
 * | `POST /_control` | scripts the next answers of a route: `{route, status, headers?, body?, times?, path?, method?, match?, delay_ms?}` |
 * | `GET /_received?route=slack[&all=1]` | what was accepted (or every request with `all=1`), with receive timestamps |
 * | `POST /_reset` | forgets everything |
 * | `GET /` | in a browser: an inbox of the latest requests (auto-refreshing) |
 *
 * Run standalone with `deno run -A local/receivers/server.ts [--port 54324]` (or env
 * `RECEIVERS_PORT`); tests call {@link startReceivers}. The local stack points the functions at it
 * with `RESEND_BASE_URL=http://127.0.0.1:54324/resend` (the resend SDK appends `/emails`),
 * `TWILIO_API_BASE_URL=http://127.0.0.1:54324/twilio` and
 * `PAGERDUTY_EVENTS_URL=http://127.0.0.1:54324/pagerduty/v2/enqueue`.
 * @module
 */
import { type OncallState, oncallState, pagerDuty, twilio } from './oncall.ts';

/** The kinds of receiver. */
export type Route = 'resend' | 'slack' | 'webhook' | OncallRoute;

/** The on-call providers' stand-ins (local/receivers/oncall.ts). */
type OncallRoute = 'twilio' | 'pagerduty';

const ROUTES: readonly Route[] = ['resend', 'slack', 'webhook', 'twilio', 'pagerduty'];

/** One request as recorded. */
export interface Received {
  route: Route;
  method: string;
  /** Path after the route prefix, e.g. `/services/T0/B0/x` for `/slack/services/T0/B0/x`. */
  path: string;
  /** Lower-cased request headers. */
  headers: Record<string, string>;
  /** The raw body, byte-for-byte as text (signatures are computed over this). */
  raw: string;
  /** The body parsed as JSON, or null when it is not JSON. */
  body: unknown;
  /** When the request arrived (ISO 8601). */
  received_at: string;
  /** The status answered. */
  status: number;
  /** True for a Resend request answered from the idempotency cache. */
  replayed?: boolean;
  /** Resend email id / webhook request id answered. */
  id?: string;
}

/** A scripted answer, consumed once per matching request. */
export interface Script {
  route: Route;
  status: number;
  headers?: Record<string, string>;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  /** How many requests get this answer (default 1). */
  times?: number;
  /** Only requests whose path (after the route prefix) equals this. */
  path?: string;
  /** Only requests with this method (e.g. `POST`, leaving Twilio's `GET` list alone). */
  method?: string;
  /** Only requests whose raw body contains this text (e.g. one recipient's `To=`). */
  match?: string;
  /** Wait this long before answering (simulates a slow receiver). */
  delay_ms?: number;
}

/** Options for {@link startReceivers}. */
export interface ReceiverOptions {
  /** Port; 0 (the default for tests) picks a free one. */
  port?: number;
  /** Interface; always loopback. */
  hostname?: '127.0.0.1' | 'localhost';
  /** When set, `/resend/emails` accepts only this Bearer key (else any non-empty key). */
  resendApiKey?: string;
  /** When set, `/twilio` accepts only this auth token (else any non-empty one). */
  twilioAuthToken?: string;
  /** Print one line per request. */
  verbose?: boolean;
}

/** A running receiver server. */
export interface Receivers {
  /** Base URL, e.g. `http://127.0.0.1:54324`. */
  url: string;
  port: number;
  /** Accepted requests of a route (emails sent, Slack messages posted, webhooks 2xx-answered). */
  received(route: Route): Received[];
  /** Every request of a route, including scripted failures and idempotent replays. */
  requests(route: Route): Received[];
  /** Adds a scripted answer. */
  script(script: Script): void;
  /** Forgets requests, scripts and idempotency keys. */
  reset(): void;
  /** What the Twilio and PagerDuty stand-ins hold: messages created, PagerDuty alerts. */
  oncall: OncallState;
  /** Stops the server. */
  stop(): Promise<void>;
}

interface State {
  oncall: OncallState;
  requests: Received[];
  scripts: (Script & { left: number })[];
  idempotency: Map<string, { bodyHash: string; status: number; response: string }>;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

async function sha256(text: string): Promise<string> {
  const d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return null;
  }
}

function isRoute(v: unknown): v is Route {
  return typeof v === 'string' && (ROUTES as readonly string[]).includes(v);
}

function validateScript(v: unknown): Script | string {
  if (typeof v !== 'object' || v === null) return 'body must be a JSON object';
  const s = v as Record<string, unknown>;
  if (!isRoute(s.route)) return `'route' must be one of ${ROUTES.join(', ')}`;
  if (typeof s.status !== 'number' || s.status < 100 || s.status > 599) {
    return "'status' must be an HTTP status";
  }
  if (s.times !== undefined && (typeof s.times !== 'number' || s.times < 1)) {
    return "'times' must be a positive number";
  }
  if (s.headers !== undefined && (typeof s.headers !== 'object' || s.headers === null)) {
    return "'headers' must be an object";
  }
  if (s.path !== undefined && typeof s.path !== 'string') return "'path' must be a string";
  if (s.method !== undefined && typeof s.method !== 'string') return "'method' must be a string";
  if (s.match !== undefined && typeof s.match !== 'string') return "'match' must be a string";
  if (s.delay_ms !== undefined && typeof s.delay_ms !== 'number') {
    return "'delay_ms' must be a number";
  }
  return s as unknown as Script;
}

/** Starts the receivers. */
export function startReceivers(options: ReceiverOptions = {}): Promise<Receivers> {
  const state: State = {
    oncall: oncallState(),
    requests: [],
    scripts: [],
    idempotency: new Map(),
  };

  function takeScript(route: Route, path: string, method: string, raw: string): Script | null {
    const i = state.scripts.findIndex((s) =>
      s.route === route && (s.path === undefined || s.path === path) &&
      (s.method === undefined || s.method.toUpperCase() === method) &&
      (s.match === undefined || raw.includes(s.match))
    );
    if (i < 0) return null;
    const s = state.scripts[i];
    s.left--;
    if (s.left <= 0) state.scripts.splice(i, 1);
    return s;
  }

  async function handleRoute(route: Route, path: string, req: Request): Promise<Response> {
    const raw = await req.text();
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => (headers[k] = v));
    const entry: Received = {
      route,
      method: req.method,
      path,
      headers,
      raw,
      body: parseJson(raw),
      received_at: new Date().toISOString(),
      status: 0,
    };
    state.requests.push(entry);
    if (options.verbose) console.log(`${entry.received_at} ${req.method} /${route}${path}`);

    const scripted = takeScript(route, path, req.method, raw);
    if (scripted) {
      if (scripted.delay_ms) await new Promise((r) => setTimeout(r, scripted.delay_ms));
      entry.status = scripted.status;
      const body = scripted.body === undefined
        ? ''
        : typeof scripted.body === 'string'
        ? scripted.body
        : JSON.stringify(scripted.body);
      return new Response(scripted.status === 204 || scripted.status === 304 ? null : body, {
        status: scripted.status,
        headers: {
          'content-type': typeof scripted.body === 'string' || scripted.body === undefined
            ? 'text/plain'
            : 'application/json',
          ...(scripted.headers ?? {}),
        },
      });
    }

    if (route === 'twilio' || route === 'pagerduty') {
      const a = route === 'twilio'
        ? twilio(state.oncall, path, req, raw, { authToken: options.twilioAuthToken })
        : pagerDuty(state.oncall, path, req, raw);
      entry.status = a.status;
      if (a.id) entry.id = a.id;
      if (a.fields) entry.body = a.fields;
      return a.response;
    }

    if (req.method !== 'POST') {
      entry.status = 405;
      return json(405, {
        statusCode: 405,
        name: 'method_not_allowed',
        message: 'Method not allowed',
      });
    }

    if (route === 'resend') return resend(entry, req);
    if (route === 'slack') return slack(entry);
    entry.id = crypto.randomUUID();
    entry.status = 200;
    return new Response('ok', { status: 200, headers: { 'x-request-id': entry.id } });
  }

  async function resend(entry: Received, req: Request): Promise<Response> {
    const fail = (status: number, name: string, message: string) => {
      entry.status = status;
      return json(status, { statusCode: status, name, message });
    };
    if (entry.path !== '/emails') {
      return fail(404, 'not_found', 'The requested endpoint does not exist.');
    }
    const auth = /^Bearer\s+(\S+)$/.exec(req.headers.get('authorization') ?? '');
    if (!auth) return fail(401, 'missing_api_key', 'Missing API key in the authorization header.');
    if (options.resendApiKey && auth[1] !== options.resendApiKey) {
      return fail(403, 'invalid_api_key', 'API key is invalid.');
    }
    const key = req.headers.get('idempotency-key');
    const bodyHash = await sha256(entry.raw);
    if (key) {
      const seen = state.idempotency.get(key);
      if (seen) {
        if (seen.bodyHash !== bodyHash) {
          return fail(
            409,
            'invalid_idempotent_request',
            'Same idempotency key used with a different request payload.',
          );
        }
        entry.status = seen.status;
        entry.replayed = true;
        entry.id = (parseJson(seen.response) as { id?: string } | null)?.id;
        return new Response(seen.response, {
          status: seen.status,
          headers: { 'content-type': 'application/json' },
        });
      }
    }
    const b = entry.body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object') return fail(422, 'validation_error', 'Invalid JSON body.');
    for (const field of ['from', 'to', 'subject']) {
      if (!b[field] || (Array.isArray(b[field]) && (b[field] as unknown[]).length === 0)) {
        return fail(422, 'missing_required_field', `Missing \`${field}\` field.`);
      }
    }
    if (!b.html && !b.text) {
      return fail(422, 'validation_error', 'Either `html` or `text` must be provided.');
    }
    entry.id = crypto.randomUUID();
    entry.status = 200;
    const response = JSON.stringify({ id: entry.id });
    if (key) state.idempotency.set(key, { bodyHash, status: 200, response });
    return new Response(response, { status: 200, headers: { 'content-type': 'application/json' } });
  }

  function slack(entry: Received): Response {
    const text = (status: number, body: string) => {
      entry.status = status;
      return new Response(body, { status, headers: { 'content-type': 'text/plain' } });
    };
    const b = entry.body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b)) return text(400, 'invalid_payload');
    const hasBlocks = Array.isArray(b.blocks) && b.blocks.length > 0;
    if (!(typeof b.text === 'string' && b.text.trim()) && !hasBlocks) return text(400, 'no_text');
    if (b.blocks !== undefined && !Array.isArray(b.blocks)) return text(400, 'invalid_blocks');
    if (hasBlocks && (b.blocks as unknown[]).length > 50) return text(400, 'invalid_blocks');
    return text(200, 'ok');
  }

  // A GET (Twilio's message list) reads; only what a POST created counts as received.
  const accepted = (r: Received) =>
    r.status >= 200 && r.status < 300 && !r.replayed && r.method === 'POST';

  async function handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const [, first, ...rest] = url.pathname.split('/');
    if (isRoute(first)) return handleRoute(first, `/${rest.join('/')}`, req);
    if (url.pathname === '/_control' && req.method === 'POST') {
      const s = validateScript(parseJson(await req.text()));
      if (typeof s === 'string') return json(400, { error: s });
      state.scripts.push({ ...s, left: s.times ?? 1 });
      return json(200, { ok: true, scripts: state.scripts.length });
    }
    if (url.pathname === '/_received' && req.method === 'GET') {
      const route = url.searchParams.get('route');
      if (route !== null && !isRoute(route)) {
        return json(400, { error: `'route' must be one of ${ROUTES.join(', ')}` });
      }
      const all = url.searchParams.get('all') === '1';
      const list = state.requests.filter((r) =>
        (route === null || r.route === route) && (all || accepted(r))
      );
      return json(200, { received: list });
    }
    if (url.pathname === '/_reset' && req.method === 'POST') {
      resetState();
      return json(200, { ok: true });
    }
    if (url.pathname === '/' && req.method === 'GET') {
      if ((req.headers.get('accept') ?? '').includes('text/html')) {
        return new Response(inbox(state.requests), {
          headers: { 'content-type': 'text/html; charset=utf-8' },
        });
      }
      return json(200, { routes: ROUTES, requests: state.requests.length });
    }
    return json(404, { error: 'not_found' });
  }

  function resetState(): void {
    state.requests = [];
    state.scripts = [];
    state.idempotency.clear();
    state.oncall = oncallState();
  }

  const ac = new AbortController();
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname: options.hostname ?? '127.0.0.1',
        port: options.port ?? 0,
        signal: ac.signal,
        onListen: ({ port }) => {
          const url = `http://127.0.0.1:${port}`;
          resolve({
            url,
            port,
            received: (route) => state.requests.filter((r) => r.route === route && accepted(r)),
            requests: (route) => state.requests.filter((r) => r.route === route),
            script: (s) => state.scripts.push({ ...s, left: s.times ?? 1 }),
            reset: resetState,
            get oncall() {
              return state.oncall;
            },
            stop: async () => {
              ac.abort();
              await server.finished;
            },
          });
        },
      },
      handle,
    );
  });
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(
    /"/g,
    '&quot;',
  );
}

/** What a person sees of a message: subject, Slack text or the webhook summary. */
function headline(r: Received): string {
  const b = (r.body ?? {}) as Record<string, unknown>;
  const text = r.route === 'resend'
    ? b.subject
    : r.route === 'slack'
    ? b.text
    : r.route === 'twilio'
    ? b.Body
    : r.route === 'pagerduty'
    ? (b.payload as Record<string, unknown> | undefined)?.summary ??
      `${b.event_action} ${b.dedup_key}`
    : b.summary ?? b.type;
  return typeof text === 'string' ? text.split('\n')[0] : r.raw.slice(0, 120);
}

/** A small HTML inbox of the latest requests (newest first), for demos in a browser. */
function inbox(requests: Received[]): string {
  const rows = requests
    .slice(-100)
    .reverse()
    .map((r) =>
      `<tr><td>${escapeHtml(r.received_at)}</td><td>${r.route}</td><td>${r.status}${
        r.replayed ? ' (replayed)' : ''
      }</td><td>${escapeHtml(headline(r))}</td></tr>`
    )
    .join('');
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">` +
    `<title>Queue Health local receivers</title></head>` +
    `<body style="font-family:system-ui,sans-serif"><h1>Local receivers</h1>` +
    `<p>Resend, Slack, webhook, Twilio and PagerDuty requests received (newest first; JSON at ` +
    `<a href="/_received">/_received</a>).</p>` +
    `<table cellpadding="4"><tr><th>received</th><th>route</th><th>status</th><th>message</th></tr>` +
    `${rows}</table></body></html>`;
}

function portFromArgs(args: string[]): number {
  const i = args.indexOf('--port');
  const raw = i >= 0 ? args[i + 1] : Deno.env.get('RECEIVERS_PORT') ?? '54324';
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`'--port' (or RECEIVERS_PORT) must be a port number: got ${raw}`);
  }
  return port;
}

if (import.meta.main) {
  const r = await startReceivers({
    port: portFromArgs(Deno.args),
    resendApiKey: Deno.env.get('RESEND_API_KEY') || undefined,
    twilioAuthToken: Deno.env.get('TWILIO_AUTH_TOKEN') || undefined,
    verbose: true,
  });
  console.log(JSON.stringify({ event: 'receivers_listening', url: r.url }));
}
