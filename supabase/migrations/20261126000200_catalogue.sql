-- Catalogue: products, warehouses, stock per warehouse, and wholesale clients.
--
-- Every table that points at another tenant-owned row does so through a
-- composite (id, tenant_id) foreign key, so a row can never reference another
-- tenant's product, warehouse or client, whatever a caller sends.

create table if not exists public.products (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null,
  sku text,
  category text,
  price numeric(10, 2) check (price >= 0),
  description text,
  image_url text,
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
  name text not null,
  address text,
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
  name text not null,
  email text,
  phone text,
  address text,
  -- Null means no credit line: orders on net terms are refused.
  credit_limit numeric(10, 2) check (credit_limit >= 0),
  current_balance numeric(10, 2) not null default 0,
  payment_terms text,
  status text not null default 'active' check (status in ('active', 'inactive', 'suspended')),
  created_at timestamptz default now(),
  unique (id, tenant_id)
);

select private.isolate_by_tenant('public.products', 'products');
select private.isolate_by_tenant('public.warehouses', 'warehouses');
select private.isolate_by_tenant('public.wholesale_inventory', 'inventory');
select private.isolate_by_tenant('public.wholesale_clients', 'clients');

-- Members manage their catalogue directly; RLS confines them to their tenant.
revoke all on public.products, public.warehouses, public.wholesale_inventory,
  public.wholesale_clients from anon, authenticated;
grant select, insert, update, delete on public.products, public.warehouses,
  public.wholesale_inventory, public.wholesale_clients to authenticated;
grant all on public.products, public.warehouses, public.wholesale_inventory,
  public.wholesale_clients to service_role;
