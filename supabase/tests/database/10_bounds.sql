-- Text bounds: every text a member writes that a document or a message shows
-- is bounded in the table itself, whatever path writes it.
begin;
select no_plan();
select tests.make_fixture();

-- A delivery, and a return, to have one row of each table.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table placed on commit drop as
select public.create_wholesale_order(tests.order_payload(method => 'delivery')) as r;
select public.process_return(jsonb_build_object(
  'order_id', (select r ->> 'order_id' from placed), 'return_method', 'credit',
  'items', jsonb_build_array(jsonb_build_object(
    'order_item_id', (select id from public.wholesale_order_items where order_id = (select (r ->> 'order_id')::uuid from placed)),
    'quantity', 1, 'reason', 'damaged'))));
select public.create_purchase_order(tests.po_payload());
select tests.act_as_owner();

create temp table bounds (tbl text, col text, max_chars integer, row_filter text) on commit drop;
insert into bounds values
  ('tenants', 'business_name', 200, $$id = '1a000000-0000-4000-8000-000000000001'$$),
  ('tenants', 'slug', 100, $$id = '1a000000-0000-4000-8000-000000000001'$$),
  ('tenant_users', 'email', 320, $$user_id = '0a000000-0000-4000-8000-000000000001'$$),
  ('products', 'name', 200, $$id = '4a000000-0000-4000-8000-000000000001'$$),
  ('products', 'sku', 100, $$id = '4a000000-0000-4000-8000-000000000001'$$),
  ('products', 'category', 100, $$id = '4a000000-0000-4000-8000-000000000001'$$),
  ('products', 'description', 2000, $$id = '4a000000-0000-4000-8000-000000000001'$$),
  ('products', 'image_url', 2000, $$id = '4a000000-0000-4000-8000-000000000001'$$),
  ('warehouses', 'name', 200, $$id = '3a000000-0000-4000-8000-000000000001'$$),
  ('warehouses', 'address', 500, $$id = '3a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_clients', 'name', 200, $$id = '5a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_clients', 'email', 320, $$id = '5a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_clients', 'phone', 32, $$id = '5a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_clients', 'address', 500, $$id = '5a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_clients', 'payment_terms', 100, $$id = '5a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'name', 200, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'email', 320, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'phone', 32, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'address', 500, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'payment_terms', 100, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('suppliers', 'contact_person', 200, $$id = '6a000000-0000-4000-8000-000000000001'$$),
  ('deliveries', 'address', 500, $$tenant_id = '1a000000-0000-4000-8000-000000000001'$$),
  ('wholesale_orders', 'notes', 2000, $$tenant_id = '1a000000-0000-4000-8000-000000000001'$$),
  ('purchase_orders', 'notes', 2000, $$tenant_id = '1a000000-0000-4000-8000-000000000001'$$),
  ('return_authorizations', 'return_reason', 2000, $$tenant_id = '1a000000-0000-4000-8000-000000000001'$$),
  ('return_items', 'reason', 500, $$tenant_id = '1a000000-0000-4000-8000-000000000001'$$);

select ok(case when tbl = 'tenants' then true
               else tests.count_of_tenant(tbl, '1a000000-0000-4000-8000-000000000001') >= 1 end,
  format('there is a row of %s to test', tbl))
from (select distinct tbl from bounds) t;

select throws_ok(
  format('update public.%I set %I = repeat(''x'', %s) where %s', tbl, col, max_chars + 1, row_filter),
  '23514', null, format('%s.%s refuses %s characters', tbl, col, max_chars + 1))
from bounds;

select lives_ok(
  format('update public.%I set %I = repeat(''x'', %s) where %s', tbl, col, max_chars, row_filter),
  format('%s.%s holds %s characters', tbl, col, max_chars))
from bounds;

select throws_ok(format('update public.%I set name = '''' where %s', tbl, row_filter), '23514', null,
  format('%s.name may not be empty', tbl))
from bounds where col = 'name';

-- The bounds hold on the way in through the RPCs too: a return joins its
-- lines' distinct reasons, and cuts the summary to fit.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table five_lines on commit drop as
select public.create_wholesale_order(jsonb_build_object(
  'client_id', '5a000000-0000-4000-8000-000000000001', 'payment_terms', 'prepaid', 'delivery_method', 'pickup',
  'items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 1),
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 1,
                       'warehouse_id', '3a000000-0000-4000-8000-000000000001'),
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 1, 'unit_price', 1),
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 1, 'unit_price', 1,
                       'warehouse_id', '3a000000-0000-4000-8000-000000000001'),
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 1, 'unit_price', 1,
                       'warehouse_id', '3a000000-0000-4000-8000-000000000002')))) as r;
create temp table long_reasons on commit drop as
select public.process_return(jsonb_build_object(
  'order_id', (select r ->> 'order_id' from five_lines), 'return_method', 'credit',
  'items', (select jsonb_agg(jsonb_build_object('order_item_id', i.id, 'quantity', 1,
                             'reason', i.line_number || repeat('r', 499)))
            from public.wholesale_order_items i where i.order_id = (select (r ->> 'order_id')::uuid from five_lines)))) as r;
select tests.act_as_owner();
select is((select length(return_reason) from public.return_authorizations where id = (select (r ->> 'return_id')::uuid from long_reasons)),
  2000, 'five 500-character reasons are joined and cut at 2000 characters');

-- The demo data fits.
select ok(exists (select 1 from public.tenants where slug = 'acme')
          and exists (select 1 from public.suppliers where name = 'Bean Brothers Roasters'),
  'the seed loads under these bounds');

select * from finish();
rollback;
