-- Per-tenant rate limits: admission in a transaction of its own (the token
-- bucket, overrides, the 429 it raises), and the admission each business RPC
-- must spend.
begin;
select no_plan();
select tests.make_fixture();

select is(
  (select max_requests || '/' || window_seconds from public.rate_limit_policies
   where tenant_id is null and function_name = 'create-wholesale-order'),
  '600/60', 'create-wholesale-order defaults to 600 a minute');
select is(
  (select max_requests || '/' || window_seconds from public.rate_limit_policies
   where tenant_id is null and function_name = 'create-payment-intent'),
  '10/60', 'payment calls default to 10 a minute (seed 003)');
select is((select max_concurrent from public.tenant_capacity_policies where tenant_id is null), 1,
  'a tenant runs one business transaction at a time by default');

-- Only the service role admits.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select throws_ok($$select public.admit_request('create-wholesale-order', '0a000000-0000-4000-8000-000000000001',
  '5a000000-0000-4000-8000-000000000001')$$, '42501', null, 'a member cannot admit itself');
select tests.act_as(null);
select throws_ok($$select public.admit_request('create-wholesale-order', '0a000000-0000-4000-8000-000000000001',
  '5a000000-0000-4000-8000-000000000001')$$, '42501', null, 'nor can anon');
select tests.act_as_owner();

-- Tenant A gets 2 a minute; B keeps the default.
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values ('1a000000-0000-4000-8000-000000000001', 'create-wholesale-order', 2, 60);

create function pg_temp.admit_a() returns jsonb language sql as $$
  select public.admit_request('create-wholesale-order', '0a000000-0000-4000-8000-000000000001',
    '5a000000-0000-4000-8000-000000000001')
$$;
set local role service_role;
select isnt(pg_temp.admit_a() ->> 'admission', null, 'first request within the limit is admitted');
select isnt(pg_temp.admit_a() ->> 'admission', null, 'second request within the limit is admitted');
select throws_ok($$select pg_temp.admit_a()$$, 'CER29', 'too many requests; retry later',
  'the third request in the window raises CER29');
reset role;
select ok((select tokens from public.rate_limit_buckets where tenant_id = '1a000000-0000-4000-8000-000000000001') between 0 and 0.01,
  'a refused request takes no token');

-- The details say when to come back: one token takes 60/2 = 30 s.
create temp table refused (details jsonb) on commit drop;
do $$
begin
  perform pg_temp.admit_a();
exception when sqlstate 'CER29' then
  declare d text;
  begin
    get stacked diagnostics d = pg_exception_detail;
    insert into refused values (d::jsonb);
  end;
end
$$;
select is((select details from refused),
  '{"function":"create-wholesale-order","limit":2,"window_seconds":60,"retry_after":30}'::jsonb,
  'details carry the limit, the window and retry_after');

-- Another tenant is not affected.
select isnt(public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  '5b000000-0000-4000-8000-000000000001') ->> 'admission', null, 'another tenant keeps its own bucket');

-- The bucket refills with time: 30 s later one more request fits, and only one.
update public.rate_limit_buckets set updated_at = updated_at - interval '31 seconds'
where tenant_id = '1a000000-0000-4000-8000-000000000001';
select isnt(pg_temp.admit_a() ->> 'admission', null, 'after 31 s a token is back');
select throws_ok($$select pg_temp.admit_a()$$, 'CER29', null, 'and only one');

-- Idle for a long time, the bucket holds at most the limit.
update public.rate_limit_buckets set updated_at = updated_at - interval '1 day'
where tenant_id = '1a000000-0000-4000-8000-000000000001';
select isnt(pg_temp.admit_a() ->> 'admission', null, 'a burst after a long idle: 1');
select isnt(pg_temp.admit_a() ->> 'admission', null, 'a burst after a long idle: 2');
select throws_ok($$select pg_temp.admit_a()$$, 'CER29', null, 'but never more than the limit');

-- A subject the user does not belong to, or none at all, is answered not
-- found by admission itself, and charged to the user's own tenant.
create temp table before_b on commit drop as
select tokens from public.rate_limit_buckets
where tenant_id = '1b000000-0000-4000-8000-000000000001' and function_name = 'create-wholesale-order';
create temp table before_a on commit drop as
select (tokens, updated_at)::text as state from public.rate_limit_buckets
where tenant_id = '1a000000-0000-4000-8000-000000000001' and function_name = 'create-wholesale-order';
select is(public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  '5a000000-0000-4000-8000-000000000001'),
  '{"admission": null, "not_found": {"id": "5a000000-0000-4000-8000-000000000001", "message": "client not found", "resource": "client"}}'::jsonb,
  'another tenant''s client is not found');
select is(public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  gen_random_uuid()) -> 'not_found' ->> 'message', 'client not found', 'an unknown client is not found');
select ok((select tokens from public.rate_limit_buckets
  where tenant_id = '1b000000-0000-4000-8000-000000000001' and function_name = 'create-wholesale-order')
  < (select tokens from before_b) - 1.5, 'both attempts were charged to the caller''s own tenant');
select is((select (tokens, updated_at)::text from public.rate_limit_buckets
  where tenant_id = '1a000000-0000-4000-8000-000000000001' and function_name = 'create-wholesale-order'),
  (select state from before_a), 'and nothing to the tenant whose client it named');
select throws_ok($$select public.admit_request('no-such-function', '0a000000-0000-4000-8000-000000000001',
  '5a000000-0000-4000-8000-000000000001')$$, 'CEV01', null, 'an unregistered function raises CEV01');

-- Spending admissions. B's own admission, used by B: once.
create temp table adm on commit drop as
select public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  '5b000000-0000-4000-8000-000000000001') ->> 'admission' as id;
grant select on adm to authenticated;
create function pg_temp.use_admission(id text) returns void language sql as $$
  select set_config('request.headers', jsonb_build_object('x-admission', id)::text, true)
$$;
create function pg_temp.order_b() returns jsonb language sql as $$
  select public.create_wholesale_order(tests.order_payload(
    client => '5b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001'))
$$;
grant execute on all functions in schema pg_temp to authenticated;

select tests.act_as('0b000000-0000-4000-8000-000000000001');
select pg_temp.use_admission('');
select throws_ok($$select pg_temp.order_b()$$, 'CEA03', null,
  'a business RPC without an admission is refused: call the function');
select pg_temp.use_admission('not-a-uuid');
select throws_ok($$select pg_temp.order_b()$$, 'CEA03', null, 'a malformed admission is refused');
select pg_temp.use_admission((select id from adm));
select lives_ok($$select pg_temp.order_b()$$, 'the admitted request runs');
select throws_ok($$select pg_temp.order_b()$$, 'CEA03', null, 'an admission is spent once');

-- An admission is for one user, one tenant and one function, and expires.
select tests.act_as_owner();
truncate adm;
insert into adm
select public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  '5b000000-0000-4000-8000-000000000001') ->> 'admission';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select pg_temp.use_admission((select id from adm));
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CEA03', null,
  'B''s admission does not admit A');
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select pg_temp.use_admission((select id from adm));
select throws_ok($$select public.create_purchase_order(tests.po_payload(supplier => '6b000000-0000-4000-8000-000000000001',
  product => '4b000000-0000-4000-8000-000000000001'))$$, 'CEA03', null,
  'an order''s admission does not admit a purchase order');
select tests.act_as_owner();
update private.admissions set expires_at = now() - interval '1 second' where id = (select id::uuid from adm);
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select pg_temp.use_admission((select id from adm));
select throws_ok($$select pg_temp.order_b()$$, 'CEA03', null, 'an expired admission is refused');

-- A failed request has paid at admission: the business RPC never touches
-- the bucket, so a failure cannot give the token back.
select tests.act_as_owner();
truncate adm;
insert into adm
select public.admit_request('create-wholesale-order', '0b000000-0000-4000-8000-000000000001',
  '5b000000-0000-4000-8000-000000000001') ->> 'admission';
create temp table after_admission on commit drop as
select tokens, updated_at from public.rate_limit_buckets
where tenant_id = '1b000000-0000-4000-8000-000000000001' and function_name = 'create-wholesale-order';
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select pg_temp.use_admission((select id from adm));
select throws_ok($$select public.create_wholesale_order(tests.order_payload(
    client => '5b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001',
    quantity => 1000))$$, 'CES01', null, 'the admitted request fails for stock');
select tests.act_as_owner();
select is((select (b.tokens, b.updated_at)::text from public.rate_limit_buckets b
  where b.tenant_id = '1b000000-0000-4000-8000-000000000001' and b.function_name = 'create-wholesale-order'),
  (select (tokens, updated_at)::text from after_admission), 'and its token stays taken');

-- Expired and spent admissions are purged.
select ok(public.purge_expired_admissions() >= 1, 'purge removes expired and spent admissions');
select is((select count(*) from private.admissions where expires_at < now() or uses_left = 0), 0::bigint,
  'none are left');


-- Grants on rate limits (anon has none anywhere: 02_grants).
reset role;
select table_privs_are('public', t, 'authenticated', privs,
  format('authenticated may %s on %s', array_to_string(privs, ', '), t))
from (values
  ('rate_limit_policies', array['SELECT']),
  ('rate_limit_buckets', array[]::text[])) v(t, privs);

select * from finish();
rollback;
