// The local API gateway: the URL shape of a Supabase project on one port.
//
//   /functions/v1/<name>             each built function's exported handler
//   /rest/v1/*                       proxied to the REST server (postrust)
//   /auth/v1/.well-known/jwks.json   the stack's public signing keys
//   /health                          200 once everything is loaded
//
// Env: API_PORT, REST_PORT, STACK_DIR (with keys.json and env from keys.ts).
import { publicJwks, readEnvFile, readKeys } from "./jwt.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const apiPort = Number(Deno.env.get("API_PORT") ?? "54321");
const restPort = Number(Deno.env.get("REST_PORT") ?? "54330");
const stackDir = Deno.env.get("STACK_DIR") ?? `${root}/.stack`;
const restUrl = `http://127.0.0.1:${restPort}`;

// Functions read their configuration from the environment, as on the platform.
for (const [k, v] of Object.entries(readEnvFile(`${stackDir}/env`))) {
  Deno.env.set(k, v);
}
// Inside the platform a function reaches the REST API without leaving its
// network; locally the gateway points functions straight at the REST server.
Deno.env.set("POSTGREST_URL", restUrl);
const jwks = JSON.stringify(publicJwks(readKeys(stackDir)));

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
  const upstream = await fetch(`${restUrl}${path}${url.search}`, {
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
    if (pathname.startsWith("/rest/v1/")) {
      return await proxyRest(req, pathname.slice("/rest/v1".length));
    }
    const fn = pathname.match(/^\/functions\/v1\/([a-z0-9-]+)\/?$/);
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
