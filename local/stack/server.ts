/**
 * The local stand-in for Supabase's API gateway and edge runtime, run in the background by
 * `npm run stack -- up`:
 * - serves each Edge Function's handler at http://127.0.0.1:54321/functions/v1/<name>;
 * - serves the live dashboard (dashboard/) at http://127.0.0.1:54321/, and a Realtime stand-in at
 *   /realtime/v1/websocket so it updates live on each snapshot;
 * - serves an Auth (GoTrue) stand-in at /auth/v1/* (local/auth/auth_local.ts), so the dashboard
 *   signs in with email and password through supabase-js as on hosted Supabase;
 * - runs the local Resend / Slack / webhook receivers on 127.0.0.1:54324;
 * - runs the pg_net stand-in's worker (pg_net_worker.ts), which sends what the database queued
 *   with net.http_post — queue-alert calls included — as pg_net's background worker does;
 * - provides `EdgeRuntime.waitUntil` as the edge runtime does (work that outlives a response).
 *
 * QH_DISPATCH=notify (dev mode only) also runs the older local dispatcher: on NOTIFY
 * queue_health_dispatch it invokes queue-alert. QH_SERVER_MODE=test never runs it, so tests
 * drive queue-alert themselves.
 */
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import {
  API_PORT,
  API_URL,
  authAccessTokenSeconds,
  databaseUrl,
  dispatchMode,
  paths,
  RECEIVERS_PORT,
  ROOT,
  superuserUrl,
  usesExternalDatabase,
} from './config.ts';
import { functionEnv } from './env.ts';
import { gatewayKeys, localKeys } from './keys.ts';
import { connect } from './postgres.ts';
import { startDispatcher } from './dispatcher.ts';
import { startPgNetWorker } from './pg_net_worker.ts';
import { createLocalRealtime, realtimeOrigins } from '../dashboard/realtime_local.ts';
import { createLocalAuth } from '../auth/auth_local.ts';
import { loadSigningKey } from '../auth/signing_key.ts';

type Handler = (req: Request) => Response | Promise<Response>;

const mode = Deno.env.get('QH_SERVER_MODE') ?? 'dev';
const env = await functionEnv();
const keys = await localKeys();
for (const [k, v] of Object.entries(env)) Deno.env.set(k, v);

// The edge runtime's EdgeRuntime.waitUntil(promise): keeps the worker alive until the promise
// settles after the response is sent. A Deno server lives on anyway; only failures are logged.
const runtime = globalThis as { EdgeRuntime?: { waitUntil(p: Promise<unknown>): void } };
runtime.EdgeRuntime ??= {
  waitUntil: (p: Promise<unknown>) => {
    p.catch((e) => jsonLine({ event: 'background_task_failed', error: String(e) }));
  },
};

// The local Auth stand-in: users of auth.users sign in at /auth/v1 and get ES256 access tokens,
// verified by the functions (SUPABASE_JWKS) and by Realtime with the same key. It reads and writes
// auth.* as the platform superuser (GoTrue's own role locally), or as DATABASE_URL's role. Its
// gateway part takes the publishable, secret and legacy keys as `apikey`, as hosted does.
const signingKey = await loadSigningKey(paths.authSigningKey);
const auth = createLocalAuth({
  databaseUrl: superuserUrl() ?? databaseUrl(),
  projectUrl: API_URL,
  apiKeys: gatewayKeys(keys),
  signingKey,
  legacyJwtSecret: env.SUPABASE_JWT_SECRET,
  accessTokenSeconds: authAccessTokenSeconds(),
});

// The local Realtime stand-in: the dashboard joins queue_health:<project> over a WebSocket.
// Only the stack's own pages (and QH_REALTIME_ALLOWED_ORIGINS) may open its WebSocket, and only
// with one of the project's keys as the socket's `apikey` (supabase-js sends the client's key).
const realtime = await createLocalRealtime({
  databaseUrl: databaseUrl(),
  jwtSecret: env.SUPABASE_JWT_SECRET,
  jwks: signingKey.jwks,
  apiKeys: gatewayKeys(keys),
  allowedOrigins: realtimeOrigins(API_URL, Deno.env.get('QH_REALTIME_ALLOWED_ORIGINS') ?? ''),
});

const FUNCTIONS_DIR = join(ROOT, 'supabase', 'functions');
const DASHBOARD_DIR = join(ROOT, 'dashboard');
const handlers = new Map<string, Promise<Handler>>();

function jsonLine(event: Record<string, unknown>) {
  console.log(JSON.stringify({ ts: new Date().toISOString(), src: 'local-stack', ...event }));
}

/** Loads a function's handler once (like a warm edge-runtime worker). */
function handlerFor(name: string): Promise<Handler> | null {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) return null;
  const file = join(FUNCTIONS_DIR, name, 'handler.ts');
  if (!existsSync(file)) return null;
  let h = handlers.get(name);
  if (!h) {
    h = import(`file://${file}`).then((m) => m.createHandler() as Handler);
    h.catch(() => handlers.delete(name)); // retry the import next time
    handlers.set(name, h);
  }
  return h;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.map': 'application/json',
};

async function serveStatic(pathname: string): Promise<Response> {
  const rel = normalize(decodeURIComponent(pathname)).replace(/^(\.\.[/\\])+/, '');
  let file = join(DASHBOARD_DIR, rel);
  if (!file.startsWith(DASHBOARD_DIR)) return new Response('not found', { status: 404 });
  if (pathname.endsWith('/')) file = join(file, 'index.html');
  try {
    const body = await Deno.readFile(file);
    return new Response(body, {
      headers: {
        'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-cache',
      },
    });
  } catch {
    return new Response('not found', { status: 404 });
  }
}

async function route(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const m = url.pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
  if (m) {
    const h = handlerFor(m[1]);
    if (!h) return Response.json({ error: `function '${m[1]}' not found` }, { status: 404 });
    try {
      return await (await h)(req);
    } catch (e) {
      jsonLine({ event: 'function_crash', function: m[1], error: String(e) });
      return Response.json({ error: 'function crashed; see the stack log' }, { status: 500 });
    }
  }
  if (url.pathname === '/realtime/v1/websocket') return realtime.handle(req);
  if (url.pathname === '/auth/v1' || url.pathname.startsWith('/auth/v1/')) return auth.handle(req);
  if (url.pathname === '/_stack/health') {
    return Response.json({ ok: true, mode, dispatch: dispatchMode(), pid: Deno.pid });
  }
  if (url.pathname === '/_stack/config.json') {
    // What the dashboard needs to talk to this stack (public values only). `anonKey` is the key
    // the page hands supabase-js's createClient: the publishable key, as on a hosted project
    // (the legacy anon key still works everywhere, as on a project that has both).
    return Response.json({
      supabaseUrl: API_URL,
      anonKey: keys.publishable,
      functionsUrl: `${API_URL}/functions/v1`,
      // Live updates over the local Realtime stand-in (Phoenix protocol, Broadcast from the
      // database); sign-in with email and password at the local Auth stand-in (/auth/v1).
      realtime: true,
      auth: true,
    });
  }
  return await serveStatic(url.pathname);
}

// Once it holds the port, this process names itself in the pid file: `down` stops the process
// that listens, whatever started it (a wrapper, a shell, another deno).
const onListen = () => {
  try {
    Deno.mkdirSync(paths.run, { recursive: true });
    Deno.writeTextFileSync(paths.serverPid, `${Deno.pid}\n`);
  } catch (e) {
    jsonLine({ event: 'pid_file_failed', file: paths.serverPid, error: String(e) });
  }
};

Deno.serve({ hostname: '127.0.0.1', port: API_PORT, onListen }, async (req) => {
  const started = performance.now();
  const res = await route(req);
  const path = new URL(req.url).pathname;
  if (path.startsWith('/functions/') || path.startsWith('/auth/')) {
    jsonLine({
      event: 'request',
      method: req.method,
      path,
      status: res.status,
      ms: Math.round(performance.now() - started),
    });
  }
  return res;
});
jsonLine({ event: 'listening', url: API_URL, mode });

// Local receivers for Resend, Slack and webhooks.
const receivers = join(ROOT, 'local', 'receivers', 'server.ts');
if (existsSync(receivers)) {
  const mod = await import(`file://${receivers}`);
  await mod.startReceivers({ port: RECEIVERS_PORT });
  jsonLine({ event: 'receivers', url: `http://127.0.0.1:${RECEIVERS_PORT}` });
}

// Hosted Realtime drops old message partitions by itself, as the platform; the local stand-in
// table would grow forever, so the local stack deletes broadcasts older than an hour, as the
// platform superuser too: postgres may not delete from realtime.messages (as on hosted). Without
// a superuser URL (a database of the user's own) the platform's cleanup is not ours to do.
const janitorUrl = superuserUrl();
if (janitorUrl) {
  const janitor = connect(janitorUrl, 1);
  const cleanup = () =>
    janitor`delete from realtime.messages where inserted_at < now() - interval '1 hour'`
      .catch((e) => jsonLine({ event: 'realtime_cleanup_failed', error: String(e) }));
  setInterval(cleanup, 10 * 60_000);
}

// The pg_net stand-in's worker, on the stack's own cluster only: a DATABASE_URL database has its
// own pg_net (or none), whose queue is not ours to take.
if (!usesExternalDatabase()) {
  await startPgNetWorker(databaseUrl(), {
    onRound: (r) => jsonLine({ event: 'pg_net_round', ...r }),
    onError: (e) => jsonLine({ event: 'pg_net_round_failed', error: String(e) }),
  });
  jsonLine({ event: 'pg_net_worker', wakes_on: 'pg_net_wake' });
}

// The older local path, on request only (QH_DISPATCH=notify): NOTIFY queue_health_dispatch.
if (mode !== 'test' && dispatchMode() === 'notify') {
  await startDispatcher(connect(databaseUrl(), 2), {
    functionsUrl: API_URL,
    serviceRoleKey: env.SUPABASE_SERVICE_ROLE_KEY,
    onRun: (status, body) =>
      jsonLine({ event: 'dispatch', status, body: JSON.stringify(body).slice(0, 300) }),
    onError: (e) => jsonLine({ event: 'dispatch_failed', error: String(e) }),
  });
  jsonLine({ event: 'dispatcher', listening: 'queue_health_dispatch' });
}
