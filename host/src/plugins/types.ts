/**
 * Plugin ABI v1 (first cut) — the shapes exchanged between the host and a `.wasm` plugin.
 * The WIT file `wit/exoclaw.wit` is the contract these mirror.
 */

/** A tool a plugin offers, as declared in its manifest. `inputSchema` is a JSON Schema object. */
export interface ToolSpec {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

/** What a plugin is: a tool provider, a channel, or both. */
export type PluginKind = "tool" | "channel" | "both";

/**
 * The manifest embedded in the module's `exoclaw.manifest` custom section as UTF-8 JSON,
 * read by the host without running plugin code.
 */
export interface PluginManifest {
  /** ABI version; this host speaks 1. */
  abi: number;
  name: string;
  version: string;
  kind: PluginKind;
  description?: string;
  tools: ToolSpec[];
  /** Capabilities the plugin requests (granted deny-by-default; empty = pure computation). */
  capabilities: string[];
}

/** Input of the plugin's `call` export, MessagePack-encoded: `{name, input}`. */
export interface ToolCall {
  name: string;
  input: unknown;
}

/**
 * Output of the plugin's `call` export, MessagePack-encoded: `{content, isError}`.
 * `isError: true` is a tool-level error (e.g. a bad expression) that the model should see.
 */
export interface ToolResult {
  content: string;
  isError: boolean;
}

/** A plugin loaded and ready, as seen by the rest of the host. */
export interface LoadedPlugin {
  manifest: PluginManifest;
  /** Absolute path of the `.wasm` file it was loaded from. */
  path: string;
  /** sha256 of the module bytes, hex. */
  sha256: string;
}

/** One entry of `plugin.list` (wire protocol v1). */
export interface PluginInfo {
  name: string;
  version: string;
  kind: PluginKind;
  tools: string[];
}

/**
 * The host-side registry of loaded plugins. Tool names are unique across plugins.
 */
export interface PluginRegistry {
  /** Plugins loaded, in load order. */
  list(): PluginInfo[];
  /** Every tool of every loaded plugin, for offering to a model. */
  tools(): ToolSpec[];
  /**
   * Run one tool call. Never throws for plugin faults: a trap, an Extism error, a timeout or
   * garbage output become `{isError: true, content: <reason>}`. Throws only if `signal` aborts.
   */
  callTool(name: string, input: unknown, signal?: AbortSignal): Promise<ToolResult>;
  /** Release every plugin instance. */
  close(): Promise<void>;
}

/**
 * The logging the plugin host needs. A pino `Logger` satisfies it; calls use pino's shape:
 * an object of fields first, then the message (`logger.warn({ file, reason }, "skipped")`).
 */
export interface PluginLogger {
  info(objOrMsg: unknown, msg?: string, ...args: unknown[]): void;
  warn(objOrMsg: unknown, msg?: string, ...args: unknown[]): void;
  debug(objOrMsg: unknown, msg?: string, ...args: unknown[]): void;
  /** If present (pino has it), plugin log forwarding is switched off when debug is disabled. */
  isLevelEnabled?(level: string): boolean;
}
