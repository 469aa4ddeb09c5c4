/**
 * The session rows as the journal's projection last wrote them (or read them back), by session
 * key: the projection computes each new row from the previous one (`projectionVars` in
 * statements.ts) without reading it. Every other write of a session row (an append outside the
 * journal, a delete, a prune) forgets the session before and after it; the projection's own check
 * (each row's stored last seq must be the expected one, in the same transaction) catches a stale
 * entry.
 */
import type { ProjectedSession } from "./statements.js";

/**
 * How many sessions' rows the projection remembers as it wrote them (least recently projected
 * forgotten first; ~160 bytes of heap each with its key, so <= ~0.7 MB): a session projected
 * again within this many others costs no read of its row. A forgotten one is read back (one
 * query for all of a batch's; even a read for every session of every batch measured less engine
 * CPU than the per-session read-and-upsert it replaced, docs/architecture.md "Store").
 */
export const PROJECTED_ROWS_CACHE = 4_096;

/** A bounded map of {@link ProjectedSession}s, least recently remembered forgotten first. */
export class ProjectedRows {
  private readonly rows = new Map<string, ProjectedSession>();

  /** @param limit how many sessions are kept, >= 1 */
  constructor(private readonly limit: number) {}

  /** The row kept for `sessionKey`, if any. */
  get(sessionKey: string): ProjectedSession | undefined {
    return this.rows.get(sessionKey);
  }

  /** Whether the row kept for `sessionKey` ends at `lastSeq` (so the next batch may follow it unread). */
  isAt(sessionKey: string, lastSeq: number): boolean {
    return this.rows.get(sessionKey)?.lastSeq === lastSeq;
  }

  /** Keeps `state` as `sessionKey`'s row (the most recent), forgetting the oldest beyond the limit. */
  remember(sessionKey: string, state: ProjectedSession): void {
    this.rows.delete(sessionKey);
    this.rows.set(sessionKey, state);
    if (this.rows.size > this.limit) this.rows.delete(this.rows.keys().next().value!);
  }

  /** Drops what is kept for `sessionKey` (its row is being written some other way). */
  forget(sessionKey: string): void {
    this.rows.delete(sessionKey);
  }
}
