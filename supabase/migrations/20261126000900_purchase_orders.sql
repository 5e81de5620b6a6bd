-- Suppliers and purchase orders. A purchase order is created by
-- public.create_purchase_order; the create-purchase-order function then renders
-- its PDF, uploads it to the purchase-orders bucket and calls
-- public.attach_purchase_order_pdf, which queues the email to the supplier.

create table if not exists public.suppliers (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  email text check (length(email) <= 320),
  phone text check (length(phone) <= 32),
  address text check (length(address) <= 500),
  -- copied onto each PO and its PDF
  payment_terms text check (length(payment_terms) <= 100),
  contact_person text check (length(contact_person) <= 200),
  created_at timestamptz default now(),
  unique (id, tenant_id)
);

create table if not exists public.purchase_orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  supplier_id uuid not null,
  po_number text not null,
  -- draft: created, PDF not yet attached; sent: the PDF is stored and the
  -- supplier's email is queued (or the supplier has no email address).
  -- Moves only forward (private.guard_purchase_order_update).
  status text not null default 'draft'
    check (status in ('draft', 'sent', 'confirmed', 'received', 'cancelled')),
  total_amount numeric(10, 2) not null check (total_amount >= 0),
  expected_delivery_date date not null,
  -- copied from the supplier when the PO is created, so the PDF shows what applied then
  payment_terms text,
  notes text check (length(notes) <= 2000),
  -- where the PDF lives in the purchase-orders bucket: <tenant_id>/<po_number>.pdf
  pdf_path text not null,
  pdf_attached_at timestamptz,
  created_by uuid references auth.users (id),
  created_at timestamptz not null default now(),
  unique (tenant_id, po_number),
  unique (id, tenant_id),
  foreign key (supplier_id, tenant_id) references public.suppliers (id, tenant_id)
);
create index if not exists purchase_orders_supplier_id_idx on public.purchase_orders (supplier_id);

create table if not exists public.purchase_order_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null,
  po_id uuid not null,
  line_number integer not null check (line_number > 0),
  product_id uuid not null,
  quantity numeric(10, 2) not null check (quantity > 0),
  unit_price numeric(10, 2) not null check (unit_price >= 0),
  total_price numeric(10, 2) not null check (total_price >= 0),
  unique (po_id, line_number),
  foreign key (po_id, tenant_id) references public.purchase_orders (id, tenant_id) on delete cascade,
  foreign key (product_id, tenant_id) references public.products (id, tenant_id)
);
create index if not exists purchase_order_items_product_id_idx on public.purchase_order_items (product_id);

select private.isolate_by_tenant('public.suppliers', 'suppliers');
select private.isolate_by_tenant('public.purchase_orders', 'purchase orders');
select private.isolate_by_tenant('public.purchase_order_items', 'purchase order items');

revoke all on public.suppliers, public.purchase_orders, public.purchase_order_items
  from anon, authenticated;
-- Members keep their supplier list; purchase orders are created only through
-- create_purchase_order, and their status is moved on by members afterwards.
grant select, insert, update, delete on public.suppliers to authenticated;
grant select on public.purchase_orders, public.purchase_order_items to authenticated;
grant update (status) on public.purchase_orders to authenticated;
grant all on public.suppliers, public.purchase_orders, public.purchase_order_items to service_role;

/*
 * private.guard_purchase_order_update(): before a purchase order is updated,
 * by a member directly or by an RPC.
 *
 * A signed-in user (auth.uid() set) needs the member role or a higher one:
 * RLS already keeps a viewer's direct update from matching any row, and this
 * refuses one through a security definer RPC (attach_purchase_order_pdf)
 * with CEA03 (FORBIDDEN).
 *
 * The status moves only forward, for everyone: draft → sent → confirmed →
 * received, steps may be skipped, and any status before received may become
 * cancelled; received and cancelled are final. Anything else raises CET01
 * (INVALID_STATUS_TRANSITION, 409) with details {from, to}. Locks nothing
 * beyond the row being updated.
 */
create or replace function private.guard_purchase_order_update()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  flow constant text[] := array['draft', 'sent', 'confirmed', 'received'];
begin
  if (select auth.uid()) is not null then
    perform private.require_role(new.tenant_id, 'member');
  end if;
  if new.status is distinct from old.status
     and not (
       old.status in ('draft', 'sent', 'confirmed')
       and (new.status = 'cancelled'
            or array_position(flow, new.status) > array_position(flow, old.status)))
  then
    raise exception using errcode = 'CET01',
      message = format('a purchase order cannot go from %s to %s', old.status, new.status),
      detail = jsonb_build_object('from', old.status, 'to', new.status)::text;
  end if;
  return new;
end
$$;
revoke all on function private.guard_purchase_order_update() from public;

drop trigger if exists guard_purchase_order_update on public.purchase_orders;
create trigger guard_purchase_order_update before update on public.purchase_orders
  for each row execute function private.guard_purchase_order_update();

insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds) values
  (null, 'create-purchase-order', 120, 60)
on conflict (tenant_id, function_name) do nothing;

/*
 * private.purchase_order_payload_errors(payload): every problem with a
 * purchase-order payload as {"field.path": "problem"}; '{}' when valid. The
 * edge function checks the same rules first.
 */
create or replace function private.purchase_order_payload_errors(payload jsonb)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  errors jsonb;
  item jsonb;
  n bigint;
  path text;
  due date;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    return '{"body": "must be an object"}'::jsonb;
  end if;
  errors := private.unknown_fields(payload, '', array['supplier_id', 'items', 'expected_delivery_date', 'notes']);
  if not coalesce(payload ->> 'supplier_id' ~ uuid_re, false) then
    errors := errors || '{"supplier_id": "must be a UUID string"}';
  end if;
  begin
    if jsonb_typeof(payload -> 'expected_delivery_date') is distinct from 'string'
       or (payload ->> 'expected_delivery_date') !~ '^\d{4}-\d{2}-\d{2}$' then
      errors := errors || '{"expected_delivery_date": "must be a date, YYYY-MM-DD"}';
    else
      due := (payload ->> 'expected_delivery_date')::date;
      if due < (now() at time zone 'utc')::date then
        errors := errors || '{"expected_delivery_date": "must not be in the past"}';
      end if;
    end if;
  exception when datetime_field_overflow or invalid_datetime_format then
    errors := errors || '{"expected_delivery_date": "must be a date, YYYY-MM-DD"}';
  end;
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
      || private.unknown_fields(item, path, array['product_id', 'quantity', 'unit_price'])
      || private.amount_errors(item, path, 'quantity', true)
      || private.amount_errors(item, path, 'unit_price', false);
    if not coalesce(item ->> 'product_id' ~ uuid_re, false) then
      errors := errors || jsonb_build_object(path || '.product_id', 'must be a UUID string');
    end if;
  end loop;

  return errors || private.repeated_lines(payload -> 'items', array['product_id'], 'product_id');
end
$$;
revoke all on function private.purchase_order_payload_errors(jsonb) from public;

/*
 * public.create_purchase_order(payload, idempotency_key): creates a purchase
 * order and its lines in one transaction, as the calling user.
 *
 * payload: {supplier_id, items: [{product_id, quantity, unit_price}],
 *           expected_delivery_date: 'YYYY-MM-DD', notes?}
 * returns: {po_id, po_number, total_amount, pdf_path, pdf_attached, document}
 *   where document is everything the PDF shows (tenant, supplier, dates, lines
 *   with SKUs and names, totals, terms, notes). A replay of the key returns the
 *   first result with "replayed": true and the current pdf_attached, so the
 *   caller can finish a PO whose PDF step failed.
 *
 * Locks, in order: a tenant slot and the admission row (private.admit_early);
 * the idempotency key row;
 * the tenant's PO counter row.
 *
 * Raises: CEA01, CEV01 (details by field), CEN04 (supplier or product missing
 * or another tenant's), CEA03 (a viewer), CEI22, CEI09, CER29.
 */
create or replace function public.create_purchase_order(payload jsonb, idempotency_key text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  -- First, before validating: a request refused for capacity costs nothing.
  admitted uuid := private.admit_early('create-purchase-order');
  caller uuid := private.begin_request(private.purchase_order_payload_errors(payload), idempotency_key);
  the_supplier public.suppliers%rowtype;
  tenant uuid;
  replay jsonb;
  po_total numeric;
  new_po uuid;
  new_number text;
  path text;
  created timestamptz;
  result jsonb;
begin
  select * into the_supplier from public.suppliers s where s.id = (payload ->> 'supplier_id')::uuid;
  if not found or not private.is_member(the_supplier.tenant_id) then
    perform private.raise_error('CEN04', 'supplier not found',
      jsonb_build_object('resource', 'supplier', 'id', payload ->> 'supplier_id'));
  end if;
  tenant := the_supplier.tenant_id;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'create-purchase-order', admitted);

  if idempotency_key is not null then
    replay := private.claim_idempotency_key(tenant, idempotency_key, 'create_purchase_order', payload);
    if replay is not null then
      return replay || jsonb_build_object('pdf_attached',
        (select p.pdf_attached_at is not null from public.purchase_orders p
         where p.id = (replay ->> 'po_id')::uuid));
    end if;
  end if;

  perform private.require_products(tenant, payload -> 'items');
  po_total := private.lines_total(payload -> 'items', 'purchase order');

  new_number := private.next_document_number(tenant, 'PO');
  path := tenant::text || '/' || new_number || '.pdf';
  insert into public.purchase_orders
    (tenant_id, supplier_id, po_number, total_amount, expected_delivery_date, payment_terms,
     notes, pdf_path, created_by)
  values
    (tenant, the_supplier.id, new_number, po_total, (payload ->> 'expected_delivery_date')::date,
     the_supplier.payment_terms, payload ->> 'notes', path, caller)
  returning id, created_at into new_po, created;

  insert into public.purchase_order_items
    (tenant_id, po_id, line_number, product_id, quantity, unit_price, total_price)
  select tenant, new_po, t.o, (t.l ->> 'product_id')::uuid,
         (t.l ->> 'quantity')::numeric, (t.l ->> 'unit_price')::numeric,
         round((t.l ->> 'quantity')::numeric * (t.l ->> 'unit_price')::numeric, 2)
  from jsonb_array_elements(payload -> 'items') with ordinality t(l, o);

  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (tenant, caller, 'purchase_order.created', 'purchase_order', new_po,
    jsonb_build_object('po_number', new_number, 'total_amount', po_total,
      'supplier_id', the_supplier.id, 'lines', jsonb_array_length(payload -> 'items')));

  result := jsonb_build_object(
    'po_id', new_po,
    'po_number', new_number,
    'total_amount', po_total,
    'pdf_path', path,
    'pdf_attached', false,
    'document', jsonb_build_object(
      'po_number', new_number,
      'business_name', (select t.business_name from public.tenants t where t.id = tenant),
      'issued_on', (created at time zone 'utc')::date,
      'expected_delivery_date', payload ->> 'expected_delivery_date',
      'supplier', jsonb_build_object(
        'name', the_supplier.name, 'contact_person', the_supplier.contact_person,
        'address', the_supplier.address, 'email', the_supplier.email, 'phone', the_supplier.phone),
      'payment_terms', the_supplier.payment_terms,
      'notes', payload ->> 'notes',
      'total_amount', po_total,
      'items', (
        select jsonb_agg(jsonb_build_object(
          'sku', p.sku, 'name', p.name, 'quantity', i.quantity,
          'unit_price', i.unit_price, 'total_price', i.total_price) order by i.line_number)
        from public.purchase_order_items i
        join public.products p on p.id = i.product_id
        where i.po_id = new_po)));
  if idempotency_key is not null then
    perform private.store_idempotent_response(tenant, idempotency_key, result);
  end if;
  return result;
end
$$;
revoke all on function public.create_purchase_order(jsonb, text) from public, anon;
grant execute on function public.create_purchase_order(jsonb, text) to authenticated, service_role;

-- The earlier attach_purchase_order_pdf(po_id, pdf_url) took a URL from the
-- caller; the email link is now signed by the dispatcher when it sends.
drop function if exists public.attach_purchase_order_pdf(uuid, text);

/*
 * public.attach_purchase_order_pdf(po_id): records that the PO's PDF is
 * stored, marks the PO sent and queues the supplier's email. Only the first
 * call queues anything, so a retried request never emails the supplier twice.
 * Returns {queued: 0|1}.
 *
 * The email carries no URL from the caller. Its payload names the object
 * ({"signed_links": {"pdf_url": {"bucket", "path", "expires_in"}}}), and the
 * dispatcher signs a link to exactly that object, on this project's Storage,
 * when it sends the email.
 *
 * Locks the purchase order row. Raises CEA01, CEN04 (missing or another
 * tenant's PO), CEA03 (a viewer), CET01 (the PO is cancelled), CEV01 (the
 * PDF is not in the purchase-orders bucket yet).
 */
create or replace function public.attach_purchase_order_pdf(po_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := private.begin_request('{}', null);
  po public.purchase_orders%rowtype;
  queued integer := 0;
begin
  select * into po from public.purchase_orders p where p.id = attach_purchase_order_pdf.po_id for update;
  if not found or not private.is_member(po.tenant_id) then
    perform private.raise_error('CEN04', 'purchase order not found',
      jsonb_build_object('resource', 'purchase_order', 'id', attach_purchase_order_pdf.po_id));
  end if;
  perform private.require_role(po.tenant_id, 'member');
  if po.status = 'cancelled' then
    perform private.raise_error('CET01', 'a cancelled purchase order is not sent',
      jsonb_build_object('from', po.status, 'to', 'sent'));
  end if;
  if not exists (
    select 1 from storage.objects o where o.bucket_id = 'purchase-orders' and o.name = po.pdf_path)
  then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      jsonb_build_object('po_id', 'the PDF is not stored yet at purchase-orders/' || po.pdf_path));
  end if;
  if po.pdf_attached_at is not null then
    return '{"queued": 0}'::jsonb;
  end if;

  insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
  select po.tenant_id, 'email', 'purchase_order', s.email, jsonb_build_object(
    'po_id', po.id,
    'po_number', po.po_number,
    'business_name', (select t.business_name from public.tenants t where t.id = po.tenant_id),
    'supplier_name', s.name,
    'contact_person', s.contact_person,
    'expected_delivery_date', po.expected_delivery_date,
    'total_amount', po.total_amount,
    'payment_terms', po.payment_terms,
    'lines', (select count(*) from public.purchase_order_items i where i.po_id = po.id),
    'notes', po.notes,
    'signed_links', jsonb_build_object('pdf_url', jsonb_build_object(
      'bucket', 'purchase-orders', 'path', po.pdf_path, 'expires_in', 30 * 24 * 3600)))
  from public.suppliers s
  where s.id = po.supplier_id and s.email is not null and s.email <> '';
  get diagnostics queued = row_count;

  update public.purchase_orders p
  set pdf_attached_at = now(), status = case when p.status = 'draft' then 'sent' else p.status end
  where p.id = po.id;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (po.tenant_id, caller, 'purchase_order.sent', 'purchase_order', po.id,
    jsonb_build_object('po_number', po.po_number, 'email_queued', queued = 1));
  return jsonb_build_object('queued', queued);
end
$$;
revoke all on function public.attach_purchase_order_pdf(uuid) from public, anon;
grant execute on function public.attach_purchase_order_pdf(uuid) to authenticated, service_role;

-- Requests to create-purchase-order are admitted against the tenant of their supplier (see rate_limits).
insert into private.request_subjects (function_name, subject_table, resource)
values ('create-purchase-order', 'public.suppliers', 'supplier')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
