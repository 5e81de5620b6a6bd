// Workflow figures for scripts/bench, on the bench's own stack:
// - events a second turned into started runs: recorded in one statement (as
//   a bulk job would), and injected through execute-workflow by 8 clients;
// - steps a second through the drain (advance_workflow_runs, as the
//   dispatcher and pg_cron call it);
// - CPU ms per step: the database backend that ran the drain, from /proc
//   (the steps run in SQL; the function's share is one RPC a batch).
import { env, makeTenant, sql, url } from "../tests/_stack.ts";

const EVENTS = 10_000;
const REQUESTS = 1_000;
const CONCURRENCY = 8;
const f = (n: number) => n.toFixed(2);

const t = await makeTenant({ maxConcurrent: CONCURRENCY });
await sql`insert into public.rate_limit_policies (tenant_id, function_name, max_requests, window_seconds)
  values (${t.id}, 'execute-workflow', 1000000, 60)`;
await sql`update public.wholesale_clients set email = null, phone = null where tenant_id = ${t.id}`;
const clients =
  (await sql`insert into public.wholesale_clients (tenant_id, name)
  select ${t.id}, 'W' || g from generate_series(1, 99) g returning id::text`)
    .map((r) => r.id);
clients.push(t.clientId);
// Three steps a run: a branch, a client update, and a wait registered.
const actions = [
  {
    type: "branch",
    if: { field: "event.n", op: "gte", value: 0 },
    then: [{ type: "update_client", add_tags: ["bench"] }],
  },
  { type: "wait", duration: "P1D" },
];
for (const trigger of ["bench.event", "bench.request"]) {
  await sql`insert into public.marketing_workflows (tenant_id, name, trigger_event, actions)
    values (${t.id}, ${trigger}, ${trigger}, ${sql.json(actions)})`;
}
// A workflow the events do not trigger, as a tenant has several.
await sql`insert into public.marketing_workflows (tenant_id, name, trigger_event, actions)
  values (${t.id}, 'other', 'order.created', ${sql.json(actions)})`;

// pg_cron's drains would take some of these runs (and their clients' row
// locks) meanwhile: paused while this measures, restored at the end.
await sql`update cron.job set active = false where jobname in ('advance-workflows', 'dispatch-notifications')`;

// 1. Events recorded in one statement: each starts its run in the trigger.
const cpuOf = (pid: number) => {
  const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]
    .split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // USER_HZ = 100
};
const conn = await sql.reserve();
const [{ pid }] = await conn`select pg_backend_pid() as pid`;
let c0 = cpuOf(pid);
let t0 = performance.now();
await conn`insert into public.platform_events (tenant_id, type, subject, payload)
  select ${t.id}, 'bench.event', (${clients}::uuid[])[1 + g % ${clients.length}],
         jsonb_build_object('n', g)
  from generate_series(1, ${EVENTS}) g`;
const bulkS = (performance.now() - t0) / 1000;
const bulkCpu = cpuOf(pid) - c0;
const [{ started }] =
  await sql`select count(*)::int as started from public.workflow_runs r
  join public.marketing_workflows w on w.id = r.workflow_id where w.tenant_id = ${t.id} and w.name = 'bench.event'`;
if (started !== EVENTS) throw new Error(`${started} runs for ${EVENTS} events`);

// 2. The drain: every run's three steps, batch after batch, on one backend.
c0 = cpuOf(pid);
t0 = performance.now();
let steps = 0;
for (;;) {
  const [{ r }] = await conn`select public.advance_workflow_runs(500) as r`;
  if (r.runs === 0) break;
}
const drainS = (performance.now() - t0) / 1000;
const drainCpu = cpuOf(pid) - c0;
[{ steps }] =
  await sql`select count(*)::int as steps from public.workflow_step_runs s
  join public.workflow_runs r on r.id = s.run_id join public.marketing_workflows w on w.id = r.workflow_id
  where w.tenant_id = ${t.id} and w.name = 'bench.event'`;
const [{ waiting }] =
  await sql`select count(*)::int as waiting from public.workflow_runs r
  join public.marketing_workflows w on w.id = r.workflow_id
  where w.tenant_id = ${t.id} and w.name = 'bench.event' and r.status = 'waiting'`;
if (waiting !== EVENTS) {
  throw new Error(`${waiting} of ${EVENTS} runs reached the wait`);
}
conn.release();

// 3. Through the gateway: execute-workflow records the event, starts the run
// and advances it within the request.
let next = 0;
t0 = performance.now();
await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
  while (next < REQUESTS) {
    const i = next++;
    const r = await fetch(`${url}/functions/v1/execute-workflow`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${t.token}`,
        apikey: env.SUPABASE_ANON_KEY,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        trigger_event: "bench.request",
        event_data: { client_id: clients[i % clients.length], n: i },
      }),
    });
    const body = await r.json();
    if (r.status !== 200 || body.workflows_executed !== 1) {
      throw new Error(`${r.status} ${JSON.stringify(body)}`);
    }
  }
}));
const requestS = (performance.now() - t0) / 1000;

console.log(
  `\nworkflows (one tenant, 100 clients, runs of a branch, a client update and a wait)`,
);
console.log(
  `  ${EVENTS} events in one statement → ${EVENTS} started runs: ${
    f(bulkS)
  } s, ${(EVENTS / bulkS).toFixed(0)} events/s, ${
    f(bulkCpu / EVENTS)
  } ms database CPU an event`,
);
console.log(
  `  the drain (advance_workflow_runs, 500 a call): ${steps} steps in ${
    f(drainS)
  } s, ${(steps / drainS).toFixed(0)} steps/s, ${
    f(drainCpu / steps)
  } ms database CPU a step`,
);
console.log(
  `  execute-workflow through the gateway, ${CONCURRENCY} clients: ${REQUESTS} events in ${
    f(requestS)
  } s, ${
    (REQUESTS / requestS).toFixed(0)
  } events/s, each run started and advanced to its wait within its request`,
);
await sql`update cron.job set active = true where jobname in ('advance-workflows', 'dispatch-notifications')`;
await sql.end();
