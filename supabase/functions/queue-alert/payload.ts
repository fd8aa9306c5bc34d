/**
 * The shapes queue-alert receives from SQL: a claimed outbox row
 * (`queue_health.claim_notifications()`) and the notification payload that
 * `queue_health.evaluate_alerts()` wrote into it. Validated here, at the boundary, so renderers and
 * senders work with checked types and a malformed row fails with a message naming the field.
 * @module
 */
import { z } from 'zod';

const severity = z.enum(['info', 'warning', 'critical'], {
  error: "'severity' must be one of info, warning, critical",
});

const timestamp = z.union([z.string(), z.date().transform((d) => d.toISOString())]).nullish();

const httpUrl = z
  .string()
  .nullish()
  .transform((u) => (u && /^https?:\/\/[^\s<>|]+$/i.test(u) ? u : null));

/** One alert inside a notification. */
export const alertSchema = z.object({
  alert_id: z.union([z.string(), z.number()]).transform(String).nullish(),
  rule_id: z.union([z.string(), z.number()]).transform(String).nullish(),
  rule_name: z.string({ error: "'alerts[].rule_name' must be a string" }),
  condition: z.string().nullish(),
  severity,
  state: z.enum(['firing', 'resolved'], {
    error: "'alerts[].state' must be firing or resolved",
  }),
  source: z.string().nullish(),
  source_schema: z.string().nullish(),
  queue: z.string().nullish(),
  value: z.number().nullish(),
  /** The value in words where a number cannot say it: "never" (an infinite ETA), a flow status. */
  value_text: z.string().max(200, { error: "'alerts[].value_text' must be at most 200 characters" })
    .nullish(),
  threshold: z.number().nullish(),
  started_at: timestamp,
  fired_at: timestamp,
  resolved_at: timestamp,
  summary: z.string().nullish(),
  runbook_url: httpUrl,
  /** The queue's labels (`queue_health.queue.labels`), as set; `{}` or absent when it has none. */
  queue_labels: z.record(z.string(), z.unknown()).nullish(),
});

/** A checked alert. */
export type Alert = z.infer<typeof alertSchema>;

/** The notification payload (contract version 1). */
export const payloadSchema = z.object({
  v: z.literal(1, { error: "'payload.v' must be 1" }),
  notification_id: z.string().optional(),
  project_id: z.string({ error: "'payload.project_id' must be a string" }),
  channel: z
    .object({ id: z.string().nullish(), name: z.string().nullish(), kind: z.string().nullish() })
    .nullish(),
  status: z.enum(['firing', 'resolved'], { error: "'payload.status' must be firing or resolved" }),
  severity,
  counts: z
    .object({ firing: z.number().int().min(0), resolved: z.number().int().min(0) })
    .optional(),
  alerts: z.array(alertSchema, { error: "'payload.alerts' must be an array" }),
  dashboard_url: httpUrl,
  /** Alertmanager channels: the endsAt of the firing alerts (until the next resend). */
  valid_until: timestamp,
});

/** A checked notification payload; `counts` is always present after {@link parsePayload}. */
export type Payload = z.infer<typeof payloadSchema> & {
  counts: { firing: number; resolved: number };
};

const emailList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean));

/** Email channel config (non-secret). Recipients may be called `to` or `recipients`. */
export const emailConfigSchema = z
  .object({
    to: emailList.optional(),
    recipients: emailList.optional(),
    from: z.string().optional(),
    reply_to: z.string().optional(),
  })
  .transform((c) => ({ to: c.to ?? c.recipients ?? [], from: c.from, reply_to: c.reply_to }))
  .refine((c) => c.to.length > 0, { error: "email channel 'config.to' has no recipients" });

/** Slack channel secret: the incoming-webhook URL. */
export const slackSecretSchema = z.object({
  url: z.url({ error: "slack channel 'secret.url' must be a URL", protocol: /^https?$/ }),
});

/** Webhook channel: URL in config (or secret), signing secret in the secret. */
export const webhookTargetSchema = z.object({
  url: z.url({ error: "webhook channel 'config.url' must be a URL", protocol: /^https?$/ }),
  signing_secret: z
    .string({ error: "webhook channel 'secret.signing_secret' must be a string" })
    .min(16, { error: "webhook channel 'secret.signing_secret' must have at least 16 characters" }),
});

/** A row returned by `queue_health.claim_notifications()`. */
export const claimedSchema = z.object({
  id: z.string(),
  project_id: z.string(),
  channel_id: z.string(),
  kind: z.enum(['email', 'slack', 'webhook', 'sms', 'pagerduty', 'alertmanager'], {
    error: "'kind' must be one of email, slack, webhook, sms, pagerduty, alertmanager",
  }),
  config: z.record(z.string(), z.unknown()).nullish().transform((c) => c ?? {}),
  secret: z.record(z.string(), z.unknown()).nullish().transform((s) => s ?? {}),
  payload: z.unknown(),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
});

/** A checked claimed row (payload not yet parsed). */
export type Claimed = z.infer<typeof claimedSchema>;

/** Formats the first zod issue as "field: message". */
export function describeZodError(error: z.ZodError): string {
  const issue = error.issues[0];
  const path = issue.path.join('.');
  return issue.message.includes("'") || !path ? issue.message : `'${path}': ${issue.message}`;
}

/**
 * Parses a notification payload; fills `counts` from the alerts when SQL left it out and sorts
 * alerts firing first, then by severity (critical first), keeping SQL's order otherwise.
 * @throws {Error} naming the bad field.
 */
export function parsePayload(raw: unknown): Payload {
  const parsed = payloadSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`invalid payload: ${describeZodError(parsed.error)}`);
  const p = parsed.data;
  const counts = p.counts ?? {
    firing: p.alerts.filter((a) => a.state === 'firing').length,
    resolved: p.alerts.filter((a) => a.state === 'resolved').length,
  };
  const rank = { critical: 0, warning: 1, info: 2 } as const;
  const alerts = p.alerts
    .map((a, i) => ({ a, i }))
    .sort((x, y) =>
      (x.a.state === y.a.state ? 0 : x.a.state === 'firing' ? -1 : 1) ||
      rank[x.a.severity] - rank[y.a.severity] || x.i - y.i
    )
    .map(({ a }) => a);
  return { ...p, counts, alerts };
}
