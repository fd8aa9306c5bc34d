/**
 * PagerDuty through its Events API v2: one alert per (project, channel) group, opened and updated
 * by `trigger` events and closed by `resolve`, all with the group's key as `dedup_key`.
 *
 * Facts from PagerDuty's documentation (PagerDuty/developer-docs, docs/events-API-v2, checked
 * December 2026):
 * - `POST https://events.pagerduty.com/v2/enqueue`, JSON `{routing_key (32 characters),
 *   event_action: trigger|acknowledge|resolve, dedup_key (at most 255), payload: {summary (at most
 *   1024, required), source (required), severity: critical|error|warning|info (required),
 *   timestamp, component, group, class, custom_details}, links, images, client, client_url}`;
 *   a payload is at most 512 KB.
 * - Events with the `dedup_key` of an open alert are applied to it; once it is resolved, a
 *   `trigger` with the same key opens a new one and a `resolve` is dropped.
 * - 202 accepted (`{status: "success", message: "Event processed", dedup_key}`); 400 invalid
 *   (`{status: "invalid event", message, errors: [..]}`), do not retry; 429 "too many API calls",
 *   retry after some time (about 120 events a minute per integration key, "preferably with a
 *   backoff of a few minutes"; their rate-limit page suggests 30 s apart); 5xx and network
 *   errors, retry.
 * @module
 */
import { z } from 'zod';
import { sha256Hex } from '../_shared/hash.ts';
import { clip, jsonObject, oneLine, type Outcome } from './classify.ts';
import { type Alert, type Claimed, describeZodError, type Payload } from './payload.ts';
import { parseRetryAfter } from './retry.ts';
import { errorText, readBody, RELEASED, type SendContext, takeTurn, withTimeout } from './send.ts';

/** PagerDuty's Events API v2 endpoint; the operator may set `PAGERDUTY_EVENTS_URL` instead. */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';

/** Default spacing of events to one routing key, ms (PagerDuty: about 120 a minute per key). */
export const PAGERDUTY_INTERVAL_MS = 500;

/** Delay of a 429 without Retry-After: PagerDuty suggests retrying 30 s apart. */
export const PAGERDUTY_429_DELAY_MS = 30_000;

/** At most this many alerts go into `custom_details.alerts` (the event must stay under 512 KB). */
export const PAGERDUTY_MAX_ALERTS = 100;

const optionalText = (field: string) =>
  z.string({ error: `pagerduty channel 'config.${field}' must be a string` }).min(1).max(255)
    .optional();

/** PagerDuty channel config: optional overrides of the event's source, component, group, class. */
export const pagerDutyConfigSchema = z.object({
  source: optionalText('source'),
  component: optionalText('component'),
  group: optionalText('group'),
  class: optionalText('class'),
});

/** PagerDuty channel secret: the Events API v2 integration (routing) key. */
export const pagerDutySecretSchema = z.object({
  routing_key: z.string({ error: "pagerduty channel 'secret.routing_key' must be a string" })
    .regex(/^[A-Za-z0-9]{32}$/, {
      error: "pagerduty channel 'secret.routing_key' must be a 32-character integration key",
    }),
});

/**
 * The alert group's key as `dedup_key`: `project_id/channel_id` (the notification's group_key),
 * or, should a long project id push it past PagerDuty's 255 characters, its SHA-256 in hex.
 */
export async function dedupKey(projectId: string, channelId: string): Promise<string> {
  const key = `${projectId}/${channelId}`;
  return key.length <= 255 ? key : `sha256:${await sha256Hex(key)}`;
}

/** `text` cut to at most `max` UTF-16 units, never inside a surrogate pair, ending in "…". */
function clipText(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/** The event body PagerDuty receives. */
export interface PagerDutyEvent {
  routing_key: string;
  event_action: 'trigger' | 'resolve';
  dedup_key: string;
  payload?: {
    summary: string;
    source: string;
    severity: 'critical' | 'warning' | 'info';
    timestamp: string;
    component?: string;
    group?: string;
    class?: string;
    custom_details: Record<string, unknown>;
  };
  links?: { href: string; text: string }[];
  client?: string;
  client_url?: string;
}

function summaryOf(p: Payload, firing: Alert[]): string {
  const first = firing[0];
  const head = first
    ? oneLine(first.summary ?? `${first.rule_name}${first.queue ? ` on ${first.queue}` : ''}`)
    : `${p.alerts.length} alerts`;
  const more = firing.length > 1 ? ` (+${firing.length - 1} more firing)` : '';
  return clipText(`[${oneLine(p.project_id)}] ${head}${more}`, 1024);
}

function detailOf(a: Alert): Record<string, unknown> {
  return {
    rule: a.rule_name,
    condition: a.condition ?? null,
    state: a.state,
    severity: a.severity,
    source: a.source ?? null,
    source_schema: a.source_schema ?? null,
    queue: a.queue ?? null,
    value: a.value ?? null,
    value_text: a.value_text ?? null,
    threshold: a.threshold ?? null,
    fired_at: a.fired_at ?? null,
    resolved_at: a.resolved_at ?? null,
    summary: a.summary ?? null,
    runbook_url: a.runbook_url ?? null,
    ...(a.queue_labels && Object.keys(a.queue_labels).length > 0 ? { labels: a.queue_labels } : {}),
  };
}

/**
 * The event for a notification: `resolve` when nothing fires any more (the payload's status is
 * resolved), else `trigger` with the firing alerts' highest severity, the first one's summary,
 * queue (component), source (group) and condition (class) unless the channel names its own, and
 * every alert's values in `custom_details`.
 */
export function renderPagerDuty(
  p: Payload,
  opts: {
    routingKey: string;
    dedupKey: string;
    notificationId: string;
    config: z.infer<typeof pagerDutyConfigSchema>;
    now: Date;
  },
): PagerDutyEvent {
  const base = { routing_key: opts.routingKey, dedup_key: opts.dedupKey };
  if (p.status === 'resolved') return { ...base, event_action: 'resolve' };
  const firing = p.alerts.filter((a) => a.state === 'firing');
  const rank = { critical: 3, warning: 2, info: 1 } as const;
  const severity = firing.reduce<Alert['severity']>(
    (s, a) => rank[a.severity] > rank[s] ? a.severity : s,
    'info',
  );
  const first = firing[0] as Alert | undefined;
  const times = firing.map((a) => a.fired_at ?? a.started_at).filter((t): t is string => !!t)
    .map((t) => Date.parse(t)).filter((t) => Number.isFinite(t));
  const listed = p.alerts.slice(0, PAGERDUTY_MAX_ALERTS);
  const links: { href: string; text: string }[] = [];
  if (p.dashboard_url) links.push({ href: p.dashboard_url, text: 'Queue Health dashboard' });
  const runbook = firing.find((a) => a.runbook_url)?.runbook_url;
  if (runbook) links.push({ href: runbook, text: 'Runbook' });
  const component = opts.config.component ?? first?.queue ?? undefined;
  const group = opts.config.group ?? first?.source ?? undefined;
  const klass = opts.config.class ?? first?.condition ?? undefined;
  return {
    ...base,
    event_action: 'trigger',
    payload: {
      summary: summaryOf(p, firing),
      source: opts.config.source ?? clipText(`queue-health:${p.project_id}`, 255),
      // ours are PagerDuty's words (it also has `error`, which we never use)
      severity,
      timestamp: new Date(times.length ? Math.min(...times) : opts.now.getTime()).toISOString(),
      ...(component ? { component: clipText(component, 255) } : {}),
      ...(group ? { group: clipText(group, 255) } : {}),
      ...(klass ? { class: clipText(klass, 255) } : {}),
      custom_details: {
        project: p.project_id,
        notification_id: opts.notificationId,
        firing: p.counts.firing,
        resolved: p.counts.resolved,
        alerts: listed.map(detailOf),
        ...(p.alerts.length > listed.length
          ? { alerts_not_listed: p.alerts.length - listed.length }
          : {}),
      },
    },
    ...(links.length ? { links } : {}),
    client: 'Queue Health',
    ...(p.dashboard_url ? { client_url: p.dashboard_url } : {}),
  };
}

/** PagerDuty's answer body. */
interface PagerDutyAnswer {
  status?: string;
  message?: string;
  dedup_key?: string;
  errors?: unknown[];
}

/**
 * PagerDuty's answer: 2xx (202) is sent, the `dedup_key` as the provider's id; 400 is dead with
 * PagerDuty's message and errors; 429 is retried after Retry-After, else after 30 s; 5xx and 408
 * are retried with backoff; any other 4xx (401, 403, 404, 413) is dead.
 */
export function classifyPagerDuty(
  status: number,
  body: string,
  retryAfterMs: number | null,
): Outcome {
  const a = jsonObject<PagerDutyAnswer>(body);
  if (status >= 200 && status < 300) {
    return {
      status: 'sent',
      httpStatus: status,
      providerMessageId: typeof a?.dedup_key === 'string' ? clip(a.dedup_key, 255) : null,
    };
  }
  const errors = Array.isArray(a?.errors) ? a.errors.map(String).join('; ') : '';
  const message = [a?.status ?? '', a?.message ?? '', errors].filter(Boolean).join(': ') ||
    clip(body) || 'no message';
  const error = `pagerduty ${status} ${clip(message, 400)}`;
  if (status === 429) {
    return {
      status: 'retry',
      httpStatus: status,
      error,
      retryAfterMs: retryAfterMs ?? PAGERDUTY_429_DELAY_MS,
    };
  }
  if (status >= 500 || status === 408) {
    return { status: 'retry', httpStatus: status, error, retryAfterMs };
  }
  return { status: 'dead', httpStatus: status, error };
}

/**
 * Sends one notification to PagerDuty: `trigger` while anything fires, `resolve` when all is
 * resolved, both with the group's `dedup_key`, so PagerDuty keeps one alert per group however
 * often a notification is retried. Paced per routing key (`QUEUE_ALERT_PAGERDUTY_INTERVAL_MS`,
 * 500 ms: PagerDuty takes about 120 events a minute per integration key).
 */
export async function sendPagerDuty(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  const config = pagerDutyConfigSchema.safeParse(row.config);
  if (!config.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(config.error) };
  }
  const secret = pagerDutySecretSchema.safeParse(row.secret);
  if (!secret.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(secret.error) };
  }
  const event = renderPagerDuty(p, {
    routingKey: secret.data.routing_key,
    dedupKey: await dedupKey(row.project_id, row.channel_id),
    notificationId: row.id,
    config: config.data,
    now: ctx.now(),
  });
  const key = `pagerduty:${secret.data.routing_key}`;
  if (!(await takeTurn(ctx, key, ctx.pagerDutyIntervalMs ?? PAGERDUTY_INTERVAL_MS))) {
    return RELEASED;
  }
  try {
    const { res, text } = await withTimeout(ctx.timeoutMs, async (signal) => {
      const res = await ctx.fetch(ctx.pagerDutyEventsUrl ?? PAGERDUTY_EVENTS_URL, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(event),
        signal,
      });
      return { res, text: await readBody(res, 4000) };
    });
    const o = classifyPagerDuty(
      res.status,
      text,
      parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
    );
    return o.status === 'sent'
      ? { ...o, providerMessageId: o.providerMessageId ?? event.dedup_key }
      : o;
  } catch (e) {
    return {
      status: 'retry',
      httpStatus: null,
      error: `pagerduty ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}
