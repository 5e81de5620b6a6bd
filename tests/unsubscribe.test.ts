// unsubscribe: the signed link from a campaign message, through the gateway.
// GET shows a button and changes nothing; POST (the button, or RFC 8058's
// one-click) records the consent, once.
import assert from "node:assert/strict";
import { env, makeTenant, sql, url } from "./_stack.ts";

const enc = new TextEncoder();

/** A signed link token, in shared::signed_link's format. */
async function token(
  subject: string,
  {
    purpose = "unsubscribe",
    expiresAt = Math.floor(Date.now() / 1000) + 3600,
    secret = env.LINK_SIGNING_SECRET,
  } = {},
): Promise<string> {
  const p = enc.encode(purpose);
  const s = enc.encode(subject);
  const body = new Uint8Array(1 + 8 + 1 + p.length + 2 + s.length);
  const view = new DataView(body.buffer);
  body[0] = 1;
  view.setBigInt64(1, BigInt(expiresAt));
  body[9] = p.length;
  body.set(p, 10);
  view.setUint16(10 + p.length, s.length);
  body.set(s, 12 + p.length);
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const signed = new Uint8Array([...enc.encode("signed-link\0"), ...body]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, signed));
  const all = new Uint8Array([...body, ...mac]);
  return btoa(String.fromCharCode(...all)).replaceAll("+", "-").replaceAll(
    "/",
    "_",
  )
    .replaceAll("=", "");
}

const link = (t: string) => `${url}/functions/v1/unsubscribe?token=${t}`;
const oneClick = (t: string) =>
  fetch(link(t), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: "List-Unsubscribe=One-Click",
  });
const consent = async (clientId: string) => [
  ...await sql`select channel, status, source, changed_at from public.contact_consent
      where client_id = ${clientId} order by channel`,
];

Deno.test("the link's page changes nothing; one-click unsubscribes once, per channel", async () => {
  const t = await makeTenant();
  const [{ business_name }] =
    await sql`select business_name from public.tenants where id = ${t.id}`;
  const email = await token(`${t.clientId}:email`);

  const page = await fetch(link(email));
  const html = await page.text();
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.match(
    page.headers.get("content-security-policy")!,
    /default-src 'none'/,
  );
  assert.match(html, /<form method="post" action="\?token=/);
  assert.deepEqual(
    await consent(t.clientId),
    [],
    "a GET (a mail scanner) unsubscribes no one",
  );

  const first = await oneClick(email);
  const done = await first.text();
  assert.equal(first.status, 200, done);
  assert.ok(
    done.includes(
      `You will no longer receive marketing emails from ${business_name}`,
    ),
    done,
  );
  const [row] = await consent(t.clientId);
  assert.deepEqual([row.channel, row.status, row.source], [
    "email",
    "unsubscribed",
    "one_click",
  ]);

  const again = await oneClick(email);
  assert.equal(again.status, 200);
  assert.match(await again.text(), /already stopped marketing emails/);
  const after = await consent(t.clientId);
  assert.equal(after.length, 1, "SMS is separate, and nothing was added");
  assert.equal(
    after[0].changed_at.getTime(),
    row.changed_at.getTime(),
    "the first time stands",
  );

  // The page's own button posts the same field; SMS has its own link.
  const sms = await fetch(link(await token(`${t.clientId}:sms`)), {
    method: "POST",
  });
  assert.equal(sms.status, 200);
  assert.match(await sms.text(), /marketing text messages/);
  assert.deepEqual(
    (await consent(t.clientId)).map((r) => [r.channel, r.source]),
    [["email", "one_click"], ["sms", "unsubscribe_link"]],
  );
});

Deno.test("a forged, foreign, expired or missing token is 401 and changes nothing", async () => {
  const t = await makeTenant();
  const subject = `${t.clientId}:email`;
  const good = await token(subject);
  const tampered = good.slice(0, -2) + (good.endsWith("AA") ? "BB" : "AA");
  for (
    const [what, tok] of [
      [
        "signed with another key",
        await token(subject, { secret: "not-our-key" }),
      ],
      [
        "for another purpose",
        await token(subject, { purpose: "recall_response" }),
      ],
      [
        "expired",
        await token(subject, { expiresAt: Math.floor(Date.now() / 1000) - 1 }),
      ],
      ["tampered", tampered],
      ["not a token", "%00"],
    ]
  ) {
    const r = await oneClick(tok);
    const body = await r.json();
    assert.equal(r.status, 401, `${what}: ${JSON.stringify(body)}`);
    assert.equal(body.error.code, "UNAUTHORIZED", what);
  }
  const none = await fetch(`${url}/functions/v1/unsubscribe`, {
    method: "POST",
  });
  assert.equal(none.status, 401);
  assert.equal((await none.json()).error.message, "the link has no token");
  assert.deepEqual(await consent(t.clientId), []);

  // A genuine link whose client is gone: 404, in the envelope.
  const gone = await oneClick(await token(`${crypto.randomUUID()}:email`));
  assert.equal(gone.status, 404);
  assert.equal((await gone.json()).error.code, "NOT_FOUND");
});

Deno.test("unsubscribe serves GET and POST, with CORS for them, and small bodies only", async () => {
  const tok = await token(`${crypto.randomUUID()}:email`);
  const pre = await fetch(link(tok), { method: "OPTIONS" });
  await pre.body?.cancel();
  assert.equal(pre.status, 204);
  assert.equal(
    pre.headers.get("access-control-allow-methods"),
    "GET, POST, OPTIONS",
  );
  const put = await fetch(link(tok), { method: "PUT" });
  assert.equal(put.status, 405);
  assert.equal(put.headers.get("allow"), "GET, POST, OPTIONS");
  await put.body?.cancel();
  const big = await fetch(link(tok), {
    method: "POST",
    body: "x".repeat(2000),
  });
  assert.equal(big.status, 413);
  assert.equal((await big.json()).error.code, "PAYLOAD_TOO_LARGE");
});
