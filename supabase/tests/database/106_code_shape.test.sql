-- The shape of the code itself (issue 20): small functions, no SQL text surgery, no looking up the
-- project's own functions by signature, and a version() the CLI can ask.
begin;
select plan(4);

select is(
  (select coalesce(array_agg(p.proname || ' (' || array_length(string_to_array(p.prosrc, E'\n'), 1)
     || ' lines)' order by p.proname), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace
      and array_length(string_to_array(p.prosrc, E'\n'), 1) > 150),
  '{}'::text[],
  'no queue_health function body is over 150 lines: split it into named steps or builders');

-- replace() on text that is not SQL: a notification template, a token's uuid.
select is(
  (select coalesce(array_agg(p.proname::text order by p.proname), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace
      and p.prosrc ~* '(^|[^_a-z])replace\s*\('
      and p.proname not in ('_render', 'create_scrape_token')),
  '{}'::text[],
  'no queue_health function edits SQL text with replace(): build the variant with a parameter');

select is(
  (select coalesce(array_agg(p.proname::text order by p.proname), '{}')
     from pg_catalog.pg_proc p
    where p.pronamespace = 'queue_health'::regnamespace
      and p.prosrc ~* 'to_reg(procedure|proc)\s*\(\s*''queue_health\.'),
  '{}'::text[],
  'no queue_health function looks up another queue_health function by signature: call it');

select matches(queue_health.version(), '^\d+\.\d+\.\d+$',
  'queue_health.version() names the release, e.g. 0.1.0');

select * from finish();
rollback;
