// The Storage API subset through the gateway, with supabase-js: uploads under
// the tenant prefix, downloads, signed URLs, bucket limits, tenancy, deletes,
// and the hardening a stand-in on the API origin needs: streamed size limits,
// RLS before the body, safe download headers, bounded signed URLs, and
// object names refused with 400 rather than stored twice or failing with 500.
import assert from "node:assert/strict";
import {
  clientFor,
  env,
  makeTenant,
  sql,
  stackDir,
  type Tenant,
  url,
} from "./_stack.ts";

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

// --- hardening ---------------------------------------------------------------

const storageUrl = (bucket: string, path: string, kind = "") =>
  `${url}/storage/v1/object/${kind ? `${kind}/` : ""}${bucket}/${path}`;

function asMember(t: Tenant, headers: Record<string, string> = {}) {
  return {
    authorization: `Bearer ${t.token}`,
    apikey: env.SUPABASE_ANON_KEY,
    ...headers,
  };
}

/**
 * A request body of `total` zero bytes in 64 KiB chunks, sent without a
 * content-length, so the server cannot know its size in advance. With
 * `stall`, it then neither ends nor sends more: a server that waits for the
 * whole body before deciding never answers, while one that counts bytes as
 * they arrive (or decides before reading) does.
 */
function zeros(total: number, then: "end" | "stall" = "end") {
  let sent = 0;
  let release = () => {};
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= total) {
        if (then === "end") return c.close();
        return new Promise<void>((resolve) => release = resolve);
      }
      const n = Math.min(64 * 1024, total - sent);
      sent += n;
      c.enqueue(new Uint8Array(n));
    },
    cancel() {
      release();
    },
  });
}

/** POSTs `body` to `bucket/path` as `t`, giving up after 10 s. */
async function postWithin10s(
  t: Tenant,
  bucket: string,
  path: string,
  body: ReadableStream<Uint8Array>,
) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 10_000);
  try {
    const res = await fetch(storageUrl(bucket, path), {
      method: "POST",
      headers: asMember(t, { "content-type": "image/png" }),
      body,
      signal: abort.signal,
    });
    return { status: res.status, body: await res.json() };
  } catch (err) {
    if (!abort.signal.aborted) throw err;
    throw new Error("no answer in 10 s: the server waited for the whole body");
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

/** What storage holds for `bucket/path`: its row count and whether a file exists. */
async function stored(bucket: string, path: string) {
  const [row] = await sql`select count(*)::int as n from storage.objects
    where bucket_id = ${bucket} and name = ${path}`;
  const file = await Deno.stat(`${stackDir}/storage/${bucket}/${path}`).then(
    () => true,
    () => false,
  );
  return { rows: row.n as number, file };
}

const TOO_LARGE = {
  statusCode: "413",
  code: "EntityTooLarge",
  error: "Payload too large",
  message: "The object exceeded the maximum allowed size",
};

Deno.test("a streamed upload is cut off with 413 once it passes the bucket's limit, and nothing is stored", async () => {
  const t = await makeTenant();
  const limit = 2 * 1024 * 1024; // branding
  const path = `${t.id}/stalled.png`;
  // One byte past the limit, then the body stalls: the answer must come from
  // counting what arrived, not from waiting for an end that never comes.
  const cut = await postWithin10s(
    t,
    "branding",
    path,
    zeros(limit + 1, "stall"),
  );
  assert.equal(cut.status, 413);
  assert.deepEqual(cut.body, TOO_LARGE);
  assert.deepEqual(await stored("branding", path), { rows: 0, file: false });

  // Counted exactly: one byte over is refused, the limit itself is stored.
  const over = await fetch(storageUrl("branding", `${t.id}/over.png`), {
    method: "POST",
    headers: asMember(t, { "content-type": "image/png" }),
    body: zeros(limit + 1),
  });
  assert.equal(over.status, 413);
  assert.deepEqual(await over.json(), TOO_LARGE);
  assert.deepEqual(await stored("branding", `${t.id}/over.png`), {
    rows: 0,
    file: false,
  });
  const edge = await fetch(storageUrl("branding", `${t.id}/edge.png`), {
    method: "POST",
    headers: asMember(t, { "content-type": "image/png" }),
    body: zeros(limit),
  });
  assert.equal(edge.status, 200, await edge.clone().text());
  await edge.body?.cancel();
  assert.deepEqual(await stored("branding", `${t.id}/edge.png`), {
    rows: 1,
    file: true,
  });

  // A multipart body (supabase-js with a Blob) over the limit, too.
  const big = await t.db.storage.from("branding").upload(
    `${t.id}/big.png`,
    new Blob([new Uint8Array(limit + 1)], { type: "image/png" }),
  );
  assert.equal(status(big.error), 413);
  assert.deepEqual(await stored("branding", `${t.id}/big.png`), {
    rows: 0,
    file: false,
  });
});

/**
 * Sends a request head declaring `length` body bytes, and none of them, over
 * a raw connection; returns the status line and body of the answer, which a
 * server must give without waiting for the body.
 */
async function headOnly(
  method: string,
  target: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    const head = [
      `${method} ${target} HTTP/1.1`,
      `host: ${hostname}:${port}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    await conn.write(new TextEncoder().encode(head));
    let text = "";
    const buf = new Uint8Array(64 * 1024);
    const deadline = setTimeout(() => conn.close(), 10_000);
    try {
      while (!/\r\n\r\n[\s\S]*\}/.test(text)) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
    } catch {
      // closed by the deadline: the server was waiting for the body
    } finally {
      clearTimeout(deadline);
    }
    const status = Number(text.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
    return { status, body: text.slice(text.indexOf("\r\n\r\n") + 4) };
  } finally {
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

Deno.test("an upload is refused before its body is read: a Content-Length over the limit, or no right to the path", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const target = (path: string) =>
    new URL(storageUrl("branding", path)).pathname;

  // 100 MB declared to the 2 MB bucket, and not one byte sent.
  const declared = await headOnly("POST", target(`${a.id}/huge.png`), {
    ...asMember(a, { "content-type": "image/png" }),
    "content-length": String(100 * 1024 * 1024),
  });
  assert.equal(declared.status, 413, "answered without waiting for the body");
  assert.match(declared.body, /"code":"EntityTooLarge"/);

  // B writing into A's prefix: refused by RLS with the body never sent.
  const planted = await headOnly("POST", target(`${a.id}/planted.png`), {
    ...asMember(b, { "content-type": "image/png" }),
    "content-length": "1024",
  });
  assert.equal(planted.status, 403, "answered without waiting for the body");
  assert.match(planted.body, /"code":"AccessDenied"/);

  // And through fetch, with a body that stalls after its first bytes.
  const refused = await postWithin10s(
    b,
    "branding",
    `${a.id}/planted.png`,
    zeros(64 * 1024, "stall"),
  );
  assert.equal(refused.status, 403);
  assert.deepEqual(refused.body, {
    statusCode: "403",
    code: "AccessDenied",
    error: "Unauthorized",
    message: "new row violates row-level security policy",
  });
  assert.deepEqual(await stored("branding", `${a.id}/planted.png`), {
    rows: 0,
    file: false,
  });
  // An existing name without upsert is a 409 before the body, too.
  assert.equal(
    (await a.db.storage.from("branding").upload(
      `${a.id}/taken.png`,
      new Uint8Array(8),
      { contentType: "image/png" },
    )).error,
    null,
  );
  const taken = await headOnly("POST", target(`${a.id}/taken.png`), {
    ...asMember(a, { "content-type": "image/png" }),
    "content-length": "1024",
  });
  assert.equal(taken.status, 409);
});

/** Asserts the headers that keep a download from running in the API origin. */
function assertAttachment(res: Response, filename: string, what: string) {
  assert.equal(res.status, 200, what);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff", what);
  assert.match(
    res.headers.get("content-disposition") ?? "",
    new RegExp(`^attachment; filename="${filename.replace(".", "\\.")}"`),
    what,
  );
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /default-src 'none'/, what);
  assert.match(csp, /sandbox/, what);
}

Deno.test("downloads never render HTML or SVG inline: nosniff, attachment and a sandboxing CSP", async () => {
  const t = await makeTenant();
  const page = "<html><script>alert(document.cookie)</script></html>";
  const htmlPath = `${t.id}/page.html`;
  assert.equal(
    (await t.db.storage.from("support-attachments").upload(
      htmlPath,
      new TextEncoder().encode(page),
      { contentType: "text/html" },
    )).error,
    null,
  );
  const authenticated = await fetch(
    storageUrl("support-attachments", htmlPath, "authenticated"),
    { headers: asMember(t) },
  );
  assertAttachment(authenticated, "page.html", "authenticated download");
  // As Storage does, HTML is never labelled as HTML.
  assert.equal(authenticated.headers.get("content-type"), "text/plain");
  assert.equal(await authenticated.text(), page);
  const signed = await t.db.storage.from("support-attachments")
    .createSignedUrl(htmlPath, 60);
  const viaUrl = await fetch(signed.data!.signedUrl);
  assertAttachment(viaUrl, "page.html", "signed download");
  assert.equal(await viaUrl.text(), page);

  // Scripted SVG in a public bucket.
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
  const svgPath = `${t.id}/logo.svg`;
  assert.equal(
    (await t.db.storage.from("branding").upload(
      svgPath,
      new TextEncoder().encode(svg),
      { contentType: "image/svg+xml" },
    )).error,
    null,
  );
  const pub = await fetch(
    t.db.storage.from("branding").getPublicUrl(svgPath).data.publicUrl,
  );
  assertAttachment(pub, "logo.svg", "public download");
  assert.equal(pub.headers.get("content-type"), "image/svg+xml");
  assert.equal(await pub.text(), svg);

  // A PDF is not an image either.
  const pdfPath = `${t.id}/po.pdf`;
  await t.db.storage.from("invoices").upload(pdfPath, pdf("x"), {
    contentType: "application/pdf",
  });
  const pdfUrl = await t.db.storage.from("invoices").createSignedUrl(
    pdfPath,
    60,
  );
  const pdfRes = await fetch(pdfUrl.data!.signedUrl);
  assertAttachment(pdfRes, "po.pdf", "signed PDF");
  await pdfRes.body?.cancel();

  // Raster images stay inline, but are never sniffed.
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const pngPath = `${t.id}/logo.png`;
  await t.db.storage.from("branding").upload(pngPath, png, {
    contentType: "image/png",
  });
  const image = await fetch(
    t.db.storage.from("branding").getPublicUrl(pngPath).data.publicUrl,
  );
  assert.equal(image.status, 200);
  assert.equal(image.headers.get("content-type"), "image/png");
  assert.equal(image.headers.get("x-content-type-options"), "nosniff");
  assert.equal(image.headers.get("content-disposition"), null);
  assert.deepEqual(new Uint8Array(await image.arrayBuffer()), png);
});

Deno.test("expiresIn must be a whole number of seconds from 1 to one year", async () => {
  const t = await makeTenant();
  const path = `${t.id}/signed.pdf`;
  const bucket = t.db.storage.from("invoices");
  await bucket.upload(path, pdf("s"), { contentType: "application/pdf" });
  const sign = (body: string) =>
    fetch(storageUrl("invoices", path, "sign"), {
      method: "POST",
      headers: asMember(t, { "content-type": "application/json" }),
      body,
    });
  for (
    const body of [
      '{"expiresIn": 1e308}',
      '{"expiresIn": 31536001}',
      '{"expiresIn": 0}',
      '{"expiresIn": -60}',
      '{"expiresIn": 1.5}',
      '{"expiresIn": "60"}',
      '{"expiresIn": null}',
      "{}",
      "null",
      "not json",
    ]
  ) {
    const res = await sign(body);
    assert.equal(res.status, 400, body);
    const err = await res.json();
    assert.equal(err.statusCode, "400", body);
    assert.equal(err.code, "InvalidParameter", body);
  }
  assert.equal(status((await bucket.createSignedUrl(path, 1e308)).error), 400);

  const year = await sign('{"expiresIn": 31536000}');
  assert.equal(year.status, 200);
  const token = new URL(`${url}/storage/v1${(await year.json()).signedURL}`)
    .searchParams.get("token")!;
  const claims = JSON.parse(
    atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")),
  );
  assert.equal(claims.exp - claims.iat, 31536000);
});

Deno.test("object names with empty, '.' or '..' segments are refused, so one file is never two rows", async () => {
  const t = await makeTenant();
  const post = (path: string) =>
    fetch(storageUrl("invoices", path), {
      method: "POST",
      headers: asMember(t, { "content-type": "application/pdf" }),
      body: pdf("n"),
    });
  const ok = await post(`${t.id}/a/b.pdf`);
  assert.equal(ok.status, 200);
  await ok.body?.cancel();
  for (
    const path of [
      `${t.id}/a//b.pdf`, // one file with a/b.pdf on disk
      `${t.id}/a/b.pdf/`,
      `/${t.id}/a/b.pdf`,
      `${t.id}%2F.%2Fa%2Fb.pdf`, // %2F keeps fetch from resolving the dots
      `${t.id}%2F..%2F${t.id}%2Fa%2Fb.pdf`,
    ]
  ) {
    const res = await post(path);
    assert.equal(res.status, 400, path);
    const err = await res.json();
    assert.equal(err.statusCode, "400", path);
    assert.equal(err.code, "InvalidKey", path);
  }
  const [rows] = await sql`select count(*)::int as n from storage.objects
    where bucket_id = 'invoices' and name like ${`%${t.id}%`}`;
  assert.equal(rows.n, 1, "only a/b.pdf was stored");
  // Reading and signing such names is refused the same way.
  const read = await fetch(storageUrl("invoices", `${t.id}/a//b.pdf`), {
    headers: asMember(t),
  });
  assert.equal(read.status, 400);
  assert.equal((await read.json()).code, "InvalidKey");
  const sign = await fetch(storageUrl("invoices", `${t.id}/a//b.pdf`, "sign"), {
    method: "POST",
    headers: asMember(t, { "content-type": "application/json" }),
    body: '{"expiresIn": 60}',
  });
  assert.equal(sign.status, 400);
  assert.equal((await sign.json()).code, "InvalidKey");
  // supabase-js collapses repeated slashes itself, so its callers still work.
  const viaJs = await t.db.storage.from("invoices").upload(
    `${t.id}//c.pdf`,
    pdf("c"),
    { contentType: "application/pdf", upsert: true },
  );
  assert.equal(viaJs.error, null);
  assert.equal(viaJs.data?.path, `${t.id}/c.pdf`);
});

Deno.test("a control character, bad percent-encoding or an over-long name is a 400, never a 500", async () => {
  const t = await makeTenant();
  for (
    const name of [
      "a%00b.pdf",
      "a%0Ab.pdf",
      "a%7Fb.pdf",
      "a%ZZb.pdf",
      // longer than a file name or a key may be
      `${"n".repeat(300)}.pdf`,
      `${"d/".repeat(520)}x.pdf`,
    ]
  ) {
    const path = `${t.id}/${name}`;
    const up = await fetch(storageUrl("invoices", path), {
      method: "POST",
      headers: asMember(t, { "content-type": "application/pdf" }),
      body: pdf("c"),
    });
    assert.equal(up.status, 400, `upload ${name}`);
    const err = await up.json();
    assert.equal(err.statusCode, "400", name);
    assert.equal(err.code, "InvalidKey", name);
    assert.equal(typeof err.message, "string", name);
    const down = await fetch(storageUrl("invoices", path), {
      headers: asMember(t),
    });
    assert.equal(down.status, 400, `download ${name}`);
    assert.equal((await down.json()).code, "InvalidKey");
    const pub = await fetch(storageUrl("branding", path, "public"));
    assert.equal(pub.status, 400, `public ${name}`);
    await pub.body?.cancel();
    const signed = await fetch(storageUrl("invoices", path, "sign"), {
      method: "POST",
      headers: asMember(t, { "content-type": "application/json" }),
      body: '{"expiresIn": 60}',
    });
    assert.equal(signed.status, 400, `sign ${name}`);
    await signed.body?.cancel();
  }
  const { error } = await t.db.storage.from("invoices").upload(
    `${t.id}/nul\u0000.pdf`,
    pdf("c"),
    { contentType: "application/pdf" },
  );
  assert.equal(status(error), 400);
  const [rows] = await sql`select count(*)::int as n from storage.objects
    where name like ${`${t.id}/%`}`;
  assert.equal(rows.n, 0);
});
