-- Who a campaign goes to: the filter language over a whitelist of client
-- fields and facts, and enqueueing a campaign's recipients in one statement.
--
-- Re-runnable like every migration here.

-- Two client fields audiences filter on; members manage them like the others.
alter table public.wholesale_clients add column if not exists city text
  check (length(city) <= 100);
alter table public.wholesale_clients add column if not exists tags text[] not null default '{}'
  check (cardinality(tags) <= 50);
grant insert (city, tags), update (city, tags) on public.wholesale_clients to authenticated;

/*
 * private.try_date(value), private.try_uuid(value): value as a date or a uuid
 * when it is one, else
 * null (Postgres 15 has no pg_input_is_valid). Raises nothing.
 */
create or replace function private.try_date(value text)
returns date
language plpgsql
immutable
set search_path = ''
as $$
begin
  return value::date;
exception when others then
  return null;
end
$$;
create or replace function private.try_uuid(value text)
returns uuid
language plpgsql
immutable
set search_path = ''
as $$
begin
  return value::uuid;
exception when others then
  return null;
end
$$;
revoke all on function private.try_date(text) from public, anon, authenticated;
revoke all on function private.try_uuid(text) from public, anon, authenticated;

/*
 * private.audience_predicate(filter, path): compiles the filter language to a
 * SQL predicate over a client's fields and order facts (alias f: status,
 * city, tags, total_spent, order_count, last_order_date), and the
 * values it compares with, which the predicate reads as ($1 ->> n). Only
 * whitelisted field and operator fragments are SQL; no text of the filter
 * ever is. The language:
 *   {"all": [cond, …]} or {"any": [cond, …]}, nested at most 3 deep, at most
 *   50 conditions; cond is {"field", "op", "value"} or another all/any.
 *   status, city    eq, neq (text), in (array of text); city ignores case
 *   tags            contains (text), contains_any (array of text)
 *   total_spent     eq, neq, gt, gte, lt, lte (number)
 *   order_count     eq, neq, gt, gte, lt, lte (whole number)
 *   last_order_date before, after, on (YYYY-MM-DD); a client who never
 *                   ordered matches none of them
 *   product         bought (a product id): ever in an order not cancelled
 * An unknown field, operator or a bad value is CE400 VALIDATION_ERROR with
 * details keyed by the condition's path. Raises nothing else; locks nothing.
 */
create or replace function private.audience_predicate(filter jsonb, path text,
  inout args jsonb, depth integer, out predicate text)
language plpgsql
stable
set search_path = ''
as $$
declare
  joiner text;
  conds jsonb;
  cond jsonb;
  i integer := 0;
  parts text[] := '{}'::text[];
  sub text;
  field text;
  op text;
  v jsonb;
  n integer;
  bad text;
  text_ops constant jsonb := '{"eq": "=", "neq": "<>"}'::jsonb;
  num_ops constant jsonb := '{"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}'::jsonb;
  date_ops constant jsonb := '{"before": "<", "after": ">", "on": "="}'::jsonb;
begin
  if depth > 3 or jsonb_typeof(filter) <> 'object' then
    perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
      jsonb_build_object(path, 'must be {"all": [...]} or {"any": [...]}, at most 3 deep'));
  end if;
  if filter ? 'all' and not filter ? 'any' then joiner := ' and '; conds := filter -> 'all';
  elsif filter ? 'any' and not filter ? 'all' then joiner := ' or '; conds := filter -> 'any';
  else
    perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
      jsonb_build_object(path, 'must have exactly one of "all" or "any"'));
  end if;
  path := path || case when joiner = ' and ' then '.all' else '.any' end;
  if jsonb_typeof(conds) <> 'array' or jsonb_array_length(conds) not between 1 and 50 then
    perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
      jsonb_build_object(path, 'must be a list of 1 to 50 conditions'));
  end if;
  for cond in select e from jsonb_array_elements(conds) e loop
    sub := format('%s[%s]', path, i);
    i := i + 1;
    if jsonb_typeof(cond) = 'object' and (cond ? 'all' or cond ? 'any') then
      select a.args, a.predicate into args, predicate
      from private.audience_predicate(cond, sub, args, depth + 1) a;
      parts := parts || ('(' || predicate || ')');
      continue;
    end if;
    field := cond ->> 'field';
    op := cond ->> 'op';
    v := cond -> 'value';
    n := jsonb_array_length(args);
    bad := null;
    if jsonb_typeof(cond) <> 'object' then
      bad := 'must be {"field", "op", "value"}';
    elsif field in ('status', 'city') then
      if op in ('eq', 'neq') and jsonb_typeof(v) = 'string' then
        parts := parts || format(case when field = 'city' then 'lower(f.city) %s lower($1 ->> %s)'
                                      else 'f.status %s ($1 ->> %s)' end, text_ops ->> op, n);
      elsif op = 'in' and jsonb_typeof(v) = 'array' and jsonb_array_length(v) between 1 and 100
            and not exists (select 1 from jsonb_array_elements(v) x where jsonb_typeof(x) <> 'string') then
        parts := parts || format(case when field = 'city'
            then 'lower(f.city) in (select lower(x) from jsonb_array_elements_text($1 -> %s) x)'
            else 'f.status in (select x from jsonb_array_elements_text($1 -> %s) x)' end, n);
      else bad := 'takes eq or neq with a text, or in with a list of texts';
      end if;
    elsif field = 'tags' then
      if op = 'contains' and jsonb_typeof(v) = 'string' then
        parts := parts || format('($1 ->> %s) = any (f.tags)', n);
      elsif op = 'contains_any' and jsonb_typeof(v) = 'array' and jsonb_array_length(v) between 1 and 100
            and not exists (select 1 from jsonb_array_elements(v) x where jsonb_typeof(x) <> 'string') then
        parts := parts || format('f.tags && array(select jsonb_array_elements_text($1 -> %s))', n);
      else bad := 'takes contains with a text, or contains_any with a list of texts';
      end if;
    elsif field in ('total_spent', 'order_count') then
      if num_ops ? op and jsonb_typeof(v) = 'number'
         and (field = 'total_spent' or (v::text ~ '^-?[0-9]+$')) then
        parts := parts || format('f.%I %s ($1 ->> %s)::numeric', field, num_ops ->> op, n);
      else bad := format('takes %s with a %s', 'eq, neq, gt, gte, lt or lte',
                         case when field = 'order_count' then 'whole number' else 'number' end);
      end if;
    elsif field = 'last_order_date' then
      if date_ops ? op and jsonb_typeof(v) = 'string' and (v #>> '{}') ~ '^\d{4}-\d{2}-\d{2}$'
         and private.try_date(v #>> '{}') is not null then
        parts := parts || format('f.last_order_date %s ($1 ->> %s)::date', date_ops ->> op, n);
      else bad := 'takes before, after or on with a date (YYYY-MM-DD)';
      end if;
    elsif field = 'product' then
      if op = 'bought' and jsonb_typeof(v) = 'string' and private.try_uuid(v #>> '{}') is not null then
        parts := parts || format('exists (select 1 from public.wholesale_order_items it
            join public.wholesale_orders o on o.id = it.order_id
            where o.client_id = f.id and o.status <> %L and it.product_id = ($1 ->> %s)::uuid)', 'cancelled', n);
      else bad := 'takes bought with a product id';
      end if;
    else
      bad := 'unknown field; one of: status, city, tags, total_spent, order_count, last_order_date, product';
    end if;
    if bad is not null then
      perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
        jsonb_build_object(sub, bad));
    end if;
    args := args || jsonb_build_array(v);
  end loop;
  predicate := array_to_string(parts, joiner);
end
$$;
revoke all on function private.audience_predicate(jsonb, text, jsonb, integer) from public, anon, authenticated;

drop view if exists private.audience_facts;

/*
 * public.enqueue_campaign(campaign_id): puts a campaign's audience in its
 * queue, in one statement. audience.type all: the tenant's active clients;
 * segment: a saved segment's filter (404 segment when it is not the
 * tenant's); custom: audience.filters. Clients without an address for the
 * channel are left out; clients whose consent for the channel is
 * unsubscribed, bounced or complained are queued as suppressed and never
 * sent. A client already queued is left as it is (on conflict do nothing),
 * so enqueueing twice adds nothing. Sets the campaign's recipient_count (the
 * clients who will be sent to) and returns {"recipient_count", "suppressed",
 * "no_address", "added"}. Service role only. Locks the campaign row.
 */
create or replace function public.enqueue_campaign(campaign_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  c public.marketing_campaigns;
  filter jsonb;
  compiled record;
  counts jsonb;
  address text;
  facts text;
begin
  select * into c from public.marketing_campaigns m where m.id = enqueue_campaign.campaign_id for update;
  if not found then
    perform private.raise_api_error(404, 'NOT_FOUND', 'campaign not found',
      jsonb_build_object('resource', 'campaign', 'id', enqueue_campaign.campaign_id));
  end if;
  case c.audience ->> 'type'
    when 'all' then filter := '{"all": [{"field": "status", "op": "eq", "value": "active"}]}'::jsonb;
    when 'segment' then
      select s.filter into filter from public.customer_segments s
      where s.id = private.try_uuid(c.audience ->> 'segment_id')
        and s.tenant_id = c.tenant_id;
      if filter is null then
        perform private.raise_api_error(404, 'NOT_FOUND', 'segment not found',
          jsonb_build_object('resource', 'segment', 'id', c.audience -> 'segment_id'));
      end if;
    when 'custom' then filter := c.audience -> 'filters';
    else
      perform private.raise_api_error(400, 'VALIDATION_ERROR', 'the request has invalid fields',
        jsonb_build_object('audience.type', 'must be one of: all, segment, custom'));
  end case;
  select * into compiled from private.audience_predicate(filter, 'audience.filters', '[]'::jsonb, 1);
  address := case c.channel when 'sms' then 'f.phone' else 'f.email' end;
  -- The order facts only when the filter reads them, aggregated once for
  -- the tenant (a hash join, not a lookup per client).
  facts := case when compiled.predicate ~ 'f\.(total_spent|order_count|last_order_date)' then $f$
      (select c.id, c.tenant_id, c.status, c.city, c.tags, c.email, c.phone,
              coalesce(o.total_spent, 0) as total_spent, coalesce(o.order_count, 0) as order_count,
              o.last_order_date
       from public.wholesale_clients c
       left join (select w.client_id, sum(w.total_amount) as total_spent, count(*) as order_count,
                         max(w.created_at)::date as last_order_date
                  from public.wholesale_orders w
                  where w.tenant_id = $2 and w.status <> 'cancelled'
                  group by w.client_id) o on o.client_id = c.id
       where c.tenant_id = $2)$f$
    else '(select c.id, c.tenant_id, c.status, c.city, c.tags, c.email, c.phone
           from public.wholesale_clients c where c.tenant_id = $2)' end;
  execute format($q$
    with matched as (
      select f.id, nullif(btrim(%1$s), '') as address,
             coalesce(k.status, 'subscribed') <> 'subscribed' as suppressed
      from %3$s f
      left join public.contact_consent k on k.client_id = f.id and k.channel = $3
      where (%2$s)
    ), added as (
      insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status)
      select $2, $4, m.id, $3, m.address, case when m.suppressed then 'suppressed' else 'pending' end
      from matched m where m.address is not null
      on conflict (campaign_id, client_id, channel) do nothing
      returning 1
    )
    select jsonb_build_object(
      'added', (select count(*) from added),
      'no_address', (select count(*) from matched where address is null),
      'suppressed', (select count(*) from matched where address is not null and suppressed))
    $q$, address, compiled.predicate, facts)
  into counts
  using compiled.args, c.tenant_id, c.channel, c.id;
  update public.marketing_campaigns m
  set recipient_count = (select count(*) from public.campaign_recipients r
                         where r.campaign_id = c.id and r.status <> 'suppressed')
  where m.id = c.id
  returning jsonb_build_object('recipient_count', m.recipient_count) || counts into counts;
  return counts;
end
$$;
revoke all on function public.enqueue_campaign(uuid) from public, anon, authenticated;
grant execute on function public.enqueue_campaign(uuid) to service_role;
