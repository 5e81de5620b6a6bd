-- Recalls (seed 000 §6, notify-recall): the recall, its consignees (every
-- client who was shipped units of the recalled lots), the notices sent to
-- them, their responses, and the recall's effectiveness.
--
-- Re-runnable like every migration here.

create table if not exists public.batch_recalls (
  -- the caller's recall_id: repeating a call with it is idempotent
  id uuid primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  -- the lot named in the request; batch_ids is every lot the recall covers
  -- (the same lot number in each product of the scope)
  batch_id uuid not null,
  batch_ids uuid[] not null,
  lot_number text not null,
  product_ids uuid[] not null,
  recall_reason text not null check (length(recall_reason) between 1 and 2000),
  scope text not null check (scope in ('all', 'specific')),
  classification text check (classification in ('I', 'II', 'III')),
  hazard text check (length(hazard) <= 2000),
  instructions text check (length(instructions) <= 2000),
  channels text[] not null default array['email', 'sms'],
  -- days after the notice before the one reminder to a consignee who has not responded
  reminder_after_days integer not null default 3 check (reminder_after_days between 1 and 90),
  status text not null default 'active' check (status in ('active', 'completed', 'terminated')),
  -- the request's hash (idempotency) and the first answer
  request_hash text not null,
  result jsonb,
  quarantined_quantity numeric(12, 2) not null default 0,
  initiated_by uuid references auth.users (id),
  initiated_at timestamptz not null default now(),
  unique (id, tenant_id),
  foreign key (batch_id, tenant_id) references public.batches (id, tenant_id)
);
create index if not exists batch_recalls_batch_ids_idx on public.batch_recalls using gin (batch_ids);

alter table public.quarantined_inventory drop constraint if exists quarantined_inventory_recall_fkey;
alter table public.quarantined_inventory add constraint quarantined_inventory_recall_fkey
  foreign key (recall_id, tenant_id) references public.batch_recalls (id, tenant_id);

/*
 * One row per client the recall reaches. match: 'lot' (shipped units of a
 * recalled lot) or 'product_window' (shipped untracked units of a recalled
 * product while the lot was on sale: from its production, or receipt, to its
 * expiry; marked in the report). The quantities reported in the response are
 * the consignee's own account.
 */
create table if not exists public.recall_consignees (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  recall_id uuid not null,
  client_id uuid not null,
  match text not null check (match in ('lot', 'product_window')),
  quantity_shipped numeric(12, 2) not null,
  quantity_returned numeric(12, 2) not null default 0,
  order_numbers text[] not null,
  first_shipped_at timestamptz not null,
  last_shipped_at timestamptz not null,
  notified_at timestamptz,
  reminder_sent_at timestamptz,
  responded_at timestamptz,
  acknowledged boolean,
  reported_on_hand numeric(12, 2) check (reported_on_hand >= 0),
  reported_returned numeric(12, 2) check (reported_returned >= 0),
  reported_destroyed numeric(12, 2) check (reported_destroyed >= 0),
  response_note text check (length(response_note) <= 2000),
  unique (recall_id, client_id),
  foreign key (recall_id, tenant_id) references public.batch_recalls (id, tenant_id) on delete cascade,
  foreign key (client_id, tenant_id) references public.wholesale_clients (id, tenant_id)
);

/* One row per consignee and channel: the notice, and the outbox row carrying it. */
create table if not exists public.recall_notifications (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  recall_id uuid not null,
  consignee_id uuid not null references public.recall_consignees (id) on delete cascade,
  client_id uuid not null,
  channel text not null check (channel in ('email', 'sms')),
  recipient text,
  kind text not null default 'notice' check (kind in ('notice', 'reminder')),
  -- queued: in the outbox; suppressed: not sent (the address bounced or
  -- complained, or the number replied STOP); the outbox row says when it went
  status text not null check (status in ('queued', 'suppressed')),
  outbox_id uuid references public.notification_outbox (id) on delete set null,
  created_at timestamptz not null default now(),
  unique (consignee_id, channel, kind),
  foreign key (recall_id, tenant_id) references public.batch_recalls (id, tenant_id) on delete cascade
);

select private.isolate_by_tenant('public.batch_recalls', 'recalls');
select private.isolate_by_tenant('public.recall_consignees', 'recall consignees');
select private.isolate_by_tenant('public.recall_notifications', 'recall notices');
revoke all on public.batch_recalls, public.recall_consignees, public.recall_notifications from anon, authenticated;
-- Written only by the recall functions below; an admin may close a recall
-- and change when reminders go.
grant select on public.batch_recalls, public.recall_consignees, public.recall_notifications to authenticated;
grant update (status, reminder_after_days) on public.batch_recalls to authenticated;
grant all on public.batch_recalls, public.recall_consignees, public.recall_notifications to service_role;

/*
 * private.guard_recall_write(): closing a recall, or changing when its
 * reminders go, is an admin's or an owner's (CEA03 otherwise), like starting
 * one. The service role and the database owner are not users.
 */
create or replace function private.guard_recall_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if (select auth.uid()) is not null then
    perform private.require_role(new.tenant_id, 'admin');
  end if;
  return new;
end
$$;
revoke all on function private.guard_recall_write() from public;
drop trigger if exists guard_recall_write on public.batch_recalls;
create trigger guard_recall_write before update of status, reminder_after_days on public.batch_recalls
  for each row execute function private.guard_recall_write();

-- The spreadsheet of the trace goes next to the PDF.
update storage.buckets
set allowed_mime_types = array['application/pdf', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet']
where id = 'recall-reports';

-- notify-recall is admitted against the lot it names (a foreign lot is a
-- 404), 10 a minute: a recall is rare, and each notifies many.
insert into private.request_subjects (function_name, subject_table, resource)
values ('notify-recall', 'public.batches', 'batch')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values (null, 'notify-recall', 10, 60)
on conflict (tenant_id, function_name) do nothing;

/*
 * private.recall_payload_errors(payload): every problem with a notify-recall
 * request, by field; '{}' when valid. The function checks the same first.
 */
create or replace function private.recall_payload_errors(payload jsonb)
returns jsonb
language plpgsql
immutable
set search_path = ''
as $$
declare
  uuid_re constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
  errors jsonb;
  field text;
begin
  if jsonb_typeof(payload) is distinct from 'object' then
    return '{"body": "must be an object"}'::jsonb;
  end if;
  errors := private.unknown_fields(payload, '', array['recall_id', 'batch_id', 'recall_reason', 'scope',
    'product_ids', 'hazard', 'instructions', 'classification', 'channels', 'reminder_after_days']);
  foreach field in array array['recall_id', 'batch_id'] loop
    if not coalesce(payload ->> field ~ uuid_re, false) then
      errors := errors || jsonb_build_object(field, 'must be a UUID string');
    end if;
  end loop;
  if jsonb_typeof(payload -> 'recall_reason') is distinct from 'string'
     or length(trim(payload ->> 'recall_reason')) not between 1 and 2000 then
    errors := errors || '{"recall_reason": "must be 1 to 2000 characters"}';
  end if;
  foreach field in array array['hazard', 'instructions'] loop
    if coalesce(jsonb_typeof(payload -> field), 'null') not in ('null', 'string')
       or length(payload ->> field) > 2000 then
      errors := errors || jsonb_build_object(field, 'must be at most 2000 characters');
    end if;
  end loop;
  if coalesce(payload ->> 'scope', '') not in ('all', 'specific') then
    errors := errors || '{"scope": "must be one of: all, specific"}';
  elsif payload ->> 'scope' = 'specific' and (jsonb_typeof(payload -> 'product_ids') is distinct from 'array'
        or jsonb_array_length(payload -> 'product_ids') not between 1 and 100
        or exists (select 1 from jsonb_array_elements(payload -> 'product_ids') p
                   where not coalesce(p #>> '{}' ~ uuid_re and jsonb_typeof(p) = 'string', false))) then
    errors := errors || '{"product_ids": "must list 1 to 100 product UUIDs for scope specific"}';
  elsif payload ->> 'scope' = 'all' and coalesce(jsonb_typeof(payload -> 'product_ids'), 'null') <> 'null' then
    errors := errors || '{"product_ids": "is only for scope specific"}';
  end if;
  if coalesce(jsonb_typeof(payload -> 'classification'), 'null') <> 'null'
     and coalesce(payload ->> 'classification', '') not in ('I', 'II', 'III') then
    errors := errors || '{"classification": "must be one of: I, II, III"}';
  end if;
  if coalesce(jsonb_typeof(payload -> 'channels'), 'null') <> 'null' and (
       jsonb_typeof(payload -> 'channels') <> 'array'
       or not (payload -> 'channels') <@ '["email", "sms"]'::jsonb
       or not (payload -> 'channels') ? 'email') then
    errors := errors || '{"channels": "must be [\"email\"] or [\"email\", \"sms\"]: a recall notice always goes by email"}';
  end if;
  if coalesce(jsonb_typeof(payload -> 'reminder_after_days'), 'null') <> 'null'
     and not coalesce(payload ->> 'reminder_after_days' ~ '^\d{1,2}$'
                      and (payload ->> 'reminder_after_days')::int between 1 and 90, false) then
    errors := errors || '{"reminder_after_days": "must be a whole number of days from 1 to 90"}';
  end if;
  return errors;
end
$$;
revoke all on function private.recall_payload_errors(jsonb) from public;

/*
 * private.recall_notice(recall): the part of a notice's outbox payload every
 * consignee shares: 21 CFR 7.49's content (marked urgent; product and size,
 * lot codes, reason, hazard, instructions). No promotional content: the
 * template has none and takes none.
 */
create or replace function private.recall_notice(r public.batch_recalls)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'urgent', true,
    'recall_id', r.id,
    'classification', r.classification,
    'business_name', (select t.business_name from public.tenants t where t.id = r.tenant_id),
    'products', (select jsonb_agg(jsonb_build_object('name', p.name, 'sku', p.sku) order by p.name)
                 from public.products p where p.id = any (r.product_ids)),
    'lot_number', r.lot_number,
    'lots', (select jsonb_agg(jsonb_build_object('lot_number', b.lot_number, 'product', p.name,
                                                 'expires_on', b.expires_on) order by p.name)
             from public.batches b join public.products p on p.id = b.product_id
             where b.id = any (r.batch_ids)),
    'recall_reason', r.recall_reason,
    'hazard', coalesce(r.hazard, ''),
    'instructions', coalesce(r.instructions, ''))
$$;
revoke all on function private.recall_notice(public.batch_recalls) from public;
drop function if exists private.recall_notice(public.batch_recalls, public.recall_consignees, text);

/*
 * private.queue_recall_notices(recall, consignees, notice_kind): the notices
 * ('notice' or 'reminder') of the consignees (ids) on the recall's channels,
 * in one statement: per consignee and channel with an address, an outbox row
 * (transactional: notices never wait behind campaigns) carrying the shared
 * content, what that consignee was shipped and a response link the
 * dispatcher signs when it sends (action_links), and a recall_notifications
 * row, 'queued', or 'suppressed' without an outbox row when the address
 * bounced or complained or the number replied STOP. A marketing unsubscribe
 * does not stop a safety notice. Returns how many were queued.
 */
create or replace function private.queue_recall_notices(r public.batch_recalls, consignees uuid[], notice_kind text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  base jsonb := private.recall_notice(r) || jsonb_build_object('reminder', notice_kind = 'reminder');
  queued integer;
begin
  with targets as (
    select c.id as consignee_id, c.client_id, x.channel, x.recipient,
           exists (select 1 from public.contact_consent k
                   where k.client_id = c.client_id and k.channel = x.channel
                     and (k.status in ('bounced', 'complained')
                          or (x.channel = 'sms' and k.source = 'sms_stop' and k.status = 'unsubscribed')))
             as suppressed,
           base || jsonb_build_object(
             'client_name', cl.name,
             'quantity_shipped', c.quantity_shipped,
             'order_numbers', array_to_string(c.order_numbers, ', '),
             'action_links', jsonb_build_object('response_url', jsonb_build_object(
               'function', 'recall-response', 'purpose', 'recall_response', 'subject', c.id))) as notice
    from public.recall_consignees c
    join public.wholesale_clients cl on cl.id = c.client_id
    cross join lateral (values ('email', cl.email), ('sms', cl.phone)) x(channel, recipient)
    where c.id = any (consignees) and x.channel = any (r.channels)
      and x.recipient is not null and x.recipient <> ''
  ), sent as (
    insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
    select r.tenant_id, t.channel, 'recall_notice', t.recipient, t.notice
    from targets t where not t.suppressed
    returning id, channel, (payload #>> '{action_links,response_url,subject}')::uuid as consignee_id
  ), noted as (
    insert into public.recall_notifications
      (tenant_id, recall_id, consignee_id, client_id, channel, recipient, kind, status, outbox_id)
    select r.tenant_id, r.id, t.consignee_id, t.client_id, t.channel, t.recipient, notice_kind,
           case when t.suppressed then 'suppressed' else 'queued' end, s.id
    from targets t left join sent s on s.consignee_id = t.consignee_id and s.channel = t.channel
    returning status
  )
  select count(*) filter (where status = 'queued') into queued from noted;
  return queued;
end
$$;
revoke all on function private.queue_recall_notices(public.batch_recalls, uuid[], text) from public;
drop function if exists private.queue_recall_notices(public.batch_recalls, public.recall_consignees, text);

/*
 * public.start_recall(payload): notify-recall's transaction, as the calling
 * admin. payload: {recall_id, batch_id, recall_reason, scope, product_ids?,
 * hazard?, instructions?, classification?, channels?, reminder_after_days?}.
 *
 * The recall covers the lot number of batch_id in every product that has it
 * (scope 'all') or in product_ids only ('specific'). In one transaction:
 * - locks the products' stock (private.lock_stock), then the lots;
 * - inserts batch_recalls (id = recall_id);
 * - quarantines every unit of those lots still on the shelf (status
 *   'recalled'; source 'recall');
 * - derives the consignees: each client of an order allocated units of
 *   those lots, with the quantity shipped and returned, the order
 *   numbers and the first and last dates; plus, for the recalled products'
 *   untracked stock, each client shipped it between the lot's production (or
 *   receipt) and its expiry (match 'product_window');
 * - queues the notices (private.queue_recall_notices).
 *
 * Because an order holds the same stock locks while it allocates, an order
 * racing the recall either commits first (and is then a consignee: the
 * consignee query runs after the locks are granted, on a fresh snapshot) or
 * allocates after the recall commits, when the lots are recalled and empty.
 *
 * Idempotent by recall_id: the same id and body answer the first result with
 * "replayed": true and queue nothing; the same id with another body raises
 * CEI22 (422); another tenant's recall id is CEN04 (404). Concurrent twins
 * wait on the id and the second replays.
 *
 * Returns {success, recall_id, notified_count (consignees with a notice
 * queued), consignee_count, notices_queued, notices_suppressed,
 * quarantined_quantity, lots: [{batch_id, product_id, lot_number}]}.
 *
 * Raises CEA01, CEV01, CEN04 (batch or product), CEA03 (not an admin), CER03,
 * CE409 LOT_ALREADY_RECALLED (the lot is in another recall), CEI22.
 */
create or replace function public.start_recall(payload jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  admitted uuid := private.admit_early('notify-recall');
  caller uuid := private.begin_request(private.recall_payload_errors(payload), null);
  lot public.batches%rowtype;
  tenant uuid;
  hash text;
  rec public.batch_recalls%rowtype;
  products uuid[];
  lots uuid[];
  missing jsonb;
  moved numeric;
  queued integer := 0;
  notified integer := 0;
  answer jsonb;
begin
  select * into lot from public.batches b where b.id = (payload ->> 'batch_id')::uuid;
  if not found or not private.is_member(lot.tenant_id) then
    perform private.raise_error('CEN04', 'batch not found',
      jsonb_build_object('resource', 'batch', 'id', payload ->> 'batch_id'));
  end if;
  tenant := lot.tenant_id;
  perform private.require_role(tenant, 'admin');
  perform private.take_rate_limit(tenant, 'notify-recall', admitted);
  -- A recall queues behind the orders holding its products' stock, one after
  -- another: it waits longer for them than a request's usual 3 s (within
  -- the role's statement timeout) rather than fail while orders flow.
  perform set_config('lock_timeout', '7s', true);

  -- The recall id is the idempotency key. A twin in flight holds the id's
  -- index entry: this insert waits for it, then finds the row.
  -- Over the request as it means: ids in one case, the reason trimmed, nulls
  -- as absent; the same recall written differently is the same recall.
  hash := encode(sha256(convert_to((jsonb_strip_nulls(payload) || jsonb_build_object(
    'recall_id', lower(payload ->> 'recall_id'), 'batch_id', lower(payload ->> 'batch_id'),
    'recall_reason', trim(payload ->> 'recall_reason')))::text, 'UTF8')), 'hex');
  insert into public.batch_recalls (id, tenant_id, batch_id, batch_ids, lot_number, product_ids, recall_reason,
    scope, request_hash)
  values ((payload ->> 'recall_id')::uuid, tenant, lot.id, '{}', lot.lot_number, '{}', 'pending', 'all', hash)
  on conflict (id) do nothing;
  if not found then
    select * into rec from public.batch_recalls r where r.id = (payload ->> 'recall_id')::uuid;
    if rec.tenant_id <> tenant or not private.is_member(rec.tenant_id) then
      perform private.raise_error('CEN04', 'recall not found',
        jsonb_build_object('resource', 'recall', 'id', payload ->> 'recall_id'));
    elsif rec.request_hash <> hash then
      raise exception using errcode = 'CEI22',
        message = 'this recall_id was already used with a different request; use a new recall_id for a new recall';
    end if;
    return rec.result || '{"replayed": true}'::jsonb;
  end if;

  if payload ->> 'scope' = 'specific' then
    select array_agg(distinct (p #>> '{}')::uuid) into products from jsonb_array_elements(payload -> 'product_ids') p;
    select coalesce(jsonb_agg(x), '[]') into missing from unnest(products) x
    where not exists (select 1 from public.products p where p.id = x and p.tenant_id = tenant);
    if missing <> '[]' then
      perform private.raise_error('CEN04', 'product not found',
        jsonb_build_object('resource', 'product', 'ids', missing));
    end if;
    -- Each product named must have this lot, and the lot named must be one of them.
    select coalesce(jsonb_agg(x), '[]') into missing from unnest(products) x
    where not exists (select 1 from public.batches b
                      where b.tenant_id = tenant and b.product_id = x and b.lot_number = lot.lot_number);
    if missing <> '[]' or not lot.product_id = any (products) then
      perform private.raise_error('CEV01', 'the request has invalid fields', jsonb_build_object('product_ids',
        format('must include the product of batch_id and only products with a lot %s (%s have none)',
               lot.lot_number, case when missing = '[]' then 'all others' else missing::text end)));
    end if;
  else
    select array_agg(b.product_id order by b.product_id) into products
    from public.batches b where b.tenant_id = tenant and b.lot_number = lot.lot_number;
  end if;

  -- The stock locks first (as every order takes them), then the lots; only
  -- then are the lots' statuses read, so two recalls of one lot never both
  -- go on: the second sees the first's 'recalled' and stops.
  perform private.lock_stock(tenant, products);
  select coalesce(array_agg(b.id order by b.id), '{}') into lots
  from public.batches b
  where b.tenant_id = tenant and b.lot_number = lot.lot_number and b.product_id = any (products);
  perform 1 from public.batches b where b.id = any (lots) order by b.id for no key update;
  if exists (select 1 from public.batches b where b.id = any (lots) and b.status = 'recalled') then
    perform private.raise_api_error(409, 'LOT_ALREADY_RECALLED',
      format('lot %s is already recalled', lot.lot_number),
      jsonb_build_object('recalls', (select jsonb_agg(r.id) from public.batch_recalls r
                                     where r.tenant_id = tenant and r.batch_ids && lots)));
  end if;

  -- With the stock locks held, every order that took these lots has
  -- committed and is seen below, and no other can take them.
  moved := private.quarantine_lots(tenant, lots, 'recalled',
    left(format('recall %s: %s', payload ->> 'recall_id', trim(payload ->> 'recall_reason')), 2000), 'recall',
    null, (payload ->> 'recall_id')::uuid);

  update public.batch_recalls r
  set batch_ids = lots, product_ids = products, recall_reason = trim(payload ->> 'recall_reason'),
      scope = payload ->> 'scope', classification = payload ->> 'classification',
      hazard = nullif(trim(payload ->> 'hazard'), ''), instructions = nullif(trim(payload ->> 'instructions'), ''),
      channels = case when jsonb_typeof(payload -> 'channels') = 'array'
                      then array(select jsonb_array_elements_text(payload -> 'channels'))
                      else array['email', 'sms'] end,
      reminder_after_days = coalesce((payload ->> 'reminder_after_days')::int, 3),
      quarantined_quantity = moved, initiated_by = caller
  where r.id = (payload ->> 'recall_id')::uuid
  returning * into rec;

  -- Every order, whatever its status: cancelling an order does not put its
  -- stock back, so a cancelled order's units may be with its client. Untracked
  -- units of a recalled product count while that product's lot was on sale:
  -- from its production (or receipt) to the day after its expiry (open when
  -- it has none).
  insert into public.recall_consignees (tenant_id, recall_id, client_id, match, quantity_shipped,
    quantity_returned, order_numbers, first_shipped_at, last_shipped_at)
  select tenant, rec.id, x.client_id, min(x.match), sum(x.quantity), sum(x.returned),
         array_agg(distinct x.order_number order by x.order_number), min(x.at), max(x.at)
  from (
    select o.client_id, case when a.batch_id is null then 'product_window' else 'lot' end as match,
           a.quantity, a.returned_quantity as returned, o.order_number, o.created_at as at
    from public.wholesale_order_allocations a
    join public.wholesale_order_items i on i.id = a.order_item_id
    join public.wholesale_orders o on o.id = i.order_id
    left join (
      select b.product_id, min(coalesce(b.produced_on::timestamptz, b.created_at)) as opened,
             case when bool_or(b.expires_on is null) then null
                  else max(b.expires_on + 1)::timestamptz end as closed
      from public.batches b where b.id = any (lots)
      group by b.product_id
    ) sale on sale.product_id = i.product_id
    where a.tenant_id = tenant
      and (a.batch_id = any (lots)
           or (a.batch_id is null and sale.product_id is not null
               and o.created_at >= sale.opened and (sale.closed is null or o.created_at < sale.closed)))
  ) x
  group by x.client_id;

  queued := private.queue_recall_notices(rec,
    array(select rc.id from public.recall_consignees rc where rc.recall_id = rec.id), 'notice');
  update public.recall_consignees rc set notified_at = now()
  where rc.recall_id = rec.id
    and exists (select 1 from public.recall_notifications n where n.consignee_id = rc.id and n.status = 'queued');
  get diagnostics notified = row_count;

  answer := jsonb_build_object(
    'success', true, 'recall_id', rec.id, 'notified_count', notified,
    'consignee_count', (select count(*) from public.recall_consignees rc where rc.recall_id = rec.id),
    'notices_queued', queued,
    'notices_suppressed', (select count(*) from public.recall_notifications x
                           where x.recall_id = rec.id and x.status = 'suppressed'),
    'quarantined_quantity', moved,
    'lots', (select jsonb_agg(jsonb_build_object('batch_id', b.id, 'product_id', b.product_id,
                                                 'lot_number', b.lot_number) order by b.id)
             from public.batches b where b.id = any (lots)));
  update public.batch_recalls r set result = answer where r.id = rec.id;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (tenant, caller, 'recall.started', 'batch_recall', rec.id,
    answer - 'success' - 'recall_id' || jsonb_build_object('lot_number', lot.lot_number));
  return answer;
end
$$;
revoke all on function public.start_recall(jsonb) from public, anon;
grant execute on function public.start_recall(jsonb) to authenticated, service_role;

/*
 * public.recall_effectiveness(recall_id): the recall's effectiveness check,
 * read under the caller's RLS:
 *   response_rate = consignees who responded ÷ consignees notified;
 *   recovery_rate = (reported returned + destroyed + on hand) ÷ shipped,
 * with the counts and quantities behind them. Rates are null while their
 * denominator is zero. Null for a recall the caller cannot see.
 */
create or replace function public.recall_effectiveness(recall_id uuid)
returns jsonb
language sql
stable
set search_path = ''
as $$
  select jsonb_build_object(
    'recall_id', recall_effectiveness.recall_id,
    'consignees', count(*),
    'notified', count(*) filter (where c.notified_at is not null),
    'responded', count(*) filter (where c.responded_at is not null),
    'response_rate', round((count(*) filter (where c.responded_at is not null))::numeric
                           / nullif(count(*) filter (where c.notified_at is not null), 0), 4),
    'quantity_shipped', coalesce(sum(c.quantity_shipped), 0),
    'quantity_accounted', coalesce(sum(a.accounted), 0),
    'recovery_rate', round(sum(a.accounted) / nullif(sum(c.quantity_shipped), 0), 4))
  from public.recall_consignees c
  cross join lateral (select coalesce(c.reported_returned, 0) + coalesce(c.reported_destroyed, 0)
                             + coalesce(c.reported_on_hand, 0) as accounted) a
  where c.recall_id = recall_effectiveness.recall_id
  -- null for a recall the caller cannot see (or that does not exist)
  having exists (select 1 from public.batch_recalls r where r.id = recall_effectiveness.recall_id)
$$;
revoke all on function public.recall_effectiveness(uuid) from public, anon;
grant execute on function public.recall_effectiveness(uuid) to authenticated, service_role;

/*
 * public.recall_report(recall_id): everything the compliance report shows,
 * read under the caller's RLS (a recall of another tenant is CEN04):
 * {recall, tenant_name, generated_at, lots: [{lot_number, product, sku,
 *  produced_on, expires_on, received, shipped, returned, on_hand,
 *  quarantined, destroyed}], consignees: [{client, email, phone, address,
 *  match, quantity_shipped, quantity_returned, order_numbers, first/last
 *  shipped, notified_at, methods, responded_at, acknowledged, reported_*}],
 *  shipments: [{lot_number, product, sku, quantity, returned, warehouse,
 *  client, address, shipped_at, order_number, match}], effectiveness}.
 */
create or replace function public.recall_report(recall_id uuid)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  r public.batch_recalls%rowtype;
begin
  select * into r from public.batch_recalls x where x.id = recall_report.recall_id;
  if not found then
    -- Raised here: the caller (invoker) may not run private.raise_error.
    raise exception using errcode = 'CEN04', message = 'recall not found',
      detail = jsonb_build_object('resource', 'recall', 'id', recall_report.recall_id)::text;
  end if;
  return jsonb_build_object(
    'recall', to_jsonb(r) - 'request_hash' - 'result',
    'tenant_name', (select t.business_name from public.tenants t where t.id = r.tenant_id),
    'time_zone', (select coalesce(t.time_zone, 'UTC') from public.tenants t where t.id = r.tenant_id),
    'generated_at', now(),
    'lots', (
      select coalesce(jsonb_agg(jsonb_build_object(
        'batch_id', b.id, 'lot_number', b.lot_number, 'product', p.name, 'sku', p.sku,
        'produced_on', b.produced_on, 'expires_on', b.expires_on, 'received', b.quantity_received,
        'shipped', (select coalesce(sum(a.quantity), 0) from public.wholesale_order_allocations a
                    where a.batch_id = b.id),
        'returned', (select coalesce(sum(a.returned_quantity), 0) from public.wholesale_order_allocations a
                     where a.batch_id = b.id),
        'on_hand', (select coalesce(sum(bi.quantity), 0) from public.batch_inventory bi where bi.batch_id = b.id),
        'quarantined', (select coalesce(sum(q.quantity), 0) from public.quarantined_inventory q
                        where q.batch_id = b.id and q.status = 'quarantined'),
        'destroyed', (select coalesce(sum(q.quantity), 0) from public.quarantined_inventory q
                      where q.batch_id = b.id and q.status = 'destroyed'))
        order by p.name, b.lot_number), '[]')
      from public.batches b join public.products p on p.id = b.product_id
      where b.id = any (r.batch_ids)),
    'consignees', (
      select coalesce(jsonb_agg(jsonb_build_object(
        'consignee_id', c.id, 'client_id', c.client_id, 'client', cl.name, 'email', cl.email,
        'phone', cl.phone, 'address', cl.address, 'match', c.match,
        'quantity_shipped', c.quantity_shipped, 'quantity_returned', c.quantity_returned,
        'order_numbers', to_jsonb(c.order_numbers),
        'first_shipped_at', c.first_shipped_at, 'last_shipped_at', c.last_shipped_at,
        'notified_at', c.notified_at, 'reminder_sent_at', c.reminder_sent_at,
        'methods', (select coalesce(jsonb_agg(n.channel || case when n.status = 'suppressed' then ' (suppressed)'
                                                              else '' end order by n.channel), '[]')
                    from public.recall_notifications n where n.consignee_id = c.id and n.kind = 'notice'),
        'responded_at', c.responded_at, 'acknowledged', c.acknowledged,
        'reported_on_hand', c.reported_on_hand, 'reported_returned', c.reported_returned,
        'reported_destroyed', c.reported_destroyed)
        order by cl.name, c.client_id), '[]')
      from public.recall_consignees c join public.wholesale_clients cl on cl.id = c.client_id
      where c.recall_id = r.id),
    -- the trace, a row per shipment (FSMA 204's shipping event): lot, product,
    -- quantity, ship-from, ship-to, date and reference document
    'shipments', (
      select coalesce(jsonb_agg(jsonb_build_object(
        'lot_number', b.lot_number, 'product', p.name, 'sku', p.sku,
        'quantity', a.quantity, 'returned', a.returned_quantity, 'warehouse', w.name,
        'client', cl.name, 'address', cl.address, 'shipped_at', o.created_at,
        'order_number', o.order_number, 'match', case when a.batch_id is null then 'product_window' else 'lot' end)
        order by o.created_at, o.order_number, p.name), '[]')
      from public.recall_consignees c
      join public.wholesale_orders o on o.client_id = c.client_id and o.order_number = any (c.order_numbers)
        and o.tenant_id = r.tenant_id
      join public.wholesale_order_items i on i.order_id = o.id
      join public.wholesale_order_allocations a on a.order_item_id = i.id
      join public.products p on p.id = i.product_id
      join public.warehouses w on w.id = a.warehouse_id
      join public.wholesale_clients cl on cl.id = c.client_id
      left join public.batches b on b.id = a.batch_id
      where c.recall_id = r.id
        and (a.batch_id = any (r.batch_ids) or (a.batch_id is null and i.product_id = any (r.product_ids)))),
    'effectiveness', public.recall_effectiveness(r.id));
end
$$;
revoke all on function public.recall_report(uuid) from public, anon;
grant execute on function public.recall_report(uuid) to authenticated, service_role;

-- ----------------------------------------------------- consignee responses

/*
 * public.recall_response_page(consignee_id): what the response page shows
 * (the service role's, for recall-response, after it verified the signed
 * link): the recall's notice content and the response so far. Null when the
 * consignee no longer exists.
 */
create or replace function public.recall_response_page(consignee_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select private.recall_notice(r)
    || jsonb_build_object('client_name', cl.name, 'quantity_shipped', c.quantity_shipped,
         'order_numbers', array_to_string(c.order_numbers, ', '), 'status', r.status, 'responded_at', c.responded_at, 'acknowledged', c.acknowledged,
         'reported_on_hand', c.reported_on_hand, 'reported_returned', c.reported_returned,
         'reported_destroyed', c.reported_destroyed)
  from public.recall_consignees c
  join public.batch_recalls r on r.id = c.recall_id
  join public.wholesale_clients cl on cl.id = c.client_id
  where c.id = recall_response_page.consignee_id
$$;
revoke all on function public.recall_response_page(uuid) from public, anon, authenticated;
grant execute on function public.recall_response_page(uuid) to service_role;

/*
 * public.record_recall_response(consignee_id, response): a consignee's
 * response: {acknowledged: true, on_hand, returned, destroyed} (quantities
 * ≥ 0, at most 2 decimals, none above what was shipped in total; note?).
 * Once per link: the first response is kept; a later one answers it with
 * "already": true and changes nothing. Returns the page (as
 * recall_response_page). CEV01 for bad quantities; CEN04 when the consignee
 * is gone. The service role's.
 */
create or replace function public.record_recall_response(consignee_id uuid, response jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  c public.recall_consignees%rowtype;
  errors jsonb := '{}'::jsonb;
  field text;
  total numeric := 0;
begin
  select * into c from public.recall_consignees x where x.id = record_recall_response.consignee_id for update;
  if not found then
    perform private.raise_error('CEN04', 'recall notice not found',
      jsonb_build_object('resource', 'recall_notice', 'id', consignee_id));
  end if;
  if c.responded_at is not null then
    return public.recall_response_page(c.id) || '{"already": true}'::jsonb;
  end if;
  if jsonb_typeof(response) is distinct from 'object' then
    perform private.raise_error('CEV01', 'the request has invalid fields', '{"body": "must be an object"}');
  end if;
  foreach field in array array['on_hand', 'returned', 'destroyed'] loop
    errors := errors || (select coalesce(jsonb_object_agg(ltrim(e.k, '.'), e.v), '{}')
                         from jsonb_each(private.amount_errors(response, '', field, false)) e(k, v));
    if jsonb_typeof(response -> field) = 'number' then
      total := total + (response ->> field)::numeric;
    end if;
  end loop;
  if response -> 'acknowledged' is distinct from 'true'::jsonb then
    errors := errors || '{"acknowledged": "tick the box to acknowledge the notice"}';
  end if;
  if length(response ->> 'note') > 2000 then
    errors := errors || '{"note": "must be at most 2000 characters"}';
  end if;
  if errors = '{}' and total > c.quantity_shipped then
    errors := errors || jsonb_build_object('on_hand',
      format('on hand, returned and destroyed add up to %s, more than the %s shipped to you', total,
             c.quantity_shipped));
  end if;
  if errors <> '{}' then
    perform private.raise_error('CEV01', 'the request has invalid fields', errors);
  end if;
  update public.recall_consignees x
  set responded_at = now(), acknowledged = true,
      reported_on_hand = (response ->> 'on_hand')::numeric, reported_returned = (response ->> 'returned')::numeric,
      reported_destroyed = (response ->> 'destroyed')::numeric, response_note = nullif(trim(response ->> 'note'), '')
  where x.id = c.id;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (c.tenant_id, null, 'recall.responded', 'batch_recall', c.recall_id,
    jsonb_build_object('consignee_id', c.id, 'client_id', c.client_id) || (response - 'note'));
  return public.recall_response_page(c.id) || '{"already": false}'::jsonb;
end
$$;
revoke all on function public.record_recall_response(uuid, jsonb) from public, anon, authenticated;
grant execute on function public.record_recall_response(uuid, jsonb) to service_role;

/*
 * public.remind_recall_consignees(): once a day (pg_cron), one reminder to
 * each consignee of an active recall who was notified at least the recall's
 * reminder_after_days ago and has not responded. Returns how many consignees
 * were reminded. Locks the consignee rows it reminds (skipping rows another
 * run holds), so two runs never remind one consignee twice.
 */
create or replace function public.remind_recall_consignees()
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  r public.batch_recalls%rowtype;
  due uuid[];
  reminded integer := 0;
begin
  for r in
    select rr.* from public.batch_recalls rr
    where rr.status = 'active'
      and exists (select 1 from public.recall_consignees x
                  where x.recall_id = rr.id and x.responded_at is null and x.reminder_sent_at is null
                    and x.notified_at <= now() - make_interval(days => rr.reminder_after_days))
    order by rr.initiated_at
  loop
    due := array(
      select x.id from public.recall_consignees x
      where x.recall_id = r.id and x.responded_at is null and x.reminder_sent_at is null
        and x.notified_at <= now() - make_interval(days => r.reminder_after_days)
      order by x.id
      for update skip locked);
    perform private.queue_recall_notices(r, due, 'reminder');
    update public.recall_consignees x set reminder_sent_at = now() where x.id = any (due);
    reminded := reminded + cardinality(due);
  end loop;
  return reminded;
end
$$;
revoke all on function public.remind_recall_consignees() from public, anon, authenticated;
grant execute on function public.remind_recall_consignees() to service_role;

select cron.schedule('remind-recall-consignees', '0 14 * * *', 'select public.remind_recall_consignees()');

-- The notice (21 CFR 7.49: urgent, product and size, lot codes, reason,
-- hazard, what to do) and its reminder, by email and SMS.
insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'recall_notice', 'email', 'en',
$recall_subject$URGENT: {{#if reminder}}REMINDER: {{/if}}PRODUCT RECALL{{#if classification}} (Class {{classification}}){{/if}} · lot {{lot_number}}$recall_subject$,
$recall_html$<!doctype html><html><body style="font-family:sans-serif">\
<h1 style="color:#b00">URGENT: {{#if reminder}}REMINDER: {{/if}}PRODUCT RECALL</h1>\
{{#if reminder}}<p><strong>We have not yet received your response to this recall.</strong></p>{{/if}}\
<p>Dear {{client_name}},</p>\
<p>{{business_name}} is recalling the following product{{#if classification}} (Class {{classification}} recall){{/if}}. \
Our records show you received it.</p>\
<table cellpadding="4" style="border-collapse:collapse">\
<tr><th align="left">Product</th><th align="left">Lot code</th><th align="left">Expiry</th></tr>\
{{#each lots max=50}}<tr><td>{{product}}</td><td>{{lot_number}}</td><td>{{#if expires_on}}{{expires_on | date}}{{/if}}</td></tr>{{/each}}\
</table>\
<p><strong>Reason for the recall:</strong> {{recall_reason}}</p>\
{{#if hazard}}<p><strong>Hazard:</strong> {{hazard}}</p>{{/if}}\
<p><strong>What to do:</strong> {{#if instructions}}{{instructions}}{{else}}Stop distributing and using this product \
immediately and hold it until we contact you.{{/if}}</p>\
<p>You received {{quantity_shipped | number}} units (orders {{order_numbers}}).</p>\
<p><strong>Please respond, even if you have none left:</strong> <a href="{{response_url}}">tell us how many you hold, \
returned and destroyed</a>.</p>\
<p>{{business_name}}</p></body></html>$recall_html$,
$recall_body$URGENT: {{#if reminder}}REMINDER: {{/if}}PRODUCT RECALL{{#if classification}} (Class {{classification}}){{/if}}

Dear {{client_name}},

{{business_name}} is recalling the following product. Our records show you received it.
{{#each lots max=50}}
- {{product}}, lot {{lot_number}}{{#if expires_on}}, expiry {{expires_on | date}}{{/if}}{{/each}}

Reason for the recall: {{recall_reason}}
{{#if hazard}}Hazard: {{hazard}}
{{/if}}What to do: {{#if instructions}}{{instructions}}{{else}}Stop distributing and using this product immediately and hold it until we contact you.{{/if}}

You received {{quantity_shipped | number}} units (orders {{order_numbers}}).
Please respond, even if you have none left: {{response_url}}

{{business_name}}
$recall_body$),
(null, 'recall_notice', 'sms', 'en', null, null,
$recall_sms${{business_name}}: URGENT {{#if reminder}}REMINDER: {{/if}}PRODUCT RECALL, lot {{lot_number}}. \
{{recall_reason}} Stop using it now. Details and response: {{response_url}}$recall_sms$)
on conflict do nothing;
