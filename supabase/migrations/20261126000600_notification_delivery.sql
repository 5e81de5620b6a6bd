-- Delivering notification_outbox rows: claim a batch under a lease, then
-- record each outcome. Called by the dispatch-notifications function with the
-- service role; nothing here is open to users.
--
-- A row's life: pending → (claim) sending → sent
--                                        ↘ (transient failure) pending again, later
--                                        ↘ (permanent failure, or the 8th attempt) dead
-- A dispatcher that dies holding rows loses nothing: when the lease runs out the
-- rows are claimable again (or dead, if that was their last attempt).

alter table public.notification_outbox add column if not exists lease_id uuid;

/* private.outbox_max_attempts(): attempts before a row is dead-lettered. */
create or replace function private.outbox_max_attempts()
returns integer
language sql
immutable
as $$ select 8 $$;
revoke all on function private.outbox_max_attempts() from public;

/*
 * Paid-message quotas. Each tenant may have at most per_hour and per_day
 * messages of a channel claimed for sending in any rolling hour and day
 * (the tenant's row overrides the default, whose tenant_id is null). A
 * channel with no row (stripe, slack) is not limited. Rows over the quota are
 * held, never dropped: they stay pending, are looked at again every
 * `held_recheck` (5 minutes), and go out as the window frees up. The first
 * time a tenant's channel is held in an hour, the platform's Slack is told
 * (an outbox row on channel 'slack', template 'quota_alert').
 */
create table if not exists public.message_quotas (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete cascade,
  channel text not null,
  per_hour integer not null check (per_hour > 0),
  per_day integer not null check (per_day > 0),
  unique nulls not distinct (tenant_id, channel)
);
alter table public.message_quotas enable row level security;
drop policy if exists "Members can read their tenant's and the default quotas" on public.message_quotas;
create policy "Members can read their tenant's and the default quotas" on public.message_quotas
  for select to authenticated
  using (tenant_id is null or tenant_id in (select private.current_tenant_ids()));
create index if not exists message_quotas_tenant_id_idx on public.message_quotas (tenant_id);
revoke all on public.message_quotas from anon, authenticated;
grant select on public.message_quotas to authenticated;
grant all on public.message_quotas to service_role;
-- Generous defaults: far above what an order desk sends, far below what a
-- runaway or hostile tenant could cost in an hour.
insert into public.message_quotas (tenant_id, channel, per_hour, per_day) values
  (null, 'email', 2000, 20000),
  (null, 'sms', 500, 5000)
on conflict (tenant_id, channel) do nothing;

-- When a row was first claimed: what the quotas count.
alter table public.notification_outbox add column if not exists claimed_at timestamptz;
alter table public.notification_outbox add column if not exists held_at timestamptz;
create index if not exists notification_outbox_usage_idx
  on public.notification_outbox (tenant_id, channel, claimed_at) where claimed_at is not null;

/* One alert per tenant, channel and hour. */
create table if not exists private.quota_alerts (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  channel text not null,
  hour timestamptz not null,
  primary key (tenant_id, channel, hour)
);

/*
 * private.message_room(tenant, channel): how many more messages of the
 * channel the tenant may send now (null: unlimited).
 */
create or replace function private.message_room(tenant uuid, channel text)
returns bigint
language sql
stable
set search_path = ''
as $$
  select least(
    q.per_hour - (select count(*) from public.notification_outbox o
                  where o.tenant_id = tenant and o.channel = message_room.channel
                    and o.claimed_at > clock_timestamp() - interval '1 hour'),
    q.per_day - (select count(*) from public.notification_outbox o
                 where o.tenant_id = tenant and o.channel = message_room.channel
                   and o.claimed_at > clock_timestamp() - interval '1 day'))
  from (
    select m.per_hour, m.per_day from public.message_quotas m
    where m.channel = message_room.channel and (m.tenant_id = tenant or m.tenant_id is null)
    order by m.tenant_id nulls last
    limit 1
  ) q
$$;
revoke all on function private.message_room(uuid, text) from public;

/*
 * public.claim_notifications(batch_size, lease_seconds): claims up to
 * batch_size due rows for one dispatcher, oldest due first, within each
 * tenant's message quotas.
 *
 * Due: pending with next_attempt_at reached, or sending with an expired lease
 * (its dispatcher died). Claiming counts an attempt, sets status 'sending',
 * a fresh lease_id and locked_until = now() + lease_seconds, and claimed_at
 * the first time.
 *
 * Quotas: for each (tenant, channel) with due rows, at most its room
 * (private.message_room) is claimed; the rest are held (next_attempt_at + 5
 * min, held_at set) and the first hold of the hour queues a Slack alert.
 *
 * Locks: a transaction advisory lock, so claims run one at a time and two
 * dispatchers cannot both spend the same quota room; then the claimed rows,
 * with FOR UPDATE SKIP LOCKED. Rows whose lease expired on their last
 * attempt are dead-lettered first.
 *
 * Raises CEV01 for a batch_size outside 1..500 or lease_seconds outside 1..3600.
 */
create or replace function public.claim_notifications(batch_size integer default 50, lease_seconds integer default 60)
returns setof public.notification_outbox
language plpgsql
security definer
set search_path = ''
as $$
declare
  held_pairs jsonb;
  fitting uuid[];
  alert uuid;
  over record;
begin
  if batch_size not between 1 and 500 or lease_seconds not between 1 and 3600 then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"batch_size": "1 to 500", "lease_seconds": "1 to 3600"}');
  end if;
  perform pg_catalog.pg_advisory_xact_lock(hashtext('claim_notifications'));

  update public.notification_outbox o
  set status = 'dead', locked_until = null, lease_id = null,
      last_error = concat_ws('; ', o.last_error, 'the lease expired on the last attempt')
  where o.status = 'sending' and o.locked_until <= clock_timestamp()
    and o.attempts >= private.outbox_max_attempts();

  -- One snapshot decides, per (tenant, channel), which due rows fit the
  -- quota's room: those are the only rows this call may claim (a row queued
  -- after it is looked at by the next call); the rest are held.
  with pairs as (
    select distinct o.tenant_id, o.channel
    from public.notification_outbox o
    where o.status = 'pending' and o.next_attempt_at <= clock_timestamp()
  ),
  -- Materialized: counted once per (tenant, channel), not once per due row.
  room as materialized (
    select p.tenant_id, p.channel, private.message_room(p.tenant_id, p.channel) as room
    from pairs p
  ),
  ranked as (
    select o.id, o.tenant_id, o.channel, o.next_attempt_at,
           row_number() over (partition by o.tenant_id, o.channel order by o.next_attempt_at) as n
    from public.notification_outbox o
    where o.status = 'pending' and o.next_attempt_at <= clock_timestamp()
  ),
  judged as (
    select r.id, r.tenant_id, r.channel, r.next_attempt_at,
           c.room is not null and r.n > greatest(c.room, 0) as over
    from ranked r join room c on c.tenant_id = r.tenant_id and c.channel = r.channel
  ),
  held as (
    update public.notification_outbox o
    set next_attempt_at = clock_timestamp() + interval '5 minutes',
        held_at = coalesce(o.held_at, clock_timestamp()),
        last_error = 'held: the tenant''s ' || o.channel || ' quota is used up'
    from judged j
    where o.id = j.id and j.over
    returning o.tenant_id, o.channel
  )
  select
    (select coalesce(jsonb_agg(jsonb_build_object('tenant_id', x.tenant_id, 'channel', x.channel, 'n', x.n)), '[]')
     from (select h.tenant_id, h.channel, count(*) as n from held h group by h.tenant_id, h.channel) x),
    (select coalesce(array_agg(j.id order by j.next_attempt_at), '{}') from judged j where not j.over)
  into held_pairs, fitting;

  for over in select (e ->> 'tenant_id')::uuid as tenant_id, e ->> 'channel' as channel, (e ->> 'n')::bigint as n
              from jsonb_array_elements(held_pairs) e
  loop
    insert into private.quota_alerts (tenant_id, channel, hour)
    values (over.tenant_id, over.channel, date_trunc('hour', clock_timestamp()))
    on conflict do nothing;
    if found then
      insert into public.notification_outbox (tenant_id, channel, template, payload)
      select over.tenant_id, 'slack', 'quota_alert', jsonb_build_object(
        'tenant_id', over.tenant_id, 'tenant', t.business_name, 'channel', over.channel,
        'held', over.n, 'quota', (
          select jsonb_build_object('per_hour', m.per_hour, 'per_day', m.per_day)
          from public.message_quotas m
          where m.channel = over.channel and (m.tenant_id = over.tenant_id or m.tenant_id is null)
          order by m.tenant_id nulls last limit 1))
      from public.tenants t where t.id = over.tenant_id
      returning id into alert;
      fitting := fitting || alert;  -- sent in this very call
    end if;
  end loop;

  -- Claimed: rows that fit (pending when judged, still pending now), and
  -- rows whose dispatcher died (already counted when first claimed).
  return query
  with due as (
    select o.id
    from public.notification_outbox o
    where (o.status = 'pending' and o.id = any (fitting))
       or (o.status = 'sending' and o.locked_until <= clock_timestamp()
           and o.attempts < private.outbox_max_attempts())
    order by o.next_attempt_at
    limit batch_size
    for update skip locked
  )
  update public.notification_outbox o
  set status = 'sending',
      attempts = o.attempts + 1,
      locked_until = clock_timestamp() + make_interval(secs => lease_seconds),
      lease_id = gen_random_uuid(),
      claimed_at = coalesce(o.claimed_at, clock_timestamp())
  from due
  where o.id = due.id
  returning o.*;
end
$$;
revoke all on function public.claim_notifications(integer, integer) from public, anon, authenticated;
grant execute on function public.claim_notifications(integer, integer) to service_role;

/*
 * public.complete_notification(notification_id, provider_message_id): the
 * provider accepted the message. Recorded whatever the lease: a message that
 * was sent is sent, even if a slower dispatcher reports it after its lease
 * ran out. Returns false if the row was already marked sent. Locks the row.
 */
create or replace function public.complete_notification(notification_id uuid, provider_message_id text)
returns boolean
language plpgsql
security definer
set search_path = ''
as $$
begin
  update public.notification_outbox o
  set status = 'sent', sent_at = clock_timestamp(),
      provider_message_id = complete_notification.provider_message_id,
      locked_until = null, lease_id = null, last_error = null
  where o.id = notification_id and o.status <> 'sent';
  return found;
end
$$;
revoke all on function public.complete_notification(uuid, text) from public, anon, authenticated;
grant execute on function public.complete_notification(uuid, text) to service_role;

/*
 * public.fail_notification(notification_id, lease, error, permanent,
 * retry_after_seconds, backoff_seconds): an attempt failed.
 *
 * Permanent, or the last attempt: the row is dead, with the error. Otherwise it
 * is pending again at now() + max(retry_after_seconds, backoff), where backoff
 * is backoff_seconds · 2^(attempts−1), capped at an hour, with ±25 % jitter so
 * rows that failed together do not retry together.
 *
 * Applies only under the caller's lease: a dispatcher whose lease ran out (and
 * whose row another dispatcher now holds) changes nothing. Returns the new
 * status, or null when the report was stale. Locks the row.
 */
create or replace function public.fail_notification(
  notification_id uuid,
  lease uuid,
  error text,
  permanent boolean default false,
  retry_after_seconds double precision default 0,
  backoff_seconds double precision default 30)
returns text
language plpgsql
security definer
set search_path = ''
as $$
declare
  new_status text;
begin
  update public.notification_outbox o
  set status = case when permanent or o.attempts >= private.outbox_max_attempts() then 'dead' else 'pending' end,
      last_error = left(error, 2000),
      next_attempt_at = clock_timestamp() + make_interval(secs => greatest(
        retry_after_seconds,
        least(3600, backoff_seconds * 2 ^ (o.attempts - 1)) * (0.75 + random() * 0.5))),
      locked_until = null,
      lease_id = null
  where o.id = notification_id and o.lease_id = lease and o.status = 'sending'
  returning o.status into new_status;
  return new_status;
end
$$;
revoke all on function public.fail_notification(uuid, uuid, text, boolean, double precision, double precision)
  from public, anon, authenticated;
grant execute on function public.fail_notification(uuid, uuid, text, boolean, double precision, double precision)
  to service_role;

/*
 * public.record_notification_outcomes(outcomes, backoff_seconds): a batch's
 * outcomes in one transaction, so a dispatcher makes one round trip per batch
 * rather than one per message. Each outcome is either
 *   {"id", "provider_message_id"}                                (sent), or
 *   {"id", "lease", "error", "permanent", "retry_after_seconds"}  (failed),
 * applied by complete_notification or fail_notification with their rules.
 * Returns [{"id", "status"}], status null for a stale failure report.
 */
create or replace function public.record_notification_outcomes(outcomes jsonb, backoff_seconds double precision default 30)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  o jsonb;
  statuses jsonb := '[]'::jsonb;
  new_status text;
begin
  if jsonb_typeof(outcomes) is distinct from 'array' then
    perform private.raise_error('CEV01', 'the request has invalid fields', '{"outcomes": "must be an array"}');
  end if;
  -- In id order, so two dispatchers' batches never lock rows in crossing order.
  for o in select x from jsonb_array_elements(outcomes) x order by x ->> 'id' loop
    if o ? 'provider_message_id' then
      perform public.complete_notification((o ->> 'id')::uuid, o ->> 'provider_message_id');
      new_status := 'sent';
    else
      new_status := public.fail_notification((o ->> 'id')::uuid, (o ->> 'lease')::uuid, o ->> 'error',
        coalesce((o ->> 'permanent')::boolean, false),
        coalesce((o ->> 'retry_after_seconds')::double precision, 0), backoff_seconds);
    end if;
    statuses := statuses || jsonb_build_object('id', o ->> 'id', 'status', new_status);
  end loop;
  return statuses;
end
$$;
revoke all on function public.record_notification_outcomes(jsonb, double precision) from public, anon, authenticated;
grant execute on function public.record_notification_outcomes(jsonb, double precision) to service_role;
