import { createUwsTransport, loadUws } from "./transport-uws.js";
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
export async function chooseTransport(preference: "auto" | "uws" | "ws", maxBufferedBytes: number): Promise<TransportChoice> {
  // `ws` is imported only when used: it is not needed (or paid for at start-up) when uWS runs.
  const wsTransport = async () => (await import("./transport-ws.js")).createWsTransport();
  if (preference === "ws") return { transport: await wsTransport() };
  const loaded = loadUws();
  if (loaded.ok) return { transport: createUwsTransport(loaded.uws, maxBufferedBytes) };
  if (preference === "uws") throw new Error(`uWebSockets.js does not load on this platform: ${loaded.reason}`);
  return { transport: await wsTransport(), fallbackReason: loaded.reason };
}
