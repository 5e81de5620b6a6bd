-- Wholesale orders, their lines, where each line's stock came from, deliveries
-- and low-stock alerts. Rows are written by public.create_wholesale_order.

create table if not exists public.wholesale_orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  client_id uuid not null,
  order_number text not null,
  status text not null default 'pending'
    check (status in ('pending', 'confirmed', 'shipped', 'delivered', 'cancelled')),
  total_amount numeric(10, 2) not null check (total_amount >= 0),
  payment_terms text not null
    check (payment_terms in ('prepaid', 'cod', 'net_15', 'net_30', 'net_60')),
  delivery_method text not null check (delivery_method in ('pickup', 'delivery', 'freight')),
  notes text check (length(notes) <= 2000),
  created_by uuid references auth.users (id),
  created_at timestamptz default now(),
  unique (tenant_id, order_number),
  unique (id, tenant_id),
  foreign key (client_id, tenant_id) references public.wholesale_clients (id, tenant_id)
);
create index if not exists wholesale_orders_client_id_idx on public.wholesale_orders (client_id);
-- An exchange's replacement order names the return it replaces; the foreign
-- key is added with return_authorizations (the returns migration).
alter table public.wholesale_orders add column if not exists exchange_for_return_id uuid;

-- tenant_id is repeated on child tables so RLS needs no join.
create table if not exists public.wholesale_order_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  order_id uuid not null,
  line_number integer not null check (line_number > 0),
  product_id uuid not null,
  -- the warehouse the line asked for, if any; where stock came from is in allocations
  warehouse_id uuid,
  quantity numeric(10, 2) not null check (quantity > 0),
  unit_price numeric(10, 2) not null check (unit_price >= 0),
  total_price numeric(10, 2) not null check (total_price >= 0),
  unique (order_id, line_number),
  unique (id, tenant_id),
  foreign key (order_id, tenant_id) references public.wholesale_orders (id, tenant_id) on delete cascade,
  foreign key (product_id, tenant_id) references public.products (id, tenant_id),
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);
create index if not exists wholesale_order_items_product_id_idx on public.wholesale_order_items (product_id);

-- Which warehouse each line's stock was taken from, and how much: a return
-- puts stock back exactly where it came from.
create table if not exists public.wholesale_order_allocations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  order_item_id uuid not null,
  warehouse_id uuid not null,
  quantity numeric(10, 2) not null check (quantity > 0),
  unique (order_item_id, warehouse_id),
  foreign key (order_item_id, tenant_id) references public.wholesale_order_items (id, tenant_id) on delete cascade,
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);

create table if not exists public.deliveries (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  order_id uuid not null,
  delivery_method text not null,
  status text not null default 'pending'
    check (status in ('pending', 'scheduled', 'in_transit', 'delivered', 'failed')),
  address text check (length(address) <= 500),
  scheduled_for date,
  created_at timestamptz default now(),
  unique (order_id),
  foreign key (order_id, tenant_id) references public.wholesale_orders (id, tenant_id) on delete cascade
);

create table if not exists public.inventory_alerts (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  product_id uuid not null,
  warehouse_id uuid not null,
  current_quantity numeric(10, 2),
  reorder_point numeric(10, 2),
  status text not null default 'active' check (status in ('active', 'resolved')),
  alert_sent_at timestamptz,
  created_at timestamptz default now(),
  foreign key (product_id, tenant_id) references public.products (id, tenant_id) on delete cascade,
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);
-- At most one active alert per stock row; later orders update it.
create unique index if not exists inventory_alerts_one_active_idx
  on public.inventory_alerts (product_id, warehouse_id) where status = 'active';

select private.isolate_by_tenant('public.wholesale_orders', 'orders');
select private.isolate_by_tenant('public.wholesale_order_items', 'order items');
select private.isolate_by_tenant('public.wholesale_order_allocations', 'allocations');
select private.isolate_by_tenant('public.deliveries', 'deliveries');
select private.isolate_by_tenant('public.inventory_alerts', 'inventory alerts');

revoke all on public.wholesale_orders, public.wholesale_order_items,
  public.wholesale_order_allocations, public.deliveries, public.inventory_alerts
  from anon, authenticated;
-- Orders and their lines are created only through create_wholesale_order.
grant select on public.wholesale_orders, public.wholesale_order_items,
  public.wholesale_order_allocations to authenticated;
-- Members work deliveries and alerts through their lifecycle. A delivery's
-- status, date and address are theirs to change; which order (and so which
-- tenant) it belongs to and how it goes are fixed by the order.
grant select on public.deliveries to authenticated;
grant update (status, scheduled_for, address) on public.deliveries to authenticated;
grant select, update on public.inventory_alerts to authenticated;
grant all on public.wholesale_orders, public.wholesale_order_items,
  public.wholesale_order_allocations, public.deliveries, public.inventory_alerts to service_role;
