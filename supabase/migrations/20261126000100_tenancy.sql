-- Tenancy: tenants, their users, and the membership helpers every RLS policy uses.

create table if not exists public.tenants (
  id uuid primary key default gen_random_uuid(),
  slug text unique not null,
  business_name text not null,
  subscription_tier text not null default 'starter',
  status text not null default 'active',
  created_at timestamptz default now(),
  white_label jsonb
);

create table if not exists public.tenant_users (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  role text not null default 'admin',
  email text not null,
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
 * private.isolate_by_tenant(tbl, noun): the one RLS pattern for tenant-owned
 * tables. Enables RLS, (re)creates the policy "Members can use their tenant's
 * <noun>" for every command, and indexes tenant_id. What a member may actually
 * do is then decided by the table's grants. Idempotent.
 */
create or replace function private.isolate_by_tenant(tbl regclass, noun text)
returns void
language plpgsql
set search_path = ''
as $$
declare
  policy text := format('Members can use their tenant''s %s', noun);
  index_name text := replace(tbl::text, 'public.', '') || '_tenant_id_idx';
begin
  execute format('alter table %s enable row level security', tbl);
  execute format('drop policy if exists %I on %s', policy, tbl);
  execute format(
    'create policy %I on %s for all to authenticated '
    'using (tenant_id in (select private.current_tenant_ids())) '
    'with check (tenant_id in (select private.current_tenant_ids()))',
    policy, tbl);
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
