-- Platform tables every function shares: idempotency keys, the notification
-- outbox, the audit log and per-tenant document counters. Users never write
-- these directly; the RPCs (security definer) do.

create table if not exists public.idempotency_keys (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  key text not null check (length(key) between 1 and 255),
  -- sha256 of the function name and the canonical (jsonb) request body
  request_hash text not null,
  -- null while the first request is in flight; the stored result afterwards
  response jsonb,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '24 hours',
  primary key (tenant_id, user_id, key)
);
create index if not exists idempotency_keys_expires_at_idx on public.idempotency_keys (expires_at);

create table if not exists public.notification_outbox (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  channel text not null check (channel in ('email', 'sms')),
  template text not null,
  recipient text,
  payload jsonb not null default '{}'::jsonb,
  status text not null default 'pending'
    check (status in ('pending', 'sending', 'sent', 'dead')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  last_error text,
  provider_message_id text,
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index if not exists notification_outbox_due_idx on public.notification_outbox (next_attempt_at)
  where status in ('pending', 'sending');

create table if not exists public.audit_log (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  actor_id uuid,
  action text not null,
  entity_type text not null,
  entity_id uuid,
  details jsonb not null default '{}'::jsonb,
  created_at timestamptz not null default now()
);

-- One row per tenant, document kind and year; the row lock makes numbering
-- race-free and gapless within a tenant.
create table if not exists public.document_counters (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  kind text not null,
  year integer not null,
  last_value bigint not null default 0,
  primary key (tenant_id, kind, year)
);

select private.isolate_by_tenant('public.idempotency_keys', 'idempotency keys');
select private.isolate_by_tenant('public.notification_outbox', 'notifications');
select private.isolate_by_tenant('public.audit_log', 'audit entries');
select private.isolate_by_tenant('public.document_counters', 'counters');

revoke all on public.idempotency_keys, public.notification_outbox, public.audit_log,
  public.document_counters from anon, authenticated;
-- Members may read their audit trail and outbox status; nothing more.
grant select on public.audit_log, public.notification_outbox to authenticated;
grant all on public.idempotency_keys, public.notification_outbox, public.audit_log,
  public.document_counters to service_role;

/*
 * private.next_document_number(tenant, prefix): the next human-readable number,
 * e.g. WO-2026-000042. Locks the (tenant, prefix, year) counter row until the
 * caller's transaction ends, so take it after every other lock. Raises nothing.
 */
create or replace function private.next_document_number(tenant uuid, prefix text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  this_year integer := extract(year from now() at time zone 'utc')::integer;
  next_value bigint;
begin
  insert into public.document_counters as c (tenant_id, kind, year, last_value)
  values (tenant, prefix, this_year, 1)
  on conflict (tenant_id, kind, year) do update set last_value = c.last_value + 1
  returning c.last_value into next_value;
  return format('%s-%s-%s', prefix, this_year,
    lpad(next_value::text, greatest(6, length(next_value::text)), '0'));
end
$$;
revoke all on function private.next_document_number(uuid, text) from public;

/*
 * private.claim_idempotency_key(tenant, idem_key, scope, body): the start of an
 * idempotent request. Returns null when the caller should do the work (and
 * then call private.store_idempotent_response), or the stored response (with
 * "replayed": true) when this key already succeeded with the same body.
 *
 * A concurrent twin blocks on the key's primary key until the first request
 * commits (then gets its response) or rolls back (then does the work itself),
 * so two requests with one key never both do the work. Only successful results
 * are stored: a failed request leaves no key behind and may be retried.
 * Expired keys (older than 24 h) are reclaimed.
 *
 * Raises CEI22 when the key was used with a different body or function,
 * CEI09 when the key's row exists without a response (cannot happen inside one
 * database, kept as a guard).
 */
create or replace function private.claim_idempotency_key(tenant uuid, idem_key text, scope text, body jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  hash text := encode(sha256(convert_to(scope || ':' || body::text, 'UTF8')), 'hex');
  existing public.idempotency_keys%rowtype;
begin
  insert into public.idempotency_keys (tenant_id, user_id, key, request_hash)
  values (tenant, caller, idem_key, hash)
  on conflict do nothing;
  if found then
    return null;
  end if;

  select * into existing from public.idempotency_keys k
  where k.tenant_id = tenant and k.user_id = caller and k.key = idem_key
  for update;
  if existing.expires_at <= now() then
    update public.idempotency_keys k
    set request_hash = hash, response = null, created_at = now(),
        expires_at = now() + interval '24 hours'
    where k.tenant_id = tenant and k.user_id = caller and k.key = idem_key;
    return null;
  elsif existing.request_hash <> hash then
    raise exception using errcode = 'CEI22',
      message = 'this Idempotency-Key was already used with a different request body';
  elsif existing.response is null then
    raise exception using errcode = 'CEI09',
      message = 'a request with this Idempotency-Key is still in flight; retry shortly';
  end if;
  return existing.response || '{"replayed": true}'::jsonb;
end
$$;
revoke all on function private.claim_idempotency_key(uuid, text, text, jsonb) from public;

/*
 * private.store_idempotent_response(tenant, idem_key, result): records the result
 * of a claimed key, in the same transaction as the work. Locks the key row
 * (already locked by the claim). Raises nothing.
 */
create or replace function private.store_idempotent_response(tenant uuid, idem_key text, result jsonb)
returns void
language sql
set search_path = ''
as $$
  update public.idempotency_keys k
  set response = result
  where k.tenant_id = tenant and k.user_id = (select auth.uid()) and k.key = idem_key
$$;
revoke all on function private.store_idempotent_response(uuid, text, jsonb) from public;

/*
 * private.raise_error(sqlstate, message, details): raises one of our custom
 * SQLSTATEs with `details` (a JSON object) in DETAIL, which the REST server
 * returns as the error body's "details" and `shared` parses back.
 */
create or replace function private.raise_error(state text, message text, details jsonb default '{}'::jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  raise exception using errcode = state, message = message, detail = details::text;
end
$$;
revoke all on function private.raise_error(text, text, jsonb) from public;

/*
 * private.raise_api_error(status, code, message, details): an error a new
 * feature can add without touching the Rust side. It raises SQLSTATE
 * 'CE' || status (CE400, CE403, CE404 or CE409) with the API code
 * (UPPER_SNAKE_CASE) in HINT and `details` in DETAIL; `shared` maps any such
 * error to that status and code (shared::ApiError::from_postgrest).
 */
create or replace function private.raise_api_error(status integer, code text, message text,
  details jsonb default '{}'::jsonb)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if status not in (400, 403, 404, 409) or code !~ '^[A-Z][A-Z0-9_]{0,63}$' then
    raise exception 'raise_api_error: status % or code % is not one the API maps', status, code;
  end if;
  raise exception using errcode = 'CE' || status, message = message, detail = details::text, hint = code;
end
$$;
revoke all on function private.raise_api_error(integer, text, text, jsonb) from public;

/*
 * private.begin_request(errors, idempotency_key): the start every RPC shares.
 * Raises CEA01 without a signed-in user; then CEV01 when `errors` (the
 * payload's problems by field) or the idempotency key has any. The key rule
 * is the edge functions' own (shared::Request::idempotency_key): 1 to 255
 * visible ASCII characters, so no space, CR, LF or other control character
 * and nothing outside ASCII. Returns the caller's user id.
 */
create or replace function private.begin_request(errors jsonb, idempotency_key text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
begin
  if caller is null then
    perform private.raise_error('CEA01', 'a signed-in user is required');
  end if;
  if idempotency_key is not null and idempotency_key !~ '^[\x21-\x7e]{1,255}$' then
    errors := errors || '{"idempotency_key": "must be 1 to 255 visible ASCII characters"}';
  end if;
  if errors <> '{}' then
    perform private.raise_error('CEV01', 'the request has invalid fields', errors);
  end if;
  return caller;
end
$$;
revoke all on function private.begin_request(jsonb, text) from public;

-- Building blocks of the payload validators (*_payload_errors). Each returns
-- problems as {"field.path": "problem"}, '{}' for none, and raises nothing.

/* Each key of `obj` not in `allowed`: {"<path>.<key>": "unknown field"}. */
create or replace function private.unknown_fields(obj jsonb, path text, allowed text[])
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(concat_ws('.', nullif(path, ''), k), 'unknown field'), '{}')
  from jsonb_object_keys(obj) k
  where k <> all (allowed)
$$;
revoke all on function private.unknown_fields(jsonb, text, text[]) from public;

/*
 * `item -> field` as a DECIMAL(10,2) amount: a JSON number with at most two
 * decimal places, at most 99999999.99, and > 0 (`positive`) or ≥ 0.
 */
create or replace function private.amount_errors(item jsonb, path text, field text, positive boolean)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  at text := path || '.' || field;
  amount numeric;
begin
  if jsonb_typeof(item -> field) is distinct from 'number' then
    return jsonb_build_object(at, 'must be a number');
  end if;
  amount := (item ->> field)::numeric;
  return case
    when scale(trim_scale(amount)) > 2 then jsonb_build_object(at, 'must have at most 2 decimal places')
    when positive and amount <= 0 then jsonb_build_object(at, 'must be greater than 0')
    when amount < 0 then jsonb_build_object(at, 'must be at least 0')
    when amount > 99999999.99 then jsonb_build_object(at, 'must be at most 99999999.99')
    else '{}'::jsonb
  end;
end
$$;
revoke all on function private.amount_errors(jsonb, text, text, boolean) from public;

/*
 * Each object in `items` equal to an earlier one on every key in `keys`:
 * {"items[n].<field>": "repeats items[first]<qualifier>; combine them into one line"}.
 * A value written as a UUID is compared as a UUID, so ids that differ only in
 * letter case are the same id.
 */
create or replace function private.repeated_lines(items jsonb, keys text[], field text, qualifier text default '')
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(format('items[%s].%s', d.n, field),
           format('repeats items[%s]%s; combine them into one line', d.first, qualifier)), '{}')
  from (
    select t.o - 1 as n, first_value(t.o - 1) over (partition by line_key.k order by t.o) as first
    from jsonb_array_elements(items) with ordinality t(i, o)
    cross join lateral (
      select jsonb_agg(
               case when (t.i ->> u.key) ~ '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$'
                    then to_jsonb((t.i ->> u.key)::uuid) else t.i -> u.key end
               order by u.ord) as k
      from unnest(keys) with ordinality u(key, ord)
    ) line_key
    where jsonb_typeof(t.i) = 'object'
  ) d
  where d.n <> d.first
$$;
revoke all on function private.repeated_lines(jsonb, text[], text, text) from public;

/*
 * public.purge_expired_idempotency_keys(): deletes keys past their expiry.
 * For a schedule (service role). Returns the number deleted.
 */
create or replace function public.purge_expired_idempotency_keys()
returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from public.idempotency_keys where expires_at <= now() returning 1
  )
  select count(*)::integer from gone
$$;
revoke all on function public.purge_expired_idempotency_keys() from public, anon, authenticated;
grant execute on function public.purge_expired_idempotency_keys() to service_role;
