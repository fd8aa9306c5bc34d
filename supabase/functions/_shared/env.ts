/**
 * Environment reading for Edge Functions: each function declares the variables it needs as a zod
 * shape and gets a typed object back, or an {@link EnvError} whose message names the variable.
 *
 * Only the declared variables are read, so a function needs env permission for nothing else.
 * @module
 */
import { z } from 'zod';

/** Where variables come from: a plain record (tests) or a getter (defaults to `Deno.env.get`). */
export type EnvSource = Record<string, string | undefined> | ((name: string) => string | undefined);

/** Raised when a variable is missing or malformed; `variable` names it. */
export class EnvError extends Error {
  /** The name of the offending environment variable. */
  readonly variable: string;

  /** @param variable the variable's name; @param message what is wrong with it. */
  constructor(variable: string, message: string) {
    super(message);
    this.name = 'EnvError';
    this.variable = variable;
  }
}

function getter(source: EnvSource | undefined): (name: string) => string | undefined {
  if (source === undefined) return (name) => Deno.env.get(name);
  if (typeof source === 'function') return source;
  return (name) => source[name];
}

/**
 * Reads and validates the variables named by `shape`. Empty strings count as unset, so
 * `.optional()` and `.default()` behave the same for `FOO=` and an absent `FOO`.
 *
 * @example
 * const env = readEnv({ SUPABASE_DB_URL: z.url() });
 * @throws {EnvError} naming the first missing or invalid variable.
 */
export function readEnv<T extends z.ZodRawShape>(
  shape: T,
  source?: EnvSource,
): z.infer<z.ZodObject<T>> {
  const get = getter(source);
  const raw: Record<string, string | undefined> = {};
  for (const name of Object.keys(shape)) {
    const value = get(name);
    raw[name] = value === '' ? undefined : value;
  }
  const parsed = z.object(shape).safeParse(raw);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const variable = String(issue.path[0] ?? '(unknown)');
  const message = raw[variable] === undefined
    ? `environment variable ${variable} is required but not set`
    : `environment variable ${variable} is invalid: ${issue.message}`;
  throw new EnvError(variable, message);
}
