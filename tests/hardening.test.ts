// Capacity and paid resources are isolated per tenant, like data. Each test
// is a reproduction of an attack that worked before the hardening: one tenant
// slowing the others, failures that never count against the rate limit,
// paid messages without a bound, and text that reaches a document or the
// database unchecked.
import assert from "node:assert/strict";
import {
  clientFor,
  env,
  invoke,
  keys,
  makeSupplier,
  makeTenant,
  order,
  ordersOf,
  type Outcome,
  sent,
  sql,
  type Tenant,
  until,
  url,
  userToken,
} from "./_stack.ts";

const FN = "create-wholesale-order";

/** Backends of the REST server now waiting on a row lock. */
async function waitingOnLocks(): Promise<number> {
  const [r] = await sql`select count(*)::int as n from pg_stat_activity
    where wait_event_type = 'Lock' and query like '%create_wholesale_order%'`;
  return r.n;
}

/** `promise`, or a rejection after `ms`: a request that queues fails the test instead of hanging it. */
function within<T>(ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<T>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} took over ${ms} ms`)),
      ms,
    );
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An order line for one of the tenant's products. */
const line = (t: Tenant, product: number) => ({
  items: [{ product_id: t.products[product], quantity: 1, unit_price: 10 }],
});

Deno.test("every attempt counts: failing orders use up the limit, then 429", async () => {
  const t = await makeTenant({ stock: 0, creditLimit: 0 });
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${t.id}, ${FN}, 5, 60)`;
  const outcomes: Outcome[] = [];
  for (let i = 0; i < 30; i++) {
    // Alternately out of stock and over the credit limit.
    const body = i % 2 ? order(t) : order(t, { payment_terms: "net_30" });
    outcomes.push(await invoke(t.db, FN, body));
  }
  const codes = outcomes.map((o) => o.body.error.code);
  assert.deepEqual(codes.slice(0, 5), [
    "CREDIT_LIMIT_EXCEEDED",
    "INSUFFICIENT_STOCK",
    "CREDIT_LIMIT_EXCEEDED",
    "INSUFFICIENT_STOCK",
    "CREDIT_LIMIT_EXCEEDED",
  ]);
  assert.deepEqual(codes.slice(5), Array(25).fill("RATE_LIMITED"));
  assert.equal(outcomes[5].status, 429);
  assert.ok(Number(outcomes[5].headers.get("retry-after")) >= 1);
  assert.equal(await ordersOf(t.id), 0);
});

Deno.test("a tenant's business transaction holds no lock its other requests wait on", async () => {
  // Room for two at once: the second request may only wait for a lock, and must not.
  const b = await makeTenant({ products: 2, maxConcurrent: 2 });
  // A second client: orders of one client do wait for each other (its row
  // guards its credit), orders of the tenant must not.
  const [second] =
    await sql`insert into public.wholesale_clients (tenant_id, name)
    values (${b.id}, 'Second client') returning id::text`;
  let stuck: Promise<Outcome> | undefined;
  let other: Outcome | undefined;
  await sql.begin(async (tx) => {
    // Hold product 0's stock row: B's order for it stays inside its transaction.
    await tx`select 1 from public.wholesale_inventory
      where product_id = ${b.products[0]} for update`;
    stuck = invoke(b.db, FN, order(b, line(b, 0)));
    await until(
      "B's first order to wait on the stock row",
      5,
      async () => await waitingOnLocks() > 0 ? true : undefined,
    );
    // B's next order, for another product, must not queue behind the first.
    other = await within(
      2000,
      "B's second order",
      invoke(b.db, FN, order(b, { ...line(b, 1), client_id: second.id })),
    );
  });
  assert.equal(other!.status, 201, JSON.stringify(other!.body));
  // The held order then either finishes or gave up at lock_timeout.
  const first = await stuck!;
  assert.ok([201, 409].includes(first.status), JSON.stringify(first.body));
});

Deno.test("one tenant's stuck requests take at most its cap of connections; another tenant is served", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const [{ cap }] =
    await sql`select max_concurrent as cap from public.tenant_capacity_policies
    where tenant_id is null`;
  let flood: Promise<Outcome[]> | undefined;
  let served: Outcome | undefined;
  let mostWaiting = 0;
  await sql.begin(async (tx) => {
    await tx`select 1 from public.wholesale_inventory
      where product_id = ${b.products[0]} for update`;
    flood = Promise.all(
      Array.from({ length: 16 }, () => invoke(b.db, FN, order(b, line(b, 0)))),
    );
    await until(
      `B to reach its cap of ${cap}`,
      5,
      async () => await waitingOnLocks() >= cap ? true : undefined,
    );
    served = await within(2000, "A's order", invoke(a.db, FN, order(a)));
    mostWaiting = await waitingOnLocks();
  });
  assert.equal(served!.status, 201, JSON.stringify(served!.body));
  assert.ok(
    mostWaiting <= cap,
    `${mostWaiting} of B's requests held a connection`,
  );
  const refused = (await flood!).filter((o) => o.status === 429);
  for (const r of refused) {
    assert.equal(r.body.error.code, "TOO_MANY_CONCURRENT_REQUESTS");
    assert.equal(r.headers.get("retry-after"), "1");
  }
});

Deno.test("a flood of failing 500-line orders from one tenant leaves another's p50 within 2x", async () => {
  const a = await makeTenant();
  const b = await makeTenant({ products: 500, stock: 0 });
  const big = order(b, {
    items: b.products.map((p) => ({
      product_id: p,
      quantity: 1,
      unit_price: 1,
    })),
  });
  const timeOrders = async (n: number) => {
    const ms: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await invoke(a.db, FN, order(a));
      ms.push(performance.now() - t0);
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    return ms.sort((x, y) => x - y)[Math.floor(n / 2)];
  };
  await timeOrders(5); // warm
  const idle = await timeOrders(25);
  let flooding = true;
  let floodRequests = 0;
  // The body is serialised once, so the attacker's own CPU (it shares this
  // machine) is spent sending, not building requests.
  const bigBody = JSON.stringify(big);
  const attacker = async () => {
    while (flooding) {
      const r = await fetch(`${url}/functions/v1/${FN}`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${b.token}`,
          "content-type": "application/json",
        },
        body: bigBody,
      });
      const body = await r.json();
      floodRequests++;
      assert.ok([409, 429].includes(r.status), JSON.stringify(body));
    }
  };
  const attackers = Array.from({ length: 12 }, attacker);
  await new Promise((r) => setTimeout(r, 300));
  const busy = await timeOrders(25);
  flooding = false;
  await Promise.all(attackers);
  const ratio = busy / idle;
  console.log(
    `fairness: A's p50 ${idle.toFixed(1)} ms idle, ${
      busy.toFixed(1)
    } ms under B's flood (${floodRequests} requests): ${ratio.toFixed(2)}x`,
  );
  assert.ok(ratio <= 2, `A's p50 went from ${idle} to ${busy} ms`);
});

Deno.test("paid messages over a tenant's quota are held, not dropped, and the platform is alerted", async () => {
  const t = await makeTenant();
  await sql`insert into public.message_quotas (tenant_id, channel, per_hour, per_day)
    values (${t.id}, 'sms', 2, 100)`;
  for (let i = 0; i < 5; i++) {
    assert.equal((await invoke(t.db, FN, order(t))).status, 201);
  }
  const smsOf = async () =>
    await sql`select status, held_at is not null as held from public.notification_outbox
      where tenant_id = ${t.id} and channel = 'sms' order by status`;
  await until("2 SMS sent and 3 held", 20, async () => {
    const rows = await smsOf();
    const sentN = rows.filter((r) => r.status === "sent").length;
    const held = rows.filter((r) => r.status === "pending" && r.held).length;
    return sentN === 2 && held === 3 ? true : undefined;
  });
  const [{ emails }] =
    await sql`select count(*)::int as emails from public.notification_outbox
    where tenant_id = ${t.id} and channel = 'email' and status = 'sent'`;
  assert.equal(emails, 5, "email has its own, larger quota");
  const alerts = async () =>
    (await sent("slack")).filter((m) => JSON.stringify(m).includes(t.id));
  await until(
    "one Slack alert",
    20,
    async () => (await alerts()).length === 1 ? true : undefined,
  );

  // Raised quota: the held messages go out, and no second alert.
  await sql`update public.message_quotas set per_hour = 10 where tenant_id = ${t.id}`;
  await sql`update public.notification_outbox set next_attempt_at = now()
    where tenant_id = ${t.id} and status = 'pending'`;
  const res = await fetch(`${url}/functions/v1/dispatch-notifications`, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
    body: "{}",
  });
  await res.body?.cancel();
  await until("all 5 SMS sent", 20, async () => {
    const rows = await smsOf();
    return rows.filter((r) => r.status === "sent").length === 5
      ? true
      : undefined;
  });
  assert.equal((await alerts()).length, 1);
});

Deno.test("a NUL in free text is 400 naming the field, in the function and through direct SQL", async () => {
  const t = await makeTenant();
  const res = await invoke(t.db, FN, order(t, { notes: "a\u0000b" }));
  assert.equal(res.status, 400);
  assert.equal(res.body.error.code, "VALIDATION_ERROR");
  assert.ok(res.body.error.details.notes, JSON.stringify(res.body));
  assert.equal(await ordersOf(t.id), 0);
});

Deno.test("the supplier's email link is signed at send time for this project's Storage only", async () => {
  const t = await makeTenant();
  const supplier = await makeSupplier(t);
  const res = await invoke(t.db, "create-purchase-order", {
    supplier_id: supplier,
    items: [{ product_id: t.products[0], quantity: 2, unit_price: 3 }],
    expected_delivery_date: new Date(Date.now() + 7 * 864e5).toISOString()
      .slice(0, 10),
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const [row] = await sql`select payload from public.notification_outbox
    where tenant_id = ${t.id} and template = 'purchase_order'`;
  assert.equal(row.payload.pdf_url, undefined, "no URL is stored");
  // The old route: attach with an attacker's URL. The function no longer takes one.
  const direct = await t.db.rpc("attach_purchase_order_pdf", {
    po_id: res.body.po_id,
    pdf_url:
      "https://attacker.example/storage/v1/object/sign/purchase-orders/x.pdf?token=x",
  });
  assert.ok(direct.error, "a URL argument is refused");
  const mail = await until(
    "the supplier's email",
    20,
    async () =>
      (await sent("resend")).find((m) =>
        JSON.stringify(m).includes(res.body.po_number)
      ),
  );
  const link = JSON.stringify(mail).match(
    /https?:\/\/[^"\\\s<]+object\/sign\/purchase-orders\/[^"\\\s<]+/,
  );
  assert.ok(link, "the email has a signed link");
  assert.ok(link![0].startsWith(`${url}/storage/v1/`), link![0]);
  const pdf = await fetch(link![0].replaceAll("&amp;", "&"));
  assert.equal(pdf.status, 200);
  assert.equal(pdf.headers.get("content-type"), "application/pdf");
  await pdf.body?.cancel();
});

Deno.test("guessing another tenant's ids is counted too: 404s use up the caller's own limit", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${a.id}, ${FN}, 5, 60)`;
  const statuses: number[] = [];
  for (let i = 0; i < 8; i++) {
    const guess = i % 2 ? b.clientId : crypto.randomUUID();
    statuses.push(
      (await invoke(a.db, FN, order(a, { client_id: guess }))).status,
    );
  }
  assert.deepEqual(statuses, [404, 404, 404, 404, 404, 429, 429, 429]);
  const [bucket] =
    await sql`select count(*)::int as n from public.rate_limit_buckets
    where tenant_id = ${b.id}`;
  assert.equal(bucket.n, 0, "the tenant whose client was named paid nothing");
});

Deno.test("a viewer's refused attempts do not use up the tenant's limit", async () => {
  const t = await makeTenant();
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${t.id}, ${FN}, 3, 60)`;
  const [viewer] = await sql`insert into auth.users (email)
    values (${`v-${
    crypto.randomUUID().slice(0, 8)
  }@e2e.test`}) returning id::text, email`;
  await sql`insert into public.tenant_users (tenant_id, user_id, role, email)
    values (${t.id}, ${viewer.id}, 'viewer', ${viewer.email})`;
  const token = await userToken(
    keys,
    { id: viewer.id, email: viewer.email },
    url,
  );
  for (let i = 0; i < 5; i++) {
    const r = await invoke(clientFor(token), FN, order(t));
    assert.equal(r.status, 403, JSON.stringify(r.body));
    assert.equal(r.body.error.details.required_role, "member");
  }
  assert.equal((await invoke(t.db, FN, order(t))).status, 201);
});

Deno.test("a business RPC called directly, without the function's admission, is refused before any work", async () => {
  const t = await makeTenant({ products: 500, stock: 0 });
  const big = order(t, {
    items: t.products.map((p) => ({
      product_id: p,
      quantity: 1,
      unit_price: 1,
    })),
  });
  const { error } = await t.db.rpc("create_wholesale_order", { payload: big });
  assert.equal(error?.code, "CEA03", JSON.stringify(error));
  const forged = await fetch(`${url}/rest/v1/rpc/create_wholesale_order`, {
    method: "POST",
    headers: {
      apikey: env.SUPABASE_ANON_KEY,
      authorization: `Bearer ${t.token}`,
      "content-type": "application/json",
      "x-admission": crypto.randomUUID(),
    },
    body: JSON.stringify({ payload: big }),
  });
  assert.equal((await forged.json()).code, "CEA03");
  assert.equal(await ordersOf(t.id), 0);
});

Deno.test("concurrent orders cannot push paid messages past the quota", async () => {
  const t = await makeTenant({ maxConcurrent: 4, stock: 1000 });
  await sql`insert into public.message_quotas (tenant_id, channel, per_hour, per_day)
    values (${t.id}, 'sms', 3, 3)`;
  const [{ name }] =
    await sql`select business_name as name from public.tenants where id = ${t.id}`;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 10; i++) {
        assert.equal((await invoke(t.db, FN, order(t))).status, 201);
      }
    }),
  );
  await until("every SMS sent or held", 20, async () => {
    const [r] =
      await sql`select count(*) filter (where status = 'sent')::int as sent,
        count(*) filter (where status = 'pending' and held_at is not null)::int as held
      from public.notification_outbox where tenant_id = ${t.id} and channel = 'sms'`;
    return r.sent + r.held === 40 ? r : undefined;
  });
  const [r] =
    await sql`select count(*) filter (where status = 'sent')::int as sent
    from public.notification_outbox where tenant_id = ${t.id} and channel = 'sms'`;
  assert.equal(r.sent, 3);
  const texts = (await sent("twilio")).filter((m) =>
    JSON.stringify(m).includes(name)
  );
  assert.equal(texts.length, 3, "Twilio got exactly the quota");
});
