// execute-workflow end to end: supabase-js → gateway → function → Postgres,
// and the runs advanced by the dispatcher, whose messages reach the provider
// sandbox. Workflow time is moved with the test-only SQL hook
// (private.advance_workflow_clock), never by sleeping.
import assert from "node:assert/strict";
import {
  assertBoundary,
  env,
  invoke,
  makeTenant,
  order,
  resetSandbox,
  sent,
  sql,
  type Tenant,
  until,
  url,
} from "./_stack.ts";

const DISPATCH = `${url}/functions/v1/dispatch-notifications`;

/** Runs the dispatcher as pg_cron does: due runs first, then the outbox. */
async function dispatch() {
  const r = await fetch(DISPATCH, {
    method: "POST",
    headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
    body: "{}",
  });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

/** Dispatches until nothing of the tenant waits in the outbox. */
async function deliverAll(tenantId: string) {
  await until("the outbox delivered", 60, async () => {
    await dispatch();
    const [{ n }] =
      await sql`select count(*)::int as n from public.notification_outbox
      where tenant_id = ${tenantId} and status in ('pending', 'sending')`;
    return n === 0 ? true : undefined;
  });
}

async function saveWorkflow(t: Tenant, def: Record<string, unknown>) {
  const { data, error } = await t.db.from("marketing_workflows").insert({
    tenant_id: t.id,
    name: "wf",
    ...def,
  }).select("id").single();
  if (error) throw new Error(JSON.stringify(error));
  return data.id as string;
}

async function runsOf(workflowId: string) {
  return [
    ...await sql`select id, status, subject::text, step, last_error, event_id
      from public.workflow_runs where workflow_id = ${workflowId} order by created_at`,
  ];
}

/** The test owns the workflow clock: back to real time after each test. */
async function resetClock() {
  await sql`update private.workflow_clock set skew = '0'`;
}

/** Moves workflow time to noon UTC today, so quiet hours stay out of the way. */
async function noonUtc() {
  await sql`update private.workflow_clock
    set skew = date_trunc('day', now() at time zone 'UTC') at time zone 'UTC' + interval '12 hours'
               - clock_timestamp()`;
}

Deno.test("the seed's example: an order over 5,000 → an email → wait P3D → an SMS, exactly once", async () => {
  await resetSandbox();
  await noonUtc();
  try {
    const t = await makeTenant({ stock: 1000, creditLimit: null });
    const tag = crypto.randomUUID().slice(0, 8);
    const am = `am-${tag}@tenant.test`;
    const phone = `+1555${
      String(Math.floor(Math.random() * 1e7)).padStart(7, "0")
    }`;
    await sql`update public.wholesale_clients set phone = ${phone}, name = 'Ada & Co' where id = ${t.clientId}`;
    const wf = await saveWorkflow(t, {
      trigger_event: "order.created",
      conditions: {
        all: [{ field: "event.total_amount", op: "gt", value: 5000 }],
      },
      actions: [
        {
          type: "send_email",
          to: am,
          subject: "Big order {{event.order_number}}",
          body: "{{client.name}} ordered {{event.total_amount}}.",
        },
        { type: "wait", duration: "P3D" },
        {
          type: "send_sms",
          body: "Thank you for your order, {{client.name}}!",
        },
      ],
    });
    // One order under the threshold, one over.
    const small = await invoke(t.db, "create-wholesale-order", order(t));
    assert.equal(small.status, 201, JSON.stringify(small.body));
    const big = await invoke(
      t.db,
      "create-wholesale-order",
      order(t, {
        items: [{ product_id: t.products[0], quantity: 2, unit_price: 3000 }],
      }),
    );
    assert.equal(big.status, 201, JSON.stringify(big.body));
    const orderNumber = big.body.order_number ?? big.body.order?.order_number;

    // The order's own kick runs the dispatcher: the run starts and its email
    // leaves, without waiting for the minute.
    const email = await until("the account manager's email", 30, async () => {
      const m = (await sent("resend")).filter((s) => s.body.to?.[0] === am);
      return m.length ? m : undefined;
    });
    assert.equal(email.length, 1);
    assert.equal(email[0].body.subject, `Big order ${orderNumber}`);
    assert.match(email[0].body.text, /^Ada & Co ordered 6000\.00\./);
    assert.match(email[0].body.html, /Ada &amp; Co ordered 6000\.00\./);
    const runs = await runsOf(wf);
    assert.equal(runs.length, 1, "only the order over 5,000 starts a run");
    assert.equal(runs[0].status, "waiting");

    // A day short of three: nothing more, however often the dispatcher runs.
    await sql`select private.advance_workflow_clock('71 hours')`;
    await dispatch();
    await dispatch();
    // The client's order confirmations go to the same phone: the workflow's
    // SMS is the one with its text.
    const toPhone = async () =>
      (await sent("twilio")).filter((s) =>
        s.body.to === phone &&
        s.body.body.includes("Thank you for your order")
      );
    assert.equal((await toPhone()).length, 0, "no SMS before three days");

    await sql`select private.advance_workflow_clock('61 minutes')`;
    await deliverAll(t.id);
    await dispatch();
    const sms = await toPhone();
    assert.equal(sms.length, 1, "one SMS");
    const [{ business_name }] =
      await sql`select business_name from public.tenants where id = ${t.id}`;
    assert.equal(
      sms[0].body.body,
      `${business_name}: Thank you for your order, Ada & Co!\nReply STOP to opt out`,
    );
    assert.equal(
      (await sent("resend")).filter((s) => s.body.to?.[0] === am).length,
      1,
      "and still one email",
    );
    const [run] = await runsOf(wf);
    assert.equal(run.status, "completed");
    // The SMS step ran three days after the wait began, by workflow time.
    const [timing] = await sql`select
        extract(epoch from (max((detail ->> 'until')::timestamptz) filter (where type = 'wait')
          - max(at) filter (where type = 'send_email'))) as waited,
        extract(epoch from (max(at) filter (where type = 'send_sms')
          - max((detail ->> 'until')::timestamptz) filter (where type = 'wait'))) as after
      from public.workflow_step_runs where run_id = ${run.id}`;
    assert.ok(
      Math.abs(Number(timing.waited) - 3 * 86400) < 5,
      `the wait was three days from the email (${timing.waited} s)`,
    );
    assert.ok(
      Number(timing.after) >= 0 && Number(timing.after) < 3700,
      `the SMS went once the wait was over (${timing.after} s after)`,
    );
    const steps =
      await sql`select step_path, type, outcome from public.workflow_step_runs
      where run_id = ${run.id} order by id`;
    assert.deepEqual(
      steps.map((s) => `${s.step_path}:${s.type}:${s.outcome}`),
      [
        "0:send_email:done",
        "1:wait:waiting",
        "1:wait:done",
        "2:send_sms:done",
      ],
    );
  } finally {
    await resetClock();
  }
});

Deno.test("wait_for_event: an order within the window takes matched; none takes timed_out", async () => {
  await resetSandbox();
  await noonUtc();
  try {
    const t = await makeTenant({ stock: 1000 });
    const [other] =
      await sql`insert into public.wholesale_clients (tenant_id, name, email)
      values (${t.id}, 'Other', ${`o-${
        crypto.randomUUID().slice(0, 8)
      }@c.test`}) returning id::text`;
    const wf = await saveWorkflow(t, {
      trigger_event: "quote.sent",
      actions: [{
        type: "wait_for_event",
        event: "order.created",
        timeout: "P7D",
        matched: [{ type: "update_client", add_tags: ["converted"] }],
        timed_out: [{ type: "update_client", add_tags: ["lost"] }],
      }],
    });
    for (const client of [t.clientId, other.id]) {
      const r = await invoke(t.db, "execute-workflow", {
        trigger_event: "quote.sent",
        event_data: { client_id: client, quote: "Q-1" },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.workflows_executed, 1);
      assert.equal(r.body.actions_taken, 0);
      assert.equal(r.body.runs[0].status, "waiting");
    }
    // Two days on, the first client orders.
    await sql`select private.advance_workflow_clock('2 days')`;
    const placed = await invoke(t.db, "create-wholesale-order", order(t));
    assert.equal(placed.status, 201);
    await deliverAll(t.id);
    const tags = async (id: string) =>
      (await sql`select tags from public.wholesale_clients where id = ${id}`)[0]
        .tags;
    assert.deepEqual(await tags(t.clientId), ["converted"]);
    assert.deepEqual(await tags(other.id), [], "the other client still waits");
    await sql`select private.advance_workflow_clock('6 days')`;
    await dispatch();
    assert.deepEqual(await tags(other.id), ["lost"]);
    const outcomes =
      await sql`select r.subject::text, s.outcome from public.workflow_step_runs s
      join public.workflow_runs r on r.id = s.run_id
      where r.workflow_id = ${wf} and s.step_path = '0' and s.outcome <> 'waiting'`;
    assert.deepEqual(
      Object.fromEntries(outcomes.map((o) => [o.subject, o.outcome])),
      { [t.clientId]: "matched", [other.id]: "timed_out" },
    );
  } finally {
    await resetClock();
  }
});

Deno.test("a drain killed mid-step: the run resumes, and the message is sent once", async () => {
  await resetSandbox();
  await noonUtc();
  const blocker = await sql.reserve();
  try {
    const t = await makeTenant();
    const to = `ops-${crypto.randomUUID().slice(0, 8)}@tenant.test`;
    const wf = await saveWorkflow(t, {
      trigger_event: "lead.created",
      actions: [
        { type: "update_client", add_tags: ["lead"] },
        {
          type: "send_email",
          to,
          subject: "New lead",
          body: "{{client.name}} is a lead.",
        },
      ],
    });
    // The event, recorded directly: the run waits for a drain.
    await sql`select private.emit_event(${t.id}::uuid, 'lead.created', ${t.clientId}::uuid, '{}'::jsonb)`;
    const [run] = await runsOf(wf);
    // Another transaction holds the outbox id the email step will write, so
    // the drain stops inside that step, after its first step's update.
    await blocker`begin`;
    await blocker`insert into public.notification_outbox (id, tenant_id, channel, template, recipient)
      values (private.wf_message_id(${run.id}::uuid, '1'), ${t.id}, 'email', 'workflow_message', ${to})`;
    const drain = fetch(DISPATCH, {
      method: "POST",
      headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
      body: "{}",
    });
    const [stuck] = await until("the drain inside the step", 30, async () => {
      const rows = await sql`select pid from pg_stat_activity
        where query ilike '%advance_workflow_runs%' and wait_event_type = 'Lock' and pid <> pg_backend_pid()`;
      return rows.length ? [...rows] : undefined;
    });
    await sql`select pg_terminate_backend(${stuck.pid})`;
    // The dispatcher survives its drain's death and answers.
    const answered = await drain;
    assert.equal(answered.status, 200, await answered.text());
    await blocker`rollback`;
    const [mid] =
      await sql`select status, step, (select tags from public.wholesale_clients where id = ${t.clientId}) as tags
      from public.workflow_runs where id = ${run.id}`;
    assert.equal(mid.status, "active", "the killed drain changed nothing");
    assert.deepEqual(mid.step, ["0"]);
    assert.deepEqual(mid.tags, []);

    await deliverAll(t.id);
    await dispatch();
    const [done] =
      await sql`select status from public.workflow_runs where id = ${run.id}`;
    assert.equal(done.status, "completed");
    const emails = (await sent("resend")).filter((s) => s.body.to?.[0] === to);
    assert.equal(emails.length, 1, "one email, no duplicate");
    const [{ tags }] =
      await sql`select tags from public.wholesale_clients where id = ${t.clientId}`;
    assert.deepEqual(tags, ["lead"]);
    const steps =
      await sql`select step_path || ':' || outcome as s from public.workflow_step_runs
      where run_id = ${run.id} order by id`;
    assert.deepEqual(steps.map((s) => s.s), ["0:done", "1:done"]);
  } finally {
    await blocker`rollback`.catch(() => {});
    blocker.release();
    await resetClock();
  }
});

Deno.test("1,000 orders at once start 1,000 runs (every_time) and one per client (once)", async () => {
  const t = await makeTenant({
    stock: 0,
    creditLimit: null,
    maxConcurrent: 16,
  });
  await sql`update public.wholesale_inventory set quantity = 1000000 where product_id = ${
    t.products[0]
  }`;
  await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
    values (${t.id}, 'create-wholesale-order', 100000, 60)`;
  const clients = [
    t.clientId,
    ...(await sql`insert into public.wholesale_clients (tenant_id, name)
      select ${t.id}, 'C' || g from generate_series(1, 9) g returning id::text`)
      .map((r) => r.id),
  ];
  // No confirmations: these clients have no address.
  await sql`update public.wholesale_clients set email = null, phone = null where tenant_id = ${t.id}`;
  const steps = [{ type: "wait", duration: "P1D" }, {
    type: "update_client",
    add_tags: ["ordered"],
  }];
  const every = await saveWorkflow(t, {
    trigger_event: "order.created",
    actions: steps,
  });
  const once = await saveWorkflow(t, {
    trigger_event: "order.created",
    reentry: "once",
    actions: steps,
  });
  let next = 0;
  const statuses: Record<number, number> = {};
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < 1000) {
      const i = next++;
      const r = await invoke(
        t.db,
        "create-wholesale-order",
        order(t, { client_id: clients[i % clients.length] }),
      );
      statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    }
  }));
  assert.deepEqual(statuses, { 201: 1000 });
  const [counts] = await sql`select
      (select count(*)::int from public.platform_events where tenant_id = ${t.id} and type = 'order.created') as events,
      (select count(*)::int from public.workflow_runs where workflow_id = ${every}) as every,
      (select count(distinct event_id)::int from public.workflow_runs where workflow_id = ${every}) as every_events,
      (select count(*)::int from public.workflow_runs where workflow_id = ${once}) as once,
      (select count(distinct subject)::int from public.workflow_runs where workflow_id = ${once}) as once_subjects`;
  assert.deepEqual(counts, {
    events: 1000,
    every: 1000,
    every_events: 1000,
    once: 10,
    once_subjects: 10,
  });
});

Deno.test("execute-workflow: its boundary, 404s, replays, and a broken definition refused", async () => {
  const t = await makeTenant();
  const b = await makeTenant();
  const wf = await saveWorkflow(t, {
    trigger_event: "lead.created",
    actions: [{ type: "update_client", add_tags: ["lead"] }],
  });
  const bWf = await saveWorkflow(b, {
    trigger_event: "lead.created",
    actions: [{ type: "update_client", add_tags: ["lead"] }],
  });
  const count = async () =>
    (await sql`select count(*)::int as n from public.platform_events where tenant_id = ${t.id}`)[
      0
    ]
      .n;
  const before = await count();
  const valid = {
    trigger_event: "lead.created",
    event_data: { client_id: t.clientId, note: "fair" },
  };
  await assertBoundary(
    t,
    "execute-workflow",
    valid,
    async () => (await count()) !== before,
    "event_data.note",
  );

  for (
    const [body, what] of [
      [{ ...valid, workflow_id: bWf }, "another tenant's workflow"],
      [{ ...valid, workflow_id: crypto.randomUUID() }, "an unknown workflow"],
      [{
        ...valid,
        event_data: { client_id: b.clientId },
      }, "another tenant's client"],
      [{ ...valid, tenant_id: b.id }, "a tenant the user is not in"],
    ] as const
  ) {
    const r = await invoke(t.db, "execute-workflow", body);
    assert.equal(r.status, 404, `${what}: ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error.code, "NOT_FOUND");
  }
  const bad = await invoke(t.db, "execute-workflow", {
    trigger_event: "Lead Created!",
    event_data: [],
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(bad.body.error.details).sort(), [
    "event_data",
    "trigger_event",
  ]);
  assert.equal(await count(), before, "nothing refused was recorded");

  // The same Idempotency-Key, twice at once and once more: one event, one run.
  const key = crypto.randomUUID();
  const calls = await Promise.all(
    [0, 1, 2].map(() =>
      invoke(t.db, "execute-workflow", { ...valid, workflow_id: wf }, {
        "idempotency-key": key,
      })
    ),
  );
  assert.deepEqual(calls.map((c) => c.status), [200, 200, 200]);
  assert.deepEqual(
    calls.map((c) => c.body.replayed).sort(),
    [false, true, true],
  );
  assert.equal(new Set(calls.map((c) => c.body.event_id)).size, 1);
  assert.equal(calls.find((c) => !c.body.replayed)!.body.actions_taken, 1);
  assert.equal((await runsOf(wf)).length, 1);
  const reused = await invoke(t.db, "execute-workflow", {
    ...valid,
    event_data: { client_id: t.clientId, note: "other" },
  }, { "idempotency-key": key });
  assert.equal(reused.status, 422);
  assert.equal(reused.body.error.code, "IDEMPOTENCY_KEY_REUSED");
  const [{ tags }] =
    await sql`select tags from public.wholesale_clients where id = ${t.clientId}`;
  assert.deepEqual(tags, ["lead"], "the action ran once");

  // A broken definition is refused with every error by path.
  const broken = await t.db.from("marketing_workflows").insert({
    tenant_id: t.id,
    name: "broken",
    trigger_event: "order.created",
    actions: [{ type: "wait", duration: "3 days" }, {
      type: "send_sms",
      body: "{{client.secret}}",
    }],
  });
  assert.deepEqual(Object.keys(JSON.parse(broken.error!.details)).sort(), [
    "actions[0].duration",
    "actions[1].body",
  ]);
});

Deno.test("a webhook step: signed, delivered once; a private address is refused at saving and at a redirect", async () => {
  await resetSandbox();
  const t = await makeTenant();
  // The test-only switch, in the database as in the stack's settings
  // (WEBHOOK_ALLOW_HOSTS): the sandbox, over http on loopback.
  const sandboxHost = new URL(env.SANDBOX_URL).host;
  await sql`insert into private.webhook_allowed_hosts values (${sandboxHost}) on conflict do nothing`;
  try {
    const tag = crypto.randomUUID().slice(0, 8);
    const refused = await t.db.from("marketing_workflows").insert({
      tenant_id: t.id,
      name: "private",
      trigger_event: "deal.won",
      actions: [{ type: "webhook", url: "https://10.0.0.1/hook" }],
    });
    assert.match(
      JSON.parse(refused.error!.details)["actions[0].url"],
      /private/,
    );
    const toPrivate = `${env.SANDBOX_URL}/_sandbox/hooks/redirect?to=${
      encodeURIComponent("https://10.0.0.1/hook")
    }`;
    const wf = await saveWorkflow(t, {
      trigger_event: "deal.won",
      actions: [
        {
          type: "webhook",
          url: `${env.SANDBOX_URL}/_sandbox/hooks/${tag}`,
          data: { crm: "pipedrive" },
        },
        { type: "webhook", url: toPrivate },
      ],
    });
    const r = await invoke(t.db, "execute-workflow", {
      trigger_event: "deal.won",
      event_data: { client_id: t.clientId, amount: 1200 },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.actions_taken, 2);
    await deliverAll(t.id);
    await dispatch();

    const calls = (await (await fetch(`${env.SANDBOX_URL}/_sandbox/hooks`))
      .json()).filter((c: { path: string }) => c.path === tag);
    assert.equal(calls.length, 1, "delivered once");
    const call = calls[0];
    const body = JSON.parse(call.body);
    assert.equal(body.type, "workflow.step");
    assert.equal(body.workflow_id, wf);
    assert.deepEqual(body.event, { client_id: t.clientId, amount: 1200 });
    assert.deepEqual(body.data, { crm: "pipedrive" });
    assert.equal(body.client.id, t.clientId);
    const [row] = await sql`select id::text from public.notification_outbox
      where channel = 'webhook' and payload ->> 'workflow_id' = ${wf} and payload ->> 'step' = '0'`;
    assert.equal(
      call.headers["webhook-id"],
      row.id,
      "the id is the outbox row's",
    );

    // The signature verifies with the secret the tenant's admin reads.
    const { data: secret, error } = await t.db.rpc("workflow_webhook_secret", {
      tenant_id: t.id,
    });
    assert.equal(error, null);
    const key = await crypto.subtle.importKey(
      "raw",
      Uint8Array.from(
        atob(secret.slice("whsec_".length)),
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
        new TextEncoder().encode(
          `${call.headers["webhook-id"]}.${
            call.headers["webhook-timestamp"]
          }.${call.body}`,
        ),
      ),
    );
    assert.equal(
      call.headers["webhook-signature"],
      `v1,${btoa(String.fromCharCode(...mac))}`,
    );
    assert.ok(
      Math.abs(Number(call.headers["webhook-timestamp"]) - Date.now() / 1000) <
        300,
    );

    // The second step's endpoint redirects to a private address: refused at
    // that hop, for good, and nothing is retried.
    const [dead] =
      await sql`select status, last_error from public.notification_outbox
      where channel = 'webhook' and payload ->> 'workflow_id' = ${wf} and payload ->> 'step' = '1'`;
    assert.equal(dead.status, "dead");
    assert.match(dead.last_error, /10\.0\.0\.1 is a private address/);
    const stats = await (await fetch(`${env.SANDBOX_URL}/_sandbox/stats`))
      .json();
    assert.equal(stats["hooks:redirected"], 1);
  } finally {
    await sql`delete from private.webhook_allowed_hosts where host = ${sandboxHost}`;
  }
});

Deno.test("the daily client.inactive job, as pg_cron runs it: 1,203 clients in transactions of 500, once a day", async () => {
  const t = await makeTenant();
  await sql`insert into public.wholesale_clients (tenant_id, name)
    select ${t.id}, 'Quiet ' || g from generate_series(1, 1202) g`;
  const wf = await saveWorkflow(t, {
    trigger_event: "client.inactive",
    inactive_days: 30,
    actions: [{ type: "wait", duration: "P1D" }],
  });
  const [job] =
    await sql`select command from cron.job where jobname = 'emit-inactive-client-events'`;
  await sql`select private.advance_workflow_clock('31 days')`;
  try {
    await sql.unsafe(job.command);
    await sql.unsafe(job.command);
    const [{ events }] =
      await sql`select count(*)::int as events from public.platform_events
      where tenant_id = ${t.id} and type = 'client.inactive'`;
    assert.equal(
      events,
      1203,
      "one event a client, however often it runs that day",
    );
    assert.equal((await runsOf(wf)).length, 1203);
  } finally {
    await resetClock();
  }
});

Deno.test("one tenant's flood of execute-workflow gets 429s and records no more than its limit; another tenant is served", async () => {
  const a = await makeTenant();
  const b = await makeTenant();
  const count = async (t: Tenant) =>
    (await sql`select count(*)::int as n from public.platform_events
      where tenant_id = ${t.id} and type = 'flood.test'`)[0].n;
  const statuses: Record<number, number> = {};
  let next = 0;
  let bStatus = 0;
  const started = performance.now();
  await Promise.all([
    ...Array.from({ length: 8 }, async () => {
      while (next++ < 160) {
        const r = await invoke(a.db, "execute-workflow", {
          trigger_event: "flood.test",
        });
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        if (r.status === 429) {
          assert.equal(r.body.error.code, "RATE_LIMITED");
          assert.ok(Number(r.headers.get("retry-after")) >= 1);
        }
      }
    }),
    (async () => {
      await new Promise((r) => setTimeout(r, 200));
      const r = await invoke(b.db, "execute-workflow", {
        trigger_event: "flood.test",
      });
      bStatus = r.status;
    })(),
  ]);
  const seconds = (performance.now() - started) / 1000;
  assert.ok((statuses[429] ?? 0) >= 20, JSON.stringify(statuses));
  assert.deepEqual(Object.keys(statuses).sort(), ["200", "429"]);
  assert.equal(
    await count(a),
    statuses[200],
    "each 200 recorded one event, each 429 none",
  );
  // The bucket holds 120 and refills at 2 a second.
  assert.ok(
    statuses[200] <= 120 + Math.ceil(2 * seconds),
    `no more than the tenant's limit: ${statuses[200]} in ${seconds} s`,
  );
  assert.equal(bStatus, 200, "the other tenant is not limited by A's flood");
  assert.equal(await count(b), 1);
});
