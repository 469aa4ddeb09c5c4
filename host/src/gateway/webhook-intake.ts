/**
 * Admission of webhook requests from their head alone, before a body byte is read or a plugin
 * runs: a token bucket per client address (429) and a global budget of requests and body bytes
 * in flight (503), part of which only signed requests may use. `/webhook/...` is reachable by
 * anyone, so these are what stand between a flood and the gateway's memory and plugin pool.
 */
import type { WebhookLimits } from "../config/index.js";

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
 * capacity signed deliveries need; one client address may hold only `perAddressInFlight`
 * requests, so one sender of slow uploads cannot take all of it either.
 */
export class InFlightBudget {
  private requests = 0;
  private bytes = 0;
  private unsignedRequests = 0;
  private unsignedBytes = 0;
  /** Requests in flight per client address (entries removed at zero). */
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly limits: Pick<WebhookLimits, "maxInFlight" | "maxInFlightBytes" | "unsignedShare" | "perAddressInFlight">) {}

  /**
   * Reserves one request of `bytes` body bytes from `address`.
   * @returns the release function (idempotent); `"address"` when `address` already holds its
   *   share of requests; `"budget"` when the budget of the request's class is full
   */
  reserve(bytes: number, signed: boolean, address: string): (() => void) | "address" | "budget" {
    const { maxInFlight, maxInFlightBytes, unsignedShare, perAddressInFlight } = this.limits;
    const held = this.byAddress.get(address) ?? 0;
    if (held + 1 > perAddressInFlight) return "address";
    if (this.requests + 1 > maxInFlight || this.bytes + bytes > maxInFlightBytes) return "budget";
    if (
      !signed &&
      (this.unsignedRequests + 1 > Math.floor(maxInFlight * unsignedShare) || this.unsignedBytes + bytes > Math.floor(maxInFlightBytes * unsignedShare))
    )
      return "budget";
    this.requests++;
    this.bytes += bytes;
    this.byAddress.set(address, held + 1);
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
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
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
