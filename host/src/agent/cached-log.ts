/**
 * The runtime's access to the session log: appends go through the history cache (so the next
 * turn of a session reads its history from memory), history reads come from it when it has them,
 * and `readAll` pages through everything after a seq (recovery, replays, abandoned turns).
 */
import type { AppendOptions, NewSessionEvent, SessionEvent, SessionLog } from "../store/index.js";
import { estimateBytes, HistoryCache, type HistoryCacheLimits } from "./history-cache.js";
import { projectIncremental, type ProjectionCheckpoint } from "./projection.js";
import type { ChatMessage, ImageInput } from "./types.js";

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

  /**
   * `projectHistory(events, images)` for the session, resumed from the checkpoint kept with its
   * cached history (projection.ts, {@link ProjectionCheckpoint}): a turn projects the events since
   * the previous turn's checkpoint instead of the whole history. The new checkpoint is kept with
   * the cached events, counted against the cache's byte limit and dropped with them (reset,
   * delete, compaction, eviction, a missed append). When the session is not cached, the
   * projection is made in full and nothing is kept.
   *
   * The messages returned may be shared with the checkpoint: they must not be mutated.
   * @param events the session's `readHistory` events (as {@link readHistory} returned them)
   */
  projectHistory(sessionKey: string, events: readonly SessionEvent[], images?: ReadonlyMap<string, ImageInput>): ChatMessage[] {
    const from = this.cache.derivedOf(sessionKey) as Checkpoint | undefined;
    const { messages, checkpoint } = projectIncremental(events, images, from?.checkpoint);
    if (checkpoint !== undefined && checkpoint !== from?.checkpoint) {
      // Bytes of the messages rendered since the previous checkpoint (the earlier ones were counted then).
      const before = from?.checkpoint.messages.length ?? 0;
      let bytes = from?.bytes ?? 0;
      for (let i = Math.max(0, before - 1); i < checkpoint.messages.length; i++) bytes += estimateBytes(checkpoint.messages[i]);
      const kept: Checkpoint = { checkpoint, bytes };
      this.cache.derive(sessionKey, kept, bytes, (cached) => cached[0] === checkpoint.first && cached[checkpoint.index] === checkpoint.last);
    }
    return messages;
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

/** A projection checkpoint as kept in the history cache, with its estimated bytes. */
interface Checkpoint {
  checkpoint: ProjectionCheckpoint;
  bytes: number;
}
