// Public API of the plugin host: load sandboxed Extism/Wasm plugins and run their tools.
// loadPlugins joins the registry (registry.ts, hot loading driven by watcher.ts) and the call
// path (calls.ts); failures.ts words every failed call and classifies a caller's abort.
export { loadPlugins } from "./host.js";
export type { PluginHost } from "./host.js";
export type { LoadPluginsOptions, PluginSettings, PluginStats } from "./registry.js";
export { ChannelPluginError, PluginCallAbortedError, isAborted, isPluginBusy, isPermanentChannelFailure } from "./failures.js";
export type { ChannelFailureKind } from "./failures.js";
export {
  HOST_ABI_VERSION,
  MANIFEST_SECTION,
  ManifestError,
  capabilityRequestSchema,
  inspectPluginFile,
  parseManifest,
  pluginManifestSchema,
  readManifest,
} from "./manifest.js";
export type { InspectedPlugin } from "./manifest.js";
export { HOOK_NAMES, isHookName, type HookName } from "./hook-names.js";
export { HookCallError, type HookHost } from "./hook-calls.js";
// The manifest custom section as bytes (plain JS, shared with scripts/build-plugins.mjs).
export { embedManifest, manifestFromToml } from "./manifest-section.mjs";
export {
  ApprovalStore,
  DEFAULT_KV_QUOTA_BYTES,
  TrustStoreError,
  approvalDiff,
  approvalFor,
  approvalRank,
  checkTrustStoreLocation,
  isPendingApproval,
  legacyApprovalsPath,
  trustDir,
  describeRequest,
  effectiveAsRequest,
  grantAsRequest,
  intersectRequests,
  isEmptyRequest,
  materializeGrant,
  normalizeRequest,
  resolveGrant,
  subtractRequests,
} from "./grants.js";
export type { ApprovalDiff, ApprovalRecord, GrantResolution, OperatorGrant } from "./grants.js";
export {
  EXOCLAW_HOST_FUNCTIONS,
  EXOCLAW_HOST_V1,
  EXTISM_ENV,
  EXTISM_KERNEL,
  PluginRejectedError,
  ValidationCache,
  checkInterface,
  sha256Hex,
  validatePluginBytes,
  validatePluginFile,
} from "./validate.js";
export type { ValidatedPlugin } from "./validate.js";
export { watchPluginDirs } from "./watcher.js";
export type { PluginWatcher, WatchOptions, WatchTarget } from "./watcher.js";
export { DEFAULT_LIMITS } from "./capabilities.js";
export type { CapabilityRequest, EffectiveGrant, PluginLimits } from "./capabilities.js";
export type * from "./types.js";
export type { ConnectionEffect } from "./sandbox/types.js";
