/**
 * Test helpers shared by the exposition tests here and the Prometheus end-to-end test
 * (local/test/prometheus_e2e_test.ts): queue names that stress the format's escaping, and
 * `promtool check metrics` (Debian package prometheus; `npm test` installs it).
 * @module
 */

/** Names a queue may have: quotes, backslashes, line feeds, tab, unicode, 47 characters (pgmq's limit). */
export const ODD_NAMES = [
  'we"ird\\queue\nname',
  'ends with a backslash \\',
  '"quoted" and \\"escaped\\"',
  'line\nfeed\r\nand\ttab',
  'ünïcödé 队列 🚀 émoji',
  'q'.repeat(47),
  '{label="inside"} 1',
  '# HELP not a comment',
];

/** Runs `promtool check metrics` on an exposition; its exit code and what it printed. */
export async function promtoolCheckMetrics(text: string): Promise<{ code: number; out: string }> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command('promtool', {
      args: ['check', 'metrics'],
      stdin: 'piped',
      stdout: 'piped',
      stderr: 'piped',
    }).spawn();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error('promtool not found: `npm test` installs it (Debian package prometheus)');
    }
    throw e;
  }
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const dec = new TextDecoder();
  return { code, out: dec.decode(stdout) + dec.decode(stderr) };
}
