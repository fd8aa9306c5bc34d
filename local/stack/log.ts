/** Human-readable progress output for the stack CLI (stderr, so stdout stays parseable). */
const useColor = Deno.stderr.isTerminal() && !Deno.env.get('NO_COLOR');
const paint = (code: number, s: string) => (useColor ? `\x1b[${code}m${s}\x1b[0m` : s);

export const log = {
  step: (msg: string) => console.error(`${paint(36, '▸')} ${msg}`),
  ok: (msg: string) => console.error(`${paint(32, '✓')} ${msg}`),
  warn: (msg: string) => console.error(`${paint(33, '!')} ${msg}`),
  fail: (msg: string) => console.error(`${paint(31, '✗')} ${msg}`),
};

/** An error whose message is meant for the user as it is: no stack trace is printed. */
export class StackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StackError';
  }
}
