-- RLS: every tenant-owned table shows a member only their own tenant's rows,
-- shows anon nothing, and refuses writes into another tenant.
begin;
select no_plan();

select tests.make_fixture();
-- One order as A, so every order-related table has rows of tenant A.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select public.create_wholesale_order(
  tests.order_payload(quantity => 8, terms => 'net_30', method => 'delivery'), 'rls-key');
select public.create_purchase_order(tests.po_payload());
select tests.act_as_owner();
update public.wholesale_orders set stripe_payment_intent_id = 'pi_rls';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select public.process_return(jsonb_build_object(
  'order_id', (select id from public.wholesale_orders limit 1), 'return_method', 'refund',
  'items', jsonb_build_array(jsonb_build_object(
    'order_item_id', (select id from public.wholesale_order_items limit 1), 'quantity', 1, 'reason', 'rls'))),
  'rls-return');
select tests.act_as_owner();

create temp table readable (t text) on commit drop;
insert into readable values ('tenant_users'), ('products'), ('warehouses'), ('wholesale_inventory'),
  ('wholesale_clients'), ('wholesale_orders'), ('wholesale_order_items'),
  ('wholesale_order_allocations'), ('deliveries'), ('inventory_alerts'),
  ('notification_outbox'), ('audit_log'), ('suppliers'), ('purchase_orders'),
  ('purchase_order_items'), ('return_authorizations'), ('return_items'), ('refunds');
grant select on readable to authenticated, anon;

select ok(c.relrowsecurity, format('RLS is enabled on %s', c.relname))
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'public' and c.relkind = 'r'
  and c.relname in (select t from readable union all values ('tenants'), ('idempotency_keys'), ('document_counters'));

select is(
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname = 'public' and c.relkind = 'r' and not c.relrowsecurity),
  0::bigint, 'every table in public has RLS enabled');

select ok(tests.count_of_tenant(t, '1a000000-0000-4000-8000-000000000001') > 0,
  format('the fixture gives tenant A rows in %s', t))
from readable;

select is(
  tests.count_visible('0a000000-0000-4000-8000-000000000001', t),
  tests.count_of_tenant(t, '1a000000-0000-4000-8000-000000000001'),
  format('a member of A sees exactly A''s rows of %s', t))
from readable;

select is(
  tests.count_visible('0b000000-0000-4000-8000-000000000001', t),
  tests.count_of_tenant(t, '1b000000-0000-4000-8000-000000000001'),
  format('a member of B sees none of A''s rows of %s', t))
from readable;

select throws_ok(format('select tests.count_visible(null, %L)', t), '42501', null,
  format('anon cannot read %s', t))
from readable;

select is(tests.count_visible('0a000000-0000-4000-8000-000000000001', 'tenants'), 1::bigint,
  'a member sees only their own tenant');
select throws_ok($$select tests.count_visible(null, 'tenants')$$, '42501', null, 'anon cannot read tenants');

select throws_ok(format('select tests.count_visible(%L, %L)', '0a000000-0000-4000-8000-000000000001', t),
  '42501', null, format('members cannot read %s directly', t))
from (values ('idempotency_keys'), ('document_counters'), ('rate_limit_buckets')) v(t);

-- Writes into another tenant are refused or see nothing.
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok(
  $$insert into public.products (tenant_id, name) values ('1a000000-0000-4000-8000-000000000001', 'intruder')$$,
  '42501', null, 'a member of B cannot insert a product into A');
update public.wholesale_inventory set quantity = 0 where tenant_id = '1a000000-0000-4000-8000-000000000001';
delete from public.wholesale_clients where tenant_id = '1a000000-0000-4000-8000-000000000001';
select throws_ok(
  $$update public.products set tenant_id = '1a000000-0000-4000-8000-000000000001' where tenant_id = '1b000000-0000-4000-8000-000000000001'$$,
  '42501', null, 'a member of B cannot move a row into A');
select tests.act_as_owner();
select is((select sum(quantity) from public.wholesale_inventory where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  103.00, 'B''s update left A''s stock alone (102 after the order, plus the returned 1)');
select is(tests.count_of_tenant('wholesale_clients', '1a000000-0000-4000-8000-000000000001'), 2::bigint,
  'B''s delete left A''s clients alone');

-- From the catalogue, so that a new tenant table is covered without editing a
-- list: every public table with a tenant_id has RLS, a read policy confined
-- to the member's tenants, write policies confined to them too, and nothing
-- for anon.
create temp table tenant_tables on commit drop as
select c.relname::text as t, c.relrowsecurity as rls
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped
where n.nspname = 'public' and c.relkind = 'r';
select ok((select count(*) from tenant_tables) >= 24, 'the catalogue lists every tenant table (24 today)');
select ok(rls, format('%s has RLS enabled', t)) from tenant_tables;
select ok(exists (
    select 1 from pg_policies p
    where p.schemaname = 'public' and p.tablename = tt.t and p.cmd in ('SELECT', 'ALL')
      and 'authenticated' = any (p.roles)
      and p.qual ~ '(current_tenant_ids|tenant_ids_with_role)'),
  format('%s: members read only their tenants'' rows', t))
from tenant_tables tt;
select is(
  (select array_agg(p.policyname::text) from pg_policies p
   where p.schemaname = 'public' and p.tablename = tt.t and p.cmd <> 'SELECT'
     and coalesce(p.with_check, p.qual, '') !~ '(current_tenant_ids|tenant_ids_with_role)'),
  null, format('%s: every write policy is confined to the tenant', t))
from tenant_tables tt;
select is(
  (select array_agg(g.privilege_type::text) from information_schema.role_table_grants g
   where g.grantee = 'anon' and g.table_schema = 'public' and g.table_name = tt.t),
  null, format('%s: anon has no privileges', t))
from tenant_tables tt;


-- Grants on tenancy and catalogue (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('tenants', array['SELECT']),
  ('tenant_users', array['SELECT']),
  ('products', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('warehouses', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('wholesale_inventory', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('wholesale_clients', array['SELECT', 'DELETE'])) v(t, privs);
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

select * from finish();
rollback;
