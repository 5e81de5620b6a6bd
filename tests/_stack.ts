// What every end-to-end test needs: the running stack's settings, a superuser
// SQL connection for fixtures and assertions, user tokens, and supabase-js
// clients acting as those users.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import assert from "node:assert/strict";
import postgres from "postgres";
import {
  readEnvFile,
  readKeys,
  signEs256,
  signHs256,
  userToken,
} from "../scripts/jwt.ts";

const root = new URL("..", import.meta.url).pathname;
export const stackDir = Deno.env.get("STACK_DIR") ?? `${root}.stack`;
export const env = readEnvFile(`${stackDir}/env`);
export const keys = readKeys(stackDir);
export const url = env.SUPABASE_URL;

/** Superuser connection: fixtures and ground truth, never the code under test. */
export const sql = postgres(env.SUPABASE_DB_URL, {
  max: 4,
  onnotice: () => {},
});

export function clientFor(token?: string): SupabaseClient {
  return createClient(url, env.SUPABASE_ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
  });
}

export interface Tenant {
  id: string;
  userId: string;
  token: string;
  db: SupabaseClient;
  warehouses: string[];
  products: string[];
  clientId: string;
}

/**
 * A fresh tenant with one user, `warehouses` warehouses (priority 1, 2, …),
 * `products` products each stocked `stock` in every warehouse, and a client
 * with `creditLimit` on net_30.
 */
export async function makeTenant(opts: {
  warehouses?: number;
  products?: number;
  stock?: number;
  creditLimit?: number | null;
  reorderPoint?: number | null;
  /** Business transactions the tenant may run at once in the database; tests
   * of row locking raise it so that requests really overlap there. */
  maxConcurrent?: number;
} = {}): Promise<Tenant> {
  const {
    warehouses = 1,
    products = 2,
    stock = 100,
    creditLimit = 1000,
    reorderPoint = null,
    maxConcurrent,
  } = opts;
  const tag = crypto.randomUUID().slice(0, 8);
  const [user] =
    await sql`insert into auth.users (email) values (${`u-${tag}@e2e.test`}) returning id::text`;
  const [tenant] = await sql`insert into public.tenants (slug, business_name)
    values (${`t-${tag}`}, ${`Tenant ${tag}`}) returning id::text`;
  await sql`insert into public.tenant_users (tenant_id, user_id, email)
    values (${tenant.id}, ${user.id}, ${`u-${tag}@e2e.test`})`;
  if (maxConcurrent) {
    await sql`insert into public.tenant_capacity_policies (tenant_id, max_concurrent)
      values (${tenant.id}, ${maxConcurrent})`;
  }
  const whs: string[] = [];
  for (let i = 1; i <= warehouses; i++) {
    const [w] =
      await sql`insert into public.warehouses (tenant_id, name, priority)
      values (${tenant.id}, ${`W${i}`}, ${i}) returning id::text`;
    whs.push(w.id);
  }
  const prods: string[] = [];
  for (let i = 1; i <= products; i++) {
    const [p] = await sql`insert into public.products (tenant_id, name, sku)
      values (${tenant.id}, ${`Product ${i}`}, ${`SKU-${tag}-${i}`}) returning id::text`;
    prods.push(p.id);
    for (const w of whs) {
      await sql`insert into public.wholesale_inventory
        (tenant_id, product_id, warehouse_id, quantity, reorder_point)
        values (${tenant.id}, ${p.id}, ${w}, ${stock}, ${reorderPoint})`;
    }
  }
  const [client] = await sql`insert into public.wholesale_clients
    (tenant_id, name, email, phone, address, credit_limit, payment_terms)
    values (${tenant.id}, ${`Client ${tag}`}, ${`c-${tag}@client.test`},
            '+15555550123', '1 Test Road', ${creditLimit}, 'net_30')
    returning id::text`;
  const token = await userToken(
    keys,
    { id: user.id, email: `u-${tag}@e2e.test` },
    url,
  );
  return {
    id: tenant.id,
    userId: user.id,
    token,
    db: clientFor(token),
    warehouses: whs,
    products: prods,
    clientId: client.id,
  };
}

export function order(t: Tenant, overrides: Record<string, unknown> = {}) {
  return {
    client_id: t.clientId,
    items: [{ product_id: t.products[0], quantity: 1, unit_price: 10 }],
    payment_terms: "prepaid",
    delivery_method: "pickup",
    ...overrides,
  };
}

export interface Outcome {
  status: number;
  // deno-lint-ignore no-explicit-any
  body: any;
  headers: Headers;
}

/** Calls a function with supabase-js, and returns status and body whatever the outcome. */
export async function invoke(
  db: SupabaseClient,
  name: string,
  body: unknown,
  headers: Record<string, string> = {},
  method: "POST" | "GET" | "PUT" = "POST",
): Promise<Outcome> {
  const { data, error, response } = await db.functions.invoke(name, {
    body: body as Record<string, unknown>,
    headers,
    method,
  });
  if (error) {
    // deno-lint-ignore no-explicit-any
    const res: Response | undefined = (error as any).context;
    if (!res || typeof res.status !== "number") throw error;
    return { status: res.status, body: await res.json(), headers: res.headers };
  }
  return { status: response!.status, body: data, headers: response!.headers };
}

export async function stockOf(productId: string): Promise<number> {
  const [row] = await sql`select coalesce(sum(quantity), 0)::float8 as q
    from public.wholesale_inventory where product_id = ${productId}`;
  return row.q;
}

export async function ordersOf(tenantId: string): Promise<number> {
  const [row] = await sql`select count(*)::int as n from public.wholesale_orders
    where tenant_id = ${tenantId}`;
  return row.n;
}

/** A supplier of `t`; `email` null means it has none. */
export async function makeSupplier(
  t: Tenant,
  email: string | null = `s-${crypto.randomUUID().slice(0, 8)}@supplier.test`,
): Promise<string> {
  const [s] = await sql`insert into public.suppliers
    (tenant_id, name, email, address, payment_terms, contact_person)
    values (${t.id}, 'Supplier & Sons', ${email}, '9 Quay Street', 'net_30', 'Robin')
    returning id::text`;
  return s.id;
}

/**
 * The request boundary every user-facing function shares, checked through the
 * gateway: malformed JSON, a non-object body, an oversized body, a bad
 * Idempotency-Key, a wrong method, CORS preflight, and missing, anon or
 * expired tokens. Each is a 4xx in the error envelope; `changed` must then
 * still report nothing changed.
 */
export async function assertBoundary(
  t: Tenant,
  fn: string,
  valid: Record<string, unknown>,
  changed: () => Promise<boolean>,
  textField?: string,
) {
  const post = (body: string, headers: Record<string, string> = {}) =>
    fetch(`${url}/functions/v1/${fn}`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.token}`,
        "content-type": "application/json",
        ...headers,
      },
      body,
    });
  const expect = async (res: Response, status: number, code: string) => {
    const body = await res.json();
    if (res.status !== status || body?.error?.code !== code) {
      throw new Error(
        `${fn}: want ${status} ${code}, got ${res.status} ${
          JSON.stringify(body)
        }`,
      );
    }
  };
  await expect(await post('{"a": '), 400, "INVALID_JSON");
  await expect(await post("[1]"), 400, "INVALID_JSON");
  await expect(
    await post(JSON.stringify({ ...valid, notes: "x".repeat(300 * 1024) })),
    413,
    "PAYLOAD_TOO_LARGE",
  );
  await expect(
    await post(JSON.stringify(valid), { "idempotency-key": "has spaces" }),
    400,
    "VALIDATION_ERROR",
  );
  await expect(
    await post(JSON.stringify(valid), { "idempotency-key": "has\ttab" }),
    400,
    "VALIDATION_ERROR",
  );
  if (textField) {
    // A NUL in free text is 400 naming the field, never a 500 from Postgres.
    const res = await post(
      JSON.stringify(withValue(valid, textField, "a\u0000b")),
    );
    const body = await res.clone().json();
    if (!body?.error?.details?.[textField]) {
      throw new Error(`${fn}: a NUL in ${textField}: ${JSON.stringify(body)}`);
    }
    await expect(res, 400, "VALIDATION_ERROR");
  }
  await expect(
    await fetch(`${url}/functions/v1/${fn}`, {
      method: "GET",
      headers: { authorization: `Bearer ${t.token}` },
    }),
    405,
    "METHOD_NOT_ALLOWED",
  );
  const pre = await fetch(`${url}/functions/v1/${fn}`, {
    method: "OPTIONS",
    headers: {
      origin: "https://app.example",
      "access-control-request-method": "POST",
    },
  });
  await pre.body?.cancel();
  if (pre.status !== 204) throw new Error(`${fn}: preflight ${pre.status}`);
  const now = Math.floor(Date.now() / 1000);
  const expired = await signEs256(
    { sub: t.userId, role: "authenticated", iat: now - 7200, exp: now - 3600 },
    keys.es256_private,
    keys.es256_public.kid,
  );
  for (const token of [undefined, env.SUPABASE_ANON_KEY, expired]) {
    await expect(
      await fetch(`${url}/functions/v1/${fn}`, {
        method: "POST",
        headers: token ? { authorization: `Bearer ${token}` } : {},
        body: JSON.stringify(valid),
      }),
      401,
      "UNAUTHORIZED",
    );
  }
  if (await changed()) throw new Error(`${fn}: a refused request changed data`);
}

/** A deep copy of `body` with `path` (`notes`, `items[0].reason`) set to `value`. */
export function withValue(
  body: Record<string, unknown>,
  path: string,
  value: unknown,
): Record<string, unknown> {
  const copy = structuredClone(body);
  const keys = path.replace(/\[(\d+)\]/g, ".$1").split(".");
  // deno-lint-ignore no-explicit-any
  let at: any = copy;
  for (const k of keys.slice(0, -1)) at = at[k];
  at[keys[keys.length - 1]] = value;
  return copy;
}

// --- the provider sandbox ------------------------------------------------------

/** What the sandbox accepted for `provider`. */
// deno-lint-ignore no-explicit-any
export async function sent(provider: string): Promise<any[]> {
  const res = await fetch(
    `${env.SANDBOX_URL}/_sandbox/sent?provider=${provider}`,
  );
  return await res.json();
}
export async function faults(spec: Record<string, unknown>) {
  const res = await fetch(`${env.SANDBOX_URL}/_sandbox/faults`, {
    method: "POST",
    body: JSON.stringify(spec),
  });
  await res.body?.cancel();
}
export async function resetSandbox() {
  const res = await fetch(`${env.SANDBOX_URL}/_sandbox`, { method: "DELETE" });
  await res.body?.cancel();
}
/** Polls `probe` until it returns a value, for up to `seconds`. */
export async function until<T>(
  what: string,
  seconds: number,
  probe: () => Promise<T | undefined>,
): Promise<T> {
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Runs a tool (pdftotext, pdftoppm, python3…); its stdout, or a throw. */
export async function run(
  cmd: string,
  args: string[],
  stdin?: string,
): Promise<string> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** Downloads the file behind a signed URL into a temporary file, checking
 * its content type and, for a PDF, its magic. */
export async function download(
  signedUrl: string,
  contentType: string,
): Promise<string> {
  const res = await fetch(signedUrl);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), contentType);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const pdf = contentType === "application/pdf";
  if (pdf) assert.equal(new TextDecoder().decode(bytes.slice(0, 5)), "%PDF-");
  const file = await Deno.makeTempFile({ suffix: pdf ? ".pdf" : ".xlsx" });
  await Deno.writeFile(file, bytes);
  return file;
}

export { signEs256, signHs256, userToken };
