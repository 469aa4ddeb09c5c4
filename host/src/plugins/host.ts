// The plugin host: the registry of loaded plugins (registry.ts: files, versions, grants, hot
// loading) joined with the call path (calls.ts: encode, run on the sandbox pool, map failures).
import { callChannelExport, callConnectionExport, callTool } from "./calls.js";
import type { ConnectionEffect } from "./sandbox/types.js";
import { PluginCallAbortedError } from "./failures.js";
import { callHookExport, HookCallError, type HookHost } from "./hook-calls.js";
import { createHostServices, HostHttpError } from "./sandbox/index.js";
import { openRegistry, type LoadPluginsOptions, type PluginSettings, type PluginStats } from "./registry.js";
import type { ChannelExport, ChannelPluginInfo, ConnectionExport, LoadedPlugin, PluginInfo, PluginRegistry } from "./types.js";

/** The registry returned by {@link loadPlugins}: the `PluginRegistry` contract plus management. */
export interface PluginHost extends PluginRegistry, HookHost {
  /** Loaded plugins with their full manifests, in load order. */
  plugins(): LoadedPlugin[];
  /** Current per-plugin sandbox counters, in load order (loaded plugins only). */
  stats(): PluginStats[];
  /**
   * Loads (or reloads, if its content changed) one file, explicitly. The swap is atomic: calls
   * already running finish on the previous version.
   * @returns the plugin's `plugin.list` entry
   * @throws PluginRejectedError naming the file and the reason (unreadable, not a plugin,
   *   invalid manifest, unsupported imports, missing exports, name already used by another file)
   */
  load(file: string): Promise<PluginInfo>;
  /**
   * Unloads a plugin by name: its tools disappear at once, running calls finish, then its
   * sandbox closes. A watched file stays unloaded until its content changes.
   * @returns the entry as it was
   * @throws Error if no plugin of that name is loaded
   */
  unload(name: string): Promise<PluginInfo>;
  /**
   * Brings one file in line with the disk (hot loading): a new or changed valid file is
   * loaded (swapped in atomically), a deleted one unloaded, an invalid one listed as `error`
   * with a warning. Never throws.
   */
  syncFile(file: string): Promise<void>;
  /** Syncs every `*.wasm` in `dirs` and drops entries of files gone from them. Never throws. */
  rescan(dirs: string[]): Promise<void>;
  /** Re-reads the approvals file and re-resolves every plugin's grant (swapping pools whose grant changed). */
  reloadApprovals(): Promise<void>;
  /**
   * Takes new operator grants and limits (a config reload) and re-resolves every loaded plugin
   * against them and its approvals (still bound to the module's sha256): a plugin whose
   * effective grant or limits changed gets a new sandbox pool, swapped in atomically (running
   * calls finish on the old one). Never throws.
   * @returns the names of the plugins whose pool was swapped
   */
  reconfigure(settings: PluginSettings): Promise<string[]>;
  /** Validation cache counters (hits = modules not recompiled). */
  cacheStats(): { hits: number; misses: number };
  /** Loaded plugins of kind `channel` or `both`, in load order, with their optional exports. */
  channelPlugins(): ChannelPluginInfo[];
  /**
   * Calls a channel plugin export: `input` is packed as MessagePack (fields whose value is
   * `undefined` are left out), the output is unpacked (maps as plain objects, bin as bytes).
   * The caller checks the output's shape against channels/types.ts.
   * @param plugin the plugin's name
   * @param fn `parse` (WebhookRequest -> ParseResult), `send` (OutboundMessage -> SendReceipt)
   *   or `poll` (PollRequest -> PollResult)
   * @param signal aborts the call (rejects with a PluginCallAbortedError whose `cause` is the signal's reason)
   * @throws ChannelPluginError naming the plugin, the export and why: not loaded (or not a channel
   *   plugin), `poll` not exported, the sandbox failed (timeout, trap, memory, plugin error, busy,
   *   unloaded meanwhile), or the output is not a MessagePack map
   */
  callChannel(plugin: string, fn: ChannelExport, input: unknown, signal?: AbortSignal): Promise<unknown>;
  /**
   * Calls a persistent-connection export (`connect`: ConnectRequest -> ConnectResult,
   * `on_frame`: FrameEvent -> FrameResult) like `callChannel`, and returns the output with the
   * connection effects the call left (`ws_open`, `ws_send`, timers...; secrets substituted) for
   * the caller to apply in order. A failed call leaves none.
   * @throws like callChannel
   */
  callConnection(plugin: string, fn: ConnectionExport, input: unknown, signal?: AbortSignal): Promise<{ value: unknown; effects: ConnectionEffect[] }>;
  /**
   * Downloads bytes on a channel plugin's behalf (an inbound image for the model): a GET under
   * the plugin's effective `http` grant — hosts and methods checked on every redirect hop,
   * `{{secret:NAME}}` substituted from its granted secrets, never into the host name — with the
   * body capped at `maxBytes`.
   * @throws Error naming the plugin when it is not a loaded, approved channel plugin; HostHttpError
   *   when the grant refuses the URL, the body is over `maxBytes` ("over the N-byte limit"), or the
   *   request fails (messages never contain a secret value)
   */
  fetchAsChannel(
    plugin: string,
    request: { url: string; headers?: Record<string, string> },
    maxBytes: number,
    signal: AbortSignal,
  ): Promise<{ status: number; headers: Record<string, string>; body: Uint8Array }>;
}

/**
 * Loads every plugin found in `options.dirs` and returns the registry that runs their tools.
 *
 * Validates each file without running it (manifest, ABI version, imports, required exports;
 * see validate.ts) and resolves its capabilities (grants.ts); sandbox instances are created
 * lazily on the first call. Never throws for a bad plugin: each problem produces one warning
 * naming the file and the reason, and the file is listed with status `error`. A tool name
 * already offered by an earlier plugin is dropped from the later one, with a warning. Two files
 * claiming one plugin name: the one approved for its exact sha256 keeps it, whatever the order
 * (see `approvalRank`); the other is listed as `error` with the reason.
 * @throws TrustStoreError (grants.ts) when, with `stateDir`, the trust store sits in or under a
 *   plugin directory or old approvals are found there; Error naming `approvals.json` and the fix
 *   when that file is unreadable or corrupt. These are configuration faults: the caller should
 *   refuse to start.
 */
export async function loadPlugins(options: LoadPluginsOptions): Promise<PluginHost> {
  const registry = await openRegistry(options);
  return {
    list: () => registry.list(),
    tools: () => registry.tools(),
    plugins: () => registry.plugins(),
    stats: () => registry.stats(),
    channelPlugins: () => registry.channelPlugins(),
    cacheStats: () => registry.cacheStats(),
    load: (file) => registry.load(file),
    unload: (name) => registry.unload(name),
    syncFile: (file) => registry.syncFile(file),
    rescan: (dirs) => registry.rescan(dirs),
    reloadApprovals: () => registry.reloadApprovals(),
    reconfigure: (settings) => registry.reconfigure(settings),
    close: () => registry.close(),
    async callTool(name, input, signal, context) {
      const site = registry.closed ? undefined : registry.toolRoute(name);
      if (signal?.aborted) throw new PluginCallAbortedError(site?.plugin ?? null, { tool: name }, signal.reason);
      if (registry.closed) return { content: "plugin host is closed", isError: true };
      if (site === undefined) return { content: `unknown tool '${name}'`, isError: true };
      return callTool(site, name, input, context, signal);
    },
    async callHook(plugin, hook, input, signal) {
      if (signal?.aborted) throw new PluginCallAbortedError(plugin, { export: hook as never }, signal.reason);
      const site = registry.hookRoute(plugin, hook);
      if (site === undefined) {
        throw new HookCallError(
          plugin,
          hook,
          "not_available",
          `plugin '${plugin}' is not loaded, does not export '${hook}', or is not granted and approved for it`,
        );
      }
      return callHookExport(site, hook, input, signal);
    },
    async fetchAsChannel(plugin, request, maxBytes, signal) {
      const grant = registry.channelGrant(plugin);
      if (grant === undefined) throw new Error(`channel plugin '${plugin}' is not loaded and approved`);
      // As the sandbox does for http_request: the host name is fixed before secrets are substituted.
      let host: string;
      try {
        host = new URL(request.url).host;
      } catch {
        throw new HostHttpError(`'${request.url.slice(0, 200)}' is not a URL`);
      }
      if (/\{\{|%7b%7b/i.test(host)) throw new HostHttpError("a secret cannot be part of the host name");
      return createHostServices({ maxResponseBytes: maxBytes }).http({ method: "GET", url: request.url, headers: request.headers ?? {} }, grant, signal);
    },
    async callChannel(plugin, fn, input, signal) {
      if (signal?.aborted) throw new PluginCallAbortedError(plugin, { export: fn }, signal.reason);
      return callChannelExport(registry.channelRoute(plugin, fn), fn, input, signal);
    },
    async callConnection(plugin, fn, input, signal) {
      if (signal?.aborted) throw new PluginCallAbortedError(plugin, { export: fn }, signal.reason);
      return callConnectionExport(registry.channelRoute(plugin, fn), fn, input, signal);
    },
  };
}
