import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import {
  HEALTH_BODY,
  NOT_FOUND_BODY,
  UPGRADE_REQUIRED_BODY,
  STATUS_TEXT,
  tooLargeBody,
  hasBody,
  bodyTimeoutAnswer,
  type Connection,
  type HttpAnswer,
  type HttpHandler,
  type HttpRequestHead,
  type ListenOptions,
  type Transport,
  type TransportHandlers,
  upgradeRefusalBody,
} from "./types.js";
import { listenError } from "./listen.js";
import { BEARER_SUBPROTOCOL_PREFIX, WS_SUBPROTOCOL } from "../protocol/index.js";

/**
 * The subprotocol answered: `exoclaw.v1` when offered, else the first offered (ws's default),
 * but never a bearer entry (it carries the client's token).
 */
function selectProtocol(offered: Set<string>): string | false {
  if (offered.has(WS_SUBPROTOCOL)) return WS_SUBPROTOCOL;
  const first = offered.values().next().value;
  return first === undefined || first.startsWith(BEARER_SUBPROTOCOL_PREFIX) ? false : first;
}

let nextId = 1;

/** Splits `/ws?token=x` into path and query. */
export function splitUrl(url: string): { path: string; query: string } {
  const q = url.indexOf("?");
  return q < 0 ? { path: url, query: "" } : { path: url.slice(0, q), query: url.slice(q + 1) };
}

function answer(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function refuseUpgrade(socket: Duplex, status: string, body: string): void {
  socket.end(`HTTP/1.1 ${status}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}

/** Headers the transport sets itself; a handler's are dropped. */
const FRAMING_HEADERS = new Set(["content-length", "transfer-encoding", "connection"]);

function sendAnswer(res: ServerResponse, a: HttpAnswer, close = false): void {
  if (res.headersSent || res.destroyed) return;
  const body = typeof a.body === "string" ? Buffer.from(a.body, "utf8") : a.body;
  const headers: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(a.headers)) if (!FRAMING_HEADERS.has(k.toLowerCase())) headers[k] = v;
  headers["content-length"] = body.byteLength;
  if (close) headers.connection = "close";
  res.writeHead(a.status, STATUS_TEXT[a.status], headers);
  res.end(body);
}

/**
 * Serves one request through the HTTP handler: head first, then the body up to the route's
 * limit (413 and the connection closed past it), then the handler's answer. The route's
 * `release` runs once: when the answer settles, or when the body will never be handled (413,
 * 408 past `bodyTimeoutMs`, client abort, stream error); chunks read so far are dropped then.
 */
function serveHttp(http: HttpHandler, req: IncomingMessage, res: ServerResponse, path: string, query: string): void {
  const headers: Record<string, string> = {};
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const k = req.rawHeaders[i]!.toLowerCase();
    const v = req.rawHeaders[i + 1]!;
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  }
  const head: HttpRequestHead = { method: (req.method ?? "GET").toUpperCase(), path, query, headers, remoteAddress: req.socket.remoteAddress ?? "" };
  const route = http.route(head);
  if (route === null) return answer(res, 404, NOT_FOUND_BODY);
  if ("status" in route) return sendAnswer(res, route, hasBody(headers));
  const limit = route.maxBodyBytes;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    route.release?.();
  };
  const chunks: Buffer[] = [];
  /** Set once the body is handed to the handler or given up: later events change nothing. */
  let done = false;
  const giveUp = () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    chunks.length = 0;
    req.removeAllListeners("data");
    release();
  };
  const timeoutMs = route.bodyTimeoutMs;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          if (done) return;
          giveUp();
          sendAnswer(res, bodyTimeoutAnswer(timeoutMs), true);
          // The client may never send the rest: do not wait for it to close the connection.
          res.once("finish", () => req.socket.destroy());
        }, timeoutMs);
  const tooLarge = () => {
    giveUp();
    req.resume();
    sendAnswer(res, { status: 413, headers: { "content-type": "application/json" }, body: tooLargeBody(limit) }, true);
  };
  if (Number(headers["content-length"]) > limit) return tooLarge();
  let size = 0;
  req.on("data", (c: Buffer) => {
    size += c.length;
    if (size > limit) return tooLarge();
    chunks.push(c);
  });
  req.on("error", giveUp);
  // The client went away before the whole body arrived (`close` also follows a normal `end`,
  // by which time `done` is set).
  req.on("close", giveUp);
  req.on("end", () => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    const body = Buffer.concat(chunks);
    chunks.length = 0;
    void http
      .handle(head, body)
      .then((a) => sendAnswer(res, a))
      .finally(release);
  });
}

/** Options of {@link createWsTransport}. */
export interface WsTransportOptions {
  /** Serve https:// and wss:// with this certificate chain and key (PEM); absent = http:// and ws://. */
  tls?: { cert: Buffer; key: Buffer };
}

/** The `ws` transport; with TLS it can take a new certificate while running. */
export interface WsTransport extends Transport {
  /** Serves `material` to connections made from now on (TLS only; open connections keep theirs). */
  setTls(material: { cert: Buffer; key: Buffer }): void;
}

/**
 * The pure-JavaScript transport: `node:http` (or `node:https` with `options.tls`) + the `ws`
 * package. Used where uWebSockets.js does not load, and for TLS (the uWebSockets.js build
 * bundled here has no TLS).
 */
export function createWsTransport(options: WsTransportOptions = {}): WsTransport {
  const tlsServer = options.tls === undefined ? undefined : createHttpsServer({ cert: options.tls.cert, key: options.tls.key });
  const server = tlsServer ?? createServer();
  const sockets = new Set<WebSocket>();
  let wss: WebSocketServer | undefined;

  return {
    name: "ws",
    setTls(material) {
      if (tlsServer === undefined) throw new Error("this transport was started without TLS");
      tlsServer.setSecureContext({ cert: material.cert, key: material.key });
    },
    listen(options: ListenOptions, handlers: TransportHandlers): Promise<number> {
      const ws = new WebSocketServer({ noServer: true, maxPayload: options.maxPayloadBytes, perMessageDeflate: false, handleProtocols: selectProtocol });
      wss = ws;
      server.on("request", (req: IncomingMessage, res: ServerResponse) => {
        const { path, query } = splitUrl(req.url ?? "/");
        if (path === "/health" && (req.method === "GET" || req.method === "HEAD")) {
          const h = handlers.health?.() ?? { status: 200, body: HEALTH_BODY };
          answer(res, h.status, h.body);
        } else if (path === "/ws") answer(res, 426, UPGRADE_REQUIRED_BODY);
        else if (handlers.http) serveHttp(handlers.http, req, res, path, query);
        else answer(res, 404, NOT_FOUND_BODY);
      });
      server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        socket.on("error", () => socket.destroy());
        const { path, query } = splitUrl(req.url ?? "/");
        if (path !== "/ws") return refuseUpgrade(socket, "404 Not Found", NOT_FOUND_BODY);
        const remoteAddress = req.socket.remoteAddress ?? "";
        const { authorization, origin, host } = req.headers;
        const protocols = req.headers["sec-websocket-protocol"];
        const verdict = handlers.authorize({ remoteAddress, authorization, query, origin, host, ...(protocols ? { protocols } : {}) });
        if (!verdict.ok) return refuseUpgrade(socket, `${verdict.status} ${STATUS_TEXT[verdict.status]}`, upgradeRefusalBody(verdict.error));
        ws.handleUpgrade(req, socket, head, (socketWs) => {
          sockets.add(socketWs);
          const conn: Connection & { closed: boolean } = {
            id: nextId++,
            remoteAddress,
            identity: verdict.identity,
            closed: false,
            send(frame) {
              if (!conn.closed) socketWs.send(frame, { binary: typeof frame !== "string" });
            },
            bufferedBytes: () => socketWs.bufferedAmount,
            close(code, reason) {
              if (!conn.closed) socketWs.close(code, reason);
            },
          };
          socketWs.on("message", (data: Buffer, isBinary: boolean) => handlers.message(conn, data, isBinary));
          // A protocol error (invalid UTF-8: 1007, a frame over the cap: 1009) has already queued
          // the close frame; terminating at once could cut it off (the client would see 1006). The
          // peer's answer may never be read (ws discards the rest of the input), so cut after 1 s.
          socketWs.on("error", () => setTimeout(() => socketWs.terminate(), 1000).unref());
          socketWs.on("close", (code: number) => {
            conn.closed = true;
            sockets.delete(socketWs);
            handlers.close(conn, code);
          });
          handlers.open(conn);
        });
      });
      return new Promise((resolve, reject) => {
        const failed = (err: NodeJS.ErrnoException) => reject(listenError(options.host, options.port, err.code));
        server.once("error", failed);
        server.listen({ port: options.port, host: options.host, exclusive: true }, () => {
          server.off("error", failed);
          const addr = server.address();
          resolve(typeof addr === "object" && addr ? addr.port : options.port);
        });
      });
    },
    async close(): Promise<void> {
      for (const s of sockets) s.close(1001, "server shutting down");
      await new Promise<void>((resolve) => server.close(() => resolve()));
      wss?.close();
      // Give close frames a moment to flush, then cut anything that did not answer.
      for (const s of sockets) s.terminate();
      server.closeAllConnections();
    },
  };
}
