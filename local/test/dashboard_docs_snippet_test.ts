/**
 * docs/dashboard.md shows how to embed `<queue-health-dashboard>` with the examples' own code: each
 * snippet, marked `<!-- snippet: <path> -->` and followed by a fenced block, must be that file,
 * byte for byte, so the docs never drift from what local/test/sveltekit_example_test.ts runs.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT } from '../stack/config.ts';

/** Every `<!-- snippet: path -->` of a page with the fenced block that follows it. */
function snippets(page: string): { path: string; text: string }[] {
  const md = Deno.readTextFileSync(join(ROOT, page));
  const found: { path: string; text: string }[] = [];
  const re = /<!-- snippet: (\S+) -->\n\n```[a-z]*\n([\s\S]*?)```/g;
  for (let m = re.exec(md); m; m = re.exec(md)) found.push({ path: m[1], text: m[2] });
  return found;
}

Deno.test('the embedding snippets in docs/dashboard.md are the examples’ files', () => {
  const found = snippets('docs/dashboard.md');
  assert.deepEqual(
    found.map((s) => s.path).sort(),
    ['examples/plain-html/index.html', 'examples/sveltekit/src/routes/+page.svelte'],
    'docs/dashboard.md shows the SvelteKit route and the plain-HTML page',
  );
  for (const s of found) {
    assert.equal(
      s.text,
      Deno.readTextFileSync(join(ROOT, s.path)),
      `${s.path} differs from the docs`,
    );
  }
});
