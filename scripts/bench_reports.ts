// Report figures for scripts/bench, on the bench's own stack (`scripts/bench
// reports` alone):
// - revenue by month and by product over 1,000,000 orders (5,000,000 lines)
//   of one tenant, through the gateway as a user: p50 of 5 runs (target
//   ≤ 1 s), with the database's own time for the same report beside it;
// - a PDF with a chart, and an XLSX of 50,000 rows: the function's render
//   time (its server-timing), its CPU and its isolate's memory, the function
//   alone in a fresh process (scripts/serve_one.ts).
import { env, makeTenant, sql, url } from "../tests/_stack.ts";
import { median, serveMeasured } from "./bench_common.ts";

const ORDERS = Number(Deno.env.get("BENCH_REPORT_ORDERS") ?? 1_000_000);
const LINES = 5;
const PRODUCTS = 200;
const RUNS = 5;
const f = (n: number) => n.toFixed(0);

const t = await makeTenant({ products: 1 });
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${t.id}, 'generate-report', 1000000, 60)`;
const products =
  (await sql`insert into public.products (tenant_id, name, sku, price)
  select ${t.id}, 'Product ' || g, 'SKU-' || g, 10 from generate_series(1, ${PRODUCTS}) g returning id::text`)
    .map((r) => r.id);

// The data, written directly: triggers (events, counters) are not what is
// measured, so this session skips them.
console.log(
  `\nreports: generating ${ORDERS.toLocaleString("en")} orders and ${
    (ORDERS * LINES).toLocaleString("en")
  } lines…`,
);
const t0 = performance.now();
const gen = await sql.reserve();
await gen`set session_replication_role = replica`;
const CHUNK = 100_000;
for (let from = 1; from <= ORDERS; from += CHUNK) {
  const to = Math.min(ORDERS, from + CHUNK - 1);
  await gen`insert into public.wholesale_orders (id, tenant_id, client_id, order_number, status, total_amount,
      payment_terms, delivery_method, created_at)
    select md5('o' || g)::uuid, ${t.id}, ${t.clientId}, 'B-' || g,
      case when g % 50 = 0 then 'cancelled' else 'confirmed' end,
      (select sum((1 + (g + l) % 10) * 10) from generate_series(1, ${LINES}) l),
      case when g % 3 = 0 then 'net_30' else 'prepaid' end, 'pickup',
      timestamptz '2025-01-01 00:00Z' + (g % 730) * interval '1 day' + (g % 86400) * interval '1 second'
    from generate_series(${from}::int, ${to}::int) g`;
  await gen`insert into public.wholesale_order_items (tenant_id, order_id, line_number, product_id, warehouse_id,
      quantity, unit_price, total_price)
    select ${t.id}, md5('o' || g)::uuid, l, (${products}::uuid[])[1 + (g * 7 + l) % ${PRODUCTS}],
      ${t.warehouses[0]}, 1 + (g + l) % 10, 10, (1 + (g + l) % 10) * 10
    from generate_series(${from}::int, ${to}::int) g, generate_series(1, ${LINES}) l`;
}
await gen`set session_replication_role = origin`;
gen.release();
const generated = (performance.now() - t0) / 1000;
// Written without triggers, so the rollups are built as after a time-zone
// change: the same function, timed.
const t1 = performance.now();
await sql`select private.rebuild_report_rollups(${t.id})`;
const rebuilt = (performance.now() - t1) / 1000;
await sql`analyze public.wholesale_orders`;
await sql`analyze public.wholesale_order_items`;
await sql`analyze public.report_order_days`;
await sql`analyze public.report_line_days`;
const [{ days, lines }] = await sql`select
  (select count(*)::int from public.report_order_days where tenant_id = ${t.id}) as days,
  (select count(*)::int from public.report_line_days where tenant_id = ${t.id}) as lines`;
console.log(
  `  generated in ${f(generated)} s; rollups rebuilt in ${f(rebuilt)} s (${
    days.toLocaleString("en")
  } order-day and ${lines.toLocaleString("en")} line-day rows)`,
);

async function report(body: Record<string, unknown>) {
  const t0 = performance.now();
  const res = await fetch(`${url}/functions/v1/generate-report`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${t.token}`,
      apikey: env.SUPABASE_ANON_KEY,
      "content-type": "application/json",
    },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (res.status !== 200) throw new Error(JSON.stringify(json));
  const timing = res.headers.get("server-timing")?.match(/dur=([\d.]+)/);
  return {
    ms: performance.now() - t0,
    render: timing ? Number(timing[1]) : NaN,
    body: json,
  };
}

/** The database alone: the same report, as the superuser, without a ticket. */
async function direct(spec: Record<string, unknown>) {
  await sql`select set_config('request.jwt.claims', '{"role": "service_role"}', false)`;
  const t0 = performance.now();
  await sql`select public.report_data(${
    sql.json({ ...spec, tenant_id: t.id })
  })`;
  return performance.now() - t0;
}

console.log(
  `  p50 of ${RUNS} runs      through the gateway   the database alone   target`,
);
for (
  const [label, spec] of [
    ["revenue by month", { metrics: ["revenue"], group_by: ["month"] }],
    ["revenue by product", { metrics: ["revenue"], group_by: ["product"] }],
  ] as const
) {
  const via: number[] = [];
  const db: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    via.push((await report({ ...spec })).ms);
    db.push(await direct(spec));
  }
  const p50 = median(via);
  console.log(
    `  ${label.padEnd(22)} ${f(p50).padStart(8)} ms ${
      f(median(db)).padStart(17)
    } ms      ≤ 1000 ms ${p50 <= 1000 ? "ok" : "OVER"}`,
  );
}
// The same reports from the orders and lines themselves (data_sources rules
// the rollups out), side by side: what the rollups save. 3 runs each.
for (
  const [label, spec] of [
    ["  …from the orders", {
      metrics: ["revenue"],
      group_by: ["month"],
      data_sources: ["orders"],
    }],
    ["  …from the lines", {
      metrics: ["revenue"],
      group_by: ["product"],
      data_sources: ["order_items"],
    }],
  ] as const
) {
  const via: number[] = [];
  const db: number[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      via.push((await report({ ...spec })).ms);
      db.push(await direct(spec));
    }
  } catch (e) {
    console.log(`  ${label.padEnd(22)} failed: ${String(e).slice(0, 200)}`);
    continue;
  }
  console.log(
    `  ${label.padEnd(22)} ${f(median(via)).padStart(8)} ms ${
      f(median(db)).padStart(17)
    } ms      (without the rollups)`,
  );
}

// Documents: render time from the function, 3 runs each.
for (
  const [label, spec] of [
    ["PDF, chart, 24 months", {
      metrics: ["revenue", "order_count"],
      group_by: ["month"],
      visualization_type: "chart",
      format: "pdf",
    }],
    ["XLSX, 50,000 rows", {
      metrics: ["revenue", "units_sold"],
      group_by: ["day", "product"],
      format: "excel",
    }],
  ] as const
) {
  const runs = [];
  for (let i = 0; i < 3; i++) runs.push(await report({ ...spec }));
  const rows = runs[0].body.report_data.rows.length;
  console.log(
    `  ${label.padEnd(22)} render ${
      f(median(runs.map((r) => r.render)))
    } ms (median of 3), ${rows.toLocaleString("en")} rows, ${
      runs[0].body.file.size_bytes.toLocaleString("en")
    } bytes, whole request ${f(median(runs.map((r) => r.ms)))} ms`,
  );
}

// The 50,000-row XLSX in generate-report alone, in a fresh process: its CPU
// from /proc and its isolate's memory (V8 heap + external + wasm linear
// memory, which only grows, so it is the peak).
const port = 26402;
const one = await serveMeasured("generate-report", port);
try {
  const cpu: number[] = [];
  let isolate = 0;
  let wasm = 0;
  for (let i = 0; i < 3; i++) {
    const c0 = one.cpuMs();
    const res = await fetch(`http://127.0.0.1:${port}/generate-report`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        metrics: ["revenue", "units_sold"],
        group_by: ["day", "product"],
        format: "excel",
      }),
    });
    if (res.status !== 200) throw new Error(await res.text());
    await res.body?.cancel();
    cpu.push(one.cpuMs() - c0);
    const m = await one.isolate();
    isolate = Math.max(isolate, m.v8 + m.wasm);
    wasm = Math.max(wasm, m.wasm);
  }
  console.log(
    `  XLSX, 50,000 rows, alone: CPU ${
      f(median(cpu))
    } ms a request (median of 3; limit 2,000), isolate memory at most ${
      f(isolate / 2 ** 20)
    } MB, of which wasm ${f(wasm / 2 ** 20)} MB (limit 256)`,
  );
} finally {
  await one.stop();
}
await sql.end();
