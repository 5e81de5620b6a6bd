-- Catalogue: products, warehouses, stock per warehouse, and wholesale clients.
--
-- Every table that points at another tenant-owned row does so through a
-- composite (id, tenant_id) foreign key, so a row can never reference another
-- tenant's product, warehouse or client, whatever a caller sends.
--
-- Text a member writes and a document or message shows (order confirmations,
-- PO PDFs, return emails) is bounded here, whatever path writes it: names 200
-- characters, addresses 500, descriptions 2000, emails 320 (RFC 5321), phone
-- numbers 32, SKUs and categories 100.

create table if not exists public.products (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  sku text check (length(sku) <= 100),
  category text check (length(category) <= 100),
  price numeric(10, 2) check (price >= 0),
  description text check (length(description) <= 2000),
  image_url text check (length(image_url) <= 2000),
  created_at timestamptz default now(),
  unique (id, tenant_id)
);
create unique index if not exists products_tenant_sku_key on public.products (tenant_id, sku)
  where sku is not null;

-- The seed references warehouses but never defines them. `priority` orders
-- stock allocation (lower first); see create_wholesale_order.
create table if not exists public.warehouses (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  address text check (length(address) <= 500),
  priority integer not null default 100,
  is_active boolean not null default true,
  created_at timestamptz default now(),
  unique (id, tenant_id)
);

create table if not exists public.wholesale_inventory (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  product_id uuid not null,
  warehouse_id uuid not null,
  quantity numeric(10, 2) not null default 0 check (quantity >= 0),
  reorder_point numeric(10, 2) check (reorder_point >= 0),
  last_updated timestamptz default now(),
  unique (product_id, warehouse_id),
  foreign key (product_id, tenant_id) references public.products (id, tenant_id) on delete cascade,
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);
create index if not exists wholesale_inventory_warehouse_id_idx on public.wholesale_inventory (warehouse_id);

create table if not exists public.wholesale_clients (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  email text check (length(email) <= 320),
  phone text check (length(phone) <= 32),
  address text check (length(address) <= 500),
  -- Null means no credit line: orders on net terms are refused. Set by an
  -- admin or owner only (private.guard_client_write).
  credit_limit numeric(10, 2) check (credit_limit >= 0),
  -- What the client owes; written only by the RPCs that move money (orders on
  -- net terms raise it, credit returns lower it, below zero when the client is
  -- owed money). Members have no privilege on it; a new client starts at zero
  -- or above (private.guard_client_write).
  current_balance numeric(10, 2) not null default 0,
  payment_terms text check (length(payment_terms) <= 100),
  status text not null default 'active' check (status in ('active', 'inactive', 'suspended')),
  created_at timestamptz default now(),
  unique (id, tenant_id)
);

select private.isolate_by_tenant('public.products', 'products');
select private.isolate_by_tenant('public.warehouses', 'warehouses');
select private.isolate_by_tenant('public.wholesale_inventory', 'inventory');
select private.isolate_by_tenant('public.wholesale_clients', 'clients');

-- Members manage their catalogue directly; RLS confines them to their tenant
-- and keeps viewers out. A client's balance is not theirs to write: it has no
-- insert or update grant, and credit_limit and status are an admin's
-- (private.guard_client_write).
revoke all on public.products, public.warehouses, public.wholesale_inventory,
  public.wholesale_clients from anon, authenticated;
grant select, insert, update, delete on public.products, public.warehouses,
  public.wholesale_inventory to authenticated;
grant select, delete on public.wholesale_clients to authenticated;
grant insert (id, tenant_id, name, email, phone, address, payment_terms, credit_limit, status)
  on public.wholesale_clients to authenticated;
grant update (name, email, phone, address, payment_terms, credit_limit, status)
  on public.wholesale_clients to authenticated;
grant all on public.products, public.warehouses, public.wholesale_inventory,
  public.wholesale_clients to service_role;

/*
 * private.guard_client_write(): before a client row is inserted, updated or
 * deleted.
 *
 * For a signed-in user (auth.uid() set, directly or inside an RPC), a
 * credit_limit or status other than the default (insert) or the old value
 * (update) needs the admin role or a higher one: CEA03 (FORBIDDEN) otherwise.
 * Deleting a client whose status is not active needs the admin role too, so
 * a member cannot delete a suspended client and create it again as active.
 * The service role and the database owner (migrations, seed) are not users.
 *
 * For everyone, a new client starts with a balance of zero or more: a
 * negative one raises 23514 (check_violation). A CHECK cannot say this,
 * because a credit return may later take the balance below zero.
 *
 * security definer so it reads the caller's role whatever the caller may
 * read. Locks nothing.
 */
create or replace function private.guard_client_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  -- Deleting a client who is not active (then creating it again) would undo
  -- an admin's decision: that, too, is an admin's.
  if tg_op = 'DELETE' then
    if (select auth.uid()) is not null and old.status <> 'active' then
      perform private.require_role(old.tenant_id, 'admin');
    end if;
    return old;
  end if;
  if tg_op = 'INSERT' and new.current_balance < 0 then
    raise exception using errcode = '23514', message = 'a new client cannot start with a negative balance',
      detail = jsonb_build_object('current_balance', new.current_balance)::text;
  end if;
  if (select auth.uid()) is not null
     and (case when tg_op = 'INSERT'
               then new.credit_limit is not null or new.status <> 'active'
               else new.credit_limit is distinct from old.credit_limit or new.status is distinct from old.status
          end) then
    perform private.require_role(new.tenant_id, 'admin');
  end if;
  return new;
end
$$;
revoke all on function private.guard_client_write() from public;

drop trigger if exists guard_client_write on public.wholesale_clients;
create trigger guard_client_write before insert or update or delete on public.wholesale_clients
  for each row execute function private.guard_client_write();
