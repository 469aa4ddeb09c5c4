// The plugin registry: which plugin files are known, which version of each is loaded (with its
// grant and sandbox pool generation), which plugin serves each tool name, and hot loading (a
// file synced with the disk, a rescan, an approvals reload swap generations atomically). Calls
// themselves are calls.ts; the front that joins both is host.ts.
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { NOOP_TELEMETRY, type Telemetry } from "../telemetry/index.js";
import { errorMessage, KeyedChain, percentile } from "../util/index.js";
import { DEFAULT_LIMITS, type EffectiveGrant, type PluginLimits } from "./capabilities.js";
import { ChannelPluginError } from "./failures.js";
import { generationOf, retire as retireGeneration, type CallCounters, type CallSite, type Generation } from "./generation.js";
import {
  ApprovalStore,
  approvalRank,
  checkTrustStoreLocation,
  describeRequest,
  isPendingApproval,
  normalizeRequest,
  resolveGrant,
  type GrantResolution,
  type OperatorGrant,
} from "./grants.js";
import { createPool as defaultCreatePool, createServices } from "./pool-factory.js";
import type { HostServices, SandboxPool, SandboxPoolOptions, SandboxStats } from "./sandbox/types.js";
import { listWasmFiles, migratePluginState } from "./scan.js";
import type { HookName } from "./hook-names.js";
import type { ChannelExport, ChannelPluginInfo, LoadedPlugin, PluginInfo, PluginLogger, PluginManifest, PluginStatus, ToolSpec } from "./types.js";
import { PluginRejectedError, sha256Hex, validatePluginBytes, ValidationCache, type ValidatedPlugin } from "./validate.js";

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /**
   * Directories scanned in order for `*.wasm` files (not recursive; files sorted by name
   * within a directory). A directory that does not exist is skipped silently.
   */
  dirs: string[];
  /** Where load warnings and (at debug) plugin log lines go; default: discard. */
  logger?: PluginLogger;
  /** Shorthand for `defaultLimits.maxInFlight` (calls of one plugin running at once). */
  maxInstancesPerPlugin?: number;
  /** Limits of plugins without their own entry in `limits`; default `DEFAULT_LIMITS`. */
  defaultLimits?: PluginLimits;
  /** Limits by plugin name. */
  limits?: Record<string, PluginLimits>;
  /** Operator grants by plugin name (`[plugins.grants.<name>]`); absent = nothing granted. */
  grants?: Record<string, OperatorGrant>;
  /**
   * State directory: approvals are read from `<stateDir>/trust/approvals.json` (see
   * `checkTrustStoreLocation`), plugin state lives under `<stateDir>/plugin-state/<name>`.
   * Default: no approvals, state under `<OS temp dir>/exoclaw-state-<pid>`.
   */
  stateDir?: string;
  /** Where secret values are read; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Sandbox pool factory (tests inject fakes); default the sandbox of this build. */
  createPool?: (options: SandboxPoolOptions) => SandboxPool;
  /** Host services for the sandbox; default `createServices(logger)`. */
  services?: HostServices;
  /**
   * Validated modules by sha256, shared across registries; default a fresh in-memory cache. A
   * promise (e.g. `ValidationCache.open` still reading its file) is awaited after the plugin
   * files' reads began; it must not reject.
   */
  validationCache?: ValidationCache | Promise<ValidationCache>;
  /** Where calls, their failures and sandbox restarts are reported (metrics); default none. */
  telemetry?: Telemetry;
}

/** What a config reload may change of {@link LoadPluginsOptions}: grants and limits. */
export type PluginSettings = Pick<LoadPluginsOptions, "grants" | "limits" | "defaultLimits" | "env">;

/** Runtime counters of one loaded plugin (its current sandbox pool). */
export interface PluginStats extends SandboxStats {
  name: string;
}

const noopLogger: PluginLogger = { info() {}, warn() {}, debug() {} };

/** A plugin file known to the registry. */
interface Entry extends CallCounters {
  path: string;
  /** Loaded version (null when status is error and nothing runs). */
  manifest: PluginManifest | null;
  /** Manifest of a rejected version, when it was readable (for name/version/kind in the list). */
  rejectedManifest: PluginManifest | null;
  sha256: string | null;
  bytes: Uint8Array | null;
  error: string | null;
  /** Rejected because another file holds the name; retried on rescan. */
  conflict: boolean;
  resolution: GrantResolution | null;
  gen: Generation | null;
  tools: ToolSpec[];
  /** Function exports of the loaded version. */
  exports: string[];
}

/** The registry of {@link openRegistry}: everything of a `PluginHost` but the calls. */
export interface Registry {
  /** True once `close` was called. */
  readonly closed: boolean;
  list(): PluginInfo[];
  tools(): ToolSpec[];
  plugins(): LoadedPlugin[];
  stats(): PluginStats[];
  channelPlugins(): ChannelPluginInfo[];
  cacheStats(): { hits: number; misses: number };
  load(file: string): Promise<PluginInfo>;
  unload(name: string): Promise<PluginInfo>;
  syncFile(file: string): Promise<void>;
  rescan(dirs: string[]): Promise<void>;
  reloadApprovals(): Promise<void>;
  reconfigure(settings: PluginSettings): Promise<string[]>;
  close(): Promise<void>;
  /** Where a call of tool `name` goes now: its plugin's current generation; undefined for an unknown tool. */
  toolRoute(name: string): CallSite | undefined;
  /**
   * Where a call of channel export `fn` of `plugin` goes now.
   * @throws ChannelPluginError `not_loaded` (no such plugin, a tool plugin, not approved, host
   *   closed) or `no_export`
   */
  channelRoute(plugin: string, fn: ChannelExport): CallSite;
  /**
   * Where a call of lifecycle hook `hook` of `plugin` goes now: only a loaded plugin whose
   * effective grant (request ∩ operator grant ∩ approval) includes the hook and that exports it;
   * undefined otherwise (the hook is not called).
   */
  hookRoute(plugin: string, hook: HookName): CallSite | undefined;
  /** The effective grant of a loaded, approved channel plugin (for host work done on its behalf); undefined otherwise. */
  channelGrant(plugin: string): EffectiveGrant | undefined;
}

/** A plugin file read ahead of the initial load, and its validation (already started). */
interface ReadAhead {
  bytes: Uint8Array;
  validation: Promise<ValidatedPlugin>;
}

/** How long after the initial load its validation cache is written (ms; `close()` writes it too). */
const INITIAL_CACHE_SAVE_DELAY_MS = 1000;

/**
 * Opens the registry: loads every plugin found in `options.dirs` (see `loadPlugins` in host.ts
 * for the rules and the errors thrown).
 */
export async function openRegistry(options: LoadPluginsOptions): Promise<Registry> {
  const logger = options.logger ?? noopLogger;
  const telemetry = options.telemetry ?? NOOP_TELEMETRY;
  // Replaced by `reconfigure` (a config reload).
  let defaultLimits: PluginLimits = {
    ...(options.defaultLimits ?? DEFAULT_LIMITS),
    ...(options.maxInstancesPerPlugin !== undefined ? { maxInFlight: Math.max(1, Math.floor(options.maxInstancesPerPlugin)) } : {}),
  };
  let limits = options.limits ?? {};
  let grants = options.grants ?? {};
  // Replaced by `reconfigure` when it brings one (a reload may name new secrets, or a credential changed).
  let env = options.env ?? process.env;
  const createPool = options.createPool ?? defaultCreatePool;
  const services = options.services ?? createServices(logger);
  const stateRoot = options.stateDir ?? path.join(tmpdir(), `exoclaw-state-${process.pid}`);

  // A trust store a plugin dropper could write, or one that cannot be read, is a configuration
  // fault: refusing to start says so. Running on without approvals would turn every channel's
  // signature check into a 401 that platforms do not redeliver.
  let approvals: ApprovalStore | null = null;
  // Given as a promise, the cache file is read while the plugin files are (an existing state
  // directory's start: docs/architecture.md, "Start-up on an existing store"). The read-ahead's
  // validations wait for it: a plugin file may be read before the cache file is.
  const cacheReady = Promise.resolve(options.validationCache).then((c) => c ?? new ValidationCache());
  // The plugin files are read and validated while the trust store is checked and opened.
  const initialScan = scanAhead(options.dirs);
  const cache = await cacheReady;
  if (options.stateDir !== undefined) {
    await checkTrustStoreLocation(options.stateDir, options.dirs);
    approvals = await ApprovalStore.open(ApprovalStore.pathFor(options.stateDir));
    await migratePluginState(options.stateDir, logger);
  }

  const entries: Entry[] = [];
  let routes = new Map<string, Entry>();
  /** Files unloaded by `unload(name)`, with the sha256 they had; skipped until their content changes. */
  const suppressed = new Map<string, string>();
  const closing = new Set<Promise<void>>();
  let closed = false;
  const mutations = new KeyedChain();

  /** Runs registry mutations one at a time, in call order. */
  function serial<T>(fn: () => Promise<T>): Promise<T> {
    return mutations.run("registry", fn);
  }

  const limitsFor = (name: string): PluginLimits => limits[name] ?? defaultLimits;
  const nameOf = (e: Entry): string => e.manifest?.name ?? e.rejectedManifest?.name ?? path.basename(e.path, ".wasm");
  const isLoaded = (e: Entry): boolean => e.gen !== null && e.manifest !== null;

  function statusOf(e: Entry): PluginStatus {
    if (!isLoaded(e)) return "error";
    return e.resolution !== null && isPendingApproval(e.resolution) ? "pending_approval" : "loaded";
  }

  /**
   * Whether a loaded channel plugin may serve its channel: only a module approved for its exact
   * sha256, or one that requests nothing under a name never approved. A channel plugin is the
   * channel's authentication; a replaced file, a look-alike claiming the name (`changed`) or a
   * module never approved (`none`) would run without the channel's secrets, accepting forged
   * requests or refusing genuine ones with a 401 the platform never redelivers. Instead the
   * channel answers 503 (redelivered) until the operator approves the module.
   */
  const mayServeChannel = (e: Entry): boolean => e.resolution?.approval === "exact" || e.resolution?.approval === "not_needed";

  function info(e: Entry): PluginInfo {
    const m = e.manifest ?? e.rejectedManifest;
    const out: PluginInfo = {
      name: nameOf(e),
      version: m?.version ?? "",
      kind: m?.kind ?? null,
      tools: e.tools.map((t) => t.name),
      sha256: e.sha256,
      path: e.path,
      status: statusOf(e),
      capabilities: {
        requested: normalizeRequest(m?.capabilities ?? {}),
        granted: e.resolution?.granted ?? {},
        pending: e.resolution?.pending ?? {},
      },
      calls: e.calls,
      errors: e.errors,
      p50Ms: +percentile(e.durations, 0.5).toFixed(3),
      p99Ms: +percentile(e.durations, 0.99).toFixed(3),
      limits: { ...limitsFor(nameOf(e)) },
    };
    if (e.error !== null) out.error = e.error;
    return out;
  }

  /** Retires a pool generation: it gets no new calls and closes once its running calls finish. */
  function retire(gen: Generation | null): void {
    const done = retireGeneration(gen, logger);
    if (done === null) return;
    closing.add(done);
    void done.finally(() => closing.delete(done));
  }

  /** Recomputes tool routing in entry order; warns about duplicates of `announce` only. */
  function rebuildRoutes(announce: Entry | null): void {
    const next = new Map<string, Entry>();
    for (const e of entries) {
      if (!isLoaded(e)) {
        e.tools = [];
        continue;
      }
      e.tools = [];
      for (const tool of e.manifest!.tools) {
        const owner = next.get(tool.name);
        if (owner !== undefined) {
          if (e === announce) {
            logger.warn({ file: e.path, plugin: nameOf(e), tool: tool.name, keptFrom: nameOf(owner) }, "duplicate tool name; the first plugin keeps it");
          }
          continue;
        }
        next.set(tool.name, e);
        e.tools.push(tool);
      }
    }
    routes = next;
  }

  function newEntry(file: string): Entry {
    return {
      path: file,
      manifest: null,
      rejectedManifest: null,
      sha256: null,
      bytes: null,
      error: null,
      conflict: false,
      resolution: null,
      gen: null,
      tools: [],
      exports: [],
      calls: 0,
      errors: 0,
      durations: [],
    };
  }

  /** Rank of a module in a contest for its name (see `approvalRank`). */
  function rankOf(manifest: PluginManifest, sha256: string, r: GrantResolution): number {
    return approvalRank(r, approvals?.exact(manifest.name, sha256));
  }

  function resolveFor(manifest: PluginManifest, sha256: string): GrantResolution {
    return resolveGrant(
      manifest.capabilities,
      grants[manifest.name] ?? {},
      approvals?.exact(manifest.name, sha256),
      approvals?.previous(manifest.name, sha256),
      env,
    );
  }

  function makePool(manifest: PluginManifest, bytes: Uint8Array, grant: EffectiveGrant): Generation {
    const pool = createPool({
      name: manifest.name,
      wasm: bytes,
      grant,
      limits: limitsFor(manifest.name),
      // kv is granted only with an approval of this exact module, so a look-alike claiming the
      // name never opens this directory; an approved upgrade (same name) keeps its data.
      stateDir: path.join(stateRoot, "plugin-state", manifest.name),
      services,
      logger,
      ...(telemetry.enabled ? { onRestart: (reason: string) => telemetry.sandboxRestart(manifest.name, reason) } : {}),
    });
    return generationOf(pool);
  }

  function announceResolution(e: Entry, r: GrantResolution): void {
    const name = nameOf(e);
    for (const w of r.warnings) logger.warn({ plugin: name, file: e.path, reason: w }, "capability not granted");
    if (r.approval === "changed") {
      logger.warn(
        {
          plugin: name,
          file: e.path,
          sha256: e.sha256,
          approvedSha256: r.previous?.sha256,
          ...(r.previous?.path !== undefined ? { approvedPath: r.previous.path } : {}),
          requested: describeRequest(r.pending),
        },
        `module not approved: plugin "${name}" was approved for another module (sha256 ${r.previous?.sha256.slice(0, 12)}); this one runs with no capabilities${e.manifest?.kind === "tool" ? "" : " and serves no channel"} until: exoclaw plugin approve ${e.path}`,
      );
      return;
    }
    if (r.approval === "none" && e.manifest?.kind !== "tool") {
      // Nothing granted either: the operator has not set this channel up (the first-party channel
      // plugins sit in every zero-config gateway), so this is not worth a warning at each start.
      const level = Object.keys(r.pending).length > 0 ? "warn" : "debug";
      logger[level](
        { plugin: name, file: e.path, sha256: e.sha256, requested: describeRequest(r.pending) },
        `channel plugin not approved: it serves no channel (webhooks answer 503) until: exoclaw plugin approve ${e.path}`,
      );
      return;
    }
    if (Object.keys(r.pending).length > 0) {
      logger.warn(
        { plugin: name, file: e.path, pending: describeRequest(r.pending), granted: describeRequest(r.granted), approval: r.approval },
        `plugin runs without capabilities pending approval; run: exoclaw plugin approve ${e.path}`,
      );
    }
  }

  /**
   * Validates and (re)loads `file` into its entry. Returns the entry, or throws
   * PluginRejectedError (then the entry records the error, and an earlier version keeps serving).
   */
  async function loadFile(file: string, bytes: Uint8Array | null, explicit: boolean, validation?: Promise<ValidatedPlugin>): Promise<Entry> {
    let entry = entries.find((e) => e.path === file);
    const fresh = entry === undefined;
    if (entry === undefined) entry = newEntry(file);
    const target = entry;
    const reject = (err: PluginRejectedError): never => {
      target.error = err.reason;
      target.conflict = false;
      if (!isLoaded(target)) {
        target.sha256 = bytes === null ? null : sha256Hex(bytes);
        target.rejectedManifest = err.manifest ?? null;
      }
      if (!explicit && fresh) entries.push(target);
      throw err;
    };

    if (bytes === null) {
      try {
        bytes = new Uint8Array(await readFile(file));
      } catch (err) {
        reject(new PluginRejectedError(file, `cannot read: ${errorMessage(err)}`));
      }
    }
    let v: ValidatedPlugin;
    try {
      v = await (validation ?? validatePluginBytes(bytes!, file, cache));
    } catch (err) {
      return reject(err instanceof PluginRejectedError ? err : new PluginRejectedError(file, errorMessage(err)));
    }
    const holder = entries.find((e) => e !== target && isLoaded(e) && e.manifest!.name === v.manifest.name);
    if (holder !== undefined) {
      // Two files claim one name: the approved module wins whichever was seen first, so a
      // look-alike sorting earlier (or loaded by hand) cannot take an approved plugin's place.
      const mine = rankOf(v.manifest, v.sha256, resolveFor(v.manifest, v.sha256));
      const theirs = rankOf(holder.manifest!, holder.sha256!, holder.resolution ?? resolveFor(holder.manifest!, holder.sha256!));
      if (mine > theirs) {
        demote(
          holder,
          `plugin "${v.manifest.name}" is claimed by the approved module ${file} (sha256 ${v.sha256}); this module (sha256 ${holder.sha256}) is not approved`,
        );
      } else {
        const why =
          theirs > 0
            ? `plugin "${v.manifest.name}" is already loaded from ${holder.path} (approved sha256 ${holder.sha256}); this module (sha256 ${v.sha256}) is not approved for that name`
            : `plugin "${v.manifest.name}" is already loaded from ${holder.path}`;
        try {
          reject(new PluginRejectedError(file, why, v.manifest));
        } finally {
          target.conflict = true;
        }
      }
    }
    if (isLoaded(target) && target.sha256 === v.sha256) {
      target.error = null;
      return target; // unchanged
    }
    const resolution = resolveFor(v.manifest, v.sha256);
    const previous = target.gen;
    const replacing = previous !== null;
    target.gen = makePool(v.manifest, v.bytes, resolution.effective);
    target.manifest = v.manifest;
    target.rejectedManifest = null;
    target.sha256 = v.sha256;
    target.bytes = v.bytes;
    target.error = null;
    target.conflict = false;
    target.resolution = resolution;
    target.exports = v.exports.filter((x) => x.kind === "function").map((x) => x.name);
    if (fresh) entries.push(target);
    rebuildRoutes(target);
    retire(previous);
    announceResolution(target, resolution);
    logger.info(
      { plugin: v.manifest.name, version: v.manifest.version, file, sha256: v.sha256, tools: target.tools.map((t) => t.name), status: statusOf(target) },
      replacing ? "plugin reloaded" : "plugin loaded",
    );
    return target;
  }

  /** Takes the name from a loaded module that lost it to an approved one: it stays listed as an `error` (conflict). */
  function demote(e: Entry, reason: string): void {
    logger.warn({ plugin: nameOf(e), file: e.path, sha256: e.sha256, reason }, "plugin refused: its name belongs to an approved module");
    retire(e.gen);
    e.gen = null;
    e.rejectedManifest = e.manifest;
    e.manifest = null;
    e.resolution = null;
    e.error = reason;
    e.conflict = true;
    rebuildRoutes(null);
  }

  function removeEntry(e: Entry, why: string): void {
    const i = entries.indexOf(e);
    if (i >= 0) entries.splice(i, 1);
    const wasLoaded = isLoaded(e);
    retire(e.gen);
    e.gen = null;
    rebuildRoutes(null);
    if (wasLoaded) logger.info({ plugin: nameOf(e), file: e.path }, why);
  }

  /** Retries files rejected only because their name was taken (the holder may be gone now). */
  async function retryConflicts(): Promise<void> {
    for (const e of entries.filter((x) => x.conflict && !isLoaded(x))) {
      try {
        await loadFile(e.path, null, false);
      } catch {
        // still rejected; the entry keeps the reason
      }
    }
  }

  /**
   * Brings the registry in line with `file` (loads, reloads, unloads or skips it).
   * @param ahead the file's bytes and their validation when already started (`scanAhead`)
   */
  async function syncOne(file: string, ahead?: ReadAhead): Promise<void> {
    const abs = path.resolve(file);
    let bytes: Uint8Array;
    try {
      bytes = ahead?.bytes ?? new Uint8Array(await readFile(abs));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const e = entries.find((x) => x.path === abs);
      if (code === "ENOENT" || code === "ENOTDIR" || code === "EISDIR") {
        suppressed.delete(abs);
        if (e !== undefined) {
          removeEntry(e, "plugin unloaded (file removed)");
          await retryConflicts();
        }
        return;
      }
      if (e === undefined || !isLoaded(e)) {
        try {
          await loadFile(abs, null, false);
        } catch (rejected) {
          logger.warn({ file: abs, reason: (rejected as PluginRejectedError).reason ?? errorMessage(rejected) }, "skipping plugin");
        }
      }
      return;
    }
    const sha = sha256Hex(bytes);
    const held = suppressed.get(abs);
    if (held !== undefined) {
      if (held === sha) return;
      suppressed.delete(abs);
    }
    const e = entries.find((x) => x.path === abs);
    if (e !== undefined && e.sha256 === sha) {
      if (isLoaded(e)) {
        e.error = null; // unchanged, or back to the running version after a rejected update
        return;
      }
      if (!e.conflict) return; // the same invalid content again: already warned
    }
    try {
      await loadFile(abs, bytes, false, ahead?.validation);
    } catch (err) {
      const reason = err instanceof PluginRejectedError ? err.reason : errorMessage(err);
      const still = entries.find((x) => x.path === abs);
      if (still !== undefined && isLoaded(still)) {
        still.error = `the file changed but the new version was rejected (${reason}); version ${still.sha256} keeps running`;
        logger.warn({ file: abs, plugin: nameOf(still), reason }, "plugin update rejected; previous version keeps running");
      } else {
        logger.warn({ file: abs, reason }, "skipping plugin");
      }
    }
  }

  /**
   * The initial load's read-ahead: lists `dirs`, then reads every `.wasm` file in them
   * concurrently and validates each as its read completes (`validatePluginBytes`: hash,
   * `WebAssembly.validate`, manifest; no compile). The reads go through the thread pool, so the
   * store's open (its lock, checkpoint and journal files) goes on between them: read
   * synchronously, the files were one block of main-thread work that pushed the store's last steps
   * into recovery and the listen (docs/architecture.md, "Start-up"). Nothing is loaded here:
   * `rescanDirs` applies the files one at a time in directory order, so which file wins a
   * contested name never depends on timing, and each file is validated once, as before (the
   * validation cache counts the same hits and misses). A file that cannot be read maps to
   * `undefined` (the load reads it again and reports it).
   */
  async function scanAhead(dirs: string[]): Promise<{ lists: (string[] | null)[]; files: Map<string, Promise<ReadAhead | undefined>> }> {
    const lists = await Promise.all(dirs.map((dir) => listWasmFiles(dir, logger)));
    const files = new Map<string, Promise<ReadAhead | undefined>>();
    for (const file of lists.flatMap((l) => l ?? [])) {
      if (files.has(file)) continue;
      files.set(
        file,
        readFile(file).then(
          (b) => {
            const bytes = new Uint8Array(b);
            const validation = cacheReady.then((c) => validatePluginBytes(bytes, file, c));
            validation.catch(() => {}); // awaited (and reported) by the load
            return { bytes, validation };
          },
          () => undefined,
        ),
      );
    }
    return { lists, files };
  }

  /**
   * Syncs every `.wasm` file of `dirs` in directory order and unloads the entries whose file is
   * gone. `ahead`: the initial load's read-ahead; later rescans read file by file.
   */
  async function rescanDirs(dirs: string[], ahead?: Promise<Awaited<ReturnType<typeof scanAhead>>>): Promise<void> {
    const scan = ahead === undefined ? undefined : await ahead;
    const seen = new Set<string>();
    for (const [i, dir] of dirs.entries()) {
      const files = scan === undefined ? await listWasmFiles(dir, logger) : scan.lists[i]!;
      if (files === null) continue;
      for (const f of files) {
        seen.add(f);
        await syncOne(f, await scan?.files.get(f));
      }
    }
    const scanned = dirs.map((d) => path.resolve(d));
    for (const e of [...entries]) {
      if (scanned.includes(path.dirname(e.path)) && !seen.has(e.path)) removeEntry(e, "plugin unloaded (file removed)");
    }
    await retryConflicts();
  }

  /** Persists the validation cache (when it has a file) after loads; failures only warn. */
  const persistCache = (): void => {
    cache.save().catch((err: unknown) => logger.warn({ file: cache.file, reason: errorMessage(err) }, "cannot write the plugin validation cache"));
  };

  // Initial load. Its validation cache is written a moment later, off the start-up path: the
  // write's mkdir, write and rename went through the thread pool while the gateway's last start-up
  // steps waited there for their own files (the scheduler's jobs file: its step's wall time doubled
  // at load 7; docs/architecture.md, "Start-up"). `close()` writes it as well.
  await rescanDirs(options.dirs, initialScan);
  const initialSave = setTimeout(persistCache, INITIAL_CACHE_SAVE_DELAY_MS);
  initialSave.unref();

  return {
    get closed() {
      return closed;
    },
    channelPlugins: () =>
      entries
        .filter((e) => isLoaded(e) && (e.manifest!.kind === "channel" || e.manifest!.kind === "both") && mayServeChannel(e))
        .map((e) => ({
          name: nameOf(e),
          exports: {
            poll: e.exports.includes("poll"),
            // Present only when exported (entries of plugins without them stay as they were).
            ...(e.exports.includes("connect") && e.exports.includes("on_frame") ? { connect: true } : {}),
            ...(e.exports.includes("typing") ? { typing: true } : {}),
            ...(e.exports.includes("edit") ? { edit: true } : {}),
            ...(e.exports.includes("send_file") ? { sendFile: true } : {}),
          },
          signatureHeaders: e.manifest!.signatureHeaders ?? [],
          maxInFlight: limitsFor(e.manifest!.name).maxInFlight,
        })),
    list: () => entries.map(info),
    tools: () => entries.flatMap((e) => e.tools),
    plugins: () => entries.filter(isLoaded).map((e) => ({ manifest: e.manifest!, path: e.path, sha256: e.sha256! })),
    stats: () => entries.filter(isLoaded).map((e) => ({ name: nameOf(e), ...e.gen!.pool.stats() })),
    toolRoute(name) {
      const entry = routes.get(name);
      const gen = entry?.gen;
      if (entry === undefined || gen === null || gen === undefined) return undefined;
      return { plugin: nameOf(entry), gen, counters: entry, telemetry };
    },
    channelRoute(plugin, fn) {
      const entry = closed ? undefined : entries.find((e) => isLoaded(e) && e.manifest!.name === plugin);
      const gen = entry?.gen;
      if (entry === undefined || gen === null || gen === undefined) {
        throw new ChannelPluginError(plugin, fn, "not_loaded", closed ? "the plugin host is closed" : `no plugin named '${plugin}' is loaded`);
      }
      if (entry.manifest!.kind === "tool") throw new ChannelPluginError(plugin, fn, "not_loaded", `plugin '${plugin}' is a tool plugin, not a channel plugin`);
      if (!mayServeChannel(entry)) {
        throw new ChannelPluginError(
          plugin,
          fn,
          "not_loaded",
          `module ${entry.path} (sha256 ${entry.sha256}) is not approved; run: exoclaw plugin approve ${entry.path}`,
        );
      }
      if (!entry.exports.includes(fn)) throw new ChannelPluginError(plugin, fn, "no_export", `the module has no function export '${fn}'`);
      return { plugin, gen, counters: entry, telemetry };
    },
    hookRoute(plugin, hook) {
      const entry = closed ? undefined : entries.find((e) => isLoaded(e) && e.manifest!.name === plugin);
      const gen = entry?.gen;
      if (entry === undefined || gen === null || gen === undefined) return undefined;
      if (!(entry.resolution?.effective.hooks ?? []).includes(hook) || !entry.exports.includes(hook)) return undefined;
      return { plugin, gen, counters: entry, telemetry };
    },
    channelGrant(plugin) {
      const entry = closed ? undefined : entries.find((e) => isLoaded(e) && e.manifest!.name === plugin);
      if (entry === undefined || entry.manifest!.kind === "tool" || !mayServeChannel(entry)) return undefined;
      return entry.resolution?.effective;
    },
    cacheStats: () => ({ hits: cache.hits, misses: cache.misses }),
    load: (file) =>
      serial(async () => {
        if (closed) throw new Error("plugin host is closed");
        const abs = path.resolve(file);
        suppressed.delete(abs);
        const e = await loadFile(abs, null, true);
        return info(e);
      }),
    unload: (name) =>
      serial(async () => {
        const e = entries.find((x) => isLoaded(x) && x.manifest!.name === name);
        if (e === undefined) throw new Error(`no plugin named "${name}" is loaded`);
        const before = info(e);
        if (e.sha256 !== null) suppressed.set(e.path, e.sha256);
        removeEntry(e, "plugin unloaded (request)");
        await retryConflicts();
        return before;
      }),
    syncFile: (file) => serial(() => (closed ? Promise.resolve() : syncOne(file).then(persistCache))),
    rescan: (dirs) => serial(() => (closed ? Promise.resolve() : rescanDirs(dirs).then(persistCache))),
    reloadApprovals: () =>
      serial(async () => {
        if (approvals === null || closed) return;
        try {
          await approvals.reload();
        } catch (err) {
          logger.warn({ reason: errorMessage(err) }, "cannot re-read plugin approvals; keeping the previous ones");
          return;
        }
        for (const e of entries) {
          if (!isLoaded(e)) continue;
          const r = resolveFor(e.manifest!, e.sha256!);
          const before = e.resolution;
          e.resolution = r;
          if (JSON.stringify(before?.effective) !== JSON.stringify(r.effective)) {
            const previous = e.gen;
            e.gen = makePool(e.manifest!, e.bytes!, r.effective);
            retire(previous);
            logger.info({ plugin: nameOf(e), granted: describeRequest(r.granted), pending: describeRequest(r.pending) }, "plugin capabilities changed");
          }
        }
        // A newly approved module may now outrank the file holding its name.
        await retryConflicts();
      }),
    reconfigure: (settings) =>
      serial(async () => {
        if (closed) return [];
        const limitsBefore = new Map(entries.filter(isLoaded).map((e) => [e, JSON.stringify(limitsFor(e.manifest!.name))]));
        grants = settings.grants ?? {};
        limits = settings.limits ?? {};
        if (settings.defaultLimits !== undefined) defaultLimits = settings.defaultLimits;
        if (settings.env !== undefined) env = settings.env;
        const swapped: string[] = [];
        for (const e of entries) {
          if (!isLoaded(e)) continue;
          const r = resolveFor(e.manifest!, e.sha256!);
          const before = e.resolution;
          e.resolution = r;
          const grantChanged = JSON.stringify(before?.effective) !== JSON.stringify(r.effective);
          if (!grantChanged && limitsBefore.get(e) === JSON.stringify(limitsFor(e.manifest!.name))) continue;
          if (grantChanged) announceResolution(e, r);
          const previous = e.gen;
          e.gen = makePool(e.manifest!, e.bytes!, r.effective);
          retire(previous);
          swapped.push(nameOf(e));
          logger.info(
            { plugin: nameOf(e), granted: describeRequest(r.granted), pending: describeRequest(r.pending), limits: limitsFor(e.manifest!.name) },
            "plugin grants or limits changed by a config reload",
          );
        }
        return swapped;
      }),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearTimeout(initialSave);
      await mutations.idle();
      for (const e of entries) retire(e.gen);
      await Promise.all([...closing]);
      await cache.save().catch(() => {});
    },
  };
}
