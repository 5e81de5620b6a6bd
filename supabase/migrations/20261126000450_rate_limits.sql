-- Per-tenant rate limits: a token bucket per (tenant, function).
--
-- rate_limit_policies holds the limits. The row whose tenant_id is null is a
-- function's default; a tenant's own row overrides it. A function with no
-- policy is not limited. A bucket holds up to max_requests tokens and refills
-- at max_requests per window_seconds, so a tenant may burst to the limit and
-- then sustain the average rate.

create table if not exists public.rate_limit_policies (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete cascade,
  function_name text not null,
  max_requests integer not null check (max_requests > 0),
  window_seconds integer not null check (window_seconds > 0),
  unique nulls not distinct (tenant_id, function_name)
);

create table if not exists public.rate_limit_buckets (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  function_name text not null,
  tokens double precision not null,
  updated_at timestamptz not null,
  primary key (tenant_id, function_name)
);

alter table public.rate_limit_policies enable row level security;
drop policy if exists "Members can read their tenant's and the default limits" on public.rate_limit_policies;
create policy "Members can read their tenant's and the default limits" on public.rate_limit_policies
  for select to authenticated
  using (tenant_id is null or tenant_id in (select private.current_tenant_ids()));
create index if not exists rate_limit_policies_tenant_id_idx on public.rate_limit_policies (tenant_id);
select private.isolate_by_tenant('public.rate_limit_buckets', 'rate limit buckets');

-- Limits are set by operators (service role); members may read theirs.
revoke all on public.rate_limit_policies, public.rate_limit_buckets from anon, authenticated;
grant select on public.rate_limit_policies to authenticated;
grant all on public.rate_limit_policies, public.rate_limit_buckets to service_role;

-- Defaults. Seed 003's limits for the customer-portal endpoints; for
-- create-wholesale-order 600 a minute (10/s sustained), which no order desk
-- reaches by hand and which still stops a runaway integration.
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds) values
  (null, 'create-wholesale-order', 600, 60),
  (null, 'create-payment-intent', 10, 60),
  (null, 'create-setup-intent', 10, 60),
  (null, 'confirm-payment', 10, 60),
  (null, 'invoice-pdf', 20, 60),
  (null, 'cancel-appointment', 5, 60),
  (null, 'redeem-reward', 5, 60),
  (null, 'send-notification-email', 5, 60),
  (null, 'track-session', 30, 60),
  (null, 'clear-cache', 2, 60)
on conflict (tenant_id, function_name) do nothing;

/*
 * Capacity, fairness and "every attempt counts".
 *
 * A business RPC (create_wholesale_order, create_purchase_order,
 * process_return) runs in one transaction. Two things used to happen inside
 * it that let one tenant hurt the others: the tenant's bucket row stayed
 * locked for the whole transaction (so the tenant's other requests queued on
 * it, each holding one of the REST server's pooled connections), and a failed
 * request rolled its token back (so failures were free). Now:
 *
 *  1. Admission, in a transaction of its own. The edge function first calls
 *     public.admit_request with the service role. It resolves the tenant from
 *     the request's subject row, takes one token (the bucket row is locked for
 *     that one statement, then committed) and records a one-time admission.
 *     The function passes the admission to the business RPC in the
 *     `x-admission` header, and the RPC spends it. The admission id never
 *     reaches the client and only the service role can make one, so every
 *     attempt that reaches the database has paid before it runs, and a
 *     failure cannot hand its token back.
 *  2. A per-tenant concurrency cap, without waiting. The business RPC takes
 *     one of the tenant's `max_concurrent` slots (transaction-scoped advisory
 *     locks tried without blocking). With every slot taken it raises CER03
 *     (429 TOO_MANY_CONCURRENT_REQUESTS) at once, so one tenant never holds
 *     more than max_concurrent pooled connections in business work. The edge
 *     functions retry that refusal briefly, holding no connection meanwhile.
 *  3. A business RPC called without an admission (supabase-js `rpc`) is
 *     refused with CEA03 (403): it would be an attempt nobody counted. The
 *     edge functions are the API; the RPCs are their back end.
 */

create table if not exists public.tenant_capacity_policies (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete cascade,
  max_concurrent integer not null check (max_concurrent between 1 and 64),
  unique nulls not distinct (tenant_id)
);
alter table public.tenant_capacity_policies enable row level security;
drop policy if exists "Members can read their tenant's and the default capacity" on public.tenant_capacity_policies;
create policy "Members can read their tenant's and the default capacity" on public.tenant_capacity_policies
  for select to authenticated
  using (tenant_id is null or tenant_id in (select private.current_tenant_ids()));
revoke all on public.tenant_capacity_policies from anon, authenticated;
grant select on public.tenant_capacity_policies to authenticated;
grant all on public.tenant_capacity_policies to service_role;
-- The default: one business transaction per tenant at a time. A Postgres
-- backend uses one core, and most Supabase computes have two, so a tenant at
-- its cap leaves the rest of the database to the others (scripts/bench
-- measures it). A tenant's other requests wait in the edge function
-- (shared::gate), holding no connection, and run one after another. Give a large tenant, or a
-- larger database, more with a row of its own.
insert into public.tenant_capacity_policies (tenant_id, max_concurrent) values (null, 1)
on conflict (tenant_id) do nothing;

/*
 * Which row of a request names its tenant: the function's subject table
 * (schema-qualified, with a tenant_id column). An edge function passes the
 * subject's id to admit_request; each feature's migration registers its
 * function here.
 */
create table if not exists private.request_subjects (
  function_name text primary key,
  subject_table text not null,
  -- the noun of its 404: "<resource> not found", details {resource, id}
  resource text not null
);
insert into private.request_subjects (function_name, subject_table, resource)
values ('create-wholesale-order', 'public.wholesale_clients', 'client')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;

/*
 * Admissions (see above): what one user may run of one function for one
 * tenant, `uses_left` times (1 for an edge function's request), until
 * expires_at. Expired rows are purged every 10 minutes.
 */
create table if not exists private.admissions (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null,
  function_name text not null,
  uses_left integer not null default 1 check (uses_left >= 0),
  expires_at timestamptz not null
);
create index if not exists admissions_expires_at_idx on private.admissions (expires_at);

/*
 * private.take_token(tenant, function_name): takes one token from the
 * tenant's bucket for the function and returns the tokens left, or raises
 * CER29 (RATE_LIMITED) with details {function, limit, window_seconds,
 * retry_after}. A function with no policy is not limited (null). A refused
 * request takes no token.
 *
 * Locks the (tenant, function) bucket row until the caller's transaction
 * ends; admit_request's transaction is that one statement long.
 */
create or replace function private.take_token(tenant uuid, function_name text)
returns double precision
language plpgsql
set search_path = ''
as $$
declare
  lim record;
  rate double precision;
  left_after double precision;
begin
  select p.max_requests, p.window_seconds into lim
  from public.rate_limit_policies p
  where p.function_name = take_token.function_name
    and (p.tenant_id = tenant or p.tenant_id is null)
  order by p.tenant_id nulls last
  limit 1;
  if not found then
    return null;
  end if;
  rate := lim.max_requests::double precision / lim.window_seconds;

  insert into public.rate_limit_buckets as b (tenant_id, function_name, tokens, updated_at)
  values (tenant, take_token.function_name, lim.max_requests - 1, clock_timestamp())
  on conflict on constraint rate_limit_buckets_pkey do update
  set tokens = least(lim.max_requests::double precision,
                     b.tokens + extract(epoch from clock_timestamp() - b.updated_at) * rate) - 1,
      updated_at = clock_timestamp()
  returning b.tokens into left_after;

  if left_after < 0 then
    perform private.raise_error('CER29', 'too many requests; retry later',
      jsonb_build_object(
        'function', take_token.function_name,
        'limit', lim.max_requests,
        'window_seconds', lim.window_seconds,
        'retry_after', greatest(1, ceil(-left_after / rate))::integer));
  end if;
  return left_after;
end
$$;
revoke all on function private.take_token(uuid, text) from public;
drop function if exists private.take_token(uuid, text, boolean);

/* private.tenant_cap(tenant): the tenant's max_concurrent (its own row, else the default). */
create or replace function private.tenant_cap(tenant uuid)
returns integer
language sql
stable
set search_path = ''
as $$
  select coalesce((
    select p.max_concurrent from public.tenant_capacity_policies p
    where p.tenant_id = tenant or p.tenant_id is null
    order by p.tenant_id nulls last
    limit 1), 1)
$$;
revoke all on function private.tenant_cap(uuid) from public;

/*
 * private.enter_tenant_slot(tenant): takes one of the tenant's concurrency
 * slots for the rest of the transaction, never waiting. The slots are
 * transaction-scoped advisory locks (hashtext(tenant), 1..max_concurrent);
 * two tenants whose ids hash alike would share slots, which only makes their
 * caps stricter. Re-entrant within one transaction.
 *
 * Raises CER03 (TOO_MANY_CONCURRENT_REQUESTS, 429) with details
 * {max_concurrent, retry_after: 1} when every slot is taken.
 */
create or replace function private.enter_tenant_slot(tenant uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  cap integer := private.tenant_cap(tenant);
  key integer := hashtext('tenant-slot:' || tenant::text);
begin
  for slot in 1..cap loop
    if pg_catalog.pg_try_advisory_xact_lock(key, slot) then
      return;
    end if;
  end loop;
  perform private.raise_error('CER03', 'too many concurrent requests for this tenant; retry shortly',
    jsonb_build_object('max_concurrent', cap, 'retry_after', 1));
end
$$;
revoke all on function private.enter_tenant_slot(uuid) from public;

/*
 * public.admit_request(function_name, user_id, subject_id): step 1 of a
 * function's request, in its own transaction, called with the service role
 * by the edge function after it verified the user's token.
 *
 * Resolves the tenant from the subject row (private.request_subjects), checks
 * the user is a member there with a role that may write (member or above),
 * takes a token (private.take_token) and records an admission valid for
 * 60 s.
 *
 * returns {"admission": uuid, "remaining": n, "tenant_id", "max_concurrent"}
 * (the function lets at most max_concurrent of the tenant's requests go on
 * at once).
 *
 * A subject that does not exist or is in another tenant is charged to every
 * tenant the user belongs to (guessing ids is not free either) and answered
 * {"admission": null, "not_found": {"message", "resource", "id"}}: the
 * function answers 404 as the business RPC would, without running it.
 *
 * Raises CEA03 (a viewer: nothing charged, nothing to run), CER29
 * (RATE_LIMITED) when the bucket is empty, CEV01 for an unknown
 * function_name.
 */
create or replace function public.admit_request(function_name text, user_id uuid, subject_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  subject record;
  tenant uuid;
  role text;
  left_after double precision;
  admission uuid;
begin
  select s.subject_table, s.resource into subject from private.request_subjects s
  where s.function_name = admit_request.function_name;
  if not found then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"function_name": "has no registered subject"}');
  end if;
  execute format('select tenant_id from %s where id = $1', subject.subject_table::regclass)
    into tenant using subject_id;
  select tu.role into role from public.tenant_users tu
  where tu.tenant_id = tenant and tu.user_id = admit_request.user_id;
  if not found then
    -- Charged, then answered: returned rather than raised, so the tokens stay taken.
    perform private.take_token(tu.tenant_id, admit_request.function_name)
    from public.tenant_users tu where tu.user_id = admit_request.user_id;
    return jsonb_build_object('admission', null, 'not_found', jsonb_build_object(
      'message', subject.resource || ' not found', 'resource', subject.resource, 'id', subject_id));
  end if;
  if private.role_rank(role) < private.role_rank('member') then
    perform private.raise_error('CEA03', 'this needs the member role or a higher one',
      jsonb_build_object('tenant_id', tenant, 'required_role', 'member'));
  end if;
  left_after := private.take_token(tenant, admit_request.function_name);
  insert into private.admissions (tenant_id, user_id, function_name, expires_at)
  values (tenant, admit_request.user_id, admit_request.function_name, clock_timestamp() + interval '60 seconds')
  returning id into admission;
  return jsonb_build_object('admission', admission, 'remaining', floor(left_after),
    'tenant_id', tenant, 'max_concurrent', private.tenant_cap(tenant));
end
$$;
revoke all on function public.admit_request(text, uuid, uuid) from public, anon, authenticated;
grant execute on function public.admit_request(text, uuid, uuid) to service_role;

/*
 * private.spend_admission(tenant, function_name): spends one use of the
 * request's admission and returns its tenant, or null when the request has
 * none. The `x-admission` header holds the admission's id (or several,
 * comma-separated); it must be for the caller and the function (and the
 * tenant, when one is given), unexpired, with a use left. Locks that
 * admission row.
 */
create or replace function private.spend_admission(tenant uuid, function_name text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  header text := nullif(current_setting('request.headers', true), '')::jsonb ->> 'x-admission';
  ids uuid[];
  spent uuid;
begin
  select coalesce(array_agg(trim(x)::uuid), '{}') into ids
  from unnest(string_to_array(left(coalesce(header, ''), 4000), ',')) x
  where trim(x) ~ uuid_re;
  if cardinality(ids) = 0 then
    return null;
  end if;
  update private.admissions a
  set uses_left = a.uses_left - 1
  where a.id = (
    select a2.id from private.admissions a2
    where a2.id = any (ids)
      and a2.user_id = (select auth.uid())
      and (tenant is null or a2.tenant_id = tenant)
      and a2.function_name = spend_admission.function_name
      and a2.uses_left > 0
      and a2.expires_at > clock_timestamp()
    limit 1)
  returning a.tenant_id into spent;
  return spent;
end
$$;
revoke all on function private.spend_admission(uuid, text) from public;

/*
 * private.admit_early(function_name): the first step of every business RPC,
 * before it validates anything. It needs a signed-in user (CEA01) and a
 * valid admission (CEA03 otherwise: call the edge function, which counts the
 * request first), takes the admitted tenant's concurrency slot (CER03 if
 * none) and spends the admission. So a request nobody counted, or one
 * refused for capacity, costs almost nothing. Returns the admitted tenant,
 * for take_rate_limit.
 */
create or replace function private.admit_early(function_name text)
returns uuid
language plpgsql
set search_path = ''
as $$
declare
  tenant uuid;
begin
  perform private.begin_request('{}', null);
  tenant := private.spend_admission(null, function_name);
  if tenant is null then
    perform private.raise_error('CEA03',
      format('call the %s edge function: it counts each request against the tenant''s rate limit before it runs',
        function_name),
      jsonb_build_object('function', function_name));
  end if;
  perform private.enter_tenant_slot(tenant);
  return tenant;
end
$$;
revoke all on function private.admit_early(text) from public;

/*
 * private.take_rate_limit(tenant, function_name, admitted): what every
 * business RPC calls once it knows the tenant, before any other lock, with
 * the tenant admit_early returned.
 *
 * Done already when admit_early admitted this tenant. Otherwise (a user of
 * several tenants whose admission named another) takes this tenant's
 * concurrency slot (private.enter_tenant_slot: CER03 if none) and spends an
 * admission for this tenant; without one it raises CEA03 (403): call the
 * edge function, which counts the request first.
 *
 * Locks: an advisory slot; the admission row. Nothing another request of the
 * tenant waits on.
 */
create or replace function private.take_rate_limit(tenant uuid, function_name text, admitted uuid)
returns void
language plpgsql
set search_path = ''
as $$
begin
  if admitted = tenant then
    return;
  end if;
  perform private.enter_tenant_slot(tenant);
  if private.spend_admission(tenant, function_name) is null then
    perform private.raise_error('CEA03',
      format('call the %s edge function: it counts each request against the tenant''s rate limit before it runs',
        take_rate_limit.function_name),
      jsonb_build_object('function', take_rate_limit.function_name));
  end if;
end
$$;
revoke all on function private.take_rate_limit(uuid, text, uuid) from public;
drop function if exists private.take_rate_limit(uuid, text);

/* public.purge_expired_admissions(): deletes admissions expired or used up. */
create or replace function public.purge_expired_admissions()
returns integer
language sql
security definer
set search_path = ''
as $$
  with gone as (
    delete from private.admissions where expires_at < clock_timestamp() or uses_left = 0 returning 1)
  select count(*)::integer from gone
$$;
revoke all on function public.purge_expired_admissions() from public, anon, authenticated;
grant execute on function public.purge_expired_admissions() to service_role;

/*
 * Timeouts for the API roles, as Supabase sets them on its own roles: no
 * request may run longer than statement_timeout, and none waits on a row lock
 * longer than lock_timeout (55P03, answered 409 CONCURRENT_UPDATE). PostgREST
 * applies a role's settings when it switches to that role.
 */
alter role anon set statement_timeout = '3s';
alter role authenticated set statement_timeout = '8s';
alter role authenticated set lock_timeout = '3s';
alter role service_role set lock_timeout = '3s';
