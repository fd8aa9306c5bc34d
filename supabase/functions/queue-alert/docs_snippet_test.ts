/**
 * The webhook verification snippet users copy from the docs must verify what queue-alert sends:
 * extract it from the page, run it against a real signed delivery, and against tampered ones.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { parsePayload } from './payload.ts';
import { renderWebhook } from './render.ts';
import { signWebhook } from './signature.ts';
import { payload } from './test_fixtures.ts';

const root = new URL('../../../', import.meta.url);

function snippet(): string {
  for (const page of ['docs/alerts.md', 'docs/webhooks.md']) {
    const path = new URL(page, root);
    if (!existsSync(path)) continue;
    const m = /```ts\n(\/\/ verify_webhook\.ts\n[\s\S]*?)```/.exec(Deno.readTextFileSync(path));
    if (m) return m[1];
  }
  throw new Error('no "// verify_webhook.ts" snippet in docs/alerts.md or docs/webhooks.md');
}

type Verify = (secret: string, headers: Headers, raw: string, toleranceS?: number) => Promise<
  { id: string; version: string }
>;

async function load(): Promise<Verify> {
  const file = await Deno.makeTempFile({ suffix: '.ts' });
  await Deno.writeTextFile(file, snippet());
  try {
    return (await import(`file://${file}`)).verifyQueueHealthWebhook;
  } finally {
    await Deno.remove(file);
  }
}

Deno.test('the documented verification snippet accepts a real delivery and refuses tampering', async () => {
  const verify = await load();
  for (const secret of ['plain-signing-secret-1234', 'whsec_c2VjcmV0LWJ5dGVzLWZvci10ZXN0']) {
    const body = JSON.stringify(renderWebhook('n-1', 'c-1', parsePayload(payload())));
    const now = Math.floor(Date.now() / 1000);
    const h = new Headers({ ...(await signWebhook(secret, 'n-1', now, body)) });
    const event = await verify(secret, h, body);
    assert.equal(event.id, 'n-1');
    assert.equal(event.version, '1');
    await assert.rejects(() => verify(secret, h, body.replace('acme', 'acmf')), /signature/);
    await assert.rejects(() => verify(`${secret.slice(0, -4)}ZZZZ`, h, body), /signature/);
    const old = new Headers({ ...(await signWebhook(secret, 'n-1', now - 600, body)) });
    await assert.rejects(() => verify(secret, old, body), /tolerance/);
    const rotated = new Headers(h);
    rotated.set('webhook-signature', `v1,AAAA ${h.get('webhook-signature')}`);
    assert.equal((await verify(secret, rotated, body)).id, 'n-1', 'any matching v1 signature');
  }
});
