/**
 * Runs async tasks one at a time per key, in call order; different keys run in parallel. Used
 * wherever order matters per stream (one session's appends, one subject's publishes, one peer's
 * replies). A task starts after the previous task of its key settled, whether it succeeded or
 * failed; each caller gets its own task's result or error. Keys without pending tasks are
 * forgotten, so the map only holds busy keys.
 */
export class KeyedChain {
  private readonly tails = new Map<string, Promise<void>>();

  /** Queues `task` behind the earlier tasks of `key`; settles with its outcome. */
  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(noop, noop);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running. */
  get size(): number {
    return this.tails.size;
  }

  /** Resolves once every task queued so far has settled (never rejects). */
  async idle(): Promise<void> {
    await Promise.all([...this.tails.values()]);
  }
}

function noop(): void {}
