// Per-tenant rate limits through the gateway: 429 with Retry-After and the
// IETF RateLimit headers, then requests pass again once the bucket refills.
import assert from "node:assert/strict";
import { invoke, makeTenant, order, ordersOf, sql } from "./_stack.ts";

Deno.test("over the limit is 429 with correct headers, and the window lets requests through again", async () => {
  const t = await makeTenant();
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${t.id}, 'create-wholesale-order', 3, 2)`;
  const other = await makeTenant();

  for (let i = 0; i < 3; i++) {
    assert.equal(
      (await invoke(t.db, "create-wholesale-order", order(t))).status,
      201,
    );
  }
  const refused = await invoke(t.db, "create-wholesale-order", order(t));
  assert.equal(refused.status, 429);
  assert.equal(refused.body.error.code, "RATE_LIMITED");
  assert.deepEqual(refused.body.error.details, {
    function: "create-wholesale-order",
    limit: 3,
    window_seconds: 2,
    retry_after: 1,
  });
  assert.equal(refused.headers.get("retry-after"), "1");
  assert.equal(
    refused.headers.get("ratelimit-policy"),
    '"create-wholesale-order";q=3;w=2',
  );
  assert.equal(
    refused.headers.get("ratelimit"),
    '"create-wholesale-order";r=0;t=1',
  );
  assert.equal(await ordersOf(t.id), 3);

  // Another tenant has its own bucket.
  assert.equal(
    (await invoke(other.db, "create-wholesale-order", order(other))).status,
    201,
  );

  // After Retry-After, a request passes again.
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(
    (await invoke(t.db, "create-wholesale-order", order(t))).status,
    201,
  );
  assert.equal(await ordersOf(t.id), 4);
});
