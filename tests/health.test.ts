// health: public, through the gateway with supabase-js, and on its own with
// PostgREST unreachable.
import assert from "node:assert/strict";
import { clientFor, env, invoke, until, url } from "./_stack.ts";

// deno-lint-ignore no-explicit-any
function assertCheck(check: any, status: string) {
  assert.deepEqual(check.status, status, JSON.stringify(check));
  assert.ok(Number.isInteger(check.duration) && check.duration >= 0);
}

Deno.test("health answers anyone with every check, in the seed's shape", async () => {
  // supabase-js sends the anon key as its bearer: no user needed.
  const r = await invoke(clientFor(), "health", undefined, {}, "GET");
  assert.deepEqual(r.status, 200, JSON.stringify(r.body));
  assert.deepEqual(r.body.status, "healthy");
  assert.ok(!Number.isNaN(Date.parse(r.body.timestamp)));
  assert.ok(/Z$/.test(r.body.timestamp));
  assertCheck(r.body.checks.database, "ok");
  assertCheck(r.body.checks.storage, "ok");
  assert.deepEqual(r.body.checks.service, { status: "ok" });
  // The stack configures every provider against the sandbox, which answers.
  for (const p of ["resend", "twilio", "stripe"]) {
    assertCheck(r.body.checks.providers[p], "ok");
  }
  assert.ok(Number.isInteger(r.body.responseTime));
  assert.ok(typeof r.body.uptime === "number" && r.body.uptime >= 0);
  assert.deepEqual(r.body.error, undefined);
  assert.deepEqual(r.headers.get("cache-control"), "no-store");

  // A token, even a bad one, changes nothing: the check is public.
  const bad = await fetch(`${url}/functions/v1/health`, {
    headers: { authorization: "Bearer not-a-token" },
  });
  assert.deepEqual(bad.status, 200);
  assert.deepEqual((await bad.json()).status, "healthy");
});

Deno.test("health serves GET and HEAD only, with CORS for them", async () => {
  const pre = await fetch(`${url}/functions/v1/health`, { method: "OPTIONS" });
  await pre.body?.cancel();
  assert.deepEqual(pre.status, 204);
  assert.deepEqual(
    pre.headers.get("access-control-allow-methods"),
    "GET, HEAD, OPTIONS",
  );
  const post = await fetch(`${url}/functions/v1/health`, {
    method: "POST",
    body: "{}",
  });
  assert.deepEqual(post.status, 405);
  assert.deepEqual(post.headers.get("allow"), "GET, HEAD, OPTIONS");
  assert.deepEqual((await post.json()).error.code, "METHOD_NOT_ALLOWED");
  const head = await fetch(`${url}/functions/v1/health`, { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal((await head.arrayBuffer()).byteLength, 0);
  const withBody = await fetch(`${url}/functions/v1/health`, {
    method: "GET",
    headers: { "content-length": "1" },
  });
  await withBody.body?.cancel();
  assert.deepEqual(withBody.status, 200, "a GET has no body to refuse");
});

Deno.test("health is 503 and says why when PostgREST is down", async () => {
  // A port nothing listens on: take one, then let it go.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadRest = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  listener.close();
  const port = 25397;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "-A",
      new URL("../scripts/serve_one.ts", import.meta.url).pathname,
      "health",
      String(port),
    ],
    env: { ...env, POSTGREST_URL: deadRest },
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const r = await until("the lone health function", 30, async () => {
      try {
        return await fetch(`http://127.0.0.1:${port}/functions/v1/health`);
      } catch {
        return undefined;
      }
    });
    const body = await r.json();
    assert.deepEqual(r.status, 503, JSON.stringify(body));
    assert.deepEqual(body.status, "unhealthy");
    assert.deepEqual(body.checks.database.status, "error");
    assert.ok(body.checks.database.message.length > 0);
    assertCheck(body.checks.storage, "ok");
    assert.deepEqual(body.error.code, "SERVICE_UNHEALTHY");
    assert.deepEqual(body.error.message, "the database did not answer");
    assert.ok(!JSON.stringify(body).includes(env.SUPABASE_SERVICE_ROLE_KEY));
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
