-- What hosted Supabase does once the superuser has created pgmq (supabase/postgres
-- ansible/files/postgresql_extension_custom_scripts/pgmq/after-create.sql, as a fact): every
-- object of pgmq is handed to `postgres`, which then creates queues with pgmq.create(). The local
-- stack loads the pgmq test fixture as the superuser and runs this after it.
do $$
declare
  r record;
begin
  if to_regnamespace('pgmq') is null then
    return;
  end if;
  execute 'alter schema pgmq owner to postgres';
  for r in
    select c.oid::regclass as rel
      from pg_catalog.pg_class c
     where c.relnamespace = 'pgmq'::regnamespace
       and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
       and pg_catalog.pg_get_userbyid(c.relowner) <> 'postgres'
       -- sequences owned by a table's column follow the table
       and not exists (select 1 from pg_catalog.pg_depend d
                        where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i'))
  loop
    execute format('alter table %s owner to postgres', r.rel);
  end loop;
  for r in
    select p.oid::regprocedure as fn, p.prokind
      from pg_catalog.pg_proc p
     where p.pronamespace = 'pgmq'::regnamespace
       and pg_catalog.pg_get_userbyid(p.proowner) <> 'postgres'
  loop
    execute format('alter %s %s owner to postgres',
                   case r.prokind when 'p' then 'procedure' when 'a' then 'aggregate' else 'function' end, r.fn);
  end loop;
  for r in
    select t.oid::regtype as typ
      from pg_catalog.pg_type t
     where t.typnamespace = 'pgmq'::regnamespace
       and t.typtype in ('c', 'e', 'd')
       and (t.typrelid = 0 or (select relkind from pg_catalog.pg_class where oid = t.typrelid) = 'c')
       and pg_catalog.pg_get_userbyid(t.typowner) <> 'postgres'
  loop
    execute format('alter type %s owner to postgres', r.typ);
  end loop;
end
$$;
