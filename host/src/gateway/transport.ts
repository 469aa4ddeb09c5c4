import { createUwsTransport, loadUws } from "./transport-uws.js";
import type { Transport } from "./types.js";

/** The chosen transport, and why, for the log. */
export interface TransportChoice {
  transport: Transport;
  /** Set when uWebSockets.js was wanted but did not load. */
  fallbackReason?: string;
  /** With TLS: serves a new certificate and key to connections made from now on. */
  setTls?: (material: { cert: Buffer; key: Buffer }) => void;
}

/**
 * Loads uWebSockets.js's native binary now, when {@link chooseTransport} will want it (not for
 * `ws`, not with TLS), so that its `dlopen` (~10 ms) runs while start-up waits on something else
 * (the store's open). Its later `require` is then a cache hit; a binary that does not load here
 * is tried again there, which reports it. Never throws.
 */
export function preloadTransport(preference: "auto" | "uws" | "ws", tls: boolean): void {
  if (tls || preference === "ws") return;
  loadUws();
}

/**
 * Picks the transport: `auto` tries uWebSockets.js and falls back to `ws` when its native
 * binary does not load on this platform; `uws` insists (throws if it does not load); `ws`
 * always uses the pure-JavaScript one.
 * With `tls`, the `ws` transport over `node:https` serves both wss:// and https://: the
 * uWebSockets.js build bundled here has no TLS (`auto` picks `ws`; a forced `uws` is an error).
 * @throws Error when `uws` is required but not loadable, or required together with TLS
 */
export async function chooseTransport(
  preference: "auto" | "uws" | "ws",
  maxBufferedBytes: number,
  tls?: { cert: Buffer; key: Buffer },
): Promise<TransportChoice> {
  if (tls !== undefined) {
    if (preference === "uws") {
      throw new Error(
        'transport "uws" cannot serve [gateway.tls]: the uWebSockets.js build bundled here has no TLS; set [gateway] transport = "auto" or "ws" (or EXOCLAW_TRANSPORT), or terminate TLS in a reverse proxy',
      );
    }
    const transport = (await import("./transport-ws.js")).createWsTransport({ tls });
    return { transport, setTls: (m) => transport.setTls(m) };
  }
  // `ws` is imported only when used: it is not needed (or paid for at start-up) when uWS runs.
  const wsTransport = async () => (await import("./transport-ws.js")).createWsTransport();
  if (preference === "ws") return { transport: await wsTransport() };
  const loaded = loadUws();
  if (loaded.ok) return { transport: createUwsTransport(loaded.uws, maxBufferedBytes) };
  if (preference === "uws") throw new Error(`uWebSockets.js does not load on this platform: ${loaded.reason}`);
  return { transport: await wsTransport(), fallbackReason: loaded.reason };
}
