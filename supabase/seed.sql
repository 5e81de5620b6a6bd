-- Demo data for the local stack: two tenants, each with a user, two
-- warehouses, products with stock, and clients. Fixed ids, so the README's
-- examples work as written. Idempotent.
--
--   tenant          user                product ids              client ids
--   Acme Wholesale  alice@acme.test     a4000000-…-00000000000{1,2,3}  a5000000-…-00000000000{1,2}
--   Globex Supply   bob@globex.test     b4000000-…-00000000000{1,2}    b5000000-…-000000000001
--   suppliers: a6000000-…-00000000000{1,2} (Acme), b6000000-…-000000000001 (Globex)
--
-- Sign in as a seeded user with: scripts/token alice@acme.test

insert into auth.users (id, email) values
  ('a2000000-0000-4000-8000-000000000001', 'alice@acme.test'),
  ('b2000000-0000-4000-8000-000000000001', 'bob@globex.test')
on conflict (id) do nothing;

insert into public.tenants (id, slug, business_name) values
  ('a1000000-0000-4000-8000-000000000001', 'acme', 'Acme Wholesale'),
  ('b1000000-0000-4000-8000-000000000001', 'globex', 'Globex Supply')
on conflict (id) do nothing;

insert into public.tenant_users (tenant_id, user_id, role, email) values
  ('a1000000-0000-4000-8000-000000000001', 'a2000000-0000-4000-8000-000000000001', 'admin', 'alice@acme.test'),
  ('b1000000-0000-4000-8000-000000000001', 'b2000000-0000-4000-8000-000000000001', 'admin', 'bob@globex.test')
on conflict (tenant_id, user_id) do nothing;

insert into public.warehouses (id, tenant_id, name, address, priority) values
  ('a3000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'Main', '1 Dock Road', 10),
  ('a3000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'Overflow', '9 Yard Lane', 20),
  ('b3000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001', 'Central', '5 Hub Street', 10)
on conflict (id) do nothing;

insert into public.products (id, tenant_id, name, sku, category, price) values
  ('a4000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'Oat Milk 1L (case of 12)', 'OAT-1L-12', 'dairy-free', 18.50),
  ('a4000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'Espresso Beans 1kg', 'ESP-1KG', 'coffee', 24.00),
  ('a4000000-0000-4000-8000-000000000003', 'a1000000-0000-4000-8000-000000000001', 'Paper Cups 12oz (1000)', 'CUP-12-1000', 'packaging', 65.00),
  ('b4000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001', 'Steel Bolts M8 (box)', 'BOLT-M8', 'hardware', 12.75),
  ('b4000000-0000-4000-8000-000000000002', 'b1000000-0000-4000-8000-000000000001', 'Hex Nuts M8 (box)', 'NUT-M8', 'hardware', 6.20)
on conflict (id) do nothing;

insert into public.wholesale_inventory (tenant_id, product_id, warehouse_id, quantity, reorder_point) values
  ('a1000000-0000-4000-8000-000000000001', 'a4000000-0000-4000-8000-000000000001', 'a3000000-0000-4000-8000-000000000001', 120, 20),
  ('a1000000-0000-4000-8000-000000000001', 'a4000000-0000-4000-8000-000000000001', 'a3000000-0000-4000-8000-000000000002', 60, 10),
  ('a1000000-0000-4000-8000-000000000001', 'a4000000-0000-4000-8000-000000000002', 'a3000000-0000-4000-8000-000000000001', 40, 5),
  ('a1000000-0000-4000-8000-000000000001', 'a4000000-0000-4000-8000-000000000003', 'a3000000-0000-4000-8000-000000000002', 15, 3),
  ('b1000000-0000-4000-8000-000000000001', 'b4000000-0000-4000-8000-000000000001', 'b3000000-0000-4000-8000-000000000001', 500, 50),
  ('b1000000-0000-4000-8000-000000000001', 'b4000000-0000-4000-8000-000000000002', 'b3000000-0000-4000-8000-000000000001', 800, 80)
on conflict (product_id, warehouse_id) do nothing;

insert into public.wholesale_clients (id, tenant_id, name, email, phone, address, credit_limit, current_balance, payment_terms) values
  ('a5000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'Corner Café', 'orders@cornercafe.test', '+15555550101', '12 High Street', 5000, 0, 'net_30'),
  ('a5000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'Market Stall 7', 'stall7@market.test', null, 'Stall 7, Old Market', null, 0, 'prepaid'),
  ('b5000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001', 'Builders Co', 'buy@builders.test', '+15555550199', '3 Site Road', 20000, 0, 'net_30')
on conflict (id) do nothing;

-- Suppliers: Acme buys from two (one has no email address), Globex from one.
insert into public.suppliers (id, tenant_id, name, email, phone, address, payment_terms, contact_person) values
  ('a6000000-0000-4000-8000-000000000001', 'a1000000-0000-4000-8000-000000000001', 'Bean Brothers Roasters', 'sales@beanbros.test', '+15555550111', '4 Roastery Row, Portside', 'net_30', 'Dana Bean'),
  ('a6000000-0000-4000-8000-000000000002', 'a1000000-0000-4000-8000-000000000001', 'Cupworks', null, '+15555550112', '88 Mill Street', 'prepaid', null),
  ('b6000000-0000-4000-8000-000000000001', 'b1000000-0000-4000-8000-000000000001', 'Forge Fasteners', 'orders@forge.test', null, '2 Anvil Way', 'net_15', 'Sam Forge')
on conflict (id) do nothing;
