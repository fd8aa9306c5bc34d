/**
 * Running the real command-line tools (npm, npx, node, the Supabase CLI) from Deno tests, quietly
 * and with their output kept for the assertion message.
 * @module
 */
import assert from 'node:assert/strict';

/** What a command printed and how it ended. */
export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Environment that keeps the Supabase CLI and npm from phoning home or colouring output. */
export const QUIET = { SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', NO_COLOR: '1' };

/** Runs `cmd args` in `cwd` with {@link QUIET} plus `env`; never throws on a non-zero exit. */
export async function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<Ran> {
  const out = await new Deno.Command(cmd, {
    args,
    cwd,
    env: { ...QUIET, ...env },
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Asserts that `r` exited 0, naming `what` and showing its output otherwise. */
export function ok(r: Ran, what: string): Ran {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r;
}
