import type { ClientIdentity } from "./identity.js";

/** Which WebSocket/HTTP implementation serves the gateway. */
export type TransportName = "uws" | "ws";

/** One WebSocket connection, as the protocol layer sees it; identical for every transport. */
export interface Connection {
  /** Process-unique connection number, for logs. */
  readonly id: number;
  readonly remoteAddress: string;
  /** Who the client is, decided once at the upgrade by `TransportHandlers.authorize`. */
  readonly identity: ClientIdentity;
  /** True once the socket closed; `send` is then a no-op. */
  readonly closed: boolean;
  /** Sends a frame: a string as a text frame, bytes as a binary frame. No-op when closed. */
  send(frame: string | Uint8Array): void;
  /** Bytes queued for this connection but not yet written to the socket. */
  bufferedBytes(): number;
  /** Closes with a WebSocket close code (RFC 6455 section 7.4) and a short reason. */
  close(code: number, reason: string): void;
}

/**
 * What the transport asks the gateway when a client tries to upgrade to WebSocket. Both
 * transports fill it from the request head the same way (uWS: before the upgrade handler returns).
 */
export interface UpgradeRequest {
  remoteAddress: string;
  /** The `Authorization` header, if any. */
  authorization?: string;
  /** The raw query string (without `?`). */
  query: string;
  /** The `Origin` header, if any (browsers always send it on a WebSocket upgrade). */
  origin?: string;
  /** The `Host` header, if any. */
  host?: string;
  /** The `Sec-WebSocket-Protocol` header, if any (a browser's token: protocol/subprotocol.ts). */
  protocols?: string;
}

/** The gateway's answer to an upgrade: go ahead as this identity, or the HTTP status and error to refuse it with. */
export type UpgradeVerdict =
  | {
      ok: true;
      identity: ClientIdentity;
      /** The subprotocol to answer with (`exoclaw.v1` when offered; never the bearer entry); absent = as the transport did before. */
      protocol?: string;
    }
  | { ok: false; status: 401 | 403; error: string };

/** JSON body of a refused upgrade: `{"error": "..."}`. */
export const upgradeRefusalBody = (error: string): string => JSON.stringify({ error });

/** An HTTP request's head, read before its body (uWS invalidates the request object after the handler's first await). */
export interface HttpRequestHead {
  /** Upper-case. */
  method: string;
  /** The raw (still percent-encoded) path, without the query string. */
  path: string;
  /** The raw query string, without `?`. */
  query: string;
  /** Lower-case names; a repeated header's values joined with `, `. */
  headers: Record<string, string>;
  remoteAddress: string;
}

/** An HTTP answer a handler gives. */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  /** Bytes, or UTF-8 text. */
  body: Uint8Array | string;
}

/**
 * Serves plain HTTP routes beside `/health` and `/ws` (the channel webhooks). Not behind the
 * gateway token: each route authenticates its own callers (webhook signatures).
 */
export interface HttpHandler {
  /**
   * Decides, from the head alone, whether to read the body: the largest body accepted, bytes
   * (a larger one gets 413 while it streams in), or an immediate answer (404, 400, 429, ...).
   * Null: not a route of this handler (404).
   *
   * `release` (capacity the handler reserved for the request) is called by the transport exactly
   * once, when it no longer holds the body: after `handle`'s answer settles, or as soon as the
   * body will never reach `handle` (413, 408, client abort, stream error). `bodyTimeoutMs`: time
   * from the head to the end of the body, ms; past it the transport answers 408 and closes the
   * connection (absent = no limit but the transport's own).
   */
  route(head: HttpRequestHead): { maxBodyBytes: number; release?: () => void; bodyTimeoutMs?: number } | HttpAnswer | null;
  /** Answers a request whose body was read completely. Must not throw. */
  handle(head: HttpRequestHead, body: Uint8Array): Promise<HttpAnswer>;
}

/** Status line text of the statuses the gateway answers (uWS needs the full status line). */
export const STATUS_TEXT: Record<number, string> = {
  200: "OK",
  201: "Created",
  202: "Accepted",
  204: "No Content",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * Whether a request announces a body (a positive `Content-Length`, or `Transfer-Encoding`): one
 * answered from its head alone is answered with the connection closed, so the unread rest of the
 * body is never received.
 */
export const hasBody = (headers: Record<string, string>): boolean => headers["transfer-encoding"] !== undefined || Number(headers["content-length"] ?? 0) > 0;

/** `408` answer to a request whose body did not arrive within the route's `bodyTimeoutMs`. */
export const bodyTimeoutAnswer = (ms: number): HttpAnswer => ({
  status: 408,
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ error: `request body not received within ${ms} ms` }),
});

/** `413` answer body for a request body over the route's limit. */
export const tooLargeBody = (limit: number): string => JSON.stringify({ error: `request body larger than ${limit} bytes` });

/** Callbacks a transport drives. They must not throw. */
export interface TransportHandlers {
  /**
   * Decides whether an upgrade is allowed and as whom: `{ok: true, identity}`, or a refusal
   * answered with its status and `{"error"}` body, no upgrade.
   */
  authorize(req: UpgradeRequest): UpgradeVerdict;
  open(conn: Connection): void;
  /** A complete message. `data` is a private copy the handler may keep. */
  message(conn: Connection, data: Uint8Array, isBinary: boolean): void;
  close(conn: Connection, code: number): void;
  /** Plain HTTP routes (webhooks); absent = every other path answers 404. */
  http?: HttpHandler;
  /** The answer of `GET`/`HEAD /health` (readiness); absent = always 200 {@link HEALTH_BODY}. */
  health?: () => HealthAnswer;
}

/** What `/health` answers: an HTTP status (200 ready, 503 not ready) and a JSON body. */
export interface HealthAnswer {
  status: 200 | 503;
  body: string;
}

/** Listener options. */
export interface ListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Hard cap on one frame, bytes: larger frames close the connection with 1009 (uWS: up to twice
   * the cap; beyond that uWS cuts the TCP connection itself, 1006). The protocol's own, smaller,
   * frame limit answers with an error instead.
   */
  maxPayloadBytes: number;
}

/** An HTTP + WebSocket server implementation: `GET /health`, WebSocket at `/ws`. */
export interface Transport {
  readonly name: TransportName;
  /**
   * Listens exclusively (never sharing the port with another process through SO_REUSEPORT).
   * @returns the bound port
   * @throws Error `cannot listen on <host>:<port>: address in use ...` (or the other cause) if
   *   the address cannot be bound
   */
  listen(options: ListenOptions, handlers: TransportHandlers): Promise<number>;
  /** Stops listening and closes every connection with 1001 (going away). */
  close(): Promise<void>;
}

export const HEALTH_BODY = '{"status":"ok"}';
export const NOT_FOUND_BODY = '{"error":"not found"}';
export const UPGRADE_REQUIRED_BODY = '{"error":"use a WebSocket upgrade on /ws"}';
