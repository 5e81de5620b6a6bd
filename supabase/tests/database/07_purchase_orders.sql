-- public.create_purchase_order and public.attach_purchase_order_pdf.
begin;
select no_plan();
select tests.make_fixture();

select tests.act_as(null);
select throws_ok($$select public.create_purchase_order(tests.po_payload())$$, '42501', null,
  'anon cannot call create_purchase_order');
select throws_ok($$select public.attach_purchase_order_pdf(gen_random_uuid())$$, '42501', null,
  'anon cannot call attach_purchase_order_pdf');
select tests.act_as_owner();
select throws_ok($$select public.create_purchase_order(tests.po_payload())$$, 'CEA01', null,
  'without a signed-in user it raises CEA01');

select tests.act_as('0a000000-0000-4000-8000-000000000001');

-- Validation.
select throws_ok($$select public.create_purchase_order(tests.po_payload(quantity => 0))$$, 'CEV01', null,
  'quantity 0 raises CEV01');
select throws_ok($$select public.create_purchase_order(tests.po_payload(unit_price => 0.001))$$, 'CEV01', null,
  'three decimal places raise CEV01');
select throws_ok($$select public.create_purchase_order(tests.po_payload() || '{"expected_delivery_date":"2001-01-01"}')$$,
  'CEV01', null, 'a delivery date in the past raises CEV01');
select throws_ok($$select public.create_purchase_order(tests.po_payload() || '{"po_number":"PO-1"}')$$,
  'CEV01', null, 'an unknown field raises CEV01');
select tests.act_as_owner();
select is(
  private.purchase_order_payload_errors('{"supplier_id":"x","expected_delivery_date":"2026-02-30","items":[{"product_id":"4a000000-0000-4000-8000-000000000001","quantity":1,"unit_price":1},{"product_id":"4a000000-0000-4000-8000-000000000001","quantity":2,"unit_price":1}]}'),
  '{"supplier_id":"must be a UUID string","expected_delivery_date":"must be a date, YYYY-MM-DD","items[1].product_id":"repeats items[0]; combine them into one line"}'::jsonb,
  'errors are keyed by field path; an impossible date and a repeated product are named');
select tests.act_as('0a000000-0000-4000-8000-000000000001');

-- Tenancy.
select throws_ok($$select public.create_purchase_order(tests.po_payload(supplier => '6b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001'))$$,
  'CEN04', 'supplier not found', 'another tenant''s supplier is not found');
select throws_ok($$select public.create_purchase_order(tests.po_payload(product => '4b000000-0000-4000-8000-000000000001'))$$,
  'CEN04', 'product not found', 'another tenant''s product is not found');
select tests.act_as_owner();
select is(tests.count_of_tenant('purchase_orders', '1a000000-0000-4000-8000-000000000001'), 0::bigint,
  'refused requests created nothing');

-- A PO: numbered per tenant, totals in SQL, the document for the PDF.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table po on commit drop as
select public.create_purchase_order(
  tests.po_payload() || jsonb_build_object('items', jsonb_build_array(
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 3, 'unit_price', 0.33),
    jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 2.5, 'unit_price', 4))),
  'po-key-1') as r;
select tests.act_as_owner();
select matches((select r ->> 'po_number' from po), '^PO-\d{4}-000001$', 'the first PO of a tenant is PO-YYYY-000001');
select is((select (r ->> 'total_amount')::numeric from po), 10.99, 'the total is computed in SQL: 3 × 0.33 + 2.5 × 4');
select is((select total_amount from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from po)), 10.99,
  'the stored total matches');
select is((select array_agg(total_price order by line_number) from public.purchase_order_items
           where po_id = (select (r ->> 'po_id')::uuid from po)), array[0.99, 10.00]::numeric[],
  'each line total is quantity × unit price');
select is((select r -> 'document' ->> 'business_name' from po), 'Tenant A', 'the document names the tenant''s business');
select is((select r -> 'document' -> 'items' -> 0 ->> 'sku' from po), 'PA1', 'the document carries SKUs');
select is((select r ->> 'pdf_path' from po),
  '1a000000-0000-4000-8000-000000000001/' || (select r ->> 'po_number' from po) || '.pdf',
  'the PDF lives under the tenant''s prefix');
select is((select status from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from po)), 'draft',
  'a new PO is a draft');
select is((select payment_terms from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from po)), 'net_30',
  'the supplier''s payment terms are copied');
select is((select count(*) from public.audit_log where action = 'purchase_order.created' and tenant_id = '1a000000-0000-4000-8000-000000000001'), 1::bigint, 'one audit row');

-- Idempotency: the same key and body replays; another body is refused.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(
  (select public.create_purchase_order(
     tests.po_payload() || jsonb_build_object('items', jsonb_build_array(
       jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 3, 'unit_price', 0.33),
       jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 2.5, 'unit_price', 4))),
     'po-key-1') ->> 'po_id'),
  (select r ->> 'po_id' from po), 'a replay returns the first PO');
select throws_ok($$select public.create_purchase_order(tests.po_payload(), 'po-key-1')$$, 'CEI22', null,
  'the key with another body raises CEI22');
select tests.act_as_owner();
select is(tests.count_of_tenant('purchase_orders', '1a000000-0000-4000-8000-000000000001'), 1::bigint,
  'the replay created no second PO');

-- Attaching the PDF queues the supplier's email once. The caller passes no
-- link: a URL argument (the old phishing route) no longer exists, and the
-- PDF must be in Storage first.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok(format('select public.attach_purchase_order_pdf(%L, %L)', (select r ->> 'po_id' from po),
    'https://attacker.example/storage/v1/object/sign/purchase-orders/' || (select r ->> 'pdf_path' from po) || '?token=x'),
  '42883', null, 'no caller-supplied URL is accepted');
select throws_ok(format('select public.attach_purchase_order_pdf(%L)', (select r ->> 'po_id' from po)),
  'CEV01', null, 'the PDF must be stored before the PO is attached');
select tests.act_as_owner();
insert into storage.objects (bucket_id, name, owner)
select 'purchase-orders', r ->> 'pdf_path', '0a000000-0000-4000-8000-000000000001' from po;
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok(format('select public.attach_purchase_order_pdf(%L)', (select r ->> 'po_id' from po)),
  'CEN04', null, 'another tenant cannot attach a PDF to A''s PO');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(public.attach_purchase_order_pdf((select (r ->> 'po_id')::uuid from po)),
  '{"queued": 1}'::jsonb, 'the first attach queues the email');
select is(public.attach_purchase_order_pdf((select (r ->> 'po_id')::uuid from po)),
  '{"queued": 0}'::jsonb, 'a second attach queues nothing');
select is((public.create_purchase_order(
     tests.po_payload() || jsonb_build_object('items', jsonb_build_array(
       jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000001', 'quantity', 3, 'unit_price', 0.33),
       jsonb_build_object('product_id', '4a000000-0000-4000-8000-000000000002', 'quantity', 2.5, 'unit_price', 4))),
     'po-key-1') ->> 'pdf_attached')::boolean, true,
  'a replay after the attach says the PDF is attached');
select tests.act_as_owner();
select is((select count(*) from public.notification_outbox where template = 'purchase_order' and tenant_id = '1a000000-0000-4000-8000-000000000001'), 1::bigint,
  'exactly one email to the supplier');
select is((select recipient || ' ' || (payload -> 'signed_links' -> 'pdf_url')::text from public.notification_outbox where template = 'purchase_order' and tenant_id = '1a000000-0000-4000-8000-000000000001'),
  'sa@supplier.test ' || jsonb_build_object('bucket', 'purchase-orders', 'path', (select r ->> 'pdf_path' from po), 'expires_in', 2592000)::text,
  'it goes to the supplier, naming the stored PDF (the dispatcher signs the link when it sends)');
select ok((select not (payload ? 'pdf_url') from public.notification_outbox where template = 'purchase_order' and tenant_id = '1a000000-0000-4000-8000-000000000001'),
  'no URL is stored in the outbox');
select is((select status from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from po)), 'sent',
  'an attached PO is sent');

-- A supplier without email: the PO is attached, nothing is queued.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table nomail on commit drop as
select public.create_purchase_order(tests.po_payload(supplier => '6a000000-0000-4000-8000-000000000002')) as r;
select tests.act_as_owner();
insert into storage.objects (bucket_id, name, owner)
select 'purchase-orders', r ->> 'pdf_path', '0a000000-0000-4000-8000-000000000001' from nomail;
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(public.attach_purchase_order_pdf((select (r ->> 'po_id')::uuid from nomail)),
  '{"queued": 0}'::jsonb, 'no email address, no email');
-- A cancelled PO is not sent.
create temp table cancelled on commit drop as
select public.create_purchase_order(tests.po_payload()) as r;
update public.purchase_orders set status = 'cancelled' where id = (select (r ->> 'po_id')::uuid from cancelled);
select tests.act_as_owner();
insert into storage.objects (bucket_id, name, owner)
select 'purchase-orders', r ->> 'pdf_path', '0a000000-0000-4000-8000-000000000001' from cancelled;
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok(format('select public.attach_purchase_order_pdf(%L)', (select r ->> 'po_id' from cancelled)),
  'CET01', null, 'a cancelled PO is not attached, and its supplier gets no email');
select tests.act_as_owner();
delete from public.purchase_orders where id = (select (r ->> 'po_id')::uuid from cancelled);
select is((select array_agg(po_number order by po_number) from public.purchase_orders where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  array[(select r ->> 'po_number' from po), regexp_replace((select r ->> 'po_number' from po), '1$', '2')],
  'numbers are consecutive per tenant');

-- Members read their POs but cannot write them directly.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$insert into public.purchase_orders (tenant_id, supplier_id, po_number, total_amount, expected_delivery_date, pdf_path)
  values ('1a000000-0000-4000-8000-000000000001', '6a000000-0000-4000-8000-000000000001', 'PO-X', 1, current_date, 'x')$$,
  '42501', null, 'members cannot insert purchase orders directly');
select throws_ok($$update public.purchase_orders set total_amount = 0$$, '42501', null,
  'members cannot change a PO''s total');
select lives_ok($$update public.purchase_orders set status = 'confirmed' where status = 'sent'$$,
  'members move a PO''s status on');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*) from public.purchase_orders), 0::bigint, 'B sees none of A''s POs');


-- Grants on purchase orders (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('suppliers', array['SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  ('purchase_orders', array['SELECT']),
  ('purchase_order_items', array['SELECT'])) v(t, privs);
select column_privs_are('public', 'purchase_orders', 'status', 'authenticated', array['SELECT', 'UPDATE'],
  'members may update a PO''s status');
select column_privs_are('public', 'purchase_orders', 'total_amount', 'authenticated', array['SELECT'],
  'members may not update a PO''s total');

select function_privs_are('public', 'create_purchase_order', array['jsonb', 'text'], 'anon', array[]::text[],
  'anon cannot call create_purchase_order');
select function_privs_are('public', 'attach_purchase_order_pdf', array['uuid'], 'anon', array[]::text[],
  'anon cannot call attach_purchase_order_pdf');

select * from finish();
rollback;
