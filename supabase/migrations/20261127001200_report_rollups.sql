-- Daily sales rollups, so that revenue by month or by product over a
-- million orders reads a few hundred thousand rows, not five million.
--
-- report_order_days and report_line_days hold, per local day (in the
-- tenant's time zone), client, payment terms (and product and warehouse for
-- lines), the orders, lines, units and revenue of orders not cancelled.
-- Triggers on orders and lines append signed deltas (an insert never waits
-- for another order's row, so orders stay concurrent); every few minutes
-- pg_cron merges each key's rows into one. A reader sums every row of a key,
-- merged or not, so the answer is exact at any moment. Changing a tenant's
-- time zone rebuilds its rollups.
--
-- The catalogue ranks these sources first for revenue, order_count,
-- average_order_value and units_sold; a request that groups or filters by
-- status, or asks return_rate or order_count by product, falls back to the
-- orders and lines themselves.
--
-- Re-runnable like every migration here.

create table if not exists public.report_order_days (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  day date not null,
  client_id uuid,
  payment_terms text,
  orders integer not null,
  revenue numeric not null,
  merged boolean not null default false
);
create index if not exists report_order_days_key_idx
  on public.report_order_days (tenant_id, day, client_id, payment_terms);
create index if not exists report_order_days_unmerged_idx on public.report_order_days (tenant_id) where not merged;

create table if not exists public.report_line_days (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  day date not null,
  product_id uuid,
  warehouse_id uuid,
  client_id uuid,
  payment_terms text,
  lines integer not null,
  units numeric not null,
  revenue numeric not null,
  merged boolean not null default false
);
create index if not exists report_line_days_key_idx
  on public.report_line_days (tenant_id, day, product_id, warehouse_id, client_id, payment_terms);
create index if not exists report_line_days_unmerged_idx on public.report_line_days (tenant_id) where not merged;

do $$
declare
  t text;
begin
  foreach t in array array['report_order_days', 'report_line_days'] loop
    execute format('alter table public.%I enable row level security', t);
    execute format('drop policy if exists "Members can read their tenant''s sales rollups" on public.%I', t);
    execute format('create policy "Members can read their tenant''s sales rollups" on public.%I '
      || 'for select to authenticated using (tenant_id in (select private.current_tenant_ids()))', t);
    execute format('revoke all on public.%I from public, anon, authenticated', t);
    execute format('grant select on public.%I to authenticated', t);
    execute format('grant all on public.%I to service_role', t);
  end loop;
end
$$;

/*
 * private.order_day(tenant, at): the tenant's local day of an instant.
 */
create or replace function private.order_day(tenant uuid, at timestamptz)
returns date
language sql
stable
set search_path = ''
as $$
  select (at at time zone coalesce((select t.time_zone from public.tenants t where t.id = tenant), 'UTC'))::date
$$;
revoke all on function private.order_day(uuid, timestamptz) from public;

/*
 * private.roll_order(order, sign): appends an order's contribution (and its
 * lines') to the rollups, times sign (1 to add, -1 to take back). Orders
 * cancelled contribute nothing. Locks nothing.
 */
create or replace function private.roll_order(o public.wholesale_orders, sign integer, with_lines boolean)
returns void
language plpgsql
set search_path = ''
as $$
declare
  d date;
begin
  if o.status = 'cancelled' then
    return;
  end if;
  d := private.order_day(o.tenant_id, o.created_at);
  insert into public.report_order_days (tenant_id, day, client_id, payment_terms, orders, revenue)
  values (o.tenant_id, d, o.client_id, o.payment_terms, sign, sign * coalesce(o.total_amount, 0));
  if with_lines then
    insert into public.report_line_days (tenant_id, day, product_id, warehouse_id, client_id, payment_terms,
      lines, units, revenue)
    select o.tenant_id, d, i.product_id, i.warehouse_id, o.client_id, o.payment_terms,
      sign * count(*), sign * coalesce(sum(i.quantity), 0), sign * coalesce(sum(i.total_price), 0)
    from public.wholesale_order_items i
    where i.order_id = o.id and i.tenant_id = o.tenant_id
    group by i.product_id, i.warehouse_id
    having count(*) > 0;
  end if;
end
$$;
revoke all on function private.roll_order(public.wholesale_orders, integer, boolean) from public;

create or replace function private.roll_order_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    -- Its lines are rolled as they are inserted.
    perform private.roll_order(new, 1, false);
  elsif tg_op = 'DELETE' then
    -- BEFORE DELETE: the lines are still there.
    perform private.roll_order(old, -1, true);
    return old;
  elsif (old.status = 'cancelled') is distinct from (new.status = 'cancelled')
        or old.total_amount is distinct from new.total_amount or old.client_id is distinct from new.client_id
        or old.payment_terms is distinct from new.payment_terms or old.created_at is distinct from new.created_at then
    perform private.roll_order(old, -1, true);
    perform private.roll_order(new, 1, true);
  end if;
  return null;
end
$$;
revoke all on function private.roll_order_change() from public;
drop trigger if exists roll_order_insert_update on public.wholesale_orders;
create trigger roll_order_insert_update
  after insert or update of status, total_amount, client_id, payment_terms, created_at on public.wholesale_orders
  for each row execute function private.roll_order_change();
drop trigger if exists roll_order_delete on public.wholesale_orders;
create trigger roll_order_delete before delete on public.wholesale_orders
  for each row execute function private.roll_order_change();

/*
 * private.roll_line_change(): a line inserted, changed or deleted moves its
 * order's line rollup, unless the order is cancelled or already gone (a
 * deleted order took its lines back itself).
 */
create or replace function private.roll_line_change()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  o public.wholesale_orders;
  d date;
  r record;
begin
  for r in select * from (values (old, -1), (new, 1)) v(line, sign)
           where (v.sign = -1 and tg_op in ('UPDATE', 'DELETE')) or (v.sign = 1 and tg_op in ('INSERT', 'UPDATE')) loop
    select * into o from public.wholesale_orders x where x.id = (r.line).order_id and x.tenant_id = (r.line).tenant_id;
    continue when not found or o.status = 'cancelled';
    d := private.order_day(o.tenant_id, o.created_at);
    insert into public.report_line_days (tenant_id, day, product_id, warehouse_id, client_id, payment_terms,
      lines, units, revenue)
    values (o.tenant_id, d, (r.line).product_id, (r.line).warehouse_id, o.client_id, o.payment_terms,
      r.sign, r.sign * coalesce((r.line).quantity, 0), r.sign * coalesce((r.line).total_price, 0));
  end loop;
  return null;
end
$$;
revoke all on function private.roll_line_change() from public;
drop trigger if exists roll_line_change on public.wholesale_order_items;
create trigger roll_line_change after insert or update of quantity, total_price, product_id, warehouse_id, order_id
  or delete on public.wholesale_order_items
  for each row execute function private.roll_line_change();

/*
 * private.rebuild_report_rollups(tenant): the tenant's rollups computed
 * afresh from its orders and lines (after a time-zone change, or for data
 * written without triggers). Takes the tenant's row lock, so two rebuilds
 * queue; orders written meanwhile wait for it.
 */
create or replace function private.rebuild_report_rollups(tenant uuid)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  tz text;
begin
  select coalesce(t.time_zone, 'UTC') into tz from public.tenants t where t.id = tenant for update;
  delete from public.report_order_days r where r.tenant_id = tenant;
  delete from public.report_line_days r where r.tenant_id = tenant;
  insert into public.report_order_days (tenant_id, day, client_id, payment_terms, orders, revenue, merged)
  select tenant, (o.created_at at time zone tz)::date, o.client_id, o.payment_terms, count(*),
    coalesce(sum(o.total_amount), 0), true
  from public.wholesale_orders o
  where o.tenant_id = tenant and o.status <> 'cancelled'
  group by 2, 3, 4;
  insert into public.report_line_days (tenant_id, day, product_id, warehouse_id, client_id, payment_terms,
    lines, units, revenue, merged)
  select tenant, (o.created_at at time zone tz)::date, i.product_id, i.warehouse_id, o.client_id, o.payment_terms,
    count(*), coalesce(sum(i.quantity), 0), coalesce(sum(i.total_price), 0), true
  from public.wholesale_order_items i
  join public.wholesale_orders o on o.id = i.order_id and o.tenant_id = i.tenant_id
  where i.tenant_id = tenant and o.status <> 'cancelled'
  group by 2, 3, 4, 5, 6;
end
$$;
revoke all on function private.rebuild_report_rollups(uuid) from public;
grant execute on function private.rebuild_report_rollups(uuid) to service_role;

create or replace function private.rebuild_rollups_on_time_zone()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.rebuild_report_rollups(new.id);
  return null;
end
$$;
revoke all on function private.rebuild_rollups_on_time_zone() from public;
drop trigger if exists rebuild_rollups_on_time_zone on public.tenants;
create trigger rebuild_rollups_on_time_zone after update of time_zone on public.tenants
  for each row when (old.time_zone is distinct from new.time_zone)
  execute function private.rebuild_rollups_on_time_zone();

/*
 * public.merge_report_rollups(): each key with unmerged rows becomes one
 * merged row (a key whose rows sum to nothing goes). Rows appended while it
 * runs are left for the next run. Returns the rows it read. Locks the rows
 * it deletes.
 */
create or replace function public.merge_report_rollups()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  n integer;
  m integer;
begin
  with keys as (
    select distinct r.tenant_id, r.day, r.client_id, r.payment_terms from public.report_order_days r where not r.merged
  ), gone as (
    delete from public.report_order_days r using keys k
    where r.tenant_id = k.tenant_id and r.day = k.day and r.client_id is not distinct from k.client_id
      and r.payment_terms is not distinct from k.payment_terms
    returning r.*
  ), merged as (
    insert into public.report_order_days (tenant_id, day, client_id, payment_terms, orders, revenue, merged)
    select g.tenant_id, g.day, g.client_id, g.payment_terms, sum(g.orders), sum(g.revenue), true
    from gone g group by 1, 2, 3, 4
    having sum(g.orders) <> 0 or sum(g.revenue) <> 0
  )
  select count(*) into n from gone;
  with keys as (
    select distinct r.tenant_id, r.day, r.product_id, r.warehouse_id, r.client_id, r.payment_terms
    from public.report_line_days r where not r.merged
  ), gone as (
    delete from public.report_line_days r using keys k
    where r.tenant_id = k.tenant_id and r.day = k.day and r.product_id is not distinct from k.product_id
      and r.warehouse_id is not distinct from k.warehouse_id and r.client_id is not distinct from k.client_id
      and r.payment_terms is not distinct from k.payment_terms
    returning r.*
  ), merged as (
    insert into public.report_line_days (tenant_id, day, product_id, warehouse_id, client_id, payment_terms,
      lines, units, revenue, merged)
    select g.tenant_id, g.day, g.product_id, g.warehouse_id, g.client_id, g.payment_terms,
      sum(g.lines), sum(g.units), sum(g.revenue), true
    from gone g group by 1, 2, 3, 4, 5, 6
    having sum(g.lines) <> 0 or sum(g.units) <> 0 or sum(g.revenue) <> 0
  )
  select count(*) into m from gone;
  return n + m;
end
$$;
revoke all on function public.merge_report_rollups() from public, anon, authenticated;
grant execute on function public.merge_report_rollups() to service_role;

select cron.schedule('merge-report-rollups', '*/5 * * * *', $job$select public.merge_report_rollups()$job$);

-- Existing data.
select private.rebuild_report_rollups(t.id) from public.tenants t;

-- The catalogue: the rollups first. A group whose deltas cancel out (an
-- order moved to another day, a line deleted) is no row of a report.
insert into public.report_sources (name, relation, has_time, dimensions, nonzero) values
  ('order_days', $r$select (d.day::timestamp at time zone $2) as at, d.client_id as client, d.payment_terms,
      d.orders, d.revenue
    from public.report_order_days d where d.tenant_id = $1$r$,
   true, array['client', 'payment_terms'], 'sum(s.orders) <> 0'),
  ('line_days', $r$select (d.day::timestamp at time zone $2) as at, d.product_id as product,
      d.warehouse_id as warehouse, d.client_id as client, d.payment_terms, d.lines, d.units, d.revenue
    from public.report_line_days d where d.tenant_id = $1$r$,
   true, array['product', 'warehouse', 'client', 'payment_terms'], 'sum(s.lines) <> 0')
on conflict (name) do update
set relation = excluded.relation, has_time = excluded.has_time, dimensions = excluded.dimensions,
    nonzero = excluded.nonzero;

insert into public.report_metrics (name, source, rank, expression, kind, description) values
  ('revenue', 'order_days', 1, 'coalesce(sum(s.revenue), 0)', 'money', 'the total of orders not cancelled (daily rollup)'),
  ('revenue', 'orders', 2, 'coalesce(sum(s.total_amount), 0)', 'money', 'the total of orders not cancelled'),
  ('revenue', 'line_days', 3, 'coalesce(sum(s.revenue), 0)', 'money',
   'by product or warehouse: the lines'' totals (daily rollup)'),
  ('revenue', 'order_items', 4, 'coalesce(sum(s.total_price), 0)', 'money', 'by product or warehouse: the lines'' totals'),
  ('order_count', 'order_days', 1, 'coalesce(sum(s.orders), 0)', 'integer', 'orders not cancelled (daily rollup)'),
  ('order_count', 'orders', 2, 'count(*)', 'integer', 'orders not cancelled'),
  ('order_count', 'order_items', 3, 'count(distinct s.order_id)', 'integer',
   'by product or warehouse: the orders with such a line'),
  ('average_order_value', 'order_days', 1, 'round(coalesce(sum(s.revenue) / nullif(sum(s.orders), 0), 0), 2)', 'money',
   'revenue / order_count (daily rollup)'),
  ('average_order_value', 'orders', 2, 'round(coalesce(avg(s.total_amount), 0), 2)', 'money', 'revenue / order_count'),
  ('units_sold', 'line_days', 1, 'coalesce(sum(s.units), 0)', 'number',
   'quantities on order lines not cancelled (daily rollup)'),
  ('units_sold', 'order_items', 2, 'coalesce(sum(s.quantity), 0)', 'number', 'quantities on order lines not cancelled')
on conflict (name, source) do update
set rank = excluded.rank, expression = excluded.expression, kind = excluded.kind,
    description = excluded.description;
