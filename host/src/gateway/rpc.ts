import type { Logger } from "pino";
import {
  decodeFrame,
  encodeFrame,
  ErrorCode,
  errorResponse,
  notification,
  parseEnvelope,
  resultResponse,
  toErrorObject,
  type Encoding,
  type RequestId,
  type RpcErrorObject,
} from "../protocol/index.js";
import { ClientGoneError } from "../agent/index.js";
import type { ClientIdentity } from "./identity.js";
import type { Connection } from "./types.js";

/** What a method handler gets besides its params. */
export interface MethodContext {
  conn: Connection;
  /** Who sent the request (the connection's identity from the upgrade); methods check scopes on it. */
  identity: ClientIdentity;
  requestId: RequestId;
  encoding: Encoding;
  /** Sends a notification on this connection in the request's encoding. */
  notify(method: string, params: unknown): void;
  /**
   * Aborted when the connection closes, with a ClientGoneError (-32006, `data.reason`
   * "client_gone") as its reason: work done only for this client can stop.
   */
  signal: AbortSignal;
}

/**
 * A method handler: returns the result (sync or async) or throws; an `RpcError` keeps its code,
 * anything else becomes -32603.
 */
export type MethodHandler = (params: unknown, ctx: MethodContext) => unknown;

/** Options of {@link createRpcHandler}. */
export interface RpcOptions {
  methods: ReadonlyMap<string, MethodHandler>;
  logger: Logger;
  /** Frames larger than this get -32003 instead of being parsed, bytes. */
  maxFrameBytes: number;
  /** Outbound bytes a connection may have queued before it is closed as a slow consumer. */
  maxBufferedBytes: number;
  /** Requests one connection may have in flight before new ones get -32004. */
  maxInflightPerConnection: number;
}

/**
 * The protocol layer over a transport: decodes frames, validates JSON-RPC envelopes, dispatches
 * to methods, and writes responses in the request's encoding. Nothing a client sends can throw
 * out of it; every bad frame gets the matching JSON-RPC error and the connection stays open.
 * @returns the per-message entry point for the transport
 */
export function createRpcHandler(options: RpcOptions): {
  message(conn: Connection, data: Uint8Array, isBinary: boolean): void;
  close(conn: Connection): void;
} {
  const inflight = new WeakMap<Connection, number>();
  /** Per connection, aborted when it closes (created on its first request). */
  const lifetimes = new WeakMap<Connection, AbortController>();
  const lifetimeOf = (conn: Connection): AbortSignal => {
    let c = lifetimes.get(conn);
    if (!c) {
      c = new AbortController();
      if (conn.closed) c.abort(new ClientGoneError());
      lifetimes.set(conn, c);
    }
    return c.signal;
  };

  function send(conn: Connection, message: unknown, encoding: Encoding): void {
    if (conn.closed) return;
    let frame: string | Uint8Array;
    try {
      frame = encodeFrame(message, encoding);
    } catch (err) {
      options.logger.error({ err, conn: conn.id }, "cannot encode an outbound message");
      const id = (message as { id?: RequestId }).id;
      if (id === undefined) return;
      frame = encodeFrame(errorResponse(id, { code: ErrorCode.InternalError, message: "Internal error: result not encodable" }), encoding);
    }
    conn.send(frame);
    if (conn.bufferedBytes() > options.maxBufferedBytes) {
      options.logger.warn({ conn: conn.id, buffered: conn.bufferedBytes() }, "closing slow consumer");
      conn.close(1008, "slow consumer: send buffer full");
    }
  }

  function sendError(conn: Connection, id: RequestId, error: RpcErrorObject, encoding: Encoding): void {
    send(conn, errorResponse(id, error), encoding);
  }

  async function dispatch(conn: Connection, id: RequestId | undefined, method: string, params: unknown, encoding: Encoding) {
    const handler = options.methods.get(method);
    if (id === undefined) {
      // JSON-RPC 2.0 section 4.1: no response to a notification. v1 defines no client notifications.
      options.logger.debug({ conn: conn.id, method }, "ignored client notification");
      return;
    }
    if (!handler) return sendError(conn, id, { code: ErrorCode.MethodNotFound, message: `Method not found: ${method}` }, encoding);
    const count = inflight.get(conn) ?? 0;
    if (count >= options.maxInflightPerConnection) {
      return sendError(
        conn,
        id,
        { code: ErrorCode.SessionBusy, message: `too many requests in flight on this connection (max ${options.maxInflightPerConnection})` },
        encoding,
      );
    }
    inflight.set(conn, count + 1);
    const ctx: MethodContext = {
      conn,
      identity: conn.identity,
      requestId: id,
      encoding,
      notify: (m, p) => send(conn, notification(m, p), encoding),
      signal: lifetimeOf(conn),
    };
    try {
      const result = await handler(params, ctx);
      send(conn, resultResponse(id, result ?? null), encoding);
    } catch (err) {
      const error = toErrorObject(err);
      if (error.code === ErrorCode.InternalError) options.logger.error({ err, method, conn: conn.id }, "method failed");
      sendError(conn, id, error, encoding);
    } finally {
      inflight.set(conn, (inflight.get(conn) ?? 1) - 1);
    }
  }

  return {
    message(conn, data, isBinary) {
      const encoding: Encoding = isBinary ? "msgpack" : "json";
      if (data.byteLength > options.maxFrameBytes) {
        return sendError(
          conn,
          null,
          { code: ErrorCode.FrameTooLarge, message: `frame of ${data.byteLength} bytes exceeds the limit of ${options.maxFrameBytes} bytes` },
          encoding,
        );
      }
      const decoded = decodeFrame(data, encoding);
      if (!decoded.ok) {
        return sendError(conn, null, { code: ErrorCode.ParseError, message: `Parse error: ${decoded.reason}` }, encoding);
      }
      const env = parseEnvelope(decoded.value);
      if (!env.ok) return sendError(conn, env.id, env.error, encoding);
      void dispatch(conn, env.request.id, env.request.method, env.request.params, encoding);
    },
    close(conn) {
      inflight.delete(conn);
      lifetimes.get(conn)?.abort(new ClientGoneError());
      lifetimes.delete(conn);
    },
  };
}
