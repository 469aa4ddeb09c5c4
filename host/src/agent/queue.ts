/**
 * Per-session work queues: one batch of work at a time per session key, batches of different
 * keys concurrently. Unlike a promise chain, the queue is explicit, so the runtime can fold
 * waiting turns into one (`collect`), drop the oldest waiting one (`drop = "oldest"`), or pull
 * waiting ones out when a newer message supersedes them (`interrupt`).
 */

/** What the queue needs to know about a job: turns may be folded together, tasks never. */
export interface QueueItem {
  readonly kind: "turn" | "task";
  /** For turns: whether later waiting turns are folded into this one when it starts. */
  readonly collect?: boolean;
}

interface Lane<J extends QueueItem> {
  running: J[] | undefined;
  waiting: J[];
}

/**
 * A map of session queues. `start` runs one batch; it must settle (never hang) and handle its own
 * failures — a rejection is ignored. A lane is forgotten when it goes idle, so memory tracks
 * active sessions. `onEmpty`, when given, is called each time the last lane goes (no job running
 * or waiting in any session), so a caller can wait for idleness without polling.
 */
export class SessionQueues<J extends QueueItem> {
  private readonly lanes = new Map<string, Lane<J>>();

  constructor(
    private readonly start: (key: string, batch: J[]) => Promise<void>,
    private readonly onEmpty?: () => void,
  ) {}

  /** Jobs running or waiting, across all keys. */
  get size(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += (l.running?.length ?? 0) + l.waiting.length;
    return n;
  }

  /** Jobs running or waiting for `key`. */
  pendingFor(key: string): number {
    const l = this.lanes.get(key);
    return l ? (l.running?.length ?? 0) + l.waiting.length : 0;
  }

  /** The batch running for `key`, if any. */
  running(key: string): readonly J[] | undefined {
    return this.lanes.get(key)?.running;
  }

  /** The jobs waiting for `key`, oldest first (a copy). */
  waiting(key: string): J[] {
    return this.lanes.get(key)?.waiting.slice() ?? [];
  }

  /**
   * Appends a job to `key`'s queue; when the key is idle it starts at once (synchronously: the
   * batch's `start` is called before `push` returns).
   */
  push(key: string, job: J): void {
    let lane = this.lanes.get(key);
    if (!lane) this.lanes.set(key, (lane = { running: undefined, waiting: [] }));
    lane.waiting.push(job);
    if (!lane.running) this.next(key, lane);
  }

  /**
   * Moves the jobs at the head of `key`'s waiting list that `pred` accepts (up to the first it
   * refuses) into the running batch (queue mode `steer`: they join the running turn).
   * @returns the moved jobs, oldest first (empty when nothing runs or nothing matches)
   */
  absorb(key: string, pred: (job: J) => boolean): J[] {
    const lane = this.lanes.get(key);
    if (!lane?.running) return [];
    let n = 0;
    while (n < lane.waiting.length && pred(lane.waiting[n]!)) n++;
    const moved = lane.waiting.splice(0, n);
    lane.running.push(...moved);
    return moved;
  }

  /** The first job (running or waiting, any key) that `pred` accepts, with its key and whether it runs. */
  find(pred: (job: J) => boolean): { key: string; job: J; running: boolean } | undefined {
    for (const [key, lane] of this.lanes) {
      const running = lane.running?.find(pred);
      if (running) return { key, job: running, running: true };
      const waiting = lane.waiting.find(pred);
      if (waiting) return { key, job: waiting, running: false };
    }
    return undefined;
  }

  /** Takes a waiting (not running) job out of `key`'s queue; false when it is not waiting. */
  remove(key: string, job: J): boolean {
    const lane = this.lanes.get(key);
    const i = lane ? lane.waiting.indexOf(job) : -1;
    if (!lane || i < 0) return false;
    lane.waiting.splice(i, 1);
    if (!lane.running && lane.waiting.length === 0) this.forget(key);
    return true;
  }

  private next(key: string, lane: Lane<J>): void {
    const first = lane.waiting.shift();
    if (!first) {
      lane.running = undefined;
      if (this.lanes.get(key) === lane) this.forget(key);
      return;
    }
    const batch = [first];
    // A task (reset, delete) is a barrier: a turn never absorbs messages queued behind one.
    if (first.kind === "turn" && first.collect === true) {
      while (lane.waiting.length > 0 && lane.waiting[0]!.kind === "turn") batch.push(lane.waiting.shift()!);
    }
    lane.running = batch;
    let done: Promise<void>;
    try {
      done = this.start(key, batch);
    } catch {
      done = Promise.resolve();
    }
    const after = () => this.next(key, lane);
    done.then(after, after);
  }

  private forget(key: string): void {
    this.lanes.delete(key);
    if (this.lanes.size === 0) this.onEmpty?.();
  }
}
