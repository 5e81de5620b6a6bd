-- Audiences: the filter language and enqueue_campaign.
begin;
select no_plan();
select tests.make_fixture();

-- Tenant A's clients (besides the fixture's CA and CA_OFF).
insert into public.wholesale_clients (id, tenant_id, name, email, phone, city, tags, status) values
  ('5a000000-0000-4000-8000-0000000000a1', '1a000000-0000-4000-8000-000000000001', 'Big', 'big@c.test', '+15550000001', 'Lyon', '{vip,wine}', 'active'),
  ('5a000000-0000-4000-8000-0000000000a2', '1a000000-0000-4000-8000-000000000001', 'New', 'new@c.test', null, 'Paris', '{}', 'active'),
  ('5a000000-0000-4000-8000-0000000000a3', '1a000000-0000-4000-8000-000000000001', 'NoMail', null, '+15550000003', 'LYON', '{vip}', 'active'),
  ('5a000000-0000-4000-8000-0000000000a4', '1a000000-0000-4000-8000-000000000001', 'Left', 'left@c.test', null, null, '{}', 'active'),
  ('5a000000-0000-4000-8000-0000000000a5', '1a000000-0000-4000-8000-000000000001', 'Blank', '  ', null, null, '{}', 'active');
insert into public.contact_consent (tenant_id, client_id, channel, status, source) values
  ('1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-0000000000a4', 'email', 'unsubscribed', 'one_click');
insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount, payment_terms, delivery_method, created_at) values
  ('7a000000-0000-4000-8000-0000000000a1', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-0000000000a1', 'T-1', 'delivered', 1200, 'prepaid', 'pickup', '2026-10-01'),
  ('7a000000-0000-4000-8000-0000000000a2', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-0000000000a1', 'T-2', 'confirmed', 300, 'prepaid', 'pickup', '2026-11-02'),
  ('7a000000-0000-4000-8000-0000000000a3', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-0000000000a2', 'T-3', 'cancelled', 5000, 'prepaid', 'pickup', '2026-11-03');
insert into public.wholesale_order_items (tenant_id, order_id, line_number, product_id, quantity, unit_price, total_price) values
  ('1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-0000000000a1', 1, '4a000000-0000-4000-8000-000000000001', 1, 1200, 1200),
  ('1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-0000000000a3', 1, '4a000000-0000-4000-8000-000000000002', 1, 5000, 5000);

create function pg_temp.campaign(audience jsonb, channel text default 'email') returns uuid
language sql as $$
  insert into public.marketing_campaigns (tenant_id, name, type, channel, audience)
  values ('1a000000-0000-4000-8000-000000000001', 'T', channel, channel, audience) returning id
$$;
create function pg_temp.who(filters jsonb, channel text default 'email') returns text[]
language plpgsql as $$
declare
  cid uuid := pg_temp.campaign(jsonb_build_object('type', 'custom', 'filters', filters), channel);
begin
  perform public.enqueue_campaign(cid);
  return (select coalesce(array_agg(w.name || case when r.status = 'suppressed' then '(s)' else '' end
                                    order by w.name), '{}')
          from public.campaign_recipients r join public.wholesale_clients w on w.id = r.client_id
          where r.campaign_id = cid);
end
$$;

select function_privs_are('public', 'enqueue_campaign', array['uuid'], r, privs,
  format('%s may %s enqueue_campaign', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);

-- all: the active clients with an address; the unsubscribed one is queued as suppressed.
select is(
  (select public.enqueue_campaign(pg_temp.campaign('{"type": "all"}')) - 'recipient_count'),
  '{"added": 4, "no_address": 2, "suppressed": 1}'::jsonb,
  'all: CA, Big, New and Left (suppressed) queued; NoMail and Blank have no address');
select is(pg_temp.who('{"all": [{"field": "status", "op": "eq", "value": "active"}]}'),
  array['Big', 'CA', 'Left(s)', 'New'], 'the same through the filter language');
select is(pg_temp.who('{"all": [{"field": "status", "op": "eq", "value": "active"}]}', 'sms'),
  array['Big', 'CA', 'NoMail'], 'SMS goes to phones, and consent is per channel');

-- Each field and operator.
select is(pg_temp.who('{"all": [{"field": "city", "op": "eq", "value": "lyon"}]}', 'sms'), array['Big', 'NoMail'], 'city ignores case');
select is(pg_temp.who('{"all": [{"field": "city", "op": "in", "value": ["Paris", "Nowhere"]}]}'), array['New'], 'city in');
select is(pg_temp.who('{"all": [{"field": "tags", "op": "contains", "value": "vip"}]}', 'sms'), array['Big', 'NoMail'], 'tags contains');
select is(pg_temp.who('{"all": [{"field": "tags", "op": "contains_any", "value": ["wine", "x"]}]}'), array['Big'], 'tags contains_any');
select is(pg_temp.who('{"all": [{"field": "total_spent", "op": "gte", "value": 1500}]}'), array['Big'], 'total spent (cancelled orders count for nothing)');
select is(pg_temp.who('{"all": [{"field": "order_count", "op": "eq", "value": 0}, {"field": "status", "op": "eq", "value": "active"}]}'),
  array['CA', 'Left(s)', 'New'], 'order count, and all');
select is(pg_temp.who('{"all": [{"field": "last_order_date", "op": "after", "value": "2026-10-15"}]}'), array['Big'], 'last order date');
select is(pg_temp.who('{"all": [{"field": "product", "op": "bought", "value": "4a000000-0000-4000-8000-000000000001"}]}'), array['Big'], 'a product bought');
select is(pg_temp.who('{"all": [{"field": "product", "op": "bought", "value": "4a000000-0000-4000-8000-000000000002"}]}'), '{}'::text[], 'not through a cancelled order');
select is(pg_temp.who('{"any": [{"field": "city", "op": "eq", "value": "Paris"}, {"all": [{"field": "tags", "op": "contains", "value": "wine"}, {"field": "total_spent", "op": "gt", "value": 10}]}]}'),
  array['Big', 'New'], 'any, with a nested all');

-- Rejections name the condition.
select throws_ok($$select pg_temp.who('{"all": [{"field": "password", "op": "eq", "value": "x"}]}')$$, 'CE400', null, 'an unknown field is refused');
select throws_ok($$select private.audience_predicate('{"all": [{"field": "city", "op": "like", "value": "x%"}]}', 'audience.filters', '[]', 1)$$,
  'CE400', 'the request has invalid fields', 'an unknown operator is refused');
select throws_ok($$select private.audience_predicate('{"all": [{"field": "order_count", "op": "gt", "value": 1.5}]}', 'audience.filters', '[]', 1)$$,
  'CE400', null, 'a count is a whole number');
select throws_ok($$select private.audience_predicate('{"all": [{"field": "last_order_date", "op": "after", "value": "2026-02-30"}]}', 'audience.filters', '[]', 1)$$,
  'CE400', null, 'a date is a real date');
select throws_ok($$select private.audience_predicate('{"all": [], "any": []}', 'audience.filters', '[]', 1)$$,
  'CE400', null, 'all or any, not both');
select throws_ok($$select private.audience_predicate('{"all": [{"all": [{"all": [{"all": [{"field": "city", "op": "eq", "value": "x"}]}]}]}]}', 'audience.filters', '[]', 1)$$,
  'CE400', null, 'at most 3 deep');
-- A value is never SQL: quotes and semicolons are only compared.
select is(pg_temp.who($j${"all": [{"field": "city", "op": "eq", "value": "x'); drop table public.tenants; --"}]}$j$), '{}'::text[],
  'a value with SQL in it matches nothing and runs nothing');
select has_table('public', 'tenants', 'and the table is still there');
select ok((select a.predicate from private.audience_predicate('{"all": [{"field": "city", "op": "eq", "value": "Lyon"}]}', 'p', '[]', 1) a)
  !~ 'Lyon', 'the compiled predicate holds no value from the filter');

-- Segments: the tenant's own only; enqueueing twice adds nothing.
insert into public.customer_segments (id, tenant_id, name, filter) values
  ('8a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'VIP', '{"all": [{"field": "tags", "op": "contains", "value": "vip"}]}'),
  ('8b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'Theirs', '{"all": [{"field": "status", "op": "eq", "value": "active"}]}');
select is(
  (select public.enqueue_campaign(id) ->> 'recipient_count' from (select pg_temp.campaign('{"type": "segment", "segment_id": "8a000000-0000-4000-8000-000000000001"}') as id) c),
  '1', 'a saved segment');
select throws_ok($$select public.enqueue_campaign(pg_temp.campaign('{"type": "segment", "segment_id": "8b000000-0000-4000-8000-000000000001"}'))$$,
  'CE404', 'segment not found', 'another tenant''s segment is 404');
create temporary table twice as select pg_temp.campaign('{"type": "all"}') as id;
select is((select public.enqueue_campaign(id) ->> 'added' from twice), '4', 'the first enqueue adds');
select is((select public.enqueue_campaign(id) - 'no_address' - 'suppressed' from twice),
  '{"added": 0, "recipient_count": 3}'::jsonb, 'the second adds nothing; 3 will be sent to');
select throws_ok($$select public.enqueue_campaign(gen_random_uuid())$$, 'CE404', 'campaign not found', 'an unknown campaign is 404');

select * from finish();
rollback;
