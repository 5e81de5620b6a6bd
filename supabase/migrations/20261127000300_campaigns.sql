-- Marketing campaigns: saved audiences, campaigns, and the per-recipient
-- queue that is also the tracking table, with the providers' events.
-- Members read all of it for their tenant; they create and edit segments and
-- draft campaigns; everything else is written by the RPCs (service role).
--
-- Re-runnable like every migration here.

/*
 * customer_segments: a saved audience. filter is the documented filter
 * language ({"all"|"any": [{"field", "op", "value"}]}), checked when it is
 * used, never turned into SQL text.
 */
create table if not exists public.customer_segments (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  filter jsonb not null check (jsonb_typeof(filter) = 'object' and octet_length(filter::text) <= 16384),
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, name)
);
select private.isolate_by_tenant('public.customer_segments', 'segments');
revoke all on public.customer_segments from anon, authenticated;
grant select, delete on public.customer_segments to authenticated;
grant insert (id, tenant_id, name, filter) on public.customer_segments to authenticated;
grant update (name, filter) on public.customer_segments to authenticated;
grant all on public.customer_segments to service_role;

/*
 * marketing_campaigns: seed 000's columns (type is the channel: email or
 * sms), plus the content, the audience, the counters and who made it. The id
 * is the caller's campaign_id, so a repeated send names the same campaign.
 * status: draft → scheduled → sending → sent, or failed / cancelled.
 */
create table if not exists public.marketing_campaigns (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  name text not null check (length(name) between 1 and 200),
  type text not null check (type in ('email', 'sms')),
  channel text not null references public.notification_channels (name),
  status text not null default 'draft'
    check (status in ('draft', 'scheduled', 'sending', 'sent', 'failed', 'cancelled')),
  content jsonb not null default '{}'::jsonb
    check (jsonb_typeof(content) = 'object' and octet_length(content::text) <= 262144),
  audience jsonb not null default '{"type": "all"}'::jsonb
    check (jsonb_typeof(audience) = 'object' and octet_length(audience::text) <= 16384),
  scheduled_at timestamptz,
  started_at timestamptz,
  sent_at timestamptz,
  recipient_count integer not null default 0 check (recipient_count >= 0),
  sent_count integer not null default 0 check (sent_count >= 0),
  failed_count integer not null default 0 check (failed_count >= 0),
  delivered_count integer not null default 0 check (delivered_count >= 0),
  bounced_count integer not null default 0 check (bounced_count >= 0),
  opened_count integer not null default 0 check (opened_count >= 0),
  clicked_count integer not null default 0 check (clicked_count >= 0),
  unsubscribed_count integer not null default 0 check (unsubscribed_count >= 0),
  created_by uuid default auth.uid(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint marketing_campaigns_channel_is_type check (channel = type),
  unique (id, tenant_id, channel)
);
create index if not exists marketing_campaigns_due_idx on public.marketing_campaigns (status, scheduled_at)
  where status in ('scheduled', 'sending');
select private.isolate_by_tenant('public.marketing_campaigns', 'campaigns');
revoke all on public.marketing_campaigns from anon, authenticated;
grant select, delete on public.marketing_campaigns to authenticated;
grant insert (id, tenant_id, name, type, channel, content, audience, scheduled_at)
  on public.marketing_campaigns to authenticated;
grant update (name, type, channel, content, audience, scheduled_at) on public.marketing_campaigns to authenticated;
grant all on public.marketing_campaigns to service_role;

/*
 * private.guard_campaign_write(): a signed-in user changes or removes only a
 * draft (CE409 CAMPAIGN_NOT_DRAFT otherwise) and creates only drafts; the
 * status, the dates and the counters are the RPCs'. Stamps updated_at.
 * security definer so it may raise through private.raise_api_error. Locks
 * nothing.
 */
create or replace function private.guard_campaign_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (select auth.uid()) is not null and tg_op in ('UPDATE', 'DELETE') and old.status <> 'draft' then
    perform private.raise_api_error(409, 'CAMPAIGN_NOT_DRAFT',
      'only a draft campaign can be changed or removed',
      jsonb_build_object('campaign_id', old.id, 'status', old.status));
  end if;
  if tg_op = 'DELETE' then
    return old;
  end if;
  if (select auth.uid()) is not null and tg_op = 'INSERT' and new.status <> 'draft' then
    perform private.raise_api_error(409, 'CAMPAIGN_NOT_DRAFT', 'a campaign is created as a draft',
      jsonb_build_object('status', new.status));
  end if;
  new.updated_at := now();
  return new;
end
$$;
revoke all on function private.guard_campaign_write() from public, anon, authenticated;
drop trigger if exists guard_campaign_write on public.marketing_campaigns;
create trigger guard_campaign_write before insert or update or delete on public.marketing_campaigns
  for each row execute function private.guard_campaign_write();

/*
 * campaign_recipients: the send queue and the tracking table at once, one row
 * per (campaign, client, channel). The address is frozen when the row is
 * enqueued. status: pending → claimed → sent → delivered | bounced |
 * complained; failed (permanent, or out of attempts); suppressed (never
 * sent: no consent); unknown (the provider's answer was lost). A claimed row
 * holds claimed_until and its batch_id: a retry re-sends exactly that batch.
 */
create table if not exists public.campaign_recipients (
  id bigint generated always as identity primary key,
  tenant_id uuid not null,
  campaign_id uuid not null,
  client_id uuid not null,
  channel text not null,
  address text not null check (length(address) between 1 and 320),
  status text not null default 'pending' check (status in ('pending', 'claimed', 'sent', 'delivered',
    'bounced', 'complained', 'failed', 'suppressed', 'unknown')),
  attempt integer not null default 0 check (attempt >= 0),
  next_attempt_at timestamptz not null default now(),
  claimed_until timestamptz,
  batch_id uuid,
  provider_message_id text check (length(provider_message_id) <= 200),
  last_error text check (length(last_error) <= 2000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (campaign_id, client_id, channel),
  -- Two composite keys check, per row, that the campaign, its tenant and its
  -- channel agree and that the client is the same tenant's: two checks
  -- instead of four single ones (a 100,000-row enqueue spends about a second
  -- per foreign key).
  foreign key (campaign_id, tenant_id, channel)
    references public.marketing_campaigns (id, tenant_id, channel) on delete cascade,
  foreign key (client_id, tenant_id) references public.wholesale_clients (id, tenant_id) on delete cascade
);
create index if not exists campaign_recipients_due_idx on public.campaign_recipients (next_attempt_at)
  where status in ('pending', 'claimed');
create index if not exists campaign_recipients_batch_idx on public.campaign_recipients (batch_id)
  where batch_id is not null;
create index if not exists campaign_recipients_message_idx on public.campaign_recipients (provider_message_id)
  where provider_message_id is not null;
select private.isolate_by_tenant('public.campaign_recipients', 'recipients');
revoke all on public.campaign_recipients from anon, authenticated;
grant select on public.campaign_recipients to authenticated;
grant all on public.campaign_recipients to service_role;

/*
 * campaign_events: append-only, one row per provider event, unique per
 * (provider, event_id) so a replayed webhook counts once.
 */
create table if not exists public.campaign_events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  campaign_id uuid references public.marketing_campaigns (id) on delete cascade,
  recipient_id bigint references public.campaign_recipients (id) on delete cascade,
  provider text not null check (provider in ('resend', 'twilio')),
  event_id text not null check (length(event_id) between 1 and 200),
  type text not null check (type ~ '^[a-z][a-z0-9_.]{0,63}$'),
  payload jsonb not null default '{}'::jsonb check (octet_length(payload::text) <= 65536),
  received_at timestamptz not null default now(),
  unique (provider, event_id)
);
select private.isolate_by_tenant('public.campaign_events', 'campaign events');
revoke all on public.campaign_events from anon, authenticated;
grant select on public.campaign_events to authenticated;
grant select, insert on public.campaign_events to service_role;

/*
 * private.campaign_events_append_only(): events are never changed or removed
 * (a tenant's deletion cascades through the tables above, not this trigger).
 */
create or replace function private.campaign_events_append_only()
returns trigger
language plpgsql
set search_path = ''
as $$
begin
  raise exception 'campaign_events is append-only' using errcode = '42501';
end
$$;
revoke all on function private.campaign_events_append_only() from public, anon, authenticated;
drop trigger if exists campaign_events_append_only on public.campaign_events;
create trigger campaign_events_append_only before update on public.campaign_events
  for each row execute function private.campaign_events_append_only();
