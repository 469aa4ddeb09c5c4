/** Which WebSocket/HTTP implementation serves the gateway. */
export type TransportName = "uws" | "ws";

/** One WebSocket connection, as the protocol layer sees it; identical for every transport. */
export interface Connection {
  /** Process-unique connection number, for logs. */
  readonly id: number;
  readonly remoteAddress: string;
  /** True once the socket closed; `send` is then a no-op. */
  readonly closed: boolean;
  /** Sends a frame: a string as a text frame, bytes as a binary frame. No-op when closed. */
  send(frame: string | Uint8Array): void;
  /** Bytes queued for this connection but not yet written to the socket. */
  bufferedBytes(): number;
  /** Closes with a WebSocket close code (RFC 6455 section 7.4) and a short reason. */
  close(code: number, reason: string): void;
}

/** What the transport asks the gateway when a client tries to upgrade to WebSocket. */
export interface UpgradeRequest {
  remoteAddress: string;
  /** The `Authorization` header, if any. */
  authorization?: string;
  /** The raw query string (without `?`). */
  query: string;
}

/** Callbacks a transport drives. They must not throw. */
export interface TransportHandlers {
  /** Decides whether an upgrade is allowed; a refusal answers HTTP 401. */
  authorize(req: UpgradeRequest): boolean;
  open(conn: Connection): void;
  /** A complete message. `data` is a private copy the handler may keep. */
  message(conn: Connection, data: Uint8Array, isBinary: boolean): void;
  close(conn: Connection, code: number): void;
}

/** Listener options. */
export interface ListenOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /**
   * Hard cap on one frame, bytes: larger frames close the connection (1009). The protocol's
   * own, smaller, frame limit answers with an error instead.
   */
  maxPayloadBytes: number;
}

/** An HTTP + WebSocket server implementation: `GET /health`, WebSocket at `/ws`. */
export interface Transport {
  readonly name: TransportName;
  /** @returns the bound port. @throws Error if the address cannot be bound */
  listen(options: ListenOptions, handlers: TransportHandlers): Promise<number>;
  /** Stops listening and closes every connection with 1001 (going away). */
  close(): Promise<void>;
}

export const HEALTH_BODY = '{"status":"ok"}';
export const NOT_FOUND_BODY = '{"error":"not found"}';
export const UPGRADE_REQUIRED_BODY = '{"error":"use a WebSocket upgrade on /ws"}';
export const UNAUTHORIZED_BODY = '{"error":"unauthorized: present the gateway token as Authorization: Bearer <token> or ?token=<token>"}';
