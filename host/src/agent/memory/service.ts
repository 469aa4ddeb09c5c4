/**
 * The agents' memory, host side: the note store, recall over earlier sessions, the memory block
 * of each turn, the built-in `memory` and `session_search` tools, and forgetting a peer.
 * See docs/memory.md.
 */
import type { Logger } from "pino";
import type { ToolResult } from "../../plugins/index.js";
import { parseSessionKey, vectorSum, type SessionLog, type VectorTable } from "../../store/index.js";
import type { ChatMessage } from "../types.js";
import { assembleMemory, type AssembledMemory } from "./assemble.js";
import { NoteError, type NoteStore } from "./notes.js";
import { readable, type MemoryScope, type MemoryShare, type ScopeFilter } from "./scope.js";
import { EarlierSessions, indexLines, MAX_EARLIER_EVENTS, textLines, type SessionLineHit } from "./sessions.js";
import { cosine, type Embedder, type EmbeddingProvider } from "./embeddings.js";
import type { Note, NoteHit } from "./notes.js";

/** `[agents.memory]`, resolved: what an agent's memory block may hold. */
export interface MemoryPolicy {
  /** Estimated tokens of the whole memory block; default 1024. */
  budgetTokens: number;
  /** Standing notes considered (newest first); default 20. */
  notes: number;
  /** Recalled items per source (notes, earlier sessions); default 5. */
  recall: number;
  /** How far notes are shared (scope.ts); default "sender". */
  share: MemoryShare;
  /**
   * Recall over this conversation's earlier sessions; default true. Under `share = "sender"` only
   * the reader's own lines (a group member's messages and the replies to them, sessions.ts).
   */
  sessionRecall: boolean;
  /** Vector recall over notes with this provider's embedding model; absent = full text only. */
  embeddings?: { provider: EmbeddingProvider; model: string } | undefined;
}

/** Defaults of {@link MemoryPolicy}. */
export const DEFAULT_MEMORY_POLICY: MemoryPolicy = { budgetTokens: 1024, notes: 20, recall: 5, share: "sender", sessionRecall: true };

/** Hits a `session_search` call returns at most. */
export const MAX_SESSION_SEARCH_HITS = 20;

/** Cosine similarity below which a note is not recalled as similar. */
export const MIN_SIMILARITY = 0.35;
/** Notes without a vector embedded along with a turn's message (one batch call), at most. */
export const EMBED_BACKFILL = 63;
/** Longest wait for a turn's embedding call, ms (past it the turn recalls by full text only). */
export const EMBED_TIMEOUT_MS = 5000;

/** Options of {@link MemoryService}. */
export interface MemoryServiceOptions {
  notes: NoteStore;
  log: Pick<SessionLog, "info" | "read">;
  logger: Logger;
  /** The embedder of a provider (vector recall); absent or undefined = that provider has none. */
  embedders?: ((provider: EmbeddingProvider) => Embedder | undefined) | undefined;
  /**
   * Where note vectors are kept across restarts (the store's `memory_vector` table,
   * store/vectors.ts); absent = in process only (refilled by the next turns after a restart).
   */
  vectors?: VectorTable | undefined;
}

const obj = (v: unknown) => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined);

/** The agents' memory (one per runtime). */
export class MemoryService {
  readonly notes: NoteStore;
  private readonly earlier: EarlierSessions;
  /** Note id -> its vector, per embedding model (`provider/model`); loaded from the vector table at a model's first use. */
  private readonly vectors = new Map<string, Map<number, Float32Array>>();
  /** Per embedding model: its vectors loaded from the table (resolves even when the load failed). */
  private readonly loading = new Map<string, Promise<void>>();
  /** Deletes of stored vectors not finished yet ({@link forgetNotes} waits for them). */
  private readonly deletes = new Set<Promise<void>>();
  private readonly embedders = new Map<EmbeddingProvider, Embedder | undefined>();

  constructor(private readonly options: MemoryServiceOptions) {
    this.notes = options.notes;
    this.earlier = new EarlierSessions(options.log);
    // A deleted note's vector goes with it, however it was deleted (tool, RPC, forget).
    this.notes.deleted.add((gone) => {
      for (const vecs of this.vectors.values()) for (const n of gone) vecs.delete(n.id);
      if (options.vectors !== undefined) this.track(options.vectors.delete(gone.map((n) => n.id)));
    });
  }

  /**
   * The memory block for a turn of `scope` answering `query` (docs/memory.md): standing notes,
   * recalled notes, recalled earlier-session lines (under `share = "sender"` only the lines
   * owned by `scope.sender`: in a group, that member's own messages and the replies to them,
   * by the host-written sender stored in `message_received`), within the budget.
   * @throws StoreError when reading the session's earlier events fails
   */
  async assemble(policy: MemoryPolicy, scope: MemoryScope, sessionKey: string, query: string): Promise<AssembledMemory> {
    const standing = this.notes.standing(scope, policy.share, policy.notes);
    const noteHits = this.notes.search(scope, policy.share, query, policy.recall);
    const [sessionHits, vectorHits] = await Promise.all([
      policy.sessionRecall
        ? this.earlier.search(sessionKey, query, policy.recall, policy.share === "sender" ? scope.sender : undefined)
        : ([] as SessionLineHit[]),
      policy.embeddings ? this.similar(policy, scope, query) : ([] as NoteHit[]),
    ]);
    return assembleMemory({ standing, noteHits, sessionHits, vectorHits, budgetTokens: policy.budgetTokens });
  }

  /**
   * Notes similar to `query` by embedding (cosine >= {@link MIN_SIMILARITY}), best first. One
   * embedding call per turn: the message, plus up to {@link EMBED_BACKFILL} readable notes that
   * have no vector yet (written since, or before a restart). A failed or slow call is logged and
   * gives `[]`: the turn recalls by full text only.
   */
  private async similar(policy: MemoryPolicy, scope: MemoryScope, query: string): Promise<NoteHit[]> {
    const { provider, model } = policy.embeddings!;
    let embedder = this.embedders.get(provider);
    if (!this.embedders.has(provider)) this.embedders.set(provider, (embedder = this.options.embedders?.(provider)));
    if (!embedder) return [];
    const key = `${provider}/${model}`;
    let vecs = this.vectors.get(key);
    if (!vecs) this.vectors.set(key, (vecs = new Map()));
    await this.loadVectors(key, vecs);
    const books = this.notes.readableNotes(scope, policy.share);
    const missing: Note[] = [];
    for (const book of books) {
      for (let i = book.length - 1; i >= 0 && missing.length < EMBED_BACKFILL; i--) if (!vecs.has(book[i]!.id)) missing.push(book[i]!);
    }
    let out: Float32Array[];
    try {
      out = await embedder(model, [query, ...missing.map((n) => n.text)], AbortSignal.timeout(EMBED_TIMEOUT_MS));
    } catch (err) {
      this.options.logger.warn(
        { agent: scope.agent, embeddings: key, error: (err as Error).message },
        "memory: the embedding call failed; recalling by full text only",
      );
      return [];
    }
    missing.forEach((n, i) => vecs.set(n.id, out[i + 1]!));
    const table = this.options.vectors;
    // Kept for the next process; the turn does not wait (a failure only costs a re-embedding later).
    if (table !== undefined && missing.length > 0)
      table
        .put(
          key,
          missing.map((n, i) => ({ note: n.id, sum: vectorSum(n), vector: out[i + 1]! })),
        )
        .catch((err: unknown) =>
          this.options.logger.warn(
            { embeddings: key, error: (err as Error).message },
            "memory: cannot store note vectors; they are embedded again after a restart",
          ),
        );
    const q = out[0]!;
    const hits: NoteHit[] = [];
    for (const book of books) {
      for (const note of book) {
        const v = vecs.get(note.id);
        const score = v ? cosine(q, v) : 0;
        if (score >= MIN_SIMILARITY) hits.push({ note, score });
      }
    }
    hits.sort((a, b) => b.score - a.score || b.note.id - a.note.id);
    return hits.slice(0, policy.recall);
  }

  /**
   * Starts reading the stored vectors of these embedding models (`provider/model`) now, so a
   * model's first turn does not wait for them. Never rejects (a failed read is logged).
   */
  preloadVectors(keys: readonly string[]): Promise<void> {
    return Promise.all(
      [...new Set(keys)].map((key) => {
        let vecs = this.vectors.get(key);
        if (!vecs) this.vectors.set(key, (vecs = new Map()));
        return this.loadVectors(key, vecs);
      }),
    ).then(() => {});
  }

  /**
   * Fills `vecs` with the vectors stored for `key` (once per model and process). A stored vector
   * whose note is gone is deleted from the table (a delete that did not reach it, e.g. a crash in
   * between); one made from another text (checksum; an id reused) is not used, and replaced. A failed load is logged: the notes
   * are embedded again as for a store without the table.
   */
  private loadVectors(key: string, vecs: Map<number, Float32Array>): Promise<void> {
    const table = this.options.vectors;
    if (table === undefined) return Promise.resolve();
    let p = this.loading.get(key);
    if (p === undefined) {
      p = table.load(key).then(
        (rows) => {
          const stale: number[] = [];
          for (const r of rows) {
            const note = this.notes.get(r.note);
            if (note === undefined) stale.push(r.note);
            // A vector made from another text (the id was reused) is not used; the note's new one replaces it.
            else if (vectorSum(note) === r.sum && !vecs.has(r.note)) vecs.set(r.note, r.vector);
          }
          if (stale.length > 0) this.track(table.delete(stale));
        },
        (err: unknown) => this.options.logger.warn({ embeddings: key, error: (err as Error).message }, "memory: cannot load stored note vectors"),
      );
      this.loading.set(key, p);
    }
    return p;
  }

  /** Keeps a vector delete until it settles (a failure is logged, and thrown by {@link settleDeletes}). */
  private track(p: Promise<void>): void {
    this.deletes.add(p);
    p.then(
      () => this.deletes.delete(p),
      (err: unknown) => this.options.logger.error({ error: (err as Error).message }, "memory: cannot delete stored note vectors"),
    );
  }

  /**
   * The memory exchange to put before a turn's new message (`[]` when there is nothing). Never
   * rejects: a store failure is logged (warn) and the turn goes on without memory.
   * @param sender who spoke in a group chat; absent = the peer
   */
  async forTurn(policy: MemoryPolicy, agentId: string, sessionKey: string, sender: string | undefined, content: string): Promise<ChatMessage[]> {
    try {
      const p = parseSessionKey(sessionKey);
      const scope: MemoryScope = { agent: agentId, channel: p.channel, account: p.account, peer: p.peer, sender: sender ?? p.peer };
      return (await this.assemble(policy, scope, sessionKey, content)).messages;
    } catch (err) {
      this.options.logger.warn({ agent: agentId, sessionKey, error: (err as Error).message }, "memory recall failed; the turn goes on without it");
      return [];
    }
  }

  /**
   * Runs one call of the built-in `memory` tool (remember / recall / forget) for `scope`. Never
   * throws: bad input and refusals are error results the model sees.
   */
  async memoryTool(input: unknown, scope: MemoryScope, share: MemoryShare): Promise<ToolResult> {
    const o = obj(input);
    const action = o?.action;
    try {
      if (action === "remember") {
        if (typeof o!.note !== "string") return { content: "'remember' needs 'note', a non-empty string", isError: true };
        const note = await this.notes.add(scope, o!.note);
        return { content: `Remembered note #${note.id}.`, isError: false };
      }
      if (action === "recall") {
        const query = typeof o!.query === "string" ? o!.query.trim() : "";
        const notes = query === "" ? this.notes.standing(scope, share, 20) : this.notes.search(scope, share, query, 20).map((h) => h.note);
        if (notes.length === 0) return { content: query === "" ? "No notes yet." : `No note matches '${query.slice(0, 80)}'.`, isError: false };
        return { content: notes.map((n) => `#${n.id}: ${n.text}`).join("\n"), isError: false };
      }
      if (action === "forget") {
        const id = o!.id;
        if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1)
          return { content: "'forget' needs 'id', the number of a note (as shown by recall)", isError: true };
        const gone = await this.notes.delete([id], (n) => readable(n, scope, share));
        // A failed vector delete is logged; the row is swept at the next start (its note is gone).
        await this.settleDeletes().catch(() => {});
        return gone.length > 0 ? { content: `Forgot note #${id}.`, isError: false } : { content: `there is no note #${id}`, isError: true };
      }
      return { content: '\'action\' must be "remember", "recall" or "forget"', isError: true };
    } catch (err) {
      if (err instanceof NoteError) return { content: err.message, isError: true };
      this.options.logger.error({ agent: scope.agent, error: (err as Error).message }, "memory tool: the note store failed");
      return { content: "memory store error: the note could not be saved", isError: true };
    }
  }

  /**
   * Runs one `session_search` call: BM25 over this conversation's own session (earlier sessions
   * and the current one), best first. Never throws for bad input (an error result). With
   * `owner` (a group member under `scope = "sender"`), only that owner's lines (sessions.ts).
   * @throws StoreError when the store fails
   */
  async sessionSearch(input: unknown, sessionKey: string, owner?: string): Promise<ToolResult> {
    const o = obj(input);
    const query = typeof o?.query === "string" ? o.query.trim() : "";
    if (query === "") return { content: "session_search needs 'query', a non-empty string", isError: true };
    const limit = typeof o?.limit === "number" && Number.isSafeInteger(o.limit) && o.limit > 0 ? Math.min(o.limit, MAX_SESSION_SEARCH_HITS) : 5;
    const info = await this.options.log.info(sessionKey);
    if (!info) return { content: "No past messages in this conversation.", isError: false };
    const from = Math.max(0, info.lastSeq - MAX_EARLIER_EVENTS);
    const all = textLines(await this.options.log.read(sessionKey, { afterSeq: from, limit: info.lastSeq - from }));
    const { lines, index } = indexLines(owner === undefined ? all : all.filter((l) => l.owner === owner));
    const hits = index.search(query, limit);
    if (hits.length === 0) return { content: `Nothing in this conversation's past matches '${query.slice(0, 80)}'.`, isError: false };
    const out = hits.map((h) => {
      const l = lines.get(h.id)!;
      const when = new Date(l.at).toISOString().slice(0, 16).replace("T", " ");
      const earlier = l.seq <= info.resetSeq ? "earlier session" : "this session";
      return `[${earlier}, seq ${l.seq}, ${l.role}, ${when} UTC] ${l.text.length > 500 ? `${l.text.slice(0, 499)}…` : l.text}`;
    });
    return { content: out.join("\n"), isError: false };
  }

  /** Drops what is cached about a session (deleted or forgotten). */
  dropSession(sessionKey: string): void {
    this.earlier.drop(sessionKey);
  }

  /**
   * Deletes every note matching `filter` and their vectors (in process and in the vector table);
   * returns how many notes.
   * @throws Error when the notes file cannot be written; StoreError when the vectors cannot be deleted
   */
  async forgetNotes(filter: ScopeFilter): Promise<number> {
    const n = await this.notes.deleteWhere(filter);
    await this.settleDeletes();
    return n;
  }

  /**
   * Waits for the vector deletes started so far.
   * @throws StoreError when one failed (it was logged too)
   */
  async settleDeletes(): Promise<void> {
    const pending = [...this.deletes];
    this.deletes.clear();
    await Promise.all(pending);
  }
}
