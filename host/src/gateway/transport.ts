import { createUwsTransport, loadUws } from "./transport-uws.js";
import { createWsTransport } from "./transport-ws.js";
import type { Transport } from "./types.js";

/** The chosen transport, and why, for the log. */
export interface TransportChoice {
  transport: Transport;
  /** Set when uWebSockets.js was wanted but did not load. */
  fallbackReason?: string;
}

/**
 * Picks the transport: `auto` tries uWebSockets.js and falls back to `ws` when its native
 * binary does not load on this platform; `uws` insists (throws if it does not load); `ws`
 * always uses the pure-JavaScript one.
 * @throws Error when `uws` is required but not loadable
 */
export function chooseTransport(preference: "auto" | "uws" | "ws", maxBufferedBytes: number): TransportChoice {
  if (preference === "ws") return { transport: createWsTransport() };
  const loaded = loadUws();
  if (loaded.ok) return { transport: createUwsTransport(loaded.uws, maxBufferedBytes) };
  if (preference === "uws") throw new Error(`uWebSockets.js does not load on this platform: ${loaded.reason}`);
  return { transport: createWsTransport(), fallbackReason: loaded.reason };
}
