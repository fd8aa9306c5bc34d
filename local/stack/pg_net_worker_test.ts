/**
 * The pg_net stand-in (local/stack/sql/pg_net.sql + pg_net_worker.ts) against real PostgreSQL and
 * a real HTTP server on 127.0.0.1: each test has a database of its own with the stand-in
 * installed (by the superuser, as the platform installs pg_net) and its own worker.
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql } from '../test/db.ts';
import { createPrivateDatabase, installPgNet, type PrivateDatabase } from '../test/private_db.ts';
import { rolledBack } from '../test/rollback.ts';
import { sleep, waitFor } from '../test/wait.ts';
import { startPgNetWorker } from './pg_net_worker.ts';

interface Hit {
  path: string;
  at: number;
  method: string;
  headers: Record<string, string>;
  body: string;
}

/** A local HTTP server recording what it gets; `delayMs(path)` delays the answer. */
function startTarget(delayMs: (path: string) => number = () => 0) {
  const hits: Hit[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const headers: Record<string, string> = {};
      req.headers.forEach((v, k) => (headers[k] = v));
      hits.push({ path, at: Date.now(), method: req.method, headers, body: await req.text() });
      const d = delayMs(path);
      if (d > 0) await sleep(d);
      return Response.json({ ok: true, path }, { headers: { 'x-target': 'yes' } });
    } finally {
      inFlight--;
    }
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    hits,
    maxInFlight: () => maxInFlight,
    stop: () => server.shutdown(),
  };
}

async function withNet(
  fn: (db: PrivateDatabase, sql: Sql) => Promise<void>,
): Promise<void> {
  const db = await createPrivateDatabase('qh_pgnet');
  const sql = connect({ url: db.url, max: 3 });
  try {
    await installPgNet(db);
    await fn(db, sql);
  } finally {
    await sql.end({ timeout: 2 });
    await db.drop();
  }
}

Deno.test('pg_net stand-in sends a request only once its transaction commits, never a rolled-back one', async () => {
  const target = startTarget();
  await withNet(async (db, sql) => {
    const worker = await startPgNetWorker(db.url);
    try {
      await rolledBack(sql, async (tx) => {
        await tx`select net.http_post(${target.url + '/rolled-back'}, '{"n": 1}'::jsonb)`;
      });
      const open = await sql.reserve();
      let id: string;
      try {
        await open`begin`;
        [{ id }] = await open<{ id: string }[]>`
          select net.http_post(${target.url + '/open'}, '{"n": 2}'::jsonb)::text as id`;
        await sleep(1_500);
        assert.deepEqual(target.hits.map((h) => h.path), [], 'nothing is sent before commit');
        await open`commit`;
      } finally {
        open.release();
      }
      const committedAt = Date.now();
      const hit = await waitFor(
        'the committed request',
        3_000,
        () => Promise.resolve(target.hits.find((h) => h.path === '/open') ?? null),
      );
      assert.ok(
        hit.at - committedAt < 1_000,
        `the worker is woken by the commit: sent ${hit.at - committedAt} ms after it`,
      );
      assert.equal(hit.method, 'POST');
      assert.equal(hit.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(hit.body), { n: 2 });
      const [res] = await waitFor('the response row', 3_000, async () => {
        const rows = await sql`select * from net._http_response where id = ${id}::bigint`;
        return rows.length ? rows : null;
      });
      assert.equal(res.status_code, 200);
      assert.equal(res.timed_out, false);
      assert.equal(res.error_msg, null);
      assert.match(res.content_type, /^application\/json/);
      assert.deepEqual(JSON.parse(res.content), { ok: true, path: '/open' });
      assert.equal(res.headers['x-target'], 'yes');
      const [{ queued }] = await sql`select count(*)::int as queued from net.http_request_queue`;
      assert.equal(queued, 0, 'the queue row is deleted once sent');
      await sleep(500);
      assert.deepEqual(target.hits.map((h) => h.path), ['/open'], 'the rolled-back one never');
    } finally {
      await worker.stop();
    }
  });
  await target.stop();
});

Deno.test('pg_net stand-in times a slow receiver out at the 5 s default, as pg_net reports it', async () => {
  const target = startTarget(() => 6_000);
  await withNet(async (db, sql) => {
    const worker = await startPgNetWorker(db.url);
    try {
      const [{ id }] = await sql<{ id: string }[]>`
        select net.http_post(${target.url + '/slow'})::text as id`;
      const t0 = Date.now();
      const [res] = await waitFor('the timed-out response', 9_000, async () => {
        const rows = await sql`select * from net._http_response where id = ${id}::bigint`;
        return rows.length ? rows : null;
      });
      const took = Date.now() - t0;
      assert.equal(res.timed_out, true);
      assert.equal(res.status_code, null);
      assert.match(res.error_msg, /^Timeout of 5000 ms reached\. Total time: \d+\.\d+ ms/);
      assert.ok(took >= 4_900 && took < 6_000, `answered after ${took} ms`);
    } finally {
      await worker.stop();
    }
  });
  await target.stop();
});

Deno.test('pg_net stand-in takes at most batch_size requests a round and deletes responses past the ttl', async () => {
  const target = startTarget(() => 300);
  await withNet(async (db, sql) => {
    await sql`insert into net._http_response (id, status_code, created) values
      (-1, 200, now() - interval '7 hours'), (-2, 200, now() - interval '5 hours')`;
    await sql`
      select net.http_get(${target.url + '/b'}, jsonb_build_object('i', i))
        from generate_series(1, 5) i`;
    const closed = Deno.listen({ hostname: '127.0.0.1', port: 0 });
    const closedPort = (closed.addr as Deno.NetAddr).port;
    closed.close(); // nothing listens there now
    await sql`select net.http_get(${`http://127.0.0.1:${closedPort}/refused`})`;
    const rounds: number[] = [];
    const worker = await startPgNetWorker(db.url, {
      batchSize: 2,
      onRound: (r) => rounds.push(r.sent),
    });
    try {
      const rows = await waitFor('six responses', 10_000, async () => {
        const rows = await sql`select * from net._http_response where id > 0 order by id`;
        return rows.length === 6 ? rows : null;
      });
      assert.deepEqual(rounds, [2, 2, 2], 'three rounds of at most two');
      assert.equal(target.maxInFlight(), 2, 'a round sends its requests at once');
      assert.deepEqual(
        target.hits.map((h) => new URL(h.path, target.url).pathname),
        ['/b', '/b', '/b', '/b', '/b'],
      );
      const refused = rows.find((r) => r.status_code === null)!;
      assert.equal(refused.error_msg, "Couldn't connect to server");
      assert.equal(refused.timed_out, false);
      const old = await sql`select id from net._http_response where id < 0 order by id`;
      assert.deepEqual(old.map((r) => r.id), ['-2'], 'the 7-hour-old response is deleted');
    } finally {
      await worker.stop();
    }
  });
  await target.stop();
});

Deno.test('net.http_post keeps pg_net interface: defaults, Content-Type check, params, grants', async () => {
  await withNet(async (_db, sql) => {
    await rolledBack(sql, async (tx) => {
      const [{ id }] = await tx`select net.http_post('http://x.test/p', '[1, 2]'::jsonb,
        '{"a b": "c&d"}'::jsonb, '{"X-Key": "k"}'::jsonb) as id`;
      const [q] = await tx`
        select method, url, headers, convert_from(body, 'UTF8') as body, timeout_milliseconds
          from net.http_request_queue where id = ${id}`;
      assert.deepEqual(q, {
        method: 'POST',
        url: 'http://x.test/p?a%20b=c%26d',
        headers: { 'X-Key': 'k', 'Content-Type': 'application/json' },
        body: '[1, 2]',
        timeout_milliseconds: 5000,
      });
    });
    await assert.rejects(
      sql`select net.http_post('http://x.test/', '{}'::jsonb, '{}'::jsonb,
        '{"content-type": "text/plain"}'::jsonb)`,
      /Content-Type header must be "application\/json"/,
    );
    const fns = await sql`
      select p.proname, p.prosecdef, p.proconfig,
             has_function_privilege('anon', p.oid, 'execute') as anon,
             has_function_privilege('service_role', p.oid, 'execute') as service_role,
             pg_get_function_arguments(p.oid) as args
        from pg_proc p where p.pronamespace = 'net'::regnamespace
         and p.proname in ('http_get', 'http_post') order by p.proname`;
    assert.deepEqual(
      fns.map((f) => [f.proname, f.prosecdef, f.proconfig, f.anon, f.service_role]),
      [
        ['http_get', true, ['search_path=net'], true, true],
        ['http_post', true, ['search_path=net'], true, true],
      ],
    );
    assert.equal(
      fns[1].args,
      "url text, body jsonb DEFAULT '{}'::jsonb, params jsonb DEFAULT '{}'::jsonb, " +
        `headers jsonb DEFAULT '{"Content-Type": "application/json"}'::jsonb, ` +
        'timeout_milliseconds integer DEFAULT 5000',
    );
  });
});
