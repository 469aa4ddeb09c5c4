import { setFlagsFromString } from "node:v8";
import type { GatewayConfig } from "../config/index.js";

/**
 * Applies `[gateway] heap` to this process's V8 heap, before the gateway allocates anything.
 *
 * `compact` sets V8's `--optimize-for-size`. Measured with `npm run bench` (50 sessions of
 * instant turns, docs/architecture.md "Scale and memory"): what the gateway keeps after the load
 * phase is ~30 MB of live heap, but with V8's defaults the young generation grows to its
 * 2 x 16 MB maximum and the old generation to ~70-100 MB of mostly garbage before its first full
 * collection (V8 starts the old generation's limit high and lowers it only after a
 * mark-compact), so RSS reached 230-280 MB. With `--optimize-for-size` the heap stays near its
 * live size (heapTotal ~35 MB at the same point). V8 reads this flag where it decides to grow a
 * space, so setting it at run time takes effect; Node documents run-time flag changes as
 * unsupported in general, which is why `throughput` keeps V8's defaults untouched.
 *
 * @param heap the configured mode; `throughput` changes nothing
 * @returns the V8 flags set (empty for `throughput`), for the start-up log
 */
export function applyHeapMode(heap: GatewayConfig["heap"]): string[] {
  if (heap !== "compact") return [];
  setFlagsFromString("--optimize-for-size");
  return ["--optimize-for-size"];
}
