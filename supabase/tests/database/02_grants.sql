-- Grants: revoked by default (Supabase grants everything in public to the API
-- roles), then given explicitly.
begin;
select no_plan();

select table_privs_are('public', t, 'anon', array[]::text[], format('anon has no privileges on %s', t))
from (values ('tenants'), ('tenant_users'), ('products'), ('warehouses'), ('wholesale_inventory'),
  ('wholesale_clients'), ('wholesale_orders'), ('wholesale_order_items'),
  ('wholesale_order_allocations'), ('deliveries'), ('inventory_alerts'), ('idempotency_keys'),
  ('notification_outbox'), ('audit_log'), ('document_counters'), ('rate_limit_policies'),
  ('rate_limit_buckets'), ('suppliers'), ('purchase_orders'), ('purchase_order_items'),
  ('return_authorizations'), ('return_items'), ('refunds')) v(t);

select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('tenants', array['SELECT']),
  ('tenant_users', array['SELECT']),
  ('products', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('warehouses', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('wholesale_inventory', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('wholesale_clients', array['SELECT', 'DELETE']),
  ('wholesale_orders', array['SELECT']),
  ('wholesale_order_items', array['SELECT']),
  ('wholesale_order_allocations', array['SELECT']),
  ('deliveries', array['SELECT']),
  ('inventory_alerts', array['SELECT', 'UPDATE']),
  ('idempotency_keys', array[]::text[]),
  ('notification_outbox', array['SELECT']),
  ('audit_log', array['SELECT']),
  ('document_counters', array[]::text[]),
  ('rate_limit_policies', array['SELECT']),
  ('rate_limit_buckets', array[]::text[]),
  ('suppliers', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('purchase_orders', array['SELECT']),
  ('purchase_order_items', array['SELECT']),
  ('return_authorizations', array['SELECT']),
  ('return_items', array['SELECT']),
  ('refunds', array['SELECT'])) v(t, privs);

select column_privs_are('public', 'purchase_orders', 'status', 'authenticated', array['SELECT', 'UPDATE'],
  'members may update a PO''s status');
select column_privs_are('public', 'purchase_orders', 'total_amount', 'authenticated', array['SELECT'],
  'members may not update a PO''s total');

-- A client's balance is written only by the RPCs that move money; its credit
-- columns are granted, and private.guard_client_write keeps them to admins.
select column_privs_are('public', 'wholesale_clients', c, 'authenticated', privs,
  format('authenticated may %s wholesale_clients.%s', array_to_string(privs, ', '), c))
from (values
  ('id', array['SELECT', 'INSERT']),
  ('tenant_id', array['SELECT', 'INSERT']),
  ('name', array['SELECT', 'INSERT', 'UPDATE']),
  ('email', array['SELECT', 'INSERT', 'UPDATE']),
  ('phone', array['SELECT', 'INSERT', 'UPDATE']),
  ('address', array['SELECT', 'INSERT', 'UPDATE']),
  ('payment_terms', array['SELECT', 'INSERT', 'UPDATE']),
  ('credit_limit', array['SELECT', 'INSERT', 'UPDATE']),
  ('status', array['SELECT', 'INSERT', 'UPDATE']),
  ('current_balance', array['SELECT']),
  ('created_at', array['SELECT'])) v(c, privs);
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
select function_privs_are('public', f, array['jsonb', 'text'], 'anon', array[]::text[], format('anon cannot call %s', f))
from (values ('create_purchase_order'), ('process_return')) v(f);
select function_privs_are('public', 'record_refund_outcome', array['uuid', 'text', 'text', 'text', 'boolean'], r, privs,
  format('%s may %s record_refund_outcome', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);
select function_privs_are('public', 'refund_state', array['uuid'], r, privs,
  format('%s may %s refund_state', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);
select function_privs_are('public', 'attach_purchase_order_pdf', array['uuid'], 'anon', array[]::text[],
  'anon cannot call attach_purchase_order_pdf');
select function_privs_are('public', 'purge_expired_idempotency_keys', array[]::text[], 'authenticated', array[]::text[],
  'authenticated cannot purge idempotency keys');
select function_privs_are('public', 'purge_expired_idempotency_keys', array[]::text[], 'service_role', array['EXECUTE'],
  'service_role can purge idempotency keys');

-- Nothing in private is callable by the API roles except the helpers RLS policies call.
select is(
  array(select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'private' and has_function_privilege('authenticated', p.oid, 'execute')
        order by 1),
  array['current_tenant_ids', 'is_member', 'object_tenant', 'tenant_ids_with_role'],
  'authenticated can execute only the helpers RLS policies call');
select is(
  array(select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'private' and has_function_privilege('anon', p.oid, 'execute')),
  array[]::text[], 'anon can execute nothing in private');

-- Security definer functions pin their search path.
select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private') and p.prosecdef
          and not coalesce('search_path=""' = any (p.proconfig), false)),
  array[]::text[], 'every security definer function sets search_path to empty');

select * from finish();
rollback;
