-- Per-tenant rate limits: the token bucket, overrides, and the 429 it raises.
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

-- Tenant A gets 2 a minute; B keeps the default.
insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
values ('1a000000-0000-4000-8000-000000000001', 'create-wholesale-order', 2, 60);

select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'first request within the limit');
select lives_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'second request within the limit');
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CER29', 'too many requests; retry later',
  'the third request in the window raises CER29');
select tests.act_as_owner();
select is((select count(*) from public.wholesale_orders where tenant_id = '1a000000-0000-4000-8000-000000000001'),
  2::bigint, 'a refused request places no order');
select ok((select tokens from public.rate_limit_buckets where tenant_id = '1a000000-0000-4000-8000-000000000001') between 0 and 0.01,
  'a refused request takes no token');

-- The details say when to come back: one token takes 60/2 = 30 s.
select tests.act_as('0a000000-0000-4000-8000-000000000001');
create temp table refused (details jsonb) on commit drop;
grant all on refused to authenticated;
do $$
begin
  perform public.create_wholesale_order(tests.order_payload());
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
select tests.act_as('0b000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload(client => '5b000000-0000-4000-8000-000000000001', product => '4b000000-0000-4000-8000-000000000001'))$$,
  'another tenant keeps its own bucket');

-- The bucket refills with time: 30 s later one more request fits, and only one.
select tests.act_as_owner();
update public.rate_limit_buckets set updated_at = updated_at - interval '31 seconds'
where tenant_id = '1a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'after 31 s a token is back');
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CER29', null, 'and only one');

-- Idle for a long time, the bucket holds at most the limit.
select tests.act_as_owner();
update public.rate_limit_buckets set updated_at = updated_at - interval '1 day'
where tenant_id = '1a000000-0000-4000-8000-000000000001';
select tests.act_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'a burst after a long idle: 1');
select lives_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'a burst after a long idle: 2');
select throws_ok($$select public.create_wholesale_order(tests.order_payload())$$, 'CER29', null, 'but never more than the limit');

select * from finish();
rollback;
