/**
 * Local stand-ins for Twilio's Messages API and PagerDuty's Events API v2, served by
 * local/receivers/server.ts under `/twilio` and `/pagerduty`. Each checks a request the way the
 * real API documents it and answers in its format, so queue-alert's SMS and PagerDuty senders are
 * tested against the documented contract (not against themselves):
 *
 * | request | answer |
 * | --- | --- |
 * | `POST /twilio/2010-04-01/Accounts/{AC…}/Messages.json` (form: `To`, `From` or `MessagingServiceSid`, `Body`) | `201` the message (`sid` `SM…`, `status: queued`); `401` 20003 without basic auth of that account SID (and, when set, the auth token); `400` 21604/21211 (`To` missing / not E.164, or Twilio's magic invalid number `+15005550001`), 21603 (no sender), 21602 (no `Body`), 21617 (`Body` over 1 600 characters) |
 * | `GET /twilio/2010-04-01/Accounts/{AC…}/Messages.json?To=&From=&PageSize=` | the account's messages, newest first, filtered, `{messages, page, page_size, …}` |
 * | `POST /pagerduty/v2/enqueue` (JSON) | `202 {status: "success", message: "Event processed", dedup_key}`; `400 {status: "invalid event", message: "Event object is invalid", errors: [..]}` for a bad routing key, action, dedup key or payload |
 *
 * Twilio's error body is `{code, message, more_info, status}`
 * (https://www.twilio.com/docs/usage/twilios-response); PagerDuty's answers are those of
 * PagerDuty/developer-docs, docs/events-API-v2. PagerDuty's dedup behaviour is kept too: the open
 * alerts per (routing key, dedup key) are in {@link OncallState.pagerDutyAlerts}.
 * @module
 */

/** What the emulators remember between requests. */
export interface OncallState {
  /** Messages created, per account SID, oldest first. */
  twilioMessages: Map<string, TwilioMessage[]>;
  /**
   * PagerDuty alerts by `routing_key/dedup_key`: the latest one's status, how many trigger events
   * it took, and how many alerts the key has opened (a trigger after a resolve opens a new one).
   */
  pagerDutyAlerts: Map<
    string,
    { status: 'triggered' | 'resolved'; triggers: number; opened: number }
  >;
}

/** A message as the Twilio stand-in keeps and lists it. */
export interface TwilioMessage {
  sid: string;
  account_sid: string;
  to: string;
  from: string | null;
  messaging_service_sid: string | null;
  body: string;
  status: string;
  direction: string;
  date_created: string;
  date_sent: string | null;
  num_segments: string;
  api_version: string;
  error_code: null;
  error_message: null;
  uri: string;
}

/** A fresh, empty state. */
export function oncallState(): OncallState {
  return { twilioMessages: new Map(), pagerDutyAlerts: new Map() };
}

/** What a handler reports back to the server for its record of the request. */
export interface Answer {
  response: Response;
  status: number;
  /** The provider's id of what was created (a message SID, a dedup key). */
  id?: string;
  /** The request body as fields (Twilio's form), when it is not JSON. */
  fields?: Record<string, string>;
}

function json(status: number, body: unknown): Answer {
  return {
    status,
    response: new Response(JSON.stringify(body), {
      status,
      headers: { 'content-type': 'application/json' },
    }),
  };
}

function hex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))]
    .map((b) => b.toString(16).padStart(2, '0')).join('');
}

function twilioError(status: number, code: number, message: string): Answer {
  return json(status, {
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  });
}

const E164 = /^\+[1-9][0-9]{1,14}$/;
/** Twilio's test-credential number that is always an invalid `To`. */
export const TWILIO_INVALID_TO = '+15005550001';

/** Options of the Twilio stand-in. */
export interface TwilioOptions {
  /** When set, only this auth token is accepted (else any non-empty one). */
  authToken?: string;
}

/** Handles `/twilio/<path>`. */
export function twilio(
  state: OncallState,
  path: string,
  req: Request,
  raw: string,
  options: TwilioOptions,
): Answer {
  const m = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/.exec(path);
  if (!m) return twilioError(404, 20404, 'The requested resource was not found');
  const account = decodeURIComponent(m[1]);
  const auth = /^Basic\s+(\S+)$/i.exec(req.headers.get('authorization') ?? '');
  let user = '';
  let token = '';
  try {
    [user, token] = auth ? atob(auth[1]).split(/:(.*)/s) : ['', ''];
  } catch { /* not base64: refused below */ }
  if (
    !auth || user !== account || !token || (options.authToken && token !== options.authToken)
  ) {
    return twilioError(401, 20003, 'Authenticate');
  }
  const url = new URL(req.url);
  const messages = state.twilioMessages.get(account) ?? [];
  if (req.method === 'GET') {
    const to = url.searchParams.get('To');
    const from = url.searchParams.get('From');
    const size = Math.min(1000, Math.max(1, Number(url.searchParams.get('PageSize') ?? 50) || 50));
    const list = messages.filter((x) => (!to || x.to === to) && (!from || x.from === from))
      .reverse().slice(0, size);
    const uri = `/2010-04-01/Accounts/${account}/Messages.json${url.search}`;
    return json(200, {
      messages: list,
      page: 0,
      page_size: size,
      start: 0,
      end: Math.max(0, list.length - 1),
      uri,
      first_page_uri: uri,
      next_page_uri: null,
      previous_page_uri: null,
    });
  }
  if (req.method !== 'POST') return twilioError(405, 20004, 'Method not allowed');
  if (!(req.headers.get('content-type') ?? '').startsWith('application/x-www-form-urlencoded')) {
    return twilioError(400, 21602, 'Message body is required.');
  }
  const fields = Object.fromEntries(new URLSearchParams(raw));
  const fail = (code: number, message: string) => ({ ...twilioError(400, code, message), fields });
  const to = fields.To ?? '';
  if (!to) return fail(21604, "A 'To' phone number is required.");
  if (!E164.test(to) || to === TWILIO_INVALID_TO) {
    return fail(21211, `Invalid 'To' Phone Number: ${to.slice(0, 20)}`);
  }
  const from = fields.From ?? null;
  const service = fields.MessagingServiceSid ?? null;
  if (!from && !service) return fail(21603, "A 'From' phone number is required.");
  if (from && !E164.test(from)) {
    return fail(
      21606,
      `The From phone number ${
        from.slice(0, 20)
      } is not a valid, SMS-capable inbound phone number or short code for your account.`,
    );
  }
  if (service && !/^MG[0-9a-fA-F]{32}$/.test(service)) {
    return fail(21701, 'The Messaging Service Sid is invalid.');
  }
  const body = fields.Body ?? '';
  if (!body) return fail(21602, 'Message body is required.');
  if (body.length > 1600) {
    return fail(21617, 'The concatenated message body exceeds the 1600 character limit.');
  }
  const sid = `SM${hex(16)}`;
  const message: TwilioMessage = {
    sid,
    account_sid: account,
    to,
    from,
    messaging_service_sid: service,
    body,
    status: 'queued',
    direction: 'outbound-api',
    date_created: new Date().toUTCString().replace('GMT', '+0000'),
    date_sent: null,
    num_segments: '1',
    api_version: '2010-04-01',
    error_code: null,
    error_message: null,
    uri: `/2010-04-01/Accounts/${account}/Messages/${sid}.json`,
  };
  messages.push(message);
  state.twilioMessages.set(account, messages);
  return { ...json(201, message), id: sid, fields };
}

const SEVERITIES = ['critical', 'error', 'warning', 'info'];
const ACTIONS = ['trigger', 'acknowledge', 'resolve'];

function invalid(errors: string[]): Answer {
  return json(400, { status: 'invalid event', message: 'Event object is invalid', errors });
}

/** Handles `/pagerduty/<path>`: `POST /v2/enqueue`. */
export function pagerDuty(state: OncallState, path: string, req: Request, raw: string): Answer {
  if (path !== '/v2/enqueue') return json(404, { status: 'not found', message: 'Not found' });
  if (req.method !== 'POST') return json(405, { status: 'error', message: 'Method not allowed' });
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(raw);
    if (!e || typeof e !== 'object' || Array.isArray(e)) throw new Error('not an object');
  } catch {
    return invalid(['Malformed JSON body']);
  }
  const errors: string[] = [];
  const key = typeof e.routing_key === 'string' ? e.routing_key : '';
  if (key.length !== 32) {
    errors.push("Length of 'routing_key' is incorrect (should be 32 characters)");
  }
  if (/[^A-Za-z0-9]/.test(key)) {
    errors.push("'routing_key' cannot contain non-alphanumeric characters.");
  }
  const action = e.event_action;
  if (typeof action !== 'string' || !ACTIONS.includes(action)) {
    errors.push(
      "'event_action' is missing or invalid (must be 'trigger', 'acknowledge' or 'resolve')",
    );
  }
  if (e.dedup_key !== undefined && (typeof e.dedup_key !== 'string' || e.dedup_key.length > 255)) {
    errors.push("'dedup_key' must be a string of at most 255 characters");
  }
  if (action !== 'trigger' && (typeof e.dedup_key !== 'string' || e.dedup_key === '')) {
    errors.push("'dedup_key' is required for acknowledge and resolve events");
  }
  if (action === 'trigger') {
    const p = e.payload as Record<string, unknown> | undefined;
    if (!p || typeof p !== 'object' || Array.isArray(p)) {
      errors.push("'payload' is missing or not an object");
    } else {
      if (typeof p.summary !== 'string' || p.summary.trim() === '') {
        errors.push("'payload.summary' is missing or blank");
      } else if (p.summary.length > 1024) {
        errors.push("'payload.summary' is too long (at most 1024 characters)");
      }
      if (typeof p.source !== 'string' || p.source.trim() === '') {
        errors.push("'payload.source' is missing or blank");
      }
      if (typeof p.severity !== 'string' || !SEVERITIES.includes(p.severity)) {
        errors.push(
          "'payload.severity' is invalid (must be one of critical, error, warning, info)",
        );
      }
      if (p.timestamp !== undefined && Number.isNaN(Date.parse(String(p.timestamp)))) {
        errors.push("'payload.timestamp' is not a valid ISO 8601 timestamp");
      }
      if (
        p.custom_details !== undefined &&
        (typeof p.custom_details !== 'object' || p.custom_details === null)
      ) {
        errors.push("'payload.custom_details' must be an object");
      }
    }
    if (
      e.links !== undefined && (!Array.isArray(e.links) ||
        e.links.some((l) => !l || typeof (l as { href?: unknown }).href !== 'string'))
    ) {
      errors.push("'links' must be an array of objects with 'href'");
    }
  }
  if (raw.length > 512 * 1024) errors.push('Event is larger than 512 KB');
  if (errors.length > 0) return invalid(errors);
  const dedup = typeof e.dedup_key === 'string' && e.dedup_key ? e.dedup_key : hex(16);
  const id = `${key}/${dedup}`;
  const alert = state.pagerDutyAlerts.get(id);
  if (action === 'trigger') {
    if (alert?.status === 'triggered') alert.triggers++;
    else {
      state.pagerDutyAlerts.set(id, {
        status: 'triggered',
        triggers: 1,
        opened: (alert?.opened ?? 0) + 1,
      });
    }
  } else if (action === 'resolve' && alert?.status === 'triggered') {
    alert.status = 'resolved';
  }
  return {
    ...json(202, { status: 'success', message: 'Event processed', dedup_key: dedup }),
    id: dedup,
  };
}
