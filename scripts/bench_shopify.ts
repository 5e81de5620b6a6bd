// Shopify figures for scripts/bench, on the bench's own stack (`scripts/bench
// shopify` alone), against the sandbox's Shopify:
// - a full sync of sandbox-big.myshopify.com (10,000 products, 20,000
//   orders, 2,000 customers, 500 checkouts) through bulk operations: records
//   a second, and CPU per synced record in the function layer (the gateway
//   process) and in Postgres (its processes), from /proc;
// - an incremental sync of 1,000 changed products against the throttle
//   (a 2,000-point bucket refilled at 1,000 points a second, Shopify Plus's
//   rate): the points spent over the points the bucket allowed in that time,
//   i.e. products synced a second as a share of what the throttle allows;
// - webhooks: p50 and p99 from the sandbox sending a signed orders/updated to
//   the function's 200.
import { env, makeTenant, sql, stackDir, until } from "../tests/_stack.ts";
import { median } from "./bench_common.ts";

const SHOP = "sandbox-big.myshopify.com";
const CHANGED = Number(Deno.env.get("BENCH_SHOPIFY_CHANGED") ?? 1000);
const HOOKS = Number(Deno.env.get("BENCH_SHOPIFY_WEBHOOKS") ?? 200);
const sandbox = `${env.SANDBOX_URL}/_sandbox/shopify`;

// deno-lint-ignore no-explicit-any
async function control(path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${sandbox}${path}`, {
    method: body === undefined ? "GET" : "POST",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return await res.json();
}

/** utime + stime of a process and its threads, in ms. */
function cpuMs(pid: number): number {
  try {
    const f = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const rest = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) * 10; // USER_HZ = 100
  } catch {
    return 0;
  }
}
/** CPU of every process named `postgres` (the bench runs its stack alone). */
function postgresMs(): number {
  let total = 0;
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const comm = Deno.readTextFileSync(`/proc/${e.name}/comm`).trim();
      if (comm === "postgres") total += cpuMs(Number(e.name));
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
const gatewayPid = Number(
  Deno.readTextFileSync(`${stackDir}/gateway.pid`).trim(),
);

console.log("\nshopify: against the sandbox's Shopify");
const t = await makeTenant();
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${t.id}, 'sync-platform', 1000, 60)`;

// Connect through the OAuth dance.
const start =
  await (await fetch(`${env.SUPABASE_URL}/functions/v1/oauth-shopify`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${t.token}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ shop: SHOP }),
  })).json();
const approve = await fetch(start.authorize_url, { redirect: "manual" });
await approve.body?.cancel();
const back = await fetch(approve.headers.get("location")!, {
  redirect: "manual",
});
await back.body?.cancel();
const integration = new URL(back.headers.get("location")!).searchParams.get(
  "integration_id",
);
if (!integration) {
  throw new Error(`not connected: ${back.headers.get("location")}`);
}

async function sync(body: Record<string, unknown>) {
  const res = await fetch(`${env.SUPABASE_URL}/functions/v1/sync-platform`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${t.token}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ integration_id: integration, ...body }),
  });
  const job = await res.json();
  if (res.status !== 202) throw new Error(JSON.stringify(job));
  return await until("the sync", 1800, async () => {
    const [j] =
      await sql`select status, error, counts from public.commerce_sync_jobs where id = ${job.id}`;
    if (j.status === "failed") throw new Error(j.error);
    return j.status === "completed" ? j : undefined;
  });
}

// 1. Full sync.
const g0 = cpuMs(gatewayPid), p0 = postgresMs(), t0 = performance.now();
const full = await sync({});
const seconds = (performance.now() - t0) / 1000;
const gatewayCpu = cpuMs(gatewayPid) - g0, pgCpu = postgresMs() - p0;
// deno-lint-ignore no-explicit-any
const records = Object.values(full.counts as Record<string, any>).reduce(
  (a, c) => a + Number(c.fetched),
  0,
);
const [rows] = await sql`select
  (select count(*) from public.commerce_products where integration_id = ${integration})::int as products,
  (select count(*) from public.commerce_product_variants where integration_id = ${integration})::int as variants,
  (select count(*) from public.commerce_orders where integration_id = ${integration})::int as orders,
  (select count(*) from public.commerce_order_items where integration_id = ${integration})::int as items`;
console.log(
  `  full sync (bulk): ${
    records.toLocaleString("en")
  } records (${rows.products} products, ${rows.variants} variants, ` +
    `${rows.orders} orders, ${rows.items} line items) in ${
      seconds.toFixed(1)
    } s: ` +
    `${(records / seconds).toFixed(0)} records/s`,
);
console.log(
  `  CPU per 1,000 synced records: function layer ${
    (gatewayCpu / records * 1000).toFixed(0)
  } ms, ` +
    `Postgres ${(pgCpu / records * 1000).toFixed(0)} ms`,
);

// 2. Incremental against the throttle.
await control(`/${SHOP}/mutate`, { update_products: CHANGED });
await control("/throttle", {
  maximumAvailable: 2000,
  restoreRate: 1000,
  currentlyAvailable: 2000,
});
const s0 = await control(`/${SHOP}/stats`);
const i0 = performance.now();
const inc = await sync({ resources: ["products"] });
const iSeconds = (performance.now() - i0) / 1000;
const s1 = await control(`/${SHOP}/stats`);
const spent = s1.points_spent - s0.points_spent;
const allowed = 2000 + 1000 * iSeconds;
const fetched = Number(inc.counts.products.fetched);
console.log(
  `  incremental: ${fetched} changed products in ${iSeconds.toFixed(1)} s ` +
    `(${(fetched / iSeconds).toFixed(0)}/s), ${
      spent.toFixed(0)
    } points spent of ${allowed.toFixed(0)} allowed: ` +
    `ratio ${(spent / allowed).toFixed(2)} (target ≥ 0.8); ${
      s1.throttled - s0.throttled
    } THROTTLED answers`,
);
await control("/throttle", { maximumAvailable: 2000, restoreRate: 100 });

// 3. Webhooks, receipt to 200 as the sandbox measures it.
const times: number[] = [];
for (let i = 0; i < HOOKS; i++) {
  const r = await control(`/${SHOP}/send`, { topic: "orders/updated" });
  if (r.status !== 200) throw new Error(JSON.stringify(r));
  times.push(r.elapsed_ms);
}
times.sort((a, b) => a - b);
console.log(
  `  webhook orders/updated, sent to 200: p50 ${
    median(times).toFixed(1)
  } ms, ` +
    `p99 ${
      times[Math.floor(times.length * 0.99)].toFixed(1)
    } ms (${HOOKS} in a row)`,
);
await sql.end();
