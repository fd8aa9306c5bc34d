/**
 * What a provider's answer means for the outbox row: sent, retry later, or dead (retrying cannot
 * help). One table per provider, from their documented error codes.
 * @module
 */

/** The verdict on one delivery attempt. */
export type Outcome =
  | { status: 'sent'; httpStatus: number | null; providerMessageId: string | null }
  | {
    status: 'retry';
    httpStatus: number | null;
    error: string;
    /** Delay the receiver asked for (Retry-After), in ms; null means use backoff. */
    retryAfterMs: number | null;
    /** True when nothing was sent: the row is handed back because its lease would run out. */
    released?: boolean;
  }
  | { status: 'dead'; httpStatus: number | null; error: string };

/** One line: control characters and runs of whitespace become one space (SMS, PagerDuty). */
export function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

/** A provider's JSON answer as an object, or null when it is not one. */
export function jsonObject<T extends object>(text: string): T | null {
  try {
    const v = JSON.parse(text);
    return v && typeof v === 'object' ? v as T : null;
  } catch {
    return null;
  }
}

/** Shortens provider text for `last_error`. */
export function clip(text: string, max = 300): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/**
 * Slack incoming webhooks: 200 `ok` is sent; 429 waits for Retry-After; 5xx and 408 retry; every
 * other 4xx is permanent — `invalid_payload`/`no_text` (400), `invalid_token`/`action_prohibited`
 * (403), `no_service`/`channel_not_found` (404), `channel_is_archived` (410): the webhook was
 * revoked or the message can never be accepted, so retrying only delays the operator learning it.
 */
export function classifySlack(status: number, body: string, retryAfterMs: number | null): Outcome {
  const reason = clip(body) || `http ${status}`;
  if (status >= 200 && status < 300) {
    return { status: 'sent', httpStatus: status, providerMessageId: null };
  }
  if (status === 429) {
    return { status: 'retry', httpStatus: status, error: `slack 429 ${reason}`, retryAfterMs };
  }
  if (status >= 500 || status === 408) {
    return {
      status: 'retry',
      httpStatus: status,
      error: `slack ${status} ${reason}`,
      retryAfterMs,
    };
  }
  return { status: 'dead', httpStatus: status, error: `slack ${status} ${reason}` };
}

/** What the resend SDK returns as `error`. */
export interface ResendError {
  statusCode: number | null | undefined;
  name?: string;
  message?: string;
}

const RESEND_RETRYABLE_NAMES = new Set([
  'rate_limit_exceeded',
  'daily_quota_exceeded',
  'monthly_quota_exceeded',
  'concurrent_idempotent_requests',
  'application_error',
  'internal_server_error',
]);

/**
 * Resend: 429 (rate limit, quotas) waits for Retry-After; 409 `concurrent_idempotent_requests`,
 * 5xx and network errors (the SDK reports `statusCode: null`) retry; other 4xx — validation,
 * missing or invalid key, unknown sender domain, `invalid_idempotent_request` — are permanent.
 */
export function classifyResend(error: ResendError, retryAfterMs: number | null): Outcome {
  const code = typeof error.statusCode === 'number' ? error.statusCode : null;
  const name = error.name ?? 'error';
  const text = `resend ${code ?? 'network'} ${name}: ${clip(error.message ?? '')}`.trim();
  if (code === 429) return { status: 'retry', httpStatus: code, error: text, retryAfterMs };
  if (code === null) {
    return { status: 'retry', httpStatus: null, error: text, retryAfterMs: null };
  }
  if (code >= 500 || code === 408) {
    return { status: 'retry', httpStatus: code, error: text, retryAfterMs };
  }
  if (code === 409 && name === 'concurrent_idempotent_requests') {
    return { status: 'retry', httpStatus: code, error: text, retryAfterMs };
  }
  if (code >= 400) return { status: 'dead', httpStatus: code, error: text };
  // A non-error status reported as an error: trust the name.
  return RESEND_RETRYABLE_NAMES.has(name)
    ? { status: 'retry', httpStatus: code, error: text, retryAfterMs }
    : { status: 'dead', httpStatus: code, error: text };
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  410: 'Gone',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

function reasonPhrase(status: number): string {
  return REASONS[status] ? ` ${REASONS[status]}` : '';
}

/**
 * Signed webhooks: 2xx is sent; 429 waits for Retry-After; 410 Gone is permanent (the receiver
 * says the endpoint is gone for good); redirects are not followed and are permanent (point the
 * channel at the final URL); every other status retries with backoff until max attempts — a
 * receiver answering 401/404 is often mid-deploy or mid-rotation.
 */
export function classifyWebhook(
  status: number,
  body: string,
  retryAfterMs: number | null,
  providerMessageId: string | null,
): Outcome {
  // The response body is not kept: a webhook URL is set by project admins, and echoing what an
  // arbitrary (possibly internal) URL answered into channel_health would let them read it.
  void body;
  const reason = `webhook ${status}${reasonPhrase(status)}`;
  if (status >= 200 && status < 300) {
    return { status: 'sent', httpStatus: status, providerMessageId };
  }
  if (status === 410 || (status >= 300 && status < 400)) {
    return { status: 'dead', httpStatus: status, error: reason };
  }
  return {
    status: 'retry',
    httpStatus: status,
    error: reason,
    retryAfterMs: status === 429 || status === 503 ? retryAfterMs : null,
  };
}
