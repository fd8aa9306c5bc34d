/**
 * queue_health._reread_interval(): unchanged queues are re-read at the short interval only while a
 * client session runs a long statement. A walsender — hosted Realtime keeps one streaming all the
 * time, `active` since it connected — does not count. The walsender here is real: pg_receivewal
 * streaming this cluster's WAL (a physical replication connection, which the local stack's
 * pg_hba.conf allows; test setup only, as the platform's own replication clients do on hosted).
 */
import assert from 'node:assert/strict';
import { connect, databaseUrl } from './db.ts';
import { sleep } from './wait.ts';

const SETTINGS = { unchanged_reread_interval: '1 second' };

Deno.test('a streaming walsender is no reason to re-read unchanged queues sooner; a long client statement is', async () => {
  const url = new URL(databaseUrl());
  const sql = connect({ max: 2, applicationName: 'qh-reread-interval-test' });
  const walDir = await Deno.makeTempDir({ prefix: 'qh-walsender-' });
  const receiver = new Deno.Command('pg_receivewal', {
    args: [
      '-h',
      url.hostname,
      '-p',
      url.port || '5432',
      '-U',
      decodeURIComponent(url.username),
      '-D',
      walDir,
      '--no-sync',
      '--no-password',
    ],
    env: { PGPASSWORD: decodeURIComponent(url.password) },
    stdout: 'null',
    stderr: 'piped',
  }).spawn();
  try {
    const interval = async () => {
      const [{ v }] = await sql<{ v: string }[]>`
        select queue_health._reread_interval(${sql.json(SETTINGS)})::text as v`;
      return v;
    };
    // The walsender, streaming for longer than the interval.
    let walsender: { state: string; running_s: number } | undefined;
    for (let i = 0; i < 50 && !(walsender && walsender.running_s > 1.5); i++) {
      await sleep(100);
      [walsender] = await sql<{ state: string; running_s: number }[]>`
        select state, extract(epoch from now() - query_start)::float8 as running_s
        from pg_stat_activity where backend_type = 'walsender' and state = 'active'`;
    }
    assert.ok(
      walsender && walsender.running_s > 1.5,
      `pg_receivewal's walsender is active and has streamed for over 1 s (saw ${
        JSON.stringify(walsender)
      })`,
    );
    assert.equal(await interval(), '00:00:05', 'with only the walsender active: five times it');

    // A client backend in one statement for longer than the interval: the short interval.
    const other = connect({ max: 1, applicationName: 'qh-reread-interval-sleeper' });
    try {
      const sleeping = other`select pg_sleep(3)`.execute();
      await sleep(1600);
      assert.equal(await interval(), '00:00:01', 'a client statement running 1.6 s: the interval');
      await sleeping;
    } finally {
      await other.end({ timeout: 1 });
    }
    assert.equal(await interval(), '00:00:05', 'once it ended: five times it again');
  } finally {
    try {
      receiver.kill('SIGTERM');
    } catch { /* already gone */ }
    const { stderr } = await receiver.output();
    const err = new TextDecoder().decode(stderr).trim();
    if (err && !/received interrupt|signal/i.test(err)) console.error(`pg_receivewal: ${err}`);
    await sql.end({ timeout: 2 });
    await Deno.remove(walDir, { recursive: true }).catch(() => {});
  }
});
