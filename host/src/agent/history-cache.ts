import type { SessionEvent } from "../store/index.js";

interface Entry {
  /** `readHistory` events plus every later event this process appended, in seq order. */
  events: SessionEvent[];
  /** Seq of the newest event in `events` (the session's last seq as far as this process knows). */
  lastSeq: number;
}

/**
 * The `readHistory` events of recently active sessions, kept in process so that a turn does not
 * read its history back from the store (one store round trip per turn saved: ~1-2 ms with
 * embedded SurrealDB). Filled from a store read, then extended with the events the runtime
 * appends (as the store returned them, so redaction is the same as after a restart).
 *
 * Correct as long as every write to a session goes through this process's runtime: an append
 * whose seqs do not continue the entry exactly (an event was missed) drops the entry, and the
 * next turn reads from the store again. Reset, delete and compaction drop the entry too.
 * Least recently used entries are evicted beyond `capacity` sessions.
 */
export class HistoryCache {
  private readonly entries = new Map<string, Entry>();

  /** @param capacity sessions kept (0 disables the cache) */
  constructor(private readonly capacity: number) {}

  /** A copy of the session's cached events (safe to keep), or undefined on a miss. */
  get(sessionKey: string): SessionEvent[] | undefined {
    const entry = this.entries.get(sessionKey);
    if (!entry) return undefined;
    this.entries.delete(sessionKey);
    this.entries.set(sessionKey, entry);
    return entry.events.slice();
  }

  /** Starts an entry from a `readHistory` result. */
  fill(sessionKey: string, events: readonly SessionEvent[]): void {
    if (this.capacity <= 0) return;
    let lastSeq = 0;
    for (const e of events) lastSeq = Math.max(lastSeq, e.seq);
    this.entries.delete(sessionKey);
    this.entries.set(sessionKey, { events: events.slice().sort((a, b) => a.seq - b.seq), lastSeq });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Adds events just appended (consecutive seqs, as `appendEvents` returns them). */
  appended(sessionKey: string, events: readonly SessionEvent[]): void {
    const entry = this.entries.get(sessionKey);
    if (!entry || events.length === 0) return;
    const first = events[0]!.seq;
    const last = events[events.length - 1]!.seq;
    if (last <= entry.lastSeq) return; // the read that filled the entry already had them
    if (first !== entry.lastSeq + 1) {
      this.entries.delete(sessionKey);
      return;
    }
    entry.events.push(...events);
    entry.lastSeq = last;
  }

  /** Forgets a session (reset, delete, compaction). */
  drop(sessionKey: string): void {
    this.entries.delete(sessionKey);
  }
}
