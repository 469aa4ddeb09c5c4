import { DuplicateEventError, SeqConflictError, StoreError } from "./errors.js";
import {
  compactionRangeError,
  historyStart,
  pendingMessages,
  platformKey,
  prepareAppend,
  compareHits,
  pruneCutoff,
  tokenMatchScore,
  tokenize,
} from "./events.js";
import { decodeCursor, encodeCursor, pageLimit, readBounds, searchLimit } from "./paging.js";
import { parseSessionKey } from "./session-key.js";
import type {
  AppendOptions,
  ListSessionsOptions,
  NewSessionEvent,
  PruneOptions,
  PruneResult,
  ReadOptions,
  SearchHit,
  SearchOptions,
  SessionEvent,
  SessionEventOf,
  SessionInfo,
  SessionLog,
  SessionLogOptions,
  SessionPage,
} from "./types.js";

interface MemSession {
  info: SessionInfo;
  events: SessionEvent[];
  openTurns: number;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/**
 * A copy of an event that shares nothing mutable with it. Event data holds only primitives
 * except `tool_use.input` (any JSON), so only that is deep-copied — several times faster than
 * a JSON round trip of the whole event, which matters on the turn hot path.
 */
function copyEvent<E extends SessionEvent>(e: E): E {
  const data = e.kind === "tool_use" ? { ...e.data, input: clone(e.data.input) } : { ...e.data };
  return { ...e, data } as E;
}
const copyEvents = <E extends SessionEvent>(events: readonly E[]): E[] => events.map(copyEvent);

/**
 * An in-process {@link SessionLog}: everything is lost when the process exits. Same semantics
 * as the SurrealDB back end (the shared test suite runs against both), except `search`, which
 * matches whole lower-cased words (all query words must occur; score = occurrences) where
 * SurrealDB stems words and ranks with BM25. Events are stored as copies (tool input as a JSON copy), so callers may
 * mutate what they pass in or get back.
 */
export function createMemorySessionLog(options: SessionLogOptions = {}): SessionLog {
  const sessions = new Map<string, MemSession>();
  const byPlatformKey = new Map<string, { key: string; seq: number }>();
  const byIdempotencyKey = new Map<string, { key: string; seq: number }>();
  /** The reply outbox: idempotency keys of owed replies (see `pendingReplies`). */
  const owed = new Set<string>();
  const now = options.now ?? Date.now;
  let closed = false;

  const open = () => {
    if (closed) throw new StoreError("closed", "the session log is closed");
  };
  /** Removes a session and frees its dedupe keys and owed replies. */
  const erase = (sessionKey: string, s: MemSession): void => {
    for (const e of s.events) {
      if (e.kind !== "message_received") continue;
      if (e.data.platformMessageId !== undefined) byPlatformKey.delete(platformKey(e.data.channel, e.data.account, e.data.platformMessageId));
      if (e.data.idempotencyKey !== undefined) {
        byIdempotencyKey.delete(e.data.idempotencyKey);
        owed.delete(e.data.idempotencyKey);
      }
    }
    sessions.delete(sessionKey);
  };
  const eventAt = (ref: { key: string; seq: number } | undefined): SessionEventOf<"message_received"> | undefined => {
    if (!ref) return undefined;
    const e = sessions.get(ref.key)?.events[ref.seq - 1];
    return e?.kind === "message_received" ? copyEvent(e) : undefined;
  };

  return {
    kind: "memory",

    async append(sessionKey: string, events: readonly NewSessionEvent[], opts: AppendOptions = {}): Promise<number[]> {
      return (await this.appendEvents(sessionKey, events, opts)).map((e) => e.seq);
    },

    async appendEvents(sessionKey: string, events: readonly NewSessionEvent[], opts: AppendOptions = {}): Promise<SessionEvent[]> {
      open();
      const plan = prepareAppend(sessionKey, events, options);
      const s = sessions.get(sessionKey);
      const last = s?.info.lastSeq ?? 0;
      if (opts.expectedSeq !== undefined && opts.expectedSeq !== last) throw new SeqConflictError(sessionKey, opts.expectedSeq, last);
      if (plan.events.length === 0) return [];
      for (const k of plan.platformKeys) if (byPlatformKey.has(k)) throw new DuplicateEventError("platformMessageId", (JSON.parse(k) as string[])[2]!);
      for (const k of plan.idempotencyKeys) if (byIdempotencyKey.has(k)) throw new DuplicateEventError("idempotencyKey", k);
      if (last < plan.minLastSeq) throw compactionRangeError(last, plan.minLastSeq);

      const t = now();
      const session: MemSession = s ?? {
        info: { sessionKey, ...plan.parts, lastSeq: 0, resetSeq: 0, createdAt: t, updatedAt: t },
        events: [],
        openTurns: 0,
      };
      const stored = plan.events.map((e, i) => {
        const seq = last + 1 + i;
        const event = copyEvent({ sessionKey, seq, ...e } as SessionEvent);
        session.events.push(event);
        if (e.kind === "message_received") {
          if (e.data.platformMessageId !== undefined)
            byPlatformKey.set(platformKey(e.data.channel, e.data.account, e.data.platformMessageId), { key: sessionKey, seq });
          if (e.data.idempotencyKey !== undefined) byIdempotencyKey.set(e.data.idempotencyKey, { key: sessionKey, seq });
          if (e.data.awaitsReply === true) owed.add(e.data.idempotencyKey!);
        }
        return event;
      });
      session.info.lastSeq = last + plan.events.length;
      session.info.updatedAt = t;
      session.openTurns = Math.max(plan.openFloor, session.openTurns + plan.openDelta);
      if (plan.lastResetIndex >= 0) {
        session.info.resetSeq = last + 1 + plan.lastResetIndex;
        delete session.info.compaction;
      }
      if (plan.lastCompactionIndex >= 0) {
        const c = plan.events[plan.lastCompactionIndex] as SessionEventOf<"compaction">;
        session.info.compaction = { seq: last + 1 + plan.lastCompactionIndex, upToSeq: c.data.upToSeq };
      }
      sessions.set(sessionKey, session);
      return copyEvents(stored);
    },

    async read(sessionKey: string, opts: ReadOptions = {}): Promise<SessionEvent[]> {
      open();
      parseSessionKey(sessionKey);
      const { after, count } = readBounds(opts);
      const events = sessions.get(sessionKey)?.events ?? [];
      const end = Math.min(events.length, after + count);
      return copyEvents(events.slice(after, end));
    },

    async readHistory(sessionKey: string): Promise<SessionEvent[]> {
      open();
      const s = sessions.get(sessionKey);
      if (!s) return (parseSessionKey(sessionKey), []);
      return copyEvents(s.events.slice(historyStart(s.info.resetSeq, s.info.compaction)));
    },

    async info(sessionKey: string): Promise<SessionInfo | undefined> {
      open();
      parseSessionKey(sessionKey);
      const s = sessions.get(sessionKey);
      return s ? clone(s.info) : undefined;
    },

    async listSessions(opts: ListSessionsOptions = {}): Promise<SessionPage> {
      open();
      const limit = pageLimit(opts.limit);
      const after = opts.cursor !== undefined ? decodeCursor(opts.cursor) : undefined;
      const keys = [...sessions.keys()].sort();
      const page: SessionInfo[] = [];
      for (const key of keys) {
        if (after !== undefined && key <= after) continue;
        const info = sessions.get(key)!.info;
        if (opts.agent !== undefined && info.agent !== opts.agent) continue;
        if (opts.channel !== undefined && info.channel !== opts.channel) continue;
        if (opts.peer !== undefined && info.peer !== opts.peer) continue;
        if (page.length === limit) return { sessions: page, nextCursor: encodeCursor(page[page.length - 1]!.sessionKey) };
        page.push(clone(info));
      }
      return { sessions: page };
    },

    async countSessions(): Promise<number> {
      open();
      return sessions.size;
    },

    async reset(sessionKey: string, reason?: string): Promise<number> {
      const [seq] = await this.append(sessionKey, [{ kind: "reset", data: reason === undefined ? {} : { reason } }]);
      return seq!;
    },

    async delete(sessionKey: string): Promise<boolean> {
      open();
      parseSessionKey(sessionKey);
      const s = sessions.get(sessionKey);
      if (!s) return false;
      erase(sessionKey, s);
      return true;
    },

    async prune(opts: PruneOptions): Promise<PruneResult> {
      open();
      const cutoff = pruneCutoff(opts);
      const result: PruneResult = { sessions: 0, events: 0, kept: 0 };
      for (const [key, s] of [...sessions]) {
        if (opts.signal?.aborted) break;
        if (s.info.updatedAt >= cutoff) continue;
        const owes = s.events.some((e) => e.kind === "message_received" && e.data.idempotencyKey !== undefined && owed.has(e.data.idempotencyKey));
        if (s.openTurns > 0 || owes) {
          result.kept++;
          continue;
        }
        result.sessions++;
        result.events += s.info.lastSeq;
        if (opts.dryRun !== true) {
          erase(key, s);
          opts.onRemoved?.(key);
        }
      }
      return result;
    },

    async search(query: string, opts: SearchOptions = {}): Promise<SearchHit[]> {
      open();
      const limit = searchLimit(opts.limit);
      const terms = [...new Set(tokenize(String(query)))];
      if (terms.length === 0) return [];
      if (opts.sessionKey !== undefined) parseSessionKey(opts.sessionKey);
      const hits: SearchHit[] = [];
      for (const [key, s] of sessions) {
        if (opts.sessionKey !== undefined && key !== opts.sessionKey) continue;
        for (const e of s.events) {
          const score = tokenMatchScore(e, terms);
          if (score !== undefined) hits.push({ event: e, score });
        }
      }
      hits.sort(compareHits);
      return hits.slice(0, limit).map((h) => ({ event: copyEvent(h.event), score: h.score }));
    },

    async findByPlatformMessageId(channel: string, account: string, platformMessageId: string) {
      open();
      return eventAt(byPlatformKey.get(platformKey(channel, account, platformMessageId)));
    },

    async findByIdempotencyKey(idempotencyKey: string) {
      open();
      return eventAt(byIdempotencyKey.get(idempotencyKey));
    },

    async pendingTurns(): Promise<SessionEventOf<"message_received">[]> {
      open();
      const out: SessionEventOf<"message_received">[] = [];
      for (const key of [...sessions.keys()].sort()) {
        const s = sessions.get(key)!;
        if (s.openTurns > 0) out.push(...pendingMessages(s.events.slice(s.info.resetSeq)));
      }
      return copyEvents(out);
    },

    async pendingReplies(): Promise<SessionEventOf<"message_received">[]> {
      open();
      const out: SessionEventOf<"message_received">[] = [];
      for (const k of owed) {
        const e = eventAt(byIdempotencyKey.get(k));
        if (e) out.push(e);
      }
      return out.sort((a, b) => (a.sessionKey < b.sessionKey ? -1 : a.sessionKey > b.sessionKey ? 1 : a.seq - b.seq));
    },

    async settleReplies(idempotencyKeys: readonly string[]): Promise<void> {
      open();
      for (const k of idempotencyKeys) owed.delete(k);
    },

    async close(): Promise<void> {
      closed = true;
    },
  };
}
