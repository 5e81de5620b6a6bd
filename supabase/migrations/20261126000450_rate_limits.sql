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
 * private.take_rate_limit(tenant, function_name): takes one token from the
 * tenant's bucket for the function, or raises.
 *
 * Locks the (tenant, function) bucket row until the caller's transaction ends:
 * call it first, before any other lock. A request that is refused takes no
 * token (the raise rolls the update back).
 *
 * Raises CER29 (RATE_LIMITED) with details {function, limit, window_seconds,
 * retry_after}: whole seconds until a token is available.
 */
create or replace function private.take_rate_limit(tenant uuid, function_name text)
returns void
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
  where p.function_name = take_rate_limit.function_name
    and (p.tenant_id = tenant or p.tenant_id is null)
  order by p.tenant_id nulls last
  limit 1;
  if not found then
    return;
  end if;
  rate := lim.max_requests::double precision / lim.window_seconds;

  insert into public.rate_limit_buckets as b (tenant_id, function_name, tokens, updated_at)
  values (tenant, take_rate_limit.function_name, lim.max_requests - 1, clock_timestamp())
  on conflict on constraint rate_limit_buckets_pkey do update
  set tokens = least(lim.max_requests::double precision,
                     b.tokens + extract(epoch from clock_timestamp() - b.updated_at) * rate) - 1,
      updated_at = clock_timestamp()
  returning b.tokens into left_after;

  if left_after < 0 then
    perform private.raise_error('CER29', 'too many requests; retry later',
      jsonb_build_object(
        'function', take_rate_limit.function_name,
        'limit', lim.max_requests,
        'window_seconds', lim.window_seconds,
        'retry_after', greatest(1, ceil(-left_after / rate))::integer));
  end if;
end
$$;
revoke all on function private.take_rate_limit(uuid, text) from public;
