/**
 * The API keys of one provider (pure apart from the injected clock), rotated with a cooldown:
 * calls keep using one key until it is refused (429 rate limit, 401/403 rejected), then that key
 * rests for its cooldown (the provider's `Retry-After`, else the configured one) and the next
 * ready key takes over. Keys are named by index only: their values never leave the provider set.
 */

/** Which key to use now, and in how long it is ready (0 = now). */
export interface KeyChoice {
  index: number;
  readyInMs: number;
}

/** Key rotation of one provider. */
export class KeyRing {
  private readonly until: number[];
  private current = 0;

  constructor(
    /** Keys configured (at least 1; a provider without a key counts as one). */
    readonly size: number,
    /** ms clock; default `Date.now`. */
    private readonly now: () => number = Date.now,
  ) {
    this.until = new Array<number>(Math.max(1, size)).fill(0);
  }

  /** The key to use: the current one when ready, else the next ready one, else the one ready soonest. */
  pick(): KeyChoice {
    const t = this.now();
    const n = this.until.length;
    for (let i = 0; i < n; i++) {
      const k = (this.current + i) % n;
      if (this.until[k]! <= t) {
        this.current = k;
        return { index: k, readyInMs: 0 };
      }
    }
    let best = 0;
    for (let k = 1; k < n; k++) if (this.until[k]! < this.until[best]!) best = k;
    return { index: best, readyInMs: this.until[best]! - t };
  }

  /** Rests key `index` for `ms` (a 429's `Retry-After`, or the key cooldown). */
  cool(index: number, ms: number): void {
    if (index < 0 || index >= this.until.length) return;
    this.until[index] = Math.max(this.until[index]!, this.now() + ms);
  }
}
