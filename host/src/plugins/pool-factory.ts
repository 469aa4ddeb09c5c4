// The one place that picks the sandbox implementation. The worker sandbox (sandbox/index.ts,
// `createSandboxPool` / `createHostServices`) replaces the temporary main-thread pool here.
import { createMainThreadPool } from "./main-thread-pool.js";
import type { HostServices, SandboxPool, SandboxPoolOptions } from "./sandbox/types.js";
import type { PluginLogger } from "./types.js";

/** Creates the sandbox pool of one plugin (lazy: no instance exists before the first call). */
export function createPool(options: SandboxPoolOptions): SandboxPool {
  return createMainThreadPool(options);
}

/**
 * The main-thread services host functions use (HTTP on a plugin's behalf).
 * @param logger where service-level problems are logged (never with secret values)
 */
export function createServices(logger: PluginLogger): HostServices {
  void logger;
  return {
    async http() {
      throw new Error("outbound HTTP is not available in this build of the plugin host");
    },
  };
}
