/**
 * Full-text recall over a conversation's earlier sessions: the events of its session key up to
 * the latest `reset` (what `/new` or `sessions.reset` left behind), indexed in process with
 * BM25 and cached per session key until the key's reset seq changes. One store read per session
 * per reset (bounded to the last {@link MAX_EARLIER_EVENTS} events); every later turn's recall
 * is in process.
 *
 * Each line has an **owner**: who said it or whom it answered. A user line's owner is the
 * host-written sender of its `message_received` (`data.sender`), or the peer when the message
 * has none (a direct chat). An assistant line's owner is the single owner of the messages its
 * run answered (its own message, and any message folded or steered into the run, whose
 * `turn_started.data.runId` names it); a run that answered several owners (a group's collected
 * messages) or an event without a run id has no owner. A reader restricted to one owner (a
 * group member under `scope = "sender"`) only ever sees that owner's lines.
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
  /** Who said it / whom it answered (see the module comment); absent = nobody alone (mixed run). */
  owner?: string;
}

/** A found line with its score. */
export interface SessionLineHit {
  line: SessionLine;
  score: number;
}

interface Indexed {
  resetSeq: number;
  lines: SessionLine[];
  /** BM25 index by seq per owner filter (`ALL` = every line), built at the first search with it. */
  indexes: Map<string, { lines: Map<number, SessionLine>; index: TextIndex<number> }>;
}

/** Cache key of the unfiltered index (an owner's is `=` + the owner, so they cannot collide). */
const ALL = "*";

/** A run's owner set holds this when one of its messages has no known owner: the run has none. */
const UNKNOWN = "\0unknown";

/**
 * The user and assistant text lines of `events` (message content, assistant text), each with its
 * owner (module comment: a message's `sender`, else its `peer`).
 */
export function textLines(events: readonly SessionEvent[]): SessionLine[] {
  // Owners per run: a message's own run, then the run it was folded or steered into.
  const owners = new Map<string, Set<string>>();
  const ownerOf = new Map<string, string>();
  const addOwner = (run: string, who: string) => {
    let set = owners.get(run);
    if (!set) owners.set(run, (set = new Set()));
    set.add(who);
  };
  for (const e of events) {
    if (e.kind === "message_received" && e.runId !== undefined) {
      const who = e.data.sender ?? e.data.peer;
      ownerOf.set(e.runId, who);
      addOwner(e.runId, who);
    } else if (e.kind === "turn_started" && e.runId !== undefined && e.data.runId !== e.runId) {
      addOwner(e.data.runId, ownerOf.get(e.runId) ?? UNKNOWN);
    }
  }
  const out: SessionLine[] = [];
  for (const e of events) {
    if (e.kind === "message_received" && e.data.content.trim() !== "") {
      out.push({ seq: e.seq, role: "user", text: e.data.content, at: e.at, owner: e.data.sender ?? e.data.peer });
    } else if (e.kind === "assistant_text" && e.data.text.trim() !== "") {
      const set = e.runId !== undefined ? owners.get(e.runId) : undefined;
      const owner = set?.size === 1 ? [...set][0]! : undefined;
      out.push({ seq: e.seq, role: "assistant", text: e.data.text, at: e.at, ...(owner !== undefined && owner !== UNKNOWN ? { owner } : {}) });
    }
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
   * The best `limit` lines of `sessionKey`'s events up to its latest reset for `query`; with
   * `owner`, only the lines of that owner (a group member's own messages and the replies to
   * them; ranked among themselves, so other members' words do not even weigh on the scores).
   * `[]` for a session never reset. One `info` per call; a `read` when the reset seq changed.
   * @throws StoreError when the store fails
   */
  async search(sessionKey: string, query: string, limit: number, owner?: string): Promise<SessionLineHit[]> {
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
      entry = { resetSeq, lines: textLines(events), indexes: new Map() };
    }
    // Most recently used last.
    this.cache.delete(sessionKey);
    this.cache.set(sessionKey, entry);
    if (this.cache.size > EARLIER_CACHE_SESSIONS) this.cache.delete(this.cache.keys().next().value!);
    const key = owner === undefined ? ALL : `=${owner}`;
    let e = entry.indexes.get(key);
    if (!e) entry.indexes.set(key, (e = indexLines(owner === undefined ? entry.lines : entry.lines.filter((l) => l.owner === owner))));
    const found = e;
    return found.index.search(query, limit).map((h) => ({ line: found.lines.get(h.id)!, score: h.score }));
  }

  /** Forgets a session's index (deleted, forgotten). */
  drop(sessionKey: string): void {
    this.cache.delete(sessionKey);
  }
}
