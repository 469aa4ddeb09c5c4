import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { readManifest } from "./manifest.js";
import type { PluginManifest } from "./types.js";
import { wasmApi, type WasmExportDescriptor, type WasmImportDescriptor, type WasmModule } from "./wasm.js";

/** Import module of the Extism kernel (memory blocks, input/output, errors, logging). */
export const EXTISM_ENV = "extism:host/env";
/** Import module of exoclaw's capability-gated host functions (http, kv, fs, clock, ...). */
export const EXOCLAW_HOST_V1 = "exoclaw:host/v1";

/** The Extism kernel functions a plugin may import (what Extism's JS runtime provides). */
export const EXTISM_KERNEL: ReadonlySet<string> = new Set([
  "alloc", "free", "length", "length_unsafe", "load_u8", "load_u64", "store_u8", "store_u64",
  "input_offset", "input_length", "input_load_u8", "input_load_u64", "output_set", "error_set",
  "error_get", "config_get", "var_get", "var_set", "http_request", "http_status_code",
  "http_headers", "log_trace", "log_debug", "log_info", "log_warn", "log_error", "get_log_level",
]);

/**
 * The `exoclaw:host/v1` functions (each `fn(request: u64) -> u64`, MessagePack in and out; see
 * plugin-sdk/assembly/host.ts). Kept in sync with the sandbox by hand until it exports the list.
 */
export const EXOCLAW_HOST_FUNCTIONS: ReadonlySet<string> = new Set([
  "log", "clock_now", "random_bytes", "config_get", "kv_get", "kv_set", "kv_delete", "kv_list",
  "fs_read", "fs_write", "fs_list", "http_request",
]);

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

/**
 * Why a module cannot run here, or null: every import must be an `extism:host/env` kernel
 * function or an `exoclaw:host/v1` function (deny by default: no WASI, no memory/table/global
 * imports), and a "tool"/"both" plugin must export a function `call`. A manifest that claims a
 * kind its exports cannot serve is rejected here.
 */
export function checkInterface(manifest: PluginManifest, imports: WasmImportDescriptor[], exports: WasmExportDescriptor[]): string | null {
  for (const imp of imports) {
    const ok =
      imp.kind === "function" &&
      ((imp.module === EXTISM_ENV && EXTISM_KERNEL.has(imp.name)) ||
        (imp.module === EXOCLAW_HOST_V1 && EXOCLAW_HOST_FUNCTIONS.has(imp.name)));
    if (!ok) return `imports ${imp.kind} "${imp.module}"."${imp.name}", which this host does not provide (deny by default)`;
  }
  if (manifest.kind !== "channel") {
    const call = exports.find((e) => e.name === "call");
    if (call?.kind !== "function") {
      return `the manifest declares kind "${manifest.kind}" but the module does not export a function "call" (exports: ${
        exports.length === 0 ? "none" : exports.map((e) => `${e.kind} ${e.name}`).join(", ")
      })`;
    }
  }
  return null;
}

/** sha256 of `bytes`, lowercase hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** What is cached per sha256: everything `validatePluginBytes` derives from the bytes. */
interface CachedValidation {
  manifest: PluginManifest;
  imports: WasmImportDescriptor[];
  exports: WasmExportDescriptor[];
}

/**
 * Validated modules by sha256 (successes only), so that reloading an unchanged file, or the
 * same module under another path, skips compiling. Bounded (oldest evicted first).
 */
export class ValidationCache {
  private readonly map = new Map<string, CachedValidation>();
  hits = 0;
  misses = 0;

  constructor(private readonly max = 256) {}

  get(sha256: string): CachedValidation | undefined {
    const v = this.map.get(sha256);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  set(sha256: string, v: CachedValidation): void {
    this.map.delete(sha256);
    this.map.set(sha256, v);
    while (this.map.size > this.max) this.map.delete(this.map.keys().next().value as string);
  }
}

/**
 * Validates module bytes for loading without running any code: compiles them (WebAssembly
 * validation), reads and validates the `exoclaw.manifest` section, and checks imports/exports
 * (`checkInterface`).
 * @param bytes the module bytes
 * @param file the file, for messages
 * @param cache optional cache by sha256 (skips compiling a module seen before)
 * @throws PluginRejectedError with the reason (not WebAssembly, manifest field problems, imports, exports)
 */
export async function validatePluginBytes(bytes: Uint8Array, file: string, cache?: ValidationCache): Promise<ValidatedPlugin> {
  const sha256 = sha256Hex(bytes);
  const cached = cache?.get(sha256);
  if (cached !== undefined) return { path: file, sha256, bytes, ...cached };
  let module: WasmModule;
  try {
    module = await wasmApi.compile(bytes);
  } catch (err) {
    throw new PluginRejectedError(file, `not a valid WebAssembly module: ${(err as Error).message}`);
  }
  let manifest: PluginManifest;
  try {
    manifest = readManifest(module, file);
  } catch (err) {
    // ManifestError's message already starts with the file.
    const message = (err as Error).message;
    throw new PluginRejectedError(file, message.startsWith(`${file}: `) ? message.slice(file.length + 2) : message);
  }
  const imports = wasmApi.Module.imports(module);
  const exports = wasmApi.Module.exports(module);
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
