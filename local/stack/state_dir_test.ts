/**
 * The default state folder: in the checkout when the postgres OS user can reach it, else under
 * /var/tmp/queue-health (a clone in /root, mode 0700 on Debian, failed `npm test` on a fresh
 * machine before this).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { defaultStateDir, traversableByOthers } from './state_dir.ts';

Deno.test('a checkout under a folder others cannot enter keeps its state under /var/tmp', async () => {
  const top = await Deno.makeTempDir({ prefix: 'qh-state-dir-' });
  try {
    const checkout = join(top, 'home', 'qh');
    await Deno.mkdir(checkout, { recursive: true });
    await Deno.chmod(top, 0o755);
    await Deno.chmod(join(top, 'home'), 0o755);
    assert.equal(traversableByOthers(checkout), true);
    assert.equal(traversableByOthers(join(checkout, 'not-yet', 'made')), true);
    assert.equal(defaultStateDir(checkout), join(checkout, '.stack'));
    assert.equal(defaultStateDir(checkout, '.stack/test'), join(checkout, '.stack/test'));

    await Deno.chmod(join(top, 'home'), 0o700); // as /root is on Debian
    assert.equal(traversableByOthers(checkout), false);
    const dir = defaultStateDir(checkout, '.stack/test');
    if (Deno.uid() === 0) {
      // The cluster runs as postgres: the state moves to a folder of this checkout's.
      assert.match(dir, /^\/var\/tmp\/queue-health\/qh-[0-9a-f]{8}\/\.stack\/test$/);
      assert.equal(defaultStateDir(checkout, '.stack/test'), dir, 'the same folder every run');
      assert.notEqual(defaultStateDir(join(top, 'qh'), '.stack/test'), dir, 'one per checkout');
      assert.equal(traversableByOthers(dir), true);
    } else {
      // The cluster runs as the current user, who can reach the checkout.
      assert.equal(dir, join(checkout, '.stack/test'));
    }
  } finally {
    await Deno.chmod(join(top, 'home'), 0o755).catch(() => {});
    await Deno.remove(top, { recursive: true });
  }
});
