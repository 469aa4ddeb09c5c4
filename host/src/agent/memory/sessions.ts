/**
 * Full-text recall over a conversation's earlier sessions: the events of its session key up to
 * the latest `reset` (what `/new` or `sessions.reset` left behind), indexed in process with
 * BM25 and cached per session key until the key's reset seq changes. One store read per session
 * per reset (bounded to the last {@link MAX_EARLIER_EVENTS} events); every later turn's recall
 * is in process.
 */
import type { SessionEvent, SessionLog } from "../../store/index.js";
import { TextIndex } from "./text-index.js";

/** Events before the latest reset that are indexed (the newest ones). */
export const MAX_EARLIER_EVENTS = 5000;
/** Sessions whose earlier-session index is kept in process (least recently used beyond it dropped). */
export const EARLIER_CACHE_SESSIONS = 256;

/** A line of a past session a recall or a search found. */
export interface SessionLine {
  seq: number;
  role: "user" | "assistant";
  text: string;
  /** When it was said, ms epoch. */
  at: number;
}

/** A found line with its score. */
export interface SessionLineHit {
  line: SessionLine;
  score: number;
}

interface Indexed {
  resetSeq: number;
  lines: Map<number, SessionLine>;
  index: TextIndex<number>;
}

/** The user and assistant text lines of `events` (message content, assistant text). */
export function textLines(events: readonly SessionEvent[]): SessionLine[] {
  const out: SessionLine[] = [];
  for (const e of events) {
    if (e.kind === "message_received" && e.data.content.trim() !== "") out.push({ seq: e.seq, role: "user", text: e.data.content, at: e.at });
    else if (e.kind === "assistant_text" && e.data.text.trim() !== "") out.push({ seq: e.seq, role: "assistant", text: e.data.text, at: e.at });
  }
  return out;
}

/** Builds a BM25 index over `lines` by seq. */
export function indexLines(lines: readonly SessionLine[]): { lines: Map<number, SessionLine>; index: TextIndex<number> } {
  const index = new TextIndex<number>();
  const byseq = new Map<number, SessionLine>();
  for (const l of lines) {
    byseq.set(l.seq, l);
    index.add(l.seq, l.text);
  }
  return { lines: byseq, index };
}

/** The earlier-session indexes of recent session keys. */
export class EarlierSessions {
  private readonly cache = new Map<string, Indexed>();

  constructor(private readonly log: Pick<SessionLog, "info" | "read">) {}

  /**
   * The best `limit` lines of `sessionKey`'s events up to its latest reset for `query`.
   * `[]` for a session never reset. One `info` per call; a `read` when the reset seq changed.
   * @throws StoreError when the store fails
   */
  async search(sessionKey: string, query: string, limit: number): Promise<SessionLineHit[]> {
    const info = await this.log.info(sessionKey);
    const resetSeq = info?.resetSeq ?? 0;
    if (resetSeq === 0) {
      this.cache.delete(sessionKey);
      return [];
    }
    let entry = this.cache.get(sessionKey);
    if (entry?.resetSeq !== resetSeq) {
      const from = Math.max(0, resetSeq - MAX_EARLIER_EVENTS);
      const events = await this.log.read(sessionKey, { afterSeq: from, limit: resetSeq - from });
      entry = { resetSeq, ...indexLines(textLines(events)) };
    }
    // Most recently used last.
    this.cache.delete(sessionKey);
    this.cache.set(sessionKey, entry);
    if (this.cache.size > EARLIER_CACHE_SESSIONS) this.cache.delete(this.cache.keys().next().value!);
    const e = entry;
    return e.index.search(query, limit).map((h) => ({ line: e.lines.get(h.id)!, score: h.score }));
  }

  /** Forgets a session's index (deleted, forgotten). */
  drop(sessionKey: string): void {
    this.cache.delete(sessionKey);
  }
}
