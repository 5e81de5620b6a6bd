begin;
select no_plan();
select tests.make_fixture();
insert into auth.users (id, email) values
  ('0a000000-0000-4000-8000-000000000002', 'member@tenant-a.test'),
  ('0a000000-0000-4000-8000-000000000003', 'viewer@tenant-a.test'),
  ('0a000000-0000-4000-8000-000000000004', 'owner@tenant-a.test');
insert into public.tenant_users (tenant_id, user_id, role, email) values
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000002', 'member', 'member@tenant-a.test'),
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000003', 'viewer', 'viewer@tenant-a.test'),
  ('1a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-000000000004', 'owner', 'owner@tenant-a.test');

-- channels
select is(array(select name from public.notification_channels order by 1), array['email','slack','sms','stripe','webhook'],
  'five channels');
select table_privs_are('public', 'notification_channels', 'anon', array[]::text[], 'anon: nothing on channels');
select table_privs_are('public', 'notification_channels', 'authenticated', array['SELECT'], 'authenticated: select channels');
select table_privs_are('public', 'message_templates', 'anon', array[]::text[], 'anon: nothing on templates');
select table_privs_are('public', 'message_templates', 'authenticated', array['SELECT', 'DELETE'], 'authenticated: select, delete (+ column insert/update)');
select column_privs_are('public', 'message_templates', 'key', 'authenticated', array['SELECT', 'INSERT'], 'key not updatable');
select column_privs_are('public', 'message_templates', 'body', 'authenticated', array['SELECT', 'INSERT', 'UPDATE'], 'body updatable');
select column_privs_are('public', 'message_templates', 'updated_at', 'authenticated', array['SELECT'], 'updated_at is the trigger''s');
select is((select count(*) from pg_constraint where conname = 'notification_outbox_channel_check'), 0::bigint, 'the outbox channel CHECK is gone');
select col_is_fk('public', 'notification_outbox', 'channel', 'outbox.channel is a foreign key');
select col_is_fk('public', 'message_quotas', 'channel', 'message_quotas.channel is a foreign key');
select throws_ok($$insert into public.notification_outbox (tenant_id, channel, template) values ('1a000000-0000-4000-8000-000000000001', 'fax', 'x')$$,
  '23503', null, 'an unknown channel is refused');
insert into public.notification_channels (name, description) values ('fax', 'Fax') on conflict do nothing;
select lives_ok($$insert into public.notification_outbox (tenant_id, channel, template, status) values ('1a000000-0000-4000-8000-000000000001', 'fax', 'x', 'dead')$$,
  'a new channel is one insert away');

select tests.act_as('0a000000-0000-4000-8000-000000000002');
select is((select count(*) from public.notification_channels), 6::bigint, 'a member reads the channels (and fax)');
select throws_ok($$insert into public.notification_channels values ('x', 'y')$$, '42501', null, 'members cannot add channels');
select tests.act_as(null);
select throws_ok($$select * from public.notification_channels$$, '42501', null, 'anon cannot read channels');
select throws_ok($$select * from public.message_templates$$, '42501', null, 'anon cannot read templates');

-- templates: defaults visible to all members (each feature's migration seeds its own)
select tests.act_as_owner();
select set_config('t.defaults', (select count(*) from public.message_templates where tenant_id is null)::text, true);
select cmp_ok(current_setting('t.defaults')::bigint, '>=', 8::bigint, 'the migrations seed the defaults');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select is((select count(*) from public.message_templates where tenant_id is null), current_setting('t.defaults')::bigint,
  'B sees every default');
select lives_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'B {{order_number}}')$$,
  'B''s admin adds a template');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select is((select count(*) from public.message_templates), current_setting('t.defaults')::bigint, 'A sees the defaults, not B''s');
select lives_ok($$insert into public.message_templates (tenant_id, key, channel, subject, html, body) values ('1a000000-0000-4000-8000-000000000001', 'order_confirmation', 'email', 's', 'h', 'b')$$,
  'A''s admin adds an email template');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1b000000-0000-4000-8000-000000000001', 'x', 'sms', 'b')$$,
  'CEA03', null, 'A''s admin cannot add one to B');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values (null, 'x', 'sms', 'b')$$,
  null, null, 'nor a default');
with u as (update public.message_templates set body = 'hacked' where tenant_id is null returning 1) select is((select count(*) from u), 0::bigint, 'defaults are not updatable by tenants');
with d as (delete from public.message_templates where tenant_id is null returning 1) select is((select count(*) from d), 0::bigint, 'nor deletable');
select throws_ok($$update public.message_templates set key = 'other' where tenant_id = '1a000000-0000-4000-8000-000000000001'$$, '42501', null, 'key is fixed');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, subject, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'email', 's', 'b')$$, '23514', null, 'an email needs html');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, subject, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'sms', 's', 'b')$$, '23514', null, 'an sms has no subject');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'Bad-Key', 'sms', 'b')$$, '23514', null, 'key format');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'sms', repeat('x', 65537))$$, '23514', null, 'body size');
select lives_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'sms', repeat('x', 65536))$$, '64 KiB body fits');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'sms', 'dup')$$, '23505', null, 'one per tenant, key, channel, locale');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'y', 'fax2', 'b')$$, '23503', null, 'channel must exist');
select tests.act_as_owner();
update public.message_templates set updated_at = '2000-01-01' where key = 'y';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
update public.message_templates set body = 'new' where key = 'y';
select tests.act_as_owner();
select ok((select updated_at > now() - interval '1 minute' from public.message_templates where key = 'y'), 'an update stamps updated_at');

select tests.act_as('0a000000-0000-4000-8000-000000000004');
select lives_ok($$update public.message_templates set body = 'owner' where key = 'y'$$, 'an owner may change one');
select tests.act_as('0a000000-0000-4000-8000-000000000002');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'z', 'sms', 'b')$$,
  'CEA03', 'this needs the admin role or a higher one', 'a member cannot add one');
select throws_ok($$update public.message_templates set body = 'm' where key = 'y'$$, 'CEA03', null, 'nor change one');
select throws_ok($$delete from public.message_templates where key = 'y'$$, 'CEA03', null, 'nor remove one');
select is((select count(*) from public.message_templates), current_setting('t.defaults')::bigint + 2,
  'a member reads their tenant''s and the defaults');
select tests.act_as('0a000000-0000-4000-8000-000000000003');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'z', 'sms', 'b')$$,
  'CEA03', null, 'a viewer cannot add one (the trigger answers before RLS)');
with u as (update public.message_templates set body = 'v' returning 1) select is((select count(*) from u), 0::bigint, 'a viewer changes nothing');
select throws_ok($$select private.message_template('1a000000-0000-4000-8000-000000000001', 'y', 'sms', 'en')$$, '42501', null, 'users cannot call private.message_template');

-- resolution
select tests.act_as_owner();
delete from public.message_templates where tenant_id = '1b000000-0000-4000-8000-000000000001';
insert into public.message_templates (tenant_id, key, channel, locale, body) values
  (null, 'order_confirmation', 'sms', 'fr', 'default fr'),
  (null, 'order_confirmation', 'sms', 'fr-CA', 'default fr-CA'),
  ('1a000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'en', 'A en'),
  ('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'de', 'B de');
select is((private.message_template('1a000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'en')).body, 'A en', 'own over default');
select is((private.message_template('1a000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'fr')).body, 'A en', 'own en over default fr (tenant first)');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'fr-CA')).body, 'default fr-CA', 'exact locale');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'fr-BE')).body, 'default fr', 'language of a region');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'de')).body, 'B de', 'own de');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'it')).tenant_id, null, 'default en when B has no such locale');
select ok((private.message_template('1b000000-0000-4000-8000-000000000001', 'order_confirmation', 'sms', 'it')).body like 'Order {{order_number}}%', 'the seeded sms');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'quota_alert', 'slack', 'it')).key, 'quota_alert', 'default en for other locales');
select is((private.message_template('1b000000-0000-4000-8000-000000000001', 'nope', 'sms', 'en')).id, null, 'null when none');
select is((select body from private.message_template('1a000000-0000-4000-8000-000000000001', 'order_confirmation', 'email')), 'b', 'default locale argument');

-- the dispatcher's batch lookup
select is(
  public.message_templates_for(jsonb_build_array(
    jsonb_build_object('tenant_id', '1a000000-0000-4000-8000-000000000001', 'key', 'order_confirmation', 'channel', 'sms'),
    jsonb_build_object('tenant_id', '1b000000-0000-4000-8000-000000000001', 'key', 'order_confirmation', 'channel', 'sms', 'locale', 'fr-CA'),
    jsonb_build_object('tenant_id', '1b000000-0000-4000-8000-000000000001', 'key', 'nope', 'channel', 'sms'))),
  jsonb_build_array(
    jsonb_build_object('key', 'order_confirmation', 'channel', 'sms', 'found', true, 'subject', null, 'html', null, 'body', 'A en',
      'fallback', jsonb_build_object('subject', null, 'html', null,
        'body', (select body from public.message_templates where tenant_id is null and key = 'order_confirmation' and channel = 'sms' and locale = 'en'))),
    jsonb_build_object('key', 'order_confirmation', 'channel', 'sms', 'found', true, 'subject', null, 'html', null, 'body', 'default fr-CA', 'fallback', null),
    jsonb_build_object('key', 'nope', 'channel', 'sms', 'found', false, 'subject', null, 'html', null, 'body', null, 'fallback', null)),
  'message_templates_for answers each request in order, tenant first');
select is(public.message_templates_for('{}'::jsonb), '[]'::jsonb, 'not an array: nothing');

-- Messages to the operators are not a tenant's to word.
select is(array(select name from public.notification_channels where tenant_editable order by 1),
  array['email', 'sms'], 'tenants word only email and SMS');
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$insert into public.message_templates (tenant_id, key, channel, body) values ('1a000000-0000-4000-8000-000000000001', 'quota_alert', 'slack', '<!channel> log in at <https://evil|console>')$$,
  'CE403', 'tenants cannot write templates for this channel', 'a tenant admin cannot word the operators'' Slack alert');
select tests.act_as_owner();
insert into public.message_templates (tenant_id, key, channel, body)
  values ('1a000000-0000-4000-8000-000000000001', 'quota_alert_x', 'sms', 'x');
update public.notification_channels set tenant_editable = false where name = 'sms';
select is((private.message_template('1a000000-0000-4000-8000-000000000001', 'quota_alert_x', 'sms')).id, null,
  'a tenant row on a channel no longer editable is never chosen');
update public.notification_channels set tenant_editable = true where name = 'sms';
select function_privs_are('public', 'message_templates_for', array['jsonb'], 'authenticated', array[]::text[],
  'users cannot call message_templates_for');
select function_privs_are('public', 'message_templates_for', array['jsonb'], 'anon', array[]::text[],
  'nor anon');
select function_privs_are('public', 'message_templates_for', array['jsonb'], 'service_role', array['EXECUTE'],
  'the service role can');

select * from finish();
rollback;
