import type { SessionEvent } from "../store/index.js";

interface Entry {
  /** `readHistory` events plus every later event this process appended, in seq order. */
  events: SessionEvent[];
  /** Seq of the newest event in `events` (the session's last seq as far as this process knows). */
  lastSeq: number;
  /** Estimated heap bytes of `events` and `derived` (see {@link estimateBytes}). */
  bytes: number;
  /** What was derived from `events` ({@link HistoryCache.derive}), dropped with them. */
  derived?: { value: unknown; bytes: number };
}

/** Limits of a {@link HistoryCache}. */
export interface HistoryCacheLimits {
  /** Sessions kept at most; 0 disables the cache. */
  sessions: number;
  /**
   * Estimated bytes of cached events kept at most, all sessions together (see
   * {@link estimateBytes}); 0 disables the cache. A session whose history alone is larger is not
   * cached (its turns read from the store).
   */
  bytes: number;
}

/** Default {@link HistoryCacheLimits}: 256 sessions, 16 MiB. */
export const DEFAULT_HISTORY_CACHE_LIMITS: HistoryCacheLimits = { sessions: 256, bytes: 16 * 1024 * 1024 };

/** Per object / array / primitive overhead in {@link estimateBytes}, bytes (a V8 object header plus a slot). */
const OBJECT_BYTES = 32;

/**
 * Estimated heap bytes of a JSON-like value: 2 bytes per string character (V8 keeps strings
 * one byte per character when they are Latin-1 and two otherwise; counting two never
 * underestimates) plus {@link OBJECT_BYTES} per value and per property. Walks the value without
 * serializing it (this runs for every appended event).
 */
export function estimateBytes(value: unknown): number {
  if (typeof value === "string") return OBJECT_BYTES + value.length * 2;
  if (value === null || typeof value !== "object") return OBJECT_BYTES / 2;
  let n = OBJECT_BYTES;
  if (Array.isArray(value)) {
    for (const v of value) n += estimateBytes(v);
    return n;
  }
  for (const k in value) n += OBJECT_BYTES / 2 + k.length + estimateBytes((value as Record<string, unknown>)[k]);
  return n;
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
 *
 * Bounded by count and by size: least recently used entries are evicted while there are more
 * than `limits.sessions` or their estimated bytes exceed `limits.bytes` (a session's history
 * grows with every turn until compaction, so a count alone does not bound memory).
 */
export class HistoryCache {
  private readonly entries = new Map<string, Entry>();
  private totalBytes = 0;

  constructor(private readonly limits: HistoryCacheLimits = DEFAULT_HISTORY_CACHE_LIMITS) {}

  /** Sessions cached now. */
  get size(): number {
    return this.entries.size;
  }

  /** Estimated bytes of all cached events now. */
  get bytes(): number {
    return this.totalBytes;
  }

  /** A copy of the session's cached events (safe to keep), or undefined on a miss. */
  get(sessionKey: string): SessionEvent[] | undefined {
    const entry = this.entries.get(sessionKey);
    if (!entry) return undefined;
    this.entries.delete(sessionKey);
    this.entries.set(sessionKey, entry);
    return entry.events.slice();
  }

  /**
   * What {@link derive} attached to the session's entry, without touching its recency; undefined
   * when the session is not cached (or nothing was attached since it was filled).
   */
  derivedOf(sessionKey: string): unknown {
    return this.entries.get(sessionKey)?.derived?.value;
  }

  /**
   * Attaches `value`, computed from the events of the session's entry (e.g. the projection
   * checkpoint of cached-log.ts), replacing what was attached before. It is dropped with the
   * events (drop, eviction, a missed append, reset, delete, compaction) and its `bytes` count
   * against the limits (a value that would take the entry past the byte limit is not kept, and
   * the one before it is dropped: the events stay cached). Ignored when the session is not cached, or when `valid` says `value` was
   * not computed from this entry's events (the entry was refilled meanwhile).
   * @param valid called with the entry's events (not to be kept)
   */
  derive(sessionKey: string, value: unknown, bytes: number, valid: (events: readonly SessionEvent[]) => boolean): void {
    const entry = this.entries.get(sessionKey);
    if (!entry || !valid(entry.events)) return;
    const before = entry.derived?.bytes ?? 0;
    // Too big to keep with the events: the events stay cached, without it.
    const kept = entry.bytes - before + bytes <= this.limits.bytes;
    if (kept) entry.derived = { value, bytes };
    else delete entry.derived;
    const delta = (kept ? bytes : 0) - before;
    entry.bytes += delta;
    this.totalBytes += delta;
    this.evict();
  }

  /** Starts an entry from a `readHistory` result. */
  fill(sessionKey: string, events: readonly SessionEvent[]): void {
    if (this.limits.sessions <= 0 || this.limits.bytes <= 0) return;
    this.drop(sessionKey);
    let lastSeq = 0;
    let bytes = 0;
    for (const e of events) {
      lastSeq = Math.max(lastSeq, e.seq);
      bytes += estimateBytes(e);
    }
    if (bytes > this.limits.bytes) return;
    this.entries.set(sessionKey, { events: events.slice().sort((a, b) => a.seq - b.seq), lastSeq, bytes });
    this.totalBytes += bytes;
    this.evict();
  }

  /** Adds events just appended (consecutive seqs, as `appendEvents` returns them). */
  appended(sessionKey: string, events: readonly SessionEvent[]): void {
    const entry = this.entries.get(sessionKey);
    if (!entry || events.length === 0) return;
    const first = events[0]!.seq;
    const last = events[events.length - 1]!.seq;
    if (last <= entry.lastSeq) return; // the read that filled the entry already had them
    if (first !== entry.lastSeq + 1) {
      this.drop(sessionKey);
      return;
    }
    let bytes = 0;
    for (const e of events) bytes += estimateBytes(e);
    entry.events.push(...events);
    entry.lastSeq = last;
    entry.bytes += bytes;
    this.totalBytes += bytes;
    if (entry.bytes > this.limits.bytes) this.drop(sessionKey);
    else this.evict();
  }

  /** Forgets a session (reset, delete, compaction). */
  drop(sessionKey: string): void {
    const entry = this.entries.get(sessionKey);
    if (!entry) return;
    this.entries.delete(sessionKey);
    this.totalBytes -= entry.bytes;
  }

  /** Evicts least recently used entries until both limits hold. */
  private evict(): void {
    while (this.entries.size > this.limits.sessions || this.totalBytes > this.limits.bytes) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) return;
      this.drop(oldest);
    }
  }
}
