// Scheduled reports end to end: a schedule written with supabase-js, the
// minute dispatcher's pg_cron job (pg_net → gateway → send-scheduled-report),
// the file in Storage, the emails through the outbox to the Resend sandbox
// with the file attached, and one send per slot however many dispatchers race.
import assert from "node:assert/strict";
import {
  assertBoundary,
  clientFor,
  env,
  invoke,
  makeTenant,
  order,
  run,
  sent,
  sql,
  type Tenant,
  until,
} from "./_stack.ts";

const service = clientFor(env.SUPABASE_SERVICE_ROLE_KEY);

async function withOrders(t: Tenant, quantities: number[]) {
  for (const quantity of quantities) {
    const r = await invoke(
      t.db,
      "create-wholesale-order",
      order(t, {
        items: [{ product_id: t.products[0], quantity, unit_price: 10 }],
      }),
    );
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
}

/** A saved report, a schedule of it and `recipients` recipients, written as the tenant's user. */
async function scheduleFor(
  t: Tenant,
  config: Record<string, unknown>,
  recipients: number,
): Promise<{ id: string; emails: string[] }> {
  const saved = await invoke(t.db, "generate-report", {
    metrics: ["revenue", "units_sold"],
    group_by: ["product"],
    save: `Sales by product ${crypto.randomUUID().slice(0, 8)}`,
  });
  assert.equal(saved.status, 200, JSON.stringify(saved.body));
  const { data, error } = await t.db.from("scheduled_reports").insert({
    tenant_id: t.id,
    report_id: saved.body.report_id,
    schedule_type: "daily",
    schedule_config: { time: "08:00", time_zone: "Europe/Paris", ...config },
  }).select().single();
  assert.equal(error, null, JSON.stringify(error));
  assert.equal(data.next_run_at, null, "computed by the function, not the app");
  const emails = Array.from(
    { length: recipients },
    (_, i) => `r${i}-${crypto.randomUUID().slice(0, 8)}@example.com`,
  );
  if (recipients > 0) {
    const r = await t.db.from("report_recipients").insert(
      emails.map((email) => ({
        tenant_id: t.id,
        scheduled_report_id: data.id,
        email,
      })),
    );
    assert.equal(r.error, null, JSON.stringify(r.error));
  }
  return { id: data.id, emails };
}

async function send(id: string) {
  return await invoke(service, "send-scheduled-report", {
    scheduled_report_id: id,
  });
}

/** The next 08:00 in Paris after `after`, as the database computes it. */
async function next0800Paris(after: string): Promise<string> {
  const [r] = await sql`select to_json(x)#>>'{}' as at from (
      select (d::date + time '08:00') at time zone 'Europe/Paris' as x
      from generate_series((${after}::timestamptz at time zone 'Europe/Paris')::date,
                           (${after}::timestamptz at time zone 'Europe/Paris')::date + 2, '1 day') d
      where (d + time '08:00') at time zone 'Europe/Paris' > ${after}::timestamptz
      order by 1 limit 1) y`;
  return new Date(r.at).toISOString();
}

const iso = (s: string) => new Date(s).toISOString();

Deno.test("a schedule fires: 3 recipients get the PDF attached, next_run_at moves, the slot is not sent again", async () => {
  const t = await makeTenant({ stock: 1000 });
  await withOrders(t, [2, 3]);
  const { id, emails } = await scheduleFor(t, { format: "pdf" }, 3);

  // The first call computes the first slot (croner, in Paris time).
  const first = await send(id);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.action, "scheduled");
  const [row] =
    await sql`select schedule_changed_at::text as changed from public.scheduled_reports where id = ${id}`;
  assert.equal(iso(first.body.next_run_at), await next0800Paris(row.changed));

  // The slot comes due.
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  const [{ slot }] =
    await sql`select next_run_at as slot from public.scheduled_reports where id = ${id}`;
  const fired = await send(id);
  assert.equal(fired.status, 200, JSON.stringify(fired.body));
  assert.equal(fired.body.action, "sent");
  assert.equal(fired.body.delivered_count, 3);
  assert.equal(
    iso(fired.body.next_run_at),
    await next0800Paris(new Date().toISOString()),
  );
  const [stored] =
    await sql`select next_run_at, last_run_at from public.scheduled_reports where id = ${id}`;
  assert.equal(stored.next_run_at.toISOString(), iso(fired.body.next_run_at));
  assert.equal(stored.last_run_at.toISOString(), slot.toISOString());

  const [runRow] =
    await sql`select status, file_path, row_count, delivered_count
    from public.report_runs where scheduled_report_id = ${id}`;
  assert.equal(runRow.status, "sent");
  assert.ok(runRow.file_path.startsWith(`${t.id}/scheduled/${id}/`));
  assert.equal(runRow.row_count, 1);

  // Each recipient: one email, with the PDF attached by URL, logged as sent.
  const mails = await until("three emails", 20, async () => {
    const all = (await sent("resend")).filter((m) =>
      emails.includes(m.body.to[0])
    );
    return all.length === 3 ? all : undefined;
  });
  for (const m of mails) {
    assert.match(m.body.subject, /^Sales by product/);
    assert.equal(m.body.attachments.length, 1);
    const a = m.body.attachments[0];
    assert.equal(a.content_type, "application/pdf");
    assert.match(
      a.filename,
      /^Sales-by-product-[0-9a-f]{8}-\d{4}-\d{2}-\d{2}\.pdf$/,
    );
    const file = await fetch(a.path);
    assert.equal(file.status, 200);
    const bytes = new Uint8Array(await file.arrayBuffer());
    assert.equal(new TextDecoder().decode(bytes.slice(0, 5)), "%PDF-");
    assert.ok(m.idempotency_key, "sent with the outbox row's idempotency key");
  }
  const pdf = await Deno.makeTempFile({ suffix: ".pdf" });
  await Deno.writeFile(
    pdf,
    new Uint8Array(
      await (await fetch(mails[0].body.attachments[0].path)).arrayBuffer(),
    ),
  );
  const text = await run("pdftotext", ["-layout", pdf, "-"]);
  assert.ok(text.includes("50.00"), text); // 5 units at 10.00
  await until("three deliveries sent", 20, async () => {
    const rows = await sql`select d.status, d.mode, r.last_sent_at
      from public.report_deliveries d join public.report_recipients r on r.id = d.recipient_id
      where d.scheduled_report_id = ${id}`;
    return rows.length === 3 &&
        rows.every((r) =>
          r.status === "sent" && r.mode === "attachment" && r.last_sent_at
        )
      ? rows
      : undefined;
  });

  // Called again, the slot is not due: nothing more is sent.
  const again = await send(id);
  assert.equal(again.body.action, "not_due");
  assert.equal(again.body.delivered_count, 0);
  const [{ n }] =
    await sql`select count(*)::int as n from public.notification_outbox
    where template = 'scheduled_report' and tenant_id = ${t.id}`;
  assert.equal(n, 3);
});

Deno.test("the pg_cron dispatcher, run by two sessions at once and then by eight workers, sends a slot once", async () => {
  const t = await makeTenant({ stock: 1000 });
  await withOrders(t, [1]);
  const { id } = await scheduleFor(t, { format: "excel" }, 3);
  assert.equal((await send(id)).body.action, "scheduled");
  await sql`update public.scheduled_reports set next_run_at = now() - interval '3 days' where id = ${id}`;

  // The job's own command, from cron.job, in two sessions at once.
  const [job] =
    await sql`select command from cron.job where jobname = 'dispatch-scheduled-reports'`;
  await Promise.all([sql.unsafe(job.command), sql.unsafe(job.command)]);
  // …and eight more workers told to run the same schedule.
  const racers = await Promise.all(Array.from({ length: 8 }, () => send(id)));
  for (const r of racers) {
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(
      ["sent", "busy", "not_due"].includes(r.body.action),
      r.body.action,
    );
  }
  const runs = await until("the slot's run", 30, async () => {
    const rows =
      await sql`select status, delivered_count from public.report_runs where scheduled_report_id = ${id}`;
    return rows.length === 1 && rows[0].status === "sent" ? rows : undefined;
  });
  assert.equal(runs.length, 1, "three missed days are one run");
  assert.equal(runs[0].delivered_count, 3);
  const deliveries =
    await sql`select count(*)::int as n from public.report_deliveries where scheduled_report_id = ${id}`;
  assert.equal(deliveries[0].n, 3);
  const [next] =
    await sql`select next_run_at > now() as future from public.scheduled_reports where id = ${id}`;
  assert.equal(next.future, true);
});

Deno.test("a worker that died mid-run: its slot is taken over after the lease and sent once", async () => {
  const t = await makeTenant({ stock: 1000 });
  await withOrders(t, [1]);
  const { id } = await scheduleFor(t, {}, 2);
  assert.equal((await send(id)).body.action, "scheduled");
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  // A run claimed by a worker that never finished, its lease still live…
  await sql`insert into public.report_runs (scheduled_report_id, slot, tenant_id, lease_until)
    select id, next_run_at, tenant_id, now() + interval '1 minute' from public.scheduled_reports where id = ${id}`;
  assert.equal((await send(id)).body.action, "busy");
  // …then run out.
  await sql`update public.report_runs set lease_until = now() - interval '1 second' where scheduled_report_id = ${id}`;
  const r = await send(id);
  assert.equal(r.body.action, "sent", JSON.stringify(r.body));
  assert.equal(r.body.delivered_count, 2);
  const [runRow] =
    await sql`select attempts, status from public.report_runs where scheduled_report_id = ${id}`;
  assert.deepEqual({ ...runRow }, { attempts: 2, status: "sent" });
});

Deno.test("skip_if_empty: an empty report sends nothing and the schedule moves on", async () => {
  const t = await makeTenant();
  const { id } = await scheduleFor(t, { skip_if_empty: true }, 2);
  assert.equal((await send(id)).body.action, "scheduled");
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  const r = await send(id);
  assert.equal(r.body.action, "skipped", JSON.stringify(r.body));
  assert.equal(r.body.delivered_count, 0);
  assert.ok(new Date(r.body.next_run_at) > new Date());
  const [{ n }] =
    await sql`select count(*)::int as n from public.report_deliveries where scheduled_report_id = ${id}`;
  assert.equal(n, 0);
});

Deno.test("a scheduled run reads only its own tenant's rows; schedules are the tenant's alone", async () => {
  const a = await makeTenant({ stock: 1000 });
  const b = await makeTenant({ stock: 1000 });
  await withOrders(a, [1]);
  await withOrders(b, [7]);
  const bProduct = `B only ${crypto.randomUUID().slice(0, 8)}`;
  await sql`update public.products set name = ${bProduct} where id = ${
    b.products[0]
  }`;
  const [{ name: aProduct }] =
    await sql`select name from public.products where id = ${a.products[0]}`;
  const { id } = await scheduleFor(a, {}, 1);
  await send(id);
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  const r = await send(id);
  assert.equal(r.body.action, "sent", JSON.stringify(r.body));
  const [runRow] =
    await sql`select file_path from public.report_runs where scheduled_report_id = ${id}`;
  const signed = await service.storage.from("reports").createSignedUrl(
    runRow.file_path,
    60,
  );
  const pdf = await Deno.makeTempFile({ suffix: ".pdf" });
  await Deno.writeFile(
    pdf,
    new Uint8Array(await (await fetch(signed.data!.signedUrl)).arrayBuffer()),
  );
  const text = await run("pdftotext", ["-layout", pdf, "-"]);
  assert.ok(text.includes(aProduct) && text.includes("10.00"), text);
  assert.ok(!text.includes(bProduct), "no row of the other tenant");
  assert.ok(!text.includes("70.00"), "nor its revenue");

  // The other tenant sees no schedule, cannot point one at this report, and
  // an unknown schedule is 404.
  const seen = await b.db.from("scheduled_reports").select("id").eq("id", id);
  assert.deepEqual(seen.data, []);
  const [{ report_id }] =
    await sql`select report_id from public.scheduled_reports where id = ${id}`;
  const foreign = await b.db.from("scheduled_reports").insert({
    tenant_id: b.id,
    report_id,
    schedule_type: "daily",
    schedule_config: { time: "08:00" },
  });
  assert.equal(foreign.error?.code, "CEV01", JSON.stringify(foreign));
  assert.match(foreign.error!.details!, /report_id/);
  const missing = await send(crypto.randomUUID());
  assert.equal(missing.status, 404, JSON.stringify(missing.body));
  // Only the service role may run a schedule.
  const asUser = await invoke(a.db, "send-scheduled-report", {
    scheduled_report_id: id,
  });
  assert.equal(asUser.status, 401, JSON.stringify(asUser.body));
});

Deno.test("a bad schedule is a 400 naming the field; a cron croner refuses turns the schedule off", async () => {
  const t = await makeTenant();
  const saved = await invoke(t.db, "generate-report", {
    metrics: ["revenue"],
    save: "R",
  });
  const bad = await t.db.from("scheduled_reports").insert({
    tenant_id: t.id,
    report_id: saved.body.report_id,
    schedule_type: "weekly",
    schedule_config: {
      time: "25:00",
      weekdays: ["someday"],
      time_zone: "Mars/Olympus",
      format: "csv",
      x: 1,
    },
  });
  assert.equal(bad.error?.code, "CEV01");
  const details = JSON.parse(bad.error!.details!);
  for (
    const k of [
      "schedule_config.time",
      "schedule_config.weekdays",
      "schedule_config.time_zone",
      "schedule_config.format",
      "schedule_config.x",
    ]
  ) assert.ok(k in details, `${k} in ${bad.error!.details}`);
  // 5 fields, but minute 61: the database lets the shape through, croner does not.
  const { data } = await t.db.from("scheduled_reports").insert({
    tenant_id: t.id,
    report_id: saved.body.report_id,
    schedule_type: "cron",
    schedule_config: { cron: "61 8 * * *" },
  }).select().single();
  const r = await send(data.id);
  assert.equal(r.body.action, "disabled", JSON.stringify(r.body));
  const [row] =
    await sql`select enabled, last_error from public.scheduled_reports where id = ${data.id}`;
  assert.equal(row.enabled, false);
  assert.match(row.last_error, /schedule_config\.cron/);
});

Deno.test("a saved report that no longer runs fails its slot once, says why, and the schedule moves on", async () => {
  const t = await makeTenant();
  const { id } = await scheduleFor(t, {}, 1);
  assert.equal((await send(id)).body.action, "scheduled");
  await sql`update public.custom_reports set metrics = '["profit"]'
    where id = (select report_id from public.scheduled_reports where id = ${id})`;
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  const r = await send(id);
  assert.equal(r.status, 400, JSON.stringify(r.body));
  assert.ok("metrics[0]" in r.body.error.details, JSON.stringify(r.body));
  const [row] =
    await sql`select s.next_run_at > now() as moved, s.last_error, r.status
    from public.scheduled_reports s join public.report_runs r on r.scheduled_report_id = s.id where s.id = ${id}`;
  assert.equal(row.status, "failed");
  assert.equal(row.moved, true);
  assert.match(row.last_error, /does not run/);
  assert.equal(
    (await send(id)).body.action,
    "not_due",
    "not retried each minute",
  );
});

Deno.test("send-scheduled-report: bad JSON, a huge body, a bad Idempotency-Key, GET, CORS and every non-service token are refused, and no slot runs", async () => {
  const t = await makeTenant({ stock: 100 });
  const { id } = await scheduleFor(t, {}, 1);
  assert.equal((await send(id)).body.action, "scheduled");
  // Due: any request that got through would send it.
  await sql`update public.scheduled_reports set next_run_at = now() - interval '1 minute' where id = ${id}`;
  const runs = async () =>
    (await sql`select count(*)::int as n from public.report_runs where scheduled_report_id = ${id}`)[
      0
    ].n;
  await assertBoundary(
    { ...t, token: env.SUPABASE_SERVICE_ROLE_KEY },
    "send-scheduled-report",
    { scheduled_report_id: id },
    async () => (await runs()) !== 0,
  );
  assert.equal(await runs(), 0);
  assert.equal(
    (await send(id)).body.action,
    "sent",
    "the slot is still there to send",
  );
});
