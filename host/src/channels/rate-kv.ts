/**
 * Per-sender rate windows shared by every gateway on one NATS bus (issue 18; docs/bus.md,
 * "Pairing and rate windows across gateways"): each sender's sliding window (the arrival times
 * and message ids admitted in the last `per_s` seconds, channels/groups.ts) is one key of the KV
 * bucket {@link RATE_BUCKET}, changed by compare-and-set (kv-cell.ts), so `rate = {messages,
 * per_s}` holds for a sender whichever gateways receive its messages: a message costs one KV
 * read and, when admitted or first refused, one write (bench/rate-kv.mjs measures it).
 *
 * With NATS unreachable each gateway counts in its own window (channels/groups.ts
 * SenderRateLimiter) until NATS is back: during an outage a sender can get up to `messages` per
 * window through each gateway. The windows counted locally are not merged back.
 */
import { SenderRateLimiter, takeWindow, type RateDecision, type RateWindow } from "./groups.js";
import type { SenderRate } from "../config/index.js";
// Loaded only through `openSharedChannelState` (a dynamic import): this pulls in the NATS client.
import { KvCells, kvKeyOf, type KvCellsBus } from "../bus/nats/index.js";

/** KV bucket of the shared rate windows. */
export const RATE_BUCKET = "exoclaw_rates";
/** How long a window not written is kept, ms: two days (`per_s` is at most one day). */
export const RATE_MAX_AGE_MS = 2 * 86_400_000;

/** Options of {@link KvRateWindows}. */
export interface KvRateWindowsOptions {
  bus: KvCellsBus;
  /** The windows used while NATS is unreachable (default: a new per-process one). */
  fallback?: SenderRateLimiter;
  /** Told once per outage when NATS cannot be reached. */
  onWarning?: (message: string, error?: unknown) => void;
}

/** Stored JSON: `{t: number[], i: (string|null)[], n: number|null}` (`n` null = never told). */
function parseWindow(bytes: Uint8Array | undefined): RateWindow {
  if (bytes === undefined) return { times: [], ids: [], notifiedAt: -Infinity };
  try {
    const v = JSON.parse(Buffer.from(bytes).toString("utf8")) as { t?: unknown; i?: unknown; n?: unknown };
    const times = Array.isArray(v.t) ? v.t.filter((x): x is number => typeof x === "number") : [];
    const ids = Array.isArray(v.i) ? v.i.map((x) => (typeof x === "string" ? x : undefined)) : [];
    if (ids.length !== times.length) return { times: [], ids: [], notifiedAt: -Infinity };
    return { times, ids, notifiedAt: typeof v.n === "number" ? v.n : -Infinity };
  } catch {
    return { times: [], ids: [], notifiedAt: -Infinity };
  }
}

const encodeWindow = (w: RateWindow): string =>
  JSON.stringify({ t: w.times, i: w.ids.map((x) => x ?? null), n: Number.isFinite(w.notifiedAt) ? w.notifiedAt : null });

/** See the module comment. */
export class KvRateWindows {
  private readonly cells: KvCells;
  private readonly fallback: SenderRateLimiter;
  private warned = false;

  constructor(private readonly options: KvRateWindowsOptions) {
    this.cells = new KvCells({ bus: options.bus, bucket: RATE_BUCKET, maxAgeMs: RATE_MAX_AGE_MS });
    this.fallback = options.fallback ?? new SenderRateLimiter();
  }

  /**
   * Counts one message of `key` at `nowMs` (ms since the epoch) against `rate` in the shared
   * window; the local one while NATS is unreachable. Never throws.
   */
  async take(key: string, rate: SenderRate, nowMs: number, id?: string): Promise<RateDecision> {
    try {
      const d = await this.cells.update(kvKeyOf("w.", key), (bytes) => {
        const w = parseWindow(bytes);
        const before = encodeWindow(w);
        const decision = takeWindow(w, rate, nowMs, id);
        const after = encodeWindow(w);
        return after === before ? { result: decision } : { write: after, result: decision };
      });
      this.warned = false;
      return d;
    } catch (err) {
      if (!this.warned) this.options.onWarning?.("rate windows: NATS unreachable; each gateway counts its own window until it is back", err);
      this.warned = true;
      return this.fallback.take(key, rate, nowMs, id);
    }
  }
}
