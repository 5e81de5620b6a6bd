// create-purchase-order end to end: the PO rows, a real PDF that poppler
// renders, the signed link, the supplier's email, tenancy, idempotency, and a
// PDF step that fails and is finished by a retry.
import assert from "node:assert/strict";
import {
  assertBoundary,
  download,
  invoke,
  makeSupplier,
  makeTenant,
  run,
  sent,
  sql,
  type Tenant,
  until,
} from "./_stack.ts";

const FN = "create-purchase-order";

const inAWeek = () =>
  new Date(Date.now() + 7 * 86_400_000).toISOString().slice(0, 10);

function po(t: Tenant, supplierId: string, lines = 2) {
  return {
    supplier_id: supplierId,
    items: Array.from({ length: lines }, (_, i) => ({
      product_id: t.products[i],
      quantity: 12 + i,
      unit_price: 3.25,
    })),
    expected_delivery_date: inAWeek(),
    notes: "Deliver to dock 4, before noon.",
  };
}

async function posOf(tenantId: string): Promise<number> {
  const [r] = await sql`select count(*)::int as n from public.purchase_orders
    where tenant_id = ${tenantId}`;
  return r.n;
}

async function pages(file: string): Promise<number> {
  const info = await run("pdfinfo", [file]);
  return Number(info.match(/^Pages:\s+(\d+)/m)![1]);
}

Deno.test("a PO is stored, its PDF renders with pdftoppm, and the supplier gets the link", async () => {
  const t = await makeTenant({ products: 2 });
  const supplier = await makeSupplier(t);
  const res = await invoke(t.db, FN, po(t, supplier), {
    "Idempotency-Key": `po-${t.id}`,
  });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  assert.deepEqual(Object.keys(res.body).sort(), [
    "pdf_url",
    "po_id",
    "po_number",
    "success",
  ]);
  assert.equal(res.body.success, true);
  assert.match(res.body.po_number, /^PO-\d{4}-000001$/);
  assert.match(res.headers.get("server-timing")!, /^pdf;dur=\d+\.\d\d$/);

  const [row] = await sql`select status, total_amount::text, pdf_path,
      pdf_attached_at is not null as attached
    from public.purchase_orders where id = ${res.body.po_id}`;
  assert.deepEqual(row, {
    status: "sent",
    total_amount: "81.25", // 12 × 3.25 + 13 × 3.25
    pdf_path: `${t.id}/${res.body.po_number}.pdf`,
    attached: true,
  });
  const [object] = await sql`select metadata ->> 'mimetype' as mime
    from storage.objects where bucket_id = 'purchase-orders' and name = ${row.pdf_path}`;
  assert.equal(object.mime, "application/pdf");

  // The signed URL serves the PDF to anyone holding it; poppler reads it.
  const file = await download(res.body.pdf_url, "application/pdf");
  assert.equal(await pages(file), 1);
  const png = `${file}-page`;
  await run("pdftoppm", [
    "-png",
    "-r",
    "50",
    "-f",
    "1",
    "-l",
    "1",
    "-singlefile",
    file,
    png,
  ]);
  const image = await Deno.readFile(`${png}.png`);
  assert.deepEqual([...image.slice(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
  assert(image.length > 2000, "the rendered page is not blank");
  const text = await run("pdftotext", [
    "-layout",
    "-f",
    "1",
    "-l",
    "1",
    file,
    "-",
  ]);
  for (
    const expected of [
      res.body.po_number,
      "Tenant ",
      "PURCHASE ORDER",
      "Supplier & Sons",
      "Attn: Robin",
      "9 Quay Street",
      "SKU-",
      "Product 1",
      "39.00",
      "42.25",
      "81.25",
      "Net 30",
      "Deliver to dock 4, before noon.",
      "Page 1 of 1",
    ]
  ) {
    assert(text.includes(expected), `page 1 lacks ${expected}:\n${text}`);
  }
  await Deno.remove(file);
  await Deno.remove(`${png}.png`);

  // The dispatcher emails the supplier the same link.
  const [supplierRow] =
    await sql`select email from public.suppliers where id = ${supplier}`;
  const mail = await until("the supplier's email", 20, async () => {
    const mails = await sent("resend");
    return mails.find((m) => m.body.to.includes(supplierRow.email));
  });
  assert.equal(
    mail.body.subject,
    `Purchase order ${res.body.po_number} from ${
      (await sql`select business_name from public.tenants where id = ${t.id}`)[
        0
      ]
        .business_name
    }`,
  );
  const link = mail.body.text.match(/https?:\/\/\S+/)![0];
  const again = await download(link, "application/pdf");
  await Deno.remove(again);

  // A replay returns the same PO with a fresh link, and sends nothing more.
  const replay = await invoke(t.db, FN, po(t, supplier), {
    "Idempotency-Key": `po-${t.id}`,
  });
  assert.equal(replay.status, 201);
  assert.equal(replay.body.po_id, res.body.po_id);
  assert.equal(replay.headers.get("idempotent-replayed"), "true");
  assert.equal(await posOf(t.id), 1);
  const [outbox] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'purchase_order'`;
  assert.equal(outbox.n, 1);
});

Deno.test("a 200-line PO flows onto several pages", async () => {
  const t = await makeTenant({ products: 200, warehouses: 1, stock: 0 });
  const supplier = await makeSupplier(t, null);
  const res = await invoke(t.db, FN, po(t, supplier, 200));
  assert.equal(res.status, 201, JSON.stringify(res.body));
  const file = await download(res.body.pdf_url, "application/pdf");
  const n = await pages(file);
  assert(n >= 4, `${n} pages`);
  const last = await run("pdftotext", [
    "-layout",
    "-f",
    String(n),
    "-l",
    String(n),
    file,
    "-",
  ]);
  assert(last.includes(`Page ${n} of ${n}`), last);
  assert(last.includes("(continued)"), last);
  // 12…211 × 3.25 = 200 × 111.5 × 3.25
  assert(last.includes("72,475.00"), last);
  const all = await run("pdftotext", [file, "-"]);
  for (const line of [1, 100, 200]) {
    assert(all.includes(`Product ${line}`), `line ${line} is missing`);
  }
  await Deno.remove(file);
  // No email address: the PO is sent without an email.
  const [outbox] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id}`;
  assert.equal(outbox.n, 0);
});

Deno.test("another tenant's supplier or product is 404 and creates nothing", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const bSupplier = await makeSupplier(b);
  const aSupplier = await makeSupplier(a);
  const foreignSupplier = await invoke(a.db, FN, po(a, bSupplier));
  assert.equal(foreignSupplier.status, 404);
  assert.equal(foreignSupplier.body.error.code, "NOT_FOUND");
  assert.equal(foreignSupplier.body.error.details.resource, "supplier");
  const foreignProduct = await invoke(a.db, FN, {
    ...po(a, aSupplier, 1),
    items: [{ product_id: b.products[0], quantity: 1, unit_price: 1 }],
  });
  assert.equal(foreignProduct.status, 404);
  assert.equal(foreignProduct.body.error.details.resource, "product");
  assert.equal(await posOf(a.id), 0);
  assert.equal(await posOf(b.id), 0);
  const [objects] = await sql`select count(*)::int as n from storage.objects
    where bucket_id = 'purchase-orders' and (name like ${
    a.id + "/%"
  } or name like ${b.id + "/%"})`;
  assert.equal(objects.n, 0);
});

Deno.test("bad input is a 400 naming each field, and the boundary holds", async () => {
  const t = await makeTenant();
  const supplier = await makeSupplier(t);
  const bad = await invoke(t.db, FN, {
    supplier_id: "nope",
    items: [{ product_id: t.products[0], quantity: 0, unit_price: 1.001 }],
    expected_delivery_date: "2020-01-01",
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(bad.body.error.details, {
    supplier_id: "must be a UUID string",
    "items[0].quantity": "must be greater than 0",
    "items[0].unit_price": "must have at most 2 decimal places",
    expected_delivery_date: "must not be in the past",
  });
  await assertBoundary(
    t,
    FN,
    po(t, supplier),
    async () => await posOf(t.id) > 0,
    "notes",
  );
});

Deno.test("10 parallel requests with one key create one PO and one email", async () => {
  const t = await makeTenant({ maxConcurrent: 8 });
  const supplier = await makeSupplier(t);
  const results = await Promise.all(
    Array.from(
      { length: 10 },
      () => invoke(t.db, FN, po(t, supplier), { "Idempotency-Key": "same-po" }),
    ),
  );
  const statuses = results.map((r) => r.status);
  assert(statuses.every((s) => s === 201 || s === 409), statuses.join(","));
  assert(statuses.includes(201));
  for (const r of results.filter((r) => r.status === 409)) {
    assert.equal(r.body.error.code, "IDEMPOTENCY_KEY_IN_USE");
  }
  assert.equal(
    new Set(results.filter((r) => r.status === 201).map((r) => r.body.po_id))
      .size,
    1,
  );
  assert.equal(await posOf(t.id), 1);
  const [outbox] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'purchase_order'`;
  assert.equal(outbox.n, 1);
});

Deno.test("when storing the PDF fails, the PO is named and a retry with the key finishes it", async () => {
  const t = await makeTenant();
  const supplier = await makeSupplier(t);
  const key = { "Idempotency-Key": `pending-${t.id}` };
  // The bucket refuses the PDF: the PO exists, its PDF does not.
  await sql`update storage.buckets set file_size_limit = 100 where id = 'purchase-orders'`;
  let first;
  try {
    first = await invoke(t.db, FN, po(t, supplier), key);
  } finally {
    await sql`update storage.buckets set file_size_limit = 10485760 where id = 'purchase-orders'`;
  }
  assert.equal(first.status, 502, JSON.stringify(first.body));
  assert.equal(first.body.error.code, "PDF_PENDING");
  assert.equal(first.body.error.details.cause, "FILE_TOO_LARGE");
  const [draft] =
    await sql`select status, pdf_attached_at from public.purchase_orders
    where id = ${first.body.error.details.po_id}`;
  assert.deepEqual(draft, { status: "draft", pdf_attached_at: null });
  const [none] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id}`;
  assert.equal(none.n, 0, "no email links to a PDF that does not exist");

  const retry = await invoke(t.db, FN, po(t, supplier), key);
  assert.equal(retry.status, 201, JSON.stringify(retry.body));
  assert.equal(retry.body.po_id, first.body.error.details.po_id);
  assert.equal(retry.body.po_number, first.body.error.details.po_number);
  await Deno.remove(await download(retry.body.pdf_url, "application/pdf"));
  assert.equal(await posOf(t.id), 1);
  const [outbox] =
    await sql`select count(*)::int as n from public.notification_outbox
    where tenant_id = ${t.id} and template = 'purchase_order'`;
  assert.equal(outbox.n, 1);
});
