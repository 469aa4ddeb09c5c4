// Public API of the plugin host: load sandboxed Extism/Wasm plugins and run their tools.
export { loadPlugins } from "./host.js";
export type { LoadPluginsOptions, PluginHost, PluginStats } from "./host.js";
export {
  HOST_ABI_VERSION,
  MANIFEST_SECTION,
  ManifestError,
  inspectPluginFile,
  parseManifest,
  pluginManifestSchema,
  readManifest,
} from "./manifest.js";
export type { InspectedPlugin } from "./manifest.js";
export type * from "./types.js";
