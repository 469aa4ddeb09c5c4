/**
 * Which sessions changed, for server-push subscriptions (event-hub.ts): a decorator over the
 * session log that reports each successful write's session key after the store accepted it.
 * Nothing is written, read or kept: the store's write volume and format stay as they are, and
 * with no listener a change costs one empty-set check.
 */
import type { SessionLog } from "../store/index.js";

/** One change: a session got events (`append`, `appendEvents`, `reset`), was deleted, or many were pruned. */
export interface SessionChange {
  /** The session written; absent for a prune (any session may be gone). */
  sessionKey?: string;
  /** The session was erased (`delete` answered true). */
  deleted?: true;
}

/** A fan-out of {@link SessionChange}s to in-process listeners. Listeners must not throw (a throw is swallowed). */
export class SessionChanges {
  private readonly listeners = new Set<(change: SessionChange) => void>();

  /** Adds a listener; returns its removal. */
  on(listener: (change: SessionChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Tells every listener, synchronously. */
  emit(change: SessionChange): void {
    if (this.listeners.size === 0) return;
    for (const l of this.listeners) {
      try {
        l(change);
      } catch {
        // a listener's fault must not fail the write that was already stored
      }
    }
  }
}

const WRITES = new Set<string | symbol>(["append", "appendEvents", "reset", "delete", "prune"]);

/**
 * `log` with every write reported to `changes` once it resolved (a failed write reports
 * nothing). Every other member is the log's own, bound to it. The result is what the runtime,
 * the channels and the methods should all be given, so that every writer is seen.
 */
export function watchSessionLog(log: SessionLog, changes: SessionChanges): SessionLog {
  const bound = new Map<string | symbol, unknown>();
  return new Proxy(log, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      let fn = bound.get(prop);
      if (fn !== undefined) return fn;
      const f = value as (...args: unknown[]) => unknown;
      fn = WRITES.has(prop)
        ? async (...args: unknown[]) => {
            const result = await f.apply(target, args);
            if (prop === "prune") changes.emit({});
            else if (prop === "delete") {
              if (result === true) changes.emit({ sessionKey: args[0] as string, deleted: true });
            } else changes.emit({ sessionKey: args[0] as string });
            return result;
          }
        : f.bind(target);
      bound.set(prop, fn);
      return fn;
    },
  });
}
