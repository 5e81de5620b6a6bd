-- Sending campaigns: send_campaign, claiming batches (rate, fairness,
-- transactional priority, quiet hours, retries), recording outcomes.
begin;
select no_plan();
select tests.make_fixture();

-- Only the service role drives delivery; members start campaigns through send_campaign.
select function_privs_are('public', f, args, r, privs, format('%s may %s %s', r, coalesce(array_to_string(privs, ''), 'not call'), f))
from (values
  ('claim_campaign_batches', array['text', 'double precision', 'integer', 'integer', 'integer', 'uuid']),
  ('record_campaign_outcomes', array['jsonb', 'double precision']),
  ('start_due_campaigns', array[]::text[])) fn(f, args)
cross join (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);
select function_privs_are('public', 'send_campaign', array['jsonb'], r, privs,
  format('%s may %s send_campaign', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array['EXECUTE']), ('service_role', array['EXECUTE'])) v(r, privs);

-- 250 more clients for A, 50 for B, all with email and phone.
insert into public.wholesale_clients (tenant_id, name, email, phone)
select '1a000000-0000-4000-8000-000000000001', 'A' || g, 'a' || g || '@c.test', '+1555100' || lpad(g::text, 4, '0')
from generate_series(1, 250) g;
insert into public.wholesale_clients (tenant_id, name, email, phone)
select '1b000000-0000-4000-8000-000000000001', 'B' || g, 'b' || g || '@c.test', '+1555200' || lpad(g::text, 4, '0')
from generate_series(1, 50) g;

create function pg_temp.payload(id uuid, tenant uuid, channel text default 'email', schedule text default null)
returns jsonb language sql as $$
  select jsonb_build_object('campaign_id', id, 'tenant_id', tenant, 'type', channel, 'name', 'Spring',
    'audience', '{"type": "all"}'::jsonb,
    'content', '{"body": "b", "rendered": {"subject": "s", "html": "<p>b</p>", "text": "b"}}'::jsonb,
    'schedule', schedule)
$$;

-- send_campaign as A's member: a new id starts the campaign and queues its audience.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is(
  public.send_campaign(pg_temp.payload('c1000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001'))
    - 'scheduled_at',
  '{"campaign_id": "c1000000-0000-4000-8000-000000000001", "status": "sending", "recipient_count": 251,
    "sent_count": 0, "failed_count": 0, "suppressed": 0, "no_address": 0, "replayed": false}'::jsonb,
  'a new campaign starts: CA and the 250 queued');
select is(
  (public.send_campaign(pg_temp.payload('c1000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001'))
    ->> 'replayed')::boolean, true, 'the same id again is answered with its state');
select throws_ok(
  $$update public.marketing_campaigns set name = 'x' where id = 'c1000000-0000-4000-8000-000000000001'$$,
  'CE409', 'only a draft campaign can be changed or removed', 'a member cannot change a campaign that is sending');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok(
  $$select public.send_campaign(pg_temp.payload('c1000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001'))$$,
  'CEN04', 'campaign not found', 'another tenant''s campaign id is 404');
select throws_ok(
  $$select public.send_campaign(pg_temp.payload('c1000000-0000-4000-8000-000000000009', '1a000000-0000-4000-8000-000000000001'))$$,
  'CEA03', null, 'a tenant the user is not in is refused');
select public.send_campaign(pg_temp.payload('c2000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001'));
select public.send_campaign(pg_temp.payload('c2000000-0000-4000-8000-000000000002', '1b000000-0000-4000-8000-000000000001',
  'email', (now() + interval '1 hour')::text));
select tests.act_as_owner();

select is((select count(*)::int from public.campaign_recipients where campaign_id = 'c1000000-0000-4000-8000-000000000001'),
  251, 'the repeat queued nothing more');
select is((select status from public.marketing_campaigns where id = 'c2000000-0000-4000-8000-000000000002'),
  'scheduled', 'a future schedule waits');
select is((select count(*)::int from public.campaign_recipients where campaign_id = 'c2000000-0000-4000-8000-000000000002'),
  0, 'and queues nobody yet');
select is(public.start_due_campaigns(), 0, 'nothing is due yet');
update public.marketing_campaigns set scheduled_at = now() - interval '1 second'
where id = 'c2000000-0000-4000-8000-000000000002';
select is(public.start_due_campaigns(), 1, 'once due, it starts');
select is((select status || ':' || recipient_count from public.marketing_campaigns where id = 'c2000000-0000-4000-8000-000000000002'),
  'sending:51', 'with its audience queued');
-- Only one B campaign for the fairness checks below.
update public.marketing_campaigns set status = 'cancelled' where id = 'c2000000-0000-4000-8000-000000000002';

-- Fairness: A has 251 due, B 51; the tenants take turns.
create function pg_temp.tenants_of(claimed jsonb) returns text[] language sql as $$
  select array_agg(left(b ->> 'tenant_id', 2) order by n) from jsonb_array_elements(claimed -> 'batches') with ordinality x(b, n)
$$;
create temp table claims (n serial, claimed jsonb);
insert into claims (claimed) select public.claim_campaign_batches('email', 1000, 3, 100, 60);
select is(pg_temp.tenants_of(claimed), array['1a', '1b', '1a'], 'one batch each, then A again')
from claims where n = 1;
insert into claims (claimed) select public.claim_campaign_batches('email', 1000, 2, 100, 60);
select is(pg_temp.tenants_of(claimed), array['1a'], 'B has nothing left; A''s last 51 go')
from claims where n = 2;
select is((select jsonb_array_length(b -> 'recipients') from claims, jsonb_array_elements(claimed -> 'batches') b
           where n = 1 and b ->> 'tenant_id' like '1b%'), 51, 'a batch holds up to 100: B''s 51 in one');
select ok((select (claimed -> 'campaigns') ? 'c1000000-0000-4000-8000-000000000001' from claims where n = 1),
  'the batches come with their campaign''s content');
select is((select b #>> '{recipients,0,merge,business,name}' from claims, jsonb_array_elements(claimed -> 'batches') b
           where n = 1 limit 1), 'Tenant A', 'merge values are frozen at the claim');

-- Recording: sent rows count, a transient failure keeps the batch for a retry.
create function pg_temp.batch(k int, i int) returns jsonb language sql as $$
  select claimed -> 'batches' -> i from claims where n = k
$$;
-- Resend's webhook can be faster than the sender's report: the event waits.
select is(public.record_email_event('resend', 'msg_early', 'email.delivered',
    'em_' || (pg_temp.batch(1, 1) #>> '{recipients,0,id}'), '{}') ->> 'matched', 'false',
  'an event before the send is recorded matches nothing yet');
select is(public.record_campaign_outcomes((
  select jsonb_agg(jsonb_build_object('id', r -> 'id', 'provider_message_id', 'em_' || (r ->> 'id')))
  from jsonb_array_elements(pg_temp.batch(1, 1) -> 'recipients') r)),
  '{"sent": 51, "failed": 0, "retrying": 0, "stale": 0, "opted_out": 0}'::jsonb, 'B''s batch is sent');
select is((select status || ':' || sent_count from public.marketing_campaigns where id = 'c2000000-0000-4000-8000-000000000001'),
  'sent:51', 'every recipient sent: the campaign is sent');
select is((select status from public.campaign_recipients where id = (pg_temp.batch(1, 1) #>> '{recipients,0,id}')::bigint),
  'delivered', 'the early event is applied once the send is recorded');
select is((select delivered_count from public.marketing_campaigns where id = 'c2000000-0000-4000-8000-000000000001'),
  1, 'and counted');
select is(public.record_campaign_outcomes((
  select jsonb_agg(jsonb_build_object('id', r -> 'id', 'provider_message_id', 'again'))
  from jsonb_array_elements(pg_temp.batch(1, 1) -> 'recipients') r)) ->> 'stale', '51', 'a late second report changes nothing');
select is(public.record_campaign_outcomes((
  select jsonb_agg(jsonb_build_object('id', r -> 'id', 'error', 'resend 429', 'permanent', false, 'retry_after_seconds', 30))
  from jsonb_array_elements(pg_temp.batch(1, 0) -> 'recipients') r)) ->> 'retrying', '100', 'a 429 keeps the batch');
select ok((select bool_and(claimed_until > now() + interval '29 seconds' and status = 'claimed')
           from public.campaign_recipients where batch_id = (pg_temp.batch(1, 0) ->> 'batch_id')::uuid),
  'its claim waits at least the Retry-After');
-- The retry: same id, same members, attempt 2.
update public.campaign_recipients set claimed_until = now() - interval '1 second'
where batch_id = (pg_temp.batch(1, 0) ->> 'batch_id')::uuid;
insert into claims (claimed) select public.claim_campaign_batches('email', 1000, 1, 100, 60);
select is(pg_temp.batch(3, 0) ->> 'batch_id', pg_temp.batch(1, 0) ->> 'batch_id', 'the batch is claimed again under its id');
select is(pg_temp.batch(3, 0) -> 'recipients', pg_temp.batch(1, 0) -> 'recipients', 'with the same members and values');
select is((pg_temp.batch(3, 0) ->> 'attempt')::int, 2, 'as its second attempt');
-- A sender that died: its claim runs out and the batch comes back whole.
update public.campaign_recipients set claimed_until = now() - interval '1 second'
where batch_id = (pg_temp.batch(1, 2) ->> 'batch_id')::uuid;
insert into claims (claimed) select public.claim_campaign_batches('email', 1000, 1, 100, 60);
select is(pg_temp.batch(4, 0) ->> 'batch_id', pg_temp.batch(1, 2) ->> 'batch_id', 'an expired claim is taken over whole');
-- Out of attempts: the recipients fail.
update public.campaign_recipients set claimed_until = now() - interval '1 second', attempt = private.campaign_max_attempts()
where batch_id = (pg_temp.batch(1, 2) ->> 'batch_id')::uuid;
insert into claims (claimed) select public.claim_campaign_batches('email', 1000, 1, 100, 60);
select isnt(pg_temp.batch(5, 0) ->> 'batch_id', pg_temp.batch(1, 2) ->> 'batch_id', 'a batch out of attempts is not sent again');
select is((select count(*)::int from public.campaign_recipients
           where batch_id = (pg_temp.batch(1, 2) ->> 'batch_id')::uuid and status = 'failed'), 100, 'its recipients failed');
select is((select failed_count from public.marketing_campaigns where id = 'c1000000-0000-4000-8000-000000000001'),
  100, 'and are counted');
select is(public.record_campaign_outcomes((
  select jsonb_agg(jsonb_build_object('id', r -> 'id', 'error', 'resend 422: bad', 'permanent', true))
  from jsonb_array_elements(pg_temp.batch(4, 0) -> 'recipients') r)) ->> 'failed', '0',
  'a report about failed rows is stale');

-- Rate: the bucket holds at most max(rate, 1) tokens; none left, nothing is claimed.
insert into public.marketing_campaigns (id, tenant_id, name, type, channel, content)
values ('c1000000-0000-4000-8000-000000000002', '1a000000-0000-4000-8000-000000000001', 'T', 'email', 'email',
        '{"rendered": {"text": "t"}}');
select private.start_campaign('c1000000-0000-4000-8000-000000000002');
update private.send_buckets set tokens = 0, refilled_at = clock_timestamp(), rate = 0.5 where provider = 'resend';
select is(jsonb_array_length(public.claim_campaign_batches('email', 0.5, 10, 100, 60) -> 'batches'), 0,
  'with no token left nothing is claimed');
select ok((public.claim_campaign_batches('email', 0.5, 10, 100, 60) ->> 'wait_ms')::int between 1000 and 2000,
  'and wait_ms says when a token comes');
update private.send_buckets set tokens = 1, refilled_at = clock_timestamp() where provider = 'resend';
select is(jsonb_array_length(public.claim_campaign_batches('email', 0.5, 10, 100, 60) -> 'batches'), 1,
  'a rate below one a second still sends, one batch per token');

-- Transactional priority: the outbox takes its tokens first, below zero.
update private.send_buckets set tokens = 1, refilled_at = clock_timestamp(), rate = 1 where provider = 'resend';
insert into public.notification_outbox (tenant_id, channel, template, recipient)
select '1b000000-0000-4000-8000-000000000001', 'email', 'order_confirmation', 'o' || g || '@c.test'
from generate_series(1, 3) g;
select is((select count(*)::int from public.claim_notifications(50, 60) where channel = 'email'), 3,
  'the outbox claims its order confirmations');
select ok((select tokens from private.send_buckets where provider = 'resend') < -1.9,
  'their sends are taken from the shared bucket');
select is(jsonb_array_length(public.claim_campaign_batches('email', 1, 10, 100, 60) -> 'batches'), 0,
  'marketing waits behind them');

-- SMS: a token per message, quiet hours in the tenant's time zone, Twilio 21610.
insert into public.marketing_campaigns (id, tenant_id, name, type, channel, content)
values ('c3000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'T', 'sms', 'sms',
        '{"rendered": {"text": "t"}}');
select private.start_campaign('c3000000-0000-4000-8000-000000000001');
update public.tenants set time_zone = (
  select name from pg_timezone_names where name ~ '^Etc/GMT[+-][0-9]+$'
    and extract(hour from now() at time zone name) between 0 and 6 limit 1)
where id = '1b000000-0000-4000-8000-000000000001';
select is(jsonb_array_length(public.claim_campaign_batches('sms', 1000, 1, 20, 60) -> 'batches'), 0,
  'at night in the tenant''s time zone, no marketing SMS');
update public.tenants set time_zone = (
  select name from pg_timezone_names where name ~ '^Etc/GMT[+-][0-9]+$'
    and extract(hour from now() at time zone name) between 10 and 18 limit 1)
where id = '1b000000-0000-4000-8000-000000000001';
update private.send_buckets set tokens = 5, refilled_at = clock_timestamp(), rate = 5 where provider = 'twilio';
insert into claims (claimed) select public.claim_campaign_batches('sms', 5, 10, 20, 60);
select is((select sum(jsonb_array_length(b -> 'recipients'))::int from claims, jsonb_array_elements(claimed -> 'batches') b
           where n = 6), 5, 'in the day, as many SMS as there are tokens');
select is(public.record_campaign_outcomes(jsonb_build_array(jsonb_build_object(
  'id', pg_temp.batch(6, 0) #> '{recipients,0,id}', 'error', 'twilio 400 (21610): unsubscribed',
  'permanent', true, 'unsubscribed', true))) ->> 'opted_out', '1', 'Twilio 21610 opts the client out');
select is((select status || ':' || source from public.contact_consent
           where client_id = (pg_temp.batch(6, 0) #>> '{recipients,0,client_id}')::uuid and channel = 'sms'),
  'unsubscribed:carrier_stop', 'for SMS');
select throws_ok($$update public.tenants set time_zone = 'Mars/Olympus' where slug = 'tenant-b'$$, '23514', null,
  'a time zone Postgres does not know is refused');

select * from finish();
rollback;
