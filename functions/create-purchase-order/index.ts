// Loader for create-purchase-order: the logic is in src/lib.rs, compiled to pkg/.
import * as wasm from "./pkg/create_purchase_order.js";
import { makeHandler } from "../_shared/loader.ts";

export const handler = makeHandler(wasm);

if (import.meta.main) Deno.serve(handler);
