// Serves one function on its own, as the edge runtime would: a fresh process
// that imports the function and serves it. Used by scripts/bench for cold start.
// Usage: deno run -A scripts/serve_one.ts <function> <port>
const [name, port] = Deno.args;
const started = performance.now();
const mod = await import(
  new URL(`../functions/${name}/index.ts`, import.meta.url).href
);
const loaded = performance.now();
Deno.serve(
  {
    hostname: "127.0.0.1",
    port: Number(port),
    onListen: () =>
      console.log(JSON.stringify({ module_load_ms: loaded - started })),
  },
  mod.handler,
);
