/**
 * Admission of webhook requests from their head alone, before a body byte is read or a plugin
 * runs: a token bucket per client address (429) and a global budget of requests and body bytes
 * in flight (503), part of which only signed requests may use. `/webhook/...` is reachable by
 * anyone, so these are what stand between a flood and the gateway's memory and plugin pool.
 */
import type { WebhookLimits } from "../config/types.js";

/**
 * Token buckets keyed by client address: each holds up to `burst` tokens, refilled at `rate`
 * per second; a request takes one. At most `maxAddresses` buckets are kept: when full, the
 * oldest bucket is forgotten (a forgotten address starts again with a full bucket).
 */
export class AddressBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  /**
   * @param rate tokens per second; 0 disables the limit (every `take` succeeds)
   * @param burst bucket size (requests)
   * @param now clock, ms (monotonic)
   */
  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly maxAddresses = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * Takes a token for `address`.
   * @returns 0 when taken; otherwise the whole seconds (at least 1) until one is available, for `Retry-After`
   */
  take(address: string): number {
    if (this.rate <= 0) return 0;
    const t = this.now();
    let b = this.buckets.get(address);
    if (b === undefined) {
      if (this.buckets.size >= this.maxAddresses) this.buckets.delete(this.buckets.keys().next().value!);
      b = { tokens: this.burst, at: t };
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
      b.at = t;
      this.buckets.delete(address); // re-inserted below: Map order is then least recently used first
    }
    this.buckets.set(address, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.rate));
  }
}

/** Counts of {@link InFlightBudget}. */
export interface InFlightStats {
  requests: number;
  /** Reserved body bytes. */
  bytes: number;
}

/**
 * The budget of webhook requests and body bytes in flight across all channels. A request
 * reserves its expected body size before the body is read and releases it when the transport is
 * done with it (answered, refused, or aborted). Unsigned requests (no declared signature
 * header) may fill only `unsignedShare` of each budget, so a flood of them cannot take the
 * capacity signed deliveries need.
 */
export class InFlightBudget {
  private requests = 0;
  private bytes = 0;
  private unsignedRequests = 0;
  private unsignedBytes = 0;

  constructor(private readonly limits: Pick<WebhookLimits, "maxInFlight" | "maxInFlightBytes" | "unsignedShare">) {}

  /**
   * Reserves one request of `bytes` body bytes.
   * @returns the release function (idempotent), or null when the budget of the request's class is full
   */
  reserve(bytes: number, signed: boolean): (() => void) | null {
    const { maxInFlight, maxInFlightBytes, unsignedShare } = this.limits;
    if (this.requests + 1 > maxInFlight || this.bytes + bytes > maxInFlightBytes) return null;
    if (!signed && (this.unsignedRequests + 1 > Math.floor(maxInFlight * unsignedShare) || this.unsignedBytes + bytes > Math.floor(maxInFlightBytes * unsignedShare))) return null;
    this.requests++;
    this.bytes += bytes;
    if (!signed) {
      this.unsignedRequests++;
      this.unsignedBytes += bytes;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.requests--;
      this.bytes -= bytes;
      if (!signed) {
        this.unsignedRequests--;
        this.unsignedBytes -= bytes;
      }
    };
  }

  stats(): InFlightStats {
    return { requests: this.requests, bytes: this.bytes };
  }
}
