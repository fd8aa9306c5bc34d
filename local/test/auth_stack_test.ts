/**
 * Signing in on the running local stack with supabase-js (the version pinned in deno.json), as a
 * hosted app does: the demo user's email and password at the stack's Auth stand-in, a refresh
 * that rotates, getUser, signOut; the session's access token opens queue-health (for the user's
 * project, not another one) and the private Realtime channel of that project; forged and expired
 * tokens open neither.
 *
 * Needs the stack (`npm run stack -- up`); `npm test` brings it up first.
 */
import assert from 'node:assert/strict';
import { AuthApiError, type SupabaseClient } from '@supabase/supabase-js';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { join } from 'node:path';
import { loadSigningKey } from '../auth/signing_key.ts';
import { API_URL, paths } from '../stack/config.ts';
import { localKeys } from '../stack/keys.ts';
import { DEMO_USER_EMAIL, DEMO_USER_ID, DEMO_USER_PASSWORD, seedDemo } from '../stack/demo.ts';
import { connect } from './db.ts';
import { joinPrivate, stackClient } from './stack_client.ts';

const OTHER = 'qh_auth_other';
const OTHER_QUEUE = 'qh_auth_other_queue';

async function health(project: string, token: string) {
  const res = await fetch(`${API_URL}/functions/v1/queue-health?project=${project}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return { status: res.status, text: await res.text() };
}

/** Joins the private channel queue_health:<project> with `token`; resolves to the final status. */
function join_(sb: SupabaseClient, project: string, token: string): Promise<string> {
  sb.realtime.setAuth(token);
  return joinPrivate(sb, project, 10_000);
}

Deno.test({
  name:
    'supabase-js signs the demo user in on the local stack; its token opens queue-health and Realtime',
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const sql = connect({ max: 1, applicationName: 'qh-auth-stack-test' });
    const { anon } = await localKeys();
    const sb = stackClient(anon);
    try {
      await seedDemo(sql as unknown as Parameters<typeof seedDemo>[0], { channels: false });
      await sql`insert into queue_health.project (id, name) values (${OTHER}, 'Not the demo user''s')
                on conflict do nothing`;
      await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id)
                values ('pgmq', 'pgmq', ${OTHER_QUEUE}, ${OTHER}) on conflict do nothing`;

      // A wrong password: GoTrue's error, as supabase-js surfaces it.
      const bad = await sb.auth.signInWithPassword({ email: DEMO_USER_EMAIL, password: 'wrong' });
      assert.ok(bad.error instanceof AuthApiError, `AuthApiError: got ${bad.error?.name}`);
      assert.equal(bad.error.status, 400);
      assert.equal(bad.error.code, 'invalid_credentials');
      assert.equal(bad.error.message, 'Invalid login credentials');
      assert.equal(bad.data.session, null);

      const { data, error } = await sb.auth.signInWithPassword({
        email: DEMO_USER_EMAIL,
        password: DEMO_USER_PASSWORD,
      });
      assert.equal(error, null);
      const session = data.session!;
      assert.equal(session.user.id, DEMO_USER_ID);
      assert.equal(session.user.email, DEMO_USER_EMAIL);
      const header = decodeProtectedHeader(session.access_token);
      assert.equal(header.alg, 'ES256');
      const claims = decodeJwt(session.access_token);
      assert.equal(claims.iss, `${API_URL}/auth/v1`);
      assert.equal(claims.role, 'authenticated');
      assert.equal(claims.sub, DEMO_USER_ID);

      const got = await sb.auth.getSession();
      assert.equal(got.data.session?.access_token, session.access_token);
      const user = await sb.auth.getUser();
      assert.equal(user.error, null);
      assert.equal(user.data.user?.id, DEMO_USER_ID);
      // getClaims() verifies the token against the stack's JWKS.
      const verified = await sb.auth.getClaims();
      assert.equal(verified.error, null);
      assert.equal(verified.data?.claims.sub, DEMO_USER_ID);

      // The refresh token rotates; the new access token belongs to the same session.
      const refreshed = await sb.auth.refreshSession();
      assert.equal(refreshed.error, null);
      const next = refreshed.data.session!;
      assert.notEqual(next.refresh_token, session.refresh_token);
      assert.equal(decodeJwt(next.access_token).session_id, claims.session_id);

      // queue-health: the member's project, and nothing of another project.
      const mine = await health('default', next.access_token);
      assert.ok([200, 503].includes(mine.status), `queue-health answered ${mine.status}`);
      assert.match(mine.text, /"projects":\[\{"id":"default"/);
      const theirs = await health(OTHER, next.access_token);
      assert.ok([200, 403, 503].includes(theirs.status), `queue-health answered ${theirs.status}`);
      assert.equal(theirs.text.includes(OTHER_QUEUE), false, 'no queue of the other project');
      assert.match(theirs.text, /"projects":\[\]/);

      // Realtime: the member joins its project's private channel, not the other one.
      assert.equal(await join_(stackClient(anon), 'default', next.access_token), 'SUBSCRIBED');
      assert.equal(await join_(stackClient(anon), OTHER, next.access_token), 'CHANNEL_ERROR');

      // A forged token (the right kid, another key) and an expired one (the right key) open
      // neither queue-health nor Realtime.
      const key = await loadSigningKey(paths.authSigningKey);
      assert.equal(header.kid, key.kid, 'signed with the stack key');
      const dir = await Deno.makeTempDir();
      const stranger = await loadSigningKey(join(dir, 'k.json'));
      await Deno.remove(dir, { recursive: true });
      const forged = await new SignJWT(decodeJwt(next.access_token))
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
        .sign(stranger.privateKey);
      const now = Math.floor(Date.now() / 1000);
      const expired = await new SignJWT({ ...decodeJwt(next.access_token), iat: now - 7200 })
        .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'JWT' })
        .setExpirationTime(now - 3600)
        .sign(key.privateKey);
      for (const [what, token] of [['forged', forged], ['expired', expired]]) {
        assert.equal((await health('default', token)).status, 401, `${what} token: queue-health`);
        assert.equal(await join_(stackClient(anon), 'default', token), 'CHANNEL_ERROR', what);
      }

      // signOut ends the session at Auth: the refresh token and /user refuse it from then on.
      const out = await sb.auth.signOut();
      assert.equal(out.error, null);
      assert.equal((await sb.auth.getSession()).data.session, null);
      const again = stackClient(anon);
      const reuse = await again.auth.refreshSession({ refresh_token: next.refresh_token });
      assert.ok(reuse.error instanceof AuthApiError);
      assert.equal(reuse.error.code, 'refresh_token_not_found');
      const stale = await again.auth.getUser(next.access_token);
      assert.equal(stale.data.user, null);
      assert.equal(stale.error?.name, 'AuthSessionMissingError');
    } finally {
      await sql`delete from queue_health.queue where project_id = ${OTHER}`;
      await sql`delete from queue_health.project where id = ${OTHER}`;
      await sql.end({ timeout: 2 });
    }
  },
});
