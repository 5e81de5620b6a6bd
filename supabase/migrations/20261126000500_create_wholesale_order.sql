-- create_wholesale_order, and the order-placing and stock rules it shares with
-- later functions (process_return's exchanges).

/*
 * private.order_payload_errors(payload): every problem with an order payload,
 * as {"field.path": "problem"}; '{}' when it is valid. The edge function
 * validates the same rules first; this keeps a direct REST call just as safe.
 * Locks nothing; raises nothing.
 */
create or replace function private.order_payload_errors(payload jsonb)
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
  errors := private.unknown_fields(payload, '',
    array['client_id', 'items', 'payment_terms', 'delivery_method', 'notes']);
  if not coalesce(payload ->> 'client_id' ~ uuid_re, false) then
    errors := errors || '{"client_id": "must be a UUID string"}';
  end if;
  if (payload ->> 'payment_terms') is null
     or (payload ->> 'payment_terms') not in ('prepaid', 'cod', 'net_15', 'net_30', 'net_60') then
    errors := errors || '{"payment_terms": "must be one of: prepaid, cod, net_15, net_30, net_60"}';
  end if;
  if (payload ->> 'delivery_method') is null
     or (payload ->> 'delivery_method') not in ('pickup', 'delivery', 'freight') then
    errors := errors || '{"delivery_method": "must be one of: pickup, delivery, freight"}';
  end if;
  if jsonb_typeof(payload -> 'notes') not in ('string', 'null') then
    errors := errors || '{"notes": "must be a string"}';
  elsif length(payload ->> 'notes') > 2000 then
    errors := errors || '{"notes": "must be at most 2000 characters"}';
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
      || private.unknown_fields(item, path, array['product_id', 'quantity', 'unit_price', 'warehouse_id'])
      || private.amount_errors(item, path, 'quantity', true)
      || private.amount_errors(item, path, 'unit_price', false);
    if not coalesce(item ->> 'product_id' ~ uuid_re, false) then
      errors := errors || jsonb_build_object(path || '.product_id', 'must be a UUID string');
    end if;
    if item ? 'warehouse_id' and jsonb_typeof(item -> 'warehouse_id') <> 'null'
       and not coalesce(item ->> 'warehouse_id' ~ uuid_re, false) then
      errors := errors || jsonb_build_object(path || '.warehouse_id', 'must be a UUID string');
    end if;
  end loop;
  -- The same product twice for the same warehouse (or both unset) is refused.
  return errors || private.repeated_lines(payload -> 'items', array['product_id', 'warehouse_id'],
    'product_id', ' for the same warehouse');
end
$$;
revoke all on function private.order_payload_errors(jsonb) from public;

/*
 * private.take_stock(tenant, lines): takes stock for order lines
 * ([{product_id, quantity, warehouse_id?}, …]) and returns where it came from:
 * [{line (1-based), warehouse_id, quantity}, …].
 *
 * Locks: every inventory row of the lines' products, in (product_id,
 * warehouse_id) order. Every caller locks in that one order, so orders whose
 * lines cross ([A,B] against [B,A]) wait for each other instead of deadlocking.
 *
 * Allocation: a line that names a warehouse takes all of it from there.
 * Otherwise it takes from the tenant's active warehouses in order of
 * (priority, name, id): the first warehouse is drained before the next is
 * touched. Lines are served in request order.
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
  stock record;
  -- Arrays, not jsonb: PL/pgSQL appends to an array in place, while each
  -- jsonb || copies the whole value (quadratic over a 500-line order).
  taken jsonb[] := '{}'::jsonb[];
  short jsonb[] := '{}'::jsonb[];
  touched uuid[] := '{}'::uuid[];
begin
  perform 1
  from public.wholesale_inventory i
  where i.tenant_id = tenant
    and i.product_id in (select (l ->> 'product_id')::uuid from jsonb_array_elements(lines) l)
  order by i.product_id, i.warehouse_id
  for update;

  for line, n in select l, o from jsonb_array_elements(lines) with ordinality t(l, o) loop
    wanted := (line ->> 'quantity')::numeric;
    select coalesce(sum(i.quantity), 0) into available
    from public.wholesale_inventory i
    join public.warehouses w on w.id = i.warehouse_id
    where i.tenant_id = tenant
      and i.product_id = (line ->> 'product_id')::uuid
      and w.is_active
      and (line ->> 'warehouse_id' is null or i.warehouse_id = (line ->> 'warehouse_id')::uuid);
    if available < wanted then
      short := short || jsonb_build_object(
        'line', n - 1, 'product_id', line ->> 'product_id', 'warehouse_id', line -> 'warehouse_id',
        'requested', wanted, 'available', available);
      continue;
    end if;
    for stock in
      select i.id, i.warehouse_id, i.quantity
      from public.wholesale_inventory i
      join public.warehouses w on w.id = i.warehouse_id
      where i.tenant_id = tenant
        and i.product_id = (line ->> 'product_id')::uuid
        and w.is_active
        and i.quantity > 0
        and (line ->> 'warehouse_id' is null or i.warehouse_id = (line ->> 'warehouse_id')::uuid)
      order by w.priority, w.name, w.id
    loop
      exit when wanted = 0;
      take := least(wanted, stock.quantity);
      update public.wholesale_inventory
      set quantity = quantity - take, last_updated = now()
      where id = stock.id;
      taken := taken || jsonb_build_object('line', n, 'warehouse_id', stock.warehouse_id, 'quantity', take);
      touched := touched || stock.id;
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
 * private.require_products(tenant, lines): raises CEN04 'product not found',
 * with the ids, when any line's product_id is not one of the tenant's products.
 */
create or replace function private.require_products(tenant uuid, lines jsonb)
returns void
language plpgsql
stable
set search_path = ''
as $$
declare
  missing jsonb;
begin
  select coalesce(jsonb_agg(distinct l ->> 'product_id'), '[]') into missing
  from jsonb_array_elements(lines) l
  where not exists (
    select 1 from public.products p
    where p.id = (l ->> 'product_id')::uuid and p.tenant_id = tenant);
  if missing <> '[]' then
    perform private.raise_error('CEN04', 'product not found',
      jsonb_build_object('resource', 'product', 'ids', missing));
  end if;
end
$$;
revoke all on function private.require_products(uuid, jsonb) from public;

/*
 * private.lines_total(lines, noun): the sum of round(quantity × unit_price, 2)
 * over the lines; raises CEV01 ("the <noun> total must be at most
 * 99999999.99") when it does not fit DECIMAL(10,2).
 */
create or replace function private.lines_total(lines jsonb, noun text)
returns numeric
language plpgsql
immutable
set search_path = ''
as $$
declare
  total numeric;
begin
  select sum(round((l ->> 'quantity')::numeric * (l ->> 'unit_price')::numeric, 2)) into total
  from jsonb_array_elements(lines) l;
  if total > 99999999.99 then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      jsonb_build_object('items', format('the %s total must be at most 99999999.99', noun)));
  end if;
  return total;
end
$$;
revoke all on function private.lines_total(jsonb, text) from public;

/*
 * private.require_active_client(the_client): an order, or an exchange's
 * replacement, is placed only for an active client. Raises CEC02
 * (CLIENT_INACTIVE) with details {client_id, status} otherwise. The caller
 * has locked the client row.
 */
create or replace function private.require_active_client(the_client public.wholesale_clients)
returns void
language plpgsql
stable
set search_path = ''
as $$
begin
  if the_client.status <> 'active' then
    perform private.raise_error('CEC02', 'the client is not active',
      jsonb_build_object('client_id', the_client.id, 'status', the_client.status));
  end if;
end
$$;
revoke all on function private.require_active_client(public.wholesale_clients) from public;

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
 * (private.take_stock: CES01); numbers the order; inserts the order, lines and
 * allocations; raises the balance for net terms; creates the delivery; queues
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

  insert into public.wholesale_order_allocations (tenant_id, order_item_id, warehouse_id, quantity)
  select tenant, i.id, (a ->> 'warehouse_id')::uuid, (a ->> 'quantity')::numeric
  from jsonb_array_elements(taken) a
  join public.wholesale_order_items i on i.order_id = new_order and i.line_number = (a ->> 'line')::integer;

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
 * the client row; the inventory rows (product_id, warehouse_id order); the
 * tenant's WO counter row.
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

  select * into the_client from public.wholesale_clients c where c.id = the_client.id for update;
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
