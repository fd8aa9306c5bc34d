import assert from 'node:assert/strict';
import { json } from './json.ts';

Deno.test('json() answers the body as JSON with its status and content type', async () => {
  const res = json(201, { ok: true, n: [1, 2] });
  assert.equal(res.status, 201);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.deepEqual(await res.json(), { ok: true, n: [1, 2] });
});

Deno.test('json() adds the given headers, which may replace the content type', async () => {
  const res = json(503, { error: 'x' }, { 'retry-after': '5', 'content-type': 'text/plain' });
  assert.equal(res.headers.get('retry-after'), '5');
  assert.equal(res.headers.get('content-type'), 'text/plain');
  assert.equal(await res.text(), '{"error":"x"}');
});
