/**
 * A circuit breaker per provider (pure apart from the injected clock): after `failures`
 * consecutive failed calls that another attempt might survive (5xx, 429 past its retries,
 * unreachable, a broken stream) the provider is skipped for `cooldownMs`; then one call at a
 * time probes it (half-open): success closes the breaker, failure opens it for another
 * cooldown. A request's own fault (HTTP 400) says nothing about the provider's health and
 * counts neither way.
 */

/** Breaker settings of one provider. */
export interface BreakerPolicy {
  /** Consecutive failures that open the breaker; 0 = never opens. */
  failures: number;
  /** How long an open breaker skips the provider before a probe, ms. */
  cooldownMs: number;
}

/** `closed`: calls pass; `open`: the provider is skipped; `half_open`: one probe call is out. */
export type BreakerState = "closed" | "open" | "half_open";

/** One provider's breaker. */
export class CircuitBreaker {
  private consecutive = 0;
  private openedAt = 0;
  private state_: BreakerState = "closed";

  constructor(
    private readonly policy: BreakerPolicy,
    /** ms clock; default `Date.now`. */
    private readonly now: () => number = Date.now,
  ) {}

  /** The state now (an open breaker whose cooldown passed reads as `half_open` once probed). */
  get state(): BreakerState {
    return this.state_;
  }

  /**
   * Whether a call may go to the provider now. Past an open breaker's cooldown, the first caller
   * gets true and becomes the probe (the state turns `half_open`); others get false until it ends.
   */
  allow(): boolean {
    if (this.state_ === "closed") return true;
    if (this.state_ === "half_open") return false;
    if (this.now() - this.openedAt < this.policy.cooldownMs) return false;
    this.state_ = "half_open";
    return true;
  }

  /** A call succeeded: the breaker closes. */
  success(): void {
    this.consecutive = 0;
    this.state_ = "closed";
  }

  /**
   * A call failed in a way that speaks about the provider's health.
   * @returns true when this failure opened the breaker (from closed or half-open)
   */
  failure(): boolean {
    this.consecutive++;
    if (this.state_ === "half_open" || (this.policy.failures > 0 && this.state_ === "closed" && this.consecutive >= this.policy.failures)) {
      this.state_ = "open";
      this.openedAt = this.now();
      return true;
    }
    return false;
  }

  /** A call ended without a verdict (its request was at fault, or it was aborted): a probe slot is freed. */
  neutral(): void {
    if (this.state_ === "half_open") {
      // The probe proved nothing: let the next caller probe.
      this.state_ = "open";
      this.openedAt = this.now() - this.policy.cooldownMs;
    }
  }
}
