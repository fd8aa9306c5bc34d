/**
 * Turns a notification payload into what each channel sends: an email (subject, HTML, text), a
 * Slack message (Block Kit plus a `text` fallback) and the versioned webhook body. Pure functions
 * of the payload: the same payload always renders the same bytes, which Resend's idempotency
 * check relies on (a retried key with a different body is refused).
 * @module
 */
import type { Alert, Payload } from './payload.ts';

/** At most this many alerts are listed one by one; the rest are summarised as "and N more". */
export const MAX_LISTED_ALERTS = 10;

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

/** Escapes text for Slack mrkdwn (Slack requires &, < and > escaped; the rest is literal). */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function oneLine(text: string): string {
  // deno-lint-ignore no-control-regex
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
}

/** "emails (pgboss:pgboss_v10)" — the queue and where it lives; "monitor" for monitor-wide alerts. */
export function queueLabel(a: Alert): string {
  if (!a.queue) return a.source ? `(all ${a.source} queues)` : 'monitor';
  const where = a.source
    ? a.source_schema && a.source_schema !== a.source && a.source_schema !== 'pgmq'
      ? `${a.source}:${a.source_schema}`
      : a.source
    : null;
  return where ? `${a.queue} (${where})` : a.queue;
}

function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined) return '–';
  if (Number.isInteger(n)) return String(n);
  return String(Math.round(n * 100) / 100);
}

/** "value 120 (threshold 60)" or "" when neither is known. */
export function valueText(a: Alert): string {
  const shown = a.value_text ??
    (a.value === null || a.value === undefined ? null : formatNumber(a.value));
  if (shown === null) return '';
  return a.threshold === null || a.threshold === undefined || a.value_text
    ? `value ${shown}`
    : `value ${shown} (threshold ${formatNumber(a.threshold)})`;
}

/** The summary line SQL templated, or one built from the rule and queue. */
export function alertSummary(a: Alert): string {
  return oneLine(a.summary ?? `${a.rule_name} on ${queueLabel(a)}`);
}

/** "since <fired_at>" for a firing alert, "resolved <resolved_at>" for a resolved one. */
function since(a: Alert): string | null {
  if (a.state === 'resolved') return a.resolved_at ? `resolved ${a.resolved_at}` : null;
  const at = a.fired_at ?? a.started_at;
  return at ? `since ${at}` : null;
}

/** What the notification is about: the rule when all alerts share one, else "N alerts". */
export function title(p: Payload): string {
  const names = [...new Set(p.alerts.map((a) => a.rule_name))];
  if (names.length === 1) {
    const queues = [...new Set(p.alerts.map(queueLabel))];
    return oneLine(queues.length === 1 ? `${names[0]} on ${queues[0]}` : names[0]);
  }
  return `${p.alerts.length} alerts`;
}

/** `[FIRING:3] critical — queue backlog in project acme`. */
export function subject(p: Payload): string {
  const count = p.status === 'firing' ? p.counts.firing : p.counts.resolved;
  const status = p.status === 'firing' ? 'FIRING' : 'RESOLVED';
  const s = `[${status}:${count}] ${p.severity} — ${title(p)} in project ${oneLine(p.project_id)}`;
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}

/** A rendered email. */
export interface RenderedEmail {
  subject: string;
  html: string;
  text: string;
}

const SEVERITY_COLOUR = { critical: '#b91c1c', warning: '#b45309', info: '#1d4ed8' } as const;

/** Renders the email: a table of alerts in HTML, the same content as plain text. */
export function renderEmail(p: Payload): RenderedEmail {
  const listed = p.alerts.slice(0, MAX_LISTED_ALERTS);
  const more = p.alerts.length - listed.length;
  const heading = p.status === 'firing'
    ? `${p.counts.firing} firing${p.counts.resolved ? `, ${p.counts.resolved} resolved` : ''}`
    : `${p.counts.resolved} resolved`;

  const textLines = [
    subject(p),
    '',
    `${heading} in project ${p.project_id}.`,
    '',
    ...listed.map((a) => {
      const parts = [`- [${a.state.toUpperCase()}] ${a.severity} ${alertSummary(a)}`];
      const detail = [queueLabel(a), valueText(a), since(a) ?? '']
        .filter(Boolean)
        .join(' · ');
      parts.push(`  ${detail}`);
      if (a.runbook_url) parts.push(`  Runbook: ${a.runbook_url}`);
      return parts.join('\n');
    }),
    ...(more > 0 ? [`- and ${more} more`] : []),
    '',
    ...(p.dashboard_url ? [`Dashboard: ${p.dashboard_url}`, ''] : []),
    `Notification ${p.notification_id ?? ''}`.trim(),
  ];

  const colour = p.status === 'resolved' ? '#15803d' : SEVERITY_COLOUR[p.severity];
  const rows = listed
    .map((a) => {
      const stateColour = a.state === 'resolved' ? '#15803d' : SEVERITY_COLOUR[a.severity];
      const runbook = a.runbook_url ? ` <a href="${escapeHtml(a.runbook_url)}">Runbook</a>` : '';
      return `<tr>` +
        `<td style="padding:6px 8px;color:${stateColour};font-weight:600">` +
        `${escapeHtml(a.state.toUpperCase())}</td>` +
        `<td style="padding:6px 8px">${escapeHtml(a.severity)}</td>` +
        `<td style="padding:6px 8px">${escapeHtml(alertSummary(a))}${runbook}<br>` +
        `<span style="color:#555">${escapeHtml(queueLabel(a))}` +
        `${valueText(a) ? ` · ${escapeHtml(valueText(a))}` : ''}` +
        `${since(a) ? ` · ${escapeHtml(since(a)!)}` : ''}</span></td>` +
        `</tr>`;
    })
    .join('');
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;color:#111">` +
    `<h2 style="color:${colour};margin:0 0 8px">${escapeHtml(subject(p))}</h2>` +
    `<p>${escapeHtml(heading)} in project <b>${escapeHtml(p.project_id)}</b>.</p>` +
    `<table style="border-collapse:collapse">${rows}</table>` +
    (more > 0 ? `<p>and ${more} more</p>` : '') +
    (p.dashboard_url
      ? `<p><a href="${escapeHtml(p.dashboard_url)}">Open the dashboard</a></p>`
      : '') +
    `<p style="color:#777;font-size:12px">Queue Health notification ` +
    `${escapeHtml(p.notification_id ?? '')}</p></body></html>`;

  return { subject: subject(p), html, text: textLines.join('\n') };
}

/** A Slack incoming-webhook message. */
export interface SlackMessage {
  text: string;
  blocks: Record<string, unknown>[];
}

const SLACK_EMOJI = {
  critical: ':red_circle:',
  warning: ':large_orange_circle:',
  info: ':large_blue_circle:',
  resolved: ':white_check_mark:',
} as const;

function slackLink(url: string, label: string): string {
  return `<${url.replace(/>/g, '%3E').replace(/\|/g, '%7C')}|${escapeSlack(label)}>`;
}

/**
 * Renders a Slack message: a header that says FIRING or RESOLVED, one section per listed alert
 * (emoji per state and severity, queue, value, runbook link), "and N more", a dashboard button.
 * `text` is the fallback shown in notifications and by clients without blocks.
 */
export function renderSlack(p: Payload): SlackMessage {
  const listed = p.alerts.slice(0, MAX_LISTED_ALERTS);
  const more = p.alerts.length - listed.length;
  const headEmoji = p.status === 'resolved'
    ? '✅'
    : p.severity === 'critical'
    ? '🔴'
    : p.severity === 'warning'
    ? '🟠'
    : '🔵';
  const header = `${headEmoji} ${subject(p)}`;
  const blocks: Record<string, unknown>[] = [
    {
      type: 'header',
      text: { type: 'plain_text', text: header.slice(0, 150), emoji: true },
    },
  ];
  for (const a of listed) {
    const emoji = a.state === 'resolved' ? SLACK_EMOJI.resolved : SLACK_EMOJI[a.severity];
    const lines = [
      `${emoji} *${a.state === 'resolved' ? 'Resolved' : 'Firing'}* · ${
        escapeSlack(a.severity)
      } · ` +
      `*${escapeSlack(alertSummary(a))}*`,
      [
        `\`${escapeSlack(queueLabel(a)).replace(/`/g, "'")}\``,
        valueText(a),
        since(a) ?? '',
        a.runbook_url ? slackLink(a.runbook_url, 'Runbook') : '',
      ]
        .filter(Boolean)
        .join(' · '),
    ];
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: lines.join('\n').slice(0, 3000) },
    });
  }
  if (more > 0) {
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `and ${more} more` }],
    });
  }
  blocks.push({
    type: 'context',
    elements: [{
      type: 'mrkdwn',
      text: escapeSlack(
        `project ${p.project_id} · ${p.counts.firing} firing · ${p.counts.resolved} resolved`,
      ),
    }],
  });
  if (p.dashboard_url) {
    blocks.push({
      type: 'actions',
      elements: [{
        type: 'button',
        text: { type: 'plain_text', text: 'Open dashboard' },
        url: p.dashboard_url,
      }],
    });
  }
  const textLines = [
    subject(p),
    ...listed.map((a) => `• ${a.state === 'resolved' ? 'resolved' : 'firing'}: ${alertSummary(a)}`),
    ...(more > 0 ? [`and ${more} more`] : []),
  ];
  return { text: escapeSlack(textLines.join('\n')).slice(0, 3000), blocks };
}

/** Version of the webhook body; bumped only for incompatible changes. */
export const WEBHOOK_VERSION = '1';

/** The JSON body a webhook channel receives (documented in docs/alerts.md). */
export interface WebhookBody {
  version: typeof WEBHOOK_VERSION;
  id: string;
  type: 'queue_health.alert';
  project_id: string;
  channel: { id: string | null; name: string | null };
  status: 'firing' | 'resolved';
  severity: 'info' | 'warning' | 'critical';
  counts: { firing: number; resolved: number };
  summary: string;
  alerts: {
    alert_id: string | null;
    rule_id: string | null;
    rule_name: string;
    condition: string | null;
    severity: 'info' | 'warning' | 'critical';
    state: 'firing' | 'resolved';
    source: string | null;
    source_schema: string | null;
    queue: string | null;
    value: number | null;
    value_text: string | null;
    threshold: number | null;
    started_at: string | null;
    fired_at: string | null;
    resolved_at: string | null;
    summary: string;
    runbook_url: string | null;
    queue_labels: Record<string, unknown>;
  }[];
  dashboard_url: string | null;
}

/** Builds the webhook body. Every alert is included (no cap): machines want the whole list. */
export function renderWebhook(id: string, channelId: string, p: Payload): WebhookBody {
  return {
    version: WEBHOOK_VERSION,
    id,
    type: 'queue_health.alert',
    project_id: p.project_id,
    channel: { id: p.channel?.id ?? channelId, name: p.channel?.name ?? null },
    status: p.status,
    severity: p.severity,
    counts: p.counts,
    summary: subject(p),
    alerts: p.alerts.map((a) => ({
      alert_id: a.alert_id ?? null,
      rule_id: a.rule_id ?? null,
      rule_name: a.rule_name,
      condition: a.condition ?? null,
      severity: a.severity,
      state: a.state,
      source: a.source ?? null,
      source_schema: a.source_schema ?? null,
      queue: a.queue ?? null,
      value: a.value ?? null,
      value_text: a.value_text ?? null,
      threshold: a.threshold ?? null,
      started_at: a.started_at ?? null,
      fired_at: a.fired_at ?? null,
      resolved_at: a.resolved_at ?? null,
      summary: alertSummary(a),
      runbook_url: a.runbook_url ?? null,
      queue_labels: a.queue_labels ?? {},
    })),
    dashboard_url: p.dashboard_url ?? null,
  };
}
