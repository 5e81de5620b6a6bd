-- Message templates as data. The outbox's channels become rows of
-- public.notification_channels (a new channel is one insert … on conflict do
-- nothing), and what each (template key, channel) message says becomes rows of
-- public.message_templates, written in the template language of
-- shared/src/template.rs and rendered by dispatch-notifications: {{path}},
-- {{path | money}}, {{#if …}}…{{else}}…{{/if}}, {{#each … max=N}}…{{/each}},
-- {{@more}}; a `\` ending a line joins it to the next.
--
-- Which part is escaped how is the dispatcher's choice, not the template's:
-- subject and body of an email, and an SMS, are plain text; html is HTML;
-- a Slack body is Slack text. The dispatcher keeps what is not a template:
-- the sender name (the payload's business_name), cutting any payload text at
-- 2,000 characters before rendering, the 512 KiB email cap, and fitting an
-- SMS into one segment.
--
-- Layout of the seeded defaults below (tests read them from this file, e.g.
-- functions/dispatch-notifications/tests/seeded_templates.rs; keep it):
--   one `insert into public.message_templates … on conflict do nothing;` per
--   (key, channel), with each part as a dollar-quoted string whose tag is
--   $<key>_<channel>_<part>$, part being subject, html or body (so the
--   subject of key welcome on channel email is between two $welcome_email_subject$).
--   Each tag appears exactly twice in this file. A part that is null is written
--   null, without a tag. Everything between the two tags is the part, byte for
--   byte (a body's final newline included).
--
-- Re-runnable like every migration here: if not exists, drop … if exists,
-- create or replace, on conflict do nothing.

-- ------------------------------------------------------------------ channels

create table if not exists public.notification_channels (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,30}$'),
  description text not null check (length(description) between 1 and 500),
  -- Whether a tenant may write its own templates for this channel. Messages
  -- to a tenant's clients are the tenant's to word; messages to the platform's
  -- operators (Slack) and non-messages (Stripe) are not.
  tenant_editable boolean not null default false
);
alter table public.notification_channels add column if not exists tenant_editable boolean not null default false;
alter table public.notification_channels enable row level security;
drop policy if exists "Signed-in users can read the channels" on public.notification_channels;
create policy "Signed-in users can read the channels" on public.notification_channels
  for select to authenticated
  using (true);
revoke all on public.notification_channels from anon, authenticated;
grant select on public.notification_channels to authenticated;
grant all on public.notification_channels to service_role;

insert into public.notification_channels (name, description, tenant_editable) values
  ('email', 'Email through Resend, to the row''s recipient address', true),
  ('sms', 'SMS through Twilio, to the row''s recipient phone number, one segment where possible', true),
  ('slack', 'A platform alert, to the operators'' Slack webhook (SLACK_WEBHOOK_URL)', false),
  ('stripe', 'A recorded refund still to submit to Stripe (process-return); no message template', false)
on conflict do nothing;

-- The outbox's channel list (last defined in 20261126001200_platform_alerts.sql
-- as the CHECK notification_outbox_channel_check) is now this table.
alter table public.notification_outbox drop constraint if exists notification_outbox_channel_check;
alter table public.notification_outbox drop constraint if exists notification_outbox_channel_fkey;
alter table public.notification_outbox add constraint notification_outbox_channel_fkey
  foreign key (channel) references public.notification_channels (name);

-- A quota names a channel too.
alter table public.message_quotas drop constraint if exists message_quotas_channel_fkey;
alter table public.message_quotas add constraint message_quotas_channel_fkey
  foreign key (channel) references public.notification_channels (name);

-- ----------------------------------------------------------------- templates

/*
 * One row per (tenant, key, channel, locale); tenant_id null is the default
 * for every tenant. key is the outbox row's template. Email has a subject, an
 * html part and a text part (body); SMS and Slack only a body. Each part is
 * at most 64 KiB, the most shared::template parses.
 */
create table if not exists public.message_templates (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete cascade,
  key text not null check (key ~ '^[a-z][a-z0-9_]{0,62}$'),
  channel text not null references public.notification_channels (name),
  locale text not null default 'en' check (locale ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$'),
  subject text check (octet_length(subject) <= 65536),
  html text check (octet_length(html) <= 65536),
  body text not null check (octet_length(body) <= 65536),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique nulls not distinct (tenant_id, key, channel, locale),
  constraint message_templates_email_parts_check check (case when channel = 'email'
    then subject is not null and html is not null else subject is null and html is null end)
);
create index if not exists message_templates_channel_idx on public.message_templates (channel);

-- The one RLS pattern for tenant tables (members read their tenant's rows,
-- viewers write nothing), plus the defaults for every signed-in user.
-- Writing a template is an admin's or an owner's (private.guard_template_write);
-- the defaults are the service role's.
select private.isolate_by_tenant('public.message_templates', 'templates');
drop policy if exists "Signed-in users can read the default templates" on public.message_templates;
create policy "Signed-in users can read the default templates" on public.message_templates
  for select to authenticated
  using (tenant_id is null);

revoke all on public.message_templates from anon, authenticated;
grant select, delete on public.message_templates to authenticated;
grant insert (tenant_id, key, channel, locale, subject, html, body) on public.message_templates to authenticated;
grant update (subject, html, body) on public.message_templates to authenticated;
grant all on public.message_templates to service_role;

/*
 * private.guard_template_write(): before a template row is inserted, updated
 * or deleted. A signed-in user (auth.uid() set) needs the admin role or a
 * higher one in the row's tenant: CEA03 (FORBIDDEN) otherwise. (RLS already
 * keeps them to their tenants' rows, and viewers out.) The service role and
 * the database owner are not users. A tenant's row on a channel tenants may
 * not word (notification_channels.tenant_editable false: the operators' Slack
 * alerts, Stripe) is refused for everyone: CE403 CHANNEL_NOT_EDITABLE. An
 * update stamps updated_at.
 * security definer so it reads the caller's role whatever the caller may
 * read. Locks nothing.
 */
create or replace function private.guard_template_write()
returns trigger
language plpgsql
security definer
set search_path = ''
as $$
begin
  if tg_op = 'DELETE' then
    if (select auth.uid()) is not null then
      perform private.require_role(old.tenant_id, 'admin');
    end if;
    return old;
  end if;
  if (select auth.uid()) is not null then
    perform private.require_role(new.tenant_id, 'admin');
  end if;
  -- (An unknown channel is left to the foreign key's 23503.)
  if new.tenant_id is not null and exists (
      select 1 from public.notification_channels c
      where c.name = new.channel and not c.tenant_editable) then
    perform private.raise_api_error(403, 'CHANNEL_NOT_EDITABLE',
      'tenants cannot write templates for this channel',
      jsonb_build_object('channel', new.channel));
  end if;
  if tg_op = 'UPDATE' then
    new.updated_at := now();
  end if;
  return new;
end
$$;
revoke all on function private.guard_template_write() from public, anon, authenticated;

drop trigger if exists guard_template_write on public.message_templates;
create trigger guard_template_write before insert or update or delete on public.message_templates
  for each row execute function private.guard_template_write();

/*
 * private.message_template(tenant, key, channel, locale): the template a
 * message is rendered from. The tenant's own row (on a channel tenants may
 * word: notification_channels.tenant_editable) comes before the default;
 * within each, the requested locale (e.g. fr-CA) before its language (fr)
 * before 'en'. Null when there is none. Locks nothing; raises nothing.
 */
create or replace function private.message_template(tenant uuid, key text, channel text, locale text default 'en')
returns public.message_templates
language sql
stable
set search_path = ''
as $$
  select t.*
  from public.message_templates t
  where t.key = message_template.key
    and t.channel = message_template.channel
    and (t.tenant_id is null or (t.tenant_id = tenant and exists (
      select 1 from public.notification_channels c
      where c.name = t.channel and c.tenant_editable)))
    and t.locale in (message_template.locale, split_part(message_template.locale, '-', 1), 'en')
  order by t.tenant_id nulls last,
    case t.locale
      when message_template.locale then 0
      when split_part(message_template.locale, '-', 1) then 1
      else 2
    end
  limit 1
$$;
revoke all on function private.message_template(uuid, text, text, text) from public, anon, authenticated;
grant execute on function private.message_template(uuid, text, text, text) to service_role;

/*
 * public.message_templates_for(requests): the dispatcher's one call per batch
 * for the templates its rows need. requests is a JSON array of
 * {"tenant_id", "key", "channel", "locale"?}; the answer has one element per
 * request, in order: {"key", "channel", "found", "subject", "html", "body",
 * "fallback"}, found false (and the parts null) where neither the tenant nor
 * the default has that template. When the tenant's own template is chosen,
 * "fallback" holds the default's parts ({"subject", "html", "body"}, or null
 * without a default), which the dispatcher sends if the tenant's template
 * cannot be rendered, rather than lose the message. Service role only. Locks
 * nothing; raises nothing.
 */
create or replace function public.message_templates_for(requests jsonb)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select coalesce(jsonb_agg(jsonb_build_object(
      'key', r.e ->> 'key', 'channel', r.e ->> 'channel', 'found', t.id is not null,
      'subject', t.subject, 'html', t.html, 'body', t.body,
      'fallback', (select jsonb_build_object('subject', d.subject, 'html', d.html, 'body', d.body)
                   from private.message_template(null, r.e ->> 'key', r.e ->> 'channel',
                     coalesce(r.e ->> 'locale', 'en')) d
                   where t.tenant_id is not null and d.id is not null)) order by r.n), '[]'::jsonb)
  from jsonb_array_elements(case jsonb_typeof(requests) when 'array' then requests else '[]'::jsonb end)
       with ordinality as r(e, n)
  left join lateral private.message_template(
      (r.e ->> 'tenant_id')::uuid, r.e ->> 'key', r.e ->> 'channel',
      coalesce(r.e ->> 'locale', 'en')) t on true
$$;
revoke all on function public.message_templates_for(jsonb) from public, anon, authenticated;
grant execute on function public.message_templates_for(jsonb) to service_role;

-- ------------------------------------------------------- the default texts
-- What dispatch-notifications rendered in Rust until now, byte for byte.

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'order_confirmation', 'email', 'en',
$order_confirmation_email_subject$Order {{order_number}} confirmed - {{business_name}}$order_confirmation_email_subject$,
$order_confirmation_email_html$<!doctype html><html><body style="font-family:sans-serif">\
<p>Hello{{#if client_name}} {{client_name}}{{/if}},</p>\
<p>{{business_name}} has received your order <strong>{{order_number}}</strong>.</p>\
<table cellpadding="4" style="border-collapse:collapse">\
<tr><th align="left">Item</th><th align="left">SKU</th><th>Qty</th><th>Unit price</th><th>Total</th></tr>\
{{#each items max=100}}\
<tr><td>{{name}}</td><td>{{#if sku}}{{sku}}{{/if}}</td><td align="right">{{quantity | number}}</td>\
<td align="right">{{unit_price | money}}</td><td align="right">{{total_price | money}}</td></tr>\
{{/each}}\
{{#if @more}}<tr><td colspan="5">… and {{@more}} more lines</td></tr>{{/if}}\
<tr><td colspan="4" align="right"><strong>Total</strong></td>\
<td align="right"><strong>{{total_amount | money}}</strong></td></tr>\
</table>\
<p>Payment terms: {{payment_terms | label}}<br>Delivery: {{delivery_method | label}}</p>\
<p>Thank you for your order.<br>{{business_name}}</p>\
</body></html>$order_confirmation_email_html$,
$order_confirmation_email_body$Hello{{#if client_name}} {{client_name}}{{/if}},

{{business_name}} has received your order {{order_number}}.

{{#each items max=100}}  {{quantity | number}} x {{name}} [{{#if sku}}{{sku}}{{/if}}] @ {{unit_price | money}} = {{total_price | money}}
{{/each}}{{#if @more}}  … and {{@more}} more lines
{{/if}}
Total: {{total_amount | money}}
Payment terms: {{payment_terms | label}}
Delivery: {{delivery_method | label}}

Thank you for your order.
{{business_name}}
$order_confirmation_email_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'order_confirmation', 'sms', 'en', null, null,
$order_confirmation_sms_body$Order {{order_number}} confirmed, total {{total_amount | money}}. Thank you! - {{business_name}}$order_confirmation_sms_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'purchase_order', 'email', 'en',
$purchase_order_email_subject$Purchase order {{po_number}} from {{business_name}}$purchase_order_email_subject$,
$purchase_order_email_html$<!doctype html><html><body style="font-family:sans-serif">\
<p>Hello{{#if contact_person}} {{contact_person}}{{else if supplier_name}} {{supplier_name}}{{/if}},</p>\
<p>{{business_name}} has issued purchase order <strong>{{po_number}}</strong> \
({{lines}} {{lines | plural:"line":"lines"}}, total <strong>{{total_amount | money}}</strong>), \
expected for delivery on {{expected_delivery_date}}.<br>\
Payment terms: {{#if payment_terms}}{{payment_terms | label}}{{else}}as agreed{{/if}}.</p>\
{{#if notes | trim}}<p>Notes: {{notes | trim}}</p>{{/if}}\
<p><a href="{{pdf_url}}">Download purchase order {{po_number}} (PDF)</a><br>The link works for 30 days.</p>\
<p>{{business_name}}</p></body></html>$purchase_order_email_html$,
$purchase_order_email_body$Hello{{#if contact_person}} {{contact_person}}{{else if supplier_name}} {{supplier_name}}{{/if}},

{{business_name}} has issued purchase order {{po_number}} ({{lines}} {{lines | plural:"line":"lines"}}, \
total {{total_amount | money}}), expected for delivery on {{expected_delivery_date}}.
Payment terms: {{#if payment_terms}}{{payment_terms | label}}{{else}}as agreed{{/if}}.

{{#if notes | trim}}Notes: {{notes | trim}}

{{/if}}The purchase order (PDF): {{pdf_url}}
The link works for 30 days.

{{business_name}}
$purchase_order_email_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'return_confirmation', 'email', 'en',
$return_confirmation_email_subject$Return {{ra_number}} for order {{order_number}}$return_confirmation_email_subject$,
$return_confirmation_email_html$<!doctype html><html><body style="font-family:sans-serif">\
<p>Hello{{#if client_name}} {{client_name}}{{/if}},</p>\
<p>{{business_name}} has processed return <strong>{{ra_number}}</strong> for order {{order_number}}.</p>\
<table cellpadding="4" style="border-collapse:collapse">\
<tr><th align="left">Item</th><th align="left">SKU</th><th>Qty</th><th align="left">Reason</th></tr>\
{{#each items max=100}}\
<tr><td>{{name}}</td><td>{{#if sku}}{{sku}}{{/if}}</td><td align="right">{{quantity | number}}</td>\
<td>{{reason}}</td></tr>\
{{/each}}\
{{#if @more}}<tr><td colspan="4">… and {{@more}} more lines</td></tr>{{/if}}\
</table>\
<p>{{#if return_method == "refund"}}A refund of {{amount | money}} is on its way to your original payment method.\
{{else if return_method == "credit"}}{{amount | money}} has been credited to your account.\
{{else if return_method == "exchange"}}\
{{#if exchange_order_number}}Your replacement is order {{exchange_order_number}}.\
{{else}}Your replacement order is being prepared.{{/if}}\
{{/if}}</p>\
<p>{{business_name}}</p></body></html>$return_confirmation_email_html$,
$return_confirmation_email_body$Hello{{#if client_name}} {{client_name}}{{/if}},

{{business_name}} has processed return {{ra_number}} for order {{order_number}}.

{{#each items max=100}}  {{quantity | number}} x {{name}} [{{#if sku}}{{sku}}{{/if}}]: {{reason}}
{{/each}}{{#if @more}}  … and {{@more}} more lines
{{/if}}
{{#if return_method == "refund"}}A refund of {{amount | money}} is on its way to your original payment method.\
{{else if return_method == "credit"}}{{amount | money}} has been credited to your account.\
{{else if return_method == "exchange"}}\
{{#if exchange_order_number}}Your replacement is order {{exchange_order_number}}.\
{{else}}Your replacement order is being prepared.{{/if}}\
{{/if}}

{{business_name}}
$return_confirmation_email_body$)
on conflict do nothing;

insert into public.message_templates (tenant_id, key, channel, locale, subject, html, body)
values (null, 'quota_alert', 'slack', 'en', null, null,
$quota_alert_slack_body$:warning: {{tenant}} ({{tenant_id}}) reached its {{channel}} quota \
({{quota.per_hour}} an hour, {{quota.per_day}} a day). \
{{held}} message(s) are held and will go out as the quota frees up; \
raise the tenant's row in message_quotas to release them sooner.$quota_alert_slack_body$)
on conflict do nothing;
