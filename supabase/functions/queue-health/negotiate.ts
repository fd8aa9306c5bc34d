/**
 * HTTP content negotiation for the health endpoint: which body (JSON, the classic Prometheus text
 * format, or OpenMetrics) and whether to gzip it. Pure functions over header values.
 *
 * Prometheus 2.x scrapes with `Accept: application/openmetrics-text;version=1.0.0,
 * application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*\/*;q=0.1`
 * and `Accept-Encoding: gzip` (prometheus.io, "Exposition formats"; the scrape code of 2.42).
 * @module
 */
import type { HealthParams } from './params.ts';
import type { ExpositionFormat } from './prometheus.ts';

/** What the health endpoint answers with. */
export type ResponseFormat = 'json' | ExpositionFormat;

interface MediaRange {
  type: string;
  params: Map<string, string>;
  q: number;
}

/** Parses an Accept-style header into its ranges (lower-cased, q defaulting to 1). */
export function parseAccept(header: string | null): MediaRange[] {
  if (!header) return [];
  const ranges: MediaRange[] = [];
  for (const part of header.split(',')) {
    const [type, ...rest] = part.split(';').map((s) => s.trim());
    if (!type) continue;
    const params = new Map<string, string>();
    for (const p of rest) {
      const eq = p.indexOf('=');
      if (eq > 0) {
        params.set(
          p.slice(0, eq).trim().toLowerCase(),
          p.slice(eq + 1).trim().replace(/^"|"$/g, ''),
        );
      }
    }
    const q = Number(params.get('q') ?? '1');
    ranges.push({ type: type.toLowerCase(), params, q: Number.isFinite(q) ? q : 0 });
  }
  return ranges;
}

/** The highest q Accept gives an exposition format (0: not accepted by name). */
function qualityOf(ranges: MediaRange[], format: ExpositionFormat): number {
  let best = 0;
  for (const r of ranges) {
    const version = r.params.get('version');
    const matches = format === 'openmetrics'
      ? r.type === 'application/openmetrics-text' && (version === undefined || version === '1.0.0')
      : r.type === 'text/plain' && (version === undefined || version === '0.0.4');
    if (matches) best = Math.max(best, r.q);
  }
  return best;
}

/**
 * The format to answer in. `format=` decides first (`prometheus`: an exposition, OpenMetrics or
 * text as Accept prefers; `openmetrics`; `json`); without it, an Accept that names OpenMetrics or
 * `text/plain; version=0.0.4` gets an exposition, anything else JSON. Between the two expositions
 * the higher q wins, and the classic text on a tie or when Accept names neither.
 */
export function negotiateFormat(
  format: HealthParams['format'],
  accept: string | null,
): ResponseFormat {
  if (format === 'json' || format === 'openmetrics') return format;
  const ranges = parseAccept(accept);
  const om = qualityOf(ranges, 'openmetrics');
  const text = ranges.some((r) => r.type === 'text/plain' && r.params.get('version') === '0.0.4')
    ? qualityOf(ranges, 'text')
    : 0;
  if (format !== 'prometheus' && om <= 0 && text <= 0) return 'json';
  return om > 0 && om > text ? 'openmetrics' : 'text';
}

/** True when Accept-Encoding allows gzip (by name or `*`, with q > 0). */
export function acceptsGzip(header: string | null): boolean {
  let gzip: number | undefined;
  let any: number | undefined;
  for (const r of parseAccept(header)) {
    if (r.type === 'gzip' || r.type === 'x-gzip') gzip = Math.max(gzip ?? 0, r.q);
    else if (r.type === '*') any = r.q;
  }
  return (gzip ?? any ?? 0) > 0;
}

/** `text` gzipped as a stream (CompressionStream, as in Deno and the Supabase edge runtime). */
export function gzipStream(text: string): ReadableStream<Uint8Array> {
  return new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'));
}
