// Writes the stack's keys (once) and its env file (every start).
// Usage: deno run scripts/keys.ts <stack dir> <api port> <db port> <sandbox port>
// Functions in the local stack reach the providers through the sandbox.
import {
  b64url,
  generateKeys,
  publicJwks,
  signHs256,
  type StackKeys,
} from "./jwt.ts";

const [stackDir, apiPort, dbPort, sandboxPort] = Deno.args;
const keysPath = `${stackDir}/keys.json`;

let keys: StackKeys;
try {
  keys = JSON.parse(Deno.readTextFileSync(keysPath));
} catch {
  keys = await generateKeys();
  Deno.writeTextFileSync(keysPath, JSON.stringify(keys, null, 2), {
    mode: 0o600,
  });
}

const tenYears = Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600;
const iat = Math.floor(Date.now() / 1000);
const anon = await signHs256(
  { iss: "supabase-local", role: "anon", iat, exp: tenYears },
  keys.jwt_secret,
);
const service = await signHs256(
  { iss: "supabase-local", role: "service_role", iat, exp: tenYears },
  keys.jwt_secret,
);

// The REST server accepts both the ES256 key and the HS256 secret (as an oct JWK).
const restSecret = {
  keys: [
    keys.es256_public,
    { kty: "oct", alg: "HS256", k: b64url(keys.jwt_secret) },
  ],
};
Deno.writeTextFileSync(
  `${stackDir}/rest-jwt-secret.json`,
  JSON.stringify(restSecret),
);

const url = `http://127.0.0.1:${apiPort}`;
const env: Record<string, string> = {
  SUPABASE_URL: url,
  SUPABASE_ANON_KEY: anon,
  SUPABASE_SERVICE_ROLE_KEY: service,
  SUPABASE_DB_URL: `postgres://postgres@127.0.0.1:${dbPort}/postgres`,
  SUPABASE_JWKS: JSON.stringify(publicJwks(keys)),
  JWT_SECRET: keys.jwt_secret,
  DISPATCH_SECRET: keys.dispatch_secret ?? keys.jwt_secret.slice(0, 24),
  // Signs public links (unsubscribe); a new one per stack start.
  LINK_SIGNING_SECRET: crypto.randomUUID() + crypto.randomUUID(),
  // Resend's webhook signing secret (Standard Webhooks: whsec_ + base64).
  RESEND_WEBHOOK_SECRET: `whsec_${
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(24))))
  }`,
};
const sandbox = `http://127.0.0.1:${sandboxPort}`;
Object.assign(env, {
  SANDBOX_URL: sandbox,
  RESEND_BASE_URL: `${sandbox}/resend`,
  RESEND_API_KEY: "re_sandbox_key",
  EMAIL_FROM: "orders@commerce-edge.test",
  TWILIO_BASE_URL: `${sandbox}/twilio`,
  TWILIO_ACCOUNT_SID: "ACsandbox0000000000000000000000000",
  TWILIO_AUTH_TOKEN: "sandbox_auth_token",
  TWILIO_PHONE_NUMBER: "+15550001000",
  KLAVIYO_BASE_URL: `${sandbox}/klaviyo`,
  KLAVIYO_API_KEY: "pk_sandbox_key",
  SLACK_WEBHOOK_URL: `${sandbox}/slack/services/T000/B000/sandbox`,
  STRIPE_BASE_URL: `${sandbox}/stripe`,
  STRIPE_SECRET_KEY: "sk_test_sandbox",
  // Shopify: the sandbox stands in for every store (https://{shop}).
  SHOPIFY_BASE_URL: `${sandbox}/shopify/{shop}`,
  SHOPIFY_API_KEY: "shopify_sandbox_api_key",
  SHOPIFY_API_SECRET: "shpss_sandbox_secret",
  SHOPIFY_APP_URL: `${sandbox}/_sandbox/hooks/shopify-app`,
  // The platform's own store, connected with its custom app's token by the
  // platform's own tenant.
  SHOPIFY_ADMIN_SHOP: "platform-store.myshopify.com",
  SHOPIFY_ADMIN_TENANT_ID: crypto.randomUUID(),
  SHOPIFY_ADMIN_ACCESS_TOKEN: `shpat_${
    Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
      b.toString(16).padStart(2, "0")).join("")
  }`,
  // Sealed provider tokens (the vault crate): a new key per stack start.
  TOKEN_ENCRYPTION_KEYS: `k${Date.now().toString(36)}:${
    btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))
  }`,
  // The rates campaigns are paced at (the platform accounts' limits).
  RESEND_MAX_RPS: "10",
  TWILIO_MAX_MPS: "20",
  // Test-only: workflow webhooks may call the sandbox (http, loopback).
  WEBHOOK_ALLOW_HOSTS: `127.0.0.1:${sandboxPort}`,
});
// Tuning a stack may set (scripts/test shortens retries and leases).
for (
  const k of [
    "PROVIDER_TIMEOUT_MS",
    "OUTBOX_BATCH_SIZE",
    "OUTBOX_LEASE_SECONDS",
    "OUTBOX_BACKOFF_SECONDS",
    "RESEND_MAX_RPS",
    "TWILIO_MAX_MPS",
    "SYNC_BUDGET_SECONDS",
    "SYNC_LEASE_SECONDS",
  ]
) {
  const v = Deno.env.get(k);
  if (v) env[k] = v;
}
Deno.writeTextFileSync(
  `${stackDir}/env`,
  Object.entries(env).map(([k, v]) => `${k}='${v}'`).join("\n") + "\n",
);
