// create-wholesale-order end to end: supabase-js → gateway → loader → wasm →
// PostgREST → Postgres, with ground truth read straight from the database.
import assert from "node:assert/strict";
import {
  clientFor,
  env,
  invoke,
  keys,
  makeTenant,
  order,
  ordersOf,
  signEs256,
  signHs256,
  sql,
  stockOf,
  url,
} from "./_stack.ts";
import { generateKeys } from "../scripts/jwt.ts";

const FN = "create-wholesale-order";

Deno.test("an order is placed and every row it implies is written", async () => {
  const t = await makeTenant({ warehouses: 2, stock: 5, reorderPoint: 2 });
  const res = await invoke(
    t.db,
    FN,
    order(t, {
      items: [
        { product_id: t.products[0], quantity: 7, unit_price: 12.5 },
        { product_id: t.products[1], quantity: 1.25, unit_price: 0.99 },
      ],
      payment_terms: "net_30",
      delivery_method: "delivery",
      notes: "leave at dock 4",
    }),
  );
  assert.deepEqual(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(res.body.success, true);
  assert.match(res.body.order_number, /^WO-\d{4}-000001$/);
  assert.deepEqual(res.body.total_amount, 88.74); // 87.50 + round(1.2375, 2)

  const id = res.body.order_id;
  const [o] = await sql`select * from public.wholesale_orders where id = ${id}`;
  assert.deepEqual(o.tenant_id, t.id);
  assert.deepEqual(o.total_amount, "88.74");
  assert.deepEqual(o.notes, "leave at dock 4");
  assert.deepEqual(o.created_by, t.userId);
  const items = await sql`select line_number, quantity::text, total_price::text
    from public.wholesale_order_items where order_id = ${id} order by line_number`;
  assert.deepEqual(items.map((i) => [i.quantity, i.total_price]), [
    ["7.00", "87.50"],
    ["1.25", "1.24"],
  ]);
  // 7 from a product stocked 5 + 5: warehouse 1 drained first, 2 from warehouse 2
  const alloc =
    await sql`select w.priority, a.quantity::text from public.wholesale_order_allocations a
    join public.warehouses w on w.id = a.warehouse_id
    join public.wholesale_order_items i on i.id = a.order_item_id
    where i.order_id = ${id} and i.line_number = 1 order by w.priority`;
  assert.deepEqual(alloc.map((a) => [a.priority, a.quantity]), [[1, "5.00"], [
    2,
    "2.00",
  ]]);
  assert.deepEqual(await stockOf(t.products[0]), 3);
  const [client] =
    await sql`select current_balance::text from public.wholesale_clients where id = ${t.clientId}`;
  assert.deepEqual(client.current_balance, "88.74");
  const [{ n: deliveries }] =
    await sql`select count(*)::int as n from public.deliveries where order_id = ${id}`;
  assert.deepEqual(deliveries, 1);
  const outbox = await sql`select channel from public.notification_outbox
    where payload->>'order_id' = ${id} order by channel`;
  assert.deepEqual(outbox.map((r) => r.channel), ["email", "sms"]);
  const [{ n: alerts }] =
    await sql`select count(*)::int as n from public.inventory_alerts
    where product_id = ${t.products[0]} and status = 'active'`;
  assert.deepEqual(
    alerts,
    1,
    "warehouse 1 at 0 is at or below its reorder point of 2",
  );
  const [{ n: audits }] =
    await sql`select count(*)::int as n from public.audit_log
    where entity_id = ${id} and action = 'wholesale_order.created'`;
  assert.deepEqual(audits, 1);

  // The user reads the order back through the REST API, under RLS.
  const { data, error } = await t.db.from("wholesale_orders").select(
    "order_number",
  ).eq("id", id);
  assert.deepEqual(error, null);
  assert.deepEqual(data, [{ order_number: res.body.order_number }]);
});

Deno.test("each validation error is a 400 naming the field, and changes nothing", async () => {
  const t = await makeTenant();
  const cases: [Record<string, unknown>, string, string][] = [
    [order(t, { client_id: "nope" }), "client_id", "must be a UUID string"],
    [order(t, { items: [] }), "items", "must have 1 to 500 entries"],
    [
      order(t, {
        items: Array(501).fill({
          product_id: t.products[0],
          quantity: 1,
          unit_price: 1,
        }),
      }),
      "items",
      "must have 1 to 500 entries",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: 0, unit_price: 1 }],
      }),
      "items[0].quantity",
      "must be greater than 0",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: -2, unit_price: 1 }],
      }),
      "items[0].quantity",
      "must be greater than 0",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: 1, unit_price: -0.01 }],
      }),
      "items[0].unit_price",
      "must be at least 0",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: 1, unit_price: 1.001 }],
      }),
      "items[0].unit_price",
      "must have at most 2 decimal places",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: "1", unit_price: 1 }],
      }),
      "items[0].quantity",
      "must be a number",
    ],
    [
      order(t, { payment_terms: "barter" }),
      "payment_terms",
      "must be one of: prepaid, cod, net_15, net_30, net_60",
    ],
    [
      order(t, { delivery_method: "drone" }),
      "delivery_method",
      "must be one of: pickup, delivery, freight",
    ],
    [
      order(t, { notes: "n".repeat(2001) }),
      "notes",
      "must be at most 2000 characters",
    ],
    [order(t, { tenant_id: t.id }), "tenant_id", "unknown field"],
    [
      order(t, {
        items: [{
          product_id: t.products[0],
          quantity: 1,
          unit_price: 1,
          colour: "red",
        }],
      }),
      "items[0].colour",
      "unknown field",
    ],
    [
      order(t, {
        items: [{ product_id: t.products[0], quantity: 1, unit_price: 1 }, {
          product_id: t.products[0],
          quantity: 2,
          unit_price: 1,
        }],
      }),
      "items[1].product_id",
      "repeats items[0] for the same warehouse; combine them into one line",
    ],
  ];
  for (const [body, path, message] of cases) {
    const res = await invoke(t.db, FN, body);
    assert.deepEqual(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    assert.deepEqual(res.body.error.code, "VALIDATION_ERROR");
    assert.deepEqual(res.body.error.details[path], message, path);
  }
  const missing = await invoke(t.db, FN, {});
  assert.deepEqual(missing.status, 400);
  for (const k of ["client_id", "items", "payment_terms", "delivery_method"]) {
    assert.deepEqual(missing.body.error.details[k], "is required");
  }
  assert.deepEqual(await ordersOf(t.id), 0);
  assert.deepEqual(await stockOf(t.products[0]), 100);
});

Deno.test("malformed JSON, oversized bodies, wrong methods, bad keys and preflight", async () => {
  const t = await makeTenant();
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/functions/v1/${FN}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.token}`,
        "content-type": "application/json",
        ...headers,
      },
      body,
    });
  let res = await post('{"client_id": ');
  assert.deepEqual(res.status, 400);
  assert.deepEqual((await res.json()).error.code, "INVALID_JSON");
  res = await post("[1, 2]");
  assert.deepEqual((await res.json()).error.code, "INVALID_JSON");

  res = await post(
    JSON.stringify({ ...order(t), notes: "x".repeat(300 * 1024) }),
  );
  assert.deepEqual(res.status, 413);
  assert.deepEqual((await res.json()).error.code, "PAYLOAD_TOO_LARGE");

  res = await post(JSON.stringify(order(t)), {
    "idempotency-key": "has spaces in it",
  });
  assert.deepEqual(res.status, 400);
  assert.deepEqual(
    (await res.json()).error.details["Idempotency-Key"],
    "must be 1 to 255 visible ASCII characters",
  );

  const get = await invoke(t.db, FN, undefined, {}, "GET");
  assert.deepEqual(get.status, 405);
  assert.deepEqual(get.body.error.code, "METHOD_NOT_ALLOWED");
  assert.deepEqual(get.headers.get("allow"), "POST, OPTIONS");

  const pre = await fetch(`${url}/functions/v1/${FN}`, {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example",
      "access-control-request-method": "POST",
    },
  });
  await pre.body?.cancel();
  assert.deepEqual(pre.status, 204);
  assert.deepEqual(pre.headers.get("access-control-allow-origin"), "*");
  assert(
    pre.headers.get("access-control-allow-headers")!.includes(
      "idempotency-key",
    ),
  );
  assert.deepEqual(await ordersOf(t.id), 0);
});

Deno.test("a missing, anon, expired, foreign-signed or tampered token gets 401", async () => {
  const t = await makeTenant();
  const body = JSON.stringify(order(t));
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: t.userId, role: "authenticated", aud: "authenticated" };
  const foreign = await generateKeys();
  const tokens: [string, string | undefined][] = [
    ["missing", undefined],
    ["anon key", env.SUPABASE_ANON_KEY],
    [
      "expired",
      await signEs256(
        { ...claims, iat: now - 7200, exp: now - 3600 },
        keys.es256_private,
        keys.es256_public.kid,
      ),
    ],
    [
      "foreign key",
      await signEs256(
        { ...claims, exp: now + 600 },
        foreign.es256_private,
        keys.es256_public.kid,
      ),
    ],
    [
      "wrong secret",
      await signHs256(
        { ...claims, exp: now + 600 },
        "not-the-project-secret-not-the-project",
      ),
    ],
    [
      "alg none",
      `${btoa('{"alg":"none"}').replace(/=+$/, "")}.${
        btoa(JSON.stringify({ ...claims, exp: now + 600 })).replace(/=+$/, "")
      }.`,
    ],
    [
      "tampered",
      t.token.replace(/\.([^.]+)\./, (_m, p) => `.${p.slice(0, -2)}AA.`),
    ],
  ];
  for (const [name, token] of tokens) {
    const res = await fetch(`${url}/functions/v1/${FN}`, {
      method: "POST",
      headers: token ? { authorization: `Bearer ${token}` } : {},
      body,
    });
    assert.deepEqual(res.status, 401, name);
    assert.deepEqual((await res.json()).error.code, "UNAUTHORIZED", name);
  }
  // supabase-js without a session sends the anon key: still 401.
  const anon = await invoke(clientFor(), FN, order(t));
  assert.deepEqual(anon.status, 401);
  // The legacy HS256 secret still signs valid user tokens.
  const legacy = await signHs256(
    { ...claims, exp: now + 600 },
    keys.jwt_secret,
  );
  const ok = await invoke(clientFor(legacy), FN, order(t));
  assert.deepEqual(ok.status, 201, JSON.stringify(ok.body));
  assert.deepEqual(await ordersOf(t.id), 1);
});

Deno.test("another tenant's client or product is 404 and changes nothing", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const foreignClient = await invoke(
    a.db,
    FN,
    order(a, { client_id: b.clientId }),
  );
  assert.deepEqual(foreignClient.status, 404);
  assert.deepEqual(foreignClient.body.error.code, "NOT_FOUND");
  assert.deepEqual(foreignClient.body.error.details.resource, "client");
  const foreignProduct = await invoke(
    a.db,
    FN,
    order(a, {
      items: [{ product_id: b.products[0], quantity: 1, unit_price: 1 }],
    }),
  );
  assert.deepEqual(foreignProduct.status, 404);
  assert.deepEqual(foreignProduct.body.error.details, {
    resource: "product",
    ids: [b.products[0]],
  });
  const foreignWarehouse = await invoke(
    a.db,
    FN,
    order(a, {
      items: [{
        product_id: a.products[0],
        quantity: 1,
        unit_price: 1,
        warehouse_id: b.warehouses[0],
      }],
    }),
  );
  assert.deepEqual(foreignWarehouse.status, 404);
  assert.deepEqual(await ordersOf(a.id), 0);
  assert.deepEqual(await ordersOf(b.id), 0);
  assert.deepEqual(await stockOf(b.products[0]), 100);
  assert.deepEqual(await stockOf(a.products[0]), 100);
});

Deno.test("credit limit exceeded is 409 with the numbers, and changes nothing", async () => {
  const t = await makeTenant({ creditLimit: 100 });
  const first = await invoke(
    t.db,
    FN,
    order(t, {
      items: [{ product_id: t.products[0], quantity: 6, unit_price: 10 }],
      payment_terms: "net_15",
    }),
  );
  assert.deepEqual(first.status, 201);
  const res = await invoke(
    t.db,
    FN,
    order(t, {
      items: [{ product_id: t.products[0], quantity: 5, unit_price: 10 }],
      payment_terms: "net_30",
    }),
  );
  assert.deepEqual(res.status, 409);
  assert.deepEqual(res.body.error.code, "CREDIT_LIMIT_EXCEEDED");
  assert.deepEqual(res.body.error.details, {
    credit_limit: 100,
    current_balance: 60,
    order_total: 50,
    available_credit: 40,
  });
  assert.deepEqual(await ordersOf(t.id), 1);
  assert.deepEqual(await stockOf(t.products[0]), 94);
  const [c] =
    await sql`select current_balance::text from public.wholesale_clients where id = ${t.clientId}`;
  assert.deepEqual(c.current_balance, "60.00");
  // Prepaid needs no credit.
  const prepaid = await invoke(
    t.db,
    FN,
    order(t, {
      items: [{ product_id: t.products[0], quantity: 5, unit_price: 10 }],
    }),
  );
  assert.deepEqual(prepaid.status, 201);
});

Deno.test("32 parallel orders for a product with stock 10: exactly 10 succeed", async () => {
  const t = await makeTenant({ products: 1, stock: 10, maxConcurrent: 8 });
  const results = await Promise.all(
    Array.from({ length: 32 }, () => invoke(clientFor(t.token), FN, order(t))),
  );
  const statuses = results.map((r) => r.status);
  assert.deepEqual(
    statuses.filter((s) => s === 201).length,
    10,
    JSON.stringify(statuses),
  );
  const refused = results.filter((r) => r.status !== 201);
  assert.deepEqual(refused.length, 22);
  for (const r of refused) {
    assert.deepEqual(r.status, 409);
    assert.deepEqual(r.body.error.code, "INSUFFICIENT_STOCK");
    assert.deepEqual(r.body.error.details.short[0].requested, 1);
    assert.deepEqual(r.body.error.details.short[0].available, 0);
  }
  assert.deepEqual(await stockOf(t.products[0]), 0);
  assert.deepEqual(await ordersOf(t.id), 10);
  const numbers = results.filter((r) => r.status === 201).map((r) =>
    r.body.order_number
  ).sort();
  assert.deepEqual(
    numbers,
    Array.from(
      { length: 10 },
      (_, i) => numbers[0].replace(/\d{6}$/, String(i + 1).padStart(6, "0")),
    ),
  );
});

Deno.test("crossing two-item orders in parallel never deadlock", async () => {
  const t = await makeTenant({ products: 2, stock: 1000, maxConcurrent: 8 });
  const [a, b] = t.products;
  const line = (p: string) => ({ product_id: p, quantity: 1, unit_price: 1 });
  const results = await Promise.all(
    Array.from(
      { length: 24 },
      (_, i) =>
        invoke(
          clientFor(t.token),
          FN,
          order(t, { items: i % 2 ? [line(a), line(b)] : [line(b), line(a)] }),
        ),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.status),
    Array(24).fill(201),
    JSON.stringify(results.find((r) => r.status !== 201)?.body),
  );
  assert.deepEqual(await stockOf(a), 976);
  assert.deepEqual(await stockOf(b), 976);
});

Deno.test("20 parallel requests with one idempotency key create exactly one order", async () => {
  const t = await makeTenant({ maxConcurrent: 8 });
  const key = crypto.randomUUID();
  const results = await Promise.all(
    Array.from(
      { length: 20 },
      () =>
        invoke(clientFor(t.token), FN, order(t), { "Idempotency-Key": key }),
    ),
  );
  assert.deepEqual(
    results.map((r) => r.status),
    Array(20).fill(201),
    JSON.stringify(results.map((r) => r.body)),
  );
  assert.deepEqual(new Set(results.map((r) => r.body.order_id)).size, 1);
  assert.deepEqual(
    results.filter((r) => r.headers.get("idempotent-replayed") === "true")
      .length,
    19,
  );
  assert.deepEqual(await ordersOf(t.id), 1);
  assert.deepEqual(await stockOf(t.products[0]), 99);
});

Deno.test("a reused idempotency key with a different body gets 422 and changes nothing", async () => {
  const t = await makeTenant();
  const key = crypto.randomUUID();
  const first = await invoke(t.db, FN, order(t), { "Idempotency-Key": key });
  assert.deepEqual(first.status, 201);
  const again = await invoke(t.db, FN, order(t), { "Idempotency-Key": key });
  assert.deepEqual(again.status, 201);
  assert.deepEqual(again.body, first.body);
  const other = await invoke(t.db, FN, order(t, { notes: "changed" }), {
    "Idempotency-Key": key,
  });
  assert.deepEqual(other.status, 422);
  assert.deepEqual(other.body.error.code, "IDEMPOTENCY_KEY_REUSED");
  assert.deepEqual(await ordersOf(t.id), 1);
  // A failed request stores nothing: after a 409 the same key may be retried.
  const failKey = crypto.randomUUID();
  const short = order(t, {
    items: [{ product_id: t.products[1], quantity: 101, unit_price: 1 }],
  });
  assert.deepEqual(
    (await invoke(t.db, FN, short, { "Idempotency-Key": failKey })).status,
    409,
  );
  await sql`update public.wholesale_inventory set quantity = 200 where product_id = ${
    t.products[1]
  }`;
  assert.deepEqual(
    (await invoke(t.db, FN, short, { "Idempotency-Key": failKey })).status,
    201,
  );
});
