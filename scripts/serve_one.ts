// Serves one function on its own, as the edge runtime would: a fresh process
// that imports the function and serves it. Used by scripts/bench for cold
// start, and by the tests to run a dispatcher they can kill.
// Usage: deno run -A scripts/serve_one.ts <function> <port>
// Prints {"instantiate_ms", "configure_ms"} once listening. With
// SERVE_ONE_STATS=1, GET /_serve_one/stats answers the isolate's memory
// (Deno.memoryUsage) and the wasm module's linear memory, which only grows,
// so it is also its peak.
const [name, port] = Deno.args;
const memories: WebAssembly.Memory[] = [];
if (Deno.env.get("SERVE_ONE_STATS") === "1") {
  // The module is instantiated by wasm-bindgen's glue; keep its memory.
  const instantiate = WebAssembly.instantiateStreaming;
  WebAssembly.instantiateStreaming = async (...args) => {
    const out = await instantiate(...args);
    const memory = out.instance.exports.memory;
    if (memory instanceof WebAssembly.Memory) memories.push(memory);
    return out;
  };
}
const crate = name.replaceAll("-", "_");
const t0 = performance.now();
// The wasm-bindgen module: fetch, compile and instantiate the wasm.
await import(
  new URL(`../functions/${name}/pkg/${crate}.js`, import.meta.url).href
);
const t1 = performance.now();
// The loader: configure() reads the environment (keys, providers) once.
const mod = await import(
  new URL(`../functions/${name}/index.ts`, import.meta.url).href
);
const t2 = performance.now();
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(port),
    onListen: () =>
      console.log(
        JSON.stringify({ instantiate_ms: t1 - t0, configure_ms: t2 - t1 }),
      ),
  },
  memories.length === 0
    ? mod.handler
    : (req: Request) =>
      new URL(req.url).pathname === "/_serve_one/stats"
        ? Response.json({
          ...Deno.memoryUsage(),
          wasm_memory: memories.reduce((n, m) => n + m.buffer.byteLength, 0),
        })
        : mod.handler(req),
);
