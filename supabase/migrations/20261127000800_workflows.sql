-- Marketing workflows (seed 000 §5, execute-workflow): events, definitions
-- validated in SQL, and durable runs advanced step by step in Postgres.
--
-- Every step runs inside the transaction that advances its run, and every
-- side effect is a row written in that transaction (an outbox message keyed
-- run:step, a client update): a drain that dies rolls back whole, and the
-- next one does the step again, once. Messages leave through the outbox,
-- whose dispatcher sends each row once (its id is the provider's
-- idempotency key).
--
-- Re-runnable like every migration here.

-- ------------------------------------------------------------------ the clock

-- Workflow time is the wall clock plus a skew that only tests move
-- (private.advance_workflow_clock), so a three-day wait is tested without
-- sleeping. Nobody but the database owner can write it.
create table if not exists private.workflow_clock (
  only_row boolean primary key default true check (only_row),
  skew interval not null default '0'
);
insert into private.workflow_clock default values on conflict do nothing;

create or replace function private.wf_now()
returns timestamptz
language sql
volatile
set search_path = ''
as $$
  select pg_catalog.clock_timestamp() + coalesce((select c.skew from private.workflow_clock c), '0'::interval)
$$;
revoke all on function private.wf_now() from public, anon, authenticated;

/*
 * private.advance_workflow_clock(by): the test-only hook: workflow time moves
 * forward by `by` and every run waiting for a time now past becomes due.
 * Returns the new skew.
 */
create or replace function private.advance_workflow_clock(by interval)
returns interval
language sql
set search_path = ''
as $$
  update private.workflow_clock set skew = skew + advance_workflow_clock.by returning skew
$$;
revoke all on function private.advance_workflow_clock(interval) from public, anon, authenticated;

-- ------------------------------------------------------------------ events

create table if not exists public.platform_events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  type text not null check (type ~ '^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$'),
  -- whom the event is about: a client for order, campaign and consent events
  subject uuid,
  payload jsonb not null default '{}'::jsonb
    check (jsonb_typeof(payload) = 'object' and octet_length(payload::text) <= 65536),
  occurred_at timestamptz not null default now(),
  -- workflow time when it was recorded, under the subject's lock (see
  -- private.before_platform_event): what a wait_for_event compares with
  recorded_at timestamptz not null default now(),
  idempotency_key text not null default gen_random_uuid()::text
    check (length(idempotency_key) between 1 and 200),
  -- set when execute-workflow injects the event for one workflow only
  workflow_id uuid,
  constraint platform_events_tenant_key unique (tenant_id, idempotency_key)
);
create index if not exists platform_events_subject_idx
  on public.platform_events (tenant_id, subject, type, recorded_at);
select private.isolate_by_tenant('public.platform_events', 'events');
-- Append-only: members read, nobody changes a row.
revoke all on public.platform_events from anon, authenticated, service_role;
grant select on public.platform_events to authenticated;
grant select, insert on public.platform_events to service_role;

-- ------------------------------------------------------------------ definitions

create table if not exists public.marketing_workflows (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  trigger_event text not null,
  conditions jsonb,
  actions jsonb not null default '[]'::jsonb,
  enabled boolean not null default true,
  -- once: one run per subject, ever; every_time: a run per event;
  -- cooldown: not again for the subject within `cooldown` of its last start
  reentry text not null default 'every_time' check (reentry in ('once', 'every_time', 'cooldown')),
  cooldown text,
  -- an event type that ends the subject's active run of this workflow
  exit_when text,
  -- client.inactive: the days without an order that make a client inactive
  inactive_days integer,
  -- bumped by every change of the definition; runs keep the one they began with
  version integer not null default 1,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index if not exists marketing_workflows_trigger_idx
  on public.marketing_workflows (tenant_id, trigger_event) where enabled;
select private.isolate_by_tenant('public.marketing_workflows', 'workflows');
revoke all on public.marketing_workflows from anon, authenticated;
grant select, delete on public.marketing_workflows to authenticated;
grant insert (id, tenant_id, name, trigger_event, conditions, actions, enabled, reentry, cooldown,
  exit_when, inactive_days),
  update (name, trigger_event, conditions, actions, enabled, reentry, cooldown, exit_when, inactive_days)
  on public.marketing_workflows to authenticated;
grant all on public.marketing_workflows to service_role;

-- Each version of each definition, as runs pinned it.
create table if not exists public.workflow_versions (
  workflow_id uuid not null references public.marketing_workflows (id) on delete cascade,
  version integer not null,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  definition jsonb not null,
  created_at timestamptz not null default now(),
  primary key (workflow_id, version)
);
select private.isolate_by_tenant('public.workflow_versions', 'workflow versions');
revoke all on public.workflow_versions from anon, authenticated;
grant select on public.workflow_versions to authenticated;
grant select on public.workflow_versions to service_role;

-- ------------------------------------------------------------------ runs

create table if not exists public.workflow_runs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  workflow_id uuid not null,
  version integer not null,
  subject uuid,
  event_id bigint references public.platform_events (id) on delete set null,
  -- once: the subject (one run per workflow and subject, ever); else null
  once_key text,
  status text not null default 'active'
    check (status in ('active', 'waiting', 'completed', 'exited', 'failed')),
  -- the current step: a path into the actions, e.g. {2,then,0}; null at the end
  step text[],
  -- workflow time when the current step began: a wait_for_event matches
  -- events recorded since then
  step_since timestamptz not null,
  context jsonb not null default '{}'::jsonb,
  next_run_at timestamptz,
  waiting_for jsonb,
  exit_when text,
  attempt integer not null default 0,
  steps_taken integer not null default 0,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz,
  foreign key (workflow_id, version) references public.workflow_versions (workflow_id, version) on delete cascade,
  constraint workflow_runs_once_key unique (workflow_id, once_key)
);
create index if not exists workflow_runs_due_idx on public.workflow_runs (next_run_at)
  where status in ('active', 'waiting');
-- What an event looks up: the subject's runs it ends, and those it wakes.
drop index if exists public.workflow_runs_subject_idx;
create index if not exists workflow_runs_exit_idx on public.workflow_runs (tenant_id, subject, exit_when)
  where status in ('active', 'waiting') and exit_when is not null;
create index if not exists workflow_runs_wake_idx on public.workflow_runs (tenant_id, subject, (waiting_for ->> 'event'))
  where status = 'waiting' and waiting_for ? 'event';
create index if not exists workflow_runs_tenant_due_idx on public.workflow_runs (tenant_id, next_run_at)
  where status in ('active', 'waiting');
create index if not exists workflow_runs_workflow_idx on public.workflow_runs (workflow_id, subject, created_at);
create index if not exists workflow_runs_event_idx on public.workflow_runs (event_id);
select private.isolate_by_tenant('public.workflow_runs', 'workflow runs');
revoke all on public.workflow_runs from anon, authenticated;
grant select on public.workflow_runs to authenticated;
grant select on public.workflow_runs to service_role;

create table if not exists public.workflow_step_runs (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  run_id uuid not null references public.workflow_runs (id) on delete cascade,
  step_path text not null,
  type text not null,
  outcome text not null check (outcome in ('done', 'skipped', 'waiting', 'matched', 'timed_out',
    'then', 'else', 'retry', 'failed')),
  detail jsonb not null default '{}'::jsonb,
  -- workflow time (private.wf_now)
  at timestamptz not null default private.wf_now()
);
alter table public.workflow_step_runs alter column at set default private.wf_now();
create index if not exists workflow_step_runs_run_idx on public.workflow_step_runs (run_id, id);
select private.isolate_by_tenant('public.workflow_step_runs', 'workflow steps');
revoke all on public.workflow_step_runs from anon, authenticated;
grant select on public.workflow_step_runs to authenticated;
grant select on public.workflow_step_runs to service_role;

-- Workflow messages: the text a step wrote, merged, in the tenant's name.
insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'workflow_message', 'email', 'en',
$workflow_message_email_subject${{subject}}$workflow_message_email_subject$,
$workflow_message_email_html$<!doctype html><html><body style="font-family:sans-serif">\
{{#each paragraphs max=200}}<p>{{this}}</p>{{/each}}\
<p>{{business_name}}</p></body></html>$workflow_message_email_html$,
$workflow_message_email_body${{text}}

{{business_name}}
$workflow_message_email_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'workflow_message', 'sms', 'en', null, null,
$workflow_message_sms_body${{text}}$workflow_message_sms_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'workflow_message', 'slack', 'en', null, null,
$workflow_message_slack_body${{business_name}}: {{text}}$workflow_message_slack_body$)
on conflict do nothing;

-- ------------------------------------------------------------------ webhooks

insert into public.notification_channels (name, description, tenant_editable) values
  ('webhook', 'A workflow''s signed HTTPS POST to the tenant''s endpoint (Standard Webhooks); no template', false)
on conflict do nothing;

-- Each tenant's Standard Webhooks signing secret (whsec_ + 32 random bytes,
-- base64), made when first asked for.
create table if not exists private.webhook_secrets (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  secret text not null,
  created_at timestamptz not null default now()
);
revoke all on private.webhook_secrets from public, anon, authenticated;

-- Test-only: hosts (host or host:port) a webhook step may name over http or
-- at a private address. Empty in production; the tests add the sandbox.
create table if not exists private.webhook_allowed_hosts (
  host text primary key
);
revoke all on private.webhook_allowed_hosts from public, anon, authenticated;

create or replace function private.webhook_secret(tenant uuid)
returns text
language plpgsql
set search_path = ''
as $$
declare
  s text;
begin
  insert into private.webhook_secrets (tenant_id, secret)
  values (webhook_secret.tenant, 'whsec_' || encode(decode(
    replace(gen_random_uuid()::text, '-', '') || replace(gen_random_uuid()::text, '-', ''), 'hex'), 'base64'))
  on conflict (tenant_id) do nothing;
  select w.secret into s from private.webhook_secrets w where w.tenant_id = webhook_secret.tenant;
  return s;
end
$$;
revoke all on function private.webhook_secret(uuid) from public, anon, authenticated;

/*
 * public.workflow_webhook_secret(tenant_id): the tenant's signing secret, for
 * its admins (and owners), to verify the webhooks its workflows send.
 * Raises CEA03 for anyone else.
 */
create or replace function public.workflow_webhook_secret(tenant_id uuid)
returns text
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_role(workflow_webhook_secret.tenant_id, 'admin');
  return private.webhook_secret(workflow_webhook_secret.tenant_id);
end
$$;
revoke all on function public.workflow_webhook_secret(uuid) from public, anon;
grant execute on function public.workflow_webhook_secret(uuid) to authenticated;

/* public.webhook_secrets_for(tenant_ids): the dispatcher's: {tenant_id: secret}. */
create or replace function public.webhook_secrets_for(tenant_ids uuid[])
returns jsonb
language sql
security definer
set search_path = ''
as $$
  select coalesce(jsonb_object_agg(t, private.webhook_secret(t)), '{}'::jsonb)
  from unnest(webhook_secrets_for.tenant_ids) t
$$;
revoke all on function public.webhook_secrets_for(uuid[]) from public, anon, authenticated;
grant execute on function public.webhook_secrets_for(uuid[]) to service_role;

/*
 * private.webhook_url_error(url): why a webhook step's URL is refused, or
 * null: https only, no user or password, at most 2,048 characters, and not
 * an IP address that is loopback, private, link-local (the cloud metadata
 * address), shared or reserved. Names are checked again after DNS
 * resolution, at every redirect, when the call is made.
 */
create or replace function private.webhook_url_error(url text)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  m text[];
  hst text;
  allowed boolean;
  ip inet;
begin
  if url is null or length(url) > 2048 then
    return 'must be a URL of at most 2048 characters';
  end if;
  m := regexp_match(url, '^(https?)://([^/?#\s]+)([/?#][^\s]*)?$');
  if m is null then
    return 'must be an https:// URL';
  end if;
  if m[2] ~ '@' then
    return 'must not carry a user or password';
  end if;
  hst := lower(m[2]);
  allowed := exists (select 1 from private.webhook_allowed_hosts a
                     where a.host = hst or a.host = regexp_replace(hst, ':\d+$', ''));
  if m[1] = 'http' and not allowed then
    return 'must be an https:// URL';
  end if;
  hst := regexp_replace(regexp_replace(hst, ':\d+$', ''), '^\[(.*)\]$', '\1');
  if hst ~ '^[0-9.]+$' or hst ~ ':' then
    begin
      ip := hst::inet;
    exception when others then
      return 'must name a valid host';
    end;
    if not allowed and (ip << '0.0.0.0/8' or ip << '10.0.0.0/8' or ip << '100.64.0.0/10' or ip << '127.0.0.0/8'
        or ip << '169.254.0.0/16' or ip << '172.16.0.0/12' or ip << '192.0.0.0/24' or ip << '192.168.0.0/16'
        or ip << '198.18.0.0/15' or ip <<= '224.0.0.0/3' or ip = '::1'::inet or ip = '::'::inet
        or ip << 'fc00::/7' or ip << 'fe80::/10' or ip << 'ff00::/8' or ip << '::ffff:0:0/96') then
      return 'must not be a private, loopback, link-local or reserved address';
    end if;
  elsif hst in ('localhost', 'metadata.google.internal') or hst ~ '\.(localhost|internal|local)$' then
    if not allowed then
      return 'must not be a private, loopback, link-local or reserved address';
    end if;
  end if;
  return null;
end
$$;
revoke all on function private.webhook_url_error(text) from public, anon, authenticated;

-- ------------------------------------------------------------------ validation

/*
 * private.wf_duration(text): an ISO 8601 duration (P3D, PT2H30M, P1W) as an
 * interval, or null if it is not one, is zero, or is over 366 days.
 */
create or replace function private.wf_duration(value text)
returns interval
language plpgsql
immutable
set search_path = ''
as $$
declare
  d interval;
begin
  if value is null or value !~ '^P(?!$)(\d{1,4}Y)?(\d{1,4}M)?(\d{1,4}W)?(\d{1,5}D)?(T(?=\d)(\d{1,6}H)?(\d{1,6}M)?(\d{1,8}S)?)?$' then
    return null;
  end if;
  d := value::interval;
  if d <= interval '0' or d > interval '366 days' then
    return null;
  end if;
  return d;
end
$$;
revoke all on function private.wf_duration(text) from public, anon, authenticated;

-- The client fields conditions and messages may read.
create or replace function private.wf_client_fields()
returns text[]
language sql
immutable
set search_path = ''
as $$
  select array['id', 'name', 'email', 'phone', 'city', 'status', 'tags', 'total_spent', 'order_count',
               'last_order_date']
$$;
revoke all on function private.wf_client_fields() from public, anon, authenticated;

/*
 * private.wf_condition_errors(cond, path, errors, depth): the errors of a
 * condition in the filter language, added to `errors` keyed by path:
 *   {"all": [cond, …]}, {"any": [cond, …]}, {"not": cond}: nested at most 5
 *   deep; {"field", "op", "value"} with field event.<name>[.<name>…],
 *   matched.<name>[.<name>…] or client.<one of private.wf_client_fields()>,
 *   and op
 *   eq, neq                 a string, number or boolean
 *   gt, gte, lt, lte        a number, or a date or time (YYYY-MM-DD…)
 *   in, not_in              an array of 1 to 100 strings or numbers
 *   contains                a string or number (in an array, or in a text)
 *   contains_any            an array of 1 to 100 strings (any in an array)
 *   before, after, on       a date (YYYY-MM-DD), the field's date compared
 *   exists                  true or false
 * (the campaign audiences' operators, with the same meaning, plus the
 * comparisons any event field needs)
 */
create or replace function private.wf_condition_errors(cond jsonb, path text, inout errors jsonb, depth integer)
language plpgsql
stable
set search_path = ''
as $$
declare
  key text;
  i integer := 0;
  item jsonb;
  field text;
  op text;
  val jsonb;
begin
  if jsonb_typeof(cond) is distinct from 'object' then
    errors := errors || jsonb_build_object(path, 'must be a condition object');
    return;
  end if;
  if depth > 5 then
    errors := errors || jsonb_build_object(path, 'conditions nest at most 5 deep');
    return;
  end if;
  if cond ? 'all' or cond ? 'any' then
    key := case when cond ? 'all' then 'all' else 'any' end;
    if (select count(*) from jsonb_object_keys(cond)) <> 1 then
      errors := errors || jsonb_build_object(path, format('"%s" stands alone', key));
    end if;
    if jsonb_typeof(cond -> key) <> 'array' or jsonb_array_length(cond -> key) not between 1 and 50 then
      errors := errors || jsonb_build_object(path || '.' || key, 'must be an array of 1 to 50 conditions');
      return;
    end if;
    for item in select x from jsonb_array_elements(cond -> key) x loop
      errors := private.wf_condition_errors(item, format('%s.%s[%s]', path, key, i), errors, depth + 1);
      i := i + 1;
    end loop;
    return;
  end if;
  if cond ? 'not' then
    if (select count(*) from jsonb_object_keys(cond)) <> 1 then
      errors := errors || jsonb_build_object(path, '"not" stands alone');
    end if;
    errors := private.wf_condition_errors(cond -> 'not', path || '.not', errors, depth + 1);
    return;
  end if;
  if exists (select 1 from jsonb_object_keys(cond) k where k not in ('field', 'op', 'value')) then
    errors := errors || jsonb_build_object(path, 'a condition has field, op and value only');
  end if;
  field := cond ->> 'field';
  op := cond ->> 'op';
  val := cond -> 'value';
  if field is null or not (
       field ~ '^(event|matched)(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,5}$'
       or (field ~ '^client\.[a-z_]+$' and substr(field, 8) = any (private.wf_client_fields()))) then
    errors := errors || jsonb_build_object(path || '.field',
      'must be event.<name>, matched.<name> or one of client.' || array_to_string(private.wf_client_fields(), ', client.'));
  end if;
  case op
    when 'eq', 'neq' then
      if jsonb_typeof(val) not in ('string', 'number', 'boolean') or val is null then
        errors := errors || jsonb_build_object(path || '.value', 'must be a string, number or boolean');
      end if;
    when 'gt', 'gte', 'lt', 'lte' then
      if val is null or not (jsonb_typeof(val) = 'number'
          or (jsonb_typeof(val) = 'string' and private.try_timestamptz(val #>> '{}') is not null)) then
        errors := errors || jsonb_build_object(path || '.value', 'must be a number or a date');
      end if;
    when 'in', 'not_in' then
      if jsonb_typeof(val) is distinct from 'array' or jsonb_array_length(val) not between 1 and 100
         or exists (select 1 from jsonb_array_elements(val) x where jsonb_typeof(x) not in ('string', 'number')) then
        errors := errors || jsonb_build_object(path || '.value', 'must be an array of 1 to 100 strings or numbers');
      end if;
    when 'contains' then
      if jsonb_typeof(val) not in ('string', 'number') or val is null then
        errors := errors || jsonb_build_object(path || '.value', 'must be a string or number');
      end if;
    when 'contains_any' then
      if jsonb_typeof(val) is distinct from 'array' or jsonb_array_length(val) not between 1 and 100
         or exists (select 1 from jsonb_array_elements(val) x where jsonb_typeof(x) <> 'string') then
        errors := errors || jsonb_build_object(path || '.value', 'must be an array of 1 to 100 strings');
      end if;
    when 'before', 'after', 'on' then
      if jsonb_typeof(val) is distinct from 'string' or private.try_date(val #>> '{}') is null then
        errors := errors || jsonb_build_object(path || '.value', 'must be a date (YYYY-MM-DD)');
      end if;
    when 'exists' then
      if jsonb_typeof(val) is distinct from 'boolean' then
        errors := errors || jsonb_build_object(path || '.value', 'must be true or false');
      end if;
    else
      errors := errors || jsonb_build_object(path || '.op',
        'must be one of: eq, neq, gt, gte, lt, lte, in, not_in, contains, contains_any, before, after, on, exists');
  end case;
end
$$;
revoke all on function private.wf_condition_errors(jsonb, text, jsonb, integer) from public, anon, authenticated;

create or replace function private.try_timestamptz(value text)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
begin
  if value is null or value !~ '^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$' then
    return null;
  end if;
  return value::timestamptz;
exception when others then
  return null;
end
$$;
revoke all on function private.try_timestamptz(text) from public, anon, authenticated;

/*
 * private.wf_merge_errors(text, path, errors): the merge fields of a message
 * text: {{client.<field>}}, {{tenant.name}}, {{event.<name>…}} (the event
 * that started the run) or {{matched.<name>…}} (the event the last
 * wait_for_event matched); anything else between {{ and }} is an error.
 */
create or replace function private.wf_merge_errors(value text, path text, inout errors jsonb)
language plpgsql
immutable
set search_path = ''
as $$
declare
  m text[];
begin
  for m in select regexp_matches(value, '\{\{(.*?)\}\}', 'g') loop
    if not (btrim(m[1]) ~ '^(event|matched)(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,5}$'
            or btrim(m[1]) = 'tenant.name'
            or (btrim(m[1]) ~ '^client\.[a-z_]+$' and substr(btrim(m[1]), 8) = any (private.wf_client_fields()))) then
      errors := errors || jsonb_build_object(path, format(
        'unknown merge field {{%s}}: use client.<field>, tenant.name, event.<name> or matched.<name>', btrim(m[1])));
      return;
    end if;
  end loop;
  if value ~ '\{\{' and value !~ '\}\}' then
    errors := errors || jsonb_build_object(path, 'a merge field is not closed with }}');
  end if;
end
$$;
revoke all on function private.wf_merge_errors(text, text, jsonb) from public, anon, authenticated;

/*
 * private.wf_text_errors(step, key, path, max, required, errors): a text field
 * of a step: a string of 1 to max characters, no NUL, its merge fields known.
 */
create or replace function private.wf_text_errors(step jsonb, key text, path text, max integer,
  required boolean, inout errors jsonb)
language plpgsql
immutable
set search_path = ''
as $$
begin
  if not step ? key then
    if required then
      errors := errors || jsonb_build_object(path || '.' || key, 'is required');
    end if;
    return;
  end if;
  if jsonb_typeof(step -> key) <> 'string' or length(step ->> key) not between 1 and max then
    errors := errors || jsonb_build_object(path || '.' || key, format('must be text of 1 to %s characters', max));
    return;
  end if;
  errors := private.wf_merge_errors(step ->> key, path || '.' || key, errors);
end
$$;
revoke all on function private.wf_text_errors(jsonb, text, text, integer, boolean, jsonb) from public, anon, authenticated;

/*
 * private.wf_steps_errors(steps, path, errors, count, depth): the errors of a
 * list of steps (see the README of execute-workflow for each step's fields),
 * keyed by path (actions[2].duration); `count` counts the steps, nested
 * ones included (at most 100 in a workflow).
 */
create or replace function private.wf_steps_errors(steps jsonb, path text, inout errors jsonb,
  inout count integer, depth integer)
language plpgsql
stable
set search_path = ''
as $$
declare
  step jsonb;
  i integer := 0;
  p text;
  kind text;
  allowed text[];
  w jsonb;
begin
  if jsonb_typeof(steps) is distinct from 'array' then
    errors := errors || jsonb_build_object(path, 'must be an array of steps');
    return;
  end if;
  if depth > 5 then
    errors := errors || jsonb_build_object(path, 'branches nest at most 5 deep');
    return;
  end if;
  for step in select x from jsonb_array_elements(steps) x loop
    p := format('%s[%s]', path, i);
    i := i + 1;
    count := count + 1;
    if jsonb_typeof(step) <> 'object' then
      errors := errors || jsonb_build_object(p, 'must be a step object');
      continue;
    end if;
    kind := step ->> 'type';
    allowed := case kind
      when 'send_email' then array['type', 'to', 'subject', 'body']
      when 'send_sms' then array['type', 'to', 'body']
      when 'wait' then array['type', 'duration', 'until']
      when 'wait_for_event' then array['type', 'event', 'match', 'timeout', 'matched', 'timed_out']
      when 'branch' then array['type', 'if', 'then', 'else']
      when 'update_client' then array['type', 'add_tags', 'remove_tags', 'set']
      when 'notify_slack' then array['type', 'text']
      when 'webhook' then array['type', 'url', 'data']
      end;
    if allowed is null then
      errors := errors || jsonb_build_object(p || '.type',
        'must be one of: send_email, send_sms, wait, wait_for_event, branch, update_client, notify_slack, webhook');
      continue;
    end if;
    if exists (select 1 from jsonb_object_keys(step) k where k <> all (allowed)) then
      errors := errors || jsonb_build_object(p, format('a %s step has only: %s', kind, array_to_string(allowed, ', ')));
    end if;
    case kind
      when 'send_email' then
        errors := private.wf_text_errors(step, 'subject', p, 200, true, errors);
        errors := private.wf_text_errors(step, 'body', p, 20000, true, errors);
        if step ? 'to' and not (step ->> 'to' = 'client'
            or (jsonb_typeof(step -> 'to') = 'string' and step ->> 'to' ~ '^[^@\s<>",]{1,64}@[^@\s<>",]{1,255}\.[^@\s<>",]+$')) then
          errors := errors || jsonb_build_object(p || '.to', 'must be "client" or an email address');
        end if;
      when 'send_sms' then
        errors := private.wf_text_errors(step, 'body', p, 1000, true, errors);
        if step ? 'to' and not (step ->> 'to' = 'client'
            or (jsonb_typeof(step -> 'to') = 'string' and step ->> 'to' ~ '^\+[1-9][0-9]{6,14}$')) then
          errors := errors || jsonb_build_object(p || '.to', 'must be "client" or a phone number in E.164 (+15551234567)');
        end if;
      when 'wait' then
        if (step ? 'duration') = (step ? 'until') then
          errors := errors || jsonb_build_object(p, 'a wait has either duration or until');
        elsif step ? 'duration' then
          if jsonb_typeof(step -> 'duration') <> 'string' or private.wf_duration(step ->> 'duration') is null then
            errors := errors || jsonb_build_object(p || '.duration',
              'must be an ISO 8601 duration of at most 366 days, e.g. P3D or PT2H');
          end if;
        else
          w := step -> 'until';
          if jsonb_typeof(w) <> 'object'
             or exists (select 1 from jsonb_object_keys(w) k where k not in ('time', 'weekdays')) then
            errors := errors || jsonb_build_object(p || '.until', 'must be {"time": "HH:MM", "weekdays"?: [...]}');
          else
            if coalesce(w ->> 'time', '') !~ '^([01][0-9]|2[0-3]):[0-5][0-9]$' then
              errors := errors || jsonb_build_object(p || '.until.time', 'must be a local time HH:MM (00:00 to 23:59)');
            end if;
            if w ? 'weekdays' and (jsonb_typeof(w -> 'weekdays') <> 'array'
                or jsonb_array_length(w -> 'weekdays') not between 1 and 7
                or exists (select 1 from jsonb_array_elements(w -> 'weekdays') d
                           where d #>> '{}' not in ('mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun')
                              or jsonb_typeof(d) <> 'string')) then
              errors := errors || jsonb_build_object(p || '.until.weekdays',
                'must be an array of mon, tue, wed, thu, fri, sat, sun');
            end if;
          end if;
        end if;
      when 'wait_for_event' then
        if jsonb_typeof(step -> 'event') is distinct from 'string'
           or step ->> 'event' !~ '^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$' then
          errors := errors || jsonb_build_object(p || '.event', 'must be an event type, e.g. order.created');
        end if;
        if jsonb_typeof(step -> 'timeout') is distinct from 'string' or private.wf_duration(step ->> 'timeout') is null then
          errors := errors || jsonb_build_object(p || '.timeout',
            'must be an ISO 8601 duration of at most 366 days, e.g. P7D');
        end if;
        if step ? 'match' then
          errors := private.wf_condition_errors(step -> 'match', p || '.match', errors, 1);
        end if;
        if step ? 'matched' then
          select e.errors, e.count into errors, count
          from private.wf_steps_errors(step -> 'matched', p || '.matched', errors, count, depth + 1) e;
        end if;
        if step ? 'timed_out' then
          select e.errors, e.count into errors, count
          from private.wf_steps_errors(step -> 'timed_out', p || '.timed_out', errors, count, depth + 1) e;
        end if;
      when 'branch' then
        if not step ? 'if' then
          errors := errors || jsonb_build_object(p || '.if', 'is required');
        else
          errors := private.wf_condition_errors(step -> 'if', p || '.if', errors, 1);
        end if;
        if not step ? 'then' then
          errors := errors || jsonb_build_object(p || '.then', 'is required');
        else
          select e.errors, e.count into errors, count
          from private.wf_steps_errors(step -> 'then', p || '.then', errors, count, depth + 1) e;
        end if;
        if step ? 'else' then
          select e.errors, e.count into errors, count
          from private.wf_steps_errors(step -> 'else', p || '.else', errors, count, depth + 1) e;
        end if;
      when 'update_client' then
        if not (step ? 'add_tags' or step ? 'remove_tags' or step ? 'set') then
          errors := errors || jsonb_build_object(p, 'an update_client step has add_tags, remove_tags or set');
        end if;
        foreach kind in array array['add_tags', 'remove_tags'] loop
          if step ? kind and (jsonb_typeof(step -> kind) <> 'array'
              or jsonb_array_length(step -> kind) not between 1 and 20
              or exists (select 1 from jsonb_array_elements(step -> kind) t
                         where jsonb_typeof(t) <> 'string' or length(t #>> '{}') not between 1 and 50)) then
            errors := errors || jsonb_build_object(p || '.' || kind, 'must be an array of 1 to 20 tags of 1 to 50 characters');
          end if;
        end loop;
        if step ? 'set' then
          if jsonb_typeof(step -> 'set') <> 'object'
             or exists (select 1 from jsonb_object_keys(step -> 'set') k where k not in ('status', 'city')) then
            errors := errors || jsonb_build_object(p || '.set', 'may set only status and city');
          elsif step -> 'set' ? 'status' and coalesce(step #>> '{set,status}', '') not in ('active', 'inactive') then
            errors := errors || jsonb_build_object(p || '.set.status', 'must be active or inactive');
          elsif step -> 'set' ? 'city' and (jsonb_typeof(step #> '{set,city}') <> 'string'
                or length(step #>> '{set,city}') not between 1 and 100) then
            errors := errors || jsonb_build_object(p || '.set.city', 'must be text of 1 to 100 characters');
          end if;
        end if;
      when 'notify_slack' then
        errors := private.wf_text_errors(step, 'text', p, 3000, true, errors);
      when 'webhook' then
        if jsonb_typeof(step -> 'url') is distinct from 'string' then
          errors := errors || jsonb_build_object(p || '.url', 'is required: an https:// URL');
        elsif private.webhook_url_error(step ->> 'url') is not null then
          errors := errors || jsonb_build_object(p || '.url', private.webhook_url_error(step ->> 'url'));
        end if;
        if step ? 'data' and (jsonb_typeof(step -> 'data') <> 'object' or octet_length((step -> 'data')::text) > 16384) then
          errors := errors || jsonb_build_object(p || '.data', 'must be an object of at most 16 KiB');
        end if;
    end case;
  end loop;
end
$$;
revoke all on function private.wf_steps_errors(jsonb, text, jsonb, integer, integer) from public, anon, authenticated;

/*
 * private.guard_workflow(): before a workflow is written: its definition is
 * checked (CEV01 with every error keyed by path, nothing stored), and a
 * changed definition gets the next version.
 */
create or replace function private.guard_workflow()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  errors jsonb := '{}'::jsonb;
  steps integer := 0;
begin
  if new.trigger_event is null
     or new.trigger_event !~ '^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$' then
    errors := errors || '{"trigger_event": "must be an event type, e.g. order.created"}';
  end if;
  if new.conditions is not null and new.conditions <> 'null'::jsonb then
    errors := private.wf_condition_errors(new.conditions, 'conditions', errors, 1);
  end if;
  select e.errors, e.count into errors, steps
  from private.wf_steps_errors(new.actions, 'actions', errors, 0, 1) e;
  if jsonb_typeof(new.actions) = 'array' and jsonb_array_length(new.actions) = 0 then
    errors := errors || '{"actions": "must have at least one step"}';
  end if;
  if steps > 100 then
    errors := errors || '{"actions": "a workflow has at most 100 steps"}';
  end if;
  if new.reentry = 'cooldown' and private.wf_duration(new.cooldown) is null then
    errors := errors || '{"cooldown": "must be an ISO 8601 duration of at most 366 days, e.g. P30D"}';
  elsif new.reentry <> 'cooldown' and new.cooldown is not null then
    errors := errors || '{"cooldown": "is only for reentry cooldown"}';
  end if;
  if new.exit_when is not null and new.exit_when !~ '^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$' then
    errors := errors || '{"exit_when": "must be an event type, e.g. order.created"}';
  end if;
  if new.trigger_event = 'client.inactive' then
    if new.inactive_days is null or new.inactive_days not between 1 and 3650 then
      errors := errors || '{"inactive_days": "a client.inactive trigger needs 1 to 3650 days"}';
    end if;
  elsif new.inactive_days is not null then
    errors := errors || '{"inactive_days": "is only for the client.inactive trigger"}';
  end if;
  if errors <> '{}'::jsonb then
    perform private.raise_error('CEV01', 'the workflow has invalid fields', errors);
  end if;
  if tg_op = 'INSERT' then
    new.version := 1;
  elsif (new.trigger_event, new.conditions, new.actions, new.reentry, new.cooldown, new.exit_when,
         new.inactive_days)
        is distinct from
        (old.trigger_event, old.conditions, old.actions, old.reentry, old.cooldown, old.exit_when,
         old.inactive_days) then
    new.version := old.version + 1;
  else
    new.version := old.version;
  end if;
  new.updated_at := now();
  if tg_op = 'UPDATE' and new.tenant_id <> old.tenant_id then
    perform private.raise_error('CEV01', 'the workflow has invalid fields', '{"tenant_id": "cannot change"}');
  end if;
  return new;
end
$$;
revoke all on function private.guard_workflow() from public, anon, authenticated;
drop trigger if exists guard_workflow on public.marketing_workflows;
create trigger guard_workflow before insert or update on public.marketing_workflows
  for each row execute function private.guard_workflow();

-- The definition, as a version row, whenever it is new.
create or replace function private.keep_workflow_version()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  insert into public.workflow_versions (workflow_id, version, tenant_id, definition)
  values (new.id, new.version, new.tenant_id, jsonb_build_object(
    'trigger_event', new.trigger_event, 'conditions', new.conditions, 'actions', new.actions,
    'reentry', new.reentry, 'cooldown', new.cooldown, 'exit_when', new.exit_when,
    'inactive_days', new.inactive_days))
  on conflict do nothing;
  return null;
end
$$;
revoke all on function private.keep_workflow_version() from public, anon, authenticated;
drop trigger if exists keep_workflow_version on public.marketing_workflows;
create trigger keep_workflow_version after insert or update on public.marketing_workflows
  for each row execute function private.keep_workflow_version();

-- ------------------------------------------------------------------ conditions

/*
 * private.wf_test(cond, doc): whether `doc` ({event, client}) satisfies the
 * condition. A field's value is compared by the type of the condition's
 * value: a number as a decimal (a field that is not a number fails), a date
 * or time as a timestamp, else as text. A missing or null field fails every
 * operator except exists false (and not_in / neq, which it does not satisfy
 * either: nothing is known of it).
 */
create or replace function private.wf_test(cond jsonb, doc jsonb)
returns boolean
language plpgsql
stable
set search_path = ''
as $$
declare
  v jsonb;
  val jsonb := cond -> 'value';
  op text := cond ->> 'op';
  a numeric;
  b numeric;
  ta timestamptz;
  tb timestamptz;
  c integer;
begin
  if cond is null or cond = 'null'::jsonb then
    return true;
  end if;
  if cond ? 'all' then
    return coalesce((select bool_and(private.wf_test(x, doc)) from jsonb_array_elements(cond -> 'all') x), true);
  elsif cond ? 'any' then
    return coalesce((select bool_or(private.wf_test(x, doc)) from jsonb_array_elements(cond -> 'any') x), false);
  elsif cond ? 'not' then
    return not private.wf_test(cond -> 'not', doc);
  end if;
  v := doc #> string_to_array(cond ->> 'field', '.');
  if op = 'exists' then
    return (v is not null and v <> 'null'::jsonb) = (val = 'true'::jsonb);
  end if;
  if v is null or v = 'null'::jsonb then
    return false;
  end if;
  if op in ('in', 'not_in') then
    return (exists (select 1 from jsonb_array_elements(val) x
                    where case when jsonb_typeof(x) = 'number'
                               then private.try_numeric(v #>> '{}') = (x #>> '{}')::numeric
                               else v #>> '{}' = x #>> '{}' end)) = (op = 'in');
  end if;
  if op = 'contains_any' then
    if jsonb_typeof(v) = 'array' then
      return exists (select 1 from jsonb_array_elements(v) x join jsonb_array_elements(val) y
                     on x #>> '{}' = y #>> '{}');
    end if;
    return exists (select 1 from jsonb_array_elements(val) y where v #>> '{}' = y #>> '{}');
  end if;
  if op in ('before', 'after', 'on') then
    ta := private.try_timestamptz(v #>> '{}');
    if ta is null then
      return false;
    end if;
    return case op
      when 'before' then ta::date < (val #>> '{}')::date
      when 'after' then ta::date > (val #>> '{}')::date
      else ta::date = (val #>> '{}')::date end;
  end if;
  if op = 'contains' then
    if jsonb_typeof(v) = 'array' then
      return exists (select 1 from jsonb_array_elements(v) x where x #>> '{}' = val #>> '{}');
    end if;
    return strpos(lower(v #>> '{}'), lower(val #>> '{}')) > 0;
  end if;
  if jsonb_typeof(val) = 'number' then
    a := private.try_numeric(v #>> '{}');
    b := (val #>> '{}')::numeric;
    if a is null then
      return false;
    end if;
    c := case when a < b then -1 when a > b then 1 else 0 end;
  elsif jsonb_typeof(val) = 'string' and private.try_timestamptz(val #>> '{}') is not null
        and op in ('gt', 'gte', 'lt', 'lte', 'eq', 'neq') then
    ta := private.try_timestamptz(v #>> '{}');
    tb := private.try_timestamptz(val #>> '{}');
    if ta is null then
      return false;
    end if;
    c := case when ta < tb then -1 when ta > tb then 1 else 0 end;
  elsif jsonb_typeof(val) = 'boolean' then
    if jsonb_typeof(v) <> 'boolean' then
      return false;
    end if;
    c := case when v = val then 0 else 1 end;
  else
    c := case when v #>> '{}' < val #>> '{}' then -1 when v #>> '{}' > val #>> '{}' then 1 else 0 end;
  end if;
  return case op
    when 'eq' then c = 0 when 'neq' then c <> 0
    when 'gt' then c > 0 when 'gte' then c >= 0
    when 'lt' then c < 0 when 'lte' then c <= 0
    else false end;
end
$$;
revoke all on function private.wf_test(jsonb, jsonb) from public, anon, authenticated;

create or replace function private.try_numeric(value text)
returns numeric
language plpgsql
immutable
set search_path = ''
as $$
begin
  if value is null or value !~ '^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?\s*$' then
    return null;
  end if;
  return value::numeric;
end
$$;
revoke all on function private.try_numeric(text) from public, anon, authenticated;

/*
 * private.wf_client_doc(tenant, client): the client as conditions and merge
 * fields read it (private.wf_client_fields), or null.
 */
create or replace function private.wf_client_doc(tenant uuid, client uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('id', c.id, 'name', c.name, 'email', c.email, 'phone', c.phone, 'city', c.city,
    'status', c.status, 'tags', to_jsonb(c.tags),
    'total_spent', coalesce(o.total_spent, 0), 'order_count', coalesce(o.order_count, 0),
    'last_order_date', o.last_order_date)
  from public.wholesale_clients c
  left join lateral (
    select sum(w.total_amount) as total_spent, count(*) as order_count, max(w.created_at)::date as last_order_date
    from public.wholesale_orders w
    where w.client_id = c.id and w.tenant_id = c.tenant_id and w.status <> 'cancelled') o on true
  where c.id = wf_client_doc.client and c.tenant_id = wf_client_doc.tenant
$$;
revoke all on function private.wf_client_doc(uuid, uuid) from public, anon, authenticated;

-- ------------------------------------------------------------------ events in

create or replace function private.wf_lock_key(tenant uuid, subject uuid)
returns bigint
language sql
immutable
set search_path = ''
as $$
  select pg_catalog.hashtextextended('workflow_subject:' || tenant || ':' || coalesce(subject::text, ''), 0)
$$;
revoke all on function private.wf_lock_key(uuid, uuid) from public, anon, authenticated;

/*
 * private.before_platform_event(): an event takes its subject's lock (held
 * to its commit) before it is stamped with workflow time. A run registering
 * a wait_for_event takes the same lock (without waiting for it), so either
 * the run sees the committed event, or the event sees the waiting run and
 * wakes it: none is missed.
 */
create or replace function private.before_platform_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(private.wf_lock_key(new.tenant_id, new.subject));
  new.recorded_at := private.wf_now();
  return new;
end
$$;
revoke all on function private.before_platform_event() from public, anon, authenticated;
drop trigger if exists before_platform_event on public.platform_events;
create trigger before_platform_event before insert on public.platform_events
  for each row execute function private.before_platform_event();

/*
 * private.on_platform_event(): after an event is recorded, in its
 * transaction: the subject's active runs whose exit_when is this type exit;
 * its runs waiting for this type become due; and each enabled workflow of the
 * tenant triggered by this type (only event.workflow_id when set) whose
 * conditions hold starts a run, by its re-entry rule.
 */
create or replace function private.on_platform_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  w public.marketing_workflows;
  client jsonb;
  doc jsonb;
  allowed boolean;
begin
  -- (= and is null, not "is not distinct from", so that the index serves)
  if new.subject is not null then
    update public.workflow_runs r
    set status = 'exited', finished_at = now(), updated_at = now(), next_run_at = null,
        last_error = null, context = r.context || jsonb_build_object('exited_by', new.id)
    where r.tenant_id = new.tenant_id and r.subject = new.subject
      and r.status in ('active', 'waiting') and r.exit_when is not null and r.exit_when = new.type;
    update public.workflow_runs r
    set next_run_at = private.wf_now(), updated_at = now()
    where r.tenant_id = new.tenant_id and r.subject = new.subject
      and r.status = 'waiting' and r.waiting_for ? 'event' and r.waiting_for ->> 'event' = new.type;
  else
    update public.workflow_runs r
    set status = 'exited', finished_at = now(), updated_at = now(), next_run_at = null,
        last_error = null, context = r.context || jsonb_build_object('exited_by', new.id)
    where r.tenant_id = new.tenant_id and r.subject is null
      and r.status in ('active', 'waiting') and r.exit_when is not null and r.exit_when = new.type;
    update public.workflow_runs r
    set next_run_at = private.wf_now(), updated_at = now()
    where r.tenant_id = new.tenant_id and r.subject is null
      and r.status = 'waiting' and r.waiting_for ? 'event' and r.waiting_for ->> 'event' = new.type;
  end if;
  for w in
    select * from public.marketing_workflows m
    where m.tenant_id = new.tenant_id and m.trigger_event = new.type and m.enabled
      and (new.workflow_id is null or m.id = new.workflow_id)
    order by m.created_at, m.id
  loop
    if w.conditions is not null and w.conditions <> 'null'::jsonb then
      if client is null and new.subject is not null and w.conditions::text ~ '"client\.' then
        client := coalesce(private.wf_client_doc(new.tenant_id, new.subject), '{}'::jsonb);
      end if;
      doc := jsonb_build_object('event', new.payload, 'client', coalesce(client, '{}'::jsonb));
      if not private.wf_test(w.conditions, doc) then
        continue;
      end if;
    end if;
    allowed := true;
    if w.reentry = 'cooldown' then
      -- The subject's lock (taken for this event) orders starts.
      allowed := not exists (select 1 from public.workflow_runs r
        where r.workflow_id = w.id and (r.subject = new.subject or (new.subject is null and r.subject is null))
          and r.created_at > private.wf_now() - private.wf_duration(w.cooldown));
    end if;
    if allowed then
      insert into public.workflow_runs (tenant_id, workflow_id, version, subject, event_id, once_key,
        status, step, step_since, context, next_run_at, exit_when, created_at)
      values (new.tenant_id, w.id, w.version, new.subject, new.id,
        case when w.reentry = 'once' then coalesce(new.subject::text, '-') end,
        'active', array['0'], new.recorded_at,
        jsonb_build_object('event', new.payload, 'event_type', new.type, 'event_id', new.id),
        private.wf_now(), w.exit_when, private.wf_now())
      on conflict on constraint workflow_runs_once_key do nothing;
    end if;
  end loop;
  return null;
end
$$;
revoke all on function private.on_platform_event() from public, anon, authenticated;
drop trigger if exists on_platform_event on public.platform_events;
create trigger on_platform_event after insert on public.platform_events
  for each row execute function private.on_platform_event();

/*
 * private.emit_event(tenant, type, subject, payload, key): records an event
 * (once per tenant and key; a repeated key records nothing). Returns its id,
 * or null when the key was used before.
 */
create or replace function private.emit_event(tenant uuid, type text, subject uuid, payload jsonb,
  key text default null)
returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  new_id bigint;
begin
  insert into public.platform_events (tenant_id, type, subject, payload, idempotency_key)
  values (emit_event.tenant, emit_event.type, emit_event.subject, coalesce(emit_event.payload, '{}'::jsonb),
          coalesce(emit_event.key, gen_random_uuid()::text))
  on conflict on constraint platform_events_tenant_key do nothing
  returning platform_events.id into new_id;
  return new_id;
end
$$;
revoke all on function private.emit_event(uuid, text, uuid, jsonb, text) from public, anon, authenticated;

-- The existing writes emit their events, in their own transactions.
create or replace function private.emit_row_event()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  case tg_table_name
    when 'wholesale_orders' then
      perform private.emit_event(new.tenant_id, 'order.created', new.client_id, jsonb_build_object(
        'order_id', new.id, 'order_number', new.order_number, 'client_id', new.client_id,
        'total_amount', new.total_amount, 'payment_terms', new.payment_terms,
        'delivery_method', new.delivery_method, 'status', new.status), 'order.created:' || new.id);
    when 'return_authorizations' then
      perform private.emit_event(new.tenant_id, 'order.returned',
        (select o.client_id from public.wholesale_orders o where o.id = new.order_id),
        jsonb_build_object('return_id', new.id, 'ra_number', new.ra_number, 'order_id', new.order_id,
          'return_method', new.return_method, 'refund_amount', new.refund_amount,
          'return_reason', new.return_reason), 'order.returned:' || new.id);
    when 'purchase_orders' then
      perform private.emit_event(new.tenant_id, 'purchase_order.created', null, jsonb_build_object(
        'purchase_order_id', new.id, 'po_number', new.po_number, 'supplier_id', new.supplier_id,
        'total_amount', new.total_amount, 'expected_delivery_date', new.expected_delivery_date),
        'purchase_order.created:' || new.id);
    when 'campaign_events' then
      if new.type in ('email.opened', 'email.clicked') then
        perform private.emit_event(new.tenant_id, 'campaign.' || new.type,
          (select r.client_id from public.campaign_recipients r where r.id = new.recipient_id),
          jsonb_build_object('campaign_id', new.campaign_id, 'link', new.payload #>> '{data,click,link}'),
          'campaign.' || new.type || ':' || new.id);
      end if;
    when 'contact_consent' then
      if new.status = 'unsubscribed' and (tg_op = 'INSERT' or old.status is distinct from 'unsubscribed') then
        perform private.emit_event(new.tenant_id, 'client.unsubscribed', new.client_id,
          jsonb_build_object('client_id', new.client_id, 'channel', new.channel, 'source', new.source),
          null);
      end if;
  end case;
  return null;
end
$$;
revoke all on function private.emit_row_event() from public, anon, authenticated;
drop trigger if exists emit_order_created on public.wholesale_orders;
create trigger emit_order_created after insert on public.wholesale_orders
  for each row execute function private.emit_row_event();
drop trigger if exists emit_order_returned on public.return_authorizations;
create trigger emit_order_returned after insert on public.return_authorizations
  for each row execute function private.emit_row_event();
drop trigger if exists emit_purchase_order_created on public.purchase_orders;
create trigger emit_purchase_order_created after insert on public.purchase_orders
  for each row execute function private.emit_row_event();
drop trigger if exists emit_campaign_engagement on public.campaign_events;
create trigger emit_campaign_engagement after insert on public.campaign_events
  for each row execute function private.emit_row_event();
drop trigger if exists emit_client_unsubscribed on public.contact_consent;
create trigger emit_client_unsubscribed after insert or update of status on public.contact_consent
  for each row execute function private.emit_row_event();

/*
 * public.emit_inactive_client_events(max_events): for each enabled
 * client.inactive workflow, a client.inactive event for each active client
 * of its tenant with no order (not cancelled) in its inactive_days, who has
 * ordered before or was added before then; at most max_events (1 to 5,000)
 * a call. Keyed by workflow, client and day, so a client gets one a day:
 * call again until it returns 0. Each event holds its subject's lock to the
 * commit, so a call stays small (see the procedure below).
 */
drop function if exists public.emit_inactive_client_events();
create or replace function public.emit_inactive_client_events(max_events integer default 500)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  n integer;
  today date := (private.wf_now())::date;
begin
  with due as (
    select w.tenant_id, w.id as workflow_id, w.inactive_days, c.id as client_id, c.created_at,
           format('client.inactive:%s:%s:%s', w.id, c.id, today) as key
    from public.marketing_workflows w
    join public.wholesale_clients c on c.tenant_id = w.tenant_id and c.status = 'active'
    where w.enabled and w.trigger_event = 'client.inactive'
  ), chosen as (
    select d.*, o.last_order from due d
    cross join lateral (
      select max(o.created_at) as last_order from public.wholesale_orders o
      where o.client_id = d.client_id and o.tenant_id = d.tenant_id and o.status <> 'cancelled') o
    where coalesce(o.last_order, d.created_at) < private.wf_now() - make_interval(days => d.inactive_days)
      and not exists (select 1 from public.platform_events e
                      where e.tenant_id = d.tenant_id and e.idempotency_key = d.key)
    limit greatest(1, least(max_events, 5000))
  ), inserted as (
    insert into public.platform_events (tenant_id, type, subject, payload, idempotency_key, workflow_id)
    select c.tenant_id, 'client.inactive', c.client_id,
           jsonb_build_object('client_id', c.client_id, 'days', c.inactive_days, 'last_order_at', c.last_order),
           c.key, c.workflow_id
    from chosen c
    -- one order of locking subjects, so two calls of this never deadlock
    order by private.wf_lock_key(c.tenant_id, c.client_id)
    on conflict on constraint platform_events_tenant_key do nothing
    returning 1
  )
  select count(*) into n from inserted;
  return n;
end
$$;
revoke all on function public.emit_inactive_client_events(integer) from public, anon, authenticated;
grant execute on function public.emit_inactive_client_events(integer) to service_role;

/*
 * public.emit_inactive_client_events_daily(): pg_cron's daily job: calls
 * emit_inactive_client_events(500) and commits, until nothing is left, so
 * no transaction holds more than 500 subjects' locks (nor the shared lock
 * table's room) for long.
 */
-- (No `set search_path` here: a procedure with a SET clause cannot commit.
-- It names everything it calls with its schema.)
create or replace procedure public.emit_inactive_client_events_daily()
language plpgsql
as $$
begin
  while public.emit_inactive_client_events(500) > 0 loop
    commit;
  end loop;
end
$$;
revoke all on procedure public.emit_inactive_client_events_daily() from public, anon, authenticated;
grant execute on procedure public.emit_inactive_client_events_daily() to service_role;

-- ------------------------------------------------------------------ running

/*
 * private.wf_next(actions, path): the step after the one at path: its next
 * sibling, else the step after its parent's, else null (the end).
 */
create or replace function private.wf_next(actions jsonb, path text[])
returns text[]
language plpgsql
immutable
set search_path = ''
as $$
declare
  n integer := cardinality(path);
  sibling text[];
begin
  if n = 0 then
    return null;
  end if;
  sibling := path[1:n - 1] || ((path[n])::integer + 1)::text;
  if actions #> sibling is not null then
    return sibling;
  end if;
  if n = 1 then
    return null;
  end if;
  return private.wf_next(actions, path[1:n - 2]);
end
$$;
revoke all on function private.wf_next(jsonb, text[]) from public, anon, authenticated;

/* private.wf_enter(actions, path, branch): the first step of the branch of
 * the step at path, or the step after it when the branch is empty. */
create or replace function private.wf_enter(actions jsonb, path text[], branch text)
returns text[]
language sql
immutable
set search_path = ''
as $$
  select case when actions #> (path || branch || '0'::text) is not null then path || branch || '0'::text
              else private.wf_next(actions, path) end
$$;
revoke all on function private.wf_enter(jsonb, text[], text) from public, anon, authenticated;

/*
 * private.wf_merge(text, vars): {{field}} replaced by its value in vars
 * ({client, tenant, event}); a missing or null value is an error naming it.
 */
create or replace function private.wf_merge(value text, vars jsonb)
returns text
language plpgsql
stable
set search_path = ''
as $$
declare
  out text := '';
  rest text := value;
  at integer;
  m text[];
  v jsonb;
begin
  loop
    at := regexp_instr(rest, '\{\{(.*?)\}\}');
    exit when at = 0;
    m := regexp_match(substr(rest, at), '^\{\{(.*?)\}\}');
    v := vars #> string_to_array(btrim(m[1]), '.');
    if v is null or v = 'null'::jsonb then
      raise exception 'the merge field {{%}} has no value', btrim(m[1]);
    end if;
    out := out || substr(rest, 1, at - 1)
      || case when jsonb_typeof(v) in ('object', 'array') then v::text else v #>> '{}' end;
    rest := substr(rest, at + length(m[1]) + 4);
  end loop;
  return out || rest;
end
$$;
revoke all on function private.wf_merge(text, jsonb) from public, anon, authenticated;

/*
 * private.wf_local_next(tz, time, weekdays, after): the first moment after
 * `after` that is `time` on one of `weekdays` in time zone tz. A local time a
 * DST change skips is taken as Postgres reads it (moved forward by the gap).
 */
create or replace function private.wf_local_next(tz text, at_time text, weekdays jsonb, after timestamptz)
returns timestamptz
language plpgsql
stable
set search_path = ''
as $$
declare
  day date := (after at time zone tz)::date;
  candidate timestamptz;
begin
  for i in 0..8 loop
    candidate := ((day + i) + at_time::time) at time zone tz;
    if candidate > after and (weekdays is null or weekdays ? lower(to_char(day + i, 'Dy'))) then
      return candidate;
    end if;
  end loop;
  return null;
end
$$;
revoke all on function private.wf_local_next(text, text, jsonb, timestamptz) from public, anon, authenticated;

create or replace function private.wf_max_steps() returns integer
language sql immutable set search_path = '' as $$ select 200 $$;
revoke all on function private.wf_max_steps() from public, anon, authenticated;
create or replace function private.wf_max_attempts() returns integer
language sql immutable set search_path = '' as $$ select 5 $$;
revoke all on function private.wf_max_attempts() from public, anon, authenticated;

/*
 * private.wf_advance(run): advances a claimed run step by step until it
 * waits, ends, or fails. Every step is logged in workflow_step_runs. Returns
 * the actions it completed (messages queued, clients updated), and of them
 * the messages it queued. Raises when a
 * step fails (the caller rolls the run back to its savepoint and retries).
 */
/* private.wf_log(run, step_path, type, outcome, detail): one line of the run's step log. */
create or replace function private.wf_log(run public.workflow_runs, step_path text, type text, outcome text,
  detail jsonb default '{}'::jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.workflow_step_runs (tenant_id, run_id, step_path, type, outcome, detail)
  values ((wf_log.run).tenant_id, (wf_log.run).id, wf_log.step_path, wf_log.type, wf_log.outcome,
          coalesce(wf_log.detail, '{}'::jsonb))
$$;
revoke all on function private.wf_log(public.workflow_runs, text, text, text, jsonb) from public, anon, authenticated;

drop function if exists private.wf_advance(uuid);
create or replace function private.wf_advance(run_id uuid, out actions_done integer, out messages integer)
language plpgsql
security definer
set search_path = ''
as $$
declare
  r public.workflow_runs;
  defn jsonb;
  actions jsonb;
  step jsonb;
  path_text text;
  kind text;
  now_ts timestamptz;
  due timestamptz;
  tz text;
  tenant_name text;
  client jsonb;
  vars jsonb;
  address text;
  ch text;
  consent text;
  skip text;
  body text;
  local_hour integer;
  matched public.platform_events;
  deadline timestamptz;
begin
  actions_done := 0;
  messages := 0;
  select * into r from public.workflow_runs x where x.id = wf_advance.run_id;
  select v.definition into defn from public.workflow_versions v
  where v.workflow_id = r.workflow_id and v.version = r.version;
  actions := defn -> 'actions';
  select t.business_name, coalesce(t.time_zone, 'UTC') into tenant_name, tz
  from public.tenants t where t.id = r.tenant_id;
  loop
    now_ts := private.wf_now();
    if r.step is null then
      r.status := 'completed';
      r.finished_at := now();
      r.next_run_at := null;
      exit;
    end if;
    if r.steps_taken >= private.wf_max_steps() then
      r.status := 'failed';
      r.finished_at := now();
      r.next_run_at := null;
      r.last_error := format('the run took %s steps: a loop guard stops it', r.steps_taken);
      perform private.wf_log(r, array_to_string(r.step, '.'), 'guard', 'failed', jsonb_build_object('error', r.last_error));
      exit;
    end if;
    step := actions #> r.step;
    kind := step ->> 'type';
    path_text := array_to_string(r.step, '.');
    if kind in ('send_email', 'send_sms', 'notify_slack', 'update_client', 'branch', 'webhook')
       and client is null and r.subject is not null then
      client := private.wf_client_doc(r.tenant_id, r.subject);
    end if;
    vars := jsonb_build_object('event', r.context -> 'event', 'client', coalesce(client, '{}'::jsonb),
                               'tenant', jsonb_build_object('name', tenant_name),
                               'matched', coalesce(r.context -> 'matched_event', '{}'::jsonb));
    case kind
      when 'send_email', 'send_sms' then
        ch := case kind when 'send_email' then 'email' else 'sms' end;
        if coalesce(step ->> 'to', 'client') = 'client' then
          address := nullif(btrim(client ->> case ch when 'email' then 'email' else 'phone' end), '');
          select k.status into consent from public.contact_consent k
          where k.client_id = r.subject and k.channel = ch;
          -- No client, no address or no consent: skipped, and the run goes on.
          skip := case when client is null then 'no_client' when address is null then 'no_address'
                       when coalesce(consent, 'subscribed') <> 'subscribed' then consent end;
          if skip is not null then
            perform private.wf_log(r, path_text, kind, 'skipped', jsonb_build_object('reason', skip));
            r.step := private.wf_next(actions, r.step);
            r.step_since := now_ts;
            r.steps_taken := r.steps_taken + 1;
            r.waiting_for := null;
            continue;
          end if;
          -- Marketing SMS wait for 08:00 to 21:00 in the tenant's time zone.
          if ch = 'sms' then
            local_hour := extract(hour from now_ts at time zone tz);
            if local_hour < 8 or local_hour >= 21 then
              due := private.wf_local_next(tz, '08:00', null, now_ts);
              r.status := 'waiting';
              r.next_run_at := due;
              r.waiting_for := jsonb_build_object('quiet_hours', true, 'until', due);
              perform private.wf_log(r, path_text, kind, 'waiting', jsonb_build_object('quiet_hours_until', due));
              exit;
            end if;
          end if;
        else
          address := step ->> 'to';
        end if;
        body := private.wf_merge(step ->> 'body', vars);
        -- A marketing SMS to a client says who sends it and how to stop, as
        -- a campaign's does (shared::campaign::SMS_STOP_LINE).
        if ch = 'sms' and coalesce(step ->> 'to', 'client') = 'client' then
          body := tenant_name || ': ' || body || E'\nReply STOP to opt out';
        end if;
        insert into public.notification_outbox (id, tenant_id, channel, template, recipient, payload)
        values (private.wf_message_id(r.id, path_text), r.tenant_id, ch, 'workflow_message', address,
          jsonb_build_object('business_name', tenant_name, 'text', body,
            'paragraphs', (select coalesce(jsonb_agg(btrim(p)), '[]'::jsonb)
                           from regexp_split_to_table(body, '\n\s*\n') p where btrim(p) <> ''),
            'workflow_id', r.workflow_id, 'run_id', r.id, 'step', path_text)
          || case when ch = 'email'
                  then jsonb_build_object('subject', private.wf_merge(step ->> 'subject', vars))
                  else '{}'::jsonb end)
        on conflict (id) do nothing;
        perform private.wf_log(r, path_text, kind, 'done', jsonb_build_object('message_id', private.wf_message_id(r.id, path_text), 'to', address));
        actions_done := actions_done + 1;
        messages := messages + 1;
        r.step := private.wf_next(actions, r.step);
      when 'notify_slack' then
        insert into public.notification_outbox (id, tenant_id, channel, template, recipient, payload)
        values (private.wf_message_id(r.id, path_text), r.tenant_id, 'slack', 'workflow_message', null,
          jsonb_build_object('business_name', tenant_name, 'text', private.wf_merge(step ->> 'text', vars),
            'workflow_id', r.workflow_id, 'run_id', r.id, 'step', path_text))
        on conflict (id) do nothing;
        perform private.wf_log(r, path_text, kind, 'done', jsonb_build_object('message_id', private.wf_message_id(r.id, path_text)));
        actions_done := actions_done + 1;
        messages := messages + 1;
        r.step := private.wf_next(actions, r.step);
      when 'webhook' then
        insert into public.notification_outbox (id, tenant_id, channel, template, recipient, payload)
        values (private.wf_message_id(r.id, path_text), r.tenant_id, 'webhook', 'workflow_webhook', step ->> 'url',
          jsonb_build_object('workflow_id', r.workflow_id, 'run_id', r.id, 'step', path_text,
            'body', jsonb_build_object('type', 'workflow.step', 'workflow_id', r.workflow_id, 'run_id', r.id,
              'step', path_text, 'event_type', r.context ->> 'event_type', 'event', r.context -> 'event',
              'matched', r.context -> 'matched_event',
              'client', case when client is null then null else client - 'total_spent' - 'order_count' end,
              'data', coalesce(step -> 'data', '{}'::jsonb))))
        on conflict (id) do nothing;
        perform private.wf_log(r, path_text, kind, 'done', jsonb_build_object('message_id', private.wf_message_id(r.id, path_text), 'url', step ->> 'url'));
        actions_done := actions_done + 1;
        messages := messages + 1;
        r.step := private.wf_next(actions, r.step);
      when 'update_client' then
        if client is null then
          perform private.wf_log(r, path_text, kind, 'skipped', '{"reason": "no_client"}');
        else
          -- Never wait for a client row an order holds: try again shortly.
          perform 1 from public.wholesale_clients c where c.id = r.subject for update nowait;
          update public.wholesale_clients c
          set tags = (select coalesce(array_agg(distinct t order by t), '{}')
                      from unnest(c.tags || coalesce(array(select jsonb_array_elements_text(step -> 'add_tags')), '{}')) t
                      where t <> all (coalesce(array(select jsonb_array_elements_text(step -> 'remove_tags')), '{}'))),
              status = coalesce(step #>> '{set,status}', c.status),
              city = coalesce(step #>> '{set,city}', c.city)
          where c.id = r.subject;
          perform private.wf_log(r, path_text, kind, 'done', step - 'type');
          actions_done := actions_done + 1;
          client := null;
        end if;
        r.step := private.wf_next(actions, r.step);
      when 'branch' then
        if private.wf_test(step -> 'if', vars) then
          perform private.wf_log(r, path_text, kind, 'then');
          r.step := private.wf_enter(actions, r.step, 'then');
        else
          perform private.wf_log(r, path_text, kind, 'else');
          r.step := private.wf_enter(actions, r.step, 'else');
        end if;
      when 'wait' then
        due := coalesce((r.waiting_for ->> 'until')::timestamptz,
          case when step ? 'duration' then r.step_since + private.wf_duration(step ->> 'duration')
               else private.wf_local_next(tz, step #>> '{until,time}', step #> '{until,weekdays}', r.step_since) end);
        if due > now_ts then
          if r.waiting_for is null then
            perform private.wf_log(r, path_text, kind, 'waiting', jsonb_build_object('until', due));
          end if;
          r.status := 'waiting';
          r.next_run_at := due;
          r.waiting_for := jsonb_build_object('until', due);
          exit;
        end if;
        perform private.wf_log(r, path_text, kind, 'done', jsonb_build_object('until', due));
        r.waiting_for := null;
        r.step := private.wf_next(actions, r.step);
        -- The next step began when the wait ended, not when a drain came by.
        r.step_since := due;
        r.steps_taken := r.steps_taken + 1;
        r.status := 'active';
        continue;
      when 'wait_for_event' then
        -- The subject's lock, as events take it; never waited for here.
        if not pg_catalog.pg_try_advisory_xact_lock(private.wf_lock_key(r.tenant_id, r.subject)) then
          r.status := 'waiting';
          r.next_run_at := now_ts + interval '1 second';
          exit;
        end if;
        deadline := r.step_since + private.wf_duration(step ->> 'timeout');
        matched := null;
        for matched in
          select e.* from public.platform_events e
          where e.tenant_id = r.tenant_id and e.subject = r.subject
            and e.type = step ->> 'event' and e.recorded_at >= r.step_since and e.recorded_at <= deadline
          union all
          select e.* from public.platform_events e
          where r.subject is null and e.tenant_id = r.tenant_id and e.subject is null
            and e.type = step ->> 'event' and e.recorded_at >= r.step_since and e.recorded_at <= deadline
          order by recorded_at, id
        loop
          exit when not step ? 'match' or private.wf_test(step -> 'match',
            jsonb_build_object('event', matched.payload, 'client', coalesce(client, '{}'::jsonb)));
          matched := null;
        end loop;
        if matched.id is not null then
          perform private.wf_log(r, path_text, kind, 'matched', jsonb_build_object('event_id', matched.id));
          r.context := r.context || jsonb_build_object('matched_event', matched.payload);
          r.waiting_for := null;
          r.status := 'active';
          r.step := private.wf_enter(actions, r.step, 'matched');
          r.step_since := greatest(matched.recorded_at, now_ts);
          r.steps_taken := r.steps_taken + 1;
          continue;
        elsif now_ts >= deadline then
          perform private.wf_log(r, path_text, kind, 'timed_out', jsonb_build_object('deadline', deadline));
          r.waiting_for := null;
          r.status := 'active';
          r.step := private.wf_enter(actions, r.step, 'timed_out');
          r.step_since := deadline;
          r.steps_taken := r.steps_taken + 1;
          continue;
        end if;
        if r.waiting_for is null then
          perform private.wf_log(r, path_text, kind, 'waiting', jsonb_build_object('event', step ->> 'event', 'deadline', deadline));
        end if;
        r.status := 'waiting';
        r.next_run_at := deadline;
        r.waiting_for := jsonb_build_object('event', step ->> 'event', 'deadline', deadline);
        exit;
      else
        raise exception 'unknown step type %', kind;
    end case;
    r.step_since := now_ts;
    r.steps_taken := r.steps_taken + 1;
    r.waiting_for := null;
    r.status := 'active';
  end loop;
  update public.workflow_runs x
  set status = r.status, step = r.step, step_since = r.step_since, context = r.context,
      next_run_at = r.next_run_at, waiting_for = r.waiting_for, attempt = 0,
      steps_taken = r.steps_taken, last_error = r.last_error, finished_at = r.finished_at, updated_at = now()
  where x.id = r.id;
end
$$;
revoke all on function private.wf_advance(uuid) from public, anon, authenticated;

-- An outbox id that is the run and step: a repeat queues nothing twice.
create or replace function private.wf_message_id(run uuid, step_path text)
returns uuid
language sql
immutable
set search_path = ''
as $$
  select md5('workflow:' || run || ':' || step_path)::uuid
$$;
revoke all on function private.wf_message_id(uuid, text) from public, anon, authenticated;

/*
 * public.advance_workflow_runs(max_runs, run_ids): claims due runs (those
 * given, or any whose next_run_at has come, tenants taking turns: each
 * one's first due run, then each one's second, and so on) with SKIP LOCKED,
 * at most max_runs (1 to 1,000), and advances each in a
 * savepoint. A run whose step raises is rolled back to it and retried with
 * backoff (10 s, doubling); after private.wf_max_attempts() attempts it
 * fails, with the error recorded. A client row another transaction holds
 * is not a failure: the run comes back a second or two later. Returns
 * {runs, actions, messages (queued in the outbox), failed, more}.
 * Service role only: the dispatcher and pg_cron call it.
 */
create or replace function public.advance_workflow_runs(max_runs integer default 100, run_ids uuid[] default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  run uuid;
  claimed uuid[];
  batch integer := greatest(1, least(max_runs, 1000));
  queued integer := 0;
  now_ts timestamptz := private.wf_now();
  runs integer := 0;
  actions integer := 0;
  failed integer := 0;
  att integer;
  err text;
  more boolean;
begin
  if run_ids is null then
    select coalesce(array_agg(x.id), '{}') into claimed from (
      with tenants as (
        select distinct r.tenant_id from public.workflow_runs r
        where r.status in ('active', 'waiting') and r.next_run_at <= now_ts
      ), due as (
        select c.id, c.next_run_at, row_number() over (partition by c.tenant_id order by c.next_run_at) as turn
        from tenants t cross join lateral (
          select r.id, r.tenant_id, r.next_run_at from public.workflow_runs r
          where r.tenant_id = t.tenant_id and r.status in ('active', 'waiting') and r.next_run_at <= now_ts
          order by r.next_run_at
          limit batch) c
      )
      -- Tenants take turns: each one's first due run, then each one's second...
      select r.id from public.workflow_runs r
      where r.id in (select d.id from due d order by d.turn, d.next_run_at limit batch)
        and r.status in ('active', 'waiting')
      for update skip locked) x;
  else
    select coalesce(array_agg(x.id), '{}') into claimed from (
      select r.id from public.workflow_runs r
      where r.id = any (run_ids) and r.status in ('active', 'waiting')
      for update skip locked) x;
  end if;
  foreach run in array claimed loop
    runs := runs + 1;
    begin
      select actions + a.actions_done, queued + a.messages into actions, queued
      from private.wf_advance(run) a;
    exception
    when lock_not_available then
      -- Another transaction holds the client (an order, another drain):
      -- not a failure; the run comes back in a moment.
      update public.workflow_runs r
      set next_run_at = private.wf_now() + make_interval(secs => 1 + random()), updated_at = now()
      where r.id = run;
    when others then
      get stacked diagnostics err = message_text;
      update public.workflow_runs r
      set attempt = r.attempt + 1, last_error = err, updated_at = now(),
          status = case when r.attempt + 1 >= private.wf_max_attempts() then 'failed' else r.status end,
          finished_at = case when r.attempt + 1 >= private.wf_max_attempts() then now() end,
          next_run_at = case when r.attempt + 1 >= private.wf_max_attempts() then null
                             else private.wf_now() + make_interval(secs => 10 * power(2, r.attempt)) end
      where r.id = run
      returning r.attempt into att;
      insert into public.workflow_step_runs (tenant_id, run_id, step_path, type, outcome, detail)
      select r.tenant_id, r.id, coalesce(array_to_string(r.step, '.'), ''), 'error',
             case when att >= private.wf_max_attempts() then 'failed' else 'retry' end,
             jsonb_build_object('error', err, 'attempt', att)
      from public.workflow_runs r where r.id = run;
      if att >= private.wf_max_attempts() then
        failed := failed + 1;
      end if;
    end;
  end loop;
  more := run_ids is null and exists (select 1 from public.workflow_runs r
    where r.status in ('active', 'waiting') and r.next_run_at <= private.wf_now());
  return jsonb_build_object('runs', runs, 'actions', actions, 'messages', queued, 'failed', failed, 'more', more);
end
$$;
revoke all on function public.advance_workflow_runs(integer, uuid[]) from public, anon, authenticated;
grant execute on function public.advance_workflow_runs(integer, uuid[]) to service_role;

/*
 * public.execute_workflow(payload): execute-workflow's RPC, as the member
 * (admission, the tenant's role and rate limit first). Records the event
 * {trigger_event, event_data} (event_data.client_id, when given, is the
 * subject and must be the tenant's client; a repeated idempotency_key
 * records nothing and starts nothing), which starts the matching workflows'
 * runs (only workflow_id's when given: 404 unless it is the tenant's), then
 * advances the runs it started until they wait or end. Returns
 * {success, workflows_executed, actions_taken, event_id, runs: [{run_id,
 * workflow_id, status}], replayed}.
 */
create or replace function public.execute_workflow(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  admitted uuid := private.admit_early('execute-workflow');
  tenant uuid := private.try_uuid(payload ->> 'tenant_id');
  workflow uuid := private.try_uuid(payload ->> 'workflow_id');
  subject uuid := private.try_uuid(payload #>> '{event_data,client_id}');
  ev bigint;
  started uuid[];
  advanced jsonb;
begin
  if tenant is null then
    perform private.raise_error('CEV01', 'the request has invalid fields', '{"tenant_id": "must be a uuid"}');
  end if;
  if coalesce(payload ->> 'trigger_event', '') !~ '^[a-z][a-z0-9_]{0,39}(\.[a-z][a-z0-9_]{0,39}){0,4}$' then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"trigger_event": "must be an event type, e.g. order.created"}');
  end if;
  if jsonb_typeof(coalesce(payload -> 'event_data', '{}'::jsonb)) <> 'object' then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"event_data": "must be an object"}');
  end if;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'execute-workflow', admitted);
  if payload ? 'workflow_id' and (workflow is null or not exists (
       select 1 from public.marketing_workflows w where w.id = workflow and w.tenant_id = tenant)) then
    perform private.raise_error('CEN04', 'workflow not found',
      jsonb_build_object('resource', 'workflow', 'id', payload -> 'workflow_id'));
  end if;
  if payload #> '{event_data,client_id}' is not null and (subject is null or not exists (
       select 1 from public.wholesale_clients c where c.id = subject and c.tenant_id = tenant)) then
    perform private.raise_error('CEN04', 'client not found',
      jsonb_build_object('resource', 'client', 'id', payload #> '{event_data,client_id}'));
  end if;
  insert into public.platform_events (tenant_id, type, subject, payload, idempotency_key, workflow_id)
  values (tenant, payload ->> 'trigger_event', subject, coalesce(payload -> 'event_data', '{}'::jsonb),
          coalesce(payload ->> 'idempotency_key', gen_random_uuid()::text), workflow)
  on conflict on constraint platform_events_tenant_key do nothing
  returning id into ev;
  if ev is null then
    select e.id into ev from public.platform_events e
    where e.tenant_id = tenant and e.idempotency_key = execute_workflow.payload ->> 'idempotency_key'
      and e.type = execute_workflow.payload ->> 'trigger_event'
      and e.payload = coalesce(execute_workflow.payload -> 'event_data', '{}'::jsonb)
      and e.workflow_id is not distinct from workflow;
    if ev is null then
      perform private.raise_error('CEI22', 'the idempotency key was used for a different event');
    end if;
    return jsonb_build_object('success', true, 'replayed', true, 'event_id', ev,
      'workflows_executed', (select count(*) from public.workflow_runs r where r.event_id = ev),
      'actions_taken', 0, 'messages_queued', 0,
      'runs', (select coalesce(jsonb_agg(jsonb_build_object('run_id', r.id, 'workflow_id', r.workflow_id,
                 'status', r.status) order by r.created_at), '[]'::jsonb)
               from public.workflow_runs r where r.event_id = ev));
  end if;
  select coalesce(array_agg(r.id), '{}') into started from public.workflow_runs r
  where r.event_id = ev;
  advanced := public.advance_workflow_runs(cardinality(started), started);
  return jsonb_build_object('success', true, 'replayed', false, 'event_id', ev,
    'workflows_executed', cardinality(started),
    'actions_taken', coalesce((advanced ->> 'actions')::integer, 0),
    'messages_queued', coalesce((advanced ->> 'messages')::integer, 0),
    'runs', (select coalesce(jsonb_agg(jsonb_build_object('run_id', r.id, 'workflow_id', r.workflow_id,
               'status', r.status) order by r.created_at), '[]'::jsonb)
             from public.workflow_runs r where r.id = any (started)));
end
$$;
revoke all on function public.execute_workflow(jsonb) from public, anon;
grant execute on function public.execute_workflow(jsonb) to authenticated, service_role;

-- execute-workflow is admitted against the tenant it names, 120 requests a
-- minute per tenant by default.
insert into private.request_subjects (function_name, subject_table, resource)
values ('execute-workflow', 'private.tenant_subjects', 'tenant')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values (null, 'execute-workflow', 120, 60)
on conflict (tenant_id, function_name) do nothing;

-- The drain: pg_cron advances due runs every minute, in SQL (the dispatcher
-- also does, each time it runs, before it delivers the outbox).
select cron.schedule('advance-workflows', '* * * * *',
  $job$select public.advance_workflow_runs(500)$job$);
select cron.schedule('emit-inactive-client-events', '15 3 * * *',
  $job$call public.emit_inactive_client_events_daily()$job$);
