import { ErrorCode, RpcError } from "./errors.js";
import type { RequestId, RpcErrorObject, RpcNotification, RpcRequest, RpcResponse } from "./types.js";

/** Result of validating a decoded frame as a JSON-RPC 2.0 request. */
export type EnvelopeResult = { ok: true; request: RpcRequest } | { ok: false; id: RequestId; error: RpcErrorObject };

function isRequestId(v: unknown): v is RequestId {
  return v === null || typeof v === "string" || (typeof v === "number" && Number.isFinite(v));
}

/**
 * Validates a decoded frame against the JSON-RPC 2.0 request shape. Pure; never throws.
 * Batches (arrays) are not supported in protocol v1 and get -32600. When the id itself is
 * valid it is echoed in the error so the client can correlate it.
 */
export function parseEnvelope(value: unknown): EnvelopeResult {
  if (Array.isArray(value)) return invalid(null, "batch requests are not supported in protocol v1");
  if (value === null || typeof value !== "object") return invalid(null, "a request must be an object");
  const v = value as Record<string, unknown>;
  const id = "id" in v && isRequestId(v.id) ? v.id : null;
  if ("id" in v && !isRequestId(v.id)) return invalid(null, "id must be a string, a number or null");
  if (v.jsonrpc !== "2.0") return invalid(id, 'jsonrpc must be "2.0"');
  if (typeof v.method !== "string" || v.method.length === 0) return invalid(id, "method must be a non-empty string");
  if ("params" in v && v.params !== undefined && (v.params === null || typeof v.params !== "object")) {
    return invalid(id, "params must be an object or an array");
  }
  const request: RpcRequest = { jsonrpc: "2.0", method: v.method, params: v.params };
  if ("id" in v) request.id = id;
  return { ok: true, request };
}

function invalid(id: RequestId, message: string): EnvelopeResult {
  return { ok: false, id, error: { code: ErrorCode.InvalidRequest, message: `Invalid Request: ${message}` } };
}

/** Builds a success response. */
export function resultResponse(id: RequestId, result: unknown): RpcResponse {
  return { jsonrpc: "2.0", id, result };
}

/** Builds an error response. */
export function errorResponse(id: RequestId, error: RpcErrorObject): RpcResponse {
  return { jsonrpc: "2.0", id, error };
}

/** Builds a server notification. */
export function notification(method: string, params: unknown): RpcNotification {
  return { jsonrpc: "2.0", method, params };
}

/**
 * Maps anything thrown by a handler onto a JSON-RPC error object. `RpcError`s keep their code;
 * an error carrying a `publicFailure` (`{reason, message}`: the session store's full disk or
 * broken state, host/src/store/errors.ts) is -32603 with that fixed message and
 * `data: {reason}`; anything else is -32603 with a generic message (details go to the log, not
 * the client). See docs/protocol.md ("Errors").
 */
export function toErrorObject(err: unknown): RpcErrorObject {
  if (err instanceof RpcError) {
    return err.data === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, data: err.data };
  }
  const known = (err as { publicFailure?: { reason?: unknown; message?: unknown } } | undefined)?.publicFailure;
  if (known && typeof known.reason === "string" && typeof known.message === "string") {
    return { code: ErrorCode.InternalError, message: known.message, data: { reason: known.reason } };
  }
  return { code: ErrorCode.InternalError, message: "Internal error" };
}
