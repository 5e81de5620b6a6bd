// Recall figures for scripts/bench, on the bench's own stack (`scripts/bench
// recalls` alone):
// - the recall of a lot shipped to 10,000 clients through the gateway: the
//   transaction (recall, quarantine, consignees, every notice queued in the
//   outbox) and the report (read, PDF, XLSX, upload), from the function's
//   server-timing, and the time until the dispatcher has handed every email
//   notice to the provider sandbox;
// - order placement p50 through the gateway for a product held in lots (FEFO
//   over 6 lots in 2 warehouses) against one without lots, interleaved.
import { env, makeTenant, sql, url } from "../tests/_stack.ts";
import { median } from "./bench_common.ts";

const CLIENTS = Number(Deno.env.get("BENCH_RECALL_CLIENTS") ?? 10_000);
const ORDERS = Number(Deno.env.get("BENCH_RECALL_ORDERS") ?? 200);
const f = (n: number) => n.toFixed(0);

console.log(
  `\nrecalls: a lot shipped to ${CLIENTS.toLocaleString("en")} clients`,
);
const t = await makeTenant({ products: 1, stock: 0 });
const product = t.products[0];
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${t.id}, 'notify-recall', 1000, 60), (${t.id}, 'create-wholesale-order', 100000, 60)`;
// The tenant's paid-message quota raised for the recall: what is measured is
// delivery, not the quota holding notices back (which it would, by design).
await sql`insert into public.message_quotas (tenant_id, channel, per_hour, per_day)
  values (${t.id}, 'email', 1000000, 1000000)`;
const [lot] =
  await sql`insert into public.batches (tenant_id, product_id, lot_number, expires_on, quantity_received)
  values (${t.id}, ${product}, 'BENCH-1', current_date + 90, ${
    CLIENTS * 3
  }) returning id::text`;
await sql`insert into public.batch_inventory (tenant_id, batch_id, product_id, warehouse_id, quantity)
  values (${t.id}, ${lot.id}, ${product}, ${t.warehouses[0]}, ${CLIENTS})`;
// The shipments, written directly (one order of 2 per client): what is
// measured is the recall, not placing 10,000 orders.
const gen = await sql.reserve();
await gen`set session_replication_role = replica`;
await gen`insert into public.wholesale_clients (id, tenant_id, name, email, phone, address)
  select md5('c' || g)::uuid, ${t.id}, 'Client ' || g, 'recall-' || g || '@bench.test',
    '+1555' || lpad(g::text, 7, '0'), g || ' Bench Road'
  from generate_series(1, ${CLIENTS}) g`;
await gen`insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount,
    payment_terms, delivery_method)
  select md5('o' || g)::uuid, ${t.id}, md5('c' || g)::uuid, 'R-' || g, 'confirmed', 20, 'prepaid', 'pickup'
  from generate_series(1, ${CLIENTS}) g`;
await gen`insert into public.wholesale_order_items (id, tenant_id, order_id, line_number, product_id, quantity,
    unit_price, total_price)
  select md5('i' || g)::uuid, ${t.id}, md5('o' || g)::uuid, 1, ${product}, 2, 10, 20
  from generate_series(1, ${CLIENTS}) g`;
await gen`insert into public.wholesale_order_allocations (tenant_id, order_item_id, warehouse_id, batch_id, quantity)
  select ${t.id}, md5('i' || g)::uuid, ${t.warehouses[0]}, ${lot.id}, 2
  from generate_series(1, ${CLIENTS}) g`;
await gen`set session_replication_role = origin`;
gen.release();
await sql`analyze`;

const sentBefore = await sandboxCount();
const t0 = performance.now();
const res = await fetch(`${url}/functions/v1/notify-recall`, {
  method: "POST",
  headers: {
    authorization: `Bearer ${t.token}`,
    apikey: env.SUPABASE_ANON_KEY,
    "content-type": "application/json",
  },
  body: JSON.stringify({
    recall_id: crypto.randomUUID(),
    batch_id: lot.id,
    recall_reason: "Benchmark recall",
    scope: "all",
    channels: ["email"],
  }),
});
const wall = performance.now() - t0;
const body = await res.json();
if (res.status !== 201) {
  throw new Error(`notify-recall: ${res.status} ${JSON.stringify(body)}`);
}
const timing = Object.fromEntries(
  (res.headers.get("server-timing") ?? "").split(",").map((p) => {
    const [name, dur] = p.trim().split(";dur=");
    return [name, Number(dur)];
  }),
);
console.log(
  `  notify-recall ${
    f(wall)
  } ms in all: transaction (recall, quarantine, ${body.consignee_count} consignees, ${body.notices_queued} notices queued) ${
    f(timing.recall)
  } ms; report (PDF ${body.files.pdf.size_bytes} B, XLSX ${body.files.xlsx.size_bytes} B, uploaded) ${
    f(timing.report)
  } ms`,
);
// Every notice handed to the provider: the dispatcher drains the outbox.
const limit = Number(Deno.env.get("BENCH_RECALL_SEND_SECONDS") ?? 600);
let delivered = 0;
while (performance.now() - t0 < limit * 1000) {
  delivered = (await sandboxCount()) - sentBefore;
  if (delivered >= body.notices_queued) break;
  await fetch(`${url}/functions/v1/dispatch-notifications`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`,
      "content-type": "application/json",
    },
    body: "{}",
  }).then((r) => r.body?.cancel());
  await new Promise((r) => setTimeout(r, 200));
}
const allSent = (performance.now() - t0) / 1000;
const rate = delivered / allSent;
console.log(
  delivered >= body.notices_queued
    ? `  all ${delivered} notices sent to the sandbox ${
      f(allSent)
    } s after the request (${f(rate)} a second)`
    : `  ${delivered} of ${body.notices_queued} notices sent to the sandbox in ${
      f(allSent)
    } s (${f(rate)} a second; all of them would take about ${
      f(body.notices_queued / Math.max(rate, 0.001) / 60)
    } min)`,
);

async function sandboxCount(): Promise<number> {
  const r = await fetch(`${env.SANDBOX_URL}/_sandbox/sent?provider=resend`);
  const all = await r.json();
  return all.filter((s: { body: { subject?: string } }) =>
    s.body.subject?.startsWith("URGENT")
  ).length;
}

// Order placement, with lots against without.
const plain = await makeTenant({
  products: 1,
  stock: 1_000_000,
  maxConcurrent: 4,
});
const lots = await makeTenant({
  warehouses: 2,
  products: 1,
  stock: 0,
  maxConcurrent: 4,
});
for (const x of [plain, lots]) {
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${x.id}, 'create-wholesale-order', 100000, 60)`;
}
for (
  const [i, w] of lots.warehouses.flatMap((w) =>
    [1, 2, 3].map((i) => [i, w] as const)
  )
) {
  const { error } = await lots.db.rpc("receive_batch", {
    payload: {
      product_id: lots.products[0],
      lot_number: `LOT-${i}-${w.slice(0, 4)}`,
      warehouse_id: w,
      quantity: 100_000,
      expires_on: new Date(Date.now() + (30 + i * 10) * 86_400_000)
        .toISOString().slice(0, 10),
    },
  });
  if (error) throw new Error(JSON.stringify(error));
}
async function place(x: typeof plain): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/functions/v1/create-wholesale-order`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${x.token}`,
      apikey: env.SUPABASE_ANON_KEY,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      client_id: x.clientId,
      items: [{ product_id: x.products[0], quantity: 3, unit_price: 1 }],
      payment_terms: "prepaid",
      delivery_method: "pickup",
    }),
  });
  await r.body?.cancel();
  if (r.status !== 201) throw new Error(`order: ${r.status}`);
  return performance.now() - t0;
}
const withLots: number[] = [];
const without: number[] = [];
for (let i = 0; i < 20; i++) await Promise.all([place(plain), place(lots)]);
for (let i = 0; i < ORDERS; i++) {
  // Interleaved, and alternating which goes first, so drift hits both alike.
  if (i % 2) {
    without.push(await place(plain));
    withLots.push(await place(lots));
  } else {
    withLots.push(await place(lots));
    without.push(await place(plain));
  }
}
const a = median(withLots);
const b = median(without);
console.log(
  `  order placement p50 through the gateway: with lots ${
    a.toFixed(1)
  } ms, without ${b.toFixed(1)} ms: ${
    (a / b).toFixed(2)
  }× (target ≤ 1.2×; ${ORDERS} orders each, interleaved)`,
);
await sql.end();
