-- The report metric catalogue: every metric against answers computed by
-- hand on a small fixture, grouping in the tenant's time zone, filters,
-- rejections, RLS and grants.
begin;
select no_plan();
select tests.make_fixture();

-- Tenant A, in Paris. Products: PA1 at 30, PA2 at 10.
update public.tenants set time_zone = 'Europe/Paris' where id = '1a000000-0000-4000-8000-000000000001';
update public.products set price = 30 where id = '4a000000-0000-4000-8000-000000000001';
update public.products set price = 10 where id = '4a000000-0000-4000-8000-000000000002';
-- Stock (the fixture's): PA1 5 in A1 and 5 in A2, reorder point 3; PA2 100 in A1,
-- no reorder point. PA1 in A2 goes down to 2, at or below its point.
update public.wholesale_inventory set quantity = 2
where product_id = '4a000000-0000-4000-8000-000000000001' and warehouse_id = '3a000000-0000-4000-8000-000000000002';
-- Orders, written directly with their times:
--   O1 2026-01-10 10:00Z  CA      prepaid  100  (PA1 2 × 30 from A1, PA2 4 × 10 from A1)
--   O2 2026-01-31 23:30Z  CA      net_30    50  (PA1 1 × 50 from A2): February in Paris
--   O3 2026-02-15 12:00Z  CA_OFF  prepaid  200  (PA2 20 × 10 from A1)
--   O4 2026-02-20 12:00Z  CA      prepaid  999  cancelled: counted nowhere
insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount, payment_terms,
  delivery_method, created_at) values
  ('70000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001',
   'T-1', 'confirmed', 100, 'prepaid', 'pickup', '2026-01-10 10:00Z'),
  ('70000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001',
   'T-2', 'delivered', 50, 'net_30', 'pickup', '2026-01-31 23:30Z'),
  ('70000000-0000-4000-8000-000000000003', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000002',
   'T-3', 'confirmed', 200, 'prepaid', 'pickup', '2026-02-15 12:00Z'),
  ('70000000-0000-4000-8000-000000000004', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001',
   'T-4', 'cancelled', 999, 'prepaid', 'pickup', '2026-02-20 12:00Z');
insert into public.wholesale_order_items (id, tenant_id, order_id, line_number, product_id, warehouse_id, quantity,
  unit_price, total_price) values
  ('71000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001', 1,
   '4a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 2, 30, 60),
  ('71000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001', 2,
   '4a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 4, 10, 40),
  ('71000000-0000-4000-8000-000000000003', '1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000002', 1,
   '4a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000002', 1, 50, 50),
  ('71000000-0000-4000-8000-000000000004', '1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000003', 1,
   '4a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 20, 10, 200),
  ('71000000-0000-4000-8000-000000000005', '1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000004', 1,
   '4a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 99, 10, 990);
-- Returns: O3 refunded 20 (2026-02-16), O1 credited 10 (2026-01-12).
insert into public.return_authorizations (tenant_id, order_id, ra_number, status, return_method, refund_amount, created_at)
values ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000003', 'RA-T-3', 'completed', 'refund', 20,
        '2026-02-16 09:00Z'),
       ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001', 'RA-T-1', 'completed', 'credit', 10,
        '2026-01-12 09:00Z');
-- Purchase orders: 300 (a draft), 40 cancelled.
insert into public.purchase_orders (tenant_id, supplier_id, po_number, status, total_amount, expected_delivery_date,
  pdf_path, created_at)
values ('1a000000-0000-4000-8000-000000000001', '6a000000-0000-4000-8000-000000000001', 'PO-T-1', 'draft', 300, '2026-03-01',
        '1a000000-0000-4000-8000-000000000001/po-t-1.pdf', '2026-02-01 10:00Z'),
       ('1a000000-0000-4000-8000-000000000001', '6a000000-0000-4000-8000-000000000001', 'PO-T-2', 'cancelled', 40, '2026-03-01',
        '1a000000-0000-4000-8000-000000000001/po-t-2.pdf', '2026-02-02 10:00Z');
-- Campaigns: sent 100 + 50, delivered 90 + 45, opened 30 + 15.
insert into public.marketing_campaigns (tenant_id, name, type, channel, status, sent_count, delivered_count, opened_count)
values ('1a000000-0000-4000-8000-000000000001', 'C1', 'email', 'email', 'sent', 100, 90, 30),
       ('1a000000-0000-4000-8000-000000000001', 'C2', 'email', 'email', 'sent', 50, 45, 15);
-- Tenant B has an order, which A must never see.
insert into public.wholesale_orders (tenant_id, client_id, order_number, status, total_amount, payment_terms, delivery_method,
  created_at)
select '1b000000-0000-4000-8000-000000000001', id, 'B-1', 'confirmed', 7777, 'prepaid', 'pickup', '2026-01-15 10:00Z'
from public.wholesale_clients where tenant_id = '1b000000-0000-4000-8000-000000000001' limit 1;

create function pg_temp.report(spec jsonb) returns jsonb language sql as $$
  select public.report_data(tests.report_ticket(spec || '{"tenant_id": "1a000000-0000-4000-8000-000000000001"}'))
$$;
create function pg_temp.refusal(spec jsonb) returns jsonb language plpgsql as $$
declare
  detail text;
begin
  perform pg_temp.report(spec);
  return '{}';
exception when sqlstate 'CEV01' then
  get stacked diagnostics detail = pg_exception_detail;
  return detail::jsonb;
end
$$;

select tests.act_as('0a000000-0000-4000-8000-000000000001');

select is(pg_temp.report('{"metrics": ["revenue", "order_count", "average_order_value", "return_rate"]}') -> 'totals',
  '{"revenue": 350.00, "order_count": 3, "average_order_value": 116.67, "return_rate": 0.6667}'::jsonb,
  'totals: cancelled orders count nowhere, B''s orders never');
select is(pg_temp.report('{"metrics": ["revenue", "order_count", "return_rate"], "group_by": ["month"]}') -> 'rows',
  '[["2026-01-01", 100.00, 1, 1.0000], ["2026-02-01", 250.00, 2, 0.5000]]'::jsonb,
  'by month in the tenant''s time zone: 23:30Z on 31 January is February in Paris');
select is(pg_temp.report('{"metrics": ["revenue"], "group_by": ["month"]}') -> 'columns',
  '[{"name": "month", "type": "date"}, {"name": "revenue", "type": "money"}]'::jsonb, 'typed columns');
select is(pg_temp.report('{"metrics": ["revenue", "units_sold"], "group_by": ["product"]}') -> 'rows',
  '[["4a000000-0000-4000-8000-000000000001", 110.00, 3.00], ["4a000000-0000-4000-8000-000000000002", 240.00, 24.00]]'::jsonb,
  'by product, revenue comes from the order lines');
select is(pg_temp.report('{"metrics": ["order_count"], "group_by": ["warehouse"]}') -> 'rows',
  '[["3a000000-0000-4000-8000-000000000001", 2], ["3a000000-0000-4000-8000-000000000002", 1]]'::jsonb,
  'orders with a line from each warehouse');
select is(pg_temp.report('{"metrics": ["revenue"], "group_by": ["payment_terms", "client"]}') -> 'rows',
  '[["net_30", "5a000000-0000-4000-8000-000000000001", 50.00], ["prepaid", "5a000000-0000-4000-8000-000000000001", 100.00],
    ["prepaid", "5a000000-0000-4000-8000-000000000002", 200.00]]'::jsonb, 'two dimensions');
select is(pg_temp.report('{"metrics": ["stock_on_hand", "stock_value", "low_stock_items"]}') -> 'totals',
  '{"stock_on_hand": 107.00, "stock_value": 1210.00, "low_stock_items": 1}'::jsonb,
  'stock: 5 + 2 + 100 units, at 30, 30 and 10; one row at or below its reorder point');
select is(pg_temp.report('{"metrics": ["stock_value"], "group_by": ["warehouse"]}') -> 'rows',
  '[["3a000000-0000-4000-8000-000000000001", 1150.00], ["3a000000-0000-4000-8000-000000000002", 60.00]]'::jsonb,
  'stock value by warehouse');
select is(pg_temp.report('{"metrics": ["refund_total"], "group_by": ["month"]}') -> 'rows',
  '[["2026-01-01", 0], ["2026-02-01", 20.00]]'::jsonb, 'refunds only (a credit is not one), by month');
select is(pg_temp.report('{"metrics": ["po_spend"]}') -> 'totals', '{"po_spend": 300.00}'::jsonb,
  'purchase orders not cancelled');
select is(pg_temp.report('{"metrics": ["campaign_delivery_rate", "campaign_open_rate"]}') -> 'totals',
  '{"campaign_delivery_rate": 0.9000, "campaign_open_rate": 0.3333}'::jsonb,
  'campaign rates over the totals (135 / 150, 45 / 135), not an average of rates');
select is(pg_temp.report('{"metrics": ["revenue", "refund_total", "po_spend"], "group_by": ["month"]}') -> 'rows',
  '[["2026-01-01", 100.00, 0, 0], ["2026-02-01", 250.00, 20.00, 300.00]]'::jsonb,
  'metrics of three sources joined by month, a month without one is 0');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"date_from": "2026-02-01", "date_to": "2026-02-28"}}') -> 'totals',
  '{"revenue": 250.00}'::jsonb, 'a date range in local dates');
select is(pg_temp.report('{"metrics": ["units_sold"], "filters": {"product": "4a000000-0000-4000-8000-000000000001"}}') -> 'totals',
  '{"units_sold": 3.00}'::jsonb, 'a filter on one product');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"payment_terms": ["net_30", "net_60"]}}') -> 'totals',
  '{"revenue": 50.00}'::jsonb, 'a filter on several values');
select is(pg_temp.report('{"metrics": ["revenue"], "group_by": ["quarter"]}') -> 'rows',
  '[["2026-01-01", 350.00]]'::jsonb, 'a quarter');
select is(jsonb_array_length(pg_temp.report('{"metrics": ["order_count"], "group_by": ["day"]}') -> 'rows'), 3,
  'a day each');

select ok(pg_temp.refusal(spec::jsonb) ? key, format('%s is refused at %s', spec, key))
from (values
  ('{"metrics": []}', 'metrics'),
  ('{"metrics": ["profit"]}', 'metrics[0]'),
  ('{"metrics": ["revenue", "revenue"]}', 'metrics[1]'),
  ('{"metrics": ["revenue"], "data_sources": ["ledger"]}', 'data_sources'),
  ('{"metrics": ["po_spend"], "data_sources": ["orders"]}', 'metrics[0]'),
  ('{"metrics": ["stock_value"], "group_by": ["month"]}', 'metrics[0]'),
  ('{"metrics": ["po_spend"], "group_by": ["product"]}', 'metrics[0]'),
  ('{"metrics": ["return_rate"], "group_by": ["product"]}', 'metrics[0]'),
  ('{"metrics": ["revenue"], "group_by": ["hour"]}', 'group_by[0]'),
  ('{"metrics": ["revenue"], "group_by": ["month", "week"]}', 'group_by[1]'),
  ('{"metrics": ["revenue"], "group_by": ["a", "b", "c", "d"]}', 'group_by'),
  ('{"metrics": ["revenue"], "filters": {"date_from": "yesterday"}}', 'filters.date_from'),
  ('{"metrics": ["revenue"], "filters": {"date_to": "2026-02-30"}}', 'filters.date_to'),
  ('{"metrics": ["revenue"], "filters": {"client": "1; drop table x"}}', 'filters.client'),
  ('{"metrics": ["revenue"], "filters": {"status": [1]}}', 'filters.status'),
  ('{"metrics": ["revenue"], "filters": {"region": "north"}}', 'filters.region'),
  ('{"metrics": ["revenue"], "filters": []}', 'filters')
) x(spec, key);
select throws_ok($$select public.report_data(tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "1b000000-0000-4000-8000-000000000001"}'))$$,
  'CEN04', 'tenant not found', 'another tenant is not found');
select throws_ok($$select public.report_data(tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "nope"}'))$$, 'CEV01', null,
  'a bad tenant id is refused');
-- Tickets: only through generate-report, once, for that spec, for that user.
select throws_ok($$select public.report_data('{"metrics": ["revenue"], "tenant_id": "1a000000-0000-4000-8000-000000000001"}')$$,
  'CEA03', 'reports run through generate-report', 'no ticket, no report: the REST API is no way around the function');
select set_config('t.spec', tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "1a000000-0000-4000-8000-000000000001"}')::text, true);
select lives_ok($$select public.report_data(current_setting('t.spec')::jsonb)$$, 'a ticket runs its report');
select throws_ok($$select public.report_data(current_setting('t.spec')::jsonb)$$, 'CEA03', null, 'once');
select set_config('t.spec', tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "1a000000-0000-4000-8000-000000000001"}')::text, true);
select throws_ok($$select public.report_data(current_setting('t.spec')::jsonb || '{"metrics": ["po_spend"]}')$$, 'CEA03', null,
  'and for the report it was issued for');
select ok((select count(*) from public.report_catalogue) >= 14, 'members read the catalogue');

-- RLS, not only the tenant filter: B's member asking for A's tenant sees nothing.
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select public.report_data(current_setting('t.spec')::jsonb)$$, 'CEA03', null,
  'nor by another user');
select throws_ok($$select public.report_data(tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "1a000000-0000-4000-8000-000000000001"}'))$$,
  'CEN04', 'tenant not found', 'B cannot report on A');
select is(public.report_data(tests.report_ticket('{"metrics": ["revenue"], "tenant_id": "1b000000-0000-4000-8000-000000000001"}')) -> 'totals',
  '{"revenue": 7777.00}'::jsonb, 'B sees its own');
select tests.act_as(null);
select throws_ok($$select public.report_data('{"metrics": ["revenue"]}')$$, '42501', null, 'anon cannot call it');
select tests.act_as_owner();
select table_privs_are('public', t, 'authenticated', array['SELECT'], format('members only read %s', t))
from unnest(array['report_sources', 'report_metrics']) t;

-- generate-report's saved definitions: narrowing, grants.
select is(private.narrow_filters('{"date_from": "2026-01-01", "date_to": "2026-03-31", "status": ["a", "b"]}',
  '{"date_from": "2026-02-01", "date_to": "2026-06-30", "status": "b", "client": "c"}'),
  '{"date_from": "2026-02-01", "date_to": "2026-03-31", "status": ["b"], "client": "c"}'::jsonb,
  'a saved report''s filters narrowed: the later start, the earlier end, the values in both, a new one added');
select is(private.narrow_filters('{"status": "a"}', '{"status": ["b"]}'), '{"status": []}'::jsonb,
  'narrowed to nothing');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"status": []}}') -> 'totals', '{"revenue": 0}'::jsonb,
  'which matches nothing') from (select tests.act_as('0a000000-0000-4000-8000-000000000001')) a;
select tests.act_as_owner();
select function_privs_are('public', 'start_report', array['jsonb'], r, privs,
  format('%s may %s start_report', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array['EXECUTE']), ('service_role', array['EXECUTE'])) v(r, privs);
select table_privs_are('public', 'custom_reports', 'anon', array[]::text[], 'anon has nothing on custom_reports');

-- The {all|any} condition language.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"where": {"any": [
    {"field": "payment_terms", "op": "eq", "value": "net_30"},
    {"field": "client", "op": "eq", "value": "5a000000-0000-4000-8000-000000000002"}]}}}') -> 'totals',
  '{"revenue": 250.00}', 'any: O2 on net 30, O3 by CA_OFF');
select is(pg_temp.report('{"metrics": ["revenue", "order_count"], "filters": {"where": {"all": [
    {"field": "status", "op": "neq", "value": "delivered"},
    {"field": "payment_terms", "op": "in", "value": ["prepaid"]}]}}}') -> 'totals',
  '{"revenue": 300.00, "order_count": 2}', 'all: not delivered and prepaid (O1, O3)');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"where": {"all": [
    {"field": "product", "op": "not_in", "value": ["4a000000-0000-4000-8000-000000000001"]},
    {"any": [{"field": "warehouse", "op": "eq", "value": "3a000000-0000-4000-8000-000000000001"}]}]}}}') -> 'totals',
  '{"revenue": 240.00}', 'a product condition takes order lines: PA2''s 40 + 200, nested any');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"where": {"all": [
    {"field": "status", "op": "eq", "value": "x''); drop table public.tenants; --"}]}}}') -> 'totals',
  '{"revenue": 0}', 'a value is a value, never SQL');
select is(pg_temp.refusal('{"metrics": ["revenue"], "filters": {"where": {"all": [
    {"field": "region", "op": "eq", "value": "x"},
    {"field": "status", "op": "like", "value": "x"},
    {"field": "status", "op": "in", "value": "x"},
    {"field": "client", "op": "eq", "value": "CA"},
    {"any": [{"any": [{"any": [{"field": "status", "op": "eq", "value": "x"}]}]}]}]}}}'),
  '{"filters.where.all[0].field": "must be one of product, client, warehouse, status, payment_terms",
    "filters.where.all[1].op": "must be one of eq, neq, in, not_in",
    "filters.where.all[2].value": "must be 1 to 100 text values",
    "filters.where.all[3].value": "must be ids (uuid)",
    "filters.where.all[4].any[0].any[0]": "nests more than 3 deep"}',
  'every problem, named by where it is');
select is(pg_temp.refusal('{"metrics": ["revenue"], "filters": {"where": {"all": [], "any": []}}}'),
  '{"filters.where": "must be {\"all\": […]} or {\"any\": […]}"}', 'all or any, not both');
select ok(pg_temp.refusal('{"metrics": ["stock_value"], "filters": {"where": {"all": [
    {"field": "status", "op": "eq", "value": "x"}]}}}') ? 'metrics[0]',
  'a condition on a dimension a metric''s sources lack is refused for that metric');
select tests.act_as_owner();
select is(private.narrow_filters('{"where": {"all": [{"field": "status", "op": "eq", "value": "a"}]}}',
  '{"where": {"any": [{"field": "status", "op": "eq", "value": "b"}]}}') -> 'where',
  '{"all": [{"all": [{"field": "status", "op": "eq", "value": "a"}]}, {"any": [{"field": "status", "op": "eq", "value": "b"}]}]}',
  'a saved where and the request''s both hold');

-- Clients and deliveries. O1 delivered, O2 failed, O3 in transit.
select tests.act_as_owner();
update public.wholesale_clients set current_balance = 40 where id = '5a000000-0000-4000-8000-000000000001';
insert into public.deliveries (tenant_id, order_id, delivery_method, status) values
  ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000001', 'pickup', 'delivered'),
  ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000002', 'pickup', 'failed'),
  ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-000000000003', 'pickup', 'in_transit');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(pg_temp.report('{"metrics": ["client_count", "credit_outstanding"], "group_by": ["status"]}') - 'labels'
  - 'time_zone' - 'row_limit' - 'truncated',
  '{"columns": [{"name": "status", "type": "text"}, {"name": "client_count", "type": "integer"},
                {"name": "credit_outstanding", "type": "money"}],
    "rows": [["active", 1, 40.00], ["inactive", 1, 0.00]], "totals": {"client_count": 2, "credit_outstanding": 40.00}}',
  'clients: counted by status, with what they owe');
select is(pg_temp.report('{"metrics": ["delivery_count", "delivery_success_rate"]}') -> 'totals',
  '{"delivery_count": 3, "delivery_success_rate": 0.5000}', 'deliveries: 3, one of two finished ones delivered');
select tests.act_as_owner();

-- Named periods: pure dates from a given day (Friday 2026-11-27), then one applied.
select is(public.report_period('last_week', '2026-11-27'),
  '{"name": "last_week", "date_from": "2026-11-16", "date_to": "2026-11-22"}', 'last week: Monday to Sunday');
select is(public.report_period('last_7_days', '2026-11-27') - 'name',
  '{"date_from": "2026-11-20", "date_to": "2026-11-26"}', 'the 7 days before today');
select is(public.report_period('last_quarter', '2026-11-27') - 'name',
  '{"date_from": "2026-07-01", "date_to": "2026-09-30"}', 'the last quarter');
select is(public.report_period('this_month', '2026-03-31') - 'name',
  '{"date_from": "2026-03-01", "date_to": "2026-03-31"}', 'this month ends today');
select is(public.report_period('last_month', '2026-03-31') - 'name',
  '{"date_from": "2026-02-01", "date_to": "2026-02-28"}', 'last month, however long');
insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount, payment_terms,
  delivery_method, created_at) values
  ('70000000-0000-4000-8000-000000000005', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001',
   'T-5', 'confirmed', 10, 'prepaid', 'pickup', now() - interval '2 days');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"period": "last_7_days"}}') -> 'totals',
  '{"revenue": 10.00}', 'a named period, in the tenant''s time zone, today');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"period": "last_7_days", "date_to": "2026-01-01"}}')
  -> 'totals', '{"revenue": 0}', 'with a date filter, both hold');
select is(pg_temp.report('{"metrics": ["revenue"], "filters": {"period": "today"}}') -> 'period' ->> 'name',
  'today', 'the answer says the period it applied');
select ok(pg_temp.refusal('{"metrics": ["revenue"], "filters": {"period": "fortnight"}}') ? 'filters.period',
  'an unknown period is named');
select ok(pg_temp.refusal('{"metrics": ["stock_value"], "filters": {"period": "today"}}') ? 'metrics[0]',
  'a period needs a metric with time');
select tests.act_as_owner();

select * from finish();
rollback;
