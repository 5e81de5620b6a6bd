-- Grants: revoked by default (Supabase grants everything in public to the API
-- roles), then given explicitly.
begin;
select no_plan();

-- Grants are asserted where each feature is tested (its own file); here, what
-- holds for every table and function, derived from the catalogue, so a new
-- one is covered without editing a list.
select is(
  array(select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
          and has_table_privilege('anon', c.oid,
            'select, insert, update, delete, truncate, references, trigger')
        order by 1),
  array[]::text[], 'anon has no privilege on any public table or view');
select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'public' and has_function_privilege('anon', p.oid, 'execute')
        order by 1),
  array[]::text[], 'anon can execute no public function');
select is(
  array(select c.relname::text from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity
        order by 1),
  array[]::text[], 'every public table has row level security enabled');

-- Nothing in private is callable by the API roles except the helpers RLS policies call.
select is(
  array(select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'private' and has_function_privilege('authenticated', p.oid, 'execute')
        order by 1),
  array['current_tenant_ids', 'is_member', 'object_tenant', 'tenant_ids_with_role'],
  'authenticated can execute only the helpers RLS policies call');
select is(
  array(select p.proname::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = 'private' and has_function_privilege('anon', p.oid, 'execute')),
  array[]::text[], 'anon can execute nothing in private');

-- Security definer functions pin their search path.
select is(
  array(select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname in ('public', 'private') and p.prosecdef
          and not coalesce('search_path=""' = any (p.proconfig), false)),
  array[]::text[], 'every security definer function sets search_path to empty');

select * from finish();
rollback;
