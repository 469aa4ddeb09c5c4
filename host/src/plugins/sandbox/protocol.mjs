// The main-thread <-> sandbox-worker protocol, shared by pool.ts (main) and sandbox-worker.mjs
// (worker). Plain JavaScript so that the worker runs unchanged from the sources (vitest) and from
// the esbuild bundle (dist/sandbox-worker.mjs). Types: protocol.d.mts.
//
// Each worker owns one SharedArrayBuffer: a header of Int32 slots (CTL_*) followed by a data
// area of DATA_BYTES for inline call input/output. A call is:
//   main:   writes fn name + input into the data area, header fields, then REQ = seq, notify
//   worker: wakes (Atomics.wait on REQ), runs the export, writes STATUS/OUT_LEN and the output
//           (or the error message) into the data area, then RESP = seq, notify
//   main:   wakes (Atomics.waitAsync on RESP) and reads the result.
// Payloads larger than the data area travel as messages on a MessageChannel that both sides
// read synchronously (receiveMessageOnPort), so the worker never needs its event loop.
//
// Waking a sleeping thread costs tens of microseconds on a virtual machine with idle cores, more
// than a small call itself, so both sides poll briefly before sleeping: the worker for up to
// WORKER_SPIN_MS after each call (back-to-back calls find it awake), the main thread for up to
// MAIN_SPIN_MS (only for plugins whose calls usually finish within that). On a busy machine a
// spinning thread takes the core the other side needs, so each side stops spinning after
// SPIN_MISSES polls in a row that found nothing, and tries again SPIN_COOLDOWN calls later.

/** Int32 index: call sequence number written by main (worker waits on it). */
export const CTL_REQ = 0;
/** Int32 index: sequence number of the last finished call, written by the worker (main waits on it). */
export const CTL_RESP = 1;
/** Int32 index: byte length of the export name (UTF-8) at the start of the data area. */
export const CTL_FN_LEN = 2;
/** Int32 index: input byte length. */
export const CTL_IN_LEN = 3;
/** Int32 index: 0 = input inline after the export name, 1 = input sent as a message. */
export const CTL_IN_MODE = 4;
/** Int32 index: the call's time budget, ms (the worker bounds its host-call waits with it). */
export const CTL_TIMEOUT_MS = 5;
/** Int32 index: outcome of the call, one of the ST_* codes. */
export const CTL_STATUS = 6;
/** Int32 index: output byte length (ST_OK) or error message byte length (otherwise). */
export const CTL_OUT_LEN = 7;
/** Int32 index: 0 = output inline at the start of the data area, 1 = sent as a message. */
export const CTL_OUT_MODE = 8;
/** Int32 index: id of the last host-request reply posted by main (worker waits on it). */
export const CTL_HOST_REPLY = 9;
/** Int32 index: how long the worker spent on the call, microseconds (main tunes its spin on it). */
export const CTL_EXEC_US = 10;
/** Int32 index: 1 when the call left connection effects (posted on the up port before any output message), else 0. */
export const CTL_EFFECTS = 11;
/** Number of Int32 header slots (64 bytes). */
export const CTL_SLOTS = 16;
/** Bytes of the header, i.e. where the data area starts. */
export const DATA_OFFSET = CTL_SLOTS * 4;
/** Size of the inline data area, bytes. Larger payloads go through a MessagePort. */
export const DATA_BYTES = 256 * 1024;

/** How long a worker polls for the next call after finishing one before it sleeps, ms. */
export const WORKER_SPIN_MS = 0.02;
/** Longest the main thread polls for a result before it yields to its event loop, ms. */
export const MAIN_SPIN_MS = 0.05;
/** Consecutive fruitless polls after which a side stops polling. */
export const SPIN_MISSES = 4;
/** Calls without polling before a side tries again. */
export const SPIN_COOLDOWN = 256;

/** Call finished, output available. */
export const ST_OK = 0;
/** The guest reported an error with error_set and returned; the instance is kept. */
export const ST_PLUGIN_ERROR = 1;
/** The guest trapped; the worker re-instantiates before the next call. */
export const ST_TRAP = 2;
/** The guest hit its memory limit; the worker re-instantiates. */
export const ST_MEMORY = 3;
/** A host call ran out of the call's time budget; the worker re-instantiates. */
export const ST_TIMEOUT = 4;
/** The output exceeded limits.maxOutputBytes. */
export const ST_OUTPUT_TOO_LARGE = 5;
/** The instance could not be created (start function trapped, link error ...). */
export const ST_START_FAILED = 6;

/** The import module of exoclaw's host functions. */
export const HOST_MODULE = "exoclaw:host/v1";

/**
 * exoclaw:host/v1 functions and the grant field each needs. Signature of each: (i64) -> i64.
 * The `ws_*` and `timer_*` functions (persistent connections) need `http` and work only during
 * the connection exports (CONNECTION_EXPORTS).
 * @type {Readonly<Record<string, "log" | "clock" | "random" | "config" | "kv" | "fs" | "http" | "secrets">>}
 */
export const HOST_FUNCTIONS = Object.freeze({
  log: "log",
  clock_now: "clock",
  random_bytes: "random",
  config_get: "config",
  kv_get: "kv",
  kv_set: "kv",
  kv_delete: "kv",
  kv_list: "kv",
  fs_read: "fs",
  fs_write: "fs",
  fs_list: "fs",
  http_request: "http",
  hmac_verify: "secrets",
  secret_equals: "secrets",
  ws_open: "http",
  ws_send: "http",
  ws_close: "http",
  ws_heartbeat: "http",
  ws_ack: "http",
  timer_set: "http",
  timer_cancel: "http",
});

/** Channel exports during which the connection host functions (`ws_*`, `timer_*`) work; `ws_open` only in `connect`. */
export const CONNECTION_EXPORTS = Object.freeze(["connect", "on_frame"]);
/** Most connection effects (frames, timers, ...) one call may leave. */
export const MAX_EFFECTS_PER_CALL = 256;
/** Most bytes of frames one call may send (sum of `ws_send` data). */
export const MAX_SEND_BYTES_PER_CALL = 1024 * 1024;
/** Largest single frame a plugin may send, bytes. */
export const MAX_FRAME_BYTES = 1024 * 1024;
/** Most timers one connection may have pending (host-enforced across calls too). */
export const MAX_TIMERS = 16;
/** Longest timer, ms (24 h). */
export const MAX_TIMER_MS = 24 * 60 * 60 * 1000;
/** Shortest heartbeat interval, ms. */
export const MIN_HEARTBEAT_MS = 100;
/** Longest timer name, characters. */
export const MAX_TIMER_NAME = 64;

/** The Extism kernel functions (`extism:host/env`) a module may import. */
export const EXTISM_MODULE = "extism:host/env";
export const EXTISM_KERNEL = Object.freeze([
  "alloc",
  "free",
  "length",
  "length_unsafe",
  "load_u8",
  "load_u64",
  "store_u8",
  "store_u64",
  "input_offset",
  "input_length",
  "input_load_u8",
  "input_load_u64",
  "output_set",
  "error_set",
  "error_get",
  "config_get",
  "var_get",
  "var_set",
  "http_request",
  "http_status_code",
  "http_headers",
  "log_trace",
  "log_debug",
  "log_info",
  "log_warn",
  "log_error",
  "get_log_level",
]);

/** Largest random_bytes request, bytes. */
export const MAX_RANDOM_BYTES = 64 * 1024;
/** Largest HTTP request or response body, bytes. */
export const MAX_HTTP_BODY_BYTES = 4 * 1024 * 1024;
/** Largest file fs_read returns / fs_write accepts, bytes. */
export const MAX_FS_BYTES = 4 * 1024 * 1024;
/** Largest `data` hmac_verify accepts, bytes. */
export const MAX_HMAC_DATA_BYTES = 4 * 1024 * 1024;
/** HMAC algorithms hmac_verify accepts (node:crypto names). */
export const HMAC_ALGORITHMS = Object.freeze(["sha256", "sha1"]);
/** Largest encoded host-function request, bytes (the largest payloads plus room for the rest). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024 + 64 * 1024;
/** Longest kv key, UTF-8 bytes. */
export const MAX_KV_KEY_BYTES = 1024;
/** Longest log message forwarded, UTF-8 bytes (longer ones are cut). */
export const MAX_LOG_BYTES = 8 * 1024;
/** Most log lines one call may write. */
export const MAX_LOG_LINES_PER_CALL = 256;

/**
 * Whether `hostname` matches a granted host pattern: exact (`api.example.com`) or a wildcard
 * (`*.example.com`, which matches any name ending in `.example.com` but not `example.com`).
 * Case-insensitive; a trailing dot on `hostname` is ignored; IPv6 literals compare with brackets.
 * @param {string} pattern
 * @param {string} hostname
 * @returns {boolean}
 */
export function hostMatches(pattern, hostname) {
  const p = pattern.toLowerCase();
  let h = hostname.toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  if (p.startsWith("*.")) return h.length > p.length - 1 && h.endsWith(p.slice(1));
  return h === p;
}

/**
 * Checks a WebSocket URL (`wss:`, or `ws:` to loopback only) against an http grant, as a GET of
 * the same host. Returns null when allowed, else the reason.
 * @param {{hosts: string[], methods?: string[]} | undefined} grant
 * @param {URL} url
 * @returns {string | null}
 */
export function wsDenial(grant, url) {
  if (grant === undefined) return "capability 'http' is not granted to this plugin";
  if (url.protocol !== "wss:" && url.protocol !== "ws:") return `ws_open: only wss: (or ws: to loopback) URLs are allowed, not '${url.protocol}'`;
  const h = url.hostname.toLowerCase();
  const loopback = h === "localhost" || h === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
  if (url.protocol === "ws:" && !loopback) return `ws_open: plain ws: is allowed to loopback only, not to '${url.hostname}' (use wss:)`;
  if (!grant.hosts.some((p) => hostMatches(p, url.hostname))) {
    return `ws_open: host '${url.hostname}' is not granted (capability 'http' allows ${grant.hosts.map((x) => `'${x}'`).join(", ") || "no hosts"})`;
  }
  return null;
}

/**
 * Checks an HTTP request against an http grant. Returns null when allowed, else the reason
 * (a sentence naming the capability).
 * @param {{hosts: string[], methods?: string[]} | undefined} grant
 * @param {string} method upper-case method
 * @param {URL} url
 * @returns {string | null}
 */
export function httpDenial(grant, method, url) {
  if (grant === undefined) return "capability 'http' is not granted to this plugin";
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `http: only http and https URLs are allowed, not '${url.protocol}'`;
  }
  if (!grant.hosts.some((p) => hostMatches(p, url.hostname))) {
    return `http: host '${url.hostname}' is not granted (capability 'http' allows ${grant.hosts.map((h) => `'${h}'`).join(", ") || "no hosts"})`;
  }
  if (grant.methods !== undefined && grant.methods.length > 0 && !grant.methods.map((m) => m.toUpperCase()).includes(method)) {
    return `http: method ${method} is not granted (capability 'http' allows ${grant.methods.join(", ")})`;
  }
  return null;
}
