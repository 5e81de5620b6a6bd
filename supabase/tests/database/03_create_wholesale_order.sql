-- public.create_wholesale_order: its rules and its error codes.
begin;
select no_plan();
select tests.make_fixture();

-- Who may call it.
select tests.act_as(null);
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, '42501', null,
  'anon cannot call it');
select tests.act_as_owner();
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CEA01', null,
  'without a signed-in user it raises CEA01');

select tests.act_as('0a000000-0000-4000-8000-000000000001');

-- Validation, defence in depth behind the function's own checks.
select throws_ok($$select public.create_wholesale_order(tests.order_payload(quantity => 0))$$, 'CEV01', null,
  'quantity 0 raises CEV01');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(unit_price => 1.234))$$, 'CEV01', null,
  'three decimal places raise CEV01');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(terms => 'barter'))$$, 'CEV01', null,
  'an unknown payment term raises CEV01');
select throws_ok($$select public.create_wholesale_order('{"client_id":"5a000000-0000-4000-8000-000000000001","items":[],"payment_terms":"prepaid","delivery_method":"pickup"}')$$,
  'CEV01', null, 'no items raises CEV01');
select throws_ok($$select public.create_wholesale_order(tests.order_payload() || '{"tenant_id":"1b000000-0000-4000-8000-000000000001"}')$$,
  'CEV01', null, 'an unknown field (even tenant_id) raises CEV01');
select tests.act_as_owner();
select is(
  private.order_payload_errors('{"client_id":"x","items":[{"product_id":"4a000000-0000-4000-8000-000000000001","quantity":1,"unit_price":1},{"product_id":"4a000000-0000-4000-8000-000000000001","quantity":2,"unit_price":1}],"payment_terms":"prepaid","delivery_method":"pickup"}'),
  '{"client_id":"must be a UUID string","items[1].product_id":"repeats items[0] for the same warehouse; combine them into one line"}'::jsonb,
  'errors are keyed by field path, and a repeated product is named');
select tests.act_as('0a000000-0000-4000-8000-000000000001');

-- Tenancy: another tenant's rows are "not found".
select throws_ok($$select public.create_wholesale_order(tests.order_payload(client => '5b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001'))$$,
  'CEN04', 'client not found', 'a client of another tenant is not found');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(product => '4b000000-0000-4000-8000-000000000001'))$$,
  'CEN04', 'product not found', 'a product of another tenant is not found');
select throws_ok($$select public.create_wholesale_order(jsonb_set(tests.order_payload(), '{items,0,warehouse_id}', '"3b000000-0000-4000-8000-000000000001"'))$$,
  'CEN04', 'warehouse not found', 'a warehouse of another tenant is not found');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(client => '5a000000-0000-4000-8000-000000000002'))$$,
  'CEC02', null, 'an inactive client raises CEC02');

-- Credit: net terms need room under the limit; prepaid does not.
select throws_ok($$select public.create_wholesale_order(tests.order_payload(quantity => 2, unit_price => 50.01, terms => 'net_30'))$$,
  'CEC01', null, 'an order past the credit limit raises CEC01');
select tests.act_as_owner();
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 0.00,
  'a refused order leaves the balance alone');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000002', quantity => 2, unit_price => 50.01, terms => 'prepaid'))$$,
  'the same amount prepaid is accepted');

-- Stock: short lines raise CES01 and change nothing.
select throws_ok($$select public.create_wholesale_order(tests.order_payload(quantity => 11))$$,
  'CES01', 'not enough stock for 1 line(s)', '11 of a product with 10 in stock raises CES01');
select throws_ok($$select public.create_wholesale_order(jsonb_set(tests.order_payload(quantity => 6), '{items,0,warehouse_id}', '"3a000000-0000-4000-8000-000000000002"'))$$,
  'CES01', null, 'a line pinned to a warehouse can only use that warehouse''s stock');
select tests.act_as_owner();
select is((select sum(quantity) from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000001'),
  10.00, 'a short order takes no stock');

-- The happy path: allocation order, rows written, numbering.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table placed on commit drop as
select public.create_wholesale_order(tests.order_payload(quantity => 7, unit_price => 12.5, terms => 'net_30', method => 'delivery')) as r;
select tests.act_as_owner();
select matches((select r ->> 'order_number' from placed), '^WO-\d{4}-000002$', 'orders are numbered per tenant and year');
select is((select (r ->> 'total_amount')::numeric from placed), 87.50, 'the total is computed in SQL');
select is((select (r ->> 'notifications_queued')::int from placed), 2, 'the result counts the notifications it queued');
select is(
  array(select w.name || '=' || a.quantity from public.wholesale_order_allocations a
        join public.warehouses w on w.id = a.warehouse_id
        join public.wholesale_order_items i on i.id = a.order_item_id
        where i.order_id = (select (r ->> 'order_id')::uuid from placed) order by w.priority),
  array['A1=5.00', 'A2=2.00'], 'stock is taken from the highest-priority warehouse first');
select is(array(select quantity from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000001' order by warehouse_id),
  array[0.00, 3.00]::numeric[], 'inventory is reduced where it was taken');
select is((select count(*) from public.inventory_alerts where product_id = '4a000000-0000-4000-8000-000000000001' and status = 'active'),
  2::bigint, 'both rows at or below the reorder point raise an alert');
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 87.50,
  'net terms add the total to the client''s balance');
select is((select count(*) from public.deliveries where order_id = (select (r ->> 'order_id')::uuid from placed)), 1::bigint,
  'delivery creates a deliveries row');
select is(array(select channel || ':' || recipient from public.notification_outbox
                where payload ->> 'order_id' = (select r ->> 'order_id' from placed) order by channel),
  array['email:ca@client.test', 'sms:+15555550001'], 'the confirmation is queued for email and SMS');
select is((select payload -> 'items' -> 0 ->> 'name' from public.notification_outbox
           where payload ->> 'order_id' = (select r ->> 'order_id' from placed) limit 1),
  'PA1', 'the outbox row carries a snapshot of the order');
select is((select action from public.audit_log where entity_id = (select (r ->> 'order_id')::uuid from placed)),
  'wholesale_order.created', 'an audit row is written');

-- Idempotency.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table first_try on commit drop as
select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000002'), 'key-1') as r;
create temp table second_try on commit drop as
select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000002'), 'key-1') as r;
select is((select r ->> 'order_id' from second_try), (select r ->> 'order_id' from first_try),
  'the same key and body return the first order');
select is((select r -> 'replayed' from second_try), 'true'::jsonb, 'a replay says so');
select throws_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000002', quantity => 2), 'key-1')$$,
  'CEI22', null, 'the same key with another body raises CEI22');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload(client => '5b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001'), 'key-1')$$,
  'keys are scoped per tenant and user');
select tests.act_as_owner();
update public.idempotency_keys set expires_at = now() - interval '1 second' where key = 'key-1';
select is(public.purge_expired_idempotency_keys(), 2, 'expired keys are purged');


-- Grants on orders (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('wholesale_orders', array['SELECT']),
  ('wholesale_order_items', array['SELECT']),
  ('wholesale_order_allocations', array['SELECT']),
  ('deliveries', array['SELECT']),
  ('inventory_alerts', array['SELECT', 'UPDATE']),
  ('idempotency_keys', array[]::text[]),
  ('audit_log', array['SELECT']),
  ('document_counters', array[]::text[])) v(t, privs);
-- A delivery stays with its order and tenant; members move it along.
select column_privs_are('public', 'deliveries', c, 'authenticated', privs,
  format('authenticated may %s deliveries.%s', array_to_string(privs, ', '), c))
from (values
  ('status', array['SELECT', 'UPDATE']),
  ('scheduled_for', array['SELECT', 'UPDATE']),
  ('address', array['SELECT', 'UPDATE']),
  ('id', array['SELECT']),
  ('tenant_id', array['SELECT']),
  ('order_id', array['SELECT']),
  ('delivery_method', array['SELECT']),
  ('created_at', array['SELECT'])) v(c, privs);

select function_privs_are('public', 'create_wholesale_order', array['jsonb', 'text'], 'anon', array[]::text[],
  'anon cannot call create_wholesale_order');
select function_privs_are('public', 'create_wholesale_order', array['jsonb', 'text'], 'authenticated', array['EXECUTE'],
  'authenticated can call create_wholesale_order');
select function_privs_are('public', 'purge_expired_idempotency_keys', array[]::text[], 'authenticated', array[]::text[],
  'authenticated cannot purge idempotency keys');
select function_privs_are('public', 'purge_expired_idempotency_keys', array[]::text[], 'service_role', array['EXECUTE'],
  'service_role can purge idempotency keys');

select * from finish();
rollback;
