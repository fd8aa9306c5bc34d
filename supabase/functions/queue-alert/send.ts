/**
 * Sends one claimed notification to its channel and classifies the answer. Nothing here touches
 * the database: the handler marks the row from the returned {@link Outcome}.
 * @module
 */
import { sha256Hex } from '../_shared/hash.ts';
import { sendAlertmanager } from './alertmanager.ts';
import { type Logger, redactUrls } from '../_shared/log.ts';
import {
  classifyResend,
  classifySlack,
  classifyWebhook,
  clip,
  type Outcome,
  type ResendError,
} from './classify.ts';
import {
  type Claimed,
  describeZodError,
  emailConfigSchema,
  type Payload,
  slackSecretSchema,
  webhookTargetSchema,
} from './payload.ts';
import {
  type DestinationPolicy,
  DestinationRefused,
  guardedFetch,
  type Resolver,
} from './destination.ts';
import { sendPagerDuty } from './pagerduty.ts';
import { renderEmail, renderSlack, renderWebhook } from './render.ts';
import { parseRetryAfter } from './retry.ts';
import { signWebhook } from './signature.ts';
import { sendSms } from './sms.ts';

/** The part of the resend SDK's client queue-alert uses. */
export interface EmailClient {
  emails: {
    send(
      payload: {
        from: string;
        to: string[];
        subject: string;
        html: string;
        text: string;
        replyTo?: string;
        headers?: Record<string, string>;
      },
      options: { idempotencyKey?: string; signal?: AbortSignal },
    ): Promise<{
      data: { id: string } | null;
      error: ResendError | null;
      headers?: Record<string, string> | null;
    }>;
  };
}

/** Creates an email client; by default `new Resend(apiKey, {baseUrl})`. */
export type EmailClientFactory = (apiKey: string, options: { baseUrl?: string }) => EmailClient;

/**
 * Spaces requests that share a key: each `wait(key, interval)` returns when at least `interval`
 * ms have passed since the previous slot for that key. Slots are reserved synchronously, so
 * concurrent callers queue up instead of bursting.
 */
export class Pacer implements Turns {
  #next = new Map<string, number>();

  /** @param now clock in ms; @param sleep waits ms. */
  constructor(
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
  ) {}

  /**
   * Waits for the next free slot of `key`. When that slot would start after `notAfter` (clock
   * ms), returns false at once without taking the slot.
   */
  async wait(key: string, intervalMs: number, notAfter = Infinity): Promise<boolean> {
    const now = this.now();
    const slot = Math.max(now, this.#next.get(key) ?? 0);
    if (slot > notAfter) return false;
    if (intervalMs > 0) this.#next.set(key, slot + intervalMs);
    if (slot > now) await this.sleep(slot - now);
    return true;
  }
}

/** Hands out paced turns: `Pacer` (one invocation) or `SharedPacer` (every invocation). */
export interface Turns {
  /** Waits for the next turn of `key`; false, taking none, when it would start after `notAfter`. */
  wait(key: string, intervalMs: number, notAfter?: number): Promise<boolean>;
}

/**
 * Paces across every invocation of queue-alert: each turn is reserved in the database
 * (`queue_health.take_send_turn`, on the database's clock) under a SHA-256 of its key, so two
 * overlapping invocations space their messages to one Slack webhook as one would. Unpaced keys
 * (interval 0) never go to the database. Should the database not answer (the function missing,
 * an error), this and later turns of the invocation fall back to its own `Pacer`.
 */
export class SharedPacer implements Turns {
  #local: Pacer;
  #fallback = false;

  /**
   * @param take reserves a turn: ms to wait for it, or null when it is more than `maxWaitMs` away
   * @param onFallback told once, when the database could not be used
   */
  constructor(
    private readonly take: (
      key: string,
      intervalMs: number,
      maxWaitMs: number | null,
    ) => Promise<number | null>,
    private readonly now: () => number,
    private readonly sleep: (ms: number) => Promise<void>,
    private readonly onFallback: (e: unknown) => void = () => {},
  ) {
    this.#local = new Pacer(now, sleep);
  }

  async wait(key: string, intervalMs: number, notAfter = Infinity): Promise<boolean> {
    if (intervalMs > 0 && !this.#fallback) {
      try {
        const maxWaitMs = Number.isFinite(notAfter) ? Math.max(0, notAfter - this.now()) : null;
        const waitMs = await this.take(await sha256Hex(key), intervalMs, maxWaitMs);
        if (waitMs === null) return false;
        if (waitMs > 0) await this.sleep(waitMs);
        return true;
      } catch (e) {
        this.#fallback = true;
        this.onFallback(e);
      }
    }
    return await this.#local.wait(key, intervalMs, notAfter);
  }
}

/** What the senders need from the outside world. */
export interface SendContext {
  fetch: typeof fetch;
  now: () => Date;
  pacer: Turns;
  emailClient: EmailClientFactory;
  resendApiKey?: string;
  resendBaseUrl?: string;
  resendFrom?: string;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /** Minimum spacing of requests to one Slack webhook URL, ms (Slack: about 1/s). */
  slackIntervalMs: number;
  /** Minimum spacing of Resend requests overall, ms. */
  resendIntervalMs: number;
  /** Clock time (ms) after which a send must not start: the claim's lease could end mid-send. */
  deadlineMs?: number;
  /** Where tenant-given URLs may go: Slack, webhooks, Alertmanager (destination.ts). */
  destinations: DestinationPolicy;
  /** Resolves host names for the destination check. */
  resolve: Resolver;
  /** Where a refused destination's detail goes (the operator's log); tenants see less. */
  logger?: Logger;
  /** Senders the operator allows for email (`RESEND_FROM` is always allowed). */
  emailFromAllowed?: readonly string[];
  /** Reply-to addresses the operator allows for email. */
  emailReplyToAllowed?: readonly string[];
  /** Twilio's API base URL (`TWILIO_API_BASE_URL`); default https://api.twilio.com. */
  twilioBaseUrl?: string;
  /** Minimum spacing of SMS per sender (number or Messaging Service), ms; default 1 000. */
  smsIntervalMs?: number;
  /** PagerDuty's Events API v2 URL (`PAGERDUTY_EVENTS_URL`); default events.pagerduty.com. */
  pagerDutyEventsUrl?: string;
  /** Minimum spacing of PagerDuty events per routing key, ms; default 500. */
  pagerDutyIntervalMs?: number;
}

/** The outcome for a row handed back unsent because its lease would end before its turn. */
export const RELEASED: Outcome = {
  status: 'retry',
  httpStatus: null,
  error: 'not attempted: its lease would have ended before its turn',
  retryAfterMs: 0,
  released: true,
};

/** Waits for the pacing slot of `key`; false when the send must no longer start. */
export async function takeTurn(
  ctx: SendContext,
  key: string,
  intervalMs: number,
): Promise<boolean> {
  return await ctx.pacer.wait(key, intervalMs, ctx.deadlineMs) &&
    (ctx.deadlineMs === undefined || ctx.now().getTime() <= ctx.deadlineMs);
}

/** A thrown error's message, without URLs that may carry secrets. */
export function errorText(e: unknown): string {
  const message = e instanceof Error
    ? e.name === 'TimeoutError' || e.name === 'AbortError' ? `timeout: ${e.message}` : e.message
    : String(e);
  return clip(redactUrls(message));
}

/**
 * Runs `fn` with a signal that aborts after `ms` with a `TimeoutError`, and clears the timer
 * when `fn` settles (unlike `AbortSignal.timeout`, which keeps its timer alive).
 */
export async function withTimeout<T>(
  ms: number,
  fn: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const ac = new AbortController();
  const timer = setTimeout(
    () => ac.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')),
    ms,
  );
  try {
    return await fn(ac.signal);
  } finally {
    clearTimeout(timer);
  }
}

/** The outcome of a refused destination: dead, with the generic reason; the detail is logged. */
export function refused(
  e: DestinationRefused,
  row: Claimed,
  ctx: Pick<SendContext, 'logger'>,
): Outcome {
  ctx.logger?.warn('destination_refused', {
    notification_id: row.id,
    channel_id: row.channel_id,
    project_id: row.project_id,
    reason: e.message,
    ...e.detail,
  });
  return { status: 'dead', httpStatus: null, error: e.message };
}

/** The answer's body, at most `max` characters ('' when it cannot be read: the status says enough). */
export async function readBody(res: Response, max = 2000): Promise<string> {
  try {
    return (await res.text()).slice(0, max);
  } catch {
    return '';
  }
}

/** Resend's limit of recipients per email, and so queue-alert's (settings can only lower it). */
export const MAX_EMAIL_RECIPIENTS = 50;

/** True when `value` is one of `allowed` (compared trimmed, case-insensitively). */
function listed(value: string, allowed: readonly (string | undefined)[]): boolean {
  const v = value.trim().toLowerCase();
  return allowed.some((a) => a !== undefined && a.trim().toLowerCase() === v);
}

/**
 * Sends an email through the resend SDK with the notification id as Idempotency-Key. The sender
 * and reply-to are the operator's: `RESEND_FROM`, or a channel's `from`/`reply_to` only when the
 * operator lists it (`QUEUE_ALERT_EMAIL_FROM_ALLOWED`, `QUEUE_ALERT_EMAIL_REPLY_TO_ALLOWED`);
 * anything else a channel carries is ignored and logged.
 */
export async function sendEmail(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  const config = emailConfigSchema.safeParse(row.config);
  if (!config.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(config.error) };
  }
  const wanted = config.data.from;
  const fromAllowed = wanted !== undefined &&
    listed(wanted, [ctx.resendFrom, ...(ctx.emailFromAllowed ?? [])]);
  const from = fromAllowed ? wanted : ctx.resendFrom;
  if (wanted !== undefined && !fromAllowed) {
    ctx.logger?.warn('email_from_ignored', {
      notification_id: row.id,
      channel_id: row.channel_id,
      project_id: row.project_id,
      from: wanted,
    });
  }
  if (!from) {
    return {
      status: 'dead',
      httpStatus: null,
      error: 'email has no sender: the operator sets RESEND_FROM',
    };
  }
  const replyTo = config.data.reply_to !== undefined &&
      listed(config.data.reply_to, ctx.emailReplyToAllowed ?? [])
    ? config.data.reply_to
    : undefined;
  if (config.data.reply_to !== undefined && replyTo === undefined) {
    ctx.logger?.warn('email_reply_to_ignored', {
      notification_id: row.id,
      channel_id: row.channel_id,
      project_id: row.project_id,
      reply_to: config.data.reply_to,
    });
  }
  if (config.data.to.length > MAX_EMAIL_RECIPIENTS) {
    return {
      status: 'dead',
      httpStatus: null,
      error: `email channel has ${config.data.to.length} recipients: at most ` +
        `${MAX_EMAIL_RECIPIENTS}`,
    };
  }
  if (!ctx.resendApiKey) {
    // Retry: the operator can set the secret and the message still goes out.
    return {
      status: 'retry',
      httpStatus: null,
      error: 'RESEND_API_KEY is not set',
      retryAfterMs: null,
    };
  }
  const email = renderEmail(p);
  const client = ctx.emailClient(ctx.resendApiKey, { baseUrl: ctx.resendBaseUrl });
  if (!(await takeTurn(ctx, 'resend', ctx.resendIntervalMs))) return RELEASED;
  try {
    const res = await withTimeout(ctx.timeoutMs, (signal) =>
      client.emails.send(
        {
          from,
          to: config.data.to,
          subject: email.subject,
          html: email.html,
          text: email.text,
          ...(replyTo ? { replyTo } : {}),
          headers: { 'X-Queue-Health-Notification': row.id },
        },
        { idempotencyKey: row.id, signal },
      ));
    if (res.data && !res.error) {
      return { status: 'sent', httpStatus: 200, providerMessageId: res.data.id ?? null };
    }
    const retryAfter = parseRetryAfter(res.headers?.['retry-after'], ctx.now());
    return classifyResend(
      res.error ?? { statusCode: null, name: 'application_error', message: 'empty response' },
      retryAfter,
    );
  } catch (e) {
    return {
      status: 'retry',
      httpStatus: null,
      error: `resend ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}

/** Posts a Slack message to the channel's incoming webhook, at most one per interval per URL. */
export async function sendSlack(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  const secret = slackSecretSchema.safeParse(row.secret);
  if (!secret.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(secret.error) };
  }
  const body = JSON.stringify(renderSlack(p));
  if (!(await takeTurn(ctx, `slack:${secret.data.url}`, ctx.slackIntervalMs))) return RELEASED;
  try {
    const { res, text } = await withTimeout(ctx.timeoutMs, async (signal) => {
      const res = await guardedFetch(secret.data.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body,
        signal,
      }, { kind: 'slack', policy: ctx.destinations, resolve: ctx.resolve, fetch: ctx.fetch });
      return { res, text: await readBody(res) };
    });
    return classifySlack(
      res.status,
      text,
      parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
    );
  } catch (e) {
    if (e instanceof DestinationRefused) return refused(e, row, ctx);
    return {
      status: 'retry',
      httpStatus: null,
      error: `slack ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}

/** Response headers a webhook receiver may use to name its record of the delivery. */
const WEBHOOK_ID_HEADERS = ['x-request-id', 'x-message-id', 'x-delivery-id'];

/** POSTs the signed, versioned JSON body to the channel's URL. */
export async function sendWebhook(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  const target = webhookTargetSchema.safeParse({
    url: row.config.url ?? row.secret.url,
    signing_secret: row.secret.signing_secret,
  });
  if (!target.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(target.error) };
  }
  if (!(await takeTurn(ctx, `webhook:${target.data.url}`, 0))) return RELEASED;
  const body = JSON.stringify(renderWebhook(row.id, row.channel_id, p));
  const signed = await signWebhook(
    target.data.signing_secret,
    row.id,
    Math.floor(ctx.now().getTime() / 1000),
    body,
  );
  try {
    const { res, text } = await withTimeout(ctx.timeoutMs, async (signal) => {
      const res = await guardedFetch(target.data.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'queue-health-webhooks/1',
          ...signed,
        },
        body,
        signal,
      }, { kind: 'webhook', policy: ctx.destinations, resolve: ctx.resolve, fetch: ctx.fetch });
      return { res, text: await readBody(res) };
    });
    const providerId = WEBHOOK_ID_HEADERS.map((h) => res.headers.get(h)).find(Boolean) ?? null;
    return classifyWebhook(
      res.status,
      text,
      parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
      providerId ? clip(providerId, 200) : null,
    );
  } catch (e) {
    if (e instanceof DestinationRefused) return refused(e, row, ctx);
    return {
      status: 'retry',
      httpStatus: null,
      error: `webhook ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}

/** Sends one claimed row by its kind. */
export function send(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  switch (row.kind) {
    case 'email':
      return sendEmail(row, p, ctx);
    case 'slack':
      return sendSlack(row, p, ctx);
    case 'webhook':
      return sendWebhook(row, p, ctx);
    case 'sms':
      return sendSms(row, p, ctx);
    case 'pagerduty':
      return sendPagerDuty(row, p, ctx);
    case 'alertmanager':
      return sendAlertmanager(row, p, ctx);
  }
}
