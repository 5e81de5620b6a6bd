// generate-report end to end: supabase-js → gateway → function → the metric
// catalogue in Postgres, read under the caller's RLS.
import assert from "node:assert/strict";
import {
  assertBoundary,
  invoke,
  makeTenant,
  order,
  sql,
  type Tenant,
} from "./_stack.ts";

async function placeOrders(t: Tenant, lines: number[]) {
  for (const quantity of lines) {
    const r = await invoke(
      t.db,
      "create-wholesale-order",
      order(t, {
        items: [{ product_id: t.products[0], quantity, unit_price: 12.5 }],
      }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

Deno.test("a table by month and by product, a summary, as the database computes them", async () => {
  const t = await makeTenant({ stock: 1000 });
  await sql`update public.tenants set time_zone = 'America/New_York' where id = ${t.id}`;
  await placeOrders(t, [1, 2, 3]);
  const [expected] =
    await sql`select sum(total_amount)::text as revenue, count(*)::int as n,
      to_char(date_trunc('month', max(created_at) at time zone 'America/New_York'), 'YYYY-MM-DD') as month
    from public.wholesale_orders where tenant_id = ${t.id} and status <> 'cancelled'`;

  const byMonth = await invoke(t.db, "generate-report", {
    metrics: ["revenue", "order_count"],
    group_by: ["month"],
    format: "json",
  });
  assert.equal(byMonth.status, 200, JSON.stringify(byMonth.body));
  assert.equal(byMonth.body.success, true);
  const data = byMonth.body.report_data;
  assert.deepEqual(data.columns, [
    { name: "month", type: "date" },
    { name: "revenue", type: "money" },
    { name: "order_count", type: "integer" },
  ]);
  assert.deepEqual(data.rows, [[expected.month, Number(expected.revenue), 3]]);
  assert.equal(Number(data.totals.revenue), 75);
  assert.equal(data.time_zone, "America/New_York");

  const byProduct = await invoke(t.db, "generate-report", {
    metrics: ["units_sold", "revenue"],
    group_by: ["product"],
    visualization_type: "summary",
  });
  assert.equal(byProduct.status, 200, JSON.stringify(byProduct.body));
  assert.deepEqual(byProduct.body.report_data.rows, [[t.products[0], 6, 75]]);
  assert.equal(
    byProduct.body.report_data.summary,
    "Units sold: 6 · Revenue: 75.00",
  );
});

Deno.test("a saved report re-runs by id, narrowed; another tenant's is 404; a viewer is refused", async () => {
  const t = await makeTenant({ stock: 1000 });
  const other = await makeTenant();
  await placeOrders(t, [1, 4]);
  const saved = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    filters: { payment_terms: ["prepaid", "net_30"] },
    save: "Prepaid and net 30",
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  const id = saved.body.report_id;
  assert.ok(id);
  const [row] =
    await sql`select name, metrics, filters from public.custom_reports where id = ${id}`;
  assert.equal(row.name, "Prepaid and net 30");
  assert.deepEqual(row.metrics, ["revenue"]);

  const again = await invoke(t.db, "generate-report", {
    report_id: id,
    filters: { payment_terms: "prepaid" },
  });
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(Number(again.body.report_data.totals.revenue), 62.5);
  const none = await invoke(t.db, "generate-report", {
    report_id: id,
    filters: { payment_terms: "cod" },
  });
  assert.equal(
    Number(none.body.report_data.totals.revenue),
    0,
    "cod is not in the saved filter: narrowing leaves nothing",
  );

  const foreign = await invoke(other.db, "generate-report", { report_id: id });
  assert.equal(foreign.status, 404, JSON.stringify(foreign.body));
  assert.equal(foreign.body.error.code, "NOT_FOUND");
  const notMine = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    tenant_id: other.id,
  });
  assert.equal(notMine.status, 404, JSON.stringify(notMine.body));

  // Admission asks for the member role, as for every function: a viewer
  // reads the data the app shows it, not through generate-report.
  await sql`update public.tenant_users set role = 'viewer' where tenant_id = ${t.id}`;
  const viewer = await invoke(t.db, "generate-report", { report_id: id });
  assert.equal(viewer.status, 403, JSON.stringify(viewer.body));
  assert.equal(viewer.body.error.code, "FORBIDDEN");
});

Deno.test("generate-report: its boundary, and every bad name a 400 that changes nothing", async () => {
  const t = await makeTenant();
  const count = async () =>
    (await sql`select count(*)::int as n from public.custom_reports where tenant_id = ${t.id}`)[
      0
    ]
      .n;
  const before = await count();
  await assertBoundary(
    t,
    "generate-report",
    { metrics: ["revenue"], save: "x" },
    async () => (await count()) !== before,
    "save",
  );
  for (
    const [body, key] of [
      [{ metrics: ["profit"], save: "bad" }, "metrics[0]"],
      [{ metrics: ["stock_value"], group_by: ["month"] }, "metrics[0]"],
      [{ metrics: ["revenue"], group_by: ["region"] }, "group_by[0]"],
      [
        { metrics: ["revenue"], filters: { date_from: "soon" } },
        "filters.date_from",
      ],
      [{ metrics: ["revenue"], format: "pdf" }, "format"],
    ] as const
  ) {
    const r = await invoke(t.db, "generate-report", body);
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.ok(
      key in r.body.error.details,
      `${key} in ${JSON.stringify(r.body.error.details)}`,
    );
  }
  assert.equal(await count(), before, "a refused save stores nothing");
  // The catalogue cannot be run straight through the REST API, around the
  // function's admission and rate limit.
  const direct = await t.db.rpc("report_data", {
    spec: { metrics: ["revenue"], tenant_id: t.id },
  });
  assert.equal(direct.error?.code, "CEA03", JSON.stringify(direct));
});
