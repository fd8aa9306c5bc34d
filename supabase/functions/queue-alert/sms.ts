/**
 * SMS through Twilio's Messages API: the text, the form-encoded request, what Twilio's answers
 * mean, and how a retried notification avoids texting a number twice.
 *
 * Facts from Twilio's documentation (checked December 2026):
 * - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded `To`, `From` (or
 *   `MessagingServiceSid`) and `Body`, HTTP basic auth with the account SID and auth token; a
 *   created message is answered `201` with JSON whose `sid` starts with `SM`
 *   (https://www.twilio.com/docs/messaging/api/message-resource).
 * - `Body` holds at most 1 600 characters; one segment is 160 GSM-7 characters (70 in UCS-2).
 * - Errors are JSON `{code, message, more_info, status}`: 400 with e.g. 21211 (invalid `To`),
 *   401 with 20003 (authentication), 429 with 20429 ("never processed and is always safe to
 *   retry", https://www.twilio.com/docs/api/errors/20429), and 400 with 21611 when the sender's
 *   queue holds more than 10 hours of messages (https://www.twilio.com/docs/api/errors/21611) —
 *   the one 4xx that clears by waiting.
 * - A US/Canadian long code sends 1 message segment per second, a toll-free number 3, a short
 *   code 100; Twilio queues what comes faster ("What are the limits on outbound calls and SMS
 *   messages per-second?", Twilio help center). queue-alert paces one message per second per
 *   sender by default (`QUEUE_ALERT_SMS_INTERVAL_MS`).
 * - `GET …/Messages.json?To=…&From=…&PageSize=…` lists messages, newest first; there is no
 *   idempotency key for creating one.
 * @module
 */
import { z } from 'zod';
import { clip, jsonObject, oneLine, type Outcome } from './classify.ts';
import { type Claimed, describeZodError, type Payload } from './payload.ts';
import { parseRetryAfter } from './retry.ts';
import { errorText, readBody, RELEASED, type SendContext, takeTurn, withTimeout } from './send.ts';

/** Default spacing of texts from one sender, ms (Twilio: one message a second per long code). */
export const SMS_INTERVAL_MS = 1000;

/** Twilio's API host; the operator may point `TWILIO_API_BASE_URL` elsewhere (the local stack). */
export const TWILIO_API_BASE_URL = 'https://api.twilio.com';

/** Twilio's longest `Body`, in characters. */
export const SMS_MAX_CHARS = 1600;

/** How many of a number's newest messages a retry reads to find what an earlier attempt sent. */
export const SMS_DEDUP_PAGE_SIZE = 100;

const e164 = z.string().regex(/^\+[1-9][0-9]{1,14}$/, {
  error: 'must be a phone number in E.164 form (e.g. "+14155550123")',
});

const numberList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((s) => s.trim()).filter(Boolean))
  .pipe(
    z.array(e164).min(1, { error: "sms channel 'config.to' has no recipients" }).max(10, {
      error: "sms channel 'config.to' lists more than 10 numbers",
    }),
  );

/** SMS channel config: 1 to 10 E.164 recipients and one sender, a number or a Messaging Service. */
export const smsConfigSchema = z
  .object({
    to: numberList.optional(),
    recipients: numberList.optional(),
    from: e164.optional(),
    messaging_service_sid: z.string().regex(/^MG[0-9a-fA-F]{32}$/, {
      error: 'must be a Messaging Service SID ("MG" and 32 hex digits)',
    }).optional(),
  })
  .transform((c) => ({
    to: [...new Set(c.to ?? c.recipients ?? [])],
    from: c.from,
    messaging_service_sid: c.messaging_service_sid,
  }))
  .refine((c) => c.to.length > 0, { error: "sms channel 'config.to' has no recipients" })
  .refine((c) => (c.from === undefined) !== (c.messaging_service_sid === undefined), {
    error: "sms channel needs exactly one of 'config.from' and 'config.messaging_service_sid'",
  });

/** SMS channel secret: the Twilio account SID and auth token. */
export const smsSecretSchema = z.object({
  account_sid: z.string({ error: "sms channel 'secret.account_sid' must be a string" })
    .regex(/^AC[0-9a-fA-F]{32}$/, {
      error: "sms channel 'secret.account_sid' must be a Twilio Account SID",
    }),
  auth_token: z.string({ error: "sms channel 'secret.auth_token' must be a string" })
    .min(1, { error: "sms channel 'secret.auth_token' is empty" }),
});

// ---------------------------------------------------------------------------------------------
// The text

/** GSM 03.38 basic characters (1 septet each). */
const GSM7_BASIC = '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?' +
  '¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà';
/** GSM 03.38 extension characters (an escape plus one septet: 2 each). */
const GSM7_EXTENDED = '^{}\\[~]|€';

/**
 * The length of `text` in GSM-7 septets, or null when it has a character GSM-7 lacks (then the
 * message is sent as UCS-2, 70 characters a segment).
 */
export function gsm7Length(text: string): number | null {
  let n = 0;
  for (const ch of text) {
    if (GSM7_BASIC.includes(ch)) n += 1;
    else if (GSM7_EXTENDED.includes(ch)) n += 2;
    else return null;
  }
  return n;
}

/** How many SMS segments `text` takes (160/153 GSM-7 septets, 70/67 UCS-2 code units). */
export function smsSegments(text: string): number {
  const septets = gsm7Length(text);
  if (septets !== null) return septets <= 160 ? 1 : Math.ceil(septets / 153);
  return text.length <= 70 ? 1 : Math.ceil(text.length / 67);
}

/**
 * `text` cut to at most `max` UTF-16 code units (Twilio counts characters so), never inside a
 * surrogate pair, with "..." (GSM-7) at the end when something was cut.
 */
export function clipSms(text: string, max: number): string {
  if (text.length <= max) return text;
  if (max <= 3) return '...'.slice(0, Math.max(0, max));
  let end = max - 3;
  const code = text.charCodeAt(end - 1);
  // A high surrogate as the last kept unit would be half a character: drop it too.
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end).trimEnd()}...`;
}

/** The short reference an SMS carries: 8 hex digits of the notification id. */
export function smsReference(notificationId: string): string {
  const hex = notificationId.replace(/[^0-9a-fA-F]/g, '').toLowerCase();
  return hex.slice(0, 8).padEnd(8, '0');
}

/** The marker a retry looks for in the bodies of messages already sent: `Ref 1a2b3c4d`. */
export function referenceMarker(ref: string): string {
  return `Ref ${ref}`;
}

function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Math.round(n * 100) / 100);
}

/** "queue backlog on emails = 120 (threshold 60)", the value in words where SQL gave them. */
function alertLine(a: Payload['alerts'][number], withValue: boolean): string {
  const where = a.queue ? ` on ${a.queue}` : '';
  let value = '';
  if (withValue) {
    if (a.value_text) value = ` = ${a.value_text}`;
    else if (a.value !== null && a.value !== undefined) {
      value = ` = ${formatNumber(a.value)}`;
      if (a.threshold !== null && a.threshold !== undefined) {
        value += ` (threshold ${formatNumber(a.threshold)})`;
      }
    }
  }
  return oneLine(`${a.rule_name}${where}${value}`);
}

/** What a short text should fit in: one GSM-7 segment. */
export const SMS_TARGET_CHARS = 160;

/**
 * The SMS text of a notification: status, severity and project, the first alert's rule, queue and
 * value, how many more, the dashboard link and the reference. The head is shortened so the whole
 * stays within one segment where the link allows it; the link and the reference are never cut,
 * and nothing exceeds Twilio's 1 600 characters.
 *
 * `FIRING critical (acme): queue backlog on emails = 120 (threshold 60), +2 more https://… Ref 1a2b3c4d`
 */
export function renderSms(p: Payload, ref: string): string {
  const firing = p.alerts.filter((a) => a.state === 'firing');
  const resolved = p.alerts.filter((a) => a.state === 'resolved');
  const project = oneLine(p.project_id);
  let head: string;
  if (p.status === 'firing') {
    const severity = firing[0]?.severity ?? p.severity;
    const more = [
      firing.length > 1 ? `+${firing.length - 1} more` : '',
      resolved.length > 0 ? `${resolved.length} resolved` : '',
    ].filter(Boolean).join(', ');
    head = `FIRING ${severity} (${project}): ${firing[0] ? alertLine(firing[0], true) : ''}` +
      (more ? `, ${more}` : '');
  } else {
    const first = resolved[0] ?? p.alerts[0];
    head = `RESOLVED (${project}): ${first ? alertLine(first, false) : ''}` +
      (resolved.length > 1 ? `, +${resolved.length - 1} more` : '');
  }
  const link = p.dashboard_url && p.dashboard_url.length <= 500 ? p.dashboard_url : null;
  const tail = `${link ? ` ${link}` : ''} ${referenceMarker(ref)}`;
  const septets = gsm7Length(head + tail);
  const target = septets === null ? 70 : SMS_TARGET_CHARS;
  // Extended GSM-7 characters count twice: measure in septets, cut in characters.
  const overshoot = septets === null ? head.length + tail.length - target : septets - target;
  const headRoom = Math.max(60, head.length - Math.max(0, overshoot));
  return clipSms(
    `${clipSms(head, Math.min(headRoom, SMS_MAX_CHARS - tail.length))}${tail}`,
    SMS_MAX_CHARS,
  );
}

// ---------------------------------------------------------------------------------------------
// The request and its answer

/** `application/x-www-form-urlencoded` of `fields`, in their order (UTF-8, spaces as `+`). */
export function formEncode(fields: Record<string, string>): string {
  return new URLSearchParams(Object.entries(fields)).toString();
}

/** Twilio's error body. */
export interface TwilioError {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

/** "twilio 400 21211: The 'To' number … is not a valid phone number." */
function describeTwilio(status: number, body: string): string {
  const e = jsonObject<TwilioError>(body);
  const code = typeof e?.code === 'number' ? ` ${e.code}` : '';
  const message = typeof e?.message === 'string' && e.message
    ? e.message
    : body.trim()
    ? body
    : 'no message';
  return `twilio ${status}${code}: ${clip(message, 240)}`;
}

/**
 * Twilio's answer to one create-message request: 2xx is sent; 429 (20429) waits for Retry-After
 * or backs off; 5xx and 408 retry; 400 21611 (the sender's queue is full) retries; every other 4xx
 * — 400 invalid number or parameter, 401 20003 authentication, 403, 404 unknown account — is
 * permanent: sending the same request again cannot succeed.
 */
export function classifyTwilio(status: number, body: string, retryAfterMs: number | null): Outcome {
  const error = describeTwilio(status, body);
  if (status >= 200 && status < 300) {
    return { status: 'sent', httpStatus: status, providerMessageId: null };
  }
  if (status === 429 || status >= 500 || status === 408) {
    return { status: 'retry', httpStatus: status, error, retryAfterMs };
  }
  if (status === 400 && jsonObject<TwilioError>(body)?.code === 21611) {
    return { status: 'retry', httpStatus: status, error, retryAfterMs };
  }
  return { status: 'dead', httpStatus: status, error };
}

interface TwilioTarget {
  base: string;
  accountSid: string;
  authorization: string;
}

function messagesUrl(t: TwilioTarget): string {
  return `${t.base}/2010-04-01/Accounts/${encodeURIComponent(t.accountSid)}/Messages.json`;
}

/** A message as Twilio lists it (only the fields queue-alert reads). */
interface ListedMessage {
  sid?: string;
  body?: string;
  direction?: string;
  status?: string;
}

/**
 * The SID of a message an earlier attempt sent to `to` (found by the reference in its body among
 * the number's newest messages), null when there is none, or the outcome to return when Twilio
 * could not be asked. Failed and canceled messages never reached the number and do not count.
 */
async function findSent(
  t: TwilioTarget,
  to: string,
  from: string | undefined,
  marker: string,
  ctx: SendContext,
): Promise<string | null | Outcome> {
  const query = new URLSearchParams({ To: to, PageSize: String(SMS_DEDUP_PAGE_SIZE) });
  if (from) query.set('From', from);
  try {
    const { res, text } = await withTimeout(ctx.timeoutMs, async (signal) => {
      const res = await ctx.fetch(`${messagesUrl(t)}?${query}`, {
        method: 'GET',
        headers: { authorization: t.authorization, accept: 'application/json' },
        signal,
      });
      return { res, text: await readBody(res, 200_000) };
    });
    if (res.status !== 200) {
      const o = classifyTwilio(
        res.status,
        text,
        parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
      );
      if (o.status === 'sent') {
        return {
          status: 'retry',
          httpStatus: res.status,
          error: `twilio list ${res.status}`,
          retryAfterMs: null,
        };
      }
      return { ...o, error: `checking what was sent: ${o.error}` };
    }
    const list = (JSON.parse(text) as { messages?: ListedMessage[] }).messages ?? [];
    const hit = list.find((m) =>
      typeof m.body === 'string' && m.body.includes(marker) &&
      (m.direction ?? 'outbound-api').startsWith('outbound') &&
      m.status !== 'failed' && m.status !== 'canceled'
    );
    return hit ? hit.sid ?? 'unknown' : null;
  } catch (e) {
    return {
      status: 'retry',
      httpStatus: null,
      error: `checking what was sent: twilio ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}

/** Posts one message; the outcome, with Twilio's SID when it was created. */
async function createMessage(
  t: TwilioTarget,
  fields: Record<string, string>,
  ctx: SendContext,
): Promise<Outcome> {
  try {
    const { res, text } = await withTimeout(ctx.timeoutMs, async (signal) => {
      const res = await ctx.fetch(messagesUrl(t), {
        method: 'POST',
        headers: {
          authorization: t.authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: formEncode(fields),
        signal,
      });
      return { res, text: await readBody(res, 200_000) };
    });
    const o = classifyTwilio(
      res.status,
      text,
      parseRetryAfter(res.headers.get('retry-after'), ctx.now()),
    );
    if (o.status !== 'sent') return o;
    let sid: string | null = null;
    try {
      const v = JSON.parse(text) as { sid?: unknown };
      sid = typeof v.sid === 'string' ? clip(v.sid, 64) : null;
    } catch { /* a 2xx without JSON still created the message */ }
    return { ...o, providerMessageId: sid };
  } catch (e) {
    return {
      status: 'retry',
      httpStatus: null,
      error: `twilio ${errorText(e)}`,
      retryAfterMs: null,
    };
  }
}

/**
 * Texts every recipient of an sms channel, one request each, paced per sender. A row claimed
 * again (attempts > 1: an earlier attempt crashed, timed out or was cut short) first asks Twilio
 * which recipients already got this notification — its reference is in the body — and skips them;
 * when Twilio cannot be asked, nothing is sent and the row is retried. Recipients are texted in
 * order; a retryable answer stops the round (the rest go on the next attempt), a permanent one for
 * one number is recorded and the others are still texted, and an answer about the account (401,
 * 403, 404) stops everything.
 */
export async function sendSms(row: Claimed, p: Payload, ctx: SendContext): Promise<Outcome> {
  const config = smsConfigSchema.safeParse(row.config);
  if (!config.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(config.error) };
  }
  const secret = smsSecretSchema.safeParse(row.secret);
  if (!secret.success) {
    return { status: 'dead', httpStatus: null, error: describeZodError(secret.error) };
  }
  const { to, from, messaging_service_sid: service } = config.data;
  const t: TwilioTarget = {
    base: (ctx.twilioBaseUrl ?? TWILIO_API_BASE_URL).replace(/\/+$/, ''),
    accountSid: secret.data.account_sid,
    authorization: `Basic ${btoa(`${secret.data.account_sid}:${secret.data.auth_token}`)}`,
  };
  const ref = smsReference(row.id);
  const body = renderSms(p, ref);
  const sender = from ?? service!;

  const sids = new Map<string, string>();
  if (row.attempts > 1) {
    for (const number of to) {
      const found = await findSent(t, number, from, referenceMarker(ref), ctx);
      if (found !== null && typeof found === 'object') return found;
      if (found !== null) sids.set(number, found);
    }
  }

  const failures: string[] = [];
  let failedStatus: number | null = null;
  let stop: Exclude<Outcome, { status: 'sent' }> | null = null;
  let attempted = 0;
  for (const number of to) {
    if (sids.has(number)) continue;
    if (
      !(await takeTurn(ctx, `sms:${t.accountSid}:${sender}`, ctx.smsIntervalMs ?? SMS_INTERVAL_MS))
    ) {
      if (attempted === 0 && sids.size === 0) return RELEASED;
      stop = {
        status: 'retry',
        httpStatus: null,
        error: 'not every recipient got a turn before the lease would end',
        retryAfterMs: 0,
      };
      break;
    }
    attempted++;
    const o = await createMessage(t, {
      To: number,
      ...(from ? { From: from } : { MessagingServiceSid: service! }),
      Body: body,
    }, ctx);
    if (o.status === 'sent') {
      sids.set(number, o.providerMessageId ?? 'unknown');
    } else if (o.status === 'retry') {
      stop = o;
      break;
    } else if (o.httpStatus === 401 || o.httpStatus === 403 || o.httpStatus === 404) {
      stop = o;
      break;
    } else {
      failures.push(`${number}: ${o.error}`);
      failedStatus = o.httpStatus;
    }
  }
  const done = `sent to ${sids.size} of ${to.length}`;
  if (stop) {
    const error = sids.size > 0 || failures.length > 0
      ? clip(`${stop.error} (${done}${failures.length ? `; ${failures.join('; ')}` : ''})`, 600)
      : stop.error;
    return { ...stop, error };
  }
  if (failures.length > 0) {
    return {
      status: 'dead',
      httpStatus: failedStatus,
      error: clip(`${failures.join('; ')} (${done})`, 600),
    };
  }
  return {
    status: 'sent',
    httpStatus: 201,
    providerMessageId: to.map((n) => sids.get(n)).join(','),
  };
}
