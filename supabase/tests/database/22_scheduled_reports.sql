-- Scheduled reports: config checks, the claim of a slot (once), taking over
-- a dead worker's run, finishing (deliveries through the outbox, exactly
-- once per slot and recipient), the tenant a run reads, RLS and grants; and
-- report_data's row cap and names.
begin;
select no_plan();
select tests.make_fixture();

-- Tenant A sold PA1 (1 × 30); tenant B sold PB1 (7 × 10).
insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount, payment_terms,
  delivery_method) values
  ('70000000-0000-4000-8000-0000000000a1', '1a000000-0000-4000-8000-000000000001', '5a000000-0000-4000-8000-000000000001',
   'S-A', 'confirmed', 30, 'prepaid', 'pickup'),
  ('70000000-0000-4000-8000-0000000000b1', '1b000000-0000-4000-8000-000000000001', '5b000000-0000-4000-8000-000000000001',
   'S-B', 'confirmed', 70, 'prepaid', 'pickup');
insert into public.wholesale_order_items (tenant_id, order_id, line_number, product_id, warehouse_id, quantity,
  unit_price, total_price) values
  ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-0000000000a1', 1,
   '4a000000-0000-4000-8000-000000000001', '3a000000-0000-4000-8000-000000000001', 1, 30, 30),
  ('1b000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-0000000000b1', 1,
   '4b000000-0000-4000-8000-000000000001', '3b000000-0000-4000-8000-000000000001', 7, 10, 70);
insert into public.custom_reports (id, tenant_id, name, metrics, group_by) values
  ('7a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', 'Sales', '["revenue"]', '["product"]'),
  ('7b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', 'B sales', '["revenue"]', '["product"]');

-- Config checks.
select throws_like($$insert into public.scheduled_reports (tenant_id, report_id, schedule_type, schedule_config)
  values ('1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-000000000001', 'weekly',
          '{"time": "8am", "weekdays": ["funday"], "time_zone": "Nowhere/Land", "format": "csv", "colour": 1}')$$,
  '%invalid fields%', 'a bad config is refused');
select is((select count(*)::int from public.scheduled_reports where tenant_id = '1a000000-0000-4000-8000-000000000001'), 0,
  '…and nothing is stored');
create function pg_temp.detail(stmt text) returns jsonb language plpgsql as $$
declare d text;
begin
  execute stmt;
  return null;
exception when sqlstate 'CEV01' then
  get stacked diagnostics d = pg_exception_detail;
  return d::jsonb;
end
$$;
select is((select array_agg(k order by k) from jsonb_object_keys(pg_temp.detail($$
  insert into public.scheduled_reports (tenant_id, report_id, schedule_type, schedule_config)
  values ('1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-000000000001', 'weekly',
          '{"time": "8am", "weekdays": ["funday"], "time_zone": "Nowhere/Land", "format": "csv", "colour": 1}')$$)) k),
  array['schedule_config.colour', 'schedule_config.format', 'schedule_config.time', 'schedule_config.time_zone',
        'schedule_config.weekdays'], 'every bad field is named');
select is(pg_temp.detail($$insert into public.scheduled_reports (tenant_id, report_id, schedule_type, schedule_config)
  values ('1a000000-0000-4000-8000-000000000001', '7b000000-0000-4000-8000-000000000001', 'daily', '{"time": "08:00"}')$$),
  '{"report_id": "is not a report of this tenant"}', 'a schedule of another tenant''s report is refused');
select is(pg_temp.detail($$insert into public.scheduled_reports (tenant_id, report_id, schedule_type, schedule_config)
  values ('1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-000000000001', 'cron', '{"cron": "0 8 * *"}')$$),
  '{"schedule_config.cron": "must be a 5-field cron expression"}', 'a cron needs 5 fields');

-- A's schedule, with three recipients; B's, with one.
insert into public.scheduled_reports (id, tenant_id, report_id, schedule_type, schedule_config) values
  ('8a000000-0000-4000-8000-000000000001', '1a000000-0000-4000-8000-000000000001', '7a000000-0000-4000-8000-000000000001',
   'daily', '{"time": "08:00", "time_zone": "Europe/Paris"}'),
  ('8b000000-0000-4000-8000-000000000001', '1b000000-0000-4000-8000-000000000001', '7b000000-0000-4000-8000-000000000001',
   'daily', '{"time": "08:00"}');
insert into public.report_recipients (tenant_id, scheduled_report_id, email) values
  ('1a000000-0000-4000-8000-000000000001', '8a000000-0000-4000-8000-000000000001', 'one@a.test'),
  ('1a000000-0000-4000-8000-000000000001', '8a000000-0000-4000-8000-000000000001', 'two@a.test'),
  ('1a000000-0000-4000-8000-000000000001', '8a000000-0000-4000-8000-000000000001', 'three@a.test'),
  ('1b000000-0000-4000-8000-000000000001', '8b000000-0000-4000-8000-000000000001', 'one@b.test');
select throws_ok($$insert into public.report_recipients (tenant_id, scheduled_report_id, email)
  values ('1b000000-0000-4000-8000-000000000001', '8a000000-0000-4000-8000-000000000001', 'x@b.test')$$,
  'CEV01', null, 'a recipient of another tenant''s schedule is refused');
select throws_ok($$insert into public.report_recipients (tenant_id, scheduled_report_id, email)
  values ('1a000000-0000-4000-8000-000000000001', '8a000000-0000-4000-8000-000000000001', 'ONE@a.test')$$,
  '23505', null, 'an address is on a schedule once, whatever its case');

-- The first claim asks for the first slot; it is set once.
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'action', 'compute',
  'a new schedule asks for its first slot');
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') -> 'config',
  '{"time": "08:00", "time_zone": "Europe/Paris", "format": "pdf", "skip_if_empty": false, "orientation": "portrait"}',
  'the config comes with its defaults');
select is(public.set_report_schedule('8a000000-0000-4000-8000-000000000001', now() + interval '1 hour') ->> 'enabled',
  'true', 'the first slot is set');
select is((public.set_report_schedule('8a000000-0000-4000-8000-000000000001', now() + interval '9 hours')
  ->> 'next_run_at')::timestamptz, now() + interval '1 hour', 'a second answer changes nothing');
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'action', 'not_due', 'not yet');

-- Due: one claim runs it, the next is busy.
update public.scheduled_reports set next_run_at = now() - interval '1 minute'
where id in ('8a000000-0000-4000-8000-000000000001', '8b000000-0000-4000-8000-000000000001');
select set_config('t.claim', public.claim_report_slot('8a000000-0000-4000-8000-000000000001')::text, true);
select is(current_setting('t.claim')::jsonb ->> 'action', 'run', 'a due slot is claimed');
select is(current_setting('t.claim')::jsonb -> 'spec',
  '{"tenant_id": "1a000000-0000-4000-8000-000000000001", "metrics": ["revenue"], "group_by": ["product"], "row_limit": 10000}',
  'the spec''s tenant is the schedule''s');
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'action', 'busy',
  'a second claim of the slot is busy');
select is((select array_agg(x) from public.due_report_schedules() x), array['8b000000-0000-4000-8000-000000000001'::uuid],
  'the dispatcher leaves a slot with a live run alone');

-- The run reads A's rows only, as the service role.
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
set local role service_role;
select is(public.report_data(current_setting('t.claim')::jsonb -> 'spec') -> 'rows',
  '[["4a000000-0000-4000-8000-000000000001", 30.00]]', 'a scheduled run reads only its tenant''s rows');
select is(public.report_data(current_setting('t.claim')::jsonb -> 'spec') -> 'labels',
  '{"product": {"4a000000-0000-4000-8000-000000000001": "PA1"}}', 'and names its products');
reset role;
select set_config('request.jwt.claims', '', true);

-- Finishing sends once per recipient and moves the schedule.
select is(public.finish_report_slot('8a000000-0000-4000-8000-000000000001',
  (current_setting('t.claim')::jsonb ->> 'slot')::timestamptz,
  '{"status": "sent", "file_url": "https://files.test/a.pdf", "filename": "a.pdf", "content_type": "application/pdf",
    "attach": true, "title": "Sales", "row_count": 1, "file_path": "x/a.pdf", "size_bytes": 900}',
  now() + interval '1 day') - 'next_run_at',
  '{"delivered_count": 3, "notifications_queued": 3, "status": "sent"}', 'three deliveries are queued');
select is((select count(*)::int from public.notification_outbox o join public.report_deliveries d on d.notification_id = o.id
           where o.template = 'scheduled_report' and o.payload -> 'attachments' -> 0 ->> 'path' = 'https://files.test/a.pdf'
             and d.mode = 'attachment'), 3, 'each an outbox email with the file attached, logged');
select throws_ok($$select public.finish_report_slot('8a000000-0000-4000-8000-000000000001',
  (current_setting('t.claim')::jsonb ->> 'slot')::timestamptz, '{"status": "sent"}', now())$$,
  'CE409', null, 'a finished slot cannot be finished again');
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'action', 'not_due',
  'the schedule has moved on');
select is((select count(*)::int from public.report_deliveries where tenant_id = '1a000000-0000-4000-8000-000000000001'), 3,
  'still three deliveries');

-- A sent email marks the delivery and the recipient.
update public.notification_outbox set status = 'sent', sent_at = now() where recipient = 'two@a.test';
select is((select status from public.report_deliveries where email = 'two@a.test'), 'sent', 'the delivery is sent');
select isnt((select last_sent_at from public.report_recipients where email = 'two@a.test'), null, 'last_sent_at is set');
select is((select last_sent_at from public.report_recipients where email = 'one@a.test'), null,
  'and only for the recipient that was sent');

-- A dead worker's run is taken over when its lease ends, as attempt 2.
update public.scheduled_reports set next_run_at = now() - interval '30 seconds'
where id = '8a000000-0000-4000-8000-000000000001';
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'attempt', '1', 'a new slot');
update public.report_runs set lease_until = now() - interval '1 second' where status = 'running';
select is(public.claim_report_slot('8a000000-0000-4000-8000-000000000001') ->> 'attempt', '2',
  'taken over after the lease');
select is((select count(*)::int from public.report_runs where scheduled_report_id = '8a000000-0000-4000-8000-000000000001'),
  2, 'one run per slot');

-- A cron expression croner refuses turns the schedule off.
update public.scheduled_reports set schedule_type = 'cron', schedule_config = '{"cron": "61 8 * * *"}'
where id = '8b000000-0000-4000-8000-000000000001';
select is((select next_run_at from public.scheduled_reports where id = '8b000000-0000-4000-8000-000000000001'), null,
  'a changed schedule loses its slot');
select is(public.set_report_schedule('8b000000-0000-4000-8000-000000000001', null, 'schedule_config.cron is not valid'),
  '{"next_run_at": null, "enabled": false}', 'an invalid schedule is turned off');

-- report_data's row cap.
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
set local role service_role;
select is(public.report_data('{"tenant_id": "1a000000-0000-4000-8000-000000000001", "metrics": ["units_sold"],
  "group_by": ["product"], "row_limit": 1}'::jsonb) - 'columns' - 'totals' - 'labels' - 'time_zone',
  '{"rows": [["4a000000-0000-4000-8000-000000000001", 1.000]], "row_limit": 1, "truncated": false}',
  'under the cap: not truncated');
reset role;
select set_config('request.jwt.claims', '', true);
insert into public.wholesale_order_items (tenant_id, order_id, line_number, product_id, warehouse_id, quantity,
  unit_price, total_price) values
  ('1a000000-0000-4000-8000-000000000001', '70000000-0000-4000-8000-0000000000a1', 2,
   '4a000000-0000-4000-8000-000000000002', '3a000000-0000-4000-8000-000000000001', 1, 0, 0);
select set_config('request.jwt.claims', '{"role": "service_role"}', true);
set local role service_role;
select is(public.report_data('{"tenant_id": "1a000000-0000-4000-8000-000000000001", "metrics": ["units_sold"],
  "group_by": ["product"], "row_limit": 1}'::jsonb) -> 'truncated', 'true', 'over it: truncated, and said');
select throws_ok($$select public.report_data('{"tenant_id": "1a000000-0000-4000-8000-000000000001",
  "metrics": ["revenue"], "row_limit": 50001}')$$, 'CEV01', null, 'at most 50,000 rows');
reset role;
select set_config('request.jwt.claims', '', true);

-- RLS and grants.
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*)::int from public.scheduled_reports), 1, 'B sees its own schedule only');
select is((select count(*)::int from public.report_deliveries) + (select count(*)::int from public.report_runs)
  + (select count(*)::int from public.report_recipients), 1, 'and its own recipient, no runs or deliveries of A');
select throws_ok($$select public.claim_report_slot('8b000000-0000-4000-8000-000000000001')$$, '42501', null,
  'users cannot claim a slot');
select throws_ok($$update public.scheduled_reports set next_run_at = now()$$, '42501', null,
  'nor move a schedule''s slot');
select tests.act_as_owner();
select function_privs_are('public', 'finish_report_slot', array['uuid', 'timestamptz', 'jsonb', 'timestamptz'],
  'authenticated', array[]::text[], 'users cannot finish a run');
select function_privs_are('public', 'due_report_schedules', array['integer'], 'authenticated', array[]::text[],
  'nor list due schedules');
select isnt((select jobid from cron.job where jobname = 'dispatch-scheduled-reports'), null,
  'one dispatcher job');

select * from finish();
rollback;
