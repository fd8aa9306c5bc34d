import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { signWebhook } from './signature.ts';

/** An independent verifier written from the documented scheme (node:crypto, not WebCrypto). */
function verify(
  secret: string,
  headers: Record<string, string>,
  body: string,
  nowS: number,
  toleranceS = 300,
): boolean {
  const id = headers['webhook-id'];
  const ts = Number(headers['webhook-timestamp']);
  if (!id || !Number.isFinite(ts) || Math.abs(nowS - ts) > toleranceS) return false;
  const key = secret.startsWith('whsec_')
    ? Buffer.from(secret.slice(6), 'base64')
    : Buffer.from(secret, 'utf8');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  return headers['webhook-signature'].split(' ').some((part) => {
    const [version, sig] = part.split(',');
    if (version !== 'v1' || !sig) return false;
    const given = Buffer.from(sig, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

Deno.test('signWebhook() output verifies with a separate implementation of the scheme', async () => {
  const secret = 'a-signing-secret-of-some-length';
  const body = JSON.stringify({ version: '1', id: 'n1', emoji: '✅' });
  const h = await signWebhook(secret, 'n1', 1_800_000_000, body);
  assert.equal(h['webhook-id'], 'n1');
  assert.equal(h['webhook-timestamp'], '1800000000');
  assert.match(h['webhook-signature'], /^v1,[A-Za-z0-9+/]+=*$/);
  assert.ok(verify(secret, { ...h }, body, 1_800_000_010));
});

Deno.test('a changed body, id, timestamp or secret fails verification', async () => {
  const secret = 'a-signing-secret-of-some-length';
  const h = await signWebhook(secret, 'n1', 1_800_000_000, '{"a":1}');
  assert.ok(!verify(secret, { ...h }, '{"a":2}', 1_800_000_000));
  assert.ok(!verify(secret, { ...h, 'webhook-id': 'n2' }, '{"a":1}', 1_800_000_000));
  assert.ok(!verify(secret, { ...h, 'webhook-timestamp': '1800000001' }, '{"a":1}', 1_800_000_001));
  assert.ok(!verify('another-secret-of-some-length', { ...h }, '{"a":1}', 1_800_000_000));
  assert.ok(!verify(secret, { ...h }, '{"a":1}', 1_800_000_000 + 301), 'replay outside tolerance');
});

Deno.test('whsec_ secrets are base64-decoded into the key, as Standard Webhooks does', async () => {
  const raw = 'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const secret = `whsec_${raw}`;
  const h = await signWebhook(
    secret,
    'msg_p5jXN8AQM9LWM0D4loKWxJek',
    1614265330,
    '{"test": 2432232314}',
  );
  assert.ok(verify(secret, { ...h }, '{"test": 2432232314}', 1614265330));
  const expected = createHmac('sha256', Buffer.from(raw, 'base64'))
    .update('msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}')
    .digest('base64');
  assert.equal(h['webhook-signature'], `v1,${expected}`);
});
