/**
 * The local stack is as strict as a hosted Supabase project: these are the platform facts our
 * migrations and tests depend on (docs/development.md, "Hosted parity", names the upstream file of
 * each). If the stack drifts back to something more forgiving — postgres a superuser again, or an
 * owner of Realtime's table — this fails.
 *
 * @module
 */
import assert from 'node:assert/strict';
import { connect, type Sql, superuserUrl } from './db.ts';
import { rolledBack } from './rollback.ts';

/** Asserts that `statement`, run as postgres in a rolled-back transaction, fails with `code`. */
async function refused(sql: Sql, statement: string, code = '42501'): Promise<void> {
  await assert.rejects(
    rolledBack(sql, async (tx) => {
      await tx.unsafe(statement);
    }),
    (e: { code?: string; message?: string }) => {
      assert.equal(e.code, code, `${statement}: ${e.message}`);
      return true;
    },
    `postgres may not: ${statement}`,
  );
}

/** Asserts that `statement` succeeds as postgres (rolled back). */
async function allowed(sql: Sql, statement: string): Promise<void> {
  await rolledBack(sql, async (tx) => {
    await tx.unsafe(statement);
  });
}

Deno.test('postgres has hosted Supabase attributes and memberships, and nothing more', async () => {
  const sql = connect();
  try {
    const [me] = await sql`
      select current_user as name, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolcreatedb,
             r.rolreplication
        from pg_roles r where r.rolname = current_user`;
    assert.deepEqual(me, {
      name: 'postgres',
      rolsuper: false,
      rolbypassrls: true,
      rolcreaterole: true,
      rolcreatedb: true,
      rolreplication: true,
    });
    const rows = await sql<{ role: string; member: boolean }[]>`
      select r as role, pg_has_role('postgres', r, 'member') as member
        from unnest(array['pg_monitor', 'pg_read_all_data', 'pg_signal_backend', 'anon',
                          'authenticated', 'service_role', 'supabase_admin',
                          'supabase_realtime_admin', 'supabase_auth_admin']) r`;
    assert.deepEqual(Object.fromEntries(rows.map((r) => [r.role, r.member])), {
      pg_monitor: true,
      pg_read_all_data: true,
      pg_signal_backend: true,
      anon: true,
      authenticated: true,
      service_role: true,
      supabase_admin: false,
      supabase_realtime_admin: false,
      supabase_auth_admin: false,
    });
    const [admin] = await sql`select rolsuper from pg_roles where rolname = 'supabase_admin'`;
    assert.equal(admin.rolsuper, true, 'supabase_admin is the superuser');
    const [sr] =
      await sql`select rolbypassrls, rolcanlogin from pg_roles where rolname = 'service_role'`;
    assert.deepEqual(sr, { rolbypassrls: true, rolcanlogin: false });
    const timeouts = await sql<{ role: string; setting: string }[]>`
      select r.rolname as role, s as setting
        from pg_db_role_setting d join pg_roles r on r.oid = d.setrole, unnest(d.setconfig) s
       where r.rolname in ('anon', 'authenticated') and s like 'statement_timeout=%'
       order by 1`;
    assert.deepEqual([...timeouts], [
      { role: 'anon', setting: 'statement_timeout=3s' },
      { role: 'authenticated', setting: 'statement_timeout=8s' },
    ]);
    await refused(sql, 'alter role service_role nobypassrls');
    await refused(sql, 'alter role postgres superuser');
    await allowed(sql, `alter role authenticated set statement_timeout = '9s'`);
  } finally {
    await sql.end();
  }
});

Deno.test('extensions belong to the superuser; postgres may create only the allowed ones', async () => {
  const sql = connect();
  try {
    const rows = await sql<{ extname: string; owner: string }[]>`
      select e.extname, pg_get_userbyid(e.extowner) as owner from pg_extension e
       where e.extname in ('pg_cron', 'pgtap') order by 1`;
    assert.deepEqual([...rows], [
      { extname: 'pg_cron', owner: 'supabase_admin' },
      { extname: 'pgtap', owner: 'supabase_admin' },
    ]);
    await refused(sql, 'create extension file_fdw');
    // plpgsql_check is on hosted Supabase's list: created as the superuser.
    await rolledBack(sql, async (tx) => {
      await tx`create extension if not exists plpgsql_check`;
      const [{ owner }] = await tx`
        select pg_get_userbyid(extowner) as owner from pg_extension where extname = 'plpgsql_check'`;
      assert.equal(owner, 'supabase_admin');
    });
  } finally {
    await sql.end();
  }
});

Deno.test("realtime.messages is Realtime's: postgres may create and drop policies on it, not comment on them", async () => {
  const sql = connect();
  try {
    const [t] = await sql`
      select pg_get_userbyid(c.relowner) as owner, c.relkind, c.relrowsecurity
        from pg_class c where c.oid = 'realtime.messages'::regclass`;
    assert.deepEqual(t, { owner: 'supabase_realtime_admin', relkind: 'p', relrowsecurity: true });
    const privileges = await sql<{ p: string; has: boolean }[]>`
      select p, has_table_privilege('postgres', 'realtime.messages', p) as has
        from unnest(array['select', 'insert', 'update', 'delete', 'truncate']) p`;
    assert.deepEqual(Object.fromEntries(privileges.map((r) => [r.p, r.has])), {
      select: true,
      insert: true,
      update: true,
      delete: false,
      truncate: false,
    });
    const [send] = await sql`
      select pg_get_userbyid(p.proowner) as owner, p.prosecdef
        from pg_proc p where p.oid = 'realtime.send(jsonb, text, text, boolean)'::regprocedure`;
    assert.deepEqual(send, { owner: 'supabase_realtime_admin', prosecdef: false });

    await allowed(
      sql,
      `create policy parity_probe on realtime.messages for select to authenticated using (false);
       drop policy parity_probe on realtime.messages`,
    );
    await refused(
      sql,
      `create policy parity_probe on realtime.messages for select to authenticated using (false);
       comment on policy parity_probe on realtime.messages is 'x'`,
    );
    await refused(sql, 'alter table realtime.messages add column parity_probe int');
    await refused(sql, `delete from realtime.messages where topic = 'parity_probe'`);
    await refused(sql, 'create table realtime.parity_probe (id int)');
    // Policies on tables not in supautils' policy_grants keep PostgreSQL's owner check.
    await refused(
      sql,
      `create policy parity_probe on vault.secrets for select to authenticated using (false)`,
    );
  } finally {
    await sql.end();
  }
});

Deno.test('auth, vault and cron grant postgres what hosted Supabase grants, no more', async () => {
  const sql = connect();
  try {
    const owners = await sql<{ rel: string; owner: string }[]>`
      select c.oid::regclass::text as rel, pg_get_userbyid(c.relowner) as owner
        from pg_class c
       where c.oid in ('auth.users'::regclass, 'vault.secrets'::regclass, 'cron.job'::regclass)
       order by 1`;
    assert.deepEqual([...owners], [
      { rel: 'auth.users', owner: 'supabase_auth_admin' },
      { rel: 'cron.job', owner: 'supabase_admin' },
      { rel: 'vault.secrets', owner: 'supabase_admin' },
    ]);
    await refused(sql, 'create table auth.parity_probe (id int)');
    await allowed(sql, `select vault.create_secret('s3cr3t', 'parity_probe')`);
    await rolledBack(sql, async (tx) => {
      await tx`select vault.create_secret('s3cr3t', 'parity_probe')`;
      const [{ secret }] = await tx`
        select decrypted_secret as secret from vault.decrypted_secrets where name = 'parity_probe'`;
      assert.equal(secret, 's3cr3t');
    });
    await refused(sql, `set local role service_role; select * from vault.decrypted_secrets`);
    await refused(sql, `set local role authenticated; select * from vault.decrypted_secrets`);
    await allowed(sql, 'select count(*) from cron.job');
    await refused(sql, `update cron.job set active = false where jobname = 'parity_probe'`);
    await allowed(sql, 'delete from cron.job_run_details where false');
  } finally {
    await sql.end();
  }
});

Deno.test("our schema and pgmq are postgres's, as `supabase db push` and hosted pgmq leave them", async () => {
  const sql = connect();
  try {
    const rows = await sql<{ nspname: string; owner: string }[]>`
      select n.nspname, pg_get_userbyid(n.nspowner) as owner from pg_namespace n
       where n.nspname in ('queue_health', 'pgmq') order by 1`;
    assert.deepEqual([...rows], [
      { nspname: 'pgmq', owner: 'postgres' },
      { nspname: 'queue_health', owner: 'postgres' },
    ]);
    const [{ others }] = await sql<{ others: string[] }[]>`
      select coalesce(array_agg(distinct pg_get_userbyid(c.relowner)::text), '{}') as others
        from pg_class c
       where c.relnamespace in ('queue_health'::regnamespace, 'pgmq'::regnamespace)
         and pg_get_userbyid(c.relowner) <> 'postgres'`;
    assert.deepEqual(others, [], 'every table of queue_health and pgmq belongs to postgres');
    const [{ fns }] = await sql<{ fns: string[] }[]>`
      select coalesce(array_agg(p.oid::regprocedure::text), '{}') as fns from pg_proc p
       where p.pronamespace = 'queue_health'::regnamespace
         and pg_get_userbyid(p.proowner) <> 'postgres'`;
    assert.deepEqual(fns, [], 'every queue_health function belongs to postgres');
  } finally {
    await sql.end();
  }
});

Deno.test('the platform superuser is a different role from the one tests run as', async () => {
  const admin = connect({ url: superuserUrl(), max: 1 });
  try {
    const [{ name, su }] = await admin`
      select current_user as name, (select rolsuper from pg_roles where rolname = current_user) as su`;
    assert.deepEqual({ name, su }, { name: 'supabase_admin', su: true });
  } finally {
    await admin.end();
  }
});
