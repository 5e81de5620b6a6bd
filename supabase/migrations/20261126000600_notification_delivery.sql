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
 * public.claim_notifications(batch_size, lease_seconds): claims up to
 * batch_size due rows for one dispatcher, oldest due first.
 *
 * Due: pending with next_attempt_at reached, or sending with an expired lease
 * (its dispatcher died). Claiming counts an attempt, sets status 'sending',
 * a fresh lease_id and locked_until = now() + lease_seconds.
 *
 * Locks: the claimed rows, with FOR UPDATE SKIP LOCKED, so concurrent
 * dispatchers never claim the same row and never wait for each other. Rows
 * whose lease expired on their last attempt are dead-lettered first.
 *
 * Raises CEV01 for a batch_size outside 1..500 or lease_seconds outside 1..3600.
 */
create or replace function public.claim_notifications(batch_size integer default 50, lease_seconds integer default 60)
returns setof public.notification_outbox
language plpgsql
security definer
set search_path = ''
as $$
begin
  if batch_size not between 1 and 500 or lease_seconds not between 1 and 3600 then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"batch_size": "1 to 500", "lease_seconds": "1 to 3600"}');
  end if;

  update public.notification_outbox o
  set status = 'dead', locked_until = null, lease_id = null,
      last_error = concat_ws('; ', o.last_error, 'the lease expired on the last attempt')
  where o.status = 'sending' and o.locked_until <= clock_timestamp()
    and o.attempts >= private.outbox_max_attempts();

  return query
  with due as (
    select o.id
    from public.notification_outbox o
    where (o.status = 'pending' and o.next_attempt_at <= clock_timestamp())
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
      lease_id = gen_random_uuid()
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
  statuses jsonb := '[]';
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
