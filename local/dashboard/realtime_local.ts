/**
 * A local stand-in for Supabase Realtime's Broadcast-from-database, just enough for the
 * dashboard's live mode without Docker: a Phoenix-protocol WebSocket (serializer vsn 2.0.0, text
 * frames) at `/realtime/v1/websocket` that supabase-js joins like the real one.
 *
 * - `phx_join` of a private channel (`config.private: true`) is authorised the way Realtime does
 *   it: the access token is verified with the project's JWT secret (HS256) or, for ES256/RS256
 *   tokens such as the local Auth stand-in's, with the project's JWKS; then, in a transaction that
 *   is rolled back, a broadcast row for the topic is inserted and selected as the caller's role
 *   with `request.jwt.claims`, `request.jwt.claim.sub`/`role` and `realtime.topic` set, so the
 *   SELECT policies on `realtime.messages` decide. Public channels are joined without a check.
 * - Messages come from the local `realtime.send()` (local/stack/sql/hosted_platform.sql), which
 *   inserts into `realtime.messages` and NOTIFYs `realtime:broadcast` with the row's id. As in
 *   hosted Realtime, where a private and a public channel of the same name are two different
 *   topics, a private message (the row's `private`) reaches only sockets whose private join was
 *   authorised, a public one only public joins; each gets `{type: 'broadcast', event, payload}`.
 *   Topic and privacy are read from the row, not from the notification.
 * - A WebSocket upgrade whose `Origin` is not one of `allowedOrigins` is refused with 403, so a
 *   web page on another origin in the developer's browser cannot connect. A request without
 *   `Origin` is not from a browser page and is let through (as `curl` or a server would be).
 * - With `apiKeys` (the local stack gives them), the upgrade is checked as the API gateway checks
 *   it (local/auth/api_keys.ts): its `apikey` (the query parameter supabase-js sends, or the
 *   header) must be one of the project's keys, a secret key not from a browser, else 401. The new
 *   keys are not JWTs: as an access token (supabase-js sends its key as the token until a user
 *   signs in) the publishable key stands for the `anon` role and a secret key for `service_role`,
 *   as the gateway maps them; the socket's apikey is its token until a join brings one.
 *
 * Not implemented: presence, postgres_changes, client-sent broadcasts (answered ok, dropped),
 * re-checking authorisation on token refresh beyond verifying the new token.
 * @module
 */
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
} from 'jose';
import postgres from 'postgres';
import { type ApiKey, checkApiKey, isOpaqueKey, roleOfKey } from '../auth/api_keys.ts';

/** Options of {@link createLocalRealtime} and {@link startLocalRealtime}. */
export interface LocalRealtimeOptions {
  /** The database whose `realtime.send()` to relay. */
  databaseUrl: string;
  /** The HS256 secret access tokens are signed with. */
  jwtSecret: string;
  /**
   * The project's public signing keys (`SUPABASE_JWKS`, the local Auth stand-in's), for tokens
   * signed with an asymmetric key (ES256, RS256, EdDSA); without it only HS256 tokens verify.
   */
  jwks?: JSONWebKeySet;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
  /**
   * Origins (`scheme://host:port`) whose pages may open a WebSocket. {@link startLocalRealtime}
   * always adds its own origin; {@link createLocalRealtime} allows only what is listed here.
   */
  allowedOrigins?: string[];
  /**
   * The project's API keys: when given, a socket must present one as `apikey` (as through the
   * hosted gateway), and the publishable / secret keys are accepted as access tokens for the
   * anon / service role. Without it (a test's own stand-in) the apikey is not looked at.
   */
  apiKeys?: readonly ApiKey[];
}

/**
 * The origins allowed to connect: `own` (the server's own, with `localhost` and `127.0.0.1`
 * spellings of it) plus the comma-separated `QH_REALTIME_ALLOWED_ORIGINS` list.
 */
export function realtimeOrigins(own: string, extra = ''): string[] {
  const u = new URL(own);
  const spellings = ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)
    ? ['127.0.0.1', 'localhost', '[::1]'].map((h) => `${u.protocol}//${h}:${u.port}`)
    : [u.origin];
  const listed = extra.split(',').map((o) => o.trim()).filter(Boolean).map((o) => {
    try {
      return new URL(o).origin;
    } catch {
      throw new Error(
        `'QH_REALTIME_ALLOWED_ORIGINS' must list origins like http://host:port: got ${o}`,
      );
    }
  });
  return [...new Set([...spellings, ...listed])];
}

/** The stand-in as a request handler, to mount in a server of one's own. */
export interface LocalRealtimeHandler {
  /** Answers `/realtime/v1/websocket` (the WebSocket upgrade); anything else gets 404. */
  handle(req: Request): Response;
  /**
   * Counters: sockets open, joins accepted and refused, messages relayed, upgrades refused for
   * their origin or their apikey.
   */
  stats(): {
    sockets: number;
    joined: number;
    refused: number;
    relayed: number;
    originRefused: number;
    keyRefused: number;
  };
  /** Closes every socket and the database listener. */
  close(): Promise<void>;
}

/** A running stand-in with its own server. */
export interface LocalRealtime extends Omit<LocalRealtimeHandler, 'handle'> {
  /** Its base URL: use it as `supabaseUrl` (supabase-js appends `/realtime/v1/websocket`). */
  url: string;
}

type Frame = [string | null, string | null, string, string, Record<string, unknown>];

interface Client {
  socket: WebSocket;
  token: string | null;
  /** topic (without the `realtime:` prefix) → its join: ref, and whether private (authorised) */
  joined: Map<string, { ref: string | null; private: boolean }>;
}

class Rollback extends Error {}

/**
 * Starts the stand-in on its own port on 127.0.0.1 (`opts.port`, default a free one).
 */
export async function startLocalRealtime(opts: LocalRealtimeOptions): Promise<LocalRealtime> {
  let handle: (req: Request) => Response = () => new Response('starting', { status: 503 });
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: opts.port ?? 0, onListen: () => {} },
    (req) => handle(req),
  );
  const own = realtimeOrigins(`http://127.0.0.1:${server.addr.port}`);
  const rt = await createLocalRealtime({
    ...opts,
    allowedOrigins: [...own, ...(opts.allowedOrigins ?? [])],
  }).catch(async (e) => {
    await server.shutdown();
    throw e;
  });
  handle = rt.handle;
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    stats: rt.stats,
    async close() {
      await rt.close();
      await server.shutdown();
    },
  };
}

/**
 * Creates the stand-in as a handler, e.g. for the local stack's server to route
 * `/realtime/v1/websocket` to, next to the functions.
 */
export async function createLocalRealtime(
  opts: LocalRealtimeOptions,
): Promise<LocalRealtimeHandler> {
  const sql = postgres(opts.databaseUrl, {
    max: 3,
    onnotice: () => {},
    connect_timeout: 5,
    connection: { application_name: 'qh-local-realtime' },
  });
  const key = new TextEncoder().encode(opts.jwtSecret);
  const publicKeys = opts.jwks?.keys.length ? createLocalJWKSet(opts.jwks) : undefined;
  const clients = new Set<Client>();
  const counts = { joined: 0, refused: 0, relayed: 0, originRefused: 0, keyRefused: 0 };
  const allowedOrigins = new Set(opts.allowedOrigins ?? []);

  const send = (c: Client, frame: Frame) => {
    if (c.socket.readyState === WebSocket.OPEN) c.socket.send(JSON.stringify(frame));
  };
  const reply = (c: Client, f: Frame, status: 'ok' | 'error', response: Record<string, unknown>) =>
    send(c, [f[0], f[1], f[2], 'phx_reply', { status, response }]);

  const opaqueKeys = new Map(
    (opts.apiKeys ?? []).filter((k) => isOpaqueKey(k.kind)).map((k) => [k.value, k.kind]),
  );

  /**
   * The claims of a token signed with the project's secret or one of its keys, or of one of its
   * publishable / secret keys (the role the gateway maps it to); throws if none of these.
   */
  async function verifiedClaims(token: string): Promise<JWTPayload> {
    const opaque = opaqueKeys.get(token);
    if (opaque) return { role: roleOfKey(opaque) };
    const { alg } = decodeProtectedHeader(token);
    if (alg === 'HS256') return (await jwtVerify(token, key, { algorithms: ['HS256'] })).payload;
    if (!publicKeys) throw new Error(`no key for a token signed with ${String(alg)}`);
    return (await jwtVerify(token, publicKeys, { algorithms: ['ES256', 'RS256', 'EdDSA'] }))
      .payload;
  }

  /** null when the token is signed with the project's secret or keys, else why not. */
  async function verifies(token: string): Promise<string | null> {
    try {
      await verifiedClaims(token);
      return null;
    } catch (e) {
      return `Unauthorized: ${(e as Error).message}`;
    }
  }

  /** Whether the token's holder may receive broadcasts on `topic` (RLS decides). */
  async function authorise(token: string | null, topic: string): Promise<string | null> {
    if (!token) return 'Unauthorized: no access token';
    let claims: Record<string, unknown>;
    try {
      claims = await verifiedClaims(token);
    } catch (e) {
      return `Unauthorized: ${(e as Error).message}`;
    }
    const role = claims.role;
    if (role === 'service_role') return null;
    if (role !== 'authenticated' && role !== 'anon') return `Unauthorized: role ${String(role)}`;
    let allowed = false;
    try {
      await sql.begin(async (tx) => {
        const [{ id }] = await tx`
          insert into realtime.messages (topic, extension, payload, event, private)
          values (${topic}, 'broadcast', '{}'::jsonb, 'join_check', true) returning id`;
        // role is one of two fixed names (checked above).
        await tx.unsafe(`set local role ${role}`);
        await tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true),
                        set_config('request.jwt.claim.sub', ${String(claims.sub ?? '')}, true),
                        set_config('request.jwt.claim.role', ${role}, true),
                        set_config('realtime.topic', ${topic}, true)`;
        const rows = await tx`select 1 from realtime.messages where id = ${id}`;
        allowed = rows.length > 0;
        throw new Rollback();
      });
    } catch (e) {
      if (!(e instanceof Rollback)) return `Unauthorized: ${(e as Error).message}`;
    }
    return allowed
      ? null
      : 'Unauthorized: You do not have permissions to read from this Channel topic';
  }

  async function onFrame(c: Client, f: Frame) {
    const [, , topicFull, event, payload] = f;
    if (topicFull === 'phoenix' && event === 'heartbeat') return reply(c, f, 'ok', {});
    const topic = topicFull.replace(/^realtime:/, '');
    switch (event) {
      case 'phx_join': {
        const token = (payload.access_token as string | undefined) ?? c.token;
        if (token) c.token = token;
        const config = (payload.config ?? {}) as { private?: unknown };
        const isPrivate = config.private === true;
        const refusal = isPrivate ? await authorise(token, topic) : null;
        if (refusal) {
          counts.refused++;
          c.joined.delete(topic);
          return reply(c, f, 'error', { reason: refusal });
        }
        counts.joined++;
        c.joined.set(topic, { ref: f[0], private: isPrivate });
        return reply(c, f, 'ok', { postgres_changes: [] });
      }
      case 'access_token': {
        const token = payload.access_token as string | undefined;
        if (token) {
          // A private join is authorised again for the new token, as Realtime re-checks its
          // policies when the token changes; a public join only needs a valid token.
          const join = c.joined.get(topic);
          const refusal = join?.private ? await authorise(token, topic) : await verifies(token);
          if (refusal) {
            c.joined.delete(topic);
            send(c, [f[0], null, topicFull, 'phx_close', {}]);
            return;
          }
          c.token = token;
        }
        return reply(c, f, 'ok', {});
      }
      case 'phx_leave':
        c.joined.delete(topic);
        reply(c, f, 'ok', {});
        return send(c, [f[0], null, topicFull, 'phx_close', {}]);
      default:
        return reply(c, f, 'ok', {});
    }
  }

  const handle = (req: Request): Response => {
    const url = new URL(req.url);
    if (url.pathname !== '/realtime/v1/websocket') {
      return new Response('not found', { status: 404 });
    }
    if (req.headers.get('upgrade')?.toLowerCase() !== 'websocket') {
      return new Response('expected a WebSocket upgrade', { status: 426 });
    }
    // Browsers always send Origin on a WebSocket upgrade; any page the developer has open could
    // otherwise connect to 127.0.0.1 (WebSockets are not subject to CORS).
    const origin = req.headers.get('origin');
    if (origin !== null && !allowedOrigins.has(origin)) {
      counts.originRefused++;
      return new Response(`origin not allowed: ${origin}`, { status: 403 });
    }
    let apikey: string | null = null;
    if (opts.apiKeys) {
      apikey = url.searchParams.get('apikey') ?? req.headers.get('apikey');
      const { refusal } = checkApiKey(req, apikey, opts.apiKeys);
      if (refusal) {
        counts.keyRefused++;
        return Response.json(refusal, { status: 401 });
      }
    }
    const { socket, response } = Deno.upgradeWebSocket(req);
    const client: Client = { socket, token: apikey, joined: new Map() };
    socket.onopen = () => clients.add(client);
    socket.onclose = () => clients.delete(client);
    socket.onerror = () => clients.delete(client);
    socket.onmessage = (ev) => {
      let frame: Frame;
      try {
        frame = JSON.parse(String(ev.data));
        if (!Array.isArray(frame) || frame.length !== 5) throw new Error('not a vsn 2.0.0 frame');
      } catch {
        return;
      }
      onFrame(client, frame).catch(() => reply(client, frame, 'error', { reason: 'internal' }));
    };
    return response;
  };

  const listener = await sql.listen('realtime:broadcast', async (raw) => {
    let note: { id: string };
    try {
      note = JSON.parse(raw);
      if (typeof note?.id !== 'string') return;
    } catch {
      return;
    }
    // Anyone may pg_notify this channel: topic, privacy and payload come from the row.
    const [row] = await sql`
      select topic, event, private, payload from realtime.messages
      where id = ${note.id}::uuid and extension = 'broadcast'`.catch(() => []);
    if (!row) return;
    const isPrivate = row.private === true;
    for (const c of clients) {
      const join = c.joined.get(row.topic);
      // A private message reaches only authorised private joins; a public one only public joins.
      if (!join || join.private !== isPrivate) continue;
      send(c, [join.ref, null, `realtime:${row.topic}`, 'broadcast', {
        type: 'broadcast',
        event: row.event,
        payload: row.payload,
      }]);
      counts.relayed++;
    }
  });

  return {
    handle,
    stats: () => ({ sockets: clients.size, ...counts }),
    async close() {
      for (const c of clients) {
        try {
          c.socket.close(1000, 'server closing');
        } catch {
          // already closed
        }
      }
      await listener.unlisten().catch(() => {});
      await sql.end({ timeout: 2 });
    },
  };
}
