/**
 * The alertmanager channel: pushes a notification's alerts to an existing Alertmanager as a JSON
 * array of postable alerts, `POST <config.url>/api/v2/alerts` (Alertmanager API v2; the format is
 * documented at https://prometheus.io/docs/alerting/latest/clients/ and in Alertmanager's
 * `api/v2/openapi.yaml`). Alertmanager identifies an alert by its labels, keeps the newest
 * annotations, and resolves an alert once its `endsAt` has passed; so firing alerts carry
 * `endsAt` = the notification's `valid_until` (SQL resends them every
 * `settings.alertmanager_resend_interval`), and resolved ones `endsAt` = when they resolved.
 * @module
 */
import { clip, type Outcome } from './classify.ts';
import { checkDestination, DestinationRefused } from './destination.ts';
import { type Alert, type Claimed, describeZodError, type Payload } from './payload.ts';
import { parseRetryAfter } from './retry.ts';
import { errorText, readBody, refused, RELEASED, type SendContext, withTimeout } from './send.ts';
import { z } from 'zod';

/** Alertmanager channel config: the base URL (alerts go to `<url>/api/v2/alerts`). */
export const alertmanagerConfigSchema = z.object({
  url: z.url({
    error: "alertmanager channel 'config.url' must be an http(s) URL",
    protocol: /^https?$/,
  }),
});

/** Alertmanager channel secret (optional): a bearer token, or a basic-auth pair. */
export const alertmanagerSecretSchema = z.object({
  bearer_token: z.string({ error: "alertmanager channel 'secret.bearer_token' must be a string" })
    .min(1, { error: "alertmanager channel 'secret.bearer_token' must not be empty" })
    .optional(),
  username: z.string({ error: "alertmanager channel 'secret.username' must be a string" })
    .min(1, { error: "alertmanager channel 'secret.username' must not be empty" })
    .regex(/^[^:]*$/, { error: "alertmanager channel 'secret.username' must not contain ':'" })
    .optional(),
  password: z.string({ error: "alertmanager channel 'secret.password' must be a string" })
    .min(1, { error: "alertmanager channel 'secret.password' must not be empty" }).optional(),
}).refine((s) => s.bearer_token === undefined || s.username === undefined, {
  error: "alertmanager channel 'secret' must hold bearer_token or username and password, not both",
}).refine((s) => (s.username === undefined) === (s.password === undefined), {
  error: "alertmanager channel 'secret' must hold both username and password",
});

/** One postable alert of Alertmanager's API v2. */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt?: string;
  endsAt: string;
  generatorURL?: string;
}

/** When no `valid_until` came with the payload: firing alerts stay active this long. */
export const DEFAULT_VALIDITY_MS = 4 * 60_000;

function iso(value: string | null | undefined): string | undefined {
  if (!value) return undefined;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

function put(target: Record<string, string>, key: string, value: unknown): void {
  if (value === null || value === undefined) return;
  const text = String(value);
  if (text !== '') target[key] = text;
}

/** The labels Queue Health sets itself; a queue label of the same name is left out. */
export const OWN_LABELS = ['alertname', 'severity', 'project', 'source', 'source_schema', 'queue'];

/** Prometheus's classic label name; names starting with `__` are reserved for internal use. */
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/**
 * The queue's own labels (`queue_health.queue.labels`) as Alertmanager labels, so that routes can
 * match them (`team="payments"`): those with a valid label name, not reserved (`__…`), not one of
 * ours, and a string, number or boolean value (nested objects and arrays are left out).
 */
export function queueLabels(a: Alert): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(a.queue_labels ?? {})) {
    if (!LABEL_NAME.test(name) || name.startsWith('__') || OWN_LABELS.includes(name)) continue;
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
      put(out, name, value);
    }
  }
  return out;
}

/**
 * One alert as Alertmanager takes it. Labels (the alert's identity in Alertmanager, and what its
 * routes match): `alertname` = the rule's name, `severity`, `project`, `source`, `source_schema`
 * (pg-boss schemas), `queue` — absent ones (a monitor-wide alert has no queue) are left out — and
 * the queue's own labels (queueLabels).
 * Annotations: `summary`, `description`, `runbook_url`, `value`, `threshold`, `condition`.
 */
export function toPostableAlert(p: Payload, a: Alert, now: Date): PostableAlert {
  const labels: Record<string, string> = queueLabels(a);
  put(labels, 'alertname', a.rule_name);
  put(labels, 'severity', a.severity);
  put(labels, 'project', p.project_id);
  put(labels, 'source', a.source);
  put(labels, 'source_schema', a.source_schema);
  put(labels, 'queue', a.queue);
  const value = a.value_text ?? (a.value === null || a.value === undefined ? null : a.value);
  const annotations: Record<string, string> = {};
  put(annotations, 'summary', a.summary ?? a.rule_name);
  put(
    annotations,
    'description',
    a.condition
      ? `${a.condition} is ${value ?? 'unknown'}` +
        (a.threshold === null || a.threshold === undefined ? '' : ` (threshold ${a.threshold})`) +
        (a.queue ? ` on ${a.queue}` : '')
      : null,
  );
  put(annotations, 'runbook_url', a.runbook_url);
  put(annotations, 'value', value);
  put(annotations, 'threshold', a.threshold);
  put(annotations, 'condition', a.condition);
  const startsAt = iso(a.fired_at) ?? iso(a.started_at);
  const validUntil = iso(p.valid_until) ??
    new Date(now.getTime() + DEFAULT_VALIDITY_MS).toISOString();
  let endsAt = a.state === 'firing' ? validUntil : iso(a.resolved_at) ?? now.toISOString();
  // Alertmanager refuses (400) an alert that ends before it starts.
  if (startsAt && Date.parse(endsAt) < Date.parse(startsAt)) endsAt = startsAt;
  return {
    labels,
    annotations,
    ...(startsAt ? { startsAt } : {}),
    endsAt,
    ...(p.dashboard_url ? { generatorURL: p.dashboard_url } : {}),
  };
}

/** The request body: every alert of the notification, firing and resolved. */
export function renderAlertmanager(p: Payload, now: Date): PostableAlert[] {
  return p.alerts.map((a) => toPostableAlert(p, a, now));
}

/** `<base>/api/v2/alerts` for a base URL with or without a trailing slash or path prefix. */
export function alertsEndpoint(base: string): string {
  const url = new URL(base);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/api/v2/alerts`;
  url.search = '';
  url.hash = '';
  return url.href;
}

function base64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** The Authorization header for the channel's secret, if it has one. */
export function authorizationFor(
  secret: z.infer<typeof alertmanagerSecretSchema>,
): string | undefined {
  if (secret.bearer_token !== undefined) return `Bearer ${secret.bearer_token}`;
  if (secret.username !== undefined && secret.password !== undefined) {
    return `Basic ${base64(`${secret.username}:${secret.password}`)}`;
  }
  return undefined;
}

/**
 * What Alertmanager's answer means. 200 is sent. 429 waits for Retry-After; 5xx and 408 retry.
 * 400 (Alertmanager refused the alerts: its reason, clipped, is kept), 401/403 (the proxy in front
 * refused the credentials), 404 (no Alertmanager API at that URL), redirects (not followed: the
 * Authorization header must not travel) and other 4xx are permanent: retrying cannot help.
 */
export function classifyAlertmanager(
  status: number,
  body: string,
  retryAfterMs: number | null,
): Outcome {
  if (status >= 200 && status < 300) {
    return { status: 'sent', httpStatus: status, providerMessageId: null };
  }
  const head = `alertmanager ${status}`;
  if (status === 429 || status === 503) {
    return { status: 'retry', httpStatus: status, error: head, retryAfterMs };
  }
  if (status >= 500 || status === 408) {
    return { status: 'retry', httpStatus: status, error: head, retryAfterMs: null };
  }
  if (status === 400 || status === 422) {
    const reason = clip(body.replace(/^"|"$/g, ''), 200);
    return {
      status: 'dead',
      httpStatus: status,
      error: `${head} Bad Request: Alertmanager refused the alerts${reason ? `: ${reason}` : ''}`,
    };
  }
  if (status === 401 || status === 403) {
    return {
      status: 'dead',
      httpStatus: status,
      error: `${head} ${status === 401 ? 'Unauthorized' : 'Forbidden'}: check the channel ` +
        "secret's bearer_token, or username and password",
    };
  }
  if (status === 404) {
    return {
      status: 'dead',
      httpStatus: status,
      error: `${head} Not Found: config.url must be the Alertmanager's base URL ` +
        '(alerts go to <url>/api/v2/alerts)',
    };
  }
  if (status >= 300 && status < 400) {
    return {
      status: 'dead',
      httpStatus: status,
      error: `${head}: redirects are not followed; point config.url at the final URL`,
    };
  }
  return { status: 'dead', httpStatus: status, error: head };
}

/** What {@link sendAlertmanager} needs besides the row. */
export type AlertmanagerContext = Pick<
  SendContext,
  'fetch' | 'now' | 'destinations' | 'resolve' | 'timeoutMs' | 'logger' | 'deadlineMs'
>;

/**
 * POSTs the notification's alerts to the channel's Alertmanager. The URL is a tenant's, so it goes
 * through the same destination check as a webhook's (destination.ts); redirects are not followed.
 */
export async function sendAlertmanager(
  row: Claimed,
  p: Payload,
  ctx: AlertmanagerContext,
): Promise<Outcome> {
  const config = alertmanagerConfigSchema.safeParse(row.config);
  if (!config.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(config.error) };
  }
  const secret = alertmanagerSecretSchema.safeParse(row.secret);
  if (!secret.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(secret.error) };
  }
  if (ctx.deadlineMs !== undefined && ctx.now().getTime() > ctx.deadlineMs) return RELEASED;
  const endpoint = alertsEndpoint(config.data.url);
  const auth = authorizationFor(secret.data);
  const body = JSON.stringify(renderAlertmanager(p, ctx.now()));
  try {
    return await withTimeout(ctx.timeoutMs, async (signal) => {
      await checkDestination(new URL(endpoint), 'webhook', ctx.destinations, ctx.resolve, signal);
      const res = await ctx.fetch(endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'queue-health-alertmanager/1',
          ...(auth ? { authorization: auth } : {}),
        },
        body,
        // Not followed: a redirect would carry the Authorization header to another host.
        redirect: 'manual',
        signal,
      });
      return classifyAlertmanager(
        res.status,
        await readBody(res),
        parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
      );
    });
  } catch (e) {
    if (e instanceof DestinationRefused) return refused(e, row, ctx);
    return {
      status: 'retry',
      httpStatus: null,
      error: `alertmanager ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}
