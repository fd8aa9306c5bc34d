/**
 * Human-readable progress output for the stack CLI (stderr, so stdout stays parseable).
 *
 * Nothing here throws: output is best effort. When stdout or stderr is a pipe whose reader has
 * gone (`npm start | tee log` after Ctrl-C killed tee), a write fails with EPIPE; that must never
 * stop the stack from shutting down, so write errors are swallowed.
 */
const useColor = (() => {
  try {
    return Deno.stderr.isTerminal() && !Deno.env.get('NO_COLOR');
  } catch {
    return false;
  }
})();
const paint = (code: number, s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);

/** Writes a line to stderr; never throws (a closed pipe loses the line, nothing else). */
function errLine(line: string): void {
  try {
    console.error(line);
  } catch { /* EPIPE and the like: output is best effort */ }
}

/** Writes text to stdout as console.log does; never throws (see the module's note). */
export function say(...parts: unknown[]): void {
  try {
    console.log(...parts);
  } catch { /* EPIPE and the like: output is best effort */ }
}

export const log = {
  step: (msg: string) => errLine(`${paint(36, '▸')} ${msg}`),
  ok: (msg: string) => errLine(`${paint(32, '✓')} ${msg}`),
  warn: (msg: string) => errLine(`${paint(33, '!')} ${msg}`),
  fail: (msg: string) => errLine(`${paint(31, '✗')} ${msg}`),
};

/** An error whose message is meant for the user as it is: no stack trace is printed. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}
