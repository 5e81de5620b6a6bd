-- Sending campaigns: starting one (send-campaign), claiming its recipients in
-- batches fairly between tenants and under each provider's shared rate,
-- recording what the provider said, and finishing it.
--
-- Re-runnable like every migration here.

/*
 * private.is_time_zone(tz): tz names a time zone Postgres knows (an IANA
 * name such as Europe/Paris, or UTC). Raises nothing.
 */
create or replace function private.is_time_zone(tz text)
returns boolean
language plpgsql
immutable
set search_path = ''
as $$
begin
  if tz is null or tz !~ '^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$' then
    return false;
  end if;
  perform now() at time zone tz;
  return true;
exception when others then
  return false;
end
$$;
revoke all on function private.is_time_zone(text) from public, anon, authenticated;
grant execute on function private.is_time_zone(text) to service_role;

-- The tenant's time zone: marketing SMS keep to 08:00–21:00 there.
alter table public.tenants add column if not exists time_zone text not null default 'UTC';
alter table public.tenants drop constraint if exists tenants_time_zone_check;
alter table public.tenants add constraint tenants_time_zone_check check (private.is_time_zone(time_zone));

-- What a recipient's message was made from, frozen at its first claim so a
-- retry sends exactly the same payload; and when that first claim was.
alter table public.campaign_recipients add column if not exists merge jsonb;
alter table public.campaign_recipients add column if not exists first_claimed_at timestamptz;
create index if not exists campaign_recipients_pending_idx on public.campaign_recipients (campaign_id, id)
  where status = 'pending';
create index if not exists campaign_recipients_claimed_idx on public.campaign_recipients (campaign_id, claimed_until)
  where status = 'claimed';
drop index if exists public.campaign_recipients_due_idx;

/*
 * private.guard_campaign_write(), again: the draft rule is for what a member
 * writes directly (as the authenticated role). The RPCs, which run as their
 * owner, move a campaign through its states. Not security definer, so that
 * current_user is who wrote; it raises CE409 in private.raise_api_error's
 * form itself, since members may not call that.
 */
revoke execute on function private.raise_api_error(integer, text, text, jsonb) from authenticated;
create or replace function private.guard_campaign_write()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and tg_op in ('UPDATE', 'DELETE') and old.status <> 'draft' then
    raise exception using errcode = 'CE409', hint = 'CAMPAIGN_NOT_DRAFT',
      message = 'only a draft campaign can be changed or removed',
      detail = jsonb_build_object('campaign_id', old.id, 'status', old.status)::text;
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  if current_user = 'authenticated' and tg_op = 'INSERT' and new.status <> 'draft' then
    raise exception using errcode = 'CE409', hint = 'CAMPAIGN_NOT_DRAFT',
      message = 'a campaign is created as a draft',
      detail = jsonb_build_object('status', new.status)::text;
  end if;
  new.updated_at := now();
  return new;
end
$$;

/*
 * private.send_buckets: each provider account's rate, shared by every tenant
 * and by transactional and marketing messages alike. A token bucket: rate
 * tokens a second, at most one second's worth banked (and at least one
 * token, so a rate below one a second still sends). A campaign batch
 * takes a token per request (a Resend batch of 100 is one request; an SMS
 * is one). Transactional messages take theirs without asking (the balance
 * may go below zero), so they never wait behind marketing: marketing waits
 * until the balance is positive again.
 */
create table if not exists private.send_buckets (
  provider text primary key check (provider in ('resend', 'twilio')),
  rate double precision not null check (rate > 0 and rate <= 10000),
  tokens double precision not null,
  refilled_at timestamptz not null default clock_timestamp()
);
revoke all on private.send_buckets from public, anon, authenticated;

/*
 * private.refill_send_bucket(provider, rate): the provider's bucket refilled
 * to now at rate (null: the rate it has), its balance returned. Creates it
 * full. Holds at most max(rate, 1) tokens. Locks the bucket row: every claim of campaign work and every spend
 * goes one at a time through it.
 */
create or replace function private.refill_send_bucket(provider text, rate double precision)
returns double precision
language plpgsql
set search_path = ''
as $$
declare
  balance double precision;
begin
  insert into private.send_buckets as b (provider, rate, tokens)
  values (refill_send_bucket.provider, coalesce(refill_send_bucket.rate, 1),
          greatest(coalesce(refill_send_bucket.rate, 1), 1))
  on conflict on constraint send_buckets_pkey do update
  set rate = coalesce(refill_send_bucket.rate, b.rate),
      tokens = least(greatest(coalesce(refill_send_bucket.rate, b.rate), 1),
                     b.tokens + extract(epoch from clock_timestamp() - b.refilled_at)
                                * coalesce(refill_send_bucket.rate, b.rate)),
      refilled_at = clock_timestamp()
  returning b.tokens into balance;
  return balance;
end
$$;
revoke all on function private.refill_send_bucket(text, double precision) from public, anon, authenticated;

/*
 * private.spend_for_transactional(): after the outbox claims rows, their
 * email and SMS sends are taken from the providers' buckets (which may go
 * below zero: transactional messages are never held back by marketing).
 * Statement-level, over the claimed rows only. Nothing is taken from a
 * bucket that does not exist yet (no campaign was ever sent).
 */
create or replace function private.spend_for_transactional()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
declare
  spent record;
begin
  for spent in
    select case n.channel when 'email' then 'resend' else 'twilio' end as provider, count(*) as n
    from new_rows n join old_rows o on o.id = n.id
    where n.status = 'sending' and n.lease_id is distinct from o.lease_id and n.channel in ('email', 'sms')
    group by 1
  loop
    if exists (select 1 from private.send_buckets b where b.provider = spent.provider) then
      perform private.refill_send_bucket(spent.provider, null);
      update private.send_buckets b set tokens = greatest(b.tokens - spent.n, -10 * b.rate)
      where b.provider = spent.provider;
    end if;
  end loop;
  return null;
end
$$;
revoke all on function private.spend_for_transactional() from public, anon, authenticated;
drop trigger if exists spend_for_transactional on public.notification_outbox;
create trigger spend_for_transactional after update on public.notification_outbox
  referencing old table as old_rows new table as new_rows
  for each statement execute function private.spend_for_transactional();

/*
 * private.campaign_turns: when each tenant's campaigns on a channel were last
 * given a batch. Claims serve the tenant waiting longest first.
 */
create table if not exists private.campaign_turns (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  channel text not null,
  served_at timestamptz not null,
  primary key (tenant_id, channel)
);
revoke all on private.campaign_turns from public, anon, authenticated;

/* How many attempts a campaign batch gets before its recipients fail. */
create or replace function private.campaign_max_attempts()
returns integer
language sql
immutable
set search_path = ''
as $$ select 8 $$;
revoke all on function private.campaign_max_attempts() from public, anon, authenticated;

/*
 * private.finish_campaigns(ids): the sending campaigns among ids with every
 * recipient sent or failed become sent. Locks those campaign rows.
 */
create or replace function private.finish_campaigns(ids uuid[])
returns void
language sql
set search_path = ''
as $$
  update public.marketing_campaigns m set status = 'sent', sent_at = now()
  where m.id = any (ids) and m.status = 'sending' and m.sent_count + m.failed_count >= m.recipient_count;
$$;
revoke all on function private.finish_campaigns(uuid[]) from public, anon, authenticated;

/*
 * private.start_campaign(campaign_id): a draft or due scheduled campaign
 * starts: sending, started_at now, its audience enqueued
 * (public.enqueue_campaign); with nobody to send to it is sent at once.
 * Returns enqueue_campaign's counts. Locks the campaign row.
 */
create or replace function private.start_campaign(campaign_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  counts jsonb;
begin
  update public.marketing_campaigns m set status = 'sending', started_at = now()
  where m.id = start_campaign.campaign_id;
  counts := public.enqueue_campaign(start_campaign.campaign_id);
  perform private.finish_campaigns(array[start_campaign.campaign_id]);
  return counts;
end
$$;
revoke all on function private.start_campaign(uuid) from public, anon, authenticated;

/*
 * public.start_due_campaigns(): every scheduled campaign whose time has come
 * starts (private.start_campaign), oldest first, each in its own savepoint:
 * one whose audience no longer compiles (a segment deleted since) fails,
 * with the reason in content.error, and the others still start. Returns
 * how many started. Service role only: the dispatcher calls it each run.
 */
create or replace function public.start_due_campaigns()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  due uuid;
  started integer := 0;
begin
  for due in
    select m.id from public.marketing_campaigns m
    where m.status = 'scheduled' and m.scheduled_at <= now()
    order by m.scheduled_at
    for update skip locked
  loop
    begin
      perform private.start_campaign(due);
      started := started + 1;
    exception when others then
      update public.marketing_campaigns m
      set status = 'failed', content = m.content || jsonb_build_object('error', sqlerrm)
      where m.id = due;
    end;
  end loop;
  return started;
end
$$;
revoke all on function public.start_due_campaigns() from public, anon, authenticated;
grant execute on function public.start_due_campaigns() to service_role;

/*
 * private.claim_campaign_batch(campaign, size, lease_seconds): one batch of
 * the campaign, claimed: first a batch whose claim ran out (its sender died,
 * or it waits for a retry), whole and with the same batch_id, so the
 * provider's idempotency key and the payload are the same as before; else up
 * to size pending recipients, oldest first, as a new batch. Claiming counts
 * an attempt and sets claimed_until = now + lease. A batch out of attempts
 * fails instead (failed_count) and the next one is looked for. The merge
 * values (the client's name and city, the tenant's name) are frozen at the
 * first claim. Returns {batch_id, campaign_id, tenant_id, attempt,
 * since (the first claim's time), recipients: [{id, client_id, address,
 * merge}]}, or null when the campaign has nothing due. Locks the batch's
 * recipient rows.
 */
create or replace function private.claim_campaign_batch(campaign uuid, size integer, lease_seconds integer)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  batch uuid;
  ids bigint[];
  claimed jsonb;
begin
  loop
    select r.batch_id into batch from public.campaign_recipients r
    where r.campaign_id = campaign and r.status = 'claimed' and r.claimed_until <= clock_timestamp()
    limit 1 for update skip locked;
    exit when batch is null;
    select array_agg(r.id order by r.id) into ids from (
      select x.id from public.campaign_recipients x
      where x.batch_id = batch and x.status = 'claimed' for update) r;
    if (select max(x.attempt) from public.campaign_recipients x where x.id = any (ids))
       < private.campaign_max_attempts() then
      exit;
    end if;
    update public.campaign_recipients r
    set status = 'failed', claimed_until = null, updated_at = now(),
        last_error = left(concat_ws('; ', r.last_error, 'out of attempts'), 2000)
    where r.id = any (ids);
    update public.marketing_campaigns m set failed_count = m.failed_count + cardinality(ids)
    where m.id = campaign;
    perform private.finish_campaigns(array[campaign]);
    batch := null;
  end loop;
  if batch is null then
    select array_agg(p.id order by p.id) into ids from (
      select r.id from public.campaign_recipients r
      where r.campaign_id = campaign and r.status = 'pending' and r.next_attempt_at <= clock_timestamp()
      order by r.id limit size
      for update skip locked) p;
    if ids is null then
      return null;
    end if;
    batch := gen_random_uuid();
  end if;
  with claimed_rows as (
    update public.campaign_recipients r
    set status = 'claimed', batch_id = batch, attempt = r.attempt + 1,
        claimed_until = clock_timestamp() + make_interval(secs => lease_seconds),
        first_claimed_at = coalesce(r.first_claimed_at, clock_timestamp()),
        merge = coalesce(r.merge, (
          select jsonb_build_object('client', jsonb_build_object(
                   'name', c.name, 'city', coalesce(c.city, ''), 'email', coalesce(c.email, ''),
                   'phone', coalesce(c.phone, '')),
                 'business', jsonb_build_object('name', t.business_name))
          from public.wholesale_clients c join public.tenants t on t.id = c.tenant_id
          where c.id = r.client_id)),
        updated_at = now()
    where r.id = any (ids)
    returning r.*
  )
  select jsonb_build_object(
    'batch_id', batch, 'campaign_id', campaign, 'tenant_id', min(c.tenant_id::text),
    'attempt', max(c.attempt),
    'since', to_char(min(c.first_claimed_at) at time zone 'UTC', 'YYYY-MM-DD'),
    'recipients', jsonb_agg(jsonb_build_object('id', c.id, 'client_id', c.client_id,
      'address', c.address, 'merge', c.merge) order by c.id))
  into claimed from claimed_rows c;
  return claimed;
end
$$;
revoke all on function private.claim_campaign_batch(uuid, integer, integer) from public, anon, authenticated;

/*
 * public.claim_campaign_batches(channel, rate, max_batches, batch_size,
 * lease_seconds, campaign_id): campaign work for one sender, within the
 * provider's shared rate.
 *
 * Rate: the provider's bucket (private.send_buckets, refilled at rate, the
 * sender's configured RESEND_MAX_RPS or TWILIO_MAX_MPS) pays one token per
 * email batch and one per SMS; with less than one token nothing is
 * claimed and wait_ms says when there will be.
 *
 * Fairness: tenants take turns. Each round gives one batch to each tenant
 * with a sending campaign on the channel, the tenant served longest ago
 * first (private.campaign_turns), until max_batches or the tokens run out;
 * within a tenant its campaigns go in the order they started. So a tenant
 * with one 100,000-recipient campaign and one with 50 recipients each get a
 * batch per round.
 *
 * Quiet hours: marketing SMS go out only from 08:00 to 21:00 in the
 * tenant's time zone; outside them the tenant is passed over, and its
 * recipients wait.
 *
 * campaign_id, when given, claims only that campaign's work (send-campaign
 * sending a small campaign within its request).
 *
 * Returns {"batches": [batch, …] (see private.claim_campaign_batch),
 * "campaigns": {id: {"content", "channel", "started_at" (epoch seconds)}}, "wait_ms",
 * "more" (recipients on the channel are due now: worth waiting for a
 * token)}. Service role only.
 * Locks the bucket row (claims go one at a time), then each batch's rows.
 */
create or replace function public.claim_campaign_batches(channel text, rate double precision,
  max_batches integer default 10, batch_size integer default 100, lease_seconds integer default 60,
  campaign_id uuid default null)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  the_provider text := case claim_campaign_batches.channel when 'email' then 'resend' else 'twilio' end;
  balance double precision;
  batches jsonb := '[]'::jsonb;
  got jsonb;
  tenant record;
  camp uuid;
  progressed boolean;
  size integer;
  served uuid[];
begin
  if channel not in ('email', 'sms') or max_batches not between 1 and 100
     or batch_size not between 1 and 100 or lease_seconds not between 1 and 3600
     or rate is null or rate not between 0.01 and 10000 then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"channel": "email or sms", "max_batches": "1 to 100", "batch_size": "1 to 100", "lease_seconds": "1 to 3600", "rate": "0.01 to 10000"}');
  end if;
  balance := private.refill_send_bucket(the_provider, rate);
  loop
    progressed := false;
    served := '{}';
    for tenant in
      select m.tenant_id, t.time_zone
      from public.marketing_campaigns m
      join public.tenants t on t.id = m.tenant_id
      left join private.campaign_turns ct on ct.tenant_id = m.tenant_id and ct.channel = claim_campaign_batches.channel
      where m.status = 'sending' and m.channel = claim_campaign_batches.channel
        and (claim_campaign_batches.campaign_id is null or m.id = claim_campaign_batches.campaign_id)
      group by m.tenant_id, t.time_zone, ct.served_at
      order by ct.served_at nulls first, m.tenant_id
    loop
      exit when balance < 1 or jsonb_array_length(batches) >= max_batches;
      if channel = 'sms' and extract(hour from now() at time zone tenant.time_zone) not between 8 and 20 then
        continue;
      end if;
      size := case when channel = 'sms' then least(batch_size, floor(balance)::integer) else batch_size end;
      got := null;
      for camp in
        select m.id from public.marketing_campaigns m
        where m.tenant_id = tenant.tenant_id and m.status = 'sending' and m.channel = claim_campaign_batches.channel
          and (claim_campaign_batches.campaign_id is null or m.id = claim_campaign_batches.campaign_id)
        order by m.started_at, m.id
      loop
        got := private.claim_campaign_batch(camp, size, lease_seconds);
        exit when got is not null;
      end loop;
      if got is not null then
        batches := batches || jsonb_build_array(got);
        balance := balance - case when channel = 'sms' then jsonb_array_length(got -> 'recipients') else 1 end;
        served := served || tenant.tenant_id;
        progressed := true;
      end if;
    end loop;
    insert into private.campaign_turns as ct (tenant_id, channel, served_at)
    select s, claim_campaign_batches.channel, clock_timestamp() + (i * interval '1 microsecond')
    from unnest(served) with ordinality as u(s, i)
    on conflict on constraint campaign_turns_pkey do update set served_at = excluded.served_at;
    exit when not progressed or balance < 1 or jsonb_array_length(batches) >= max_batches;
  end loop;
  update private.send_buckets b set tokens = balance where b.provider = the_provider;
  return jsonb_build_object(
    'batches', batches,
    'campaigns', coalesce((select jsonb_object_agg(m.id, jsonb_build_object(
        'content', m.content, 'channel', m.channel,
        'started_at', extract(epoch from m.started_at)::bigint))
      from public.marketing_campaigns m
      where m.id in (select (b ->> 'campaign_id')::uuid from jsonb_array_elements(batches) b)), '{}'::jsonb),
    'wait_ms', case when balance >= 1 then 0 else ceil((1 - balance) / rate * 1000) end,
    'more', exists (select 1 from public.marketing_campaigns m
                    join public.campaign_recipients r on r.campaign_id = m.id
                    where m.status = 'sending' and m.channel = claim_campaign_batches.channel
                      and (claim_campaign_batches.campaign_id is null or m.id = claim_campaign_batches.campaign_id)
                      and ((r.status = 'pending' and r.next_attempt_at <= clock_timestamp())
                           or (r.status = 'claimed' and r.claimed_until <= clock_timestamp()))));
end
$$;
revoke all on function public.claim_campaign_batches(text, double precision, integer, integer, integer, uuid)
  from public, anon, authenticated;
grant execute on function public.claim_campaign_batches(text, double precision, integer, integer, integer, uuid)
  to service_role;

/*
 * public.record_campaign_outcomes(outcomes, backoff_seconds): what the
 * provider said about claimed recipients, in one transaction. Each outcome:
 *   {"id", "provider_message_id"}                    sent (sent_count)
 *   {"id", "error", "permanent": true, "unsubscribed"?}
 *                                                    failed (failed_count);
 *                                                    unsubscribed: the
 *                                                    carrier says the
 *                                                    recipient opted out
 *                                                    (Twilio 21610), so
 *                                                    SMS consent becomes
 *                                                    unsubscribed
 *   {"id", "error", "permanent": false, "retry_after_seconds"}
 *                                                    retried: the row stays
 *                                                    claimed in its batch,
 *                                                    claimed_until = now +
 *                                                    max(retry_after,
 *                                                    backoff · 2^(attempt−1),
 *                                                    capped at an hour), the
 *                                                    same for the whole
 *                                                    batch, with ±25 %
 *                                                    jitter between batches
 * Only rows still claimed change (a late report about a row that another
 * sender has finished changes nothing). Provider events that arrived before
 * this report are applied now (private.apply_early_events). A campaign whose recipients are all
 * sent or failed becomes sent. Returns {"sent", "failed", "retrying",
 * "stale"}. Service role only. Locks the recipient rows, then their
 * campaign rows.
 */
create or replace function public.record_campaign_outcomes(outcomes jsonb, backoff_seconds double precision default 5)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  result jsonb;
begin
  if jsonb_typeof(outcomes) <> 'array' then
    perform private.raise_error('CEV01', 'the request has invalid fields', '{"outcomes": "must be a list"}');
  end if;
  with given as (
    select (o ->> 'id')::bigint as id, o ->> 'provider_message_id' as message_id,
           left(o ->> 'error', 2000) as error, coalesce((o ->> 'permanent')::boolean, false) as permanent,
           coalesce((o ->> 'unsubscribed')::boolean, false) as unsubscribed,
           coalesce((o ->> 'retry_after_seconds')::double precision, 0) as retry_after
    from jsonb_array_elements(outcomes) o
  ),
  changed as (
    update public.campaign_recipients r
    set status = case when g.message_id is not null then 'sent'
                      when g.permanent then 'failed' else 'claimed' end,
        provider_message_id = coalesce(g.message_id, r.provider_message_id),
        last_error = case when g.message_id is not null then null else g.error end,
        claimed_until = case when g.message_id is not null or g.permanent then null
          else clock_timestamp() + make_interval(secs => greatest(g.retry_after,
                 least(3600, backoff_seconds * power(2, r.attempt - 1))
                 * (0.75 + 0.5 * ((hashtext(r.batch_id::text) & 1023) / 1023.0)))) end,
        updated_at = now()
    from given g
    where r.id = g.id and r.status = 'claimed'
    returning r.id, r.campaign_id, r.tenant_id, r.client_id, r.status, g.unsubscribed, g.message_id
  ),
  counted as (
    update public.marketing_campaigns m
    set sent_count = m.sent_count + c.sent, failed_count = m.failed_count + c.failed
    from (select campaign_id, count(*) filter (where status = 'sent') as sent,
                 count(*) filter (where status = 'failed') as failed
          from changed group by campaign_id) c
    where m.id = c.campaign_id
    returning m.id
  ),
  opted_out as (
    insert into public.contact_consent as k (tenant_id, client_id, channel, status, source, changed_at)
    select c.tenant_id, c.client_id, 'sms', 'unsubscribed', 'carrier_stop', now()
    from changed c where c.status = 'failed' and c.unsubscribed
    on conflict on constraint contact_consent_pkey do update
      set status = excluded.status, source = excluded.source, changed_at = excluded.changed_at
      where k.status = 'subscribed'
    returning 1
  )
  select jsonb_build_object(
    'sent', (select count(*) from changed where status = 'sent'),
    'failed', (select count(*) from changed where status = 'failed'),
    'retrying', (select count(*) from changed where status = 'claimed'),
    'stale', jsonb_array_length(outcomes) - (select count(*) from changed),
    'campaigns', (select coalesce(jsonb_agg(id), '[]'::jsonb) from counted),
    'message_ids', (select coalesce(jsonb_agg(message_id), '[]'::jsonb) from changed where status = 'sent'),
    'opted_out', (select count(*) from opted_out))
  into result;
  perform private.finish_campaigns(array(select jsonb_array_elements_text(result -> 'campaigns')::uuid));
  -- Events the providers sent before this report. The locks order this
  -- with a webhook that is looking for these messages now: it either kept
  -- its event before (applied here) or finds the recorded message after.
  perform pg_catalog.pg_advisory_xact_lock(hashtext('campaign_message:' || m))
  from (select jsonb_array_elements_text(result -> 'message_ids') m order by 1) x;
  perform private.apply_early_events(array(select jsonb_array_elements_text(result -> 'message_ids')));
  return result - 'campaigns' - 'message_ids';
end
$$;
revoke all on function public.record_campaign_outcomes(jsonb, double precision) from public, anon, authenticated;
grant execute on function public.record_campaign_outcomes(jsonb, double precision) to service_role;

/*
 * public.send_campaign(payload): send-campaign's transaction, as the calling
 * member. payload: {campaign_id, tenant_id, type, name, audience, content,
 * schedule?} (content already rendered and checked by the function).
 *
 * campaign_id is the caller's: a new id creates the campaign; an id that is
 * already this tenant's is answered with its current state and nothing more
 * is sent, unless it is a draft, which is then filled in and started; an id
 * of another tenant's campaign is 404. schedule in the future makes it
 * scheduled (public.start_due_campaigns starts it); otherwise it starts
 * now (private.start_campaign). A segment that is not the tenant's is 404.
 *
 * Returns {campaign_id, status, recipient_count, sent_count, failed_count,
 * suppressed, no_address, replayed}.
 *
 * Locks: the admission and the tenant's slot (private.admit_early); the
 * campaign row.
 *
 * Raises CEA01, CEA03 (no admission, or a viewer), CER03, CEN04 (campaign,
 * segment), CEV01 (audience filters).
 */
create or replace function public.send_campaign(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  admitted uuid := private.admit_early('send-campaign');
  tenant uuid := private.try_uuid(payload ->> 'tenant_id');
  the_id uuid := private.try_uuid(payload ->> 'campaign_id');
  c public.marketing_campaigns;
  counts jsonb := '{}'::jsonb;
  replayed boolean := false;
  due timestamptz := (payload ->> 'schedule')::timestamptz;
begin
  if tenant is null or the_id is null then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"campaign_id": "must be a uuid", "tenant_id": "must be a uuid"}');
  end if;
  perform private.require_role(tenant, 'member');
  perform private.take_rate_limit(tenant, 'send-campaign', admitted);
  insert into public.marketing_campaigns (id, tenant_id, name, type, channel, content, audience)
  values (the_id, tenant, payload ->> 'name', payload ->> 'type', payload ->> 'type', payload -> 'content',
          payload -> 'audience')
  on conflict on constraint marketing_campaigns_pkey do nothing;
  select * into c from public.marketing_campaigns m where m.id = the_id for update;
  if c.tenant_id <> tenant then
    perform private.raise_error('CEN04', 'campaign not found',
      jsonb_build_object('resource', 'campaign', 'id', the_id));
  end if;
  if c.status <> 'draft' then
    replayed := true;
  else
    update public.marketing_campaigns m
    set name = payload ->> 'name', type = payload ->> 'type', channel = payload ->> 'type',
        content = payload -> 'content', audience = payload -> 'audience'
    where m.id = c.id;
    if due > now() then
      update public.marketing_campaigns m set status = 'scheduled', scheduled_at = due where m.id = c.id;
      -- The audience is checked now (a foreign segment is 404 at once); it is
      -- read again when the campaign starts.
      perform private.audience_predicate(case payload #>> '{audience,type}'
        when 'custom' then payload #> '{audience,filters}'
        else '{"all": [{"field": "status", "op": "eq", "value": "active"}]}'::jsonb end,
        'audience.filters', '[]'::jsonb, 1);
      if payload #>> '{audience,type}' = 'segment' and not exists (
        select 1 from public.customer_segments s
        where s.id = private.try_uuid(payload #>> '{audience,segment_id}') and s.tenant_id = tenant) then
        perform private.raise_error('CEN04', 'segment not found',
          jsonb_build_object('resource', 'segment', 'id', payload #> '{audience,segment_id}'));
      end if;
    else
      update public.marketing_campaigns m set scheduled_at = now() where m.id = c.id;
      counts := private.start_campaign(c.id);
    end if;
  end if;
  select * into c from public.marketing_campaigns m where m.id = the_id;
  return jsonb_build_object('campaign_id', c.id, 'status', c.status, 'recipient_count', c.recipient_count,
    'sent_count', c.sent_count, 'failed_count', c.failed_count, 'scheduled_at', c.scheduled_at,
    'suppressed', counts -> 'suppressed', 'no_address', counts -> 'no_address', 'replayed', replayed);
end
$$;
revoke all on function public.send_campaign(jsonb) from public, anon;
grant execute on function public.send_campaign(jsonb) to authenticated, service_role;

/*
 * public.campaign_state(campaign_id): the campaign's status and counters, for
 * send-campaign's answer after it sent a small campaign. As the caller: RLS
 * decides (null when the campaign is not the caller's).
 */
create or replace function public.campaign_state(campaign_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object('campaign_id', m.id, 'status', m.status, 'recipient_count', m.recipient_count,
    'sent_count', m.sent_count, 'failed_count', m.failed_count, 'scheduled_at', m.scheduled_at)
  from public.marketing_campaigns m where m.id = campaign_state.campaign_id;
$$;
revoke all on function public.campaign_state(uuid) from public, anon;
grant execute on function public.campaign_state(uuid) to authenticated, service_role;

-- Requests to send-campaign are admitted against the tenant they name.
create or replace view private.tenant_subjects with (security_barrier) as
  select t.id, t.id as tenant_id from public.tenants t;
revoke all on private.tenant_subjects from public, anon, authenticated;
insert into private.request_subjects (function_name, subject_table, resource)
values ('send-campaign', 'private.tenant_subjects', 'tenant')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values (null, 'send-campaign', 60, 60)
on conflict (tenant_id, function_name) do nothing;

/*
 * Events that arrive before their send is recorded. A provider may report a
 * message (Resend's webhook, Twilio's status callback) before the sender has
 * written its message id to the recipient. Such an event is kept here, and
 * applied when record_campaign_outcomes records that id; one that matches no
 * campaign message (a transactional email) is deleted after a day.
 */
create table if not exists private.early_campaign_events (
  provider text not null,
  event_id text not null,
  channel text not null,
  message_id text not null,
  type text not null,
  payload jsonb not null,
  received_at timestamptz not null default now(),
  primary key (provider, event_id)
);
create index if not exists early_campaign_events_message_idx on private.early_campaign_events (message_id);
revoke all on private.early_campaign_events from public, anon, authenticated;

/*
 * private.campaign_event(…), again: as before, and an event whose message no
 * campaign recipient has yet is kept in private.early_campaign_events. Takes
 * the message's advisory lock before it decides that.
 */
create or replace function private.campaign_event(channel text, message_id text, provider text,
  event_id text, type text, payload jsonb,
  out recipient_id bigint, out fresh boolean)
language plpgsql
set search_path = ''
as $$
declare
  r public.campaign_recipients;
begin
  fresh := false;
  select * into r from public.campaign_recipients x
  where x.provider_message_id = campaign_event.message_id and x.channel = campaign_event.channel
  for update;
  if not found then
    -- The sender may be recording this message right now: wait for it
    -- (record_campaign_outcomes takes the same lock), then look again.
    perform pg_catalog.pg_advisory_xact_lock(hashtext('campaign_message:' || campaign_event.message_id));
    select * into r from public.campaign_recipients x
    where x.provider_message_id = campaign_event.message_id and x.channel = campaign_event.channel
    for update;
  end if;
  if not found then
    insert into private.early_campaign_events (provider, event_id, channel, message_id, type, payload)
    values (campaign_event.provider, campaign_event.event_id, campaign_event.channel,
            campaign_event.message_id, campaign_event.type, coalesce(campaign_event.payload, '{}'::jsonb))
    on conflict do nothing;
    return;
  end if;
  recipient_id := r.id;
  insert into public.campaign_events (tenant_id, campaign_id, recipient_id, provider, event_id, type, payload)
  values (r.tenant_id, r.campaign_id, r.id, campaign_event.provider,
          campaign_event.event_id, campaign_event.type, coalesce(campaign_event.payload, '{}'::jsonb))
  on conflict on constraint campaign_events_provider_event_id_key do nothing
  returning true into fresh;
  fresh := coalesce(fresh, false);
end
$$;
revoke all on function private.campaign_event(text, text, text, text, text, jsonb) from public, anon, authenticated;

/*
 * private.apply_early_events(message_ids): the kept events of these messages,
 * applied in the order they arrived, then forgotten. Locks their recipients.
 */
create or replace function private.apply_early_events(message_ids text[])
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  e private.early_campaign_events;
  n integer := 0;
begin
  for e in
    delete from private.early_campaign_events x where x.message_id = any (message_ids) returning x.*
  loop
    if e.channel = 'email' then
      perform public.record_email_event(e.provider, e.event_id, e.type, e.message_id, e.payload);
    else
      perform public.record_sms_status(e.message_id, substr(e.type, 5), e.payload ->> 'ErrorCode', e.payload);
    end if;
    n := n + 1;
  end loop;
  return n;
end
$$;
revoke all on function private.apply_early_events(text[]) from public, anon, authenticated;

select cron.schedule('purge-early-campaign-events', '29 * * * *',
  $job$delete from private.early_campaign_events where received_at < now() - interval '1 day'$job$);
