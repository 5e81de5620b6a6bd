-- private.raise_api_error: a feature's own error code, with no Rust change.
begin;
select no_plan();

select throws_ok($$select private.raise_api_error(409, 'RECALL_CLOSED', 'the recall is closed', '{"recall_id": "r1"}')$$,
  'CE409', 'the recall is closed', 'the status is in the SQLSTATE');
create temp table raised (hint text, detail text) on commit drop;
do $$
begin
  perform private.raise_api_error(404, 'NOT_FOUND', 'lot not found', '{"resource": "lot"}');
exception when sqlstate 'CE404' then
  declare h text; d text;
  begin
    get stacked diagnostics h = pg_exception_hint, d = pg_exception_detail;
    insert into raised values (h, d);
  end;
end
$$;
select is((select hint from raised), 'NOT_FOUND', 'the API code is in the hint');
select is((select detail::jsonb from raised), '{"resource": "lot"}'::jsonb, 'the details are in the detail');
select throws_ok($$select private.raise_api_error(418, 'TEAPOT', 'no')$$, 'P0001', null,
  'a status the API does not map is a bug, not a client error');
select throws_ok($$select private.raise_api_error(409, 'not a code', 'no')$$, 'P0001', null,
  'so is a code that is not UPPER_SNAKE_CASE');
select function_privs_are('private', 'raise_api_error', array['integer', 'text', 'text', 'jsonb'],
  'authenticated', array[]::text[], 'members cannot call it directly');

select * from finish();
rollback;
