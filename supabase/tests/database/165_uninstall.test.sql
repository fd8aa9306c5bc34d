-- uninstall() refuses while objects outside the schema depend on it (dropping the schema would
-- drop them too): _uninstall_dependents() finds them. The uninstall itself is tested on a cluster
-- of its own (local/test/uninstall_test.ts): here it would take the shared test database away.
begin;
select plan(6);

-- The Realtime policy calls is_member(): it depends on the schema, and uninstall() drops it first.
select ok(queue_health._uninstall_dependents() @> array[
    'policy Project members can receive Queue Health snapshots on table realtime.messages'],
  'the Realtime policy depends on the schema');
select is(queue_health._uninstall_realtime_policy(), 'dropped', 'the Realtime policy is dropped');
select is(queue_health._uninstall_dependents(), '{}'::text[],
  'then nothing outside the schema depends on it');

create view public.t165_queues as select * from queue_health.queue_status;
create table public.t165_orders (project_id text references queue_health.project (id),
  role queue_health.member_role);
create function public.t165_members(p queue_health.project) returns int
language sql as $$ select 1 $$;

-- (the view's flow_status column is of the type queue_health.flow_status)
select is(queue_health._uninstall_dependents(), array[
    'column flow_status of view public.t165_queues',
    'column role of table public.t165_orders',
    'constraint t165_orders_project_id_fkey on table public.t165_orders',
    'function public.t165_members(queue_health.project)',
    'rule _RETURN on view public.t165_queues']::text[],
  'a view, a foreign key, a column of one of its types and a function taking its row type are found');

select throws_ok($$ select queue_health.uninstall() $$, '2BP01', null,
  'uninstall() refuses while they exist');
select isnt(to_regnamespace('queue_health'), null, 'and removed nothing');

select * from finish();
rollback;
