/**
 * A local stand-in for Supabase Realtime's Broadcast-from-database, just enough for the
 * dashboard's live mode without Docker: a Phoenix-protocol WebSocket (serializer vsn 2.0.0, text
 * frames) at `/realtime/v1/websocket` that supabase-js joins like the real one.
 *
 * - `phx_join` of a private channel is authorised the way Realtime does it: the access token is
 *   verified with the project's JWT secret, then, in a transaction that is rolled back, a
 *   broadcast row for the topic is inserted and selected as the caller's role with
 *   `request.jwt.claims` and `realtime.topic` set, so the SELECT policies on
 *   `realtime.messages` decide. Public channels are joined without a check.
 * - Messages come from the local `realtime.send()` (local/stack/sql/hosted_platform.sql), which
 *   inserts into `realtime.messages` and NOTIFYs `realtime:broadcast` with the row's id; every
 *   socket joined to that topic gets `{type: 'broadcast', event, payload}`.
 *
 * Not implemented: presence, postgres_changes, client-sent broadcasts (answered ok, dropped),
 * re-checking authorisation on token refresh beyond verifying the new token.
 * @module
 */
import { jwtVerify } from 'jose';
import postgres from 'postgres';

/** Options of {@link createLocalRealtime} and {@link startLocalRealtime}. */
export interface LocalRealtimeOptions {
  /** The database whose `realtime.send()` to relay. */
  databaseUrl: string;
  /** The HS256 secret access tokens are signed with. */
  jwtSecret: string;
  /** Port on 127.0.0.1; 0 (default) picks a free one. */
  port?: number;
}

/** The stand-in as a request handler, to mount in a server of one's own. */
export interface LocalRealtimeHandler {
  /** Answers `/realtime/v1/websocket` (the WebSocket upgrade); anything else gets 404. */
  handle(req: Request): Response;
  /** Counters: sockets open, joins accepted and refused, messages relayed. */
  stats(): { sockets: number; joined: number; refused: number; relayed: number };
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
  /** topic (without the `realtime:` prefix) → join_ref */
  joined: Map<string, string | null>;
}

class Rollback extends Error {}

/**
 * Starts the stand-in on its own port on 127.0.0.1 (`opts.port`, default a free one).
 */
export async function startLocalRealtime(opts: LocalRealtimeOptions): Promise<LocalRealtime> {
  const rt = await createLocalRealtime(opts);
  const server = Deno.serve(
    { hostname: '127.0.0.1', port: opts.port ?? 0, onListen: () => {} },
    (req) => rt.handle(req),
  );
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
  const clients = new Set<Client>();
  const counts = { joined: 0, refused: 0, relayed: 0 };

  const send = (c: Client, frame: Frame) => {
    if (c.socket.readyState === WebSocket.OPEN) c.socket.send(JSON.stringify(frame));
  };
  const reply = (c: Client, f: Frame, status: 'ok' | 'error', response: Record<string, unknown>) =>
    send(c, [f[0], f[1], f[2], 'phx_reply', { status, response }]);

  /** Whether the token's holder may receive broadcasts on `topic` (RLS decides). */
  async function authorise(token: string | null, topic: string): Promise<string | null> {
    if (!token) return 'Unauthorized: no access token';
    let claims: Record<string, unknown>;
    try {
      claims = (await jwtVerify(token, key, { algorithms: ['HS256'] })).payload;
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
        const config = (payload.config ?? {}) as { private?: boolean };
        const refusal = config.private ? await authorise(token, topic) : null;
        if (refusal) {
          counts.refused++;
          return reply(c, f, 'error', { reason: refusal });
        }
        counts.joined++;
        c.joined.set(topic, f[0]);
        return reply(c, f, 'ok', { postgres_changes: [] });
      }
      case 'access_token': {
        const token = payload.access_token as string | undefined;
        if (token) {
          try {
            await jwtVerify(token, key, { algorithms: ['HS256'] });
            c.token = token;
          } catch {
            c.joined.delete(topic);
            send(c, [f[0], null, topicFull, 'phx_close', {}]);
            return;
          }
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
    const { socket, response } = Deno.upgradeWebSocket(req);
    const client: Client = { socket, token: null, joined: new Map() };
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
    let note: { id: string; topic: string; event: string };
    try {
      note = JSON.parse(raw);
    } catch {
      return;
    }
    const targets = [...clients].filter((c) => c.joined.has(note.topic));
    if (targets.length === 0) return;
    const [row] = await sql`select payload from realtime.messages where id = ${note.id}`.catch(
      () => [],
    );
    if (!row) return;
    for (const c of targets) {
      send(c, [c.joined.get(note.topic) ?? null, null, `realtime:${note.topic}`, 'broadcast', {
        type: 'broadcast',
        event: note.event,
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
