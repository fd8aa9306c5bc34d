/**
 * The demo workload behind `npm start`: real pg-boss (v12) queues with producers and consumers,
 * some failures, retries, dead letters, a growing backlog and a stalled queue — and captures every
 * few seconds so the dashboard moves (locally pg_cron 1.4 only has minute schedules).
 */
import { PgBoss } from 'pg-boss-12';
import { API_URL, databaseUrl, paths, RECEIVERS_URL } from './config.ts';
import { localKeys, userAccessToken } from './keys.ts';
import { log, say, StackError } from './log.ts';
import { connect } from './postgres.ts';
import { DEMO_USER_EMAIL, DEMO_USER_ID, DEMO_USER_PASSWORD } from './demo_user.ts';

/** The demo's pg-boss schema. */
export const DEMO_SCHEMA = 'pgboss';
export { DEMO_USER_EMAIL, DEMO_USER_ID, DEMO_USER_PASSWORD };

type Sql = ReturnType<typeof connect>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Creates the demo user (admin of the default project) and, unless `channels` is false, local
 * alert channels for the default project (so the demo's alerts land at the local receivers).
 *
 * The user is an email user of auth.users as Supabase Auth stores one: confirmed, with its
 * password as a bcrypt hash from pgcrypto (`extensions.crypt(…, extensions.gen_salt('bf', 10))`,
 * cost 10 as GoTrue's), so it signs in at the local Auth stand-in with DEMO_USER_EMAIL and
 * DEMO_USER_PASSWORD. A user left by an older stack gets these columns; a hash that already
 * matches the password is kept.
 */
export async function seedDemo(
  sql: Sql,
  opts: { channels?: boolean } = {},
): Promise<{ token: string }> {
  const appMeta = { provider: 'email', providers: ['email'] };
  await sql`
    insert into auth.users
      (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
       raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values ('00000000-0000-0000-0000-000000000000', ${DEMO_USER_ID}, 'authenticated',
            'authenticated', ${DEMO_USER_EMAIL},
            extensions.crypt(${DEMO_USER_PASSWORD}, extensions.gen_salt('bf', 10)), now(),
            ${sql.json(appMeta)}, ${sql.json({ email_verified: true })}, now(), now())
    on conflict (id) do update
      set aud = excluded.aud, role = excluded.role, email = excluded.email,
          email_confirmed_at = coalesce(auth.users.email_confirmed_at, excluded.email_confirmed_at),
          raw_app_meta_data = excluded.raw_app_meta_data,
          encrypted_password = case
            when auth.users.encrypted_password like '$2%' and auth.users.encrypted_password =
                 extensions.crypt(${DEMO_USER_PASSWORD}, auth.users.encrypted_password)
            then auth.users.encrypted_password
            else excluded.encrypted_password end`;
  await sql`
    insert into queue_health.project_member (project_id, user_id, role)
    values ('default', ${DEMO_USER_ID}, 'admin')
    on conflict do nothing`;
  if (opts.channels !== false) {
    await sql.begin(async (tx) => {
      const slack = await tx`
        select id from queue_health.channel where project_id = 'default' and name = 'demo-slack'`;
      if (slack.length === 0) {
        const [c] = await tx`
          insert into queue_health.channel (project_id, name, kind, config)
          values ('default', 'demo-slack', 'slack', '{}'::jsonb) returning id`;
        await tx`insert into queue_health.channel_secret (channel_id, secret)
          values (${c.id}, ${tx.json({ url: `${RECEIVERS_URL}/slack/demo` })})`;
        const [e] = await tx`
          insert into queue_health.channel (project_id, name, kind, config)
          values ('default', 'demo-email', 'email',
                  ${tx.json({ to: ['oncall@queue-health.local'] })}) returning id`;
        await tx`insert into queue_health.channel_secret (channel_id, secret)
          values (${e.id}, '{}'::jsonb)`;
        // Rules with channel_ids null notify every enabled channel of their project.
      }
    }).catch((e) => log.warn(`could not create the demo alert channels: ${e.message}`));
    await seedOncallChannels(sql).catch((e) =>
      log.warn(`could not create the demo sms and pagerduty channels: ${e.message}`)
    );
  }
  return { token: await userAccessToken(DEMO_USER_ID, DEMO_USER_EMAIL) };
}

/** The demo's Twilio account (the local stand-in takes any SID with a token). */
export const DEMO_TWILIO = Object.freeze({
  account_sid: `AC${'d3e0'.repeat(8)}`,
  auth_token: 'local-demo-auth-token',
  from: '+15005550006',
  to: ['+15005550100'],
});
/** The demo's PagerDuty integration key (32 characters). */
export const DEMO_PAGERDUTY_KEY = 'demoqueuehealthlocalpagerduty000';

/**
 * The demo's sms and pagerduty channels (issue 23), each created when missing, so a stack seeded
 * before they existed gets them too. Their requests go to the local Twilio and PagerDuty stand-ins
 * (TWILIO_API_BASE_URL and PAGERDUTY_EVENTS_URL in local/stack/env.ts).
 */
async function seedOncallChannels(sql: Sql): Promise<void> {
  const channels = [
    {
      name: 'demo-sms',
      kind: 'sms',
      config: { to: DEMO_TWILIO.to, from: DEMO_TWILIO.from },
      secret: { account_sid: DEMO_TWILIO.account_sid, auth_token: DEMO_TWILIO.auth_token },
    },
    {
      name: 'demo-pagerduty',
      kind: 'pagerduty',
      config: { source: 'queue-health-demo' },
      secret: { routing_key: DEMO_PAGERDUTY_KEY },
    },
  ];
  for (const c of channels) {
    await sql.begin(async (tx) => {
      const found = await tx`
        select 1 from queue_health.channel where project_id = 'default' and name = ${c.name}`;
      if (found.length > 0) return;
      const [row] = await tx`
        insert into queue_health.channel (project_id, name, kind, config)
        values ('default', ${c.name}, ${c.kind}, ${tx.json(c.config)}) returning id`;
      await tx`insert into queue_health.channel_secret (channel_id, secret)
        values (${row.id}, ${tx.json(c.secret)})`;
    });
  }
}

/** A running demo workload. */
export interface DemoWorkload {
  stop(): Promise<void>;
  stats(): Record<string, number>;
}

/**
 * The demo's queues and the flow status each shows once the flow window has passed
 * (docs/metrics.md "flow_status"; checked by local/test/demo_test.ts).
 */
export const DEMO_FLOWS = Object.freeze(
  {
    /** no producer, no consumer: runs at night */
    nightly_exports: 'idle',
    /** 4/s in, a fast consumer */
    emails: 'ok',
    /** 3/s in, 25 % failures retried once, then dead letters */
    webhooks: 'ok',
    /** the dead letters of webhooks, drained by a slow consumer */
    webhooks_dead: 'ok',
    /** 2/s in, a consumer that manages about 1.4/s */
    reports: 'falling_behind',
    /** a consumer that takes jobs and never finishes them */
    imports: 'stalled',
    /** a backlog and no consumer at all */
    thumbnails: 'stopped',
    /** a consumer that always fails: every job comes back 4 times (poison) */
    sms: 'redelivering',
  } as const,
);

/**
 * The demo's latency objectives (queue_health.queue_objective): the healthy emails queue keeps
 * its objective; reports, falling behind, burns its error budget (the detail view's burn chart).
 */
export const DEMO_OBJECTIVES = Object.freeze([
  { queue: 'emails', target_wait_s: 30, objective: 0.99 },
  { queue: 'reports', target_wait_s: 60, objective: 0.99 },
]);

/**
 * Starts producers and consumers on pg-boss queues, one flow status each (DEMO_FLOWS): emails
 * (healthy), webhooks (25 % failures, retries, dead letters), reports (slow consumer: backlog
 * grows), imports (taken, never finished: stalls), thumbnails (no consumer: stops), sms (always
 * fails: redelivers, poison) and nightly_exports (idle); sets DEMO_OBJECTIVES unless
 * `objectives` is false.
 */
export async function startDemoWorkload(
  opts: { url?: string; rate?: number; captureEverySeconds?: number; objectives?: boolean } = {},
): Promise<DemoWorkload> {
  const url = opts.url ?? databaseUrl();
  const rate = opts.rate ?? 1;
  // LISTEN/NOTIFY wakes the healthy queues' workers when a job is created, so their ready count
  // is 0 between jobs (with polling alone it never quite is, and they would look behind).
  const boss = new PgBoss({
    connectionString: url,
    schema: DEMO_SCHEMA,
    max: 5,
    useListenNotify: true,
  });
  boss.on('error', (e: Error) => log.warn(`pg-boss: ${e.message}`));
  await boss.start();
  const queues: [string, Record<string, unknown>][] = [
    ['emails', { retryLimit: 2, retryDelay: 1, notify: true }],
    ['webhooks_dead', { notify: true }],
    ['webhooks', { retryLimit: 1, retryDelay: 1, deadLetter: 'webhooks_dead', notify: true }],
    ['reports', { retryLimit: 0 }],
    ['thumbnails', { retryLimit: 0 }],
    // Jobs held by a hung consumer fail after an hour (pg-boss's expiry), then it takes more.
    ['imports', { retryLimit: 0, expireInSeconds: 3600 }],
    // Every attempt fails: 4 retries 5 s apart, so each job is taken 5 times (poison from the 3rd).
    ['sms', { retryLimit: 4, retryDelay: 5, retryBackoff: false }],
    ['nightly_exports', { retryLimit: 0 }],
  ];
  for (const [name, options] of queues) {
    if (!(await boss.getQueue(name))) await boss.createQueue(name, options);
    else if (options.notify) {
      // A queue from an older demo: turn on what this one needs.
      await boss.updateQueue(name, { notify: true }).catch((e: Error) =>
        log.warn(`pg-boss: updating queue ${name}: ${e.message}`)
      );
    }
  }
  const counts: Record<string, number> = { sent: 0, done: 0, failed: 0 };
  let stopping = false;
  const timers: ReturnType<typeof setInterval>[] = [];
  const produce = (queue: string, perSecond: number) => {
    timers.push(setInterval(() => {
      if (stopping) return;
      boss.send(queue, { at: Date.now(), n: counts.sent }).then(() => counts.sent++).catch(
        () => {},
      );
    }, Math.max(20, 1000 / (perSecond * rate))));
  };
  produce('emails', 4);
  produce('webhooks', 3);
  produce('reports', 2);
  produce('thumbnails', 0.5);
  produce('imports', 0.2);
  produce('sms', 0.5);

  const handle = (failRate: number, minMs: number, maxMs: number) => async (jobs: unknown[]) => {
    for (const _ of jobs) {
      await sleep(minMs + Math.random() * (maxMs - minMs));
      if (Math.random() < failRate) {
        counts.failed++;
        throw new Error('demo: simulated failure');
      }
      counts.done++;
    }
  };
  // Woken by NOTIFY; the 0.5 s poll picks up retries that come due.
  const fast = { pollingIntervalSeconds: 0.5, notifyPollingIntervalSeconds: 0.5 };
  await boss.work('emails', { batchSize: 5, ...fast }, handle(0.02, 5, 50));
  // Two workers: one job at a time each (a failure fails only its own job).
  await boss.work('webhooks', { batchSize: 1, localConcurrency: 2, ...fast }, handle(0.25, 10, 80));
  await boss.work('reports', { batchSize: 1, pollingIntervalSeconds: 1 }, handle(0, 500, 900));
  await boss.work('webhooks_dead', { batchSize: 5, ...fast }, handle(0, 5, 20));
  await boss.work('sms', { batchSize: 2, pollingIntervalSeconds: 0.5 }, handle(1, 5, 20));
  // A consumer that hangs: it holds its two jobs until the demo stops (or pg-boss expires them).
  let release = () => {};
  const released = new Promise<void>((resolve) => (release = resolve));
  await boss.work(
    'imports',
    { batchSize: 2, pollingIntervalSeconds: 1 },
    async (jobs: { signal?: AbortSignal }[]) => {
      await Promise.race([
        released,
        ...jobs.map((j) =>
          new Promise<void>((resolve) => j.signal?.addEventListener('abort', () => resolve()))
        ),
      ]);
      throw new Error('demo: the import never finished');
    },
  );

  // Captures every few seconds, for a database without pg_cron (npm start leaves this to the
  // queue-health-capture pg_cron job that queue_health.schedule() creates).
  const sql = connect(url, 2);
  if (opts.objectives !== false) {
    for (const o of DEMO_OBJECTIVES) {
      await sql`
        insert into queue_health.queue_objective
          (project_id, source, source_schema, queue_name, target_wait_s, objective)
        values ('default', 'pgboss', ${DEMO_SCHEMA}, ${o.queue}, ${o.target_wait_s}, ${o.objective})
        on conflict do nothing`.catch((e) =>
        log.warn(`could not set the demo objective on ${o.queue}: ${e.message}`)
      );
    }
  }
  const every = opts.captureEverySeconds ?? 5;
  let capturing: Promise<void> | null = null;
  if (every > 0) {
    timers.push(setInterval(() => {
      if (stopping || capturing) return;
      capturing = sql`select queue_health.capture()`.then(() => {}, (e: Error) => {
        if (!stopping) log.warn(`capture failed: ${e.message}`);
      }).finally(() => (capturing = null));
    }, every * 1000));
  }
  return {
    stats: () => ({ ...counts }),
    async stop() {
      stopping = true;
      for (const t of timers) clearInterval(t);
      release();
      await capturing;
      await boss.stop({ graceful: true, timeout: 5000 }).catch(() => {});
      await sql.end({ timeout: 2 });
    },
  };
}

/** The signals that end `npm start`: Ctrl-C, `kill` (and `npm run stack -- down`), a closed terminal. */
const STOP_SIGNALS: Deno.Signal[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/**
 * Runs `fn`; a failure or a hang past `timeoutMs` is reported and swallowed, so that the next
 * step of a shutdown runs whatever this one did.
 */
async function attempt(what: string, fn: () => unknown, timeoutMs = 20_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.resolve().then(fn),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${timeoutMs / 1000} s`)),
          timeoutMs,
        );
      }),
    ]);
  } catch (e) {
    log.warn(`${what} failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Removes every pg_cron job of the monitor (queue_health.unschedule()), on a connection of its own. */
async function unscheduleJobs(): Promise<void> {
  const sql = connect(databaseUrl(), 1);
  try {
    await sql`select queue_health.unschedule()`;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/**
 * `npm start`: brings the stack up, runs the demo until SIGINT (Ctrl-C), SIGTERM or SIGHUP, then
 * unschedules the monitor's pg_cron jobs and stops everything the stack started.
 *
 * The shutdown does not depend on stdout or stderr — after Ctrl-C on `npm start | tee log` both
 * are a pipe whose reader is gone — nor on any step before it: output is best effort (log.ts),
 * each step's failure is reported and the next runs. A signal during `up` stops it at its next
 * step and then stops what it started. A failing `up` leaves the stack as it is, to look at; a
 * failure after it stops the stack too.
 */
export async function runStart(): Promise<number> {
  const { down, runningDemo, up } = await import('./stack.ts');
  const other = runningDemo();
  if (other) {
    throw new StackError(
      `npm start already runs for this stack (pid ${other}). Stop it with Ctrl-C there, or ` +
        `'npm run stack -- down'.`,
    );
  }
  const stop = new AbortController();
  let signals = 0;
  const onSignal = () => {
    signals++;
    if (signals === 1) stop.abort(new StackError('interrupted'));
    else if (signals === 2) log.warn('still stopping the stack ... (once more to quit at once)');
    else {
      log.fail(`quit before the stack was stopped: 'npm run stack -- down' stops it`);
      Deno.exit(130);
    }
  };
  for (const sig of STOP_SIGNALS) Deno.addSignalListener(sig, onSignal);
  // A stray error in the workload (a pg-boss timer, a dropped connection) must not end the
  // process without the shutdown: report it and go on.
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    log.warn(`demo: ${e.message}`);
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    log.warn(`demo: ${e.reason instanceof Error ? e.reason.message : String(e.reason)}`);
  };
  globalThis.addEventListener('error', onError);
  globalThis.addEventListener('unhandledrejection', onRejection);

  await Deno.mkdir(paths.run, { recursive: true });
  await Deno.writeTextFile(paths.demoPid, `${Deno.pid}\n`);
  try {
    await up({ signal: stop.signal });
  } catch (e) {
    if (!stop.signal.aborted) {
      await Deno.remove(paths.demoPid).catch(() => {});
      throw e;
    }
  }

  let demo: DemoWorkload | null = null;
  let ticker: ReturnType<typeof setInterval> | undefined;
  let failure: unknown = null;
  try {
    if (!stop.signal.aborted) {
      demo = await runDemo(stop.signal);
      const workload = demo;
      ticker = setInterval(() => {
        const s = workload.stats();
        say(
          `${
            new Date().toISOString().slice(11, 19)
          }  sent ${s.sent}  done ${s.done}  failed ${s.failed}`,
        );
      }, 15_000);
      await new Promise((resolve) => {
        if (stop.signal.aborted) resolve(null);
        else stop.signal.addEventListener('abort', resolve, { once: true });
      });
    }
  } catch (e) {
    failure = e;
  } finally {
    say('\nstopping the demo and the stack ...');
    clearInterval(ticker);
    await attempt('unscheduling the pg_cron jobs', unscheduleJobs);
    if (demo) await attempt('stopping the demo workload', () => demo?.stop());
    await Deno.remove(paths.demoPid).catch(() => {});
    await attempt('stopping the stack', () => down(), 180_000);
  }
  if (failure) throw failure;
  return 0;
}

/** Seeds the demo user, schedules the captures, starts the workload and prints where things are. */
async function runDemo(signal: AbortSignal): Promise<DemoWorkload> {
  const sql = connect(databaseUrl(), 2);
  let token: string;
  let scheduled = '';
  try {
    ({ token } = await seedDemo(sql));
    try {
      const [{ schedule }] = await sql`select queue_health.schedule('10 seconds') as schedule`;
      scheduled = `${schedule.capture_schedule}: ${
        schedule.jobs.find((j: { name: string }) => j.name === 'queue-health-capture')?.command
      } (captures every ${schedule.capture_interval})`;
    } catch (e) {
      log.warn(`schedule() failed: ${(e as Error).message}`);
    }
  } finally {
    await sql.end({ timeout: 2 });
  }
  signal.throwIfAborted();
  // pg_cron captures every 10 s once scheduled; the demo captures itself only when it is not.
  const demo = await startDemoWorkload({ captureEverySeconds: scheduled ? 0 : 5 });
  const keys = await localKeys();
  say(`
Queue Health is running with a demo workload on real pg-boss queues (schema '${DEMO_SCHEMA}').

  Dashboard        ${API_URL}/
  Sign in as       ${DEMO_USER_EMAIL}  password ${DEMO_USER_PASSWORD}  (admin of project 'default')
  Health (JSON)    ${API_URL}/functions/v1/queue-health
  Prometheus       ${API_URL}/functions/v1/queue-health?format=prometheus
  Alerts received  ${RECEIVERS_URL}/_received
  Database         ${databaseUrl()}

  API keys, as on a hosted project that has both kinds (npm run stack -- status prints them too):
  Publishable      ${keys.publishable}  (browsers: createClient(url, key))
  Secret           ${keys.secret}  (servers only; refused from a browser)
  anon (legacy)    ${keys.anon}
  service_role (legacy)
                   ${keys.serviceRole}

  curl -H "apikey: ${keys.secret}" '${API_URL}/functions/v1/queue-health'

  Or paste the demo user's access token (valid 30 days):
  ${token}
${scheduled ? `\n  pg_cron schedule: ${scheduled}\n` : ''}
Queues, one flow status each (shown once the 10-minute flow window has passed):
  emails, webhooks, webhooks_dead  ok: keep up (webhooks: 25 % failures, retries, dead letters)
  reports          falling behind: a consumer slower than its producer; its latency objective
                   (oldest ready <= 60 s, 99 %) burns budget, emails' (<= 30 s) does not
  imports          stalled: taken, none complete
  thumbnails       stopped: a backlog and no consumer
  sms              redelivering: every job fails and comes back (poison)
  nightly_exports  idle
Ctrl-C stops everything.
`);
  return demo;
}
