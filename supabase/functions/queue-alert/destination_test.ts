import assert from 'node:assert/strict';
import {
  blockedAddress,
  checkDestination,
  type DestinationPolicy,
  DestinationRefused,
  parseHostList,
  parseIpv6,
  REFUSED,
  SLACK_WEBHOOK_HOSTS,
} from './destination.ts';

const STRICT: DestinationPolicy = {
  allowPrivate: false,
  trustedHosts: [],
  slackHosts: SLACK_WEBHOOK_HOSTS,
};

/** A resolver that knows a few names and fails the test for any other. */
const fakeDns = (table: Record<string, string[]>) => (host: string): Promise<string[]> => {
  if (!(host in table)) throw new Error(`unexpected DNS lookup of ${host}`);
  return Promise.resolve(table[host]);
};

async function refusal(
  url: string,
  kind: 'slack' | 'webhook' = 'webhook',
  policy = STRICT,
  dns: Record<string, string[]> = {},
): Promise<DestinationRefused | null> {
  try {
    await checkDestination(new URL(url), kind, policy, fakeDns(dns));
    return null;
  } catch (e) {
    if (e instanceof DestinationRefused) return e;
    throw e;
  }
}

Deno.test('every blocked IPv4 and IPv6 range is refused, with why', () => {
  const blocked: [string, RegExp][] = [
    ['0.0.0.0', /unspecified/],
    ['10.1.2.3', /private/],
    ['100.64.0.1', /CGNAT/],
    ['100.127.255.255', /CGNAT/],
    ['127.0.0.1', /loopback/],
    ['127.255.255.254', /loopback/],
    ['169.254.169.254', /link-local/],
    ['172.16.0.1', /private/],
    ['172.31.255.255', /private/],
    ['192.0.0.8', /IETF/],
    ['192.0.2.1', /documentation/],
    ['192.168.1.1', /private/],
    ['198.18.0.1', /benchmarking/],
    ['198.19.255.255', /benchmarking/],
    ['198.51.100.7', /documentation/],
    ['203.0.113.9', /documentation/],
    ['224.0.0.251', /multicast/],
    ['239.255.255.250', /multicast/],
    ['240.0.0.1', /reserved/],
    ['255.255.255.255', /broadcast/],
    ['::', /unspecified/],
    ['::1', /loopback/],
    ['::ffff:127.0.0.1', /IPv4-mapped/],
    ['::ffff:7f00:1', /IPv4-mapped/],
    ['::ffff:8.8.8.8', /IPv4-mapped/],
    ['::7f00:1', /IPv4-compatible/],
    ['64:ff9b::a9fe:a9fe', /NAT64 of link-local/],
    ['64:ff9b:1::1', /local-use NAT64/],
    ['2002:7f00:1::', /6to4 of loopback/],
    ['2002:c0a8:101::1', /6to4 of private/],
    ['2001:0:4136:e378:8000:63bf:3fff:fdd2', /Teredo/],
    ['2001:db8::1', /documentation/],
    ['fc00::1', /unique local/],
    ['fd00:ec2::254', /unique local/],
    ['fe80::1', /link-local/],
    ['fec0::1', /site-local/],
    ['ff02::1', /multicast/],
    ['[::1]', /loopback/],
    ['fe80::1%eth0', /link-local/],
    ['not-an-address', /unreadable/],
  ];
  for (const [address, why] of blocked) {
    assert.match(blockedAddress(address) ?? 'allowed', why, address);
  }
  for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111']) {
    assert.equal(blockedAddress(address), null, address);
  }
  assert.equal(blockedAddress('64:ff9b::808:808'), null, 'NAT64 of a public address passes');
  assert.equal(blockedAddress('2002:808:808::1'), null, '6to4 of a public address passes');
});

Deno.test('parseIpv6() reads ::, embedded dotted quads and refuses malformed text', () => {
  assert.deepEqual(parseIpv6('::1'), [...new Array(15).fill(0), 1]);
  assert.deepEqual(parseIpv6('::ffff:127.0.0.1'), parseIpv6('0:0:0:0:0:ffff:7f00:1'));
  for (const bad of ['1:2:3', '1::2::3', ':::', '1:2:3:4:5:6:7:8:9', '::ffff:300.0.0.1', 'g::1']) {
    assert.equal(parseIpv6(bad), null, bad);
  }
});

Deno.test('decimal, octal, hex and short IPv4 host forms are refused as the address they are', async () => {
  for (
    const url of [
      'https://2130706433/',
      'https://0177.0.0.1/',
      'https://0x7f.1/',
      'https://0x7f000001/',
      'https://017700000001/',
      'https://127.1/',
      'https://0/',
      'https://[::ffff:127.0.0.1]/',
      'https://[0:0:0:0:0:0:0:1]/',
      'https://[::127.0.0.1]/',
      'https://0251.0376.0251.0376/', // 169.254.169.254
    ]
  ) {
    const e = await refusal(url);
    assert.equal(e?.message, REFUSED.private, url);
  }
});

Deno.test('names are resolved and refused when any address is private; local names never resolve', async () => {
  const dns = {
    'rebind.example.com': ['93.184.216.34', '10.0.0.5'],
    'v6.example.com': ['fd00:ec2::254'],
    'ok.example.com': ['93.184.216.34', '2606:2800:220:1::1'],
  };
  assert.equal(
    (await refusal('https://rebind.example.com/', 'webhook', STRICT, dns))?.message,
    REFUSED.private,
  );
  const v6 = await refusal('https://v6.example.com/', 'webhook', STRICT, dns);
  assert.equal(v6?.message, REFUSED.private);
  assert.equal(v6?.detail.address, 'fd00:ec2::254', 'the operator sees the address');
  assert.equal(await refusal('https://ok.example.com/hook', 'webhook', STRICT, dns), null);
  for (
    const url of [
      'https://localhost/',
      'https://LOCALHOST./',
      'https://db/',
      'https://x.localhost/',
      'https://metadata.google.internal/',
    ]
  ) {
    assert.equal((await refusal(url))?.message, REFUSED.private, url);
  }
  await assert.rejects(
    checkDestination(
      new URL('https://nxdomain.example.com/'),
      'webhook',
      STRICT,
      () => Promise.resolve([]),
    ),
    /DNS: no address/,
  );
});

Deno.test('https is required; Slack channels go to Slack hosts only; the operator can relax both', async () => {
  const dns = { 'hooks.example.com': ['93.184.216.34'], 'hooks.slack.com': ['34.1.2.3'] };
  assert.equal(
    (await refusal('http://hooks.example.com/', 'webhook', STRICT, dns))?.message,
    REFUSED.https,
  );
  assert.equal(
    (await refusal('ftp://hooks.example.com/', 'webhook', STRICT, dns))?.message,
    REFUSED.scheme,
  );
  assert.equal(
    (await refusal('https://hooks.example.com/services/T/B/x', 'slack', STRICT, dns))?.message,
    REFUSED.slackHost,
  );
  assert.equal(
    (await refusal('https://hooks.slack.com.evil.example/x', 'slack', STRICT, dns))?.message,
    REFUSED.slackHost,
  );
  assert.equal(await refusal('https://hooks.slack.com/services/T/B/x', 'slack', STRICT, dns), null);

  const trusting: DestinationPolicy = {
    ...STRICT,
    trustedHosts: parseHostList('10.0.0.5:8080, intranet.example'),
  };
  assert.equal(
    await refusal('http://10.0.0.5:8080/', 'webhook', trusting),
    null,
    'a trusted host:port',
  );
  assert.equal(
    (await refusal('http://10.0.0.5:8081/', 'webhook', trusting))?.message,
    REFUSED.https,
    'not another port',
  );
  assert.equal(
    await refusal('http://intranet.example/x', 'webhook', trusting),
    null,
    'a trusted name, any port',
  );
  const dev: DestinationPolicy = {
    ...STRICT,
    allowPrivate: true,
    slackHosts: [...SLACK_WEBHOOK_HOSTS, ...parseHostList('127.0.0.1')],
  };
  assert.equal(await refusal('http://127.0.0.1:9/', 'webhook', dev), null);
  assert.equal(await refusal('http://127.0.0.1:9/services/x', 'slack', dev), null);
  assert.equal(
    (await refusal('http://10.0.0.1/services/x', 'slack', dev))?.message,
    REFUSED.slackHost,
    'allowing private addresses does not open Slack to any host',
  );
});

Deno.test('parseHostList() reads host, host:port and [v6]:port, and names a bad entry', () => {
  assert.deepEqual(parseHostList(' Hooks.Example.com , 10.0.0.5:8443,[fd00::1]:443 '), [
    { host: 'hooks.example.com' },
    { host: '10.0.0.5', port: 8443 },
    { host: '[fd00::1]', port: 443 },
  ]);
  assert.deepEqual(parseHostList(''), []);
  assert.throws(() => parseHostList('example.com/path'), /'example.com\/path' is not a host/);
  assert.throws(() => parseHostList('user@example.com'), /is not a host/);
});
