// The thin loader every function uses: CORS, Request → wasm → Response.
// No business logic lives here; the wasm module does all of it.

/** What a function's wasm-bindgen module exports (see shared::export_endpoint!). */
export interface WasmFunction {
  configure(envJson: string): void;
  body_limit(): number;
  /** The methods the function serves, such as "GET, POST". */
  methods(): string;
  /** Resolves to [status, headers as JSON, body bytes]. */
  handle(
    method: string,
    url: string,
    headersJson: string,
    body: Uint8Array,
  ): Promise<[number, string, Uint8Array]>;
  take_background(): Promise<unknown>[];
}

// Supabase's edge runtime keeps an isolate alive for promises given to it.
declare const EdgeRuntime:
  | { waitUntil(promise: Promise<unknown>): void }
  | undefined;

/** CORS headers for a function serving `methods` (such as "GET, POST"). */
export function corsHeaders(methods: string): Record<string, string> {
  return {
    "access-control-allow-origin": "*",
    "access-control-allow-headers":
      "authorization, x-client-info, apikey, content-type, idempotency-key",
    "access-control-allow-methods": `${methods}, OPTIONS`,
    "access-control-expose-headers":
      "idempotent-replayed, retry-after, ratelimit, ratelimit-policy, content-disposition",
    "access-control-max-age": "86400",
  };
}

/** Reads at most `cap` bytes of the body; the wasm side refuses anything longer than its limit. */
async function readCapped(req: Request, cap: number): Promise<Uint8Array> {
  if (!req.body) return new Uint8Array(0);
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > cap) {
    await req.body.cancel();
    return new Uint8Array(cap);
  }
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (size < cap) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  if (size >= cap) await reader.cancel();
  const out = new Uint8Array(Math.min(size, cap));
  let offset = 0;
  for (const chunk of chunks) {
    const part = chunk.subarray(0, out.length - offset);
    out.set(part, offset);
    offset += part.length;
    if (offset === out.length) break;
  }
  return out;
}

function envelope(
  cors: Record<string, string>,
  status: number,
  code: string,
  message: string,
): Response {
  return new Response(
    JSON.stringify({ error: { code, message, details: null } }),
    {
      status,
      headers: { ...cors, "content-type": "application/json" },
    },
  );
}

/** Configures the module from the environment once, and returns the request handler. */
export function makeHandler(
  wasm: WasmFunction,
): (req: Request) => Promise<Response> {
  // The module reads what it needs; see shared/src/config.rs.
  wasm.configure(JSON.stringify(Deno.env.toObject()));
  const cap = wasm.body_limit() + 1;
  const cors = corsHeaders(wasm.methods());

  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") {
      return new Response(null, { status: 204, headers: cors });
    }
    try {
      const body = await readCapped(req, cap);
      const headers = JSON.stringify(Object.fromEntries(req.headers));
      const [status, wireHeaders, bytes] = await wasm.handle(
        req.method,
        req.url,
        headers,
        body,
      );
      // Work the function started for after the response (see spawn_background).
      const background = wasm.take_background();
      if (background.length && typeof EdgeRuntime !== "undefined") {
        EdgeRuntime.waitUntil(Promise.allSettled(background));
      }
      return new Response(bytes.length ? bytes : null, {
        status,
        headers: { ...cors, ...JSON.parse(wireHeaders) },
      });
    } catch (err) {
      // A trap in the module is a bug: log it, tell the client nothing more.
      console.error("function failed:", err);
      return envelope(cors, 500, "INTERNAL_ERROR", "internal error");
    }
  };
}
