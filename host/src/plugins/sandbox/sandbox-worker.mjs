// The sandbox worker: one instance of one plugin, on its own thread, so that a plugin that loops
// or blocks stalls only this thread (the main thread terminates it when the call's budget runs
// out). Runs an Extism plugin in main-thread mode (no WASI, no Extism HTTP, no paths) plus the
// exoclaw:host/v1 host functions, each checked against the grant on every call.
//
// Plain JavaScript (ESM) so that it runs unchanged from the sources (tests) and as the esbuild
// entry dist/sandbox-worker.mjs. Protocol: protocol.mjs. Started by pool.ts with `workerData`:
//   { module: WebAssembly.Module, name, grant (without secret values), maxPages, maxOutputBytes,
//     sab: SharedArrayBuffer, down: MessagePort (main -> worker, read synchronously),
//     up: MessagePort (worker -> main large outputs, read synchronously by main) }
// The worker never returns to its event loop once started: it waits for calls with Atomics.wait.

import { randomFillSync } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import createPlugin from "@extism/extism";
import { pluginEnvelope } from "../../protocol/msgpack.mjs";
import { errorMessage } from "../../util/error-message.mjs";
import {
  CONNECTION_EXPORTS,
  CTL_EFFECTS,
  CTL_EXEC_US,
  CTL_FN_LEN,
  CTL_HOST_REPLY,
  CTL_IN_LEN,
  CTL_IN_MODE,
  CTL_OUT_LEN,
  CTL_OUT_MODE,
  CTL_REQ,
  CTL_RESP,
  CTL_SLOTS,
  CTL_STATUS,
  CTL_TIMEOUT_MS,
  DATA_BYTES,
  DATA_OFFSET,
  EXTISM_MODULE,
  HOST_MODULE,
  HMAC_ALGORITHMS,
  MAX_FS_BYTES,
  MAX_HMAC_DATA_BYTES,
  MAX_HTTP_BODY_BYTES,
  MAX_KV_KEY_BYTES,
  MAX_LOG_BYTES,
  MAX_LOG_LINES_PER_CALL,
  MAX_EFFECTS_PER_CALL,
  MAX_FRAME_BYTES,
  MAX_RANDOM_BYTES,
  MAX_REQUEST_BYTES,
  MAX_SEND_BYTES_PER_CALL,
  MAX_TIMER_MS,
  MAX_TIMER_NAME,
  MAX_TIMERS,
  MIN_HEARTBEAT_MS,
  ST_MEMORY,
  ST_OK,
  ST_OUTPUT_TOO_LARGE,
  ST_PLUGIN_ERROR,
  ST_START_FAILED,
  SPIN_COOLDOWN,
  SPIN_MISSES,
  ST_TIMEOUT,
  ST_TRAP,
  WORKER_SPIN_MS,
  httpDenial,
  wsDenial,
} from "./protocol.mjs";

/**
 * @typedef {{
 *   http?: {hosts: string[], methods?: string[]},
 *   kv?: {quotaBytes: number},
 *   fs?: {guest: string, host: string, write: boolean}[],
 *   config?: Record<string, string>,
 *   clock?: boolean, random?: boolean, log?: boolean,
 *   secretNames?: string[],
 * }} WorkerGrant  the EffectiveGrant minus secret values (those never leave the main thread),
 *   plus the names of the granted secrets
 */

const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);
const { module: wasmModule, grant: rawGrant, maxPages, maxOutputBytes, sab, down, up } = workerData;
/** @type {WorkerGrant} */
const grant = rawGrant;

const ctl = new Int32Array(sab, 0, CTL_SLOTS);
const data = Buffer.from(sab, DATA_OFFSET, DATA_BYTES);
const utf8 = new TextEncoder();

/** Thrown by a host function when the call's budget ran out while it waited; ends the call. */
class HostTimeout extends Error {}
/** A request the guest got wrong; answered with {ok: false, error}. */
class GuestError extends Error {}

// ---- per-call state -------------------------------------------------------------------------

/** performance.now() when the current call must be over. */
let deadline = 0;
/** The current call's budget, ms (for messages). */
let budgetMs = 0;
/** Last message the guest passed to error_set during the current call. */
let lastError = /** @type {string | null} */ (null);
/** Set when a host-side allocation was refused for the memory limit during the current call. */
let allocRefused = /** @type {string | null} */ (null);
let logLines = 0;
let hostSeq = 0;
/** The export the current call runs (connection host functions check it). */
let currentFn = "";
/**
 * Connection effects of the current call (protocol.d.mts ConnectionEffect), posted to the main
 * thread when the call returns normally; dropped with the call otherwise.
 * @type {Array<Record<string, unknown>>}
 */
let effects = [];
let effectSendBytes = 0;
/** Timer names set in the current call. */
let effectTimers = new Set();

// ---- host function helpers ------------------------------------------------------------------

const DENIED = new Map();
/** `{ok: false}` for a capability that is not granted, cached per function. */
function deniedResponse(/** @type {string} */ fnName, /** @type {string} */ capability) {
  let r = DENIED.get(fnName);
  if (r === undefined) {
    r = Uint8Array.from(pluginEnvelope.pack({ ok: false, error: `${fnName}: capability '${capability}' is not granted to this plugin` }));
    DENIED.set(fnName, r);
  }
  return r;
}

/**
 * @param {unknown} req
 * @param {string} field
 * @returns {string}
 */
function str(req, field) {
  const v = req !== null && typeof req === "object" ? /** @type {Record<string, unknown>} */ (req)[field] : undefined;
  if (typeof v !== "string") throw new GuestError(`request field '${field}' must be a string`);
  return v;
}

/**
 * @param {unknown} req
 * @param {string} field
 * @returns {Uint8Array}
 */
function bin(req, field) {
  const v = req !== null && typeof req === "object" ? /** @type {Record<string, unknown>} */ (req)[field] : undefined;
  if (!(v instanceof Uint8Array)) throw new GuestError(`request field '${field}' must be bytes (MessagePack bin)`);
  return v;
}

/**
 * Stores a response for the guest; notes a refusal for the memory limit before rethrowing.
 * @param {import("@extism/extism").CallContext} ctx
 * @param {Uint8Array} bytes
 */
function respond(ctx, bytes) {
  try {
    return ctx.store(bytes);
  } catch (err) {
    allocRefused ??= `a ${bytes.length}-byte host response did not fit in the plugin's memory limit`;
    throw err;
  }
}

/**
 * Wraps a host function: capability check on every call, request decoding, `{ok, value|error}`
 * response encoding. The guest owns (and frees) its request block; the guest frees the response.
 * @param {string} fnName
 * @param {boolean} granted
 * @param {string} capability
 * @param {(req: unknown) => unknown} impl
 */
function hostFunction(fnName, granted, capability, impl) {
  return (/** @type {import("@extism/extism").CallContext} */ ctx, /** @type {bigint} */ reqHandle) => {
    if (!granted) return respond(ctx, deniedResponse(fnName, capability));
    let resp;
    try {
      let req;
      if (reqHandle !== 0n) {
        const block = ctx.read(reqHandle);
        if (block === null) throw new GuestError("invalid request handle");
        if (block.byteLength > MAX_REQUEST_BYTES) {
          throw new GuestError(`request is ${block.byteLength} bytes, over the ${MAX_REQUEST_BYTES}-byte limit`);
        }
        try {
          req = pluginEnvelope.unpack(block.bytes());
        } catch (err) {
          throw new GuestError(`request is not MessagePack (${errorMessage(err)})`);
        }
      }
      const value = impl(req);
      resp = pluginEnvelope.pack(value === undefined ? { ok: true } : { ok: true, value });
    } catch (err) {
      if (err instanceof HostTimeout) throw err;
      if (!(err instanceof GuestError) && !(err instanceof HostRequestError)) {
        // A bug on our side must not look like the plugin's fault, but must not crash the worker.
        resp = pluginEnvelope.pack({ ok: false, error: `${fnName}: internal error: ${errorMessage(err)}` });
      } else {
        resp = pluginEnvelope.pack({ ok: false, error: `${fnName}: ${errorMessage(err)}` });
      }
    }
    return respond(ctx, resp);
  };
}

/** An error answered by the main thread for a forwarded host request. */
class HostRequestError extends Error {}

/**
 * Forwards a request to the main thread and blocks until it answers or the call's budget ends.
 * @param {string} what for the timeout message
 * @param {Record<string, unknown>} msg
 * @param {Transferable[]} [transfer]
 * @returns {unknown} the reply value
 * @throws {HostTimeout} when the budget ends first; HostRequestError for `{ok: false}` replies.
 */
function hostRequest(what, msg, transfer) {
  const id = ++hostSeq;
  const left = deadline - performance.now();
  if (left <= 0) throw new HostTimeout(`the call exceeded its time limit of ${budgetMs} ms before ${what}`);
  port.postMessage({ t: "host", id, ...msg, budgetMs: left }, transfer ?? []);
  for (;;) {
    const cur = Atomics.load(ctl, CTL_HOST_REPLY);
    if (cur >= id) break;
    const wait = deadline - performance.now();
    if (wait <= 0 || Atomics.wait(ctl, CTL_HOST_REPLY, cur, wait) === "timed-out") {
      if (Atomics.load(ctl, CTL_HOST_REPLY) >= id) break;
      throw new HostTimeout(`the call exceeded its time limit of ${budgetMs} ms while waiting for ${what}`);
    }
  }
  for (;;) {
    const got = receiveMessageOnPort(down);
    if (got === undefined) throw new Error(`reply ${id} was announced but not received`);
    const reply = got.message;
    if (reply.t !== "reply" || reply.id !== id) continue; // a stale reply to an abandoned request
    if (!reply.ok) throw new HostRequestError(reply.error);
    return reply.value;
  }
}

// ---- the host functions ---------------------------------------------------------------------

const LOG_LEVELS = new Set(["trace", "debug", "info", "warn", "error"]);

/** @param {string} level @param {string} message */
function forwardLog(level, message) {
  if (++logLines > MAX_LOG_LINES_PER_CALL) {
    throw new GuestError(`more than ${MAX_LOG_LINES_PER_CALL} log lines in one call`);
  }
  const bytes = Buffer.byteLength(message);
  const text = bytes > MAX_LOG_BYTES ? `${Buffer.from(message).subarray(0, MAX_LOG_BYTES).toString()}… (${bytes} bytes, cut)` : message;
  port.postMessage({ t: "log", level, message: text });
}

const clockResponse = Uint8Array.of(0x82, 0xa2, 0x6f, 0x6b, 0xc3, 0xa5, 0x76, 0x61, 0x6c, 0x75, 0x65, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0);
const clockView = new DataView(clockResponse.buffer);

/** @type {Array<{guest: string, host: string, write: boolean, real: string | null}>} */
const fsMounts = (grant.fs ?? [])
  .map((m) => ({ guest: path.posix.normalize(m.guest).replace(/(.)\/+$/, "$1"), host: m.host, write: m.write, real: null }))
  .sort((a, b) => b.guest.length - a.guest.length);

/** @param {string} root @param {string} p */
function within(root, p) {
  return p === root || p.startsWith(root.endsWith(path.sep) ? root : root + path.sep);
}

/** @param {unknown} err @param {string} guestPath */
function fsError(err, guestPath) {
  const code = /** @type {NodeJS.ErrnoException} */ (err).code;
  const reasons = {
    ENOENT: "no such file or directory",
    EISDIR: "is a directory",
    ENOTDIR: "not a directory",
    EACCES: "permission denied",
    EPERM: "permission denied",
    ELOOP: "is a symbolic link (not followed)",
    EEXIST: "already exists",
    ENOSPC: "no space left on device",
  };
  const reason = code !== undefined && code in reasons ? reasons[/** @type {keyof typeof reasons} */ (code)] : (code ?? "failed");
  // Never the host path: the plugin sees only its own view of the file system.
  return new GuestError(`'${guestPath}': ${reason}`);
}

/**
 * Maps a guest path into a granted directory. Lexical first (".." cannot climb above the
 * mount), then the caller realpaths what it touches.
 * @param {string} guestPath
 * @param {boolean} forWrite
 */
function mapGuestPath(guestPath, forWrite) {
  if (guestPath.length === 0 || !guestPath.startsWith("/") || guestPath.includes("\0")) {
    throw new GuestError(`'${guestPath}' is not an absolute guest path`);
  }
  const norm = path.posix.normalize(guestPath);
  const mount = fsMounts.find((m) => norm === m.guest || norm.startsWith(m.guest === "/" ? "/" : `${m.guest}/`));
  if (mount === undefined) {
    throw new GuestError(`'${guestPath}' is outside the granted directories (capability 'fs' grants ${fsMounts.map((m) => `'${m.guest}'`).join(", ")})`);
  }
  if (forWrite && !mount.write) {
    throw new GuestError(`'${guestPath}' is in '${mount.guest}', which is granted read-only (capability 'fs' without write)`);
  }
  if (mount.real === null) {
    try {
      mount.real = fs.realpathSync(mount.host);
    } catch (err) {
      throw new GuestError(`granted directory '${mount.guest}' is not available (${/** @type {NodeJS.ErrnoException} */ (err).code ?? "error"})`);
    }
  }
  const rel = norm === mount.guest ? "" : norm.slice(mount.guest === "/" ? 1 : mount.guest.length + 1);
  return { root: mount.real, hostPath: rel === "" ? mount.real : path.join(mount.real, ...rel.split("/")), norm };
}

/** Realpath of an existing path, refused if it resolves outside `root` (symlink escape). */
function realInside(/** @type {string} */ root, /** @type {string} */ hostPath, /** @type {string} */ guestPath) {
  let real;
  try {
    real = fs.realpathSync(hostPath);
  } catch (err) {
    throw fsError(err, guestPath);
  }
  if (!within(root, real)) throw new GuestError(`'${guestPath}' resolves outside its granted directory (symbolic link)`);
  return real;
}

const kvGranted = grant.kv !== undefined;
const secretsGranted = grant.secretNames !== undefined;

/**
 * The `secret` field of a hmac_verify / secret_equals request, refused here when not granted.
 * @param {unknown} req
 */
function secretName(req) {
  const name = str(req, "secret");
  const names = grant.secretNames ?? [];
  if (!names.includes(name)) {
    throw new GuestError(
      `secret '${name}' is not granted to this plugin (capability 'secrets' grants ${names.length > 0 ? names.map((n) => `'${n}'`).join(", ") : "no secrets"})`,
    );
  }
  return name;
}
const fsGranted = grant.fs !== undefined && grant.fs.length > 0;

/** @param {unknown} req */
function kvKey(req) {
  const key = str(req, "key");
  const n = Buffer.byteLength(key);
  if (n === 0 || n > MAX_KV_KEY_BYTES) throw new GuestError(`key must be 1 to ${MAX_KV_KEY_BYTES} bytes, got ${n}`);
  return key;
}

// ---- connection host functions (ws_*, timer_*) -------------------------------------------------

const PLACEHOLDER_NAMES = /\{\{secret:([A-Za-z0-9_]+)\}\}/g;

/**
 * Refuses `{{secret:NAME}}` placeholders naming a secret that is not granted (the main thread
 * substitutes the granted ones when the call returns).
 * @param {string} text
 */
function checkPlaceholders(text) {
  if (!text.includes("{{secret:")) return;
  const names = grant.secretNames ?? [];
  for (const m of text.matchAll(PLACEHOLDER_NAMES)) {
    if (!names.includes(/** @type {string} */ (m[1]))) throw new GuestError(`secret '${m[1]}' is not granted to this plugin (capability 'secrets')`);
  }
}

/**
 * Records one effect of the current call, after the export and the per-call limits are checked.
 * @param {string} fnName
 * @param {Record<string, unknown>} effect
 */
function addEffect(fnName, effect) {
  if (!CONNECTION_EXPORTS.includes(currentFn)) {
    throw new GuestError(`only during the connection exports (${CONNECTION_EXPORTS.join(", ")}), not in '${currentFn}'`);
  }
  if (effects.length >= MAX_EFFECTS_PER_CALL) throw new GuestError(`more than ${MAX_EFFECTS_PER_CALL} connection effects in one call`);
  effects.push(effect);
  void fnName;
}

/**
 * An optional non-negative integer field, at most `max`.
 * @param {unknown} req
 * @param {string} field
 * @param {number} max
 * @returns {number | undefined}
 */
function optUint(req, field, max) {
  const v = /** @type {Record<string, unknown>} */ (req)[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw new GuestError(`request field '${field}' must be an integer from 0 to ${max}`);
  return v;
}

/** @param {string} name */
function timerName(name) {
  if (name.length === 0 || name.length > MAX_TIMER_NAME) throw new GuestError(`timer name must be 1 to ${MAX_TIMER_NAME} characters`);
  return name;
}

const httpGranted = grant.http !== undefined;

const hostFunctions = {
  log: hostFunction("log", grant.log === true, "log", (req) => {
    const level = str(req, "level");
    if (!LOG_LEVELS.has(level)) throw new GuestError(`level must be one of ${[...LOG_LEVELS].join(", ")}`);
    forwardLog(level, str(req, "message"));
    return undefined;
  }),

  clock_now:
    grant.clock === true
      ? (/** @type {import("@extism/extism").CallContext} */ ctx) => {
          clockView.setFloat64(12, performance.timeOrigin + performance.now());
          return respond(ctx, clockResponse.slice());
        }
      : hostFunction("clock_now", false, "clock", () => undefined),

  random_bytes: hostFunction("random_bytes", grant.random === true, "random", (req) => {
    const len = req !== null && typeof req === "object" ? /** @type {Record<string, unknown>} */ (req)["len"] : undefined;
    if (typeof len !== "number" || !Number.isInteger(len) || len < 0 || len > MAX_RANDOM_BYTES) {
      throw new GuestError(`len must be an integer from 0 to ${MAX_RANDOM_BYTES}`);
    }
    return randomFillSync(new Uint8Array(len));
  }),

  config_get: hostFunction("config_get", grant.config !== undefined, "config", (req) => {
    const key = str(req, "key");
    const config = grant.config ?? {};
    if (!Object.hasOwn(config, key)) {
      const names = Object.keys(config);
      throw new GuestError(
        `config key '${key}' is not granted (capability 'config' grants ${names.length > 0 ? names.map((n) => `'${n}'`).join(", ") : "no keys"})`,
      );
    }
    const value = config[key];
    return typeof value === "string" ? value : null;
  }),

  kv_get: hostFunction("kv_get", kvGranted, "kv", (req) => hostRequest("kv_get", { op: "kv_get", key: kvKey(req) })),
  kv_set: hostFunction("kv_set", kvGranted, "kv", (req) => {
    const key = kvKey(req);
    const value = Uint8Array.from(bin(req, "value"));
    hostRequest("kv_set", { op: "kv_set", key, value }, [value.buffer]);
    return undefined;
  }),
  kv_delete: hostFunction("kv_delete", kvGranted, "kv", (req) => hostRequest("kv_delete", { op: "kv_delete", key: kvKey(req) })),
  kv_list: hostFunction("kv_list", kvGranted, "kv", (req) => hostRequest("kv_list", { op: "kv_list", prefix: str(req, "prefix") })),

  fs_read: hostFunction("fs_read", fsGranted, "fs", (req) => {
    const guestPath = str(req, "path");
    const { root, hostPath } = mapGuestPath(guestPath, false);
    const real = realInside(root, hostPath, guestPath);
    try {
      const st = fs.statSync(real);
      if (st.isDirectory()) throw new GuestError(`'${guestPath}': is a directory`);
      if (st.size > MAX_FS_BYTES) throw new GuestError(`'${guestPath}' is ${st.size} bytes, over the ${MAX_FS_BYTES}-byte read limit`);
      return fs.readFileSync(real);
    } catch (err) {
      if (err instanceof GuestError) throw err;
      throw fsError(err, guestPath);
    }
  }),

  fs_write: hostFunction("fs_write", fsGranted, "fs", (req) => {
    const guestPath = str(req, "path");
    const bytes = bin(req, "data");
    if (bytes.length > MAX_FS_BYTES) throw new GuestError(`data is ${bytes.length} bytes, over the ${MAX_FS_BYTES}-byte write limit`);
    const { root, hostPath, norm } = mapGuestPath(guestPath, true);
    if (hostPath === root) throw new GuestError(`'${guestPath}': is a directory`);
    const parent = realInside(root, path.dirname(hostPath), path.posix.dirname(norm));
    const target = path.join(parent, path.basename(hostPath));
    let fd;
    try {
      // O_NOFOLLOW: an existing symlink at the target is refused, not written through.
      fd = fs.openSync(target, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o644);
      fs.writeSync(fd, bytes);
    } catch (err) {
      throw fsError(err, guestPath);
    } finally {
      if (fd !== undefined) fs.closeSync(fd);
    }
    return undefined;
  }),

  fs_list: hostFunction("fs_list", fsGranted, "fs", (req) => {
    const guestPath = str(req, "path");
    const { root, hostPath } = mapGuestPath(guestPath, false);
    const real = realInside(root, hostPath, guestPath);
    try {
      return fs.readdirSync(real).sort();
    } catch (err) {
      throw fsError(err, guestPath);
    }
  }),

  http_request: hostFunction("http_request", grant.http !== undefined, "http", (req) => {
    const method = str(req, "method").toUpperCase();
    const rawUrl = str(req, "url");
    let url;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new GuestError(`invalid URL '${rawUrl}' (placeholders are allowed in the path, query and headers, not in the host)`);
    }
    const denial = httpDenial(grant.http, method, url);
    if (denial !== null) throw new GuestError(denial.replace(/^http: /, ""));
    const r = /** @type {Record<string, unknown>} */ (req);
    /** @type {Record<string, string>} */
    const headers = {};
    if (r["headers"] !== undefined && r["headers"] !== null) {
      if (typeof r["headers"] !== "object" || Array.isArray(r["headers"]) || r["headers"] instanceof Uint8Array) {
        throw new GuestError("request field 'headers' must be a map of strings");
      }
      for (const [k, v] of Object.entries(/** @type {Record<string, unknown>} */ (r["headers"]))) {
        if (typeof v !== "string") throw new GuestError(`header '${k}' must be a string`);
        headers[k] = v;
      }
    }
    /** @type {Uint8Array | undefined} */
    let body;
    if (r["body"] !== undefined && r["body"] !== null) {
      body = Uint8Array.from(bin(req, "body"));
      if (body.length > MAX_HTTP_BODY_BYTES) throw new GuestError(`request body is ${body.length} bytes, over the ${MAX_HTTP_BODY_BYTES}-byte limit`);
    }
    return hostRequest(
      `http_request (${method} ${url.origin})`,
      { op: "http", req: { method, url: rawUrl, headers, ...(body ? { body } : {}) } },
      body ? [body.buffer] : [],
    );
  }),

  // The secret values live on the main thread: the MAC is computed and compared there.
  hmac_verify: hostFunction("hmac_verify", secretsGranted, "secrets", (req) => {
    const algorithm = str(req, "algorithm").toLowerCase();
    if (!HMAC_ALGORITHMS.includes(algorithm)) {
      throw new GuestError(`algorithm '${algorithm}' is not supported (use ${HMAC_ALGORITHMS.map((a) => `'${a}'`).join(" or ")})`);
    }
    const secret = secretName(req);
    const data = Uint8Array.from(bin(req, "data"));
    if (data.length > MAX_HMAC_DATA_BYTES) throw new GuestError(`data is ${data.length} bytes, over the ${MAX_HMAC_DATA_BYTES}-byte limit`);
    const signature = str(req, "signature");
    return hostRequest("hmac_verify", { op: "hmac_verify", algorithm, secret, data, signature }, [data.buffer]);
  }),

  secret_equals: hostFunction("secret_equals", secretsGranted, "secrets", (req) => {
    const secret = secretName(req);
    return hostRequest("secret_equals", { op: "secret_equals", secret, value: str(req, "value") });
  }),

  ws_open: hostFunction("ws_open", httpGranted, "http", (req) => {
    if (currentFn !== "connect") throw new GuestError(`only during 'connect', not in '${currentFn}'`);
    const rawUrl = str(req, "url");
    let url;
    try {
      url = new URL(rawUrl);
    } catch {
      throw new GuestError(`invalid URL '${rawUrl}' (placeholders are allowed in the path, query and headers, not in the host)`);
    }
    const denial = wsDenial(grant.http, url);
    if (denial !== null) throw new GuestError(denial.replace(/^ws_open: /, ""));
    checkPlaceholders(rawUrl);
    const r = /** @type {Record<string, unknown>} */ (req);
    /** @type {Record<string, string>} */
    const headers = {};
    if (r["headers"] !== undefined && r["headers"] !== null) {
      if (typeof r["headers"] !== "object" || Array.isArray(r["headers"]) || r["headers"] instanceof Uint8Array) {
        throw new GuestError("request field 'headers' must be a map of strings");
      }
      for (const [k, v] of Object.entries(/** @type {Record<string, unknown>} */ (r["headers"]))) {
        if (typeof v !== "string") throw new GuestError(`header '${k}' must be a string`);
        checkPlaceholders(v);
        headers[k] = v;
      }
    }
    if (effects.some((e) => e["op"] === "open")) throw new GuestError("ws_open was already called in this call");
    addEffect("ws_open", { op: "open", url: rawUrl, headers });
    return undefined;
  }),

  ws_send: hostFunction("ws_send", httpGranted, "http", (req) => {
    const v = req !== null && typeof req === "object" ? /** @type {Record<string, unknown>} */ (req)["data"] : undefined;
    /** @type {string | Uint8Array} */
    let frame;
    let size;
    if (typeof v === "string") {
      checkPlaceholders(v);
      frame = v;
      size = Buffer.byteLength(v);
    } else if (v instanceof Uint8Array) {
      frame = Uint8Array.from(v);
      size = frame.length;
    } else throw new GuestError("request field 'data' must be a string (text frame) or bytes (binary frame)");
    if (size > MAX_FRAME_BYTES) throw new GuestError(`the frame is ${size} bytes, over the ${MAX_FRAME_BYTES}-byte limit`);
    if (effectSendBytes + size > MAX_SEND_BYTES_PER_CALL) throw new GuestError(`more than ${MAX_SEND_BYTES_PER_CALL} bytes of frames in one call`);
    addEffect("ws_send", { op: "send", data: frame });
    effectSendBytes += size;
    return undefined;
  }),

  ws_close: hostFunction("ws_close", httpGranted, "http", (req) => {
    const r = /** @type {Record<string, unknown>} */ (req ?? {});
    const code = optUint(r, "code", 4999);
    if (code !== undefined && code !== 1000 && (code < 3000 || code > 4999)) throw new GuestError("code must be 1000 or 3000 to 4999");
    const reason = r["reason"] === undefined || r["reason"] === null ? undefined : str(r, "reason");
    if (reason !== undefined && Buffer.byteLength(reason) > 123) throw new GuestError("reason must be at most 123 bytes");
    const reconnectAfterMs = optUint(r, "reconnectAfterMs", MAX_TIMER_MS);
    addEffect("ws_close", {
      op: "close",
      ...(code !== undefined ? { code } : {}),
      ...(reason !== undefined ? { reason } : {}),
      ...(reconnectAfterMs !== undefined ? { reconnectAfterMs } : {}),
    });
    return undefined;
  }),

  ws_heartbeat: hostFunction("ws_heartbeat", httpGranted, "http", (req) => {
    const r = /** @type {Record<string, unknown>} */ (req ?? {});
    const intervalMs = optUint(r, "intervalMs", MAX_TIMER_MS);
    if (intervalMs === undefined) throw new GuestError("request field 'intervalMs' is required (0 stops the heartbeat)");
    if (intervalMs !== 0 && intervalMs < MIN_HEARTBEAT_MS) throw new GuestError(`intervalMs must be 0 or at least ${MIN_HEARTBEAT_MS}`);
    const firstDelayMs = optUint(r, "firstDelayMs", MAX_TIMER_MS);
    const payload = str(r, "payload");
    if (Buffer.byteLength(payload) > MAX_FRAME_BYTES) throw new GuestError(`payload is over the ${MAX_FRAME_BYTES}-byte limit`);
    checkPlaceholders(payload);
    const ack = r["expectAck"];
    if (ack !== undefined && ack !== null && typeof ack !== "boolean") throw new GuestError("request field 'expectAck' must be a boolean");
    addEffect("ws_heartbeat", { op: "heartbeat", intervalMs, ...(firstDelayMs !== undefined ? { firstDelayMs } : {}), payload, expectAck: ack === true });
    return undefined;
  }),

  ws_ack: hostFunction("ws_ack", httpGranted, "http", () => {
    addEffect("ws_ack", { op: "ack" });
    return undefined;
  }),

  timer_set: hostFunction("timer_set", httpGranted, "http", (req) => {
    const name = timerName(str(req, "name"));
    const afterMs = optUint(req, "afterMs", MAX_TIMER_MS);
    if (afterMs === undefined) throw new GuestError("request field 'afterMs' is required");
    if (!effectTimers.has(name) && effectTimers.size >= MAX_TIMERS) throw new GuestError(`more than ${MAX_TIMERS} timers`);
    addEffect("timer_set", { op: "timer", name, afterMs });
    effectTimers.add(name);
    return undefined;
  }),

  timer_cancel: hostFunction("timer_cancel", httpGranted, "http", (req) => {
    const name = timerName(str(req, "name"));
    addEffect("timer_cancel", { op: "timer_cancel", name });
    effectTimers.delete(name);
    return undefined;
  }),
};

// ---- the Extism instance --------------------------------------------------------------------

/** @type {import("@extism/extism").Plugin | null} */
let plugin = null;
/** @type {{ buffer: ArrayBuffer } | null} */
let memory = null;
/** Names of the instance's exported functions. */
let exportedFunctions = new Set();
const maxBlockBytes = maxPages * 65536;

/** @param {string} level */
const extismLog =
  (level) =>
  (/** @type {unknown[]} */ ...args) => {
    const text = args.map((a) => (typeof a === "string" ? a : String(a))).join(" ");
    // Extism reports its own refusals through the logger (and then returns 0 to the guest).
    if (level === "error" && text.startsWith("memory limit exceeded")) {
      allocRefused ??= `host-side buffers: ${text}`;
      return;
    }
    if (grant.log === true) {
      try {
        forwardLog(level, text);
      } catch {
        // Over the per-call line limit: the Extism log functions cannot report errors; drop.
      }
    }
  };

async function instantiate() {
  const p = await createPlugin(
    // The bare Module rather than a manifest object: for an object, Extism checks
    // `instanceof Response`, and touching that global loads undici (~25 ms per worker start).
    wasmModule,
    {
      useWasi: false,
      runInWorker: false,
      config: {},
      // Extism-side blocks (input, output, host call buffers) count against the same limit.
      memory: { maxPages, maxVarBytes: 1 << 20 },
      logger: /** @type {Console} */ (
        /** @type {unknown} */ ({
          trace: extismLog("trace"),
          debug: extismLog("debug"),
          info: extismLog("info"),
          warn: extismLog("warn"),
          error: extismLog("error"),
        })
      ),
      logLevel: grant.log === true ? "trace" : "silent",
      fetch: /** @type {typeof fetch} */ (
        async () => {
          throw new Error("Extism HTTP is disabled; use exoclaw:host/v1 http_request");
        }
      ),
      functions: {
        [EXTISM_MODULE]: {
          // Same as Extism's, but keeps the message: when a guest reports and then traps (an
          // AssemblyScript abort), Extism would surface only the trap.
          error_set: (/** @type {import("@extism/extism").CallContext} */ ctx, /** @type {bigint} */ handle) => {
            const text = ctx.read(handle)?.text() ?? "(unreadable error message)";
            lastError = text;
            ctx.setError(text);
          },
          // Refuses one block larger than the whole limit up front (Extism would allocate it
          // before checking the total).
          alloc: (/** @type {import("@extism/extism").CallContext} */ ctx, /** @type {bigint} */ n) => {
            if (n > BigInt(maxBlockBytes)) {
              allocRefused ??= `host-side buffers: a ${n}-byte block exceeds the ${maxBlockBytes}-byte memory limit`;
              return 0n;
            }
            return ctx.alloc(n);
          },
          http_request: () => {
            throw new Error("Extism HTTP is disabled; use exoclaw:host/v1 http_request");
          },
        },
        [HOST_MODULE]: hostFunctions,
      },
    },
  );
  const instance = /** @type {{ exports: Record<string, unknown> }} */ (await p.getInstance());
  const mem = instance.exports["memory"];
  memory = mem instanceof WebAssembly.Memory ? mem : null;
  exportedFunctions = new Set(Object.keys(instance.exports).filter((k) => typeof instance.exports[k] === "function"));
  plugin = p;
}

function discardInstance() {
  const p = plugin;
  plugin = null;
  memory = null;
  if (p !== null) void p.close().catch(() => {});
}

/**
 * Why a trap happened, in words, and whether it is the memory limit.
 * @param {unknown} err
 * @returns {[number, string]}
 */
function classifyTrap(err) {
  const raw = errorMessage(err);
  const reported = lastError !== null ? `${lastError} (${raw})` : raw;
  const pages = memory !== null ? memory.buffer.byteLength / 65536 : 0;
  const limitMiB = ((maxPages * 65536) / (1024 * 1024)).toFixed(maxPages % 16 === 0 ? 0 : 2);
  if (allocRefused !== null) {
    return [ST_MEMORY, `the plugin hit its memory limit of ${limitMiB} MiB (${allocRefused}); trap: ${reported}`];
  }
  if (err instanceof RangeError && /allocation failed|out of memory/i.test(raw)) {
    return [ST_MEMORY, `the plugin hit its memory limit of ${limitMiB} MiB (${raw})`];
  }
  // A failed memory.grow is not observable from outside; a trap with the memory (nearly) at its
  // maximum is reported as the memory limit, since that is what the allocator runs into.
  if (memory !== null && pages >= maxPages * 0.9) {
    return [ST_MEMORY, `the plugin hit its memory limit of ${limitMiB} MiB (${pages} of ${maxPages} pages in use); trap: ${reported}`];
  }
  if (err instanceof RangeError && /call stack/i.test(raw)) return [ST_TRAP, `stack overflow (${reported})`];
  return [ST_TRAP, reported];
}

/**
 * Runs one call of export `fn`. Returns [status, output or message].
 * @param {string} fn
 * @param {Uint8Array} input
 * @returns {Promise<[number, Uint8Array | string]>}
 */
async function runCall(fn, input) {
  lastError = null;
  allocRefused = null;
  logLines = 0;
  currentFn = fn;
  effects = [];
  effectSendBytes = 0;
  effectTimers = new Set();
  if (plugin === null) {
    try {
      await instantiate();
    } catch (err) {
      return [ST_START_FAILED, `the plugin could not be instantiated: ${errorMessage(err)}`];
    }
  }
  const p = /** @type {import("@extism/extism").Plugin} */ (plugin);
  if (!exportedFunctions.has(fn)) return [ST_PLUGIN_ERROR, `the plugin has no exported function '${fn}'`];
  let out;
  try {
    out = await p.call(fn, input);
  } catch (err) {
    if (err instanceof HostTimeout) {
      discardInstance();
      return [ST_TIMEOUT, err.message];
    }
    const msg = errorMessage(err);
    if (msg.startsWith("Plugin-originated error: ") && !(err instanceof WebAssembly.RuntimeError)) {
      // error_set and a normal return: the instance is still sound.
      return [ST_PLUGIN_ERROR, lastError ?? msg.slice("Plugin-originated error: ".length)];
    }
    const [status, message] = classifyTrap(err);
    discardInstance();
    return [status, message];
  }
  if (out === null) return [ST_OK, new Uint8Array(0)];
  if (out.byteLength > maxOutputBytes) {
    return [ST_OUTPUT_TOO_LARGE, `the output is ${out.byteLength} bytes, over the plugin's limit of ${maxOutputBytes} bytes`];
  }
  return [ST_OK, new Uint8Array(out.buffer, out.byteOffset, out.byteLength)];
}

// ---- the call loop --------------------------------------------------------------------------

async function serve() {
  let seen = 0;
  // Adaptive polling (see protocol.mjs): fruitless polls in a row, and calls left to skip polling.
  let misses = 0;
  let cooldown = 0;
  for (;;) {
    let req = Atomics.load(ctl, CTL_REQ);
    if (req === seen) {
      if (cooldown > 0) {
        cooldown--;
      } else {
        const until = performance.now() + WORKER_SPIN_MS;
        while (req === seen && performance.now() < until) req = Atomics.load(ctl, CTL_REQ);
        if (req !== seen) misses = 0;
        else if (++misses >= SPIN_MISSES) {
          misses = 0;
          cooldown = SPIN_COOLDOWN;
        }
      }
    }
    while (req === seen) {
      Atomics.wait(ctl, CTL_REQ, seen);
      req = Atomics.load(ctl, CTL_REQ);
    }
    seen = req;
    const started = performance.now();
    let fn;
    let input;
    if (ctl[CTL_IN_MODE] === 0) {
      const fnLen = /** @type {number} */ (ctl[CTL_FN_LEN]);
      const inLen = /** @type {number} */ (ctl[CTL_IN_LEN]);
      fn = data.toString("utf8", 0, fnLen);
      input = new Uint8Array(inLen);
      input.set(data.subarray(fnLen, fnLen + inLen));
    } else {
      for (;;) {
        const got = receiveMessageOnPort(down);
        if (got === undefined) throw new Error(`call ${seen} was announced but its input was not received`);
        if (got.message.t === "call" && got.message.seq === seen) {
          fn = got.message.fn;
          input = got.message.input;
          break;
        }
      }
    }
    budgetMs = /** @type {number} */ (ctl[CTL_TIMEOUT_MS]);
    deadline = performance.now() + budgetMs;
    const [status, result] = await runCall(fn, input);
    // Effects go first on the up port: main reads them before a large output message.
    if (status === ST_OK && effects.length > 0) {
      up.postMessage({ t: "effects", seq: seen, effects });
      ctl[CTL_EFFECTS] = 1;
    } else ctl[CTL_EFFECTS] = 0;
    effects = [];
    if (typeof result === "string") {
      ctl[CTL_OUT_LEN] = data.write(result.length > 4096 ? `${result.slice(0, 4096)}…` : result, 0);
      ctl[CTL_OUT_MODE] = 0;
    } else if (result.length <= DATA_BYTES) {
      data.set(result, 0);
      ctl[CTL_OUT_LEN] = result.length;
      ctl[CTL_OUT_MODE] = 0;
    } else {
      const copy = result.slice();
      up.postMessage({ t: "out", seq: seen, output: copy }, [copy.buffer]);
      ctl[CTL_OUT_LEN] = result.length;
      ctl[CTL_OUT_MODE] = 1;
    }
    ctl[CTL_STATUS] = status;
    ctl[CTL_EXEC_US] = Math.min(0x7fffffff, Math.round((performance.now() - started) * 1000));
    Atomics.store(ctl, CTL_RESP, seen);
    Atomics.notify(ctl, CTL_RESP);
    // Off the caller's clock: a replaced instance is rebuilt before the next call arrives.
    if (plugin === null && status !== ST_START_FAILED) {
      try {
        await instantiate();
      } catch {
        // Reported by the next call (ST_START_FAILED).
      }
    }
  }
}

try {
  await instantiate();
} catch (err) {
  port.postMessage({ t: "start_failed", message: errorMessage(err) });
  // Stay parked until the main thread terminates this worker.
  await new Promise(() => {});
}
port.postMessage({ t: "ready" });
await serve();
