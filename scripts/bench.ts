// The measurements behind scripts/bench. Prints a table and the ratios.
import { median, serveOne } from "./bench_common.ts";
import {
  env,
  makeSupplier,
  makeTenant,
  order,
  sql,
  url,
} from "../tests/_stack.ts";

const restUrl = `http://127.0.0.1:${Deno.env.get("REST_PORT")}`;
const CONCURRENCY = 8;
const PER_ROUND = 400;
const ROUNDS = 3;

// The throughput tenants may run 8 transactions at once, so 8 concurrent
// clients measure the function layer, not the default cap of one.
const t = await makeTenant({ products: 1, stock: 0, maxConcurrent: 8 });
await sql`update public.wholesale_inventory set quantity = 99999999 where product_id = ${
  t.products[0]
}`;
// The bench's tenant may exceed the default 600 orders a minute.
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${t.id}, 'create-wholesale-order', 1000000, 60)`;
// Orders here measure placement; a client without email or phone queues no
// confirmation. Delivery is measured on its own below.
await sql`update public.wholesale_clients set email = null, phone = null where id = ${t.clientId}`;
const anon = env.SUPABASE_ANON_KEY;
const payload = order(t);
const headers = {
  authorization: `Bearer ${t.token}`,
  apikey: anon,
  "content-type": "application/json",
};
const viaGateway = () =>
  fetch(`${url}/functions/v1/create-wholesale-order`, {
    method: "POST",
    headers,
    body: JSON.stringify(payload),
  });
const service = {
  authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}`,
  apikey: anon,
  "content-type": "application/json",
};
/** The limiter alone: admit_request, in its own transaction. */
const admit = (tenant = t) =>
  fetch(`${restUrl}/rpc/admit_request`, {
    method: "POST",
    headers: service,
    body: JSON.stringify({
      function_name: "create-wholesale-order",
      user_id: tenant.userId,
      subject_id: tenant.clientId,
    }),
  });
/** What the function does over REST, done directly: admit, then the RPC. */
const directFor = (tenant: typeof t, body: unknown) => async () => {
  const admitted = await (await admit(tenant)).json();
  return fetch(`${restUrl}/rpc/create_wholesale_order`, {
    method: "POST",
    headers: {
      ...headers,
      authorization: `Bearer ${tenant.token}`,
      "x-admission": admitted.admission,
    },
    body: JSON.stringify({ payload: body }),
  });
};
const direct = directFor(t, payload);

/** `count` requests over `CONCURRENCY` workers; returns latencies (ms) and wall time. */
async function load(send: () => Promise<Response>, count: number) {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) {
        const t0 = performance.now();
        const res = await send();
        await res.arrayBuffer();
        if (res.status >= 300) throw new Error(`status ${res.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, wall: performance.now() - start };
}

function pct(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// Warm both paths, then alternate rounds so drift hits both alike.
await load(viaGateway, 100);
await load(direct, 100);
const totals = {
  gateway: { latencies: [] as number[], wall: 0 },
  direct: { latencies: [] as number[], wall: 0 },
};
for (let round = 0; round < ROUNDS; round++) {
  for (
    const [name, send] of [["gateway", viaGateway], ["direct", direct]] as const
  ) {
    const r = await load(send, PER_ROUND);
    totals[name].latencies.push(...r.latencies);
    totals[name].wall += r.wall;
  }
}
const stats = Object.fromEntries(
  Object.entries(totals).map(([name, v]) => {
    const s = [...v.latencies].sort((a, b) => a - b);
    return [name, {
      p50: pct(s, 0.5),
      p99: pct(s, 0.99),
      rps: (s.length / v.wall) * 1000,
    }];
  }),
);

// Cold start: a fresh Deno process, from spawn to the first 201.
async function coldStart(name: string, body: unknown) {
  const port = 26400;
  const t0 = performance.now();
  const child = serveOne(name, port);
  let elapsed = NaN;
  for (let i = 0; i < 2000; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      if (res.status === 201) {
        elapsed = performance.now() - t0;
        break;
      }
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  child.kill("SIGTERM");
  const out = new TextDecoder().decode((await child.output()).stdout);
  await child.status;
  return {
    cold_ms: elapsed,
    instantiate_ms: JSON.parse(out.split("\n")[0]).instantiate_ms as number,
    configure_ms: JSON.parse(out.split("\n")[0]).configure_ms as number,
  };
}
const colds = [];
for (let i = 0; i < 5; i++) {
  colds.push(await coldStart("create-wholesale-order", payload));
}

const f = (n: number) => n.toFixed(2);
console.log(
  `\ncreate-wholesale-order, ${CONCURRENCY} concurrent clients, ${ROUNDS}×${PER_ROUND} requests per path, alternating\n`,
);
console.log("path                          p50 ms    p99 ms     req/s");
for (
  const [name, label] of [["gateway", "gateway → function → REST"], [
    "direct",
    "REST server RPC, direct",
  ]]
) {
  const s = stats[name];
  console.log(
    `${label.padEnd(28)} ${f(s.p50).padStart(7)} ${f(s.p99).padStart(9)} ${
      s.rps.toFixed(0).padStart(9)
    }`,
  );
}
console.log(
  `\nratio gateway/direct p50: ${
    (stats.gateway.p50 / stats.direct.p50).toFixed(3)
  }   (target ≤ 1.15)`,
);
console.log(
  `ratio gateway/direct req/s: ${
    (stats.gateway.rps / stats.direct.rps).toFixed(3)
  }`,
);

// What counting an attempt costs: admit_request alone, same load.
const admits = await load(admit, PER_ROUND);
const admitSorted = [...admits.latencies].sort((a, b) => a - b);
console.log(
  `\nrate limiter (admit_request, its own transaction), ${CONCURRENCY} concurrent: p50 ${
    f(pct(admitSorted, 0.5))
  } ms, p99 ${f(pct(admitSorted, 0.99))} ms, ${
    ((admitSorted.length / admits.wall) * 1000).toFixed(0)
  } req/s`,
);

// Orders that queue a confirmation (the client has email and phone): each
// order asks the dispatcher to deliver; kicks are coalesced per isolate.
const n = await makeTenant({ products: 1, stock: 0, maxConcurrent: 8 });
await sql`update public.wholesale_inventory set quantity = 99999999 where product_id = ${
  n.products[0]
}`;
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${n.id}, 'create-wholesale-order', 1000000, 60)`;
await sql`insert into public.message_quotas (tenant_id, channel, per_hour, per_day)
  values (${n.id}, 'email', 1000000, 1000000), (${n.id}, 'sms', 1000000, 1000000)`;
const notifying = order(n);
const viaGatewayNotifying = () =>
  fetch(`${url}/functions/v1/create-wholesale-order`, {
    method: "POST",
    headers: { ...headers, authorization: `Bearer ${n.token}` },
    body: JSON.stringify(notifying),
  });
const directNotifying = directFor(n, notifying);
await load(viaGatewayNotifying, 50);
const notif = { gateway: [] as number[], direct: [] as number[] };
for (let round = 0; round < ROUNDS; round++) {
  notif.gateway.push(
    ...(await load(viaGatewayNotifying, PER_ROUND / 2)).latencies,
  );
  notif.direct.push(...(await load(directNotifying, PER_ROUND / 2)).latencies);
}
const p50 = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 0.5);
console.log(
  `orders that queue an email and an SMS: p50 function ${
    f(p50(notif.gateway))
  } ms, direct ${f(p50(notif.direct))} ms, ratio ${
    (p50(notif.gateway) / p50(notif.direct)).toFixed(3)
  }   (target ≤ 1.3)`,
);

// Fairness: tenant A's order p50 alone, then while tenant B floods failing
// 500-line orders from 40 connections, in one run.
const fa = await makeTenant({ stock: 100000 });
const fb = await makeTenant({ products: 500, stock: 0 });
await sql`update public.wholesale_clients set email = null, phone = null where tenant_id in (${fa.id}, ${fb.id})`;
const big = JSON.stringify(order(fb, {
  items: fb.products.map((p) => ({
    product_id: p,
    quantity: 1,
    unit_price: 1,
  })),
}));
const aOrder = () =>
  fetch(`${url}/functions/v1/create-wholesale-order`, {
    method: "POST",
    headers: { ...headers, authorization: `Bearer ${fa.token}` },
    body: JSON.stringify(order(fa)),
  });
async function sequentialP50(count: number) {
  const ms: number[] = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await aOrder();
    await res.arrayBuffer();
    if (res.status !== 201) throw new Error(`A got ${res.status}`);
    ms.push(performance.now() - t0);
  }
  return p50(ms);
}
await sequentialP50(10);
const idleP50 = await sequentialP50(100);
let flooding = true;
const floodStatus: Record<number, number> = {};
const flood = Array.from({ length: 40 }, async () => {
  while (flooding) {
    const res = await fetch(`${url}/functions/v1/create-wholesale-order`, {
      method: "POST",
      headers: { ...headers, authorization: `Bearer ${fb.token}` },
      body: big,
    });
    await res.arrayBuffer();
    floodStatus[res.status] = (floodStatus[res.status] ?? 0) + 1;
  }
});
await new Promise((r) => setTimeout(r, 500));
const floodP50 = await sequentialP50(100);
flooding = false;
await Promise.all(flood);
console.log(
  `\nfairness: tenant A's order p50 ${f(idleP50)} ms alone, ${
    f(floodP50)
  } ms while tenant B floods failing 500-line orders from 40 connections (B's answers: ${
    JSON.stringify(floodStatus)
  })`,
);
console.log(
  `  ratio ${(floodP50 / idleP50).toFixed(3)}   (target ≤ 2)`,
);
console.log(
  `\ncold start (fresh Deno process → first 201), median of 5: ${
    f(median(colds.map((c) => c.cold_ms)))
  } ms`,
);
console.log(
  `instantiate (fetch, compile and instantiate the wasm), median of 5: ${
    f(median(colds.map((c) => c.instantiate_ms)))
  } ms   (target ≤ 30)`,
);
console.log(
  `configure (read keys and settings, once), median of 5: ${
    f(median(colds.map((c) => c.configure_ms)))
  } ms`,
);
// Notification delivery: the dispatcher against the sandbox's own capacity.
const sandbox = env.SANDBOX_URL;
const NOTIFICATIONS = 1000;
await (await fetch(`${sandbox}/_sandbox`, { method: "DELETE" })).body?.cancel();
const email = (i: number) =>
  JSON.stringify({
    from: "Bench <b@bench.test>",
    to: [`c${i}@client.test`],
    subject: `Order B-${i} confirmed`,
    html: "<p>x</p>",
    text: "x",
  });
let sent = 0;
const directStart = performance.now();
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (sent < NOTIFICATIONS) {
      const i = sent++;
      const res = await fetch(`${sandbox}/resend/emails`, {
        method: "POST",
        headers: {
          authorization: "Bearer re_sandbox_key",
          "idempotency-key": `direct-${i}`,
          "content-type": "application/json",
        },
        body: email(i),
      });
      await res.arrayBuffer();
    }
  }),
);
const directRate = NOTIFICATIONS / ((performance.now() - directStart) / 1000);

await sql`update public.notification_outbox set status = 'dead' where status in ('pending', 'sending')`;
await sql`insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
  select ${t.id}, 'email', 'order_confirmation', 'c' || i || '@client.test', jsonb_build_object(
    'order_number', 'B-' || i, 'business_name', 'Bench Co', 'client_name', 'C', 'total_amount', 10,
    'payment_terms', 'prepaid', 'delivery_method', 'pickup',
    'items', jsonb_build_array(jsonb_build_object('name', 'Thing', 'sku', 'T', 'quantity', 1,
      'unit_price', 10, 'total_price', 10)))
  from generate_series(1, ${NOTIFICATIONS}) i`;
const dispatchStart = performance.now();
// Two dispatchers at once, as the trigger after an order and the schedule run.
for (;;) {
  await Promise.all([0, 1].map(async () => {
    const res = await fetch(`${url}/functions/v1/dispatch-notifications`, {
      method: "POST",
      headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
      body: JSON.stringify({ batch_size: 250 }),
    });
    const summary = await res.json();
    if (res.status !== 200) throw new Error(JSON.stringify(summary));
  }));
  const [{ n }] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and status in ('pending', 'sending')`;
  if (n === 0) break;
}
const dispatchRate = NOTIFICATIONS /
  ((performance.now() - dispatchStart) / 1000);
// Only messages actually sent count: a row that died would make this faster.
const [{ delivered }] = await sql`select count(*)::int as delivered
  from public.notification_outbox where tenant_id = ${t.id} and status = 'sent'`;
if (delivered !== NOTIFICATIONS) {
  throw new Error(
    `only ${delivered} of ${NOTIFICATIONS} notifications were sent`,
  );
}
console.log(
  `\nnotification delivery, ${NOTIFICATIONS} emails, fault-free sandbox`,
);
console.log(
  `  sandbox capacity, direct requests (16 concurrent): ${
    directRate.toFixed(0)
  }/s`,
);
console.log(
  `  dispatch-notifications, 2 at once, batches of 250: ${
    dispatchRate.toFixed(0)
  }/s`,
);
console.log(
  `  ratio: ${(dispatchRate / directRate).toFixed(3)}   (target ≥ 0.7)`,
);

// create-purchase-order: the whole request (RPC, PDF, upload, signed URL,
// attach) and, from its Server-Timing header, the PDF's rendering time alone.
const poTenant = await makeTenant({ products: 500, stock: 0 });
// The longest text the database allows, so the 500-line figure is the worst case.
await sql`update public.products set name = repeat('W', 200), sku = left(sku || repeat('S', 100), 100)
  where tenant_id = ${poTenant.id} and substr(name, 9)::int > 200`;
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${poTenant.id}, 'create-purchase-order', 1000000, 60)`;
const supplier = await makeSupplier(poTenant, null);
const due = new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);
const poBody = (lines: number) =>
  JSON.stringify({
    supplier_id: supplier,
    expected_delivery_date: due,
    items: poTenant.products.slice(0, lines).map((product_id, i) => ({
      product_id,
      quantity: i + 1,
      unit_price: 4.25,
    })),
  });
async function purchaseOrders(lines: number, count: number) {
  const total: number[] = [];
  const pdf: number[] = [];
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    const res = await fetch(`${url}/functions/v1/create-purchase-order`, {
      method: "POST",
      headers: { ...headers, authorization: `Bearer ${poTenant.token}` },
      body: poBody(lines),
    });
    const body = await res.json();
    total.push(performance.now() - t0);
    if (res.status !== 201) throw new Error(JSON.stringify(body));
    pdf.push(
      Number(res.headers.get("server-timing")!.match(/dur=([\d.]+)/)![1]),
    );
    if (i === 0) {
      const file = await fetch(body.pdf_url);
      bytes = (await file.arrayBuffer()).byteLength;
    }
  }
  return { total: median(total), pdf: median(pdf), bytes };
}
await purchaseOrders(10, 10);
console.log(
  "\ncreate-purchase-order, sequential, median of each (lines 201-500 have 200-character names and 100-character SKUs; PDF target ≤ 50 ms at 500 lines)",
);
console.log("lines   request ms   PDF render ms   PDF share   PDF bytes");
for (const [lines, count] of [[10, 50], [200, 20], [500, 10]]) {
  const r = await purchaseOrders(lines, count);
  console.log(
    `${String(lines).padStart(5)} ${f(r.total).padStart(12)} ${
      f(r.pdf).padStart(15)
    } ${(r.pdf / r.total).toFixed(3).padStart(11)} ${
      String(r.bytes).padStart(11)
    }`,
  );
}

await sql.end();
