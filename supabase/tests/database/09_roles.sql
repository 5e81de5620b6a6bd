-- Roles: viewer < member < admin < owner (tenancy migration). A viewer reads
-- and writes nothing; members do the daily work; only an admin or the owner
-- sets a client's credit; nobody writes a client's balance directly.
begin;
select no_plan();
select tests.make_fixture();

-- Tenant A's fixture user (0a…01) has the default role, admin. Three more:
insert into auth.users (id, email) values
  ('0a000000-0000-4000-8000-000000000002', 'member@tenant-a.test'),
  ('0a000000-0000-4000-8000-000000000003', 'viewer@tenant-a.test'),
  ('0a000000-0000-4000-8000-000000000004', 'owner@tenant-a.test');
insert into public.tenant_users (tenant_id, user_id, role, email) values
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000002', 'member', 'member@tenant-a.test'),
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000003', 'viewer', 'viewer@tenant-a.test'),
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000004', 'owner', 'owner@tenant-a.test');

-- ---------------------------------------------------------------- the role column
select is((select role from public.tenant_users where user_id = '0a000000-0000-4000-8000-000000000001'), 'admin',
  'a membership inserted without a role is an admin');
select throws_ok($$insert into public.tenant_users (tenant_id, user_id, role, email)
  values ('1b000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000002', 'superuser', 'x@y.test')$$,
  '23514', null, 'a role outside owner, admin, member, viewer is refused');

-- Rows for every table a member may write: an order with a delivery and alerts
-- (placed by the member), a draft PO and its stored PDF.
select tests.act_as('0a000000-0000-4000-8000-000000000002');
create temp table placed on commit drop as
select public.create_wholesale_order(tests.order_payload(quantity => 8, method => 'delivery')) as r;
create temp table po on commit drop as select public.create_purchase_order(tests.po_payload()) as r;
select tests.act_as_owner();
grant select on placed, po to authenticated;
insert into storage.objects (bucket_id, name) select 'purchase-orders', r ->> 'pdf_path' from po;
select ok((select count(*) from public.inventory_alerts where tenant_id = '1a000000-0000-4000-8000-000000000001') > 0
  and (select count(*) from public.deliveries where tenant_id = '1a000000-0000-4000-8000-000000000001') > 0,
  'the member''s order left a delivery and alerts to work on');

-- ---------------------------------------------------------------- viewer
create temp table readable (t text) on commit drop;
insert into readable values ('tenant_users'), ('products'), ('warehouses'), ('wholesale_inventory'),
  ('wholesale_clients'), ('wholesale_orders'), ('wholesale_order_items'), ('deliveries'),
  ('inventory_alerts'), ('suppliers'), ('purchase_orders'), ('purchase_order_items');
select is(tests.count_visible('0a000000-0000-4000-8000-000000000003', t),
  tests.count_of_tenant(t, '1a000000-0000-4000-8000-000000000001'),
  format('a viewer reads all of the tenant''s %s', t))
from readable;

select tests.act_as('0a000000-0000-4000-8000-000000000003');
select throws_ok($$insert into public.products (tenant_id, name) values ('1a000000-0000-4000-8000-000000000001', 'P')$$,
  '42501', null, 'a viewer cannot add a product');
select throws_ok($$insert into public.warehouses (tenant_id, name) values ('1a000000-0000-4000-8000-000000000001', 'W')$$,
  '42501', null, 'a viewer cannot add a warehouse');
select throws_ok($$insert into public.wholesale_clients (tenant_id, name) values ('1a000000-0000-4000-8000-000000000001', 'C')$$,
  '42501', null, 'a viewer cannot add a client');
select throws_ok($$insert into public.suppliers (tenant_id, name) values ('1a000000-0000-4000-8000-000000000001', 'S')$$,
  '42501', null, 'a viewer cannot add a supplier');
select throws_ok($$insert into storage.objects (bucket_id, name) values ('invoices', '1a000000-0000-4000-8000-000000000001/v.pdf')$$,
  '42501', null, 'a viewer cannot upload a file');
update public.products set name = 'renamed by a viewer';
update public.warehouses set is_active = false;
update public.wholesale_inventory set reorder_point = 99;
update public.wholesale_clients set name = 'renamed by a viewer';
update public.suppliers set name = 'renamed by a viewer';
update public.deliveries set status = 'failed';
update public.inventory_alerts set status = 'resolved';
update public.purchase_orders set status = 'cancelled';
update storage.objects set metadata = '{"viewer": true}';
delete from public.wholesale_inventory;
delete from public.suppliers where id = '6a000000-0000-4000-8000-000000000002';
delete from storage.objects;
select tests.act_as_owner();
select is((select count(*) from public.products where name = 'renamed by a viewer')
          + (select count(*) from public.warehouses where not is_active)
          + (select count(*) from public.wholesale_inventory where reorder_point = 99)
          + (select count(*) from public.wholesale_clients where name = 'renamed by a viewer')
          + (select count(*) from public.suppliers where name = 'renamed by a viewer')
          + (select count(*) from public.deliveries where status = 'failed')
          + (select count(*) from public.inventory_alerts where status = 'resolved')
          + (select count(*) from public.purchase_orders where status = 'cancelled')
          + (select count(*) from storage.objects where metadata is not null),
  0::bigint, 'a viewer''s updates change no row');
select is(tests.count_of_tenant('wholesale_inventory', '1a000000-0000-4000-8000-000000000001')
          + tests.count_of_tenant('suppliers', '1a000000-0000-4000-8000-000000000001')
          + (select count(*) from storage.objects),
  3::bigint + 2 + 1, 'a viewer''s deletes remove no row');

-- Business RPCs refuse a viewer with 403 FORBIDDEN, before doing anything.
-- (The viewer holds admissions, like any member, so the refusal is the role's.)
select tests.act_as('0a000000-0000-4000-8000-000000000003');
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CEA03', 'this needs the member role or a higher one',
  'a viewer cannot place an order');
select throws_ok($$select public.create_purchase_order(tests.po_payload())$$, 'CEA03', 'this needs the member role or a higher one',
  'a viewer cannot create a purchase order');
select throws_ok(format('select public.process_return(%L)', jsonb_build_object(
    'order_id', (select r ->> 'order_id' from placed), 'return_method', 'credit',
    'items', jsonb_build_array(jsonb_build_object(
      'order_item_id', (select id from public.wholesale_order_items where order_id = (select (r ->> 'order_id')::uuid from placed)),
      'quantity', 1, 'reason', 'x')))),
  'CEA03', 'this needs the member role or a higher one', 'a viewer cannot process a return');
select throws_ok(format('select public.attach_purchase_order_pdf(%L)', (select r ->> 'po_id' from po)),
  'CEA03', 'this needs the member role or a higher one', 'a viewer cannot send a purchase order');
select tests.act_as_owner();
select is(tests.count_of_tenant('wholesale_orders', '1a000000-0000-4000-8000-000000000001')
          + tests.count_of_tenant('purchase_orders', '1a000000-0000-4000-8000-000000000001')
          + tests.count_of_tenant('return_authorizations', '1a000000-0000-4000-8000-000000000001'),
  2::bigint, 'the viewer''s calls created nothing');
select is((select status from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from po)), 'draft',
  'and left the purchase order a draft');
select is((select count(*) from public.notification_outbox where template = 'purchase_order'), 0::bigint,
  'with no email to the supplier');

-- Every write policy on a tenant table excludes viewers, whatever the table:
-- none is "for all", and each insert, update or delete policy asks for a role.
select is(
  array(select format('%s.%s: %s', p.schemaname, p.tablename, p.policyname) from pg_policies p
        where p.schemaname in ('public', 'storage') and 'authenticated' = any (p.roles)
          and p.cmd <> 'SELECT'
          and coalesce(p.qual, '') || coalesce(p.with_check, '') not like '%tenant_ids_with_role(''member''%'
        order by 1),
  array[]::text[], 'every write policy for authenticated needs the member role or a higher one');

-- ---------------------------------------------------------------- member
select tests.act_as('0a000000-0000-4000-8000-000000000002');
select lives_ok($$insert into public.products (tenant_id, name, sku) values ('1a000000-0000-4000-8000-000000000001', 'New', 'NEW')$$,
  'a member adds a product');
select lives_ok($$update public.wholesale_clients set email = 'new@client.test', phone = '+15555550002'
  where id = '5a000000-0000-4000-8000-000000000001'$$, 'a member edits a client''s contact details');
select lives_ok($$insert into public.wholesale_clients (tenant_id, name, email) values ('1a000000-0000-4000-8000-000000000001', 'New client', 'n@client.test')$$,
  'a member adds a client without credit');
select throws_ok($$insert into public.wholesale_clients (tenant_id, name, credit_limit) values ('1a000000-0000-4000-8000-000000000001', 'Credit', 1000)$$,
  'CEA03', 'this needs the admin role or a higher one', 'a member cannot give a new client credit');
select throws_ok($$insert into public.wholesale_clients (tenant_id, name, current_balance) values ('1a000000-0000-4000-8000-000000000001', 'Owes', -500)$$,
  '42501', null, 'a member cannot set a new client''s balance');
-- The reported abuse: wipe the debt and raise the limit in one statement.
select throws_ok($$update public.wholesale_clients set current_balance = 0, credit_limit = 99999999.99
  where id = '5a000000-0000-4000-8000-000000000001'$$,
  '42501', null, 'a member cannot zero a balance and raise a credit limit');
select throws_ok($$update public.wholesale_clients set credit_limit = 99999999.99 where id = '5a000000-0000-4000-8000-000000000001'$$,
  'CEA03', 'this needs the admin role or a higher one', 'a member cannot change a credit limit');
select throws_ok($$update public.wholesale_clients set status = 'active' where id = '5a000000-0000-4000-8000-000000000002'$$,
  'CEA03', 'this needs the admin role or a higher one', 'a member cannot reactivate a client');
select throws_ok($$update public.wholesale_clients set current_balance = 0$$, '42501', null,
  'a member cannot write any balance');
select tests.act_as_owner();
select is((select credit_limit || ' ' || status from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'),
  '100.00 active', 'the client''s credit is unchanged');
select is((select status from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000002'), 'inactive',
  'and the inactive client stays inactive');

-- ---------------------------------------------------------------- admin and owner
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$update public.wholesale_clients set credit_limit = 250, status = 'suspended'
  where id = '5a000000-0000-4000-8000-000000000001'$$, 'an admin sets a credit limit and a status');
select lives_ok($$insert into public.wholesale_clients (tenant_id, name, credit_limit) values ('1a000000-0000-4000-8000-000000000001', 'Admin''s', 10)$$,
  'an admin adds a client with credit');
select throws_ok($$update public.wholesale_clients set current_balance = 0$$, '42501', null,
  'an admin cannot write a balance either');
select tests.act_as('0a000000-0000-4000-8000-000000000004');
select lives_ok($$update public.wholesale_clients set credit_limit = 300, status = 'active'
  where id = '5a000000-0000-4000-8000-000000000001'$$, 'the owner sets a credit limit and a status');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
update public.wholesale_clients set credit_limit = 1 where tenant_id = '1a000000-0000-4000-8000-000000000001';
select tests.act_as_owner();
select is((select credit_limit || ' ' || status from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'),
  '300.00 active', 'the admin''s and owner''s changes hold; another tenant''s admin changed nothing');

-- The balance moves only through the RPCs: an order on net terms raises it.
select tests.act_as('0a000000-0000-4000-8000-000000000002');
select lives_ok($$select public.create_wholesale_order(tests.order_payload(product => '4a000000-0000-4000-8000-000000000002', quantity => 2, unit_price => 5, terms => 'net_30'))$$,
  'a member places an order on credit');
select tests.act_as_owner();
select is((select current_balance from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'), 10.00,
  'the RPC wrote the balance');

-- A new client never starts in the red, whoever inserts it.
select throws_ok($$insert into public.wholesale_clients (tenant_id, name, current_balance) values ('1a000000-0000-4000-8000-000000000001', 'Red', -0.01)$$,
  '23514', null, 'a client cannot be inserted with a negative balance');
set local role service_role;
select throws_ok($$insert into public.wholesale_clients (tenant_id, name, current_balance) values ('1a000000-0000-4000-8000-000000000001', 'Red', -1)$$,
  '23514', null, 'not even by the service role');
reset role;

-- A member cannot undo a suspension by deleting the client and creating it again.
update public.wholesale_clients set status = 'suspended' where id = '5a000000-0000-4000-8000-000000000002';
insert into public.wholesale_clients (id, tenant_id, name, status)
values ('5a000000-0000-4000-8000-000000000009', '1a000000-0000-4000-8000-000000000001', 'Spare', 'active');
select tests.act_as('0a000000-0000-4000-8000-000000000002');
select throws_ok($$delete from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000002'$$,
  'CEA03', null, 'a member cannot delete a suspended client');
select lives_ok($$delete from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000009'$$,
  'a member may delete an active client without orders');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$delete from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000002'$$,
  'an admin may delete a suspended client');

-- Admission refuses a viewer before anything is charged.
select tests.act_as_owner();
set local role service_role;
select throws_ok($$select public.admit_request('create-wholesale-order', '0a000000-0000-4000-8000-000000000003',
  '5a000000-0000-4000-8000-000000000001')$$, 'CEA03', 'this needs the member role or a higher one',
  'a viewer is not admitted');
reset role;
select is((select count(*) from public.rate_limit_buckets b
  join public.tenant_users tu on tu.tenant_id = b.tenant_id
  where tu.user_id = '0a000000-0000-4000-8000-000000000003' and b.updated_at > now() - interval '1 minute'
    and b.tokens < 599), 0::bigint, 'and nothing was charged to the tenant for it');

select * from finish();
rollback;
