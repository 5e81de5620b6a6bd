// The measurements behind scripts/bench. Prints a table and the ratios.
import { env, makeTenant, order, sql, url } from "../tests/_stack.ts";

const restUrl = `http://127.0.0.1:${Deno.env.get("REST_PORT")}`;
const CONCURRENCY = 8;
const PER_ROUND = 400;
const ROUNDS = 3;

const t = await makeTenant({ products: 1, stock: 0 });
await sql`update public.wholesale_inventory set quantity = 99999999 where product_id = ${
  t.products[0]
}`;
const anon = env.SUPABASE_ANON_KEY;
const payload = order(t);
const headers = {
  authorization: `Bearer ${t.token}`,
  apikey: anon,
  "content-type": "application/json",
};
const viaGateway = () =>
  fetch(`${url}/functions/v1/create-wholesale-order`, {
    method: "POST",
    headers,
    body: JSON.stringify(payload),
  });
const direct = () =>
  fetch(`${restUrl}/rpc/create_wholesale_order`, {
    method: "POST",
    headers,
    body: JSON.stringify({ payload }),
  });

/** `count` requests over `CONCURRENCY` workers; returns latencies (ms) and wall time. */
async function load(send: () => Promise<Response>, count: number) {
  const latencies: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < count) {
        const t0 = performance.now();
        const res = await send();
        await res.arrayBuffer();
        if (res.status >= 300) throw new Error(`status ${res.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return { latencies, wall: performance.now() - start };
}

function pct(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// Warm both paths, then alternate rounds so drift hits both alike.
await load(viaGateway, 100);
await load(direct, 100);
const totals = {
  gateway: { latencies: [] as number[], wall: 0 },
  direct: { latencies: [] as number[], wall: 0 },
};
for (let round = 0; round < ROUNDS; round++) {
  for (
    const [name, send] of [["gateway", viaGateway], ["direct", direct]] as const
  ) {
    const r = await load(send, PER_ROUND);
    totals[name].latencies.push(...r.latencies);
    totals[name].wall += r.wall;
  }
}
const stats = Object.fromEntries(
  Object.entries(totals).map(([name, v]) => {
    const s = [...v.latencies].sort((a, b) => a - b);
    return [name, {
      p50: pct(s, 0.5),
      p99: pct(s, 0.99),
      rps: (s.length / v.wall) * 1000,
    }];
  }),
);

// Cold start: a fresh Deno process, from spawn to the first 201.
async function coldStart(name: string, body: unknown) {
  const port = 56400;
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      new URL("./serve_one.ts", import.meta.url).pathname,
      name,
      String(port),
    ],
    env: { ...env, POSTGREST_URL: restUrl },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let elapsed = NaN;
  for (let i = 0; i < 2000; i++) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      });
      await res.arrayBuffer();
      if (res.status === 201) {
        elapsed = performance.now() - t0;
        break;
      }
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    }
  }
  child.kill("SIGTERM");
  const out = new TextDecoder().decode((await child.output()).stdout);
  await child.status;
  return {
    cold_ms: elapsed,
    module_load_ms: JSON.parse(out.split("\n")[0]).module_load_ms,
  };
}
const colds = [];
for (let i = 0; i < 5; i++) {
  colds.push(await coldStart("create-wholesale-order", payload));
}
const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const f = (n: number) => n.toFixed(2);
console.log(
  `\ncreate-wholesale-order, ${CONCURRENCY} concurrent clients, ${ROUNDS}×${PER_ROUND} requests per path, alternating\n`,
);
console.log("path                          p50 ms    p99 ms     req/s");
for (
  const [name, label] of [["gateway", "gateway → function → REST"], [
    "direct",
    "REST server RPC, direct",
  ]]
) {
  const s = stats[name];
  console.log(
    `${label.padEnd(28)} ${f(s.p50).padStart(7)} ${f(s.p99).padStart(9)} ${
      s.rps.toFixed(0).padStart(9)
    }`,
  );
}
console.log(
  `\nratio gateway/direct p50: ${
    (stats.gateway.p50 / stats.direct.p50).toFixed(3)
  }   (target ≤ 1.15)`,
);
console.log(
  `ratio gateway/direct req/s: ${
    (stats.gateway.rps / stats.direct.rps).toFixed(3)
  }`,
);
console.log(
  `\ncold start (fresh Deno process → first 201), median of 5: ${
    f(median(colds.map((c) => c.cold_ms)))
  } ms`,
);
console.log(
  `module load (import: wasm fetch + compile + instantiate + configure), median of 5: ${
    f(median(colds.map((c) => c.module_load_ms)))
  } ms   (target ≤ 30)`,
);
console.log("\nwasm size per function (after wasm-opt)");
for (
  const entry of Deno.readDirSync(new URL("../functions", import.meta.url))
) {
  if (!entry.isDirectory || entry.name.startsWith("_")) continue;
  const wasm = new URL(
    `../functions/${entry.name}/pkg/${entry.name.replaceAll("-", "_")}_bg.wasm`,
    import.meta.url,
  );
  const bytes = Deno.readFileSync(wasm);
  const gz = new Uint8Array(
    await new Response(
      new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  console.log(
    `  ${
      entry.name.padEnd(28)
    } ${bytes.length} bytes (${gz.length} gzip)   (target ≤ 600 KB)`,
  );
}
await sql.end();
