// The subset of the Supabase Storage API that supabase-js and our functions
// use, for the local gateway. Metadata lives in storage.objects (so RLS
// decides who may read or write what, exactly as on Supabase) and the bytes
// under <stack dir>/storage/<bucket>/<path>.
//
//   POST|PUT /storage/v1/object/<bucket>/<path>            upload (x-upsert: true to replace)
//   GET      /storage/v1/object[/authenticated]/<bucket>/<path>   download as the caller
//   GET      /storage/v1/object/public/<bucket>/<path>     download from a public bucket
//   POST     /storage/v1/object/sign/<bucket>/<path>       {"expiresIn"} → {"signedURL"}
//   GET      /storage/v1/object/sign/<bucket>/<path>?token= download through a signed URL
//   DELETE   /storage/v1/object/<bucket>  {"prefixes"}     delete (and /object/<bucket>/<path>)
//   GET      /storage/v1/bucket                            the buckets (all of them for the service role)
//
// Bucket limits (file_size_limit, allowed_mime_types) are enforced with
// Storage's statuses and error shape: {"statusCode", "code", "error", "message"}.
// shared/src/storage.rs reads that shape, so every refusal here uses it too.
//
// An upload is checked before its body is read, in Storage's order: the
// declared Content-Length against the limit, the declared MIME type, then RLS
// (the row is inserted and rolled back, as Storage's canUpload does). Only
// then is the body read, counting bytes as they arrive and stopping at the
// limit, so no caller can make the gateway buffer more than a bucket allows.
//
// Downloads are served as Storage serves them, hardened for a local API
// origin: nosniff always, and anything but a raster image (SVG included) as
// an attachment under a sandboxing CSP, so a stored page or script never runs
// in the origin that holds the API's cookies and tokens.
import type postgres from "postgres";
import { b64url, type StackKeys } from "./jwt.ts";

type Sql = ReturnType<typeof postgres>;
type Claims = Record<string, unknown> & { role?: string; exp?: number };
/** storage.objects.metadata, as Storage writes it. */
type Metadata = Record<string, string | number | null>;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Storage's global upload cap (Supabase's default): a bucket may only lower it. */
const GLOBAL_FILE_SIZE_LIMIT = 50 * 1024 * 1024;
/** What a multipart body may carry besides the file: boundaries and small fields. */
const MULTIPART_OVERHEAD = 64 * 1024;
/** The longest a signed URL may live: one year, in seconds. */
const MAX_SIGNED_URL_SECONDS = 365 * 24 * 60 * 60;
/** Types a browser only ever renders as a picture: safe to show inline. */
const INLINE_TYPES = new Set([
  "image/png",
  "image/jpeg",
  "image/gif",
  "image/webp",
]);

/*
 * Object names. Real Storage (src/storage/limits.ts, isValidKey) accepts a
 * non-empty key made only of S3's safe characters and answers anything else
 * with 400 InvalidKey: control characters (NUL included), '%', '#', backslash and
 * non-ASCII are refused there, so they are refused here too, before a name
 * reaches Postgres (which cannot store NUL) or the file system.
 *
 * Storage does not look at segments: on S3, `a/b` and `a//b` are two keys,
 * while its file backend maps both to one file and refuses `.` and `..`
 * segments. This stand-in is a file backend, so it must decide. It refuses
 * (400 InvalidKey) rather than collapses: supabase-js already trims one
 * leading and trailing slash and collapses repeated ones before sending, so
 * such a name comes only from a client that builds paths by hand (like
 * shared's StorageClient), and collapsing would store a name other than the
 * one that client keeps in its own rows.
 */
const SAFE_KEY = /^[A-Za-z0-9_/!.*'() &$=@;:+,?-]+$/;

/** Why `name` is not an acceptable object name, or null when it is. */
function invalidObjectName(name: string): string | null {
  if (!SAFE_KEY.test(name)) return "it holds a character Storage refuses";
  // S3 keys are at most 1,024 bytes; a file name at most 255 (NAME_MAX).
  if (name.length > 1024) return "it is longer than 1024 characters";
  const segments = name.split("/");
  if (segments.some((s) => s === "")) {
    return "it has an empty segment or a leading or trailing slash";
  }
  if (segments.some((s) => s === "." || s === "..")) {
    return "it has a '.' or '..' segment";
  }
  if (segments.some((s) => s.length > 255)) {
    return "a segment is longer than 255 characters";
  }
  return null;
}

function storageError(
  status: number,
  code: string,
  error: string,
  message: string,
): Response {
  return new Response(
    JSON.stringify({ statusCode: String(status), code, error, message }),
    {
      status,
      headers: { "content-type": "application/json" },
    },
  );
}
const notFound = () =>
  storageError(404, "NoSuchKey", "not_found", "Object not found");
const noBucket = () =>
  storageError(404, "NoSuchBucket", "Bucket not found", "Bucket not found");
const tooLarge = () =>
  storageError(
    413,
    "EntityTooLarge",
    "Payload too large",
    "The object exceeded the maximum allowed size",
  );
const invalidKey = (name: string, reason: string) =>
  storageError(
    400,
    "InvalidKey",
    "Invalid Input",
    `Invalid key: ${name} (${reason})`,
  );

function b64urlDecode(s: string): Uint8Array<ArrayBuffer> {
  const b = atob(
    s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4),
  );
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

/** Where `needle` next occurs in `hay` at or after `from`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array, from: number): number {
  for (
    let i = hay.indexOf(needle[0], from);
    i !== -1;
    i = hay.indexOf(needle[0], i + 1)
  ) {
    if (i + needle.length > hay.length) return -1;
    let j = 1;
    while (j < needle.length && hay[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}

/**
 * The file part of a multipart/form-data body: the first part with a filename.
 * Parsed by hand because storage-js names that part "" and Deno's formData()
 * drops parts with an empty name.
 */
export function multipartFile(
  body: Uint8Array<ArrayBuffer>,
  contentType: string,
): { bytes: Uint8Array<ArrayBuffer>; type: string } | null {
  const m = contentType.match(/boundary=(?:"([^"]+)"|([^;\s]+))/i);
  if (!m) return null;
  const delimiter = enc.encode(`--${m[1] ?? m[2]}`);
  const blank = enc.encode("\r\n\r\n");
  let at = indexOf(body, delimiter, 0);
  while (at !== -1) {
    const start = at + delimiter.length + 2; // past the line break
    const next = indexOf(body, delimiter, start);
    if (next === -1) return null;
    const headersEnd = indexOf(body, blank, start);
    if (headersEnd !== -1 && headersEnd < next) {
      const headers = dec.decode(body.subarray(start, headersEnd));
      if (/filename=/i.test(headers)) {
        const type = headers.match(/content-type:\s*([^\r\n]+)/i)?.[1].trim() ??
          "application/octet-stream";
        return { bytes: body.slice(headersEnd + 4, next - 2), type };
      }
    }
    at = next;
  }
  return null;
}

/**
 * The whole body, or null as soon as more than `cap` bytes have arrived, so
 * a caller can never make this process hold more than `cap` bytes of one
 * upload.
 */
async function readAtMost(
  body: ReadableStream<Uint8Array> | null,
  cap: number,
): Promise<Uint8Array<ArrayBuffer> | null> {
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > cap) {
      // Deno.serve still delivers the refusal to a client that is sending;
      // the rest of the body is never read.
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  return bytes;
}

/** `type` without parameters, lower-cased: what bucket rules and downloads compare. */
function bareType(type: string): string {
  return type.split(";")[0].trim().toLowerCase();
}

function mimeAllowed(allowed: string[] | null, type: string): boolean {
  return !allowed || allowed.length === 0 ||
    allowed.some((a) =>
      a === type || (a.endsWith("/*") && type.startsWith(a.slice(0, -1)))
    );
}

const mimeRefused = (type: string) =>
  storageError(
    415,
    "InvalidMimeType",
    "invalid_mime_type",
    `mime type ${type} is not supported`,
  );

/** Postgres errors of a write to storage.objects that are the caller's doing. */
function writeRefusal(err: unknown): Response | null {
  const code = (err as { code?: string }).code;
  if (code === "23505") {
    return storageError(
      409,
      "KeyAlreadyExists",
      "Duplicate",
      "The resource already exists",
    );
  }
  if (code === "42501") {
    return storageError(
      403,
      "AccessDenied",
      "Unauthorized",
      "new row violates row-level security policy",
    );
  }
  return null;
}

/** Thrown to roll back the permission probe once its insert succeeded. */
class Probed extends Error {}

/** `attachment` with the object's own file name, quoted and RFC 5987 encoded. */
function attachment(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const quoted = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  const encoded = encodeURIComponent(name).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${quoted}"; filename*=UTF-8''${encoded}`;
}

export class Storage {
  #hmacKey: Promise<CryptoKey>;
  #esKey: Promise<CryptoKey>;

  constructor(private db: Sql, private keys: StackKeys, private root: string) {
    this.#hmacKey = crypto.subtle.importKey(
      "raw",
      enc.encode(keys.jwt_secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign", "verify"],
    );
    this.#esKey = crypto.subtle.importKey(
      "jwk",
      keys.es256_public,
      { name: "ECDSA", namedCurve: "P-256" },
      false,
      ["verify"],
    );
  }

  /** The verified claims of a token signed by this stack, or null. */
  async verify(token: string): Promise<Claims | null> {
    const parts = token.split(".");
    if (parts.length !== 3) return null;
    try {
      const header = JSON.parse(dec.decode(b64urlDecode(parts[0])));
      const data = enc.encode(`${parts[0]}.${parts[1]}`);
      const sig = b64urlDecode(parts[2]);
      const ok = header.alg === "HS256"
        ? await crypto.subtle.verify("HMAC", await this.#hmacKey, sig, data)
        : header.alg === "ES256"
        ? await crypto.subtle.verify(
          { name: "ECDSA", hash: "SHA-256" },
          await this.#esKey,
          sig,
          data,
        )
        : false;
      if (!ok) return null;
      const claims = JSON.parse(dec.decode(b64urlDecode(parts[1]))) as Claims;
      if (typeof claims.exp !== "number" || claims.exp < Date.now() / 1000) {
        return null;
      }
      return claims;
    } catch {
      return null;
    }
  }

  /** `GET /bucket`: every bucket for the service role, as Storage lists them. */
  async #listBuckets(req: Request): Promise<Response> {
    const claims = await this.#caller(req);
    if (claims instanceof Response) return claims;
    if (claims.role !== "service_role") {
      return new Response("[]", {
        headers: { "content-type": "application/json" },
      });
    }
    const rows = await this
      .db`select id, name, public, file_size_limit, allowed_mime_types, created_at, updated_at
          from storage.buckets order by id`;
    return new Response(JSON.stringify(rows), {
      headers: { "content-type": "application/json" },
    });
  }

  async #caller(req: Request): Promise<Claims | Response> {
    const auth = req.headers.get("authorization")?.replace(/^Bearer\s+/i, "") ??
      req.headers.get("apikey");
    if (!auth) {
      return storageError(
        400,
        "InvalidJWT",
        "Invalid JWT",
        "headers must have required property 'authorization'",
      );
    }
    const claims = await this.verify(auth);
    if (
      !claims ||
      !["anon", "authenticated", "service_role"].includes(String(claims.role))
    ) {
      return storageError(
        400,
        "InvalidJWT",
        "Invalid JWT",
        "invalid signature or expired token",
      );
    }
    return claims;
  }

  /** Runs `work` in a transaction as the caller's role, with its claims, so RLS applies. */
  #asCaller<T>(claims: Claims, work: (tx: Sql) => Promise<T>): Promise<T> {
    return this.db.begin(async (tx) => {
      await tx`select set_config('role', ${String(claims.role)}, true),
                      set_config('request.jwt.claims', ${
        JSON.stringify(claims)
      }, true)`;
      return await work(tx as unknown as Sql);
    }) as Promise<T>;
  }

  #file(bucket: string, path: string): string {
    return `${this.root}/${bucket}/${path}`;
  }

  async #bucket(id: string) {
    const [b] = await this
      .db`select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = ${id}`;
    return b;
  }

  async handle(req: Request, rest: string): Promise<Response> {
    const url = new URL(req.url);
    if (rest === "/bucket" && req.method === "GET") {
      return await this.#listBuckets(req);
    }
    const m = rest.match(
      /^\/object\/(?:(sign|public|authenticated)\/)?([^/]+)(?:\/(.+))?$/,
    );
    if (!m) {
      return storageError(
        404,
        "InvalidRequest",
        "not_found",
        "Route not found",
      );
    }
    const [, kind, bucket, rawPath] = m;
    let path: string | undefined;
    if (rawPath !== undefined) {
      try {
        path = decodeURIComponent(rawPath);
      } catch {
        return invalidKey(rawPath, "it is not valid percent-encoding");
      }
      const why = invalidObjectName(path);
      if (why !== null) return invalidKey(path, why);
    }
    if (kind === "sign" && req.method === "GET" && path) {
      return await this.#signedDownload(bucket, path, url);
    }
    if (kind === "public" && req.method === "GET" && path) {
      return await this.#publicDownload(bucket, path);
    }
    const claims = await this.#caller(req);
    if (claims instanceof Response) return claims;
    if (kind === "sign" && req.method === "POST" && path) {
      return await this.#sign(req, claims, bucket, path);
    }
    if (!kind && (req.method === "POST" || req.method === "PUT") && path) {
      return await this.#upload(
        req,
        claims,
        bucket,
        path,
        req.method === "PUT",
      );
    }
    if ((!kind || kind === "authenticated") && req.method === "GET" && path) {
      return await this.#download(claims, bucket, path);
    }
    if (!kind && req.method === "DELETE") {
      const paths = path
        ? [path]
        : ((await req.json().catch(() => null))?.prefixes ?? []);
      return await this.#remove(claims, bucket, paths);
    }
    return storageError(
      405,
      "InvalidRequest",
      "method_not_allowed",
      `${req.method} is not supported here`,
    );
  }

  /**
   * Inserts (or, with `upsert`, replaces) the row of `bucket/path` as the
   * caller, so the insert and update policies decide.
   */
  #writeRow(
    tx: Sql,
    claims: Claims,
    bucket: string,
    path: string,
    upsert: boolean,
    metadata: Metadata,
  ) {
    const owner = claims.role === "authenticated" ? String(claims.sub) : null;
    return upsert
      ? tx`insert into storage.objects (bucket_id, name, owner, metadata)
          values (${bucket}, ${path}, ${owner}, ${tx.json(metadata)})
          on conflict (bucket_id, name) do update set metadata = excluded.metadata, owner = excluded.owner,
            updated_at = now()
          returning id::text`
      : tx`insert into storage.objects (bucket_id, name, owner, metadata)
          values (${bucket}, ${path}, ${owner}, ${tx.json(metadata)})
          returning id::text`;
  }

  /**
   * Whether the caller may write `bucket/path`, asked before the body is
   * read: the row is written as the caller and rolled back, as Storage's
   * canUpload does. A refusal (403, or 409 for an existing name without
   * upsert) as a response, else null.
   */
  async #mayWrite(
    claims: Claims,
    bucket: string,
    path: string,
    upsert: boolean,
    metadata: Metadata,
  ): Promise<Response | null> {
    try {
      await this.#asCaller(claims, async (tx) => {
        await this.#writeRow(tx, claims, bucket, path, upsert, metadata);
        throw new Probed();
      });
    } catch (err) {
      if (err instanceof Probed) return null;
      const refusal = writeRefusal(err);
      if (refusal) return refusal;
      throw err;
    }
    return null;
  }

  async #upload(
    req: Request,
    claims: Claims,
    bucket: string,
    path: string,
    replace: boolean,
  ): Promise<Response> {
    const b = await this.#bucket(bucket);
    if (!b) return noBucket();
    const limit = Math.min(
      b.file_size_limit === null
        ? GLOBAL_FILE_SIZE_LIMIT
        : Number(b.file_size_limit),
      GLOBAL_FILE_SIZE_LIMIT,
    );
    const allowed: string[] | null = b.allowed_mime_types;
    const declaredType = req.headers.get("content-type") ??
      "application/octet-stream";
    const multipart = declaredType.startsWith("multipart/form-data");
    // A multipart body also carries boundaries and small fields; its file is
    // checked against the limit itself once the body is parsed.
    const cap = multipart ? limit + MULTIPART_OVERHEAD : limit;
    const declaredLength = Number(req.headers.get("content-length"));
    if (declaredLength > cap) return tooLarge();
    if (!multipart && !mimeAllowed(allowed, bareType(declaredType))) {
      return mimeRefused(bareType(declaredType));
    }
    const upsert = replace || req.headers.get("x-upsert") === "true";
    const refusal = await this.#mayWrite(claims, bucket, path, upsert, {
      mimetype: multipart ? null : bareType(declaredType),
      contentLength: Number.isFinite(declaredLength) ? declaredLength : null,
    });
    if (refusal) return refusal;

    const body = await readAtMost(req.body, cap);
    if (!body) return tooLarge();
    let bytes: Uint8Array<ArrayBuffer> = body;
    let type = bareType(declaredType);
    if (multipart) {
      const file = multipartFile(body, declaredType);
      if (!file) {
        return storageError(
          400,
          "InvalidRequest",
          "Invalid Input",
          "No content provided",
        );
      }
      if (file.bytes.length > limit) return tooLarge();
      bytes = file.bytes;
      type = bareType(file.type);
      if (!mimeAllowed(allowed, type)) return mimeRefused(type);
    }
    const metadata = {
      size: bytes.length,
      mimetype: type,
      cacheControl: `max-age=${
        req.headers.get("cache-control")?.match(/\d+/)?.[0] ?? "3600"
      }`,
      lastModified: new Date().toISOString(),
    };
    try {
      // Written again for real: the name may have been taken since the probe.
      const id = await this.#asCaller(claims, async (tx) => {
        const rows = await this.#writeRow(
          tx,
          claims,
          bucket,
          path,
          upsert,
          metadata,
        );
        const file = this.#file(bucket, path);
        await Deno.mkdir(file.slice(0, file.lastIndexOf("/")), {
          recursive: true,
        });
        await Deno.writeFile(file, bytes);
        return rows[0].id as string;
      });
      return new Response(
        JSON.stringify({ Key: `${bucket}/${path}`, Id: id }),
        {
          headers: { "content-type": "application/json" },
        },
      );
    } catch (err) {
      const refusal = writeRefusal(err);
      if (refusal) return refusal;
      throw err;
    }
  }

  /** The stored bytes of an object whose row the caller could see, or 404. */
  async #serve(
    bucket: string,
    path: string,
    row: { metadata?: { mimetype?: string } } | undefined,
  ): Promise<Response> {
    if (!row) return notFound();
    let bytes: Uint8Array<ArrayBuffer>;
    try {
      bytes = await Deno.readFile(this.#file(bucket, path));
    } catch {
      return notFound();
    }
    const stored = bareType(
      row.metadata?.mimetype ?? "application/octet-stream",
    );
    // As Storage does (renderer.ts, normalizeContentType): never text/html.
    const type = stored === "text/html" ? "text/plain" : stored;
    const headers = new Headers({
      "content-type": type,
      "content-length": String(bytes.length),
      "x-content-type-options": "nosniff",
    });
    if (!INLINE_TYPES.has(type)) {
      // Anything a browser could run (HTML, SVG, XML, PDF, …) is saved, not
      // shown, and runs nothing even if shown: the API origin holds tokens.
      headers.set("content-disposition", attachment(path));
      headers.set("content-security-policy", "default-src 'none'; sandbox");
    }
    return new Response(bytes, { headers });
  }

  /** An object's row, read as the owner (for public and signed downloads). */
  async #stored(bucket: string, path: string) {
    const [row] = await this
      .db`select metadata from storage.objects where bucket_id = ${bucket} and name = ${path}`;
    return row;
  }

  async #visible(claims: Claims, bucket: string, path: string) {
    const rows = await this.#asCaller(
      claims,
      (tx) =>
        tx`select metadata from storage.objects where bucket_id = ${bucket} and name = ${path}`,
    );
    return rows[0];
  }

  async #download(
    claims: Claims,
    bucket: string,
    path: string,
  ): Promise<Response> {
    return await this.#serve(
      bucket,
      path,
      await this.#visible(claims, bucket, path),
    );
  }

  async #publicDownload(bucket: string, path: string): Promise<Response> {
    const b = await this.#bucket(bucket);
    if (!b || !b.public) return noBucket();
    return await this.#serve(bucket, path, await this.#stored(bucket, path));
  }

  async #sign(
    req: Request,
    claims: Claims,
    bucket: string,
    path: string,
  ): Promise<Response> {
    const body = await req.json().catch(() => null);
    const expiresIn = body?.expiresIn;
    // A JSON number of whole seconds, 1 to a year: 1e308 or 1.5 or "60" is
    // refused, not turned into a URL that never expires or an invalid token.
    if (
      typeof expiresIn !== "number" || !Number.isInteger(expiresIn) ||
      expiresIn < 1 || expiresIn > MAX_SIGNED_URL_SECONDS
    ) {
      return storageError(
        400,
        "InvalidParameter",
        "Invalid Input",
        `expiresIn must be a whole number of seconds from 1 to ${MAX_SIGNED_URL_SECONDS}`,
      );
    }
    if (!(await this.#visible(claims, bucket, path))) return notFound();
    const now = Math.floor(Date.now() / 1000);
    const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${
      b64url(
        JSON.stringify({
          url: `${bucket}/${path}`,
          iat: now,
          exp: now + expiresIn,
        }),
      )
    }`;
    const sig = new Uint8Array(
      await crypto.subtle.sign("HMAC", await this.#hmacKey, enc.encode(input)),
    );
    const token = `${input}.${b64url(sig)}`;
    const encoded = path.split("/").map(encodeURIComponent).join("/");
    return new Response(
      JSON.stringify({
        signedURL: `/object/sign/${bucket}/${encoded}?token=${token}`,
      }),
      {
        headers: { "content-type": "application/json" },
      },
    );
  }

  async #signedDownload(
    bucket: string,
    path: string,
    url: URL,
  ): Promise<Response> {
    const token = url.searchParams.get("token");
    if (!token) {
      return storageError(
        400,
        "InvalidSignature",
        "Invalid Input",
        "querystring must have required property 'token'",
      );
    }
    const parts = token.split(".");
    const claims = parts.length === 3 ? await this.verify(token) : null;
    if (!claims) {
      // Tell an expired signature from a forged one, as Storage does.
      try {
        const body = JSON.parse(dec.decode(b64urlDecode(parts[1] ?? "")));
        const genuine = await crypto.subtle.verify(
          "HMAC",
          await this.#hmacKey,
          b64urlDecode(parts[2] ?? ""),
          enc.encode(`${parts[0]}.${parts[1]}`),
        );
        if (
          genuine && typeof body.exp === "number" &&
          body.exp < Date.now() / 1000
        ) {
          return storageError(
            400,
            "ExpiredToken",
            "InvalidJWT",
            "The provided token has expired.",
          );
        }
      } catch { /* fall through */ }
      return storageError(
        400,
        "InvalidSignature",
        "InvalidJWT",
        "Invalid signature",
      );
    }
    if (claims.url !== `${bucket}/${path}`) {
      return storageError(
        400,
        "InvalidSignature",
        "InvalidSignature",
        "Invalid signature",
      );
    }
    return await this.#serve(bucket, path, await this.#stored(bucket, path));
  }

  async #remove(
    claims: Claims,
    bucket: string,
    paths: string[],
  ): Promise<Response> {
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== "string")) {
      return storageError(
        400,
        "InvalidRequest",
        "Invalid Input",
        "body must have required property 'prefixes'",
      );
    }
    const removed = await this.#asCaller(
      claims,
      (tx) =>
        tx`delete from storage.objects where bucket_id = ${bucket} and name = any(${paths})
         returning id::text as id, name, bucket_id, metadata, created_at, updated_at`,
    );
    for (const r of removed) {
      await Deno.remove(this.#file(bucket, r.name)).catch(() => {});
    }
    return new Response(JSON.stringify(removed), {
      headers: { "content-type": "application/json" },
    });
  }
}
