import type { CapabilityRequest, PluginLimits } from "./capabilities.js";

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
  /**
   * Capabilities the plugin requests (granted deny-by-default; `{}` = pure computation). A legacy
   * empty array in the section is read as `{}`.
   */
  capabilities: CapabilityRequest;
  /**
   * Channel plugins: lower-case request header names carrying the platform's authentication
   * (e.g. `x-hub-signature-256`). A webhook request other than GET/HEAD with none of them is
   * answered 401 by the host before its body is read or the plugin runs. Absent = no check.
   * Ignored for tool plugins.
   */
  signatureHeaders?: string[];
}

/**
 * Who a tool call is for, sent in the call envelope as `context` (see plugin-sdk
 * `assembly/context.ts`). Host-written: the model cannot set it, so tools may key data on it.
 */
export interface ToolCallContext {
  /** The agent running the turn. */
  agentId?: string;
  /** The channel of the conversation (`ws`, `telegram`, ...). */
  channel?: string;
  /** The account on that channel (a WebSocket client's account, a bot account). */
  account?: string;
  /** Who the conversation is with (a chat id, a WS client's peer id). */
  peer?: string;
  /** Who wrote the message: the peer in a direct conversation; a group member once groups land. */
  sender?: string;
  /** `agent:<agent>:<channel>:<account>:<peer>`, parts escaped. */
  sessionKey?: string;
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

/** A loaded channel plugin (manifest kind `channel` or `both`), as `PluginHost.channelPlugins()` lists it. */
export interface ChannelPluginInfo {
  /** Plugin name (the manifest's), which `[channels.<name>] plugin` refers to. */
  name: string;
  /**
   * Optional exports present (`parse` and `send` always are: validation requires them).
   * `connect`: the module exports `connect` and `on_frame` (a persistent-connection channel);
   * `typing`: it exports `typing` (a typing indicator while a turn runs);
   * `edit`: it exports `edit` (progressive replies, `stream = "edit"`).
   * `sendFile`: it exports `send_file` (photos and documents out; channels/types.ts `OutboundFileMessage`).
   */
  exports: { poll: boolean; connect?: boolean; typing?: boolean; edit?: boolean; sendFile?: boolean };
  /** The manifest's `signatureHeaders` (lower-case); empty when it declares none. */
  signatureHeaders: string[];
  /**
   * Calls of the plugin that run at once (its `max_in_flight` limit): the channel service lets
   * at most this many `send`s into the plugin's pool (channels/send-gate.ts). Absent = the default, 4.
   */
  maxInFlight?: number;
}

/** A channel plugin export (see channels/types.ts for each one's input and output). */
export type ChannelExport = "parse" | "send" | "poll" | "connect" | "on_frame" | "typing" | "edit" | "send_file";

/** The exports of a persistent-connection channel (their calls may leave connection effects). */
export type ConnectionExport = "connect" | "on_frame";

/**
 * State of a plugin file in the registry:
 * - `loaded`: serving its tools with everything it requested that the operator granted and approved;
 * - `pending_approval`: serving its tools, but `capabilities.pending` lists granted-but-unapproved
 *   capabilities it runs without until `exoclaw plugin approve <file>`; a module whose name was
 *   approved for another sha256 (a changed file, a look-alike) runs with no capabilities at all
 *   and serves no channel;
 * - `error`: not loaded (`error` says why); its tools are not offered.
 */
export type PluginStatus = "loaded" | "pending_approval" | "error";

/** Capabilities of one plugin, names only (never config or secret values, never host paths). */
export interface PluginCapabilities {
  /** What the manifest requests. */
  requested: CapabilityRequest;
  /** What it runs with: request ∩ operator grant ∩ approval. */
  granted: CapabilityRequest;
  /** Granted by the operator, requested, not yet approved for this sha256. */
  pending: CapabilityRequest;
}

/** One entry of `plugin.list` (wire protocol v1). */
export interface PluginInfo {
  /** Manifest name; for a file whose manifest cannot be read, the file name without `.wasm`. */
  name: string;
  /** Manifest version; `""` when unknown (status `error`). */
  version: string;
  /** Manifest kind; null when unknown (status `error`). */
  kind: PluginKind | null;
  /** Tools routed to this plugin (a name already offered by an earlier plugin is absent). */
  tools: string[];
  /** sha256 of the module that runs (or was rejected), hex; null when the file could not be read. */
  sha256: string | null;
  /** Absolute path of the `.wasm` file. */
  path: string;
  status: PluginStatus;
  /** Why the file is not loaded (status `error`), or why its latest version was rejected while the previous one keeps serving. */
  error?: string;
  capabilities: PluginCapabilities;
  /** Tool calls since load (across reloads of the same file). */
  calls: number;
  /** Calls that failed in the plugin (trap, timeout, memory, error_set, bad or oversized output, busy). */
  errors: number;
  /** Median and 99th percentile call duration over the last 512 calls, ms (0 before any call). */
  p50Ms: number;
  p99Ms: number;
  /** The resource limits its calls run under (`[plugins.limits.<name>]`, else the defaults): call budget, memory, output, in flight, queued. */
  limits?: PluginLimits;
}

/**
 * The host-side registry of loaded plugins. Tool names are unique across plugins.
 */
export interface PluginRegistry {
  /** Plugin files known, in load order: loaded ones and (status `error`) rejected ones. */
  list(): PluginInfo[];
  /** Every tool of every loaded plugin, for offering to a model. */
  tools(): ToolSpec[];
  /**
   * Run one tool call. Never throws for plugin faults: a trap, an Extism error, a timeout or
   * garbage output become `{isError: true, content: <reason>}`. Throws only if `signal` aborts:
   * a `PluginCallAbortedError` (`isAborted(err)`, `cause` = the signal's reason), never a timeout.
   */
  callTool(name: string, input: unknown, signal?: AbortSignal, context?: ToolCallContext): Promise<ToolResult>;
  /** Release every plugin instance. */
  close(): Promise<void>;
}

/** Loading and unloading at run time (`plugin.load` / `plugin.unload`). */
export interface PluginManager {
  /**
   * Loads (or reloads) one `.wasm` file.
   * @throws Error whose message names the file and why it cannot be loaded
   */
  load(file: string): Promise<PluginInfo>;
  /**
   * Unloads a plugin by name after its running calls finish.
   * @throws Error if no plugin of that name is loaded
   */
  unload(name: string): Promise<PluginInfo>;
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
