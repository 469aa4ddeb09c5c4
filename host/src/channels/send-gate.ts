/**
 * The gate in front of a channel plugin's `send`: at most as many sends of one plugin in flight
 * as the plugin has instances (its `max_in_flight`), the rest waiting here, in order.
 *
 * Why: a channel plugin's instance pool serves both directions — `parse` for every inbound
 * webhook and `send` for every reply — and refuses a call as `busy` once `maxInFlight` calls run
 * and `maxQueued` wait. Replies are already held in memory (the reply outbox, owed in the store),
 * so letting a burst of them into the pool's queue only takes the places inbound webhooks need:
 * a webhook then gets 503 "the plugin is busy" although nothing was overloaded but the queue.
 * Gated, sends take at most `maxInFlight` of the pool (running or queued) and inbound parses keep
 * the queue (issue 13: 50 sessions posting through a gateway with the journal got 5-40 % of their
 * webhooks refused this way).
 */

/** Calls of one plugin running at once when the plugin host does not say (plugins/capabilities.ts `DEFAULT_LIMITS`). */
export const DEFAULT_SEND_SLOTS = 4;

interface Lane {
  running: number;
  waiting: (() => void)[];
}

/** Per-plugin FIFO semaphore for `send` calls. */
export class SendGate {
  private readonly lanes = new Map<string, Lane>();

  /**
   * @param slots sends of `plugin` allowed in flight at once (the plugin's `maxInFlight`); read
   *   at each acquisition, so a reloaded limit applies to the next send; values below 1 count as 1
   */
  constructor(private readonly slots: (plugin: string) => number) {}

  /**
   * Runs `fn` once a slot of `plugin` is free; releases the slot when it settles. When `signal`
   * aborts while waiting, `fn` is called at once without a slot: it must see the aborted signal
   * and throw its own abort error (as `PluginHost.callChannel` does before touching the plugin).
   * @throws what `fn` throws
   */
  async run<T>(plugin: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return fn();
    let lane = this.lanes.get(plugin);
    if (lane === undefined) {
      lane = { running: 0, waiting: [] };
      this.lanes.set(plugin, lane);
    }
    if (lane.running >= Math.max(1, this.slots(plugin))) {
      if (!(await this.wait(lane, signal))) return fn();
    } else lane.running++;
    try {
      return await fn();
    } finally {
      this.release(plugin, lane);
    }
  }

  /** Sends of `plugin` running (holding a slot) and waiting here. */
  stats(plugin: string): { running: number; waiting: number } {
    const lane = this.lanes.get(plugin);
    return { running: lane?.running ?? 0, waiting: lane?.waiting.length ?? 0 };
  }

  /**
   * Waits for a slot handed over by {@link release} (then already counted as running).
   * @returns true with the slot; false when `signal` aborted first (no slot held)
   */
  private wait(lane: Lane, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const i = lane.waiting.indexOf(granted);
        if (i >= 0) lane.waiting.splice(i, 1);
        resolve(false);
      };
      const granted = (): void => {
        signal?.removeEventListener("abort", onAbort);
        resolve(true);
      };
      lane.waiting.push(granted);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private release(plugin: string, lane: Lane): void {
    // Hand the slot to the next waiter (it stays counted), unless the limit was lowered meanwhile.
    if (lane.running <= Math.max(1, this.slots(plugin))) {
      const next = lane.waiting.shift();
      if (next !== undefined) return next();
    }
    lane.running--;
    if (lane.running === 0 && lane.waiting.length === 0) this.lanes.delete(plugin);
  }
}
