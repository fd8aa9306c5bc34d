/**
 * A bounded HTTP load generator, run as a second process by the read-paths scenario:
 * `deno run -A bench/load.ts <url> <requests> <concurrency> [header: value]...`.
 * Prints one JSON line: requests, seconds, rps, statuses, bytes, latency summary (ms).
 *
 * @module
 */
import { summarize } from './lib/stats.ts';

const [url, nArg, cArg, ...headerArgs] = Deno.args;
const n = Number(nArg);
const c = Number(cArg);
if (!url?.startsWith('http://127.0.0.1:') || !(n > 0 && n <= 100_000) || !(c > 0 && c <= 256)) {
  console.error(
    'usage: load.ts http://127.0.0.1:<port>/… <requests 1..100000> <concurrency 1..256> [header: value]…',
  );
  Deno.exit(2);
}
const headers = Object.fromEntries(headerArgs.map((h) => {
  const i = h.indexOf(':');
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}));
const latencies: number[] = [];
const statuses: Record<string, number> = {};
let bytes = 0;
let next = 0;
const deadline = performance.now() + 120_000;
const t0 = performance.now();
await Promise.all(Array.from({ length: c }, async () => {
  while (next < n && performance.now() < deadline) {
    next++;
    const s = performance.now();
    try {
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
      const body = await res.arrayBuffer();
      bytes += body.byteLength;
      statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    } catch (e) {
      const k = e instanceof Error ? e.name : 'error';
      statuses[k] = (statuses[k] ?? 0) + 1;
    }
    latencies.push(performance.now() - s);
  }
}));
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({
  requests: latencies.length,
  concurrency: c,
  seconds,
  rps: latencies.length / seconds,
  statuses,
  bytes_per_response: latencies.length ? bytes / latencies.length : 0,
  latency_ms: latencies.length ? summarize(latencies) : null,
}));
