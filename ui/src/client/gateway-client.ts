/**
 * A typed client of the exoclaw gateway's WebSocket JSON-RPC (docs/protocol.md, protocol v1) for
 * browsers and any runtime with a WHATWG `WebSocket` (Node 22+, Deno, Bun; pass `WebSocket` on
 * Node 20 from the `ws` package). Requests go as MessagePack binary frames by default (the
 * server answers each request in its encoding), or JSON text frames.
 *
 * The token is presented as the subprotocol `exoclaw.bearer.<base64url>` next to `exoclaw.v1`
 * (a browser cannot set `Authorization` on a WebSocket upgrade; a `?token=` URL would end up in
 * logs and history). Without a token, only a token-less loopback gateway admits the connection.
 */
import { Packr } from "msgpackr/pack";
import { Unpackr } from "msgpackr/unpack";
import { WS_SUBPROTOCOL, bearerSubprotocol } from "../../../host/src/protocol/subprotocol.js";
import type { ChatEventParams, RpcErrorObject } from "../../../host/src/protocol/types.js";
import type { MethodName, MethodParams, MethodResult } from "./methods.js";

/** Standard MessagePack only (the gateway refuses extension types): undefined is nil, no records. */
const packr = new Packr({ useRecords: false, encodeUndefinedAsNil: true, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

/** An error response of the gateway (`code` as in docs/protocol.md, "Error codes"). */
export class RpcCallError extends Error {
  readonly code: number;
  readonly data: unknown;
  constructor(error: RpcErrorObject) {
    super(error.message);
    this.name = "RpcCallError";
    this.code = error.code;
    this.data = error.data;
  }
}

/** The connection could not be opened (refused upgrade: wrong token, origin, host; or unreachable). */
export class ConnectError extends Error {
  override readonly name = "ConnectError";
}

/** Options of {@link GatewayClient.connect}. */
export interface ConnectOptions {
  /** `ws(s)://host:port/ws`. */
  url: string;
  /** The gateway token or a `[[gateway.clients]]` token; absent = none (token-less loopback gateway). */
  token?: string;
  /** Frame encoding of requests; default `msgpack`. */
  encoding?: "msgpack" | "json";
  /** A WebSocket constructor; default `globalThis.WebSocket`. */
  WebSocket?: typeof WebSocket;
  /** Give up opening after this long, ms; default 10000. */
  timeoutMs?: number;
}

/** Options of one call. */
export interface CallOptions {
  /** `chat.send`: each `chat.event` of this request, in order. */
  onEvent?: (event: ChatEventParams) => void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; onEvent?: (e: ChatEventParams) => void };

/** One open connection to a gateway. */
export class GatewayClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly listeners = new Map<string, Set<(params: unknown) => void>>();
  private readonly closeListeners = new Set<(code: number) => void>();
  private closedCode: number | undefined;
  private readonly topics = new Map<string, Set<(topic: string, data: unknown) => void>>();
  private topicListener: (() => void) | undefined;

  private constructor(
    private readonly ws: WebSocket,
    private readonly encoding: "msgpack" | "json",
  ) {
    ws.binaryType = "arraybuffer";
    ws.addEventListener("message", (ev) => this.receive(ev.data as ArrayBuffer | string));
    ws.addEventListener("close", (ev) => {
      this.closedCode = ev.code;
      const err = new ConnectError(`connection closed (${ev.code}${ev.reason ? `: ${ev.reason}` : ""})`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      for (const l of this.closeListeners) l(ev.code);
    });
  }

  /**
   * Opens a connection.
   * @throws ConnectError when the upgrade is refused (401 wrong or missing token, 403 origin or
   *   host; a browser does not say which) or the gateway cannot be reached in time
   */
  static connect(options: ConnectOptions): Promise<GatewayClient> {
    const Ctor = options.WebSocket ?? globalThis.WebSocket;
    const protocols = [WS_SUBPROTOCOL, ...(options.token ? [bearerSubprotocol(options.token)] : [])];
    const ws = new Ctor(options.url, protocols);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.close();
        reject(new ConnectError(`no answer from ${options.url} within ${options.timeoutMs ?? 10_000} ms`));
      }, options.timeoutMs ?? 10_000);
      ws.addEventListener("open", () => {
        clearTimeout(timer);
        resolve(new GatewayClient(ws, options.encoding ?? "msgpack"));
      });
      ws.addEventListener("close", (ev) => {
        clearTimeout(timer);
        reject(new ConnectError(`the gateway refused the connection (${ev.code}): wrong or missing token, or this page's origin is not allowed`));
      });
    });
  }

  /** True once the socket closed. */
  get closed(): boolean {
    return this.closedCode !== undefined;
  }

  /**
   * Calls a method and resolves with its result.
   * @throws RpcCallError for an error response; ConnectError when the connection closes first
   */
  call<M extends MethodName>(
    method: M,
    ...args: MethodParams<M> extends undefined ? [params?: MethodParams<M>, options?: CallOptions] : [params: MethodParams<M>, options?: CallOptions]
  ): Promise<MethodResult<M>> {
    const [params, options] = args;
    if (this.closed) return Promise.reject(new ConnectError("connection closed"));
    const id = this.nextId++;
    const request = params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, ...(options?.onEvent ? { onEvent: options.onEvent } : {}) });
      this.ws.send(this.encoding === "msgpack" ? packr.pack(request) : JSON.stringify(request));
    });
  }

  /** Calls `handler` for each server notification `method` (any request's); returns the unsubscribe. */
  on(method: string, handler: (params: unknown) => void): () => void {
    let set = this.listeners.get(method);
    if (set === undefined) this.listeners.set(method, (set = new Set()));
    set.add(handler);
    return () => set!.delete(handler);
  }

  /**
   * Subscribes to server-push topics (`events.subscribe`, docs/protocol.md) and calls `handler`
   * with each `event` notification's `data` for one of them. Returns the unsubscribe (which
   * sends `events.unsubscribe` once no handler of this client wants a topic any more).
   * @param after per topic, the cursor to start after (`session:<key>`: event seq; `logs*`: log seq)
   */
  subscribe(topics: string[], handler: (topic: string, data: unknown) => void, after?: Record<string, number>): { ready: Promise<void>; close: () => void } {
    const fresh = topics.filter((t) => !this.topics.has(t));
    for (const t of topics) {
      let set = this.topics.get(t);
      if (set === undefined) this.topics.set(t, (set = new Set()));
      set.add(handler);
    }
    if (this.topicListener === undefined) {
      this.topicListener = this.on("event", (p) => {
        const { topic, data } = p as { topic: string; data: unknown };
        for (const h of this.topics.get(topic) ?? []) h(topic, data);
      });
    }
    const ready = fresh.length ? this.call("events.subscribe", { topics: fresh, ...(after ? { after } : {}) }).then(() => undefined) : Promise.resolve();
    ready.catch(() => {});
    return {
      ready,
      close: () => {
        const gone = topics.filter((t) => {
          const set = this.topics.get(t);
          set?.delete(handler);
          if (set?.size !== 0) return false;
          this.topics.delete(t);
          return true;
        });
        if (gone.length && !this.closed) this.call("events.unsubscribe", { topics: gone }).catch(() => {});
      },
    };
  }

  /** Calls `handler` with the close code when the connection closes. */
  onClose(handler: (code: number) => void): () => void {
    this.closeListeners.add(handler);
    return () => this.closeListeners.delete(handler);
  }

  /** Closes the connection (1000). Pending calls reject. */
  close(): void {
    this.ws.close(1000, "client closed");
  }

  private receive(data: ArrayBuffer | string): void {
    let msg: { id?: number; method?: string; params?: unknown; result?: unknown; error?: RpcErrorObject };
    try {
      msg = typeof data === "string" ? JSON.parse(data) : (unpackr.unpack(new Uint8Array(data)) as typeof msg);
    } catch {
      return;
    }
    if (msg.method !== undefined) {
      if (msg.method === "chat.event") {
        const ev = msg.params as ChatEventParams;
        this.pending.get(ev.requestId as number)?.onEvent?.(ev);
      }
      for (const l of this.listeners.get(msg.method) ?? []) l(msg.params);
      return;
    }
    if (typeof msg.id !== "number") return;
    const p = this.pending.get(msg.id);
    if (p === undefined) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) p.reject(new RpcCallError(msg.error));
    else p.resolve(msg.result);
  }
}
