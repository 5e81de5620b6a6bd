-- Consent per client and channel, and record_unsubscribe.
begin;
select no_plan();
select tests.make_fixture();

select has_pk('public', 'contact_consent', 'consent is keyed by client and channel');
select table_privs_are('public', 'contact_consent', 'authenticated', array['SELECT'],
  'members read consent and write it only through the RPCs');
select function_privs_are('public', 'record_unsubscribe', array['uuid', 'text', 'text'], r, privs,
  format('%s may %s record_unsubscribe', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);

-- A's client unsubscribes from email; once, then again. (Rows are scoped to
-- tenant A, so rows other tests left behind do not count.)
select tests.act_as_owner();
create temporary view a_consent as
  select k.* from public.contact_consent k
  where k.tenant_id = '1a000000-0000-4000-8000-000000000001';
grant select on a_consent to authenticated;
select ok((public.record_unsubscribe(c.id, 'email', 'one_click') ->> 'already')::boolean = false,
  'the first unsubscribe records it')
from public.wholesale_clients c where c.tenant_id = '1a000000-0000-4000-8000-000000000001' limit 1;
select is(
  (select jsonb_build_object('status', k.status, 'source', k.source, 'tenant', k.tenant_id)
   from public.contact_consent k join public.wholesale_clients c on c.id = k.client_id
   where c.tenant_id = '1a000000-0000-4000-8000-000000000001' and k.channel = 'email'),
  jsonb_build_object('status', 'unsubscribed', 'source', 'one_click', 'tenant', '1a000000-0000-4000-8000-000000000001'),
  'stored as unsubscribed, with its source, under the client''s tenant');
update public.contact_consent set changed_at = '2026-01-01' where channel = 'email' and tenant_id = '1a000000-0000-4000-8000-000000000001';
select ok((public.record_unsubscribe(c.id, 'email', 'unsubscribe_link') ->> 'already')::boolean,
  'a second unsubscribe says it was already done')
from public.wholesale_clients c where c.tenant_id = '1a000000-0000-4000-8000-000000000001' limit 1;
select is((select changed_at from a_consent where channel = 'email'), '2026-01-01'::timestamptz,
  'and keeps the first time and source');
select is((select count(*) from a_consent where channel = 'sms'), 0::bigint,
  'email and SMS are separate');
-- A bounced address stays bounced: an unsubscribe does not rewrite it.
update public.contact_consent set status = 'bounced' where channel = 'email' and tenant_id = '1a000000-0000-4000-8000-000000000001';
select is((public.record_unsubscribe(c.id, 'email', 'one_click') ->> 'status'), 'bounced', 'bounced stays bounced')
from public.wholesale_clients c where c.tenant_id = '1a000000-0000-4000-8000-000000000001' limit 1;
-- A subscribed client can leave.
update public.contact_consent set status = 'subscribed' where channel = 'email' and tenant_id = '1a000000-0000-4000-8000-000000000001';
select is((public.record_unsubscribe(c.id, 'email', 'one_click') ->> 'status'), 'unsubscribed', 'subscribed → unsubscribed')
from public.wholesale_clients c where c.tenant_id = '1a000000-0000-4000-8000-000000000001' limit 1;

select throws_ok($$select public.record_unsubscribe(gen_random_uuid(), 'email', 'one_click')$$,
  'CE404', 'client not found', 'an unknown client is 404');
select throws_ok($$select public.record_unsubscribe(id, 'slack', 'one_click') from public.wholesale_clients limit 1$$,
  'CE400', 'the request has invalid fields', 'only email and SMS');

-- Tenants see only their own consent, and cannot write it.
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*) from public.contact_consent), 0::bigint, 'B sees none of A''s consent');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((select count(*) from public.contact_consent), 1::bigint, 'A sees its own');
select throws_ok($$update public.contact_consent set status = 'subscribed'$$, '42501', null,
  'members cannot change consent directly');

select * from finish();
rollback;
