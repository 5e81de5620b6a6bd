// What every end-to-end test needs: the running stack's settings, a superuser
// SQL connection for fixtures and assertions, user tokens, and supabase-js
// clients acting as those users.
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
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
} = {}): Promise<Tenant> {
  const {
    warehouses = 1,
    products = 2,
    stock = 100,
    creditLimit = 1000,
    reorderPoint = null,
  } = opts;
  const tag = crypto.randomUUID().slice(0, 8);
  const [user] =
    await sql`insert into auth.users (email) values (${`u-${tag}@e2e.test`}) returning id::text`;
  const [tenant] = await sql`insert into public.tenants (slug, business_name)
    values (${`t-${tag}`}, ${`Tenant ${tag}`}) returning id::text`;
  await sql`insert into public.tenant_users (tenant_id, user_id, email)
    values (${tenant.id}, ${user.id}, ${`u-${tag}@e2e.test`})`;
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

export { signEs256, signHs256 };
