-- Commerce data synced from a store platform (seed 002: Products, Orders,
-- Abandoned Carts, Integrations, Dashboard analytics), and the state the
-- Shopify functions keep: OAuth states, sync jobs, received webhooks.
--
-- Mapping from seed 002:
-- - `organization_id` is our `tenant_id`. Every commerce table also has
--   `organization_id`, a stored column generated from tenant_id, so the seed's
--   queries (`.eq('organization_id', orgId)`) work as written.
-- - `customer_id` points at `commerce_customers`, which the seed names but
--   never defines (defined here).
-- - Added: `external_*` ids (unique per tenant and integration), `synced_at`,
--   `deleted_at` (soft delete: members never see deleted rows), and
--   `external_updated_at` (the platform's own updated_at: an older version of
--   a record never overwrites a newer one, whichever arrives last).
-- - Members read; nothing is written but by the sync and the webhooks (the
--   service role, through the functions below). The token column is readable
--   by the service role only (column privileges), so the seed's
--   `select('*')` on commerce_integrations must name its columns
--   (`INTEGRATION_COLUMNS` in the functions' README): Postgres refuses `*`
--   over a column the role may not read.
--
-- Money columns are `numeric` without a scale: amounts keep the precision the
-- store sent ("4999.00", or three decimals for KWD and BHD).
--
-- Re-runnable like every migration here.

do $$
begin
  if to_regtype('public.commerce_source') is null then
    create type public.commerce_source as enum ('shopify', 'woocommerce', 'custom_webhook');
  end if;
  if to_regtype('public.integration_status') is null then
    create type public.integration_status as enum ('connected', 'disconnected', 'error', 'pending');
  end if;
  if to_regtype('public.webhook_status') is null then
    create type public.webhook_status as enum ('active', 'failed', 'pending');
  end if;
  if to_regtype('public.product_status') is null then
    create type public.product_status as enum ('active', 'draft', 'archived', 'unlisted');
  end if;
  if to_regtype('public.payment_type') is null then
    create type public.payment_type as enum ('cod', 'prepaid', 'unknown');
  end if;
  if to_regtype('public.trigger_ready_status') is null then
    create type public.trigger_ready_status as enum ('ready', 'missing_phone', 'not_applicable');
  end if;
  if to_regtype('public.order_financial_status') is null then
    create type public.order_financial_status as enum (
      'pending', 'paid', 'refunded', 'partially_refunded', 'voided');
  end if;
  if to_regtype('public.order_fulfillment_status') is null then
    create type public.order_fulfillment_status as enum ('unfulfilled', 'partial', 'fulfilled', 'restocked');
  end if;
  if to_regtype('public.cart_status') is null then
    create type public.cart_status as enum ('abandoned', 'recovered', 'expired');
  end if;
end
$$;

-- Shopify's UNLISTED (API 2025-10 on): active, but not in search or collections.
alter type public.product_status add value if not exists 'unlisted';

create extension if not exists pg_trgm with schema extensions;

/*
 * One connected store. status: connected | disconnected | error | pending.
 * auth_mode: 'oauth' (a public app installed by the merchant) or
 * 'custom_app' (the platform's own Admin API token, SHOPIFY_ADMIN_ACCESS_TOKEN).
 * access_token_encrypted: `v1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`,
 * AES-256-GCM in the function (the vault crate), bound to the integration's
 * tenant and shop; null once disconnected.
 * sync_state: per resource, the platform's updated_at up to which everything
 * is synced (the next incremental sync asks for changes since then).
 */
create table if not exists public.commerce_integrations (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  source public.commerce_source not null default 'shopify',
  status public.integration_status not null default 'pending',
  store_name text,
  store_domain text not null check (store_domain ~ '^[a-z0-9][a-z0-9-]*\.myshopify\.com$'),
  external_store_id text,
  access_token_encrypted text,
  auth_mode text not null default 'oauth' check (auth_mode in ('oauth', 'custom_app')),
  scopes text[] not null default '{}',
  webhook_status public.webhook_status not null default 'pending',
  webhook_subscriptions jsonb not null default '[]'::jsonb,
  settings jsonb not null default '{}'::jsonb,
  sync_state jsonb not null default '{}'::jsonb,
  last_sync_at timestamptz,
  last_products_sync_at timestamptz,
  last_orders_sync_at timestamptz,
  last_customers_sync_at timestamptz,
  last_abandoned_checkouts_sync_at timestamptz,
  connected_by uuid references auth.users (id) on delete set null,
  connected_at timestamptz,
  disconnected_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, source, store_domain),
  unique (id, tenant_id)
);
-- A store is connected to one tenant at a time: its webhooks name the store,
-- and must reach exactly one integration.
create unique index if not exists commerce_integrations_one_live_store
  on public.commerce_integrations (source, store_domain) where status <> 'disconnected';
create index if not exists commerce_integrations_list_idx
  on public.commerce_integrations (organization_id, created_at desc);

/* Customers (seed 002's commerce_customers, which it references but does not define). */
create table if not exists public.commerce_customers (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  source public.commerce_source not null default 'shopify',
  external_customer_id text not null,
  first_name text,
  last_name text,
  name text,
  email text,
  phone text,
  tags jsonb not null default '[]'::jsonb,
  orders_count integer,
  total_spent numeric,
  currency text,
  external_created_at timestamptz,
  external_updated_at timestamptz,
  last_seen_job uuid,
  redacted_at timestamptz,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_customer_id),
  unique (id, tenant_id),
  foreign key (integration_id, tenant_id) references public.commerce_integrations (id, tenant_id) on delete cascade
);
create index if not exists commerce_customers_list_idx
  on public.commerce_customers (organization_id, updated_at desc);

create table if not exists public.commerce_products (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  external_product_id text not null,
  source public.commerce_source not null default 'shopify',
  title text not null,
  description text,
  vendor text,
  product_type text,
  status public.product_status not null default 'active',
  images jsonb not null default '[]'::jsonb,
  tags jsonb not null default '[]'::jsonb,
  external_created_at timestamptz,
  external_updated_at timestamptz,
  last_seen_job uuid,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_product_id),
  unique (id, tenant_id),
  foreign key (integration_id, tenant_id) references public.commerce_integrations (id, tenant_id) on delete cascade
);
-- GET /products: newest first, by status and product_type, title search.
create index if not exists commerce_products_list_idx
  on public.commerce_products (organization_id, updated_at desc);
create index if not exists commerce_products_status_idx
  on public.commerce_products (organization_id, status, updated_at desc);
create index if not exists commerce_products_type_idx
  on public.commerce_products (organization_id, product_type, updated_at desc);
create index if not exists commerce_products_title_trgm
  on public.commerce_products using gin (title extensions.gin_trgm_ops);

create table if not exists public.commerce_product_variants (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  product_id uuid not null,
  external_variant_id text not null,
  title text,
  sku text,
  price numeric,
  compare_at_price numeric,
  inventory_quantity integer,
  requires_shipping boolean,
  weight numeric(12, 3),
  weight_unit text,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_variant_id),
  unique (id, tenant_id),
  foreign key (product_id, tenant_id) references public.commerce_products (id, tenant_id) on delete cascade
);
create index if not exists commerce_product_variants_product_idx on public.commerce_product_variants (product_id);

/*
 * trigger_ready (seed 002): an order paid cash on delivery is 'ready' for a
 * confirmation call when it has a phone, else 'missing_phone'; any other
 * order is 'not_applicable'. Generated, so it is never stale.
 */
create table if not exists public.commerce_orders (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  external_order_id text not null,
  order_number text,
  source public.commerce_source not null default 'shopify',
  customer_id uuid,
  customer_name text,
  customer_email text,
  customer_phone text,
  total_amount numeric not null default 0,
  subtotal numeric,
  total_tax numeric,
  total_discounts numeric,
  currency text,
  payment_type public.payment_type not null default 'unknown',
  financial_status public.order_financial_status,
  fulfillment_status public.order_fulfillment_status,
  trigger_ready public.trigger_ready_status generated always as (
    case when payment_type = 'cod'
      then case when coalesce(btrim(customer_phone), '') = '' then 'missing_phone'::public.trigger_ready_status
                else 'ready'::public.trigger_ready_status end
      else 'not_applicable'::public.trigger_ready_status end) stored,
  shipping_address jsonb,
  billing_address jsonb,
  notes text,
  tags jsonb not null default '[]'::jsonb,
  order_created_at timestamptz,
  external_updated_at timestamptz,
  last_seen_job uuid,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_order_id),
  unique (id, tenant_id),
  foreign key (integration_id, tenant_id) references public.commerce_integrations (id, tenant_id) on delete cascade,
  foreign key (customer_id, tenant_id) references public.commerce_customers (id, tenant_id) on delete set null (customer_id)
);
-- GET /orders: newest first, by payment type, readiness, statuses, dates, search.
create index if not exists commerce_orders_list_idx
  on public.commerce_orders (organization_id, order_created_at desc);
create index if not exists commerce_orders_trigger_idx
  on public.commerce_orders (organization_id, payment_type, trigger_ready, order_created_at desc);
create index if not exists commerce_orders_financial_idx
  on public.commerce_orders (organization_id, financial_status, order_created_at desc);
create index if not exists commerce_orders_fulfillment_idx
  on public.commerce_orders (organization_id, fulfillment_status, order_created_at desc);
create index if not exists commerce_orders_customer_idx on public.commerce_orders (customer_id);
create index if not exists commerce_orders_number_trgm
  on public.commerce_orders using gin ((coalesce(order_number, '') || ' ' || coalesce(customer_name, ''))
    extensions.gin_trgm_ops);

create table if not exists public.commerce_order_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  order_id uuid not null,
  external_line_item_id text not null,
  product_id uuid,
  variant_id uuid,
  external_product_id text,
  external_variant_id text,
  title text,
  variant_title text,
  sku text,
  quantity integer not null default 0,
  price numeric,
  total numeric,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_line_item_id),
  foreign key (order_id, tenant_id) references public.commerce_orders (id, tenant_id) on delete cascade,
  foreign key (product_id, tenant_id) references public.commerce_products (id, tenant_id) on delete set null (product_id),
  foreign key (variant_id, tenant_id) references public.commerce_product_variants (id, tenant_id) on delete set null (variant_id)
);
create index if not exists commerce_order_items_order_idx on public.commerce_order_items (order_id);
create index if not exists commerce_order_items_product_idx on public.commerce_order_items (product_id);
create index if not exists commerce_order_items_variant_idx on public.commerce_order_items (variant_id);

/*
 * trigger_ready for a cart: an abandoned cart is 'ready' for a recovery call
 * when it has a phone, else 'missing_phone'; a recovered or expired cart is
 * 'not_applicable'.
 */
create table if not exists public.commerce_abandoned_carts (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  external_cart_id text not null,
  source public.commerce_source not null default 'shopify',
  customer_id uuid,
  customer_name text,
  customer_email text,
  customer_phone text,
  total_value numeric not null default 0,
  currency text,
  items_count integer not null default 0,
  status public.cart_status not null default 'abandoned',
  trigger_ready public.trigger_ready_status generated always as (
    case when status = 'abandoned'
      then case when coalesce(btrim(customer_phone), '') = '' then 'missing_phone'::public.trigger_ready_status
                else 'ready'::public.trigger_ready_status end
      else 'not_applicable'::public.trigger_ready_status end) stored,
  recovery_url text,
  abandoned_at timestamptz,
  recovered_at timestamptz,
  external_updated_at timestamptz,
  last_seen_job uuid,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (tenant_id, integration_id, external_cart_id),
  unique (id, tenant_id),
  foreign key (integration_id, tenant_id) references public.commerce_integrations (id, tenant_id) on delete cascade,
  foreign key (customer_id, tenant_id) references public.commerce_customers (id, tenant_id) on delete set null (customer_id)
);
create index if not exists commerce_carts_list_idx
  on public.commerce_abandoned_carts (organization_id, abandoned_at desc);
create index if not exists commerce_carts_status_idx
  on public.commerce_abandoned_carts (organization_id, status, trigger_ready, abandoned_at desc);
create index if not exists commerce_carts_customer_idx on public.commerce_abandoned_carts (customer_id);

create table if not exists public.commerce_cart_items (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  organization_id uuid generated always as (tenant_id) stored,
  integration_id uuid not null,
  cart_id uuid not null,
  external_line_item_id text not null,
  product_id uuid,
  variant_id uuid,
  external_product_id text,
  external_variant_id text,
  title text,
  variant_title text,
  quantity integer not null default 0,
  price numeric,
  total numeric,
  image_url text,
  synced_at timestamptz not null default now(),
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  -- A checkout webhook names its items by a key unique within the checkout only.
  unique (cart_id, external_line_item_id),
  foreign key (cart_id, tenant_id) references public.commerce_abandoned_carts (id, tenant_id) on delete cascade,
  foreign key (product_id, tenant_id) references public.commerce_products (id, tenant_id) on delete set null (product_id),
  foreign key (variant_id, tenant_id) references public.commerce_product_variants (id, tenant_id) on delete set null (variant_id)
);
create index if not exists commerce_cart_items_cart_idx on public.commerce_cart_items (cart_id);
create index if not exists commerce_cart_items_product_idx on public.commerce_cart_items (product_id);
create index if not exists commerce_cart_items_variant_idx on public.commerce_cart_items (variant_id);

/*
 * OAuth states: made by `begin_shopify_oauth` for a member and a tenant,
 * single-use, valid 10 minutes. Only the service role touches them.
 */
create table if not exists private.commerce_oauth_states (
  state text primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null,
  shop text not null,
  created_at timestamptz not null default now(),
  expires_at timestamptz not null default now() + interval '10 minutes',
  used_at timestamptz
);

/*
 * A sync: one row per run, with a checkpoint per resource, so an invocation
 * killed anywhere is resumed by the next from where the last committed page
 * left it. status: queued | running | completed | failed.
 * checkpoints: {"<resource>": {"mode": "bulk"|"incremental", "since",
 * "cursor", "bulk_id", "bulk_url", "line", "high_water", "done", "pages",
 * "records"}}.
 * The lease (lease_owner, lease_until) is held by the invocation working on
 * the job; one whose lease ran out is resumed by the pg_cron job below.
 */
create table if not exists public.commerce_sync_jobs (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  integration_id uuid not null,
  status text not null default 'queued' check (status in ('queued', 'running', 'completed', 'failed')),
  resources text[] not null,
  full_sync boolean not null default false,
  checkpoints jsonb not null default '{}'::jsonb,
  counts jsonb not null default '{}'::jsonb,
  requested_by uuid references auth.users (id) on delete set null,
  lease_owner uuid,
  lease_until timestamptz,
  invocations integer not null default 0,
  throttled integer not null default 0,
  -- invocations in a row that stopped on an error; at 10 the job fails
  failures integer not null default 0,
  error text,
  created_at timestamptz not null default now(),
  started_at timestamptz,
  finished_at timestamptz,
  updated_at timestamptz not null default now(),
  foreign key (integration_id, tenant_id) references public.commerce_integrations (id, tenant_id) on delete cascade
);
create unique index if not exists commerce_sync_jobs_one_live
  on public.commerce_sync_jobs (integration_id) where status in ('queued', 'running');
create index if not exists commerce_sync_jobs_integration_idx
  on public.commerce_sync_jobs (integration_id, created_at desc);

/*
 * Webhooks received, once per (shop, X-Shopify-Webhook-Id). The function
 * records the event with the rows it maps to and answers; the rows are
 * applied right after (and by the pg_cron job below, for any left).
 * status: queued | processed | ignored | failed.
 */
create table if not exists public.commerce_webhook_events (
  id uuid primary key default gen_random_uuid(),
  tenant_id uuid references public.tenants (id) on delete cascade,
  integration_id uuid,
  shop text not null,
  webhook_id text not null,
  topic text not null,
  status text not null default 'queued' check (status in ('queued', 'processed', 'ignored', 'failed')),
  work jsonb not null default '{}'::jsonb,
  attempts integer not null default 0,
  error text,
  received_at timestamptz not null default now(),
  processed_at timestamptz,
  unique (shop, webhook_id)
);
create index if not exists commerce_webhook_events_queued_idx
  on public.commerce_webhook_events (received_at) where status = 'queued';

-- Privileges: members read (RLS: their tenant, not soft-deleted); writes go
-- through the functions below with the service role.
revoke all on public.commerce_integrations, public.commerce_customers, public.commerce_products,
  public.commerce_product_variants, public.commerce_orders, public.commerce_order_items,
  public.commerce_abandoned_carts, public.commerce_cart_items, public.commerce_sync_jobs,
  public.commerce_webhook_events from anon, authenticated;
revoke all on private.commerce_oauth_states from public, anon, authenticated;
grant all on public.commerce_integrations, public.commerce_customers, public.commerce_products,
  public.commerce_product_variants, public.commerce_orders, public.commerce_order_items,
  public.commerce_abandoned_carts, public.commerce_cart_items, public.commerce_sync_jobs,
  public.commerce_webhook_events to service_role;
grant all on private.commerce_oauth_states to service_role;
grant select on public.commerce_customers, public.commerce_products, public.commerce_product_variants,
  public.commerce_orders, public.commerce_order_items, public.commerce_abandoned_carts,
  public.commerce_cart_items, public.commerce_sync_jobs to authenticated;
-- Every column of the integration but the token.
do $$
declare
  cols text;
begin
  select string_agg(quote_ident(attname), ', ' order by attnum) into cols
  from pg_attribute
  where attrelid = 'public.commerce_integrations'::regclass and attnum > 0 and not attisdropped
    and attname <> 'access_token_encrypted';
  execute format('grant select (%s) on public.commerce_integrations to authenticated', cols);
end
$$;

do $$
declare
  t text;
  policy text;
begin
  foreach t in array array['commerce_integrations', 'commerce_customers', 'commerce_products',
    'commerce_product_variants', 'commerce_orders', 'commerce_order_items', 'commerce_abandoned_carts',
    'commerce_cart_items', 'commerce_sync_jobs', 'commerce_webhook_events'] loop
    execute format('alter table public.%I enable row level security', t);
    policy := format('Members can read their tenant''s %s', replace(t, '_', ' '));
    execute format('drop policy if exists %I on public.%I', policy, t);
    if t in ('commerce_integrations', 'commerce_sync_jobs', 'commerce_webhook_events') then
      execute format('create policy %I on public.%I for select to authenticated
                      using (tenant_id in (select private.current_tenant_ids()))', policy, t);
    else
      execute format('create policy %I on public.%I for select to authenticated
                      using (tenant_id in (select private.current_tenant_ids()) and deleted_at is null)', policy, t);
    end if;
    execute format('create index if not exists %I on public.%I (tenant_id)', t || '_tenant_id_idx', t);
  end loop;
end
$$;

-- The functions' subjects (admission and rate limit): the integration.
insert into private.request_subjects (function_name, subject_table, resource)
values ('sync-platform', 'public.commerce_integrations', 'integration'),
       ('disconnect-platform', 'public.commerce_integrations', 'integration')
on conflict (function_name) do update
set subject_table = excluded.subject_table, resource = excluded.resource;

/* The integration's tenant, for a member (404 otherwise). */
create or replace function private.member_integration(integration uuid, min_role text)
returns public.commerce_integrations
language plpgsql
security definer
set search_path = ''
as $$
declare
  found_row public.commerce_integrations%rowtype;
begin
  select * into found_row from public.commerce_integrations i where i.id = integration;
  if not found or not private.is_member(found_row.tenant_id) then
    perform private.raise_error('CEN04', 'integration not found',
      jsonb_build_object('resource', 'integration', 'id', integration));
  end if;
  perform private.require_role(found_row.tenant_id, min_role);
  return found_row;
end
$$;
-- Called only inside the security definer functions below.
revoke all on function private.member_integration(uuid, text) from public, anon, authenticated, service_role;

/*
 * public.begin_shopify_oauth(shop, tenant_id): step 1 of connecting a store,
 * as the caller (an admin of the tenant). Stores a state bound to the caller
 * and the tenant, single-use, valid 10 minutes, and returns it:
 * {"state", "tenant_id", "expires_at"}.
 * Raises CEA01, CEV01 (shop), CEA03 (not an admin), CE409 STORE_CONNECTED
 * (the store is connected to a tenant already).
 */
create or replace function public.begin_shopify_oauth(shop text, tenant_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  caller uuid := auth.uid();
  made text := replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '');
begin
  if caller is null then
    perform private.raise_error('CEA01', 'sign in first');
  end if;
  if shop is null or shop !~ '^[a-z0-9][a-z0-9-]*\.myshopify\.com$' then
    perform private.raise_error('CEV01', 'the request has invalid fields',
      '{"shop": "must be a store domain such as my-store.myshopify.com"}');
  end if;
  if not private.is_member(begin_shopify_oauth.tenant_id) then
    perform private.raise_error('CEN04', 'tenant not found',
      jsonb_build_object('resource', 'tenant', 'id', begin_shopify_oauth.tenant_id));
  end if;
  perform private.require_role(begin_shopify_oauth.tenant_id, 'admin');
  if exists (select 1 from public.commerce_integrations i
             where i.source = 'shopify' and i.store_domain = shop and i.status <> 'disconnected'
               and i.tenant_id <> begin_shopify_oauth.tenant_id) then
    perform private.raise_api_error(409, 'STORE_CONNECTED',
      'this store is connected to another account; disconnect it there first', '{}'::jsonb);
  end if;
  delete from private.commerce_oauth_states s where s.expires_at < now() - interval '1 day';
  insert into private.commerce_oauth_states (state, tenant_id, user_id, shop)
  values (made, begin_shopify_oauth.tenant_id, caller, shop);
  return jsonb_build_object('state', made, 'tenant_id', begin_shopify_oauth.tenant_id,
    'expires_at', now() + interval '10 minutes');
end
$$;
revoke all on function public.begin_shopify_oauth(text, uuid) from public, anon;
grant execute on function public.begin_shopify_oauth(text, uuid) to authenticated;

/*
 * public.take_shopify_oauth_state(state, shop): the callback's check, with
 * the service role. Uses the state up (once, atomically) and returns
 * {"tenant_id", "user_id"}, or {"error": "state_unknown" | "state_used" |
 * "state_expired" | "shop_mismatch"}.
 */
create or replace function public.take_shopify_oauth_state(state text, shop text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  s private.commerce_oauth_states%rowtype;
begin
  update private.commerce_oauth_states o set used_at = now()
  where o.state = take_shopify_oauth_state.state and o.used_at is null
  returning * into s;
  if not found then
    select * into s from private.commerce_oauth_states o where o.state = take_shopify_oauth_state.state;
    return jsonb_build_object('error', case when found then 'state_used' else 'state_unknown' end);
  end if;
  if s.expires_at < now() then
    return '{"error": "state_expired"}'::jsonb;
  end if;
  if s.shop <> take_shopify_oauth_state.shop then
    return '{"error": "shop_mismatch"}'::jsonb;
  end if;
  return jsonb_build_object('tenant_id', s.tenant_id, 'user_id', s.user_id);
end
$$;
revoke all on function public.take_shopify_oauth_state(text, text) from public, anon, authenticated;
grant execute on function public.take_shopify_oauth_state(text, text) to service_role;

/*
 * public.save_shopify_connection(tenant_id, user_id, shop, payload): the
 * callback's last step, with the service role: the integration, connected
 * (a new row, or the tenant's earlier one for this store reconnected),
 * and an audit entry. payload: {store_name, external_store_id, token
 * (sealed), scopes, auth_mode, webhook_status, webhook_subscriptions}.
 * Returns the integration's id. Raises CE409 STORE_CONNECTED when another
 * tenant connected the store meanwhile.
 */
create or replace function public.save_shopify_connection(tenant_id uuid, user_id uuid, shop text, payload jsonb)
returns uuid
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  saved uuid;
begin
  if exists (select 1 from public.commerce_integrations i
             where i.source = 'shopify' and i.store_domain = shop and i.status <> 'disconnected'
               and i.tenant_id <> save_shopify_connection.tenant_id) then
    perform private.raise_api_error(409, 'STORE_CONNECTED',
      'this store is connected to another account; disconnect it there first', '{}'::jsonb);
  end if;
  insert into public.commerce_integrations as i (tenant_id, source, status, store_name, store_domain,
    external_store_id, access_token_encrypted, auth_mode, scopes, webhook_status, webhook_subscriptions,
    connected_by, connected_at, disconnected_at)
  values (save_shopify_connection.tenant_id, 'shopify', 'connected', payload ->> 'store_name', shop,
    payload ->> 'external_store_id', payload ->> 'token', coalesce(payload ->> 'auth_mode', 'oauth'),
    coalesce(array(select jsonb_array_elements_text(payload -> 'scopes')), '{}'),
    coalesce(payload ->> 'webhook_status', 'pending')::public.webhook_status,
    coalesce(payload -> 'webhook_subscriptions', '[]'), user_id, now(), null)
  on conflict (tenant_id, source, store_domain) do update
  set status = 'connected', store_name = excluded.store_name, external_store_id = excluded.external_store_id,
      access_token_encrypted = excluded.access_token_encrypted, auth_mode = excluded.auth_mode,
      scopes = excluded.scopes, webhook_status = excluded.webhook_status,
      webhook_subscriptions = excluded.webhook_subscriptions, connected_by = excluded.connected_by,
      connected_at = now(), disconnected_at = null, updated_at = now()
  returning i.id into saved;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (save_shopify_connection.tenant_id, user_id, 'integration.connected', 'commerce_integration', saved,
    jsonb_build_object('store_domain', shop, 'auth_mode', coalesce(payload ->> 'auth_mode', 'oauth'),
      'scopes', payload -> 'scopes', 'webhook_status', payload ->> 'webhook_status'));
  return saved;
end
$$;
revoke all on function public.save_shopify_connection(uuid, uuid, text, jsonb) from public, anon, authenticated;
grant execute on function public.save_shopify_connection(uuid, uuid, text, jsonb) to service_role;

/*
 * public.integration_credentials(integration_id): the sealed token and what a
 * provider call needs, for the service role only.
 */
create or replace function public.integration_credentials(integration_id uuid)
returns jsonb
language sql
stable
security definer
set search_path = ''
as $$
  select jsonb_build_object('id', i.id, 'tenant_id', i.tenant_id, 'status', i.status,
    'store_domain', i.store_domain, 'token', i.access_token_encrypted, 'auth_mode', i.auth_mode,
    'scopes', i.scopes, 'sync_state', i.sync_state, 'webhook_subscriptions', i.webhook_subscriptions)
  from public.commerce_integrations i where i.id = integration_credentials.integration_id
$$;
revoke all on function public.integration_credentials(uuid) from public, anon, authenticated;
grant execute on function public.integration_credentials(uuid) to service_role;

-- ---------------------------------------------------------------------------
-- Applying records. Each takes records as the functions map them from the
-- platform (GraphQL nodes or webhook payloads), in one statement per table.
-- A record older than the stored one (external_updated_at) changes nothing.
-- Children (variants, order items, cart items) are reconciled: the parent's
-- list is the truth, so a child no longer in it is deleted.
-- ---------------------------------------------------------------------------

create or replace function private.apply_commerce_customers(integration public.commerce_integrations, rows jsonb, job uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  insert into public.commerce_customers as c (tenant_id, integration_id, external_customer_id, first_name,
    last_name, name, email, phone, tags, orders_count, total_spent, currency, external_created_at,
    external_updated_at, last_seen_job, synced_at, deleted_at)
  select integration.tenant_id, integration.id, r.external_id, r.first_name, r.last_name,
    nullif(btrim(concat_ws(' ', r.first_name, r.last_name)), ''), r.email, r.phone,
    coalesce(r.tags, '[]'), r.orders_count, r.total_spent, r.currency, r.external_created_at,
    r.external_updated_at, job, now(), null
  from (select distinct on (x.external_id) x.* from jsonb_to_recordset(rows) as x (external_id text,
          first_name text, last_name text, email text, phone text, tags jsonb, orders_count integer,
          total_spent numeric, currency text, external_created_at timestamptz, external_updated_at timestamptz)
        order by x.external_id, x.external_updated_at desc nulls last) r
  on conflict (tenant_id, integration_id, external_customer_id) do update
  set first_name = excluded.first_name, last_name = excluded.last_name, name = excluded.name,
      email = excluded.email, phone = excluded.phone, tags = excluded.tags,
      orders_count = excluded.orders_count, total_spent = excluded.total_spent, currency = excluded.currency,
      external_created_at = excluded.external_created_at, external_updated_at = excluded.external_updated_at,
      last_seen_job = coalesce(excluded.last_seen_job, c.last_seen_job), synced_at = now(), deleted_at = null,
      updated_at = now()
  where c.redacted_at is null
    and (c.external_updated_at is null or excluded.external_updated_at is null
         or excluded.external_updated_at >= c.external_updated_at);
  get diagnostics n = row_count;
  return n;
end
$$;
revoke all on function private.apply_commerce_customers(public.commerce_integrations, jsonb, uuid) from public;

create or replace function private.apply_commerce_products(integration public.commerce_integrations, rows jsonb, job uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  -- One statement: the products, then their variants (a variant no longer
  -- in any listed product's variants is deleted; the lists are the truth).
  with r as (
    select distinct on (x.external_id) x.*
    from jsonb_to_recordset(rows) as x (external_id text, title text, description text, vendor text,
      product_type text, status text, images jsonb, tags jsonb, external_created_at timestamptz,
      external_updated_at timestamptz, variants jsonb)
    order by x.external_id, x.external_updated_at desc nulls last
  ), up as (
    insert into public.commerce_products as p (tenant_id, integration_id, external_product_id, title,
      description, vendor, product_type, status, images, tags, external_created_at, external_updated_at,
      last_seen_job, synced_at, deleted_at)
    select integration.tenant_id, integration.id, r.external_id, coalesce(r.title, ''), r.description, r.vendor,
      r.product_type,
      -- A status this schema does not know (a newer API's) is not shown as active.
      case when lower(r.status) = any (enum_range(null::public.product_status)::text[])
           then lower(r.status) else 'draft' end::public.product_status,
      coalesce(r.images, '[]'),
      coalesce(r.tags, '[]'), r.external_created_at, r.external_updated_at, job, now(), null
    from r
    on conflict (tenant_id, integration_id, external_product_id) do update
    set title = excluded.title, description = excluded.description, vendor = excluded.vendor,
        product_type = excluded.product_type, status = excluded.status, images = excluded.images,
        tags = excluded.tags, external_created_at = excluded.external_created_at,
        external_updated_at = excluded.external_updated_at,
        -- a webhook (no job) leaves the sync's mark as it is
        last_seen_job = coalesce(excluded.last_seen_job, p.last_seen_job),
        synced_at = now(), deleted_at = null, updated_at = now()
    where (p.external_updated_at is null or excluded.external_updated_at is null
           or excluded.external_updated_at >= p.external_updated_at)
      -- a product deleted at the store stays deleted, unless a later version of it arrives
      and (p.deleted_at is null or excluded.external_updated_at > p.deleted_at)
    returning p.external_product_id, p.id
  ), written as (
    select up.id as product_id, r.variants from r join up on up.external_product_id = r.external_id
  ), kids as (
    select distinct on (x.external_id) w.product_id, x.*
    from written w, jsonb_to_recordset(coalesce(w.variants, '[]')) as x (external_id text, title text, sku text,
      price numeric, compare_at_price numeric, inventory_quantity integer, requires_shipping boolean,
      weight numeric, weight_unit text)
    order by x.external_id
  ), gone as (
    delete from public.commerce_product_variants v
    using written w
    where v.product_id = w.product_id and w.variants is not null
      and not exists (select 1 from kids k where k.external_id = v.external_variant_id)
    returning 1
  ), kept as (
    insert into public.commerce_product_variants as v (tenant_id, integration_id, product_id, external_variant_id,
      title, sku, price, compare_at_price, inventory_quantity, requires_shipping, weight, weight_unit, synced_at)
    select integration.tenant_id, integration.id, k.product_id, k.external_id, k.title, k.sku, k.price,
      k.compare_at_price, k.inventory_quantity, k.requires_shipping, k.weight, k.weight_unit, now()
    from kids k
    on conflict (tenant_id, integration_id, external_variant_id) do update
    set product_id = excluded.product_id, title = excluded.title, sku = excluded.sku, price = excluded.price,
        compare_at_price = excluded.compare_at_price, inventory_quantity = excluded.inventory_quantity,
        requires_shipping = excluded.requires_shipping, weight = excluded.weight,
        weight_unit = excluded.weight_unit, synced_at = now(), deleted_at = null, updated_at = now()
    returning 1
  )
  -- (gone and kept run to completion whether or not they are read.)
  select count(*) into n from written;
  return n;
end
$$;
revoke all on function private.apply_commerce_products(public.commerce_integrations, jsonb, uuid) from public;

/* Customers named by orders and carts that the customer sync has not brought yet. */
create or replace function private.ensure_commerce_customers(integration public.commerce_integrations, rows jsonb)
returns void
language sql
set search_path = ''
as $$
  insert into public.commerce_customers (tenant_id, integration_id, external_customer_id, first_name, last_name,
    name, email, phone)
  select distinct on (r.customer ->> 'external_id') integration.tenant_id, integration.id,
    r.customer ->> 'external_id', r.customer ->> 'first_name', r.customer ->> 'last_name',
    nullif(btrim(concat_ws(' ', r.customer ->> 'first_name', r.customer ->> 'last_name')), ''),
    r.customer ->> 'email', r.customer ->> 'phone'
  from jsonb_to_recordset(rows) as r (customer jsonb)
  where r.customer ->> 'external_id' is not null
  order by r.customer ->> 'external_id'
  on conflict (tenant_id, integration_id, external_customer_id) do nothing
$$;
revoke all on function private.ensure_commerce_customers(public.commerce_integrations, jsonb) from public;

create or replace function private.apply_commerce_orders(integration public.commerce_integrations, rows jsonb, job uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  perform private.ensure_commerce_customers(integration, rows);
  with r0 as (
    select distinct on (x.external_id) x.*
    from jsonb_to_recordset(rows) as x (external_id text, order_number text, customer jsonb,
      customer_name text, customer_email text, customer_phone text, total_amount numeric, subtotal numeric,
      total_tax numeric, total_discounts numeric, currency text, payment_type text, financial_status text,
      fulfillment_status text, shipping_address jsonb, billing_address jsonb, notes text, tags jsonb,
      order_created_at timestamptz, external_updated_at timestamptz, items jsonb)
    order by x.external_id, x.external_updated_at desc nulls last
  ), r as (
    -- A redacted customer's personal fields are not written again.
    select r0.*, exists (select 1 from public.commerce_customers c
                         where c.integration_id = integration.id and c.external_customer_id = r0.customer ->> 'external_id'
                           and c.redacted_at is not null) as redacted
    from r0
  ), up as (
    insert into public.commerce_orders as o (tenant_id, integration_id, external_order_id, order_number,
      customer_id, customer_name, customer_email, customer_phone, total_amount, subtotal, total_tax,
      total_discounts, currency, payment_type, financial_status, fulfillment_status, shipping_address,
      billing_address, notes, tags, order_created_at, external_updated_at, last_seen_job, synced_at, deleted_at)
    select integration.tenant_id, integration.id, r.external_id, r.order_number,
      (select c.id from public.commerce_customers c
       where c.tenant_id = integration.tenant_id and c.integration_id = integration.id
         and c.external_customer_id = r.customer ->> 'external_id'),
      case when r.redacted then null else r.customer_name end,
      case when r.redacted then null else r.customer_email end,
      case when r.redacted then null else r.customer_phone end,
      coalesce(r.total_amount, 0), r.subtotal, r.total_tax,
      r.total_discounts, r.currency, coalesce(r.payment_type, 'unknown')::public.payment_type,
      r.financial_status::public.order_financial_status, r.fulfillment_status::public.order_fulfillment_status,
      case when r.redacted then null else r.shipping_address end,
      case when r.redacted then null else r.billing_address end,
      case when r.redacted then null else r.notes end, coalesce(r.tags, '[]'), r.order_created_at,
      r.external_updated_at, job, now(), null
    from r
    on conflict (tenant_id, integration_id, external_order_id) do update
    set order_number = excluded.order_number, customer_id = excluded.customer_id,
        customer_name = excluded.customer_name, customer_email = excluded.customer_email,
        customer_phone = excluded.customer_phone, total_amount = excluded.total_amount,
        subtotal = excluded.subtotal, total_tax = excluded.total_tax, total_discounts = excluded.total_discounts,
        currency = excluded.currency, payment_type = excluded.payment_type,
        financial_status = excluded.financial_status, fulfillment_status = excluded.fulfillment_status,
        shipping_address = excluded.shipping_address, billing_address = excluded.billing_address,
        notes = excluded.notes, tags = excluded.tags, order_created_at = excluded.order_created_at,
        external_updated_at = excluded.external_updated_at,
        last_seen_job = coalesce(excluded.last_seen_job, o.last_seen_job),
        synced_at = now(), deleted_at = null, updated_at = now()
    where o.external_updated_at is null or excluded.external_updated_at is null
       or excluded.external_updated_at >= o.external_updated_at
    returning o.external_order_id, o.id
  ), written as (
    select up.id as order_id, r.items from r join up on up.external_order_id = r.external_id
  ), kids as (
    select distinct on (x.external_id) w.order_id, x.*
    from written w, jsonb_to_recordset(coalesce(w.items, '[]')) as x (external_id text, external_product_id text,
      external_variant_id text, title text, variant_title text, sku text, quantity integer, price numeric,
      total numeric)
    order by x.external_id
  ), gone as (
    delete from public.commerce_order_items it
    using written w
    where it.order_id = w.order_id and w.items is not null
      and not exists (select 1 from kids k where k.external_id = it.external_line_item_id)
    returning 1
  ), kept as (
    insert into public.commerce_order_items as it (tenant_id, integration_id, order_id, external_line_item_id,
      product_id, variant_id, external_product_id, external_variant_id, title, variant_title, sku, quantity,
      price, total, synced_at)
    select integration.tenant_id, integration.id, k.order_id, k.external_id,
      (select p.id from public.commerce_products p where p.tenant_id = integration.tenant_id
         and p.integration_id = integration.id and p.external_product_id = k.external_product_id),
      (select v.id from public.commerce_product_variants v where v.tenant_id = integration.tenant_id
         and v.integration_id = integration.id and v.external_variant_id = k.external_variant_id),
      k.external_product_id, k.external_variant_id, k.title, k.variant_title, k.sku, coalesce(k.quantity, 0),
      k.price, coalesce(k.total, k.price * k.quantity), now()
    from kids k
    on conflict (tenant_id, integration_id, external_line_item_id) do update
    set order_id = excluded.order_id, product_id = excluded.product_id, variant_id = excluded.variant_id,
        external_product_id = excluded.external_product_id, external_variant_id = excluded.external_variant_id,
        title = excluded.title, variant_title = excluded.variant_title, sku = excluded.sku,
        quantity = excluded.quantity, price = excluded.price, total = excluded.total, synced_at = now(),
        updated_at = now()
    returning 1
  )
  -- (gone and kept run to completion whether or not they are read.)
  select count(*) into n from written;
  return n;
end
$$;
revoke all on function private.apply_commerce_orders(public.commerce_integrations, jsonb, uuid) from public;

create or replace function private.apply_commerce_carts(integration public.commerce_integrations, rows jsonb, job uuid)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  n integer;
begin
  perform private.ensure_commerce_customers(integration, rows);
  with r0 as (
    select distinct on (x.external_id) x.*
    from jsonb_to_recordset(rows) as x (external_id text, customer jsonb, customer_name text,
      customer_email text, customer_phone text, total_value numeric, currency text, items_count integer,
      status text, recovery_url text, abandoned_at timestamptz, recovered_at timestamptz,
      external_updated_at timestamptz, items jsonb)
    order by x.external_id, x.external_updated_at desc nulls last
  ), r as (
    select r0.*, exists (select 1 from public.commerce_customers c
                         where c.integration_id = integration.id and c.external_customer_id = r0.customer ->> 'external_id'
                           and c.redacted_at is not null) as redacted
    from r0
  ), up as (
    insert into public.commerce_abandoned_carts as c (tenant_id, integration_id, external_cart_id, customer_id,
      customer_name, customer_email, customer_phone, total_value, currency, items_count, status, recovery_url,
      abandoned_at, recovered_at, external_updated_at, last_seen_job, synced_at, deleted_at)
    select integration.tenant_id, integration.id, r.external_id,
      (select cu.id from public.commerce_customers cu
       where cu.tenant_id = integration.tenant_id and cu.integration_id = integration.id
         and cu.external_customer_id = r.customer ->> 'external_id'),
      case when r.redacted then null else r.customer_name end,
      case when r.redacted then null else r.customer_email end,
      case when r.redacted then null else r.customer_phone end,
      coalesce(r.total_value, 0), r.currency,
      coalesce(r.items_count, jsonb_array_length(coalesce(r.items, '[]'))),
      coalesce(r.status, 'abandoned')::public.cart_status,
      case when r.redacted then null else r.recovery_url end, r.abandoned_at, r.recovered_at,
      r.external_updated_at, job, now(), null
    from r
    on conflict (tenant_id, integration_id, external_cart_id) do update
    set customer_id = excluded.customer_id, customer_name = excluded.customer_name,
        customer_email = excluded.customer_email, customer_phone = excluded.customer_phone,
        total_value = excluded.total_value, currency = excluded.currency, items_count = excluded.items_count,
        status = excluded.status, recovery_url = excluded.recovery_url, abandoned_at = excluded.abandoned_at,
        recovered_at = excluded.recovered_at, external_updated_at = excluded.external_updated_at,
        last_seen_job = coalesce(excluded.last_seen_job, c.last_seen_job), synced_at = now(), deleted_at = null,
        updated_at = now()
    where c.external_updated_at is null or excluded.external_updated_at is null
       or excluded.external_updated_at >= c.external_updated_at
    returning c.external_cart_id, c.id
  ), written as (
    select up.id as cart_id, r.items from r join up on up.external_cart_id = r.external_id
  ), kids as (
    select distinct on (w.cart_id, x.external_id) w.cart_id, x.*
    from written w, jsonb_to_recordset(coalesce(w.items, '[]')) as x (external_id text, external_product_id text,
      external_variant_id text, title text, variant_title text, quantity integer, price numeric,
      total numeric, image_url text)
    order by w.cart_id, x.external_id
  ), gone as (
    delete from public.commerce_cart_items it
    using written w
    where it.cart_id = w.cart_id and w.items is not null
      and not exists (select 1 from kids k where k.cart_id = it.cart_id and k.external_id = it.external_line_item_id)
    returning 1
  ), kept as (
    insert into public.commerce_cart_items as it (tenant_id, integration_id, cart_id, external_line_item_id,
      product_id, variant_id, external_product_id, external_variant_id, title, variant_title, quantity, price,
      total, image_url, synced_at)
    select integration.tenant_id, integration.id, k.cart_id, k.external_id,
      (select p.id from public.commerce_products p where p.tenant_id = integration.tenant_id
         and p.integration_id = integration.id and p.external_product_id = k.external_product_id),
      (select v.id from public.commerce_product_variants v where v.tenant_id = integration.tenant_id
         and v.integration_id = integration.id and v.external_variant_id = k.external_variant_id),
      k.external_product_id, k.external_variant_id, k.title, k.variant_title, coalesce(k.quantity, 0), k.price,
      coalesce(k.total, k.price * k.quantity), k.image_url, now()
    from kids k
    on conflict (cart_id, external_line_item_id) do update
    set product_id = excluded.product_id, variant_id = excluded.variant_id,
        external_product_id = excluded.external_product_id, external_variant_id = excluded.external_variant_id,
        title = excluded.title, variant_title = excluded.variant_title, quantity = excluded.quantity,
        price = excluded.price, total = excluded.total, image_url = excluded.image_url, synced_at = now(),
        updated_at = now()
    returning 1
  )
  -- (gone and kept run to completion whether or not they are read.)
  select count(*) into n from written;
  return n;
end
$$;
revoke all on function private.apply_commerce_carts(public.commerce_integrations, jsonb, uuid) from public;

/* One resource's records, by name. */
create or replace function private.apply_commerce_records(integration public.commerce_integrations, resource text,
  rows jsonb, job uuid)
returns integer
language plpgsql
set search_path = ''
as $$
begin
  if rows is null or jsonb_typeof(rows) <> 'array' or jsonb_array_length(rows) = 0 then
    return 0;
  end if;
  return case resource
    when 'products' then private.apply_commerce_products(integration, rows, job)
    when 'customers' then private.apply_commerce_customers(integration, rows, job)
    when 'orders' then private.apply_commerce_orders(integration, rows, job)
    when 'abandoned_checkouts' then private.apply_commerce_carts(integration, rows, job)
  end;
end
$$;
revoke all on function private.apply_commerce_records(public.commerce_integrations, text, jsonb, uuid) from public;

-- ---------------------------------------------------------------------------
-- Sync jobs
-- ---------------------------------------------------------------------------

/*
 * public.start_commerce_sync(integration_id, resources, full): as the caller
 * (an admin), through the function's admission. Starts a sync of the
 * resources, or joins the one running for this integration (then
 * "joined": true and the running job's resources and mode stand).
 * Each resource is synced in full (a bulk operation) when `full` is true or
 * it was never synced, else incrementally since its last sync.
 * Returns the job as the caller may read it, with "joined".
 * Raises CEN04 (integration), CEA03, CER03, CE409 INTEGRATION_NOT_CONNECTED.
 */
create or replace function public.start_commerce_sync(integration_id uuid, resources text[], full_sync boolean)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
#variable_conflict use_column
declare
  admitted uuid := private.admit_early('sync-platform');
  caller uuid := private.begin_request('{}'::jsonb, null);
  integration public.commerce_integrations%rowtype;
  job public.commerce_sync_jobs%rowtype;
  joined boolean := false;
  marks jsonb := '{}'::jsonb;
  r text;
begin
  integration := private.member_integration(start_commerce_sync.integration_id, 'admin');
  perform private.take_rate_limit(integration.tenant_id, 'sync-platform', admitted);
  if integration.status <> 'connected' then
    perform private.raise_api_error(409, 'INTEGRATION_NOT_CONNECTED',
      format('the integration is %s; connect the store again first', integration.status),
      jsonb_build_object('status', integration.status));
  end if;
  foreach r in array resources loop
    marks := marks || jsonb_build_object(r, jsonb_build_object(
      'mode', case when full_sync or integration.sync_state ->> r is null then 'bulk' else 'incremental' end,
      'since', case when full_sync then null else integration.sync_state ->> r end,
      'done', false, 'records', 0, 'pages', 0));
  end loop;
  insert into public.commerce_sync_jobs (tenant_id, integration_id, resources, full_sync, checkpoints, requested_by)
  values (integration.tenant_id, integration.id, resources, full_sync, marks, caller)
  on conflict (integration_id) where status in ('queued', 'running') do nothing
  returning * into job;
  if not found then
    select * into job from public.commerce_sync_jobs j
    where j.integration_id = integration.id and j.status in ('queued', 'running');
    joined := true;
  else
    insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
    values (integration.tenant_id, caller, 'integration.sync_started', 'commerce_integration', integration.id,
      jsonb_build_object('job_id', job.id, 'resources', resources, 'full', full_sync));
  end if;
  return private.sync_job_json(job) || jsonb_build_object('joined', joined);
end
$$;
revoke all on function public.start_commerce_sync(uuid, text[], boolean) from public, anon;
grant execute on function public.start_commerce_sync(uuid, text[], boolean) to authenticated;

create or replace function private.sync_job_json(job public.commerce_sync_jobs)
returns jsonb
language sql
immutable
set search_path = ''
as $$
  select jsonb_build_object('id', job.id, 'integration_id', job.integration_id, 'status', job.status,
    'resources', to_jsonb(job.resources), 'full', job.full_sync, 'checkpoints', job.checkpoints,
    'counts', job.counts, 'invocations', job.invocations, 'throttled', job.throttled, 'error', job.error,
    'created_at', job.created_at, 'started_at', job.started_at, 'finished_at', job.finished_at)
$$;
revoke all on function private.sync_job_json(public.commerce_sync_jobs) from public, anon, authenticated, service_role;

/*
 * public.claim_commerce_sync(job_id, lease_seconds): with the service role.
 * Takes the job's lease when nobody holds it (or the holder's ran out) and
 * returns {"job", "owner", "integration": credentials}; null when the job is
 * finished or leased to a live invocation.
 */
create or replace function public.claim_commerce_sync(job_id uuid, lease_seconds integer)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.commerce_sync_jobs%rowtype;
  owner uuid := gen_random_uuid();
begin
  update public.commerce_sync_jobs j
  set lease_owner = owner, lease_until = clock_timestamp() + make_interval(secs => lease_seconds),
      status = 'running', started_at = coalesce(j.started_at, now()), invocations = j.invocations + 1,
      updated_at = now()
  where j.id = claim_commerce_sync.job_id and j.status in ('queued', 'running')
    and (j.lease_until is null or j.lease_until < clock_timestamp())
  returning * into job;
  if not found then
    return null;
  end if;
  return jsonb_build_object('job', private.sync_job_json(job), 'owner', owner,
    'integration', public.integration_credentials(job.integration_id));
end
$$;
revoke all on function public.claim_commerce_sync(uuid, integer) from public, anon, authenticated;
grant execute on function public.claim_commerce_sync(uuid, integer) to service_role;

/*
 * public.commerce_sync_step(job_id, owner, resource, records, checkpoint,
 * lease_seconds): with the service role, one page of a sync in one
 * transaction: the records applied, the resource's checkpoint replaced by
 * `checkpoint` (merged), its counters moved, and the lease extended. A
 * killed invocation leaves either all of a page or none of it.
 * When the checkpoint says done: the resource's sync mark moves to its
 * high_water, a full products sync soft-deletes the products it did not
 * see, and when every resource is done the job completes.
 * Returns the job. Raises CE409 SYNC_LEASE_LOST when another invocation
 * holds the job (this one stops).
 */
create or replace function public.commerce_sync_step(job_id uuid, owner uuid, resource text, records jsonb,
  checkpoint jsonb, lease_seconds integer)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  job public.commerce_sync_jobs%rowtype;
  integration public.commerce_integrations%rowtype;
  applied integer;
  mark jsonb;
  seen integer := coalesce(jsonb_array_length(case when jsonb_typeof(records) = 'array' then records end), 0);
begin
  select * into job from public.commerce_sync_jobs j where j.id = commerce_sync_step.job_id for update;
  if not found or job.lease_owner is distinct from owner or job.status <> 'running' then
    perform private.raise_api_error(409, 'SYNC_LEASE_LOST', 'another invocation holds this sync now',
      jsonb_build_object('job_id', job_id));
  end if;
  select * into integration from public.commerce_integrations i where i.id = job.integration_id for no key update;
  if integration.status <> 'connected' then
    perform private.raise_api_error(409, 'INTEGRATION_NOT_CONNECTED',
      format('the integration is %s; the sync stops', integration.status), jsonb_build_object('job_id', job_id));
  end if;
  applied := private.apply_commerce_records(integration, resource, records, job.id);
  mark := coalesce(job.checkpoints -> resource, '{}'::jsonb) || coalesce(checkpoint, '{}'::jsonb)
    || jsonb_build_object('records', coalesce((job.checkpoints -> resource ->> 'records')::bigint, 0) + seen,
                          'pages', coalesce((job.checkpoints -> resource ->> 'pages')::bigint, 0)
                                   + case when seen > 0 then 1 else 0 end);
  update public.commerce_sync_jobs j
  set checkpoints = j.checkpoints || jsonb_build_object(resource, mark),
      counts = j.counts || jsonb_build_object(resource, jsonb_build_object(
        'fetched', coalesce((j.counts -> resource ->> 'fetched')::bigint, 0) + seen,
        'written', coalesce((j.counts -> resource ->> 'written')::bigint, 0) + applied,
        'deleted', coalesce((j.counts -> resource ->> 'deleted')::bigint, 0))),
      throttled = j.throttled + coalesce((checkpoint ->> 'throttled_now')::integer, 0),
      lease_until = clock_timestamp() + make_interval(secs => lease_seconds),
      failures = 0, updated_at = now()
  where j.id = job.id
  returning * into job;

  if coalesce((mark ->> 'done')::boolean, false) then
    if resource = 'products' and mark ->> 'mode' = 'bulk' then
      -- Gone from the store: not in this full read, and not written since the
      -- job started either (a webhook's newer version, or a product created
      -- after the bulk operation's snapshot, stays).
      with gone as (
        update public.commerce_products p set deleted_at = now(), updated_at = now()
        where p.integration_id = integration.id and p.deleted_at is null
          and p.last_seen_job is distinct from job.id and p.synced_at < job.started_at
        returning p.id
      ), their_variants as (
        update public.commerce_product_variants v set deleted_at = now(), updated_at = now()
        from gone where v.product_id = gone.id and v.deleted_at is null
        returning 1
      )
      update public.commerce_sync_jobs j
      set counts = jsonb_set(j.counts, array[resource, 'deleted'], to_jsonb((select count(*) from gone)))
      where j.id = job.id
      returning * into job;
    end if;
    update public.commerce_integrations i
    set sync_state = case when mark ->> 'high_water' is null then i.sync_state
                          else i.sync_state || jsonb_build_object(resource, mark ->> 'high_water') end,
        last_products_sync_at = case when resource = 'products' then now() else i.last_products_sync_at end,
        last_orders_sync_at = case when resource = 'orders' then now() else i.last_orders_sync_at end,
        last_customers_sync_at = case when resource = 'customers' then now() else i.last_customers_sync_at end,
        last_abandoned_checkouts_sync_at = case when resource = 'abandoned_checkouts' then now()
                                                else i.last_abandoned_checkouts_sync_at end,
        updated_at = now()
    where i.id = integration.id;
    if not exists (select 1 from unnest(job.resources) r
                   where not coalesce((job.checkpoints -> r ->> 'done')::boolean, false)) then
      update public.commerce_sync_jobs j
      set status = 'completed', finished_at = now(), lease_owner = null, lease_until = null, updated_at = now()
      where j.id = job.id
      returning * into job;
      update public.commerce_integrations i set last_sync_at = now(), updated_at = now()
      where i.id = integration.id;
      insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
      values (job.tenant_id, job.requested_by, 'integration.sync_completed', 'commerce_integration',
        integration.id, jsonb_build_object('job_id', job.id, 'counts', job.counts));
    end if;
  end if;
  return private.sync_job_json(job);
end
$$;
revoke all on function public.commerce_sync_step(uuid, uuid, text, jsonb, jsonb, integer) from public, anon, authenticated;
grant execute on function public.commerce_sync_step(uuid, uuid, text, jsonb, jsonb, integer) to service_role;

/*
 * public.release_commerce_sync(job_id, owner, error, failed): with the
 * service role, when an invocation stops before the job is done. Without
 * `failed`, the lease is given up so the next invocation (pg_cron) resumes
 * at once; the error, if any, is kept for the caller to read, and the 10th
 * invocation in a row to stop on an error ends the job 'failed' (a fault
 * that does not pass, rather than a job retried forever). With `failed`
 * (a permanent failure: the token was revoked, the store refused the app)
 * the job ends 'failed'.
 */
create or replace function public.release_commerce_sync(job_id uuid, owner uuid, error text, failed boolean)
returns void
language sql
security definer
set search_path = ''
as $$
  update public.commerce_sync_jobs j
  set lease_owner = null, lease_until = null, error = left(release_commerce_sync.error, 2000),
      failures = case when release_commerce_sync.error is null then j.failures else j.failures + 1 end,
      status = case when failed or (release_commerce_sync.error is not null and j.failures + 1 >= 10)
                    then 'failed' else j.status end,
      finished_at = case when failed or (release_commerce_sync.error is not null and j.failures + 1 >= 10)
                         then now() else j.finished_at end,
      updated_at = now()
  where j.id = release_commerce_sync.job_id and j.lease_owner = owner and j.status = 'running'
$$;
revoke all on function public.release_commerce_sync(uuid, uuid, text, boolean) from public, anon, authenticated;
grant execute on function public.release_commerce_sync(uuid, uuid, text, boolean) to service_role;

/* The jobs pg_cron hands to the next invocation: live, and nobody's lease. */
create or replace function public.resumable_commerce_syncs(max integer)
returns setof uuid
language sql
security definer
set search_path = ''
as $$
  select j.id from public.commerce_sync_jobs j
  where j.status in ('queued', 'running') and (j.lease_until is null or j.lease_until < clock_timestamp())
  order by j.created_at
  limit greatest(1, least(max, 100))
$$;
revoke all on function public.resumable_commerce_syncs(integer) from public, anon, authenticated;
grant execute on function public.resumable_commerce_syncs(integer) to service_role;

-- Every minute (pg_cron's finest schedule that every host supports), each
-- sync without a live invocation is handed to a new one. A sync's own
-- invocation also hands over at once when it stops inside its time budget.
create extension if not exists pg_cron;
select cron.schedule('resume-commerce-syncs', '* * * * *', $job$
  select net.http_post(
    url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url')
           || '/functions/v1/sync-platform',
    headers := jsonb_build_object(
      'Content-Type', 'application/json',
      'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
    body := jsonb_build_object('job_id', id),
    timeout_milliseconds := 150000)
  from public.resumable_commerce_syncs(20) as id
$job$);

-- ---------------------------------------------------------------------------
-- Webhooks
-- ---------------------------------------------------------------------------

/*
 * public.record_commerce_webhook(shop, webhook_id, topic, work): with the
 * service role, the webhook's receipt: once per (shop, webhook id). `work`
 * is what the function mapped from the payload ({"resource", "records"},
 * {"delete_product"}, {"uninstalled"}, {"redact_customer"}, {"redact_shop"},
 * {"data_request"}, {"ignored"}; with "triggered_at" from the delivery).
 * Returns {"event_id", "duplicate", "status"}. Recorded 'ignored': a topic
 * not handled, a store no tenant connected, or (but for the compliance
 * topics, which reach every tenant that had the store) a store disconnected.
 */
create or replace function public.record_commerce_webhook(shop text, webhook_id text, topic text, work jsonb)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  integration public.commerce_integrations%rowtype;
  ev public.commerce_webhook_events%rowtype;
  compliance boolean := topic in ('shop/redact', 'customers/redact', 'customers/data_request');
begin
  select * into integration from public.commerce_integrations i
  where i.source = 'shopify' and i.store_domain = shop
  order by (i.status <> 'disconnected') desc, i.updated_at desc
  limit 1;
  insert into public.commerce_webhook_events (tenant_id, integration_id, shop, webhook_id, topic, work, status)
  values (integration.tenant_id, integration.id, shop, webhook_id, topic, work,
    case when work ? 'ignored' or integration.id is null
           or (integration.status = 'disconnected' and not compliance)
         then 'ignored' else 'queued' end)
  on conflict on constraint commerce_webhook_events_shop_webhook_id_key do nothing
  returning * into ev;
  if not found then
    select * into ev from public.commerce_webhook_events e
    where e.shop = record_commerce_webhook.shop and e.webhook_id = record_commerce_webhook.webhook_id;
    return jsonb_build_object('event_id', ev.id, 'duplicate', true, 'status', ev.status);
  end if;
  if ev.status = 'ignored' then
    -- Nothing of an ignored payload is kept.
    update public.commerce_webhook_events e set work = '{}'::jsonb where e.id = ev.id;
  end if;
  return jsonb_build_object('event_id', ev.id, 'duplicate', false, 'status', ev.status);
end
$$;
revoke all on function public.record_commerce_webhook(text, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.record_commerce_webhook(text, text, text, jsonb) to service_role;

drop function if exists private.redact_commerce_customer(uuid, text, text[]);

/* Ends an integration's live sync (its rows are locked before the integration's, as every writer does). */
create or replace function private.fail_live_syncs(integration uuid, reason text)
returns void
language sql
set search_path = ''
as $$
  update public.commerce_sync_jobs j
  set status = 'failed', error = reason, finished_at = now(), lease_owner = null, lease_until = null,
      updated_at = now()
  where j.integration_id = integration and j.status in ('queued', 'running')
$$;
revoke all on function private.fail_live_syncs(uuid, text) from public, anon, authenticated, service_role;

/*
 * Erases a customer's personal data from the commerce tables (GDPR
 * customers/redact): the customer's names, email, phone and tags; the same on
 * the orders linked to them, named in the request, or carrying their email or
 * phone (with the addresses and notes); and the contact fields of their carts.
 * The rows stay, so totals still add up. Later syncs and webhooks do not write
 * the personal fields of a redacted customer's orders and carts again.
 */
create or replace function private.redact_commerce_customer(integration uuid, external_customer_id text,
  order_ids text[], email text, phone text)
returns integer
language plpgsql
set search_path = ''
as $$
declare
  customer uuid;
  n integer := 0;
  m integer;
begin
  update public.commerce_customers c
  set first_name = null, last_name = null, name = null, email = null, phone = null, tags = '[]',
      redacted_at = now(), updated_at = now()
  where c.integration_id = integration and c.external_customer_id = redact_commerce_customer.external_customer_id
  returning c.id into customer;
  get diagnostics n = row_count;
  update public.commerce_orders o
  set customer_name = null, customer_email = null, customer_phone = null, shipping_address = null,
      billing_address = null, notes = null, updated_at = now()
  where o.integration_id = integration
    and ((customer is not null and o.customer_id = customer)
         or o.external_order_id = any (coalesce(order_ids, '{}'))
         or (nullif(email, '') is not null and lower(o.customer_email) = lower(email))
         or (nullif(phone, '') is not null and o.customer_phone = phone));
  get diagnostics m = row_count;
  n := n + m;
  update public.commerce_abandoned_carts c
  set customer_name = null, customer_email = null, customer_phone = null, recovery_url = null, updated_at = now()
  where c.integration_id = integration
    and ((customer is not null and c.customer_id = customer)
         or (nullif(email, '') is not null and lower(c.customer_email) = lower(email))
         or (nullif(phone, '') is not null and c.customer_phone = phone));
  get diagnostics m = row_count;
  return n + m;
end
$$;
revoke all on function private.redact_commerce_customer(uuid, text, text[], text, text) from public;

/*
 * Deletes every synced row of an integration (shop/redact, a purge). Its
 * sync marks go too, so a later connection reads everything again.
 */
create or replace function private.purge_commerce_data(integration uuid)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  counts jsonb := '{}'::jsonb;
  n integer;
begin
  delete from public.commerce_abandoned_carts c where c.integration_id = integration;
  get diagnostics n = row_count;
  counts := counts || jsonb_build_object('abandoned_checkouts', n);
  delete from public.commerce_orders o where o.integration_id = integration;
  get diagnostics n = row_count;
  counts := counts || jsonb_build_object('orders', n);
  delete from public.commerce_products p where p.integration_id = integration;
  get diagnostics n = row_count;
  counts := counts || jsonb_build_object('products', n);
  delete from public.commerce_customers c where c.integration_id = integration;
  get diagnostics n = row_count;
  update public.commerce_integrations i
  set sync_state = '{}'::jsonb, last_sync_at = null, last_products_sync_at = null, last_orders_sync_at = null,
      last_customers_sync_at = null, last_abandoned_checkouts_sync_at = null, updated_at = now()
  where i.id = integration;
  return counts || jsonb_build_object('customers', n);
end
$$;
revoke all on function private.purge_commerce_data(uuid) from public;

/*
 * public.apply_commerce_webhook(event_id): with the service role, does a
 * queued event's work once (the row is locked; a processed event is left
 * alone), then keeps no payload. Returns {"status", "applied"}.
 *
 * - records, products/delete: applied to the store's connected integration;
 *   when it was disconnected meanwhile, the event is 'ignored'.
 * - app/uninstalled: disconnects, unless Shopify triggered it before this
 *   connection was made (an old uninstall retried late).
 * - customers/redact, shop/redact: applied to every integration any tenant
 *   has or had with the store.
 */
create or replace function public.apply_commerce_webhook(event_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  ev public.commerce_webhook_events%rowtype;
  integration public.commerce_integrations%rowtype;
  target public.commerce_integrations%rowtype;
  w jsonb;
  applied integer := 0;
  n integer;
  triggered timestamptz;
  outcome text := 'processed';
begin
  select * into ev from public.commerce_webhook_events e where e.id = event_id for update skip locked;
  if not found or ev.status <> 'queued' then
    return jsonb_build_object('status', coalesce(ev.status, 'busy'), 'applied', 0);
  end if;
  w := ev.work;
  begin
    triggered := (w ->> 'triggered_at')::timestamptz;
  exception when others then
    triggered := null;
  end;
  if w ? 'redact_customer' or w ? 'redact_shop' then
    for target in select * from public.commerce_integrations i
                  where i.source = 'shopify' and i.store_domain = ev.shop order by i.id loop
      if w ? 'redact_shop' then
        perform private.fail_live_syncs(target.id, 'the store asked for its data to be erased');
        perform 1 from public.commerce_integrations i where i.id = target.id for update;
        update public.commerce_integrations i
        set status = 'disconnected', access_token_encrypted = null,
            disconnected_at = coalesce(i.disconnected_at, now()), updated_at = now()
        where i.id = target.id;
        insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
        values (target.tenant_id, null, 'commerce.shop_redacted', 'commerce_integration', target.id,
          jsonb_build_object('deleted', private.purge_commerce_data(target.id), 'webhook_id', ev.webhook_id));
        applied := applied + 1;
      else
        n := private.redact_commerce_customer(target.id, w ->> 'redact_customer',
          array(select jsonb_array_elements_text(coalesce(w -> 'orders', '[]'))), w ->> 'email', w ->> 'phone');
        insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
        values (target.tenant_id, null, 'commerce.customer_redacted', 'commerce_integration', target.id,
          jsonb_build_object('external_customer_id', w ->> 'redact_customer', 'rows', n, 'webhook_id', ev.webhook_id));
        applied := applied + n;
      end if;
    end loop;
  elsif w ? 'data_request' then
    select * into integration from public.commerce_integrations i where i.id = ev.integration_id;
    insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
    values (integration.tenant_id, null, 'commerce.customer_data_requested', 'commerce_integration', integration.id,
      jsonb_build_object('request', w -> 'data_request', 'webhook_id', ev.webhook_id));
    applied := 1;
  elsif w ? 'uninstalled' then
    perform 1 from public.commerce_sync_jobs j
    where j.integration_id = ev.integration_id and j.status in ('queued', 'running') for update;
    select * into integration from public.commerce_integrations i where i.id = ev.integration_id for update;
    if integration.status = 'disconnected'
       or (triggered is not null and integration.connected_at is not null and triggered < integration.connected_at) then
      outcome := 'ignored';
    else
      perform private.fail_live_syncs(integration.id, 'the app was uninstalled from the store');
      update public.commerce_integrations i
      set status = 'disconnected', access_token_encrypted = null, webhook_status = 'pending',
          disconnected_at = now(), updated_at = now()
      where i.id = integration.id;
      insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
      values (integration.tenant_id, null, 'integration.uninstalled', 'commerce_integration', integration.id,
        jsonb_build_object('store_domain', integration.store_domain, 'webhook_id', ev.webhook_id));
      applied := 1;
    end if;
  else
    select * into integration from public.commerce_integrations i where i.id = ev.integration_id for no key update;
    if integration.status is distinct from 'connected' then
      outcome := 'ignored';
    elsif w ? 'records' then
      applied := private.apply_commerce_records(integration, w ->> 'resource', w -> 'records', null);
    elsif w ? 'delete_product' then
      with gone as (
        update public.commerce_products p set deleted_at = now(), updated_at = now()
        where p.integration_id = integration.id and p.external_product_id = w ->> 'delete_product'
          and p.deleted_at is null
        returning p.id
      )
      update public.commerce_product_variants v set deleted_at = now(), updated_at = now()
      from gone where v.product_id = gone.id;
      applied := 1;
    end if;
  end if;
  update public.commerce_webhook_events e
  set status = outcome, processed_at = now(), attempts = e.attempts + 1,
      work = jsonb_build_object('applied', applied)
  where e.id = ev.id;
  return jsonb_build_object('status', outcome, 'applied', applied);
end
$$;
revoke all on function public.apply_commerce_webhook(uuid) from public, anon, authenticated;
grant execute on function public.apply_commerce_webhook(uuid) to service_role;

/*
 * Applies queued webhook events the function did not get to (it was stopped
 * after answering). Each in its own sub-transaction: one bad event is marked
 * failed after 5 attempts (its payload dropped) and does not hold the others.
 */
create or replace function public.apply_queued_commerce_webhooks(max integer)
returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  ev uuid;
  n integer := 0;
begin
  for ev in select e.id from public.commerce_webhook_events e
            where e.status = 'queued' and e.received_at < now() - interval '30 seconds'
            order by e.received_at limit greatest(1, least(max, 1000)) loop
    begin
      perform public.apply_commerce_webhook(ev);
      n := n + 1;
    exception when others then
      update public.commerce_webhook_events e
      set attempts = e.attempts + 1, error = left(sqlerrm, 2000),
          status = case when e.attempts + 1 >= 5 then 'failed' else 'queued' end,
          work = case when e.attempts + 1 >= 5 then '{}'::jsonb else e.work end
      where e.id = ev;
    end;
  end loop;
  -- Receipts are kept 30 days (the dedupe window is Shopify's 48 hours of retries).
  delete from public.commerce_webhook_events e where e.received_at < now() - interval '30 days';
  return n;
end
$$;
revoke all on function public.apply_queued_commerce_webhooks(integer) from public, anon, authenticated;
grant execute on function public.apply_queued_commerce_webhooks(integer) to service_role;
select cron.schedule('apply-commerce-webhooks', '* * * * *',
  $job$select public.apply_queued_commerce_webhooks(500)$job$);

-- ---------------------------------------------------------------------------
-- Disconnect
-- ---------------------------------------------------------------------------

/*
 * public.disconnect_commerce_integration(integration_id, purge, revoked):
 * as the caller (an admin), through the function's admission, after the
 * function asked the platform to revoke the token (`revoked`: what it
 * answered). Destroys the token, sets status 'disconnected', ends a running
 * sync, and with `purge` deletes every synced row. Audited. Idempotent:
 * disconnecting a disconnected integration answers it again.
 * Returns {"integration_id", "status", "purged": counts | null, "revoked"}.
 */
create or replace function public.disconnect_commerce_integration(integration_id uuid, purge boolean, revoked text)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  admitted uuid := private.admit_early('disconnect-platform');
  caller uuid := private.begin_request('{}'::jsonb, null);
  integration public.commerce_integrations%rowtype;
  purged jsonb;
begin
  integration := private.member_integration(disconnect_commerce_integration.integration_id, 'admin');
  perform private.take_rate_limit(integration.tenant_id, 'disconnect-platform', admitted);
  -- The sync's rows first, then the integration's: the order every writer locks them in.
  perform private.fail_live_syncs(integration.id, 'the integration was disconnected');
  perform 1 from public.commerce_integrations i where i.id = integration.id for update;
  update public.commerce_integrations i
  set status = 'disconnected', access_token_encrypted = null, webhook_status = 'pending',
      webhook_subscriptions = '[]', disconnected_at = coalesce(i.disconnected_at, now()), updated_at = now()
  where i.id = integration.id;
  if purge then
    purged := private.purge_commerce_data(integration.id);
  end if;
  insert into public.audit_log (tenant_id, actor_id, action, entity_type, entity_id, details)
  values (integration.tenant_id, caller, 'integration.disconnected', 'commerce_integration', integration.id,
    jsonb_build_object('store_domain', integration.store_domain, 'purge', purge, 'purged', purged,
      'revoked', revoked, 'was', integration.status));
  return jsonb_build_object('integration_id', integration.id, 'status', 'disconnected', 'purged', purged,
    'revoked', revoked);
end
$$;
revoke all on function public.disconnect_commerce_integration(uuid, boolean, text) from public, anon;
grant execute on function public.disconnect_commerce_integration(uuid, boolean, text) to authenticated;

-- ---------------------------------------------------------------------------
-- Analytics (seed 002: GET /analytics/outcomes)
-- ---------------------------------------------------------------------------

/*
 * public.commerce_outcomes(period, date_from, date_to, tenant_id): the
 * dashboard's outcome summary for one tenant of the caller's (tenant_id, which
 * a member of several tenants must give; RLS decides), in seed 002's shape:
 * {"revenue_recovered", "cod_confirmed", "carts_recovered", "rto_prevented",
 * "period"}. period: 'today', 'last_7_days', 'last_30_days' (the default),
 * 'last_90_days', 'all_time' or 'custom' (date_from, date_to inclusive, UTC).
 * A cart counts in the period it was recovered in (recovered_at, else its
 * last update). cod_confirmed and rto_prevented count calls, which this
 * suite does not hold (seed 002's calls module): they are null, and
 * "unavailable" names them; "cod_orders" and "cod_orders_ready" give the COD
 * orders placed in the period and those ready for a confirmation call.
 */
drop function if exists public.commerce_outcomes(text, date, date);
create or replace function public.commerce_outcomes(period text default 'last_30_days', date_from date default null,
  date_to date default null, tenant_id uuid default null)
returns jsonb
language plpgsql
stable
set search_path = ''
as $$
declare
  tenant uuid := commerce_outcomes.tenant_id;
  since timestamptz;
  until timestamptz := 'infinity'::timestamptz;
  revenue numeric;
  recovered integer;
  cod integer;
  cod_ready integer;
  n_tenants integer;
begin
  case period
    when 'today' then since := date_trunc('day', now() at time zone 'UTC') at time zone 'UTC';
    when 'last_7_days' then since := now() - interval '7 days';
    when 'last_30_days' then since := now() - interval '30 days';
    when 'last_90_days' then since := now() - interval '90 days';
    when 'all_time' then since := '-infinity'::timestamptz;
    when 'custom' then
      if date_from is null or date_to is null or date_to < date_from then
        raise exception using errcode = 'CEV01', message = 'the request has invalid fields',
          detail = '{"date_from": "and date_to are required for a custom period, date_from first"}';
      end if;
      since := date_from::timestamp at time zone 'UTC';
      until := (date_to + 1)::timestamp at time zone 'UTC';
    else
      raise exception using errcode = 'CEV01', message = 'the request has invalid fields',
        detail = '{"period": "must be one of today, last_7_days, last_30_days, last_90_days, all_time, custom"}';
  end case;
  if tenant is null then
    select min(t.id::text)::uuid, count(*) into tenant, n_tenants from private.current_tenant_ids() t(id);
    if n_tenants > 1 then
      raise exception using errcode = 'CEV01', message = 'the request has invalid fields',
        detail = '{"tenant_id": "is required: you belong to several tenants"}';
    end if;
  end if;
  select coalesce(sum(c.total_value), 0), count(*) into revenue, recovered
  from public.commerce_abandoned_carts c
  where c.tenant_id = tenant and c.status = 'recovered'
    and coalesce(c.recovered_at, c.updated_at) >= since and coalesce(c.recovered_at, c.updated_at) < until;
  select count(*), count(*) filter (where o.trigger_ready = 'ready') into cod, cod_ready
  from public.commerce_orders o
  where o.tenant_id = tenant and o.payment_type = 'cod' and o.order_created_at >= since and o.order_created_at < until;
  return jsonb_build_object('revenue_recovered', revenue, 'cod_confirmed', null, 'carts_recovered', recovered,
    'rto_prevented', null, 'period', period, 'cod_orders', cod, 'cod_orders_ready', cod_ready,
    'unavailable', jsonb_build_array('cod_confirmed', 'rto_prevented'));
end
$$;
revoke all on function public.commerce_outcomes(text, date, date, uuid) from public, anon;
grant execute on function public.commerce_outcomes(text, date, date, uuid) to authenticated;

/*
 * public.commerce_integration_for_admin(integration_id): as the caller, the
 * integration when the caller is an admin of its tenant (CEN04 when it is not
 * theirs to see, CEA03 when they are not an admin). disconnect-platform asks
 * before it revokes anything at the store.
 */
create or replace function public.commerce_integration_for_admin(integration_id uuid)
returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  integration public.commerce_integrations%rowtype;
begin
  perform private.begin_request('{}'::jsonb, null);
  integration := private.member_integration(commerce_integration_for_admin.integration_id, 'admin');
  return jsonb_build_object('id', integration.id, 'tenant_id', integration.tenant_id,
    'status', integration.status, 'store_domain', integration.store_domain);
end
$$;
revoke all on function public.commerce_integration_for_admin(uuid) from public, anon;
grant execute on function public.commerce_integration_for_admin(uuid) to authenticated;
