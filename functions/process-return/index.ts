// Loader for process-return: the logic is in src/lib.rs, compiled to pkg/.
import * as wasm from "./pkg/process_return.js";
import { makeHandler } from "../_shared/loader.ts";

export const handler = makeHandler(wasm);

if (import.meta.main) Deno.serve(handler);
