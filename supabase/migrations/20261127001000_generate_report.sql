-- generate-report (seed 000 §7): saved report definitions and the request's
-- admission. The report itself is public.report_data, read as the caller.
--
-- Re-runnable like every migration here.

create table if not exists public.custom_reports (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  data_sources jsonb check (data_sources is null or jsonb_typeof(data_sources) = 'array'),
  metrics jsonb not null check (jsonb_typeof(metrics) = 'array'),
  filters jsonb check (filters is null or jsonb_typeof(filters) = 'object'),
  group_by jsonb check (group_by is null or jsonb_typeof(group_by) = 'array'),
  visualization_type text not null default 'table' check (visualization_type in ('table', 'chart', 'summary')),
  created_by uuid references auth.users (id),
  created_at timestamptz default now()
);
select private.isolate_by_tenant('public.custom_reports', 'reports');
revoke all on public.custom_reports from anon, authenticated;
grant select, delete on public.custom_reports to authenticated;
grant insert (tenant_id, name, data_sources, metrics, filters, group_by, visualization_type),
  update (name, data_sources, metrics, filters, group_by, visualization_type)
  on public.custom_reports to authenticated;
grant all on public.custom_reports to service_role;

-- generate-report is admitted against the tenant it names, 60 a minute.
insert into private.request_subjects (function_name, subject_table, resource)
values ('generate-report', 'private.tenant_subjects', 'tenant')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values (null, 'generate-report', 60, 60)
on conflict (tenant_id, function_name) do nothing;

/*
 * private.narrow_filters(saved, asked): the saved filters narrowed by the
 * request's: the later date_from, the earlier date_to, and for a dimension
 * the values in both (a dimension in one only is taken as it is).
 */
create or replace function private.narrow_filters(saved jsonb, asked jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  out jsonb := coalesce(saved, '{}'::jsonb);
  k text;
  a jsonb;
  b jsonb;
begin
  for k in select x from jsonb_object_keys(coalesce(asked, '{}'::jsonb)) x loop
    a := out -> k;
    b := asked -> k;
    if a is null then
      out := out || jsonb_build_object(k, b);
    elsif k = 'date_from' then
      out := out || jsonb_build_object(k, greatest(a #>> '{}', b #>> '{}'));
    elsif k = 'date_to' then
      out := out || jsonb_build_object(k, least(a #>> '{}', b #>> '{}'));
    elsif k = 'period' then
      -- A named period asked for replaces the saved one; dates still narrow.
      out := out || jsonb_build_object(k, b);
    elsif k = 'where' then
      -- Both conditions hold: the saved one and the request's.
      out := out || jsonb_build_object(k, jsonb_build_object('all', jsonb_build_array(a, b)));
    else
      out := out || jsonb_build_object(k, coalesce((
        select jsonb_agg(x) from jsonb_array_elements_text(
          case jsonb_typeof(a) when 'array' then a else jsonb_build_array(a) end) x
        where x in (select jsonb_array_elements_text(
          case jsonb_typeof(b) when 'array' then b else jsonb_build_array(b) end))), '[]'::jsonb));
    end if;
  end loop;
  return out;
end
$$;
revoke all on function private.narrow_filters(jsonb, jsonb) from public, anon, authenticated;

/*
 * public.start_report(payload): generate-report's admission and definition,
 * as the caller: admission, the member role (as every function's admission
 * asks) and rate limit. With report_id, the saved definition (404 unless the
 * tenant's), its filters narrowed by the request's; else the request's.
 * With save (a name), the definition is stored as a custom_reports row.
 * Returns {spec (for public.report_data, with a ticket good once for a
 * minute), report_id, name, visualization_type}. Raises CEA01/CEA03 (admission, role), CER03, CER29,
 * CEN04, CEV01 (a save without metrics).
 */
create or replace function public.start_report(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  admitted uuid := private.admit_early('generate-report');
  tenant uuid := private.try_uuid(payload ->> 'tenant_id');
  saved public.custom_reports;
  spec jsonb;
  viz text := coalesce(payload ->> 'visualization_type', 'table');
  report uuid;
  ticket uuid;
begin
  if tenant is null then
    perform private.raise_error('CEV01', 'the request has invalid fields', '{"tenant_id": "must be a uuid"}');
  end if;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'generate-report', admitted);
  if payload ? 'report_id' then
    select * into saved from public.custom_reports r
    where r.id = private.try_uuid(payload ->> 'report_id') and r.tenant_id = tenant;
    if not found then
      perform private.raise_error('CEN04', 'report not found',
        jsonb_build_object('resource', 'report', 'id', payload -> 'report_id'));
    end if;
    spec := jsonb_build_object('tenant_id', tenant, 'metrics', saved.metrics,
      'filters', private.narrow_filters(saved.filters, payload -> 'filters'))
      || case when saved.data_sources is not null then jsonb_build_object('data_sources', saved.data_sources)
              else '{}'::jsonb end
      || case when coalesce(payload -> 'group_by', saved.group_by) is not null
              then jsonb_build_object('group_by', coalesce(payload -> 'group_by', saved.group_by)) else '{}'::jsonb end;
    viz := coalesce(payload ->> 'visualization_type', saved.visualization_type);
    report := saved.id;
  else
    spec := jsonb_build_object('tenant_id', tenant, 'metrics', payload -> 'metrics')
      || case when payload ? 'filters' then jsonb_build_object('filters', payload -> 'filters') else '{}'::jsonb end
      || case when payload ? 'data_sources' then jsonb_build_object('data_sources', payload -> 'data_sources')
              else '{}'::jsonb end
      || case when payload ? 'group_by' then jsonb_build_object('group_by', payload -> 'group_by') else '{}'::jsonb end;
  end if;
  -- A spreadsheet holds up to 50,000 rows; JSON and PDF up to 10,000.
  spec := spec || jsonb_build_object('row_limit', case when payload ->> 'format' = 'excel' then 50000 else 10000 end);
  if payload ? 'save' then
    -- A definition that does not run is not stored. (This check is the
    -- only run without a ticket: the flag lasts for this statement's
    -- transaction and no API can set it.)
    perform set_config('commerce_edge.checking_report', 'on', true);
    perform public.report_data(spec);
    perform set_config('commerce_edge.checking_report', '', true);
    insert into public.custom_reports (tenant_id, name, data_sources, metrics, filters, group_by, visualization_type,
      created_by)
    values (tenant, payload ->> 'save', spec -> 'data_sources', spec -> 'metrics', spec -> 'filters', spec -> 'group_by',
      viz, (select auth.uid()))
    returning id into report;
  end if;
  insert into private.report_tickets (user_id, spec) values ((select auth.uid()), spec) returning id into ticket;
  return jsonb_build_object('spec', spec || jsonb_build_object('ticket', ticket), 'report_id', report,
    'visualization_type', viz, 'name', coalesce(payload ->> 'save', saved.name),
    'file_size_limit', (select b.file_size_limit from storage.buckets b where b.id = 'reports'),
    'tenant_name', (select t.business_name from public.tenants t where t.id = tenant),
    'generated_at', (select to_char(now() at time zone coalesce(t.time_zone, 'UTC'), 'YYYY-MM-DD HH24:MI')
                     || ' ' || coalesce(t.time_zone, 'UTC') from public.tenants t where t.id = tenant));
end
$$;
revoke all on function public.start_report(jsonb) from public, anon;
grant execute on function public.start_report(jsonb) to authenticated, service_role;
