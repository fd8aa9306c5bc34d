/**
 * The running local stack offers the new API keys as a hosted project does, beside the legacy
 * ones: the publishable key `sb_publishable_…` and the secret key `sb_secret_…`.
 *
 * - supabase-js created with the publishable key signs the demo user in at the Auth stand-in,
 *   reads queue-health (`functions.invoke`) and joins the private Realtime channel;
 * - queue-health answers the secret key as the service role and the publishable key as anon,
 *   through the stack's own server and the environment it gives the functions;
 * - queue-alert runs for the secret key;
 * - a made-up `sb_secret_…` gets 401 at queue-health, queue-alert, Auth and Realtime, and the
 *   real secret key gets 401 at Auth and Realtime when a browser sends it;
 * - `npm run stack -- status` prints both new keys and the legacy ones, labelled legacy.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { API_PORT, API_URL, QUEUE_ALERT_URL, ROOT } from '../stack/config.ts';
import { functionEnv } from '../stack/env.ts';
import { localKeys } from '../stack/keys.ts';
import { DEMO_USER_EMAIL, DEMO_USER_PASSWORD, seedDemo } from '../stack/demo.ts';
import { connect } from './db.ts';
import { joinPrivate, stackClient } from './stack_client.ts';

const OTHER = 'qh_keys_other';
const OTHER_QUEUE = 'qh_keys_other_queue';
const HEALTH_URL = `${API_URL}/functions/v1/queue-health`;
const BROWSER_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36';

/** GET queue-health for one project with the given headers. */
async function health(project: string, headers: Record<string, string>) {
  const res = await fetch(`${HEALTH_URL}?project=${project}`, { headers });
  const text = await res.text();
  return { status: res.status, text };
}

/**
 * The status line the stack answers a WebSocket upgrade of the Realtime endpoint with, sent by
 * hand so the `User-Agent` can be a browser's.
 */
async function upgradeStatus(apikey: string, userAgent = 'qh-test'): Promise<string> {
  const conn = await Deno.connect({ hostname: '127.0.0.1', port: API_PORT });
  try {
    const request = [
      `GET /realtime/v1/websocket?apikey=${encodeURIComponent(apikey)}&vsn=2.0.0 HTTP/1.1`,
      `Host: 127.0.0.1:${API_PORT}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${btoa('qh-api-keys-test')}`,
      `User-Agent: ${userAgent}`,
      '',
      '',
    ].join('\r\n');
    await conn.write(new TextEncoder().encode(request));
    const buf = new Uint8Array(1024);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split('\r\n')[0];
  } finally {
    conn.close();
  }
}

Deno.test({
  name:
    'the stack offers the publishable and secret keys as hosted does: supabase-js, functions, Auth, Realtime',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const keys = await localKeys();
    const sql = connect({ max: 1, applicationName: 'qh-api-keys-test' });
    const madeUp = `sb_secret_${'Q'.repeat(22)}_${'z'.repeat(8)}`;
    try {
      // The keys and the functions' environment, in hosted's format.
      assert.match(keys.publishable, /^sb_publishable_[A-Za-z0-9_-]{20,}$/);
      assert.match(keys.secret, /^sb_secret_[A-Za-z0-9_-]{20,}$/);
      assert.equal((await localKeys()).secret, keys.secret, 'the same on every call');
      const env = await functionEnv();
      assert.deepEqual(JSON.parse(env.SUPABASE_PUBLISHABLE_KEYS), { default: keys.publishable });
      assert.deepEqual(JSON.parse(env.SUPABASE_SECRET_KEYS), { default: keys.secret });
      const config = await (await fetch(`${API_URL}/_stack/config.json`)).json();
      assert.equal(config.anonKey, keys.publishable, 'the dashboard gets the publishable key');

      await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], { channels: false });
      await sql`insert into queue_health.project (id, name) values (${OTHER}, 'Not the demo user''s')
                on conflict do nothing`;
      await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id)
                values ('pgmq', 'pgmq', ${OTHER_QUEUE}, ${OTHER}) on conflict do nothing`;

      // A browser app: createClient(url, publishable key), sign in, read, go live.
      const sb = stackClient(keys.publishable);
      assert.equal(await joinPrivate(sb, 'default', 8_000), 'CHANNEL_ERROR', 'anon may not join');
      const { data, error } = await sb.auth.signInWithPassword({
        email: DEMO_USER_EMAIL,
        password: DEMO_USER_PASSWORD,
      });
      assert.equal(error, null, error?.message);
      assert.ok(data.session?.access_token);
      // 200 healthy or 503 unhealthy (supabase-js's FunctionsHttpError): the report either way.
      const read = await sb.functions.invoke('queue-health?project=default', { method: 'GET' });
      const response = (read.error?.context ?? read.response) as Response;
      assert.ok([200, 503].includes(response.status), `queue-health: ${response.status}`);
      const report = read.error ? await response.json() : read.data;
      assert.deepEqual(report.projects.map((p: { id: string }) => p.id), ['default']);
      assert.equal(await joinPrivate(sb, 'default', 8_000), 'SUBSCRIBED');
      assert.equal(
        await joinPrivate(sb, OTHER, 8_000),
        'CHANNEL_ERROR',
        'not a member of that one',
      );
      await sb.auth.signOut();

      // queue-health: the secret key is the service role (every project), the publishable key
      // anon (nothing), as apikey alone or also as the bearer.
      const asSecret: Record<string, string>[] = [
        { apikey: keys.secret },
        { apikey: keys.secret, authorization: `Bearer ${keys.secret}` },
      ];
      for (const headers of asSecret) {
        const r = await health(OTHER, headers);
        assert.ok([200, 503].includes(r.status), `secret key: ${r.status} ${r.text}`);
        assert.ok(r.text.includes(OTHER_QUEUE), 'the service role sees every project');
      }
      const anon = await health(OTHER, { apikey: keys.publishable });
      assert.ok([200, 503].includes(anon.status), `publishable key: ${anon.status}`);
      assert.equal(anon.text.includes(OTHER_QUEUE), false);
      assert.match(anon.text, /"projects":\[\]/);

      // queue-alert: the secret key runs it.
      const alert = await fetch(QUEUE_ALERT_URL, {
        method: 'POST',
        headers: { authorization: `Bearer ${keys.secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ evaluate: false, limit: 1 }),
      });
      const alertBody = await alert.text();
      assert.equal(alert.status, 200, alertBody);

      // A service with the secret key joins any private channel (service_role).
      const server = stackClient(keys.secret);
      assert.equal(await joinPrivate(server, OTHER, 8_000), 'SUBSCRIBED');
      await server.removeAllChannels();

      // A made-up secret key: 401 everywhere.
      assert.equal((await health('default', { apikey: madeUp })).status, 401, 'queue-health');
      assert.equal(
        (await health('default', { apikey: madeUp, authorization: `Bearer ${madeUp}` })).status,
        401,
        'queue-health, as the bearer',
      );
      const refusedAlert = await fetch(QUEUE_ALERT_URL, {
        method: 'POST',
        headers: { authorization: `Bearer ${madeUp}`, 'content-type': 'application/json' },
        body: '{}',
      });
      await refusedAlert.body?.cancel();
      assert.equal(refusedAlert.status, 401, 'queue-alert');
      const auth = await fetch(`${API_URL}/auth/v1/health`, { headers: { apikey: madeUp } });
      assert.equal(auth.status, 401, 'Auth');
      assert.equal((await auth.json()).message, 'Invalid API key');
      assert.match(await upgradeStatus(madeUp), /^HTTP\/1\.1 401/, 'Realtime');

      // The real secret key from a browser: refused by the gateway (Auth, Realtime).
      const fromBrowser = await fetch(`${API_URL}/auth/v1/health`, {
        headers: { apikey: keys.secret, 'user-agent': BROWSER_UA },
      });
      assert.equal(fromBrowser.status, 401);
      assert.equal(
        (await fromBrowser.json()).message,
        'Forbidden use of secret API key in browser',
      );
      assert.match(await upgradeStatus(keys.secret, BROWSER_UA), /^HTTP\/1\.1 401/);
      assert.match(await upgradeStatus(keys.publishable, BROWSER_UA), /^HTTP\/1\.1 101/);
      assert.match(await upgradeStatus(keys.secret), /^HTTP\/1\.1 101/);

      // `npm run stack -- status` prints the four keys, the legacy ones labelled so.
      const status = await new Deno.Command(Deno.execPath(), {
        args: ['run', '-A', '--quiet', join(ROOT, 'local', 'stack', 'main.ts'), 'status'],
        cwd: ROOT,
        env: { NO_COLOR: '1' },
        stdout: 'piped',
        stderr: 'piped',
      }).output();
      const out = new TextDecoder().decode(status.stdout);
      assert.equal(status.code, 0, out + new TextDecoder().decode(status.stderr));
      assert.match(out, new RegExp(`^Publishable key +${keys.publishable}$`, 'm'));
      assert.match(out, new RegExp(`^Secret key +${keys.secret}$`, 'm'));
      assert.match(out, new RegExp(`^anon key \\(legacy\\) +${keys.anon}$`, 'm'));
      assert.match(out, new RegExp(`^service_role \\(legacy\\) +${keys.serviceRole}$`, 'm'));
    } finally {
      await sql`delete from queue_health.queue where project_id = ${OTHER}`;
      await sql`delete from queue_health.project where id = ${OTHER}`;
      await sql.end({ timeout: 2 });
    }
  },
});
