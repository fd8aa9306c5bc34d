/**
 * The local Realtime stand-in against the stack's database: a project member joins the private
 * channel queue_health:<project> and receives what realtime.send() broadcasts; a non-member and
 * a forged token are refused, as Realtime Authorization would refuse them; a public join of the
 * same topic receives nothing private, and a page of another origin cannot connect at all.
 */
import assert from 'node:assert/strict';
import { JWT_SECRET } from '../stack/config.ts';
import { mintJwt, userAccessToken } from '../stack/keys.ts';
import { connect, databaseUrl } from '../test/db.ts';
import { startLocalRealtime } from './realtime_local.ts';

type Frame = [string | null, string | null, string, string, Record<string, unknown>];

/** A minimal Phoenix vsn 2.0.0 client: join, then collect frames. */
async function openClient(base: string, origin?: string) {
  const url = `${base.replace(/^http/, 'ws')}/realtime/v1/websocket?vsn=2.0.0`;
  // Deno's WebSocket takes extra handshake headers: a browser sends its page's Origin.
  const ws = origin
    ? new WebSocket(url, { headers: { origin } } as unknown as string[])
    : new WebSocket(url);
  const frames: Frame[] = [];
  const waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void }[] = [];
  ws.onmessage = (ev) => {
    const f = JSON.parse(String(ev.data)) as Frame;
    frames.push(f);
    for (const w of [...waiters]) {
      if (w.test(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(f);
      }
    }
  };
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  const next = (test: (f: Frame) => boolean, ms = 5000) => {
    const seen = frames.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no such frame within 5 s')), ms);
      waiters.push({
        test,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
      });
    });
  };
  let ref = 0;
  return {
    async join(
      topic: string,
      token: string,
      opts: { private?: boolean } = {},
    ): Promise<Record<string, unknown>> {
      const r = String(++ref);
      ws.send(JSON.stringify([r, r, `realtime:${topic}`, 'phx_join', {
        config: { broadcast: { ack: false, self: false }, private: opts.private ?? true },
        access_token: token,
      }]));
      const reply = await next((f) => f[1] === r && f[3] === 'phx_reply');
      return reply[4];
    },
    next,
    /** Every broadcast frame received so far. */
    broadcasts: () => frames.filter((f) => f[3] === 'broadcast'),
    close: () =>
      new Promise<void>((resolve) => {
        ws.onclose = () => resolve();
        ws.close();
      }),
  };
}

Deno.test({
  name:
    'local Realtime: members join queue_health:<project> and get broadcasts; others are refused',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const url = databaseUrl();
    const sql = connect({ url, max: 1 });
    const member = crypto.randomUUID();
    const stranger = crypto.randomUUID();
    const project = `rt_${Date.now().toString(36)}`;
    const realtime = await startLocalRealtime({ databaseUrl: url, jwtSecret: JWT_SECRET });
    const clients: { close(): Promise<void> }[] = [];
    try {
      await sql`insert into auth.users (id, email) values (${member}, ${`${member}@t.local`}),
                                                        (${stranger}, ${`${stranger}@t.local`})`;
      await sql`insert into queue_health.project (id, name) values (${project}, 'realtime test')`;
      await sql`insert into queue_health.project_member (project_id, user_id, role)
                values (${project}, ${member}, 'viewer')`;
      const topic = `queue_health:${project}`;

      const a = await openClient(realtime.url);
      clients.push(a);
      const ok = await a.join(topic, await userAccessToken(member, `${member}@t.local`));
      assert.equal(ok.status, 'ok', `member join: ${JSON.stringify(ok)}`);

      const b = await openClient(realtime.url);
      clients.push(b);
      const refused = await b.join(topic, await userAccessToken(stranger, `${stranger}@t.local`));
      assert.equal(refused.status, 'error', 'a non-member may not join');

      const forged = await mintJwt({ sub: member, role: 'authenticated' }, {
        secret: 'another-secret-that-is-at-least-32-characters',
      });
      const c = await openClient(realtime.url);
      clients.push(c);
      const bad = await c.join(topic, forged);
      assert.equal(bad.status, 'error', 'a token signed with another secret is refused');
      assert.match(String((bad.response as { reason: string }).reason), /Unauthorized/);

      await sql`select realtime.send(${sql.json({ hello: 1 })}, 'snapshot', ${topic}, true)`;
      const msg = await a.next((f) => f[3] === 'broadcast');
      assert.equal(msg[2], `realtime:${topic}`);
      // As hosted Realtime's send(), the payload gains the message's id.
      const { payload, ...frame } = msg[4] as { payload: Record<string, unknown> };
      assert.deepEqual(frame, { type: 'broadcast', event: 'snapshot' });
      assert.equal(payload.hello, 1);
      assert.match(String(payload.id), /^[0-9a-f-]{36}$/);
      assert.equal(realtime.stats().relayed, 1, 'only the member received it');
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await realtime.close();
      await sql`delete from queue_health.project where id = ${project}`.catch(() => {});
      await sql`delete from auth.users where id in (${member}, ${stranger})`.catch(() => {});
      await sql.end({ timeout: 2 });
    }
  },
});

Deno.test({
  name:
    'local Realtime: a public join of queue_health:<project> gets none of its private broadcasts',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const url = databaseUrl();
    const sql = connect({ url, max: 1 });
    const member = crypto.randomUUID();
    const project = `rt_pub_${Date.now().toString(36)}`;
    const topic = `queue_health:${project}`;
    const realtime = await startLocalRealtime({ databaseUrl: url, jwtSecret: JWT_SECRET });
    const clients: { close(): Promise<void> }[] = [];
    try {
      await sql`insert into auth.users (id, email) values (${member}, ${`${member}@t.local`})`;
      await sql`insert into queue_health.project (id, name) values (${project}, 'realtime test')`;
      await sql`insert into queue_health.project_member (project_id, user_id, role)
                values (${project}, ${member}, 'viewer')`;

      // Anyone holding the anon key (it is in every page) joins the topic as a public channel.
      const anonKey = await mintJwt({ role: 'anon' });
      const eve = await openClient(realtime.url);
      clients.push(eve);
      const pub = await eve.join(topic, anonKey, { private: false });
      assert.equal(pub.status, 'ok', 'a public join itself is allowed, as on Supabase');
      // So does a signed-in member who forgets config.private: still no private messages.
      const lax = await openClient(realtime.url);
      clients.push(lax);
      const laxJoin = await lax.join(
        topic,
        await userAccessToken(member, `${member}@t.local`),
        { private: false },
      );
      assert.equal(laxJoin.status, 'ok');
      // The member's private join still works.
      const a = await openClient(realtime.url);
      clients.push(a);
      const ok = await a.join(topic, await userAccessToken(member, `${member}@t.local`));
      assert.equal(ok.status, 'ok', `member join: ${JSON.stringify(ok)}`);

      await sql`select realtime.send(${sql.json({ depth: 7 })}, 'snapshot', ${topic}, true)`;
      const got = await a.next((f) => f[3] === 'broadcast');
      assert.equal((got[4].payload as { depth: number }).depth, 7);
      // A public message on the same topic goes to the public joins only: it proves they were
      // listening, so their silence about the private one is not a timing accident.
      await sql`select realtime.send(${sql.json({ hello: 'public' })}, 'note', ${topic}, false)`;
      await eve.next((f) => f[3] === 'broadcast');
      await lax.next((f) => f[3] === 'broadcast');

      for (const [who, c] of [['anon public join', eve], ['member public join', lax]] as const) {
        const seen = c.broadcasts().map((f) => f[4].payload);
        assert.deepEqual(
          seen.map((p) => (p as { hello?: string }).hello),
          ['public'],
          `${who} must receive only the public message: got ${JSON.stringify(seen)}`,
        );
      }
      assert.equal(a.broadcasts().length, 1, 'the private join gets only the private message');

      // A notification forged by anyone who may NOTIFY relays nothing the row does not say.
      await sql`select pg_notify('realtime:broadcast', ${
        JSON.stringify({ id: crypto.randomUUID(), topic, event: 'snapshot', private: false })
      })`;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(eve.broadcasts().length, 1, 'a forged notification relays nothing');
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await realtime.close();
      await sql`delete from queue_health.project where id = ${project}`.catch(() => {});
      await sql`delete from auth.users where id = ${member}`.catch(() => {});
      await sql.end({ timeout: 2 });
    }
  },
});

Deno.test({
  name: 'local Realtime: a WebSocket from a page of another origin is refused with 403',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const realtime = await startLocalRealtime({
      databaseUrl: databaseUrl(),
      jwtSecret: JWT_SECRET,
      allowedOrigins: ['http://127.0.0.1:54321'],
    });
    const clients: { close(): Promise<void> }[] = [];
    try {
      for (const origin of ['https://evil.example', 'http://127.0.0.1:1', 'null']) {
        await assert.rejects(
          openClient(realtime.url, origin),
          `a page of ${origin} must not connect`,
        );
      }
      assert.equal(realtime.stats().originRefused, 3);
      // The server's own origin (both spellings), a listed one, and a non-browser client connect.
      const port = new URL(realtime.url).port;
      for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
        clients.push(await openClient(realtime.url, origin));
      }
      clients.push(await openClient(realtime.url, 'http://127.0.0.1:54321'));
      clients.push(await openClient(realtime.url));
      assert.equal(realtime.stats().originRefused, 3);

      // The refusal is a plain HTTP 403 before any upgrade.
      const res = await fetch(`${realtime.url}/realtime/v1/websocket`, {
        headers: {
          origin: 'https://evil.example',
          upgrade: 'websocket',
          connection: 'Upgrade',
          'sec-websocket-key': btoa('0123456789abcdef'),
          'sec-websocket-version': '13',
        },
      });
      await res.body?.cancel();
      assert.equal(res.status, 403);
    } finally {
      for (const c of clients) await c.close().catch(() => {});
      await realtime.close();
    }
  },
});
