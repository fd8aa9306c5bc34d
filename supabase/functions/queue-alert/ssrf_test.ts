/**
 * SSRF against real sockets: loopback listeners (127.0.0.1 and [::1]) record every connection, and
 * queue-alert's real senders, with the real `fetch`, are pointed at them in every host form a
 * tenant could write. Without the operator's allowance nothing may arrive; with it, the same URLs
 * do arrive (so the listeners are shown to be reachable and the test able to fail).
 */
import assert from 'node:assert/strict';
import { createLogger } from '../_shared/log.ts';
import type { Claimed } from './payload.ts';
import { parsePayload } from './payload.ts';
import {
  type DestinationPolicy,
  parseHostList,
  REFUSED,
  resolveWithDns,
  SLACK_WEBHOOK_HOSTS,
} from './destination.ts';
import { Pacer, type SendContext, sendSlack, sendWebhook } from './send.ts';
import { loopbackListener as listener, payload } from './test_fixtures.ts';

const STRICT: DestinationPolicy = {
  allowPrivate: false,
  trustedHosts: [],
  slackHosts: SLACK_WEBHOOK_HOSTS,
};

function ctx(policy: DestinationPolicy, logs: string[] = []): SendContext {
  return {
    fetch: (input, init) => fetch(input, init),
    now: () => new Date(),
    pacer: new Pacer(() => Date.now(), (ms) => new Promise((r) => setTimeout(r, ms))),
    emailClient: () => {
      throw new Error('no email here');
    },
    timeoutMs: 2_000,
    slackIntervalMs: 0,
    resendIntervalMs: 0,
    destinations: policy,
    resolve: resolveWithDns,
    logger: createLogger({ fn: 'queue-alert' }, (line) => logs.push(line)),
  };
}

function row(kind: 'slack' | 'webhook', url: string): Claimed {
  return {
    id: crypto.randomUUID(),
    project_id: 'acme',
    channel_id: crypto.randomUUID(),
    kind,
    config: kind === 'webhook' ? { url } : {},
    secret: kind === 'webhook' ? { signing_secret: 'a-signing-secret-of-16+' } : { url },
    payload: payload(),
    attempts: 1,
    max_attempts: 8,
  };
}

function send(kind: 'slack' | 'webhook', url: string, c: SendContext) {
  const r = row(kind, url);
  return (kind === 'slack' ? sendSlack : sendWebhook)(r, parsePayload(r.payload), c);
}

/** Every way a tenant could write the two listeners' addresses. */
function forms(v4: number, v6: number): string[] {
  return [
    `http://127.0.0.1:${v4}/hook`,
    `https://127.0.0.1:${v4}/hook`,
    `https://[::1]:${v6}/hook`,
    `https://[::ffff:127.0.0.1]:${v4}/hook`,
    `https://[::ffff:7f00:1]:${v4}/hook`,
    `https://2130706433:${v4}/hook`,
    `https://0177.0.0.1:${v4}/hook`,
    `https://0x7f.1:${v4}/hook`,
    `https://127.1:${v4}/hook`,
    `https://localhost:${v4}/hook`,
  ];
}

Deno.test('without the allowance no webhook or Slack request reaches a loopback listener in any host form', async () => {
  const v4 = listener('127.0.0.1');
  const v6 = listener('::1');
  const logs: string[] = [];
  try {
    for (const url of forms(v4.port, v6.port)) {
      for (const kind of ['webhook', 'slack'] as const) {
        const slackPolicy = {
          ...STRICT,
          slackHosts: [
            ...SLACK_WEBHOOK_HOSTS,
            ...parseHostList(
              '127.0.0.1, [::1], localhost, 2130706433, 0x7f.1, 127.1, 0177.0.0.1, [::ffff:127.0.0.1]',
            ),
          ],
        };
        const out = await send(kind, url, ctx(kind === 'slack' ? slackPolicy : STRICT, logs));
        assert.equal(out.status, 'dead', `${kind} ${url}`);
        assert.ok(
          out.status === 'dead' && out.error.startsWith('destination refused:'),
          `${kind} ${url}: ${JSON.stringify(out)}`,
        );
        if (url.startsWith('https:')) {
          assert.equal(out.status === 'dead' && out.error, REFUSED.private, `${kind} ${url}`);
        }
      }
    }
    assert.equal(v4.connections, 0, 'nothing arrived at 127.0.0.1');
    assert.equal(v6.connections, 0, 'nothing arrived at [::1]');
    const refused = logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'destination_refused');
    assert.ok(refused.some((l) => l.address === '::ffff:7f00:1' || l.host === '[::ffff:7f00:1]'));
    assert.ok(
      refused.some((l) => l.why === 'loopback' && l.port === v4.port),
      'the operator sees the detail',
    );
  } finally {
    await v4.close();
    await v6.close();
  }
});

Deno.test('with QUEUE_ALERT_ALLOW_PRIVATE_URLS the same URLs do reach the listeners', async () => {
  const v4 = listener('127.0.0.1');
  const v6 = listener('::1');
  try {
    const dev = { allowPrivate: true, trustedHosts: [], slackHosts: STRICT.slackHosts };
    const plain = await send('webhook', `http://127.0.0.1:${v4.port}/hook`, ctx(dev));
    assert.equal(plain.status, 'sent');
    const viaV6 = await send('webhook', `http://[::1]:${v6.port}/hook`, ctx(dev));
    assert.equal(viaV6.status, 'sent');
    for (const url of [`http://2130706433:${v4.port}/`, `http://0x7f.1:${v4.port}/`]) {
      assert.equal((await send('webhook', url, ctx(dev))).status, 'sent', url);
    }
    assert.equal(v4.connections, 3);
    assert.equal(v6.connections, 1);
  } finally {
    await v4.close();
    await v6.close();
  }
});

Deno.test('a redirect from a trusted host to loopback is refused before connecting', async () => {
  const target = listener('127.0.0.1');
  const target6 = listener('::1');
  const hops = [
    `https://127.0.0.1:${target.port}/internal`,
    `http://127.0.0.1:${target.port}/internal`,
    `https://[::1]:${target6.port}/internal`,
    `http://2130706433:${target.port}/internal`,
  ];
  const redirectors = hops.map((to) =>
    listener('127.0.0.1', `HTTP/1.1 302 Found\r\nlocation: ${to}\r\n`)
  );
  try {
    for (const [i, r] of redirectors.entries()) {
      // The operator trusts the first hop (host and port), not the target.
      const policy = { ...STRICT, trustedHosts: parseHostList(`127.0.0.1:${r.port}`) };
      const out = await send('webhook', `http://127.0.0.1:${r.port}/hook`, ctx(policy));
      assert.equal(out.status, 'dead', hops[i]);
      assert.match(out.status === 'dead' ? out.error : '', /^destination refused: /, hops[i]);
      assert.equal(r.connections, 1, 'the trusted first hop was asked');
    }
    assert.equal(target.connections, 0, 'the redirect target on 127.0.0.1 got nothing');
    assert.equal(target6.connections, 0, 'the redirect target on [::1] got nothing');

    // Control: trusting the target too, the redirect is followed and the POST arrives there.
    const r = redirectors[1];
    const both = {
      ...STRICT,
      trustedHosts: parseHostList(`127.0.0.1:${r.port}, 127.0.0.1:${target.port}`),
    };
    const out = await send('webhook', `http://127.0.0.1:${r.port}/hook`, ctx(both));
    assert.equal(out.status, 'sent');
    assert.equal(target.connections, 1);
  } finally {
    await Promise.all([target, target6, ...redirectors].map((l) => l.close()));
  }
});

Deno.test('redirects are followed at most three times', async () => {
  const hops: ReturnType<typeof listener>[] = [];
  const end = listener('127.0.0.1');
  hops.push(end);
  let next = end.port;
  for (let i = 0; i < 4; i++) {
    const l = listener(
      '127.0.0.1',
      `HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:${next}/\r\n`,
    );
    hops.push(l);
    next = l.port;
  }
  try {
    const dev = { allowPrivate: true, trustedHosts: [], slackHosts: STRICT.slackHosts };
    const out = await send('webhook', `http://127.0.0.1:${next}/`, ctx(dev));
    assert.equal(out.status, 'dead');
    assert.equal(out.httpStatus, 307, 'the fourth redirect is not followed');
    assert.equal(end.connections, 0);
    assert.deepEqual(
      hops.slice(1).map((h) => h.connections),
      [1, 1, 1, 1],
      'the first request and three hops',
    );
  } finally {
    await Promise.all(hops.map((l) => l.close()));
  }
});
