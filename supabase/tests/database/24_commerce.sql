-- Commerce (seed 002): RLS on every commerce table, the token column readable
-- by the service role only, writes only through the functions, OAuth states,
-- sync steps (reconciliation, newest wins, leases, completion), webhooks
-- (once, redaction), disconnect, and the outcomes RPC against hand-computed
-- answers.
begin;
select no_plan();
select tests.make_fixture();

-- A store for each tenant.
insert into public.commerce_integrations (id, tenant_id, status, store_domain, access_token_encrypted) values
  ('7a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'connected',
   'a-shop.myshopify.com', 'v1.k1.sealed-a'),
  ('7b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'connected',
   'b-shop.myshopify.com', 'v1.k1.sealed-b');
update public.commerce_integrations set connected_at = now() - interval '1 day';

-- Privileges.
select ok(not has_column_privilege('authenticated', 'public.commerce_integrations', 'access_token_encrypted', 'select'),
  'members cannot read the token column');
select ok(not has_column_privilege('anon', 'public.commerce_integrations', 'access_token_encrypted', 'select'),
  'nor can anon');
select ok(has_column_privilege('service_role', 'public.commerce_integrations', 'access_token_encrypted', 'select'),
  'the service role can');
select ok(has_column_privilege('authenticated', 'public.commerce_integrations', 'store_domain', 'select'),
  'members read the other columns');
select is((select count(*)::int from information_schema.column_privileges
           where table_name = 'commerce_integrations' and grantee = 'authenticated'
             and privilege_type = 'SELECT'),
  (select count(*)::int - 1 from information_schema.columns
   where table_schema = 'public' and table_name = 'commerce_integrations'),
  'every column but the token is readable by members');
select is(
  (select array_agg(c.relname::text order by c.relname) from pg_class c
   where c.relnamespace = 'public'::regnamespace and c.relname like 'commerce\_%' and c.relkind = 'r'
     and not c.relrowsecurity),
  null, 'RLS is on for every commerce table');
select is(
  (select array_agg(distinct table_name::text) from information_schema.role_table_grants
   where grantee in ('authenticated', 'anon') and table_schema = 'public' and table_name like 'commerce\_%'
     and privilege_type in ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
  null, 'members and anon write no commerce table directly');
select ok(not has_table_privilege('authenticated', 'private.commerce_oauth_states', 'select'),
  'OAuth states are the service role''s');
select ok(not has_function_privilege('authenticated', 'public.integration_credentials(uuid)', 'execute'),
  'members cannot fetch credentials');
select ok(not has_function_privilege('authenticated', 'public.commerce_sync_step(uuid, uuid, text, jsonb, jsonb, integer)', 'execute'),
  'members cannot write sync pages');

-- A sync job for A, claimed, and pages written through it.
insert into public.commerce_sync_jobs (id, tenant_id, integration_id, resources, checkpoints) values
  ('8a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001',
   '7a000000-0000-4000-8000-000000000001', '{products,orders,abandoned_checkouts}',
   '{"products": {"mode": "bulk", "done": false}, "orders": {"mode": "incremental", "done": false},
     "abandoned_checkouts": {"mode": "incremental", "done": false}}');
create temporary table lease as
  select (public.claim_commerce_sync('8a000000-0000-4000-8000-000000000001', 60) ->> 'owner')::uuid as owner;
select is(public.claim_commerce_sync('8a000000-0000-4000-8000-000000000001', 60), null,
  'a leased job is not claimed twice');
select is(public.claim_commerce_sync('8a000000-0000-4000-8000-000000000001', 60) #>> '{integration,token}', null,
  'nor are its credentials handed out');

create or replace function pg_temp.step(resource text, records jsonb, checkpoint jsonb) returns jsonb
language sql as $$
  select public.commerce_sync_step('8a000000-0000-4000-8000-000000000001', (select owner from lease),
    resource, records, checkpoint, 60)
$$;

select pg_temp.step('products', '[
  {"external_id": "1", "title": "Headphones", "status": "active", "external_updated_at": "2026-11-01T00:00:00Z",
   "variants": [{"external_id": "11", "title": "Black", "price": "10.00"}, {"external_id": "12", "title": "White", "price": "11.00"}]},
  {"external_id": "2", "title": "Case", "status": "draft", "external_updated_at": "2026-11-01T00:00:00Z",
   "variants": [{"external_id": "21", "title": "Default", "price": "5.50"}]}]'::jsonb,
  '{"line": 10}');
select is((select count(*)::int from public.commerce_product_variants where integration_id = '7a000000-0000-4000-8000-000000000001'),
  3, 'products and their variants are written');
select is(pg_temp.step('products', '[{"external_id": "1", "title": "Headphones v2", "external_updated_at": "2026-11-02T00:00:00Z",
   "variants": [{"external_id": "11", "title": "Black", "price": "9.00"}]}]'::jsonb, '{"line": 20}') #>> '{checkpoints,products,line}',
  '20', 'the checkpoint moves with the page');
select is((select array_agg(external_variant_id order by 1) from public.commerce_product_variants p
           join public.commerce_products cp on cp.id = p.product_id where cp.external_product_id = '1'),
  '{11}', 'a variant the store no longer lists is deleted');
select pg_temp.step('products', '[{"external_id": "1", "title": "Stale", "external_updated_at": "2026-10-01T00:00:00Z",
   "variants": []}]'::jsonb, '{}');
select is((select title from public.commerce_products where external_product_id = '1'), 'Headphones v2',
  'an older version never overwrites a newer one');
select is((select count(*)::int from public.commerce_product_variants where external_variant_id = '11'), 1,
  'nor its variants');
select throws_ok($$select public.commerce_sync_step('8a000000-0000-4000-8000-000000000001', gen_random_uuid(), 'products', '[]', '{}', 60)$$,
  'CE409', 'another invocation holds this sync now', 'a step without the lease is refused');

-- Orders: trigger_ready (seed 002) and customers made on the way.
select pg_temp.step('orders', '[
  {"external_id": "100", "order_number": "#1001", "payment_type": "cod", "customer_phone": "+919800000001",
   "customer": {"external_id": "500", "first_name": "Asha", "email": "asha@x.test", "phone": "+919800000001"},
   "customer_name": "Asha", "customer_email": "asha@x.test", "total_amount": "4999.00", "financial_status": "pending",
   "fulfillment_status": "unfulfilled", "order_created_at": "2026-11-20T00:00:00Z", "external_updated_at": "2026-11-20T00:00:00Z",
   "shipping_address": {"city": "Pune"},
   "items": [{"external_id": "1000", "external_product_id": "1", "external_variant_id": "11", "title": "Headphones",
              "quantity": 2, "price": "10.00"}]},
  {"external_id": "101", "payment_type": "cod", "customer_phone": " ", "total_amount": "10.00",
   "order_created_at": "2026-11-21T00:00:00Z", "external_updated_at": "2026-11-21T00:00:00Z", "items": []},
  {"external_id": "102", "payment_type": "prepaid", "customer_phone": "+15550000000", "total_amount": "20.00",
   "order_created_at": "2026-11-22T00:00:00Z", "external_updated_at": "2026-11-22T00:00:00Z", "items": []}]'::jsonb,
  '{"done": true, "high_water": "2026-11-22T00:00:00Z"}');
select results_eq($$select external_order_id, trigger_ready::text from public.commerce_orders
                   where integration_id = '7a000000-0000-4000-8000-000000000001' order by 1$$,
  $$values ('100', 'ready'), ('101', 'missing_phone'), ('102', 'not_applicable')$$,
  'trigger_ready: COD with a phone is ready, COD without one missing_phone, others not_applicable');
select is((select (total, product_id is not null, variant_id is not null)::text from public.commerce_order_items
           where external_line_item_id = '1000'), '(20.00,t,t)', 'a line item links to the synced product and variant');
select is((select c.name from public.commerce_customers c join public.commerce_orders o on o.customer_id = c.id
           where o.external_order_id = '100'), 'Asha', 'an order''s customer is created and linked');
select is((select sync_state ->> 'orders' from public.commerce_integrations where id = '7a000000-0000-4000-8000-000000000001'),
  '2026-11-22T00:00:00Z', 'a finished resource leaves its mark for the next incremental sync');
select isnt((select last_orders_sync_at from public.commerce_integrations where id = '7a000000-0000-4000-8000-000000000001'),
  null, 'and its last sync time');

-- Carts, then the products resource finishes in bulk: unseen products are soft-deleted.
select pg_temp.step('abandoned_checkouts', '[
  {"external_id": "900", "status": "recovered", "customer_phone": "+1555", "total_value": "100.50",
   "abandoned_at": "2026-11-20T00:00:00Z", "recovered_at": "2026-11-21T00:00:00Z", "items": []},
  {"external_id": "901", "status": "recovered", "total_value": "200.25", "abandoned_at": "2026-11-10T00:00:00Z",
   "recovered_at": "2026-11-12T00:00:00Z", "items": []},
  {"external_id": "902", "status": "abandoned", "customer_phone": "+1555", "total_value": "7.00",
   "abandoned_at": "2026-11-25T00:00:00Z", "items": [{"external_id": "k1", "quantity": 1, "price": "7.00"}]}]'::jsonb,
  '{"done": true}');
select is((select trigger_ready::text from public.commerce_abandoned_carts where external_cart_id = '902'), 'ready',
  'an abandoned cart with a phone is ready for a recovery call');
select is((select trigger_ready::text from public.commerce_abandoned_carts where external_cart_id = '900'), 'not_applicable',
  'a recovered one is not');
-- Product 2 was not in this run's full read, and nothing wrote it since the job started; 1 was read.
update public.commerce_products set last_seen_job = null, synced_at = now() - interval '1 hour'
where external_product_id = '2';
select is(pg_temp.step('products', '[]', '{"done": true}') ->> 'status', 'completed',
  'the job completes when every resource is done');
select isnt((select deleted_at from public.commerce_products where external_product_id = '2'), null,
  'a full sync soft-deletes products the store no longer has');
select isnt((select last_sync_at from public.commerce_integrations where id = '7a000000-0000-4000-8000-000000000001'),
  null, 'last_sync_at is set');

-- RLS: each tenant sees its own rows; deleted rows are hidden.
select is(tests.count_visible('0a000000-0000-4000-8000-000000000001', 'commerce_products'), 1::bigint,
  'A sees its live product, not the deleted one');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_products'), 0::bigint,
  'B sees none of A''s products');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_orders'), 0::bigint, 'nor orders');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_order_items'), 0::bigint, 'nor items');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_customers'), 0::bigint, 'nor customers');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_abandoned_carts'), 0::bigint, 'nor carts');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_cart_items'), 0::bigint, 'nor cart items');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_product_variants'), 0::bigint, 'nor variants');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_sync_jobs'), 0::bigint, 'nor sync jobs');
select is(tests.count_visible('0b000000-0000-4000-8000-000000000001', 'commerce_integrations'), 1::bigint,
  'B sees only its own integration');
select ok(not has_table_privilege('anon', 'public.commerce_products', 'select'), 'anon reads nothing');

-- Seed 002's outcomes, by hand: recovered carts 100.50 (recovered 2026-11-21) and 200.25 (2026-11-12).
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(public.commerce_outcomes('custom', '2026-11-01', '2026-11-30') - 'unavailable',
  '{"revenue_recovered": 300.75, "cod_confirmed": null, "carts_recovered": 2, "rto_prevented": null,
    "period": "custom", "cod_orders": 2, "cod_orders_ready": 1}'::jsonb,
  'outcomes for November: both recovered carts, two COD orders of which one is ready');
select is(public.commerce_outcomes('custom', '2026-11-15', '2026-11-30') ->> 'revenue_recovered', '100.50',
  'a cart counts in the period it was recovered in');
select is(public.commerce_outcomes('all_time') -> 'unavailable', '["cod_confirmed", "rto_prevented"]',
  'the call-based metrics are named as unavailable');
select throws_ok($$select public.commerce_outcomes('yesterday')$$, 'CEV01', 'the request has invalid fields',
  'an unknown period is refused');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is(public.commerce_outcomes('all_time') ->> 'carts_recovered', '0', 'B''s outcomes count none of A''s carts');
select tests.act_as_owner();

-- OAuth states: made for an admin, single-use, for their shop.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temporary table st as
  select public.begin_shopify_oauth('new-a.myshopify.com', '1a000000-0000-4000-8000-000000000001') ->> 'state' as state;
select throws_ok($$select public.begin_shopify_oauth('b-shop.myshopify.com', '1a000000-0000-4000-8000-000000000001')$$,
  'CE409', 'this store is connected to another account; disconnect it there first',
  'a store connected to another tenant cannot be connected');
select throws_ok($$select public.begin_shopify_oauth('evil.com', '1a000000-0000-4000-8000-000000000001')$$,
  'CEV01', null, 'a shop that is not a store domain is refused');
select throws_ok($$select public.begin_shopify_oauth('x.myshopify.com', '1b000000-0000-4000-8000-000000000001')$$,
  'CEN04', 'tenant not found', 'a tenant the caller is not in is not found');
select tests.act_as_owner();
select is(public.take_shopify_oauth_state((select state from st), 'other.myshopify.com'), '{"error": "shop_mismatch"}',
  'a state for another shop is refused (and used up)');
select is(public.take_shopify_oauth_state((select state from st), 'new-a.myshopify.com'), '{"error": "state_used"}',
  'a state is single-use');
select is(public.take_shopify_oauth_state('nope', 'new-a.myshopify.com'), '{"error": "state_unknown"}',
  'an unknown state is refused');
insert into private.commerce_oauth_states (state, tenant_id, user_id, shop, expires_at)
values ('old', '1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000001', 'new-a.myshopify.com',
        now() - interval '1 second');
select is(public.take_shopify_oauth_state('old', 'new-a.myshopify.com'), '{"error": "state_expired"}',
  'a state older than 10 minutes is refused');

-- Statuses: a newer API's UNLISTED is kept; one this schema does not know is not shown as active.
select private.apply_commerce_records((select i from public.commerce_integrations i
  where i.id = '7b000000-0000-4000-8000-000000000001'), 'products',
  '[{"external_id": "u1", "title": "U", "status": "unlisted", "variants": []},
    {"external_id": "u2", "title": "N", "status": "SOMETHING_NEW", "variants": []}]', null);
select results_eq($$select external_product_id, status::text from public.commerce_products
                   where external_product_id in ('u1', 'u2') order by 1$$,
  $$values ('u1', 'unlisted'), ('u2', 'draft')$$, 'product statuses map safely');

-- A product deleted at the store is not brought back by a version no newer than its deletion.
update public.commerce_products set deleted_at = now() where external_product_id = '1';
select private.apply_commerce_records((select i from public.commerce_integrations i
  where i.id = '7a000000-0000-4000-8000-000000000001'), 'products',
  '[{"external_id": "1", "title": "Revived?", "external_updated_at": "2026-11-02T00:00:00Z", "variants": []}]', null);
select is((select (title, deleted_at is not null)::text from public.commerce_products where external_product_id = '1'),
  '("Headphones v2",t)', 'a deleted product stays deleted');

-- Webhooks: once per id; redaction; uninstall.
select is(public.record_commerce_webhook('a-shop.myshopify.com', 'w1', 'customers/redact',
  '{"redact_customer": "500", "orders": ["101"], "phone": "+15550000000"}') ->> 'duplicate', 'false',
  'a delivery is recorded');
select is(public.record_commerce_webhook('a-shop.myshopify.com', 'w1', 'customers/redact', '{}') ->> 'duplicate', 'true',
  'the same webhook id again is a duplicate');
select is(public.apply_commerce_webhook((select id from public.commerce_webhook_events where webhook_id = 'w1')) ->> 'status',
  'processed', 'it is applied');
select is((select (name, email, phone)::text from public.commerce_customers where external_customer_id = '500'), '(,,)',
  'the customer''s personal data is erased');
select is((select count(*)::int from public.commerce_orders
           where external_order_id in ('100', '101') and (customer_name is not null or customer_email is not null
             or customer_phone is not null or shipping_address is not null)), 0,
  'so is that on their orders and on the orders named');
select is((select customer_phone from public.commerce_orders where external_order_id = '102'), null,
  'and on a guest order with their phone');
select is((select work from public.commerce_webhook_events where webhook_id = 'w1'), '{"applied": 4}',
  'no payload is kept once applied');
select private.apply_commerce_records((select i from public.commerce_integrations i
  where i.id = '7a000000-0000-4000-8000-000000000001'), 'orders',
  '[{"external_id": "100", "customer": {"external_id": "500"}, "customer_name": "Asha", "customer_phone": "+919800000001",
     "payment_type": "cod", "total_amount": "4999.00", "external_updated_at": "2026-11-26T00:00:00Z", "items": []}]', null);
select is((select (customer_name, customer_phone)::text from public.commerce_orders where external_order_id = '100'),
  '(,)', 'a later version of a redacted customer''s order does not bring their data back');
select is((select total_amount from public.commerce_orders where external_order_id = '100'), 4999.00,
  'the rows and totals stay');
select is(public.apply_commerce_webhook((select id from public.commerce_webhook_events where webhook_id = 'w1')) ->> 'applied',
  '0', 'an event is applied once');
select is(public.record_commerce_webhook('nobody.myshopify.com', 'w2', 'orders/create', '{}') ->> 'status', 'ignored',
  'a delivery for a store nobody connected is ignored');
select public.record_commerce_webhook('a-shop.myshopify.com', 'w3', 'app/uninstalled', '{"uninstalled": true}');
select public.apply_commerce_webhook((select id from public.commerce_webhook_events where webhook_id = 'w3'));
select is((select (status, access_token_encrypted)::text from public.commerce_integrations
           where id = '7a000000-0000-4000-8000-000000000001'), '(disconnected,)',
  'app/uninstalled disconnects and destroys the token');
select is((select count(*)::int from public.audit_log where entity_id = '7a000000-0000-4000-8000-000000000001'
           and action in ('commerce.customer_redacted', 'integration.uninstalled')), 2, 'both are audited');
select is(public.record_commerce_webhook('a-shop.myshopify.com', 'w4', 'orders/create',
  '{"resource": "orders", "records": [{"external_id": "999"}]}') ->> 'status', 'ignored',
  'a disconnected store''s deliveries are ignored');
select is((select work from public.commerce_webhook_events where webhook_id = 'w4'), '{}', 'and not kept');
select is(public.record_commerce_webhook('b-shop.myshopify.com', 'w5', 'app/uninstalled',
  '{"uninstalled": true, "triggered_at": "2000-01-01T00:00:00Z"}') ->> 'status', 'queued', 'an old uninstall is recorded');
select is(public.apply_commerce_webhook((select id from public.commerce_webhook_events where webhook_id = 'w5')) ->> 'status',
  'ignored', 'but an uninstall triggered before this connection does not disconnect it');
select is((select status::text from public.commerce_integrations where id = '7b000000-0000-4000-8000-000000000001'),
  'connected', 'B stays connected');

-- A sync of a disconnected store stops; a job that keeps failing ends.
insert into public.commerce_sync_jobs (id, tenant_id, integration_id, resources, checkpoints) values
  ('8a000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001',
   '7a000000-0000-4000-8000-000000000001', '{products}', '{"products": {"mode": "bulk", "done": false}}');
create temporary table lease2 as
  select (public.claim_commerce_sync('8a000000-0000-4000-8000-000000000002', 60) ->> 'owner')::uuid as owner;
select throws_ok($$select public.commerce_sync_step('8a000000-0000-4000-8000-000000000002', (select owner from lease2),
  'products', '[]', '{}', 60)$$, 'CE409', 'the integration is disconnected; the sync stops',
  'a page for a disconnected store is refused');
select public.release_commerce_sync('8a000000-0000-4000-8000-000000000002', (select owner from lease2), 'HTTP 500', false);
do $$
begin
  for i in 2..10 loop
    perform public.release_commerce_sync('8a000000-0000-4000-8000-000000000002',
      (public.claim_commerce_sync('8a000000-0000-4000-8000-000000000002', 60) ->> 'owner')::uuid, 'HTTP 500', false);
  end loop;
end
$$;
select is((select (status, failures)::text from public.commerce_sync_jobs where id = '8a000000-0000-4000-8000-000000000002'),
  '(failed,10)', 'the 10th invocation in a row to stop on an error ends the job');

-- Disconnect (B, keep_data then purge), through the function's admission.
insert into public.commerce_products (tenant_id, integration_id, external_product_id, title)
values ('1b000000-0000-4000-8000-000000000001', '7b000000-0000-4000-8000-000000000001', 'b1', 'B product');
update public.commerce_integrations set sync_state = '{"products": "2026-11-01T00:00:00Z"}'
where id = '7b000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.disconnect_commerce_integration('7b000000-0000-4000-8000-000000000001', false, 'revoked')$$,
  'CEN04', 'integration not found', 'another tenant''s integration is not found');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is(public.disconnect_commerce_integration('7b000000-0000-4000-8000-000000000001', false, 'revoked') ->> 'status',
  'disconnected', 'an admin disconnects');
select tests.act_as_owner();
select is((select (status, access_token_encrypted)::text from public.commerce_integrations
           where id = '7b000000-0000-4000-8000-000000000001'), '(disconnected,)', 'the token is destroyed');
select is((select count(*)::int from public.commerce_products where integration_id = '7b000000-0000-4000-8000-000000000001'),
  3, 'keep_data keeps the rows');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is(public.disconnect_commerce_integration('7b000000-0000-4000-8000-000000000001', true, 'no_token') -> 'purged',
  '{"orders": 0, "products": 3, "customers": 0, "abandoned_checkouts": 0}', 'purge deletes the rows');
select tests.act_as_owner();
select is((select sync_state from public.commerce_integrations where id = '7b000000-0000-4000-8000-000000000001'), '{}',
  'and the sync marks, so a later connection reads everything again');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select public.start_commerce_sync('7b000000-0000-4000-8000-000000000001', '{products}', false)$$,
  'CE409', 'the integration is disconnected; connect the store again first', 'a disconnected store does not sync');
select tests.act_as_owner();

select * from finish();
rollback;
