/**
 * A turn's deadline that parked tool calls can pause: the time a call waits for a person's yes
 * does not count against the agent's `turn_timeout_ms` (the approval's own timeout bounds it).
 */
export class TurnDeadline {
  private timer: NodeJS.Timeout | undefined;
  private remainingMs: number;
  private startedAt = Date.now();
  private paused = 0;

  /** @param ms the deadline from now, ms; `onExpire` runs once when it passes */
  constructor(
    ms: number,
    private readonly onExpire: () => void,
  ) {
    this.remainingMs = ms;
    this.arm();
  }

  /** Pauses the deadline (nested pauses count) until the returned function is called. */
  pause(): () => void {
    if (this.paused++ === 0 && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
      this.remainingMs -= Date.now() - this.startedAt;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.paused === 0) this.arm();
    };
  }

  /** Stops the deadline for good (the turn ended). */
  clear(): void {
    this.paused = Number.POSITIVE_INFINITY;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.startedAt = Date.now();
    this.timer = setTimeout(this.onExpire, Math.max(0, this.remainingMs));
  }
}
