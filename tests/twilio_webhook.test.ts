// twilio-webhook: Twilio's signed status callbacks and inbound keywords.
import assert from "node:assert/strict";
import { env, makeTenant, sql, url } from "./_stack.ts";

const hook = `${url}/functions/v1/twilio-webhook`;

/** Posts a form signed as Twilio signs it: HMAC-SHA1 of the URL + sorted params. */
async function post(
  params: Record<string, string>,
  token = env.TWILIO_AUTH_TOKEN,
) {
  const signedText = hook +
    Object.keys(params).sort().map((k) => k + params[k]).join("");
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(token),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signedText)),
  );
  const r = await fetch(hook, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": btoa(String.fromCharCode(...mac)),
    },
    body: new URLSearchParams(params),
  });
  return {
    status: r.status,
    type: r.headers.get("content-type"),
    text: await r.text(),
  };
}

Deno.test("status callbacks move a campaign SMS once; 21610 unsubscribes the number", async () => {
  const t = await makeTenant();
  const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
  const [c] =
    await sql`insert into public.marketing_campaigns (tenant_id, name, type, channel, status)
    values (${t.id}, 'Texts', 'sms', 'sms', 'sending') returning id::text`;
  await sql`insert into public.campaign_recipients (tenant_id, campaign_id, client_id, channel, address, status, provider_message_id)
    values (${t.id}, ${c.id}, ${t.clientId}, 'sms', '+15550000000', 'sent', ${sid})`;
  for (let i = 0; i < 2; i++) {
    const r = await post({
      MessageSid: sid,
      MessageStatus: "undelivered",
      ErrorCode: "21610",
      To: "+15550000000",
    });
    assert.equal(r.status, 200, r.text);
    assert.match(r.type!, /^text\/xml/);
    assert.match(r.text, /<Response\/>/);
  }
  const [camp] =
    await sql`select failed_count from public.marketing_campaigns where id = ${c.id}`;
  assert.equal(camp.failed_count, 1, "a repeated callback counts once");
  const [k] =
    await sql`select status, source from public.contact_consent where client_id = ${t.clientId} and channel = 'sms'`;
  assert.deepEqual({ ...k }, { status: "unsubscribed", source: "sms_stop" });
});

Deno.test("STOP and START by SMS change SMS consent for the number", async () => {
  const t = await makeTenant();
  const phone = `+1555${Math.floor(1e6 + Math.random() * 8e6)}`;
  await sql`update public.wholesale_clients set phone = ${phone} where id = ${t.clientId}`;
  const consent = async () =>
    (await sql`select status from public.contact_consent where client_id = ${t.clientId} and channel = 'sms'`)[
      0
    ]
      ?.status;
  assert.equal(
    (await post({ From: phone, To: "+15550001000", Body: "STOP" })).status,
    200,
  );
  assert.equal(await consent(), "unsubscribed");
  assert.equal(
    (await post({ From: phone, To: "+15550001000", Body: "Start" })).status,
    200,
  );
  assert.equal(await consent(), "subscribed");
});

Deno.test("a forged or unsigned callback is 401 and changes nothing", async () => {
  const t = await makeTenant();
  const phone = `+1555${Math.floor(1e6 + Math.random() * 8e6)}`;
  await sql`update public.wholesale_clients set phone = ${phone} where id = ${t.clientId}`;
  const forged = await post(
    { From: phone, To: "+15550001000", Body: "STOP" },
    "not-the-auth-token",
  );
  assert.equal(forged.status, 401);
  assert.equal(JSON.parse(forged.text).error.code, "UNAUTHORIZED");
  const bare = await fetch(hook, {
    method: "POST",
    body: new URLSearchParams({ From: phone, Body: "STOP" }),
  });
  assert.equal(bare.status, 401);
  await bare.body?.cancel();
  const rows =
    await sql`select 1 from public.contact_consent where client_id = ${t.clientId}`;
  assert.equal(rows.length, 0);
});
