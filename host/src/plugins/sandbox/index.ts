// Public API of the plugin sandbox: isolated, limited, capability-checked plugin instances.
export { createSandboxPool, SANDBOX_WORKER_URL } from "./pool.js";
export { createHostServices, HostHttpError, HostSecretError, hmacVerify, redactSecrets, secretEquals, substituteSecrets } from "./services.js";
export type { HostServicesOptions } from "./services.js";
export { prepareModule, SandboxModuleError, WASM_PAGE_BYTES } from "./module.js";
export type { MemoryLimits, PreparedModule } from "./module.js";
export { KV_FILE, KvError, KvStore, openKvStore, releaseKvStore } from "./kv.js";
export {
  HOST_FUNCTIONS,
  HOST_MODULE,
  MAX_FS_BYTES,
  MAX_HTTP_BODY_BYTES,
  MAX_KV_KEY_BYTES,
  MAX_LOG_BYTES,
  MAX_LOG_LINES_PER_CALL,
  MAX_RANDOM_BYTES,
  hostMatches,
} from "./protocol.mjs";
export type * from "./types.js";
