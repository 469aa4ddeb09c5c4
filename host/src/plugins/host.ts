import { readdir } from "node:fs/promises";
import path from "node:path";
import createPlugin, { type CallContext, type Plugin } from "@extism/extism";
import { Packr, Unpackr } from "msgpackr";
import { inspectPluginFile, type InspectedPlugin } from "./manifest.js";
import { memoryPages, wasmApi, type WasmMemory, type WasmModule } from "./wasm.js";
import type {
  LoadedPlugin,
  PluginInfo,
  PluginLogger,
  PluginRegistry,
  ToolResult,
  ToolSpec,
} from "./types.js";

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /**
   * Directories scanned in order for `*.wasm` files (not recursive; files sorted by name
   * within a directory). A directory that does not exist is skipped silently.
   */
  dirs: string[];
  /** Where load warnings and (at debug) plugin log lines go; default: discard. */
  logger?: PluginLogger;
  /**
   * Most instances kept per plugin, i.e. how many calls to one plugin run concurrently;
   * further calls queue. One Extism instance cannot run two calls at once. Default 4.
   */
  maxInstancesPerPlugin?: number;
}

/** Runtime counters of one plugin, for health output and tests. */
export interface PluginStats {
  name: string;
  /** Live instances (idle + busy). */
  instances: number;
  busy: number;
  /** Calls waiting for a free instance. */
  waiting: number;
  /** Linear memory size of each live instance, in 64 KiB pages. */
  memoryPages: number[];
  calls: number;
  /** Calls that trapped (the instance was discarded). */
  traps: number;
}

/** The registry returned by {@link loadPlugins}: the `PluginRegistry` contract plus introspection. */
export interface PluginHost extends PluginRegistry {
  /** Loaded plugins with their full manifests, in load order. */
  plugins(): LoadedPlugin[];
  /** Current per-plugin counters, in load order. */
  stats(): PluginStats[];
}

const DEFAULT_MAX_INSTANCES = 4;
const EXTISM_ENV = "extism:host/env";
/** The kernel functions Extism provides; anything else a module imports cannot be satisfied. */
const EXTISM_KERNEL = new Set([
  "alloc", "free", "length", "length_unsafe", "load_u8", "load_u64", "store_u8", "store_u64",
  "input_offset", "input_length", "input_load_u8", "input_load_u64", "output_set", "error_set",
  "error_get", "config_get", "var_get", "var_set", "http_request", "http_status_code",
  "http_headers", "log_trace", "log_debug", "log_info", "log_warn", "log_error", "get_log_level",
]);
// Extism-side buffers (input, output, vars) per instance; plugin linear memory is capped at build time.
const EXTISM_MAX_PAGES = 1024;
const EXTISM_MAX_VAR_BYTES = 1 << 20;
// An instance whose linear memory grew past this after a call is recycled to give memory back.
const RECYCLE_MEMORY_PAGES = 1024;

const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

const noopLogger: PluginLogger = { info() {}, warn() {}, debug() {} };

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function toolError(content: string): ToolResult {
  return { content, isError: true };
}

class ClosedError extends Error {
  constructor() {
    super("plugin host is closed");
  }
}

/** One Extism instance plus what the host tracks about it. */
interface Instance {
  plugin: Plugin;
  memory: WasmMemory | null;
  /** Last message the guest passed to `error_set` during the current call. */
  lastError: string | null;
}

interface Waiter {
  resolve(inst: Instance): void;
  reject(err: unknown): void;
}

/**
 * The instances of one plugin: created lazily up to `max`, reused, replaced after a trap.
 * All instances come from one compiled module, so adding one costs an instantiation only.
 */
class Pool {
  private readonly idle: Instance[] = [];
  private readonly live = new Set<Instance>();
  private readonly waiters: Waiter[] = [];
  private creating = 0;
  private closed = false;
  calls = 0;
  traps = 0;

  constructor(
    private readonly create: () => Promise<Instance>,
    private readonly max: number,
  ) {}

  /**
   * An instance for exclusive use until `release`/`discard`.
   * @throws the abort reason if `signal` aborts while waiting; ClosedError after `close`;
   *   the instantiation error if a new instance cannot be created.
   */
  async acquire(signal?: AbortSignal): Promise<Instance> {
    if (this.closed) throw new ClosedError();
    const ready = this.idle.pop();
    if (ready !== undefined) return ready;
    if (this.live.size + this.creating < this.max) return this.spawn();
    return new Promise<Instance>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      const waiter: Waiter = {
        resolve: (inst) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(inst);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private async spawn(): Promise<Instance> {
    this.creating++;
    try {
      const inst = await this.create();
      if (this.closed) {
        await inst.plugin.close();
        throw new ClosedError();
      }
      this.live.add(inst);
      return inst;
    } finally {
      this.creating--;
    }
  }

  release(inst: Instance): void {
    if (this.closed) {
      this.live.delete(inst);
      void inst.plugin.close();
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter.resolve(inst);
    else this.idle.push(inst);
  }

  /** Drops a broken instance; a waiting call gets a fresh one. */
  discard(inst: Instance): void {
    this.live.delete(inst);
    void inst.plugin.close().catch(() => {});
    if (this.closed || this.waiters.length === 0) return;
    this.spawn().then(
      (fresh) => this.release(fresh),
      (err: unknown) => this.waiters.shift()?.reject(err),
    );
  }

  stats(): Omit<PluginStats, "name"> {
    const all = [...this.live];
    return {
      instances: all.length,
      busy: all.length - this.idle.length,
      waiting: this.waiters.length,
      memoryPages: all.map((i) => (i.memory ? memoryPages(i.memory) : 0)),
      calls: this.calls,
      traps: this.traps,
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new ClosedError());
    const idle = this.idle.splice(0);
    for (const inst of idle) this.live.delete(inst);
    await Promise.all(idle.map((i) => i.plugin.close().catch(() => {})));
  }
}

interface Entry {
  loaded: LoadedPlugin;
  pool: Pool;
  /** Tools routed to this plugin (duplicates lost to an earlier plugin are absent). */
  tools: ToolSpec[];
}

/**
 * Creates one Extism instance of `module`, deny-by-default: no WASI, no network, no file
 * system, no host functions beyond the Extism kernel.
 */
async function instantiate(name: string, module: WasmModule, logger: PluginLogger): Promise<Instance> {
  const forward =
    (level: string) =>
    (...args: unknown[]): void =>
      logger.debug({ plugin: name, level }, args.map((a) => (typeof a === "string" ? a : String(a))).join(" "));
  const extismLogger = {
    trace: forward("trace"),
    debug: forward("debug"),
    info: forward("info"),
    warn: forward("warn"),
    error: forward("error"),
  } as unknown as Console;
  const wantLogs = logger.isLevelEnabled ? logger.isLevelEnabled("debug") : true;

  const inst: Instance = { plugin: undefined as unknown as Plugin, memory: null, lastError: null };
  inst.plugin = await createPlugin(
    { wasm: [{ module, name: "main" }] },
    {
      useWasi: false,
      runInWorker: false,
      allowedHosts: [],
      allowedPaths: {},
      config: {},
      memory: { maxPages: EXTISM_MAX_PAGES, maxVarBytes: EXTISM_MAX_VAR_BYTES },
      logger: extismLogger,
      // The guest SDK asks for the level first, so with "silent" it does not even format lines.
      logLevel: wantLogs ? "trace" : "silent",
      fetch: (async () => {
        throw new Error("network access is not granted to plugins");
      }) as typeof fetch,
      functions: {
        // Same behaviour as Extism's own error_set, but keeps the message: when a guest
        // reports and then traps (an AssemblyScript abort), Extism surfaces only the trap.
        [EXTISM_ENV]: {
          error_set: (ctx: CallContext, handle: bigint) => {
            const text = ctx.read(handle)?.text() ?? "(unreadable error message)";
            inst.lastError = text;
            ctx.setError(text);
          },
        },
      },
    },
  );
  const instance = (await inst.plugin.getInstance()) as { exports: Record<string, unknown> };
  const memory = instance.exports["memory"];
  inst.memory = memory instanceof wasmApi.Memory ? memory : null;
  return inst;
}

/** Why a module cannot run here, or null. Checked before any instantiation. */
function checkModule(inspected: InspectedPlugin): string | null {
  for (const imp of wasmApi.Module.imports(inspected.module)) {
    if (imp.module !== EXTISM_ENV || imp.kind !== "function" || !EXTISM_KERNEL.has(imp.name)) {
      return `imports ${imp.kind} "${imp.module}"."${imp.name}", which this host does not provide (deny by default)`;
    }
  }
  const kind = inspected.manifest.kind;
  if (kind !== "channel") {
    const call = wasmApi.Module.exports(inspected.module).find((e) => e.name === "call");
    if (call?.kind !== "function") return `a "${kind}" plugin must export a function "call"`;
  }
  return null;
}

async function listWasmFiles(dir: string, logger: PluginLogger): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.endsWith(".wasm"))
      .map((e) => path.resolve(dir, e.name))
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") {
      logger.debug({ dir }, "plugin directory does not exist; skipped");
    } else {
      logger.warn({ dir, reason: errorMessage(err) }, "cannot read plugin directory; skipped");
    }
    return [];
  }
}

function decodeResult(bytes: Uint8Array): ToolResult | string {
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch (err) {
    return `output is not MessagePack (${errorMessage(err)})`;
  }
  if (typeof value !== "object" || value === null) return "output is not a {content, isError} map";
  const { content, isError } = value as Record<string, unknown>;
  if (typeof content !== "string") return "output field 'content' is not a string";
  if (typeof isError !== "boolean") return "output field 'isError' is not a boolean";
  return { content, isError };
}

/**
 * Loads every plugin found in `options.dirs` and returns the registry that runs their tools.
 *
 * Never throws for a bad plugin: an unreadable file, a non-Wasm file, a missing or invalid
 * manifest, an import this host does not provide, a failing instantiation, or a duplicate
 * plugin name each produce one warning (naming the file and the reason) and the file is
 * skipped. A tool name already offered by an earlier plugin is dropped from the later one,
 * with a warning. Every plugin is instantiated once here, so start-up faults surface at load.
 */
export async function loadPlugins(options: LoadPluginsOptions): Promise<PluginHost> {
  const logger = options.logger ?? noopLogger;
  const maxInstances = Math.max(1, Math.floor(options.maxInstancesPerPlugin ?? DEFAULT_MAX_INSTANCES));
  const entries: Entry[] = [];
  const byName = new Map<string, Entry>();
  const routes = new Map<string, Entry>();

  for (const dir of options.dirs) {
    for (const file of await listWasmFiles(dir, logger)) {
      let inspected: InspectedPlugin;
      try {
        inspected = await inspectPluginFile(file);
      } catch (err) {
        logger.warn({ file, reason: errorMessage(err) }, "skipping plugin");
        continue;
      }
      const { manifest } = inspected;
      const problem = checkModule(inspected);
      if (problem !== null) {
        logger.warn({ file, plugin: manifest.name, reason: problem }, "skipping plugin");
        continue;
      }
      const previous = byName.get(manifest.name);
      if (previous !== undefined) {
        logger.warn(
          { file, plugin: manifest.name, reason: `plugin "${manifest.name}" is already loaded from ${previous.loaded.path}` },
          "skipping plugin",
        );
        continue;
      }
      const pool = new Pool(() => instantiate(manifest.name, inspected.module, logger), maxInstances);
      try {
        // Instantiate one up front: start-up faults belong to load time, not to the first call.
        pool.release(await pool.acquire());
      } catch (err) {
        await pool.close();
        logger.warn({ file, plugin: manifest.name, reason: `instantiation failed: ${errorMessage(err)}` }, "skipping plugin");
        continue;
      }
      if (manifest.capabilities.length > 0) {
        logger.warn(
          { file, plugin: manifest.name, capabilities: manifest.capabilities },
          "plugin requests capabilities; none are granted (deny by default)",
        );
      }
      const entry: Entry = {
        loaded: { manifest, path: file, sha256: inspected.sha256 },
        pool,
        tools: [],
      };
      for (const tool of manifest.tools) {
        const owner = routes.get(tool.name);
        if (owner !== undefined) {
          logger.warn(
            { file, plugin: manifest.name, tool: tool.name, keptFrom: owner.loaded.manifest.name },
            "duplicate tool name; the first plugin keeps it",
          );
          continue;
        }
        routes.set(tool.name, entry);
        entry.tools.push(tool);
      }
      entries.push(entry);
      byName.set(manifest.name, entry);
      logger.info(
        { plugin: manifest.name, version: manifest.version, file, tools: entry.tools.map((t) => t.name) },
        "plugin loaded",
      );
    }
  }

  let closed = false;

  async function callTool(name: string, input: unknown, signal?: AbortSignal): Promise<ToolResult> {
    signal?.throwIfAborted();
    if (closed) return toolError("plugin host is closed");
    const entry = routes.get(name);
    if (entry === undefined) return toolError(`unknown tool '${name}'`);
    const pluginName = entry.loaded.manifest.name;

    let payload: Uint8Array;
    try {
      payload = packr.pack({ name, input });
    } catch (err) {
      return toolError(`cannot encode the input of tool '${name}': ${errorMessage(err)}`);
    }

    let inst: Instance;
    try {
      inst = await entry.pool.acquire(signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof ClosedError) return toolError("plugin host is closed");
      return toolError(`plugin '${pluginName}' could not start: ${errorMessage(err)}`);
    }

    entry.pool.calls++;
    inst.lastError = null;
    let result: ToolResult;
    try {
      const output = await inst.plugin.call("call", payload);
      const pages = inst.memory === null ? 0 : memoryPages(inst.memory);
      if (pages > RECYCLE_MEMORY_PAGES) {
        logger.debug({ plugin: pluginName, pages }, "recycling large instance");
        entry.pool.discard(inst);
      } else {
        entry.pool.release(inst);
      }
      if (output === null) {
        result = toolError(`plugin '${pluginName}' returned no output for tool '${name}'`);
      } else {
        const decoded = decodeResult(output.bytes());
        result =
          typeof decoded === "string"
            ? toolError(`plugin '${pluginName}' returned malformed output for tool '${name}': ${decoded}`)
            : decoded;
      }
    } catch (err) {
      const message = errorMessage(err);
      if (message.startsWith("Plugin-originated error:") && !(err instanceof wasmApi.RuntimeError)) {
        // The guest reported an error and returned normally: the instance is still sound.
        entry.pool.release(inst);
        result = toolError(`plugin '${pluginName}' failed on tool '${name}': ${inst.lastError ?? message}`);
      } else {
        // A trap (or a host-side fault mid-call) can leave the instance's memory in any state.
        entry.pool.traps++;
        entry.pool.discard(inst);
        const reason = inst.lastError === null ? message : `${inst.lastError} (${message})`;
        logger.warn({ plugin: pluginName, tool: name, reason }, "plugin instance crashed; replaced");
        result = toolError(`plugin '${pluginName}' crashed on tool '${name}': ${reason}`);
      }
    }
    // The call itself cannot be interrupted on this thread; an abort that arrived meanwhile
    // still wins so that callers see one consistent outcome for aborted calls.
    signal?.throwIfAborted();
    return result;
  }

  return {
    list(): PluginInfo[] {
      return entries.map((e) => ({
        name: e.loaded.manifest.name,
        version: e.loaded.manifest.version,
        kind: e.loaded.manifest.kind,
        tools: e.tools.map((t) => t.name),
      }));
    },
    tools(): ToolSpec[] {
      return entries.flatMap((e) => e.tools);
    },
    plugins(): LoadedPlugin[] {
      return entries.map((e) => e.loaded);
    },
    stats(): PluginStats[] {
      return entries.map((e) => ({ name: e.loaded.manifest.name, ...e.pool.stats() }));
    },
    callTool,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all(entries.map((e) => e.pool.close()));
    },
  };
}
