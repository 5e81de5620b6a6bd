// Campaign figures for scripts/bench, on the bench's own stack:
// - the time send-campaign takes to enqueue 100,000 recipients (target ≤ 5 s);
// - emails delivered per second by the dispatcher against the sandbox's rate
//   limit, as a ratio of what the limit allows (target ≥ 0.9);
// - CPU ms and peak memory of one drain invocation, in a process of its own
//   (targets ≤ 2 s CPU, ≤ 64 MB).
import { env, makeTenant, resetSandbox, sql, url } from "../tests/_stack.ts";
import { serveMeasured } from "./bench_common.ts";

const RECIPIENTS = 100_000;
/** Batch requests a second: the sandbox's limit and the stack's RESEND_MAX_RPS. */
const RPS = Number(env.RESEND_MAX_RPS ?? 10);
const WINDOW_S = 30;
const DRAIN_RECIPIENTS = 20_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const f = (n: number) => n.toFixed(2);

async function sandbox(path: string, body: unknown) {
  const r = await fetch(`${env.SANDBOX_URL}/_sandbox/${path}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  await r.body?.cancel();
  if (!r.ok) throw new Error(`sandbox ${path}: ${r.status}`);
}
async function stats(): Promise<Record<string, number>> {
  return await (await fetch(`${env.SANDBOX_URL}/_sandbox/stats`)).json();
}

async function addClients(tenantId: string, n: number) {
  const tag = crypto.randomUUID().slice(0, 6);
  await sql`insert into public.wholesale_clients (tenant_id, name, email, city)
    select ${tenantId}, 'Client ' || g, 'b' || g || '-' || ${tag} || '@bench.test', 'Lyon'
    from generate_series(1, ${n}) g`;
}

function sendCampaign(token: string, schedule?: string) {
  return fetch(`${url}/functions/v1/send-campaign`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      apikey: env.SUPABASE_ANON_KEY,
      "content-type": "application/json",
    },
    body: JSON.stringify({
      campaign_id: crypto.randomUUID(),
      type: "email",
      audience: { type: "all" },
      content: {
        subject: "Spring lines for {{client.name}}",
        body:
          "Hello **{{client.name}}**,\n\nNew stock is in, in {{client.city}}.",
      },
      ...(schedule ? { schedule } : {}),
    }),
  });
}

await resetSandbox();
// Webhooks back to the stack would share this machine's two cores with the
// sender; the sending path alone is measured.
await sandbox("webhooks", { enabled: false });
await sandbox("limits", { resend: RPS });

// 1. Enqueue: one send-campaign request for 100,000 recipients.
const big = await makeTenant();
await addClients(big.id, RECIPIENTS - 1);
await sql`vacuum analyze public.wholesale_clients`;
const t0 = performance.now();
const res = await sendCampaign(big.token);
const answer = await res.json();
const enqueueMs = performance.now() - t0;
if (res.status !== 200 || answer.recipient_count !== RECIPIENTS) {
  throw new Error(`send-campaign: ${res.status} ${JSON.stringify(answer)}`);
}

// 2. Throughput: the dispatcher chain the request kicked, measured over a
// window once it runs, by what the sandbox accepted.
const accepted = async () => (await stats())["resend:accepted"] ?? 0;
while ((await accepted()) < RPS * 100 * 2) await sleep(200);
const a0 = await accepted();
const w0 = performance.now();
await sleep(WINDOW_S * 1000);
const a1 = await accepted();
const perSecond = (a1 - a0) / ((performance.now() - w0) / 1000);
const limited = (await stats())["resend:rate_limited"] ?? 0;
// The rest of the 100,000 is not needed: the campaign is cancelled, and the
// chain stops once nothing is due.
await sql`update public.marketing_campaigns set status = 'cancelled' where id = ${answer.campaign_id}`;

// 3. One drain invocation at a time, in a process of its own, measured from
// /proc: CPU (user + system) and peak resident memory (VmHWM). pg_cron's
// minute call is paused meanwhile, so every batch goes through this process.
await sql`update cron.job set active = false where jobname = 'dispatch-notifications'`;
const port = 26402;
const one = await serveMeasured("dispatch-notifications", port, {
  // Its kicks would start the gateway's dispatcher; here they go nowhere,
  // and this script makes each call itself.
  SUPABASE_URL: "http://127.0.0.1:9",
  PUBLIC_FUNCTIONS_URL: `${url}/functions/v1`,
});
const { cpuMs, memKb } = one;
type Call = { cpu: number; sent: number; ms: number; isolate: number };
const isolateBytes = one.isolate;
const calls: Call[] = [];
let wasmPeak = 0;
try {
  const second = await makeTenant();
  await addClients(second.id, DRAIN_RECIPIENTS - 1);
  // Scheduled a moment ahead: nothing kicks the gateway's dispatcher, and
  // the first call below starts it.
  const at = new Date(Date.now() + 2000).toISOString();
  const r = await sendCampaign(second.token, at);
  const scheduled = await r.json();
  if (scheduled.status !== "scheduled") {
    throw new Error(JSON.stringify(scheduled));
  }
  // The cancelled campaign's chain ends first.
  let last = -1;
  while (last !== (last = await accepted())) await sleep(3000);
  await sleep(Math.max(0, Date.parse(at) - Date.now() + 200));
  const rssBefore = memKb("VmRSS");
  for (;;) {
    const c0 = cpuMs();
    const s0 = performance.now();
    const out = await fetch(`http://127.0.0.1:${port}/`, {
      method: "POST",
      headers: { "x-dispatch-secret": env.DISPATCH_SECRET },
      body: "{}",
    });
    const body = await out.json();
    if (out.status !== 200) throw new Error(JSON.stringify(body));
    const cpu = cpuMs() - c0;
    const ms = performance.now() - s0;
    const mem = await isolateBytes();
    calls.push({
      cpu,
      sent: body.campaigns.sent,
      ms,
      isolate: mem.v8 + mem.wasm,
    });
    wasmPeak = mem.wasm;
    const [c] =
      await sql`select status from public.marketing_campaigns where id = ${scheduled.campaign_id}`;
    if (c.status === "sent") break;
    if (calls.length > 50) throw new Error("the campaign did not finish");
  }
  const peakMb = memKb("VmHWM") / 1024;
  const mb = (bytes: number) => f(bytes / 1048576);
  const busy = calls.filter((c) => c.sent > 0);
  const maxCpu = Math.max(...busy.map((c) => c.cpu));
  const perMessage = busy.reduce((s, c) => s + c.cpu, 0) /
    busy.reduce((s, c) => s + c.sent, 0);

  console.log(
    `\ncampaigns (sandbox limit ${RPS} batch requests/s = ${
      RPS * 100
    } emails/s; RESEND_MAX_RPS=${RPS})`,
  );
  console.log(
    `  enqueue ${RECIPIENTS} recipients (send-campaign through the gateway): ${
      f(enqueueMs / 1000)
    } s   (target ≤ 5)`,
  );
  console.log(
    `  delivered over ${WINDOW_S} s: ${
      perSecond.toFixed(0)
    } emails/s, ratio to the limit ${
      (perSecond / (RPS * 100)).toFixed(3)
    }   (target ≥ 0.9; 429s from the sandbox: ${limited})`,
  );
  console.log(
    `  drain invocations for ${DRAIN_RECIPIENTS} recipients: ${calls.length}; per invocation that sent: ${
      busy.map((c) => `${c.sent} sent in ${f(c.ms / 1000)} s, ${c.cpu} ms CPU`)
        .join("; ")
    }`,
  );
  console.log(
    `  CPU per drain invocation, most: ${maxCpu} ms   (target ≤ 2000); ${
      f(perMessage)
    } ms per message`,
  );
  console.log(
    `  isolate memory after each invocation (V8 heap + external + wasm linear memory), most: ${
      mb(Math.max(...calls.map((c) => c.isolate)))
    } MB, of which wasm ${mb(wasmPeak)} MB   (target ≤ 64)`,
  );
  console.log(
    `  the whole process for comparison (VmHWM, Deno runtime included): peak ${
      f(peakMb)
    } MB, ${f(rssBefore / 1024)} MB before the first call`,
  );
} finally {
  await sql`update cron.job set active = true where jobname = 'dispatch-notifications'`;
  await one.stop();
  await sql.end();
}
