import assert from 'node:assert/strict';
import {
  likePattern,
  ParamError,
  parseHealthParams,
  parseHistoryParams,
  parseTimestamp,
  resolutionFor,
} from './params.ts';

const q = (s: string) => new URLSearchParams(s);
const NOW = new Date('2026-11-26T12:00:00Z');

function paramOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ParamError, `a ParamError, got ${error}`);
    assert.ok(error.message.includes(error.parameter), `message names ${error.parameter}`);
    return error.parameter;
  }
  throw new Error('expected a ParamError');
}

Deno.test('parseHealthParams() accepts the documented filters', () => {
  assert.deepEqual(
    parseHealthParams(q('project=acme&source=pgmq&queue=em*&status=warning,critical')),
    {
      project: 'acme',
      source: 'pgmq',
      queue: 'em*',
      status: ['warning', 'critical'],
    },
  );
  assert.deepEqual(parseHealthParams(q('')), {});
  assert.deepEqual(parseHealthParams(q('format=prometheus&token=qhst_x')), {
    format: 'prometheus',
  });
});

Deno.test('parseHealthParams() names the bad parameter', () => {
  assert.equal(paramOf(() => parseHealthParams(q('project=Not%20Valid'))), 'project');
  assert.equal(paramOf(() => parseHealthParams(q('source=redis'))), 'source');
  assert.equal(paramOf(() => parseHealthParams(q('status=ok,broken'))), 'status');
  assert.equal(paramOf(() => parseHealthParams(q('status=,'))), 'status');
  assert.equal(paramOf(() => parseHealthParams(q('format=xml'))), 'format');
  assert.equal(paramOf(() => parseHealthParams(q('queue='))), 'queue');
  assert.equal(paramOf(() => parseHealthParams(q('queues=a'))), 'queues');
  assert.equal(paramOf(() => parseHealthParams(q('source=pgmq&source=pgboss'))), 'source');
});

Deno.test('parseHistoryParams() defaults to the last hour and honours range and from/to', () => {
  const last = parseHistoryParams(q('queue=emails'), NOW);
  assert.equal(last.to.toISOString(), NOW.toISOString());
  assert.equal(last.from.toISOString(), '2026-11-26T11:00:00.000Z');
  const week = parseHistoryParams(q('queue=emails&range=7d&source=pgboss'), NOW);
  assert.equal(week.from.toISOString(), '2026-11-19T12:00:00.000Z');
  assert.equal(week.source, 'pgboss');
  const explicit = parseHistoryParams(
    q('queue=emails&from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z'),
    NOW,
  );
  assert.equal(explicit.from.toISOString(), '2026-11-01T00:00:00.000Z');
  assert.equal(explicit.to.toISOString(), '2026-11-02T00:00:00.000Z');
});

Deno.test('parseHistoryParams() names the bad parameter', () => {
  assert.equal(paramOf(() => parseHistoryParams(q(''), NOW)), 'queue');
  assert.equal(paramOf(() => parseHistoryParams(q('queue=a&from=yesterday'), NOW)), 'from');
  assert.equal(paramOf(() => parseHistoryParams(q('queue=a&to=soon'), NOW)), 'to');
  assert.equal(
    paramOf(() =>
      parseHistoryParams(q('queue=a&from=2026-11-02T00:00:00Z&to=2026-11-01T00:00:00Z'), NOW)
    ),
    'from',
  );
  assert.equal(paramOf(() => parseHistoryParams(q('queue=a&range=5y'), NOW)), 'range');
  assert.equal(paramOf(() => parseHistoryParams(q('queue=a&range=500d'), NOW)), 'range');
  assert.equal(
    paramOf(() => parseHistoryParams(q('queue=a&range=1h&from=2026-11-26T00:00:00Z'), NOW)),
    'range',
  );
  assert.equal(paramOf(() => parseHistoryParams(q('queue=a&source=x'), NOW)), 'source');
});

Deno.test('resolutionFor() is raw up to 6 h, 1m up to 7 d, 1h beyond', () => {
  const at = (h: number) => new Date(NOW.getTime() - h * 3_600_000);
  assert.equal(resolutionFor(at(6), NOW), 'raw');
  assert.equal(resolutionFor(at(6.01), NOW), '1m');
  assert.equal(resolutionFor(at(24 * 7), NOW), '1m');
  assert.equal(resolutionFor(at(24 * 7 + 1), NOW), '1h');
});

Deno.test('likePattern() turns * and ? into LIKE wildcards and escapes the rest', () => {
  assert.equal(likePattern('email*'), 'email%');
  assert.equal(likePattern('job_?'), 'job\\__');
  assert.equal(likePattern('100%\\'), '100\\%\\\\');
});

Deno.test('parseTimestamp() wants real calendar dates, a zone, and years 2000-2100', () => {
  assert.equal(
    (parseTimestamp('2026-11-26T10:00:00.5+02:00') as Date).toISOString(),
    '2026-11-26T08:00:00.500Z',
  );
  assert.equal((parseTimestamp('2024-02-29') as Date).toISOString(), '2024-02-29T00:00:00.000Z');
  assert.equal(
    (parseTimestamp('2026-11-26T10:00:00 02:00') as Date).toISOString(),
    '2026-11-26T08:00:00.000Z',
    "a '+' the query string turned into a space",
  );
  const refused: [string, RegExp][] = [
    ['2026-02-30', /2026-02 has no day 30/],
    ['2025-02-29', /2025-02 has no day 29/],
    ['2026-04-31T00:00:00Z', /no day 31/],
    ['2026-13-01', /month 01-12/],
    ['2026-01-01T24:00:00Z', /00:00:00-23:59:59/],
    ['2026-01-01T23:59:60Z', /00:00:00-23:59:59/],
    ['1999-12-31T23:59:59Z', /between the years 2000 and 2100: got 1999/],
    ['2101-01-01', /got 2101/],
    ['+010000-01-01T00:00:00Z', /ISO 8601/],
    ['-000001-01-01T00:00:00Z', /ISO 8601/],
    ['2026-11-26T10:00:00', /with a zone/],
    ['Thu, 26 Nov 2026 10:00:00 GMT', /ISO 8601/],
    ['1764150000000', /ISO 8601/],
    ['2026-11-26T10:00:00+25:00', /zone offset/],
  ];
  for (const [text, why] of refused) {
    const got = parseTimestamp(text);
    assert.equal(typeof got, 'string', text);
    assert.match(got as string, why, text);
  }
  assert.equal(
    paramOf(() => parseHistoryParams(q('queue=a&from=2026-02-30&to=2026-03-05T00:00:00Z'), NOW)),
    'from',
  );
});
