// generate-report end to end: supabase-js → gateway → function → the metric
// catalogue in Postgres, read under the caller's RLS.
import assert from "node:assert/strict";
import {
  assertBoundary,
  download,
  invoke,
  makeTenant,
  order,
  run,
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
      [{ metrics: ["revenue"], format: "csv" }, "format"],
      [
        { metrics: ["revenue"], visualization_type: "chart" },
        "visualization_type",
      ],
      [{ metrics: ["revenue"], chart: { kind: "donut" } }, "chart.kind"],
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

/** Orders on two products, the second with a refund, over two months. */
async function twoMonths(t: Tenant) {
  await placeOrders(t, [4, 2]);
  await sql`update public.wholesale_orders set created_at = '2026-01-15 12:00+00'
    where id = (select id from public.wholesale_orders where tenant_id = ${t.id} order by created_at limit 1)`;
  await sql`update public.wholesale_orders set created_at = '2026-02-15 12:00+00'
    where tenant_id = ${t.id} and created_at > '2026-02-01'`;
}

const XLSX_TYPE =
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

Deno.test("a chart: its series are the rows, its SVG parses as SVG", async () => {
  const t = await makeTenant({ stock: 1000 });
  await twoMonths(t);
  const r = await invoke(t.db, "generate-report", {
    metrics: ["revenue", "order_count"],
    group_by: ["month"],
    visualization_type: "chart",
    chart: { kind: "bar" },
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const chart = r.body.report_data.chart;
  assert.equal(chart.kind, "bar");
  assert.deepEqual(chart.categories, ["2026-01", "2026-02"]);
  assert.deepEqual(chart.series, [
    { name: "Revenue", values: [50, 25] },
    { name: "Order count", values: [1, 1] },
  ]);
  // A real XML parser reads it: an <svg> with a bar per value and the
  // category labels as text.
  const parsed = JSON.parse(
    await run("python3", [
      "-c",
      `import sys, json, xml.etree.ElementTree as E
ns = "{http://www.w3.org/2000/svg}"
root = E.fromstring(sys.stdin.read())
print(json.dumps({"tag": root.tag, "rects": len(root.findall(ns + "rect")),
  "texts": [t.text for t in root.findall(ns + "text")]}))`,
    ], chart.svg),
  );
  assert.equal(parsed.tag, "{http://www.w3.org/2000/svg}svg");
  assert.equal(parsed.rects, 4 + 2, "four bars and two legend swatches");
  for (const label of ["2026-01", "2026-02", "Revenue", "Order count"]) {
    assert.ok(parsed.texts.includes(label), `${label} in ${parsed.texts}`);
  }
});

Deno.test("a PDF with a chart, landscape: the title, totals and axis labels are text, page 1 renders", async () => {
  const t = await makeTenant({ stock: 1000 });
  await twoMonths(t);
  const r = await invoke(t.db, "generate-report", {
    metrics: ["revenue", "units_sold"],
    group_by: ["month"],
    visualization_type: "chart",
    format: "pdf",
    orientation: "landscape",
    save: "Monthly revenue",
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.file.content_type, "application/pdf");
  assert.ok(
    r.body.file.path.startsWith(`${t.id}/${r.body.report_id}/`),
    r.body.file.path,
  );
  const [object] = await sql`select owner::text as owner_id from storage.objects
    where bucket_id = 'reports' and name = ${r.body.file.path}`;
  assert.equal(object.owner_id, t.userId, "uploaded as the caller");

  const file = await download(r.body.file_url, "application/pdf");
  const info = await run("pdfinfo", [file]);
  assert.match(info, /Page size:\s+841\.89 x 595\.28/, "landscape A4");
  const text = await run("pdftotext", ["-layout", file, "-"]);
  for (
    const expected of [
      "Monthly revenue", // the title
      "Total",
      "75.00", // total revenue
      "2026-01", // axis category labels
      "2026-02",
      "Grouped by",
      "Page 1 of 1",
    ]
  ) {
    assert.ok(text.includes(expected), `${expected} in:\n${text}`);
  }
  // value-axis ticks: 0 and a step above it
  assert.match(text, /\b0\b/);
  const png = `${file}-page`;
  await run("pdftoppm", [
    "-png",
    "-r",
    "40",
    "-f",
    "1",
    "-l",
    "1",
    "-singlefile",
    file,
    png,
  ]);
  const image = await Deno.readFile(`${png}.png`);
  assert.deepEqual([...image.slice(1, 4)], [0x50, 0x4e, 0x47]);
  assert.ok(image.length > 3000, "the page is not blank");
});

Deno.test("an XLSX: a real reader finds numbers, dates, a frozen filtered header, two sheets and a chart", async () => {
  const t = await makeTenant({ stock: 1000 });
  await twoMonths(t);
  const r = await invoke(t.db, "generate-report", {
    metrics: ["revenue", "order_count", "return_rate"],
    group_by: ["month"],
    visualization_type: "chart",
    format: "excel",
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const file = await download(r.body.file_url, XLSX_TYPE);
  const book = JSON.parse(
    await run("python3", [
      "-c",
      `import sys, json, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
data, summary = wb["Data"], wb["Summary"]
cell = lambda c: {"type": type(c.value).__name__, "value": str(c.value), "format": c.number_format}
print(json.dumps({"sheets": wb.sheetnames, "freeze": data.freeze_panes, "filter": data.auto_filter.ref,
  "header": [c.value for c in data[1]], "a2": cell(data["A2"]), "b2": cell(data["B2"]), "c2": cell(data["C2"]),
  "d2": cell(data["D2"]), "rows": data.max_row, "charts": len(summary._charts), "title": summary["A1"].value}))`,
      file,
    ]),
  );
  assert.deepEqual(book.sheets, ["Summary", "Data"]);
  assert.equal(book.freeze, "A2");
  assert.equal(book.filter, "A1:D3");
  assert.deepEqual(book.header, [
    "Month",
    "Revenue",
    "Order count",
    "Return rate",
  ]);
  assert.deepEqual(book.a2, {
    type: "datetime",
    value: "2026-01-01 00:00:00",
    format: "yyyy-mm-dd",
  });
  assert.equal(book.b2.type, "int");
  assert.equal(book.b2.value, "50");
  assert.equal(book.b2.format, "#,##0.00");
  assert.equal(book.c2.type, "int");
  assert.equal(book.d2.format, "0.00%");
  assert.equal(book.rows, 3);
  assert.equal(book.charts, 1);
  assert.equal(book.title, "Revenue, Order count and Return rate by month");
});

Deno.test("a file over the reports bucket's limit is a 413 naming the sizes, and nothing is stored", async () => {
  const t = await makeTenant({ stock: 1000 });
  await twoMonths(t);
  const objects = async () =>
    (await sql`select count(*)::int as n from storage.objects
      where bucket_id = 'reports' and name like ${t.id + "/%"}`)[0].n;
  const [{ limit }] =
    await sql`select file_size_limit as limit from storage.buckets where id = 'reports'`;
  await sql`update storage.buckets set file_size_limit = 500 where id = 'reports'`;
  try {
    const r = await invoke(t.db, "generate-report", {
      metrics: ["revenue"],
      group_by: ["month"],
      format: "pdf",
    });
    assert.equal(r.status, 413, JSON.stringify(r.body));
    assert.equal(r.body.error.code, "FILE_TOO_LARGE");
    assert.equal(r.body.error.details.limit_bytes, 500);
    assert.ok(r.body.error.details.size_bytes > 500);
  } finally {
    await sql`update storage.buckets set file_size_limit = ${limit} where id = 'reports'`;
  }
  assert.equal(await objects(), 0);
});

Deno.test("20 orders at once, a cancellation and a merge: the rollups' answers stay the orders' own", async () => {
  const t = await makeTenant({ stock: 10_000, maxConcurrent: 20 });
  const placed = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      invoke(
        t.db,
        "create-wholesale-order",
        order(t, {
          items: [{
            product_id: t.products[0],
            quantity: i + 1,
            unit_price: 3.5,
          }],
        }),
      )),
  );
  const ok = placed.filter((r) => r.status === 201);
  assert.ok(ok.length >= 15, placed.map((r) => r.status).join(","));
  const truth = async () => {
    const [r] =
      await sql`select coalesce(sum(o.total_amount), 0)::numeric as revenue, count(*)::int as orders,
        (select coalesce(sum(i.quantity), 0) from public.wholesale_order_items i
         join public.wholesale_orders x on x.id = i.order_id
         where x.tenant_id = ${t.id} and x.status <> 'cancelled')::numeric as units
      from public.wholesale_orders o where o.tenant_id = ${t.id} and o.status <> 'cancelled'`;
    return {
      revenue: Number(r.revenue),
      orders: r.orders,
      units: Number(r.units),
    };
  };
  const reported = async () => {
    const r = await invoke(t.db, "generate-report", {
      metrics: ["revenue", "order_count", "units_sold"],
      group_by: ["product"],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const byMonth = await invoke(t.db, "generate-report", {
      metrics: ["revenue", "order_count"],
      group_by: ["month"],
    });
    assert.equal(
      Number(byMonth.body.report_data.totals.revenue),
      Number(r.body.report_data.totals.revenue),
      "the order and line rollups agree",
    );
    const totals = r.body.report_data.totals;
    return {
      revenue: Number(totals.revenue),
      orders: Number(totals.order_count),
      units: Number(totals.units_sold),
    };
  };
  assert.deepEqual(await reported(), await truth());
  await sql`update public.wholesale_orders set status = 'cancelled'
    where id = (select id from public.wholesale_orders where tenant_id = ${t.id} order by created_at limit 1)`;
  assert.deepEqual(
    await reported(),
    await truth(),
    "a cancelled order leaves the rollups",
  );
  await sql`select public.merge_report_rollups()`;
  const [{ unmerged }] =
    await sql`select count(*)::int as unmerged from public.report_line_days
    where tenant_id = ${t.id} and not merged`;
  assert.equal(unmerged, 0);
  assert.deepEqual(await reported(), await truth(), "merged, the same answer");
});

Deno.test("a named period is resolved when the report runs, in the tenant's zone, and said in the answer", async () => {
  const t = await makeTenant({ stock: 1000 });
  await sql`update public.tenants set time_zone = 'Pacific/Auckland' where id = ${t.id}`;
  await placeOrders(t, [2]);
  const thisYear = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    filters: { period: "this_year" },
  });
  assert.equal(thisYear.status, 200, JSON.stringify(thisYear.body));
  assert.equal(Number(thisYear.body.report_data.totals.revenue), 25);
  const [{ today }] =
    await sql`select to_char((now() at time zone 'Pacific/Auckland')::date, 'YYYY-MM-DD') as today`;
  assert.deepEqual(thisYear.body.report_data.period, {
    name: "this_year",
    date_from: `${today.slice(0, 4)}-01-01`,
    date_to: today,
  });
  const lastYear = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    filters: { period: "last_year" },
  });
  assert.equal(Number(lastYear.body.report_data.totals.revenue), 0);
  const bad = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    filters: { period: "fortnight" },
  });
  assert.equal(bad.status, 400);
  assert.ok("filters.period" in bad.body.error.details);
});
