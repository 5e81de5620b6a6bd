// The provider sandbox: test infrastructure that speaks Resend, Twilio, Klaviyo,
// Slack, Stripe and Shopify's real wire formats on one local port, so clients and
// the dispatcher are tested against real HTTP. Production talks to the providers.
//
//   POST /resend/emails                                      Resend
//   POST /resend/emails/batch                                Resend batch (1 to 100 emails; all or nothing,
//                                                            or x-batch-validation: permissive)
//   POST /twilio/2010-04-01/Accounts/{sid}/Messages.json     Twilio (create)
//   GET  /twilio/2010-04-01/Accounts/{sid}/Messages.json     Twilio (list, To / DateSent> filters)
//   POST /klaviyo/api/profile-import/ , /klaviyo/api/events/ Klaviyo
//   POST /slack/services/{path}                              Slack incoming webhook
//   POST /stripe/v1/payment_intents, GET …/{id}              Stripe PaymentIntents
//   POST /stripe/v1/refunds, GET /stripe/v1/refunds          Stripe Refunds (form-encoded,
//                                                            Idempotency-Key as Stripe keeps it)
//   GET  /shopify/{shop}/admin/oauth/authorize               Shopify OAuth (302 with code, hmac,
//                                                            host, shop, state, timestamp)
//   POST /shopify/{shop}/admin/oauth/access_token            Shopify token exchange
//   POST /shopify/{shop}/admin/api/{version}/graphql.json    Shopify GraphQL Admin: products, orders,
//                                                            customers, abandonedCheckouts, cost
//                                                            throttling, bulk operations, webhooks
//   DELETE /shopify/{shop}/admin/api_permissions/current.json  Shopify uninstall
//   GET  /shopify/_bulk/{n}.jsonl                            Shopify bulk results
//   ({shop} is <name>.myshopify.com: SHOPIFY_BASE_URL is http://127.0.0.1:<port>/shopify/{shop};
//   scripts/sandbox_shopify.ts has the details)
//
// Inspection and control (like Inbucket in Supabase's local stack):
//   GET    /_sandbox/sent[?provider=resend|twilio|klaviyo|slack|stripe]   what was accepted
//   GET    /_sandbox/stats                                          counters per outcome
//   POST   /_sandbox/faults   {"provider"?, "mode": "500"|"429"|"hang"|"reset"|"hang_after_accept",
//                             "count": N}  or  {"provider"?, "probability": 0.3, "seed": 42,
//                             "modes": [...], "retry_after": 1}; provider "shopify" applies to
//                             its GraphQL and token calls
//   POST   /_sandbox/limits   {"resend": requests per second, ...}: a real rate limit per
//                             provider (a token bucket, burst = the rate), answered as the
//                             provider does: 429 with Retry-After and ratelimit-* headers
//   POST   /_sandbox/webhooks {"enabled"?, "delay_ms"?, "seed"?, "resend"?: {"delivered", "bounced",
//                             "complained"}, "twilio"?: {"delivered", "undelivered", "failed"}}:
//                             the outcome mix of the signed webhooks sent back for each accepted
//                             email (to the stack's resend-webhook) and each SMS with a
//                             StatusCallback (to that URL), as Resend and Twilio send them
//   POST   /_sandbox/hooks/{name}  a tenant's webhook endpoint: records the call; GET /_sandbox/hooks
//                             lists them; /_sandbox/hooks/redirect?to=URL answers 307 to URL
//   POST   /_sandbox/twilio/inbound {"from", "body", "to"?}: an SMS from a phone, posted signed
//                             to the stack's twilio-webhook; answers with what the function said
//   POST   /_sandbox/shopify/shops {"shop", "products", "customers", "orders", "checkouts",
//                             "seed"?}: regenerate a store with these sizes (any valid domain is a
//                             store, generated on first use; sandbox-big.myshopify.com is large)
//   POST   /_sandbox/shopify/throttle {"maximumAvailable"?, "restoreRate"?, "currentlyAvailable"?,
//                             "bulkMsPerObject"?, "objectCost"?}: the GraphQL cost bucket and
//                             model, and bulk run time
//   POST   /_sandbox/shopify/bulk_fault {"mode": "FAILED"|"partial"}: the next bulk operation fails
//   POST   /_sandbox/shopify/{shop}/token {"scope"?}: an access token without the OAuth dance
//   POST   /_sandbox/shopify/{shop}/send {"topic", "payload"?, "webhook_id"?, "tamper"?, "uri"?,
//                             "customer_id"?, "id"?}: a signed webhook from the store's data, to
//                             uri or the topic's subscription; answers what the receiver said
//   POST   /_sandbox/shopify/{shop}/mutate {"update_products"?, "update_orders"?, "create_orders"?,
//                             "update_customers"?, "update_checkouts"?, "delete_products"?,
//                             "remove_variants"?}: changes records, answers their ids
//   GET    /_sandbox/shopify/{shop}/ids?resource=products|variants|orders|line_items|customers|
//                             checkouts|checkout_line_items
//   GET    /_sandbox/shopify/{shop}/stats, GET /_sandbox/shopify/{shop}/webhooks
//   DELETE /_sandbox          forget everything: sent, idempotency keys, faults, limits, and the
//                             Shopify stores, tokens and throttle settings
//
// Credentials come from the environment (SANDBOX_RESEND_KEY, SANDBOX_TWILIO_SID,
// SANDBOX_TWILIO_TOKEN, SANDBOX_KLAVIYO_KEY, SANDBOX_SLACK_PATH, SANDBOX_STRIPE_KEY,
// SANDBOX_SHOPIFY_API_KEY, SANDBOX_SHOPIFY_API_SECRET) and are checked as the providers check
// them. Port: SANDBOX_PORT. SANDBOX_STACK_ENV names the stack's env file, for where webhooks go
// (SUPABASE_URL) and Resend's signing secret (RESEND_WEBHOOK_SECRET).

import {
  shopifyControl,
  shopifyCustomApp,
  type ShopifyFaults,
  shopifyHandle,
  shopifyReset,
} from "./sandbox_shopify.ts";

type Provider =
  | "resend"
  | "twilio"
  | "klaviyo"
  | "slack"
  | "stripe"
  | "shopify";
type FaultMode = "500" | "429" | "hang" | "reset" | "hang_after_accept";

const port = Number(Deno.env.get("SANDBOX_PORT") ?? "54340");
const cfg = {
  resendKey: Deno.env.get("SANDBOX_RESEND_KEY") ?? "re_sandbox_key",
  twilioSid: Deno.env.get("SANDBOX_TWILIO_SID") ??
    "ACsandbox0000000000000000000000000",
  twilioToken: Deno.env.get("SANDBOX_TWILIO_TOKEN") ?? "sandbox_auth_token",
  klaviyoKey: Deno.env.get("SANDBOX_KLAVIYO_KEY") ?? "pk_sandbox_key",
  slackPath: Deno.env.get("SANDBOX_SLACK_PATH") ?? "T000/B000/sandbox",
  stripeKey: Deno.env.get("SANDBOX_STRIPE_KEY") ?? "sk_test_sandbox",
  hangMs: Number(Deno.env.get("SANDBOX_HANG_MS") ?? "15000"),
};

/** KEY='value' lines, as scripts/keys.ts writes the stack's env file. */
function readEnvFile(path: string | undefined): Record<string, string> {
  if (!path) return {};
  try {
    return Object.fromEntries(
      Deno.readTextFileSync(path).split("\n").map((l) =>
        l.match(/^([A-Z0-9_]+)='(.*)'$/)
      ).filter((m) => m).map((m) => [m![1], m![2]]),
    );
  } catch {
    return {};
  }
}
const stackEnv = readEnvFile(Deno.env.get("SANDBOX_STACK_ENV"));
if (stackEnv.SHOPIFY_ADMIN_SHOP && stackEnv.SHOPIFY_ADMIN_ACCESS_TOKEN) {
  shopifyCustomApp(
    stackEnv.SHOPIFY_ADMIN_SHOP,
    stackEnv.SHOPIFY_ADMIN_ACCESS_TOKEN,
  );
}
const functionsUrl = stackEnv.SUPABASE_URL
  ? `${stackEnv.SUPABASE_URL}/functions/v1`
  : undefined;

// Webhooks back to the stack: the outcome mix, and a small queue so a burst
// of accepted messages is reported steadily, as the providers do.
interface Hooks {
  enabled: boolean;
  delayMs: number;
  resend: Record<string, number>;
  twilio: Record<string, number>;
  rng: () => number;
}
const defaultHooks = (): Hooks => ({
  enabled: Boolean(functionsUrl),
  delayMs: 50,
  resend: { delivered: 1 },
  twilio: { delivered: 1 },
  rng: Math.random,
});
let hooks = defaultHooks();
const hookQueue: (() => Promise<void>)[] = [];
let hooksInFlight = 0;

function pick(mix: Record<string, number>): string {
  const total = Object.values(mix).reduce((a, b) => a + b, 0);
  let r = hooks.rng() * total;
  for (const [k, w] of Object.entries(mix)) {
    if ((r -= w) < 0) return k;
  }
  return Object.keys(mix)[0];
}

function pumpHooks() {
  while (hooksInFlight < 4 && hookQueue.length) {
    const job = hookQueue.shift()!;
    hooksInFlight++;
    job().finally(() => {
      hooksInFlight--;
      pumpHooks();
    });
  }
}

/** Posts until a 2xx, three tries a second apart, as a provider retries. */
async function deliverHook(
  kind: string,
  url: string,
  make: () => Promise<RequestInit>,
) {
  for (let attempt = 1; attempt <= 3; attempt++) {
    try {
      const r = await fetch(url, await make());
      await r.body?.cancel();
      if (r.ok) {
        bump(`webhook:${kind}:delivered`);
        return;
      }
      bump(`webhook:${kind}:refused_${r.status}`);
    } catch {
      bump(`webhook:${kind}:unreachable`);
    }
    await sleep(1000);
  }
}

function queueHook(job: () => Promise<void>) {
  hookQueue.push(async () => {
    await sleep(hooks.delayMs);
    await job();
  });
  pumpHooks();
}

const b64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));

/** Resend's events for an accepted email, signed with Standard Webhooks. */
function resendEvents(id: string, email: Record<string, unknown>) {
  const secret = stackEnv.RESEND_WEBHOOK_SECRET;
  if (!hooks.enabled || !functionsUrl || !secret) return;
  const outcome = pick(hooks.resend);
  const types = outcome === "complained"
    ? ["email.delivered", "email.complained"]
    : [`email.${outcome}`];
  // One job per email, so its events arrive in order (delivered, then a
  // complaint), as Resend sends them.
  queueHook(async () => {
    for (const type of types) {
      await deliverHook(
        "resend",
        `${functionsUrl}/resend-webhook`,
        async () => {
          const body = JSON.stringify({
            type,
            created_at: new Date().toISOString(),
            data: {
              email_id: id,
              from: email.from,
              to: Array.isArray(email.to) ? email.to : [email.to],
              subject: email.subject,
              ...(type === "email.bounced"
                ? {
                  bounce: {
                    type: "Permanent",
                    message: "mailbox does not exist",
                  },
                }
                : {}),
            },
          });
          const msgId = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
          const at = Math.floor(Date.now() / 1000);
          const key = await crypto.subtle.importKey(
            "raw",
            Uint8Array.from(
              atob(secret.replace(/^whsec_/, "")),
              (c) => c.charCodeAt(0),
            ),
            { name: "HMAC", hash: "SHA-256" },
            false,
            ["sign"],
          );
          const mac = new Uint8Array(
            await crypto.subtle.sign(
              "HMAC",
              key,
              new TextEncoder().encode(`${msgId}.${at}.${body}`),
            ),
          );
          return {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "webhook-id": msgId,
              "webhook-timestamp": String(at),
              "webhook-signature": `v1,${b64(mac)}`,
            },
            body,
          };
        },
      );
    }
  });
}

/** Twilio's X-Twilio-Signature: HMAC-SHA1 of the URL and the sorted params. */
async function twilioSign(url: string, params: Record<string, string>) {
  const data = url +
    Object.keys(params).sort().map((k) => k + params[k]).join("");
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(cfg.twilioToken),
    { name: "HMAC", hash: "SHA-1" },
    false,
    ["sign"],
  );
  return b64(
    new Uint8Array(
      await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(data)),
    ),
  );
}

async function twilioPost(url: string, params: Record<string, string>) {
  return {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": await twilioSign(url, params),
    },
    body: new URLSearchParams(params).toString(),
  };
}

/** Status callbacks for an accepted SMS: sent, then the outcome. */
function twilioStatus(message: Record<string, unknown>, callback: string) {
  if (!hooks.enabled) return;
  const outcome = pick(hooks.twilio);
  const posts = ["sent", outcome].map((status) => {
    const params: Record<string, string> = {
      AccountSid: String(message.account_sid),
      MessageSid: String(message.sid),
      SmsSid: String(message.sid),
      MessageStatus: status,
      SmsStatus: status,
      To: String(message.to),
      From: String(message.from),
      ApiVersion: "2010-04-01",
    };
    if (status === "undelivered" || status === "failed") {
      params.ErrorCode = status === "failed" ? "30006" : "30003";
    }
    return params;
  });
  queueHook(async () => {
    for (const params of posts) {
      await deliverHook("twilio", callback, () => twilioPost(callback, params));
    }
  });
}

interface Sent {
  provider: Provider;
  id: string;
  at: string;
  body: unknown;
  idempotency_key?: string;
}
let sent: Sent[] = [];
/** Calls to /_sandbox/hooks/…, as received. */
let received: {
  path: string;
  headers: Record<string, string>;
  body: string;
}[] = [];
const stats: Record<string, number> = {};
const bump = (k: string) => (stats[k] = (stats[k] ?? 0) + 1);

// Resend idempotency: key → the payload hash and the response, or "in flight".
let resendKeys = new Map<string, Saved>();
// Batch keys are their own namespace, kept the same way.
let resendBatchKeys = new Map<string, Saved>();

/** A request's payload hash, and its reply once it has one ("in flight" before). */
interface Saved {
  hash: string;
  reply?: unknown;
}

/**
 * Resend's idempotency for one request: a bad key is 400; a key seen with
 * another payload 409 invalid_idempotent_request; one still in flight 409
 * concurrent_idempotent_requests; a finished one replays its saved reply.
 * Otherwise the key is marked in flight, and the caller saves the reply.
 */
async function idempotency(
  keys: Map<string, Saved>,
  req: Request,
  raw: string,
): Promise<{ key?: string; hash?: string; replay?: Response }> {
  const key = req.headers.get("idempotency-key") ?? undefined;
  if (key === undefined) return {};
  if (key.length < 1 || key.length > 256) {
    return {
      replay: json(400, {
        statusCode: 400,
        name: "validation_error",
        message: "Idempotency key must be between 1 and 256 characters",
      }),
    };
  }
  const hash = await sha256(raw);
  const seen = keys.get(key);
  if (!seen) {
    keys.set(key, { hash });
    return { key, hash };
  }
  if (seen.hash !== hash) {
    bump("resend:idempotency_mismatch");
    return {
      replay: json(409, {
        statusCode: 409,
        name: "invalid_idempotent_request",
        message: "Same idempotency key used with a different request payload.",
      }),
    };
  }
  if (seen.reply === undefined) {
    bump("resend:idempotency_concurrent");
    return {
      replay: json(409, {
        statusCode: 409,
        name: "concurrent_idempotent_requests",
        message:
          "Same idempotency key used while original request is still in progress.",
      }),
    };
  }
  bump("resend:idempotent_replay");
  return { replay: json(200, seen.reply) };
}

// Rate limits per provider: a token bucket refilled at `rate` a second, holding
// at most `rate` tokens (one second's burst), as Resend's per-second limit.
let limits = new Map<string, { rate: number; tokens: number; at: number }>();

/** A 429 in the provider's shape when its limit is used up; undefined otherwise. */
function rateLimited(provider: Provider): Response | undefined {
  const l = limits.get(provider);
  if (!l) return undefined;
  const now = performance.now();
  l.tokens = Math.min(l.rate, l.tokens + ((now - l.at) / 1000) * l.rate);
  l.at = now;
  if (l.tokens >= 1) {
    l.tokens -= 1;
    return undefined;
  }
  bump(`${provider}:rate_limited`);
  const wait = Math.max(1, Math.ceil((1 - l.tokens) / l.rate));
  const headers = {
    "retry-after": String(wait),
    "ratelimit-limit": String(l.rate),
    "ratelimit-remaining": "0",
    "ratelimit-reset": String(wait),
  };
  if (provider === "resend") {
    return json(429, {
      statusCode: 429,
      name: "rate_limit_exceeded",
      message:
        `Too many requests. You can only make ${l.rate} requests per second.`,
    }, headers);
  }
  return json(
    429,
    { code: 20429, message: "Too Many Requests", status: 429 },
    headers,
  );
}
let klaviyoProfiles = new Map<string, string>();
let klaviyoEvents = new Set<string>();
// Stripe: objects by id, and idempotency keys → the request's hash and the
// saved response (absent while the first request is in flight).
let stripeObjects = new Map<string, Record<string, unknown>>();
let stripeKeys = new Map<
  string,
  { hash: string; status?: number; body?: unknown }
>();

interface Faults {
  provider?: Provider;
  queue: FaultMode[];
  probability?: number;
  modes?: FaultMode[];
  rng?: () => number;
  retryAfter: number;
}
let faults: Faults = { queue: [], retryAfter: 1 };

/** mulberry32: a small seeded generator, so a failure pattern can be replayed. */
function seeded(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function nextFault(provider: Provider): FaultMode | undefined {
  if (faults.provider && faults.provider !== provider) return undefined;
  if (faults.queue.length) return faults.queue.shift();
  if (faults.probability && faults.rng && faults.modes?.length) {
    if (faults.rng() < faults.probability) {
      return faults.modes[Math.floor(faults.rng() * faults.modes.length)];
    }
  }
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json", ...headers },
  });
const text = (
  status: number,
  body: string,
  headers: Record<string, string> = {},
) =>
  new Response(body, {
    status,
    headers: { "content-type": "text/plain", ...headers },
  });

/** A response whose body errors at once: the client sees the connection drop. */
function reset(): Response {
  return new Response(
    new ReadableStream({
      start(c) {
        c.error(new Error("connection reset by sandbox"));
      },
    }),
    { status: 200 },
  );
}

/** Applies a fault that happens before the provider processes the request. */
async function before(
  provider: Provider,
  mode: FaultMode | undefined,
): Promise<Response | undefined> {
  if (!mode || mode === "hang_after_accept") return undefined;
  bump(`${provider}:fault:${mode}`);
  const retryAfter = String(faults.retryAfter);
  switch (mode) {
    case "500":
      return provider === "stripe"
        ? json(500, {
          error: {
            type: "api_error",
            message:
              "Sandbox fault: an error occurred with our connection to Stripe.",
          },
        })
        : provider === "resend"
        ? json(500, {
          statusCode: 500,
          name: "internal_server_error",
          message: "sandbox fault",
        })
        : provider === "twilio"
        ? json(500, {
          code: 20500,
          message: "Internal Server Error",
          more_info: "https://www.twilio.com/docs/errors/20500",
          status: 500,
        })
        : provider === "klaviyo"
        ? json(500, {
          errors: [{
            id: crypto.randomUUID(),
            status: 500,
            code: "error",
            title: "Server error",
            detail: "sandbox fault",
          }],
        })
        : provider === "shopify"
        ? json(500, { errors: "Internal Server Error" })
        : text(500, "internal_error");
    case "429":
      return provider === "stripe"
        ? json(429, {
          error: {
            type: "invalid_request_error",
            code: "rate_limit",
            message: "Too many requests hit the API too quickly.",
          },
        }, { "retry-after": retryAfter })
        : provider === "resend"
        ? json(429, {
          statusCode: 429,
          name: "rate_limit_exceeded",
          message: "Too many requests",
        }, {
          "retry-after": retryAfter,
          "ratelimit-limit": "2",
          "ratelimit-remaining": "0",
          "ratelimit-reset": retryAfter,
        })
        : provider === "twilio"
        ? json(429, {
          code: 20429,
          message: "Too Many Requests",
          more_info: "https://www.twilio.com/docs/errors/20429",
          status: 429,
        }, { "retry-after": retryAfter })
        : provider === "klaviyo"
        ? json(429, {
          errors: [{
            id: crypto.randomUUID(),
            status: 429,
            code: "throttled",
            title: "Request was throttled.",
            detail: "sandbox",
          }],
        }, { "retry-after": retryAfter })
        : provider === "shopify"
        ? json(429, {
          errors:
            "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service.",
        }, { "retry-after": `${retryAfter}.0` })
        : text(429, "rate_limited", { "retry-after": retryAfter });
    case "hang":
      await sleep(cfg.hangMs);
      return text(504, "gateway timeout");
    case "reset":
      return reset();
  }
}

/** After the request was accepted: hang so the client times out without seeing the result. */
async function after(
  mode: FaultMode | undefined,
  response: Response,
): Promise<Response> {
  if (mode !== "hang_after_accept") return response;
  await sleep(cfg.hangMs);
  return response;
}

async function sha256(s: string): Promise<string> {
  const d = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)),
  );
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Resend's key check: 401 without one, 403 for a wrong one. */
function resendAuth(req: Request): Response | undefined {
  const auth = req.headers.get("authorization");
  if (!auth) {
    return json(401, {
      statusCode: 401,
      name: "missing_api_key",
      message:
        "Missing API key in the authorization header. Include the following header in your request: Authorization: Bearer YOUR_API_KEY",
    });
  }
  if (auth !== `Bearer ${cfg.resendKey}`) {
    return json(403, {
      statusCode: 403,
      name: "invalid_api_key",
      message: "API key is invalid",
    });
  }
  return undefined;
}

/** Why one email is refused (422, as Resend words it), or undefined. */
function resendInvalid(body: Record<string, unknown>): string | undefined {
  for (const field of ["from", "to", "subject"]) {
    if (body[field] === undefined || body[field] === "") {
      return `Missing \`${field}\` field.`;
    }
  }
  const to = Array.isArray(body.to) ? body.to : [body.to];
  if (
    to.length > 50 ||
    !to.every((a) => typeof a === "string" && /^[^@\s<>]+@[^@\s<>]+$/.test(a))
  ) {
    return "Invalid `to` field. The email address needs to follow the `email@example.com` format.";
  }
  if (body.attachments !== undefined) {
    const list = body.attachments;
    if (
      !Array.isArray(list) ||
      !list.every((a) =>
        a && typeof a === "object" && typeof a.filename === "string" &&
        ((typeof a.content === "string") !== (typeof a.path === "string"))
      )
    ) {
      return "Invalid `attachments` field. Each attachment needs a `filename` and either `content` or `path`.";
    }
    // Resend's limit: 40 MB per email, attachments included after base64.
    const bytes = list.reduce(
      (n, a) => n + (typeof a.content === "string" ? a.content.length : 0),
      0,
    );
    if (bytes > 40 * 1024 * 1024) {
      return "The email is larger than 40MB, attachments included.";
    }
  }
  return undefined;
}

async function resend(req: Request): Promise<Response> {
  const denied = resendAuth(req) ?? rateLimited("resend");
  if (denied) return denied;
  const raw = await req.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(raw);
  } catch {
    return json(400, {
      statusCode: 400,
      name: "validation_error",
      message: "Invalid JSON body",
    });
  }
  const invalid = resendInvalid(body);
  if (invalid) {
    return json(422, {
      statusCode: 422,
      name: invalid.startsWith("Missing")
        ? "missing_required_field"
        : "validation_error",
      message: invalid,
    });
  }
  const fault = nextFault("resend");
  const early = await before("resend", fault);
  if (early) return early;

  const idem = await idempotency(resendKeys, req, raw);
  if (idem.replay) return await after(fault, idem.replay);
  const key = idem.key;
  const id = crypto.randomUUID();
  if (key !== undefined) {
    resendKeys.set(key, { hash: idem.hash!, reply: { id } });
  }
  sent.push({
    provider: "resend",
    id,
    at: new Date().toISOString(),
    body,
    idempotency_key: key,
  });
  bump("resend:accepted");
  resendEvents(id, body);
  return await after(fault, json(200, { id }));
}

/**
 * POST /emails/batch: 1 to 100 emails, all or nothing (one invalid email
 * refuses the batch, naming its index), answered {"data": [{"id"}, …]} in
 * request order. An Idempotency-Key covers the whole batch, as Resend keeps
 * it: the same key and payload replay the same ids, another payload is 409.
 */
async function resendBatch(req: Request): Promise<Response> {
  const denied = resendAuth(req) ?? rateLimited("resend");
  if (denied) return denied;
  const raw = await req.text();
  let emails: Record<string, unknown>[];
  try {
    emails = JSON.parse(raw);
  } catch {
    return json(400, {
      statusCode: 400,
      name: "validation_error",
      message: "Invalid JSON body",
    });
  }
  if (!Array.isArray(emails) || emails.length < 1 || emails.length > 100) {
    return json(422, {
      statusCode: 422,
      name: "validation_error",
      message: "The batch must be an array of 1 to 100 emails.",
    });
  }
  const permissive = req.headers.get("x-batch-validation") === "permissive";
  const errors: { index: number; message: string }[] = [];
  for (const [i, email] of emails.entries()) {
    const invalid = resendInvalid(email ?? {});
    if (invalid && permissive) {
      errors.push({ index: i, message: invalid });
    } else if (invalid) {
      return json(422, {
        statusCode: 422,
        name: "validation_error",
        message: `Email ${i}: ${invalid}`,
      });
    }
  }
  const fault = nextFault("resend");
  const early = await before("resend", fault);
  if (early) return early;
  const idem = await idempotency(resendBatchKeys, req, raw);
  if (idem.replay) return await after(fault, idem.replay);
  const key = idem.key;
  const at = new Date().toISOString();
  const refused = new Set(errors.map((e) => e.index));
  const ids = emails.flatMap((body, i) => {
    if (refused.has(i)) return [];
    const id = crypto.randomUUID();
    sent.push({ provider: "resend", id, at, body, idempotency_key: key });
    bump("resend:accepted");
    resendEvents(id, body);
    return [id];
  });
  const reply = permissive
    ? { data: ids.map((id) => ({ id })), errors }
    : { data: ids.map((id) => ({ id })) };
  if (key !== undefined) {
    resendBatchKeys.set(key, { hash: idem.hash!, reply });
  }
  bump("resend:batch");
  return await after(fault, json(200, reply));
}

function twilioError(status: number, code: number, message: string) {
  return json(status, {
    code,
    message,
    more_info: `https://www.twilio.com/docs/errors/${code}`,
    status,
  });
}

function segments(body: string): number {
  const gsm =
    /^[@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&'()*+,\-./0-9:;<=>?¡A-ZÄÖÑÜ§¿a-zäöñüà^{}\\\[~\]|€]*$/
      .test(body);
  const len = gsm ? body.length : [...body].length;
  const [single, multi] = gsm ? [160, 153] : [70, 67];
  return len <= single ? 1 : Math.ceil(len / multi);
}

async function twilio(req: Request, sid: string, url: URL): Promise<Response> {
  const auth = req.headers.get("authorization") ?? "";
  const expected = `Basic ${btoa(`${cfg.twilioSid}:${cfg.twilioToken}`)}`;
  if (auth !== expected || sid !== cfg.twilioSid) {
    return twilioError(401, 20003, "Authentication Error - invalid username");
  }
  if (req.method === "GET") {
    const to = url.searchParams.get("To");
    const since = url.searchParams.get("DateSent>");
    const messages = sent
      .filter((s) => s.provider === "twilio")
      .map((s) => s.body as Record<string, unknown>)
      .filter((m) =>
        (!to || m.to === to) && (!since || String(m.date_created) >= since)
      );
    return json(200, { messages, page: 0, page_size: 50, uri: url.pathname });
  }
  const limited = rateLimited("twilio");
  if (limited) return limited;
  const form = new URLSearchParams(await req.text());
  const to = form.get("To");
  const from = form.get("From") ?? form.get("MessagingServiceSid");
  const body = form.get("Body");
  if (!to) return twilioError(400, 21604, "A 'To' phone number is required.");
  if (!from) {
    return twilioError(400, 21603, "A 'From' phone number is required.");
  }
  if (!body) return twilioError(400, 21602, "Message body is required.");
  if (body.length > 1600) {
    return twilioError(
      400,
      21617,
      "The concatenated message body exceeds the 1600 character limit.",
    );
  }
  if (!/^(whatsapp:)?\+[1-9]\d{6,14}$/.test(to)) {
    return twilioError(
      400,
      21211,
      `The 'To' number ${to} is not a valid phone number.`,
    );
  }
  const fault = nextFault("twilio");
  const early = await before("twilio", fault);
  if (early) return early;
  const hex = Array.from(
    crypto.getRandomValues(new Uint8Array(16)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const message = {
    sid: `SM${hex}`,
    account_sid: sid,
    to,
    from,
    body,
    status: form.get("MessagingServiceSid") ? "accepted" : "queued",
    num_segments: String(segments(body)),
    error_code: null,
    error_message: null,
    date_created: new Date().toISOString(),
  };
  sent.push({
    provider: "twilio",
    id: message.sid,
    at: message.date_created,
    body: message,
  });
  bump("twilio:accepted");
  const callback = form.get("StatusCallback");
  if (callback) twilioStatus(message, callback);
  return await after(fault, json(201, message));
}

function klaviyoError(status: number, code: string, detail: string) {
  return json(status, {
    errors: [{
      id: crypto.randomUUID(),
      status,
      code,
      title: code,
      detail,
      source: { pointer: "/data" },
    }],
  });
}

async function klaviyo(req: Request, path: string): Promise<Response> {
  if (
    req.headers.get("authorization") !== `Klaviyo-API-Key ${cfg.klaviyoKey}`
  ) {
    return klaviyoError(
      401,
      "not_authenticated",
      "Incorrect authentication credentials.",
    );
  }
  if (!req.headers.get("revision")) {
    return klaviyoError(400, "invalid", "A revision header is required.");
  }
  // deno-lint-ignore no-explicit-any
  let doc: any;
  try {
    doc = JSON.parse(await req.text());
  } catch {
    return klaviyoError(
      400,
      "invalid",
      "The payload provided in the request is invalid.",
    );
  }
  const fault = nextFault("klaviyo");
  const early = await before("klaviyo", fault);
  if (early) return early;
  if (path === "profile-import/") {
    const attrs = doc?.data?.attributes ?? {};
    const key = attrs.email ?? attrs.phone_number ?? attrs.external_id;
    if (doc?.data?.type !== "profile" || !key) {
      return klaviyoError(400, "invalid", "An identifier is required.");
    }
    const existing = klaviyoProfiles.get(key);
    const id = existing ??
      `01${crypto.randomUUID().replaceAll("-", "").slice(0, 24).toUpperCase()}`;
    klaviyoProfiles.set(key, id);
    sent.push({
      provider: "klaviyo",
      id,
      at: new Date().toISOString(),
      body: doc,
    });
    bump(`klaviyo:profile:${existing ? "updated" : "created"}`);
    return await after(
      fault,
      json(existing ? 200 : 201, {
        data: { type: "profile", id, attributes: attrs },
      }),
    );
  }
  if (path === "events/") {
    const attrs = doc?.data?.attributes ?? {};
    if (doc?.data?.type !== "event" || !attrs.metric?.data?.attributes?.name) {
      return klaviyoError(400, "invalid", "A metric name is required.");
    }
    const unique = attrs.unique_id as string | undefined;
    if (!unique || !klaviyoEvents.has(unique)) {
      if (unique) klaviyoEvents.add(unique);
      sent.push({
        provider: "klaviyo",
        id: unique ?? crypto.randomUUID(),
        at: new Date().toISOString(),
        body: doc,
      });
      bump("klaviyo:event:accepted");
    } else bump("klaviyo:event:deduplicated");
    return await after(fault, new Response(null, { status: 202 }));
  }
  return klaviyoError(404, "not_found", "Not found.");
}

async function slack(req: Request, path: string): Promise<Response> {
  if (path !== cfg.slackPath) return text(404, "channel_not_found");
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(await req.text());
  } catch {
    return text(400, "invalid_payload");
  }
  if (!body.text && !body.blocks) return text(400, "no_text");
  const fault = nextFault("slack");
  const early = await before("slack", fault);
  if (early) return early;
  sent.push({
    provider: "slack",
    id: crypto.randomUUID(),
    at: new Date().toISOString(),
    body,
  });
  bump("slack:accepted");
  return await after(fault, text(200, "ok"));
}

function stripeError(
  status: number,
  type: string,
  message: string,
  extra: Record<string, string> = {},
) {
  return json(status, { error: { type, message, ...extra } });
}

/** Stripe's bracketed form keys: `metadata[k]=v` → `{metadata: {k: v}}`. */
function stripeForm(raw: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    const m = k.match(/^([a-z_]+)\[([^\]]+)\]$/);
    if (m) {
      const inner = (out[m[1]] ?? {}) as Record<string, string>;
      inner[m[2]] = v;
      out[m[1]] = inner;
    } else out[k] = v;
  }
  return out;
}

const stripeId = (prefix: string) =>
  `${prefix}_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;

async function stripe(req: Request, path: string, url: URL): Promise<Response> {
  // Stripe takes the secret key as a Bearer token or as the Basic user name.
  const auth = req.headers.get("authorization");
  const basic = auth?.startsWith("Basic ")
    ? atob(auth.slice(6)).replace(/:$/, "")
    : undefined;
  if (auth !== `Bearer ${cfg.stripeKey}` && basic !== cfg.stripeKey) {
    return stripeError(
      401,
      "invalid_request_error",
      auth
        ? `Invalid API Key provided: ${
          auth.replace(/^Bearer /, "").slice(0, 8)
        }***`
        : "You did not provide an API key.",
    );
  }
  if (req.method === "GET") {
    const one = stripeObjects.get(path.split("/")[1] ?? "");
    if (one) return json(200, one);
    if (path === "refunds") {
      const pi = url.searchParams.get("payment_intent");
      const data = [...stripeObjects.values()].filter((o) =>
        o.object === "refund" && (!pi || o.payment_intent === pi)
      ).reverse();
      return json(200, {
        object: "list",
        data,
        has_more: false,
        url: "/v1/refunds",
      });
    }
    return stripeError(
      404,
      "invalid_request_error",
      `No such object: '${path}'`,
      {
        code: "resource_missing",
      },
    );
  }
  if (req.method !== "POST") {
    return stripeError(405, "invalid_request_error", "Method not allowed");
  }
  const raw = await req.text();
  const fault = nextFault("stripe");
  const early = await before("stripe", fault);
  if (early) return early;

  // Idempotency as Stripe keeps it: the first result is saved and replayed;
  // other parameters are an error; a concurrent twin gets 409.
  const key = req.headers.get("idempotency-key") ?? undefined;
  const hash = await sha256(`${path}\n${raw}`);
  if (key !== undefined) {
    if (key.length > 255) {
      return stripeError(
        400,
        "invalid_request_error",
        "Idempotency keys can be at most 255 characters long.",
      );
    }
    const seen = stripeKeys.get(key);
    if (seen) {
      if (seen.hash !== hash) {
        bump("stripe:idempotency_mismatch");
        return stripeError(
          400,
          "idempotency_error",
          `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
        );
      }
      if (seen.status === undefined) {
        bump("stripe:idempotency_concurrent");
        return stripeError(
          409,
          "idempotency_error",
          "There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): " +
            key + ". Please try again later.",
        );
      }
      bump("stripe:idempotent_replay");
      return await after(
        fault,
        json(seen.status, seen.body, { "idempotent-replayed": "true" }),
      );
    }
    stripeKeys.set(key, { hash });
  }
  const [status, body] = stripeExecute(path, stripeForm(raw));
  if (key !== undefined) stripeKeys.set(key, { hash, status, body });
  return await after(
    fault,
    json(status, body, { "request-id": stripeId("req") }),
  );
}

/** Runs a Stripe POST; returns the status and body to save and send. */
function stripeExecute(
  path: string,
  form: Record<string, unknown>,
): [number, unknown] {
  const invalid = (message: string, extra: Record<string, string> = {}) =>
    [400, { error: { type: "invalid_request_error", message, ...extra } }] as [
      number,
      unknown,
    ];
  const now = Math.floor(Date.now() / 1000);
  if (path === "payment_intents") {
    const amount = Number(form.amount);
    if (!Number.isInteger(amount) || amount < 1) {
      return invalid("Missing required param: amount.", {
        code: "parameter_missing",
        param: "amount",
      });
    }
    if (typeof form.currency !== "string") {
      return invalid("Missing required param: currency.", {
        code: "parameter_missing",
        param: "currency",
      });
    }
    const id = stripeId("pi");
    const paid = form.confirm === "true" &&
      typeof form.payment_method === "string";
    const pi = {
      id,
      object: "payment_intent",
      amount,
      amount_received: paid ? amount : 0,
      currency: form.currency,
      status: paid ? "succeeded" : "requires_payment_method",
      client_secret: `${id}_secret_${crypto.randomUUID().slice(0, 8)}`,
      latest_charge: paid ? stripeId("ch") : null,
      last_payment_error: null,
      next_action: null,
      metadata: form.metadata ?? {},
      created: now,
      amount_refunded: 0,
    };
    stripeObjects.set(id, pi);
    bump("stripe:payment_intent");
    return [200, pi];
  }
  if (path === "refunds") {
    const pi = stripeObjects.get(String(form.payment_intent ?? ""));
    if (!pi || pi.object !== "payment_intent") {
      return invalid(`No such payment_intent: '${form.payment_intent ?? ""}'`, {
        code: "resource_missing",
        param: "payment_intent",
      });
    }
    if (pi.status !== "succeeded") {
      return invalid(
        `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
        { code: "charge_not_refundable" },
      );
    }
    const left = (pi.amount as number) - (pi.amount_refunded as number);
    const amount = form.amount === undefined ? left : Number(form.amount);
    if (!Number.isInteger(amount) || amount < 1) {
      return invalid("Invalid positive integer", { param: "amount" });
    }
    if (amount > left) {
      return invalid(
        `Refund amount (${amount}) is greater than unrefunded amount on charge (${left})`,
        { code: "amount_too_large", param: "amount" },
      );
    }
    const reasons = ["duplicate", "fraudulent", "requested_by_customer"];
    if (form.reason !== undefined && !reasons.includes(String(form.reason))) {
      return invalid(`Invalid reason: must be one of ${reasons.join(", ")}`, {
        param: "reason",
      });
    }
    pi.amount_refunded = (pi.amount_refunded as number) + amount;
    const refund = {
      id: stripeId("re"),
      object: "refund",
      amount,
      charge: pi.latest_charge,
      currency: pi.currency,
      payment_intent: pi.id,
      reason: form.reason ?? null,
      status: "succeeded",
      metadata: form.metadata ?? {},
      created: now,
    };
    stripeObjects.set(refund.id, refund);
    sent.push({
      provider: "stripe",
      id: refund.id,
      at: new Date().toISOString(),
      body: refund,
    });
    bump("stripe:refund");
    return [200, refund];
  }
  return [404, {
    error: {
      type: "invalid_request_error",
      message: `Unrecognized request URL (POST: /v1/${path}).`,
    },
  }];
}

/** Shopify's calls take faults from the same queue as the other providers. */
const shopifyFaults: ShopifyFaults = {
  async enter() {
    const mode = nextFault("shopify");
    const early = await before("shopify", mode);
    return { early, done: (r: Response) => after(mode, r) };
  },
};

async function control(req: Request, url: URL): Promise<Response> {
  if (url.pathname.startsWith("/_sandbox/shopify/")) {
    return await shopifyControl(req, url);
  }
  if (url.pathname === "/_sandbox" && req.method === "DELETE") {
    sent = [];
    received = [];
    resendKeys = new Map();
    resendBatchKeys = new Map();
    limits = new Map();
    klaviyoProfiles = new Map();
    klaviyoEvents = new Set();
    stripeObjects = new Map();
    stripeKeys = new Map();
    faults = { queue: [], retryAfter: 1 };
    hooks = defaultHooks();
    shopifyReset();
    for (const k of Object.keys(stats)) delete stats[k];
    return json(200, { ok: true });
  }
  if (url.pathname === "/_sandbox/sent") {
    const provider = url.searchParams.get("provider");
    return json(200, sent.filter((s) => !provider || s.provider === provider));
  }
  if (url.pathname === "/_sandbox/stats") return json(200, stats);
  // A tenant's webhook endpoint (workflow webhook steps): records each call
  // as received; /_sandbox/hooks/redirect?to=URL answers 307 to URL.
  if (url.pathname === "/_sandbox/hooks" && req.method === "GET") {
    return json(200, received);
  }
  if (url.pathname === "/_sandbox/hooks/redirect") {
    await req.body?.cancel();
    bump("hooks:redirected");
    return new Response(null, {
      status: 307,
      headers: { location: url.searchParams.get("to") ?? "/" },
    });
  }
  if (url.pathname.startsWith("/_sandbox/hooks/") && req.method === "POST") {
    const headers: Record<string, string> = {};
    req.headers.forEach((v, k) => headers[k] = v);
    received.push({
      path: url.pathname.slice("/_sandbox/hooks/".length),
      headers,
      body: await req.text(),
    });
    bump("hooks:received");
    return json(200, { ok: true });
  }
  if (url.pathname === "/_sandbox/limits" && req.method === "POST") {
    const l: Record<string, number> = await req.json();
    limits = new Map();
    for (const [provider, rate] of Object.entries(l)) {
      if (!(rate > 0)) {
        return json(400, { error: `${provider}: a rate above 0` });
      }
      limits.set(provider, { rate, tokens: rate, at: performance.now() });
    }
    return json(200, { ok: true });
  }
  if (url.pathname === "/_sandbox/webhooks" && req.method === "POST") {
    const h = await req.json();
    const base = defaultHooks();
    hooks = {
      enabled: h.enabled ?? base.enabled,
      delayMs: h.delay_ms ?? base.delayMs,
      resend: h.resend ?? base.resend,
      twilio: h.twilio ?? base.twilio,
      rng: h.seed !== undefined ? seeded(h.seed) : base.rng,
    };
    return json(200, { ok: true, functions_url: functionsUrl ?? null });
  }
  if (url.pathname === "/_sandbox/twilio/inbound" && req.method === "POST") {
    const m = await req.json();
    if (!functionsUrl) {
      return json(409, { error: "no stack env: SANDBOX_STACK_ENV" });
    }
    const target = `${functionsUrl}/twilio-webhook`;
    const sid = `SM${crypto.randomUUID().replaceAll("-", "")}`;
    const params: Record<string, string> = {
      AccountSid: cfg.twilioSid,
      MessageSid: sid,
      SmsMessageSid: sid,
      From: String(m.from),
      To: String(m.to ?? "+15550001000"),
      Body: String(m.body),
      NumMedia: "0",
      NumSegments: "1",
      ApiVersion: "2010-04-01",
    };
    const r = await fetch(target, await twilioPost(target, params));
    return new Response(await r.text(), {
      status: r.status,
      headers: {
        "content-type": r.headers.get("content-type") ?? "text/plain",
      },
    });
  }
  if (url.pathname === "/_sandbox/faults" && req.method === "POST") {
    const f = await req.json();
    faults = {
      provider: f.provider,
      queue: Array(f.count ?? 0).fill(f.mode),
      probability: f.probability,
      modes: f.modes,
      rng: f.probability ? seeded(f.seed ?? 1) : undefined,
      retryAfter: f.retry_after ?? 1,
    };
    return json(200, { ok: true });
  }
  return json(404, { error: "no such sandbox route" });
}

Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (req) => {
  const url = new URL(req.url);
  const p = url.pathname;
  if (p === "/health") return json(200, { ok: true });
  if (p.startsWith("/_sandbox")) return await control(req, url);
  if (p === "/resend/emails" && req.method === "POST") return await resend(req);
  if (p === "/resend/emails/batch" && req.method === "POST") {
    return await resendBatch(req);
  }
  const tw = p.match(
    /^\/twilio\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/,
  );
  if (tw && (req.method === "POST" || req.method === "GET")) {
    return await twilio(req, tw[1], url);
  }
  const kl = p.match(/^\/klaviyo\/api\/(.+)$/);
  if (kl && req.method === "POST") return await klaviyo(req, kl[1]);
  const st = p.match(/^\/stripe\/v1\/(.+)$/);
  if (st) return await stripe(req, st[1], url);
  const sl = p.match(/^\/slack\/services\/(.+)$/);
  if (sl && req.method === "POST") return await slack(req, sl[1]);
  if (p.startsWith("/shopify/")) {
    return await shopifyHandle(req, url, shopifyFaults);
  }
  return json(404, { error: "no such provider route" });
});
console.error(`provider sandbox on http://127.0.0.1:${port}`);
