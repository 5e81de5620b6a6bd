// send-campaign end to end: supabase-js → gateway → function → Postgres →
// dispatcher → the provider sandbox → signed webhooks back.
import assert from "node:assert/strict";
import {
  assertBoundary,
  env,
  faults,
  invoke,
  makeTenant,
  order,
  resetSandbox,
  sent,
  sql,
  type Tenant,
  until,
  url,
} from "./_stack.ts";

const DISPATCH = `${url}/functions/v1/dispatch-notifications`;

async function sandbox(path: string, body: unknown) {
  const r = await fetch(`${env.SANDBOX_URL}/_sandbox/${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, text };
}

/** Runs the dispatcher as pg_cron does. */
async function dispatch() {
  const r = await fetch(DISPATCH, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
    body: "{}",
  });
  return await r.json();
}

/** A block of 100,000 phone numbers unlikely to be another test's. */
const phoneBlock = () => Math.floor(Math.random() * 9000);

/** `n` more clients for the tenant, with email and phone; returns their emails. */
async function addClients(
  t: Tenant,
  n: number,
  tag = crypto.randomUUID().slice(0, 6),
) {
  const rows =
    await sql`insert into public.wholesale_clients (tenant_id, name, email, phone, city)
    select ${t.id}, 'Client ' || g, 'k' || g || '-' || ${tag} || '@camp.test',
           '+1' || (2000000000::bigint + ${phoneBlock()}::bigint * 100000 + g)::text, 'Lyon'
    from generate_series(1, ${n}) g returning id::text, email, phone`;
  return [...rows] as unknown as { id: string; email: string; phone: string }[];
}

function campaign(overrides: Record<string, unknown> = {}) {
  return {
    campaign_id: crypto.randomUUID(),
    type: "email",
    audience: { type: "all" },
    content: {
      subject: "Spring lines for {{client.name}}",
      body: "Hello **{{client.name}}**,\n\nNew stock is in.",
    },
    ...overrides,
  };
}

async function campaignRow(id: string) {
  const [c] =
    await sql`select * from public.marketing_campaigns where id = ${id}`;
  return c;
}

const finished = (id: string, seconds = 60) =>
  until(`campaign ${id} sent`, seconds, async () => {
    const c = await campaignRow(id);
    return c?.status === "sent" ? c : undefined;
  });

/** The sandbox's accepted emails to addresses ending in `suffix`. */
async function emailsTo(suffix: string) {
  return (await sent("resend")).filter((s) =>
    String(s.body.to?.[0] ?? s.body.to).endsWith(suffix)
  );
}

/** The sandbox's accepted emails to a campaign's recipients. */
async function emailsOf(campaignId: string) {
  const to = new Set(
    (await sql`select address from public.campaign_recipients
      where campaign_id = ${campaignId} and status <> 'suppressed'`).map((r) =>
      r.address
    ),
  );
  return (await sent("resend")).filter((s) => to.has(s.body.to?.[0]));
}

Deno.test("2,000 recipients: each gets one email, the unsubscribed none; a repeat and a foreign id send nothing", async () => {
  await resetSandbox();
  await sandbox("webhooks", { enabled: false });
  const t = await makeTenant();
  const tag = crypto.randomUUID().slice(0, 6);
  const clients = await addClients(t, 1999, tag);
  const out = clients.slice(0, 20);
  for (const c of out) {
    await sql`insert into public.contact_consent (tenant_id, client_id, channel, status, source)
      values (${t.id}, ${c.id}, 'email', 'unsubscribed', 'admin')`;
  }
  const body = campaign();
  const r = await invoke(t.db, "send-campaign", body);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.success, true);
  assert.equal(
    r.body.status,
    "sending",
    "a large audience is answered once queued",
  );
  assert.equal(r.body.recipient_count, 1980);
  assert.equal(r.body.suppressed, 20);
  const done = await finished(body.campaign_id);
  assert.equal(done.sent_count, 1980);
  assert.equal(done.failed_count, 0);

  const mine = await emailsOf(body.campaign_id);
  const per = new Map<string, number>();
  for (const m of mine) per.set(m.body.to[0], (per.get(m.body.to[0]) ?? 0) + 1);
  assert.equal(mine.length, 1980, "one email per recipient, no more");
  assert.ok([...per.values()].every((n) => n === 1), "nobody got two");
  for (const c of out) assert.ok(!per.has(c.email), `${c.email} unsubscribed`);
  const one = mine[0].body;
  assert.match(one.from, /^"Tenant [0-9a-f]{8}" <orders@commerce-edge\.test>$/);
  assert.match(
    one.headers["List-Unsubscribe"],
    /^<http.*\/functions\/v1\/unsubscribe\?token=.+>$/,
  );
  assert.equal(
    one.headers["List-Unsubscribe-Post"],
    "List-Unsubscribe=One-Click",
  );
  assert.match(one.html, /<strong>Client \w+<\/strong>/);
  assert.match(one.text, /Unsubscribe: http/);
  assert.match(one.subject, /^Spring lines for Client \w+$/);

  // The same campaign_id again: its state, nothing more.
  const again = await invoke(t.db, "send-campaign", body);
  assert.equal(again.status, 200);
  assert.equal(again.body.replayed, true);
  assert.equal(again.body.status, "sent");
  await dispatch();
  assert.equal((await emailsOf(body.campaign_id)).length, 1980);

  // Another tenant: the id and a segment of this tenant are not found.
  const other = await makeTenant();
  const foreign = await invoke(other.db, "send-campaign", body);
  assert.equal(foreign.status, 404, JSON.stringify(foreign.body));
  assert.equal(foreign.body.error.code, "NOT_FOUND");
  const [seg] =
    await sql`insert into public.customer_segments (tenant_id, name, filter)
    values (${t.id}, 'Lyon', '{"all": [{"field": "city", "op": "eq", "value": "Lyon"}]}') returning id::text`;
  const bySegment = await invoke(
    other.db,
    "send-campaign",
    campaign({ audience: { type: "segment", segment_id: seg.id } }),
  );
  assert.equal(bySegment.status, 404, JSON.stringify(bySegment.body));
  // A tenant the user is not in.
  const notMine = await invoke(
    other.db,
    "send-campaign",
    campaign({ tenant_id: t.id }),
  );
  assert.equal(notMine.status, 404, JSON.stringify(notMine.body));
  // Bad filters and merge fields are 400s naming them, and change nothing.
  const bad = await invoke(
    t.db,
    "send-campaign",
    campaign({
      audience: {
        type: "custom",
        filters: { all: [{ field: "password", op: "eq", value: "x" }] },
      },
      content: { subject: "s", body: "Hi {{client.nickname}}" },
    }),
  );
  assert.equal(bad.status, 400);
  assert.match(
    bad.body.error.details["audience.filters.all[0]"],
    /^unknown field/,
  );
  const badMerge = await invoke(
    t.db,
    "send-campaign",
    campaign({ content: { subject: "s", body: "Hi {{client.nickname}}" } }),
  );
  assert.equal(badMerge.status, 400);
  assert.match(badMerge.body.error.details["content.body"], /client\.nickname/);
});

Deno.test("bad requests to send-campaign are clean 4xx and create nothing", async () => {
  const t = await makeTenant();
  const count = async () =>
    (await sql`select count(*)::int as n from public.marketing_campaigns where tenant_id = ${t.id}`)[
      0
    ].n;
  const before = await count();
  await assertBoundary(
    t,
    "send-campaign",
    campaign(),
    async () => (await count()) !== before,
    "content.body",
  );
  // A viewer may read campaigns but not send one.
  await sql`update public.tenant_users set role = 'viewer' where tenant_id = ${t.id}`;
  const viewer = await invoke(t.db, "send-campaign", campaign());
  assert.equal(viewer.status, 403, JSON.stringify(viewer.body));
  assert.equal(await count(), before);
});

Deno.test("30 % faults and a dispatcher that died after claiming: nothing lost, nothing twice", async () => {
  await resetSandbox();
  await sandbox("webhooks", { enabled: false });
  const t = await makeTenant();
  const tag = crypto.randomUUID().slice(0, 6);
  await addClients(t, 1999, tag);
  // Scheduled first, so that no dispatcher starts before the dead one.
  const body = campaign({
    schedule: new Date(Date.now() + 3_600_000).toISOString(),
  });
  const r = await invoke(t.db, "send-campaign", body);
  assert.equal(r.status, 200);
  // The provider misbehaves 30 % of the time: 500s, 429s, and batches
  // accepted whose answer never comes back (the sender times out).
  await faults({
    provider: "resend",
    probability: 0.3,
    seed: 11,
    modes: ["500", "429", "hang_after_accept"],
    retry_after: 1,
  });
  await sql`update public.marketing_campaigns set scheduled_at = now() where id = ${body.campaign_id}`;
  await sql`select public.start_due_campaigns()`;
  // A dispatcher claims a batch (a one-second claim) and dies.
  const [dead] =
    await sql`select public.claim_campaign_batches('email', 1000, 1, 100, 1, ${body.campaign_id}::uuid) as c`;
  assert.equal(dead.c.batches.length, 1, "the dead dispatcher's batch");
  let done;
  try {
    done = await until("the campaign sent", 180, async () => {
      await dispatch();
      const c = await campaignRow(body.campaign_id);
      return c.status === "sent" ? c : undefined;
    });
  } finally {
    await faults({});
  }
  assert.equal(done.sent_count, 2000);
  assert.equal(done.failed_count, 0);
  const addresses = new Set(
    (await sql`select address from public.campaign_recipients where campaign_id = ${body.campaign_id}`)
      .map((x) => x.address),
  );
  const per = new Map<string, number>();
  for (const m of await sent("resend")) {
    if (addresses.has(m.body.to[0])) {
      per.set(m.body.to[0], (per.get(m.body.to[0]) ?? 0) + 1);
    }
  }
  assert.equal(per.size, 2000, "every recipient got the email");
  assert.ok([...per.values()].every((n) => n === 1), "nobody got it twice");
  const stats = await (await fetch(`${env.SANDBOX_URL}/_sandbox/stats`)).json();
  const injected = Object.entries(stats).filter(([k]) =>
    k.startsWith("resend:fault:")
  )
    .reduce((n, [, v]) => n + Number(v), 0);
  assert.ok(injected > 0, JSON.stringify(stats));
  const [rows] =
    await sql`select count(*) filter (where status = 'sent')::int as sent,
      count(distinct provider_message_id)::int as ids, max(attempt)::int as attempts
    from public.campaign_recipients where campaign_id = ${body.campaign_id}`;
  assert.equal(rows.sent, 2000);
  assert.equal(rows.ids, 2000, "one message id per recipient");
  assert.ok(rows.attempts > 1, "some batches were retried");
});

Deno.test("webhooks move the counters and consent; a one-click unsubscribe stops the next campaign", async () => {
  await resetSandbox();
  await sandbox("webhooks", {
    enabled: true,
    delay_ms: 0,
    seed: 5,
    resend: { delivered: 0.8, bounced: 0.1, complained: 0.1 },
  });
  const t = await makeTenant();
  const tag = crypto.randomUUID().slice(0, 6);
  await addClients(t, 49, tag);
  const body = campaign();
  const r = await invoke(t.db, "send-campaign", body);
  assert.equal(r.status, 200);
  assert.equal(
    r.body.status,
    "sent",
    "a small campaign is sent within the request",
  );
  assert.equal(r.body.sent_count, 50);
  const c = await until("every outcome reported", 60, async () => {
    const [n] =
      await sql`select count(*)::int as n from public.campaign_recipients
      where campaign_id = ${body.campaign_id} and status in ('delivered', 'bounced', 'complained')`;
    return n.n === 50 ? await campaignRow(body.campaign_id) : undefined;
  });
  const [by] =
    await sql`select count(*) filter (where status = 'bounced')::int as bounced,
      count(*) filter (where status = 'complained')::int as complained
    from public.campaign_recipients where campaign_id = ${body.campaign_id}`;
  assert.equal(c.bounced_count, by.bounced, "each bounce counted once");
  assert.equal(
    c.unsubscribed_count,
    by.complained,
    "each complaint counted once",
  );
  assert.ok(c.bounced_count > 0 && c.unsubscribed_count > 0, JSON.stringify(c));
  const [k] =
    await sql`select count(*) filter (where status = 'bounced')::int as bounced,
      count(*) filter (where status = 'complained')::int as complained
    from public.contact_consent where tenant_id = ${t.id} and channel = 'email'`;
  assert.equal(
    k.bounced,
    c.bounced_count,
    "a hard bounce suppresses the address",
  );
  assert.equal(k.complained, c.unsubscribed_count, "a complaint does too");

  // One click on a delivered client's List-Unsubscribe.
  await sandbox("webhooks", { enabled: false });
  const [ok] = await sql`select r.address from public.campaign_recipients r
    where r.campaign_id = ${body.campaign_id} and r.status = 'delivered' limit 1`;
  const email = (await sent("resend")).find((s) =>
    s.body.to[0] === ok.address
  )!;
  const link = email.body.headers["List-Unsubscribe"].slice(1, -1);
  const click = await fetch(link, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "List-Unsubscribe=One-Click",
  });
  assert.equal(click.status, 200);
  await click.body?.cancel();
  const next = campaign();
  const r2 = await invoke(t.db, "send-campaign", next);
  assert.equal(r2.status, 200);
  assert.equal(r2.body.suppressed, c.bounced_count + c.unsubscribed_count + 1);
  assert.equal(r2.body.sent_count, 50 - r2.body.suppressed);
  const second = (await sent("resend")).filter((s) =>
    s.at >= email.at && s.body.to[0] === ok.address
  );
  assert.equal(
    second.length,
    1,
    "the unsubscribed client got only the first campaign",
  );
});

Deno.test("SMS: STOP by text stops the next campaign; quiet hours hold messages back", async () => {
  await resetSandbox();
  await sandbox("webhooks", { enabled: true, delay_ms: 0 });
  const t = await makeTenant();
  const clients = await addClients(t, 4);
  const day = async (night: boolean) => {
    await sql`update public.tenants set time_zone = (
      select name from pg_timezone_names where name ~ '^Etc/GMT[+-][0-9]+$'
        and extract(hour from now() at time zone name) between ${
      night ? 0 : 10
    } and ${night ? 6 : 18}
      order by name limit 1) where id = ${t.id}`;
  };
  await day(false);
  const sms = (body = "Spring lines are in") =>
    campaign({ type: "sms", content: { body } });
  const first = sms();
  const r = await invoke(t.db, "send-campaign", first);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.status, "sent");
  assert.equal(r.body.sent_count, 5);
  assert.deepEqual(r.body.sms, { segments: 1, encoding: "GSM-7" });
  const texts = (await sent("twilio")).filter((s) =>
    clients.some((c) => c.phone === s.body.to)
  );
  assert.equal(texts.length, 4);
  assert.match(
    texts[0].body.body,
    /^Tenant [0-9a-f]{8}: Spring lines are in\nReply STOP to opt out$/,
  );
  // Twilio's status callbacks come back signed and are recorded.
  await until("delivery reports", 30, async () => {
    const c = await campaignRow(first.campaign_id);
    return c.delivered_count === 5 ? c : undefined;
  });

  // A client texts STOP.
  const stop = await sandbox("twilio/inbound", {
    from: clients[0].phone,
    body: "STOP",
  });
  assert.equal(stop.status, 200, stop.text);
  const [k] =
    await sql`select status from public.contact_consent where client_id = ${
      clients[0].id
    } and channel = 'sms'`;
  assert.equal(k.status, "unsubscribed");
  const second = sms("Last call");
  const r2 = await invoke(t.db, "send-campaign", second);
  assert.equal(r2.body.suppressed, 1);
  assert.equal(r2.body.sent_count, 4);
  const toStopped = (await sent("twilio")).filter((s) =>
    s.body.to === clients[0].phone
  );
  assert.equal(toStopped.length, 1, "nothing after STOP");

  // Night in the tenant's time zone: the campaign waits, then goes in the morning.
  await day(true);
  const night = sms("Night owl special");
  const r3 = await invoke(t.db, "send-campaign", night);
  assert.equal(r3.body.status, "sending", JSON.stringify(r3.body));
  assert.equal(r3.body.sent_count, 0);
  await dispatch();
  assert.equal(
    (await campaignRow(night.campaign_id)).sent_count,
    0,
    "held back, not dropped",
  );
  await day(false);
  await dispatch();
  const morning = await finished(night.campaign_id, 30);
  assert.equal(morning.sent_count, 4);
});

Deno.test("a scheduled campaign starts at its time", async () => {
  await resetSandbox();
  await sandbox("webhooks", { enabled: false });
  const t = await makeTenant();
  const tag = crypto.randomUUID().slice(0, 6);
  await addClients(t, 9, tag);
  const at = new Date(Date.now() + 3000).toISOString();
  const body = campaign({ schedule: at });
  const r = await invoke(t.db, "send-campaign", body);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, "scheduled");
  await dispatch();
  assert.equal(
    (await emailsTo(`-${tag}@camp.test`)).length,
    0,
    "not before its time",
  );
  await new Promise((ok) => setTimeout(ok, Date.parse(at) - Date.now() + 200));
  await dispatch();
  const done = await finished(body.campaign_id, 30);
  assert.equal(done.sent_count, 10);
  assert.ok(new Date(done.started_at) >= new Date(at));
  assert.equal((await emailsTo(`-${tag}@camp.test`)).length, 9);
});

Deno.test("an order confirmation goes ahead of another tenant's 20,000 queued campaign emails", async () => {
  await resetSandbox();
  await sandbox("webhooks", { enabled: false });
  await sandbox("limits", { resend: Number(env.RESEND_MAX_RPS) });
  try {
    const a = await makeTenant();
    const b = await makeTenant();
    const tag = crypto.randomUUID().slice(0, 6);
    await addClients(a, 19_999, tag);
    const big = campaign();
    const r = await invoke(a.db, "send-campaign", big);
    assert.equal(r.status, 200);
    assert.equal(r.body.recipient_count, 20_000);
    await until("the campaign under way", 30, async () => {
      const n = (await emailsTo(`-${tag}@camp.test`)).length;
      return n >= 1000 ? n : undefined;
    });
    const placed = await invoke(b.db, "create-wholesale-order", order(b));
    assert.equal(placed.status, 201, JSON.stringify(placed.body));
    const [client] =
      await sql`select email from public.wholesale_clients where id = ${b.clientId}`;
    await until("B's confirmation sent", 30, async () => {
      const all = await sent("resend");
      return all.some((s) => s.body.to[0] === client.email) ? true : undefined;
    });
    const done = await finished(big.campaign_id, 120);
    assert.equal(done.sent_count, 20_000);
    const all = await sent("resend");
    const confirmation = all.findIndex((s) => s.body.to[0] === client.email);
    const ours = new Set(
      (await sql`select address from public.campaign_recipients where campaign_id = ${big.campaign_id}`)
        .map((x) => x.address),
    );
    const before = all.slice(0, confirmation).filter((s) =>
      ours.has(s.body.to[0])
    ).length;
    const campaignAfter = all.slice(confirmation).filter((s) =>
      ours.has(s.body.to[0])
    ).length;
    const queuedBefore = 20_000 - before;
    // Marketing emails were still queued when the confirmation was placed;
    // it went ahead of them, not after them.
    assert.ok(
      queuedBefore > 5_000,
      `${queuedBefore} campaign emails were still queued`,
    );
    assert.equal(
      campaignAfter,
      queuedBefore,
      "every one of them was sent after the confirmation",
    );
    const [a1] =
      await sql`select count(distinct address)::int as n from public.campaign_recipients
      where campaign_id = ${big.campaign_id} and status = 'sent'`;
    assert.equal(a1.n, 20_000);
  } finally {
    await sandbox("limits", {});
  }
});
