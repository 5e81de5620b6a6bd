-- Returns: return authorizations, their lines, refunds, and process_return.
-- An exchange's replacement is placed through private.place_wholesale_order,
-- so it follows the same product, stock, numbering, delivery and confirmation
-- rules as create_wholesale_order.

-- ---------------------------------------------------------------- schema

alter table public.wholesale_orders
  -- the card payment a refund goes back to (set by the payment functions)
  add column if not exists stripe_payment_intent_id text,
  -- the value of everything returned so far, and whether that is all of it
  add column if not exists returned_amount numeric(10, 2) not null default 0,
  add column if not exists return_status text not null default 'none';
alter table public.wholesale_orders drop constraint if exists wholesale_orders_return_status_check;
alter table public.wholesale_orders add constraint wholesale_orders_return_status_check
  check (return_status in ('none', 'partial', 'full'));
-- Never more back than the order was worth (see the value rule in process_return).
alter table public.wholesale_orders drop constraint if exists wholesale_orders_returned_amount_check;
alter table public.wholesale_orders add constraint wholesale_orders_returned_amount_check
  check (returned_amount >= 0 and returned_amount <= total_amount);

-- The running total returned per line and per allocation. The checks make an
-- over-return impossible whatever code runs, not only process_return.
alter table public.wholesale_order_items
  add column if not exists returned_quantity numeric(10, 2) not null default 0;
alter table public.wholesale_order_items drop constraint if exists wholesale_order_items_returned_check;
alter table public.wholesale_order_items add constraint wholesale_order_items_returned_check
  check (returned_quantity >= 0 and returned_quantity <= quantity);
alter table public.wholesale_order_allocations
  add column if not exists returned_quantity numeric(10, 2) not null default 0;
alter table public.wholesale_order_allocations drop constraint if exists wholesale_order_allocations_returned_check;
alter table public.wholesale_order_allocations add constraint wholesale_order_allocations_returned_check
  check (returned_quantity >= 0 and returned_quantity <= quantity);

create table if not exists public.return_authorizations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  order_id uuid not null,
  ra_number text not null,
  -- pending: a refund is still to be confirmed by Stripe; completed: done;
  -- refund_failed: Stripe refused the refund (see refunds.last_error).
  status text not null default 'pending' check (status in ('pending', 'completed', 'refund_failed')),
  -- the distinct reasons of its lines, joined (cut at 2000 characters; each
  -- line keeps its own reason in return_items)
  return_reason text check (length(return_reason) <= 2000),
  return_method text not null check (return_method in ('refund', 'exchange', 'credit')),
  -- the value of the returned lines, whatever the method (see process_return)
  refund_amount numeric(10, 2) not null check (refund_amount >= 0),
  exchange_order_id uuid,
  created_by uuid references auth.users (id),
  created_at timestamptz not null default now(),
  completed_at timestamptz,
  unique (tenant_id, ra_number),
  unique (id, tenant_id),
  foreign key (order_id, tenant_id) references public.wholesale_orders (id, tenant_id),
  foreign key (exchange_order_id, tenant_id) references public.wholesale_orders (id, tenant_id)
);
create index if not exists return_authorizations_order_id_idx on public.return_authorizations (order_id);

-- A replacement order points at the return it replaces (the column is in the
-- orders migration; the table it references is here).
alter table public.wholesale_orders drop constraint if exists wholesale_orders_exchange_for_return_fkey;
alter table public.wholesale_orders add constraint wholesale_orders_exchange_for_return_fkey
  foreign key (exchange_for_return_id, tenant_id) references public.return_authorizations (id, tenant_id);

create table if not exists public.return_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  ra_id uuid not null,
  order_item_id uuid not null,
  quantity numeric(10, 2) not null check (quantity > 0),
  reason text not null check (length(reason) between 1 and 500),
  unit_price numeric(10, 2) not null,
  amount numeric(10, 2) not null,
  -- where the stock went back: [{warehouse_id, quantity}, …]
  restocked jsonb not null default '[]',
  unique (ra_id, order_item_id),
  foreign key (ra_id, tenant_id) references public.return_authorizations (id, tenant_id) on delete cascade,
  foreign key (order_item_id, tenant_id) references public.wholesale_order_items (id, tenant_id)
);
create index if not exists return_items_order_item_id_idx on public.return_items (order_item_id);

-- One refund per refund-method return. Its id is the Stripe idempotency key
-- (refund_<id>), so however often the refund is submitted, Stripe makes one.
create table if not exists public.refunds (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  ra_id uuid not null unique,
  order_id uuid not null,
  amount numeric(10, 2) not null check (amount > 0),
  payment_intent text not null,
  -- pending: not yet accepted by Stripe (last_error says why); otherwise
  -- Stripe's answer: processing (Stripe's "pending"), succeeded, failed,
  -- canceled, requires_action; failed also when Stripe refused the request.
  status text not null default 'pending'
    check (status in ('pending', 'processing', 'succeeded', 'failed', 'canceled', 'requires_action')),
  stripe_refund_id text unique,
  stripe_status text,
  attempts integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  foreign key (ra_id, tenant_id) references public.return_authorizations (id, tenant_id) on delete cascade,
  foreign key (order_id, tenant_id) references public.wholesale_orders (id, tenant_id)
);
create index if not exists refunds_pending_idx on public.refunds (created_at) where status = 'pending';

-- A refund still pending after its request is retried from the outbox, like a
-- message: channel 'stripe', template 'refund', delivered by the dispatcher
-- with the same Stripe idempotency key. See process_return. The outbox's
-- channel list is in 20261126001200_platform_alerts.sql.

select private.isolate_by_tenant('public.return_authorizations', 'return authorizations');
select private.isolate_by_tenant('public.return_items', 'return items');
select private.isolate_by_tenant('public.refunds', 'refunds');

revoke all on public.return_authorizations, public.return_items, public.refunds from anon, authenticated;
-- Returns are created only through process_return, refunds move on only
-- through record_refund_outcome (the service role).
grant select on public.return_authorizations, public.return_items, public.refunds to authenticated;
grant all on public.return_authorizations, public.return_items, public.refunds to service_role;

insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds) values
  (null, 'process-return', 120, 60)
on conflict (tenant_id, function_name) do nothing;

-- ---------------------------------------------------------------- returns

/*
 * private.return_payload_errors(payload): every problem with a return payload
 * as {"field.path": "problem"}; '{}' when valid.
 */
create or replace function private.return_payload_errors(payload jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  errors jsonb;
  item jsonb;
  n bigint;
  path text;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    return '{"body": "must be an object"}'::jsonb;
  end if;
  errors := private.unknown_fields(payload, '', array['order_id', 'items', 'return_method']);
  if not coalesce(payload ->> 'order_id' ~ uuid_re, false) then
    errors := errors || '{"order_id": "must be a UUID string"}';
  end if;
  if (payload ->> 'return_method') is null
     or (payload ->> 'return_method') not in ('refund', 'exchange', 'credit') then
    errors := errors || '{"return_method": "must be one of: refund, exchange, credit"}';
  end if;
  if jsonb_typeof(payload -> 'items') is distinct from 'array'
     or jsonb_array_length(payload -> 'items') not between 1 and 500 then
    return errors || '{"items": "must have 1 to 500 entries"}';
  end if;
  for item, n in select i, o - 1 from jsonb_array_elements(payload -> 'items') with ordinality t(i, o) loop
    path := format('items[%s]', n);
    if jsonb_typeof(item) is distinct from 'object' then
      errors := errors || jsonb_build_object(path, 'must be an object');
      continue;
    end if;
    errors := errors
      || private.unknown_fields(item, path, array['order_item_id', 'quantity', 'reason'])
      || private.amount_errors(item, path, 'quantity', true);
    if not coalesce(item ->> 'order_item_id' ~ uuid_re, false) then
      errors := errors || jsonb_build_object(path || '.order_item_id', 'must be a UUID string');
    end if;
    if jsonb_typeof(item -> 'reason') is distinct from 'string' or length(trim(item ->> 'reason')) = 0 then
      errors := errors || jsonb_build_object(path || '.reason', 'must be a non-empty string');
    elsif length(item ->> 'reason') > 500 then
      errors := errors || jsonb_build_object(path || '.reason', 'must be at most 500 characters');
    end if;
  end loop;

  return errors || private.repeated_lines(payload -> 'items', array['order_item_id'], 'order_item_id');
end
$$;
revoke all on function private.return_payload_errors(jsonb) from public;

/* A refund as the function and the API show it. */
create or replace function private.refund_json(refund_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', r.id, 'amount', r.amount, 'payment_intent', r.payment_intent,
    'status', r.status, 'stripe_refund_id', r.stripe_refund_id, 'attempts', r.attempts,
    'last_error', r.last_error)
  from public.refunds r where r.id = refund_id
$$;
revoke all on function private.refund_json(uuid) from public;

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
 * client row; the inventory rows of the returned products ((product_id,
 * warehouse_id) order, as take_stock); the RA counter; for an exchange the WO
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
  select * into the_client from public.wholesale_clients c where c.id = the_order.client_id for update;
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

  -- Put the stock back where it came from.
  perform 1
  from public.wholesale_inventory inv
  where inv.tenant_id = tenant
    and inv.product_id in (
      select i.product_id from public.wholesale_order_items i
      where i.id in (select (l ->> 'order_item_id')::uuid from jsonb_array_elements(payload -> 'items') l))
  order by inv.product_id, inv.warehouse_id
  for update;
  for line in
    select i.id, i.product_id, (l ->> 'quantity')::numeric as quantity
    from jsonb_array_elements(payload -> 'items') l
    join public.wholesale_order_items i on i.id = (l ->> 'order_item_id')::uuid
  loop
    left_to_restock := line.quantity;
    restocked := '[]';
    for alloc in
      select a.id, a.warehouse_id, a.quantity - a.returned_quantity as open
      from public.wholesale_order_allocations a
      join public.warehouses w on w.id = a.warehouse_id
      where a.order_item_id = line.id and a.quantity > a.returned_quantity
      order by w.priority, w.name, w.id
    loop
      exit when left_to_restock = 0;
      put := least(left_to_restock, alloc.open);
      update public.wholesale_order_allocations a set returned_quantity = a.returned_quantity + put
      where a.id = alloc.id;
      insert into public.wholesale_inventory as inv (tenant_id, product_id, warehouse_id, quantity)
      values (tenant, line.product_id, alloc.warehouse_id, put)
      on conflict (product_id, warehouse_id)
      do update set quantity = inv.quantity + excluded.quantity, last_updated = now();
      restocked := restocked || jsonb_build_object('warehouse_id', alloc.warehouse_id, 'quantity', put);
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

/*
 * public.record_refund_outcome(refund_id, stripe_refund_id, stripe_status,
 * error, permanent): what Stripe answered for a refund. Service role only: a
 * member must not be able to mark a refund paid.
 *
 * With a stripe_refund_id: the refund takes Stripe's status (Stripe's
 * "pending" is our "processing") and its return is completed unless Stripe
 * says failed or canceled. Without one: a transient error counts an attempt
 * and keeps the refund pending; a permanent one fails the refund and marks
 * the return refund_failed. A refund Stripe already accepted is never moved
 * back by a later error. The refund's pending outbox row becomes sent (or
 * dead, for a permanent error). Returns the refund (refund_json). Raises CEN04.
 */
create or replace function public.record_refund_outcome(
  refund_id uuid,
  stripe_refund_id text default null,
  stripe_status text default null,
  error text default null,
  permanent boolean default false)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  r public.refunds%rowtype;
  mapped text;
begin
  select * into r from public.refunds f where f.id = refund_id for update;
  if not found then
    perform private.raise_error('CEN04', 'refund not found',
      jsonb_build_object('resource', 'refund', 'id', refund_id));
  end if;
  if record_refund_outcome.stripe_refund_id is not null then
    mapped := case record_refund_outcome.stripe_status
      when 'pending' then 'processing'
      when 'succeeded' then 'succeeded'
      when 'failed' then 'failed'
      when 'canceled' then 'canceled'
      when 'requires_action' then 'requires_action'
      else 'processing' end;
    update public.refunds f
    set stripe_refund_id = record_refund_outcome.stripe_refund_id,
        stripe_status = record_refund_outcome.stripe_status,
        status = mapped, attempts = f.attempts + 1, last_error = null, updated_at = now()
    where f.id = r.id;
    update public.return_authorizations a
    set status = case when mapped in ('failed', 'canceled') then 'refund_failed' else 'completed' end,
        completed_at = case when mapped in ('failed', 'canceled') then null else now() end
    where a.id = r.ra_id;
    -- Its outbox row has nothing left to do (unless a dispatcher holds it,
    -- which then records the same refund itself).
    update public.notification_outbox o
    set status = 'sent', sent_at = now(), provider_message_id = record_refund_outcome.stripe_refund_id,
        last_error = null
    where o.channel = 'stripe' and o.status = 'pending' and o.payload ->> 'refund_id' = r.id::text;
  elsif r.stripe_refund_id is null then
    update public.refunds f
    set attempts = f.attempts + 1, last_error = left(error, 1000), updated_at = now(),
        status = case when permanent then 'failed' else f.status end
    where f.id = r.id;
    if permanent then
      update public.return_authorizations a set status = 'refund_failed' where a.id = r.ra_id;
      update public.notification_outbox o
      set status = 'dead', last_error = left(error, 1000)
      where o.channel = 'stripe' and o.status = 'pending' and o.payload ->> 'refund_id' = r.id::text;
    end if;
  end if;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (r.tenant_id, null, 'refund.submitted', 'refund', r.id,
    jsonb_build_object('stripe_refund_id', record_refund_outcome.stripe_refund_id,
      'stripe_status', record_refund_outcome.stripe_status, 'error', left(error, 1000),
      'permanent', permanent));
  return private.refund_json(r.id);
end
$$;
revoke all on function public.record_refund_outcome(uuid, text, text, text, boolean) from public, anon, authenticated;
grant execute on function public.record_refund_outcome(uuid, text, text, text, boolean) to service_role;

/*
 * public.refund_state(refund_id): a refund's current state (refund_json), for
 * the dispatcher deciding whether a refund's outbox row still needs Stripe.
 * Service role only. Null when there is no such refund.
 */
create or replace function public.refund_state(refund_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select private.refund_json(refund_id)
$$;
revoke all on function public.refund_state(uuid) from public, anon, authenticated;
grant execute on function public.refund_state(uuid) to service_role;

-- Requests to process-return are admitted against the tenant of their order (see rate_limits).
insert into private.request_subjects (function_name, subject_table, resource)
values ('process-return', 'public.wholesale_orders', 'order')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
