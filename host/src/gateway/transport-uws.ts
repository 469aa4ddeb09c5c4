import { createRequire } from "node:module";
import type * as UWS from "@trufflesuite/uws-js-unofficial";
import type { ClientIdentity } from "./identity.js";
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
import { listenError, probeBindError } from "./listen.js";
import { CorkedWrites } from "./uws-writes.js";

type UwsModule = typeof UWS;

/**
 * Loads the uWebSockets.js native binary for this platform and Node ABI, directly: the package's
 * own entry point would silently swap in its JavaScript emulation on failure, and we want our
 * `ws` transport instead, named as such in the log and in `status`.
 * @returns the module, or the reason it does not load here
 */
export function loadUws(): { ok: true; uws: UwsModule } | { ok: false; reason: string } {
  const require = createRequire(import.meta.url);
  const file = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  try {
    return { ok: true, uws: require(file) as UwsModule };
  } catch (err) {
    return { ok: false, reason: `${file}: ${(err as Error).message.split("\n")[0]}` };
  }
}

let nextId = 1;

interface UserData {
  conn?: Connection & { closed: boolean };
  remoteAddress: string;
  identity: ClientIdentity;
}

const text = (ab: ArrayBuffer) => Buffer.from(ab).toString("utf8");

/** Headers uWS sets itself; a handler's are dropped. */
const FRAMING_HEADERS = new Set(["content-length", "transfer-encoding", "connection"]);

/** Writes a whole answer; call corked (synchronously in the route handler, or inside `res.cork`). */
function writeAnswer(res: UWS.HttpResponse, a: HttpAnswer, close = false): void {
  res.writeStatus(`${a.status} ${STATUS_TEXT[a.status] ?? ""}`.trimEnd());
  for (const [k, v] of Object.entries(a.headers)) if (!FRAMING_HEADERS.has(k.toLowerCase())) res.writeHeader(k, v);
  res.end(typeof a.body === "string" ? a.body : a.body, close);
}

/**
 * Serves one request through the HTTP handler. Everything needed from `req` is read before
 * returning (uWS invalidates it then); each body chunk is copied (its ArrayBuffer is reused
 * after the callback); the answer is written corked, unless the client went away meanwhile.
 * The route's `release` runs once: when the answer settles, or when the body will never be
 * handled (413, 408 past `bodyTimeoutMs`, client abort); chunks read so far are dropped then.
 */
function serveHttp(http: HttpHandler, res: UWS.HttpResponse, req: UWS.HttpRequest): void {
  const headers: Record<string, string> = {};
  req.forEach((k, v) => {
    headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
  });
  const head: HttpRequestHead = {
    method: req.getMethod().toUpperCase(),
    path: req.getUrl(),
    query: req.getQuery() ?? "",
    headers,
    remoteAddress: text(res.getRemoteAddressAsText()),
  };
  const route = http.route(head);
  if (route === null) {
    res.writeStatus("404 Not Found").writeHeader("content-type", "application/json").end(NOT_FOUND_BODY);
    return;
  }
  if ("status" in route) return writeAnswer(res, route, hasBody(headers));
  const limit = route.maxBodyBytes;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    route.release?.();
  };
  const tooLarge: HttpAnswer = { status: 413, headers: { "content-type": "application/json" }, body: tooLargeBody(limit) };
  if (Number(headers["content-length"]) > limit) {
    release();
    return writeAnswer(res, tooLarge, true);
  }
  let aborted = false;
  let done = false;
  const chunks: Buffer[] = [];
  /** Drops the body read so far and releases the reservation; the body will never be handled. */
  const giveUp = () => {
    done = true;
    clearTimeout(timer);
    chunks.length = 0;
    release();
  };
  const timeoutMs = route.bodyTimeoutMs;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          if (done || aborted) return;
          giveUp();
          res.cork(() => writeAnswer(res, bodyTimeoutAnswer(timeoutMs), true));
        }, timeoutMs);
  res.onAborted(() => {
    aborted = true;
    if (done) return; // the body is with the handler: released when its answer settles
    giveUp();
  });
  let size = 0;
  res.onData((chunk, isLast) => {
    if (done) return;
    size += chunk.byteLength;
    if (size > limit) {
      giveUp();
      res.cork(() => writeAnswer(res, tooLarge, true));
      return;
    }
    chunks.push(Buffer.from(chunk.slice(0)));
    if (!isLast) return;
    done = true;
    clearTimeout(timer);
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks.length = 0;
    void http
      .handle(head, body)
      .then((a) => {
        if (!aborted) res.cork(() => writeAnswer(res, a));
      })
      .finally(release);
  });
}

/** uSockets' `LIBUS_LISTEN_EXCLUSIVE_PORT`: listen without SO_REUSEPORT, so a busy port fails. */
const LISTEN_EXCLUSIVE_PORT = 1;

/**
 * uWS's own frame limit, relative to the gateway's hard cap. uWS (every version up to 20.x)
 * cuts the TCP connection without a close frame (1006) on a frame over its limit, so its limit
 * sits above the cap and the cap is enforced here with a proper 1009. Frames over twice the cap
 * still get uWS's cut: it reserves a frame's declared length up front, so this bounds memory.
 */
const UWS_LIMIT_FACTOR = 2;

/**
 * The uWebSockets.js transport. uWS invalidates request headers after the handler returns and
 * message ArrayBuffers after the callback returns, so both are copied synchronously.
 * @param maxBufferedBytes send buffer per socket; set above the gateway's slow-consumer limit so
 *   uWS never drops a frame on its own
 */
export function createUwsTransport(uws: UwsModule, maxBufferedBytes: number): Transport {
  const app = uws.App();
  const sockets = new Set<UWS.WebSocket<UserData>>();
  const writes = new CorkedWrites();
  let listenSocket: UWS.us_listen_socket | undefined;

  return {
    name: "uws",
    listen(options: ListenOptions, handlers: TransportHandlers): Promise<number> {
      app.ws<UserData>("/ws", {
        compression: uws.DISABLED,
        maxPayloadLength: options.maxPayloadBytes * UWS_LIMIT_FACTOR,
        maxBackpressure: maxBufferedBytes * 2,
        closeOnBackpressureLimit: 0,
        idleTimeout: 120,
        sendPingsAutomatically: true,
        upgrade(res, req, context) {
          const remoteAddress = text(res.getRemoteAddressAsText());
          // Every header is read here, synchronously: uWS invalidates `req` when this returns.
          const authorization = req.getHeader("authorization") || undefined;
          const origin = req.getHeader("origin") || undefined;
          const host = req.getHeader("host") || undefined;
          const query = req.getQuery() ?? "";
          const key = req.getHeader("sec-websocket-key");
          const protocol = req.getHeader("sec-websocket-protocol");
          const extensions = req.getHeader("sec-websocket-extensions");
          const verdict = handlers.authorize({ remoteAddress, authorization, query, origin, host, ...(protocol ? { protocols: protocol } : {}) });
          if (!verdict.ok) {
            res
              .writeStatus(`${verdict.status} ${STATUS_TEXT[verdict.status]}`)
              .writeHeader("content-type", "application/json")
              .end(upgradeRefusalBody(verdict.error), true);
            return;
          }
          // The selected subprotocol only: the offered list may carry the token (exoclaw.bearer.*).
          res.upgrade<UserData>({ remoteAddress, identity: verdict.identity }, key, verdict.protocol ?? protocol, extensions, context);
        },
        open(ws) {
          sockets.add(ws);
          const data = ws.getUserData();
          const conn: Connection & { closed: boolean } = {
            id: nextId++,
            remoteAddress: data.remoteAddress,
            identity: data.identity,
            closed: false,
            send(frame) {
              if (conn.closed) return;
              // Written corked once per event-loop turn (uws-writes.ts). Dropped at uWS's
              // backpressure limit: never lose a frame silently.
              writes.send(ws, frame, () => conn.close(1008, "slow consumer: send buffer full"));
            },
            bufferedBytes: () => (conn.closed ? 0 : ws.getBufferedAmount() + writes.queuedBytes(ws)),
            close(code, reason) {
              if (conn.closed) return;
              conn.closed = true;
              writes.flushNow(ws);
              ws.end(code, reason);
            },
          };
          data.conn = conn;
          handlers.open(conn);
        },
        message(ws, message, isBinary) {
          const conn = ws.getUserData().conn;
          if (!conn) return;
          // RFC 6455 section 7.4.1: 1009 = a message too big to process (uWS would send no close frame).
          if (message.byteLength > options.maxPayloadBytes) return conn.close(1009, "frame too large");
          handlers.message(conn, new Uint8Array(message.slice(0)), isBinary);
        },
        close(ws, code) {
          sockets.delete(ws);
          writes.forget(ws);
          const conn = ws.getUserData().conn;
          if (conn) {
            conn.closed = true;
            handlers.close(conn, code);
          }
        },
      });
      const health = () => handlers.health?.() ?? { status: 200 as const, body: HEALTH_BODY };
      const statusLine = (status: 200 | 503) => (status === 200 ? "200 OK" : "503 Service Unavailable");
      app.get("/health", (res) => {
        const h = health();
        res.writeStatus(statusLine(h.status)).writeHeader("content-type", "application/json").end(h.body);
      });
      app.head("/health", (res) => {
        res.writeStatus(statusLine(health().status)).end();
      });
      app.any("/ws", (res) => {
        res.writeStatus("426 Upgrade Required").writeHeader("content-type", "application/json").end(UPGRADE_REQUIRED_BODY);
      });
      app.any("/*", (res, req) => {
        if (handlers.http) return serveHttp(handlers.http, res, req);
        res.writeStatus("404 Not Found").writeHeader("content-type", "application/json").end(NOT_FOUND_BODY);
      });
      return new Promise((resolve, reject) => {
        // listen(host, port, options, cb) exists in 20.30's native binding, not in its typings.
        const listen = app.listen as unknown as (host: string, port: number, opts: number, cb: (t: UWS.us_listen_socket | false) => void) => void;
        listen.call(app, options.host, options.port, LISTEN_EXCLUSIVE_PORT, (token) => {
          if (token) {
            listenSocket = token;
            return resolve(uws.us_socket_local_port(token as unknown as UWS.us_socket));
          }
          // uWS says only "no": a Node probe of the same address names the errno.
          void probeBindError(options.host, options.port).then((code) => reject(listenError(options.host, options.port, code)));
        });
      });
    },
    async close(): Promise<void> {
      if (listenSocket) uws.us_listen_socket_close(listenSocket);
      listenSocket = undefined;
      for (const ws of [...sockets]) {
        const conn = ws.getUserData().conn;
        if (conn && !conn.closed) conn.close(1001, "server shutting down");
      }
      // Let close frames flush before the process ends.
      await new Promise((r) => setTimeout(r, 20));
      for (const ws of [...sockets]) ws.close();
    },
  };
}
