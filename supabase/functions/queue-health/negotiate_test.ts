import assert from 'node:assert/strict';
import { acceptsGzip, gzipStream, negotiateFormat } from './negotiate.ts';

/** What Prometheus 2.42 sends when it scrapes. */
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,' +
  'application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

Deno.test('negotiateFormat() follows format= first, then what the scraper puts in Accept', () => {
  assert.equal(negotiateFormat(undefined, PROMETHEUS_ACCEPT), 'openmetrics');
  assert.equal(negotiateFormat('prometheus', PROMETHEUS_ACCEPT), 'openmetrics');
  assert.equal(negotiateFormat(undefined, 'text/plain; version=0.0.4'), 'text');
  assert.equal(
    negotiateFormat(undefined, 'application/openmetrics-text;q=0.2,text/plain;version=0.0.4'),
    'text',
    'the higher q wins',
  );
  assert.equal(negotiateFormat(undefined, 'application/openmetrics-text'), 'openmetrics');
  assert.equal(
    negotiateFormat(undefined, 'application/openmetrics-text;version=0.0.1'),
    'json',
    'a version we do not write is not asked for',
  );
  assert.equal(negotiateFormat('prometheus', 'application/openmetrics-text;version=0.0.1'), 'text');
  assert.equal(negotiateFormat(undefined, 'text/html,application/xhtml+xml,*/*;q=0.8'), 'json');
  assert.equal(negotiateFormat(undefined, 'text/plain'), 'json', 'curl-like text/plain: JSON');
  assert.equal(negotiateFormat(undefined, '*/*'), 'json');
  assert.equal(negotiateFormat(undefined, null), 'json');
  assert.equal(negotiateFormat('json', PROMETHEUS_ACCEPT), 'json');
  assert.equal(negotiateFormat('prometheus', null), 'text');
  assert.equal(negotiateFormat('prometheus', 'application/openmetrics-text;q=0'), 'text');
  assert.equal(negotiateFormat('openmetrics', null), 'openmetrics');
});

Deno.test('acceptsGzip() honours q values and *', () => {
  assert.equal(acceptsGzip('gzip'), true);
  assert.equal(acceptsGzip('gzip, deflate, br'), true);
  assert.equal(acceptsGzip('br;q=1.0, gzip;q=0.8, *;q=0.1'), true);
  assert.equal(acceptsGzip('*'), true);
  assert.equal(acceptsGzip('gzip;q=0'), false);
  assert.equal(acceptsGzip('gzip;q=0, *'), false, 'an explicit q=0 beats *');
  assert.equal(acceptsGzip('identity'), false);
  assert.equal(acceptsGzip('br'), false);
  assert.equal(acceptsGzip(null), false);
});

Deno.test('gzipStream() writes gzip that decompresses to the text', async () => {
  const text = 'queue_health_depth{queue="ü"} 1\n'.repeat(1000);
  const gz = new Uint8Array(await new Response(gzipStream(text)).arrayBuffer());
  assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b], 'the gzip magic number');
  assert.ok(gz.length < text.length / 10);
  const back = await new Response(
    new Blob([gz]).stream().pipeThrough(new DecompressionStream('gzip')),
  ).text();
  assert.equal(back, text);
});
