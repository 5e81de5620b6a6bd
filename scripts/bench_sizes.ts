// Each function's wasm size after wasm-opt (gzip in brackets), before the
// function kit and now, and its cold import in a fresh process (median of 3):
// part of scripts/bench, or alone with `scripts/bench sizes`.
import { median, serveOne } from "./bench_common.ts";

const f = (n: number) => n.toFixed(2);
// Each module's size before the function kit (commit 50623e3: p256 and rsa
// compiled in, the url crate's Unicode IDNA tables, no kit).
const BEFORE: Record<string, number> = {
  "create-purchase-order": 610_571,
  "create-wholesale-order": 552_918,
  "dispatch-notifications": 614_037,
  "process-return": 577_392,
};
// Targets: create-wholesale-order ≤ 480 KB; a function rendering no document
// ≤ 600 KB; one that renders documents (it depends on the documents crate)
// may be larger if its instantiation (fetch, compile and instantiate the
// wasm, in a fresh process) stays ≤ 30 ms.
/** A fresh process imports the function: compile and instantiate, then configure (ms). */
async function coldImport(name: string, port: number) {
  const child = serveOne(name, port);
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    line += value;
  }
  child.kill("SIGTERM");
  await reader.cancel();
  await child.status;
  const t = JSON.parse(line.split("\n")[0]);
  return {
    instantiate: t.instantiate_ms as number,
    all: t.instantiate_ms + t.configure_ms,
  };
}
const rendersDocuments = (name: string) =>
  Deno.readTextFileSync(
    new URL(`../functions/${name}/Cargo.toml`, import.meta.url),
  )
    .match(/^documents[ .=]/m) !== null;
console.log(
  "\nwasm size per function (after wasm-opt), before the kit and now",
);
console.log(
  "function                       before     now (gzip)          documents   target                 cold import ms: instantiate, with configure (median of 3)",
);
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
  const docs = rendersDocuments(entry.name);
  const target = entry.name === "create-wholesale-order" ? 480_000 : 600_000;
  const before = BEFORE[entry.name]?.toString() ?? "new";
  const imports = [];
  for (let i = 0; i < 3; i++) imports.push(await coldImport(entry.name, 26401));
  const ms = median(imports.map((i) => i.all));
  const instantiate = median(imports.map((i) => i.instantiate));
  const ok = docs ? instantiate <= 30 : bytes.length <= target;
  console.log(
    `  ${entry.name.padEnd(28)} ${before.padStart(7)} ${
      String(bytes.length).padStart(7)
    } (${gz.length}) ${docs ? "yes" : "no "}        ${
      docs ? "instantiate ≤ 30 ms" : `≤ ${target}     `
    } ${ok ? "ok  " : "OVER"}   ${f(instantiate).padStart(6)} ${
      f(ms).padStart(6)
    }`,
  );
}
