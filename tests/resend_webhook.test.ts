// resend-webhook: Resend's signed events move a campaign's recipients,
// counters and consent, once each; a bad signature changes nothing.
import assert from "node:assert/strict";
import { env, makeTenant, sql, url } from "./_stack.ts";

const enc = new TextEncoder();

/** Signs as Resend (Standard Webhooks / Svix) does. */
async function signed(
  id: string,
  body: string,
  { secret = env.RESEND_WEBHOOK_SECRET, at = Math.floor(Date.now() / 1000) } =
    {},
) {
  const raw = Uint8Array.from(
    atob(secret.replace(/^whsec_/, "")),
    (c) => c.charCodeAt(0),
  );
  const key = await crypto.subtle.importKey(
    "raw",
    raw,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, enc.encode(`${id}.${at}.${body}`)),
  );
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(at),
    "webhook-signature": `v1,${btoa(String.fromCharCode(...mac))}`,
  };
}

async function deliver(id: string, type: string, emailId: string, opts = {}) {
  const body = JSON.stringify({
    type,
    created_at: new Date().toISOString(),
    data: { email_id: emailId, to: ["x@client.test"] },
  });
  const r = await fetch(`${url}/functions/v1/resend-webhook`, {
    method: "POST",
    headers: await signed(id, body, opts),
    body,
  });
  return { status: r.status, body: await r.json() };
}

async function campaignWith(emailIds: string[]) {
  const t = await makeTenant();
  const [c] =
    await sql`insert into public.marketing_campaigns (tenant_id, name, type, channel, status)
    values (${t.id}, 'Hooks', 'email', 'email', 'sending') returning id::text`;
  const clients =
    await sql`insert into public.wholesale_clients (tenant_id, name, email)
    select ${t.id}, 'C' || i, 'c' || i || '@client.test' from generate_series(1, ${emailIds.length}) i
    returning id::text`;
  for (const [i, e] of emailIds.entries()) {
    await sql`insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
      values (${t.id}, ${c.id}, ${
      clients[i].id
    }, 'email', 'x@client.test', 'sent', ${e})`;
  }
  return {
    tenant: t,
    campaign: c.id as string,
    clients: clients.map((r) => r.id as string),
  };
}

const counters = async (id: string) => {
  const [c] =
    await sql`select delivered_count, bounced_count, opened_count, clicked_count, unsubscribed_count
    from public.marketing_campaigns where id = ${id}`;
  return { ...c };
};

Deno.test("signed events move the recipients, the counters and consent, once each", async () => {
  const tag = crypto.randomUUID();
  const [a, b] = [`em_a_${tag}`, `em_b_${tag}`];
  const k = await campaignWith([a, b]);
  for (
    const [id, type, email] of [
      [`msg_1_${tag}`, "email.delivered", a],
      [`msg_2_${tag}`, "email.opened", a],
      [`msg_3_${tag}`, "email.opened", a],
      [`msg_4_${tag}`, "email.clicked", a],
      [`msg_5_${tag}`, "email.bounced", b],
    ]
  ) {
    const r = await deliver(id, type, email);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body, {
      received: true,
      matched: true,
      duplicate: false,
    });
  }
  // Resend retries a delivery with the same webhook-id: it counts once.
  const again = await deliver(`msg_1_${tag}`, "email.delivered", a);
  assert.deepEqual(again.body, {
    received: true,
    matched: true,
    duplicate: true,
  });
  assert.deepEqual(await counters(k.campaign), {
    delivered_count: 1,
    bounced_count: 1,
    opened_count: 1,
    clicked_count: 1,
    unsubscribed_count: 0,
  });
  const statuses =
    await sql`select provider_message_id as id, status from public.campaign_recipients
    where campaign_id = ${k.campaign} order by provider_message_id`;
  assert.deepEqual(statuses.map((s) => s.status), ["delivered", "bounced"]);
  const [consent] =
    await sql`select status, source from public.contact_consent where client_id = ${
      k.clients[1]
    }`;
  assert.deepEqual({ ...consent }, {
    status: "bounced",
    source: "provider_webhook",
  }, "a hard bounce suppresses");

  // An email no campaign sent (an order confirmation) is acknowledged only.
  const other = await deliver(
    `msg_6_${tag}`,
    "email.delivered",
    `em_transactional_${tag}`,
  );
  assert.deepEqual(other.body, {
    received: true,
    matched: false,
    duplicate: false,
  });
});

Deno.test("a forged, stale or unsigned event is 401 and changes nothing", async () => {
  const tag = crypto.randomUUID();
  const k = await campaignWith([`em_${tag}`]);
  const forged = await deliver(`msg_f_${tag}`, "email.bounced", `em_${tag}`, {
    secret: `whsec_${btoa("not-the-endpoint-secret-0123")}`,
  });
  assert.equal(forged.status, 401);
  assert.equal(forged.body.error.code, "UNAUTHORIZED");
  const stale = await deliver(`msg_s_${tag}`, "email.bounced", `em_${tag}`, {
    at: Math.floor(Date.now() / 1000) - 600,
  });
  assert.equal(stale.status, 401);
  const bare = await fetch(`${url}/functions/v1/resend-webhook`, {
    method: "POST",
    body: JSON.stringify({
      type: "email.bounced",
      data: { email_id: `em_${tag}` },
    }),
  });
  assert.equal(bare.status, 401);
  await bare.body?.cancel();
  // The body changed after signing: the signature no longer fits.
  const body = JSON.stringify({
    type: "email.delivered",
    data: { email_id: `em_${tag}` },
  });
  const headers = await signed(`msg_t_${tag}`, body);
  const tampered = await fetch(`${url}/functions/v1/resend-webhook`, {
    method: "POST",
    headers,
    body: body.replace("delivered", "bounced"),
  });
  assert.equal(tampered.status, 401);
  await tampered.body?.cancel();
  assert.deepEqual(await counters(k.campaign), {
    delivered_count: 0,
    bounced_count: 0,
    opened_count: 0,
    clicked_count: 0,
    unsubscribed_count: 0,
  });
  const [{ n }] =
    await sql`select count(*)::int as n from public.campaign_events where campaign_id = ${k.campaign}`;
  assert.equal(n, 0);
  // Signed but not an email event: 400 naming the field.
  const odd = await deliver(`msg_o_${tag}`, "email.exploded", `em_${tag}`);
  assert.equal(odd.status, 400);
  assert.match(odd.body.error.details.type, /must be one of/);
});
