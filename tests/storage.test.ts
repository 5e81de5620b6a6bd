// The Storage API subset through the gateway, with supabase-js: uploads under
// the tenant prefix, downloads, signed URLs, bucket limits, tenancy, deletes.
import assert from "node:assert/strict";
import { clientFor, env, makeTenant, url } from "./_stack.ts";

const pdf = (text: string) =>
  new TextEncoder().encode(`%PDF-1.4\n% ${text}\n%%EOF\n`);

// deno-lint-ignore no-explicit-any
const status = (error: any) => Number(error?.statusCode ?? error?.status);

Deno.test("upload, download and a signed URL that expires", async () => {
  const t = await makeTenant();
  const bucket = t.db.storage.from("purchase-orders");
  const path = `${t.id}/po-1.pdf`;
  const up = await bucket.upload(path, pdf("first"), {
    contentType: "application/pdf",
  });
  assert.equal(up.error, null, JSON.stringify(up.error));
  assert.equal(up.data?.path, path);

  const down = await bucket.download(path);
  assert.equal(down.error, null);
  assert.equal(await down.data!.text(), new TextDecoder().decode(pdf("first")));

  const signed = await bucket.createSignedUrl(path, 60);
  assert.equal(signed.error, null);
  const viaUrl = await fetch(signed.data!.signedUrl);
  assert.equal(viaUrl.status, 200);
  assert.equal(viaUrl.headers.get("content-type"), "application/pdf");
  assert.equal(await viaUrl.text(), new TextDecoder().decode(pdf("first")));

  const tampered = await fetch(
    signed.data!.signedUrl.replace("po-1.pdf", "po-2.pdf"),
  );
  assert.equal(tampered.status, 400);
  await tampered.body?.cancel();

  const short = await bucket.createSignedUrl(path, 1);
  await new Promise((r) => setTimeout(r, 2100));
  const expired = await fetch(short.data!.signedUrl);
  assert.equal(expired.status, 400);
  assert.equal((await expired.json()).code, "ExpiredToken");
});

Deno.test("bucket limits: too large is 413, a wrong MIME type is 415", async () => {
  const t = await makeTenant();
  const post = (name: string, body: Uint8Array<ArrayBuffer>, type: string) =>
    fetch(`${url}/storage/v1/object/purchase-orders/${t.id}/${name}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.token}`,
        apikey: env.SUPABASE_ANON_KEY,
        "content-type": type,
      },
      body,
    });
  const big = await post(
    "big.pdf",
    new Uint8Array(10 * 1024 * 1024 + 1),
    "application/pdf",
  );
  assert.equal(big.status, 413);
  assert.deepEqual(await big.json(), {
    statusCode: "413",
    code: "EntityTooLarge",
    error: "Payload too large",
    message: "The object exceeded the maximum allowed size",
  });
  const text = await post(
    "notes.txt",
    new TextEncoder().encode("hi"),
    "text/plain",
  );
  assert.equal(text.status, 415);
  assert.equal(
    (await text.json()).message,
    "mime type text/plain is not supported",
  );
  // supabase-js reports the same refusal.
  const { error } = await t.db.storage.from("purchase-orders").upload(
    `${t.id}/x.txt`,
    new Blob(["hi"], { type: "text/plain" }),
  );
  assert.equal(status(error), 415);
  // At the limit exactly is fine.
  const edge = await post(
    "edge.pdf",
    new Uint8Array(10 * 1024 * 1024),
    "application/pdf",
  );
  assert.equal(edge.status, 200);
  await edge.body?.cancel();
});

Deno.test("another tenant can neither read nor write a tenant's files", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const path = `${a.id}/secret.pdf`;
  assert.equal(
    (await a.db.storage.from("invoices").upload(path, pdf("a"), {
      contentType: "application/pdf",
    })).error,
    null,
  );

  const read = await b.db.storage.from("invoices").download(path);
  assert.equal(status(read.error), 404);
  const sign = await b.db.storage.from("invoices").createSignedUrl(path, 60);
  assert.equal(status(sign.error), 404);
  const write = await b.db.storage.from("invoices").upload(
    `${a.id}/planted.pdf`,
    pdf("b"),
    { contentType: "application/pdf" },
  );
  assert.equal(status(write.error), 403);
  const removed = await b.db.storage.from("invoices").remove([path]);
  assert.deepEqual(removed.data, [], "nothing of A's is deleted");
  const stillThere = await a.db.storage.from("invoices").download(path);
  assert.equal(stillThere.error, null);
  const anon = await clientFor().storage.from("invoices").download(path);
  assert.ok(anon.error, "anon cannot read a private bucket");
});

Deno.test("x-upsert replaces, a plain re-upload is 409, and delete removes", async () => {
  const t = await makeTenant();
  const bucket = t.db.storage.from("reports");
  const path = `${t.id}/r.pdf`;
  assert.equal(
    (await bucket.upload(path, pdf("v1"), { contentType: "application/pdf" }))
      .error,
    null,
  );
  const again = await bucket.upload(path, pdf("v2"), {
    contentType: "application/pdf",
  });
  assert.equal(status(again.error), 409);
  assert.equal(
    (await bucket.upload(path, pdf("v2"), {
      contentType: "application/pdf",
      upsert: true,
    })).error,
    null,
  );
  assert.equal(
    await (await bucket.download(path)).data!.text(),
    new TextDecoder().decode(pdf("v2")),
  );
  const removed = await bucket.remove([path]);
  assert.equal(removed.error, null);
  assert.equal(removed.data?.length, 1);
  assert.equal(status((await bucket.download(path)).error), 404);
});

Deno.test("a public bucket serves its files without a token", async () => {
  const t = await makeTenant();
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const bucket = t.db.storage.from("product-images");
  const path = `${t.id}/logo.png`;
  assert.equal(
    (await bucket.upload(path, new Blob([png], { type: "image/png" }))).error,
    null,
  );
  const res = await fetch(bucket.getPublicUrl(path).data.publicUrl);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "image/png");
  assert.deepEqual(new Uint8Array(await res.arrayBuffer()), png);
  const privateBucket = await fetch(
    `${url}/storage/v1/object/public/invoices/${t.id}/x.pdf`,
  );
  assert.equal(privateBucket.status, 404);
  await privateBucket.body?.cancel();
});
