// One sandbox pool of a loaded plugin version and the calls running on it. A hot reload or a
// grant change swaps in a new generation; the old one is retired: it takes no new calls and
// closes once its running calls have finished (they keep the version they started on). A call
// site is a generation plus the counters of the plugin file (kept across generations).
import type { Telemetry } from "../telemetry/index.js";
import { errorMessage } from "../util/index.js";
import type { CallOutcome, SandboxPool } from "./sandbox/types.js";
import type { PluginLogger } from "./types.js";

/** One sandbox pool plus the calls currently using it. */
export interface Generation {
  pool: SandboxPool;
  /** Calls checked out on this pool and not yet returned. */
  inFlight: number;
  retired: boolean;
  /** Set by `retire` while calls are in flight: resolves its wait when the last one returns. */
  drained: (() => void) | null;
}

/** Call durations kept per plugin for p50/p99. */
const DURATION_WINDOW = 512;

/** Counters of one plugin file, kept across reloads (`plugin.list` calls, errors, p50/p99). */
export interface CallCounters {
  calls: number;
  errors: number;
  /** The last {@link DURATION_WINDOW} call durations, ms. */
  durations: number[];
}

/** Counts one finished call (not an aborted one) and its duration. */
export function countCall(counters: CallCounters, durationMs: number): void {
  counters.calls++;
  counters.durations.push(durationMs);
  if (counters.durations.length > DURATION_WINDOW) counters.durations.shift();
}

/** Where one call goes: a plugin's current pool generation and the counters of its file. */
export interface CallSite {
  /** The plugin's name (for messages). */
  plugin: string;
  gen: Generation;
  counters: CallCounters;
  /** Where the call and its failure are reported (metrics). */
  telemetry: Telemetry;
}

/** A new, live generation around `pool`. */
export function generationOf(pool: SandboxPool): Generation {
  return { pool, inFlight: 0, retired: false, drained: null };
}

/**
 * Runs one export on the generation's pool, counting the call as in flight meanwhile (a retired
 * generation closes when the count reaches 0). Never throws: the pool reports every failure,
 * a caller's abort included (`kind: "aborted"`), as an outcome.
 */
export async function callOn(gen: Generation, fn: string, payload: Uint8Array, signal?: AbortSignal): Promise<CallOutcome> {
  gen.inFlight++;
  try {
    return await gen.pool.call(fn, payload, signal);
  } finally {
    gen.inFlight--;
    if (gen.inFlight === 0 && gen.drained !== null) gen.drained();
  }
}

/**
 * Retires a generation: it gets no new calls and its pool closes once its running calls finish.
 * Idempotent; a failing close only warns.
 * @returns the closing, or null when there was nothing (more) to retire
 */
export function retire(gen: Generation | null, logger: PluginLogger): Promise<void> | null {
  if (gen === null || gen.retired) return null;
  gen.retired = true;
  return (async () => {
    if (gen.inFlight > 0) await new Promise<void>((resolve) => (gen.drained = resolve));
    await gen.pool.close().catch((err: unknown) => logger.warn({ reason: errorMessage(err) }, "closing a plugin sandbox failed"));
  })();
}
