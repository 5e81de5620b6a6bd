-- Resend's events on a campaign's emails: once each, in order of strength.
begin;
select no_plan();
select tests.make_fixture();

insert into public.marketing_campaigns (id, tenant_id, name, type, channel, status)
values ('c0000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'C', 'email', 'email', 'sending');
insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
values ('1a000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001',
        '5a000000-0000-4000-8000-000000000001', 'email', 'ca@client.test', 'sent', 'em_1');
create function pg_temp.ev(event_id text, type text, message_id text default 'em_1') returns jsonb
language sql as $$ select public.record_email_event('resend', event_id, type, message_id, '{}'::jsonb) $$;
create function pg_temp.counts() returns jsonb language sql as $$
  select jsonb_build_object('delivered', delivered_count, 'bounced', bounced_count, 'opened', opened_count,
    'clicked', clicked_count, 'unsubscribed', unsubscribed_count)
  from public.marketing_campaigns where id = 'c0000000-0000-4000-8000-000000000001' $$;

select function_privs_are('public', 'record_email_event', array['text', 'text', 'text', 'text', 'jsonb'], r, privs,
  format('%s may %s record_email_event', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);

select is(pg_temp.ev('w1', 'email.delivered') ->> 'status', 'delivered', 'delivered');
select is(pg_temp.ev('w1', 'email.delivered') ->> 'duplicate', 'true', 'the same webhook again is a duplicate');
select is(pg_temp.ev('w2', 'email.opened') ->> 'status', 'delivered', 'an open leaves the status');
select is(pg_temp.ev('w3', 'email.opened') ->> 'duplicate', 'false', 'a second open is recorded');
select is(pg_temp.ev('w4', 'email.clicked') ->> 'matched', 'true', 'a click');
select is(pg_temp.counts(), '{"delivered": 1, "bounced": 0, "opened": 1, "clicked": 1, "unsubscribed": 0}'::jsonb,
  'counted once each, opens and clicks per recipient');
select is(pg_temp.ev('w5', 'email.complained') ->> 'status', 'complained', 'a complaint');
select is(pg_temp.ev('w6', 'email.bounced') ->> 'status', 'complained', 'a bounce after a complaint leaves the complaint');
select is(pg_temp.ev('w7', 'email.delivered') ->> 'status', 'complained', 'and so does a late delivery');
select is(pg_temp.counts(), '{"delivered": 1, "bounced": 0, "opened": 1, "clicked": 1, "unsubscribed": 1}'::jsonb,
  'a complaint counts as leaving the list');
select is((select status || '/' || source from public.contact_consent
           where client_id = '5a000000-0000-4000-8000-000000000001' and channel = 'email'),
  'complained/provider_webhook', 'and the address is suppressed for email');
select is((select count(*) from public.campaign_events where campaign_id = 'c0000000-0000-4000-8000-000000000001'),
  7::bigint, 'every distinct event is kept');
select is(pg_temp.ev('w8', 'email.delivered', 'em_transactional'), '{"matched": false, "duplicate": false}'::jsonb,
  'an email no campaign sent is not recorded');

-- A bounce suppresses the address.
select throws_ok($$insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address)
  values ('1b000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001',
          '5b000000-0000-4000-8000-000000000001', 'email', 'x@y.test')$$, '23503', null,
  'a recipient belongs to its campaign''s tenant');
insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
select '1a000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', id, 'email', 'x@client.test', 'sent', 'em_3'
from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000002';
select is(pg_temp.ev('w9', 'email.bounced', 'em_3') ->> 'status', 'bounced', 'a bounce');
select is((select status from public.contact_consent where client_id = '5a000000-0000-4000-8000-000000000002'),
  'bounced', 'suppresses the address');

select * from finish();
rollback;
