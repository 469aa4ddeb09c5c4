import type { EffectiveGrant, PluginLimits } from "../capabilities.js";
import type { PluginLogger } from "../types.js";
import type { ConnectionEffect } from "./protocol.mjs";

export type { ConnectionEffect };

/** Why a sandboxed call failed; each maps to a clear message for the model and the operator. */
export type CallFailureKind =
  | "timeout" // exceeded limits.timeoutMs (loop, or blocked in a host call); instance recycled
  | "aborted" // the caller's signal aborted (waiting: dequeued; running: instance recycled); not a plugin fault
  | "memory" // hit the guest memory limit; instance recycled
  | "trap" // the guest trapped (unreachable, abort, out-of-bounds); instance recycled
  | "plugin_error" // the guest reported an error through Extism's error_set and returned
  | "output_too_large" // output over limits.maxOutputBytes
  | "busy" // maxInFlight running and maxQueued waiting
  | "closed"; // the pool was closed (plugin unloaded / replaced / shutdown)

/**
 * The outcome of one call. `durationMs` is wall time from acquire to result. `effects`: what the
 * connection host functions asked for during a `connect` / `on_frame` call (secrets substituted),
 * for the caller to apply; absent when there were none.
 */
export type CallOutcome =
  | { ok: true; output: Uint8Array; durationMs: number; effects?: ConnectionEffect[] }
  | { ok: false; kind: CallFailureKind; message: string; durationMs: number };

/** Main-thread services that host functions need and a worker cannot do itself. */
export interface HostServices {
  /**
   * Performs an HTTP request on the plugin's behalf. The sandbox has already checked the grant;
   * this substitutes `{{secret:NAME}}` placeholders in URL and headers from `grant.secrets`.
   * `signal` fires when the call's time budget ends or its instance is terminated. A thrown
   * error's message is shown to the plugin, so it must not contain secret values.
   * Default implementation: `createHostServices()`.
   */
  http(
    req: { method: string; url: string; headers: Record<string, string>; body?: Uint8Array },
    grant: EffectiveGrant,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }>;
}

/** Options of a sandbox pool (one per loaded plugin). */
export interface SandboxPoolOptions {
  /** Plugin name, for logs and errors. */
  name: string;
  /** The module bytes as loaded (the pool rewrites the memory maximum itself). */
  wasm: Uint8Array;
  grant: EffectiveGrant;
  limits: PluginLimits;
  /** Directory for this plugin's persistent state (kv), created on demand. */
  stateDir: string;
  services: HostServices;
  logger: PluginLogger;
  /** An instance idle this long is stopped (its worker terminated), ms; default 60 000. */
  idleTimeoutMs?: number;
  /**
   * Called when an instance is stopped and replaced because of a call (`reason`: the failure
   * kind: `timeout`, `trap`, `memory`, `aborted`); metrics count these. Must not throw.
   */
  onRestart?: (reason: CallFailureKind) => void;
}

/** A pool of isolated instances of one plugin. Never throws from `call`. */
export interface SandboxPool {
  /**
   * Calls an export with bytes in, bytes out.
   * @param signal aborts waiting or running (the instance is recycled if it was running)
   */
  call(fn: string, input: Uint8Array, signal?: AbortSignal): Promise<CallOutcome>;
  /** Counters for plugin.list / health: instances, busy, queued, calls, failures by kind, p50/p99 ms. */
  stats(): SandboxStats;
  /**
   * Starts one instance now if none is running (calls do that lazily anyway), so that load-time
   * faults show at load time. Rejects with the reason the instance cannot start (compile error,
   * start function trapped, ...). Resolves immediately when an instance is already up.
   */
  ready?(): Promise<void>;
  /** Lets running calls finish (up to their timeout), fails queued ones with `closed`, frees instances. */
  close(): Promise<void>;
}

/** Runtime counters of one pool. */
export interface SandboxStats {
  /** Live instances (workers), starting ones included. */
  instances: number;
  /** Instances running a call. */
  busy: number;
  /** Calls waiting for an instance. */
  queued: number;
  /** Calls made (all outcomes). */
  calls: number;
  failures: Partial<Record<CallFailureKind, number>>;
  /** Call duration percentiles over the last 1024 calls, ms (0 before any call). */
  p50Ms: number;
  p99Ms: number;
}
