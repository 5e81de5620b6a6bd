-- Lot traceability: batches (lots), stock per batch, FEFO allocation,
-- quality control and quarantine.
--
-- Stock model. public.wholesale_inventory stays what it was: the stock on the
-- shelf per product and warehouse, which orders, returns, alerts and reports
-- read. public.batch_inventory breaks part of it down by lot: a row per
-- batch and warehouse. Its changes are applied to wholesale_inventory by a
-- trigger (private.sync_batch_stock), so
--     wholesale_inventory.quantity = Σ batch_inventory.quantity + untracked stock
-- and a product that never had a batch has no batch_inventory row and works
-- exactly as before. A direct write that would take wholesale_inventory below
-- its lots' stock is refused (private.guard_lot_stock).
--
-- Stock a batch can no longer sell (a failed quality test, a recall, a
-- return of a quarantined lot) moves out of the shelf into
-- quarantined_inventory, a row per batch and warehouse, until it is released
-- (back to the shelf) or destroyed. So for every batch
--     received = shelf + shipped − returned + quarantined + destroyed
-- (tests.lot_conservation checks it).
--
-- Lock order, for everything that moves stock:
--   client (FOR NO KEY UPDATE) → wholesale_inventory (product_id, warehouse_id)
--          → batch_inventory (product_id, warehouse_id, batch_id)
--          → batches (id) → quarantined_inventory → document counters.
-- The wholesale_inventory rows of a product are the gate: whoever changes a
-- lot's stock or status holds them first, so an order and a recall of the
-- same product run one after the other, never crossing. Orders and returns
-- hold the client row FOR NO KEY UPDATE, which does not block the KEY SHARE
-- lock a recall's consignee rows take on it (their foreign key) while the
-- recall holds the stock: a recall never waits on a client an order holds.
--
-- Re-runnable like every migration here.

-- ------------------------------------------------------------------ batches

create table if not exists public.batches (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  product_id uuid not null,
  lot_number text not null check (length(lot_number) between 1 and 100 and lot_number !~ '[[:cntrl:]]'),
  produced_on date,
  expires_on date,
  supplier_id uuid,
  purchase_order_id uuid,
  -- everything ever received into this lot (receive_batch adds to it)
  quantity_received numeric(12, 2) not null default 0 check (quantity_received >= 0),
  status text not null default 'available'
    check (status in ('available', 'on_hold', 'quarantined', 'recalled', 'expired')),
  created_at timestamptz not null default now(),
  unique (tenant_id, product_id, lot_number),
  unique (id, tenant_id),
  unique (id, product_id, tenant_id),
  check (expires_on is null or produced_on is null or expires_on >= produced_on),
  foreign key (product_id, tenant_id) references public.products (id, tenant_id) on delete cascade,
  foreign key (supplier_id, tenant_id) references public.suppliers (id, tenant_id),
  foreign key (purchase_order_id, tenant_id) references public.purchase_orders (id, tenant_id)
);
create index if not exists batches_lot_idx on public.batches (tenant_id, lot_number);

create table if not exists public.batch_inventory (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  batch_id uuid not null,
  product_id uuid not null,
  warehouse_id uuid not null,
  quantity numeric(12, 2) not null default 0 check (quantity >= 0),
  unique (batch_id, warehouse_id),
  foreign key (batch_id, product_id, tenant_id) references public.batches (id, product_id, tenant_id)
    on delete cascade,
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);
create index if not exists batch_inventory_stock_idx on public.batch_inventory (product_id, warehouse_id);

-- Which lot each allocation took: every unit shipped traces to a lot (or to
-- untracked stock, batch_id null). An order line takes from a warehouse once
-- per lot.
alter table public.wholesale_order_allocations add column if not exists batch_id uuid;
alter table public.wholesale_order_allocations
  drop constraint if exists wholesale_order_allocations_batch_fkey;
alter table public.wholesale_order_allocations add constraint wholesale_order_allocations_batch_fkey
  foreign key (batch_id, tenant_id) references public.batches (id, tenant_id);
alter table public.wholesale_order_allocations
  drop constraint if exists wholesale_order_allocations_order_item_id_warehouse_id_key;
create unique index if not exists wholesale_order_allocations_line_lot_key
  on public.wholesale_order_allocations (order_item_id, warehouse_id, batch_id) nulls not distinct;
create index if not exists wholesale_order_allocations_batch_idx
  on public.wholesale_order_allocations (batch_id) where batch_id is not null;

create table if not exists public.quality_control_tests (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  batch_id uuid not null,
  product_id uuid not null,
  -- the certificate of analysis: '<bucket>/<path>' in Storage (quality-control)
  file_url text check (length(file_url) <= 1100),
  test_results jsonb check (pg_column_size(test_results) <= 65536),
  expiration_date date,
  status text not null default 'pending' check (status in ('pending', 'passed', 'failed')),
  recorded_by uuid references auth.users (id),
  created_at timestamptz not null default now(),
  foreign key (batch_id, product_id, tenant_id) references public.batches (id, product_id, tenant_id)
    on delete cascade
);
create index if not exists quality_control_tests_batch_idx on public.quality_control_tests (batch_id);

create table if not exists public.quarantined_inventory (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  product_id uuid not null,
  batch_id uuid not null,
  warehouse_id uuid not null,
  quantity numeric(12, 2) not null check (quantity > 0),
  reason text not null check (length(reason) <= 2000),
  -- what put it here: a failed test, a recall, or a return of a lot that was
  -- quarantined or recalled by then
  source text not null check (source in ('quality_test', 'recall', 'return', 'manual')),
  quality_test_id uuid references public.quality_control_tests (id),
  recall_id uuid,
  status text not null default 'quarantined' check (status in ('quarantined', 'released', 'destroyed')),
  created_at timestamptz not null default now(),
  released_at timestamptz,
  resolved_by uuid references auth.users (id),
  resolution_note text check (length(resolution_note) <= 2000),
  foreign key (batch_id, product_id, tenant_id) references public.batches (id, product_id, tenant_id)
    on delete cascade,
  foreign key (warehouse_id, tenant_id) references public.warehouses (id, tenant_id)
);
create index if not exists quarantined_inventory_batch_idx on public.quarantined_inventory (batch_id);

select private.isolate_by_tenant('public.batches', 'batches');
select private.isolate_by_tenant('public.batch_inventory', 'batch stock');
select private.isolate_by_tenant('public.quality_control_tests', 'quality tests');
select private.isolate_by_tenant('public.quarantined_inventory', 'quarantine');

-- Members read lots, lot stock, tests and quarantine; every change goes
-- through the RPCs below, which keep the stock equations true. A batch's
-- dates and supplier are a member's to correct.
revoke all on public.batches, public.batch_inventory, public.quality_control_tests,
  public.quarantined_inventory from anon, authenticated;
grant select on public.batches, public.batch_inventory, public.quality_control_tests,
  public.quarantined_inventory to authenticated;
grant update (produced_on, expires_on, supplier_id, purchase_order_id) on public.batches to authenticated;
grant all on public.batches, public.batch_inventory, public.quality_control_tests,
  public.quarantined_inventory to service_role;

-- ------------------------------------------------------- stock bookkeeping

/*
 * private.sync_batch_stock(): after a batch_inventory row changes, applies
 * the change to its product's wholesale_inventory row (creating it at the
 * delta when missing). The caller holds that row already (lock order above).
 */
create or replace function private.sync_batch_stock()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  delta numeric := coalesce(case when tg_op <> 'DELETE' then new.quantity end, 0)
                 - coalesce(case when tg_op <> 'INSERT' then old.quantity end, 0);
  r public.batch_inventory%rowtype := case when tg_op = 'DELETE' then old else new end;
begin
  if delta <> 0 then
    -- An update first: a row proposed for insert with a negative delta would
    -- fail its CHECK before ON CONFLICT could turn it into an update.
    update public.wholesale_inventory i set quantity = i.quantity + delta, last_updated = now()
    where i.product_id = r.product_id and i.warehouse_id = r.warehouse_id;
    -- No row: create it for stock arriving; stock leaving a row already gone
    -- is a product or tenant being deleted (a cascade), with nothing to keep.
    if not found and delta > 0 then
      insert into public.wholesale_inventory (tenant_id, product_id, warehouse_id, quantity)
      values (r.tenant_id, r.product_id, r.warehouse_id, delta);
    end if;
  end if;
  return null;
end
$$;
revoke all on function private.sync_batch_stock() from public;
drop trigger if exists sync_batch_stock on public.batch_inventory;
create trigger sync_batch_stock after insert or update of quantity or delete on public.batch_inventory
  for each row execute function private.sync_batch_stock();

/*
 * private.guard_lot_stock(): a wholesale_inventory row never holds less than
 * its lots (batch_inventory) do: a member lowering or deleting it directly
 * may take only untracked stock. Raises 23514 otherwise.
 */
create or replace function private.guard_lot_stock()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  in_lots numeric;
  r public.wholesale_inventory%rowtype := old;
  left_after numeric := case when tg_op = 'DELETE' then 0 else new.quantity end;
begin
  -- A product or tenant being deleted takes its lots with it (a cascade,
  -- fired from a foreign key's trigger): nothing to protect then.
  if tg_op = 'DELETE' and pg_trigger_depth() > 1 then
    return old;
  end if;
  if tg_op = 'UPDATE' and (new.quantity >= old.quantity and new.product_id = old.product_id
                           and new.warehouse_id = old.warehouse_id) then
    return new;
  end if;
  select coalesce(sum(b.quantity), 0) into in_lots from public.batch_inventory b
  where b.product_id = r.product_id and b.warehouse_id = r.warehouse_id;
  if left_after < in_lots or (tg_op = 'UPDATE' and in_lots > 0
      and (new.product_id <> old.product_id or new.warehouse_id <> old.warehouse_id)) then
    raise exception using errcode = '23514',
      message = 'this stock is held in lots: change it through the lot functions',
      detail = jsonb_build_object('product_id', r.product_id, 'warehouse_id', r.warehouse_id,
        'in_lots', in_lots, 'quantity', left_after)::text;
  end if;
  return case when tg_op = 'DELETE' then old else new end;
end
$$;
revoke all on function private.guard_lot_stock() from public;
drop trigger if exists guard_lot_stock on public.wholesale_inventory;
create trigger guard_lot_stock before update or delete on public.wholesale_inventory
  for each row execute function private.guard_lot_stock();

/* private.tenant_today(tenant): today's date in the tenant's time zone. */
create or replace function private.tenant_today(tenant uuid)
returns date
language sql
stable
set search_path = ''
as $$
  select (now() at time zone coalesce((select t.time_zone from public.tenants t where t.id = tenant), 'UTC'))::date
$$;
revoke all on function private.tenant_today(uuid) from public;

/*
 * private.lock_stock(tenant, products): locks, in the one order, the
 * wholesale_inventory rows then the batch_inventory rows of the products.
 */
create or replace function private.lock_stock(tenant uuid, products uuid[])
returns void
language plpgsql
set search_path = ''
as $$
begin
  perform 1 from public.wholesale_inventory i
  where i.tenant_id = tenant and i.product_id = any (products)
  order by i.product_id, i.warehouse_id
  for update;
  perform 1 from public.batch_inventory b
  where b.tenant_id = tenant and b.product_id = any (products)
  order by b.product_id, b.warehouse_id, b.batch_id
  for update;
end
$$;
revoke all on function private.lock_stock(uuid, uuid[]) from public;

-- ------------------------------------------------------------- allocation

/*
 * private.take_stock(tenant, lines): takes stock for order lines
 * ([{product_id, quantity, warehouse_id?}, …]) and returns where it came from:
 * [{line (1-based), warehouse_id, batch_id (null: untracked stock), quantity}, …].
 *
 * Locks: private.lock_stock of the lines' products. Every caller locks in
 * that one order, so orders whose lines cross ([A,B] against [B,A]) wait for
 * each other instead of deadlocking.
 *
 * Allocation: a line that names a warehouse takes all of it from there.
 * Otherwise it takes from the tenant's active warehouses in order of
 * (priority, name, id): the first warehouse is drained before the next is
 * touched. Within a warehouse, FEFO: the lot that expires first, then lots
 * without an expiry date, then untracked stock. A lot that is not
 * 'available' (on hold, quarantined, recalled, expired) or whose expiry date
 * is before today in the tenant's zone is never taken. Lines are served in
 * request order.
 *
 * Rows that end at or below their reorder_point get (or update) an active
 * inventory_alerts row.
 *
 * Raises CES01 (INSUFFICIENT_STOCK) if any line is short, with every short
 * line's product, warehouse, requested and available quantity in details;
 * nothing is taken then, because the caller's transaction rolls back.
 */
create or replace function private.take_stock(tenant uuid, lines jsonb)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  line jsonb;
  n bigint;
  wanted numeric;
  available numeric;
  take numeric;
  slot record;
  today date := private.tenant_today(tenant);
  lotted boolean;
  -- Arrays, not jsonb: PL/pgSQL appends to an array in place, while each
  -- jsonb || copies the whole value (quadratic over a 500-line order).
  taken jsonb[] := '{}'::jsonb[];
  short jsonb[] := '{}'::jsonb[];
  touched uuid[] := '{}'::uuid[];
begin
  perform private.lock_stock(tenant,
    array(select (l ->> 'product_id')::uuid from jsonb_array_elements(lines) l));
  -- Products without lots take the short path, exactly as before lots existed.
  lotted := exists (
    select 1 from public.batch_inventory b
    where b.tenant_id = tenant
      and b.product_id in (select (l ->> 'product_id')::uuid from jsonb_array_elements(lines) l));

  for line, n in select l, o from jsonb_array_elements(lines) with ordinality t(l, o) loop
    wanted := (line ->> 'quantity')::numeric;
    available := 0;
    for slot in
      select s.* from private.stock_slots(tenant, (line ->> 'product_id')::uuid,
                                          (line ->> 'warehouse_id')::uuid, today, lotted) s
    loop
      available := available + slot.quantity;
    end loop;
    if available < wanted then
      short := short || jsonb_build_object(
        'line', n - 1, 'product_id', line ->> 'product_id', 'warehouse_id', line -> 'warehouse_id',
        'requested', wanted, 'available', available);
      continue;
    end if;
    for slot in
      select s.* from private.stock_slots(tenant, (line ->> 'product_id')::uuid,
                                          (line ->> 'warehouse_id')::uuid, today, lotted) s
    loop
      exit when wanted = 0;
      take := least(wanted, slot.quantity);
      if slot.batch_id is null then
        update public.wholesale_inventory
        set quantity = quantity - take, last_updated = now()
        where id = slot.inventory_id;
      else
        -- private.sync_batch_stock takes it off wholesale_inventory too.
        update public.batch_inventory set quantity = quantity - take where id = slot.lot_stock_id;
      end if;
      taken := taken || jsonb_build_object('line', n, 'warehouse_id', slot.warehouse_id,
        'batch_id', slot.batch_id, 'quantity', take);
      touched := touched || slot.inventory_id;
      wanted := wanted - take;
    end loop;
  end loop;

  if cardinality(short) > 0 then
    perform private.raise_error('CES01',
      format('not enough stock for %s line(s)', cardinality(short)),
      jsonb_build_object('short', to_jsonb(short)));
  end if;

  insert into public.inventory_alerts (tenant_id, product_id, warehouse_id, current_quantity, reorder_point)
  select i.tenant_id, i.product_id, i.warehouse_id, i.quantity, i.reorder_point
  from public.wholesale_inventory i
  where i.id = any (touched) and i.reorder_point is not null and i.quantity <= i.reorder_point
  on conflict (product_id, warehouse_id) where status = 'active'
  do update set current_quantity = excluded.current_quantity, reorder_point = excluded.reorder_point;

  return to_jsonb(taken);
end
$$;
revoke all on function private.take_stock(uuid, jsonb) from public;

/*
 * private.stock_slots(tenant, product, warehouse, today, lotted): where a
 * line may take stock, in the order it takes it (see take_stock): per active
 * warehouse (only `warehouse` when given) by (priority, name, id), the
 * sellable lots by expiry (none last), then the untracked stock. Only slots
 * with stock. `lotted` false skips the lot tables (no lots for the order's
 * products). Reads; the caller holds the locks.
 */
create or replace function private.stock_slots(tenant uuid, product uuid, warehouse uuid, today date,
  lotted boolean)
returns table (warehouse_id uuid, inventory_id uuid, batch_id uuid, lot_stock_id uuid, quantity numeric)
language sql
stable
set search_path = ''
as $$
  select s.warehouse_id, s.inventory_id, s.batch_id, s.lot_stock_id, s.quantity
  from (
    select w.priority, w.name, w.id as warehouse_id, i.id as inventory_id, b.id as batch_id,
           bi.id as lot_stock_id, b.expires_on, bi.quantity, 0 as untracked
    from public.batch_inventory bi
    join public.batches b on b.id = bi.batch_id
    join public.warehouses w on w.id = bi.warehouse_id
    join public.wholesale_inventory i on i.product_id = bi.product_id and i.warehouse_id = bi.warehouse_id
    where lotted and bi.tenant_id = tenant and bi.product_id = product and w.is_active
      and (warehouse is null or bi.warehouse_id = warehouse)
      and bi.quantity > 0 and b.status = 'available' and (b.expires_on is null or b.expires_on >= today)
    union all
    select w.priority, w.name, w.id, i.id, null, null, null,
           i.quantity - case when lotted then coalesce((
             select sum(bi.quantity) from public.batch_inventory bi
             where bi.product_id = i.product_id and bi.warehouse_id = i.warehouse_id), 0) else 0 end,
           1
    from public.wholesale_inventory i
    join public.warehouses w on w.id = i.warehouse_id
    where i.tenant_id = tenant and i.product_id = product and w.is_active
      and (warehouse is null or i.warehouse_id = warehouse)
  ) s
  where s.quantity > 0
  order by s.priority, s.name, s.warehouse_id, s.untracked, s.expires_on nulls last, s.batch_id
$$;
revoke all on function private.stock_slots(uuid, uuid, uuid, date, boolean) from public;

/*
 * private.record_allocations(tenant, order_id, taken): the allocation rows of
 * a new order, from take_stock's answer (with the lot each took).
 */
create or replace function private.record_allocations(tenant uuid, new_order uuid, taken jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.wholesale_order_allocations (tenant_id, order_item_id, warehouse_id, batch_id, quantity)
  select tenant, i.id, (a ->> 'warehouse_id')::uuid, (a ->> 'batch_id')::uuid, (a ->> 'quantity')::numeric
  from jsonb_array_elements(taken) a
  join public.wholesale_order_items i on i.order_id = new_order and i.line_number = (a ->> 'line')::integer
$$;
revoke all on function private.record_allocations(uuid, uuid, jsonb) from public;

/*
 * private.restock_allocation(tenant, allocation, put): puts `put` units of an
 * allocation back (a return): untracked stock onto its warehouse's shelf; a
 * lot's back to that lot on the shelf, unless the lot is quarantined or
 * recalled by now: then into quarantine (source 'return'). Returns where it
 * went: {warehouse_id, batch_id, quantity, quarantined}. The caller holds the
 * stock locks (private.lock_stock of the product).
 */
create or replace function private.restock_allocation(tenant uuid, alloc uuid, put numeric)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  a record;
  lot public.batches%rowtype;
begin
  update public.wholesale_order_allocations x set returned_quantity = x.returned_quantity + put
  where x.id = alloc
  returning x.warehouse_id, x.batch_id, (select i.product_id from public.wholesale_order_items i
                                          where i.id = x.order_item_id) as product_id
  into a;
  if a.batch_id is null then
    insert into public.wholesale_inventory as inv (tenant_id, product_id, warehouse_id, quantity)
    values (tenant, a.product_id, a.warehouse_id, put)
    on conflict (product_id, warehouse_id)
    do update set quantity = inv.quantity + excluded.quantity, last_updated = now();
    return jsonb_build_object('warehouse_id', a.warehouse_id, 'quantity', put);
  end if;
  select * into lot from public.batches b where b.id = a.batch_id;
  if lot.status in ('quarantined', 'recalled') then
    insert into public.quarantined_inventory
      (tenant_id, product_id, batch_id, warehouse_id, quantity, reason, source, recall_id)
    values (tenant, a.product_id, a.batch_id, a.warehouse_id, put,
      format('returned while lot %s was %s', lot.lot_number, lot.status), 'return',
      (select r.id from public.batch_recalls r
       where r.tenant_id = tenant and a.batch_id = any (r.batch_ids) order by r.initiated_at desc limit 1));
  else
    insert into public.batch_inventory as bi (tenant_id, batch_id, product_id, warehouse_id, quantity)
    values (tenant, a.batch_id, a.product_id, a.warehouse_id, put)
    on conflict (batch_id, warehouse_id) do update set quantity = bi.quantity + excluded.quantity;
  end if;
  return jsonb_build_object('warehouse_id', a.warehouse_id, 'batch_id', a.batch_id, 'quantity', put,
    'quarantined', lot.status in ('quarantined', 'recalled'));
end
$$;
revoke all on function private.restock_allocation(uuid, uuid, numeric) from public;

-- Placing an order and returning one now record and restore lots; the rest
-- of both is unchanged (see their first migrations).

/*
 * private.place_wholesale_order(tenant, client, lines, payment_terms,
 * delivery_method, notes, caller, exchange_for): the part of placing an order
 * that create_wholesale_order and exchanges share. The caller has checked
 * membership, validated the lines and locked the client row.
 *
 * lines: [{product_id, quantity, unit_price, warehouse_id?}]
 * returns: {order_id, order_number, total_amount, notifications_queued}
 *
 * Checks every product and warehouse is the tenant's (CEN04), the total fits
 * (CEV01) and, for net terms, the client's credit (CEC01); takes stock
 * (private.take_stock: CES01, FEFO by lot); numbers the order; inserts the order,
 * lines and allocations (with their lots); raises the balance for net terms; creates the delivery; queues
 * the confirmation; writes the audit row.
 *
 * exchange_for (a return's id) marks a replacement: it is linked to the return
 * and neither checked against nor charged to the client's credit, because the
 * returned goods were already paid for.
 *
 * Locks: the inventory rows (see take_stock), then the tenant's WO counter.
 */
create or replace function private.place_wholesale_order(
  tenant uuid,
  the_client public.wholesale_clients,
  lines jsonb,
  payment_terms text,
  delivery_method text,
  notes text,
  caller uuid,
  exchange_for uuid default null)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  missing jsonb;
  order_total numeric;
  on_credit boolean := payment_terms in ('net_15', 'net_30', 'net_60') and exchange_for is null;
  taken jsonb;
  new_order uuid;
  new_number text;
  queued integer;
begin
  perform private.require_products(tenant, lines);
  select coalesce(jsonb_agg(distinct l ->> 'warehouse_id'), '[]') into missing
  from jsonb_array_elements(lines) l
  where l ->> 'warehouse_id' is not null and not exists (
    select 1 from public.warehouses w
    where w.id = (l ->> 'warehouse_id')::uuid and w.tenant_id = tenant);
  if missing <> '[]' then
    perform private.raise_error('CEN04', 'warehouse not found',
      jsonb_build_object('resource', 'warehouse', 'ids', missing));
  end if;
  order_total := private.lines_total(lines, 'order');

  if on_credit and the_client.current_balance + order_total > coalesce(the_client.credit_limit, 0) then
    perform private.raise_error('CEC01', 'the order exceeds the client''s credit limit',
      jsonb_build_object(
        'credit_limit', coalesce(the_client.credit_limit, 0),
        'current_balance', the_client.current_balance,
        'order_total', order_total,
        'available_credit', greatest(coalesce(the_client.credit_limit, 0) - the_client.current_balance, 0)));
  end if;

  taken := private.take_stock(tenant, lines);

  new_number := private.next_document_number(tenant, 'WO');
  insert into public.wholesale_orders
    (tenant_id, client_id, order_number, total_amount, payment_terms, delivery_method, notes, created_by,
     exchange_for_return_id)
  values
    (tenant, the_client.id, new_number, order_total, payment_terms, delivery_method, notes, caller,
     exchange_for)
  returning id into new_order;

  insert into public.wholesale_order_items
    (tenant_id, order_id, line_number, product_id, warehouse_id, quantity, unit_price, total_price)
  select tenant, new_order, t.o, (t.l ->> 'product_id')::uuid, (t.l ->> 'warehouse_id')::uuid,
         (t.l ->> 'quantity')::numeric, (t.l ->> 'unit_price')::numeric,
         round((t.l ->> 'quantity')::numeric * (t.l ->> 'unit_price')::numeric, 2)
  from jsonb_array_elements(lines) with ordinality t(l, o);

  perform private.record_allocations(tenant, new_order, taken);

  if on_credit then
    update public.wholesale_clients c
    set current_balance = c.current_balance + order_total
    where c.id = the_client.id;
  end if;

  if delivery_method in ('delivery', 'freight') then
    insert into public.deliveries (tenant_id, order_id, delivery_method, address)
    values (tenant, new_order, delivery_method, the_client.address);
  end if;

  -- The confirmation is rendered from this snapshot, so it shows what was ordered.
  insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
  select tenant, ch.channel, 'order_confirmation', ch.recipient, snapshot.doc
  from (values ('email', the_client.email), ('sms', the_client.phone)) ch(channel, recipient)
  cross join (
    select jsonb_build_object(
      'order_id', new_order,
      'order_number', new_number,
      'business_name', (select t.business_name from public.tenants t where t.id = tenant),
      'client_name', the_client.name,
      'total_amount', order_total,
      'payment_terms', payment_terms,
      'delivery_method', delivery_method,
      'items', (
        select jsonb_agg(jsonb_build_object(
          'name', p.name, 'sku', p.sku, 'quantity', i.quantity,
          'unit_price', i.unit_price, 'total_price', i.total_price) order by i.line_number)
        from public.wholesale_order_items i
        join public.products p on p.id = i.product_id
        where i.order_id = new_order)) as doc
  ) snapshot
  where ch.recipient is not null and ch.recipient <> '';
  get diagnostics queued = row_count;

  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (tenant, caller, 'wholesale_order.created', 'wholesale_order', new_order,
    jsonb_build_object('order_number', new_number, 'total_amount', order_total,
      'client_id', the_client.id, 'lines', jsonb_array_length(lines))
    || case when exchange_for is null then '{}'::jsonb
            else jsonb_build_object('exchange_for_return_id', exchange_for) end);

  return jsonb_build_object('order_id', new_order, 'order_number', new_number, 'total_amount', order_total,
    'notifications_queued', queued);
end
$$;
revoke all on function private.place_wholesale_order(uuid, public.wholesale_clients, jsonb, text, text, text, uuid, uuid)
  from public;

/*
 * public.process_return(payload, idempotency_key): a return in one
 * transaction, as the calling user.
 *
 * payload: {order_id, items: [{order_item_id, quantity, reason}],
 *           return_method: 'refund' | 'exchange' | 'credit'}
 * returns: {return_id, ra_number, return_method, refund_amount, refund,
 *           exchange_order_id, exchange_order_number, notifications_queued}
 *   refund is {id, amount, payment_intent, status, stripe_refund_id, …} for
 *   refunds worth more than zero and null otherwise. A replay returns the
 *   first result with "replayed": true and the refund's current state, so the
 *   caller can finish a refund Stripe did not accept the first time.
 *
 * Steps: validate; find the order (the caller's tenant, as a member or a
 * higher role); rate limit; claim the key; lock the order and its client (for
 * an exchange the client must be active, as for an order); check every line
 * belongs to the order and that returned quantities stay within ordered ones;
 * value each line (below); put the stock back into the warehouses the lines
 * were allocated from (the highest-priority allocation first, never more than
 * was taken from each); number the RA
 * (RA-YYYY-NNNNNN); insert it and its lines; update the order's returned
 * totals; then by method:
 *   refund   — insert a pending refund for the returned value, against the
 *              order's Stripe payment (the edge function submits it), and an
 *              outbox row (channel 'stripe') due in two minutes, from which
 *              the dispatcher submits it if it is still pending then;
 *   credit   — lower the client's current_balance by the returned value;
 *   exchange — place a replacement order for the same products and
 *              quantities at the same prices, through place_wholesale_order;
 * queue the confirmation email; write the audit row; store the result.
 *
 * Locks, in order: a tenant slot and the admission row (private.admit_early);
 * the idempotency key; the order row
 * (so returns of one order run one at a time: the over-return guard); the
 * client row; the stock of the returned products (private.lock_stock, as
 * take_stock); the RA counter; for an exchange the WO
 * counter. create_wholesale_order takes client → inventory → WO counter, the
 * same relative order, so the two never deadlock.
 *
 * A line's value is round(returned so far incl. this return × unit_price, 2)
 * − round(returned before this return × unit_price, 2), so however a line is
 * returned in parts its returns never add up to more than the line (1 × 0.01
 * returned as 0.5 + 0.5 is worth 0.01 + 0.00). A refund worth 0.00 has
 * nothing to send to Stripe: no refunds row, and the return is completed.
 *
 * Raises: CEA01; CEV01; CEN04 (order or order_item missing or another
 * tenant's); CEA03 FORBIDDEN (a viewer); CEC02 CLIENT_INACTIVE (an exchange
 * for a client that is not active); CEX01 RETURN_EXCEEDS_ORDERED (details:
 * lines with ordered, already_returned, requested); CEX02 NOT_REFUNDABLE (no
 * card payment to refund); CES01 (an exchange without stock); CEI22; CEI09;
 * CER29.
 */
create or replace function public.process_return(payload jsonb, idempotency_key text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- First, before validating: a request refused for capacity costs nothing.
  admitted uuid := private.admit_early('process-return');
  caller uuid := private.begin_request(private.return_payload_errors(payload), idempotency_key);
  the_order public.wholesale_orders%rowtype;
  the_client public.wholesale_clients%rowtype;
  tenant uuid;
  replay jsonb;
  method text := payload ->> 'return_method';
  missing jsonb;
  over jsonb;
  line record;
  alloc record;
  left_to_restock numeric;
  put numeric;
  restocked jsonb;
  restocks jsonb := '{}'::jsonb;
  amounts jsonb;
  value numeric;
  ra uuid := gen_random_uuid();
  new_number text;
  refund uuid;
  exchange jsonb;
  queued integer;
  result jsonb;
begin
  select * into the_order from public.wholesale_orders o where o.id = (payload ->> 'order_id')::uuid;
  if not found or not private.is_member(the_order.tenant_id) then
    perform private.raise_error('CEN04', 'order not found',
      jsonb_build_object('resource', 'order', 'id', payload ->> 'order_id'));
  end if;
  tenant := the_order.tenant_id;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'process-return', admitted);

  if idempotency_key is not null then
    replay := private.claim_idempotency_key(tenant, idempotency_key, 'process_return', payload);
    if replay is not null then
      return replay || jsonb_build_object('refund',
        (select private.refund_json(r.id) from public.refunds r where r.ra_id = (replay ->> 'return_id')::uuid));
    end if;
  end if;

  select * into the_order from public.wholesale_orders o where o.id = the_order.id for update;
  -- NO KEY: a recall's consignee rows point at the client (a KEY SHARE lock)
  -- while it holds the stock this return waits for; they must not wait here.
  select * into the_client from public.wholesale_clients c where c.id = the_order.client_id for no key update;
  -- A replacement is an order: the client must be active, as for create_wholesale_order.
  if method = 'exchange' then
    perform private.require_active_client(the_client);
  end if;

  select coalesce(jsonb_agg(l ->> 'order_item_id'), '[]') into missing
  from jsonb_array_elements(payload -> 'items') l
  where not exists (
    select 1 from public.wholesale_order_items i
    where i.id = (l ->> 'order_item_id')::uuid and i.order_id = the_order.id);
  if missing <> '[]' then
    perform private.raise_error('CEN04', 'order item not found',
      jsonb_build_object('resource', 'order_item', 'ids', missing));
  end if;

  if method = 'refund' and the_order.stripe_payment_intent_id is null then
    perform private.raise_error('CEX02', 'the order has no card payment to refund; return it for credit instead',
      jsonb_build_object('order_id', the_order.id));
  end if;

  select coalesce(jsonb_agg(jsonb_build_object(
           'order_item_id', i.id, 'ordered', i.quantity, 'already_returned', i.returned_quantity,
           'requested', (l ->> 'quantity')::numeric, 'returnable', i.quantity - i.returned_quantity)), '[]')
  into over
  from jsonb_array_elements(payload -> 'items') l
  join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid
  where i.returned_quantity + (l ->> 'quantity')::numeric > i.quantity;
  if over <> '[]' then
    perform private.raise_error('CEX01', 'the return exceeds what was ordered',
      jsonb_build_object('lines', over));
  end if;

  -- What each line is worth: what all of its returns so far are worth, less
  -- what they were worth before this one, each rounded to the cent. However a
  -- line is returned in parts, its returns add up to at most its total_price.
  select coalesce(jsonb_object_agg(x.id::text, x.amount), '{}'), coalesce(sum(x.amount), 0)
  into amounts, value
  from (
    select i.id,
           round((i.returned_quantity + (l ->> 'quantity')::numeric) * i.unit_price, 2)
           - round(i.returned_quantity * i.unit_price, 2) as amount
    from jsonb_array_elements(payload -> 'items') l
    join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid
  ) x;

  -- Put the stock back where it came from: the warehouse, and the lot (or
  -- quarantine, when that lot is quarantined or recalled by now), units of
  -- recalled or quarantined lots first.
  perform private.lock_stock(tenant, array(
    select i.product_id from public.wholesale_order_items i
    where i.id in (select (l ->> 'order_item_id')::uuid from jsonb_array_elements(payload -> 'items') l)));
  for line in
    select i.id, i.product_id, (l ->> 'quantity')::numeric as quantity
    from jsonb_array_elements(payload -> 'items') l
    join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid
  loop
    left_to_restock := line.quantity;
    restocked := '[]';
    for alloc in
      select a.id, a.quantity - a.returned_quantity as open
      from public.wholesale_order_allocations a
      join public.warehouses w on w.id = a.warehouse_id
      left join public.batches b on b.id = a.batch_id
      where a.order_item_id = line.id and a.quantity > a.returned_quantity
      -- Units of a recalled or quarantined lot first: a client returning
      -- after a recall notice returns those, and they must not go back on
      -- sale as another lot's.
      order by coalesce(b.status in ('recalled', 'quarantined'), false) desc,
               w.priority, w.name, w.id, b.expires_on nulls last, a.batch_id nulls last
    loop
      exit when left_to_restock = 0;
      put := least(left_to_restock, alloc.open);
      restocked := restocked || private.restock_allocation(tenant, alloc.id, put);
      left_to_restock := left_to_restock - put;
    end loop;
    update public.wholesale_order_items i set returned_quantity = i.returned_quantity + line.quantity
    where i.id = line.id;
    restocks := restocks || jsonb_build_object(line.id::text, restocked);
  end loop;
  -- Stock back above its reorder point resolves that row's alert.
  update public.inventory_alerts al
  set status = 'resolved'
  from public.wholesale_inventory inv
  where al.status = 'active' and al.tenant_id = tenant
    and inv.product_id = al.product_id and inv.warehouse_id = al.warehouse_id
    and inv.reorder_point is not null and inv.quantity > inv.reorder_point
    and al.product_id in (
      select i.product_id from public.wholesale_order_items i
      where i.id in (select (l ->> 'order_item_id')::uuid from jsonb_array_elements(payload -> 'items') l));

  new_number := private.next_document_number(tenant, 'RA');
  insert into public.return_authorizations
    (id, tenant_id, order_id, ra_number, status, return_reason, return_method, refund_amount, created_by)
  values
    (ra, tenant, the_order.id, new_number, case when method = 'refund' and value > 0 then 'pending' else 'completed' end,
     (select left(string_agg(distinct trim(l ->> 'reason'), '; '), 2000) from jsonb_array_elements(payload -> 'items') l),
     method, value, caller);
  update public.return_authorizations r set completed_at = now() where r.id = ra and r.status = 'completed';

  insert into public.return_items (tenant_id, ra_id, order_item_id, quantity, reason, unit_price, amount, restocked)
  select tenant, ra, i.id, (l ->> 'quantity')::numeric, trim(l ->> 'reason'), i.unit_price,
         (amounts ->> i.id::text)::numeric, restocks -> i.id::text
  from jsonb_array_elements(payload -> 'items') l
  join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid;

  update public.wholesale_orders o
  set returned_amount = o.returned_amount + value,
      return_status = case
        when exists (select 1 from public.wholesale_order_items i
                     where i.order_id = o.id and i.returned_quantity < i.quantity) then 'partial'
        else 'full' end
  where o.id = the_order.id;

  if method = 'refund' and value > 0 then
    insert into public.refunds (tenant_id, ra_id, order_id, amount, payment_intent)
    values (tenant, ra, the_order.id, value, the_order.stripe_payment_intent_id)
    returning id into refund;
    -- The safety net: if the function cannot submit the refund now and the
    -- caller never repeats the request, the dispatcher submits it from here.
    -- Not due for two minutes, so it does not race the function's own attempt.
    insert into public.notification_outbox (tenant_id, channel, template, recipient, payload, next_attempt_at)
    values (tenant, 'stripe', 'refund', the_order.stripe_payment_intent_id,
      jsonb_build_object('refund_id', refund, 'return_id', ra, 'ra_number', new_number),
      now() + interval '2 minutes');
  elsif method = 'credit' then
    update public.wholesale_clients c set current_balance = c.current_balance - value
    where c.id = the_client.id;
  elsif method = 'exchange' then
    exchange := private.place_wholesale_order(tenant, the_client,
      (select jsonb_agg(jsonb_build_object('product_id', i.product_id, 'quantity', (l ->> 'quantity')::numeric,
                                           'unit_price', i.unit_price) order by i.line_number)
       from jsonb_array_elements(payload -> 'items') l
       join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid),
      the_order.payment_terms, the_order.delivery_method,
      format('Replacement for return %s of order %s', new_number, the_order.order_number),
      caller, ra);
    update public.return_authorizations r set exchange_order_id = (exchange ->> 'order_id')::uuid
    where r.id = ra;
  end if;

  insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
  select tenant, 'email', 'return_confirmation', the_client.email, jsonb_build_object(
    'return_id', ra,
    'ra_number', new_number,
    'order_number', the_order.order_number,
    'business_name', (select t.business_name from public.tenants t where t.id = tenant),
    'client_name', the_client.name,
    'return_method', method,
    'amount', value,
    'exchange_order_number', exchange ->> 'order_number',
    'items', (
      select jsonb_agg(jsonb_build_object('name', p.name, 'sku', p.sku, 'quantity', ri.quantity,
                                          'reason', ri.reason, 'amount', ri.amount) order by i.line_number)
      from public.return_items ri
      join public.wholesale_order_items i on i.id = ri.order_item_id
      join public.products p on p.id = i.product_id
      where ri.ra_id = ra))
  where the_client.email is not null and the_client.email <> '';
  get diagnostics queued = row_count;

  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (tenant, caller, 'return.created', 'return_authorization', ra,
    jsonb_build_object('ra_number', new_number, 'order_id', the_order.id, 'return_method', method,
      'amount', value, 'lines', jsonb_array_length(payload -> 'items'),
      'exchange_order_id', exchange ->> 'order_id', 'refund_id', refund));

  result := jsonb_build_object(
    'return_id', ra,
    'ra_number', new_number,
    'return_method', method,
    'refund_amount', value,
    'refund', private.refund_json(refund),
    'exchange_order_id', exchange ->> 'order_id',
    'exchange_order_number', exchange ->> 'order_number',
    'notifications_queued', queued + coalesce((exchange ->> 'notifications_queued')::integer, 0));
  if idempotency_key is not null then
    perform private.store_idempotent_response(tenant, idempotency_key, result);
  end if;
  return result;
end
$$;
revoke all on function public.process_return(jsonb, text) from public, anon;
grant execute on function public.process_return(jsonb, text) to authenticated, service_role;

-- ------------------------------------------------------- receiving a lot

/*
 * public.receive_batch(payload): stock arrives in a lot. payload:
 * {product_id, lot_number, warehouse_id, quantity, produced_on?, expires_on?,
 *  supplier_id?, purchase_order_id?}. Creates the batch the first time its
 * (product, lot_number) is seen, adds the quantity to the lot's stock in the
 * warehouse (and so to wholesale_inventory) and to quantity_received.
 * Returns the batch row as JSON. The member role or higher.
 *
 * A lot that is not 'available' receives nothing (CE409 LOT_NOT_AVAILABLE):
 * stock added to a quarantined or recalled lot would go on sale.
 * Dates given for a lot that exists must match it (CE409 LOT_DATES_DIFFER).
 *
 * Locks: the product's wholesale_inventory row for the warehouse, then its
 * lot stock, then the batch (the stock lock order).
 */
create or replace function public.receive_batch(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  date_re constant text := '^\d{4}-\d{2}-\d{2}$';
  errors jsonb := '{}'::jsonb;
  caller uuid;
  tenant uuid;
  product uuid;
  warehouse uuid;
  lot public.batches%rowtype;
  qty numeric;
  field text;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    errors := '{"body": "must be an object"}';
  else
    errors := private.unknown_fields(payload, '', array['product_id', 'lot_number', 'warehouse_id', 'quantity',
      'produced_on', 'expires_on', 'supplier_id', 'purchase_order_id'])
      || (select coalesce(jsonb_object_agg(ltrim(e.k, '.'), e.v), '{}')
          from jsonb_each(private.amount_errors(payload, '', 'quantity', true)) e(k, v));
    foreach field in array array['product_id', 'warehouse_id'] loop
      if not coalesce(payload ->> field ~ uuid_re, false) then
        errors := errors || jsonb_build_object(field, 'must be a UUID string');
      end if;
    end loop;
    foreach field in array array['supplier_id', 'purchase_order_id'] loop
      if coalesce(jsonb_typeof(payload -> field), 'null') <> 'null' and not coalesce(payload ->> field ~ uuid_re, false) then
        errors := errors || jsonb_build_object(field, 'must be a UUID string');
      end if;
    end loop;
    foreach field in array array['produced_on', 'expires_on'] loop
      if coalesce(jsonb_typeof(payload -> field), 'null') <> 'null'
         and (not coalesce(payload ->> field ~ date_re, false) or private.try_date(payload ->> field) is null) then
        errors := errors || jsonb_build_object(field, 'must be a date (YYYY-MM-DD)');
      end if;
    end loop;
    if jsonb_typeof(payload -> 'lot_number') is distinct from 'string'
       or length(trim(payload ->> 'lot_number')) not between 1 and 100
       or payload ->> 'lot_number' ~ '[[:cntrl:]\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]' then
      errors := errors || '{"lot_number": "must be 1 to 100 characters, without control or invisible characters"}';
    end if;
    if errors = '{}' and (payload ->> 'expires_on')::date < (payload ->> 'produced_on')::date then
      errors := errors || '{"expires_on": "must not be before produced_on"}';
    end if;
  end if;
  caller := private.begin_request(errors, null);
  product := (payload ->> 'product_id')::uuid;
  warehouse := (payload ->> 'warehouse_id')::uuid;
  qty := (payload ->> 'quantity')::numeric;
  select p.tenant_id into tenant from public.products p where p.id = product;
  if tenant is null or not private.is_member(tenant) then
    perform private.raise_error('CEN04', 'product not found',
      jsonb_build_object('resource', 'product', 'id', product));
  end if;
  perform private.require_role(tenant, 'member');
  if not exists (select 1 from public.warehouses w where w.id = warehouse and w.tenant_id = tenant) then
    perform private.raise_error('CEN04', 'warehouse not found',
      jsonb_build_object('resource', 'warehouse', 'id', warehouse));
  end if;
  if payload ->> 'supplier_id' is not null and not exists (
      select 1 from public.suppliers s where s.id = (payload ->> 'supplier_id')::uuid and s.tenant_id = tenant) then
    perform private.raise_error('CEN04', 'supplier not found',
      jsonb_build_object('resource', 'supplier', 'id', payload ->> 'supplier_id'));
  end if;
  if payload ->> 'purchase_order_id' is not null and not exists (
      select 1 from public.purchase_orders o where o.id = (payload ->> 'purchase_order_id')::uuid
        and o.tenant_id = tenant) then
    perform private.raise_error('CEN04', 'purchase order not found',
      jsonb_build_object('resource', 'purchase_order', 'id', payload ->> 'purchase_order_id'));
  end if;

  insert into public.wholesale_inventory (tenant_id, product_id, warehouse_id, quantity)
  values (tenant, product, warehouse, 0)
  on conflict (product_id, warehouse_id) do nothing;
  perform private.lock_stock(tenant, array[product]);

  insert into public.batches (tenant_id, product_id, lot_number, produced_on, expires_on, supplier_id,
    purchase_order_id)
  values (tenant, product, trim(payload ->> 'lot_number'), (payload ->> 'produced_on')::date,
    (payload ->> 'expires_on')::date, (payload ->> 'supplier_id')::uuid, (payload ->> 'purchase_order_id')::uuid)
  on conflict (tenant_id, product_id, lot_number) do nothing;
  select * into lot from public.batches b
  where b.tenant_id = tenant and b.product_id = product and b.lot_number = trim(payload ->> 'lot_number')
  for no key update;
  if lot.status <> 'available' then
    perform private.raise_api_error(409, 'LOT_NOT_AVAILABLE',
      format('lot %s is %s: it cannot receive stock', lot.lot_number, lot.status),
      jsonb_build_object('batch_id', lot.id, 'status', lot.status));
  end if;
  if (payload ->> 'expires_on' is not null and (payload ->> 'expires_on')::date is distinct from lot.expires_on)
     or (payload ->> 'produced_on' is not null and (payload ->> 'produced_on')::date is distinct from lot.produced_on) then
    perform private.raise_api_error(409, 'LOT_DATES_DIFFER',
      format('lot %s exists with other dates', lot.lot_number),
      jsonb_build_object('batch_id', lot.id, 'produced_on', lot.produced_on, 'expires_on', lot.expires_on));
  end if;

  if (select i.quantity from public.wholesale_inventory i
      where i.product_id = product and i.warehouse_id = warehouse) + qty > 99999999.99 then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"quantity": "would take this product''s stock in the warehouse over 99999999.99"}');
  end if;
  insert into public.batch_inventory as bi (tenant_id, batch_id, product_id, warehouse_id, quantity)
  values (tenant, lot.id, product, warehouse, qty)
  on conflict (batch_id, warehouse_id) do update set quantity = bi.quantity + excluded.quantity;
  update public.batches b set quantity_received = b.quantity_received + qty where b.id = lot.id
  returning * into lot;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (tenant, caller, 'batch.received', 'batch', lot.id,
    jsonb_build_object('lot_number', lot.lot_number, 'warehouse_id', warehouse, 'quantity', qty));
  return to_jsonb(lot);
end
$$;
revoke all on function public.receive_batch(jsonb) from public, anon;
grant execute on function public.receive_batch(jsonb) to authenticated, service_role;

-- -------------------------------------------------------------- quarantine

/*
 * private.quarantine_lots(tenant, lots, new_status, reason, source,
 * quality_test, recall): moves every unit of the lots on the shelf into
 * quarantine (a quarantined_inventory row per lot and warehouse) and sets the
 * lots' status. Returns the quantity moved. Locks the lots' products' stock
 * (private.lock_stock), then the batches.
 */
create or replace function private.quarantine_lots(tenant uuid, lots uuid[], new_status text, reason text,
  source text, quality_test uuid default null, recall uuid default null)
returns numeric
language plpgsql
set search_path = ''
as $$
declare
  moved numeric;
begin
  perform private.lock_stock(tenant, array(select b.product_id from public.batches b where b.id = any (lots)));
  -- NO KEY: rows that point at a lot (a test, a recall) take KEY SHARE on it
  -- before the stock locks; only status and counts change here.
  perform 1 from public.batches b where b.id = any (lots) order by b.id for no key update;
  with shelf as (
    select bi.id, bi.batch_id, bi.product_id, bi.warehouse_id, bi.quantity
    from public.batch_inventory bi
    where bi.batch_id = any (lots) and bi.quantity > 0
  ), held as (
    insert into public.quarantined_inventory
      (tenant_id, product_id, batch_id, warehouse_id, quantity, reason, source, quality_test_id, recall_id)
    select tenant, s.product_id, s.batch_id, s.warehouse_id, s.quantity, quarantine_lots.reason,
           quarantine_lots.source, quality_test, recall
    from shelf s
    returning quantity
  )
  select coalesce(sum(quantity), 0) into moved from held;
  update public.batch_inventory bi set quantity = 0 where bi.batch_id = any (lots) and bi.quantity > 0;
  -- Read under the lock: a lot recalled meanwhile stays recalled.
  update public.batches b set status = case when b.status = 'recalled' then 'recalled' else new_status end
  where b.id = any (lots);
  return moved;
end
$$;
revoke all on function private.quarantine_lots(uuid, uuid[], text, text, text, uuid, uuid) from public;

/*
 * public.record_quality_test(payload): a quality-control result for a lot.
 * payload: {batch_id, status: pending|passed|failed, test_results?,
 * certificate_path?, expiration_date?}. certificate_path names the
 * certificate of analysis already uploaded to the quality-control bucket
 * under the tenant's folder; file_url stores 'quality-control/<path>'.
 *
 * A 'failed' test quarantines the lot's remaining stock in the same
 * transaction (private.quarantine_lots: the lot becomes 'quarantined', its
 * shelf stock moves to quarantined_inventory and can no longer be
 * allocated). A recalled lot stays recalled.
 * Returns {test, quarantined_quantity}. The member role or higher.
 */
create or replace function public.record_quality_test(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  errors jsonb := '{}'::jsonb;
  caller uuid;
  lot public.batches%rowtype;
  test public.quality_control_tests%rowtype;
  path text := payload ->> 'certificate_path';
  moved numeric := 0;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    errors := '{"body": "must be an object"}';
  else
    errors := private.unknown_fields(payload, '',
      array['batch_id', 'status', 'test_results', 'certificate_path', 'expiration_date']);
    if not coalesce(payload ->> 'batch_id' ~ uuid_re, false) then
      errors := errors || '{"batch_id": "must be a UUID string"}';
    end if;
    if coalesce(payload ->> 'status', '') not in ('pending', 'passed', 'failed') then
      errors := errors || '{"status": "must be one of: pending, passed, failed"}';
    end if;
    if coalesce(jsonb_typeof(payload -> 'test_results'), 'null') not in ('null', 'object')
       or pg_column_size(payload -> 'test_results') > 65536 then
      errors := errors || '{"test_results": "must be an object of at most 64 KiB"}';
    end if;
    if coalesce(jsonb_typeof(payload -> 'expiration_date'), 'null') <> 'null'
       and (not coalesce(payload ->> 'expiration_date' ~ '^\d{4}-\d{2}-\d{2}$', false)
            or private.try_date(payload ->> 'expiration_date') is null) then
      errors := errors || '{"expiration_date": "must be a date (YYYY-MM-DD)"}';
    end if;
    if coalesce(jsonb_typeof(payload -> 'certificate_path'), 'null') not in ('null', 'string')
       or length(path) > 1024 then
      errors := errors || '{"certificate_path": "must be a path of at most 1024 characters"}';
    end if;
  end if;
  caller := private.begin_request(errors, null);
  select * into lot from public.batches b where b.id = (payload ->> 'batch_id')::uuid;
  if not found or not private.is_member(lot.tenant_id) then
    perform private.raise_error('CEN04', 'batch not found',
      jsonb_build_object('resource', 'batch', 'id', payload ->> 'batch_id'));
  end if;
  perform private.require_role(lot.tenant_id, 'member');
  if path is not null and not exists (
      select 1 from storage.objects o
      where o.bucket_id = 'quality-control' and o.name = path
        and private.object_tenant(o.name) = lot.tenant_id) then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      jsonb_build_object('certificate_path',
        'must name a file uploaded to the quality-control bucket under your tenant''s folder'));
  end if;
  insert into public.quality_control_tests
    (tenant_id, batch_id, product_id, file_url, test_results, expiration_date, status, recorded_by, created_at)
  values (lot.tenant_id, lot.id, lot.product_id, case when path is not null then 'quality-control/' || path end,
    payload -> 'test_results', (payload ->> 'expiration_date')::date, payload ->> 'status', caller,
    -- the clock, not the transaction's start: "the latest test" is well defined
    clock_timestamp())
  returning * into test;
  if test.status = 'failed' then
    moved := private.quarantine_lots(lot.tenant_id, array[lot.id], 'quarantined',
      format('quality test %s failed', test.id), 'quality_test', test.id);
  end if;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (lot.tenant_id, caller, 'quality_test.recorded', 'batch', lot.id,
    jsonb_build_object('test_id', test.id, 'status', test.status, 'quarantined_quantity', moved));
  return jsonb_build_object('test', to_jsonb(test), 'quarantined_quantity', moved);
end
$$;
revoke all on function public.record_quality_test(jsonb) from public, anon;
grant execute on function public.record_quality_test(jsonb) to authenticated, service_role;

/*
 * public.resolve_quarantine(quarantine_id, action, note): an admin ends a
 * quarantine: 'release' puts the stock back on the shelf in its lot and
 * warehouse (the lot becomes 'available' again once nothing of it is held);
 * 'destroy' records it destroyed. A recalled lot's stock can only be
 * destroyed (CE409 LOT_RECALLED), and a lot that failed a quality test is
 * released only when its latest test passed (CE409 QUALITY_TEST_FAILED). Audited.
 * Returns the row as JSON.
 * Raises CEN04 for a row not found (or another tenant's), CE409
 * QUARANTINE_RESOLVED when it was already released or destroyed.
 */
create or replace function public.resolve_quarantine(quarantine_id uuid, action text, note text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := private.begin_request(
    case when action is null or action not in ('release', 'destroy')
         then '{"action": "must be one of: release, destroy"}'::jsonb
         when length(note) > 2000 then '{"note": "must be at most 2000 characters"}'::jsonb
         else '{}'::jsonb end, null);
  q public.quarantined_inventory%rowtype;
  lot public.batches%rowtype;
begin
  select * into q from public.quarantined_inventory x where x.id = quarantine_id;
  if not found or not private.is_member(q.tenant_id) then
    perform private.raise_error('CEN04', 'quarantine not found',
      jsonb_build_object('resource', 'quarantine', 'id', quarantine_id));
  end if;
  perform private.require_role(q.tenant_id, 'admin');
  perform private.lock_stock(q.tenant_id, array[q.product_id]);
  select * into lot from public.batches b where b.id = q.batch_id for no key update;
  select * into q from public.quarantined_inventory x where x.id = quarantine_id for update;
  if q.status <> 'quarantined' then
    perform private.raise_api_error(409, 'QUARANTINE_RESOLVED', format('this stock was already %s', q.status),
      jsonb_build_object('id', q.id, 'status', q.status));
  end if;
  if action = 'release'
     and exists (select 1 from public.quality_control_tests t where t.batch_id = lot.id and t.status = 'failed')
     and (select t.status from public.quality_control_tests t where t.batch_id = lot.id
          order by t.created_at desc, t.id desc limit 1) <> 'passed' then
    perform private.raise_api_error(409, 'QUALITY_TEST_FAILED',
      format('lot %s last failed its quality test: record a passing test before releasing its stock', lot.lot_number),
      jsonb_build_object('batch_id', lot.id));
  end if;
  if action = 'release' and lot.status = 'recalled' then
    perform private.raise_api_error(409, 'LOT_RECALLED',
      format('lot %s is recalled: its stock can be destroyed, not released', lot.lot_number),
      jsonb_build_object('batch_id', lot.id));
  end if;
  update public.quarantined_inventory x
  set status = case when action = 'release' then 'released' else 'destroyed' end,
      released_at = now(), resolved_by = caller, resolution_note = note
  where x.id = q.id
  returning * into q;
  if action = 'release' then
    insert into public.batch_inventory as bi (tenant_id, batch_id, product_id, warehouse_id, quantity)
    values (q.tenant_id, q.batch_id, q.product_id, q.warehouse_id, q.quantity)
    on conflict (batch_id, warehouse_id) do update set quantity = bi.quantity + excluded.quantity;
    update public.batches b set status = 'available'
    where b.id = lot.id and b.status = 'quarantined'
      and not exists (select 1 from public.quarantined_inventory x
                      where x.batch_id = lot.id and x.status = 'quarantined');
  end if;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (q.tenant_id, caller, 'quarantine.' || case when action = 'release' then 'released' else 'destroyed' end,
    'batch', q.batch_id, jsonb_build_object('quarantine_id', q.id, 'warehouse_id', q.warehouse_id,
      'quantity', q.quantity, 'note', note));
  return to_jsonb(q);
end
$$;
revoke all on function public.resolve_quarantine(uuid, text, text) from public, anon;
grant execute on function public.resolve_quarantine(uuid, text, text) to authenticated, service_role;

/*
 * public.expire_batches(): marks lots past their expiry date (in their
 * tenant's zone) 'expired'. Allocation checks the date itself; this keeps the
 * status honest for people reading it. Daily, by pg_cron.
 */
create or replace function public.expire_batches()
returns integer
language sql
security definer
set search_path = ''
as $$
  with due as (
    -- In id order, skipping lots someone holds (tomorrow's run takes them):
    -- never crossing a recall's locks.
    select b.id from public.batches b
    where b.status in ('available', 'on_hold') and b.expires_on < private.tenant_today(b.tenant_id)
    order by b.id
    for no key update skip locked
  ), gone as (
    update public.batches b set status = 'expired' from due where b.id = due.id
    returning 1)
  select count(*)::integer from gone
$$;
revoke all on function public.expire_batches() from public, anon, authenticated;
grant execute on function public.expire_batches() to service_role;

select cron.schedule('expire-batches', '7 0 * * *', 'select public.expire_batches()');

/*
 * public.create_wholesale_order(payload, idempotency_key): places a wholesale
 * order in one transaction, as the calling user.
 *
 * payload: {client_id, items: [{product_id, quantity, unit_price, warehouse_id?}],
 *           payment_terms, delivery_method, notes?}
 * returns: {order_id, order_number, total_amount, notifications_queued} (plus
 *          "replayed": true when an idempotent replay returns the first result).
 *
 * Steps: spend the request's admission (its token was taken by
 * admit_request) and take a tenant slot (private.admit_early); validate;
 * find the client and check the caller belongs to its tenant with the member
 * role or a higher one (private.take_rate_limit); claim the idempotency key; lock the client row and check it is
 * active; place the order (private.place_wholesale_order); store the
 * idempotent result.
 *
 * Locks, always in this order: a tenant slot (an advisory lock tried without
 * waiting) and the admission row; the idempotency key row;
 * the client row (FOR NO KEY UPDATE); the stock (private.lock_stock: the
 * inventory rows, then their lots); the tenant's WO counter row.
 *
 * security definer: it writes the outbox, audit, idempotency and counter
 * tables, which members cannot touch directly. Membership is checked
 * explicitly and every lookup is filtered by the client's tenant.
 *
 * Raises:
 *   CEA01 UNAUTHORIZED           no signed-in user
 *   CEV01 VALIDATION_ERROR       details: {"field.path": "problem"}
 *   CEN04 NOT_FOUND              client, product or warehouse missing or in another tenant
 *   CEA03 FORBIDDEN              no admission (call the function), or a viewer of the client's tenant
 *   CER03 TOO_MANY_CONCURRENT_REQUESTS  the tenant's slots are all taken
 *   CEC02 CLIENT_INACTIVE        the client's status is not active
 *   CEC01 CREDIT_LIMIT_EXCEEDED  details: credit_limit, current_balance, order_total, available_credit
 *   CES01 INSUFFICIENT_STOCK     details: short lines with requested and available
 *   CEI22 IDEMPOTENCY_KEY_REUSED the key was used with a different body
 *   CEI09 IDEMPOTENCY_KEY_IN_USE the key's first request has not finished
 *   (CER29 RATE_LIMITED is raised by admit_request, before this runs.)
 */
create or replace function public.create_wholesale_order(payload jsonb, idempotency_key text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- First, before validating: a request refused for capacity costs nothing.
  admitted uuid := private.admit_early('create-wholesale-order');
  caller uuid := private.begin_request(private.order_payload_errors(payload), idempotency_key);
  the_client public.wholesale_clients%rowtype;
  tenant uuid;
  replay jsonb;
  result jsonb;
begin
  select * into the_client from public.wholesale_clients c where c.id = (payload ->> 'client_id')::uuid;
  if not found or not private.is_member(the_client.tenant_id) then
    perform private.raise_error('CEN04', 'client not found',
      jsonb_build_object('resource', 'client', 'id', payload ->> 'client_id'));
  end if;
  tenant := the_client.tenant_id;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'create-wholesale-order', admitted);

  if idempotency_key is not null then
    replay := private.claim_idempotency_key(tenant, idempotency_key, 'create_wholesale_order', payload);
    if replay is not null then
      return replay;
    end if;
  end if;

  -- NO KEY: enough to serialise this client's orders and credit, and a
  -- recall's consignee rows (a KEY SHARE on the client, taken while the
  -- recall holds the stock this order waits for) never wait on it.
  select * into the_client from public.wholesale_clients c where c.id = the_client.id for no key update;
  perform private.require_active_client(the_client);

  result := private.place_wholesale_order(tenant, the_client, payload -> 'items',
    payload ->> 'payment_terms', payload ->> 'delivery_method', payload ->> 'notes', caller);
  if idempotency_key is not null then
    perform private.store_idempotent_response(tenant, idempotency_key, result);
  end if;
  return result;
end
$$;
revoke all on function public.create_wholesale_order(jsonb, text) from public, anon;
grant execute on function public.create_wholesale_order(jsonb, text) to authenticated, service_role;
