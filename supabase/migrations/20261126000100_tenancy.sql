-- Tenancy: tenants, their users, and the membership helpers every RLS policy uses.

create table if not exists public.tenants (
  id uuid primary key default gen_random_uuid(),
  slug text unique not null check (length(slug) between 1 and 100),
  -- shown on every order confirmation, PO and return email
  business_name text not null check (length(business_name) between 1 and 200),
  subscription_tier text not null default 'starter',
  status text not null default 'active',
  created_at timestamptz default now(),
  white_label jsonb
);

create table if not exists public.tenant_users (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  -- See "Roles" below. Existing sign-ups are their tenant's admin.
  role text not null default 'admin' check (role in ('owner', 'admin', 'member', 'viewer')),
  email text not null check (length(email) <= 320),
  created_at timestamptz default now(),
  unique (tenant_id, user_id)
);
create index if not exists tenant_users_tenant_id_idx on public.tenant_users (tenant_id);
create index if not exists tenant_users_user_id_idx on public.tenant_users (user_id);

-- Helpers live in `private`, which the REST server does not expose.
create schema if not exists private;
revoke all on schema private from public;
grant usage on schema private to authenticated, service_role;

/*
 * private.current_tenant_ids(): the tenants the signed-in user belongs to.
 * security definer so that policies on tenant_users itself can call it without
 * recursing into tenant_users' own policy. Locks nothing; raises nothing.
 */
create or replace function private.current_tenant_ids()
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select tu.tenant_id
  from public.tenant_users tu
  where tu.user_id = (select auth.uid())
$$;
revoke all on function private.current_tenant_ids() from public;
grant execute on function private.current_tenant_ids() to authenticated, service_role;

/*
 * private.is_member(tenant): whether the signed-in user belongs to `tenant`.
 * Locks nothing; raises nothing.
 */
create or replace function private.is_member(tenant uuid)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.tenant_users tu
    where tu.tenant_id = tenant and tu.user_id = (select auth.uid())
  )
$$;
revoke all on function private.is_member(uuid) from public;
grant execute on function private.is_member(uuid) to authenticated, service_role;

/*
 * Roles. tenant_users.role says what a member may do in their tenant; each
 * role may do everything the one before it may:
 *
 *   viewer  reads every row of the tenant that members read, and writes
 *           nothing: no table write (RLS write policies below, Storage
 *           uploads) and no business RPC (create_wholesale_order,
 *           create_purchase_order, process_return, attach_purchase_order_pdf
 *           raise CEA03, 403 FORBIDDEN).
 *   member  the day-to-day work: keeps the catalogue, warehouses, stock and
 *           suppliers; adds clients and edits their contact details; works
 *           deliveries, alerts and purchase-order statuses through their
 *           lifecycle; places orders, purchase orders and returns.
 *   admin   also sets a client's credit_limit and status (the trigger on
 *           wholesale_clients), which decide who may buy on credit.
 *   owner   the same as admin today; the role that will manage members and
 *           billing when those surfaces exist.
 *
 * Nobody writes a client's current_balance, an order, a return or a refund
 * directly: only the security definer RPCs that move money do.
 */

/*
 * private.role_rank(role): a role's place in viewer < member < admin < owner,
 * 1 to 4; null for anything else. Raises nothing.
 */
create or replace function private.role_rank(role text)
returns integer
language sql
immutable
set search_path = ''
as $$
  select array_position(array['viewer', 'member', 'admin', 'owner'], role)
$$;
revoke all on function private.role_rank(text) from public;

/*
 * private.tenant_ids_with_role(min_role): the tenants in which the signed-in
 * user holds min_role or a higher role. security definer for the same reason
 * as current_tenant_ids: RLS write policies call it. Locks nothing; raises
 * nothing.
 */
create or replace function private.tenant_ids_with_role(min_role text)
returns setof uuid
language sql
stable
security definer
set search_path = ''
as $$
  select tu.tenant_id
  from public.tenant_users tu
  where tu.user_id = (select auth.uid())
    and private.role_rank(tu.role) >= private.role_rank(min_role)
$$;
revoke all on function private.tenant_ids_with_role(text) from public;
grant execute on function private.tenant_ids_with_role(text) to authenticated, service_role;

/*
 * private.has_role(tenant, min_role): whether the signed-in user holds
 * min_role or a higher role in `tenant`. Locks nothing; raises nothing.
 */
create or replace function private.has_role(tenant uuid, min_role text)
returns boolean
language sql
stable
security definer
set search_path = ''
as $$
  select exists (
    select 1 from public.tenant_users tu
    where tu.tenant_id = tenant and tu.user_id = (select auth.uid())
      and private.role_rank(tu.role) >= private.role_rank(min_role)
  )
$$;
revoke all on function private.has_role(uuid, text) from public;

/*
 * private.require_role(tenant, min_role): raises CEA03 (FORBIDDEN, 403) with
 * details {tenant_id, required_role} unless the signed-in user holds min_role
 * or a higher role in `tenant`. Callers have already answered 404 for a
 * tenant the user does not belong to. Locks nothing.
 */
create or replace function private.require_role(tenant uuid, min_role text)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if not private.has_role(tenant, min_role) then
    raise exception using errcode = 'CEA03',
      message = format('this needs the %s role or a higher one', min_role),
      detail = jsonb_build_object('tenant_id', tenant, 'required_role', min_role)::text;
  end if;
end
$$;
revoke all on function private.require_role(uuid, text) from public;

/*
 * private.isolate_by_tenant(tbl, noun): the one RLS pattern for tenant-owned
 * tables. Enables RLS and (re)creates its policies:
 *   "Members can read their tenant's <noun>"           select, every role;
 *   "Non-viewers can add|change|remove their           insert, update, delete,
 *    tenant's <noun>"                                  member and above.
 * (Policy names stay under Postgres' 63 characters for every noun in use.)
 * What a writer may actually do is then decided by the table's grants (and
 * its triggers); a viewer writes nothing whatever the grants. Also indexes
 * tenant_id. Idempotent; drops the single "for all" policy it used to create.
 */
create or replace function private.isolate_by_tenant(tbl regclass, noun text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  readable constant text := 'tenant_id in (select private.current_tenant_ids())';
  writable constant text := 'tenant_id in (select private.tenant_ids_with_role(''member''))';
  index_name text := replace(tbl::text, 'public.', '') || '_tenant_id_idx';
  policy text;
begin
  execute format('alter table %s enable row level security', tbl);
  execute format('drop policy if exists %I on %s', format('Members can use their tenant''s %s', noun), tbl);

  policy := format('Members can read their tenant''s %s', noun);
  execute format('drop policy if exists %I on %s', policy, tbl);
  execute format('create policy %I on %s for select to authenticated using (%s)', policy, tbl, readable);

  policy := format('Non-viewers can add their tenant''s %s', noun);
  execute format('drop policy if exists %I on %s', policy, tbl);
  execute format('create policy %I on %s for insert to authenticated with check (%s)', policy, tbl, writable);

  policy := format('Non-viewers can change their tenant''s %s', noun);
  execute format('drop policy if exists %I on %s', policy, tbl);
  execute format('create policy %I on %s for update to authenticated using (%s) with check (%s)',
    policy, tbl, writable, writable);

  policy := format('Non-viewers can remove their tenant''s %s', noun);
  execute format('drop policy if exists %I on %s', policy, tbl);
  execute format('create policy %I on %s for delete to authenticated using (%s)', policy, tbl, writable);

  execute format('create index if not exists %I on %s (tenant_id)', index_name, tbl);
end
$$;
revoke all on function private.isolate_by_tenant(regclass, text) from public;

alter table public.tenants enable row level security;
drop policy if exists "Members can read their tenants" on public.tenants;
create policy "Members can read their tenants" on public.tenants
  for select to authenticated
  using (id in (select private.current_tenant_ids()));

select private.isolate_by_tenant('public.tenant_users', 'members');

revoke all on public.tenants, public.tenant_users from anon, authenticated;
grant select on public.tenants, public.tenant_users to authenticated;
grant all on public.tenants, public.tenant_users to service_role;
