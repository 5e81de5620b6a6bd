-- Lots: FEFO allocation, conservation, quality control and quarantine,
-- returns into lots; recalls: consignees against a hand-built trace,
-- idempotency, responses, effectiveness, reminders, RLS and grants.
begin;
select no_plan();
select tests.make_fixture();

-- Tenant A gets a lot-tracked product PL and a second client CA2 (email only).
insert into public.products (id, tenant_id, name, sku) values
  ('4a000000-0000-4000-8000-000000000003', '1a000000-0000-4000-8000-000000000001', 'PL', 'PL');
insert into public.wholesale_clients (id, tenant_id, name, email, address, status) values
  ('5a000000-0000-4000-8000-000000000003', '1a000000-0000-4000-8000-000000000001', 'CA2', 'ca2@client.test',
   '2 A Street', 'active');

create or replace function pg_temp.receive(lot text, wh uuid, qty numeric, expires date)
returns jsonb language sql as $$
  select public.receive_batch(jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000003',
    'lot_number', lot, 'warehouse_id', wh, 'quantity', qty,
    'expires_on', to_char(expires, 'YYYY-MM-DD')))
$$;
create or replace function pg_temp.lot(name text) returns uuid language sql security definer as $$
  select id from public.batches where lot_number = name and product_id = '4a000000-0000-4000-8000-000000000003'
$$;
create or replace function pg_temp.shelf(name text, wh uuid) returns numeric language sql as $$
  select coalesce(sum(bi.quantity), 0) from public.batch_inventory bi
  where bi.batch_id = pg_temp.lot(name) and bi.warehouse_id = wh
$$;
-- Every lot: received = shelf + shipped − returned + quarantined + destroyed.
create or replace function pg_temp.unbalanced_lots() returns bigint language sql as $$
  select count(*) from public.batches b
  where b.quantity_received <> (select coalesce(sum(quantity), 0) from public.batch_inventory where batch_id = b.id)
    + (select coalesce(sum(quantity - returned_quantity), 0) from public.wholesale_order_allocations where batch_id = b.id)
    + (select coalesce(sum(quantity), 0) from public.quarantined_inventory where batch_id = b.id and status <> 'released')
$$;
-- Every stock row holds at least its lots.
create or replace function pg_temp.short_rows() returns bigint language sql as $$
  select count(*) from public.wholesale_inventory i
  where i.quantity < (select coalesce(sum(bi.quantity), 0) from public.batch_inventory bi
                      where bi.product_id = i.product_id and bi.warehouse_id = i.warehouse_id)
$$;
grant execute on all functions in schema pg_temp to authenticated, service_role;

-- Receiving. A1: L-SOON 10 (expires in 10 days), L-LATE 20 (60 days), L-EXP 5
-- (expired yesterday), L-HOLD 5 (on hold), 3 untracked. A2: L-SOON 4.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select pg_temp.receive('L-SOON', '3a000000-0000-4000-8000-000000000001', 10, current_date + 10);
select pg_temp.receive('L-LATE', '3a000000-0000-4000-8000-000000000001', 20, current_date + 60);
select pg_temp.receive('L-EXP', '3a000000-0000-4000-8000-000000000001', 5, current_date - 1);
select pg_temp.receive('L-HOLD', '3a000000-0000-4000-8000-000000000001', 5, current_date + 5);
select is((pg_temp.receive('L-SOON', '3a000000-0000-4000-8000-000000000002', 4, current_date + 10) ->> 'quantity_received')::numeric,
  14.00, 'a second receipt of a lot adds to it');
select throws_ok($$select pg_temp.receive('L-SOON', '3a000000-0000-4000-8000-000000000002', 1, current_date + 11)$$,
  'CE409', 'lot L-SOON exists with other dates', 'a lot keeps its dates');
select throws_ok($$select public.receive_batch('{"product_id": "4a000000-0000-4000-8000-000000000003", "lot_number": "", "warehouse_id": "x", "quantity": -1}')$$,
  'CEV01', null, 'a bad receipt is refused');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.receive('L-X', '3a000000-0000-4000-8000-000000000001', 1, current_date + 1)$$,
  'CEN04', 'product not found', 'another tenant''s product cannot receive a lot');
select tests.act_as_owner();
update public.batches set status = 'on_hold' where id = pg_temp.lot('L-HOLD');
update public.wholesale_inventory set quantity = quantity + 3
where product_id = '4a000000-0000-4000-8000-000000000003' and warehouse_id = '3a000000-0000-4000-8000-000000000001';
select is((select quantity from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000003'
           and warehouse_id = '3a000000-0000-4000-8000-000000000001'), 43.00,
  'the shelf per warehouse is its lots plus untracked stock');

-- A member cannot take lot stock off the shelf by hand.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$update public.wholesale_inventory set quantity = 2
  where product_id = '4a000000-0000-4000-8000-000000000003' and warehouse_id = '3a000000-0000-4000-8000-000000000001'$$,
  '23514', null, 'lowering stock below its lots is refused');
select lives_ok($$update public.wholesale_inventory set quantity = 43
  where product_id = '4a000000-0000-4000-8000-000000000003' and warehouse_id = '3a000000-0000-4000-8000-000000000001'$$,
  'changing only untracked stock is allowed');
select throws_ok($$insert into public.batch_inventory (tenant_id, batch_id, product_id, warehouse_id, quantity)
  values ('1a000000-0000-4000-8000-000000000001', pg_temp.lot('L-SOON'), '4a000000-0000-4000-8000-000000000003',
          '3a000000-0000-4000-8000-000000000001', 100)$$, '42501', null, 'lot stock changes only through the RPCs');

-- FEFO. Order 1 (CA, 12): A1's L-SOON 10, then L-LATE 2.
create temp table o1 on commit drop as
select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000003', quantity => 12)) as r;
-- Order 2 (CA2, 25): A1's L-LATE 18, then A1's 3 untracked, then A2's L-SOON 4;
-- never L-EXP (expired) or L-HOLD (on hold).
create temp table o2 on commit drop as
select public.create_wholesale_order(tests.order_payload(client => '5a000000-0000-4000-8000-000000000003',
  product => '4a000000-0000-4000-8000-000000000003', quantity => 25)) as r;
grant select on o1, o2 to authenticated, service_role;
select tests.act_as_owner();
select results_eq($$
  select coalesce(b.lot_number, '-'), w.name, a.quantity
  from public.wholesale_order_allocations a
  join public.wholesale_order_items i on i.id = a.order_item_id
  join public.warehouses w on w.id = a.warehouse_id
  left join public.batches b on b.id = a.batch_id
  where i.order_id in ((select (r ->> 'order_id')::uuid from o1), (select (r ->> 'order_id')::uuid from o2))
  order by i.order_id = (select (r ->> 'order_id')::uuid from o2), w.priority, b.expires_on nulls last$$,
  $$values ('L-SOON', 'A1', 10.00), ('L-LATE', 'A1', 2.00),
           ('L-LATE', 'A1', 18.00), ('-', 'A1', 3.00), ('L-SOON', 'A2', 4.00)$$,
  'FEFO within each warehouse, warehouses by priority, untracked stock last, expired and held lots skipped');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000003'))$$,
  'CES01', null, 'only expired and held lots are left: nothing can be ordered');
select tests.act_as_owner();
select is(pg_temp.unbalanced_lots(), 0::bigint, 'every lot balances after the orders');
select is(pg_temp.short_rows(), 0::bigint, 'every stock row holds its lots');

-- A return puts stock back into the lot it came from (A1 first, the lot expiring first).
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create or replace function pg_temp.ret(qty numeric) returns jsonb language sql as $$
  select public.process_return(jsonb_build_object(
    'order_id', (select (r ->> 'order_id')::uuid from o1),
    'items', jsonb_build_array(jsonb_build_object('order_item_id',
      (select i.id from public.wholesale_order_items i where i.order_id = (select (r ->> 'order_id')::uuid from o1)),
      'quantity', qty, 'reason', 'damaged')),
    'return_method', 'credit'))
$$;
select pg_temp.ret(2);
select is(pg_temp.shelf('L-SOON', '3a000000-0000-4000-8000-000000000001'), 2.00, 'returned units are back in their lot');

-- A failed quality test quarantines the lot's stock in the same transaction.
select is((public.record_quality_test(jsonb_build_object('batch_id', pg_temp.lot('L-SOON'), 'status', 'failed',
  'test_results', '{"listeria": "detected"}'::jsonb)) ->> 'quarantined_quantity')::numeric, 2.00,
  'a failed test quarantines what is on the shelf');
select throws_ok($$select public.record_quality_test(jsonb_build_object('batch_id', pg_temp.lot('L-SOON'),
  'status', 'passed', 'certificate_path', '1a000000-0000-4000-8000-000000000001/none.pdf'))$$,
  'CEV01', null, 'a certificate must be a file in the quality-control bucket');
select tests.act_as_owner();
select is((select status from public.batches where id = pg_temp.lot('L-SOON')), 'quarantined', 'the lot is quarantined');
select is(pg_temp.shelf('L-SOON', '3a000000-0000-4000-8000-000000000001'), 0.00, 'nothing of it is on the shelf');
select is((select count(*) from public.quarantined_inventory where batch_id = pg_temp.lot('L-SOON') and source = 'quality_test'),
  1::bigint, 'a quarantine row per warehouse that held it');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000003'))$$,
  'CES01', null, 'quarantined stock cannot be ordered');
-- A return of a quarantined lot goes to quarantine, not the shelf.
select pg_temp.ret(1);
select tests.act_as_owner();
select is((select sum(quantity) from public.quarantined_inventory where batch_id = pg_temp.lot('L-SOON') and source = 'return'),
  1.00, 'a return of a quarantined lot is quarantined');
select is(pg_temp.unbalanced_lots(), 0::bigint, 'lots balance through tests, quarantine and returns');

-- Releasing is an admin's, audited; the lot is sellable again once nothing is held.
update public.tenant_users set role = 'member' where user_id = '0a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok(format($$select public.resolve_quarantine('%s', 'release')$$,
  (select id from public.quarantined_inventory where source = 'return' limit 1)), 'CEA03', null,
  'a member cannot release a quarantine');
select tests.act_as_owner();
update public.tenant_users set role = 'admin' where user_id = '0a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select public.record_quality_test(jsonb_build_object('batch_id', pg_temp.lot('L-SOON'), 'status', 'pending'));
select throws_ok(format($$select public.resolve_quarantine('%s', 'release')$$,
  (select id from public.quarantined_inventory where source = 'quality_test' limit 1)), 'CE409',
  'lot L-SOON last failed its quality test: record a passing test before releasing its stock',
  'a lot that failed its test is released only after a passing one (a pending one is not enough)');
select public.record_quality_test(jsonb_build_object('batch_id', pg_temp.lot('L-SOON'), 'status', 'passed'));
select public.resolve_quarantine(id, 'release', 'retested clean') from public.quarantined_inventory
where batch_id = pg_temp.lot('L-SOON') and status = 'quarantined';
select throws_ok(format($$select public.resolve_quarantine('%s', 'destroy')$$,
  (select id from public.quarantined_inventory where source = 'return' limit 1)), 'CE409', null,
  'a quarantine is resolved once');
select tests.act_as_owner();
select is((select status from public.batches where id = pg_temp.lot('L-SOON')), 'available', 'released, the lot is available');
select is(pg_temp.shelf('L-SOON', '3a000000-0000-4000-8000-000000000001'), 3.00, 'its stock is back on the shelf');
select is((select count(*) from public.audit_log where action = 'quarantine.released' and tenant_id = '1a000000-0000-4000-8000-000000000001'), 2::bigint, 'each release is audited');
select is(pg_temp.unbalanced_lots(), 0::bigint, 'lots balance after release');

-- Five more of L-LATE arrive in A2 before the recall.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select pg_temp.receive('L-LATE', '3a000000-0000-4000-8000-000000000002', 5, current_date + 60);

-- The recall of L-LATE. Hand-built trace: CA got 2 (order 1); CA2 got 18 of
-- the lot and 3 untracked units of PL while the lot was on sale (order 2).
create or replace function pg_temp.recall(reason text default 'Undeclared peanut', id uuid default 'aa000000-0000-4000-8000-000000000001')
returns jsonb language sql as $$
  select public.start_recall(jsonb_build_object('recall_id', id, 'batch_id', pg_temp.lot('L-LATE'),
    'recall_reason', reason, 'scope', 'all', 'classification', 'I', 'hazard', 'Anaphylaxis',
    'instructions', 'Destroy and report'))
$$;
select tests.act_as_owner();
update public.tenant_users set role = 'member' where user_id = '0a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.recall()$$, 'CEA03', null, 'a member cannot start a recall');
select tests.act_as_owner();
update public.tenant_users set role = 'admin' where user_id = '0a000000-0000-4000-8000-000000000001';
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.recall()$$, 'CEN04', 'batch not found', 'another tenant''s lot is not found');
select throws_ok($$select public.start_recall('{"recall_id": "x", "scope": "some"}')$$, 'CEV01', null,
  'a bad request is refused');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table rc on commit drop as select pg_temp.recall() as r;
grant select on rc to authenticated, service_role;
select is((select r - 'lots' from rc), jsonb_build_object('success', true, 'recall_id', 'aa000000-0000-4000-8000-000000000001',
  'notified_count', 2, 'consignee_count', 2, 'notices_queued', 3, 'notices_suppressed', 0,
  'quarantined_quantity', 5.00), 'the recall notifies both consignees and quarantines what is left');
select tests.act_as_owner();
select results_eq($$select cl.name, c.match, c.quantity_shipped, c.order_numbers
  from public.recall_consignees c join public.wholesale_clients cl on cl.id = c.client_id
  where c.recall_id = 'aa000000-0000-4000-8000-000000000001' order by cl.name$$,
  format($$values ('CA', 'lot', 2.00, array[%L]), ('CA2', 'lot', 21.00, array[%L])$$,
    (select r ->> 'order_number' from o1), (select r ->> 'order_number' from o2)),
  'the consignees match the hand-built trace (CA2 includes the untracked units shipped in the window)');
select is((select status from public.batches where id = pg_temp.lot('L-LATE')), 'recalled', 'the lot is recalled');
select is((select sum(quantity) from public.batch_inventory where batch_id = pg_temp.lot('L-LATE')), 0.00,
  'none of it is left on the shelf');
select is((select sum(quantity) from public.quarantined_inventory where recall_id = 'aa000000-0000-4000-8000-000000000001'),
  5.00, 'its stock is quarantined under the recall');
select is((select count(*) from public.notification_outbox where template = 'recall_notice' and tenant_id = '1a000000-0000-4000-8000-000000000001'), 3::bigint,
  'CA by email and SMS, CA2 by email');
select ok((select bool_and((payload ->> 'urgent')::boolean and payload ->> 'lot_number' = 'L-LATE'
             and payload #>> '{action_links,response_url,purpose}' = 'recall_response'
             and payload ->> 'hazard' = 'Anaphylaxis' and payload ->> 'instructions' = 'Destroy and report')
           from public.notification_outbox where template = 'recall_notice' and tenant_id = '1a000000-0000-4000-8000-000000000001'),
  'each notice carries the 21 CFR 7.49 content and a response link');
select is(pg_temp.unbalanced_lots(), 0::bigint, 'lots balance after the recall');

-- Idempotency by recall_id.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((pg_temp.recall() ->> 'replayed')::boolean, true, 'the same recall again is a replay');
select throws_ok($$select pg_temp.recall('Another reason')$$, 'CEI22', null, 'the same id with another body is refused');
select throws_ok($$select pg_temp.recall(id => 'aa000000-0000-4000-8000-000000000002')$$, 'CE409', null,
  'a recalled lot cannot be recalled again under a new id');
select throws_ok($$select public.start_recall(jsonb_build_object('recall_id', gen_random_uuid(),
    'batch_id', pg_temp.lot('L-SOON'), 'recall_reason', 'x', 'scope', 'specific',
    'product_ids', jsonb_build_array('4a000000-0000-4000-8000-000000000001')))$$, 'CEV01', null,
  'scope specific must name the lot''s products');
select tests.act_as_owner();
select is((select status from public.batches where id = pg_temp.lot('L-SOON')), 'available', 'and recalls nothing otherwise');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select tests.act_as_owner();
select is((select count(*) from public.notification_outbox where template = 'recall_notice' and tenant_id = '1a000000-0000-4000-8000-000000000001'), 3::bigint,
  'the replay notified nobody');
select is((select count(*) from public.batch_recalls where tenant_id = '1a000000-0000-4000-8000-000000000001'), 1::bigint, 'and recorded no second recall');

-- After the recall: L-LATE is never allocated; a return of it goes to quarantine.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000003',
  quantity => 4))$$, 'CES01', null, 'only 3 units (L-SOON) can be ordered now');
select pg_temp.ret(2);
select tests.act_as_owner();
select is((select sum(quantity) from public.quarantined_inventory where batch_id = pg_temp.lot('L-LATE') and source = 'return'
           and recall_id = 'aa000000-0000-4000-8000-000000000001'), 2.00,
  'a return takes back the recalled lot''s units first, into quarantine under the recall');
select is(pg_temp.shelf('L-SOON', '3a000000-0000-4000-8000-000000000001'), 3.00,
  'and none of them goes on sale as another lot''s');
select is(pg_temp.unbalanced_lots(), 0::bigint, 'lots balance at the end');
select is(pg_temp.short_rows(), 0::bigint, 'every stock row still holds its lots');

-- A failed test on a recalled lot leaves it recalled.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select public.record_quality_test(jsonb_build_object('batch_id', pg_temp.lot('L-LATE'), 'status', 'failed'));
select tests.act_as_owner();
select is((select status from public.batches where id = pg_temp.lot('L-LATE')), 'recalled',
  'a failed test never turns a recalled lot back into a quarantined one');

-- Closing a recall is an admin's.
select tests.act_as_owner();
update public.tenant_users set role = 'member' where user_id = '0a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$update public.batch_recalls set status = 'terminated'$$, 'CEA03', null,
  'a member cannot close a recall');
select tests.act_as_owner();
update public.tenant_users set role = 'admin' where user_id = '0a000000-0000-4000-8000-000000000001';

-- Responses and effectiveness.
select is(public.recall_effectiveness('aa000000-0000-4000-8000-000000000001') - 'recall_id',
  '{"consignees": 2, "notified": 2, "responded": 0, "response_rate": 0.0000, "quantity_shipped": 23.00,
    "quantity_accounted": 0, "recovery_rate": 0.0000}'::jsonb, 'nobody has responded yet');
set local role service_role;
select throws_ok(format($$select public.record_recall_response('%s', '{"acknowledged": true, "on_hand": -1, "returned": 0, "destroyed": 0}')$$,
  (select id from public.recall_consignees where client_id = '5a000000-0000-4000-8000-000000000001')), 'CEV01', null,
  'a negative quantity is refused');
select throws_ok(format($$select public.record_recall_response('%s', '{"acknowledged": true, "on_hand": 1, "returned": 2, "destroyed": 0}')$$,
  (select id from public.recall_consignees where client_id = '5a000000-0000-4000-8000-000000000001')), 'CEV01', null,
  'more than was shipped is refused');
select is((public.record_recall_response(id, '{"acknowledged": true, "on_hand": 0, "returned": 2, "destroyed": 0}') ->> 'already')::boolean,
  false, 'CA responds') from public.recall_consignees where client_id = '5a000000-0000-4000-8000-000000000001';
select is((public.record_recall_response(id, '{"acknowledged": true, "on_hand": 0, "returned": 0, "destroyed": 1}') ->> 'already')::boolean,
  true, 'a second response keeps the first') from public.recall_consignees where client_id = '5a000000-0000-4000-8000-000000000001';
reset role;
select is(public.recall_effectiveness('aa000000-0000-4000-8000-000000000001') - 'recall_id',
  '{"consignees": 2, "notified": 2, "responded": 1, "response_rate": 0.5000, "quantity_shipped": 23.00,
    "quantity_accounted": 2.00, "recovery_rate": 0.0870}'::jsonb, 'response rate and recovery move');

-- One reminder, to the consignee who did not respond, after reminder_after_days.
select is(public.remind_recall_consignees(), 0, 'no reminder before the days have passed');
update public.recall_consignees set notified_at = now() - interval '4 days' where recall_id = 'aa000000-0000-4000-8000-000000000001';
select is(public.remind_recall_consignees(), 1, 'one consignee is reminded');
select is(public.remind_recall_consignees(), 0, 'and only once');
select is((select count(*) from public.recall_notifications where kind = 'reminder'
           and client_id = '5a000000-0000-4000-8000-000000000003'), 1::bigint, 'the reminder went to CA2');

-- The report as tenant A reads it; tenant B cannot.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(jsonb_array_length(public.recall_report('aa000000-0000-4000-8000-000000000001') -> 'consignees'), 2,
  'the report lists both consignees');
select is((select count(*) from jsonb_array_elements(public.recall_report('aa000000-0000-4000-8000-000000000001') -> 'shipments') s
           where s ->> 'match' = 'product_window'), 1::bigint, 'the untracked shipment is marked in the trace');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select public.recall_report('aa000000-0000-4000-8000-000000000001')$$, 'CEN04', null,
  'another tenant''s recall is not found');
select is(public.recall_effectiveness('aa000000-0000-4000-8000-000000000001'), null,
  'nor are its figures');
select tests.act_as_owner();

-- A product with lot stock (and no orders) can still be deleted, lots and all.
insert into public.products (id, tenant_id, name) values
  ('4a000000-0000-4000-8000-000000000009', '1a000000-0000-4000-8000-000000000001', 'PZ');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select public.receive_batch(jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000009',
  'lot_number', 'Z1', 'warehouse_id', '3a000000-0000-4000-8000-000000000001', 'quantity', 5));
select tests.act_as_owner();
select lives_ok($$delete from public.products where id = '4a000000-0000-4000-8000-000000000009'$$,
  'deleting a product takes its lots and their stock with it');
select is((select count(*) from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000009'),
  0::bigint, 'and leaves no stock row behind');

-- RLS and grants.
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'batches'), 0::bigint, 'B sees none of A''s lots');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'batch_recalls'), 0::bigint, 'nor its recalls');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'recall_consignees'), 0::bigint, 'nor its consignees');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'quarantined_inventory'), 0::bigint, 'nor its quarantine');
select is(tests.count_visible('0a000000-0000-4000-8000-000000000001', 'batches'), 4::bigint, 'A sees its lots');
select ok(not has_table_privilege('authenticated', 'public.batch_recalls', 'insert'), 'members cannot write recalls directly');
select ok(not has_table_privilege('authenticated', 'public.quarantined_inventory', 'update'), 'nor quarantine');
select ok(not has_table_privilege('anon', 'public.batches', 'select'), 'anon reads no lots');
select ok(not has_function_privilege('authenticated', 'public.record_recall_response(uuid, jsonb)', 'execute'),
  'only the service role records responses');
select ok(not has_function_privilege('authenticated', 'public.remind_recall_consignees()', 'execute'),
  'only pg_cron and the service role send reminders');
select ok(not has_function_privilege('anon', 'public.start_recall(jsonb)', 'execute'), 'anon cannot recall');

select * from finish();
rollback;
