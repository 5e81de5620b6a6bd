-- Smaller rules: partial returns never total more than their line, purchase
-- orders only move forward, a delivery stays with its order, exchanges need
-- an active client, UUIDs compare as UUIDs, idempotency keys as in Rust.
begin;
select no_plan();
select tests.make_fixture();

-- ---------------------------------------------------------------- money
-- One line of 1 × 0.01, returned as 0.5 and 0.5: worth 0.01 in all, not 0.02.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table cent on commit drop as
select public.create_wholesale_order(tests.order_payload(
  product => '4a000000-0000-4000-8000-000000000002', quantity => 1, unit_price => 0.01)) as r;
create or replace function pg_temp.return_half(the_order jsonb, method text)
returns jsonb language sql as $$
  select public.process_return(jsonb_build_object(
    'order_id', the_order ->> 'order_id', 'return_method', method,
    'items', jsonb_build_array(jsonb_build_object(
      'order_item_id', (select i.id from public.wholesale_order_items i where i.order_id = (the_order ->> 'order_id')::uuid),
      'quantity', 0.5, 'reason', 'half'))))
$$;
select is((pg_temp.return_half((select r from cent), 'credit') ->> 'refund_amount')::numeric, 0.01,
  'the first half of a one-cent line is worth the cent (rounded)');
select is((pg_temp.return_half((select r from cent), 'credit') ->> 'refund_amount')::numeric, 0.00,
  'the second half is worth what is left: nothing');
select tests.act_as_owner();
select is((select sum(refund_amount) from public.return_authorizations where order_id = (select (r ->> 'order_id')::uuid from cent)),
  0.01, 'the returns of the line credit 0.01 in total');
select is((select sum(amount) from public.return_items where order_item_id =
            (select id from public.wholesale_order_items where order_id = (select (r ->> 'order_id')::uuid from cent))),
  0.01, 'and their lines say the same');
select is((select returned_amount || ' ' || return_status from public.wholesale_orders where id = (select (r ->> 'order_id')::uuid from cent)),
  '0.01 full', 'the order got back exactly its total');
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), -0.01,
  'the client is credited one cent (prepaid, so it is owed it)');
select throws_ok($$update public.wholesale_orders set returned_amount = total_amount + 0.01$$, '23514', null,
  'an order can never have more returned than its total');

-- The refund follows the same rule; a half worth nothing refunds nothing.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table cent2 on commit drop as
select public.create_wholesale_order(tests.order_payload(
  product => '4a000000-0000-4000-8000-000000000002', quantity => 1, unit_price => 0.01)) as r;
select tests.act_as_owner();
update public.wholesale_orders set stripe_payment_intent_id = 'pi_cent' where id = (select (r ->> 'order_id')::uuid from cent2);
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((pg_temp.return_half((select r from cent2), 'refund') -> 'refund' ->> 'amount')::numeric, 0.01,
  'the first half refunds the cent');
create temp table second_half on commit drop as select pg_temp.return_half((select r from cent2), 'refund') as r;
select tests.act_as_owner();
select is((select r -> 'refund' from second_half), 'null'::jsonb, 'the second half has nothing to refund');
select is((select sum(amount) from public.refunds where order_id = (select (r ->> 'order_id')::uuid from cent2)), 0.01,
  'the line is refunded 0.01 in total');
select is((select status from public.return_authorizations where id = (select (r ->> 'return_id')::uuid from second_half)),
  'completed', 'a return worth nothing waits for no refund');

-- ---------------------------------------------------------------- purchase order status
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table po on commit drop as select public.create_purchase_order(tests.po_payload()) as r;
create temp table po2 on commit drop as select public.create_purchase_order(tests.po_payload()) as r;
select tests.act_as_owner();
grant select on po, po2 to authenticated;
insert into storage.objects (bucket_id, name) select 'purchase-orders', r ->> 'pdf_path' from po;
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(public.attach_purchase_order_pdf((select (r ->> 'po_id')::uuid from po)), '{"queued": 1}'::jsonb,
  'attaching the PDF sends the PO (draft → sent)');
select throws_ok($$update public.purchase_orders set status = 'draft' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'CET01', 'a purchase order cannot go from sent to draft', 'a sent PO cannot go back to draft');
select lives_ok($$update public.purchase_orders set status = 'confirmed' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'sent → confirmed');
select throws_ok($$update public.purchase_orders set status = 'sent' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'CET01', null, 'confirmed → sent is refused');
select lives_ok($$update public.purchase_orders set status = 'received' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'confirmed → received');
select throws_ok($$update public.purchase_orders set status = 'cancelled' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'CET01', null, 'a received PO cannot be cancelled');
select lives_ok($$update public.purchase_orders set status = 'cancelled' where id = (select (r ->> 'po_id')::uuid from po2)$$,
  'a draft can be cancelled');
select throws_ok($$update public.purchase_orders set status = 'draft' where id = (select (r ->> 'po_id')::uuid from po2)$$,
  'CET01', null, 'and a cancelled PO stays cancelled');
select tests.act_as_owner();
select is((select array_agg(status order by po_number) from public.purchase_orders where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  array['received', 'cancelled'], 'the refused moves changed nothing');
select throws_ok($$update public.purchase_orders set status = 'draft' where id = (select (r ->> 'po_id')::uuid from po)$$,
  'CET01', null, 'the rule holds for the database owner too');

-- ---------------------------------------------------------------- deliveries
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table d1 on commit drop as select public.create_wholesale_order(tests.order_payload(method => 'delivery')) as r;
create temp table d2 on commit drop as select public.create_wholesale_order(tests.order_payload()) as r;
select lives_ok($$update public.deliveries set status = 'scheduled', scheduled_for = current_date + 1, address = '2 A Street'
  where order_id = (select (r ->> 'order_id')::uuid from d1)$$,
  'a member schedules a delivery and corrects its address');
select throws_ok($$update public.deliveries set order_id = (select (r ->> 'order_id')::uuid from d2)
  where order_id = (select (r ->> 'order_id')::uuid from d1)$$,
  '42501', null, 'a delivery cannot be moved to another order');
select throws_ok($$update public.deliveries set tenant_id = '1b000000-0000-4000-8000-000000000001'$$,
  '42501', null, 'nor to another tenant');
select throws_ok($$update public.deliveries set delivery_method = 'pickup'$$,
  '42501', null, 'nor change how the order goes');
select tests.act_as_owner();
select is((select status || ' ' || address from public.deliveries where order_id = (select (r ->> 'order_id')::uuid from d1)),
  'scheduled 2 A Street', 'the delivery holds the member''s changes');

-- ---------------------------------------------------------------- exchanges
-- An exchange places an order, so the client must be active: CEC02 as for an order.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table ex on commit drop as select public.create_wholesale_order(tests.order_payload(quantity => 2)) as r;
select tests.act_as_owner();
update public.wholesale_clients set status = 'suspended' where id = '5a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.return_half((select r from ex), 'exchange')$$, 'CEC02', 'the client is not active',
  'a suspended client gets no replacement order');
select lives_ok($$select pg_temp.return_half((select r from ex), 'credit')$$,
  'a suspended client may still return goods for credit');
select tests.act_as_owner();
select is((select count(*) from public.wholesale_orders where exchange_for_return_id is not null), 0::bigint,
  'no replacement was placed');
update public.wholesale_clients set status = 'active' where id = '5a000000-0000-4000-8000-000000000001';

-- ---------------------------------------------------------------- UUIDs
-- The same product twice is refused even when the ids differ only in case.
select is(
  private.order_payload_errors(tests.order_payload() || jsonb_build_object('items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-00000000000a', 'quantity', 1, 'unit_price', 1),
    jsonb_build_object('product_id', '4A000000-0000-4000-8000-00000000000A', 'quantity', 1, 'unit_price', 1)))),
  '{"items[1].product_id": "repeats items[0] for the same warehouse; combine them into one line"}'::jsonb,
  'the order validator compares product ids as UUIDs');
select is(
  private.order_payload_errors(tests.order_payload() || jsonb_build_object('items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 1, 'unit_price', 1,
                       'warehouse_id', '3a000000-0000-4000-8000-00000000000a'),
    jsonb_build_object('product_id', '4A000000-0000-4000-8000-000000000001', 'quantity', 1, 'unit_price', 1,
                       'warehouse_id', '3A000000-0000-4000-8000-00000000000A')))),
  '{"items[1].product_id": "repeats items[0] for the same warehouse; combine them into one line"}'::jsonb,
  'and warehouse ids too');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok(format('select public.create_wholesale_order(%L)', tests.order_payload() || jsonb_build_object('items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 1),
    jsonb_build_object('product_id', '4A000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 2)))),
  'CEV01', null, 'create_wholesale_order refuses a product twice in different case');
select throws_ok(format('select public.create_purchase_order(%L)', tests.po_payload() || jsonb_build_object('items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 1),
    jsonb_build_object('product_id', '4A000000-0000-4000-8000-000000000002', 'quantity', 1, 'unit_price', 2)))),
  'CEV01', null, 'create_purchase_order refuses a product twice in different case');
select throws_ok(format('select public.process_return(%L)', jsonb_build_object(
    'order_id', (select r ->> 'order_id' from ex), 'return_method', 'credit',
    'items', (select jsonb_build_array(
                jsonb_build_object('order_item_id', lower(i.id::text), 'quantity', 0.5, 'reason', 'a'),
                jsonb_build_object('order_item_id', upper(i.id::text), 'quantity', 0.5, 'reason', 'b'))
              from public.wholesale_order_items i where i.order_id = (select (r ->> 'order_id')::uuid from ex)))),
  'CEV01', null, 'process_return refuses an order line twice in different case');

-- ---------------------------------------------------------------- idempotency keys
-- The rule of shared::Request::idempotency_key: 1 to 255 visible ASCII characters.
select throws_ok(format('select public.create_wholesale_order(tests.order_payload(), %L)', k), 'CEV01', null,
  format('the idempotency key %s is refused', d))
from (values (E'k\r\nX-Injected: 1', 'with CR/LF'), ('has space', 'with a space'), (E'tab\tkey', 'with a tab'),
             ('', 'that is empty'), (repeat('k', 256), 'of 256 characters'), ('clé', 'with a non-ASCII letter'))
  v(k, d);
create temp table refused (details jsonb) on commit drop;
do $$
begin
  perform public.create_purchase_order(tests.po_payload(), E'line\nbreak');
exception when sqlstate 'CEV01' then
  declare d text;
  begin
    get stacked diagnostics d = pg_exception_detail;
    insert into refused values (d::jsonb);
  end;
end
$$;
select is((select details from refused), '{"idempotency_key": "must be 1 to 255 visible ASCII characters"}'::jsonb,
  'the error names the idempotency_key field, in the functions'' words');
select lives_ok(format('select public.create_wholesale_order(tests.order_payload(), %L)', repeat('~', 212) || '!#$%&()*+,-./0123456789:;<=>?@AZ[\]^_`az{|}'),
  'a key of 255 visible ASCII characters is accepted');

select * from finish();
rollback;
