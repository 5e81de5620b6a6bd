-- Scheduled reports (seed 000 §8): schedules, their recipients, one run per
-- slot, and each recipient's delivery through the outbox.
--
-- A slot is (schedule, next_run_at). The run of a slot is a row of
-- public.report_runs whose primary key is that pair, so a slot is claimed
-- once: a second dispatcher, or a retry after a crash, finds the row. A run
-- whose worker died (its lease ran out) is claimed again and finishes the
-- same slot: its file has the same path, its deliveries are unique per slot
-- and recipient, and their outbox rows carry the same idempotency key to the
-- provider. Finishing a run moves next_run_at in the same transaction.
--
-- When a schedule runs next is computed in Rust (croner and chrono-tz, in
-- the schedule's time zone) by send-scheduled-report: a new or changed
-- schedule has no next_run_at until the dispatcher's next minute asks the
-- function to compute it.
--
-- Re-runnable like every migration here.

create table if not exists public.scheduled_reports (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  report_id uuid not null references public.custom_reports (id) on delete cascade,
  name text check (length(name) between 1 and 200),
  schedule_type text not null check (schedule_type in ('daily', 'weekly', 'monthly', 'cron')),
  schedule_config jsonb not null default '{}'::jsonb,
  next_run_at timestamptz,
  enabled boolean not null default true,
  last_run_at timestamptz,
  last_error text,
  -- when the schedule last changed: its first slot is the first after this
  schedule_changed_at timestamptz not null default now(),
  created_by uuid references auth.users (id) default auth.uid(),
  created_at timestamptz not null default now()
);
create index if not exists scheduled_reports_due_idx on public.scheduled_reports (next_run_at nulls first)
  where enabled;
select private.isolate_by_tenant('public.scheduled_reports', 'report schedules');
revoke all on public.scheduled_reports from anon, authenticated;
grant select, delete on public.scheduled_reports to authenticated;
grant insert (tenant_id, report_id, name, schedule_type, schedule_config, enabled),
  update (report_id, name, schedule_type, schedule_config, enabled)
  on public.scheduled_reports to authenticated;
grant all on public.scheduled_reports to service_role;

create table if not exists public.report_recipients (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  scheduled_report_id uuid not null references public.scheduled_reports (id) on delete cascade,
  email text not null check (length(email) <= 320 and email ~ '^[^@\s<>,;"]+@[^@\s<>,;"]+\.[^@\s<>,;"]+$'),
  last_sent_at timestamptz,
  created_at timestamptz not null default now()
);
-- Addresses are stored trimmed and lower-cased (private.check_report_recipient),
-- so this is "once per schedule, whatever its case".
create unique index if not exists report_recipients_email_key
  on public.report_recipients (scheduled_report_id, email);
select private.isolate_by_tenant('public.report_recipients', 'report recipients');
revoke all on public.report_recipients from anon, authenticated;
grant select, delete on public.report_recipients to authenticated;
grant insert (tenant_id, scheduled_report_id, email), update (email) on public.report_recipients to authenticated;
grant all on public.report_recipients to service_role;

-- One row per slot: the run's state. Members read it; only the service role writes.
create table if not exists public.report_runs (
  scheduled_report_id uuid not null references public.scheduled_reports (id) on delete cascade,
  slot timestamptz not null,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  status text not null default 'running' check (status in ('running', 'sent', 'skipped', 'failed')),
  attempts integer not null default 1,
  lease_until timestamptz not null,
  file_path text,
  size_bytes bigint,
  row_count integer,
  delivered_count integer,
  error text,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  primary key (scheduled_report_id, slot)
);
alter table public.report_runs enable row level security;
drop policy if exists "Members can read their tenant's report runs" on public.report_runs;
create policy "Members can read their tenant's report runs" on public.report_runs
  for select to authenticated using (tenant_id in (select private.current_tenant_ids()));
revoke all on public.report_runs from anon, authenticated;
grant select on public.report_runs to authenticated;
grant all on public.report_runs to service_role;

-- Each recipient's delivery of a slot: the outbox row that sends it (its
-- attempts, errors and status are the outbox's), and how the file went.
create table if not exists public.report_deliveries (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  scheduled_report_id uuid not null references public.scheduled_reports (id) on delete cascade,
  slot timestamptz not null,
  recipient_id uuid references public.report_recipients (id) on delete set null,
  email text not null,
  mode text not null check (mode in ('attachment', 'link')),
  notification_id uuid not null references public.notification_outbox (id) on delete cascade,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'dead')),
  sent_at timestamptz,
  created_at timestamptz not null default now(),
  unique (scheduled_report_id, slot, email)
);
create index if not exists report_deliveries_notification_idx on public.report_deliveries (notification_id);
alter table public.report_deliveries enable row level security;
drop policy if exists "Members can read their tenant's report deliveries" on public.report_deliveries;
create policy "Members can read their tenant's report deliveries" on public.report_deliveries
  for select to authenticated using (tenant_id in (select private.current_tenant_ids()));
revoke all on public.report_deliveries from anon, authenticated;
grant select on public.report_deliveries to authenticated;
grant all on public.report_deliveries to service_role;

/*
 * private.check_scheduled_report(): a schedule's config, checked when it is
 * written; the report must be the tenant's; a changed schedule loses its
 * next_run_at, which the dispatcher has computed afresh. The config:
 *   time          'HH:MM' (daily, weekly, monthly)
 *   weekdays      ['mon', …] (weekly; default ['mon'])
 *   day_of_month  1 to 28 or 'last' (monthly; default 1)
 *   cron          5 fields (cron)
 *   time_zone     an IANA zone (default: the tenant's)
 *   format        'pdf' (default) or 'excel'
 *   skip_if_empty true: no email when the report has no rows
 *   orientation   'portrait' (default) or 'landscape'
 * Raises CEV01 naming the field. Locks nothing.
 */
create or replace function private.check_scheduled_report()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  c jsonb := new.schedule_config;
  errors jsonb := '{}'::jsonb;
  k text;
begin
  if jsonb_typeof(c) is distinct from 'object' then
    raise exception using errcode = 'CEV01', message = 'the schedule has invalid fields',
      detail = '{"schedule_config": "must be an object"}';
  end if;
  for k in select jsonb_object_keys(c) loop
    if k not in ('time', 'weekdays', 'day_of_month', 'cron', 'time_zone', 'format', 'skip_if_empty', 'orientation') then
      errors := errors || jsonb_build_object('schedule_config.' || k, 'unknown field');
    end if;
  end loop;
  if new.schedule_type <> 'cron' and (c ->> 'time' is null or c ->> 'time' !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$') then
    errors := errors || '{"schedule_config.time": "must be HH:MM (24-hour, local)"}';
  end if;
  if new.schedule_type = 'cron' and (jsonb_typeof(c -> 'cron') is distinct from 'string'
      or array_length(regexp_split_to_array(trim(c ->> 'cron'), '\s+'), 1) <> 5 or length(c ->> 'cron') > 100) then
    errors := errors || '{"schedule_config.cron": "must be a 5-field cron expression"}';
  end if;
  if c ? 'weekdays' and (jsonb_typeof(c -> 'weekdays') <> 'array' or jsonb_array_length(c -> 'weekdays') not between 1 and 7
      or exists (select 1 from jsonb_array_elements(c -> 'weekdays') d
                 where d not in ('"mon"', '"tue"', '"wed"', '"thu"', '"fri"', '"sat"', '"sun"'))) then
    errors := errors || '{"schedule_config.weekdays": "must be 1 to 7 of mon, tue, wed, thu, fri, sat, sun"}';
  end if;
  if c ? 'day_of_month' and not (c -> 'day_of_month' = '"last"'
      or (jsonb_typeof(c -> 'day_of_month') = 'number' and (c ->> 'day_of_month') ~ '^[0-9]{1,2}$'
          and (c ->> 'day_of_month')::int between 1 and 28)) then
    errors := errors || '{"schedule_config.day_of_month": "must be 1 to 28, or \"last\""}';
  end if;
  if c ? 'time_zone' and (jsonb_typeof(c -> 'time_zone') <> 'string'
      or not exists (select 1 from pg_catalog.pg_timezone_names z where z.name = c ->> 'time_zone')) then
    errors := errors || '{"schedule_config.time_zone": "must be an IANA time zone, e.g. Europe/Paris"}';
  end if;
  if c ? 'format' and c ->> 'format' is distinct from 'pdf' and c ->> 'format' is distinct from 'excel' then
    errors := errors || '{"schedule_config.format": "must be pdf or excel"}';
  end if;
  if c ? 'skip_if_empty' and jsonb_typeof(c -> 'skip_if_empty') <> 'boolean' then
    errors := errors || '{"schedule_config.skip_if_empty": "must be true or false"}';
  end if;
  if c ? 'orientation' and c ->> 'orientation' is distinct from 'portrait' and c ->> 'orientation' is distinct from 'landscape' then
    errors := errors || '{"schedule_config.orientation": "must be portrait or landscape"}';
  end if;
  if not exists (select 1 from public.custom_reports r where r.id = new.report_id and r.tenant_id = new.tenant_id) then
    errors := errors || '{"report_id": "is not a report of this tenant"}';
  end if;
  if errors <> '{}'::jsonb then
    raise exception using errcode = 'CEV01', message = 'the schedule has invalid fields', detail = errors::text;
  end if;
  if tg_op = 'INSERT' or new.schedule_type is distinct from old.schedule_type
     or new.schedule_config is distinct from old.schedule_config
     or (new.enabled and not old.enabled) then
    new.next_run_at := null;
    new.schedule_changed_at := now();
  end if;
  return new;
end
$$;
revoke all on function private.check_scheduled_report() from public;
drop trigger if exists check_scheduled_report on public.scheduled_reports;
create trigger check_scheduled_report before insert or update on public.scheduled_reports
  for each row execute function private.check_scheduled_report();

/*
 * private.check_report_recipient(): a recipient belongs to its schedule's
 * tenant; its address is stored trimmed and lower-cased. Raises CEV01.
 * Locks nothing.
 */
create or replace function private.check_report_recipient()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.scheduled_reports s
                 where s.id = new.scheduled_report_id and s.tenant_id = new.tenant_id) then
    raise exception using errcode = 'CEV01', message = 'the recipient has invalid fields',
      detail = '{"scheduled_report_id": "is not a schedule of this tenant"}';
  end if;
  new.email := lower(trim(new.email));
  return new;
end
$$;
revoke all on function private.check_report_recipient() from public;
drop trigger if exists check_report_recipient on public.report_recipients;
create trigger check_report_recipient before insert or update on public.report_recipients
  for each row execute function private.check_report_recipient();

-- How long a claimed run may take before another worker may take it over.
create or replace function private.report_run_lease()
returns interval
language sql
immutable
set search_path = ''
as $$ select interval '5 minutes' $$;
revoke all on function private.report_run_lease() from public;

/*
 * public.claim_report_slot(scheduled_report_id): what send-scheduled-report
 * does with a schedule now (service role only). Locks the schedule's row
 * (FOR UPDATE: two claims of one schedule queue) and, when a slot is due,
 * inserts or takes over its run. Returns {action, …}:
 *   'compute'  no next_run_at yet: compute the first slot after `after`
 *              and call set_report_schedule (nothing is sent);
 *   'not_due'  next_run_at is in the future (it may just have been sent);
 *   'busy'     another worker holds this slot's run (its lease is live);
 *   'disabled' the schedule is off;
 *   'run'      this call owns the run of `slot` (attempt n): the report
 *              spec (the tenant from the schedule row, never the request),
 *              the config, the recipients, the tenant's name, the time the
 *              report is made and the bucket's size limit.
 * Raises CEN04 for an unknown schedule.
 */
create or replace function public.claim_report_slot(scheduled_report_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  s public.scheduled_reports;
  r public.custom_reports;
  run public.report_runs;
  tz text;
  cfg jsonb;
begin
  select * into s from public.scheduled_reports x where x.id = claim_report_slot.scheduled_report_id for update;
  if not found then
    perform private.raise_error('CEN04', 'schedule not found',
      jsonb_build_object('resource', 'scheduled_report', 'id', claim_report_slot.scheduled_report_id));
  end if;
  select coalesce(t.time_zone, 'UTC') into tz from public.tenants t where t.id = s.tenant_id;
  cfg := jsonb_build_object('time_zone', tz, 'format', 'pdf', 'skip_if_empty', false, 'orientation', 'portrait')
    || s.schedule_config;
  if not s.enabled then
    return jsonb_build_object('action', 'disabled');
  end if;
  if s.next_run_at is null then
    return jsonb_build_object('action', 'compute', 'schedule_type', s.schedule_type, 'config', cfg,
      'after', s.schedule_changed_at);
  end if;
  if s.next_run_at > now() then
    return jsonb_build_object('action', 'not_due', 'next_run_at', s.next_run_at);
  end if;
  insert into public.report_runs as x (scheduled_report_id, slot, tenant_id, lease_until)
  values (s.id, s.next_run_at, s.tenant_id, now() + private.report_run_lease())
  on conflict on constraint report_runs_pkey do update
    set attempts = x.attempts + 1, lease_until = excluded.lease_until, error = null
    where x.status = 'running' and x.lease_until < now()
  returning * into run;
  if not found then
    return jsonb_build_object('action', 'busy', 'slot', s.next_run_at);
  end if;
  select * into r from public.custom_reports x where x.id = s.report_id;
  return jsonb_build_object(
    'action', 'run',
    'slot', s.next_run_at,
    'attempt', run.attempts,
    'tenant_id', s.tenant_id,
    'schedule_type', s.schedule_type,
    'config', cfg,
    'name', coalesce(s.name, r.name),
    'report_id', r.id,
    'visualization_type', r.visualization_type,
    'spec', jsonb_build_object('tenant_id', s.tenant_id, 'metrics', r.metrics,
        'row_limit', case when cfg ->> 'format' = 'excel' then 50000 else 10000 end)
      || case when r.filters is not null then jsonb_build_object('filters', r.filters) else '{}'::jsonb end
      || case when r.data_sources is not null then jsonb_build_object('data_sources', r.data_sources) else '{}'::jsonb end
      || case when r.group_by is not null then jsonb_build_object('group_by', r.group_by) else '{}'::jsonb end,
    'recipients', (select count(*) from public.report_recipients x where x.scheduled_report_id = s.id),
    'tenant_name', (select t.business_name from public.tenants t where t.id = s.tenant_id),
    'generated_at', to_char(now() at time zone (cfg ->> 'time_zone'), 'YYYY-MM-DD HH24:MI') || ' ' || (cfg ->> 'time_zone'),
    'file_size_limit', (select b.file_size_limit from storage.buckets b where b.id = 'reports'));
end
$$;
revoke all on function public.claim_report_slot(uuid) from public, anon, authenticated;
grant execute on function public.claim_report_slot(uuid) to service_role;

/*
 * public.set_report_schedule(scheduled_report_id, next_run_at, error): the
 * first slot of a new or changed schedule (service role only); with an
 * error instead (a cron expression croner refuses), the schedule is turned
 * off and the error kept. Only a schedule still without next_run_at changes.
 * Returns {next_run_at, enabled}. Locks the schedule's row.
 */
create or replace function public.set_report_schedule(scheduled_report_id uuid, next_run_at timestamptz default null,
  error text default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  s public.scheduled_reports;
begin
  update public.scheduled_reports x
  set next_run_at = case when set_report_schedule.error is null then set_report_schedule.next_run_at end,
      enabled = set_report_schedule.error is null,
      last_error = set_report_schedule.error
  where x.id = set_report_schedule.scheduled_report_id and x.next_run_at is null
  returning * into s;
  if not found then
    select * into s from public.scheduled_reports x where x.id = set_report_schedule.scheduled_report_id;
  end if;
  return jsonb_build_object('next_run_at', s.next_run_at, 'enabled', s.enabled);
end
$$;
revoke all on function public.set_report_schedule(uuid, timestamptz, text) from public, anon, authenticated;
grant execute on function public.set_report_schedule(uuid, timestamptz, text) to service_role;

/*
 * public.finish_report_slot(scheduled_report_id, slot, outcome, next_run_at):
 * ends the run this worker claimed (service role only), in one transaction:
 *   outcome.status 'sent': one outbox email and one report_deliveries row
 *     per recipient (unique per slot and recipient: a retried run adds
 *     none), carrying the file as an attachment when outcome.attach, else
 *     the link; outcome: {file_path, file_url, size_bytes, row_count,
 *     filename, content_type, attach, title, period};
 *   'skipped' (empty, skip_if_empty) and 'failed' (outcome.error) send
 *     nothing;
 * then moves the schedule to next_run_at (none: it never runs again). Returns {delivered_count,
 * next_run_at, notifications_queued}. Raises RUN_NOT_RUNNING (409) when the run is not
 * this slot's running one (finished already, or never claimed). Locks the
 * schedule's row, then the run's.
 */
create or replace function public.finish_report_slot(scheduled_report_id uuid, slot timestamptz,
  outcome jsonb, next_run_at timestamptz default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  s public.scheduled_reports;
  run public.report_runs;
  rcp public.report_recipients;
  note uuid;
  queued integer := 0;
  attach boolean := coalesce((outcome ->> 'attach')::boolean, false);
  outcome_status text := coalesce(outcome ->> 'status', 'failed');
begin
  select * into s from public.scheduled_reports x where x.id = finish_report_slot.scheduled_report_id for update;
  select * into run from public.report_runs x
  where x.scheduled_report_id = finish_report_slot.scheduled_report_id and x.slot = finish_report_slot.slot
  for update;
  if run.status is distinct from 'running' then
    perform private.raise_api_error(409, 'RUN_NOT_RUNNING', 'this slot''s run is not running',
      jsonb_build_object('scheduled_report_id', finish_report_slot.scheduled_report_id, 'slot', finish_report_slot.slot,
        'status', run.status));
  end if;
  if outcome_status not in ('sent', 'skipped', 'failed') then
    perform private.raise_error('CEV01', 'the outcome has invalid fields', '{"status": "must be sent, skipped or failed"}');
  end if;
  if outcome_status = 'sent' then
    for rcp in select * from public.report_recipients x
               where x.scheduled_report_id = s.id order by x.created_at, x.id loop
      if not exists (select 1 from public.report_deliveries d
                     where d.scheduled_report_id = s.id and d.slot = finish_report_slot.slot and d.email = rcp.email) then
        insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
        values (s.tenant_id, 'email', 'scheduled_report', rcp.email,
          jsonb_build_object('report_name', outcome ->> 'title', 'period', outcome ->> 'period',
            'business_name', (select t.business_name from public.tenants t where t.id = s.tenant_id),
            'file_url', outcome ->> 'file_url', 'filename', outcome ->> 'filename',
            'row_count', outcome -> 'row_count', 'attached', attach)
          || case when attach then jsonb_build_object('attachments', jsonb_build_array(jsonb_build_object(
                 'filename', outcome ->> 'filename', 'path', outcome ->> 'file_url',
                 'content_type', outcome ->> 'content_type'))) else '{}'::jsonb end)
        returning id into note;
        insert into public.report_deliveries (tenant_id, scheduled_report_id, slot, recipient_id, email, mode, notification_id)
        values (s.tenant_id, s.id, finish_report_slot.slot, rcp.id, rcp.email,
          case when attach then 'attachment' else 'link' end, note);
        queued := queued + 1;
      end if;
    end loop;
  end if;
  update public.report_runs x
  set status = outcome_status, finished_at = now(), file_path = outcome ->> 'file_path',
      size_bytes = (outcome ->> 'size_bytes')::bigint, row_count = (outcome ->> 'row_count')::integer,
      delivered_count = (select count(*) from public.report_deliveries d
                         where d.scheduled_report_id = s.id and d.slot = finish_report_slot.slot),
      error = outcome ->> 'error'
  where x.scheduled_report_id = s.id and x.slot = finish_report_slot.slot
  returning * into run;
  update public.scheduled_reports x
  set next_run_at = finish_report_slot.next_run_at, last_run_at = finish_report_slot.slot,
      last_error = coalesce(outcome ->> 'error',
        case when finish_report_slot.next_run_at is null then 'the schedule never runs again' end),
      -- a schedule that never matches again is turned off, not asked about each minute
      enabled = x.enabled and finish_report_slot.next_run_at is not null
  where x.id = s.id;
  return jsonb_build_object('delivered_count', run.delivered_count, 'next_run_at', finish_report_slot.next_run_at,
    'notifications_queued', queued, 'status', run.status);
end
$$;
revoke all on function public.finish_report_slot(uuid, timestamptz, jsonb, timestamptz) from public, anon, authenticated;
grant execute on function public.finish_report_slot(uuid, timestamptz, jsonb, timestamptz) to service_role;

/*
 * private.track_report_delivery(): a scheduled report's outbox row that
 * changes status is mirrored in its report_deliveries row, and a sent one
 * stamps the recipient's last_sent_at.
 */
create or replace function private.track_report_delivery()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.report_deliveries d
  set status = new.status, sent_at = new.sent_at
  where d.notification_id = new.id;
  if new.status = 'sent' then
    update public.report_recipients r
    set last_sent_at = greatest(r.last_sent_at, coalesce(new.sent_at, now()))
    where r.id in (select d.recipient_id from public.report_deliveries d where d.notification_id = new.id);
  end if;
  return null;
end
$$;
revoke all on function private.track_report_delivery() from public;
drop trigger if exists track_report_delivery on public.notification_outbox;
create trigger track_report_delivery after update of status on public.notification_outbox
  for each row when (new.template = 'scheduled_report' and new.status is distinct from old.status)
  execute function private.track_report_delivery();

/*
 * public.due_report_schedules(max): the schedules the dispatcher should hand
 * to send-scheduled-report now: enabled, and without a next_run_at or due,
 * and without a live run of that slot; at most `max`, oldest first. Rows
 * another dispatcher is looking at (locked) are skipped. Locks nothing past
 * its statement.
 */
create or replace function public.due_report_schedules(max integer default 100)
returns setof uuid
language sql
security definer
set search_path = ''
as $$
  select s.id from public.scheduled_reports s
  where s.enabled and (s.next_run_at is null or s.next_run_at <= now())
    and not exists (select 1 from public.report_runs r
                    where r.scheduled_report_id = s.id and r.slot = s.next_run_at
                      and r.status = 'running' and r.lease_until > now())
  order by s.next_run_at nulls first
  limit greatest(1, least(max, 1000))
  for update of s skip locked
$$;
revoke all on function public.due_report_schedules(integer) from public, anon, authenticated;
grant execute on function public.due_report_schedules(integer) to service_role;

-- The dispatcher: every minute, one call of send-scheduled-report per due
-- schedule (not a cron job per report). The function's claim is what makes
-- a slot run once; this only decides whom to call.
create extension if not exists pg_cron;
select cron.schedule('dispatch-scheduled-reports', '* * * * *', $job$
  select net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url')
           || '/functions/v1/send-scheduled-report',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
    body := jsonb_build_object('scheduled_report_id', id),
    timeout_milliseconds := 60000)
  from public.due_report_schedules(100) as id
$job$);

-- The email a recipient gets. The file is attached when it is small enough
-- for the provider, else linked; the link works for 7 days either way.
insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'scheduled_report', 'email', 'en',
$scheduled_report_subject${{report_name}}{{#if period}} · {{period}}{{/if}}$scheduled_report_subject$,
$scheduled_report_html$<!doctype html><html><body style="font-family:sans-serif">\
<p>Your scheduled report <strong>{{report_name}}</strong>{{#if period}} for {{period}}{{/if}} from {{business_name}} is ready \
({{row_count}} {{row_count | plural:"row":"rows"}}).</p>\
{{#if attached}}<p>It is attached as {{filename}}.</p>{{/if}}\
<p><a href="{{file_url}}">Download {{filename}}</a><br>The link works for 7 days.</p>\
<p>{{business_name}}</p></body></html>$scheduled_report_html$,
$scheduled_report_body$Your scheduled report {{report_name}}{{#if period}} for {{period}}{{/if}} from {{business_name}} is ready \
({{row_count}} {{row_count | plural:"row":"rows"}}).
{{#if attached}}It is attached as {{filename}}.
{{/if}}
Download {{filename}}: {{file_url}}
The link works for 7 days.

{{business_name}}
$scheduled_report_body$)
on conflict do nothing;
