/**
 * Helpers shared by the Chromium tests of the dashboard element (auth_browser_test,
 * dashboard_browser_test, sveltekit_example_test, plain_html_example_test): a timeout that names
 * what was awaited, where screenshots go, a static file server for an example site on another
 * origin, a capture that waits out a concurrent one, and the removal of a test's pg-boss queue
 * from Queue Health's tables.
 * @module
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { ROOT } from '../stack/config.ts';
import type { Sql } from './db.ts';
import { sleep } from './wait.ts';

/** The little of the DOM the tests' page functions use (the tests are type-checked without DOM). */
export interface PageElement {
  textContent: string | null;
  shadowRoot: PageElement | null;
  dataset: Record<string, string | undefined>;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  querySelector(selector: string): PageElement | null;
}

/** The page's global object, as far as the tests' page functions use it. */
export interface PageWindow {
  document: {
    querySelector(s: string): PageElement | null;
    documentElement: { scrollWidth: number };
  };
  getComputedStyle(e: PageElement): { backgroundColor: string };
}

/** Rejects when `ms` pass first, naming what was awaited. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/** What `visible()` waits on: a Playwright locator. */
export interface Visible {
  waitFor(options: { state: 'visible'; timeout: number }): Promise<void>;
}

/** Waits until `locator` is visible, at most `ms`, naming what was awaited when it is not. */
export function visible(locator: Visible, what: string, ms: number): Promise<void> {
  return within(ms, what, locator.waitFor({ state: 'visible', timeout: ms }));
}

/** Where screenshots go: $QH_TEST_ARTIFACTS, default .test-artifacts/ in the checkout. */
export function artifactsDir(): string {
  return Deno.env.get('QH_TEST_ARTIFACTS') || join(ROOT, '.test-artifacts');
}

/** Content types of the files an example site serves. */
export const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/**
 * Serves the files under `dir` on 127.0.0.1:`port`, as a static host does: `/` is index.html, a
 * path outside `dir` or missing is 404 — or, with `spaFallback`, index.html (a single-page app's
 * host). `routes` answers some paths itself (e.g. `/config.json`).
 */
export function serveStatic(
  dir: string,
  port: number,
  opts: { spaFallback?: boolean; routes?: Record<string, () => Response> } = {},
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: '127.0.0.1', port, onListen: () => {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const route = opts.routes?.[path];
    if (route) return route();
    const rel = normalize(decodeURIComponent(path)).replace(/^(\.\.[/\\])+/, '');
    let file = join(dir, path.endsWith('/') ? join(rel, 'index.html') : rel);
    if (!file.startsWith(dir) || !existsSync(file) || Deno.statSync(file).isDirectory) {
      if (!opts.spaFallback) return new Response('not found', { status: 404 });
      file = join(dir, 'index.html');
    }
    return new Response(await Deno.readFile(file), {
      headers: { 'content-type': CONTENT_TYPES[extname(file)] ?? 'application/octet-stream' },
    });
  });
}

/** Runs queue_health.capture() until one is not skipped (another capture held the lock). */
export async function captureNow(sql: Sql): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const [{ summary }] = await sql`select queue_health.capture() as summary`;
    if (summary?.status !== 'skipped') {
      assert.notEqual(summary?.status, 'error', JSON.stringify(summary));
      return;
    }
    await sleep(200);
  }
  throw new Error('capture was skipped 50 times in a row');
}

/**
 * Removes a test's pg-boss queue: its rows in Queue Health's tables, then its jobs and the queue
 * in the pg-boss schema. Logs (does not throw) when that fails, so a test's own failure shows.
 */
export async function removePgBossQueue(sql: Sql, schema: string, queue: string): Promise<void> {
  await sql.begin(async (tx) => {
    for (const table of ['metric', 'metric_1m', 'metric_1h', 'alert', 'queue']) {
      const [{ present }] = await tx`
        select to_regclass(${'queue_health.' + table}) is not null as present`;
      if (!present) continue;
      await tx`delete from ${tx('queue_health')}.${tx(table)}
               where source = 'pgboss' and source_schema = ${schema} and queue_name = ${queue}`;
    }
  }).catch((e) => console.error(`cleanup of ${queue} failed: ${e.message}`));
  await sql`delete from ${sql(schema)}.job where name = ${queue}`.catch(() => {});
  await sql`delete from ${sql(schema)}.queue where name = ${queue}`.catch(() => {});
}
