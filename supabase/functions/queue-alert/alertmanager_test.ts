/**
 * The alertmanager sender: what it renders, where it posts, which headers it sends and how it
 * reads the answer — against a real HTTP server on loopback, no database.
 */
import assert from 'node:assert/strict';
import {
  alertsEndpoint,
  classifyAlertmanager,
  renderAlertmanager,
  sendAlertmanager,
} from './alertmanager.ts';
import { type Claimed, parsePayload } from './payload.ts';
import { alert, payload } from './test_fixtures.ts';
import { REFUSED } from './destination.ts';

const NOW = new Date('2026-11-26T10:05:00Z');

function row(url: string, secret: Record<string, unknown> = {}): Claimed {
  return {
    id: '00000000-0000-4000-8000-0000000000a1',
    project_id: 'acme',
    channel_id: '00000000-0000-4000-8000-0000000000c1',
    kind: 'alertmanager',
    config: { url },
    secret,
    payload: null,
    attempts: 1,
    max_attempts: 8,
  };
}

/** A loopback server answering `status` (and `headers`) to everything, recording requests. */
function server(status: number, body = '', headers: Record<string, string> = {}) {
  const seen: { method: string; path: string; headers: Headers; body: string }[] = [];
  const s = Deno.serve({ hostname: '127.0.0.1', port: 0, onListen: () => {} }, async (req) => {
    seen.push({
      method: req.method,
      path: new URL(req.url).pathname,
      headers: req.headers,
      body: await req.text(),
    });
    return new Response(body, { status, headers });
  });
  return { url: `http://127.0.0.1:${s.addr.port}`, seen, stop: () => s.shutdown() };
}

function ctx(allowPrivate = true) {
  return {
    fetch: (input: RequestInfo | URL, init?: RequestInit) => fetch(input, init),
    now: () => NOW,
    destinations: { allowPrivate, trustedHosts: [], slackHosts: [] },
    resolve: (host: string) => Promise.resolve(host === 'localhost' ? ['127.0.0.1'] : []),
    timeoutMs: 5_000,
  };
}

const firingAndResolved = parsePayload(payload([
  alert(),
  alert({
    alert_id: '12',
    queue: 'reports',
    state: 'resolved',
    severity: 'warning',
    source: 'pgmq',
    source_schema: 'pgmq',
    resolved_at: '2026-11-26T10:04:00Z',
    runbook_url: null,
  }),
], { valid_until: '2026-11-26T10:09:00+00:00' }));

Deno.test('renderAlertmanager(): labels identify, annotations describe, endsAt by state', () => {
  const [firing, resolved] = renderAlertmanager(firingAndResolved, NOW);
  assert.deepEqual(firing, {
    labels: {
      alertname: 'queue backlog',
      severity: 'critical',
      project: 'acme',
      source: 'pgboss',
      source_schema: 'pgboss',
      queue: 'emails',
    },
    annotations: {
      summary: 'emails: oldest ready job is 120 s old (threshold 60 s)',
      description: 'oldest_ready_age_s is 120 (threshold 60) on emails',
      runbook_url: 'https://runbooks.example.com/queue-backlog',
      value: '120',
      threshold: '60',
      condition: 'oldest_ready_age_s',
    },
    startsAt: '2026-11-26T10:02:00.000Z',
    endsAt: '2026-11-26T10:09:00.000Z',
    generatorURL: 'https://dash.example.com/acme',
  });
  assert.equal(
    resolved.endsAt,
    '2026-11-26T10:04:00.000Z',
    'a resolved alert ends when it resolved',
  );
  assert.equal(resolved.labels.queue, 'reports');
  assert.equal('runbook_url' in resolved.annotations, false, 'no empty annotation');
});

Deno.test('renderAlertmanager(): a monitor-wide alert has no queue label; no link, no generatorURL', () => {
  const p = parsePayload(payload([alert({ queue: null, source: null, source_schema: null })], {
    dashboard_url: null,
  }));
  const [a] = renderAlertmanager(p, NOW);
  assert.deepEqual(Object.keys(a.labels).sort(), ['alertname', 'project', 'severity']);
  assert.equal('generatorURL' in a, false);
  assert.equal(a.endsAt, '2026-11-26T10:09:00.000Z', 'without valid_until: now + 4 minutes');
});

Deno.test("renderAlertmanager(): the queue's own labels become labels routes can match", () => {
  const p = parsePayload(payload([alert({
    queue_labels: {
      team: 'payments',
      tier: 1,
      paging: true,
      'bad-name': 'x', // not a label name
      '9lives': 'x', // nor this
      __meta: 'x', // reserved
      queue: 'other', // ours wins
      severity: 'info', // ours wins
      owner: { name: 'x' }, // not a scalar
      oncall: ['a', 'b'], // not a scalar
      empty: '', // Alertmanager drops empty labels anyway
    },
  })]));
  const [a] = renderAlertmanager(p, NOW);
  assert.deepEqual(a.labels, {
    team: 'payments',
    tier: '1',
    paging: 'true',
    alertname: 'queue backlog',
    severity: 'critical',
    project: 'acme',
    source: 'pgboss',
    source_schema: 'pgboss',
    queue: 'emails',
  });
});

Deno.test('renderAlertmanager(): endsAt is never before startsAt (Alertmanager refuses that)', () => {
  const p = parsePayload(
    payload([alert({ state: 'resolved', resolved_at: '2026-11-26T10:01:00Z' })]),
  );
  const [a] = renderAlertmanager(p, NOW);
  assert.equal(a.endsAt, a.startsAt);
});

Deno.test('alertsEndpoint() appends /api/v2/alerts to the base URL, with or without a path', () => {
  assert.equal(alertsEndpoint('https://am.example.com'), 'https://am.example.com/api/v2/alerts');
  assert.equal(alertsEndpoint('https://am.example.com/'), 'https://am.example.com/api/v2/alerts');
  assert.equal(
    alertsEndpoint('https://gw.example.com/alertmanager/'),
    'https://gw.example.com/alertmanager/api/v2/alerts',
  );
});

Deno.test('classifyAlertmanager(): 2xx sent, 429/5xx retry, 4xx and 3xx dead with a reason', () => {
  assert.equal(classifyAlertmanager(200, '', null).status, 'sent');
  assert.deepEqual(classifyAlertmanager(429, '', 5000), {
    status: 'retry',
    httpStatus: 429,
    error: 'alertmanager 429',
    retryAfterMs: 5000,
  });
  assert.equal(classifyAlertmanager(500, '', null).status, 'retry');
  assert.equal(classifyAlertmanager(503, '', 2000).status, 'retry');
  const bad = classifyAlertmanager(400, '"labels: alertname missing"', null);
  assert.equal(bad.status, 'dead');
  assert.equal(
    bad.status === 'dead' && bad.error,
    'alertmanager 400 Bad Request: Alertmanager refused the alerts: labels: alertname missing',
  );
  const unauthorized = classifyAlertmanager(401, '', null);
  assert.equal(unauthorized.status, 'dead');
  assert.match(
    unauthorized.status === 'dead' ? unauthorized.error : '',
    /401 Unauthorized.*bearer_token/,
  );
  assert.match(
    (classifyAlertmanager(403, '', null) as { error: string }).error,
    /^alertmanager 403 Forbidden/,
  );
  assert.match((classifyAlertmanager(404, '', null) as { error: string }).error, /base URL/);
  assert.equal(classifyAlertmanager(302, '', null).status, 'dead');
});

Deno.test('sendAlertmanager() posts JSON with the bearer token to <url>/api/v2/alerts', async () => {
  const s = server(200);
  try {
    const out = await sendAlertmanager(
      row(`${s.url}/prefix`, { bearer_token: 'tok-123' }),
      firingAndResolved,
      ctx(),
    );
    assert.equal(out.status, 'sent');
    assert.equal(s.seen.length, 1);
    assert.equal(s.seen[0].method, 'POST');
    assert.equal(s.seen[0].path, '/prefix/api/v2/alerts');
    assert.equal(s.seen[0].headers.get('authorization'), 'Bearer tok-123');
    assert.equal(s.seen[0].headers.get('content-type'), 'application/json');
    assert.deepEqual(JSON.parse(s.seen[0].body), renderAlertmanager(firingAndResolved, NOW));
  } finally {
    await s.stop();
  }
});

Deno.test('sendAlertmanager() without a secret sends no Authorization header', async () => {
  const s = server(200);
  try {
    assert.equal((await sendAlertmanager(row(s.url), firingAndResolved, ctx())).status, 'sent');
    assert.equal(s.seen[0].headers.get('authorization'), null);
  } finally {
    await s.stop();
  }
});

Deno.test('sendAlertmanager(): 503 with Retry-After retries then; 401 is dead', async () => {
  const busy = server(503, '', { 'retry-after': '7' });
  const denied = server(401);
  try {
    const out = await sendAlertmanager(row(busy.url), firingAndResolved, ctx());
    assert.deepEqual(out, {
      status: 'retry',
      httpStatus: 503,
      error: 'alertmanager 503',
      retryAfterMs: 7000,
    });
    const dead = await sendAlertmanager(
      row(denied.url, { username: 'u', password: 'p' }),
      firingAndResolved,
      ctx(),
    );
    assert.equal(dead.status, 'dead');
    assert.equal(denied.seen[0].headers.get('authorization'), `Basic ${btoa('u:p')}`);
  } finally {
    await busy.stop();
    await denied.stop();
  }
});

Deno.test('sendAlertmanager() does not follow a redirect (the Authorization header stays)', async () => {
  const target = server(200);
  const redirect = server(307, '', { location: `${target.url}/elsewhere` });
  try {
    const out = await sendAlertmanager(
      row(redirect.url, { bearer_token: 'secret-token' }),
      firingAndResolved,
      ctx(),
    );
    assert.equal(out.status, 'dead');
    assert.equal(target.seen.length, 0, 'nothing reached the redirect target');
  } finally {
    await target.stop();
    await redirect.stop();
  }
});

Deno.test('sendAlertmanager() refuses a loopback Alertmanager unless the operator allows it', async () => {
  const s = server(200);
  try {
    const out = await sendAlertmanager(row(s.url), firingAndResolved, ctx(false));
    assert.deepEqual(out, { status: 'dead', httpStatus: null, error: REFUSED.https });
    const https = await sendAlertmanager(
      row(`https://localhost:${new URL(s.url).port}`),
      firingAndResolved,
      ctx(false),
    );
    assert.deepEqual(https, { status: 'dead', httpStatus: null, error: REFUSED.private });
    assert.equal(s.seen.length, 0, 'nothing was sent');
  } finally {
    await s.stop();
  }
});

Deno.test('sendAlertmanager(): a network error retries; a bad secret is dead, naming the field', async () => {
  const s = server(200);
  const url = s.url;
  await s.stop();
  const out = await sendAlertmanager(row(url), firingAndResolved, ctx());
  assert.equal(out.status, 'retry');
  assert.match(out.status === 'retry' ? out.error : '', /^alertmanager /);
  const bad = await sendAlertmanager(
    row(url, { bearer_token: 'a', username: 'u', password: 'p' }),
    firingAndResolved,
    ctx(),
  );
  assert.equal(bad.status, 'dead');
  assert.match(bad.status === 'dead' ? bad.error : '', /not both/);
});
