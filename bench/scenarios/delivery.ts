/**
 * Scenario 7: delivery throughput. Notifications for several Slack webhooks, one email channel
 * (Resend) and one signed-webhook channel are put in the outbox; queue-alert is invoked until the
 * outbox is empty, two invocations at a time. Reported: notifications per second per kind, and
 * whether Slack's pacing (about one message per second per webhook) held at the receiver across
 * the overlapping invocations.
 *
 * @module
 */
import { type Context, ensureBenchProject, PROJECT, sleep } from '../lib/context.ts';
import {
  createChannel,
  foreignDueNotifications,
  forgetBenchAlerting,
  startLocalReceivers,
} from '../lib/alerting.ts';
import { hasFunctionHandler, serveFunctions } from '../lib/functions.ts';
import { fmt } from '../lib/stats.ts';

const S = '7 delivery throughput';

function payload(channel: { id: string; name: string; kind: string }, i: number) {
  return {
    v: 1,
    project_id: PROJECT,
    channel,
    status: 'firing',
    severity: 'warning',
    counts: { firing: 1, resolved: 0 },
    alerts: [{
      rule_name: 'qhbench delivery',
      condition: 'ready',
      severity: 'warning',
      state: 'firing',
      source: 'pgmq',
      source_schema: 'pgmq',
      queue: `qhbench_delivery_${i}`,
      value: 25,
      threshold: 20,
      summary: `bench notification ${i}`,
    }],
    dashboard_url: null,
  };
}

/** Runs scenario 7. */
export async function delivery(ctx: Context): Promise<void> {
  if (!(await ctx.hasFunction('queue_health.claim_notifications(integer,interval,timestamptz)'))) {
    ctx.report.skip(
      S,
      'all',
      'queue_health.claim_notifications() is not installed (ALERTING 100300)',
    );
    return;
  }
  if (!hasFunctionHandler('queue-alert')) {
    ctx.report.skip(S, 'all', 'supabase/functions/queue-alert/handler.ts is missing');
    return;
  }
  await ensureBenchProject(ctx);
  const sql = ctx.sql;
  const receivers = await startLocalReceivers();
  const fns = await serveFunctions(ctx, { RESEND_BASE_URL: `${receivers.url}/resend` });
  const details: Record<string, unknown> = {};
  try {
    await forgetBenchAlerting(ctx);
    const foreign = await foreignDueNotifications(ctx);
    const channels: { id: string; name: string; kind: string; path: string }[] = [];
    for (let i = 0; i < ctx.sizes.deliverySlackChannels; i++) {
      const name = `qhbench-slack-${i}`;
      const path = `/qhbench-d${i}`;
      const id = await createChannel(ctx, name, 'slack', {}, {
        url: `${receivers.url}/slack${path}`,
      });
      channels.push({ id, name, kind: 'slack', path });
    }
    channels.push({
      id: await createChannel(
        ctx,
        'qhbench-email',
        'email',
        { to: ['oncall@queue-health.local'] },
        {},
      ),
      name: 'qhbench-email',
      kind: 'email',
      path: '/emails',
    });
    channels.push({
      id: await createChannel(ctx, 'qhbench-webhook', 'webhook', {
        url: `${receivers.url}/webhook/qhbench`,
      }, { signing_secret: 'qhbench-signing-secret-0123456789' }),
      name: 'qhbench-webhook',
      kind: 'webhook',
      path: '/qhbench',
    });
    const perChannel = Math.max(1, Math.ceil(ctx.sizes.deliveryNotifications / channels.length));
    let i = 0;
    for (const c of channels) {
      for (let k = 0; k < perChannel; k++, i++) {
        await sql`insert into queue_health.notification (project_id, channel_id, group_key, payload)
          values (${PROJECT}, ${c.id}, ${`${PROJECT}/${c.id}`},
                  ${sql.json(payload({ id: c.id, name: c.name, kind: c.kind }, i) as never)})`;
      }
    }
    const total = i;
    const t0 = Date.now();
    const limitMs = ctx.quick ? 30_000 : 180_000;
    // Two invocations at a time, as the dispatcher's and a cron sweep's can overlap, each
    // claiming at most a quarter of the rows per batch: both send to every webhook at once, and
    // the pacing they share (queue_health.take_send_turn) must still space the messages.
    const parallel = 2;
    const batch = Math.max(1, Math.min(100, Math.ceil(total / (2 * parallel))));
    let invocations = 0;
    let left = total;
    while (left > 0 && Date.now() - t0 < limitMs) {
      await Promise.all(Array.from({ length: parallel }, async () => {
        const res = await fetch(`${fns.url}/functions/v1/queue-alert`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${fns.serviceRoleKey}`,
            'content-type': 'application/json',
          },
          body: JSON.stringify({ evaluate: false, limit: batch }),
        });
        await res.body?.cancel();
        invocations++;
      }));
      const [row] = await sql<{ left: number }[]>`
        select count(*)::int as left from queue_health.notification
        where project_id = ${PROJECT} and status not in ('sent', 'dead')`;
      left = row.left;
      if (left > 0) await sleep(50);
    }
    const seconds = (Date.now() - t0) / 1000;
    const [st] = await sql<{ sent: number; dead: number; failed: number }[]>`
      select count(*) filter (where status = 'sent')::int as sent,
             count(*) filter (where status = 'dead')::int as dead,
             count(*) filter (where status = 'failed')::int as failed
      from queue_health.notification where project_id = ${PROJECT}`;
    ctx.report.add({
      scenario: S,
      case:
        `${total} notifications: ${ctx.sizes.deliverySlackChannels} Slack webhooks, 1 email, 1 webhook`,
      metric: 'notifications/s through queue-alert',
      value: st.sent / seconds,
      unit: '/s',
      verdict: st.sent === total ? 'info' : 'missed',
      note: `${st.sent} sent, ${st.failed} failed, ${st.dead} dead in ${
        fmt(seconds)
      } s over ${invocations} invocations, ${parallel} at a time (${batch} rows a claim)${
        foreign ? `; ${foreign} other projects' due notifications were in the outbox too` : ''
      }`,
    });
    // Per kind: rate over the span of arrivals, and for Slack the smallest gap per webhook.
    const slackGaps: number[] = [];
    const perKind: Record<string, { n: number; span_s: number }> = {};
    for (const kind of ['slack', 'email', 'webhook'] as const) {
      const route = kind === 'email' ? 'resend' : kind;
      const got = receivers.received(route).filter((r) =>
        channels.some((c) => c.kind === kind && c.path === r.path)
      );
      const times = got.map((r) => Date.parse(r.received_at)).sort((a, b) => a - b);
      const span = times.length > 1 ? (times[times.length - 1] - times[0]) / 1000 : 0;
      perKind[kind] = { n: times.length, span_s: span };
      if (kind === 'slack') {
        for (const c of channels.filter((c) => c.kind === 'slack')) {
          const ts = got.filter((r) => r.path === c.path).map((r) => Date.parse(r.received_at))
            .sort(
              (a, b) => a - b,
            );
          for (let j = 1; j < ts.length; j++) slackGaps.push(ts[j] - ts[j - 1]);
        }
      }
      ctx.report.add({
        scenario: S,
        case: `${kind} (${times.length} received)`,
        metric: 'messages/s at the receiver',
        value: span > 0 ? (times.length - 1) / span : null,
        unit: '/s',
        verdict: 'info',
        note: kind === 'slack'
          ? `${ctx.sizes.deliverySlackChannels} webhooks paced at about 1/s each`
          : kind === 'email'
          ? 'Resend paced at QUEUE_ALERT_RESEND_INTERVAL_MS (500 ms)'
          : 'unpaced',
      });
    }
    if (slackGaps.length) {
      const minGap = Math.min(...slackGaps);
      ctx.report.add({
        scenario: S,
        case: 'Slack pacing per webhook',
        metric: 'smallest gap between two messages',
        value: minGap,
        unit: 'ms',
        goal: '≥ ~1000 ms (Slack: 1 message/s per webhook)',
        verdict: minGap >= 950 ? 'met' : 'missed',
        note: minGap >= 950
          ? `over ${slackGaps.length} consecutive pairs`
          : `${slackGaps.filter((g) => g < 950).length} of ${slackGaps.length} gaps under 950 ms`,
      });
    }
    details.per_kind = perKind;
    details.slack_gaps_ms = slackGaps;
    details.invocations = invocations;
  } finally {
    ctx.report.details['7_delivery'] = details;
    await fns.stop();
    await receivers.stop();
    await forgetBenchAlerting(ctx);
  }
}
