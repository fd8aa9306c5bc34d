/**
 * The shipped Prometheus rules (docs/prometheus/queue-health.rules.yml): `promtool check rules`
 * accepts them, and `promtool test rules` passes their unit tests
 * (docs/prometheus/queue-health.rules.test.yml), which give every alert a queue that must fire and
 * neighbours that must not. Needs promtool (Debian package prometheus; `npm test` installs it).
 *
 * @module
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ROOT } from '../stack/config.ts';

const DIR = join(ROOT, 'docs', 'prometheus');

/** Runs promtool in `cwd` (default: the docs' rules folder). */
async function promtoolIn(cwd: string, ...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { code, stdout, stderr } = await new Deno.Command('promtool', {
      args,
      cwd,
      stdin: 'null',
    }).output();
    const dec = new TextDecoder();
    return { code, out: dec.decode(stdout) + dec.decode(stderr) };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error('promtool not found: `npm test` installs it (Debian package prometheus)');
    }
    throw e;
  }
}

const promtool = (...args: string[]) => promtoolIn(DIR, ...args);

Deno.test('promtool check rules accepts the shipped rules file', async () => {
  const { code, out } = await promtool('check', 'rules', 'queue-health.rules.yml');
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS: 22 rules found/);
});

Deno.test('promtool test rules passes the rules unit tests', async () => {
  const { code, out } = await promtool('test', 'rules', 'queue-health.rules.test.yml');
  assert.equal(code, 0, out);
  assert.match(out, /SUCCESS/);
});

Deno.test('promtool test rules fails when a rule is wrong (the tests can fail)', async () => {
  const dir = await Deno.makeTempDir({ prefix: 'qh-rules-' });
  try {
    const rules = await Deno.readTextFile(join(DIR, 'queue-health.rules.yml'));
    const broken = rules.replace(
      'queue_health_oldest_ready_age_seconds > 60',
      'queue_health_oldest_ready_age_seconds >= 60',
    );
    assert.notEqual(broken, rules);
    await Deno.writeTextFile(join(dir, 'queue-health.rules.yml'), broken);
    await Deno.copyFile(
      join(DIR, 'queue-health.rules.test.yml'),
      join(dir, 'queue-health.rules.test.yml'),
    );
    const { code, out } = await promtoolIn(dir, 'test', 'rules', 'queue-health.rules.test.yml');
    assert.notEqual(code, 0);
    assert.match(out, /queue="at_threshold"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
