/**
 * The real Prometheus (Debian package `prometheus`, 2.42) against the test stack's queue-health
 * function: it scrapes `/functions/v1/queue-health` with a project's scrape token in its
 * `authorization` block (it asks for OpenMetrics and gzip first, so both are parsed by
 * Prometheus itself), loads the shipped rules, and answers `rate(queue_health_completed_total[1m])`
 * for a pgmq fixture queue this test keeps busy. Before that, the classic text exposition the
 * function serves (odd queue names included) passes `promtool check metrics`, and every metric
 * the Grafana dashboard queries is in it. Needs the stack (DATABASE_URL, the functions server on
 * QH_API_PORT) and `prometheus`/`promtool` on PATH; every wait is bounded; Prometheus is killed at
 * the end.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { API_URL, ROOT } from '../stack/config.ts';
import { connect, type Sql } from './db.ts';
import { createPgmqQueue } from './fixture.ts';
import { sleep } from './wait.ts';
import { parseExposition } from '../../supabase/functions/queue-health/exposition_parser.ts';
import {
  ODD_NAMES,
  promtoolCheckMetrics,
} from '../../supabase/functions/queue-health/test_promtool.ts';
import { freePort } from './private_cluster.ts';

const id = crypto.randomUUID().replace(/-/g, '').slice(0, 8);
const PROJECT = `prom_${id}`;
const BUSY = `pm_${id}_busy`;
const ODD_SCHEMA = `pm_${id}_odd`;
const METRICS_URL = `${API_URL}/functions/v1/queue-health`;
const RULES = join(ROOT, 'docs', 'prometheus', 'queue-health.rules.yml');
const DOCS = join(ROOT, 'docs', 'prometheus.md');
const DASHBOARD = join(ROOT, 'docs', 'grafana', 'queue-health.json');

/** The metric names a PromQL expression reads (recording-rule names with colons excluded). */
function metricNamesIn(expr: string): string[] {
  return [...new Set(expr.match(/\bqueue_health_[a-z0-9_]+\b/g) ?? [])];
}

/** Every `expr` of the Grafana dashboard's panels. */
async function dashboardExpressions(): Promise<string[]> {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD)) as {
    panels: { targets?: { expr?: string }[] }[];
  };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr ?? ''))
    .filter((e) => e !== '');
}

async function setUp(sql: Sql): Promise<string> {
  await sql`select queue_health.ensure_partitions(now())`;
  await sql`insert into queue_health.project (id, name) values (${PROJECT}, 'prometheus e2e')`;
  await sql`update queue_health.alert_rule set enabled = false where project_id = ${PROJECT}`;
  return await sql.begin(async (tx) => {
    await tx`set local role service_role`;
    await tx`select set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
    await tx`insert into queue_health.project_queue_map (project_id, source, queue_pattern, priority)
             values (${PROJECT}, 'pgmq', ${BUSY.replace(/_/g, '\\_')}, 0)`;
    const [{ token }] = await tx<{ token: string }[]>`
      select token from queue_health.create_scrape_token(${PROJECT}, 'prometheus e2e')`;
    return token;
  });
}

/**
 * Queues with odd names, written as snapshots (two each, so the running totals and the pg-boss
 * wait and run times are there), and a fresh capture run so the monitor metrics are too. The
 * first real capture marks them dropped: they only serve the exposition checked before it.
 */
async function oddQueues(sql: Sql): Promise<number> {
  for (const [i, name] of ODD_NAMES.entries()) {
    await sql`insert into queue_health.queue (source, source_schema, queue_name, project_id)
              values ('pgboss', ${ODD_SCHEMA}, ${name}, ${PROJECT})`;
    for (const ago of [20, 10]) {
      await sql`
        insert into queue_health.metric (captured_at, project_id, source, source_schema, queue_name,
          ready, in_flight, delayed, depth, oldest_ready_age_s, enqueued, completed, failed, retried,
          dead_lettered, wait_p50_ms, wait_p95_ms, run_p50_ms, run_p95_ms, interval_s)
        values (now() - make_interval(secs => ${ago}), ${PROJECT}, 'pgboss', ${ODD_SCHEMA}, ${name},
          ${i}, 1, 0, ${i + 1}, 2.5, 3, 2, 1, 1, 1, 120, 900, 40, 300, 10)`;
    }
  }
  const [{ runId }] = await sql<{ runId: number }[]>`
    insert into queue_health.capture_run (started_at, finished_at, duration_ms, queues, rows, status)
    values (now(), now(), 7.5, 1, 1, 'ok') returning id as "runId"`;
  return Number(runId);
}

async function tearDown(sql: Sql, runIds: number[]): Promise<void> {
  const quiet = (p: Promise<unknown>) => p.catch((e) => console.error('cleanup failed', e));
  await quiet(sql`select pgmq.drop_queue(${BUSY})
                  where exists (select 1 from pgmq.meta where queue_name = ${BUSY})`);
  await quiet(sql`delete from queue_health.metric where project_id = ${PROJECT}`);
  await quiet(sql`delete from queue_health.queue where project_id = ${PROJECT}`);
  await quiet(sql`delete from queue_health.project where id = ${PROJECT}`);
  if (runIds.length) {
    await quiet(sql`delete from queue_health.capture_run where id in ${sql(runIds)}`);
  }
}

/** One capture, again if another held the lock; the ids of the runs it recorded go to `runIds`. */
async function capture(sql: Sql, runIds: number[]): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const [{ r }] = await sql<{ r: { status: string; skipped?: boolean; run_id?: number } }[]>`
      select queue_health.capture() as r`;
    if (typeof r.run_id === 'number') runIds.push(r.run_id);
    if (!r.skipped) {
      assert.notEqual(r.status, 'error', `capture failed: ${JSON.stringify(r)}`);
      return;
    }
    await sleep(100);
  }
  throw new Error('capture was skipped for 5 s (another capture kept running)');
}

interface Prometheus {
  url: string;
  stop: () => Promise<string>;
}

/** The job of the docs' "Scrape config" YAML block: its lines after `scrape_configs:`. */
function scrapeJobFromDocs(markdown: string): string {
  const block = /```yaml\n(scrape_configs:\n[\s\S]*?)```/.exec(markdown);
  if (!block) throw new Error(`${DOCS} has no yaml block starting with scrape_configs:`);
  return block[1].split('\n').slice(1).join('\n').trimEnd();
}

/** `text` with each key of `changes` replaced by its value; each key must occur exactly once. */
function localize(text: string, changes: Record<string, string>): string {
  let out = text;
  for (const [from, to] of Object.entries(changes)) {
    const n = out.split(from).length - 1;
    if (n !== 1) throw new Error(`docs/prometheus.md's scrape config: "${from}" occurs ${n} times`);
    out = out.replace(from, to);
  }
  return out;
}

/** Starts Prometheus on a free loopback port with a temporary config and storage. */
async function startPrometheus(dir: string, token: string): Promise<Prometheus> {
  const port = freePort();
  const target = new URL(API_URL).host;
  await Deno.writeTextFile(join(dir, 'token'), token + '\n', { mode: 0o600 });
  await Deno.writeTextFile(join(dir, 'wrong-token'), 'qhst_' + '0'.repeat(64));
  // The scrape config exactly as docs/prometheus.md shows it, with what the docs say to change
  // locally (http, the local target) and a 1 s interval; a second job, the same with a wrong token.
  const docsJob = scrapeJobFromDocs(await Deno.readTextFile(DOCS));
  const local = (name: string, credentialsFile: string) =>
    localize(docsJob, {
      'job_name: queue-health-acme': `job_name: ${name}`,
      'scrape_interval: 30s': 'scrape_interval: 1s',
      'scrape_timeout: 10s': 'scrape_timeout: 1s',
      'scheme: https': 'scheme: http',
      'credentials_file: /etc/prometheus/secrets/queue-health-acme.token':
        `credentials_file: ${credentialsFile}`,
      "targets: ['<project-ref>.supabase.co']": `targets: ['${target}']`,
    });
  await Deno.writeTextFile(
    join(dir, 'prometheus.yml'),
    [
      'global: {scrape_interval: 1s, evaluation_interval: 1s}',
      `rule_files: [${JSON.stringify(RULES)}]`,
      'scrape_configs:',
      local('queue-health', join(dir, 'token')),
      local('queue-health-wrong-token', join(dir, 'wrong-token')),
    ].join('\n') + '\n',
  );
  const child = new Deno.Command('prometheus', {
    args: [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    stdin: 'null',
    stdout: 'piped',
    stderr: 'piped',
  }).spawn();
  let log = '';
  const dec = new TextDecoder();
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s) log += dec.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    try {
      child.kill('SIGTERM');
    } catch { /* already gone */ }
    const exited = await Promise.race([
      child.status.then(() => true),
      sleep(10_000).then(() => false),
    ]);
    if (!exited) {
      child.kill('SIGKILL');
      await child.status;
    }
    await drained;
    return log;
  };
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(500) });
      await res.body?.cancel();
      if (res.ok) return { url, stop };
    } catch { /* not listening yet */ }
    await sleep(200);
  }
  throw new Error(`Prometheus did not become ready in 20 s:\n${await stop()}`);
}

async function api<T>(prom: Prometheus, path: string): Promise<T> {
  const res = await fetch(`${prom.url}/api/v1/${path}`, { signal: AbortSignal.timeout(5_000) });
  const body = await res.json();
  assert.equal(body.status, 'success', `${path}: ${JSON.stringify(body)}`);
  return body.data as T;
}

Deno.test('the real Prometheus scrapes queue-health with a scrape token and rates the counters', async (t) => {
  const sql = connect({ max: 2, prepare: false });
  const runIds: number[] = [];
  const dir = await Deno.makeTempDir({ prefix: 'qh-prometheus-' });
  let prom: Prometheus | null = null;
  try {
    const token = await setUp(sql);
    runIds.push(await oddQueues(sql));

    await t.step(
      'promtool finds no problem in the text exposition the function serves',
      async () => {
        const res = await fetch(METRICS_URL, {
          headers: { authorization: `Bearer ${token}`, accept: 'text/plain; version=0.0.4' },
        });
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/);
        const text = await res.text();
        const queues = new Set(parseExposition(text).samples.map((s) => s.labels.queue));
        for (const name of ODD_NAMES) assert.ok(queues.has(name), JSON.stringify(name));
        const { code, out } = await promtoolCheckMetrics(text);
        assert.equal(out.trim(), '');
        assert.equal(code, 0);
      },
    );

    await t.step('every metric the Grafana dashboard queries is in the exposition', async () => {
      const res = await fetch(`${METRICS_URL}?format=prometheus`, {
        headers: { authorization: `Bearer ${token}` },
      });
      const served = new Set(parseExposition(await res.text()).samples.map((s) => s.name));
      const expressions = await dashboardExpressions();
      assert.ok(expressions.length >= 15, `${expressions.length} panel queries`);
      const queried = [...new Set(expressions.flatMap(metricNamesIn))].sort();
      assert.ok(queried.includes('queue_health_completed_total'), 'the dashboard uses counters');
      assert.deepEqual(queried.filter((n) => !served.has(n)), [], 'queried but not served');
      // The names are read from the expressions, not assumed: rate() over a counter counts too.
      assert.deepEqual(metricNamesIn('rate(queue_health_x_total{a="queue_health_y"}[5m])'), [
        'queue_health_x_total',
        'queue_health_y',
      ]);
    });

    await createPgmqQueue(sql, BUSY);
    await capture(sql, runIds);
    prom = await startPrometheus(dir, token);

    await t.step(
      'rate(queue_health_completed_total[1m]) is positive for the busy queue',
      async () => {
        const query =
          `rate(queue_health_completed_total{project="${PROJECT}",queue="${BUSY}"}[1m])`;
        let rate = 0;
        // Real traffic: 20 in and 15 done between captures, a capture about every 400 ms.
        for (let round = 0; round < 100 && rate <= 0; round++) {
          await sql`select pgmq.send(${BUSY}, '{}'::jsonb) from generate_series(1, 20)`;
          await sql`select pgmq.delete(${BUSY}, array(
                    select msg_id from pgmq.read(${BUSY}, 30, 15)))`;
          await capture(sql, runIds);
          await sleep(400);
          if (round % 3 === 2) {
            const data = await api<{ result: { value: [number, string] }[] }>(
              prom!,
              `query?query=${encodeURIComponent(query)}`,
            );
            rate = Number(data.result[0]?.value[1] ?? 0);
          }
        }
        assert.ok(rate > 0, `rate stayed ${rate} for 60 s of traffic`);
        const [{ done }] = await sql<{ done: number }[]>`
        select cum_completed::int as done from queue_health.queue_status where queue_name = ${BUSY}`;
        assert.ok(done > 0, 'the total in SQL is what Prometheus rates');
      },
    );

    await t.step('the token job is up (OpenMetrics, gzip); the wrong token gets 401', async () => {
      const { activeTargets } = await api<{
        activeTargets: { labels: { job: string }; health: string; lastError: string }[];
      }>(prom!, 'targets?state=active');
      const byJob = new Map(activeTargets.map((x) => [x.labels.job, x]));
      assert.equal(byJob.get('queue-health')?.health, 'up', byJob.get('queue-health')?.lastError);
      assert.equal(byJob.get('queue-health')?.lastError, '');
      assert.equal(byJob.get('queue-health-wrong-token')?.health, 'down');
      assert.match(byJob.get('queue-health-wrong-token')!.lastError, /401/);
      // What Prometheus stored came through its OpenMetrics parser: the counter's family type.
      const meta = await api<Record<string, { type: string }[]>>(
        prom!,
        'metadata?metric=queue_health_completed',
      );
      assert.equal(meta.queue_health_completed?.[0]?.type, 'counter', JSON.stringify(meta));
      const only = await api<{ result: { metric: Record<string, string> }[] }>(
        prom!,
        `query?query=${encodeURIComponent('count by (project) (queue_health_depth)')}`,
      );
      assert.deepEqual(only.result.map((r) => r.metric.project), [PROJECT], 'one project only');
    });

    await t.step(
      'Prometheus loads the shipped rules and evaluates them without error',
      async () => {
        const { groups } = await api<{
          groups: { name: string; rules: { name: string; health: string; lastError?: string }[] }[];
        }>(prom!, 'rules');
        const rules = groups.flatMap((g) => g.rules);
        assert.equal(rules.length, 22);
        assert.deepEqual(rules.filter((r) => r.health === 'err').map((r) => r.name), []);
      },
    );
  } finally {
    const log = prom ? await prom.stop() : '';
    if (/level=error/.test(log)) console.error(log);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await tearDown(sql, runIds);
    await sql.end({ timeout: 5 });
  }
});
