// One uncached JWT verification, measured inside create-wholesale-order's
// wasm module: ES256 and RS256 go to the host's WebCrypto, HS256 stays in
// Rust. Each request carries a valid token and an empty body, so the module
// verifies the token and then refuses the body (400) without any I/O. Fresh
// tokens (a new jti each) miss the verified-token cache; one repeated token
// hits it; the difference is the verification. Times are per request, medians
// of serial runs; CPU is the process's user+system time (every thread, so the
// host's crypto counts too).
import process from "node:process";
import * as wasm from "../functions/create-wholesale-order/pkg/create_wholesale_order.js";

const N = 300;
const enc = new TextEncoder();
const b64url = (bytes: Uint8Array | ArrayBuffer) =>
  btoa(String.fromCharCode(...new Uint8Array(bytes)))
    .replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
const part = (v: unknown) => b64url(enc.encode(JSON.stringify(v)));

const ec = await crypto.subtle.generateKey(
  { name: "ECDSA", namedCurve: "P-256" },
  true,
  ["sign", "verify"],
);
const rsa = await crypto.subtle.generateKey(
  {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  true,
  ["sign", "verify"],
);
const secret = "a-bench-only-hs256-secret-of-enough-length";
const hmac = await crypto.subtle.importKey(
  "raw",
  enc.encode(secret),
  { name: "HMAC", hash: "SHA-256" },
  false,
  ["sign", "verify"],
);
const jwk = async (key: CryptoKey, kid: string, alg: string) => ({
  ...(await crypto.subtle.exportKey("jwk", key)),
  kid,
  alg,
  key_ops: undefined,
  ext: undefined,
});
const jwks = {
  keys: [
    await jwk(ec.publicKey, "e1", "ES256"),
    await jwk(rsa.publicKey, "r1", "RS256"),
  ],
};
wasm.configure(JSON.stringify({
  SUPABASE_URL: "http://127.0.0.1:9",
  SUPABASE_ANON_KEY: "anon",
  SUPABASE_JWKS: JSON.stringify(jwks),
  JWT_SECRET: secret,
}));

type Alg = "ES256" | "RS256" | "HS256";
async function token(alg: Alg, jti: number): Promise<string> {
  const kid = { ES256: "e1", RS256: "r1", HS256: undefined }[alg];
  const input = `${part({ alg, typ: "JWT", kid })}.${
    part({
      sub: "7b0c1a64-58b5-4a8f-a8b1-0b7e5b8f6c11",
      role: "authenticated",
      exp: Math.floor(Date.now() / 1000) + 3600,
      jti,
    })
  }`;
  const data = enc.encode(input);
  const sig = alg === "ES256"
    ? await crypto.subtle.sign(
      { name: "ECDSA", hash: "SHA-256" },
      ec.privateKey,
      data,
    )
    : alg === "RS256"
    ? await crypto.subtle.sign("RSASSA-PKCS1-v1_5", rsa.privateKey, data)
    : await crypto.subtle.sign("HMAC", hmac, data);
  return `${input}.${b64url(sig)}`;
}

const body = enc.encode("{}");
async function call(tok: string): Promise<number> {
  const [status] = await wasm.handle(
    "POST",
    "http://x/functions/v1/create-wholesale-order",
    JSON.stringify({ authorization: `Bearer ${tok}` }),
    body,
  );
  return status;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
async function run(tokens: string[]) {
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  for (const tok of tokens) {
    const t0 = performance.now();
    const status = await call(tok);
    wall.push(performance.now() - t0);
    if (status !== 400) {
      throw new Error(`expected 400 after verification, got ${status}`);
    }
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    wall: median(wall),
    cpu: (cpu.user + cpu.system) / 1000 / tokens.length,
  };
}

console.log(
  "\nJWT verification inside the wasm module (create-wholesale-order), per request",
);
console.log(
  "alg     where       uncached ms   cached ms   verification ms   CPU ms per verification",
);
for (const alg of ["ES256", "RS256", "HS256"] as Alg[]) {
  const fresh = await Promise.all(
    Array.from({ length: N }, (_, i) => token(alg, i)),
  );
  const same = await token(alg, -1);
  await call(same); // warm: import the key, fill the cache
  await run(fresh.slice(0, 20));
  const unc = await run(fresh.slice(20));
  const hit = await run(Array(N - 20).fill(same));
  const where = alg === "HS256" ? "Rust" : "WebCrypto";
  console.log(
    `${alg}   ${where.padEnd(10)} ${unc.wall.toFixed(3).padStart(12)} ${
      hit.wall.toFixed(3).padStart(11)
    } ${(unc.wall - hit.wall).toFixed(3).padStart(17)} ${
      (unc.cpu - hit.cpu).toFixed(3).padStart(25)
    }`,
  );
}

// HS256 through WebCrypto instead, for the choice above: the host's HMAC
// verify alone, called from JS (no wasm crossing), per verification.
{
  const toks = await Promise.all(
    Array.from({ length: N }, (_, i) => token("HS256", 10_000 + i)),
  );
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  for (const t of toks) {
    const [h, p, s] = t.split(".");
    const sig = Uint8Array.from(
      atob(s.replaceAll("-", "+").replaceAll("_", "/")),
      (c) => c.charCodeAt(0),
    );
    const t0 = performance.now();
    const ok = await crypto.subtle.verify(
      "HMAC",
      hmac,
      sig,
      enc.encode(`${h}.${p}`),
    );
    wall.push(performance.now() - t0);
    if (!ok) throw new Error("HMAC did not verify");
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(
    `HS256   WebCrypto  (crypto.subtle.verify alone, from JS) ${
      median(wall).toFixed(3)
    } ms wall, ${((cpu.user + cpu.system) / 1000 / N).toFixed(3)} ms CPU`,
  );
}
