// process-return end to end: stock back to the right warehouses, the
// over-return guard under concurrency, refunds through the Stripe sandbox
// exactly once (failures, lost replies and retries), credit, exchange, and
// tenancy.
import assert from "node:assert/strict";
import {
  assertBoundary,
  env,
  faults,
  invoke,
  makeTenant,
  order,
  sql,
  type Tenant,
  url,
} from "./_stack.ts";

const FN = "process-return";
const stripeUrl = `${env.SANDBOX_URL}/stripe/v1`;
const stripeAuth = { authorization: `Bearer ${env.STRIPE_SECRET_KEY}` };

/** Places an order through create-wholesale-order; returns its id and line ids. */
async function placeOrder(
  t: Tenant,
  items: { product: number; quantity: number; unit_price: number }[],
  terms = "prepaid",
): Promise<{ orderId: string; lines: string[] }> {
  const res = await invoke(
    t.db,
    "create-wholesale-order",
    order(t, {
      payment_terms: terms,
      items: items.map((i) => ({
        product_id: t.products[i.product],
        quantity: i.quantity,
        unit_price: i.unit_price,
      })),
    }),
  );
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const rows = await sql`select id::text from public.wholesale_order_items
    where order_id = ${res.body.order_id} order by line_number`;
  return { orderId: res.body.order_id, lines: rows.map((r) => r.id) };
}

/** A paid Stripe PaymentIntent (in the sandbox) for the order's total, linked to it. */
async function payByCard(orderId: string): Promise<string> {
  const [o] = await sql`select (total_amount * 100)::int as cents
    from public.wholesale_orders where id = ${orderId}`;
  const res = await fetch(`${stripeUrl}/payment_intents`, {
    method: "POST",
    headers: {
      ...stripeAuth,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({
      amount: String(o.cents),
      currency: "usd",
      confirm: "true",
      payment_method: "pm_card_visa",
    }),
  });
  const pi = await res.json();
  assert.equal(pi.status, "succeeded");
  await sql`update public.wholesale_orders set stripe_payment_intent_id = ${pi.id}
    where id = ${orderId}`;
  return pi.id;
}

/** Runs `call` while every Stripe request fails with a 500. */
async function whileStripeIsDown<T>(call: () => Promise<T>): Promise<T> {
  await faults({ provider: "stripe", mode: "500", count: 20 });
  try {
    return await call();
  } finally {
    await faults({ provider: "stripe", mode: "500", count: 0 });
  }
}

// deno-lint-ignore no-explicit-any
async function stripeRefunds(pi: string): Promise<any[]> {
  const res = await fetch(`${stripeUrl}/refunds?payment_intent=${pi}`, {
    headers: stripeAuth,
  });
  return (await res.json()).data;
}

async function stockByWarehouse(t: Tenant, product: number): Promise<number[]> {
  const rows =
    await sql`select i.quantity::float8 as q from public.wholesale_inventory i
    join public.warehouses w on w.id = i.warehouse_id
    where i.product_id = ${t.products[product]} order by w.priority`;
  return rows.map((r) => r.q);
}

const ret = (
  orderId: string,
  lines: [string, number][],
  method: string,
) => ({
  order_id: orderId,
  return_method: method,
  items: lines.map(([id, quantity]) => ({
    order_item_id: id,
    quantity,
    reason: "arrived damaged",
  })),
});

Deno.test("a return puts stock back into the warehouses it came from", async () => {
  // 10 in each of W1 and W2: an order of 14 takes 10 from W1 and 4 from W2.
  const t = await makeTenant({ warehouses: 2, stock: 10 });
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 14, unit_price: 2.5 },
    { product: 1, quantity: 3, unit_price: 10 },
  ]);
  assert.deepEqual(await stockByWarehouse(t, 0), [0, 6]);

  const res = await invoke(
    t.db,
    FN,
    ret(orderId, [[lines[0], 12], [lines[1], 1]], "credit"),
  );
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body).sort(), [
    "ra_number",
    "return_id",
    "success",
  ]);
  assert.match(res.body.ra_number, /^RA-\d{4}-000001$/);
  // The first allocation (W1, 10) is refilled first, then W2 gets 2 of its 4.
  assert.deepEqual(await stockByWarehouse(t, 0), [10, 8]);
  assert.deepEqual(await stockByWarehouse(t, 1), [8, 10]);

  const [ra] =
    await sql`select status, return_method, refund_amount::text, return_reason
    from public.return_authorizations where id = ${res.body.return_id}`;
  assert.deepEqual(ra, {
    status: "completed",
    return_method: "credit",
    refund_amount: "40.00", // 12 × 2.50 + 1 × 10
    return_reason: "arrived damaged",
  });
  const [o] = await sql`select returned_amount::text, return_status
    from public.wholesale_orders where id = ${orderId}`;
  assert.deepEqual(o, { returned_amount: "40.00", return_status: "partial" });
  const [c] =
    await sql`select current_balance::text from public.wholesale_clients
    where id = ${t.clientId}`;
  assert.equal(c.current_balance, "-40.00", "the client is owed the credit");
  const [mail] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'return_confirmation'`;
  assert.equal(mail.n, 1);
});

Deno.test("10 concurrent returns of one line never exceed the ordered quantity", async () => {
  const t = await makeTenant({ stock: 100, maxConcurrent: 8 });
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 10, unit_price: 1 },
  ]);
  const before = await stockByWarehouse(t, 0);
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      () => invoke(t.db, FN, ret(orderId, [[lines[0], 3]], "credit")),
    ),
  );
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [
    201,
    201,
    201,
    409,
    409,
    409,
    409,
    409,
    409,
    409,
  ]);
  for (const r of results.filter((r) => r.status === 409)) {
    assert.equal(r.body.error.code, "RETURN_EXCEEDS_ORDERED");
    assert.equal(r.body.error.details.lines[0].returnable, 1);
  }
  const [line] = await sql`select returned_quantity::float8 as q
    from public.wholesale_order_items where id = ${lines[0]}`;
  assert.equal(line.q, 9);
  assert.deepEqual(await stockByWarehouse(t, 0), [before[0] + 9]);
  const [ras] =
    await sql`select count(*)::int as n, sum(refund_amount)::float8 as value
    from public.return_authorizations where order_id = ${orderId}`;
  assert.deepEqual(ras, { n: 3, value: 9 });
});

Deno.test("a refund while Stripe fails twice completes exactly once", async () => {
  const t = await makeTenant();
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 4, unit_price: 12.5 },
  ]);
  const pi = await payByCard(orderId);
  await faults({ provider: "stripe", mode: "500", count: 2 });
  try {
    const res = await invoke(
      t.db,
      FN,
      ret(orderId, [[lines[0], 3]], "refund"),
      {
        "Idempotency-Key": `refund-${orderId}`,
      },
    );
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const refunds = await stripeRefunds(pi);
    assert.equal(refunds.length, 1);
    assert.equal(refunds[0].amount, 3750);
    assert.equal(refunds[0].reason, "requested_by_customer");
    assert.equal(refunds[0].metadata.ra_number, res.body.ra_number);
    const [row] =
      await sql`select status, stripe_refund_id, stripe_status, attempts, amount::text
      from public.refunds where ra_id = ${res.body.return_id}`;
    assert.deepEqual(row, {
      status: "succeeded",
      stripe_refund_id: refunds[0].id,
      stripe_status: "succeeded",
      attempts: 1,
      amount: "37.50",
    });
    const [ra] = await sql`select status from public.return_authorizations
      where id = ${res.body.return_id}`;
    assert.equal(ra.status, "completed");

    // Replaying the request changes nothing and refunds nothing more.
    const replay = await invoke(
      t.db,
      FN,
      ret(orderId, [[lines[0], 3]], "refund"),
      {
        "Idempotency-Key": `refund-${orderId}`,
      },
    );
    assert.equal(replay.status, 201);
    assert.equal(replay.headers.get("idempotent-replayed"), "true");
    assert.equal((await stripeRefunds(pi)).length, 1);
  } finally {
    await faults({ provider: "stripe", mode: "500", count: 0 });
  }
});

Deno.test("a refund Stripe cannot take stays pending, and the same request finishes it once", async () => {
  const t = await makeTenant();
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 2, unit_price: 20 },
  ]);
  const pi = await payByCard(orderId);
  const body = ret(orderId, [[lines[0], 2]], "refund");
  const key = { "Idempotency-Key": `pending-${orderId}` };
  const first = await whileStripeIsDown(() => invoke(t.db, FN, body, key));
  assert.equal(first.status, 502, JSON.stringify(first.body));
  assert.equal(first.body.error.code, "REFUND_PENDING");
  const { return_id, refund_id } = first.body.error.details;
  const [pending] =
    await sql`select status, attempts, last_error from public.refunds
    where id = ${refund_id}`;
  assert.equal(pending.status, "pending");
  assert.equal(pending.attempts, 1);
  assert.match(pending.last_error, /^stripe 500 api_error/);
  assert.equal((await stripeRefunds(pi)).length, 0);
  // The return itself is done: stock is back.
  assert.deepEqual(await stockByWarehouse(t, 0), [100]);

  // Stripe accepts the next attempt, but its reply is lost: the client's own
  // retry sends the same key and Stripe answers with the same refund.
  await faults({ provider: "stripe", mode: "hang_after_accept", count: 1 });
  const second = await invoke(t.db, FN, body, key);
  assert.equal(second.status, 201, JSON.stringify(second.body));
  assert.equal(second.body.return_id, return_id);
  const refunds = await stripeRefunds(pi);
  assert.equal(refunds.length, 1, "one refund at Stripe");
  assert.equal(refunds[0].amount, 4000);
  const [done] = await sql`select status, stripe_refund_id from public.refunds
    where id = ${refund_id}`;
  assert.deepEqual(done, {
    status: "succeeded",
    stripe_refund_id: refunds[0].id,
  });
  const [ras] =
    await sql`select count(*)::int as n from public.return_authorizations
    where order_id = ${orderId}`;
  assert.equal(ras.n, 1);
});

Deno.test("a pending refund nobody retries is finished by the dispatcher, once", async () => {
  const t = await makeTenant();
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 3, unit_price: 7 },
  ]);
  const pi = await payByCard(orderId);
  const body = ret(orderId, [[lines[0], 3]], "refund");
  const key = { "Idempotency-Key": `abandoned-${orderId}` };
  const first = await whileStripeIsDown(() => invoke(t.db, FN, body, key));
  assert.equal(first.body.error.code, "REFUND_PENDING");
  const { refund_id, return_id } = first.body.error.details;
  // The caller gives up. Two minutes later the refund's outbox row is due.
  const [row] =
    await sql`update public.notification_outbox set next_attempt_at = now()
    where payload ->> 'refund_id' = ${refund_id} returning id::text, status`;
  assert.equal(row.status, "pending");
  const res = await fetch(`${url}/functions/v1/dispatch-notifications`, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
    body: "{}",
  });
  assert.equal(res.status, 200, await res.text());
  const refunds = await stripeRefunds(pi);
  assert.equal(refunds.length, 1);
  assert.equal(refunds[0].amount, 2100);
  assert.equal(refunds[0].metadata.return_id, return_id);
  const [done] =
    await sql`select r.status, r.stripe_refund_id, a.status as ra, o.status as outbox
    from public.refunds r join public.return_authorizations a on a.id = r.ra_id
    join public.notification_outbox o on o.id = ${row.id}
    where r.id = ${refund_id}`;
  assert.deepEqual(done, {
    status: "succeeded",
    stripe_refund_id: refunds[0].id,
    ra: "completed",
    outbox: "sent",
  });
  // The caller's late retry now just replays; Stripe still has one refund.
  const late = await invoke(t.db, FN, body, key);
  assert.equal(late.status, 201);
  assert.equal((await stripeRefunds(pi)).length, 1);
});

Deno.test("Stripe refusing a refund fails it with Stripe's reason, once", async () => {
  const t = await makeTenant();
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 2, unit_price: 20 },
  ]);
  await payByCard(orderId);
  // The payment was partly refunded elsewhere (say, in the Stripe dashboard).
  const [o] =
    await sql`select stripe_payment_intent_id as pi from public.wholesale_orders
    where id = ${orderId}`;
  const outside = await fetch(`${stripeUrl}/refunds`, {
    method: "POST",
    headers: {
      ...stripeAuth,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ payment_intent: o.pi, amount: "3000" }),
  });
  assert.equal(outside.status, 200);
  await outside.body?.cancel();
  const body = ret(orderId, [[lines[0], 1]], "refund");
  const key = { "Idempotency-Key": `refused-${orderId}` };
  const res = await invoke(t.db, FN, body, key);
  assert.equal(res.status, 502, JSON.stringify(res.body));
  assert.equal(res.body.error.code, "REFUND_FAILED");
  assert.match(res.body.error.message, /amount_too_large/);
  const again = await invoke(t.db, FN, body, key);
  assert.equal(again.body.error.code, "REFUND_FAILED");
  const [row] = await sql`select r.status, r.attempts, a.status as ra
    from public.refunds r join public.return_authorizations a on a.id = r.ra_id
    where a.order_id = ${orderId}`;
  assert.deepEqual(row, { status: "failed", attempts: 1, ra: "refund_failed" });
  const [outbox] = await sql`select o.status from public.notification_outbox o
    join public.refunds r on o.payload ->> 'refund_id' = r.id::text
    join public.return_authorizations a on a.id = r.ra_id
    where a.order_id = ${orderId}`;
  assert.equal(
    outbox.status,
    "dead",
    "a refused refund is not retried from the outbox",
  );
});

Deno.test("refunds need a card payment and an Idempotency-Key", async () => {
  const t = await makeTenant();
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 2, unit_price: 5 },
  ]);
  const noKey = await invoke(t.db, FN, ret(orderId, [[lines[0], 1]], "refund"));
  assert.equal(noKey.status, 400);
  assert.match(
    noKey.body.error.details["Idempotency-Key"],
    /^is required for refunds/,
  );
  const noCard = await invoke(
    t.db,
    FN,
    ret(orderId, [[lines[0], 1]], "refund"),
    {
      "Idempotency-Key": "no-card",
    },
  );
  assert.equal(noCard.status, 409);
  assert.equal(noCard.body.error.code, "NOT_REFUNDABLE");
  const [n] =
    await sql`select count(*)::int as n from public.return_authorizations
    where order_id = ${orderId}`;
  assert.equal(n.n, 0);
});

Deno.test("an exchange places a linked replacement through the stock rules", async () => {
  const t = await makeTenant({ stock: 5, creditLimit: 100 });
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 4, unit_price: 10 },
  ], "net_30");
  const res = await invoke(t.db, FN, ret(orderId, [[lines[0], 3]], "exchange"));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const [ra] =
    await sql`select a.exchange_order_id::text as id, o.total_amount::text,
      o.exchange_for_return_id::text as back, o.notes
    from public.return_authorizations a join public.wholesale_orders o on o.id = a.exchange_order_id
    where a.id = ${res.body.return_id}`;
  assert.equal(ra.back, res.body.return_id);
  assert.equal(ra.total_amount, "30.00");
  assert.match(
    ra.notes,
    new RegExp(`^Replacement for return ${res.body.ra_number}`),
  );
  // 5 - 4 + 3 back - 3 replacement = 1. The returned units are restocked
  // before the replacement takes stock, so an exchange never lacks it.
  // The balance is charged once, for the original order.
  assert.deepEqual(await stockByWarehouse(t, 0), [1]);
  const [c] =
    await sql`select current_balance::text from public.wholesale_clients
    where id = ${t.clientId}`;
  assert.equal(c.current_balance, "40.00");
});

Deno.test("another tenant's order or line is 404 and changes nothing", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const ao = await placeOrder(a, [{ product: 0, quantity: 2, unit_price: 5 }]);
  const bo = await placeOrder(b, [{ product: 0, quantity: 2, unit_price: 5 }]);
  const foreignOrder = await invoke(
    a.db,
    FN,
    ret(bo.orderId, [[bo.lines[0], 1]], "credit"),
  );
  assert.equal(foreignOrder.status, 404);
  assert.equal(foreignOrder.body.error.details.resource, "order");
  const foreignLine = await invoke(
    a.db,
    FN,
    ret(ao.orderId, [[bo.lines[0], 1]], "credit"),
  );
  assert.equal(foreignLine.status, 404);
  assert.equal(foreignLine.body.error.details.resource, "order_item");
  const [n] =
    await sql`select count(*)::int as n from public.return_authorizations
    where tenant_id in (${a.id}, ${b.id})`;
  assert.equal(n.n, 0);
  assert.deepEqual(await stockByWarehouse(b, 0), [98]);
  await assertBoundary(
    a,
    FN,
    ret(ao.orderId, [[ao.lines[0], 1]], "credit"),
    async () => {
      const [r] =
        await sql`select count(*)::int as n from public.return_authorizations
        where tenant_id = ${a.id}`;
      return r.n > 0;
    },
    "items[0].reason",
  );
});

Deno.test("one idempotency key: 10 parallel returns make one, another body gets 422", async () => {
  const t = await makeTenant({ maxConcurrent: 8 });
  const { orderId, lines } = await placeOrder(t, [
    { product: 0, quantity: 10, unit_price: 1 },
  ]);
  const body = ret(orderId, [[lines[0], 1]], "credit");
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      () => invoke(t.db, FN, body, { "Idempotency-Key": "same-return" }),
    ),
  );
  const ok = results.filter((r) => r.status === 201);
  assert(ok.length >= 1);
  for (const r of results.filter((r) => r.status !== 201)) {
    assert.equal(r.status, 409);
    assert.equal(r.body.error.code, "IDEMPOTENCY_KEY_IN_USE");
  }
  assert.equal(new Set(ok.map((r) => r.body.return_id)).size, 1);
  const reused = await invoke(
    t.db,
    FN,
    ret(orderId, [[lines[0], 2]], "credit"),
    {
      "Idempotency-Key": "same-return",
    },
  );
  assert.equal(reused.status, 422);
  assert.equal(reused.body.error.code, "IDEMPOTENCY_KEY_REUSED");
  const [n] =
    await sql`select count(*)::int as n, sum(refund_amount)::float8 as value
    from public.return_authorizations where order_id = ${orderId}`;
  assert.deepEqual(n, { n: 1, value: 1 });
});

Deno.test("orders, returns and exchanges in parallel on one product: no deadlock, every unit accounted for", async () => {
  const t = await makeTenant({
    warehouses: 2,
    products: 2,
    stock: 500,
    maxConcurrent: 8,
  });
  const placed = [];
  for (let i = 0; i < 12; i++) {
    placed.push(
      await placeOrder(t, [
        { product: 0, quantity: 30, unit_price: 1 },
        { product: 1, quantity: 5, unit_price: 1 },
      ]),
    );
  }
  // Then, at once: 12 new orders crossing the two products, and a return of
  // each old order (alternating exchange and credit) crossing its lines the
  // other way.
  const work = [
    ...Array.from(
      { length: 12 },
      (_, i) =>
        invoke(
          t.db,
          "create-wholesale-order",
          order(t, {
            items: (i % 2 ? [0, 1] : [1, 0]).map((p) => ({
              product_id: t.products[p],
              quantity: 7,
              unit_price: 1,
            })),
          }),
        ),
    ),
    ...placed.map((p, i) =>
      invoke(
        t.db,
        FN,
        ret(
          p.orderId,
          [[p.lines[1], 2], [p.lines[0], 25]],
          i % 2 ? "credit" : "exchange",
        ),
      )
    ),
  ];
  const results = await Promise.all(work);
  for (const r of results) assert.equal(r.status, 201, JSON.stringify(r.body));
  // Every unit is on a shelf or in an order that has not come back.
  for (const product of t.products) {
    const [{ shelf }] = await sql`select sum(quantity)::float8 as shelf
      from public.wholesale_inventory where product_id = ${product}`;
    const [{ out }] =
      await sql`select coalesce(sum(a.quantity - a.returned_quantity), 0)::float8 as out
      from public.wholesale_order_allocations a
      join public.wholesale_order_items i on i.id = a.order_item_id
      where i.product_id = ${product}`;
    assert.equal(shelf + out, 1000, `product ${product}: ${shelf} + ${out}`);
  }
  const [{ n }] =
    await sql`select count(*)::int as n from public.wholesale_orders
    where tenant_id = ${t.id} and exchange_for_return_id is not null`;
  assert.equal(n, 6);
});

Deno.test("the sandbox keeps Stripe's idempotency rules", async () => {
  const t = await makeTenant();
  const { orderId } = await placeOrder(t, [{
    product: 0,
    quantity: 1,
    unit_price: 10,
  }]);
  const pi = await payByCard(orderId);
  const post = (amount: string) =>
    fetch(`${stripeUrl}/refunds`, {
      method: "POST",
      headers: {
        ...stripeAuth,
        "content-type": "application/x-www-form-urlencoded",
        "idempotency-key": `k-${pi}`,
      },
      body: new URLSearchParams({ payment_intent: pi, amount }),
    });
  const first = await post("100");
  const firstBody = await first.json();
  const replay = await post("100");
  assert.equal(replay.headers.get("idempotent-replayed"), "true");
  assert.deepEqual(await replay.json(), firstBody);
  const other = await post("200");
  assert.equal(other.status, 400);
  assert.equal((await other.json()).error.type, "idempotency_error");
  assert.equal((await stripeRefunds(pi)).length, 1);
});
