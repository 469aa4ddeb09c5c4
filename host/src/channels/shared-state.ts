/**
 * Channel pairing and per-sender rate windows shared by every gateway on a NATS bus (NATS KV with
 * compare-and-set: pairing-kv.ts, rate-kv.ts; docs/bus.md). They live here, above the bus in the
 * import order, because they are channel rules kept in the bus's KV; the NATS client is loaded
 * only when a NATS bus asks for them.
 */
import type { Bus, NatsBus } from "../bus/index.js";
import type { RateWindows } from "./gate.js";
import type { PairingBook, PairingData } from "./pairing.js";

/**
 * Opens the shared pairing book and rate windows on `bus`, or undefined for the in-process bus
 * (the state directory's pairing file and per-process windows are enough).
 * @param options.seed the pairing state the bucket starts from when it has none (the state dir's file)
 * @param options.onWarning told when NATS is unreachable and a fallback applies
 */
export async function openSharedChannelState(
  bus: Bus,
  options: { seed: () => PairingData; onWarning?: (message: string, error?: unknown) => void },
): Promise<{ pairing: PairingBook; rateWindows: RateWindows } | undefined> {
  if (bus.kind !== "nats") return undefined;
  const [{ KvPairingStore }, { KvRateWindows }] = await Promise.all([import("./pairing-kv.js"), import("./rate-kv.js")]);
  const nats = bus as NatsBus;
  return {
    pairing: new KvPairingStore({ bus: nats, ...options }),
    rateWindows: new KvRateWindows({ bus: nats, ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}) }),
  };
}
