// Lots and recalls end to end, through the gateway with supabase-js: lots
// received and allocated FEFO, a recall that notifies exactly the clients who
// got the lot, its PDF and XLSX, idempotency by recall_id, orders racing the
// recall, a consignee's response through the signed link, quality control.
import assert from "node:assert/strict";
import {
  assertBoundary,
  download,
  env,
  invoke,
  makeTenant,
  order,
  run,
  sent,
  sql,
  type Tenant,
  until,
  url,
} from "./_stack.ts";

const XLSX =
  "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
const day = (offset: number) =>
  new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

async function receive(
  t: Tenant,
  lot: string,
  warehouse: string,
  quantity: number,
  expiresIn: number,
  product = t.products[0],
): Promise<string> {
  const { data, error } = await t.db.rpc("receive_batch", {
    payload: {
      product_id: product,
      lot_number: lot,
      warehouse_id: warehouse,
      quantity,
      produced_on: day(-5),
      expires_on: day(expiresIn),
    },
  });
  assert.equal(error, null, JSON.stringify(error));
  return data.id;
}

async function client(t: Tenant, name: string): Promise<string> {
  const [c] = await sql`insert into public.wholesale_clients
    (tenant_id, name, email, address, payment_terms)
    values (${t.id}, ${name}, ${`${name.split(" ")[0].toLowerCase()}-${
    t.id.slice(0, 8)
  }@client.test`}, '5 Dock Road', 'net_30')
    returning id::text`;
  return c.id;
}

async function place(
  t: Tenant,
  clientId: string,
  quantity: number,
  warehouse?: string,
) {
  return await invoke(
    t.db,
    "create-wholesale-order",
    order(t, {
      client_id: clientId,
      items: [{
        product_id: t.products[0],
        quantity,
        unit_price: 2,
        ...(warehouse ? { warehouse_id: warehouse } : {}),
      }],
    }),
  );
}

/** A tenant whose one product has no stock but its lots. */
async function lotTenant(maxConcurrent?: number): Promise<Tenant> {
  const t = await makeTenant({
    warehouses: 2,
    products: 1,
    stock: 0,
    maxConcurrent,
  });
  await sql`update public.products set name = 'Granola 500 g' where id = ${
    t.products[0]
  }`;
  return t;
}

Deno.test("a recall of L1 notifies exactly the two clients who got it, with a PDF and an XLSX", async () => {
  const t = await lotTenant();
  const [w1, w2] = t.warehouses;
  const l1 = await receive(t, "L1", w1, 12, 30);
  await receive(t, "L2", w2, 50, 60);
  const c1 = t.clientId;
  await sql`update public.wholesale_clients set name = 'Alpha Deli' where id = ${c1}`;
  const c2 = await client(t, "Bravo Bakery");
  const c3 = await client(t, "Charlie Cafe");
  // FEFO: L1 (W1, first to expire) serves c1 and c2; c3 orders from W2, so L2 only.
  for (const [c, q, w] of [[c1, 4], [c2, 5], [c2, 1], [c3, 7, w2]] as const) {
    const r = await place(t, c, q, w);
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  const lots =
    await sql`select b.lot_number, sum(a.quantity)::float8 as q, o.client_id::text as client
    from public.wholesale_order_allocations a
    join public.wholesale_order_items i on i.id = a.order_item_id
    join public.wholesale_orders o on o.id = i.order_id
    join public.batches b on b.id = a.batch_id
    where a.tenant_id = ${t.id} group by 1, 3 order by 1, 2`;
  assert.deepEqual(
    lots.map((r) => [r.lot_number, r.q, r.client]),
    [["L1", 4, c1], ["L1", 6, c2], ["L2", 7, c3]],
    "every unit shipped traces to a lot",
  );

  const recallId = crypto.randomUUID();
  const body = {
    recall_id: recallId,
    batch_id: l1,
    recall_reason: "Undeclared peanut",
    scope: "all",
    hazard: "Severe allergic reaction",
    instructions: "Stop selling it and destroy it",
    classification: "I",
  };
  await assertBoundary(
    t,
    "notify-recall",
    body,
    async () =>
      (await sql`select count(*)::int as n from public.batch_recalls where tenant_id = ${t.id}`)[
        0
      ]
        .n > 0,
    "recall_reason",
  );
  const r = await invoke(t.db, "notify-recall", body);
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal(r.body.success, true);
  assert.equal(r.body.recall_id, recallId);
  assert.equal(r.body.notified_count, 2);
  assert.equal(r.body.consignee_count, 2);
  assert.equal(r.body.quarantined_quantity, 2, "L1's last 2 units");
  const consignees =
    await sql`select client_id::text as client, quantity_shipped::float8 as q
    from public.recall_consignees where recall_id = ${recallId} order by q`;
  assert.deepEqual(consignees.map((c) => [c.client, c.q]), [[c1, 4], [c2, 6]]);

  // The notices reach c1 and c2 by email, urgent, with the lot; c3 gets none.
  const email = (to: string) =>
    until(
      `the notice to ${to}`,
      20,
      async () =>
        (await sent("resend")).find((s) =>
          s.body.to[0] === to && s.body.subject.startsWith("URGENT")
        ),
    );
  const [[e1], [e2], [e3]] = await Promise.all(
    [c1, c2, c3].map((c) =>
      sql`select email from public.wholesale_clients where id = ${c}`
    ),
  );
  const n1 = await email(e1.email);
  await email(e2.email);
  assert.match(n1.body.subject, /PRODUCT RECALL \(Class I\) · lot L1/);
  assert.match(n1.body.text, /Granola 500 g, lot L1, expiry /);
  assert.match(n1.body.text, /Reason for the recall: Undeclared peanut/);
  assert.match(n1.body.text, /Hazard: Severe allergic reaction/);
  assert.match(n1.body.text, /You received 4 units/);
  assert.ok(
    !(await sent("resend")).some((s) =>
      s.body.to[0] === e3.email && s.body.subject.startsWith("URGENT")
    ),
    "the client who got only L2 is not notified",
  );

  // The PDF names the lot and both consignees, and not the third client.
  const pdf = await download(r.body.report_url, "application/pdf");
  const text = await run("pdftotext", ["-layout", pdf, "-"]);
  assert.match(text, /URGENT: Product recall · lot L1/);
  assert.match(text, /Class I/);
  assert.match(text, /Undeclared peanut/);
  assert.match(text, /Alpha Deli/);
  assert.match(text, /Bravo Bakery/);
  assert.doesNotMatch(text, /Charlie Cafe/);

  // The XLSX opens with a real reader, with numbers and dates as such.
  const xlsx = await download(r.body.spreadsheet_url, XLSX);
  const rows = JSON.parse(
    await run("python3", [
      "-c",
      `import sys, json, datetime, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb["Data"]
out = []
for row in ws.iter_rows(min_row=2, values_only=True):
    if row[0] is None: continue
    out.append([row[0], row[3], type(row[3]).__name__, row[6], isinstance(row[8], datetime.datetime)])
print(json.dumps({"sheets": wb.sheetnames, "rows": out, "filter": ws.auto_filter.ref is not None}))`,
      xlsx,
    ]),
  );
  assert.deepEqual(rows.sheets, ["Summary", "Data"]);
  assert.ok(rows.filter, "the data is sortable and filterable");
  const shipped = rows.rows.map((x: unknown[]) => [x[0], x[1], x[3], x[4]]);
  assert.deepEqual(
    shipped.sort(),
    [["L1", 1, "Bravo Bakery", true], ["L1", 4, "Alpha Deli", true], [
      "L1",
      5,
      "Bravo Bakery",
      true,
    ]].sort(),
  );
  assert.ok(
    rows.rows.every((x: unknown[]) => x[2] === "int" || x[2] === "float"),
  );

  // The same recall_id again notifies nobody; another body is 422.
  const before =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'recall_notice'`;
  const again = await invoke(t.db, "notify-recall", body);
  assert.equal(again.status, 201, JSON.stringify(again.body));
  assert.equal(again.headers.get("idempotent-replayed"), "true");
  assert.equal(again.body.notified_count, 2);
  const after =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'recall_notice'`;
  assert.equal(after[0].n, before[0].n, "no second notice");
  const other = await invoke(t.db, "notify-recall", {
    ...body,
    recall_reason: "Something else",
  });
  assert.equal(other.status, 422, JSON.stringify(other.body));
  assert.equal(other.body.error.code, "IDEMPOTENCY_KEY_REUSED");

  // A foreign lot, or a foreign recall id, is 404.
  const stranger = await lotTenant();
  const theirs = await receive(stranger, "S1", stranger.warehouses[0], 5, 30);
  const foreignLot = await invoke(stranger.db, "notify-recall", {
    ...body,
    recall_id: crypto.randomUUID(),
  });
  assert.equal(foreignLot.status, 404, JSON.stringify(foreignLot.body));
  const foreignRecall = await invoke(stranger.db, "notify-recall", {
    ...body,
    batch_id: theirs,
  });
  assert.equal(foreignRecall.status, 404, JSON.stringify(foreignRecall.body));
  assert.match(foreignRecall.body.error.message, /recall not found/);
  const { data: peek } = await stranger.db.from("batch_recalls").select("id");
  assert.deepEqual(peek, [], "nor can its rows be read");

  // c1 answers through the link in its notice; the figures move.
  const link = n1.body.text.match(/https?:\/\/\S+recall-response\?token=\S+/)
    ?.[0];
  assert.ok(link, n1.body.text);
  const local = link.replace(
    /^https?:\/\/[^/]+\/functions\/v1/,
    `${url}/functions/v1`,
  );
  const page = await fetch(local);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  const html = await page.text();
  assert.match(html, /lot <strong>L1<\/strong>/);
  assert.match(html, /you received 4 units/);
  const tampered = local.slice(0, -3) + (local.endsWith("AAA") ? "BBB" : "AAA");
  const bad = await fetch(tampered, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "acknowledged=yes&on_hand=0&returned=4&destroyed=0",
  });
  assert.equal(bad.status, 401);
  assert.match(await bad.text(), /This link cannot be used/);
  const untouched =
    await sql`select count(*)::int as n from public.recall_consignees
    where recall_id = ${recallId} and responded_at is not null`;
  assert.equal(untouched[0].n, 0, "a tampered link changes nothing");
  const post = (form: string) =>
    fetch(local, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: form,
    });
  const wrong = await post("acknowledged=yes&on_hand=9&returned=0&destroyed=0");
  assert.equal(wrong.status, 400);
  assert.match(await wrong.text(), /more than the 4/);
  const done = await post("acknowledged=yes&on_hand=1&returned=3&destroyed=0");
  assert.equal(done.status, 200);
  assert.match(await done.text(), /Thank you: your response is recorded/);
  const twice = await post("acknowledged=yes&on_hand=0&returned=0&destroyed=4");
  assert.match(await twice.text(), /already recorded/);
  const { data: eff, error } = await t.db.rpc("recall_effectiveness", {
    recall_id: recallId,
  });
  assert.equal(error, null);
  assert.equal(eff.responded, 1);
  assert.equal(eff.response_rate, 0.5);
  assert.equal(eff.quantity_accounted, 4);
  assert.equal(eff.recovery_rate, 0.4);

  // The report rendered again shows the response.
  const third = await invoke(t.db, "notify-recall", body);
  const again2 = await run("pdftotext", [
    "-layout",
    await download(third.body.report_url, "application/pdf"),
    "-",
  ]);
  assert.match(again2, /50\.0% \(1 responded\)/);
  assert.match(again2, /1 ?\/ ?3 ?\/ ?0/);
});

Deno.test("orders racing a recall never allocate the lot after it commits", async () => {
  const t = await lotTenant(24);
  const lot = await receive(t, "LR", t.warehouses[0], 60, 30);
  const recallId = crypto.randomUUID();
  const orders = Array.from({ length: 12 }, () => place(t, t.clientId, 3));
  const recall = invoke(t.db, "notify-recall", {
    recall_id: recallId,
    batch_id: lot,
    recall_reason: "Metal fragments",
    scope: "all",
  });
  const results = await Promise.all([...orders, recall]);
  const recalled = results.pop()!;
  assert.equal(recalled.status, 201, JSON.stringify(recalled.body));
  for (const r of results) {
    assert.ok(
      r.status === 201 || r.body.error?.code === "INSUFFICIENT_STOCK" ||
        r.body.error?.code === "TOO_MANY_CONCURRENT_REQUESTS",
      JSON.stringify(r.body),
    );
  }
  // Every order that took LR is in the recall's trace: none took it after.
  const took = await sql`select distinct o.order_number
    from public.wholesale_order_allocations a
    join public.wholesale_order_items i on i.id = a.order_item_id
    join public.wholesale_orders o on o.id = i.order_id
    where a.batch_id = ${lot} order by 1`;
  const [traced] =
    await sql`select coalesce(array_agg(n order by n), '{}') as numbers
    from public.recall_consignees c, unnest(c.order_numbers) n where c.recall_id = ${recallId}`;
  assert.deepEqual(traced.numbers, took.map((o) => o.order_number));
  const placed = results.filter((r) => r.status === 201).length;
  assert.equal(
    took.length,
    placed,
    "every order placed took the lot, before the recall",
  );
  // Conservation: received = shipped + quarantined; nothing left to sell.
  const [b] = await sql`select
      (select sum(quantity) from public.wholesale_order_allocations where batch_id = ${lot})::float8 as shipped,
      (select coalesce(sum(quantity), 0) from public.quarantined_inventory where batch_id = ${lot})::float8 as held,
      (select sum(quantity) from public.batch_inventory where batch_id = ${lot})::float8 as shelf`;
  assert.equal((b.shipped ?? 0) + b.held, 60);
  assert.equal(b.shelf, 0);
  const late = await place(t, t.clientId, 1);
  assert.equal(late.status, 409);
  assert.equal(late.body.error.code, "INSUFFICIENT_STOCK");
});

Deno.test("a failed quality test quarantines the lot, and its stock cannot be ordered until released", async () => {
  const t = await lotTenant();
  const lot = await receive(t, "Q1", t.warehouses[0], 10, 30);
  // The certificate of analysis goes to the quality-control bucket first.
  const pdf = new TextEncoder().encode("%PDF-1.4\n% certificate\n%%EOF\n");
  const path = `${t.id}/${lot}/coa.pdf`;
  const up = await t.db.storage.from("quality-control").upload(path, pdf, {
    contentType: "application/pdf",
  });
  assert.equal(up.error, null, JSON.stringify(up.error));
  const { data, error } = await t.db.rpc("record_quality_test", {
    payload: {
      batch_id: lot,
      status: "failed",
      test_results: { salmonella: "detected" },
      certificate_path: path,
    },
  });
  assert.equal(error, null, JSON.stringify(error));
  assert.equal(data.quarantined_quantity, 10);
  assert.equal(data.test.file_url, `quality-control/${path}`);
  const refused = await place(t, t.clientId, 1);
  assert.equal(refused.status, 409);
  assert.equal(refused.body.error.code, "INSUFFICIENT_STOCK");
  assert.equal(refused.body.error.details.short[0].available, 0);

  const { data: held } = await t.db.from("quarantined_inventory").select(
    "id, quantity, status",
  );
  assert.deepEqual(held?.map((h) => [h.quantity, h.status]), [[
    10,
    "quarantined",
  ]]);
  const early = await t.db.rpc("resolve_quarantine", {
    quarantine_id: held![0].id,
    action: "release",
  });
  assert.equal(early.error?.code, "CE409", "not before a passing test");
  const retest = await t.db.rpc("record_quality_test", {
    payload: { batch_id: lot, status: "passed" },
  });
  assert.equal(retest.error, null, JSON.stringify(retest.error));
  const release = await t.db.rpc("resolve_quarantine", {
    quarantine_id: held![0].id,
    action: "release",
    note: "retest passed",
  });
  assert.equal(release.error, null, JSON.stringify(release.error));
  const ok = await place(t, t.clientId, 10);
  assert.equal(ok.status, 201, JSON.stringify(ok.body));
});

Deno.test("recall-response refuses a missing link with a page, and methods it does not take", async () => {
  const none = await fetch(`${url}/functions/v1/recall-response`);
  assert.equal(none.status, 401);
  assert.match(await none.text(), /This link cannot be used/);
  const put = await fetch(`${url}/functions/v1/recall-response?token=x`, {
    method: "PUT",
    headers: { apikey: env.SUPABASE_ANON_KEY },
  });
  assert.equal(put.status, 405);
  assert.equal((await put.json()).error.code, "METHOD_NOT_ALLOWED");
});
