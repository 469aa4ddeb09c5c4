/**
 * The runtime's access to the session log: appends go through the history cache (so the next
 * turn of a session reads its history from memory), history reads come from it when it has them,
 * and `readAll` pages through everything after a seq (recovery, replays, abandoned turns).
 */
import type { AppendOptions, NewSessionEvent, SessionEvent, SessionLog } from "../store/index.js";
import { HistoryCache, type HistoryCacheLimits } from "./history-cache.js";

/** Rows per `read` page in {@link CachedSessionLog.readAll}. */
const PAGE = 1000;

/** A {@link SessionLog} with an in-process {@link HistoryCache} in front of its history reads. */
export class CachedSessionLog {
  private readonly cache: HistoryCache;

  /**
   * @param log the store (exposed for the calls that bypass the cache: lookups, reset, delete)
   * @param cacheLimits how many sessions' history, and how many bytes of it, stay in process
   */
  constructor(
    readonly log: SessionLog,
    cacheLimits: HistoryCacheLimits,
  ) {
    this.cache = new HistoryCache(cacheLimits);
  }

  /** Appends through the history cache. @throws StoreError (DuplicateEventError for a taken key) */
  async append(sessionKey: string, events: NewSessionEvent[], opts?: AppendOptions): Promise<SessionEvent[]> {
    const stored = await this.log.appendEvents(sessionKey, events, opts);
    this.cache.appended(sessionKey, stored);
    return stored;
  }

  /** The session's `readHistory` events, from the cache when it has them. @throws StoreError */
  async readHistory(sessionKey: string): Promise<SessionEvent[]> {
    const cached = this.cache.get(sessionKey);
    if (cached) return cached;
    const events = await this.log.readHistory(sessionKey);
    this.cache.fill(sessionKey, events);
    return events;
  }

  /** Every event of a session after `afterSeq` (read from the store, in pages). @throws StoreError */
  async readAll(sessionKey: string, afterSeq: number): Promise<SessionEvent[]> {
    const out: SessionEvent[] = [];
    for (let after = afterSeq; ; ) {
      const page = await this.log.read(sessionKey, { afterSeq: after, limit: PAGE });
      out.push(...page);
      if (page.length < PAGE) return out;
      after = page[page.length - 1]!.seq;
    }
  }

  /** Forgets the session's cached history (reset, delete, compaction: the next read goes to the store). */
  drop(sessionKey: string): void {
    this.cache.drop(sessionKey);
  }
}
