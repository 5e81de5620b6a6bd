-- Test helpers, loaded into the test database before pg_prove runs the files in
-- database/. Each test file calls tests.make_fixture() inside its own
-- transaction, which it rolls back.

create schema if not exists tests;

/*
 * Admissions for a user, as an edge function would get them from
 * admit_request: one per tenant the user belongs to and per registered
 * function, each good for many calls, named in the x-admission header the
 * REST server would pass on. Tests of the business RPCs' own rules call them
 * "through the function" this way; 04_rate_limits tests admission itself.
 */
create or replace function tests.admit(uid uuid)
returns void
language plpgsql
security definer
as $$
declare
  ids text;
begin
  with made as (
    insert into private.admissions (tenant_id, user_id, function_name, uses_left, expires_at)
    select tu.tenant_id, uid, s.function_name, 1000, now() + interval '1 hour'
    from public.tenant_users tu cross join private.request_subjects s
    where tu.user_id = uid
    returning id
  )
  select string_agg(id::text, ',') into ids from made;
  perform set_config('request.headers', jsonb_build_object('x-admission', coalesce(ids, ''))::text, true);
end
$$;

/* Act as a signed-in user (uuid) or, for null, as anon: the role and claims the REST server sets. */
create or replace function tests.act_as(uid uuid)
returns void
language plpgsql
as $$
begin
  if uid is null then
    perform set_config('request.headers', '', true);
    perform set_config('request.jwt.claims', '{"role":"anon"}', true);
    execute 'set local role anon';
  else
    perform tests.admit(uid);
    perform set_config('request.jwt.claims',
      jsonb_build_object('sub', uid, 'role', 'authenticated')::text, true);
    execute 'set local role authenticated';
  end if;
end
$$;

/* Back to the superuser that runs the tests. */
create or replace function tests.act_as_owner()
returns void
language plpgsql
as $$
begin
  execute 'set local role postgres';
  perform set_config('request.jwt.claims', '', true);
  perform set_config('request.headers', '', true);
end
$$;

/* How many rows of `tbl` a user (or anon, for null) can see. */
create or replace function tests.count_visible(uid uuid, tbl text)
returns bigint
language plpgsql
as $$
declare
  n bigint;
begin
  perform tests.act_as(uid);
  execute format('select count(*) from public.%I', tbl) into n;
  perform tests.act_as_owner();
  return n;
end
$$;

/* Two tenants with fixed ids:
 *   A: user 0a…01, warehouses A1 (priority 1) and A2 (priority 2), product PA1
 *      (5 in A1, 5 in A2, reorder point 3), PA2 (100 in A1), client CA (credit
 *      100, net_30, email and phone), client CA_OFF (inactive).
 *      Suppliers SA (email, net_30) and SA_NOMAIL.
 *   B: user 0b…01, warehouse B1, product PB1 (10 in B1), client CB, supplier SB.
 */
create or replace function tests.make_fixture()
returns void
language sql
as $$
  insert into auth.users (id, email) values
    ('0a000000-0000-4000-8000-000000000001', 'a@tenant-a.test'),
    ('0b000000-0000-4000-8000-000000000001', 'b@tenant-b.test');
  insert into public.tenants (id, slug, business_name) values
    ('1a000000-0000-4000-8000-000000000001', 'tenant-a', 'Tenant A'),
    ('1b000000-0000-4000-8000-000000000001', 'tenant-b', 'Tenant B');
  insert into public.tenant_users (tenant_id, user_id, email) values
    ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'a@tenant-a.test'),
    ('1b000000-0000-4000-8000-000000000001', '0b000000-0000-4000-8000-000000000001', 'b@tenant-b.test');
  insert into public.warehouses (id, tenant_id, name, priority) values
    ('3a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'A1', 1),
    ('3a000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'A2', 2),
    ('3b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'B1', 1);
  insert into public.products (id, tenant_id, name, sku) values
    ('4a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'PA1', 'PA1'),
    ('4a000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'PA2', 'PA2'),
    ('4b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'PB1', 'PB1');
  insert into public.wholesale_inventory (tenant_id, product_id, warehouse_id, quantity, reorder_point) values
    ('1a000000-0000-4000-8000-000000000001', '4a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 5, 3),
    ('1a000000-0000-4000-8000-000000000001', '4a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000002', 5, 3),
    ('1a000000-0000-4000-8000-000000000001', '4a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 100, null),
    ('1b000000-0000-4000-8000-000000000001', '4b000000-0000-4000-8000-000000000001', '3b000000-0000-4000-8000-000000000001', 10, null);
  insert into public.wholesale_clients (id, tenant_id, name, email, phone, address, credit_limit, status) values
    ('5a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'CA', 'ca@client.test', '+15555550001', '1 A Street', 100, 'active'),
    ('5a000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'CA_OFF', null, null, null, 100, 'inactive'),
    ('5b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'CB', 'cb@client.test', null, null, 100, 'active');
  insert into public.suppliers (id, tenant_id, name, email, payment_terms) values
    ('6a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'SA', 'sa@supplier.test', 'net_30'),
    ('6a000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'SA_NOMAIL', null, null),
    ('6b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'SB', 'sb@supplier.test', null);
$$;

/* A valid purchase-order payload for tenant A, due in a week. */
create or replace function tests.po_payload(
  supplier uuid default '6a000000-0000-4000-8000-000000000001',
  product uuid default '4a000000-0000-4000-8000-000000000001',
  quantity numeric default 10,
  unit_price numeric default 2.5)
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'supplier_id', supplier,
    'items', jsonb_build_array(jsonb_build_object('product_id', product, 'quantity', quantity, 'unit_price', unit_price)),
    'expected_delivery_date', to_char(current_date + 7, 'YYYY-MM-DD'))
$$;

/* A valid order payload for tenant A. */
create or replace function tests.order_payload(
  client uuid default '5a000000-0000-4000-8000-000000000001',
  product uuid default '4a000000-0000-4000-8000-000000000001',
  quantity numeric default 1,
  unit_price numeric default 1,
  terms text default 'prepaid',
  method text default 'pickup')
returns jsonb
language sql
as $$
  select jsonb_build_object(
    'client_id', client,
    'items', jsonb_build_array(jsonb_build_object('product_id', product, 'quantity', quantity, 'unit_price', unit_price)),
    'payment_terms', terms,
    'delivery_method', method)
$$;

/* The spec with a report ticket for the signed-in user, as start_report issues one. */
create or replace function tests.report_ticket(spec jsonb)
returns jsonb
language plpgsql
security definer
as $$
declare
  t uuid;
begin
  insert into private.report_tickets (user_id, spec) values (auth.uid(), spec - 'ticket') returning id into t;
  return spec || jsonb_build_object('ticket', t);
end
$$;

grant usage on schema tests to anon, authenticated;
grant execute on all functions in schema tests to anon, authenticated;

/* How many rows of `tbl` belong to `tenant` (as the owner, bypassing RLS). */
create or replace function tests.count_of_tenant(tbl text, tenant uuid)
returns bigint
language plpgsql
as $$
declare
  n bigint;
begin
  execute format('select count(*) from public.%I where tenant_id = $1', tbl) into n using tenant;
  return n;
end
$$;
grant execute on function tests.count_of_tenant(text, uuid) to anon, authenticated;
