import assert from 'node:assert/strict';
import { Resend } from 'resend';
import { startReceivers } from './server.ts';

Deno.test('the resend SDK with RESEND base URL …/resend reaches /resend/emails and gets an id', async () => {
  const r = await startReceivers({ resendApiKey: 're_local_test' });
  try {
    const resend = new Resend('re_local_test', { baseUrl: `${r.url}/resend` });
    const res = await resend.emails.send({
      from: 'a@example.com',
      to: ['b@example.com'],
      subject: 'hi',
      text: 'hello',
    }, { idempotencyKey: 'k-1' });
    assert.equal(res.error, null);
    assert.ok(res.data?.id);
    const [got] = r.received('resend');
    assert.equal(got.path, '/emails');
    assert.equal(got.headers['idempotency-key'], 'k-1');
    assert.equal(got.headers['authorization'], 'Bearer re_local_test');
    assert.equal((got.body as { subject: string }).subject, 'hi');
  } finally {
    await r.stop();
  }
});

Deno.test('a repeated Idempotency-Key gets the first answer and records one email', async () => {
  const r = await startReceivers();
  try {
    const resend = new Resend('re_x', { baseUrl: `${r.url}/resend` });
    const email = { from: 'a@example.com', to: 'b@example.com', subject: 's', text: 't' };
    const first = await resend.emails.send(email, { idempotencyKey: 'same' });
    const second = await resend.emails.send(email, { idempotencyKey: 'same' });
    assert.equal(second.data?.id, first.data?.id);
    assert.equal(r.received('resend').length, 1);
    assert.equal(r.requests('resend').length, 2);
    const other = await resend.emails.send({ ...email, text: 'different' }, {
      idempotencyKey: 'same',
    });
    assert.equal(other.error?.name, 'invalid_idempotent_request');
  } finally {
    await r.stop();
  }
});

Deno.test('resend route refuses a wrong key and a missing field like Resend', async () => {
  const r = await startReceivers({ resendApiKey: 're_good' });
  try {
    const bad = await new Resend('re_bad', { baseUrl: `${r.url}/resend` }).emails.send({
      from: 'a@example.com',
      to: 'b@example.com',
      subject: 's',
      text: 't',
    });
    assert.equal(bad.error?.statusCode, 403);
    const res = await fetch(`${r.url}/resend/emails`, {
      method: 'POST',
      headers: { authorization: 'Bearer re_good', 'content-type': 'application/json' },
      body: JSON.stringify({ from: 'a@example.com', subject: 's', text: 't' }),
    });
    assert.equal(res.status, 422);
    assert.equal((await res.json()).name, 'missing_required_field');
    assert.equal(r.received('resend').length, 0);
  } finally {
    await r.stop();
  }
});

Deno.test('slack route answers ok, no_text for an empty message, and scripted failures in order', async () => {
  const r = await startReceivers();
  try {
    const post = async (body: unknown) => {
      const res = await fetch(`${r.url}/slack/services/T0/B0/abc`, {
        method: 'POST',
        body: JSON.stringify(body),
      });
      return { status: res.status, text: await res.text(), retry: res.headers.get('retry-after') };
    };
    assert.deepEqual(await post({ text: 'hi' }), { status: 200, text: 'ok', retry: null });
    assert.equal((await post({})).text, 'no_text');
    const control = await fetch(`${r.url}/_control`, {
      method: 'POST',
      body: JSON.stringify({
        route: 'slack',
        status: 429,
        headers: { 'retry-after': '2' },
        body: 'rate_limited',
        times: 2,
      }),
    });
    assert.equal(control.status, 200);
    await control.body?.cancel();
    assert.deepEqual(await post({ text: 'a' }), { status: 429, text: 'rate_limited', retry: '2' });
    assert.deepEqual(await post({ text: 'b' }), { status: 429, text: 'rate_limited', retry: '2' });
    assert.equal((await post({ text: 'c' })).status, 200);
    assert.deepEqual(r.received('slack').map((m) => (m.body as { text: string }).text), [
      'hi',
      'c',
    ]);
    assert.equal(r.received('slack')[0].path, '/services/T0/B0/abc');
  } finally {
    await r.stop();
  }
});

Deno.test('webhook route records raw body and headers; /_received and /_reset work over HTTP', async () => {
  const r = await startReceivers();
  try {
    const res = await fetch(`${r.url}/webhook/hook-1`, {
      method: 'POST',
      headers: { 'webhook-id': 'n1', 'content-type': 'application/json' },
      body: '{"a": 1}',
    });
    assert.equal(res.status, 200);
    assert.ok(res.headers.get('x-request-id'));
    await res.body?.cancel();
    const listed = await (await fetch(`${r.url}/_received?route=webhook`)).json();
    assert.equal(listed.received.length, 1);
    assert.equal(listed.received[0].raw, '{"a": 1}');
    assert.equal(listed.received[0].headers['webhook-id'], 'n1');
    assert.ok(Date.parse(listed.received[0].received_at) > 0);
    const bad = await fetch(`${r.url}/_received?route=nope`);
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    await (await fetch(`${r.url}/_reset`, { method: 'POST' })).body?.cancel();
    assert.equal(r.requests('webhook').length, 0);
  } finally {
    await r.stop();
  }
});

Deno.test('the inbox page lists received messages with their text escaped', async () => {
  const r = await startReceivers();
  try {
    const res = await fetch(`${r.url}/slack/x`, {
      method: 'POST',
      body: JSON.stringify({ text: '[FIRING:1] <b>q</b>' }),
    });
    await res.body?.cancel();
    const page = await (await fetch(`${r.url}/`, { headers: { accept: 'text/html' } })).text();
    assert.match(page, /\[FIRING:1\] &lt;b&gt;q&lt;\/b&gt;/);
  } finally {
    await r.stop();
  }
});
