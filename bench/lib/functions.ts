/**
 * Serves the Edge Functions' handlers (queue-health, queue-alert) in this process on a free port
 * of 127.0.0.1, the way the local stack's server does, but pointed at the bench's database and
 * receivers. Also the local receivers (Resend / Slack / webhooks) and the pg_net stand-in (LISTEN
 * queue_health_dispatch → POST queue-alert) when asked.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { JWT_SECRET } from '../../local/stack/config.ts';
import { localKeys, mintJwt } from '../../local/stack/keys.ts';
import { startDispatcher as startLocalDispatcher } from '../../local/stack/dispatcher.ts';
import type { Context, Sql } from './context.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

type Handler = (req: Request) => Promise<Response>;

/** A running functions server. */
export interface Functions {
  /** Base URL, e.g. http://127.0.0.1:40123 (functions under /functions/v1/<name>). */
  url: string;
  serviceRoleKey: string;
  anonKey: string;
  /** A user access token (role authenticated) for `sub`. */
  userToken(sub: string): Promise<string>;
  /** How many log lines the handlers wrote (silenced while the server runs). */
  logLines(): number;
  stop(): Promise<void>;
}

/** True when the function's handler.ts exists. */
export function hasFunctionHandler(name: string): boolean {
  return existsSync(join(ROOT, 'supabase', 'functions', name, 'handler.ts'));
}

/**
 * Starts the server. `env` adds to / overrides the functions' environment (e.g.
 * RESEND_BASE_URL). Handlers read their environment on first use, from Deno.env.
 */
export async function serveFunctions(
  ctx: Context,
  env: Record<string, string> = {},
): Promise<Functions> {
  const keys = await localKeys();
  const all: Record<string, string> = {
    SUPABASE_DB_URL: ctx.url,
    SUPABASE_JWT_SECRET: JWT_SECRET,
    SUPABASE_ANON_KEY: keys.anon,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRole,
    RESEND_API_KEY: 're_local_test',
    RESEND_FROM: 'Queue Health <alerts@queue-health.local>',
    // The receivers listen on loopback over http.
    QUEUE_ALERT_ALLOW_PRIVATE_URLS: 'true',
    QUEUE_ALERT_SLACK_HOSTS: '127.0.0.1',
    ...env,
  };
  for (const [k, v] of Object.entries(all)) Deno.env.set(k, v);
  // The handlers log one JSON line per request on stdout, where the bench prints its table:
  // count them instead while the server runs.
  const original = { log: console.log, info: console.info };
  let logLines = 0;
  console.log = console.info = () => void logLines++;
  const handlers = new Map<string, Promise<Handler>>();
  const handlerFor = (name: string) => {
    if (!/^[a-z][a-z-]*$/.test(name) || !hasFunctionHandler(name)) return null;
    let h = handlers.get(name);
    if (!h) {
      const file = join(ROOT, 'supabase', 'functions', name, 'handler.ts');
      h = import(`file://${file}`).then((m) => m.createHandler() as Handler);
      handlers.set(name, h);
    }
    return h;
  };
  const ac = new AbortController();
  let resolvePort: (p: number) => void;
  const portP = new Promise<number>((r) => (resolvePort = r));
  const server = Deno.serve({
    hostname: '127.0.0.1',
    port: 0,
    signal: ac.signal,
    onListen: ({ port }) => resolvePort(port),
  }, async (req) => {
    const m = new URL(req.url).pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
    const h = m ? handlerFor(m[1]) : null;
    if (!h) return Response.json({ error: 'not found' }, { status: 404 });
    try {
      return await (await h)(req);
    } catch (e) {
      return Response.json({ error: String(e) }, { status: 500 });
    }
  });
  const port = await portP;
  return {
    url: `http://127.0.0.1:${port}`,
    serviceRoleKey: keys.serviceRole,
    anonKey: keys.anon,
    userToken: (sub) =>
      mintJwt({ sub, role: 'authenticated', aud: 'authenticated' }, {
        issuedAt: Math.floor(Date.now() / 1000),
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      }),
    logLines: () => logLines,
    async stop() {
      console.log = original.log;
      console.info = original.info;
      ac.abort();
      await server.finished;
      const db = await import(`file://${join(ROOT, 'supabase', 'functions', '_shared', 'db.ts')}`);
      await db.closeAllSql?.();
    },
  };
}

/** The local stack's pg_net stand-in (local/stack/dispatcher.ts), pointed at these functions. */
export function startDispatcher(
  listener: Sql,
  fns: Functions,
  onRun?: (summary: unknown) => void,
): Promise<() => Promise<void>> {
  return startLocalDispatcher(listener, {
    functionsUrl: fns.url,
    serviceRoleKey: fns.serviceRoleKey,
    onRun: (_status, summary) => onRun?.(summary),
  });
}
