/**
 * Structured logging: one JSON object per line on stdout (stderr for errors), one line per event.
 *
 * Fields whose name looks like a credential are replaced by `"[redacted]"`, and string values are
 * scrubbed of URL credentials and query strings, so a caller that passes a whole object by mistake
 * still leaks no secret. Pass only what an operator needs anyway.
 * @module
 */

/** Log severity. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** Where lines go; tests pass an array's `push`. */
export type LogSink = (line: string, level: LogLevel) => void;

const SECRET_KEY =
  /secret|password|passwd|token|authorization|api[_-]?key|apikey|signature|cookie|^key$|^url$|webhook_url/i;

const defaultSink: LogSink = (line, level) => {
  if (level === 'error') console.error(line);
  else console.log(line);
};

/**
 * Removes credentials, path secrets and query strings from URLs inside `text`
 * (`https://hooks.slack.com/services/T0/B0/xyz` → `https://hooks.slack.com/…`).
 */
export function redactUrls(text: string): string {
  return text.replace(
    /\b([a-z][a-z0-9+.-]*:\/\/)(?:[^@/\s"']*@)?([^/\s"'?#]+)[^\s"']*/gi,
    '$1$2/…',
  );
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return redactUrls(value);
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Error) return redactUrls(value.message);
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) ? '[redacted]' : scrub(v, depth + 1);
  }
  return out;
}

/** A logger bound to a sink and a set of fields added to every line. */
export interface Logger {
  /** Writes one line `{ts, level, event, ...fields}`. */
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** Shorthand for `log('info', …)`. */
  info(event: string, fields?: Record<string, unknown>): void;
  /** Shorthand for `log('warn', …)`. */
  warn(event: string, fields?: Record<string, unknown>): void;
  /** Shorthand for `log('error', …)`. */
  error(event: string, fields?: Record<string, unknown>): void;
}

/**
 * Creates a logger. `base` fields (e.g. `{fn: 'queue-alert'}`) go on every line.
 */
export function createLogger(
  base: Record<string, unknown> = {},
  sink: LogSink = defaultSink,
): Logger {
  const log = (level: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    const record = scrub({ ...base, ...fields }, 0) as Record<string, unknown>;
    sink(JSON.stringify({ ts: new Date().toISOString(), level, event, ...record }), level);
  };
  return {
    log,
    info: (event, fields) => log('info', event, fields),
    warn: (event, fields) => log('warn', event, fields),
    error: (event, fields) => log('error', event, fields),
  };
}
