// The every-minute job defined in a migration fires (pg_cron), calls the
// dispatcher through net.http_post with the URL and key from Vault, and the
// function delivers what is due. Waits for the next minute: up to ~75 s.
import assert from "node:assert/strict";
import { env, makeTenant, sql } from "./_stack.ts";

Deno.test("the dispatch job defined in a migration fires locally and reaches the function", async () => {
  const [job] =
    await sql`select schedule, command from cron.job where jobname = 'dispatch-notifications'`;
  assert.equal(job.schedule, "* * * * *");
  assert.match(job.command, /net\.http_post/);
  assert.match(job.command, /vault\.decrypted_secrets/);

  // No fault left over from another test may stop the send.
  await (await fetch(`${env.SANDBOX_URL}/_sandbox`, { method: "DELETE" })).body
    ?.cancel();

  // Delivery kicks from earlier tests start 250 ms after their order and run
  // at most twice more; let them finish, so that only the schedule is left.
  await new Promise((r) => setTimeout(r, 2000));

  // A row nothing else will deliver: inserted directly, with no trigger. Its
  // payload has what the order confirmation's template reads (a template
  // refuses a missing value rather than print a blank).
  const t = await makeTenant();
  const [row] =
    await sql`insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
    values (${t.id}, 'email', 'order_confirmation', 'cron@client.test', jsonb_build_object(
      'order_number', 'CRON-' || gen_random_uuid(), 'business_name', 'Cron Co', 'total_amount', 1,
      'payment_terms', 'prepaid', 'delivery_method', 'pickup', 'items', '[]'::jsonb))
    returning id::text`;
  const since = new Date();

  const deadline = Date.now() + 80_000;
  let delivered = false;
  // deno-lint-ignore no-explicit-any
  let runs: any[] = [];
  while (
    Date.now() < deadline &&
    !(delivered && runs.some((r) => r.status === "succeeded"))
  ) {
    await new Promise((r) => setTimeout(r, 1000));
    const [r] =
      await sql`select status from public.notification_outbox where id = ${row.id}`;
    delivered = r.status === "sent";
    runs =
      await sql`select status from cron.job_run_details d join cron.job j using (jobid)
      where j.jobname = 'dispatch-notifications' and d.start_time >= ${since}`;
  }
  assert.ok(delivered, "the row was delivered");
  assert.ok(runs.some((r) => r.status === "succeeded"), JSON.stringify(runs));
  // The answer is recorded when the call returns, after the delivery.
  // deno-lint-ignore no-explicit-any
  let responses: any[] = [];
  for (let i = 0; i < 30 && responses.length === 0; i++) {
    responses = [
      ...await sql`select status_code, content from net._http_response where created >= ${since}
      and content like '%claimed%'`,
    ];
    if (responses.length === 0) await new Promise((r) => setTimeout(r, 1000));
  }
  assert.ok(
    responses.length >= 1,
    "the function's answer was recorded, as pg_net records it",
  );
  assert.equal(responses[0].status_code, 200);
  assert.ok(JSON.parse(responses[0].content).claimed >= 1);
});
