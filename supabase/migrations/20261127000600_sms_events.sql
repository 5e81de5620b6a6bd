-- What Twilio tells us about campaign SMS and what clients text back
-- (functions/twilio-webhook): status callbacks and STOP / START keywords.
--
-- Re-runnable like every migration here.

/*
 * public.record_sms_status(message_sid, status, error_code, payload): a
 * status callback, at most once per (message, status). delivered moves the
 * recipient to delivered and delivered_count + 1; undelivered and failed
 * move it to failed and failed_count + 1, and error 21610 (the number
 * replied STOP to the sender) also sets the client's SMS consent to
 * unsubscribed. queued and sent are recorded only. A weaker status never
 * overwrites a stronger one. A message no campaign sent is {"matched":
 * false}, not recorded. Service role only. Locks the recipient row.
 */
create or replace function public.record_sms_status(message_sid text, status text, error_code text,
  payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  got record;
  r public.campaign_recipients;
  fresh boolean;
  next_status text;
begin
  select e.recipient_id, e.fresh into got
  from private.campaign_event('sms', record_sms_status.message_sid, 'twilio',
    record_sms_status.message_sid || ':' || record_sms_status.status,
    'sms.' || record_sms_status.status, record_sms_status.payload) e;
  fresh := got.fresh;
  select * into r from public.campaign_recipients x where x.id = got.recipient_id;
  if got.recipient_id is null then
    return jsonb_build_object('matched', false, 'duplicate', false);
  end if;
  if not fresh then
    return jsonb_build_object('matched', true, 'duplicate', true, 'status', r.status);
  end if;
  next_status := case record_sms_status.status
    when 'delivered' then 'delivered'
    when 'undelivered' then 'failed'
    when 'failed' then 'failed' end;
  if next_status is null or r.status in ('delivered', 'failed', 'bounced', 'complained') then
    return jsonb_build_object('matched', true, 'duplicate', false, 'status', r.status);
  end if;
  update public.campaign_recipients x
  set status = next_status, last_error = nullif(concat_ws(' ', 'twilio', record_sms_status.error_code), 'twilio'),
      updated_at = now()
  where x.id = r.id;
  update public.marketing_campaigns m set
    delivered_count = m.delivered_count + (next_status = 'delivered')::int,
    failed_count = m.failed_count + (next_status = 'failed')::int
  where m.id = r.campaign_id;
  if record_sms_status.error_code = '21610' then
    insert into public.contact_consent as k (tenant_id, client_id, channel, status, source, changed_at)
    values (r.tenant_id, r.client_id, 'sms', 'unsubscribed', 'sms_stop', now())
    on conflict on constraint contact_consent_pkey do update
      set status = 'unsubscribed', source = 'sms_stop', changed_at = now()
      where k.status = 'subscribed';
  end if;
  return jsonb_build_object('matched', true, 'duplicate', false, 'status', next_status);
end
$$;
revoke all on function public.record_sms_status(text, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.record_sms_status(text, text, text, jsonb) to service_role;

/*
 * public.record_sms_keyword(phone, keyword): a client texted the platform's
 * number. STOP (and Twilio's other opt-out words) unsubscribes every client
 * with that phone number from SMS marketing, in every tenant: the carrier
 * and Twilio block the number for the sender anyway, so no tenant could
 * reach it. START (and the opt-in words) subscribes them again. Returns
 * {"keyword": "stop"|"start"|"help"|null, "clients": n}. Service role only.
 */
create or replace function public.record_sms_keyword(phone text, keyword text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  word text := upper(btrim(coalesce(keyword, '')));
  kind text;
  n integer := 0;
begin
  kind := case
    when word in ('STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT', 'OPTOUT', 'REVOKE') then 'stop'
    when word in ('START', 'UNSTOP', 'YES', 'OPTIN') then 'start'
    when word in ('HELP', 'INFO') then 'help' end;
  if kind in ('stop', 'start') and length(btrim(coalesce(phone, ''))) between 4 and 32 then
    insert into public.contact_consent as k (tenant_id, client_id, channel, status, source, changed_at)
    select c.tenant_id, c.id, 'sms', case kind when 'stop' then 'unsubscribed' else 'subscribed' end,
           case kind when 'stop' then 'sms_stop' else 'sms_start' end, now()
    from public.wholesale_clients c
    where c.phone = btrim(record_sms_keyword.phone)
    on conflict on constraint contact_consent_pkey do update
      set status = excluded.status, source = excluded.source, changed_at = excluded.changed_at
      where k.status in ('subscribed', 'unsubscribed');
    get diagnostics n = row_count;
  end if;
  return jsonb_build_object('keyword', kind, 'clients', n);
end
$$;
revoke all on function public.record_sms_keyword(text, text) from public, anon, authenticated;
grant execute on function public.record_sms_keyword(text, text) to service_role;
