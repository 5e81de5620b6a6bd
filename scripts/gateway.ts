// The local API gateway: the URL shape of a Supabase project on one port.
//
//   /functions/v1/<name>[/…]         each built function's exported handler
//   /rest/v1/*                       proxied to the REST server (postrust)
//   /auth/v1/.well-known/jwks.json   the stack's public signing keys
//   /storage/v1/object/*             the Storage API subset in storage.ts
//   /health                          200 once everything is loaded
//
// It also stands in for pg_net's background worker: requests queued by
// net.http_post() (see supabase/local/bootstrap.sql) are sent, and each
// outcome is written to net._http_response.
//
// Env: API_PORT, REST_PORT, STACK_DIR (with keys.json and env from keys.ts).
import postgres from "postgres";
import { publicJwks, readEnvFile, readKeys } from "./jwt.ts";
import { Storage } from "./storage.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const apiPort = Number(Deno.env.get("API_PORT") ?? "54321");
const restPort = Number(Deno.env.get("REST_PORT") ?? "54330");
const stackDir = Deno.env.get("STACK_DIR") ?? `${root}/.stack`;
const restUrl = `http://127.0.0.1:${restPort}`;

// Functions read their configuration from the environment, as on the platform.
const stackEnv = readEnvFile(`${stackDir}/env`);
for (const [k, v] of Object.entries(stackEnv)) {
  Deno.env.set(k, v);
}
// Inside the platform a function reaches the REST API without leaving its
// network; locally the gateway points functions straight at the REST server.
Deno.env.set("POSTGREST_URL", restUrl);
const keys = readKeys(stackDir);
const jwks = JSON.stringify(publicJwks(keys));

const db = postgres(stackEnv.SUPABASE_DB_URL, { max: 8, onnotice: () => {} });
const storage = new Storage(db, keys, `${stackDir}/storage`);

type Handler = (req: Request) => Promise<Response>;
const functions = new Map<string, Handler>();
for (const entry of Deno.readDirSync(`${root}/functions`)) {
  if (!entry.isDirectory || entry.name.startsWith("_")) continue;
  const dir = `${root}/functions/${entry.name}`;
  try {
    Deno.statSync(`${dir}/pkg`);
  } catch {
    console.error(`skipping ${entry.name}: not built (run scripts/build)`);
    continue;
  }
  const mod = await import(`file://${dir}/index.ts`);
  functions.set(entry.name, mod.handler as Handler);
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

async function proxyRest(req: Request, path: string): Promise<Response> {
  const url = new URL(req.url);
  const headers = new Headers(req.headers);
  const apikey = headers.get("apikey");
  if (!apikey) {
    return json(401, {
      message: "No API key found in request",
      hint: "No `apikey` request header or url param was found.",
    });
  }
  if (!headers.has("authorization")) {
    headers.set("authorization", `Bearer ${apikey}`);
  }
  headers.delete("host");
  // supabase-js sends a bulk insert's `columns` quoted ("a","b"), as
  // PostgREST accepts; the local REST server takes bare names only.
  const columns = url.searchParams.get("columns");
  if (columns !== null) {
    url.searchParams.set("columns", columns.replaceAll('"', ""));
  }
  // A query string is form-encoded: supabase-js (URLSearchParams) sends a
  // space as "+", which PostgREST reads as a space and the local REST server
  // would take literally (a search for "Sleek Mug" would find nothing). A
  // literal plus arrives as %2B, so every raw "+" is a space.
  const search = url.search.replaceAll("+", "%20");
  const upstream = await fetch(`${restUrl}${path}${search}`, {
    method: req.method,
    headers,
    body: req.body,
    redirect: "manual",
  });
  return new Response(upstream.body, {
    status: upstream.status,
    headers: upstream.headers,
  });
}

Deno.serve(
  { hostname: "127.0.0.1", port: apiPort, onListen: () => {} },
  async (req) => {
    const { pathname } = new URL(req.url);
    if (pathname === "/health") {
      return json(200, { ok: true, functions: [...functions.keys()] });
    }
    if (pathname === "/auth/v1/.well-known/jwks.json") {
      return new Response(jwks, {
        headers: { "content-type": "application/json" },
      });
    }
    if (pathname.startsWith("/storage/v1/")) {
      return await storage.handle(req, pathname.slice("/storage/v1".length));
    }
    if (pathname.startsWith("/rest/v1/")) {
      return await proxyRest(req, pathname.slice("/rest/v1".length));
    }
    // A function serves its own path and everything below it (`/callback`).
    const fn = pathname.match(/^\/functions\/v1\/([a-z0-9-]+)(\/.*)?$/);
    if (fn) {
      const handler = functions.get(fn[1]);
      if (handler) return await handler(req);
      return json(404, {
        error: {
          code: "NOT_FOUND",
          message: `no function named ${fn[1]}`,
          details: null,
        },
      });
    }
    return json(404, {
      error: { code: "NOT_FOUND", message: "no such route", details: null },
    });
  },
);
console.error(
  `gateway on http://127.0.0.1:${apiPort} (functions: ${
    [...functions.keys()].join(", ")
  })`,
);

// --- pg_net stand-in -----------------------------------------------------------
let draining = false;

async function drainNetQueue() {
  if (draining) return;
  draining = true;
  try {
    for (;;) {
      const batch = await db`delete from net.http_request_queue where id in (
          select id from net.http_request_queue order by id limit 20 for update skip locked)
        returning id, method, url, headers, convert_from(body, 'UTF8') as body, timeout_milliseconds`;
      if (batch.length === 0) return;
      await Promise.all(batch.map(async (r) => {
        let outcome;
        try {
          const res = await fetch(r.url, {
            method: r.method,
            headers: r.headers ?? {},
            body: r.body,
            signal: AbortSignal.timeout(r.timeout_milliseconds),
          });
          outcome = {
            status_code: res.status,
            content_type: res.headers.get("content-type"),
            headers: Object.fromEntries(res.headers),
            content: await res.text(),
            timed_out: false,
            error_msg: null,
          };
        } catch (err) {
          const timedOut = err instanceof DOMException &&
            err.name === "TimeoutError";
          outcome = {
            status_code: null,
            content_type: null,
            headers: null,
            content: null,
            timed_out: timedOut,
            error_msg: String(err),
          };
        }
        await db`insert into net._http_response ${
          db({
            id: r.id,
            ...outcome,
            headers: outcome.headers ? db.json(outcome.headers) : null,
          })
        }`;
      }));
    }
  } catch (err) {
    console.error("pg_net stand-in:", err);
  } finally {
    draining = false;
  }
}

await db.listen("net_http_request", () => drainNetQueue());
setInterval(drainNetQueue, 1000);
