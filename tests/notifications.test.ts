// Outbox delivery end to end: orders lead to real provider requests (in the
// sandbox), failures are retried or dead-lettered, nothing is lost and nothing
// is sent twice, even with two dispatchers and one that is killed mid-batch.
import assert from "node:assert/strict";
import {
  env,
  faults,
  invoke,
  makeTenant,
  order,
  resetSandbox,
  sent,
  sql,
  until,
  url,
} from "./_stack.ts";

const sandbox = env.SANDBOX_URL;
const DISPATCH = `${url}/functions/v1/dispatch-notifications`;

async function dispatch(
  body: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) {
  const res = await fetch(DISPATCH, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET, ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}
/** Outbox rows for a tenant, by status. */
async function statuses(tenantId: string): Promise<Record<string, number>> {
  const rows =
    await sql`select status, count(*)::int as n from public.notification_outbox
    where tenant_id = ${tenantId} group by status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

/** `count` order confirmations queued directly in the outbox, half email, half SMS. */
async function queue(
  tenantId: string,
  count: number,
  phone = (i: number) => `+1555${String(i).padStart(7, "0")}`,
) {
  const tag = crypto.randomUUID().slice(0, 6);
  await sql`insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
    select ${tenantId}, case when i % 2 = 0 then 'email' else 'sms' end, 'order_confirmation',
           case when i % 2 = 0 then 'c' || i || '@client.test' else ${
    phone(0).slice(0, 5)
  } || lpad(i::text, 7, '0') end,
           jsonb_build_object('order_id', gen_random_uuid(), 'order_number', ${tag} || '-' || i,
             'business_name', 'Fault Co', 'client_name', 'C' || i, 'total_amount', 10.5,
             'payment_terms', 'prepaid', 'delivery_method', 'pickup',
             'items', jsonb_build_array(jsonb_build_object('name', 'Thing', 'sku', 'T-1',
               'quantity', 1, 'unit_price', 10.5, 'total_price', 10.5)))
    from generate_series(1, ${count}) i`;
  return tag;
}

Deno.test("an order's confirmation arrives by email and SMS with the right content", async () => {
  await resetSandbox();
  const t = await makeTenant();
  const res = await invoke(
    t.db,
    "create-wholesale-order",
    order(t, {
      items: [{ product_id: t.products[0], quantity: 3, unit_price: 12.5 }],
      payment_terms: "net_30",
    }),
  );
  assert.equal(res.status, 201);
  const number = res.body.order_number;
  const [client] =
    await sql`select email, phone from public.wholesale_clients where id = ${t.clientId}`;
  const [tenant] =
    await sql`select business_name from public.tenants where id = ${t.id}`;

  // Delivered right after the order, without waiting for the schedule.
  const email = await until(
    "the email",
    15,
    async () =>
      (await sent("resend")).find((s) =>
        s.body.to[0] === client.email && s.body.subject.includes(number)
      ),
  );
  assert.equal(
    email.body.subject,
    `Order ${number} confirmed - ${tenant.business_name}`,
  );
  assert.equal(
    email.body.from,
    `"${tenant.business_name}" <orders@commerce-edge.test>`,
  );
  assert.match(
    email.body.text,
    /3 x Product 1 \[SKU-[^\]]+\] @ 12\.50 = 37\.50/,
  );
  assert.match(email.body.text, /Total: 37\.50/);
  assert.match(email.body.html, new RegExp(`<strong>${number}</strong>`));
  const sms = await until(
    "the SMS",
    15,
    async () =>
      (await sent("twilio")).find((s) =>
        s.body.to === client.phone && s.body.body.includes(number)
      ),
  );
  assert.equal(
    sms.body.body,
    `Order ${number} confirmed, total 37.50. Thank you! - ${tenant.business_name}`,
  );
  assert.equal(sms.body.num_segments, "1");

  const rows =
    await sql`select channel, status, provider_message_id from public.notification_outbox
    where tenant_id = ${t.id} and payload->>'order_number' = ${number} order by channel`;
  assert.deepEqual(rows.map((r) => [r.channel, r.status]), [["email", "sent"], [
    "sms",
    "sent",
  ]]);
  assert.equal(rows[0].provider_message_id, email.id);
  assert.equal(rows[1].provider_message_id, sms.id);
  // The provider idempotency key is the outbox row id.
  const [emailRow] = await sql`select id::text from public.notification_outbox
    where tenant_id = ${t.id} and payload->>'order_number' = ${number} and channel = 'email'`;
  assert.equal(email.idempotency_key, emailRow.id);
});

Deno.test("the dispatcher answers only the service role or the dispatch secret", async () => {
  const t = await makeTenant();
  const refused: Record<string, string>[] = [
    { "x-dispatch-secret": "guess" },
    { authorization: `Bearer ${t.token}` },
    { authorization: `Bearer ${env.SUPABASE_ANON_KEY}` },
  ];
  for (const headers of refused) {
    const res = await fetch(DISPATCH, { method: "POST", headers, body: "{}" });
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, "UNAUTHORIZED");
  }
  const svc = await fetch(DISPATCH, {
    method: "POST",
    headers: { authorization: `Bearer ${env.SUPABASE_SERVICE_ROLE_KEY}` },
  });
  assert.equal(svc.status, 200);
  await svc.body?.cancel();
  const bad = await dispatch({ batch_size: 0 });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error.details.batch_size, "must be at least 1");
});

Deno.test("500 notifications with 30% provider failures and two dispatchers: each sent exactly once or dead-lettered", async () => {
  await resetSandbox();
  const t = await makeTenant();
  const tag = await queue(t.id, 490);
  // Ten that can never be sent: an invalid phone number is permanent.
  await sql`insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
    select ${t.id}, 'sms', 'order_confirmation', 'not-a-phone', jsonb_build_object('order_number', ${tag} || '-bad-' || i,
      'business_name', 'Fault Co', 'total_amount', 1, 'items', '[]'::jsonb) from generate_series(1, 10) i`;
  await faults({
    probability: 0.3,
    seed: 7,
    modes: ["500", "429", "hang", "reset"],
    retry_after: 1,
  });

  const deadline = Date.now() + 150_000;
  let rounds = 0;
  while (Date.now() < deadline) {
    const s = await statuses(t.id);
    if (!s.pending && !s.sending) break;
    rounds++;
    const [a, b] = await Promise.all([
      dispatch({ batch_size: 40 }),
      dispatch({ batch_size: 40 }),
    ]);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal(b.status, 200, JSON.stringify(b.body));
    await new Promise((r) => setTimeout(r, 250));
  }
  await faults({});
  const s = await statuses(t.id);
  assert.equal((s.sent ?? 0) + (s.dead ?? 0), 500, JSON.stringify(s));
  assert.equal(s.dead, 10, JSON.stringify(s));

  const stats = await (await fetch(`${sandbox}/_sandbox/stats`)).json();
  const injected = Object.entries(stats).filter(([k]) => k.includes(":fault:"))
    .reduce((n, [, v]) => n + (v as number), 0);
  assert.ok(injected > 100, `faults were injected: ${JSON.stringify(stats)}`);

  // Exactly once at the provider: every sent row has one accepted request, dead ones none.
  const emails = (await sent("resend")).filter((e) =>
    e.body.subject.includes(tag)
  );
  const texts = (await sent("twilio")).filter((m) => m.body.body.includes(tag));
  const rows =
    await sql`select id::text, channel, status, recipient, payload->>'order_number' as number,
    provider_message_id from public.notification_outbox where tenant_id = ${t.id}`;
  for (const row of rows) {
    const matches = row.channel === "email"
      ? emails.filter((e) => e.idempotency_key === row.id)
      : texts.filter((m) =>
        m.body.to === row.recipient && m.body.body.includes(`${row.number} `)
      );
    if (row.status === "sent") {
      assert.equal(
        matches.length,
        1,
        `${row.channel} ${row.number} accepted ${matches.length} times`,
      );
      assert.equal(matches[0].id, row.provider_message_id);
    } else {
      assert.equal(matches.length, 0, `dead ${row.number} was still sent`);
    }
  }
  assert.equal(emails.length + texts.length, s.sent);
  console.log(`  ${rounds} dispatch rounds; sandbox: ${JSON.stringify(stats)}`);
});

Deno.test("Twilio accepting a message whose reply is lost does not send it twice", async () => {
  await resetSandbox();
  const t = await makeTenant();
  const tag = await queue(t.id, 6);
  await faults({ provider: "twilio", mode: "hang_after_accept", count: 3 });
  for (let i = 0; i < 20; i++) {
    const s = await statuses(t.id);
    if (!s.pending && !s.sending) break;
    await dispatch({ batch_size: 10 });
  }
  const texts = (await sent("twilio")).filter((m) => m.body.body.includes(tag));
  assert.equal(texts.length, 3, "three SMS, each accepted once");
  assert.equal(new Set(texts.map((m) => m.body.to)).size, 3);
  assert.deepEqual(await statuses(t.id), { sent: 6 });
});

Deno.test("a dispatcher killed mid-batch: its rows are delivered once its lease expires", async () => {
  await resetSandbox();
  const t = await makeTenant();
  const tag = await queue(t.id, 4);
  // Every send hangs, so the dispatcher is mid-send when it is killed.
  await faults({ mode: "hang", count: 1000 });
  const port = 25398;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      new URL("../scripts/serve_one.ts", import.meta.url).pathname,
      "dispatch-notifications",
      String(port),
    ],
    env: {
      ...env,
      POSTGREST_URL: `http://127.0.0.1:${Deno.env.get("REST_PORT") ?? "25330"}`,
    },
    stdout: "null",
    stderr: "null",
  }).spawn();
  await until("the doomed dispatcher", 30, async () => {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: "OPTIONS" });
      await r.body?.cancel();
      return true;
    } catch {
      return undefined;
    }
  });
  const doomed = fetch(`http://127.0.0.1:${port}/`, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
    body: JSON.stringify({ batch_size: 10, lease_seconds: 3 }),
  }).catch(() => undefined);
  await until("rows claimed by the doomed dispatcher", 15, async () => {
    const s = await statuses(t.id);
    return s.sending === 4 ? true : undefined;
  });
  child.kill("SIGKILL");
  await child.status;
  await doomed;
  await faults({});
  assert.deepEqual(
    await statuses(t.id),
    { sending: 4 },
    "the dead dispatcher's rows stay claimed until the lease ends",
  );
  // A dispatcher right now finds nothing due; after the lease it delivers everything.
  await until("delivery after the lease", 30, async () => {
    await dispatch({ batch_size: 10 });
    const s = await statuses(t.id);
    return s.sent === 4 ? true : undefined;
  });
  const all = [
    ...(await sent("resend")).filter((e) => e.body.subject.includes(tag)),
    ...(await sent("twilio")).filter((m) => m.body.body.includes(tag)),
  ];
  assert.equal(all.length, 4, "each delivered once");
  const [{ attempts }] =
    await sql`select max(attempts)::int as attempts from public.notification_outbox where tenant_id = ${t.id}`;
  assert.ok(attempts >= 2, "the killed attempt counted");
});
