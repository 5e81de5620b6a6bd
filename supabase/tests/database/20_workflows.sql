-- Workflows: events from the existing writes, definitions validated in SQL,
-- runs (claiming, re-entry, version pinning, the race-free wait, retries,
-- exit), the clock hook, RLS and grants.
begin;
select no_plan();
select tests.make_fixture();

-- ------------------------------------------------------------------ grants

select function_privs_are('public', f, args, r, privs, format('%s may %s %s', r, coalesce(array_to_string(privs, ''), 'not call'), f))
from (values
  ('advance_workflow_runs', array['integer', 'uuid[]']),
  ('webhook_secrets_for', array['uuid[]']),
  ('emit_inactive_client_events', array['integer'])) fn(f, args)
cross join (values ('anon', array[]::text[]), ('authenticated', array[]::text[]), ('service_role', array['EXECUTE'])) v(r, privs);
select function_privs_are('public', 'execute_workflow', array['jsonb'], r, privs,
  format('%s may %s execute_workflow', r, coalesce(array_to_string(privs, ''), 'not call')))
from (values ('anon', array[]::text[]), ('authenticated', array['EXECUTE']), ('service_role', array['EXECUTE'])) v(r, privs);
select table_privs_are('public', 'platform_events', 'authenticated', array['SELECT'],
  'members only read events');
select table_privs_are('public', 'platform_events', 'service_role', array['INSERT', 'SELECT'],
  'events are append-only, even for the service role');
select table_privs_are('public', t, 'authenticated', array['SELECT'], format('members only read %s', t))
from unnest(array['workflow_runs', 'workflow_step_runs', 'workflow_versions']) t;
select table_privs_are('public', t, 'anon', array[]::text[], format('anon has nothing on %s', t))
from unnest(array['platform_events', 'marketing_workflows', 'workflow_runs', 'workflow_step_runs', 'workflow_versions']) t;

-- ------------------------------------------------------------------ helpers

-- The errors a definition is refused with ('{}' when it is stored).
create function pg_temp.refusal(def jsonb) returns jsonb language plpgsql as $$
declare
  detail text;
begin
  insert into public.marketing_workflows (tenant_id, name, trigger_event, conditions, actions, reentry,
    cooldown, exit_when, inactive_days)
  values ('1a000000-0000-4000-8000-000000000001', 'w', coalesce(def ->> 'trigger_event', 'order.created'),
    def -> 'conditions', coalesce(def -> 'actions', '[{"type": "wait", "duration": "P1D"}]'),
    coalesce(def ->> 'reentry', 'every_time'), def ->> 'cooldown', def ->> 'exit_when',
    (def ->> 'inactive_days')::integer);
  raise exception 'stored' using errcode = 'P0002';
exception
  when sqlstate 'CEV01' then
    get stacked diagnostics detail = pg_exception_detail;
    return detail::jsonb;
  when sqlstate 'P0002' then
    return '{}'::jsonb;
end
$$;

create function pg_temp.workflow(name text, def jsonb) returns uuid language sql as $$
  insert into public.marketing_workflows (tenant_id, name, trigger_event, conditions, actions, reentry,
    cooldown, exit_when)
  values ('1a000000-0000-4000-8000-000000000001', name, coalesce(def ->> 'trigger_event', 'order.created'),
    def -> 'conditions', def -> 'actions', coalesce(def ->> 'reentry', 'every_time'), def ->> 'cooldown',
    def ->> 'exit_when')
  returning id
$$;

create function pg_temp.event(type text, payload jsonb default '{}',
  subject uuid default '5a000000-0000-4000-8000-000000000001') returns bigint language sql as $$
  select private.emit_event('1a000000-0000-4000-8000-000000000001', type, subject, payload, null)
$$;

create function pg_temp.runs(wf uuid) returns bigint language sql as $$
  select count(*) from public.workflow_runs where workflow_id = wf
$$;

create function pg_temp.texts(wf uuid) returns text[] language sql as $$
  select coalesce(array_agg(o.payload ->> 'text' order by o.created_at, o.payload ->> 'step', o.payload ->> 'text'), '{}')
  from public.notification_outbox o where o.payload ->> 'workflow_id' = wf::text
$$;

-- The drain, called until nothing is due.
create function pg_temp.advance() returns jsonb language plpgsql as $$
declare
  r jsonb;
  runs integer := 0;
  actions integer := 0;
begin
  for i in 1..20 loop
    r := public.advance_workflow_runs(1000);
    runs := runs + (r ->> 'runs')::integer;
    actions := actions + (r ->> 'actions')::integer;
    exit when not (r ->> 'more')::boolean;
  end loop;
  return jsonb_build_object('runs', runs, 'actions', actions);
end
$$;

-- Nothing of earlier tests' runs gets in the way.
update public.workflow_runs set status = 'completed' where status in ('active', 'waiting');

-- ------------------------------------------------------------------ durations, times, conditions

select is(private.wf_duration(d), v, format('ISO 8601 %s', d))
from (values ('P3D', interval '3 days'), ('PT2H30M', interval '2 hours 30 minutes'), ('P1W', interval '7 days'),
             ('PT90S', interval '90 seconds'), ('P1DT1H', interval '1 day 1 hour')) x(d, v);
select is(private.wf_duration(d), null, format('%s is not a duration we take', coalesce(d, 'null')))
from unnest(array['P', 'PT', '3D', 'P0D', 'P400D', 'P1.5D', 'p3d', 'P3D ', 'PT1H1D', '', null]) d;

-- 09:00 in New York: 14:00 UTC in winter, 13:00 UTC once DST began (2026-03-08 02:00 local).
select is(private.wf_local_next('America/New_York', '09:00', null, '2026-03-07 15:00+00'),
  '2026-03-08 13:00+00'::timestamptz, 'until 09:00 across the spring DST change is 09:00 EDT');
select is(private.wf_local_next('America/New_York', '09:00', null, '2026-03-07 13:00+00'),
  '2026-03-07 14:00+00'::timestamptz, 'until 09:00 before the change is 09:00 EST');
select is(private.wf_local_next('America/New_York', '09:00', null, '2026-10-31 14:00+00'),
  '2026-11-01 14:00+00'::timestamptz, 'until 09:00 across the autumn DST change is 09:00 EST');
select is(private.wf_local_next('America/New_York', '02:30', null, '2026-03-08 05:00+00'),
  '2026-03-08 07:30+00'::timestamptz, 'a local time the spring change skips is moved forward by the gap');
select is(private.wf_local_next('Europe/Paris', '09:00', '["mon"]', '2026-11-27 12:00+00'),
  '2026-11-30 08:00+00'::timestamptz, 'until 09:00 on Mondays from a Friday is the next Monday');

select is(private.wf_test(c::jsonb, d::jsonb), want, format('%s on %s', c, d))
from (values
  ('{"field": "event.total", "op": "gt", "value": 5000}', '{"event": {"total": "5000.01"}}', true),
  ('{"field": "event.total", "op": "gt", "value": 5000}', '{"event": {"total": 5000}}', false),
  ('{"field": "event.total", "op": "gte", "value": 5000}', '{"event": {"total": "5000.00"}}', true),
  ('{"field": "event.total", "op": "lt", "value": 10}', '{"event": {"total": 9.99}}', true),
  ('{"field": "event.total", "op": "lte", "value": 10}', '{"event": {"total": 10.01}}', false),
  ('{"field": "event.total", "op": "eq", "value": 10}', '{"event": {"total": "10.0"}}', true),
  ('{"field": "event.total", "op": "neq", "value": 10}', '{"event": {"total": 11}}', true),
  ('{"field": "event.total", "op": "gt", "value": 1}', '{"event": {"total": "lots"}}', false),
  ('{"field": "event.total", "op": "gt", "value": 1}', '{"event": {}}', false),
  ('{"field": "event.total", "op": "neq", "value": 1}', '{"event": {"total": null}}', false),
  ('{"field": "event.at", "op": "gt", "value": "2026-11-01"}', '{"event": {"at": "2026-11-27T10:00:00Z"}}', true),
  ('{"field": "event.at", "op": "lt", "value": "2026-11-01T00:00:00Z"}', '{"event": {"at": "2026-10-31"}}', true),
  ('{"field": "event.at", "op": "gt", "value": "2026-11-01"}', '{"event": {"at": "soon"}}', false),
  ('{"field": "event.city", "op": "eq", "value": "Lyon"}', '{"event": {"city": "Lyon"}}', true),
  ('{"field": "event.city", "op": "eq", "value": "Lyon"}', '{"event": {"city": "lyon"}}', false),
  ('{"field": "event.city", "op": "neq", "value": "Lyon"}', '{"event": {"city": "Paris"}}', true),
  ('{"field": "event.vip", "op": "eq", "value": true}', '{"event": {"vip": true}}', true),
  ('{"field": "event.vip", "op": "eq", "value": true}', '{"event": {"vip": "true"}}', false),
  ('{"field": "event.kind", "op": "in", "value": ["a", "b"]}', '{"event": {"kind": "b"}}', true),
  ('{"field": "event.n", "op": "in", "value": [1, 2]}', '{"event": {"n": "2.0"}}', true),
  ('{"field": "event.kind", "op": "not_in", "value": ["a", "b"]}', '{"event": {"kind": "c"}}', true),
  ('{"field": "event.kind", "op": "not_in", "value": ["a"]}', '{"event": {"kind": "a"}}', false),
  ('{"field": "client.tags", "op": "contains", "value": "vip"}', '{"client": {"tags": ["new", "vip"]}}', true),
  ('{"field": "client.tags", "op": "contains", "value": "vi"}', '{"client": {"tags": ["vip"]}}', false),
  ('{"field": "client.name", "op": "contains", "value": "ACME"}', '{"client": {"name": "Big Acme Ltd"}}', true),
  ('{"field": "client.tags", "op": "contains_any", "value": ["x", "vip"]}', '{"client": {"tags": ["new", "vip"]}}', true),
  ('{"field": "client.tags", "op": "contains_any", "value": ["x", "y"]}', '{"client": {"tags": ["new", "vip"]}}', false),
  ('{"field": "event.kind", "op": "contains_any", "value": ["a", "b"]}', '{"event": {"kind": "b"}}', true),
  ('{"field": "client.last_order_date", "op": "before", "value": "2026-11-01"}', '{"client": {"last_order_date": "2026-10-31"}}', true),
  ('{"field": "client.last_order_date", "op": "before", "value": "2026-11-01"}', '{"client": {"last_order_date": "2026-11-01"}}', false),
  ('{"field": "event.at", "op": "after", "value": "2026-11-01"}', '{"event": {"at": "2026-11-02T00:30:00Z"}}', true),
  ('{"field": "event.at", "op": "on", "value": "2026-11-02"}', '{"event": {"at": "2026-11-02T23:59:00Z"}}', true),
  ('{"field": "event.at", "op": "on", "value": "2026-11-02"}', '{"event": {"at": "later"}}', false),
  ('{"field": "event.coupon", "op": "exists", "value": true}', '{"event": {"coupon": "X"}}', true),
  ('{"field": "event.coupon", "op": "exists", "value": false}', '{"event": {"coupon": null}}', true),
  ('{"field": "event.coupon", "op": "exists", "value": true}', '{"event": {}}', false),
  ('{"field": "event.a.b", "op": "eq", "value": 1}', '{"event": {"a": {"b": 1}}}', true),
  ('{"all": [{"field": "event.n", "op": "gt", "value": 1}, {"field": "event.n", "op": "lt", "value": 3}]}', '{"event": {"n": 2}}', true),
  ('{"all": [{"field": "event.n", "op": "gt", "value": 1}, {"field": "event.n", "op": "lt", "value": 3}]}', '{"event": {"n": 3}}', false),
  ('{"any": [{"field": "event.n", "op": "eq", "value": 1}, {"field": "event.n", "op": "eq", "value": 3}]}', '{"event": {"n": 3}}', true),
  ('{"not": {"field": "event.n", "op": "eq", "value": 1}}', '{"event": {"n": 3}}', true)
) x(c, d, want);

-- ------------------------------------------------------------------ validation

select ok(pg_temp.refusal(def::jsonb) ? key, format('%s is refused at %s', def, key))
from (values
  ('{"trigger_event": "Order Created"}', 'trigger_event'),
  ('{"actions": []}', 'actions'),
  ('{"actions": {"type": "wait"}}', 'actions'),
  ('{"actions": [1]}', 'actions[0]'),
  ('{"actions": [{"type": "wait", "duration": "P1D", "extra": 1}]}', 'actions[0]'),
  ('{"actions": [{"type": "wait", "duration": "3 days"}]}', 'actions[0].duration'),
  ('{"actions": [{"type": "wait"}]}', 'actions[0]'),
  ('{"actions": [{"type": "wait", "duration": "P1D", "until": {"time": "09:00"}}]}', 'actions[0]'),
  ('{"actions": [{"type": "wait", "until": {"time": "9am"}}]}', 'actions[0].until.time'),
  ('{"actions": [{"type": "wait", "until": {"time": "24:00"}}]}', 'actions[0].until.time'),
  ('{"actions": [{"type": "wait", "until": {"time": "09:00", "weekdays": ["monday"]}}]}', 'actions[0].until.weekdays'),
  ('{"actions": [{"type": "wait", "until": {"time": "09:00", "tz": "UTC"}}]}', 'actions[0].until'),
  ('{"actions": [{"type": "send_email", "body": "b"}]}', 'actions[0].subject'),
  ('{"actions": [{"type": "send_email", "subject": "s"}]}', 'actions[0].body'),
  ('{"actions": [{"type": "send_email", "subject": "s", "body": "{{order.total}}"}]}', 'actions[0].body'),
  ('{"actions": [{"type": "send_email", "subject": "{{client.password}}", "body": "b"}]}', 'actions[0].subject'),
  ('{"actions": [{"type": "send_email", "subject": "s", "body": "b", "to": "nobody"}]}', 'actions[0].to'),
  ('{"actions": [{"type": "send_sms", "body": "b", "to": "555-1234"}]}', 'actions[0].to'),
  ('{"actions": [{"type": "send_sms", "body": ""}]}', 'actions[0].body'),
  ('{"actions": [{"type": "wait_for_event", "event": "Order", "timeout": "P1D"}]}', 'actions[0].event'),
  ('{"actions": [{"type": "wait_for_event", "event": "order.created"}]}', 'actions[0].timeout'),
  ('{"actions": [{"type": "wait_for_event", "event": "order.created", "timeout": "P1D", "match": {"field": "x", "op": "eq", "value": 1}}]}', 'actions[0].match.field'),
  ('{"actions": [{"type": "wait_for_event", "event": "order.created", "timeout": "P1D", "matched": [{"type": "nap"}]}]}', 'actions[0].matched[0].type'),
  ('{"actions": [{"type": "branch", "then": []}]}', 'actions[0].if'),
  ('{"actions": [{"type": "branch", "if": {"field": "event.n", "op": "gt", "value": 1}}]}', 'actions[0].then'),
  ('{"actions": [{"type": "branch", "if": {"field": "event.n", "op": "gt", "value": 1}, "then": [{"type": "wait", "duration": "P99999D"}]}]}', 'actions[0].then[0].duration'),
  ('{"actions": [{"type": "branch", "if": {"field": "event.n", "op": "gt", "value": 1}, "then": [], "else": [{"type": "send_sms"}]}]}', 'actions[0].else[0].body'),
  ('{"actions": [{"type": "update_client"}]}', 'actions[0]'),
  ('{"actions": [{"type": "update_client", "add_tags": []}]}', 'actions[0].add_tags'),
  ('{"actions": [{"type": "update_client", "remove_tags": [1]}]}', 'actions[0].remove_tags'),
  ('{"actions": [{"type": "update_client", "set": {"credit_limit": 1000000}}]}', 'actions[0].set'),
  ('{"actions": [{"type": "update_client", "set": {"status": "suspended"}}]}', 'actions[0].set.status'),
  ('{"actions": [{"type": "notify_slack"}]}', 'actions[0].text'),
  ('{"actions": [{"type": "webhook"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "http://hooks.example.com/x"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://10.1.2.3/x"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://169.254.169.254/latest/meta-data"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://[::1]/x"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://localhost/x"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://me:pw@hooks.example.com/x"}]}', 'actions[0].url'),
  ('{"actions": [{"type": "webhook", "url": "https://hooks.example.com/x", "data": [1]}]}', 'actions[0].data'),
  ('{"actions": [{"type": "webhook", "url": "https://hooks.example.com/x", "headers": {}}]}', 'actions[0]'),
  ('{"conditions": {"field": "event.n", "op": "between", "value": 1}}', 'conditions.op'),
  ('{"conditions": {"field": "event.n", "op": "gt", "value": "many"}}', 'conditions.value'),
  ('{"conditions": {"field": "event.n", "op": "in", "value": []}}', 'conditions.value'),
  ('{"conditions": {"field": "event.n", "op": "exists", "value": 1}}', 'conditions.value'),
  ('{"conditions": {"field": "event.at", "op": "before", "value": "soon"}}', 'conditions.value'),
  ('{"conditions": {"field": "client.tags", "op": "contains_any", "value": "vip"}}', 'conditions.value'),
  ('{"conditions": {"field": "event.n", "op": "eq", "value": {"a": 1}}}', 'conditions.value'),
  ('{"conditions": {"field": "client.credit_limit", "op": "gt", "value": 1}}', 'conditions.field'),
  ('{"conditions": {"all": []}}', 'conditions.all'),
  ('{"conditions": {"all": [{"field": "event.n", "op": "gt", "value": 1}], "any": []}}', 'conditions'),
  ('{"conditions": {"not": {"all": [{"not": {"all": [{"not": {"all": [{"field": "event.n", "op": "gt", "value": 1}]}}]}}]}}}', 'conditions.not.all[0].not.all[0].not'),
  ('{"reentry": "cooldown"}', 'cooldown'),
  ('{"reentry": "once", "cooldown": "P1D"}', 'cooldown'),
  ('{"exit_when": "Stop!"}', 'exit_when'),
  ('{"trigger_event": "client.inactive"}', 'inactive_days'),
  ('{"inactive_days": 60}', 'inactive_days')
) x(def, key);
select is(pg_temp.refusal(jsonb_build_object('actions', (select jsonb_agg('{"type": "wait", "duration": "PT1M"}'::jsonb)
  from generate_series(1, 101)))) ->> 'actions', 'a workflow has at most 100 steps',
  'at most 100 steps');
select is(pg_temp.refusal('{"actions": [{"type": "wait", "duration": "P1D"}, {"type": "send_email", "subject": "Order {{event.order_number}} for {{client.name}} at {{tenant.name}}", "body": "b"}], "reentry": "cooldown", "cooldown": "P30D", "exit_when": "client.unsubscribed"}'),
  '{}'::jsonb, 'a valid definition is stored');
select is(pg_temp.refusal('{"trigger_event": "client.inactive", "inactive_days": 60}'), '{}'::jsonb,
  'a client.inactive trigger with its days is stored');
select is(pg_temp.refusal('{"actions": [{"type": "webhook", "url": "https://hooks.example.com/x?a=1", "data": {"k": 1}}]}'),
  '{}'::jsonb, 'a webhook step to a public https URL is stored');
select is(private.webhook_url_error(u), want, format('webhook URL %s', u))
from (values
  ('https://hooks.example.com/x', null),
  ('https://8.8.8.8/x', null),
  ('https://[2606:4700:4700::1111]/x', null),
  ('https://[::ffff:10.0.0.1]/x', 'must not be a private, loopback, link-local or reserved address'),
  ('https://100.64.1.1/x', 'must not be a private, loopback, link-local or reserved address'),
  ('https://metadata.google.internal/computeMetadata', 'must not be a private, loopback, link-local or reserved address'),
  ('https://printer.local/x', 'must not be a private, loopback, link-local or reserved address'),
  ('ftp://hooks.example.com/x', 'must be an https:// URL'),
  ('https://' || repeat('a', 2050), 'must be a URL of at most 2048 characters')) x(u, want);
insert into private.webhook_allowed_hosts values ('127.0.0.1:9999');
select is(private.webhook_url_error('http://127.0.0.1:9999/_sandbox/hooks/a'), null,
  'the test-only allow list lets the sandbox through, over http');
select is(private.webhook_url_error('http://127.0.0.1:9998/x'), 'must be an https:// URL', 'but no other port');
delete from private.webhook_allowed_hosts;
select is((select count(*) from public.marketing_workflows where name = 'w'), 0::bigint,
  'nothing refused was stored (and pg_temp.refusal rolled back what it stored)');

-- ------------------------------------------------------------------ events from the existing writes

select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload(quantity => 2, unit_price => 3))$$,
  'an order is created');
select tests.act_as_owner();
select is((select jsonb_build_object('subject', subject, 'total', payload -> 'total_amount',
                                     'has_order', payload ? 'order_id')
           from public.platform_events where type = 'order.created'
             and tenant_id = '1a000000-0000-4000-8000-000000000001' order by id desc limit 1),
  '{"subject": "5a000000-0000-4000-8000-000000000001", "total": 6.00, "has_order": true}'::jsonb,
  'create_wholesale_order records order.created about the client, in its transaction');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_purchase_order(tests.po_payload())$$, 'a purchase order is created');
select tests.act_as_owner();
select is((select count(*) from public.platform_events where type = 'purchase_order.created'
             and tenant_id = '1a000000-0000-4000-8000-000000000001' and subject is null), 1::bigint,
  'create_purchase_order records purchase_order.created');
insert into public.contact_consent (tenant_id, client_id, channel, status, source)
values ('1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001', 'sms', 'unsubscribed', 'sms_keyword');
select is((select payload ->> 'channel' from public.platform_events where type = 'client.unsubscribed'
             and subject = '5a000000-0000-4000-8000-000000000001'), 'sms',
  'an unsubscribe records client.unsubscribed');
update public.contact_consent set source = 'admin' where client_id = '5a000000-0000-4000-8000-000000000001';
select is((select count(*) from public.platform_events where type = 'client.unsubscribed'
             and subject = '5a000000-0000-4000-8000-000000000001'), 1::bigint,
  'a consent row changed without a new unsubscribe records nothing more');
delete from public.contact_consent where client_id = '5a000000-0000-4000-8000-000000000001';
insert into public.return_authorizations (tenant_id, order_id, ra_number, return_method, refund_amount)
select tenant_id, id, 'RA-T-1', 'credit', 1 from public.wholesale_orders
where tenant_id = '1a000000-0000-4000-8000-000000000001' order by created_at desc limit 1;
select is((select subject from public.platform_events where type = 'order.returned'
             and payload ->> 'ra_number' = 'RA-T-1'), '5a000000-0000-4000-8000-000000000001'::uuid,
  'a return records order.returned about the order''s client');
set local role service_role;
insert into public.marketing_campaigns (id, tenant_id, name, type, channel, status)
values ('c9000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'News', 'email', 'email', 'sending');
insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
values ('1a000000-0000-4000-8000-000000000001', 'c9000000-0000-4000-8000-000000000001',
        '5a000000-0000-4000-8000-000000000001', 'email', 'ca@client.test', 'sent', 'msg-wf-1');
insert into public.campaign_events (tenant_id, campaign_id, recipient_id, provider, event_id, type, payload)
select r.tenant_id, r.campaign_id, r.id, 'resend', e.id, e.type, e.payload
from public.campaign_recipients r, (values
  ('evt-wf-1', 'email.opened', '{}'::jsonb),
  ('evt-wf-2', 'email.clicked', '{"data": {"click": {"link": "https://shop.test/spring"}}}'::jsonb),
  ('evt-wf-3', 'email.delivered', '{}'::jsonb)) e(id, type, payload)
where r.provider_message_id = 'msg-wf-1';
select is((select array_agg(type || ' ' || coalesce(payload ->> 'link', '-') order by id) from public.platform_events
           where subject = '5a000000-0000-4000-8000-000000000001' and type like 'campaign.%'),
  array['campaign.email.opened -', 'campaign.email.clicked https://shop.test/spring'],
  'opens and clicks of a campaign email record campaign.email.* about the client; deliveries do not');
select throws_ok($$update public.platform_events set type = 'x' where true$$, '42501', null,
  'not even the service role changes an event');
reset role;

-- ------------------------------------------------------------------ the seed's example

update public.tenants set time_zone = 'UTC' where id = '1a000000-0000-4000-8000-000000000001';
update private.workflow_clock set skew = '0';
-- Noon UTC today, whatever time the tests run: quiet hours stay out of the way.
update private.workflow_clock set skew = date_trunc('day', now()) + interval '12 hours' - clock_timestamp();
select set_config('wf.big', pg_temp.workflow('big orders', '{
  "conditions": {"all": [{"field": "event.total_amount", "op": "gt", "value": 5000}]},
  "actions": [
    {"type": "send_email", "to": "am@tenant-a.test", "subject": "Big order {{event.order_number}}",
     "body": "{{client.name}} ordered {{event.total_amount}}.\n\nCall them."},
    {"type": "wait", "duration": "P3D"},
    {"type": "send_sms", "body": "Thank you {{client.name}}! {{tenant.name}}"}]}')::text, true);
select pg_temp.event('order.created', '{"order_number": "WO-9", "total_amount": 6200.5}');
select pg_temp.event('order.created', '{"order_number": "WO-10", "total_amount": 5000}');
select is(pg_temp.runs(current_setting('wf.big')::uuid), 1::bigint, 'only the order over 5,000 starts a run');
select is(pg_temp.advance() ->> 'actions', '1', 'the drain queues the first email');
select is(pg_temp.texts(current_setting('wf.big')::uuid), array['CA ordered 6200.5.' || chr(10) || chr(10) || 'Call them.'],
  'the email to the account manager, merged');
select is((select jsonb_build_object('subject', payload ->> 'subject', 'to', recipient, 'paragraphs', payload -> 'paragraphs',
                                     'template', template)
           from public.notification_outbox where payload ->> 'workflow_id' = current_setting('wf.big')),
  '{"subject": "Big order WO-9", "to": "am@tenant-a.test", "paragraphs": ["CA ordered 6200.5.", "Call them."],
    "template": "workflow_message"}'::jsonb, 'its subject, recipient and paragraphs');
select is((select status from public.workflow_runs where workflow_id = current_setting('wf.big')::uuid), 'waiting',
  'then the run waits');
select is(pg_temp.advance() ->> 'runs', '0', 'nothing is due before three days');
select private.advance_workflow_clock('71 hours 59 minutes');
select is(pg_temp.advance() ->> 'runs', '0', 'nor a minute before');
select private.advance_workflow_clock('2 minutes');
select is(pg_temp.advance() ->> 'actions', '1', 'three days later the SMS is queued');
select is(pg_temp.texts(current_setting('wf.big')::uuid),
  array['CA ordered 6200.5.' || chr(10) || chr(10) || 'Call them.',
        'Tenant A: Thank you CA! Tenant A' || chr(10) || 'Reply STOP to opt out'],
  'the SMS, merged, with who sends it and how to stop');
select is((select recipient from public.notification_outbox
           where payload ->> 'workflow_id' = current_setting('wf.big') and channel = 'sms'), '+15555550001',
  'to the client''s phone');
select is((select status from public.workflow_runs where workflow_id = current_setting('wf.big')::uuid), 'completed',
  'and the run is completed');
select is((select array_agg(s.step_path || ':' || s.type || ':' || s.outcome order by s.id) from public.workflow_step_runs s
           join public.workflow_runs r on r.id = s.run_id where r.workflow_id = current_setting('wf.big')::uuid),
  array['0:send_email:done', '1:wait:waiting', '1:wait:done', '2:send_sms:done'], 'every step is logged');
select is(pg_temp.advance() ->> 'runs', '0', 'a completed run is never advanced again');
select is((select count(*) from public.notification_outbox where payload ->> 'workflow_id' = current_setting('wf.big')),
  2::bigint, 'two messages, once each');

-- ------------------------------------------------------------------ version pinning

select set_config('wf.pin', pg_temp.workflow('pinned', '{"trigger_event": "lead.created", "actions": [
  {"type": "wait", "duration": "PT1H"}, {"type": "notify_slack", "text": "version one"}]}')::text, true);
select pg_temp.event('lead.created');
select pg_temp.advance();
update public.marketing_workflows set actions = '[{"type": "wait", "duration": "PT1H"}, {"type": "notify_slack", "text": "version two"}]'
where id = current_setting('wf.pin')::uuid;
select is((select version from public.marketing_workflows where id = current_setting('wf.pin')::uuid), 2,
  'an edit is version 2');
select pg_temp.event('lead.created');
select private.advance_workflow_clock('2 hours');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.pin')::uuid), array['version one', 'version two'],
  'the run started before the edit keeps version 1; the one after runs version 2');
update public.marketing_workflows set name = 'renamed' where id = current_setting('wf.pin')::uuid;
select is((select version from public.marketing_workflows where id = current_setting('wf.pin')::uuid), 2,
  'a new name is not a new version');

-- ------------------------------------------------------------------ re-entry

select set_config('wf.once', pg_temp.workflow('once', '{"trigger_event": "visit", "reentry": "once",
  "actions": [{"type": "notify_slack", "text": "hi"}]}')::text, true);
select set_config('wf.every', pg_temp.workflow('every', '{"trigger_event": "visit",
  "actions": [{"type": "notify_slack", "text": "hi"}]}')::text, true);
select set_config('wf.cool', pg_temp.workflow('cool', '{"trigger_event": "visit", "reentry": "cooldown",
  "cooldown": "P1D", "actions": [{"type": "notify_slack", "text": "hi"}]}')::text, true);
select pg_temp.event('visit') from generate_series(1, 3);
select pg_temp.event('visit', '{}', '5a000000-0000-4000-8000-000000000002');
select is(pg_temp.runs(current_setting('wf.once')::uuid), 2::bigint, 'once: one run per client');
select is(pg_temp.runs(current_setting('wf.every')::uuid), 4::bigint, 'every_time: one run per event');
select is(pg_temp.runs(current_setting('wf.cool')::uuid), 2::bigint, 'cooldown: one per client within the day');
select private.advance_workflow_clock('25 hours');
select pg_temp.event('visit');
select is(pg_temp.runs(current_setting('wf.cool')::uuid), 3::bigint, 'cooldown: again after the day');
select is(pg_temp.runs(current_setting('wf.once')::uuid), 2::bigint, 'once: never again');
update public.marketing_workflows set enabled = false where id = current_setting('wf.every')::uuid;
select pg_temp.event('visit');
select is(pg_temp.runs(current_setting('wf.every')::uuid), 5::bigint, 'a disabled workflow starts nothing');

-- ------------------------------------------------------------------ the race-free wait

select set_config('wf.wait', pg_temp.workflow('wait for a reorder', '{"trigger_event": "quote.sent", "actions": [
  {"type": "wait", "duration": "PT1H"},
  {"type": "wait_for_event", "event": "order.created", "timeout": "P1D",
   "match": {"field": "event.total_amount", "op": "gte", "value": 100},
   "matched": [{"type": "notify_slack", "text": "ordered {{matched.total_amount}}"}],
   "timed_out": [{"type": "notify_slack", "text": "no order"}]}]}')::text, true);
select pg_temp.event('quote.sent');
select pg_temp.advance();
select pg_temp.event('order.created', '{"total_amount": 500}');
select private.advance_workflow_clock('30 minutes');
select is(pg_temp.advance() ->> 'runs', '0', 'still waiting the hour');
select private.advance_workflow_clock('45 minutes');
-- The hour is over, but no drain has come by: this order comes between the
-- previous step's end and the wait's registration.
select pg_temp.event('order.created', '{"total_amount": 50}');
select pg_temp.event('order.created', '{"total_amount": 150}');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.wait')::uuid), array['ordered 150'],
  'an event after the wait began but before a drain registered it is matched; one before, or not matching, is not');
select is((select s.outcome from public.workflow_step_runs s join public.workflow_runs r on r.id = s.run_id
           where r.workflow_id = current_setting('wf.wait')::uuid and s.step_path = '1'), 'matched',
  'the step is logged matched');

select pg_temp.event('quote.sent', '{}', '5a000000-0000-4000-8000-000000000002');
select pg_temp.advance();
select private.advance_workflow_clock('2 hours');
select pg_temp.advance();
select is((select status from public.workflow_runs where workflow_id = current_setting('wf.wait')::uuid
           and subject = '5a000000-0000-4000-8000-000000000002'), 'waiting', 'without an order the run waits');
select pg_temp.event('order.created', '{"total_amount": 150}');
select is((select next_run_at > private.wf_now() from public.workflow_runs where workflow_id = current_setting('wf.wait')::uuid
           and subject = '5a000000-0000-4000-8000-000000000002'), true, 'another client''s order leaves it asleep');
select private.advance_workflow_clock('1 day');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.wait')::uuid), array['ordered 150', 'no order'],
  'without a matching order in the day the run takes timed_out');

-- An event of the subject wakes its waiting run at once.
select pg_temp.event('quote.sent', '{}', '5a000000-0000-4000-8000-000000000002');
select pg_temp.advance();
select private.advance_workflow_clock('2 hours');
select pg_temp.advance();
select pg_temp.event('order.created', '{"total_amount": 900}', '5a000000-0000-4000-8000-000000000002');
select is((select next_run_at <= private.wf_now() from public.workflow_runs where workflow_id = current_setting('wf.wait')::uuid
           and subject = '5a000000-0000-4000-8000-000000000002' and status = 'waiting'), true,
  'the subject''s order makes its waiting run due now');
select pg_temp.advance();
select ok('ordered 900' = any (pg_temp.texts(current_setting('wf.wait')::uuid)), 'and the run takes matched');

-- ------------------------------------------------------------------ exit, consent, failures, guard

select set_config('wf.exit', pg_temp.workflow('exits', '{"trigger_event": "trial.started",
  "exit_when": "trial.converted", "actions": [{"type": "wait", "duration": "P7D"},
  {"type": "notify_slack", "text": "still a trial"}]}')::text, true);
select pg_temp.event('trial.started');
select pg_temp.advance();
select pg_temp.event('trial.converted');
select is((select status from public.workflow_runs where workflow_id = current_setting('wf.exit')::uuid), 'exited',
  'exit_when ends the subject''s active run');
select private.advance_workflow_clock('8 days');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.exit')::uuid), '{}'::text[], 'an exited run sends nothing');

insert into public.contact_consent (tenant_id, client_id, channel, status, source)
values ('1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001', 'email', 'unsubscribed', 'admin');
select set_config('wf.consent', pg_temp.workflow('consent', '{"trigger_event": "promo", "actions": [
  {"type": "send_email", "subject": "s", "body": "b"}, {"type": "notify_slack", "text": "after"}]}')::text, true);
select pg_temp.event('promo');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.consent')::uuid), array['after'],
  'an unsubscribed client gets no email, and the run goes on');
select is((select s.detail ->> 'reason' from public.workflow_step_runs s join public.workflow_runs r on r.id = s.run_id
           where r.workflow_id = current_setting('wf.consent')::uuid and s.step_path = '0'), 'unsubscribed',
  'the skip is logged with its reason');
delete from public.contact_consent where client_id = '5a000000-0000-4000-8000-000000000001';

update public.tenants set time_zone = 'Pacific/Kiritimati' where id = '1a000000-0000-4000-8000-000000000001';
-- Noon UTC, 30 days on.
update private.workflow_clock set skew = date_trunc('day', now()) + interval '30 days 12 hours' - clock_timestamp();
select set_config('wf.quiet', pg_temp.workflow('quiet', '{"trigger_event": "late", "actions": [
  {"type": "send_sms", "body": "hello"}]}')::text, true);
-- Noon UTC is 02:00 at UTC+14.
select pg_temp.event('late');
select pg_temp.advance();
select is((select status || ' ' || (waiting_for ->> 'quiet_hours') from public.workflow_runs
           where workflow_id = current_setting('wf.quiet')::uuid), 'waiting true',
  'a marketing SMS at 02:00 local waits for quiet hours to end');
select is(pg_temp.texts(current_setting('wf.quiet')::uuid), '{}'::text[], 'and is not queued yet');
select private.advance_workflow_clock('6 hours');
select pg_temp.advance();
select is(pg_temp.texts(current_setting('wf.quiet')::uuid), array['Tenant A: hello' || chr(10) || 'Reply STOP to opt out'],
  'at 08:00 local it is queued');
update public.tenants set time_zone = 'UTC' where id = '1a000000-0000-4000-8000-000000000001';

select set_config('wf.fail', pg_temp.workflow('fails', '{"trigger_event": "oops", "actions": [
  {"type": "notify_slack", "text": "coupon {{event.coupon}}"}]}')::text, true);
select pg_temp.event('oops');
select pg_temp.advance();
select is((select status || ' ' || attempt from public.workflow_runs where workflow_id = current_setting('wf.fail')::uuid),
  'active 1', 'a failing step is retried later');
select private.advance_workflow_clock('1 hour'), pg_temp.advance() from generate_series(1, 4);
select is((select status || ' ' || attempt || ' ' || last_error from public.workflow_runs where workflow_id = current_setting('wf.fail')::uuid),
  'failed 5 the merge field {{event.coupon}} has no value', 'after 5 attempts the run fails, with the error');
select is((select array_agg(s.outcome order by s.id) from public.workflow_step_runs s join public.workflow_runs r on r.id = s.run_id
           where r.workflow_id = current_setting('wf.fail')::uuid), array['retry', 'retry', 'retry', 'retry', 'failed'],
  'each attempt is logged');
select is(pg_temp.texts(current_setting('wf.fail')::uuid), '{}'::text[], 'and nothing was queued');

select set_config('wf.tags', pg_temp.workflow('tags', '{"trigger_event": "tagme", "actions": [
  {"type": "update_client", "add_tags": ["vip", "b"], "remove_tags": ["old"], "set": {"city": "Nice"}},
  {"type": "branch", "if": {"field": "client.tags", "op": "contains", "value": "vip"},
   "then": [{"type": "notify_slack", "text": "vip in {{client.city}}"}], "else": [{"type": "notify_slack", "text": "not vip"}]}]}')::text, true);
update public.wholesale_clients set tags = '{old,a}' where id = '5a000000-0000-4000-8000-000000000001';
select pg_temp.event('tagme');
select pg_temp.advance();
select is((select tags::text || ' ' || city from public.wholesale_clients where id = '5a000000-0000-4000-8000-000000000001'),
  '{a,b,vip} Nice', 'update_client adds and removes tags and sets the city');
select is(pg_temp.texts(current_setting('wf.tags')::uuid), array['vip in Nice'], 'a branch reads the updated client');

select set_config('wf.hook', pg_temp.workflow('hook', '{"trigger_event": "hookme", "actions": [
  {"type": "webhook", "url": "https://hooks.example.com/in", "data": {"source": "crm"}}]}')::text, true);
select pg_temp.event('hookme', '{"deal": 7}');
select is(pg_temp.advance() ->> 'actions', '1', 'a webhook step is an action');
select is((select jsonb_build_object('channel', channel, 'to', recipient, 'type', payload #>> '{body,type}',
                                     'event', payload #> '{body,event}', 'data', payload #> '{body,data}',
                                     'client', payload #>> '{body,client,name}', 'keyed', id = private.wf_message_id(
                                       (payload ->> 'run_id')::uuid, '0'))
           from public.notification_outbox where payload ->> 'workflow_id' = current_setting('wf.hook')),
  '{"channel": "webhook", "to": "https://hooks.example.com/in", "type": "workflow.step", "event": {"deal": 7},
    "data": {"source": "crm"}, "client": "CA", "keyed": true}'::jsonb,
  'it queues the signed call in the outbox, keyed by run and step');

-- ------------------------------------------------------------------ client.inactive

insert into public.marketing_workflows (tenant_id, name, trigger_event, inactive_days, actions)
values ('1a000000-0000-4000-8000-000000000001', 'win back', 'client.inactive', 60,
        '[{"type": "notify_slack", "text": "{{client.name}} is quiet"}]');
select private.advance_workflow_clock('61 days');
-- Only this test's client.inactive workflow (the database may hold others).
update public.marketing_workflows set enabled = false
where trigger_event = 'client.inactive' and name <> 'win back';
-- More inactive clients than one call takes.
insert into public.wholesale_clients (tenant_id, name)
select '1a000000-0000-4000-8000-000000000001', 'Quiet ' || g from generate_series(1, 7) g;
select is(public.emit_inactive_client_events(5), 5, 'clients without an order in 60 days are inactive, 5 a call');
select cmp_ok(public.emit_inactive_client_events(5), '>=', 3, 'the next call takes the rest');
select is(public.emit_inactive_client_events(5), 0, 'and then none is left today');
select is((select count(*) from public.platform_events where type = 'client.inactive'
             and payload ->> 'client_id' = '5a000000-0000-4000-8000-000000000001'), 1::bigint,
  'one event a client and day');
select ok((select count(*) from public.workflow_runs r join public.marketing_workflows w on w.id = r.workflow_id
           where w.name = 'win back' and r.subject = '5a000000-0000-4000-8000-000000000001') = 1,
  'and the client''s win-back run starts once');

-- ------------------------------------------------------------------ tenants take turns

select pg_temp.advance();
insert into public.marketing_workflows (tenant_id, name, trigger_event, actions) values
  ('1a000000-0000-4000-8000-000000000001', 'fair', 'fair.test', '[{"type": "wait", "duration": "P1D"}]'),
  ('1b000000-0000-4000-8000-000000000001', 'fair', 'fair.test', '[{"type": "wait", "duration": "P1D"}]');
select private.emit_event('1a000000-0000-4000-8000-000000000001', 'fair.test', null, '{}') from generate_series(1, 30);
select private.emit_event('1b000000-0000-4000-8000-000000000001', 'fair.test', null, '{}');
select is(public.advance_workflow_runs(2) ->> 'runs', '2', 'a batch of two');
select is((select count(distinct r.tenant_id) from public.workflow_runs r join public.marketing_workflows w on w.id = r.workflow_id
           where w.name = 'fair' and r.status = 'waiting'), 2::bigint,
  'serves both tenants, though A''s 30 runs were due first');
select is((public.advance_workflow_runs(1000) - 'more'), '{"runs": 29, "actions": 0, "messages": 0, "failed": 0}'::jsonb,
  'and a single tenant''s backlog is not capped per call');

-- ------------------------------------------------------------------ execute_workflow, RLS

select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'event_data', jsonb_build_object('client_id', '5a000000-0000-4000-8000-000000000001'),
    'idempotency_key', 'k-1')) - 'event_id' - 'runs'),
  '{"success": true, "replayed": false, "workflows_executed": 1, "actions_taken": 2, "messages_queued": 2}'::jsonb,
  'execute_workflow records the event, starts the run and takes its actions');
select is((public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'event_data', jsonb_build_object('client_id', '5a000000-0000-4000-8000-000000000001'),
    'idempotency_key', 'k-1')) - 'event_id' - 'runs'),
  '{"success": true, "replayed": true, "workflows_executed": 1, "actions_taken": 0, "messages_queued": 0}'::jsonb,
  'the same key again starts nothing');
select throws_ok($$select public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'event_data', '{"other": 1}'::jsonb, 'idempotency_key', 'k-1'))$$,
  'CEI22', null, 'the same key for another event is refused');
select throws_ok($$select public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'workflow_id', gen_random_uuid()))$$, 'CEN04', 'workflow not found',
  'an unknown workflow is 404');
select throws_ok($$select public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'event_data', '{"client_id": "5b000000-0000-4000-8000-000000000001"}'::jsonb))$$,
  'CEN04', 'client not found', 'another tenant''s client is 404');
select throws_ok($$select public.execute_workflow(jsonb_build_object('tenant_id', '1b000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo'))$$, 'CEA03', null,
  'a tenant the user is not in is refused (the function''s admission answers 404 before)');
select throws_ok($$select public.execute_workflow(jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001',
    'trigger_event', 'Promo!'))$$, 'CEV01', null, 'a bad event type is 400');
select ok(public.workflow_webhook_secret('1a000000-0000-4000-8000-000000000001') ~ '^whsec_[A-Za-z0-9+/]{43}=$',
  'an admin reads the tenant''s webhook signing secret');
select is(public.workflow_webhook_secret('1a000000-0000-4000-8000-000000000001'),
  public.workflow_webhook_secret('1a000000-0000-4000-8000-000000000001'), 'the same one each time');
select tests.act_as('0a000000-0000-4000-8000-000000000002');
select throws_ok($$select public.workflow_webhook_secret('1a000000-0000-4000-8000-000000000001')$$, 'CEA03', null,
  'a member does not');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select throws_ok($$select public.workflow_webhook_secret('1a000000-0000-4000-8000-000000000001')$$, 'CEA03', null,
  'nor another tenant''s admin');
select throws_ok(format($$select public.execute_workflow(jsonb_build_object('tenant_id', '1b000000-0000-4000-8000-000000000001',
    'trigger_event', 'promo', 'workflow_id', %L))$$, current_setting('wf.consent')), 'CEN04', 'workflow not found',
  'another tenant''s workflow is 404');
select is((select count(*) from public.marketing_workflows where tenant_id <> '1b000000-0000-4000-8000-000000000001'),
  0::bigint, 'B sees none of A''s workflows');
select is((select count(*) from public.workflow_runs where tenant_id <> '1b000000-0000-4000-8000-000000000001'),
  0::bigint, 'nor its runs');
select is((select count(*) from public.platform_events where tenant_id <> '1b000000-0000-4000-8000-000000000001'),
  0::bigint, 'nor its events');
select ok((select count(*) from public.workflow_runs) > 0, 'B reads its own runs');
select throws_ok($$insert into public.marketing_workflows (tenant_id, name, trigger_event, actions)
  values ('1a000000-0000-4000-8000-000000000001', 'x', 'a', '[{"type": "notify_slack", "text": "t"}]')$$,
  '42501', null, 'nor writes a workflow for A');
select lives_ok($$insert into public.marketing_workflows (tenant_id, name, trigger_event, actions)
  values ('1b000000-0000-4000-8000-000000000001', 'mine', 'a', '[{"type": "notify_slack", "text": "t"}]')$$,
  'B writes its own');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select ok((select count(*) from public.workflow_runs) > 0 and (select count(*) from public.platform_events) > 0,
  'A reads its runs and events');
select is((select count(*) from public.marketing_workflows where tenant_id <> '1a000000-0000-4000-8000-000000000001'),
  0::bigint, 'and none of B''s workflows');
select throws_ok($$insert into public.platform_events (tenant_id, type) values ('1a000000-0000-4000-8000-000000000001', 'x')$$,
  '42501', null, 'a member cannot write events directly');
select throws_ok($$update public.workflow_runs set status = 'completed' where true$$,
  '42501', null, 'nor change a run');
select tests.act_as_owner();

update private.workflow_clock set skew = '0';
select * from finish();
rollback;
