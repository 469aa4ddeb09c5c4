import { ErrorCode, RpcError } from "../protocol/errors.js";

/**
 * Serializes work per key: one task at a time per session key, tasks of different keys run
 * concurrently. A key's lane is forgotten when it goes idle, so memory tracks active sessions.
 */
export class SessionLanes {
  private readonly lanes = new Map<string, { tail: Promise<void>; pending: number }>();

  /** @param maxPending tasks allowed per key (running + waiting) before `run` rejects */
  constructor(private readonly maxPending = 32) {}

  /** Tasks running or waiting, across all keys. */
  get size(): number {
    let n = 0;
    for (const l of this.lanes.values()) n += l.pending;
    return n;
  }

  /** Tasks running or waiting for `key`. */
  pendingFor(key: string): number {
    return this.lanes.get(key)?.pending ?? 0;
  }

  /** Whether `run(key, …)` would reject because the key already has `maxPending` tasks. */
  isFull(key: string): boolean {
    return this.pendingFor(key) >= this.maxPending;
  }

  /**
   * Runs `task` after every earlier task of `key` has settled.
   * @param options.force queue even when the key is full (crash recovery re-queues accepted turns)
   * @throws RpcError -32004 when the key already has `maxPending` tasks
   */
  run<T>(key: string, task: () => Promise<T>, options: { force?: boolean } = {}): Promise<T> {
    let lane = this.lanes.get(key);
    if (lane && lane.pending >= this.maxPending && options.force !== true) {
      return Promise.reject(new RpcError(ErrorCode.SessionBusy, `session ${key} already has ${this.maxPending} turns queued`));
    }
    if (!lane) {
      lane = { tail: Promise.resolve(), pending: 0 };
      this.lanes.set(key, lane);
    }
    const l = lane;
    l.pending++;
    const result = l.tail.then(task);
    l.tail = result.then(
      () => this.settle(key, l),
      () => this.settle(key, l),
    );
    return result;
  }

  private settle(key: string, lane: { pending: number }): void {
    lane.pending--;
    if (lane.pending === 0 && this.lanes.get(key) === lane) this.lanes.delete(key);
  }
}
