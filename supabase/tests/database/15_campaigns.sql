-- Campaign tables: members read their tenant's, write only segments and
-- drafts; the queue and the events are the RPCs'.
begin;
select no_plan();
select tests.make_fixture();

select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('customer_segments', array['SELECT', 'DELETE']),
  ('marketing_campaigns', array['SELECT', 'DELETE']),
  ('campaign_recipients', array['SELECT']),
  ('campaign_events', array['SELECT'])) v(t, privs);
select column_privs_are('public', 'marketing_campaigns', c, 'authenticated', privs,
  format('authenticated may %s marketing_campaigns.%s', array_to_string(privs, ', '), c))
from (values
  ('name', array['SELECT', 'INSERT', 'UPDATE']),
  ('content', array['SELECT', 'INSERT', 'UPDATE']),
  ('audience', array['SELECT', 'INSERT', 'UPDATE']),
  ('status', array['SELECT']),
  ('sent_count', array['SELECT']),
  ('recipient_count', array['SELECT'])) v(c, privs);
select col_is_unique('public', 'campaign_recipients', array['campaign_id', 'client_id', 'channel'],
  'one queue row per campaign, client and channel');
select col_is_unique('public', 'campaign_events', array['provider', 'event_id'],
  'a replayed provider event is one row');

-- A member writes a segment and a draft.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$insert into public.customer_segments (tenant_id, name, filter)
  values ('1a000000-0000-4000-8000-000000000001', 'Big buyers', '{"all": [{"field": "total_spent", "op": ">=", "value": 1000}]}')$$,
  'a member saves a segment');
select lives_ok($$insert into public.marketing_campaigns (id, tenant_id, name, type, channel, content)
  values ('c0000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'Spring', 'email', 'email',
          '{"subject": "Spring", "body": "Hello {{client.name}}"}')$$,
  'a member drafts a campaign');
select is((select created_by from public.marketing_campaigns where id = 'c0000000-0000-4000-8000-000000000001'),
  '0a000000-0000-4000-8000-000000000001'::uuid, 'created_by is the member');
select throws_ok($$update public.marketing_campaigns set status = 'sent'$$, '42501', null,
  'the status is not a member''s to set');
select throws_ok($$insert into public.marketing_campaigns (tenant_id, name, type, channel)
  values ('1a000000-0000-4000-8000-000000000001', 'Mixed', 'email', 'sms')$$, '23514', null,
  'type and channel agree');
select throws_ok($$insert into public.marketing_campaigns (tenant_id, name, type, channel)
  values ('1b000000-0000-4000-8000-000000000001', 'Theirs', 'email', 'email')$$, '42501', null,
  'not in another tenant');

-- Once it is sending, it is no longer a member's to change.
select tests.act_as_owner();
update public.marketing_campaigns set status = 'sending' where id = 'c0000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$update public.marketing_campaigns set name = 'Renamed' where id = 'c0000000-0000-4000-8000-000000000001'$$,
  'CE409', 'only a draft campaign can be changed or removed', 'a sending campaign cannot be edited');
select throws_ok($$delete from public.marketing_campaigns where id = 'c0000000-0000-4000-8000-000000000001'$$,
  'CE409', null, 'nor removed');
select throws_ok($$insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address)
  select '1a000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', id, 'email', 'x@y.test'
  from public.wholesale_clients limit 1$$, '42501', null, 'members cannot queue recipients');

-- The queue: one row per client and channel; events append-only and unique.
select tests.act_as_owner();
insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address)
select c.tenant_id, 'c0000000-0000-4000-8000-000000000001', c.id, 'email', 'a@client.test'
from public.wholesale_clients c where c.tenant_id = '1a000000-0000-4000-8000-000000000001' limit 1;
select throws_ok($$insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address)
  select tenant_id, campaign_id, client_id, channel, 'b@client.test' from public.campaign_recipients limit 1$$,
  '23505', null, 'a client is queued once per campaign and channel');
insert into public.campaign_events (tenant_id, campaign_id, provider, event_id, type)
values ('1a000000-0000-4000-8000-000000000001', 'c0000000-0000-4000-8000-000000000001', 'resend', 'msg_1', 'email.delivered');
select throws_ok($$insert into public.campaign_events (tenant_id, provider, event_id, type)
  values ('1a000000-0000-4000-8000-000000000001', 'resend', 'msg_1', 'email.delivered')$$, '23505', null,
  'the same provider event twice is refused');
select throws_ok($$update public.campaign_events set type = 'email.bounced'$$, '42501', 'campaign_events is append-only',
  'events are never changed');

-- Another tenant sees none of it.
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*) from public.marketing_campaigns) + (select count(*) from public.campaign_recipients)
  + (select count(*) from public.campaign_events) + (select count(*) from public.customer_segments),
  0::bigint, 'B sees none of A''s campaigns, queue, events or segments');

select * from finish();
rollback;
