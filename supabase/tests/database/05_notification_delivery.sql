-- Outbox delivery: claim, lease, expiry, backoff and dead-lettering.
begin;
select no_plan();
select tests.make_fixture();
-- Only this test's rows (the transaction rolls back).
delete from public.notification_outbox;

-- Five due rows, one not yet due.
insert into public.notification_outbox (id, tenant_id, channel, template, recipient, next_attempt_at)
select ('6a000000-0000-4000-8000-00000000000' || n)::uuid, '1a000000-0000-4000-8000-000000000001',
       'email', 'order_confirmation', 'x@client.test', now() - make_interval(mins => 10 - n)
from generate_series(1, 5) n;
insert into public.notification_outbox (id, tenant_id, channel, template, recipient, next_attempt_at)
values ('6a000000-0000-4000-8000-000000000009', '1a000000-0000-4000-8000-000000000001',
        'sms', 'order_confirmation', '+15555550001', now() + interval '1 hour');

select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select * from public.claim_notifications()$$, '42501', null, 'members cannot claim');
select tests.act_as(null);
select throws_ok($$select * from public.claim_notifications()$$, '42501', null, 'anon cannot claim');
select tests.act_as_owner();
set local role service_role;

create temp table first_claim on commit drop as select * from public.claim_notifications(3, 30);
select is((select count(*) from first_claim), 3::bigint, 'a claim takes at most batch_size rows');
select is(array(select id::text from first_claim order by next_attempt_at),
  array['6a000000-0000-4000-8000-000000000001', '6a000000-0000-4000-8000-000000000002', '6a000000-0000-4000-8000-000000000003'],
  'oldest due first');
select ok((select bool_and(status = 'sending' and attempts = 1 and lease_id is not null
                           and locked_until > now() + interval '29 seconds') from first_claim),
  'claimed rows are sending, leased, and count an attempt');

create temp table second_claim on commit drop as select * from public.claim_notifications(50, 30);
select is(array(select id::text from second_claim order by id),
  array['6a000000-0000-4000-8000-000000000004', '6a000000-0000-4000-8000-000000000005'],
  'a second claimer gets only the rows nobody holds, and nothing not yet due');
select is((select count(*) from public.claim_notifications(50, 30)), 0::bigint, 'nothing left to claim');

-- The lease runs out: the row comes back by itself.
update public.notification_outbox set locked_until = now() - interval '1 second'
where id = '6a000000-0000-4000-8000-000000000001';
create temp table reclaimed on commit drop as select * from public.claim_notifications(50, 30);
select is((select id::text || ':' || attempts from reclaimed), '6a000000-0000-4000-8000-000000000001:2',
  'a row whose lease expired is claimed again, as attempt 2');
select isnt((select lease_id from reclaimed), (select lease_id from first_claim where id = '6a000000-0000-4000-8000-000000000001'),
  'with a new lease');

-- A report under the old lease changes nothing.
select is(public.fail_notification('6a000000-0000-4000-8000-000000000001',
  (select lease_id from first_claim where id = '6a000000-0000-4000-8000-000000000001'), 'late'), null,
  'a failure reported under an expired lease is ignored');

-- A transient failure backs off; a permanent one dead-letters at once.
select is(public.fail_notification('6a000000-0000-4000-8000-000000000002',
  (select lease_id from first_claim where id = '6a000000-0000-4000-8000-000000000002'), '503 from provider',
  backoff_seconds => 60), 'pending', 'a transient failure returns the row to pending');
select ok((select next_attempt_at between now() + interval '44 seconds' and now() + interval '76 seconds'
           from public.notification_outbox where id = '6a000000-0000-4000-8000-000000000002'),
  'first retry after backoff_seconds ±25 %');
select is(public.fail_notification('6a000000-0000-4000-8000-000000000003',
  (select lease_id from first_claim where id = '6a000000-0000-4000-8000-000000000003'), '429', retry_after_seconds => 600,
  backoff_seconds => 1), 'pending', 'a rate-limited attempt is retried');
select ok((select next_attempt_at >= now() + interval '599 seconds'
           from public.notification_outbox where id = '6a000000-0000-4000-8000-000000000003'),
  'no earlier than Retry-After');
select is(public.fail_notification('6a000000-0000-4000-8000-000000000004',
  (select lease_id from second_claim where id = '6a000000-0000-4000-8000-000000000004'), 'invalid phone', permanent => true),
  'dead', 'a permanent failure dead-letters at once');
select is((select last_error from public.notification_outbox where id = '6a000000-0000-4000-8000-000000000004'),
  'invalid phone', 'with its reason');

-- Success is recorded whatever the lease, and only once.
select ok(public.complete_notification('6a000000-0000-4000-8000-000000000005', 'prov-5'), 'a send completes');
select is((select status || ':' || provider_message_id from public.notification_outbox where id = '6a000000-0000-4000-8000-000000000005'),
  'sent:prov-5', 'the row is sent, with the provider''s id');
select ok(not public.complete_notification('6a000000-0000-4000-8000-000000000005', 'prov-5'), 'completing twice is a no-op');

-- The 8th failed attempt dead-letters.
update public.notification_outbox set attempts = 7, next_attempt_at = now() - interval '1 second'
where id = '6a000000-0000-4000-8000-000000000002';
create temp table eighth on commit drop as select * from public.claim_notifications(1, 30);
select is((select attempts from eighth), 8, 'the eighth attempt is claimed');
select is(public.fail_notification((select id from eighth), (select lease_id from eighth), 'still 503'), 'dead',
  'and its failure dead-letters the row');

-- A dispatcher that dies on the last attempt: dead at the next claim.
update public.notification_outbox set attempts = 8, status = 'sending', locked_until = now() - interval '1 second'
where id = '6a000000-0000-4000-8000-000000000003';
select is((select count(*) from public.claim_notifications(50, 30) where id = '6a000000-0000-4000-8000-000000000003'),
  0::bigint, 'a row whose last lease expired is not claimed again');
select is((select status from public.notification_outbox where id = '6a000000-0000-4000-8000-000000000003'),
  'dead', 'it is dead-lettered');
select throws_ok($$select * from public.claim_notifications(0, 30)$$, 'CEV01', null, 'batch_size is checked');

-- A batch's outcomes in one call.
insert into public.notification_outbox (id, tenant_id, channel, template, recipient)
select ('6b000000-0000-4000-8000-00000000000' || n)::uuid, '1a000000-0000-4000-8000-000000000001',
       'email', 'order_confirmation', 'y@client.test'
from generate_series(1, 3) n;
create temp table batch on commit drop as select * from public.claim_notifications(50, 30);
select is((select count(*) from batch), 3::bigint, 'the batch is claimed');
select is(
  public.record_notification_outcomes(jsonb_build_array(
    jsonb_build_object('id', '6b000000-0000-4000-8000-000000000002', 'lease', (select lease_id from batch where id = '6b000000-0000-4000-8000-000000000002'),
      'error', '21211', 'permanent', true),
    jsonb_build_object('id', '6b000000-0000-4000-8000-000000000001', 'provider_message_id', 'p-1'),
    jsonb_build_object('id', '6b000000-0000-4000-8000-000000000003', 'lease', (select lease_id from batch where id = '6b000000-0000-4000-8000-000000000003'),
      'error', '503', 'permanent', false, 'retry_after_seconds', 5)), 1),
  '[{"id":"6b000000-0000-4000-8000-000000000001","status":"sent"},
    {"id":"6b000000-0000-4000-8000-000000000002","status":"dead"},
    {"id":"6b000000-0000-4000-8000-000000000003","status":"pending"}]'::jsonb,
  'record_notification_outcomes applies each outcome with the single-row rules');
select is(array(select status || ':' || coalesce(provider_message_id, last_error) from public.notification_outbox
                where id::text like '6b000000%' order by id),
  array['sent:p-1', 'dead:21211', 'pending:503'], 'and the rows say so');


-- Grants on the outbox (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('notification_outbox', array['SELECT'])) v(t, privs);

select * from finish();
rollback;
