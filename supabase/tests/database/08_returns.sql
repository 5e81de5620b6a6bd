-- public.process_return, public.record_refund_outcome, and the over-return guard.
begin;
select no_plan();
select tests.make_fixture();

-- An order of 8 × PA1 at 2.50 on net_30: 5 from A1 (priority 1), 3 from A2.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table o on commit drop as
select public.create_wholesale_order(tests.order_payload(quantity => 8, unit_price => 2.5, terms => 'net_30')) as r;
select tests.act_as_owner();
create temp table ids on commit drop as
select (r ->> 'order_id')::uuid as order_id,
       (select i.id from public.wholesale_order_items i where i.order_id = (r ->> 'order_id')::uuid) as item_id
from o;
grant select on o, ids to authenticated;
create or replace function pg_temp.ret(qty numeric, method text default 'credit', key text default null)
returns jsonb language sql as $$
  select public.process_return(jsonb_build_object(
    'order_id', (select order_id from ids),
    'items', jsonb_build_array(jsonb_build_object('order_item_id', (select item_id from ids), 'quantity', qty, 'reason', 'damaged')),
    'return_method', method), key)
$$;
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 20.00,
  'the order raised the balance to 20.00');

-- Who may call what.
select tests.act_as(null);
select throws_ok($$select pg_temp.ret(1)$$, '42501', null, 'anon cannot call process_return');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.record_refund_outcome(gen_random_uuid(), 're_x', 'succeeded')$$, '42501', null,
  'members cannot record refund outcomes');

-- Validation and tenancy.
select throws_ok($$select pg_temp.ret(0)$$, 'CEV01', null, 'quantity 0 raises CEV01');
select throws_ok($$select pg_temp.ret(1, 'gift')$$, 'CEV01', null, 'an unknown method raises CEV01');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.ret(1)$$, 'CEN04', 'order not found', 'another tenant''s order is not found');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok(format($$select public.process_return('{"order_id":"%s","return_method":"credit","items":[{"order_item_id":"%s","quantity":1,"reason":"x"}]}')$$,
    (select order_id from ids), gen_random_uuid()),
  'CEN04', 'order item not found', 'an item that is not on the order is not found');

-- The over-return guard.
select throws_ok($$select pg_temp.ret(8.01)$$, 'CEX01', 'the return exceeds what was ordered',
  'returning more than ordered raises CEX01');
select tests.act_as_owner();
select is(tests.count_of_tenant('return_authorizations', '1a000000-0000-4000-8000-000000000001'), 0::bigint, 'refused returns wrote nothing');
select is((select sum(quantity) from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000001'),
  2.00, 'refused returns restored no stock');

-- A credit return of 6: 5 back to A1 (its first allocation), 1 to A2.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table r1 on commit drop as select pg_temp.ret(6, 'credit', 'ret-1') as r;
select tests.act_as_owner();
select matches((select r ->> 'ra_number' from r1), '^RA-\d{4}-000001$', 'the first return is RA-YYYY-000001');
select is((select (r ->> 'refund_amount')::numeric from r1), 15.00, 'its value is 6 × 2.50');
select is((select quantity from public.wholesale_inventory where warehouse_id = '3a000000-0000-4000-8000-000000000001'
           and product_id = '4a000000-0000-4000-8000-000000000001'), 5.00, 'A1 got its 5 back');
select is((select quantity from public.wholesale_inventory where warehouse_id = '3a000000-0000-4000-8000-000000000002'
           and product_id = '4a000000-0000-4000-8000-000000000001'), 3.00, 'A2 got 1 of its 3 back');
select is((select restocked from public.return_items where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  '[{"quantity": 5.00, "warehouse_id": "3a000000-0000-4000-8000-000000000001"}, {"quantity": 1.00, "warehouse_id": "3a000000-0000-4000-8000-000000000002"}]'::jsonb,
  'the return line records where its stock went');
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 5.00,
  'a credit return lowers the balance by its value');
select is((select returned_amount || ' ' || return_status from public.wholesale_orders where id = (select order_id from ids)),
  '15.00 partial', 'the order records what came back');
select is((select status from public.return_authorizations where tenant_id = '1a000000-0000-4000-8000-000000000001'), 'completed', 'a credit return is completed at once');
select is((select count(*) from public.notification_outbox where template = 'return_confirmation'
           and tenant_id = '1a000000-0000-4000-8000-000000000001'), 1::bigint, 'the client''s confirmation is queued');
select is((select count(*) from public.audit_log where action = 'return.created'
           and tenant_id = '1a000000-0000-4000-8000-000000000001'), 1::bigint, 'one audit row');

-- Cumulative: 6 of 8 are back, so 3 more is too many, 2 is exactly right.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.ret(3)$$, 'CEX01', null, 'the guard counts earlier returns');
select is((pg_temp.ret(6, 'credit', 'ret-1') ->> 'return_id'), (select r ->> 'return_id' from r1),
  'a replay of the key returns the first return');
select tests.act_as_owner();
select is(tests.count_of_tenant('return_authorizations', '1a000000-0000-4000-8000-000000000001'), 1::bigint, 'the replay returned nothing twice');
select throws_ok($$update public.wholesale_order_items set returned_quantity = 9 where id = (select item_id from ids)$$,
  '23514', null, 'the table itself refuses a returned quantity above the ordered one');

-- Refunds need a card payment; with one, a pending refund is recorded.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select pg_temp.ret(1, 'refund', 'ret-2')$$, 'CEX02', null,
  'an order without a card payment cannot be refunded');
select tests.act_as_owner();
update public.wholesale_orders set stripe_payment_intent_id = 'pi_test' where id = (select order_id from ids);
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table r2 on commit drop as select pg_temp.ret(1, 'refund', 'ret-3') as r;
grant select on r2 to service_role;
select is((select r -> 'refund' ->> 'status' from r2), 'pending', 'the refund starts pending');
select is((select (r -> 'refund' ->> 'amount')::numeric from r2), 2.50, 'for the returned value');
select is((select r -> 'refund' ->> 'payment_intent' from r2), 'pi_test', 'against the order''s payment');
select tests.act_as_owner();
select is((select status from public.return_authorizations where id = (select (r ->> 'return_id')::uuid from r2)),
  'pending', 'the return waits for the refund');
select is((select channel || ' ' || template || ' ' || status || ' ' || (next_attempt_at > now() + interval '1 minute')::text
           from public.notification_outbox where payload ->> 'refund_id' = (select r -> 'refund' ->> 'id' from r2)),
  'stripe refund pending true', 'a pending refund has an outbox row, due only after the function''s own attempt');

set local role service_role;
select is(public.record_refund_outcome((select (r -> 'refund' ->> 'id')::uuid from r2), null, null, 'stripe 500', false) ->> 'status',
  'pending', 'a transient error keeps the refund pending');
select is(public.record_refund_outcome((select (r -> 'refund' ->> 'id')::uuid from r2), 're_1', 'succeeded') ->> 'status',
  'succeeded', 'Stripe''s answer is recorded');
select is(public.record_refund_outcome((select (r -> 'refund' ->> 'id')::uuid from r2), null, null, 'late error', true) ->> 'status',
  'succeeded', 'a later error never moves an accepted refund back');
reset role;
select is((select status || ' ' || provider_message_id from public.notification_outbox
           where payload ->> 'refund_id' = (select r -> 'refund' ->> 'id' from r2)),
  'sent re_1', 'once Stripe has the refund, its outbox row has nothing left to do');
select is((select status || ' ' || attempts || ' ' || stripe_refund_id from public.refunds where tenant_id = '1a000000-0000-4000-8000-000000000001'), 'succeeded 2 re_1',
  'status, attempts and the Stripe id');
select is((select status from public.return_authorizations where id = (select (r ->> 'return_id')::uuid from r2)),
  'completed', 'the return is completed with its refund');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((pg_temp.ret(1, 'refund', 'ret-3') -> 'refund' ->> 'status'), 'succeeded',
  'a replay reports the refund''s current state');

-- An exchange: the last unit goes back and a linked replacement takes stock again, uncharged.
create temp table r3 on commit drop as select pg_temp.ret(1, 'exchange') as r;
select tests.act_as_owner();
select isnt((select r ->> 'exchange_order_id' from r3), null, 'an exchange places a replacement order');
select is((select exchange_for_return_id from public.wholesale_orders where id = (select (r ->> 'exchange_order_id')::uuid from r3)),
  (select (r ->> 'return_id')::uuid from r3), 'the replacement is linked to the return');
select is((select exchange_order_id from public.return_authorizations where id = (select (r ->> 'return_id')::uuid from r3)),
  (select (r ->> 'exchange_order_id')::uuid from r3), 'and the return to the replacement');
select is((select sum(a.quantity) from public.wholesale_order_allocations a
           join public.wholesale_order_items i on i.id = a.order_item_id
           where i.order_id = (select (r ->> 'exchange_order_id')::uuid from r3)), 1.00,
  'the replacement took its stock through the stock rule');
select is((select sum(quantity) from public.wholesale_inventory where product_id = '4a000000-0000-4000-8000-000000000001'),
  9.00, 'stock: 2 + 6 + 1 (refund) + 1 (exchange back) - 1 (replacement)');
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 5.00,
  'the replacement is not charged again');
select is((select return_status from public.wholesale_orders where id = (select order_id from ids)), 'full',
  'every unit is back: the order is fully returned');
select is((select array_agg(ra_number order by ra_number) from public.return_authorizations
           where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  (select array_agg(regexp_replace((select r ->> 'ra_number' from r1), '1$', n::text) order by n) from generate_series(1, 3) n),
  'RA numbers are consecutive per tenant');

-- Members read their returns and refunds, and write none of them.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$update public.refunds set status = 'succeeded'$$, '42501', null, 'members cannot change refunds');
select throws_ok($$delete from public.return_authorizations$$, '42501', null, 'members cannot delete returns');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*) from public.return_authorizations) + (select count(*) from public.refunds)
          + (select count(*) from public.return_items), 0::bigint, 'B sees none of A''s returns');


-- Grants on returns (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('return_authorizations', array['SELECT']),
  ('return_items', array['SELECT']),
  ('refunds', array['SELECT'])) v(t, privs);
select function_privs_are('public', 'process_return', array['jsonb', 'text'], 'anon', array[]::text[],
  'anon cannot call process_return');
select function_privs_are('public', 'record_refund_outcome', array['uuid', 'text', 'text', 'text', 'boolean'], r, privs,
  format('%s may %s record_refund_outcome', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);
select function_privs_are('public', 'refund_state', array['uuid'], r, privs,
  format('%s may %s refund_state', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);

select * from finish();
rollback;
