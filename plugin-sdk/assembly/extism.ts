// Extism kernel ABI, module "extism:host/env".
//
// Handles returned by `extism_alloc` are opaque u64 offsets into memory owned by the host
// (the Extism kernel), not pointers into this module's linear memory; that is why every
// transfer goes through the load/store imports, 8 bytes at a time where possible.
// Only the imports a plugin actually calls end up in its binary (AssemblyScript drops
// unused declarations), so declaring the whole kernel here costs nothing.

// @ts-ignore: decorator
@external("extism:host/env", "input_length")
export declare function extism_input_length(): u64;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u8")
export declare function extism_input_load_u8(offset: u64): u8;
// @ts-ignore: decorator
@external("extism:host/env", "input_load_u64")
export declare function extism_input_load_u64(offset: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "alloc")
export declare function extism_alloc(length: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "free")
export declare function extism_free(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "length")
export declare function extism_length(handle: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "load_u8")
export declare function extism_load_u8(handle: u64): u8;
// @ts-ignore: decorator
@external("extism:host/env", "load_u64")
export declare function extism_load_u64(handle: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "store_u8")
export declare function extism_store_u8(handle: u64, value: u8): void;
// @ts-ignore: decorator
@external("extism:host/env", "store_u64")
export declare function extism_store_u64(handle: u64, value: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "output_set")
export declare function extism_output_set(handle: u64, length: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "error_set")
export declare function extism_error_set(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "config_get")
export declare function extism_config_get(keyHandle: u64): u64;
// @ts-ignore: decorator
@external("extism:host/env", "log_trace")
export declare function extism_log_trace(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_debug")
export declare function extism_log_debug(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_info")
export declare function extism_log_info(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_warn")
export declare function extism_log_warn(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "log_error")
export declare function extism_log_error(handle: u64): void;
// @ts-ignore: decorator
@external("extism:host/env", "get_log_level")
export declare function extism_get_log_level(): i32;

/**
 * Reads the whole call input into a fresh byte array.
 * Length is bounded by the host's input; a >2 GiB input is not representable here and
 * would already have failed on the host side.
 */
export function inputBytes(): Uint8Array {
  const len = <i32>extism_input_length();
  const out = new Uint8Array(len);
  const dst = out.dataStart;
  let i = 0;
  while (i + 8 <= len) {
    store<u64>(dst + <usize>i, extism_input_load_u64(<u64>i));
    i += 8;
  }
  while (i < len) {
    store<u8>(dst + <usize>i, extism_input_load_u8(<u64>i));
    i++;
  }
  return out;
}

/** Reads the call input as UTF-8 text. */
export function inputString(): string {
  return String.UTF8.decode(inputBytes().buffer);
}

/**
 * Copies `len` bytes at linear-memory address `src` into a new host block and returns its
 * handle. Traps if the host refuses the allocation (memory limit), because at that point
 * there is no way left to report an error through host memory either.
 */
export function hostStore(src: usize, len: i32): u64 {
  const handle = extism_alloc(<u64>len);
  if (handle == 0) unreachable();
  let i = 0;
  while (i + 8 <= len) {
    extism_store_u64(handle + <u64>i, load<u64>(src + <usize>i));
    i += 8;
  }
  while (i < len) {
    extism_store_u8(handle + <u64>i, load<u8>(src + <usize>i));
    i++;
  }
  return handle;
}

/**
 * Copies a host block into a new byte array and frees the block.
 * @param handle a host block returned by a kernel or host function (not 0)
 */
export function hostLoad(handle: u64): Uint8Array {
  const len = <i32>extism_length(handle);
  const out = new Uint8Array(len);
  const dst = out.dataStart;
  let i = 0;
  while (i + 8 <= len) {
    store<u64>(dst + <usize>i, extism_load_u64(handle + <u64>i));
    i += 8;
  }
  while (i < len) {
    store<u8>(dst + <usize>i, extism_load_u8(handle + <u64>i));
    i++;
  }
  extism_free(handle);
  return out;
}

/** Copies a string into a new host block as UTF-8 (lone surrogates become U+FFFD). */
export function hostStoreString(s: string): u64 {
  const buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  return hostStore(changetype<usize>(buf), buf.byteLength);
}

/** Sets the call output to `data` (exact byte length). */
export function outputBytes(data: Uint8Array): void {
  const handle = hostStore(data.dataStart, data.length);
  extism_output_set(handle, <u64>data.length);
}

/** Sets the call output to `s` encoded as UTF-8; the length is the UTF-8 byte count. */
export function outputString(s: string): void {
  const buf = String.UTF8.encode(s, false, String.UTF8.ErrorMode.REPLACE);
  const handle = hostStore(changetype<usize>(buf), buf.byteLength);
  extism_output_set(handle, <u64>buf.byteLength);
}

/**
 * Reports a call failure to the host. The host surfaces `message` as the error of the call;
 * the export should then return a non-zero status.
 */
export function setError(message: string): void {
  extism_error_set(hostStoreString(message));
}

/** Log levels as understood by `log`. */
export const enum LogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
}

/**
 * Sends a log line to the host. Skipped without allocating when the host's level is above
 * `level`, so leaving debug logging in a hot path is cheap.
 */
export function log(level: LogLevel, message: string): void {
  if (<i32>level < extism_get_log_level()) return;
  const handle = hostStoreString(message);
  switch (level) {
    case LogLevel.Trace: extism_log_trace(handle); break;
    case LogLevel.Debug: extism_log_debug(handle); break;
    case LogLevel.Info: extism_log_info(handle); break;
    case LogLevel.Warn: extism_log_warn(handle); break;
    default: extism_log_error(handle); break;
  }
}

/**
 * Reads a host config value by key, or null if unset. Config is set by the host per plugin
 * and is the only sanctioned way to pass settings into a sandboxed plugin.
 */
export function configGet(key: string): string | null {
  const keyHandle = hostStoreString(key);
  const handle = extism_config_get(keyHandle);
  if (handle == 0) return null;
  return String.UTF8.decode(hostLoad(handle).buffer);
}
