// exoclaw host functions, module "exoclaw:host/v1" (ABI v1).
//
// Every function has the same shape: `fn(request: u64) -> u64`. The request is a handle to an
// Extism memory block holding one standard-MessagePack value (or 0 for "no request"); it stays
// the guest's to free. The response is a handle to a new block holding the MessagePack map
// `{ok: true, value?}` or `{ok: false, error: string}`; the helpers below read and free both.
//
// Each call is checked against the plugin's grant, every time: a capability that was not
// granted answers `{ok: false, error: "... not granted ..."}` naming the capability, it does not
// trap. Secrets are never readable: write `{{secret:NAME}}` into an HTTP URL or header value and
// the host substitutes it on the way out (only for granted names, only to granted hosts), or
// let the host compare against one (`hmacVerifyResult`, `secretEqualsResult`).
//
// Like the rest of the SDK, these helpers allocate; a plugin built with the minimal runtime
// should return to the host (`runTool` collects) rather than make millions of calls in one go.

import { extism_free, extism_length, extism_load_u64, extism_load_u8, hostLoad, hostStore } from "./extism";
import { Decoder, Encoder, Value } from "./msgpack";

// @ts-ignore: decorator
@external("exoclaw:host/v1", "log")
declare function exoclaw_log(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "clock_now")
declare function exoclaw_clock_now(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "random_bytes")
declare function exoclaw_random_bytes(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "config_get")
declare function exoclaw_config_get(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "kv_get")
declare function exoclaw_kv_get(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "kv_set")
declare function exoclaw_kv_set(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "kv_delete")
declare function exoclaw_kv_delete(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "kv_list")
declare function exoclaw_kv_list(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "fs_read")
declare function exoclaw_fs_read(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "fs_write")
declare function exoclaw_fs_write(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "fs_list")
declare function exoclaw_fs_list(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "http_request")
declare function exoclaw_http_request(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "hmac_verify")
declare function exoclaw_hmac_verify(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "secret_equals")
declare function exoclaw_secret_equals(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "ws_open")
declare function exoclaw_ws_open(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "ws_send")
declare function exoclaw_ws_send(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "ws_close")
declare function exoclaw_ws_close(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "ws_heartbeat")
declare function exoclaw_ws_heartbeat(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "ws_ack")
declare function exoclaw_ws_ack(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "timer_set")
declare function exoclaw_timer_set(req: u64): u64;
// @ts-ignore: decorator
@external("exoclaw:host/v1", "timer_cancel")
declare function exoclaw_timer_cancel(req: u64): u64;

/**
 * The answer of one host call: `ok` with a decoded `value` (nil when the call returns nothing),
 * or not `ok` with `error`, a sentence naming what failed (e.g. the capability not granted).
 */
export class HostResult {
  constructor(public ok: bool, public value: Value, public error: string) {}

  /** The value as bytes (MessagePack bin), or null if it is nil or not bin. */
  bytes(): Uint8Array | null {
    return this.value.isBin() ? this.value.binValue : null;
  }

  /** The value as a string, or null if it is nil or not a string. */
  string(): string | null {
    return this.value.isString() ? this.value.strValue : null;
  }

  /** The value as a number (ints converted), NaN if it is not a number. */
  number(): f64 {
    return this.value.asNumber();
  }

  /** The value as an array of strings (non-strings skipped); empty if it is not an array. */
  strings(): Array<string> {
    const out = new Array<string>();
    if (!this.value.isArray()) return out;
    for (let i = 0; i < this.value.length; i++) {
      const item = this.value.at(i);
      if (item.isString()) out.push(item.strValue);
    }
    return out;
  }
}

/** An HTTP response, or `ok == false` with `error` when the request was refused or failed. */
export class HttpResponse {
  ok: bool = false;
  error: string = "";
  /** HTTP status code (0 when not ok). Redirects are followed by the host within the grant. */
  status: i32 = 0;
  /** Response headers, lower-case names. */
  headers: Map<string, string> = new Map<string, string>();
  body: Uint8Array = new Uint8Array(0);

  /** The body decoded as UTF-8. */
  text(): string {
    return String.UTF8.decode(this.body.buffer);
  }
}

// Host blocks in and out go through the kernel copy helpers of ./extism.
function storeBytes(data: Uint8Array): u64 {
  return hostStore(data.dataStart, data.length);
}

function loadBytes(handle: u64): Uint8Array {
  return hostLoad(handle);
}

function decodeResponse(handle: u64): HostResult {
  if (handle == 0) return new HostResult(false, Value.nil(), "the host returned no response");
  const dec = new Decoder(loadBytes(handle));
  const resp = dec.decode();
  if (resp == null || !resp.isMap()) {
    return new HostResult(false, Value.nil(), "malformed host response: " + dec.error);
  }
  const ok = resp.get("ok");
  const value = resp.get("value");
  if (ok != null && ok.isBool() && ok.boolValue) {
    return new HostResult(true, value != null ? value : Value.nil(), "");
  }
  const err = resp.get("error");
  return new HostResult(false, Value.nil(), err != null && err.isString() ? err.strValue : "host call failed");
}

/** Function ids, for `hostCall`. */
export const enum HostFn {
  Log = 0,
  ClockNow = 1,
  RandomBytes = 2,
  ConfigGet = 3,
  KvGet = 4,
  KvSet = 5,
  KvDelete = 6,
  KvList = 7,
  FsRead = 8,
  FsWrite = 9,
  FsList = 10,
  HttpRequest = 11,
  HmacVerify = 12,
  SecretEquals = 13,
  WsOpen = 14,
  WsSend = 15,
  WsClose = 16,
  WsHeartbeat = 17,
  WsAck = 18,
  TimerSet = 19,
  TimerCancel = 20,
}

/**
 * Low-level: sends `request` (encoded as MessagePack; null sends no request) to host function
 * `fn` and decodes the `{ok, value | error}` response. The typed helpers below are built on it.
 */
export function hostCall(fn: HostFn, request: Value | null): HostResult {
  let req: u64 = 0;
  if (request != null) {
    const enc = new Encoder(64);
    enc.writeValue(request);
    req = storeBytes(enc.finish());
  }
  let resp: u64 = 0;
  switch (fn) {
    case HostFn.Log: resp = exoclaw_log(req); break;
    case HostFn.ClockNow: resp = exoclaw_clock_now(req); break;
    case HostFn.RandomBytes: resp = exoclaw_random_bytes(req); break;
    case HostFn.ConfigGet: resp = exoclaw_config_get(req); break;
    case HostFn.KvGet: resp = exoclaw_kv_get(req); break;
    case HostFn.KvSet: resp = exoclaw_kv_set(req); break;
    case HostFn.KvDelete: resp = exoclaw_kv_delete(req); break;
    case HostFn.KvList: resp = exoclaw_kv_list(req); break;
    case HostFn.FsRead: resp = exoclaw_fs_read(req); break;
    case HostFn.FsWrite: resp = exoclaw_fs_write(req); break;
    case HostFn.FsList: resp = exoclaw_fs_list(req); break;
    case HostFn.HttpRequest: resp = exoclaw_http_request(req); break;
    case HostFn.HmacVerify: resp = exoclaw_hmac_verify(req); break;
    case HostFn.SecretEquals: resp = exoclaw_secret_equals(req); break;
    case HostFn.WsOpen: resp = exoclaw_ws_open(req); break;
    case HostFn.WsSend: resp = exoclaw_ws_send(req); break;
    case HostFn.WsClose: resp = exoclaw_ws_close(req); break;
    case HostFn.WsHeartbeat: resp = exoclaw_ws_heartbeat(req); break;
    case HostFn.WsAck: resp = exoclaw_ws_ack(req); break;
    case HostFn.TimerSet: resp = exoclaw_timer_set(req); break;
    case HostFn.TimerCancel: resp = exoclaw_timer_cancel(req); break;
    default: unreachable();
  }
  if (req != 0) extism_free(req);
  return decodeResponse(resp);
}

function keyRequest(name: string, value: string): Value {
  return Value.map().set(name, Value.str(value));
}

/** Log level names accepted by `hostLog`. */
export const enum HostLogLevel {
  Trace = 0,
  Debug = 1,
  Info = 2,
  Warn = 3,
  Error = 4,
}

const LEVEL_NAMES: string[] = ["trace", "debug", "info", "warn", "error"];

/**
 * Writes a log line to the gateway log (needs the `log` capability). The host forwards it at
 * debug, tagged with the plugin name and `level`; long lines are cut at 8 KiB and a call may log
 * at most 256 lines.
 */
export function hostLog(level: HostLogLevel, message: string): HostResult {
  const lvl = <i32>level;
  const req = Value.map()
    .set("level", Value.str(LEVEL_NAMES[lvl >= 0 && lvl <= 4 ? lvl : 2]))
    .set("message", Value.str(message));
  return hostCall(HostFn.Log, req);
}

// Preallocated so that reading the clock allocates nothing on the fast path.
const CLOCK_BUF = new Uint8Array(20);
// Little-endian views of the first 12 bytes of {ok: true, value: <float64>}:
// 82 a2 'o' 'k' c3 a5 'v' 'a' | 'l' 'u' 'e' cb
const CLOCK_HEAD0: u64 = 0x6176a5c36b6fa282;
const CLOCK_HEAD1: u32 = 0xcb65756c;

/**
 * Wall-clock time in milliseconds since the Unix epoch, with sub-millisecond precision (needs the
 * `clock` capability). Returns NaN when the capability is missing; `clockNowResult` gives the
 * reason.
 */
export function clockNow(): f64 {
  const handle = exoclaw_clock_now(0);
  if (handle == 0) return NaN;
  // Fast path: exactly {ok: true, value: float64} (20 bytes), decoded in place.
  if (extism_length(handle) == 20) {
    const dst = CLOCK_BUF.dataStart;
    store<u64>(dst, extism_load_u64(handle));
    store<u64>(dst + 8, extism_load_u64(handle + 8));
    for (let i = 16; i < 20; i++) store<u8>(dst + <usize>i, extism_load_u8(handle + <u64>i));
    extism_free(handle);
    if (load<u64>(dst) == CLOCK_HEAD0 && load<u32>(dst + 8) == CLOCK_HEAD1) {
      return reinterpret<f64>(bswap<u64>(load<u64>(dst + 12)));
    }
    const v = new Decoder(CLOCK_BUF).decode();
    if (v == null) return NaN;
    const ok = v.get("ok");
    const value = v.get("value");
    return ok != null && ok.isBool() && ok.boolValue && value != null ? value.asNumber() : NaN;
  }
  const r = decodeResponse(handle);
  return r.ok ? r.number() : NaN;
}

/** Like `clockNow`, with the error message when the capability is missing. */
export function clockNowResult(): HostResult {
  return hostCall(HostFn.ClockNow, null);
}

/** `len` cryptographically random bytes, at most 65536 (needs the `random` capability). */
export function randomBytes(len: i32): HostResult {
  return hostCall(HostFn.RandomBytes, Value.map().set("len", Value.int(<i64>len)));
}

/** A config value granted to this plugin by name: `.string()`; not granted is an error. */
export function hostConfigGet(key: string): HostResult {
  return hostCall(HostFn.ConfigGet, keyRequest("key", key));
}

/** Value stored under `key` in the plugin's key-value store: `.bytes()`, null if absent (needs `kv`). */
export function kvGet(key: string): HostResult {
  return hostCall(HostFn.KvGet, keyRequest("key", key));
}

/** Stores `value` under `key`; fails when keys plus values would exceed the granted quota (needs `kv`). */
export function kvSet(key: string, value: Uint8Array): HostResult {
  return hostCall(HostFn.KvSet, Value.map().set("key", Value.str(key)).set("value", Value.bin(value)));
}

/** Removes `key`; `.value` is a bool, whether it existed (needs `kv`). */
export function kvDelete(key: string): HostResult {
  return hostCall(HostFn.KvDelete, keyRequest("key", key));
}

/** Keys starting with `prefix`, sorted: `.strings()` (needs `kv`). */
export function kvList(prefix: string): HostResult {
  return hostCall(HostFn.KvList, keyRequest("prefix", prefix));
}

/** Reads a whole file at a guest path inside a granted directory: `.bytes()` (needs `fs`). */
export function fsRead(path: string): HostResult {
  return hostCall(HostFn.FsRead, keyRequest("path", path));
}

/** Creates or replaces a file at a guest path inside a directory granted with `write` (needs `fs`). */
export function fsWrite(path: string, data: Uint8Array): HostResult {
  return hostCall(HostFn.FsWrite, Value.map().set("path", Value.str(path)).set("data", Value.bin(data)));
}

/** Names in a granted directory, sorted: `.strings()` (needs `fs`). */
export function fsList(path: string): HostResult {
  return hostCall(HostFn.FsList, keyRequest("path", path));
}

/**
 * Sends an HTTP request to a granted host (needs `http`). `headers` may be null; `body` may be
 * null. `{{secret:NAME}}` in the URL or a header value is replaced by the host with the secret's
 * value if NAME is granted; the plugin never sees the value.
 */
export function httpRequest(
  method: string,
  url: string,
  headers: Map<string, string> | null,
  body: Uint8Array | null,
): HttpResponse {
  const req = Value.map().set("method", Value.str(method)).set("url", Value.str(url));
  const h = Value.map();
  if (headers != null) {
    const names = headers.keys();
    for (let i = 0; i < names.length; i++) h.set(names[i], Value.str(headers.get(names[i])));
  }
  req.set("headers", h);
  if (body != null) req.set("body", Value.bin(body));
  const r = hostCall(HostFn.HttpRequest, req);
  const out = new HttpResponse();
  if (!r.ok) {
    out.error = r.error;
    return out;
  }
  const v = r.value;
  const status = v.get("status");
  const respHeaders = v.get("headers");
  const respBody = v.get("body");
  out.ok = true;
  out.status = status != null ? <i32>status.asNumber() : 0;
  if (respHeaders != null && respHeaders.isMap()) {
    for (let i = 0; i < respHeaders.length; i++) {
      const k = respHeaders.keyAt(i);
      const val = respHeaders.at(i);
      if (k.isString() && val.isString()) out.headers.set(k.strValue, val.strValue);
    }
  }
  if (respBody != null && respBody.isBin()) out.body = <Uint8Array>respBody.binValue;
  return out;
}

/**
 * Asks the host whether `signatureHex` is HMAC-`algorithm` ("sha256" or "sha1") of `data`, keyed
 * with the granted secret `secret` (needs `secrets` with that name; `data` at most 4 MiB).
 * `.value` is a bool; the comparison is constant-time on the host and the plugin never sees the
 * key. A signature that is not hex or has the wrong length is `false`, not an error.
 */
export function hmacVerifyResult(algorithm: string, secret: string, data: Uint8Array, signatureHex: string): HostResult {
  const req = Value.map()
    .set("algorithm", Value.str(algorithm))
    .set("secret", Value.str(secret))
    .set("data", Value.bin(data))
    .set("signature", Value.str(signatureHex));
  return hostCall(HostFn.HmacVerify, req);
}

/**
 * Asks the host whether `value` (e.g. a webhook token header) equals the granted secret
 * `secret` (needs `secrets` with that name). `.value` is a bool, compared in constant time.
 */
export function secretEqualsResult(secret: string, value: string): HostResult {
  return hostCall(HostFn.SecretEquals, Value.map().set("secret", Value.str(secret)).set("value", Value.str(value)));
}

// ---- persistent connections (channel plugins exporting connect + on_frame) ---------------------
//
// These work only while the host runs `connect` or `on_frame`, and need the `http` capability.
// Nothing happens during the call: the host applies what they asked for, in order, when the
// export returns successfully (a failed call's requests are dropped).

/**
 * Asks the host to open the WebSocket `url` once `connect` returns (only in `connect`; `wss:`, or
 * `ws:` to loopback, to a host granted under `http`). `{{secret:NAME}}` in the URL's path or
 * query and in header values is substituted by the host. `headers` may be null.
 */
export function wsOpen(url: string, headers: Map<string, string> | null): HostResult {
  const h = Value.map();
  if (headers != null) {
    const names = headers.keys();
    for (let i = 0; i < names.length; i++) h.set(names[i], Value.str(headers.get(names[i])));
  }
  return hostCall(HostFn.WsOpen, Value.map().set("url", Value.str(url)).set("headers", h));
}

/** Sends a text frame (at most 1 MiB; `{{secret:NAME}}` substituted by the host, e.g. a login token). */
export function wsSend(text: string): HostResult {
  return hostCall(HostFn.WsSend, Value.map().set("data", Value.str(text)));
}

/** Sends a binary frame (at most 1 MiB). */
export function wsSendBytes(data: Uint8Array): HostResult {
  return hostCall(HostFn.WsSend, Value.map().set("data", Value.bin(data)));
}

/**
 * Closes the connection with `code` (1000 or 3000-4999; 0 = the host's 4000) and `reason`; the
 * host then calls `connect` again after `reconnectAfterMs` (-1 = its own backoff).
 */
export function wsClose(code: i32, reason: string, reconnectAfterMs: i64): HostResult {
  const req = Value.map().set("reason", Value.str(reason));
  if (code > 0) req.set("code", Value.int(<i64>code));
  if (reconnectAfterMs >= 0) req.set("reconnectAfterMs", Value.int(reconnectAfterMs));
  return hostCall(HostFn.WsClose, req);
}

/**
 * Makes the host send `payload` (a text frame) every `intervalMs` (0 stops; at least 100), the
 * first after `firstDelayMs` (-1 = one interval). Calling again with the same interval only
 * replaces the payload (e.g. a new sequence number). With `expectAck`, a beat due while the
 * previous one was not acknowledged (`wsAck`) makes the host drop the connection and reconnect.
 */
export function wsHeartbeat(intervalMs: i64, firstDelayMs: i64, payload: string, expectAck: bool): HostResult {
  const req = Value.map().set("intervalMs", Value.int(intervalMs)).set("payload", Value.str(payload)).set("expectAck", Value.bool(expectAck));
  if (firstDelayMs >= 0) req.set("firstDelayMs", Value.int(firstDelayMs));
  return hostCall(HostFn.WsHeartbeat, req);
}

/** Tells the host the last heartbeat was acknowledged by the peer. */
export function wsAck(): HostResult {
  return hostCall(HostFn.WsAck, null);
}

/** Sets (or replaces) timer `name`: `on_frame` gets `{kind: "timer", name}` after `afterMs` (at most 16 pending). */
export function timerSet(name: string, afterMs: i64): HostResult {
  return hostCall(HostFn.TimerSet, Value.map().set("name", Value.str(name)).set("afterMs", Value.int(afterMs)));
}

/** Cancels timer `name` (no error when it is not set). */
export function timerCancel(name: string): HostResult {
  return hostCall(HostFn.TimerCancel, Value.map().set("name", Value.str(name)));
}
