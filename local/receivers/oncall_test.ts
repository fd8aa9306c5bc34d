import assert from 'node:assert/strict';
import { startReceivers } from './server.ts';

const SID = `AC${'ab'.repeat(16)}`;
const url = (base: string) => `${base}/twilio/2010-04-01/Accounts/${SID}/Messages.json`;
const basic = (user: string, token: string) => `Basic ${btoa(`${user}:${token}`)}`;

async function post(base: string, fields: Record<string, string>, auth = basic(SID, 'tok')) {
  const res = await fetch(url(base), {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  });
  return { status: res.status, body: await res.json() };
}

Deno.test("the Twilio stand-in creates messages, answers Twilio's errors and lists newest first", async () => {
  const r = await startReceivers({ twilioAuthToken: 'tok' });
  try {
    const ok = await post(r.url, { To: '+14155550123', From: '+14155550100', Body: 'one' });
    assert.equal(ok.status, 201);
    assert.match(ok.body.sid, /^SM[0-9a-f]{32}$/);
    assert.equal(ok.body.status, 'queued');
    await post(r.url, { To: '+14155550123', From: '+14155550100', Body: 'two' });

    const denied = await post(
      r.url,
      { To: '+14155550123', From: '+14155550100', Body: 'x' },
      basic(SID, 'bad'),
    );
    assert.deepEqual(denied, {
      status: 401,
      body: {
        code: 20003,
        message: 'Authenticate',
        more_info: 'https://www.twilio.com/docs/errors/20003',
        status: 401,
      },
    });
    const other = await post(
      r.url,
      { To: '+14155550123', From: '+1', Body: 'x' },
      basic(`AC${'cd'.repeat(16)}`, 'tok'),
    );
    assert.equal(other.status, 401, 'the basic-auth user must be the account in the path');
    assert.equal(
      (await post(r.url, { To: '0155', From: '+14155550100', Body: 'x' })).body.code,
      21211,
    );
    assert.equal(
      (await post(r.url, { To: '+15005550001', From: '+14155550100', Body: 'x' })).body.code,
      21211,
    );
    assert.equal((await post(r.url, { From: '+14155550100', Body: 'x' })).body.code, 21604);
    assert.equal((await post(r.url, { To: '+14155550123', Body: 'x' })).body.code, 21603);
    assert.equal(
      (await post(r.url, { To: '+14155550123', From: '+14155550100' })).body.code,
      21602,
    );
    assert.equal(
      (await post(r.url, { To: '+14155550123', From: '+14155550100', Body: 'x'.repeat(1601) })).body
        .code,
      21617,
    );

    const list = await fetch(`${url(r.url)}?To=%2B14155550123&PageSize=1`, {
      headers: { authorization: basic(SID, 'tok') },
    });
    const page = await list.json();
    assert.equal(list.status, 200);
    assert.deepEqual(page.messages.map((m: { body: string }) => m.body), ['two']);
    assert.equal(r.received('twilio').length, 2, 'a list is not a message');
    assert.deepEqual((r.received('twilio')[0].body as Record<string, string>).Body, 'one');
  } finally {
    await r.stop();
  }
});

Deno.test('the PagerDuty stand-in accepts events as documented and refuses invalid ones', async () => {
  const r = await startReceivers();
  try {
    const send = async (event: unknown) => {
      const res = await fetch(`${r.url}/pagerduty/v2/enqueue`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
      });
      return { status: res.status, body: await res.json() };
    };
    const key = 'k'.repeat(32);
    const trigger = {
      routing_key: key,
      event_action: 'trigger',
      dedup_key: 'acme/c1',
      payload: { summary: 's', source: 'src', severity: 'error' },
    };
    assert.deepEqual(await send(trigger), {
      status: 202,
      body: { status: 'success', message: 'Event processed', dedup_key: 'acme/c1' },
    });
    const bad = await send({
      ...trigger,
      routing_key: 'short',
      payload: { summary: '', source: 's', severity: 'high' },
    });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.status, 'invalid event');
    assert.equal(bad.body.message, 'Event object is invalid');
    assert.deepEqual(bad.body.errors, [
      "Length of 'routing_key' is incorrect (should be 32 characters)",
      "'payload.summary' is missing or blank",
      "'payload.severity' is invalid (must be one of critical, error, warning, info)",
    ]);
    assert.equal(
      (await send({ routing_key: key, event_action: 'resolve' })).status,
      400,
      'resolve needs a dedup_key',
    );
    assert.equal(
      (await send({ routing_key: key, event_action: 'resolve', dedup_key: 'acme/c1' })).status,
      202,
    );
    await send(trigger);
    assert.deepEqual(r.oncall.pagerDutyAlerts.get(`${key}/acme/c1`), {
      status: 'triggered',
      triggers: 1,
      opened: 2,
    }, 'a trigger after a resolve opens a new alert');
    const generated = await send({ ...trigger, dedup_key: undefined });
    assert.match(generated.body.dedup_key, /^[0-9a-f]{32}$/);
  } finally {
    await r.stop();
  }
});
