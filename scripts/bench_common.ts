// What the bench scripts share.
import { env } from "../tests/_stack.ts";

const restUrl = `http://127.0.0.1:${Deno.env.get("REST_PORT")}`;

/** One function alone in a fresh Deno process (scripts/serve_one.ts). */
export function serveOne(name: string, port: number) {
  return new Deno.Command(Deno.execPath(), {
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
}

export const median = (xs: number[]) =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
