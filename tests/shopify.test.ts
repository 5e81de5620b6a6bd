// Shopify end to end, through the gateway and the sandbox's Shopify: the
// OAuth dance (and forged or replayed callbacks), full and incremental
// syncs compared id by id with the store, a sync killed mid-run and
// resumed, the throttle, the webhooks (valid, forged, replayed,
// uninstall, GDPR), disconnect, and seed 002's list queries.
import assert from "node:assert/strict";
import {
  assertBoundary,
  clientFor,
  env,
  invoke,
  keys,
  makeTenant,
  sql,
  type Tenant,
  until,
  url,
  userToken,
} from "./_stack.ts";

const sandbox = `${env.SANDBOX_URL}/_sandbox/shopify`;
const tag = () => crypto.randomUUID().slice(0, 8);

// deno-lint-ignore no-explicit-any
async function control(path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sandbox}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`sandbox ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function storeIds(shop: string, resource: string): Promise<string[]> {
  return ((await control(`/${shop}/ids?resource=${resource}`)).ids as string[])
    .sort();
}

/** The OAuth dance: start, the merchant approves, Shopify redirects back. */
async function authorize(t: Tenant, shop: string) {
  const start = await invoke(t.db, "oauth-shopify", { shop });
  assert.equal(start.status, 200, JSON.stringify(start.body));
  const approve = await fetch(start.body.authorize_url, { redirect: "manual" });
  await approve.body?.cancel();
  assert.equal(approve.status, 302);
  return { start: start.body, callback: approve.headers.get("location")! };
}

/** Follows the callback; the app URL it redirects to, as params. */
async function callback(link: string): Promise<URLSearchParams> {
  const res = await fetch(link, { redirect: "manual" });
  await res.body?.cancel();
  assert.equal(res.status, 302, `callback answered ${res.status}`);
  const to = new URL(res.headers.get("location")!);
  assert.equal(to.origin + to.pathname, env.SHOPIFY_APP_URL);
  return to.searchParams;
}

async function connect(t: Tenant, shop: string): Promise<string> {
  const { callback: link } = await authorize(t, shop);
  const back = await callback(link);
  assert.equal(back.get("result"), "connected", back.toString());
  return back.get("integration_id")!;
}

async function syncAndWait(
  t: Tenant,
  body: Record<string, unknown>,
  // deno-lint-ignore no-explicit-any
): Promise<any> {
  const res = await invoke(t.db, "sync-platform", body);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return await until("the sync to finish", 120, async () => {
    const [job] = await sql`select status, error, counts, checkpoints, throttled
      from public.commerce_sync_jobs where id = ${res.body.id}`;
    if (job.status === "failed") throw new Error(`sync failed: ${job.error}`);
    return job.status === "completed" ? { ...job, id: res.body.id } : undefined;
  });
}

const tables: Record<string, [string, string]> = {
  products: ["commerce_products", "external_product_id"],
  variants: ["commerce_product_variants", "external_variant_id"],
  orders: ["commerce_orders", "external_order_id"],
  line_items: ["commerce_order_items", "external_line_item_id"],
  customers: ["commerce_customers", "external_customer_id"],
  checkouts: ["commerce_abandoned_carts", "external_cart_id"],
  checkout_line_items: ["commerce_cart_items", "external_line_item_id"],
};

/** Every external id of `resource` we hold (live rows), sorted, duplicates kept. */
async function ourIds(
  integration: string,
  resource: string,
): Promise<string[]> {
  const [table, column] = tables[resource];
  const live = table === "commerce_products"
    ? sql`and deleted_at is null`
    : sql``;
  const rows = await sql`select ${sql(column)} as id from ${
    sql("public." + table)
  }
    where integration_id = ${integration} ${live} order by 1`;
  return rows.map((r) => r.id);
}

async function assertSameAsStore(
  shop: string,
  integration: string,
  resources = Object.keys(tables),
) {
  for (const resource of resources) {
    const ours = await ourIds(integration, resource);
    const theirs = await storeIds(shop, resource);
    assert.equal(ours.length, theirs.length, `${resource}: count`);
    assert.deepEqual(ours, theirs, `${resource}: every id, once`);
  }
}

Deno.test("the OAuth dance connects a store; its token is sealed and readable by no member; a replayed or forged callback is refused", async () => {
  const t = await makeTenant();
  const shop = `oauth-${tag()}.myshopify.com`;
  // Bad input first: nothing is stored.
  const bad = await invoke(t.db, "oauth-shopify", { shop: "evil.example.com" });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.code, "VALIDATION_ERROR");

  const { start, callback: link } = await authorize(t, shop);
  const auth = new URL(start.authorize_url);
  assert.equal(auth.searchParams.get("client_id"), env.SHOPIFY_API_KEY);
  assert.equal(
    auth.searchParams.get("redirect_uri"),
    `${url}/functions/v1/oauth-shopify`,
  );
  assert.match(auth.searchParams.get("scope")!, /read_all_orders/);

  // A forged callback (the shop changed after Shopify signed it) stores nothing.
  const forged = new URL(link);
  forged.searchParams.set("shop", `other-${tag()}.myshopify.com`);
  assert.equal((await callback(forged.href)).get("error"), "invalid_hmac");

  const back = await callback(link);
  assert.equal(back.get("result"), "connected");
  const id = back.get("integration_id")!;
  // Replayed: the state is single-use.
  assert.equal((await callback(link)).get("error"), "state_used");
  assert.equal(
    (await sql`select count(*)::int as n from public.commerce_integrations where store_domain = ${shop}`)[
      0
    ].n,
    1,
  );

  const [row] =
    await sql`select status, access_token_encrypted as token, webhook_status, scopes
    from public.commerce_integrations where id = ${id}`;
  assert.equal(row.status, "connected");
  assert.equal(row.webhook_status, "active");
  assert.match(row.token, /^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.ok(!row.token.includes("shpat_"), "the token is sealed");
  assert.ok(row.scopes.includes("read_all_orders"));
  const hooks = await control(`/${shop}/webhooks`);
  assert.deepEqual(
    (hooks.subscriptions ?? hooks).map((s: { topic: string }) => s.topic)
      .sort(),
    [
      "app/uninstalled",
      "checkouts/update",
      "orders/create",
      "orders/updated",
      "products/delete",
      "products/update",
    ],
  );

  // A member reads the integration, never its token.
  const cols =
    "id, source, status, store_name, store_domain, webhook_status, last_sync_at";
  const list = await t.db.from("commerce_integrations").select(cols)
    .eq("organization_id", t.id).order("created_at", { ascending: false });
  assert.equal(list.error, null);
  assert.equal(list.data!.length, 1);
  const token = await t.db.from("commerce_integrations").select(
    "access_token_encrypted",
  );
  assert.equal(token.data, null);
  assert.match(token.error!.message, /permission denied/);
  const star = await t.db.from("commerce_integrations").select("*");
  assert.equal(star.data, null, "select * would include the token: refused");

  // Another tenant may not take the same store.
  const u = await makeTenant();
  const taken = await invoke(u.db, "oauth-shopify", { shop });
  assert.equal(taken.status, 409);
  assert.equal(taken.body.error.code, "STORE_CONNECTED");
});

Deno.test("a full sync equals the store id by id; an incremental sync reads only the changes; seed 002's lists work with count: 'exact'", async () => {
  const t = await makeTenant();
  const shop = `full-${tag()}.myshopify.com`;
  await control("/shops", {
    shop,
    products: 400,
    customers: 120,
    orders: 600,
    checkouts: 80,
  });
  const integration = await connect(t, shop);

  const job = await syncAndWait(t, { integration_id: integration });
  for (const r of ["products", "orders", "customers", "abandoned_checkouts"]) {
    assert.equal(job.checkpoints[r].mode, "bulk", `${r} first read in bulk`);
  }
  await assertSameAsStore(shop, integration);
  const [i] =
    await sql`select last_sync_at, last_products_sync_at, last_orders_sync_at, sync_state
    from public.commerce_integrations where id = ${integration}`;
  assert.ok(i.last_sync_at && i.last_products_sync_at && i.last_orders_sync_at);
  assert.ok(i.sync_state.products, "a mark to sync from next time");

  // trigger_ready as seed 002 defines it, on every row.
  const [wrong] =
    await sql`select count(*)::int as n from public.commerce_orders
    where integration_id = ${integration} and trigger_ready <> case
      when payment_type = 'cod' and coalesce(customer_phone, '') <> '' then 'ready'
      when payment_type = 'cod' then 'missing_phone' else 'not_applicable' end::public.trigger_ready_status`;
  assert.equal(wrong.n, 0);
  const ready =
    await sql`select trigger_ready::text as r, count(*)::int as n from public.commerce_orders
    where integration_id = ${integration} group by 1`;
  assert.ok(
    ready.length >= 2,
    `several readiness values: ${JSON.stringify(ready)}`,
  );

  // Changes at the store, then an incremental sync.
  const changed = await control(`/${shop}/mutate`, {
    update_products: 7,
    update_orders: 5,
    create_orders: 3,
    update_customers: 2,
    remove_variants: 3,
    grow_variants: 2,
  });
  const again = await syncAndWait(t, { integration_id: integration });
  assert.equal(again.checkpoints.products.mode, "incremental");
  // Only what changed is read (a record updated in the mark's own second may be read again).
  const productsChanged = new Set(changed.products).size;
  assert.ok(
    again.counts.products.fetched >= productsChanged &&
      again.counts.products.fetched <= productsChanged + 2,
    `products fetched: ${again.counts.products.fetched} of ${productsChanged} changed`,
  );
  const ordersChanged = new Set(changed.orders).size;
  assert.ok(
    again.counts.orders.fetched >= ordersChanged &&
      again.counts.orders.fetched <= ordersChanged + 2,
    `orders fetched: ${again.counts.orders.fetched} of ${ordersChanged} changed`,
  );
  assert.ok(
    again.counts.customers.fetched <= 4 + 8, /* customers of the new orders */
    `customers fetched: ${again.counts.customers.fetched}`,
  );
  await assertSameAsStore(shop, integration);
  // Products grown to 25 variants: the 15 beyond a page's 10 came by follow-up queries.
  assert.equal(changed.added_variants.length >= 15, true);
  const grown = await sql`select p.external_product_id, count(v.*)::int as n
    from public.commerce_products p join public.commerce_product_variants v on v.product_id = p.id
    where p.integration_id = ${integration} group by 1 having count(v.*) = 25`;
  assert.equal(grown.length, 2, "both grown products hold all 25 variants");
  for (const variant of changed.removed_variants) {
    const [v] =
      await sql`select count(*)::int as n from public.commerce_product_variants
      where integration_id = ${integration} and external_variant_id = ${variant}`;
    assert.equal(v.n, 0, "a variant removed at the store is gone");
  }

  // Seed 002's queries, as written, through supabase-js.
  const db = t.db;
  const products = await db.from("commerce_products")
    .select(
      "*, commerce_product_variants(id, title, sku, price, inventory_quantity)",
      { count: "exact" },
    )
    .eq("organization_id", t.id).order("updated_at", { ascending: false })
    .range(20, 39);
  assert.equal(products.error, null);
  assert.equal(products.count, 400);
  assert.equal(products.data!.length, 20);
  assert.ok(products.data![0].commerce_product_variants.length >= 1);
  const search = await db.from("commerce_products").select("id, title", {
    count: "exact",
  })
    .eq("organization_id", t.id).ilike(
      "title",
      `%${products.data![0].title.slice(0, 6)}%`,
    ).range(0, 9);
  assert.ok(
    search.count! >= 1,
    `search for ${products.data![0].title}: ${
      JSON.stringify(search.error)
    } ${search.count}`,
  );
  const orders = await db.from("commerce_orders")
    .select(
      `id, order_number, customer_name, customer_phone, customer_email,
      total_amount, currency, payment_type, financial_status,
      fulfillment_status, trigger_ready, order_created_at,
      commerce_order_items(id, title, quantity, price, total)`,
      { count: "exact" },
    )
    .eq("organization_id", t.id).order("order_created_at", { ascending: false })
    .eq("payment_type", "cod").eq("trigger_ready", "ready").range(0, 24);
  assert.equal(orders.error, null);
  const [cod] = await sql`select count(*)::int as n from public.commerce_orders
    where integration_id = ${integration} and payment_type = 'cod' and trigger_ready = 'ready'`;
  assert.equal(orders.count, cod.n);
  assert.ok(
    orders.data!.every((o) =>
      o.trigger_ready === "ready" && o.commerce_order_items.length >= 1
    ),
  );
  const carts = await db.from("commerce_abandoned_carts")
    .select(
      `id, customer_name, customer_phone, customer_email, total_value, currency, items_count, status,
      trigger_ready, abandoned_at, recovery_url, commerce_cart_items(id, title, quantity, price, image_url)`,
      { count: "exact" },
    )
    .eq("organization_id", t.id).order("abandoned_at", { ascending: false })
    .range(0, 9);
  assert.equal(carts.count, 80);
  const detail = await db.from("commerce_orders")
    .select(
      `*, commerce_order_items(*, commerce_products:product_id(title, images),
      commerce_product_variants:variant_id(title, sku)), commerce_integrations:integration_id(store_name, source)`,
    )
    .eq("id", orders.data![0].id).single();
  assert.equal(detail.error, null);
  assert.equal(detail.data.commerce_integrations.source, "shopify");

  // The dashboard's outcomes (seed 002), against the rows.
  const outcomes = await db.rpc("commerce_outcomes", { period: "all_time" });
  const [rec] =
    await sql`select count(*)::int as n, coalesce(sum(total_value), 0)::text as v
    from public.commerce_abandoned_carts where integration_id = ${integration} and status = 'recovered'`;
  assert.equal(outcomes.data.carts_recovered, rec.n);
  assert.equal(Number(outcomes.data.revenue_recovered), Number(rec.v));
  assert.equal(outcomes.data.cod_confirmed, null);

  // Another tenant's integration is not found, and nothing is started.
  const u = await makeTenant();
  const foreign = await invoke(u.db, "sync-platform", {
    integration_id: integration,
  });
  assert.equal(foreign.status, 404);
  assert.equal(foreign.body.error.details.resource, "integration");
  const empty = await u.db.from("commerce_products").select("id", {
    count: "exact",
    head: true,
  });
  assert.equal(empty.count, 0, "RLS: no rows of another tenant");
});

Deno.test("a sync killed mid-run resumes from its checkpoint with no gap and no duplicate; a second request joins the running one", async () => {
  const t = await makeTenant();
  const shop = `kill-${tag()}.myshopify.com`;
  await control("/shops", {
    shop,
    products: 1500,
    customers: 50,
    orders: 300,
    checkouts: 20,
  });
  const integration = await connect(t, shop);
  const port = 25397;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      new URL("../scripts/serve_one.ts", import.meta.url).pathname,
      "sync-platform",
      String(port),
    ],
    // Small chunks, so there is a middle to be killed in.
    env: {
      ...env,
      POSTGREST_URL: `http://127.0.0.1:${Deno.env.get("REST_PORT") ?? "25330"}`,
      SYNC_BULK_CHUNK: "25",
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await until("the doomed sync-platform", 30, async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: "OPTIONS" });
      await r.body?.cancel();
      return true;
    } catch {
      return undefined;
    }
  });
  const started = await fetch(`http://127.0.0.1:${port}/`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${t.token}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      integration_id: integration,
      resources: ["products", "orders"],
    }),
  });
  assert.equal(started.status, 202);
  const job = (await started.json()).id;
  // A second request joins it.
  const joined = await invoke(t.db, "sync-platform", {
    integration_id: integration,
  });
  assert.equal(joined.status, 202);
  assert.equal(joined.body.id, job);
  assert.equal(joined.body.joined, true);

  await until("some products written, not all", 60, async () => {
    const [j] =
      await sql`select checkpoints from public.commerce_sync_jobs where id = ${job}`;
    const p = j.checkpoints.products;
    return p.records >= 100 ? true : undefined;
  });
  child.kill("SIGKILL");
  await child.status;
  const [mid] =
    await sql`select status, checkpoints from public.commerce_sync_jobs where id = ${job}`;
  assert.equal(mid.status, "running");
  assert.ok(!mid.checkpoints.products.done, "killed in the middle");
  const line = mid.checkpoints.products.line;

  // pg_cron's job hands it on once the dead invocation's lease runs out.
  const [{ command }] =
    await sql`select command from cron.job where jobname = 'resume-commerce-syncs'`;
  const done = await until("the resumed sync to finish", 120, async () => {
    await sql.unsafe(command);
    const [j] =
      await sql`select status, error, checkpoints, invocations from public.commerce_sync_jobs where id = ${job}`;
    if (j.status === "failed") throw new Error(j.error);
    return j.status === "completed" ? j : undefined;
  });
  assert.ok(done.invocations >= 2);
  assert.ok(done.checkpoints.products.line > line);
  for (const resource of ["products", "variants", "orders", "line_items"]) {
    const ours = await ourIds(integration, resource);
    assert.deepEqual(
      ours,
      await storeIds(shop, resource),
      `${resource}: no gap, no duplicate`,
    );
  }
});

Deno.test("the throttle is honoured: pages wait for the bucket rather than be refused", async () => {
  const t = await makeTenant();
  const shop = `throttle-${tag()}.myshopify.com`;
  await control("/shops", {
    shop,
    products: 200,
    customers: 10,
    orders: 10,
    checkouts: 5,
  });
  const integration = await connect(t, shop);
  await syncAndWait(t, {
    integration_id: integration,
    resources: ["products"],
  });
  await control(`/${shop}/mutate`, { update_products: 150 });
  // A small, drained bucket: a page of 19 products asks 952 points, and
  // only 100 are there, so the first page is refused (THROTTLED) and waits;
  // every later page waits for the points before it is sent.
  await control("/throttle", {
    maximumAvailable: 1000,
    restoreRate: 500,
    currentlyAvailable: 100,
  });
  try {
    const before = await control(`/${shop}/stats`);
    const job = await syncAndWait(t, {
      integration_id: integration,
      resources: ["products"],
    });
    const after = await control(`/${shop}/stats`);
    assert.ok(job.counts.products.fetched >= 150);
    const throttled = after.throttled - before.throttled;
    assert.equal(
      job.throttled,
      throttled,
      "every THROTTLED answer is counted on the job",
    );
    assert.equal(
      throttled,
      1,
      `only the first page, sent blind, is refused (${throttled} refusals)`,
    );
    assert.ok(after.graphql_calls - before.graphql_calls >= 6);
    await assertSameAsStore(shop, integration, ["products", "variants"]);
  } finally {
    await control("/throttle", { maximumAvailable: 2000, restoreRate: 100 });
  }
});

// The compliance topics are set in the app's configuration, not subscribed.
const compliance = [
  "customers/data_request",
  "customers/redact",
  "shop/redact",
];
// deno-lint-ignore no-explicit-any
async function send(shop: string, spec: Record<string, unknown>): Promise<any> {
  const uri = compliance.includes(spec.topic as string)
    ? { uri: `${url}/functions/v1/shopify-webhook` }
    : {};
  return await control(`/${shop}/send`, { ...uri, ...spec });
}

Deno.test("webhooks: valid, forged (401), replayed (once), products/delete, customers/redact, shop/redact and app/uninstalled", async () => {
  const t = await makeTenant();
  const shop = `hooks-${tag()}.myshopify.com`;
  const integration = await connect(t, shop);
  await syncAndWait(t, { integration_id: integration });

  const created = await send(shop, { topic: "orders/create" });
  assert.equal(created.status, 200, JSON.stringify(created));
  assert.ok(created.elapsed_ms < 5000);
  const orderId = String(created.payload.id);
  await until("the new order", 10, async () => {
    const [o] = await sql`select count(*)::int as n from public.commerce_orders
      where integration_id = ${integration} and external_order_id = ${orderId}`;
    return o.n === 1 ? true : undefined;
  });

  // Forged: 401, nothing recorded.
  const forged = await send(shop, { topic: "orders/create", tamper: true });
  assert.equal(forged.status, 401);
  const [f] =
    await sql`select count(*)::int as n from public.commerce_webhook_events where webhook_id = ${forged.webhook_id}`;
  assert.equal(f.n, 0);
  const [fo] = await sql`select count(*)::int as n from public.commerce_orders
    where integration_id = ${integration} and external_order_id = ${
    String(forged.payload.id)
  }`;
  assert.equal(fo.n, 0);
  // The compliance topics answer 401 to a bad HMAC too.
  assert.equal(
    (await send(shop, { topic: "shop/redact", tamper: true })).status,
    401,
  );

  // Replayed with the same webhook id: acknowledged, applied once.
  const replay = await send(shop, {
    topic: "orders/updated",
    payload: created.payload,
    webhook_id: created.webhook_id,
  });
  assert.equal(replay.status, 200);
  assert.equal(JSON.parse(replay.body).duplicate, true);
  const [events] =
    await sql`select count(*)::int as n from public.commerce_webhook_events where webhook_id = ${created.webhook_id}`;
  assert.equal(events.n, 1);

  const deleted = await send(shop, { topic: "products/delete" });
  assert.equal(deleted.status, 200);
  await until("the product soft-deleted", 10, async () => {
    const [p] = await sql`select deleted_at from public.commerce_products
      where integration_id = ${integration} and external_product_id = ${
      String(deleted.payload.id)
    }`;
    return p?.deleted_at ? true : undefined;
  });
  const visible = await t.db.from("commerce_products").select("id").eq(
    "external_product_id",
    String(deleted.payload.id),
  );
  assert.deepEqual(visible.data, [], "members do not see deleted products");

  // customers/redact: that customer's PII is gone everywhere.
  const [victim] =
    await sql`select c.external_customer_id as id from public.commerce_customers c
    where c.integration_id = ${integration} and exists (select 1 from public.commerce_orders o where o.customer_id = c.id)
    limit 1`;
  const redact = await send(shop, {
    topic: "customers/redact",
    customer_id: victim.id,
  });
  assert.equal(redact.status, 200);
  await until("the customer redacted", 10, async () => {
    const [c] = await sql`select redacted_at from public.commerce_customers
      where integration_id = ${integration} and external_customer_id = ${victim.id}`;
    return c.redacted_at ? true : undefined;
  });
  const [pii] = await sql`select
      (select count(*) from public.commerce_customers where integration_id = ${integration}
         and external_customer_id = ${victim.id} and (email is not null or phone is not null or name is not null))::int as customers,
      (select count(*) from public.commerce_orders o join public.commerce_customers c on c.id = o.customer_id
         where c.external_customer_id = ${victim.id} and c.integration_id = ${integration}
           and (o.customer_email is not null or o.customer_phone is not null or o.customer_name is not null
                or o.shipping_address is not null))::int as orders`;
  assert.deepEqual(pii, { customers: 0, orders: 0 });

  // customers/data_request: logged for the tenant to answer.
  const asked = await send(shop, {
    topic: "customers/data_request",
    customer_id: victim.id,
  });
  assert.equal(asked.status, 200);
  await until("the data request logged", 10, async () => {
    const [a] = await sql`select details from public.audit_log
      where entity_id = ${integration} and action = 'commerce.customer_data_requested'`;
    return a ? a : undefined;
  });

  // app/uninstalled: disconnected, token destroyed.
  const gone = await send(shop, { topic: "app/uninstalled" });
  assert.equal(gone.status, 200);
  await until("the integration disconnected", 10, async () => {
    const [i] =
      await sql`select status, access_token_encrypted from public.commerce_integrations where id = ${integration}`;
    return i.status === "disconnected" && i.access_token_encrypted === null
      ? true
      : undefined;
  });

  // shop/redact (48 hours after uninstall at Shopify): every row of the store deleted.
  const shopRedact = await send(shop, { topic: "shop/redact" });
  assert.equal(shopRedact.status, 200);
  await until("the store's rows deleted", 10, async () => {
    const [n] =
      await sql`select (select count(*) from public.commerce_orders where integration_id = ${integration})
      + (select count(*) from public.commerce_products where integration_id = ${integration})
      + (select count(*) from public.commerce_customers where integration_id = ${integration})::int as n`;
    return Number(n.n) === 0 ? true : undefined;
  });
  const [audit] =
    await sql`select array_agg(action order by id) as actions from public.audit_log
    where tenant_id = ${t.id} and entity_id = ${integration}`;
  for (
    const a of [
      "integration.connected",
      "commerce.customer_redacted",
      "integration.uninstalled",
      "commerce.shop_redacted",
    ]
  ) {
    assert.ok(audit.actions.includes(a), `${a} in ${audit.actions}`);
  }
});

Deno.test("disconnect revokes at Shopify, destroys the token, keeps the data by default and purges it when asked", async () => {
  const t = await makeTenant();
  const shop = `bye-${tag()}.myshopify.com`;
  const integration = await connect(t, shop);
  await syncAndWait(t, {
    integration_id: integration,
    resources: ["products"],
  });

  const bad = await invoke(t.db, "disconnect-platform", {
    integration_id: integration,
    mode: "all",
  });
  assert.equal(bad.status, 400);
  const u = await makeTenant();
  const foreign = await invoke(u.db, "disconnect-platform", {
    integration_id: integration,
  });
  assert.equal(foreign.status, 404);
  assert.equal(
    (await control(`/${shop}/stats`)).uninstalled,
    false,
    "nothing revoked for a stranger",
  );

  const kept = await invoke(t.db, "disconnect-platform", {
    integration_id: integration,
  });
  assert.equal(kept.status, 200, JSON.stringify(kept.body));
  assert.equal(kept.body.status, "disconnected");
  assert.equal(kept.body.revoked, "revoked");
  assert.equal(kept.body.purged, null);
  assert.equal((await control(`/${shop}/stats`)).uninstalled, true);
  const [i] =
    await sql`select status, access_token_encrypted from public.commerce_integrations where id = ${integration}`;
  assert.deepEqual(i, { status: "disconnected", access_token_encrypted: null });
  assert.equal(
    (await ourIds(integration, "products")).length,
    25,
    "keep_data keeps the rows",
  );
  const sync = await invoke(t.db, "sync-platform", {
    integration_id: integration,
  });
  assert.equal(sync.status, 409);
  assert.equal(sync.body.error.code, "INTEGRATION_NOT_CONNECTED");

  // Reconnect (the same integration comes back), then purge.
  assert.equal(await connect(t, shop), integration);
  const purged = await invoke(t.db, "disconnect-platform", {
    integration_id: integration,
    mode: "purge",
  });
  assert.equal(purged.status, 200);
  assert.equal(purged.body.purged.products, 25);
  assert.equal((await ourIds(integration, "products")).length, 0);
  const [audit] = await sql`select details from public.audit_log
    where entity_id = ${integration} and action = 'integration.disconnected' order by id desc limit 1`;
  assert.equal(audit.details.purge, true);
  assert.equal(audit.details.revoked, "revoked");
});

Deno.test("bad input to the Shopify functions is a 4xx in the one envelope and changes nothing", async () => {
  const t = await makeTenant();
  const shop = `edge-${tag()}.myshopify.com`;
  const integration = await connect(t, shop);
  const counts = async () => {
    const [n] = await sql`select
      (select count(*) from public.commerce_sync_jobs where integration_id = ${integration})::int as jobs,
      (select status::text from public.commerce_integrations where id = ${integration}) as status`;
    return n;
  };
  const before = await counts();
  const changed = async () =>
    JSON.stringify(await counts()) !== JSON.stringify(before);
  await assertBoundary(
    t,
    "sync-platform",
    { integration_id: integration },
    changed,
  );
  await assertBoundary(t, "disconnect-platform", {
    integration_id: integration,
  }, changed);
  // oauth-shopify's start (its GET is Shopify's callback).
  const post = (body: string, token?: string) =>
    fetch(`${url}/functions/v1/oauth-shopify`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
      body,
    });
  for (
    const [body, token, status, code] of [
      ['{"shop": ', t.token, 400, "INVALID_JSON"],
      [
        JSON.stringify({ shop: "a\u0000b.myshopify.com" }),
        t.token,
        400,
        "VALIDATION_ERROR",
      ],
      [
        JSON.stringify({ shop, pad: "x".repeat(2 * 1024 * 1024) }),
        t.token,
        413,
        "PAYLOAD_TOO_LARGE",
      ],
      [JSON.stringify({ shop }), undefined, 401, "UNAUTHORIZED"],
      [JSON.stringify({ shop }), env.SUPABASE_ANON_KEY, 401, "UNAUTHORIZED"],
    ] as const
  ) {
    const res = await post(body, token);
    const out = await res.json();
    assert.equal(res.status, status, JSON.stringify(out));
    assert.equal(out.error.code, code);
  }
  const put = await fetch(`${url}/functions/v1/oauth-shopify`, {
    method: "PUT",
    headers: { authorization: `Bearer ${t.token}` },
  });
  assert.equal(put.status, 405);
  await put.body?.cancel();
  // A callback without Shopify's signature stores nothing.
  const unsigned = await fetch(
    `${url}/functions/v1/oauth-shopify?shop=${shop}&code=x&state=y`,
    { redirect: "manual" },
  );
  await unsigned.body?.cancel();
  assert.equal(
    new URL(unsigned.headers.get("location")!).searchParams.get("error"),
    "invalid_hmac",
  );
  assert.equal(await changed(), false);
});

/** The platform's own tenant (SHOPIFY_ADMIN_TENANT_ID), with a new admin. */
async function platformTenant(): Promise<Tenant> {
  const id = env.SHOPIFY_ADMIN_TENANT_ID;
  await sql`insert into public.tenants (id, slug, business_name)
    values (${id}, ${`platform-${
    id.slice(0, 8)
  }`}, 'The platform') on conflict (id) do nothing`;
  const email = `platform-${tag()}@e2e.test`;
  const [user] =
    await sql`insert into auth.users (email) values (${email}) returning id::text`;
  await sql`insert into public.tenant_users (tenant_id, user_id, email) values (${id}, ${user.id}, ${email})`;
  const token = await userToken(keys, { id: user.id, email }, url);
  return {
    id,
    userId: user.id,
    token,
    db: clientFor(token),
    warehouses: [],
    products: [],
    clientId: "",
  };
}

Deno.test("the platform's own store connects by name alone with its custom-app token, for the platform's tenant only, and keeps that token on disconnect", async () => {
  // A run before this one on the same stack may have left it connected.
  await sql`update public.commerce_integrations set status = 'disconnected', access_token_encrypted = null
    where store_domain = ${env.SHOPIFY_ADMIN_SHOP}`;
  const name = env.SHOPIFY_ADMIN_SHOP.replace(".myshopify.com", "");
  // Another tenant naming the platform's store gets the merchant's approval flow, not the token.
  const stranger = await makeTenant();
  const other = await invoke(stranger.db, "oauth-shopify", {
    store_name: name,
  });
  assert.equal(other.status, 200);
  assert.equal(other.body.mode, "oauth");

  const t = await platformTenant();
  const res = await invoke(t.db, "oauth-shopify", { store_name: name });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.equal(res.body.mode, "custom_app");
  const integration = res.body.integration_id;
  const [row] =
    await sql`select auth_mode, status, access_token_encrypted as token
    from public.commerce_integrations where id = ${integration}`;
  assert.equal(row.auth_mode, "custom_app");
  assert.equal(row.status, "connected");
  assert.ok(!row.token.includes(env.SHOPIFY_ADMIN_ACCESS_TOKEN), "sealed");
  await syncAndWait(t, {
    integration_id: integration,
    resources: ["products"],
  });
  await assertSameAsStore(env.SHOPIFY_ADMIN_SHOP, integration, [
    "products",
    "variants",
  ]);
  const bye = await invoke(t.db, "disconnect-platform", {
    integration_id: integration,
  });
  assert.equal(bye.status, 200);
  assert.equal(bye.body.revoked, "custom_app_kept");
  assert.equal(
    (await control(`/${env.SHOPIFY_ADMIN_SHOP}/stats`)).uninstalled,
    false,
  );
});

Deno.test("one tenant's flood of sync requests gets fast 429s and starts one job; another tenant's sync is not held up", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${a.id}, 'sync-platform', 3, 60)`;
  const shopA = `flood-a-${tag()}.myshopify.com`;
  const shopB = `flood-b-${tag()}.myshopify.com`;
  const [ia, ib] = [await connect(a, shopA), await connect(b, shopB)];
  const flood = Array.from(
    { length: 20 },
    () => invoke(a.db, "sync-platform", { integration_id: ia }),
  );
  const theirs = syncAndWait(b, { integration_id: ib });
  const outcomes = await Promise.all(flood);
  const statuses = outcomes.map((o) => o.status).sort();
  assert.equal(
    statuses.filter((s) => s === 202).length,
    3,
    JSON.stringify(statuses),
  );
  assert.equal(statuses.filter((s) => s === 429).length, 17);
  const limited = outcomes.find((o) => o.status === 429)!;
  assert.equal(limited.body.error.code, "RATE_LIMITED");
  assert.ok(Number(limited.headers.get("retry-after")) >= 1);
  // The three admitted requests share one job.
  const [jobs] =
    await sql`select count(*)::int as n from public.commerce_sync_jobs where integration_id = ${ia}`;
  assert.equal(jobs.n, 1);
  // B's own sync completes and equals its store.
  await theirs;
  await assertSameAsStore(shopB, ib);
});
