/**
 * Alerting fixtures for the bench: local receivers, channels of the bench project, and cleanup.
 *
 * @module
 */
import type { Receivers } from '../../local/receivers/server.ts';
import { type Context, PROJECT } from './context.ts';

/** Starts the local Resend / Slack / webhook receivers on a free port of 127.0.0.1. */
export async function startLocalReceivers(): Promise<Receivers> {
  const { startReceivers } = await import('../../local/receivers/server.ts');
  return await startReceivers({ port: 0 });
}

/** Creates a channel of the bench project (with its secret) and returns its id. */
export async function createChannel(
  ctx: Context,
  name: string,
  kind: 'slack' | 'email' | 'webhook',
  config: Record<string, unknown>,
  secret: Record<string, unknown>,
): Promise<string> {
  return await ctx.sql.begin(async (tx) => {
    const [c] = await tx<{ id: string }[]>`
      insert into queue_health.channel (project_id, name, kind, config)
      values (${PROJECT}, ${name}, ${kind}, ${tx.json(config as never)}) returning id`;
    await tx`insert into queue_health.channel_secret (channel_id, secret)
      values (${c.id}, ${tx.json(secret as never)})`;
    return c.id;
  }) as string;
}

/** Rules, alerts, notifications and channels of the bench project go (its queues stay). */
export async function forgetBenchAlerting(ctx: Context): Promise<void> {
  for (const t of ['notification', 'notification_group', 'alert', 'alert_rule', 'channel']) {
    if (await ctx.hasRelation(`queue_health.${t}`)) {
      await ctx.sql`delete from queue_health.${ctx.sql(t)} where project_id = ${PROJECT}`;
    }
  }
}

/** Due notifications of other projects, which a queue-alert run would also deliver. */
export async function foreignDueNotifications(ctx: Context): Promise<number> {
  const [{ n }] = await ctx.sql<{ n: number }[]>`
    select count(*)::int as n from queue_health.notification
    where project_id <> ${PROJECT} and status in ('pending', 'failed', 'sending')`;
  return n;
}
