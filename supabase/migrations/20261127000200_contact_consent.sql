-- Consent to marketing messages, per client and channel, and the one way a
-- client leaves a list without logging in: the signed unsubscribe link
-- (functions/unsubscribe). Transactional messages (order confirmations,
-- returns, purchase orders) are not marketing and do not read consent.
--
-- Re-runnable like every migration here.

/*
 * One row per (client, channel) once anything is known; no row means the
 * client never said (a campaign sends to them, as to `subscribed`).
 * status: subscribed | unsubscribed | bounced | complained. source says who
 * set it (unsubscribe_link, one_click, sms_stop, provider_webhook, admin,
 * import …) and changed_at when. Email and SMS are separate rows.
 * Members read their tenant's rows; writes go through the RPCs (service role).
 */
create table if not exists public.contact_consent (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  client_id uuid not null references public.wholesale_clients (id) on delete cascade,
  channel text not null references public.notification_channels (name),
  status text not null check (status in ('subscribed', 'unsubscribed', 'bounced', 'complained')),
  source text not null check (source ~ '^[a-z][a-z0-9_]{0,39}$'),
  changed_at timestamptz not null default now(),
  primary key (client_id, channel)
);
select private.isolate_by_tenant('public.contact_consent', 'consent');
revoke all on public.contact_consent from anon, authenticated;
grant select on public.contact_consent to authenticated;
grant all on public.contact_consent to service_role;

/*
 * public.record_unsubscribe(client_id, channel, source): the client leaves the
 * channel's marketing. Idempotent: a client already unsubscribed (or bounced,
 * or complained) keeps that status and its first time; the answer says so
 * (already true). Returns {"client_id", "channel", "status", "changed_at",
 * "business_name", "already"}, or CE404 (client) when there is no such
 * client, CE400 for a channel that is not email or SMS. Service role only: the
 * unsubscribe function calls it once the signed link has named the client.
 * Locks the client's consent row.
 */
create or replace function public.record_unsubscribe(client_id uuid, channel text, source text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  client record;
  row public.contact_consent;
  was text;
begin
  if channel not in ('email', 'sms') then
    perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
      jsonb_build_object('channel', 'must be email or sms'));
  end if;
  select c.id, c.tenant_id, t.business_name into client
  from public.wholesale_clients c join public.tenants t on t.id = c.tenant_id
  where c.id = record_unsubscribe.client_id;
  if not found then
    perform private.raise_api_error(404, 'NOT_FOUND', 'client not found',
      jsonb_build_object('resource', 'client', 'id', record_unsubscribe.client_id));
  end if;
  select k.status into was from public.contact_consent k
  where k.client_id = record_unsubscribe.client_id and k.channel = record_unsubscribe.channel
  for update;
  if was is null or was = 'subscribed' then
    insert into public.contact_consent as k (tenant_id, client_id, channel, status, source, changed_at)
    values (client.tenant_id, record_unsubscribe.client_id, record_unsubscribe.channel,
            'unsubscribed', record_unsubscribe.source, now())
    on conflict on constraint contact_consent_pkey do update
      set status = 'unsubscribed', source = excluded.source, changed_at = excluded.changed_at
    returning * into row;
  else
    select * into row from public.contact_consent k
    where k.client_id = record_unsubscribe.client_id and k.channel = record_unsubscribe.channel;
  end if;
  return jsonb_build_object('client_id', row.client_id, 'channel', row.channel,
    'status', row.status, 'changed_at', row.changed_at, 'business_name', client.business_name,
    'already', was is not null and was <> 'subscribed');
end
$$;
revoke all on function public.record_unsubscribe(uuid, text, text) from public, anon, authenticated;
grant execute on function public.record_unsubscribe(uuid, text, text) to service_role;
