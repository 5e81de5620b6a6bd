// What the bench scripts share.
import { env } from "../tests/_stack.ts";

const restUrl = `http://127.0.0.1:${Deno.env.get("REST_PORT")}`;

/** One function alone in a fresh Deno process (scripts/serve_one.ts). */
export function serveOne(
  name: string,
  port: number,
  extraEnv: Record<string, string> = {},
) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--quiet",
      "--allow-all",
      new URL("./serve_one.ts", import.meta.url).pathname,
      name,
      String(port),
    ],
    env: { ...env, POSTGREST_URL: restUrl, ...extraEnv },
    stdout: "piped",
    stderr: Object.keys(extraEnv).length > 0 ? "null" : "inherit",
  }).spawn();
}

/**
 * One function alone in a fresh process, measured once it listens: its CPU
 * (user + system, from /proc), a /proc/<pid>/status figure in kB, and its
 * isolate's memory (scripts/serve_one.ts's stats: V8 heap + external, and
 * the wasm linear memory, which only grows, so it is the peak).
 */
export async function serveMeasured(
  name: string,
  port: number,
  extraEnv: Record<string, string> = {},
) {
  const child = serveOne(name, port, { ...extraEnv, SERVE_ONE_STATS: "1" });
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!line.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("serve_one exited");
    line += value;
  }
  const TICK = 100; // USER_HZ: /proc reports CPU in 1/100 s.
  return {
    cpuMs: () => {
      const fields = Deno.readTextFileSync(`/proc/${child.pid}/stat`)
        .split(") ")[1].split(" ");
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICK;
    },
    memKb: (key: string) =>
      Number(
        Deno.readTextFileSync(`/proc/${child.pid}/status`)
          .match(new RegExp(`${key}:\\s+(\\d+)`))![1],
      ),
    isolate: async () => {
      const m = await (await fetch(`http://127.0.0.1:${port}/_serve_one/stats`))
        .json();
      return { v8: m.heapTotal + m.external, wasm: m.wasm_memory as number };
    },
    stop: async () => {
      child.kill("SIGTERM");
      await reader.cancel();
      await child.status;
    },
  };
}

export const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
