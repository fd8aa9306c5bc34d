/**
 * docs/architecture.md lists every migration with what it owns (issue 20): a migration the page
 * does not name, or a name the page keeps after the file is gone, fails here.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;

Deno.test('docs/architecture.md names every migration file, and only those', async () => {
  const files = [...Deno.readDirSync(join(ROOT, 'supabase', 'migrations'))]
    .map((e) => e.name).filter((n) => n.endsWith('.sql')).sort();
  const page = await Deno.readTextFile(join(ROOT, 'docs', 'architecture.md'));
  // The page abbreviates the date: `…100000_queue_health_core.sql`.
  const listed = [...page.matchAll(/…(\d{6}_[a-z0-9_]+\.sql)/g)].map((m) => m[1]).sort();
  assert.deepEqual(listed, files.map((f) => f.slice(8)).sort());
});
