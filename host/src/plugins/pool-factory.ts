// The one place that picks the sandbox implementation: the worker sandbox (sandbox/index.ts).
import { createHostServices, createSandboxPool } from "./sandbox/index.js";
import type { HostServices, SandboxPool, SandboxPoolOptions } from "./sandbox/types.js";
import type { PluginLogger } from "./types.js";

/** Creates the sandbox pool of one plugin (lazy: no instance exists before the first call). */
export function createPool(options: SandboxPoolOptions): SandboxPool {
  return createSandboxPool(options);
}

/**
 * The main-thread services host functions use (HTTP on a plugin's behalf, secrets substituted
 * there and never handed to the guest).
 * @param logger unused for now; kept so callers need not change when services start logging
 */
export function createServices(logger: PluginLogger): HostServices {
  void logger;
  return createHostServices();
}
