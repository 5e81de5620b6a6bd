// Serves one function on its own, as the edge runtime would: a fresh process
// that imports the function and serves it. Used by scripts/bench for cold
// start, and by the tests to run a dispatcher they can kill.
// Usage: deno run -A scripts/serve_one.ts <function> <port>
// Prints {"instantiate_ms", "configure_ms"} once listening.
const [name, port] = Deno.args;
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
  mod.handler,
);
