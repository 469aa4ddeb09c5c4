import { PerformanceObserver } from "node:perf_hooks";
import { getHeapSpaceStatistics, setFlagsFromString } from "node:v8";
import type { GatewayConfig } from "../config/index.js";

/**
 * V8 flag of `[gateway] heap = "compact"`: the old generation's next limit is its live size x 1.5
 * (`--heap-growing-percent=50`; V8 picks up to x4 when collections are cheap, so ~25 MB live
 * became a ~100 MB old generation of mostly garbage).
 */
export const COMPACT_HEAP_FLAGS = ["--heap-growing-percent=50"] as const;

/**
 * Size at which `compact` stops the young generation's growth, bytes of V8's `new_space` as
 * `getHeapSpaceStatistics` reports it (twice the semi-space): 16 MiB, i.e. 8 MiB semi-spaces.
 * V8 starts at 1 MiB, the gateway's start-up grows it to 8 MiB, and V8's defaults let a load grow
 * it to 32 MiB.
 */
export const COMPACT_YOUNG_BYTES = 16 * 1024 * 1024;

/**
 * Applies `[gateway] heap` to this process's V8 heap, before the gateway allocates much.
 *
 * Why (measured with a 50-session load, docs/architecture.md "Scale and memory" and "Gateway CPU
 * per turn"): what the gateway keeps after the load is ~30 MB of live heap, but with V8's defaults
 * the young generation grows to 32 MiB and the old generation to ~70-100 MB before a full
 * collection shrinks it, so RSS reached 180-250 MB. `compact` bounds both:
 *
 * - the old generation by {@link COMPACT_HEAP_FLAGS};
 * - the young generation at {@link COMPACT_YOUNG_BYTES}. It used to stop growing where start-up
 *   left it (`--semi-space-growth-factor=1` from the start; 8 MiB `new_space`): a 50-session
 *   load then scavenged ~87 times per 1,000 turns, promoting the objects of the turns in flight,
 *   and the old generation (limit live x 1.5) needed ~5 full collections per 1,000 turns (0.5
 *   with V8's defaults), whose concurrent marking made GC ~40 % of the gateway's CPU. At 16 MiB:
 *   ~43 scavenges and ~3.5 full collections per 1,000 turns, ~17 % less CPU per turn, ~15 MB
 *   more RSS. V8 fixes the semi-space bounds (`--min/max-semi-space-size`) when the isolate is
 *   made, so they cannot be set from here; the growth factor is switched at run time instead: 2
 *   (V8's) while `new_space` is below the cap, 1 once it reaches it. V8 reads the factor each time
 *   it grows the space, and may shrink the space when the gateway idles; a `gc` observer (one
 *   entry per collection, a few per second under load) re-arms the growth then.
 *
 * Node documents run-time flag changes as unsupported in general; `throughput` keeps V8's
 * defaults untouched.
 *
 * @param heap the configured mode; `throughput` changes nothing
 * @returns the V8 flags set at start (empty for `throughput`), for the start-up log
 */
export function applyHeapMode(heap: GatewayConfig["heap"]): string[] {
  if (heap !== "compact") return [];
  for (const flag of COMPACT_HEAP_FLAGS) setFlagsFromString(flag);
  capYoungGeneration(COMPACT_YOUNG_BYTES);
  return [...COMPACT_HEAP_FLAGS, `--semi-space-growth-factor=1 from new_space ${COMPACT_YOUNG_BYTES / 1024 / 1024} MiB`];
}

/** Size of V8's `new_space` (both semi-spaces' capacity as V8 reports it), bytes. */
function youngBytes(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === "new_space") return s.space_size;
  return 0;
}

/**
 * Keeps V8's young generation from growing past `capBytes` (see {@link applyHeapMode}): growth
 * factor 1 at or above the cap, 2 below it, checked after each collection. The observer is
 * unreferenced work on the event loop, never keeping the process alive (observers hold no handle).
 */
function capYoungGeneration(capBytes: number): void {
  let factor = 0;
  const check = () => {
    const want = youngBytes() >= capBytes ? 1 : 2;
    if (want === factor) return;
    setFlagsFromString(`--semi-space-growth-factor=${want}`);
    factor = want;
  };
  check();
  new PerformanceObserver(check).observe({ entryTypes: ["gc"] });
}
