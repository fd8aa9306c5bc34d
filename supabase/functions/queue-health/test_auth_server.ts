/**
 * A stand-in for Supabase Auth's `GET /auth/v1/user` on 127.0.0.1, for tests: it is the platform,
 * not our code. Like Auth it verifies the bearer token with the project's HS256 secret (which the
 * function under test does not have) and answers 200 with the user, or 401 with an error body.
 */
import { jwtVerify } from 'jose';

/** One request the stand-in received. */
export interface AuthCall {
  authorization: string | null;
  apikey: string | null;
}

/** The running stand-in. */
export interface AuthServer {
  /** Base URL, as `SUPABASE_URL`. */
  url: string;
  /** Requests to `/auth/v1/user`, in order. */
  calls: AuthCall[];
  /** Answer this status to every request from now on (e.g. 500); null: verify normally. */
  forceStatus: number | null;
  /** Answer 200 with this user id instead of the token's `sub`. */
  userIdOverride: string | null;
  /** Stops the server. */
  stop(): Promise<void>;
}

/** Starts the stand-in; `secret` is the project's HS256 secret. */
export function startAuthServer(secret: string): AuthServer {
  const key = new TextEncoder().encode(secret);
  const state: AuthServer = {
    url: '',
    calls: [],
    forceStatus: null,
    userIdOverride: null,
    stop: async () => {},
  };
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== '/auth/v1/user' || req.method !== 'GET') {
      return new Response('not found', { status: 404 });
    }
    const authorization = req.headers.get('authorization');
    state.calls.push({ authorization, apikey: req.headers.get('apikey') });
    if (state.forceStatus !== null) {
      return Response.json({ code: state.forceStatus, msg: 'forced' }, {
        status: state.forceStatus,
      });
    }
    const token = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1] ?? '';
    try {
      const { payload } = await jwtVerify(token, key, { algorithms: ['HS256'] });
      return Response.json({
        id: state.userIdOverride ?? payload.sub,
        aud: 'authenticated',
        role: 'authenticated',
        email: 'user@example.test',
      });
    } catch {
      return Response.json(
        { code: 401, error_code: 'bad_jwt', msg: 'invalid JWT' },
        { status: 401 },
      );
    }
  });
  state.url = `http://127.0.0.1:${server.addr.port}`;
  state.stop = () => server.shutdown();
  return state;
}
