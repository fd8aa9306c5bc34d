import assert from 'node:assert/strict';
import {
  likePattern,
  ParamError,
  parseHealthParams,
  parseHistoryParams,
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
