import type { StoreHealth } from "./errors.js";
// ---------------------------------------------------------------------------------------------
// Event-sourced sessions
// ---------------------------------------------------------------------------------------------

/** Why a model turn stopped; mirrors the agent's `StopReason` plus room for future values. */
export type TurnStopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "refusal" | "other" | (string & {});

/**
 * The payload of each event kind.
 *
 * - `message_received`: a user's message arrived. `platformMessageId` (unique per channel +
 *   account) and `idempotencyKey` (unique per store) are dedupe keys; appending a second event
 *   with a key already stored fails with {@link DuplicateEventError}. `thread` is the platform
 *   thread the message came in (so a reply, even one written after a crash, goes there).
 * - `turn_started` / `turn_ended`: bracket one agent run. A turn is *completed* when its
 *   `turn_ended` is stored; an `error` event instead marks it failed. `data.runId` is the run
 *   that answers the message: the event's own `runId`, except for a message folded into a later
 *   message's turn (agent queue mode `collect`), whose events carry its own `runId` and name
 *   that turn's run in `data.runId`.
 * - `assistant_text`: model text (one event per model call, or several that concatenate).
 * - `tool_use` / `tool_result`: a tool call and its outcome, matched by id.
 * - `usage`: tokens of one model call; `failover` lists the attempts of that call that another
 *   replaced (the next model of the agent's chain, or the same one after a broken stream), in
 *   order: `from`/`to` as `provider/model`, `reason` (rate_limited, server_error, unreachable,
 *   …), `discard` (the replaced attempt's partial output was dropped, not stored).
 *   Since metering, also the `provider` and `model` that
 *   answered, the cache tokens (input tokens billed at cache rates, not in `inputTokens`) and
 *   `costUsd` at the price table of the time (all optional: older events have none of them).
 * - `error`: the turn failed (`code` is the JSON-RPC error code the runtime raised).
 * - `compaction`: `summary` replaces every event with `seq <= upToSeq` in the projection.
 * - `reset`: logically clears the history: the projection and pending turns ignore everything up
 *   to and including the latest reset. Written by `SessionLog.reset`; events stay readable.
 * - `approval_pending`: the run parked tool call `toolUseId` (`tool`, `input`) until a person
 *   answers approval `id` (host/src/agent/approvals/); `approver` names who may answer
 *   (`<channel>:<account>:<peer>`, absent = admin clients only); `expiresAt` (ms since the epoch)
 *   is when it is denied. Written with the run's events so far (the run can resume after a restart).
 * - `approval_resolved`: approval `id` was answered: `approved`, by whom (`by`: `<channel>:<account>:<peer>`,
 *   `rpc`, or `timeout`).
 */
export interface EventDataMap {
  message_received: {
    content: string;
    channel: string;
    account: string;
    peer: string;
    platformMessageId?: string;
    idempotencyKey?: string;
    thread?: string;
    /**
     * Who wrote it in a group (platform user id) and their display name, from the channel
     * plugin's parse (host-written: the model sees them as metadata it cannot forge).
     */
    sender?: string;
    senderName?: string;
    /**
     * The channels service owes this message a reply (or failure notice) through the reply
     * outbox: the store lists it in `pendingReplies` until `settleReplies` names its
     * `idempotencyKey` (required with it). Absent: nobody tracks its reply in the store.
     */
    awaitsReply?: true;
    /**
     * The message's images, stored content-addressed under `<stateDir>/media/<sha256>`
     * (agent/media-store.ts): later turns rebuild their image blocks from these. Absent: none.
     */
    media?: { sha256: string; mime: string; bytes: number }[];
  };
  turn_started: { runId: string };
  assistant_text: { text: string };
  tool_use: { id: string; name: string; input: unknown };
  tool_result: { toolUseId: string; content: string; isError: boolean };
  usage: {
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens?: number;
    cacheWriteTokens?: number;
    costUsd?: number;
    provider?: string;
    model?: string;
    failover?: { from: string; to: string; reason: string; discard: boolean }[];
  };
  error: { code: number; message: string };
  turn_ended: { runId: string; stopReason: TurnStopReason };
  compaction: { summary: string; upToSeq: number };
  reset: { reason?: string };
  approval_pending: { id: string; toolUseId: string; tool: string; input: unknown; approver?: string; expiresAt: number };
  approval_resolved: { id: string; approved: boolean; by: string };
}

/** The kinds of session events. */
export type EventKind = keyof EventDataMap;

/** Every event kind, in a fixed order (useful for validation and schema checks). */
export const EVENT_KINDS: readonly EventKind[] = [
  "message_received",
  "turn_started",
  "assistant_text",
  "tool_use",
  "tool_result",
  "usage",
  "error",
  "turn_ended",
  "compaction",
  "reset",
  "approval_pending",
  "approval_resolved",
];

/**
 * A stored event. `seq` numbers a session's events 1, 2, 3, … with no gaps; `at` is the time
 * it happened (ms since the Unix epoch); `runId` ties events to one agent run.
 */
export type SessionEvent = {
  [K in EventKind]: { sessionKey: string; seq: number; kind: K; data: EventDataMap[K]; at: number; runId?: string };
}[EventKind];

/** An event to append: the store assigns `sessionKey` and `seq`; `at` defaults to now (ms epoch). */
export type NewSessionEvent = {
  [K in EventKind]: { kind: K; data: EventDataMap[K]; at?: number; runId?: string };
}[EventKind];

/** The stored event of one kind. */
export type SessionEventOf<K extends EventKind> = Extract<SessionEvent, { kind: K }>;

/** The parts of a session key `agent:<agent>:<channel>:<account>:<peer>`, unescaped. */
export interface SessionKeyParts {
  agent: string;
  channel: string;
  account: string;
  peer: string;
}

/** What the store knows about one session (its key's parts are stored as columns). */
export interface SessionInfo extends SessionKeyParts {
  sessionKey: string;
  /** Seq of the newest event (= number of events). */
  lastSeq: number;
  /** Seq of the latest `reset` marker; 0 when never reset. */
  resetSeq: number;
  /** The latest `compaction` after the latest reset, if any. */
  compaction?: { seq: number; upToSeq: number };
  /** First and latest append, ms since the Unix epoch. */
  createdAt: number;
  updatedAt: number;
}

/** Options of {@link SessionLog.append}. */
export interface AppendOptions {
  /**
   * Optimistic concurrency: the caller's idea of the session's current last seq (0 for a new
   * session). When it differs, nothing is written and {@link SeqConflictError} is thrown.
   */
  expectedSeq?: number;
  /**
   * Called at most once, when the append passed every check that can refuse it (seq, dedupe keys,
   * compaction range) and its events are being written: from then on only a write failure (a full
   * disk, an I/O error) can still reject it. Nothing may be acknowledged on this signal (that
   * waits for the append's promise, i.e. durability); it lets a caller start work that depends on
   * the append being accepted, such as a turn's model call, while the write is in flight. A store
   * may not call it (its promise is then the only signal); a refused append never calls it.
   */
  onChecked?: () => void;
}

/** Options of {@link SessionLog.read}. */
export interface ReadOptions {
  /** Return events with `seq > afterSeq`; default 0 (from the start). */
  afterSeq?: number;
  /** At most this many events; default: all. Page on with `afterSeq` = the last seq returned. */
  limit?: number;
}

/** Options of {@link SessionLog.listSessions}. Filters compare the unescaped key parts exactly. */
export interface ListSessionsOptions {
  agent?: string;
  channel?: string;
  peer?: string;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Page size; default 100, at most 1000. */
  limit?: number;
}

/** One page of sessions, ordered by session key. `nextCursor` is absent on the last page. */
export interface SessionPage {
  sessions: SessionInfo[];
  nextCursor?: string;
}

/** Options of {@link SessionLog.prune}. */
export interface PruneOptions {
  /**
   * The cutoff, ms since the Unix epoch: a session whose last append (`SessionInfo.updatedAt`)
   * is older than this (`updatedAt < idleBeforeMs`) is removed, unless it has unfinished work.
   */
  idleBeforeMs: number;
  /** Count what would go without removing anything; default false. */
  dryRun?: boolean;
  /**
   * Called with each removed session's key right after its removal, before any later call on
   * that session runs (e.g. to drop a cache of its history). Not called on a dry run.
   */
  onRemoved?: (sessionKey: string) => void;
  /** Stops before the next session once aborted; the result counts what was done until then. */
  signal?: AbortSignal;
}

/** What {@link SessionLog.prune} removed (or, with `dryRun`, would remove). */
export interface PruneResult {
  /** Sessions removed. */
  sessions: number;
  /** Their events (the sum of their `lastSeq`). */
  events: number;
  /** Sessions idle since before the cutoff but kept: a turn not finished or a reply still owed. */
  kept: number;
}

/** Options of {@link SessionLog.search}. */
export interface SearchOptions {
  /** At most this many hits; default 20, at most 200. */
  limit?: number;
  /** Only this session. */
  sessionKey?: string;
}

/** A search hit: the event and a relevance score (higher is better; comparable within one result). */
export interface SearchHit {
  event: SessionEvent;
  score: number;
}

/**
 * A durable, append-only log of session events. Every method throws {@link StoreError} (or a
 * subclass) for store faults: `closed` after `close()`, `invalid_argument` for a malformed
 * session key or event, `unavailable` when the database cannot be reached.
 *
 * **Reset** appends a `reset` marker (it does not delete): seqs keep growing, earlier events stay
 * readable by `read` and `search`, dedupe keys stay taken, and the projection, `readHistory` and
 * `pendingTurns` ignore everything up to the marker. Use `delete` to erase a session.
 */
export interface SessionLog {
  /** Which back end this is, e.g. `memory`, `surrealkv`, `mem`, `ws`. */
  readonly kind: string;
  /**
   * Whether the store takes writes (for readiness, `GET /health`). Absent = always `{ok: true}`
   * (the memory log). The embedded SurrealDB log turns `{ok: false}` for good once its engine
   * stops taking writes (a full disk); see docs/reliability.md ("Full disk").
   */
  health?(): StoreHealth;
  /**
   * Appends events atomically (all or none) and returns their seqs, consecutive and in order.
   * Appends to one session are serialized; different sessions proceed concurrently.
   * `[]` appends nothing and returns `[]`.
   * @throws StoreError `invalid_argument` (bad key or event), SeqConflictError (`expectedSeq`
   *   differs), DuplicateEventError (a platform message id or idempotency key is taken)
   */
  append(sessionKey: string, events: readonly NewSessionEvent[], options?: AppendOptions): Promise<number[]>;
  /**
   * {@link append} that returns the events as stored — `seq`, `at`, `runId`, and `data` after
   * redaction, exactly what `read` would return — so a caller can keep a copy without reading
   * back. Same atomicity and errors as `append`.
   */
  appendEvents(sessionKey: string, events: readonly NewSessionEvent[], options?: AppendOptions): Promise<SessionEvent[]>;
  /** Events in seq order, paginated; `[]` for an unknown session. */
  read(sessionKey: string, options?: ReadOptions): Promise<SessionEvent[]>;
  /**
   * The events the projection needs: those after the latest reset, starting at the latest
   * compaction's covered range (the compaction event itself included). Feed to `projectHistory`.
   */
  readHistory(sessionKey: string): Promise<SessionEvent[]>;
  /** The session's row, or `undefined` for an unknown session. */
  info(sessionKey: string): Promise<SessionInfo | undefined>;
  /** Sessions ordered by key, filtered by key parts, paginated with an opaque cursor. */
  listSessions(options?: ListSessionsOptions): Promise<SessionPage>;
  /** Number of sessions stored (reset sessions count; deleted ones do not). */
  countSessions(): Promise<number>;
  /** Appends a `reset` marker (see above); returns its seq. Creates the session if unknown. */
  reset(sessionKey: string, reason?: string): Promise<number>;
  /** Erases the session and all its events (and frees its dedupe keys); false if unknown. */
  delete(sessionKey: string): Promise<boolean>;
  /**
   * Retention: erases, like {@link delete}, every whole session whose last append is older than
   * `idleBeforeMs`, except one with unfinished work — a message whose turn never ended (what
   * {@link pendingTurns} lists) or a reply still owed ({@link pendingReplies}); those are counted
   * in `kept` and stay until their work is done. A session appended to while pruning runs is
   * not removed (each removal re-checks its session's last append, serialized with its appends).
   * Not atomic across sessions: a failure may leave some removed.
   * @throws StoreError `invalid_argument` when `idleBeforeMs` is not a finite number
   */
  prune(options: PruneOptions): Promise<PruneResult>;
  /**
   * Full-text search over text content (user messages, assistant text, tool results,
   * compaction summaries, error messages), best first. Empty/blank query → `[]`.
   */
  search(query: string, options?: SearchOptions): Promise<SearchHit[]>;
  /** The `message_received` event with this platform message id, if stored. */
  findByPlatformMessageId(channel: string, account: string, platformMessageId: string): Promise<SessionEventOf<"message_received"> | undefined>;
  /** The `message_received` event with this idempotency key, if stored. */
  findByIdempotencyKey(idempotencyKey: string): Promise<SessionEventOf<"message_received"> | undefined>;
  /**
   * Messages whose turn never finished: `message_received` events after the session's latest
   * reset that no `turn_ended`/`error` answered (see `pendingMessages` for the matching rule),
   * oldest first per session. For crash recovery at start-up.
   */
  pendingTurns(): Promise<SessionEventOf<"message_received">[]>;
  /**
   * The reply outbox (docs/reliability.md, "A crash between answer and reply"): the
   * `message_received` events appended with `data.awaitsReply` whose reply `settleReplies` has
   * not settled yet, in any state of their turn (open, ended, failed), whatever resets came
   * after; ordered by session key, then seq. Written atomically with the message itself, so a
   * journaled message's reply is owed until it is settled.
   */
  pendingReplies(): Promise<SessionEventOf<"message_received">[]>;
  /**
   * Settles owed replies by their messages' idempotency keys (sent, or given up): they leave
   * `pendingReplies`. Keys that are unknown, not owed or already settled are ignored. Not
   * atomic across keys: a failure may leave some settled (settling again is harmless).
   */
  settleReplies(idempotencyKeys: readonly string[]): Promise<void>;
  /** Releases the back end; later calls throw StoreError `closed`. Idempotent. */
  close(): Promise<void>;
}

/** Options shared by every {@link SessionLog} back end. */
export interface SessionLogOptions {
  /**
   * Redact secrets from text fields before they are written (see `redact.ts`). `true` uses the
   * default patterns; a function replaces the redactor. Default: off.
   */
  redact?: boolean | ((event: NewSessionEvent) => NewSessionEvent);
  /** Clock for defaulted `at` and session timestamps, ms epoch; default `Date.now`. */
  now?: () => number;
}
