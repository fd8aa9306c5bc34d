-- A local stand-in for the pg_net extension (supabase/pg_net 0.20.4), written as an extension
-- script: the same schema, tables, types and function signatures, defaults and checks, so SQL
-- written against pg_net runs here unchanged. pg_net's C parts are replaced:
--   * the background worker is local/stack/pg_net_worker.ts (a Deno loop), which sends committed
--     rows of net.http_request_queue and writes net._http_response like pg_net's worker;
--   * net.wake() sends NOTIFY pg_net_wake, which PostgreSQL delivers on commit only, as pg_net
--     wakes its worker from a commit callback (nothing is announced for a rolled-back request);
--   * URL encoding (curl_easy_escape / curl_url) is done in SQL.
-- Created by `create extension pg_net` (local/stack/pg_net.ts makes it available); the grants
-- hosted Supabase adds then come from the platform's issue_pg_net_access event trigger.

create schema if not exists net;

create domain net.http_method as text
  check (value ilike 'get' or value ilike 'post' or value ilike 'delete');

-- Section: request queue and responses (pg_net's private tables; unlogged, no primary keys)

create unlogged table net.http_request_queue (
  id bigserial,
  method net.http_method not null,
  url text not null,
  headers jsonb,
  body bytea,
  timeout_milliseconds int not null
);
comment on table net.http_request_queue is 'Requests waiting for the worker (local pg_net stand-in); rows are deleted when taken.';

create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out bool,
  error_msg text,
  created timestamptz not null default now()
);
create index on net._http_response (created);
comment on table net._http_response is 'One row per request sent, with the id of its queue row; deleted after pg_net.ttl (default 6 hours).';

-- Section: public types

create type net.request_status as enum ('PENDING', 'SUCCESS', 'ERROR');

create type net.http_response as (
  status_code integer,
  headers jsonb,
  body text
);

create type net.http_response_result as (
  status net.request_status,
  message text,
  response net.http_response
);

-- Section: helpers (C functions in pg_net)

create function net._urlencode_string(string varchar)
returns text
language sql
immutable
as $$
  -- Percent-encodes every byte outside A-Z a-z 0-9 - . _ ~ (what curl_easy_escape keeps).
  select string_agg(
           case when b.c ~ '^[A-Za-z0-9._~-]$' then b.c
                else upper(regexp_replace(encode(convert_to(b.c, 'UTF8'), 'hex'), '(..)', '%\1', 'g'))
           end, '' order by b.n)
    from regexp_split_to_table(string, '') with ordinality as b(c, n)
$$;

create function net._encode_url_with_params_array(url text, params_array text[])
returns text
language sql
immutable
as $$
  -- Appends each key=value to the URL's query, after any query it has, before any fragment.
  select case
           when url is null or params_array is null then null
           when cardinality(array_remove(params_array, null)) = 0 then url
           else split_part(url, '#', 1)
                || case when position('?' in split_part(url, '#', 1)) > 0 then '&' else '?' end
                || array_to_string(params_array, '&')
                || case when position('#' in url) > 0 then '#' || substr(url, position('#' in url) + 1) else '' end
         end
$$;

-- Section: worker control

create function net.check_worker_is_up()
returns void
language plpgsql
as $$
begin
  if not exists (select 1 from pg_stat_activity where application_name ilike '%pg_net%') then
    raise exception using
      message = 'the pg_net background worker is not up',
      detail = 'the pg_net background worker is down due to an internal error and cannot process requests',
      hint = 'make sure that you didn''t modify any of pg_net internal tables';
  end if;
end
$$;
comment on function net.check_worker_is_up() is 'raises an exception if the pg_net background worker is not up, otherwise it doesn''t return anything';

create function net.wake()
returns void
language sql
as $$
  -- Delivered at commit, once per transaction (identical notifications are folded).
  select pg_notify('pg_net_wake', '');
$$;

create function net.worker_restart()
returns bool
language sql
as $$
  select pg_notify('pg_net_restart', '');
  select true;
$$;

create function net.wait_until_running()
returns void
language plpgsql
as $$
begin
  while not exists (select 1 from pg_stat_activity where application_name ilike '%pg_net%') loop
    perform pg_sleep(0.05);
  end loop;
end
$$;
comment on function net.wait_until_running() is 'waits until the worker is running';

-- Section: the request functions (API: public)

-- What every request function does once it has checked its arguments: the URL with its query
-- parameters encoded, one row in the queue, and a wake-up for the worker at commit. It can do no
-- more than inserting into net.http_request_queue, which pg_net grants to PUBLIC anyway.
create function net._enqueue(
  p_method text, p_url text, p_params jsonb, p_headers jsonb, p_body jsonb, p_timeout_milliseconds int)
returns bigint
language plpgsql
as $$
declare
  v_id bigint;
  v_params text[];
begin
  select coalesce(array_agg(net._urlencode_string(key) || '=' || net._urlencode_string(value)), '{}')
    into v_params
    from jsonb_each_text(p_params);

  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values (p_method, net._encode_url_with_params_array(p_url, v_params), p_headers,
          convert_to(p_body::text, 'UTF8'), p_timeout_milliseconds)
  returning id into v_id;

  perform net.wake();
  return v_id;
end
$$;

create function net.http_get(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
as $$
begin
  return net._enqueue('GET', url, params, headers, null, timeout_milliseconds);
end
$$;

create function net.http_post(
  url text,
  body jsonb default '{}'::jsonb,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
  timeout_milliseconds int default 5000
)
returns bigint
language plpgsql
as $$
declare
  v_content_type text;
begin
  -- Any JSON body is accepted (object, array, scalar); only the content type is checked.
  select h.value into v_content_type
    from jsonb_each_text(coalesce(headers, '{}'::jsonb)) as h(key, value)
   where lower(h.key) = 'content-type'
   limit 1;

  if v_content_type is null then
    headers := headers || '{"Content-Type": "application/json"}'::jsonb;
  end if;

  if v_content_type <> 'application/json' then
    raise exception 'Content-Type header must be "application/json"';
  end if;

  return net._enqueue('POST', url, params, headers, body, timeout_milliseconds);
end
$$;

create function net.http_delete(
  url text,
  params jsonb default '{}'::jsonb,
  headers jsonb default '{}'::jsonb,
  timeout_milliseconds int default 5000,
  body jsonb default null
)
returns bigint
language plpgsql
as $$
begin
  return net._enqueue('DELETE', url, params, headers, body, timeout_milliseconds);
end
$$;

-- Section: reading responses

create function net._await_response(request_id bigint)
returns bool
language plpgsql
as $$
declare
  v_rec net._http_response;
begin
  while v_rec is null loop
    select * into v_rec from net._http_response r where r.id = request_id;
    if v_rec is null then
      perform pg_sleep(0.05);
    end if;
  end loop;
  return true;
end
$$;

create function net._http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
as $$
declare
  v_rec net._http_response;
begin
  if not async then
    perform net._await_response(request_id);
  end if;

  select * into v_rec from net._http_response r where r.id = request_id;

  if v_rec is null or v_rec.error_msg is not null then
    return ('ERROR', coalesce(v_rec.error_msg, 'request matching request_id not found'), null)::net.http_response_result;
  end if;

  return ('SUCCESS', 'ok', (v_rec.status_code, v_rec.headers, v_rec.content)::net.http_response)::net.http_response_result;
end
$$;

create function net.http_collect_response(request_id bigint, async bool default true)
returns net.http_response_result
language plpgsql
as $$
begin
  raise notice 'The net.http_collect_response function is deprecated.';
  return net._http_collect_response(request_id, async);
end
$$;

-- pg_net's own grants (hosted then narrows the request functions: issue_pg_net_access in local/stack/sql/hosted_platform.sql).
grant usage on schema net to public;
grant all on all sequences in schema net to public;
grant all on all tables in schema net to public;
