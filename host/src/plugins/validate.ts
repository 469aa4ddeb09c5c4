import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { readCustomSections } from "./manifest-section.mjs";
import { MANIFEST_SECTION, manifestFromSections, parseManifest, readManifest } from "./manifest.js";
import { EXTISM_KERNEL as SANDBOX_EXTISM_KERNEL, EXTISM_MODULE, HOST_FUNCTIONS, HOST_MODULE } from "./sandbox/protocol.mjs";
import type { PluginManifest } from "./types.js";
import { wasmApi, type WasmExportDescriptor, type WasmImportDescriptor, type WasmModule } from "./wasm.js";
import { readModuleInterface, type ModuleInterface } from "./wasm-interface.js";

/** Import module of the Extism kernel (memory blocks, input/output, errors, logging). */
export const EXTISM_ENV = EXTISM_MODULE;
/** Import module of exoclaw's capability-gated host functions (http, kv, fs, clock, ...). */
export const EXOCLAW_HOST_V1 = HOST_MODULE;

/** The Extism kernel functions a plugin may import (the sandbox's list). */
export const EXTISM_KERNEL: ReadonlySet<string> = new Set(SANDBOX_EXTISM_KERNEL);

/**
 * The `exoclaw:host/v1` functions the sandbox provides (each `fn(request: u64) -> u64`,
 * MessagePack in and out; see plugin-sdk/assembly/host.ts).
 */
export const EXOCLAW_HOST_FUNCTIONS: ReadonlySet<string> = new Set(Object.keys(HOST_FUNCTIONS));

/** A plugin file that cannot be loaded; `reason` says why, `file` which one. */
export class PluginRejectedError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
    /** The manifest, when it was valid and something else was not. */
    readonly manifest?: PluginManifest,
  ) {
    super(`${file}: ${reason}`);
    this.name = "PluginRejectedError";
  }
}

/** A module validated for loading: manifest, hash and interface, never instantiated. */
export interface ValidatedPlugin {
  /** The path as given. */
  path: string;
  /** sha256 of the bytes, lowercase hex. */
  sha256: string;
  /** The module bytes as read. */
  bytes: Uint8Array;
  manifest: PluginManifest;
  imports: WasmImportDescriptor[];
  exports: WasmExportDescriptor[];
}

/** Functions every channel plugin (kind `channel` or `both`) must export; `poll` is optional. */
export const CHANNEL_REQUIRED_EXPORTS = ["parse", "send"] as const;

/**
 * Why a module cannot run here, or null: every import must be an `extism:host/env` kernel
 * function or an `exoclaw:host/v1` function (deny by default: no WASI, no memory/table/global
 * imports), a "tool"/"both" plugin must export a function `call`, and a "channel"/"both" plugin
 * the functions `parse` and `send` (`poll` optional; see channels/types.ts). A manifest that claims a
 * kind its exports cannot serve is rejected here.
 */
export function checkInterface(manifest: PluginManifest, imports: WasmImportDescriptor[], exports: WasmExportDescriptor[]): string | null {
  for (const imp of imports) {
    const ok =
      imp.kind === "function" &&
      ((imp.module === EXTISM_ENV && EXTISM_KERNEL.has(imp.name)) || (imp.module === EXOCLAW_HOST_V1 && EXOCLAW_HOST_FUNCTIONS.has(imp.name)));
    if (!ok) return `imports ${imp.kind} "${imp.module}"."${imp.name}", which this host does not provide (deny by default)`;
  }
  const listed = exports.length === 0 ? "none" : exports.map((e) => `${e.kind} ${e.name}`).join(", ");
  for (const hook of manifest.capabilities.hooks ?? []) {
    if (exports.find((e) => e.name === hook)?.kind !== "function") {
      return `the manifest requests hook "${hook}" but the module does not export a function "${hook}" (exports: ${listed})`;
    }
  }
  // A hooks-only plugin (kind "tool", no tools) needs no `call`.
  if (manifest.kind === "both" || (manifest.kind === "tool" && manifest.tools.length > 0)) {
    const call = exports.find((e) => e.name === "call");
    if (call?.kind !== "function") {
      return `the manifest declares kind "${manifest.kind}" but the module does not export a function "call" (exports: ${listed})`;
    }
  }
  if (manifest.kind === "channel" || manifest.kind === "both") {
    const missing = CHANNEL_REQUIRED_EXPORTS.filter((name) => exports.find((e) => e.name === name)?.kind !== "function");
    if (missing.length > 0) {
      return `the manifest declares kind "${manifest.kind}" but the module does not export ${missing
        .map((m) => `a function "${m}"`)
        .join(" and ")} (a channel plugin needs "parse" and "send", "poll" is optional; exports: ${listed})`;
    }
    for (const name of ["poll", "send_file"]) {
      const e = exports.find((x) => x.name === name);
      if (e !== undefined && e.kind !== "function") return `export "${name}" is a ${e.kind}, not a function (exports: ${listed})`;
    }
    // A persistent-connection channel exports both `connect` and `on_frame`, or neither.
    const connect = exports.find((e) => e.name === "connect");
    const onFrame = exports.find((e) => e.name === "on_frame");
    for (const e of [connect, onFrame])
      if (e !== undefined && e.kind !== "function") return `export "${e.name}" is a ${e.kind}, not a function (exports: ${listed})`;
    if ((connect === undefined) !== (onFrame === undefined)) {
      return `the module exports "${connect !== undefined ? "connect" : "on_frame"}" without "${connect !== undefined ? "on_frame" : "connect"}" (a persistent-connection channel needs both; exports: ${listed})`;
    }
  }
  return null;
}

/** sha256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * What is cached per sha256: everything `validatePluginBytes` derives from the bytes. `manifest`
 * is the manifest as validated when the entry was made, or as read back from the cache file (not
 * parsed again there): it is only ever compared with the module's own manifest, parsed from its
 * bytes at every hit, and never used in its place.
 */
interface CachedValidation {
  manifest: unknown;
  imports: WasmImportDescriptor[];
  exports: WasmExportDescriptor[];
}

const KINDS = ["function", "table", "memory", "global", "tag"];
const isDescriptor = (d: unknown, withModule: boolean): boolean =>
  typeof d === "object" &&
  d !== null &&
  typeof (d as { name?: unknown }).name === "string" &&
  KINDS.includes((d as { kind?: unknown }).kind as string) &&
  (!withModule || typeof (d as { module?: unknown }).module === "string");

/**
 * Validated modules by sha256 (successes only), so that reloading an unchanged file, or the
 * same module under another path, skips compiling. Bounded (least recently used evicted).
 *
 * Optionally persisted (`open(file)` / `save()`): compiling is most of the cost of validating
 * (measured: 22 modules, 20 x 30 KB + 2 x 1.5 MB, load in 65-83 ms cold vs 19-20 ms with the
 * metadata known), so a restart reads it back. Entries are re-checked when read (import/export
 * shapes); the interface rules are applied again on every hit, so a cache written by an older
 * host cannot smuggle in what this one refuses. Only WebAssembly validity and the import/export
 * lists are taken from the cache, keyed by sha256; the manifest of a hit is read again from the
 * module's bytes (no compiling needed) and validated, and an entry whose manifest is not exactly
 * that one (compared as JSON) is ignored, so an edited cache cannot change what a module claims
 * to be. (The cached manifests are not run through the manifest schema when the file is read:
 * that was a second schema parse per plugin at every start, and the comparison above already
 * requires a cached manifest to equal a validated one.) The persisted file lives in the
 * trust directory (`ValidationCache.pathFor`), outside every plugin directory, mode 0600.
 */
export class ValidationCache {
  private readonly map = new Map<string, CachedValidation>();
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();
  hits = 0;
  misses = 0;

  constructor(
    private readonly max = 256,
    /** JSON file this cache persists to, or null (memory only). */
    readonly file: string | null = null,
  ) {}

  /** `<stateDir>/trust/validated.json`: next to the approvals, out of every plugin directory. */
  static pathFor(stateDir: string): string {
    return path.join(stateDir, "trust", "validated.json");
  }

  /**
   * A cache persisted in `file` (`{"version":1,"entries":{<sha256>:{manifest,imports,exports}}}`).
   * A missing, unreadable or corrupt file gives an empty cache (it is only a cache); invalid
   * entries are dropped.
   */
  static async open(file: string, max = 256): Promise<ValidationCache> {
    const cache = new ValidationCache(max, file);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(file, "utf8"));
    } catch {
      return cache;
    }
    const entries = (raw as { version?: unknown; entries?: unknown })?.entries;
    if ((raw as { version?: unknown }).version !== 1 || typeof entries !== "object" || entries === null) return cache;
    for (const [sha, v] of Object.entries(entries as Record<string, unknown>)) {
      if (!/^[0-9a-f]{64}$/.test(sha) || typeof v !== "object" || v === null) continue;
      const { manifest, imports, exports } = v as Record<string, unknown>;
      if (typeof manifest !== "object" || manifest === null || Array.isArray(manifest)) continue;
      if (!Array.isArray(imports) || !imports.every((d) => isDescriptor(d, true))) continue;
      if (!Array.isArray(exports) || !exports.every((d) => isDescriptor(d, false))) continue;
      // The manifest is checked against the module's own at the hit (`cachedManifest`).
      cache.map.set(sha, { manifest, imports: imports as WasmImportDescriptor[], exports: exports as WasmExportDescriptor[] });
    }
    return cache;
  }

  get(sha256: string): CachedValidation | undefined {
    const v = this.map.get(sha256);
    if (v === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(sha256);
    this.map.set(sha256, v);
    return v;
  }

  /** Drops an entry that `get` just returned but that did not match the module (the lookup counts as a miss). */
  forget(sha256: string): void {
    if (this.map.delete(sha256)) {
      this.hits--;
      this.misses++;
      this.dirty = true;
    }
  }

  set(sha256: string, v: CachedValidation): void {
    this.map.delete(sha256);
    this.map.set(sha256, v);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
    this.dirty = true;
  }

  /**
   * Writes the cache to its file if it changed (temporary file + rename). No-op without a file.
   * @throws Error if the file cannot be written
   */
  save(): Promise<void> {
    const file = this.file;
    if (file === null) return Promise.resolve();
    this.saving = this.saving.then(async () => {
      if (!this.dirty) return;
      this.dirty = false;
      const body = JSON.stringify({ version: 1, entries: Object.fromEntries(this.map) });
      await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await writeFile(tmp, body, { mode: 0o600 });
        await rename(tmp, file);
      } catch (err) {
        this.dirty = true;
        await rm(tmp, { force: true });
        throw err;
      }
    });
    return this.saving;
  }
}

/**
 * The module's own manifest (its section, parsed and validated) when it is exactly `cached`
 * (compared as JSON); undefined when it differs or cannot be read (then: validate from scratch).
 */
function cachedManifest(bytes: Uint8Array, cached: unknown): PluginManifest | undefined {
  try {
    const sections = readCustomSections(bytes, MANIFEST_SECTION);
    if (sections.length !== 1) return undefined;
    const fromBytes = parseManifest(JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(sections[0])), "(module)");
    return JSON.stringify(fromBytes) === JSON.stringify(cached) ? fromBytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The imports and exports of a module `WebAssembly.validate` accepted, read from its bytes; or
 * undefined when it uses an encoding `readModuleInterface` does not cover (then the caller
 * compiles it and asks V8, as before).
 */
function describeValidated(bytes: Uint8Array): ModuleInterface | undefined {
  try {
    return readModuleInterface(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Validates module bytes for loading without running any code: validates them as WebAssembly
 * (`WebAssembly.validate`: every function body, as a compile would; a rejected module is compiled
 * for V8's reason), reads and validates the `exoclaw.manifest` section, and checks imports/exports
 * (`checkInterface`).
 * @param bytes the module bytes
 * @param file the file, for messages
 * @param cache optional cache by sha256 (skips compiling a module seen before)
 * @throws PluginRejectedError with the reason (not WebAssembly, manifest field problems, imports, exports)
 */
export async function validatePluginBytes(bytes: Uint8Array, file: string, cache?: ValidationCache): Promise<ValidatedPlugin> {
  const sha256 = sha256Hex(bytes);
  const cached = cache?.get(sha256);
  const known = cached === undefined ? undefined : cachedManifest(bytes, cached.manifest);
  if (cached !== undefined && known === undefined) cache!.forget(sha256); // an edited entry: validate from the bytes
  if (cached !== undefined && known !== undefined) {
    const problem = checkInterface(known, cached.imports, cached.exports);
    if (problem !== null) throw new PluginRejectedError(file, problem, known);
    return { path: file, sha256, bytes, manifest: known, imports: cached.imports, exports: cached.exports };
  }
  // Validated, not compiled: `WebAssembly.validate` checks the whole module (every function body)
  // as a compile does, without V8 creating a native module on the main thread for a module the
  // sandbox pool compiles again (memory capped) at its first call. Only a rejected module is
  // compiled, for the reason V8 gives.
  const described = wasmApi.validate(bytes) ? describeValidated(bytes) : undefined;
  let module: WasmModule | undefined;
  if (described === undefined) {
    try {
      module = await wasmApi.compile(bytes);
    } catch (err) {
      throw new PluginRejectedError(file, `not a valid WebAssembly module: ${(err as Error).message}`);
    }
  }
  let manifest: PluginManifest;
  try {
    manifest = module === undefined ? manifestFromSections(readCustomSections(bytes, MANIFEST_SECTION), file) : readManifest(module, file);
  } catch (err) {
    // ManifestError's message already starts with the file.
    const message = (err as Error).message;
    throw new PluginRejectedError(file, message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message);
  }
  const imports = described?.imports ?? wasmApi.Module.imports(module!);
  const exports = described?.exports ?? wasmApi.Module.exports(module!);
  const problem = checkInterface(manifest, imports, exports);
  if (problem !== null) throw new PluginRejectedError(file, problem, manifest);
  cache?.set(sha256, { manifest, imports, exports });
  return { path: file, sha256, bytes, manifest, imports, exports };
}

/**
 * Reads and validates one plugin file (see `validatePluginBytes`).
 * @throws PluginRejectedError if the file cannot be read or is not a loadable plugin
 */
export async function validatePluginFile(file: string, cache?: ValidationCache): Promise<ValidatedPlugin> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new PluginRejectedError(file, `cannot read: ${(err as Error).message}`);
  }
  return validatePluginBytes(bytes, file, cache);
}
