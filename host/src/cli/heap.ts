import { setFlagsFromString } from "node:v8";
import type { GatewayConfig } from "../config/index.js";

/**
 * V8 flags of `[gateway] heap = "compact"`: the young generation stays at its initial size
 * (`--semi-space-growth-factor=1`, ~1 MiB semi-spaces instead of growing to 16 MiB) and the old
 * generation's next limit is its live size x 1.5 (`--heap-growing-percent=50`; V8 picks up to x4
 * when collections are cheap, so ~25 MB live became a ~100 MB old generation of mostly garbage).
 */
export const COMPACT_HEAP_FLAGS = ["--semi-space-growth-factor=1", "--heap-growing-percent=50"] as const;

/**
 * Applies `[gateway] heap` to this process's V8 heap, before the gateway allocates much.
 *
 * Why (measured with a 50-session `ping` load, docs/architecture.md "Scale and memory"): what
 * the gateway keeps after the load is ~30 MB of live heap, but with V8's defaults the young
 * generation grows to 2 x 16 MiB and the old generation to ~70-100 MB before a full collection
 * shrinks it, so RSS reached 180-280 MB. {@link COMPACT_HEAP_FLAGS} keep it at ~110-130 MB for
 * ~10-15 % more CPU per turn; V8's `--optimize-for-size` kept ~110 MB too but cost ~75 % more
 * CPU per turn (less inlining), so it is not used.
 *
 * V8 reads both flags where it decides to grow a space, so setting them at run time takes effect
 * (Node documents run-time flag changes as unsupported in general; `throughput` keeps V8's
 * defaults untouched).
 *
 * @param heap the configured mode; `throughput` changes nothing
 * @returns the V8 flags set (empty for `throughput`), for the start-up log
 */
export function applyHeapMode(heap: GatewayConfig["heap"]): string[] {
  if (heap !== "compact") return [];
  for (const flag of COMPACT_HEAP_FLAGS) setFlagsFromString(flag);
  return [...COMPACT_HEAP_FLAGS];
}
