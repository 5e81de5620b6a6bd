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

  // A row nothing else will deliver: inserted directly, with no trigger.
  const t = await makeTenant();
  const [row] =
    await sql`insert into public.notification_outbox (tenant_id, channel, template, recipient, payload)
    values (${t.id}, 'email', 'order_confirmation', 'cron@client.test', jsonb_build_object(
      'order_number', 'CRON-' || gen_random_uuid(), 'business_name', 'Cron Co', 'total_amount', 1, 'items', '[]'::jsonb))
    returning id::text`;
  const since = new Date();

  const deadline = Date.now() + 80_000;
  let delivered = false;
  while (Date.now() < deadline && !delivered) {
    await new Promise((r) => setTimeout(r, 1000));
    const [r] =
      await sql`select status from public.notification_outbox where id = ${row.id}`;
    delivered = r.status === "sent";
  }
  assert.ok(delivered, "the scheduled run delivered the row");

  const runs =
    await sql`select status from cron.job_run_details d join cron.job j using (jobid)
    where j.jobname = 'dispatch-notifications' and d.start_time >= ${since}`;
  assert.ok(runs.some((r) => r.status === "succeeded"), JSON.stringify(runs));
  const responses =
    await sql`select status_code, content from net._http_response where created >= ${since}
    and content like '%claimed%'`;
  assert.ok(
    responses.length >= 1,
    "the function's answer was recorded, as pg_net records it",
  );
  assert.equal(responses[0].status_code, 200);
  assert.ok(JSON.parse(responses[0].content).claimed >= 1);
});
