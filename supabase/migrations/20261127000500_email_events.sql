-- What Resend tells us about the emails of a campaign, through its webhooks
-- (functions/resend-webhook): delivery, bounces, complaints, opens, clicks.
--
-- Re-runnable like every migration here.

/*
 * private.campaign_event(channel, message_id, provider, event_id, type,
 * payload): the campaign recipient a provider's message id names (its row
 * locked), and whether this event is new for it (recorded now) or was
 * recorded before. recipient_id is null when no campaign sent that message;
 * nothing is then recorded. Shared by the email and SMS event RPCs.
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
 * public.record_email_event(provider, event_id, type, message_id, payload):
 * one provider event, at most once (campaign_events is unique per provider
 * and event id, so a replayed or retried webhook counts once).
 *   email.delivered   the recipient is delivered; delivered_count + 1
 *   email.bounced     bounced; bounced_count + 1; the client's email consent
 *                     becomes bounced (a hard bounce: Resend reports only
 *                     permanent rejections as bounced), so no campaign sends
 *                     to it again
 *   email.complained  complained; unsubscribed_count + 1; consent complained
 *   email.opened      opened_count + 1 for the recipient's first open only
 *   email.clicked     clicked_count + 1 for the recipient's first click only
 *   other types       recorded, nothing else changes
 * A later, weaker status never overwrites a stronger one (a delivery after a
 * bounce leaves the bounce). An event for a message no campaign sent
 * (transactional email) is answered {"matched": false} and not recorded.
 * Returns {"matched", "duplicate", "campaign_id", "status"}. Service role
 * only. Locks the recipient row and its campaign row.
 */
create or replace function public.record_email_event(provider text, event_id text, type text,
  message_id text, payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  got record;
  r public.campaign_recipients;
  fresh boolean;
  firsts boolean;
  next_status text;
begin
  select e.recipient_id, e.fresh into got
  from private.campaign_event('email', record_email_event.message_id, record_email_event.provider,
    record_email_event.event_id, record_email_event.type, record_email_event.payload) e;
  fresh := got.fresh;
  select * into r from public.campaign_recipients x where x.id = got.recipient_id;
  if got.recipient_id is null then
    return jsonb_build_object('matched', false, 'duplicate', false);
  end if;
  if not fresh then
    return jsonb_build_object('matched', true, 'duplicate', true, 'campaign_id', r.campaign_id,
      'status', r.status);
  end if;
  -- Was this the recipient's first event of its type (opens, clicks)?
  select not exists (select 1 from public.campaign_events e
                     where e.recipient_id = r.id and e.type = record_email_event.type
                       and e.event_id <> record_email_event.event_id) into firsts;
  next_status := case record_email_event.type
    when 'email.delivered' then 'delivered'
    when 'email.bounced' then 'bounced'
    when 'email.complained' then 'complained' end;
  -- Strength: complained > bounced > delivered > the rest.
  if next_status is not null and
     array_position(array['complained', 'bounced', 'delivered'], next_status)
       < coalesce(array_position(array['complained', 'bounced', 'delivered'], r.status), 4) then
    update public.campaign_recipients x set status = next_status, updated_at = now()
    where x.id = r.id;
  else
    next_status := null;
  end if;
  update public.marketing_campaigns m set
    delivered_count = m.delivered_count + coalesce(next_status = 'delivered', false)::int,
    bounced_count = m.bounced_count + coalesce(next_status = 'bounced', false)::int,
    unsubscribed_count = m.unsubscribed_count + coalesce(next_status = 'complained', false)::int,
    opened_count = m.opened_count + (record_email_event.type = 'email.opened' and firsts)::int,
    clicked_count = m.clicked_count + (record_email_event.type = 'email.clicked' and firsts)::int
  where m.id = r.campaign_id;
  if next_status in ('bounced', 'complained') then
    insert into public.contact_consent as k (tenant_id, client_id, channel, status, source, changed_at)
    values (r.tenant_id, r.client_id, 'email', next_status, 'provider_webhook', now())
    on conflict on constraint contact_consent_pkey do update
      set status = excluded.status, source = excluded.source, changed_at = excluded.changed_at
      where k.status <> 'complained';
  end if;
  return jsonb_build_object('matched', true, 'duplicate', false, 'campaign_id', r.campaign_id,
    'status', coalesce(next_status, r.status));
end
$$;
revoke all on function public.record_email_event(text, text, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.record_email_event(text, text, text, text, jsonb) to service_role;
