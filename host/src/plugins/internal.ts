/**
 * Host-internal entry of the plugins folder (as nats.js separates `internal_mod.ts` from
 * `mod.ts`): the sandbox pool and the wasm API, for `exoclaw plugin test` (cli/plugin-test.ts),
 * which runs a module in the sandbox without a plugin host. Not part of the plugin host's API
 * (index.ts); other folders import index.ts.
 */
export { createSandboxPool, HostHttpError } from "./sandbox/index.js";
export type { CallOutcome, HostServices, SandboxPool } from "./sandbox/index.js";
export { wasmApi } from "./wasm.js";
export type { WasmModule } from "./wasm.js";
