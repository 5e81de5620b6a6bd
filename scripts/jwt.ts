// Signing keys and tokens for the local stack. The stack signs user tokens with
// ES256 (as Supabase's current signing keys do) and its anon and service_role
// keys with the legacy HS256 secret; both kinds are accepted by the REST server
// and by the functions.

const enc = new TextEncoder();

export interface StackKeys {
  jwt_secret: string;
  dispatch_secret?: string;
  es256_private: JsonWebKey;
  es256_public: JsonWebKey & { kid: string; alg: string; use: string };
}

export function b64url(bytes: Uint8Array | string): string {
  const raw = typeof bytes === "string" ? enc.encode(bytes) : bytes;
  let s = "";
  for (const b of raw) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

export async function generateKeys(): Promise<StackKeys> {
  const pair = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  ) as CryptoKeyPair;
  const priv = await crypto.subtle.exportKey("jwk", pair.privateKey);
  const pub = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const secret = b64url(crypto.getRandomValues(new Uint8Array(32)));
  return {
    jwt_secret: secret,
    dispatch_secret: b64url(crypto.getRandomValues(new Uint8Array(24))),
    es256_private: priv,
    es256_public: {
      kty: pub.kty,
      crv: pub.crv,
      x: pub.x,
      y: pub.y,
      kid: crypto.randomUUID(),
      alg: "ES256",
      use: "sig",
    },
  };
}

/** The public JWKS, as served at /auth/v1/.well-known/jwks.json. */
export function publicJwks(keys: StackKeys) {
  return { keys: [keys.es256_public] };
}

export async function signHs256(
  claims: Record<string, unknown>,
  secret: string,
): Promise<string> {
  const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${
    b64url(JSON.stringify(claims))
  }`;
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, enc.encode(input)),
  );
  return `${input}.${b64url(sig)}`;
}

export async function signEs256(
  claims: Record<string, unknown>,
  privateJwk: JsonWebKey,
  kid: string,
): Promise<string> {
  const input = `${b64url(JSON.stringify({ alg: "ES256", typ: "JWT", kid }))}.${
    b64url(JSON.stringify(claims))
  }`;
  const key = await crypto.subtle.importKey(
    "jwk",
    privateJwk,
    { name: "ECDSA", namedCurve: "P-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(
    await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      key,
      enc.encode(input),
    ),
  );
  return `${input}.${b64url(sig)}`;
}

/** An access token for a user, shaped like one from Supabase Auth. */
export function userToken(
  keys: StackKeys,
  user: { id: string; email: string },
  apiUrl: string,
  ttlSeconds = 3600,
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return signEs256(
    {
      iss: `${apiUrl}/auth/v1`,
      sub: user.id,
      aud: "authenticated",
      role: "authenticated",
      email: user.email,
      iat: now,
      exp: now + ttlSeconds,
    },
    keys.es256_private,
    keys.es256_public.kid,
  );
}

export function readKeys(stackDir: string): StackKeys {
  return JSON.parse(Deno.readTextFileSync(`${stackDir}/keys.json`));
}

/** Reads a `KEY=value` env file. */
export function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of Deno.readTextFileSync(path).split("\n")) {
    const m = line.match(/^([A-Z0-9_]+)=(.*)$/);
    if (m) out[m[1]] = m[2].replace(/^'(.*)'$/, "$1");
  }
  return out;
}
