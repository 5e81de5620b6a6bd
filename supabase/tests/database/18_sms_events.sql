-- Twilio's status callbacks and keywords on campaign SMS.
begin;
select no_plan();
select tests.make_fixture();

insert into public.marketing_campaigns (id, tenant_id, name, type, channel, status)
values ('c0000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'S', 'sms', 'sms', 'sending');
insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
values ('1a000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000002',
        '5a000000-0000-4000-8000-000000000001', 'sms', '+15555550001', 'sent', 'SM1');
create function pg_temp.st(sid text, status text, code text default null) returns jsonb language sql as $$
  select public.record_sms_status(sid, status, code, '{}'::jsonb) $$;

select function_privs_are('public', f, args, r, privs,
  format('%s may %s %s', r, coalesce(array_to_string(privs, ''), 'not call'), f))
from (values ('record_sms_status', array['text', 'text', 'text', 'jsonb']), ('record_sms_keyword', array['text', 'text'])) fs(f, args),
     (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);

select is(pg_temp.st('SM1', 'sent') ->> 'status', 'sent', 'sent is recorded only');
select is(pg_temp.st('SM1', 'undelivered', '21610') ->> 'status', 'failed', 'undelivered fails the recipient');
select is(pg_temp.st('SM1', 'undelivered', '21610') ->> 'duplicate', 'true', 'the same callback again counts once');
select is(pg_temp.st('SM1', 'delivered') ->> 'status', 'failed', 'a late delivery does not undo a failure');
select is((select failed_count || '/' || delivered_count from public.marketing_campaigns
           where id = 'c0000000-0000-4000-8000-000000000002'), '1/0', 'failed once, delivered never');
select is((select status || '/' || source from public.contact_consent
           where client_id = '5a000000-0000-4000-8000-000000000001' and channel = 'sms'),
  'unsubscribed/sms_stop', 'error 21610 unsubscribes the number from SMS');
select is(pg_temp.st('SM_other', 'delivered'), '{"matched": false, "duplicate": false}'::jsonb, 'not a campaign SMS');

-- Keywords apply to every client with the number, in every tenant.
update public.wholesale_clients set phone = '+15555550009'
where id in ('5a000000-0000-4000-8000-000000000002', '5b000000-0000-4000-8000-000000000001');
select is(public.record_sms_keyword(' +15555550009 ', ' stop '), '{"keyword": "stop", "clients": 2}'::jsonb,
  'STOP, in any case, for both clients with the number');
select is((select array_agg(status order by client_id) from public.contact_consent
           where client_id in ('5a000000-0000-4000-8000-000000000002', '5b000000-0000-4000-8000-000000000001')),
  array['unsubscribed', 'unsubscribed'], 'both unsubscribed from SMS');
select is(public.record_sms_keyword('+15555550009', 'START') ->> 'clients', '2', 'START subscribes them again');
select is(public.record_sms_keyword('+15555550009', 'HELP'), '{"keyword": "help", "clients": 0}'::jsonb, 'HELP changes nothing');
select is(public.record_sms_keyword('+15555550009', 'thanks!'), '{"keyword": null, "clients": 0}'::jsonb, 'any other text changes nothing');
update public.contact_consent set status = 'complained' where client_id = '5a000000-0000-4000-8000-000000000002';
select is(public.record_sms_keyword('+15555550009', 'start') ->> 'clients', '1', 'START does not undo a complaint');

select * from finish();
rollback;
