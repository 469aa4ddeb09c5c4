/**
 * A {@link SessionLog} on NATS JetStream: session state shared by every gateway process on one
 * NATS (the scale-out deployment in docs/bus.md).
 *
 * Layout (namespace `ns`, default `default`):
 * - stream `EXOCLAW_SESSIONS_<ns>`, subjects `exoclaw.session.<ns>.<escaped session key>`, file
 *   storage. One message per append (so an append is atomic), MessagePack
 *   `{ prev, events, info, open }`: `prev` is the stream sequence of the session's previous
 *   message (0 for the first), `events` the stored events, `info` the {@link SessionInfo} after
 *   this append, `open` the open-turn count. The session's last message is its current state.
 * - Appends publish with `Nats-Expected-Last-Subject-Sequence` = the sequence of the message they
 *   were computed from: the server rejects an append computed from stale state, which is
 *   `expectedSeq` across processes. Within a process appends to one session are queued, so the
 *   cached head is usually current and an append costs one round trip. Each append carries a
 *   fresh `Nats-Msg-Id`; while NATS is unreachable its publish is retried under that id for up
 *   to `outageRetryMs` (a turn that already has its model answer stores it when NATS is back).
 * - KV bucket `exoclaw_session_keys_<ns>`: one entry per platform message id / idempotency key
 *   (SHA-256 of the key), value `{ sessionKey, seq, at }`, claimed with `create` (atomic) before
 *   the append is published and released if it fails. A claim whose event never appeared and
 *   that is older than `claimTimeoutMs` (a process died between claim and publish) is taken over.
 * - Reads walk a session's messages backwards through `prev` from its last message (message get
 *   by sequence), stopping at what this process has cached.
 *
 * Costs: `listSessions`/`countSessions` use the stream's per-subject state (one request);
 * `search` and `pendingTurns` read every session (fine for thousands of sessions, not millions:
 * put a search index next to it for that). `search` matches whole lower-cased words like the
 * in-memory log.
 */
import { createHash, randomUUID } from "node:crypto";
import {
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
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
  type PreparedAppend,
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
// The bus payload configuration (standard MessagePack, protocol/msgpack.mjs) and the bus's subject
// token escaping (util/), so batches and subjects read the same as before the move from bus/.
import { busMsgpack } from "../protocol/msgpack.mjs";
import { errorMessage, escapeToken, KeyedChain, unescapeToken } from "../util/index.js";

/** Options of {@link createJetStreamSessionLog}. */
export interface JetStreamSessionLogOptions extends SessionLogOptions {
  /** NATS server URL(s); or pass `connection`. */
  servers?: string | string[];
  /** An open connection to use (not closed by `close()`). */
  connection?: NatsConnection;
  /** Separates independent logs on one server ([A-Za-z0-9_-]); default `default`. */
  namespace?: string;
  /** Request timeout, ms; default 5,000. */
  timeoutMs?: number;
  /** Age after which a dedupe-key claim without its event is considered abandoned, ms; default 30,000. */
  claimTimeoutMs?: number;
  /**
   * How long an append keeps retrying its publish while NATS is unreachable (timeouts, a
   * dropped connection, JetStream 503) before it fails `unavailable`, ms; default 30,000.
   * A turn whose model call already answered then stores that answer when NATS is back instead
   * of failing (and being run again, model call included). 0: fail at the first error.
   */
  outageRetryMs?: number;
}

/** Default {@link JetStreamSessionLogOptions.outageRetryMs}. */
export const DEFAULT_OUTAGE_RETRY_MS = 30_000;

/** Whether a publish error means "NATS is not there right now" rather than "this append is refused". */
function transientPublishError(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.status === 503 || err.status === 408;
  return !(err instanceof StoreError);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Batch {
  prev: number;
  events: SessionEvent[];
  info: SessionInfo;
  open: number;
}

interface State {
  /** Stream sequence of the session's last message. */
  streamSeq: number;
  events: SessionEvent[];
  info: SessionInfo;
  open: number;
}

interface Claim {
  sessionKey: string;
  seq: number;
  at: number;
}

const copy = <T>(v: T): T => structuredClone(v);

function wrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && (err.code === 10071 || err.code === 10164);
}

function unavailable(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError("unavailable", `NATS JetStream: ${errorMessage(err)}`, { cause: err });
}

class JetStreamSessionLog implements SessionLog {
  readonly kind = "jetstream";
  private closed = false;
  private readonly cache = new Map<string, State>();
  /** One process's calls per session, in call order. */
  private readonly queues = new KeyedChain();
  private readonly root: string;
  private readonly now: () => number;

  constructor(
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly stream: string,
    namespace: string,
    private readonly options: JetStreamSessionLogOptions,
  ) {
    this.root = `exoclaw.session.${namespace}`;
    this.now = options.now ?? Date.now;
  }

  private open(): void {
    if (this.closed) throw new StoreError("closed", "the session log is closed");
  }

  private subject(sessionKey: string): string {
    return `${this.root}.${escapeToken(sessionKey)}`;
  }

  /** KV key of a claim: `p` platform message id, `i` idempotency key; `r` a settled reply (the outbox). */
  private static keyId(kind: "p" | "i" | "r", key: string): string {
    return createHash("sha256").update(`${kind}\u0000${key}`).digest("base64url");
  }

  /** The session's last message, or undefined for an unknown (or deleted) session. */
  private async head(sessionKey: string): Promise<{ seq: number; batch: Batch } | undefined> {
    try {
      const m = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject(sessionKey) });
      if (!m) return undefined;
      return { seq: m.seq, batch: busMsgpack.unpack(m.data) as Batch };
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === 10037) return undefined;
      throw unavailable(err);
    }
  }

  /** The session's state, read from the server (using the cache for what it already has). */
  private async load(sessionKey: string): Promise<State | undefined> {
    const head = await this.head(sessionKey);
    if (!head) {
      this.cache.delete(sessionKey);
      return undefined;
    }
    const cached = this.cache.get(sessionKey);
    if (cached && cached.streamSeq === head.seq) return cached;
    const batches: Batch[] = [head.batch];
    let prev = head.batch.prev;
    while (prev !== 0 && !(cached && prev === cached.streamSeq)) {
      let m;
      try {
        m = await this.jsm.streams.getMessage(this.stream, { seq: prev });
      } catch (err) {
        throw unavailable(err);
      }
      if (!m) throw new StoreError("internal", `session ${sessionKey}: message ${prev} is missing from ${this.stream}`);
      const b = busMsgpack.unpack(m.data) as Batch;
      batches.push(b);
      prev = b.prev;
    }
    const base = cached && prev !== 0 && prev === cached.streamSeq ? cached.events : [];
    const events = base.concat(...batches.reverse().map((b) => b.events));
    const state: State = { streamSeq: head.seq, events, info: head.batch.info, open: head.batch.open };
    this.cache.set(sessionKey, state);
    return state;
  }

  /** Runs `fn` after every earlier queued call for this session (appends of one process are serialized). */
  private serial<T>(sessionKey: string, fn: () => Promise<T>): Promise<T> {
    return this.queues.run(sessionKey, fn);
  }

  /** The stored event a claim points to, if it is there and carries that key. */
  private async claimedEvent(claim: Claim, kind: "p" | "i", key: string): Promise<SessionEventOf<"message_received"> | undefined> {
    const s = await this.load(claim.sessionKey);
    const e = s?.events[claim.seq - 1];
    if (!e || e.kind !== "message_received") return undefined;
    const k =
      kind === "i"
        ? e.data.idempotencyKey
        : e.data.platformMessageId !== undefined
          ? platformKey(e.data.channel, e.data.account, e.data.platformMessageId)
          : undefined;
    return k === key ? e : undefined;
  }

  /** Whether a dedupe key is taken: by a stored event, or by a fresh claim of an append in flight. */
  private async taken(kind: "p" | "i", key: string): Promise<{ entry: KvEntry | null; taken: boolean }> {
    let entry: KvEntry | null;
    try {
      entry = await this.kv.get(JetStreamSessionLog.keyId(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
    if (!entry || entry.operation !== "PUT") return { entry, taken: false };
    const claim = busMsgpack.unpack(entry.value) as Claim;
    if (await this.claimedEvent(claim, kind, key)) return { entry, taken: true };
    const fresh = Date.now() - claim.at < (this.options.claimTimeoutMs ?? 30_000);
    return { entry, taken: fresh };
  }

  private duplicate(kind: "p" | "i", key: string): DuplicateEventError {
    return kind === "i" ? new DuplicateEventError("idempotencyKey", key) : new DuplicateEventError("platformMessageId", (JSON.parse(key) as string[])[2]!);
  }

  /** Claims every dedupe key of the batch; on failure releases what it claimed and throws. */
  private async claim(sessionKey: string, stored: SessionEvent[]): Promise<Array<{ id: string; rev: number }>> {
    const wanted: Array<{ kind: "p" | "i"; key: string; seq: number }> = [];
    for (const e of stored) {
      if (e.kind !== "message_received") continue;
      if (e.data.platformMessageId !== undefined)
        wanted.push({ kind: "p", key: platformKey(e.data.channel, e.data.account, e.data.platformMessageId), seq: e.seq });
      if (e.data.idempotencyKey !== undefined) wanted.push({ kind: "i", key: e.data.idempotencyKey, seq: e.seq });
    }
    const claims: Array<{ id: string; rev: number }> = [];
    try {
      for (const w of wanted) {
        const id = JetStreamSessionLog.keyId(w.kind, w.key);
        const value = busMsgpack.pack({ sessionKey, seq: w.seq, at: Date.now() } satisfies Claim);
        try {
          claims.push({ id, rev: await this.kv.create(id, value) });
          continue;
        } catch {
          // exists: taken, or an abandoned claim we may take over
        }
        const { entry, taken } = await this.taken(w.kind, w.key);
        if (taken || !entry) throw this.duplicate(w.kind, w.key);
        try {
          claims.push({ id, rev: await this.kv.update(id, value, entry.revision) });
        } catch {
          throw this.duplicate(w.kind, w.key);
        }
      }
      return claims;
    } catch (err) {
      await this.release(claims);
      throw err instanceof StoreError ? err : unavailable(err);
    }
  }

  private async release(claims: Array<{ id: string; rev: number }>): Promise<void> {
    for (const c of claims) await this.kv.delete(c.id, { previousSeq: c.rev }).catch(() => {});
  }

  async append(sessionKey: string, events: readonly NewSessionEvent[], options: AppendOptions = {}): Promise<number[]> {
    return (await this.appendEvents(sessionKey, events, options)).map((e) => e.seq);
  }

  async appendEvents(sessionKey: string, events: readonly NewSessionEvent[], options: AppendOptions = {}): Promise<SessionEvent[]> {
    this.open();
    const plan = prepareAppend(sessionKey, events, this.options);
    return this.serial(sessionKey, () => this.appendNow(sessionKey, plan, options));
  }

  private async appendNow(sessionKey: string, plan: PreparedAppend, options: AppendOptions): Promise<SessionEvent[]> {
    for (let attempt = 0; ; attempt++) {
      this.open();
      let s = this.cache.get(sessionKey);
      let fromServer = false;
      if (!s) {
        s = await this.load(sessionKey);
        fromServer = true;
      }
      let last = s?.info.lastSeq ?? 0;
      if (options.expectedSeq !== undefined && options.expectedSeq !== last && !fromServer) {
        s = await this.load(sessionKey); // the cache may be behind another process
        last = s?.info.lastSeq ?? 0;
      }
      if (options.expectedSeq !== undefined && options.expectedSeq !== last) throw new SeqConflictError(sessionKey, options.expectedSeq, last);
      if (plan.events.length === 0) return [];
      for (const k of plan.platformKeys) if ((await this.taken("p", k)).taken) throw this.duplicate("p", k);
      for (const k of plan.idempotencyKeys) if ((await this.taken("i", k)).taken) throw this.duplicate("i", k);
      if (last < plan.minLastSeq) throw compactionRangeError(last, plan.minLastSeq);

      const t = this.now();
      const info: SessionInfo = s ? copy(s.info) : { sessionKey, ...plan.parts, lastSeq: 0, resetSeq: 0, createdAt: t, updatedAt: t };
      // a deep copy: the cache must not share objects with the caller's events
      const stored = copy(plan.events.map((e, i) => ({ sessionKey, seq: last + 1 + i, ...e }) as SessionEvent));
      info.lastSeq = last + plan.events.length;
      info.updatedAt = t;
      const open = Math.max(plan.openFloor, (s?.open ?? 0) + plan.openDelta);
      if (plan.lastResetIndex >= 0) {
        info.resetSeq = last + 1 + plan.lastResetIndex;
        delete info.compaction;
      }
      if (plan.lastCompactionIndex >= 0) {
        const c = plan.events[plan.lastCompactionIndex] as SessionEventOf<"compaction">;
        info.compaction = { seq: last + 1 + plan.lastCompactionIndex, upToSeq: c.data.upToSeq };
      }
      const claims = await this.claim(sessionKey, stored);
      const batch: Batch = { prev: s?.streamSeq ?? 0, events: stored, info, open };
      let seq: number;
      try {
        seq = await this.publishBatch(sessionKey, batch, s?.streamSeq ?? 0);
      } catch (err) {
        await this.release(claims);
        if (wrongLastSequence(err) && attempt < 100) {
          this.cache.delete(sessionKey); // another process appended: recompute from its state
          continue;
        }
        throw unavailable(err);
      }
      this.cache.set(sessionKey, { streamSeq: seq, events: [...(s?.events ?? []), ...stored], info, open });
      return copy(stored);
    }
  }

  /**
   * Publishes one append, riding out a NATS outage: a transient failure is retried with the same
   * message id (so a publish that did land before its ack was lost is dropped as a duplicate by the
   * stream's duplicate window, and its sequence returned) and the same expected last sequence (so
   * an append computed on stale state is still refused), for up to `outageRetryMs`.
   * @returns the stream sequence of the stored message
   * @throws the last publish error (wrong last sequence at once; transient ones after the deadline)
   */
  private async publishBatch(sessionKey: string, batch: Batch, lastSubjectSequence: number): Promise<number> {
    const msgID = randomUUID(); // one id per computed append: never shared with another process's batch
    const deadline = Date.now() + (this.options.outageRetryMs ?? DEFAULT_OUTAGE_RETRY_MS);
    const payload = busMsgpack.pack(batch);
    for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
      try {
        const ack = await this.js.publish(this.subject(sessionKey), payload, {
          msgID,
          expect: { lastSubjectSequence },
          timeout: this.options.timeoutMs ?? 5_000,
        });
        return ack.seq;
      } catch (err) {
        if (this.closed || wrongLastSequence(err) || !transientPublishError(err) || Date.now() + wait > deadline) throw err;
        await sleep(wait);
      }
    }
  }

  async read(sessionKey: string, options: ReadOptions = {}): Promise<SessionEvent[]> {
    this.open();
    parseSessionKey(sessionKey);
    const { after, count } = readBounds(options);
    const events = (await this.load(sessionKey))?.events ?? [];
    return copy(events.slice(after, Math.min(events.length, after + count)));
  }

  async readHistory(sessionKey: string): Promise<SessionEvent[]> {
    this.open();
    parseSessionKey(sessionKey);
    const s = await this.load(sessionKey);
    if (!s) return [];
    return copy(s.events.slice(historyStart(s.info.resetSeq, s.info.compaction)));
  }

  async info(sessionKey: string): Promise<SessionInfo | undefined> {
    this.open();
    parseSessionKey(sessionKey);
    const head = await this.head(sessionKey);
    return head ? copy(head.batch.info) : undefined;
  }

  /** Every stored session key, sorted. */
  private async keys(): Promise<string[]> {
    try {
      const info = await this.jsm.streams.info(this.stream, { subjects_filter: `${this.root}.>` });
      return Object.keys(info.state.subjects ?? {})
        .map((s) => unescapeToken(s.slice(this.root.length + 1)))
        .sort();
    } catch (err) {
      throw unavailable(err);
    }
  }

  async listSessions(options: ListSessionsOptions = {}): Promise<SessionPage> {
    this.open();
    const limit = pageLimit(options.limit);
    const after = options.cursor !== undefined ? decodeCursor(options.cursor) : undefined;
    const page: SessionInfo[] = [];
    for (const key of await this.keys()) {
      if (after !== undefined && key <= after) continue;
      const parts = parseSessionKey(key);
      if (options.agent !== undefined && parts.agent !== options.agent) continue;
      if (options.channel !== undefined && parts.channel !== options.channel) continue;
      if (options.peer !== undefined && parts.peer !== options.peer) continue;
      if (page.length === limit) return { sessions: page, nextCursor: encodeCursor(page[page.length - 1]!.sessionKey) };
      const head = await this.head(key);
      if (head) page.push(copy(head.batch.info));
    }
    return { sessions: page };
  }

  async countSessions(): Promise<number> {
    this.open();
    return (await this.keys()).length;
  }

  async reset(sessionKey: string, reason?: string): Promise<number> {
    const [seq] = await this.append(sessionKey, [{ kind: "reset", data: reason === undefined ? {} : { reason } }]);
    return seq!;
  }

  async delete(sessionKey: string): Promise<boolean> {
    this.open();
    parseSessionKey(sessionKey);
    return this.serial(sessionKey, async () => {
      const s = await this.load(sessionKey);
      if (!s) return false;
      await this.erase(sessionKey, s);
      return true;
    });
  }

  /** Purges a loaded session's messages and frees its dedupe keys and reply entries. */
  private async erase(sessionKey: string, s: State): Promise<void> {
    try {
      for (const e of s.events) {
        if (e.kind !== "message_received") continue;
        if (e.data.platformMessageId !== undefined)
          await this.kv.purge(JetStreamSessionLog.keyId("p", platformKey(e.data.channel, e.data.account, e.data.platformMessageId)));
        if (e.data.idempotencyKey !== undefined) await this.kv.purge(JetStreamSessionLog.keyId("i", e.data.idempotencyKey));
        if (e.data.awaitsReply === true) await this.kv.purge(JetStreamSessionLog.keyId("r", e.data.idempotencyKey!));
      }
      await this.jsm.streams.purge(this.stream, { filter: this.subject(sessionKey) });
    } catch (err) {
      throw unavailable(err);
    }
    this.cache.delete(sessionKey);
  }

  /** True when one of the session's owed replies (`awaitsReply`) has no settled entry. */
  private async owesReply(s: State): Promise<boolean> {
    for (const e of s.events) {
      if (e.kind !== "message_received" || e.data.awaitsReply !== true) continue;
      let settled: KvEntry | null;
      try {
        settled = await this.kv.get(JetStreamSessionLog.keyId("r", e.data.idempotencyKey!));
      } catch (err) {
        throw unavailable(err);
      }
      if (!settled || settled.operation !== "PUT") return true;
    }
    return false;
  }

  /**
   * Retention (see `SessionLog.prune`): reads each session's head (one request per session);
   * an idle one is loaded and removed in its queue after re-reading it there. Another gateway
   * appending to it at that moment can still race the purge (as with `delete`).
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    this.open();
    const cutoff = pruneCutoff(options);
    const result: PruneResult = { sessions: 0, events: 0, kept: 0 };
    for (const key of await this.keys()) {
      const head = await this.head(key);
      if (!head || head.batch.info.updatedAt >= cutoff) continue;
      if (options.signal?.aborted) break;
      const out = await this.serial(key, async () => {
        const s = await this.load(key);
        if (!s || s.info.updatedAt >= cutoff) return "fresh" as const;
        if (s.open > 0 || (await this.owesReply(s))) return "kept" as const;
        if (options.dryRun !== true) {
          await this.erase(key, s);
          options.onRemoved?.(key);
        }
        return s.info.lastSeq;
      });
      if (out === "kept") result.kept++;
      else if (out !== "fresh") {
        result.sessions++;
        result.events += out;
      }
    }
    return result;
  }

  async search(query: string, options: SearchOptions = {}): Promise<SearchHit[]> {
    this.open();
    const limit = searchLimit(options.limit);
    const terms = [...new Set(tokenize(String(query)))];
    if (terms.length === 0) return [];
    if (options.sessionKey !== undefined) parseSessionKey(options.sessionKey);
    const keys = options.sessionKey !== undefined ? [options.sessionKey] : await this.keys();
    const hits: SearchHit[] = [];
    for (const key of keys) {
      const s = await this.load(key);
      for (const e of s?.events ?? []) {
        const score = tokenMatchScore(e, terms);
        if (score !== undefined) hits.push({ event: e, score });
      }
    }
    hits.sort(compareHits);
    return hits.slice(0, limit).map((h) => ({ event: copy(h.event), score: h.score }));
  }

  private async findClaimed(kind: "p" | "i", key: string): Promise<SessionEventOf<"message_received"> | undefined> {
    this.open();
    let entry: KvEntry | null;
    try {
      entry = await this.kv.get(JetStreamSessionLog.keyId(kind, key));
    } catch (err) {
      throw unavailable(err);
    }
    if (!entry || entry.operation !== "PUT") return undefined;
    const e = await this.claimedEvent(busMsgpack.unpack(entry.value) as Claim, kind, key);
    return e ? copy(e) : undefined;
  }

  findByPlatformMessageId(channel: string, account: string, platformMessageId: string): Promise<SessionEventOf<"message_received"> | undefined> {
    return this.findClaimed("p", platformKey(channel, account, platformMessageId));
  }

  findByIdempotencyKey(idempotencyKey: string): Promise<SessionEventOf<"message_received"> | undefined> {
    return this.findClaimed("i", idempotencyKey);
  }

  async pendingTurns(): Promise<SessionEventOf<"message_received">[]> {
    this.open();
    const out: SessionEventOf<"message_received">[] = [];
    for (const key of await this.keys()) {
      const head = await this.head(key);
      if (!head || head.batch.open <= 0) continue;
      const s = await this.load(key);
      if (s) out.push(...pendingMessages(s.events.slice(s.info.resetSeq)));
    }
    return copy(out);
  }

  /**
   * The reply outbox, minimal: an owed reply is a `message_received` with `awaitsReply` (in the
   * session's append, so atomic with the message); settling puts a KV entry `r` for its key.
   * Reads every session, like `pendingTurns`.
   */
  async pendingReplies(): Promise<SessionEventOf<"message_received">[]> {
    this.open();
    const out: SessionEventOf<"message_received">[] = [];
    for (const key of (await this.keys()).sort()) {
      const s = await this.load(key);
      for (const e of s?.events ?? []) {
        if (e.kind !== "message_received" || e.data.awaitsReply !== true) continue;
        let settled: KvEntry | null;
        try {
          settled = await this.kv.get(JetStreamSessionLog.keyId("r", e.data.idempotencyKey!));
        } catch (err) {
          throw unavailable(err);
        }
        if (!settled || settled.operation !== "PUT") out.push(e);
      }
    }
    return copy(out);
  }

  async settleReplies(idempotencyKeys: readonly string[]): Promise<void> {
    this.open();
    try {
      for (const k of idempotencyKeys) await this.kv.put(JetStreamSessionLog.keyId("r", k), new Uint8Array([1]));
    } catch (err) {
      throw unavailable(err);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queues.idle();
    if (this.ownsConnection) await this.nc.close().catch(() => {});
  }
}

/**
 * Opens (creating the stream and bucket if needed) a session log on NATS JetStream.
 * @throws StoreError `invalid_argument` (bad namespace, neither servers nor connection),
 *   `unavailable` (NATS unreachable or JetStream disabled)
 */
export async function createJetStreamSessionLog(options: JetStreamSessionLogOptions): Promise<SessionLog> {
  const namespace = options.namespace ?? "default";
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(namespace))
    throw new StoreError("invalid_argument", `namespace must match [A-Za-z0-9_-]{1,64}, got ${JSON.stringify(namespace)}`);
  if (!options.connection && !options.servers) throw new StoreError("invalid_argument", "give servers or a connection");
  let nc: NatsConnection;
  try {
    // reconnect for ever (the client's default gives up after 10 attempts, ~20 s: a longer
    // outage would leave the store closed for good)
    nc = options.connection ?? (await connect({ servers: options.servers!, timeout: options.timeoutMs ?? 5_000, reconnect: true, maxReconnectAttempts: -1 }));
  } catch (err) {
    throw unavailable(err);
  }
  try {
    const timeout = options.timeoutMs ?? 5_000;
    const jsm = await jetstreamManager(nc, { timeout });
    const stream = `EXOCLAW_SESSIONS_${namespace}`;
    try {
      await jsm.streams.info(stream);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err;
      await jsm.streams
        .add({
          name: stream,
          subjects: [`exoclaw.session.${namespace}.>`],
          storage: StorageType.File,
          retention: RetentionPolicy.Limits,
          discard: DiscardPolicy.New,
          description: "exoclaw session logs",
        })
        .catch(async (e) => {
          await jsm.streams.info(stream).catch(() => {
            throw e;
          });
        });
    }
    const js = jetstream(nc, { timeout });
    const kvm = new Kvm(js);
    const bucket = `exoclaw_session_keys_${namespace}`;
    let kv: KV;
    try {
      kv = await kvm.create(bucket, { history: 1, storage: StorageType.File });
    } catch {
      kv = await kvm.open(bucket);
    }
    return new JetStreamSessionLog(nc, !options.connection, js, jsm, kv, stream, namespace, options);
  } catch (err) {
    if (!options.connection) await nc.close().catch(() => {});
    throw unavailable(err);
  }
}
