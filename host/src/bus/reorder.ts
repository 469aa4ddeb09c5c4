/**
 * The reorder window (docs/bus.md, "Order through an outage"): after a NATS outage each
 * gateway forwards its own disk spool, independently, so the stream can hold a session's
 * messages in the wrong order (gateway A's spooled message 2 before gateway B's spooled message
 * 1, or a message published live after the recovery before one still in a spool). A consumer
 * therefore holds every delivery for a bounded window after it sees an outage end — its own
 * reconnect, or any delivery that came out of a spool — and then releases what it holds sorted
 * by intake time (`Exoclaw-Published-At`, stamped by the gateway that took the message in),
 * stream sequence breaking ties.
 *
 * Pure logic, no NATS: {@link ReorderClock} (shared by a process's consumers) says until when to
 * hold; one {@link ReorderBuffer} per partition consumer holds and releases.
 */

/** What the buffer needs of a delivery. */
export interface Ordered {
  /** Intake time: ms since the Unix epoch, by the clock of the process that published it. */
  publishedAt: number;
  /** Stream sequence. */
  seq: number;
}

/** Release order: intake time, then stream sequence (which also keeps one publisher's order). */
export function intakeOrder(a: Ordered, b: Ordered): number {
  return a.publishedAt - b.publishedAt || a.seq - b.seq;
}

/** Until when a process holds deliveries (ms since the epoch); shared by its partition consumers. */
export class ReorderClock {
  private holdUntil = 0;

  /**
   * @param windowMs how long to hold after the last sign of an outage, ms; 0 turns holding off
   * @param now the clock (ms since the epoch), replaceable in tests
   */
  constructor(
    readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Holds deliveries until `windowMs` from now (a reconnect, or a delivery from a spool). */
  extend(): void {
    if (this.windowMs <= 0) return;
    this.holdUntil = Math.max(this.holdUntil, this.now() + this.windowMs);
  }

  /** True while deliveries are held. */
  get holding(): boolean {
    return this.now() < this.holdUntil;
  }

  /** When holding ends (ms since the epoch; in the past when not holding). */
  get until(): number {
    return this.holdUntil;
  }

  /** ms from now until holding ends (0 when not holding). */
  remaining(): number {
    return Math.max(0, this.holdUntil - this.now());
  }
}

/**
 * Holds deliveries while its clock says so and releases them in {@link intakeOrder}. The
 * caller hands over every delivery with {@link offer}; `release` gets the held ones, sorted, when
 * the hold ends (a timer), or together with a delivery offered after the hold ended and before
 * the timer fired (so nothing overtakes a held delivery).
 */
export class ReorderBuffer<D extends Ordered> {
  private items: D[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly clock: ReorderClock,
    private readonly release: (sorted: D[]) => void,
  ) {}

  /** Held deliveries, in arrival order (for heartbeats and hand-over). */
  get held(): readonly D[] {
    return this.items;
  }

  /**
   * Takes a delivery. @returns false when it is not held (nothing is held and the clock does not
   * hold): the caller passes it on at once
   */
  offer(d: D): boolean {
    if (this.clock.holding) {
      this.items.push(d);
      this.schedule();
      return true;
    }
    if (this.items.length === 0) return false;
    this.items.push(d);
    this.flush();
    return true;
  }

  /** Releases everything held now, sorted. */
  flush(): void {
    this.cancel();
    if (this.items.length === 0) return;
    const sorted = this.items.sort(intakeOrder);
    this.items = [];
    this.release(sorted);
  }

  /** Drops the held deliveries without releasing them (the caller hands them back); returns them. */
  take(): D[] {
    this.cancel();
    const all = this.items;
    this.items = [];
    return all;
  }

  private cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    const fire = () => {
      this.timer = undefined;
      // extended meanwhile (another spooled delivery): wait on
      if (this.clock.holding) this.timer = setTimeout(fire, Math.max(1, this.clock.remaining()));
      else this.flush();
    };
    this.timer = setTimeout(fire, Math.max(1, this.clock.remaining()));
  }
}
