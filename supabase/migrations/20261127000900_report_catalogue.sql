-- The metric catalogue for reports (seed 000 §7, generate-report): data
-- sources, metrics defined once each, dimensions and filters, compiled to
-- SQL from these rows only. No text of a request ever becomes SQL: a
-- request names catalogue entries, and its values are bound parameters.
--
-- Re-runnable like every migration here.

/*
 * Each source is a relation over the tenant's rows ($1 is the tenant) with
 * the columns the dimensions read: at (timestamptz, or null when the source
 * has no time), product, client, warehouse (uuid), status, payment_terms
 * (text), and the columns its metrics aggregate.
 */
create table if not exists public.report_sources (
  name text primary key,
  relation text not null,
  has_time boolean not null,
  -- the dimensions (besides time) its rows carry
  dimensions text[] not null,
  -- for a source of signed deltas (the daily rollups): the aggregate that is
  -- not zero in a group that exists; groups whose deltas cancel out are no row
  nonzero text
);
alter table public.report_sources add column if not exists nonzero text;
alter table public.report_sources enable row level security;
drop policy if exists "Signed-in users can read the report sources" on public.report_sources;
create policy "Signed-in users can read the report sources" on public.report_sources
  for select to authenticated using (true);
revoke all on public.report_sources from public, anon, authenticated;
grant select on public.report_sources to authenticated, service_role;

create table if not exists public.report_metrics (
  name text not null,
  source text not null references public.report_sources (name),
  -- of a metric's sources, the first (lowest) that has what a request
  -- groups and filters by is used
  rank integer not null default 1,
  primary key (name, source),
  -- an aggregate over the source's columns (alias s)
  expression text not null,
  -- money, number, integer or ratio (0 to 1)
  kind text not null check (kind in ('money', 'number', 'integer', 'ratio')),
  description text not null
);
alter table public.report_metrics enable row level security;
drop policy if exists "Signed-in users can read the report metrics" on public.report_metrics;
create policy "Signed-in users can read the report metrics" on public.report_metrics
  for select to authenticated using (true);
revoke all on public.report_metrics from public, anon, authenticated;
grant select on public.report_metrics to authenticated, service_role;

insert into public.report_sources (name, relation, has_time, dimensions) values
  ('orders', $r$select o.created_at as at, o.client_id as client, o.status, o.payment_terms, o.total_amount,
      exists (select 1 from public.return_authorizations r where r.order_id = o.id and r.tenant_id = o.tenant_id)
        as returned
    from public.wholesale_orders o where o.tenant_id = $1 and o.status <> 'cancelled'$r$,
   true, array['client', 'status', 'payment_terms']),
  ('order_items', $r$select o.created_at as at, i.product_id as product, o.client_id as client,
      i.warehouse_id as warehouse, o.status, o.payment_terms, i.order_id, i.quantity, i.total_price
    from public.wholesale_order_items i
    join public.wholesale_orders o on o.id = i.order_id and o.tenant_id = i.tenant_id
    where i.tenant_id = $1 and o.status <> 'cancelled'$r$,
   true, array['product', 'client', 'warehouse', 'status', 'payment_terms']),
  ('inventory', $r$select v.product_id as product, v.warehouse_id as warehouse, v.quantity,
      v.quantity * coalesce(p.price, 0) as value,
      (v.reorder_point is not null and v.quantity <= v.reorder_point) as low
    from public.wholesale_inventory v
    join public.products p on p.id = v.product_id and p.tenant_id = v.tenant_id
    where v.tenant_id = $1$r$,
   false, array['product', 'warehouse']),
  ('returns', $r$select r.created_at as at, o.client_id as client, r.status, o.payment_terms, r.return_method,
      r.refund_amount
    from public.return_authorizations r
    join public.wholesale_orders o on o.id = r.order_id and o.tenant_id = r.tenant_id
    where r.tenant_id = $1$r$,
   true, array['client', 'status', 'payment_terms']),
  ('purchase_orders', $r$select p.created_at as at, p.status, p.payment_terms, p.total_amount
    from public.purchase_orders p where p.tenant_id = $1 and p.status <> 'cancelled'$r$,
   true, array['status', 'payment_terms']),
  ('campaigns', $r$select m.created_at as at, m.status, m.sent_count, m.delivered_count, m.opened_count
    from public.marketing_campaigns m where m.tenant_id = $1$r$,
   true, array['status']),
  ('clients', $r$select c.created_at as at, c.id as client, c.status, c.payment_terms, c.current_balance
    from public.wholesale_clients c where c.tenant_id = $1$r$,
   true, array['client', 'status', 'payment_terms']),
  ('deliveries', $r$select d.created_at as at, o.client_id as client, d.status, o.payment_terms
    from public.deliveries d
    join public.wholesale_orders o on o.id = d.order_id and o.tenant_id = d.tenant_id
    where d.tenant_id = $1$r$,
   true, array['client', 'status', 'payment_terms'])
on conflict (name) do update
set relation = excluded.relation, has_time = excluded.has_time, dimensions = excluded.dimensions;

-- Ranks leave room for the daily rollups (20261127001200_report_rollups.sql),
-- which come first where they can answer.
insert into public.report_metrics (name, source, rank, expression, kind, description) values
  ('revenue', 'orders', 2, 'coalesce(sum(s.total_amount), 0)', 'money',
   'the total of orders not cancelled'),
  ('revenue', 'order_items', 4, 'coalesce(sum(s.total_price), 0)', 'money',
   'by product or warehouse: the lines'' totals'),
  ('order_count', 'orders', 2, 'count(*)', 'integer', 'orders not cancelled'),
  ('order_count', 'order_items', 3, 'count(distinct s.order_id)', 'integer',
   'by product or warehouse: the orders with such a line'),
  ('average_order_value', 'orders', 2, 'round(coalesce(avg(s.total_amount), 0), 2)', 'money',
   'revenue / order_count'),
  ('return_rate', 'orders', 1, 'round(coalesce(avg(case when s.returned then 1 else 0 end), 0), 4)', 'ratio',
   'the share of orders with a return'),
  ('units_sold', 'order_items', 2, 'coalesce(sum(s.quantity), 0)', 'number',
   'quantities on order lines not cancelled'),
  ('refund_total', 'returns', 1, $e$coalesce(sum(s.refund_amount) filter (where s.return_method = 'refund'), 0)$e$,
   'money', 'the value of returns settled by refund'),
  ('stock_on_hand', 'inventory', 1, 'coalesce(sum(s.quantity), 0)', 'number', 'units in stock now'),
  ('stock_value', 'inventory', 1, 'coalesce(sum(s.value), 0)', 'money', 'units in stock at the product''s price'),
  ('low_stock_items', 'inventory', 1, 'count(*) filter (where s.low)', 'integer',
   'stock rows at or below their reorder point'),
  ('po_spend', 'purchase_orders', 1, 'coalesce(sum(s.total_amount), 0)', 'money',
   'the total of purchase orders not cancelled'),
  ('campaign_delivery_rate', 'campaigns', 1,
   'round(coalesce(sum(s.delivered_count)::numeric / nullif(sum(s.sent_count), 0), 0), 4)', 'ratio',
   'emails and SMS delivered / sent'),
  ('campaign_open_rate', 'campaigns', 1,
   'round(coalesce(sum(s.opened_count)::numeric / nullif(sum(s.delivered_count), 0), 0), 4)', 'ratio',
   'emails opened / delivered'),
  ('client_count', 'clients', 1, 'count(*)', 'integer', 'wholesale clients (by when they were added)'),
  ('credit_outstanding', 'clients', 1, 'coalesce(sum(s.current_balance), 0)', 'money',
   'what clients owe on credit now'),
  ('delivery_count', 'deliveries', 1, 'count(*)', 'integer', 'deliveries (by when they were created)'),
  ('delivery_success_rate', 'deliveries', 1,
   $e$round(coalesce((count(*) filter (where s.status = 'delivered'))::numeric
      / nullif(count(*) filter (where s.status in ('delivered', 'failed')), 0), 0), 4)$e$, 'ratio',
   'delivered / (delivered + failed)')
on conflict (name, source) do update
set rank = excluded.rank, expression = excluded.expression, kind = excluded.kind,
    description = excluded.description;

/*
 * A report runs on a ticket: generate-report's start_report (admitted, rate
 * limited) issues one for the spec it will run, for the calling user, good
 * once and for a minute; report_data redeems it. So report_data, which must
 * run as the caller for RLS, is no way around the function's rate limit.
 * The service role needs none, nor start_report's own check of a definition
 * before it saves it.
 */
create table if not exists private.report_tickets (
  id uuid primary key default gen_random_uuid(),
  user_id uuid not null,
  spec jsonb not null,
  expires_at timestamptz not null default now() + interval '1 minute'
);
revoke all on private.report_tickets from public, anon, authenticated;

/*
 * public.redeem_report_ticket(spec): takes the ticket spec.ticket names, if
 * it is the caller's, unexpired and for this very spec (its other keys);
 * else CEA03. Expired tickets go at the same time.
 */
create or replace function public.redeem_report_ticket(spec jsonb)
returns void
language plpgsql
security definer
set search_path = ''
as $$
declare
  taken boolean;
begin
  if (coalesce(current_setting('request.jwt.claims', true), '') <> ''
      and current_setting('request.jwt.claims', true)::jsonb ->> 'role' = 'service_role')
     or current_setting('commerce_edge.checking_report', true) = 'on' then
    return;
  end if;
  delete from private.report_tickets t where t.expires_at < now();
  delete from private.report_tickets t
  where t.id = case when redeem_report_ticket.spec ->> 'ticket'
                         ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                    then (redeem_report_ticket.spec ->> 'ticket')::uuid end
    and t.user_id = (select auth.uid()) and t.spec = redeem_report_ticket.spec - 'ticket'
  returning true into taken;
  if taken is null then
    raise exception using errcode = 'CEA03', message = 'reports run through generate-report',
      detail = '{"ticket": "missing, used, expired or for another report"}';
  end if;
end
$$;
revoke all on function public.redeem_report_ticket(jsonb) from public, anon;
grant execute on function public.redeem_report_ticket(jsonb) to authenticated, service_role;

/* public.report_is_date(text): a real date written YYYY-MM-DD. */
create or replace function public.report_is_date(value text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value !~ '^\d{4}-\d{2}-\d{2}$' then
    return false;
  end if;
  perform value::date;
  return true;
exception when others then
  return false;
end
$$;
revoke all on function public.report_is_date(text) from public, anon;
grant execute on function public.report_is_date(text) to authenticated, service_role;

/*
 * public.report_period(name, today): a named period as local dates,
 * {name, date_from, date_to}, both inclusive: today, yesterday,
 * last_7_days and last_30_days (the days before today), this_ and last_
 * week (Monday to Sunday), month, quarter and year; "this" ends today.
 * Null for an unknown name. Pure.
 */
create or replace function public.report_period(name text, today date)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object('name', name, 'date_from', f, 'date_to', t)
  from (select case name
      when 'today' then today
      when 'yesterday' then today - 1
      when 'last_7_days' then today - 7
      when 'last_30_days' then today - 30
      when 'this_week' then date_trunc('week', today)::date
      when 'last_week' then date_trunc('week', today)::date - 7
      when 'this_month' then date_trunc('month', today)::date
      when 'last_month' then (date_trunc('month', today) - interval '1 month')::date
      when 'this_quarter' then date_trunc('quarter', today)::date
      when 'last_quarter' then (date_trunc('quarter', today) - interval '3 months')::date
      when 'this_year' then date_trunc('year', today)::date
      when 'last_year' then (date_trunc('year', today) - interval '1 year')::date
    end as f,
    case name
      when 'today' then today
      when 'yesterday' then today - 1
      when 'last_7_days' then today - 1
      when 'last_30_days' then today - 1
      when 'this_week' then today
      when 'last_week' then date_trunc('week', today)::date - 1
      when 'this_month' then today
      when 'last_month' then date_trunc('month', today)::date - 1
      when 'this_quarter' then today
      when 'last_quarter' then date_trunc('quarter', today)::date - 1
      when 'this_year' then today
      when 'last_year' then date_trunc('year', today)::date - 1
    end as t) x
  where f is not null
$$;
revoke all on function public.report_period(text, date) from public, anon;
grant execute on function public.report_period(text, date) to authenticated, service_role;

/*
 * public.report_where(filter, path, depth): the {all|any} condition language
 * of campaign audiences, for reports: {"all": [cond, …]} or {"any": [cond,
 * …]}, 1 to 50 conditions, nested at most 3 deep; a cond is {field, op,
 * value} or another filter; fields are the dimensions product, client,
 * warehouse (ids), status and payment_terms; ops eq, neq (a value) and in,
 * not_in (1 to 100 values). Returns the predicate over a source's rows `s`,
 * the fields it names and the problems, keyed by where they are
 * (filters.where.all[0].op). No value is ever SQL text: the predicate reads
 * each from $3 (the report's filters) by its path, which is made of the
 * keys all, any, value and indexes only. Pure; locks nothing.
 */
create or replace function public.report_where(filter jsonb, path text[] default array['where'], depth integer default 1,
  out predicate text, out fields text[], out errors jsonb)
language plpgsql
immutable
set search_path = ''
as $$
declare
  joiner text;
  conds jsonb;
  cond jsonb;
  here text := 'filters.' || path[1]
    || coalesce(array_to_string(array(select case when x ~ '^[0-9]+$' then '[' || x || ']' else '.' || x end
                                      from unnest(path[2:]) x), ''), '');
  key text;
  sub record;
  parts text[] := '{}'::text[];
  fld text;
  op text;
  val jsonb;
  ref text;
begin
  fields := '{}'::text[];
  errors := '{}'::jsonb;
  if jsonb_typeof(filter) is distinct from 'object' then
    errors := jsonb_build_object(here, 'must be {"all": […]} or {"any": […]}');
    return;
  end if;
  if filter ? 'all' and not filter ? 'any' then
    joiner := ' and '; key := 'all';
  elsif filter ? 'any' and not filter ? 'all' then
    joiner := ' or '; key := 'any';
  else
    errors := jsonb_build_object(here, 'must be {"all": […]} or {"any": […]}');
    return;
  end if;
  conds := filter -> key;
  if (select count(*) from jsonb_object_keys(filter)) > 1 then
    errors := jsonb_build_object(here, 'has a key besides ' || key);
    return;
  end if;
  if depth > 3 then
    errors := jsonb_build_object(here, 'nests more than 3 deep');
    return;
  end if;
  if jsonb_typeof(conds) is distinct from 'array' or jsonb_array_length(conds) not between 1 and 50 then
    errors := jsonb_build_object(here || '.' || key, 'must be 1 to 50 conditions');
    return;
  end if;
  for i in 0 .. jsonb_array_length(conds) - 1 loop
    cond := conds -> i;
    if jsonb_typeof(cond) = 'object' and (cond ? 'all' or cond ? 'any') then
      select * into sub from public.report_where(cond, path || array[key, i::text], depth + 1);
      errors := errors || sub.errors;
      fields := fields || sub.fields;
      parts := parts || ('(' || coalesce(sub.predicate, 'true') || ')');
      continue;
    end if;
    here := 'filters.' || path[1]
      || coalesce(array_to_string(array(select case when x ~ '^[0-9]+$' then '[' || x || ']' else '.' || x end
                                        from unnest(path[2:] || array[key, i::text]) x), ''), '');
    fld := cond ->> 'field';
    op := cond ->> 'op';
    val := cond -> 'value';
    if jsonb_typeof(cond) <> 'object' or exists (select 1 from jsonb_object_keys(cond) x where x not in ('field', 'op', 'value')) then
      errors := errors || jsonb_build_object(here, 'must be {field, op, value} or a nested {all|any}');
      continue;
    end if;
    if fld is null or fld not in ('product', 'client', 'warehouse', 'status', 'payment_terms') then
      errors := errors || jsonb_build_object(here || '.field',
        'must be one of product, client, warehouse, status, payment_terms');
      continue;
    end if;
    if op is null or op not in ('eq', 'neq', 'in', 'not_in') then
      errors := errors || jsonb_build_object(here || '.op', 'must be one of eq, neq, in, not_in');
      continue;
    end if;
    if (op in ('eq', 'neq') and jsonb_typeof(val) is distinct from 'string')
       or (op in ('in', 'not_in') and (jsonb_typeof(val) is distinct from 'array'
           or jsonb_array_length(val) not between 1 and 100
           or exists (select 1 from jsonb_array_elements(val) x where jsonb_typeof(x) <> 'string'))) then
      errors := errors || jsonb_build_object(here || '.value',
        case when op in ('eq', 'neq') then 'must be a text value' else 'must be 1 to 100 text values' end);
      continue;
    end if;
    if fld in ('product', 'client', 'warehouse') and exists (
        select 1 from jsonb_array_elements_text(case when op in ('eq', 'neq') then jsonb_build_array(val) else val end) x
        where x !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') then
      errors := errors || jsonb_build_object(here || '.value', 'must be ids (uuid)');
      continue;
    end if;
    fields := fields || fld;
    ref := quote_literal((path || array[key, i::text, 'value'])::text);
    parts := parts || case op
      when 'eq' then format('s.%I::text = ($3 #>> %s)', fld, ref)
      when 'neq' then format('s.%I::text is distinct from ($3 #>> %s)', fld, ref)
      when 'in' then format('s.%I::text in (select jsonb_array_elements_text($3 #> %s))', fld, ref)
      else format('(s.%I is null or s.%I::text not in (select jsonb_array_elements_text($3 #> %s)))', fld, fld, ref)
    end;
  end loop;
  predicate := array_to_string(parts, joiner);
end
$$;
revoke all on function public.report_where(jsonb, text[], integer) from public, anon;
grant execute on function public.report_where(jsonb, text[], integer) to authenticated, service_role;

/*
 * public.report_data(spec): one report over the tenant's rows, read as the
 * caller (RLS applies; security invoker), on the ticket spec.ticket
 * (public.redeem_report_ticket; CEA03 without one). spec:
 *   tenant_id    uuid, required
 *   metrics      1 to 12 metric names, each computed from the first of its
 *                sources (by rank) that has every dimension and filter named
 *   data_sources optional: when given, every metric's source must be in it
 *   group_by     0 to 3 of: day, week, month, quarter (time, in the
 *                tenant's time zone), product, client, warehouse, status,
 *                payment_terms
 *   row_limit    optional, 1 to 50,000 rows (default 10,000)
 *   filters      {date_from, date_to (YYYY-MM-DD, inclusive, local dates),
 *                 product, client, warehouse, status, payment_terms: a
 *                 value or an array of at most 100 values; [] matches
 *                 nothing (a saved filter narrowed to no value); where:
 *                 the {all|any} language of public.report_where; period: a
 *                 name of public.report_period, resolved in the tenant's
 *                 time zone today, holding with date_from and date_to}
 * Each source's metrics are grouped by the dimensions, and the sources are
 * joined on them. Returns {columns: [{name, type}], rows: [[…]], totals:
 * {metric: value}, time_zone, labels: {product|client|warehouse: {id:
 * name}}, row_limit, truncated, period?: {name, date_from, date_to} as
 * applied}: rows ordered by the dimensions, at most
 * row_limit (10,000 unless the spec says, at most 50,000), truncated saying
 * whether there were more; totals over the whole filtered data (a rate's
 * total is not a sum of rows).
 * An unknown metric, source, dimension or filter, a dimension or date
 * filter a metric's source lacks, is CEV01 naming it. Locks nothing.
 */
create or replace function public.report_data(spec jsonb)
returns jsonb
language plpgsql
volatile
security invoker
set search_path = ''
as $$
declare
  tenant uuid := case when spec ->> 'tenant_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                      then (spec ->> 'tenant_id')::uuid end;
  filters jsonb := coalesce(spec -> 'filters', '{}'::jsonb);
  tz text;
  errors jsonb := '{}'::jsonb;
  metric_names text[] := '{}'::text[];
  chosen text[] := '{}'::text[];
  dims text[] := '{}'::text[];
  needs_time boolean;
  needs text[];
  allowed_sources text[];
  src public.report_sources;
  d text;
  f text;
  dim_sql text[] := '{}'::text[];
  where_sql text;
  dim_list text;
  parts text[] := '{}'::text[];
  total_parts text[] := '{}'::text[];
  q text;
  rows jsonb;
  totals jsonb;
  labels jsonb := '{}'::jsonb;
  period jsonb;
  cond record;
  where_fields text[] := '{}'::text[];
  where_pred text;
  row_limit integer := 10000;
  truncated boolean := false;
  columns jsonb := '[]'::jsonb;
  time_grains constant text[] := array['day', 'week', 'month', 'quarter'];
  plain_dims constant text[] := array['product', 'client', 'warehouse', 'status', 'payment_terms'];
begin
  perform public.redeem_report_ticket(spec);
  spec := spec - 'ticket';
  if tenant is null then
    raise exception using errcode = 'CEV01', message = 'the report has invalid fields',
      detail = '{"tenant_id": "must be a uuid"}';
  end if;
  if spec ? 'row_limit' then
    if jsonb_typeof(spec -> 'row_limit') <> 'number' or (spec ->> 'row_limit') !~ '^[0-9]{1,6}$'
       or (spec ->> 'row_limit')::integer not between 1 and 50000 then
      raise exception using errcode = 'CEV01', message = 'the report has invalid fields',
        detail = '{"row_limit": "must be an integer from 1 to 50000"}';
    end if;
    row_limit := (spec ->> 'row_limit')::integer;
  end if;
  -- Under RLS: a tenant the caller is not in is not found.
  select coalesce(t.time_zone, 'UTC') into tz from public.tenants t where t.id = tenant;
  if not found then
    raise exception using errcode = 'CEN04', message = 'tenant not found',
      detail = jsonb_build_object('resource', 'tenant', 'id', tenant)::text;
  end if;

  -- Dimensions.
  if spec ? 'group_by' then
    if jsonb_typeof(spec -> 'group_by') <> 'array' or jsonb_array_length(spec -> 'group_by') > 3 then
      errors := errors || '{"group_by": "must be an array of at most 3 dimensions"}';
    else
      select coalesce(array_agg(x order by o), '{}') into dims
      from jsonb_array_elements_text(spec -> 'group_by') with ordinality e(x, o);
      for i in 1 .. cardinality(dims) loop
        if not (dims[i] = any (time_grains) or dims[i] = any (plain_dims)) then
          errors := errors || jsonb_build_object(format('group_by[%s]', i - 1), format(
            'unknown dimension %s: one of day, week, month, quarter, product, client, warehouse, status, payment_terms',
            left(dims[i], 100)));
        elsif dims[i] = any (time_grains)
              and (select count(*) from unnest(dims) x where x = any (time_grains)) > 1 then
          errors := errors || jsonb_build_object(format('group_by[%s]', i - 1), 'one time grain at most');
        elsif (select count(*) from unnest(dims) x where x = dims[i]) > 1 then
          errors := errors || jsonb_build_object(format('group_by[%s]', i - 1), 'named twice');
        end if;
      end loop;
    end if;
  end if;

  -- Filters.
  if jsonb_typeof(filters) <> 'object' then
    errors := errors || '{"filters": "must be an object"}';
    filters := '{}'::jsonb;
  end if;
  for f in select x from jsonb_object_keys(filters) x loop
    if f in ('date_from', 'date_to') then
      if not public.report_is_date(filters ->> f) then
        errors := errors || jsonb_build_object('filters.' || f, 'must be a date (YYYY-MM-DD)');
      end if;
    elsif f = 'period' then
      if jsonb_typeof(filters -> 'period') is distinct from 'string' or filters ->> 'period' not in ('today', 'yesterday',
          'last_7_days', 'last_30_days', 'this_week', 'last_week', 'this_month', 'last_month', 'this_quarter',
          'last_quarter', 'this_year', 'last_year') then
        errors := errors || '{"filters.period": "must be one of today, yesterday, last_7_days, last_30_days, this_week, last_week, this_month, last_month, this_quarter, last_quarter, this_year, last_year"}';
      end if;
    elsif f = 'where' then
      select * into cond from public.report_where(filters -> 'where');
      errors := errors || cond.errors;
      where_fields := cond.fields;
      where_pred := cond.predicate;
    elsif f = any (plain_dims) then
      if jsonb_typeof(filters -> f) not in ('string', 'array')
         or (jsonb_typeof(filters -> f) = 'array'
             and (jsonb_array_length(filters -> f) > 100
                  or exists (select 1 from jsonb_array_elements(filters -> f) x where jsonb_typeof(x) <> 'string'))) then
        errors := errors || jsonb_build_object('filters.' || f, 'must be a value or an array of at most 100 values');
      elsif f in ('product', 'client', 'warehouse') and exists (
          select 1 from jsonb_array_elements_text(case jsonb_typeof(filters -> f)
            when 'array' then filters -> f else jsonb_build_array(filters -> f) end) x
          where x !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$') then
        errors := errors || jsonb_build_object('filters.' || f, 'must be ids (uuid)');
      end if;
    else
      errors := errors || jsonb_build_object('filters.' || f, format(
        'unknown filter %s: one of date_from, date_to, period, product, client, warehouse, status, payment_terms, where',
        left(f, 100)));
    end if;
  end loop;

  -- A named period becomes dates in the tenant's time zone (weeks start on
  -- Monday), kept together with any date_from and date_to: both hold.
  if errors = '{}'::jsonb and filters ? 'period' then
    period := public.report_period(filters ->> 'period', (now() at time zone tz)::date);
    filters := filters || jsonb_build_object(
      'date_from', greatest(filters ->> 'date_from', period ->> 'date_from'),
      'date_to', least(coalesce(filters ->> 'date_to', period ->> 'date_to'), period ->> 'date_to'));
  end if;

  -- Sources a request may use.
  if spec ? 'data_sources' then
    if jsonb_typeof(spec -> 'data_sources') <> 'array' then
      errors := errors || '{"data_sources": "must be an array of source names"}';
    else
      select coalesce(array_agg(x), '{}') into allowed_sources from jsonb_array_elements_text(spec -> 'data_sources') x;
      foreach f in array allowed_sources loop
        if not exists (select 1 from public.report_sources s where s.name = f) then
          errors := errors || jsonb_build_object('data_sources', format('unknown source %s: one of %s', left(f, 100),
            (select string_agg(s.name, ', ' order by s.name) from public.report_sources s)));
        end if;
      end loop;
    end if;
  end if;

  -- Metrics, each from the first of its sources that has every dimension
  -- and filter the request names.
  needs_time := exists (select 1 from unnest(dims) x where x = any (time_grains))
                or filters ? 'date_from' or filters ? 'date_to' or filters ? 'period';
  select coalesce(array_agg(distinct x), '{}') into needs
  from (select unnest(dims) x union select jsonb_object_keys(filters) union select unnest(where_fields)) n
  where x = any (plain_dims);
  if jsonb_typeof(spec -> 'metrics') is distinct from 'array' or jsonb_array_length(spec -> 'metrics') not between 1 and 12 then
    errors := errors || '{"metrics": "must be an array of 1 to 12 metric names"}';
  else
    select array_agg(x order by o) into metric_names from jsonb_array_elements_text(spec -> 'metrics') with ordinality e(x, o);
    for i in 1 .. cardinality(metric_names) loop
      if not exists (select 1 from public.report_metrics r where r.name = metric_names[i]) then
        errors := errors || jsonb_build_object(format('metrics[%s]', i - 1), format('unknown metric %s: one of %s',
          left(metric_names[i], 100), (select string_agg(distinct r.name, ', ') from public.report_metrics r)));
        chosen := chosen || null::text;
        continue;
      elsif (select count(*) from unnest(metric_names) x where x = metric_names[i]) > 1 then
        errors := errors || jsonb_build_object(format('metrics[%s]', i - 1), 'named twice');
      end if;
      chosen := chosen || (
        select r.source from public.report_metrics r join public.report_sources s on s.name = r.source
        where r.name = metric_names[i]
          and (allowed_sources is null or r.source = any (allowed_sources))
          and (s.has_time or not needs_time) and needs <@ s.dimensions
        order by r.rank limit 1);
      if chosen[i] is null then
        errors := errors || jsonb_build_object(format('metrics[%s]', i - 1), format(
          '%s is not available %s', metric_names[i], concat_ws(' and ',
            case when needs_time then 'over time' end,
            case when cardinality(needs) > 0 then 'by ' || array_to_string(needs, ', ') end,
            case when allowed_sources is not null then 'from ' || array_to_string(allowed_sources, ', ') end)));
      end if;
    end loop;
  end if;
  if errors <> '{}'::jsonb then
    raise exception using errcode = 'CEV01', message = 'the report has invalid fields', detail = errors::text;
  end if;

  -- The query: one grouped part per source, joined on the dimensions. $1 is
  -- the tenant, $2 its time zone, $3 the filters; nothing of the request is
  -- SQL text.
  for i in 1 .. cardinality(dims) loop
    if dims[i] = any (time_grains) then
      dim_sql := dim_sql || format('date_trunc(%L, s.at at time zone $2)::date', dims[i]);
      columns := columns || jsonb_build_object('name', dims[i], 'type', 'date');
    else
      dim_sql := dim_sql || format('s.%I', dims[i]);
      columns := columns || jsonb_build_object('name', dims[i],
        'type', case when dims[i] in ('product', 'client', 'warehouse') then 'id' else 'text' end);
    end if;
  end loop;
  for i in 1 .. cardinality(metric_names) loop
    columns := columns || jsonb_build_object('name', metric_names[i], 'type',
      (select r.kind from public.report_metrics r where r.name = metric_names[i] and r.source = chosen[i]));
  end loop;
  dim_list := array_to_string(array(select format('d%s', k) from generate_subscripts(dims, 1) k), ', ');

  for f in select distinct x from unnest(chosen) x order by 1 loop
    select * into src from public.report_sources s where s.name = f;
    where_sql := 'true';
    if src.has_time then
      where_sql := where_sql
        || ' and ($3 ->> ''date_from'' is null or (s.at at time zone $2)::date >= ($3 ->> ''date_from'')::date)'
        || ' and ($3 ->> ''date_to'' is null or (s.at at time zone $2)::date <= ($3 ->> ''date_to'')::date)';
    end if;
    if where_pred is not null then
      where_sql := where_sql || ' and (' || where_pred || ')';
    end if;
    foreach d in array src.dimensions loop
      where_sql := where_sql || format(' and (not $3 ? %1$L or s.%1$I::text in (select jsonb_array_elements_text('
        || 'case jsonb_typeof($3 -> %1$L) when ''array'' then $3 -> %1$L else jsonb_build_array($3 -> %1$L) end)))', d);
    end loop;
    parts := parts || format('(select %s from (%s) s where %s %s) %I',
      concat_ws(', ',
        nullif(array_to_string(array(select format('%s as d%s', dim_sql[k], k) from generate_subscripts(dim_sql, 1) k), ', '), ''),
        array_to_string(array(select format('%s as %I', r.expression, r.name) from public.report_metrics r
          where r.source = src.name and r.name in (select metric_names[k] from generate_subscripts(metric_names, 1) k
                                                   where chosen[k] = src.name)), ', ')),
      src.relation, where_sql,
      case when cardinality(dims) > 0
           then 'group by ' || array_to_string(array(select k::text from generate_subscripts(dim_sql, 1) k), ', ')
             || coalesce(' having ' || src.nonzero, '')
           else '' end,
      'q_' || src.name);
    total_parts := total_parts || format('(select %s from (%s) s where %s) %I',
      array_to_string(array(select format('%s as %I', r.expression, r.name) from public.report_metrics r
        where r.source = src.name and r.name in (select metric_names[k] from generate_subscripts(metric_names, 1) k
                                                 where chosen[k] = src.name)), ', '),
      src.relation, where_sql, 't_' || src.name);
  end loop;

  q := parts[1];
  for i in 2 .. cardinality(parts) loop
    q := q || case when cardinality(dims) > 0 then format(' full join %s using (%s)', parts[i], dim_list)
                   else format(' cross join %s', parts[i]) end;
  end loop;
  execute format('select coalesce(jsonb_agg(jsonb_build_array(%s) %s), ''[]'') from (select * from %s %s limit %s) x',
      concat_ws(', ',
        nullif(array_to_string(array(select format('x.d%s', k) from generate_subscripts(dims, 1) k), ', '), ''),
        array_to_string(array(select format('coalesce(x.%I, 0)', y) from unnest(metric_names) y), ', ')),
      case when cardinality(dims) > 0 then 'order by ' || array_to_string(array(
        select format('x.d%s nulls last', k) from generate_subscripts(dims, 1) k), ', ') else '' end,
      q,
      case when cardinality(dims) > 0 then 'order by ' || array_to_string(array(
        select format('d%s nulls last', k) from generate_subscripts(dims, 1) k), ', ') else '' end,
      row_limit + 1)
    into rows using tenant, tz, filters;
  -- One row more than the limit was read, to say that there were more.
  if jsonb_array_length(rows) > row_limit then
    truncated := true;
    rows := rows - row_limit;
  end if;
  -- The names of the products, clients and warehouses in the rows, read
  -- under RLS like the rows themselves.
  for i in 1 .. cardinality(dims) loop
    if dims[i] in ('product', 'client', 'warehouse') then
      execute format('select coalesce(jsonb_object_agg(n.id, n.name), ''{}'') from %s n '
          || 'where n.tenant_id = $1 and n.id::text in (select r ->> %s from jsonb_array_elements($2) r)',
          case dims[i] when 'product' then 'public.products' when 'client' then 'public.wholesale_clients'
                       else 'public.warehouses' end, i - 1)
        into f using tenant, rows;
      labels := labels || jsonb_build_object(dims[i], f::jsonb);
    end if;
  end loop;
  execute format('select jsonb_build_object(%s) from %s',
      array_to_string(array(select format('%L, %I', x, x) from unnest(metric_names) x), ', '),
      array_to_string(total_parts, ' cross join '))
    into totals using tenant, tz, filters;
  return jsonb_build_object('columns', columns, 'rows', rows, 'totals', totals, 'time_zone', tz,
    'labels', labels, 'row_limit', row_limit, 'truncated', truncated)
    || case when period is not null
            then jsonb_build_object('period', period || jsonb_build_object(
              'date_from', filters ->> 'date_from', 'date_to', filters ->> 'date_to'))
            else '{}'::jsonb end;
end
$$;
revoke all on function public.report_data(jsonb) from public, anon;
grant execute on function public.report_data(jsonb) to authenticated, service_role;

-- What apps may show: the metrics, their sources and kinds.
create or replace view public.report_catalogue with (security_invoker = true) as
  select m.name as metric, m.source, m.rank, m.kind, m.description, s.has_time, s.dimensions
  from public.report_metrics m join public.report_sources s on s.name = m.source;
revoke all on public.report_catalogue from public, anon;
grant select on public.report_catalogue to authenticated, service_role;
