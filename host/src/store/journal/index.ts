/**
 * The journaled session log: exoclaw's own write-ahead journal (`segments.ts`) in front of the
 * embedded SurrealDB store, projected into it in the background. SurrealDB stays the query and
 * search store; the journal makes appends cheap (one shared fdatasync per group, no SurrealDB
 * query on the hot path). See docs/architecture.md ("Store") for the measurements.
 *
 * - **append**: validated and redacted (`prepareAppend`), checked against in-process state (the
 *   session's last seq, `expectedSeq`, compaction range, dedupe keys), written as one journal
 *   record and acknowledged once that record is fdatasync'ed (group commit). Nothing is
 *   acknowledged before its events are on disk.
 * - **seqs**: one process owns the embedded directory, so each session's last seq lives in
 *   memory: loaded from SurrealDB on the session's first touch, kept while it has unprojected
 *   events (and in a bounded cache after).
 * - **dedupe**: keys of unprojected events are in memory; for the rest, a Bloom filter over every
 *   stored key (filled by a scan at open, and by every append) says "certainly new", and only a
 *   "maybe" costs a SurrealDB lookup. `DuplicateEventError` stays exact.
 * - **new sessions**: the same filter holds every stored session's key (a scan of the session
 *   table at open, and every journaled append), so a session that certainly never existed costs
 *   no SurrealDB query: its last seq is 0 and its history (`read`, `readHistory`) empty.
 * - **projector**: drains the journal into SurrealDB in large batches (a session's consecutive
 *   records merged into one append, up to 2,500 events per batch, one transaction each; one batch
 *   per gathering delay unless a reader waits or the backlog is past half its bound), then deletes
 *   the segments wholly projected. Idempotent by seq: a session's row in SurrealDB holds its last
 *   projected seq, written in the same transaction as the events, so a replay after a crash skips
 *   what is there. A delete is a journal record too, projected in order.
 * - **open**: every journal record SurrealDB lacks is queued for the projector again (in
 *   process state as if just appended) and the log serves at once; `close()` projects what it
 *   holds for at most 3 s (replies settled meanwhile live only in memory until their message is
 *   projected), and leaves the rest in the journal for the next open, so shutdown stays quick.
 * - **reads** see every acknowledged append: a read of a session waits until the projector has
 *   passed the session's last record; whole-store reads wait for everything acknowledged so far.
 * - **backpressure**: when the unprojected backlog exceeds `maxBacklogBytes` or
 *   `maxBacklogEvents`, appends wait for the projector.
 */
import { DuplicateEventError, isDiskFullError, SeqConflictError, StoreError, type StoreHealth } from "../errors.js";
import { compactionRangeError, platformKey, prepareAppend, type PreparedEvent } from "../events.js";
import type { ProjectedAppend, SurrealSessionLog } from "../surreal/index.js";
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
} from "../types.js";
import { errorMessage, KeyedChain } from "../../util/index.js";
import { readBounds } from "../paging.js";
import { parseSessionKey } from "../session-key.js";
import { BloomFilter } from "./bloom.js";
import { writeCheckpoint, type EngineSnapshot } from "./checkpoint.js";
import type { DirLock } from "./lock.js";
import { checkRecordLength, openJournalFiles, type JournalFiles } from "./segments.js";
import { deepFreeze, FREEZE_SHARED_EVENTS } from "./freeze.js";

export { openJournalFiles, type JournalFiles, type JournalRecord } from "./segments.js";
export { takeCheckpoint, engineFingerprint, CHECKPOINT_FILE, type EngineSnapshot } from "./checkpoint.js";
export { lockJournalDir, LOCK_FILE, type DirLock } from "./lock.js";

/** Options of {@link createJournaledSessionLog}. */
export interface JournaledSessionLogOptions extends SessionLogOptions {
  /**
   * The SurrealDB log the journal projects into (opened without redaction: the journal redacts),
   * or its open under way: then every operation that needs the engine waits for it, and an open
   * that fails marks the store broken (`onUnhealthy`). See {@link known}.
   */
  inner: SurrealSessionLog | Promise<SurrealSessionLog>;
  /** `inner.kind`, needed before `inner` has opened (e.g. `rocksdb`). */
  kind?: string;
  /**
   * What is known of the engine's content without it (a new store: an empty filter and no
   * pending lists; else the checkpoint of the last clean close, `checkpoint.ts`): the journal's
   * filters start complete from it (no scan), so new sessions and new dedupe keys need no
   * engine, and `pendingTurns`/`pendingReplies` answer from it until anything is journaled or
   * settled. Absent: the filters are filled by scans of the engine once it is open.
   */
  known?: EngineSnapshot;
  /**
   * Write a checkpoint at a clean close (`checkpoint.ts`) for the engine whose files are in
   * `engineDir` (the embedded store's directory); absent: none is written.
   */
  checkpointEngineDir?: string;
  /** The directory lock (`lock.ts`), released at the end of `close()`. */
  lock?: DirLock;
  /**
   * Begins `inner`'s open when it waits for a signal (`OpenSessionLogOptions.engineStart`): called
   * by the first operation that needs the engine, and by `close()` when there is something to
   * project. Idempotent.
   */
  startEngine?: () => void;
  /**
   * Called by `close()` when the engine is not open: keeps its open from beginning after the
   * close (a late `engineStart` signal would otherwise open it after the checkpoint was written,
   * making that checkpoint stale and the next start wait for the engine). @returns true when the
   * open had not begun (it then never begins), false when it had. Absent: it always had.
   */
  cancelEngineStart?: () => boolean;
  /** The journal's directory (created 0700; segment files 0600). */
  dir: string;
  /** The store URL for messages (no credentials). */
  displayUrl: string;
  /** Unprojected bytes (journal payloads) above which appends wait; default 16 MiB. */
  maxBacklogBytes?: number;
  /**
   * Unprojected events above which appends wait; default 80,000 (about the default byte bound's
   * worth of one-event records: a burst of appends is absorbed and projected after it).
   */
  maxBacklogEvents?: number;
  /**
   * Events per projector batch (a batch may be larger when one record is); default 2,500: what
   * ~500 turns of 5 events bring in one gathering delay, so one batch per delay keeps up with the
   * journal at ~1,000 turns/s. Larger makes reads and close wait longer and the batch's encoding a
   * longer block of the main thread (~6 µs per event).
   */
  projectBatchEvents?: number;
  /**
   * How long the projector lets records gather before it projects them, ms; default 500 (was 200:
   * SurrealDB's cost per session item of a batch, ~150 µs of engine CPU whatever the statement,
   * is shared by more of the session's turns; docs/architecture.md, "What a durable turn still adds"). A
   * session's appends in that window (a turn's message and its outcome, and the next turns') land
   * in one SurrealDB write of the session: one session-row update instead of one per append, no
   * `open_turns` index change for a turn that ended (+1 then -1), and the engine's fixed cost per
   * query shared (docs/architecture.md, "Store"). Each delay is followed by one batch; batches
   * follow each other at once only when a read needs unprojected events, a reply was settled for
   * one, or the backlog passed half its bound (so a burst of appends does not share the CPU with
   * the projector until then); `close` leaves the rest in the journal for the next open.
   */
  projectDelayMs?: number;
  /** Journal segment size before a new one starts, bytes; default 1 MiB (segments wholly projected are deleted). */
  segmentBytes?: number;
  /**
   * Drop journal records that cannot be projected because SurrealDB lost earlier events (a
   * damaged engine WAL opened with accepted loss) instead of failing with StoreError `corrupt`.
   */
  acceptLoss?: boolean;
  /** Sessions whose last seq stays cached after their events are projected; default 100,000. */
  headCacheSessions?: number;
  logger?: { info(message: string): void; warn(message: string): void };
  /** Called once when the store stops taking writes (journal write failed, or projection failed). */
  onUnhealthy?: (health: Exclude<StoreHealth, { ok: true }>) => void;
}

/** One journal record, as written (JSON). */
type RecordBody =
  /** An append: session, first seq, append time (ms epoch), events (redacted, `at` set). */
  | { t: "a"; k: string; s: number; n: number; e: PreparedEvent[] }
  /** A delete of the session. */
  | { t: "d"; k: string; n: number };

/**
 * A journaled record not yet in SurrealDB. An append whose events nobody needed as objects
 * keeps its record as journaled (the JSON text), parsed only when projected; one that was parsed
 * at the append (its events returned, or dedupe keys held) keeps those objects, shared with
 * what was returned (the runtime's history cache holds them anyway).
 */
interface Pending {
  position: number;
  t: "a" | "d";
  /** The session. */
  k: string;
  /** First seq (appends). */
  s: number;
  /** Events (appends; 0 for a delete). */
  count: number;
  /** Append time, ms epoch. */
  n: number;
  /** The events, when already parsed (records replayed at open, appends whose events were returned or hold dedupe keys). */
  events?: PreparedEvent[];
  /** The record's JSON (a {@link RecordBody} of an append), when `events` is not set. */
  json?: string;
  /** Payload bytes (for the backlog bound). */
  bytes: number;
  /** Dedupe keys of the record (`pm:`/`idem:` prefixed). */
  keys: string[];
}

/** The events of a queued append. */
function eventsOf(p: Pending): PreparedEvent[] {
  return p.events ?? (JSON.parse(p.json!) as RecordBody & { t: "a" }).e;
}

/** Journal directories open in this process: one journaled log per directory. */
const openDirs = new Set<string>();

/**
 * Opens the journal in `options.dir`, replays into `options.inner` every record it lacks, and
 * returns the journaled log. `close()` projects what is left, then closes the journal and `inner`.
 * @throws StoreError `unavailable` (the directory is already open in this process, or cannot be
 *   read), StoreCorruptError (a segment other than the last is damaged)
 */
export async function createJournaledSessionLog(options: JournaledSessionLogOptions): Promise<SessionLog> {
  const { dir, displayUrl } = options;
  if (openDirs.has(dir)) throw new StoreError("unavailable", `the store's journal ${dir} is already open in this process`);
  openDirs.add(dir);
  let files: JournalFiles;
  try {
    files = await openJournalFiles({ dir, segmentBytes: options.segmentBytes, logger: options.logger });
  } catch (err) {
    openDirs.delete(dir);
    if (err instanceof StoreError) throw err;
    throw new StoreError("unavailable", `cannot open the store's journal ${dir}: ${errorMessage(err)}`, { cause: err });
  }
  const state = new JournalState(options, files);
  try {
    await state.replay();
  } catch (err) {
    await files.close().catch(() => {});
    openDirs.delete(dir);
    throw err instanceof StoreError ? err : new StoreError("internal", `${displayUrl}: replaying the journal failed: ${errorMessage(err)}`, { cause: err });
  }
  return state.log();
}

/** Calls an append's `onChecked`; the caller's throw is not the store's failure (it is dropped). */
function notifyChecked(onChecked: () => void): void {
  try {
    onChecked();
  } catch {
    // not the append's concern
  }
}

const dedupeKey = (kind: "pm" | "idem", key: string) => `${kind}:${key}`;
/** A session's entry in the journal's Bloom filter (a prefix the dedupe keys never have). */
const sessionFilterKey = (sessionKey: string) => `s:${sessionKey}`;

/** The dedupe keys of an append that has none (shared: never modified). */
const NO_KEYS: string[] = [];

/** How long `close()` waits for the projector to write what it holds, ms. */
const CLOSE_DRAIN_MS = 3_000;

/** Keeps the journal, the projector and the in-process session state. */
class JournalState {
  /** The engine once open (see {@link db}). */
  private inner: SurrealSessionLog | undefined;
  /** The engine's open; rejects with the broken store's error when it failed. */
  private readonly engine: Promise<SurrealSessionLog>;
  /**
   * The engine's pending lists at open (from `options.known`), answered while nothing was
   * journaled (turns) or settled (replies) since; undefined once not valid.
   */
  private startTurns: SessionEventOf<"message_received">[] | undefined;
  private startReplies: SessionEventOf<"message_received">[] | undefined;
  private readonly lanes = new KeyedChain();
  /** Last seq per session: every session with unprojected records, plus a bounded cache. */
  private readonly heads = new Map<string, number>();
  /** Position of each session's last unprojected record. */
  private readonly sessionPosition = new Map<string, number>();
  /** Dedupe keys reserved by an append in flight (null) or held by an unprojected event. */
  private readonly unprojectedKeys = new Map<string, SessionEventOf<"message_received"> | null>();
  private readonly bloom: BloomFilter;
  private bloomReady = false;
  /** Set once the filter holds every session SurrealDB had at open (see {@link certainlyNew}). */
  private sessionsReady = false;
  private bloomScan: Promise<void> | undefined;
  private readonly queue: Pending[] = [];
  private backlogBytes = 0;
  private backlogEvents = 0;
  private roomWaiters: (() => void)[] = [];
  private projected: number;
  private acknowledged: number;
  private projectWaiters: { position: number; resolve(): void; reject(err: unknown): void }[] = [];
  private projecting: Promise<void> | undefined;
  /** The coalescing timer of the next projection (see `projectDelayMs`). */
  private projectTimer: NodeJS.Timeout | undefined;
  /** Set when writes stopped (a journal write failed, or the projection did). */
  private broken: StoreError | undefined;
  /** Set when the projection failed: reads that need unprojected events fail too. */
  private projectFailure: StoreError | undefined;
  private health: StoreHealth = { ok: true };
  private closed = false;
  /** Set while `prune` runs: writes wait for it. */
  private pruneGate: Promise<void> | undefined;
  private writesInFlight = 0;
  private writesIdle: (() => void)[] = [];
  /** Set by close: the projector stops after its batch in flight (the rest is projected at the next open). */
  private stopping = false;
  /** Owed replies settled while their message was unprojected: settled in SurrealDB right after it is projected. */
  private readonly settleAfterProjection = new Set<string>();
  private closing: Promise<void> | undefined;
  /** Set by `close()` when it kept the engine's open from ever beginning: {@link db} then fails (closed). */
  private engineCancelled = false;
  private readonly now: () => number;
  private readonly maxBacklogBytes: number;
  private readonly maxBacklogEvents: number;
  private readonly batchEvents: number;
  private readonly headCache: number;
  private readonly projectDelayMs: number;

  constructor(
    private readonly options: JournaledSessionLogOptions,
    private readonly files: JournalFiles,
  ) {
    this.engine = Promise.resolve(options.inner).then(
      (inner) => {
        this.inner = inner;
        queueMicrotask(() => this.kick());
        return inner;
      },
      (err: unknown) => {
        throw this.fail("engine", err);
      },
    );
    this.engine.catch(() => {});
    this.bloom = options.known?.filter ?? new BloomFilter();
    if (options.known) {
      this.bloomReady = true;
      this.sessionsReady = true;
    }
    this.now = options.now ?? Date.now;
    this.maxBacklogBytes = options.maxBacklogBytes ?? 16 * 1024 * 1024;
    this.maxBacklogEvents = options.maxBacklogEvents ?? 80_000;
    this.batchEvents = options.projectBatchEvents ?? 2_500;
    this.headCache = options.headCacheSessions ?? 100_000;
    this.projectDelayMs = options.projectDelayMs ?? 500;
    this.projected = files.lastPosition;
    this.acknowledged = files.lastPosition;
  }

  /**
   * Projects the records SurrealDB lacks (by seq: a session's row holds its last projected seq;
   * for a session deleted in the journal, the delete and everything after it), then deletes
   * the old segments and starts the Bloom filter's scan.
   */
  async replay(): Promise<void> {
    const records = this.files.recovered.map((r) => {
      try {
        return { position: r.position, body: JSON.parse(r.payload.toString("utf8")) as RecordBody, bytes: r.payload.length };
      } catch (err) {
        throw new StoreError("corrupt", `the store's journal record ${r.position} is not valid JSON although its checksum verifies: ${errorMessage(err)}`);
      }
    });
    if (records.length > 0) {
      const lastDelete = new Map<string, number>();
      for (const r of records) if (r.body.t === "d") lastDelete.set(r.body.k, r.position);
      const stored = new Map<string, number>();
      await Promise.all(
        [...new Set(records.map((r) => r.body.k))].map(async (k) => {
          // A session the known filter never saw has nothing in the engine (a new store: none has).
          stored.set(k, lastDelete.has(k) || this.certainlyNew(k) ? 0 : ((await (await this.db()).info(k))?.lastSeq ?? 0));
        }),
      );
      this.projected = records[0]!.position - 1;
      this.acknowledged = this.projected;
      for (const r of records) {
        const del = lastDelete.get(r.body.k);
        let body: RecordBody | undefined = r.body;
        if (body.t === "d") {
          if (del !== r.position) body = undefined;
        } else if (del !== undefined && r.position < del) {
          body = undefined;
        } else {
          const a = body;
          const last = stored.get(a.k)!;
          const events = a.e.filter((_, i) => a.s + i > last);
          body = events.length === 0 ? undefined : { ...a, s: a.s + a.e.length - events.length, e: events };
          if (body && body.s !== last + 1) {
            // SurrealDB lacks events before this record's (its own log lost commits: a damaged
            // WAL opened with accepted loss). They cannot be projected in order.
            const what = `the store's journal holds events ${body.s}.. of session ${a.k}, but SurrealDB ends at seq ${last} (it lost commits)`;
            if (!this.options.acceptLoss) throw new StoreError("corrupt", `${what}; see docs/reliability.md ("Corrupted store")`);
            this.options.logger?.warn(`${what}: dropping those journal records (accepting the loss)`);
            body = undefined;
          } else if (body) {
            stored.set(a.k, last + body.e.length);
          }
        }
        if (body?.t === "a") {
          this.enqueue({
            position: r.position,
            t: "a",
            k: body.k,
            s: body.s,
            count: body.e.length,
            n: body.n,
            events: body.e,
            bytes: r.bytes,
            keys: this.holdKeys(body),
          });
        } else if (body) {
          this.enqueue({ position: r.position, t: "d", k: body.k, s: 0, count: 0, n: body.n, bytes: r.bytes, keys: [] });
        } else if (this.queue.length === 0) this.projected = r.position;
      }
      const replayed = this.queue.length;
      if (replayed === 0) {
        this.projected = this.acknowledged = this.files.lastPosition;
        await this.files.release(this.files.lastPosition);
      } else {
        // Served at once: reads of these sessions wait for the projector, dedupe and findBy* see the keys.
        this.options.logger?.info(`the store's journal holds ${replayed} record(s) not yet in SurrealDB: projecting them in the background`);
        this.kick();
      }
    }
    if (this.options.known) {
      // Complete from the start (a new store, or the checkpoint): no scan. The pending lists hold
      // while nothing was journaled since (records replayed above are not in them).
      if (this.queue.length === 0) {
        this.startTurns = this.options.known.pendingTurns;
        this.startReplies = this.options.known.pendingReplies;
      }
      return;
    }
    const sessions = this.engine
      .then((inner) => inner.scanSessionKeys((k) => this.bloom.add(sessionFilterKey(k))))
      .then(
        () => {
          this.sessionsReady = true;
        },
        (err: unknown) => this.options.logger?.warn(`the store's session filter could not be filled (every new session is looked up): ${errorMessage(err)}`),
      );
    const keys = this.engine
      .then((inner) => inner.scanDedupeKeys((kind, key) => this.bloom.add(dedupeKey(kind, key))))
      .then(
        () => {
          this.bloomReady = true;
        },
        (err: unknown) => this.options.logger?.warn(`the store's dedupe filter could not be filled (every dedupe key is looked up): ${errorMessage(err)}`),
      );
    this.bloomScan = Promise.all([sessions, keys]).then(() => {});
  }

  /** Adds a journaled record to the projector's queue and the in-process state. */
  private enqueue(p: Pending): void {
    this.startTurns = this.startReplies = undefined;
    this.queue.push(p);
    // A session with an unprojected record was added when that record was (the filter only grows):
    // hashing its key again for each of its appends is wasted.
    if (!this.sessionPosition.has(p.k)) this.bloom.add(sessionFilterKey(p.k));
    this.backlogBytes += p.bytes;
    if (p.t === "a") {
      this.backlogEvents += p.count;
      this.heads.set(p.k, p.s + p.count - 1);
    } else {
      this.heads.set(p.k, 0);
    }
    this.sessionPosition.set(p.k, p.position);
    this.acknowledged = Math.max(this.acknowledged, p.position);
  }

  /**
   * Schedules the projector: after `projectDelayMs` (records gather meanwhile), or at once when
   * `now` is set (the delay passed, or a reader waits) or the projection is urgent.
   */
  private kick(now = false): void {
    if (this.projecting || this.queue.length === 0 || this.projectFailure || this.stopping) return;
    // Projection waits for the engine's open; only a reader, `close` or the backlog begins that
    // open when it is held back (`db`). The open kicks the projector when it is done.
    if (this.inner === undefined && !this.urgent()) return;
    if (!now && !this.urgent()) {
      this.projectTimer ??= setTimeout(() => {
        this.projectTimer = undefined;
        this.kick(true);
      }, this.projectDelayMs);
      return;
    }
    if (this.projectTimer) {
      clearTimeout(this.projectTimer);
      this.projectTimer = undefined;
    }
    this.projecting = this.drain()
      .catch((err: unknown) => {
        this.fail("projection", err);
      })
      .finally(() => {
        this.projecting = undefined;
        this.kick();
      });
  }

  /**
   * Whether the projector should run now rather than after the gathering delay: a reader (or
   * `close`) waits, a reply was settled for an unprojected message, or the backlog passed half
   * its bound.
   */
  private urgent(): boolean {
    return (
      this.projectDelayMs <= 0 ||
      this.projectWaiters.length > 0 ||
      this.settleAfterProjection.size > 0 ||
      this.backlogBytes > this.maxBacklogBytes / 2 ||
      this.backlogEvents > this.maxBacklogEvents / 2
    );
  }

  /**
   * Projects one batch, then more while the projection is urgent; what is left waits for the
   * next gathering delay (see `kick`). Records that keep arriving are projected in large batches,
   * and the projector takes the CPU from appends only when it must.
   * @throws the first projection failure
   */
  private async drain(): Promise<void> {
    let first = true;
    while (this.queue.length > 0 && !this.projectFailure && !this.stopping) {
      if (!first && !this.urgent()) break;
      first = false;
      const head = this.queue[0]!;
      if (head.t === "d") {
        await (await this.db()).delete(head.k);
        this.done(1);
        continue;
      }
      const bySession = new Map<string, ProjectedAppend & { events: PreparedEvent[] }>();
      let n = 0;
      let count = 0;
      for (const p of this.queue) {
        if (p.t !== "a") break;
        if (count > 0 && n + p.count > this.batchEvents) break;
        const item = bySession.get(p.k);
        if (item) {
          item.events.push(...eventsOf(p));
          item.updatedAt = p.n;
        } else {
          bySession.set(p.k, { sessionKey: p.k, events: [...eventsOf(p)], expectedSeq: p.s - 1, createdAt: p.n, updatedAt: p.n });
        }
        n += p.count;
        count++;
      }
      await (await this.db()).projectAppends([...bySession.values()]);
      // Replies settled while these messages were unprojected (a settle may arrive during the await).
      while (this.settleAfterProjection.size > 0) {
        const settle = this.queue.slice(0, count).flatMap((p) => p.keys.filter((k) => this.settleAfterProjection.has(k)));
        if (settle.length === 0) break;
        await (await this.db()).settleReplies(settle.map((k) => k.slice("idem:".length)));
        for (const k of settle) this.settleAfterProjection.delete(k);
      }
      this.done(count);
    }
  }

  /** The first `count` queued records are in SurrealDB: drop their in-process state, wake waiters, delete old segments. */
  private done(count: number): void {
    const batch = this.queue.splice(0, count);
    for (const p of batch) {
      this.backlogBytes -= p.bytes;
      this.backlogEvents -= p.count;
      for (const k of p.keys) this.unprojectedKeys.delete(k);
      if (this.sessionPosition.get(p.k) === p.position) this.sessionPosition.delete(p.k);
    }
    this.projected = batch[batch.length - 1]!.position;
    const due = this.projectWaiters.filter((w) => w.position <= this.projected);
    if (due.length > 0) {
      this.projectWaiters = this.projectWaiters.filter((w) => w.position > this.projected);
      for (const w of due) w.resolve();
    }
    if (!this.full()) for (const wake of this.roomWaiters.splice(0)) wake();
    this.trimHeads();
    this.files
      .release(this.projected)
      .catch((err: unknown) => this.options.logger?.warn(`cannot delete projected journal segments in ${this.options.dir}: ${errorMessage(err)}`));
  }

  /** Forgets cached last seqs beyond the bound (never those of sessions with unprojected records). */
  private trimHeads(): void {
    if (this.heads.size <= this.headCache) return;
    for (const k of this.heads.keys()) {
      if (this.heads.size <= this.headCache * 0.9) break;
      if (!this.sessionPosition.has(k)) this.heads.delete(k);
    }
  }

  private full(): boolean {
    return this.backlogBytes > this.maxBacklogBytes || this.backlogEvents > this.maxBacklogEvents;
  }

  /** Resolves once every record up to `position` is in SurrealDB. @throws the projection failure */
  private waitProjected(position: number): Promise<void> {
    if (position <= this.projected) return Promise.resolve();
    if (this.projectFailure) return Promise.reject(this.projectFailure);
    const waiting = new Promise<void>((resolve, reject) => this.projectWaiters.push({ position, resolve, reject }));
    // A reader waits: no coalescing delay.
    this.kick(true);
    return waiting;
  }

  /** Waits until the session's acknowledged records are in SurrealDB. */
  private settled(sessionKey: string): Promise<void> {
    const position = this.sessionPosition.get(sessionKey);
    return position === undefined ? Promise.resolve() : this.waitProjected(position);
  }

  /** Waits until everything acknowledged so far is in SurrealDB. */
  private settledAll(): Promise<void> {
    return this.waitProjected(this.acknowledged);
  }

  /**
   * Marks the store broken for good (a journal write or a projection failed): later writes fail
   * at once, waiting reads fail, `health()` turns not ok and `onUnhealthy` fires once.
   */
  private fail(what: "journal" | "projection" | "engine", err: unknown): StoreError {
    const diskFull = isDiskFullError(err);
    if (!this.broken) {
      const why = diskFull
        ? "a write failed because the disk is full"
        : what === "engine"
          ? `its engine did not open: ${errorMessage(err)}`
          : `the ${what} failed: ${errorMessage(err)}`;
      const message = `session store ${this.options.displayUrl}: writes stopped: ${why}; the store does not take writes again in this process, restart it (acknowledged data is intact in its journal)`;
      this.broken = new StoreError("unavailable", message, {
        cause: err,
        publicFailure: {
          reason: "store_unavailable",
          message: diskFull
            ? "session store unavailable: its disk filled up and it takes no writes until the gateway restarts"
            : "session store unavailable: it stopped taking writes; the gateway must restart",
        },
      });
      this.health = { ok: false, reason: diskFull ? "disk_full" : "store_unavailable", message };
      this.options.logger?.warn(message);
      this.options.onUnhealthy?.(this.health);
      for (const wake of this.roomWaiters.splice(0)) wake();
    }
    if (what !== "journal" && !this.projectFailure) {
      this.projectFailure = this.broken;
      for (const w of this.projectWaiters.splice(0)) w.reject(this.broken);
    }
    if (diskFull) {
      return new StoreError("disk_full", `session store ${this.options.displayUrl}: append failed: ${errorMessage(err)} (the disk is full)`, {
        cause: err,
        publicFailure: { reason: "disk_full", message: "session store: the disk is full; nothing was written" },
      });
    }
    return this.broken;
  }

  /**
   * The engine, waiting for its open. @throws the broken store's error when the open failed
   */
  private db(): Promise<SurrealSessionLog> {
    if (this.inner !== undefined) return Promise.resolve(this.inner);
    // Closed before the engine began: it never opens (see `cancelEngineStart`).
    if (this.engineCancelled) return Promise.reject(new StoreError("closed", "the session log is closed"));
    this.options.startEngine?.();
    return this.engine;
  }

  /** Whether a dedupe key is certainly not in the engine (the filter is complete and lacks it). */
  private certainlyAbsent(key: string): boolean {
    return this.bloomReady && !this.bloom.mightHave(key);
  }

  private ensureOpen(): void {
    if (this.closed) throw new StoreError("closed", "the session log is closed");
  }

  /**
   * Whether the session certainly has no events anywhere: the filter, once it holds every session
   * SurrealDB had at open, also holds every session journaled since (`enqueue`), so "not in it"
   * means never stored. False is "maybe" (look it up).
   */
  private certainlyNew(sessionKey: string): boolean {
    return this.sessionsReady && !this.bloom.mightHave(sessionFilterKey(sessionKey));
  }

  /**
   * Whether the session has no events, known without SurrealDB: no unprojected record, and its
   * last seq 0 in process (SurrealDB has exactly what `heads` says when nothing is unprojected)
   * or never stored. Then `read`/`readHistory` answer `[]` without a query.
   */
  private knownEmpty(sessionKey: string): boolean {
    if (this.sessionPosition.has(sessionKey)) return false;
    const head = this.heads.get(sessionKey);
    return head === undefined ? this.certainlyNew(sessionKey) : head === 0;
  }

  /** The session's last seq: in process, else from SurrealDB (which then has all its events). */
  private async headOf(sessionKey: string): Promise<number> {
    const known = this.heads.get(sessionKey);
    if (known !== undefined) return known;
    // A session never stored has no row to read: a new session's first append costs no query.
    const last = this.certainlyNew(sessionKey) ? 0 : ((await (await this.db()).info(sessionKey))?.lastSeq ?? 0);
    this.heads.set(sessionKey, last);
    this.trimHeads();
    return last;
  }

  /** Waits while the backlog is over its bound. */
  private async room(): Promise<void> {
    while (this.full() && !this.broken) await new Promise<void>((wake) => this.roomWaiters.push(wake));
  }

  /** Throws DuplicateEventError when a key of the batch is stored or being appended; reserves them otherwise. */
  private async reserveKeys(platformKeys: string[], idempotencyKeys: string[]): Promise<string[]> {
    const all = [...platformKeys.map((k) => dedupeKey("pm", k)), ...idempotencyKeys.map((k) => dedupeKey("idem", k))];
    for (const k of platformKeys)
      if (this.unprojectedKeys.has(dedupeKey("pm", k))) throw new DuplicateEventError("platformMessageId", (JSON.parse(k) as string[])[2]!);
    for (const k of idempotencyKeys) if (this.unprojectedKeys.has(dedupeKey("idem", k))) throw new DuplicateEventError("idempotencyKey", k);
    for (const k of all) this.unprojectedKeys.set(k, null);
    try {
      for (const k of platformKeys) {
        if (this.bloomReady && !this.bloom.mightHave(dedupeKey("pm", k))) continue;
        const [channel, account, id] = JSON.parse(k) as [string, string, string];
        if (await (await this.db()).findByPlatformMessageId(channel, account, id)) throw new DuplicateEventError("platformMessageId", id);
      }
      for (const k of idempotencyKeys) {
        if (this.bloomReady && !this.bloom.mightHave(dedupeKey("idem", k))) continue;
        if (await (await this.db()).findByIdempotencyKey(k)) throw new DuplicateEventError("idempotencyKey", k);
      }
    } catch (err) {
      for (const k of all) this.unprojectedKeys.delete(k);
      throw err;
    }
    return all;
  }

  /** Runs a write in the session's lane, after any prune in progress (see {@link prune}). */
  private writing<T>(sessionKey: string, fn: () => Promise<T>): Promise<T> {
    return this.lanes.run(sessionKey, async () => {
      while (this.pruneGate) await this.pruneGate;
      this.writesInFlight++;
      try {
        return await fn();
      } finally {
        if (--this.writesInFlight === 0) for (const wake of this.writesIdle.splice(0)) wake();
      }
    });
  }

  /**
   * Retention through SurrealDB's `prune`, which must see every session as it is: writes wait
   * while it runs (those in flight finish first) and the journal is projected before it starts,
   * so no unprojected append can land in a session it removes; the journal's segments are all
   * deleted first (everything is projected), so no record of a removed session is replayed
   * after a crash. Removed sessions' cached last seqs are forgotten.
   */
  private async prune(opts: PruneOptions): Promise<PruneResult> {
    this.ensureOpen();
    while (this.pruneGate) await this.pruneGate;
    let open!: () => void;
    this.pruneGate = new Promise<void>((resolve) => (open = resolve));
    try {
      if (this.writesInFlight > 0) await new Promise<void>((resolve) => this.writesIdle.push(resolve));
      await this.settledAll();
      // No journal record may outlive a session it removes (a replay would bring part of it back).
      if (!opts.dryRun) {
        await this.files.rotate();
        await this.files.release(this.projected);
      }
      return await (await this.db()).prune({
        ...opts,
        onRemoved: (sessionKey) => {
          this.heads.delete(sessionKey);
          opts.onRemoved?.(sessionKey);
        },
      });
    } finally {
      this.pruneGate = undefined;
      open();
    }
  }

  /**
   * Journals an append. @returns its first seq and event count, and (when `returnEvents`) the
   * events as stored (what a read returns)
   */
  private async appendEvents(
    sessionKey: string,
    events: readonly NewSessionEvent[],
    opts: AppendOptions,
    returnEvents: boolean,
  ): Promise<{ first: number; count: number; events?: SessionEvent[] }> {
    this.ensureOpen();
    const plan = prepareAppend(sessionKey, events, this.options);
    return this.writing(sessionKey, async () => {
      if (this.broken) throw this.broken;
      if (this.full()) await this.room();
      if (this.broken) throw this.broken;
      const last = this.heads.get(sessionKey) ?? (await this.headOf(sessionKey));
      if (opts.expectedSeq !== undefined && opts.expectedSeq !== last) throw new SeqConflictError(sessionKey, opts.expectedSeq, last);
      if (plan.events.length === 0) return { first: last + 1, count: 0, events: [] };
      const hasKeys = plan.platformKeys.length > 0 || plan.idempotencyKeys.length > 0;
      const keys = hasKeys ? await this.reserveKeys(plan.platformKeys, plan.idempotencyKeys) : NO_KEYS;
      const at = this.now();
      let json: string;
      let bytes: number;
      try {
        if (last < plan.minLastSeq) throw compactionRangeError(last, plan.minLastSeq);
        json = JSON.stringify({ t: "a", k: sessionKey, s: last + 1, n: at, e: plan.events } satisfies RecordBody);
        bytes = Buffer.byteLength(json, "utf8");
        checkRecordLength(bytes);
      } catch (err) {
        for (const k of keys) this.unprojectedKeys.delete(k);
        throw err instanceof StoreError ? err : new StoreError("invalid_argument", errorMessage(err), { cause: err });
      }
      let position: number;
      try {
        // Framed when its group is written (no buffer of its own).
        const written = this.files.appendText(json, bytes);
        // Checked and handed to the writer: only its durability is pending (see AppendOptions.onChecked).
        if (opts.onChecked) notifyChecked(opts.onChecked);
        position = await written;
      } catch (err) {
        for (const k of keys) this.unprojectedKeys.delete(k);
        throw this.fail("journal", err);
      }
      // The record's JSON is parsed only when objects are needed now: the events returned (the
      // runtime's appends: its history cache), the messages that hold dedupe keys (findBy*
      // answers from them until projected). Then that one parse serves all of it and the
      // projector too, which parses nothing more (was up to three parses of the record). The
      // objects are shared, never modified: the projector and `unprojected` copy what they
      // give out, and the runtime does not modify the events it gets (docs/architecture.md).
      const body = returnEvents || hasKeys ? (JSON.parse(json) as RecordBody & { t: "a" }) : undefined;
      if (FREEZE_SHARED_EVENTS && body !== undefined) deepFreeze(body.e); // tests only: see freeze.ts
      if (hasKeys) this.holdKeys(body!);
      const first = last + 1;
      this.enqueue({
        position,
        t: "a",
        k: sessionKey,
        s: first,
        count: plan.events.length,
        n: at,
        events: body?.e,
        json: body ? undefined : json,
        bytes,
        keys,
      });
      this.kick();
      if (!returnEvents) return { first, count: plan.events.length };
      return { first, count: plan.events.length, events: body!.e.map((e, i) => this.toStored(sessionKey, first + i, e)) };
    });
  }

  /**
   * Points the dedupe keys of a journaled append at its messages until they are projected (for
   * dedupe and `findBy*`), and adds them to the Bloom filter. @returns the keys
   */
  private holdKeys(body: RecordBody & { t: "a" }): string[] {
    const keys: string[] = [];
    body.e.forEach((e, i) => {
      if (e.kind !== "message_received") return;
      const ev = this.toStored(body.k, body.s + i, e) as SessionEventOf<"message_received">;
      const own: string[] = [];
      if (e.data.platformMessageId !== undefined) own.push(dedupeKey("pm", platformKey(e.data.channel, e.data.account, e.data.platformMessageId)));
      if (e.data.idempotencyKey !== undefined) own.push(dedupeKey("idem", e.data.idempotencyKey));
      for (const k of own) {
        this.unprojectedKeys.set(k, ev);
        this.bloom.add(k);
        keys.push(k);
      }
    });
    return keys;
  }

  /** A journaled event as `read` returns it. */
  private toStored(sessionKey: string, seq: number, e: PreparedEvent): SessionEvent {
    const out: Record<string, unknown> = { sessionKey, seq, kind: e.kind, data: e.data, at: e.at };
    if (e.runId !== undefined) out.runId = e.runId;
    return out as SessionEvent;
  }

  private async deleteSession(sessionKey: string): Promise<boolean> {
    this.ensureOpen();
    return this.writing(sessionKey, async () => {
      if (this.broken) throw this.broken;
      if ((await this.headOf(sessionKey)) === 0) return false;
      const payload = Buffer.from(JSON.stringify({ t: "d", k: sessionKey, n: this.now() } satisfies RecordBody), "utf8");
      let position: number;
      try {
        position = await this.files.append(payload);
      } catch (err) {
        throw this.fail("journal", err);
      }
      this.enqueue({ position, t: "d", k: sessionKey, s: 0, count: 0, n: 0, bytes: payload.length, keys: NO_KEYS });
      this.kick();
      await this.waitProjected(position);
      return true;
    });
  }

  /** A copy of an unprojected message found by a dedupe key, if any. */
  private unprojected(key: string): SessionEventOf<"message_received"> | undefined {
    const e = this.unprojectedKeys.get(key);
    return e ? (JSON.parse(JSON.stringify(e)) as SessionEventOf<"message_received">) : undefined;
  }

  private close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await this.lanes.idle();
      // What the gathering delay holds is projected now (with the replies settled meanwhile, which
      // live only in memory until then), within a bound; a larger backlog stays in the journal
      // and is projected at the next open.
      if (this.queue.length > 0 && !this.projectFailure) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          this.waitProjected(this.acknowledged).catch(() => {}),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, CLOSE_DRAIN_MS);
          }),
        ]);
        clearTimeout(timer);
      }
      this.stopping = true;
      if (this.projectTimer) clearTimeout(this.projectTimer);
      await this.projecting;
      const closed = new StoreError("closed", "the session log is closed");
      for (const w of this.projectWaiters.splice(0)) w.reject(closed);
      await this.bloomScan;
      await this.files.close().catch(() => {});
      // Everything is in SurrealDB: the next open has nothing to read back.
      const clean = this.queue.length === 0 && !this.broken;
      if (clean) await this.files.discard().catch(() => {});
      try {
        const known = this.options.known;
        if (this.inner === undefined && this.options.cancelEngineStart?.() === true) {
          this.engineCancelled = true;
          // The engine was never needed: nothing was journaled, projected or settled, so what the
          // checkpoint said at open still holds. Written again only for the files it was checked against.
          if (clean && known?.fingerprint !== undefined && this.startTurns && this.startReplies) {
            await writeCheckpoint(this.options.dir, this.options.checkpointEngineDir!, known, known.fingerprint).catch((err: unknown) =>
              this.options.logger?.warn(`cannot write the store's checkpoint (the next start opens the engine before it serves): ${errorMessage(err)}`),
            );
          }
          return;
        }
        // An engine still opening is waited for (a failed open has nothing to close).
        const inner = this.inner ?? (await this.engine.catch(() => undefined));
        if (inner !== undefined) {
          const engineDir = this.options.checkpointEngineDir;
          const snapshot = clean && engineDir !== undefined && this.bloomReady && this.sessionsReady ? await this.snapshot(inner) : undefined;
          await inner.close();
          // After the engine's last write: the checkpoint's fingerprint describes it as it stays.
          if (snapshot !== undefined) {
            await writeCheckpoint(this.options.dir, engineDir!, snapshot).catch((err: unknown) =>
              this.options.logger?.warn(`cannot write the store's checkpoint (the next start opens the engine before it serves): ${errorMessage(err)}`),
            );
          }
        }
      } finally {
        openDirs.delete(this.options.dir);
        await this.options.lock?.release();
      }
    })();
    return this.closing;
  }

  /**
   * What the checkpoint keeps of the engine (everything is projected): the filter and the
   * engine's pending lists. @returns undefined when they cannot be read (no checkpoint then)
   */
  private async snapshot(inner: SurrealSessionLog): Promise<EngineSnapshot | undefined> {
    try {
      const [pendingTurns, pendingReplies] = await Promise.all([inner.pendingTurns(), inner.pendingReplies()]);
      return { filter: this.bloom, pendingTurns, pendingReplies };
    } catch (err) {
      this.options.logger?.warn(`cannot read what the store's checkpoint needs (the next start opens the engine before it serves): ${errorMessage(err)}`);
      return undefined;
    }
  }

  /** The {@link SessionLog} over this state. */
  log(): SessionLog {
    const open = () => this.ensureOpen();
    const log: SessionLog = {
      kind: this.options.kind ?? (this.options.inner as SurrealSessionLog).kind,
      health: () => (this.broken ? this.health : (this.inner?.health?.() ?? { ok: true })),
      append: async (sessionKey, events, opts = {}) => {
        const { first, count } = await this.appendEvents(sessionKey, events, opts, false);
        return Array.from({ length: count }, (_, i) => first + i);
      },
      appendEvents: async (sessionKey, events, opts = {}) => (await this.appendEvents(sessionKey, events, opts, true)).events!,
      read: async (sessionKey: string, opts?: ReadOptions): Promise<SessionEvent[]> => {
        open();
        if (this.knownEmpty(sessionKey)) {
          // The checks the engine's `read` makes, so bad arguments fail as they would there.
          parseSessionKey(sessionKey);
          readBounds(opts ?? {});
          return [];
        }
        await this.settled(sessionKey);
        return (await this.db()).read(sessionKey, opts);
      },
      readHistory: async (sessionKey: string): Promise<SessionEvent[]> => {
        open();
        // A new session's first turn reads its history while its message is written: no query.
        if (this.knownEmpty(sessionKey)) {
          parseSessionKey(sessionKey);
          return [];
        }
        await this.settled(sessionKey);
        return (await this.db()).readHistory(sessionKey);
      },
      info: async (sessionKey: string): Promise<SessionInfo | undefined> => {
        open();
        if (!this.heads.has(sessionKey) && this.certainlyNew(sessionKey)) {
          parseSessionKey(sessionKey);
          return undefined;
        }
        await this.settled(sessionKey);
        return (await this.db()).info(sessionKey);
      },
      listSessions: async (opts?: ListSessionsOptions): Promise<SessionPage> => {
        open();
        await this.settledAll();
        return (await this.db()).listSessions(opts);
      },
      countSessions: async (): Promise<number> => {
        open();
        await this.settledAll();
        return (await this.db()).countSessions();
      },
      reset: async (sessionKey: string, reason?: string): Promise<number> => {
        const [seq] = await log.append(sessionKey, [{ kind: "reset", data: reason === undefined ? {} : { reason } }]);
        return seq!;
      },
      delete: (sessionKey: string) => this.deleteSession(sessionKey),
      prune: (opts: PruneOptions) => this.prune(opts),
      search: async (query: string, opts: SearchOptions = {}): Promise<SearchHit[]> => {
        open();
        await (opts.sessionKey !== undefined ? this.settled(opts.sessionKey) : this.settledAll());
        return (await this.db()).search(query, opts);
      },
      findByPlatformMessageId: async (channel: string, account: string, platformMessageId: string) => {
        open();
        return (
          this.unprojected(dedupeKey("pm", platformKey(channel, account, platformMessageId))) ??
          (this.certainlyAbsent(dedupeKey("pm", platformKey(channel, account, platformMessageId)))
            ? undefined
            : (await this.db()).findByPlatformMessageId(channel, account, platformMessageId))
        );
      },
      findByIdempotencyKey: async (idempotencyKey: string) => {
        open();
        return (
          this.unprojected(dedupeKey("idem", idempotencyKey)) ??
          (this.certainlyAbsent(dedupeKey("idem", idempotencyKey)) ? undefined : (await this.db()).findByIdempotencyKey(idempotencyKey))
        );
      },
      pendingTurns: async () => {
        open();
        // Known without the engine: what it held at open, nothing journaled since.
        if (this.startTurns) return structuredClone(this.startTurns);
        await this.settledAll();
        return (await this.db()).pendingTurns();
      },
      pendingReplies: async () => {
        open();
        if (this.startReplies) return structuredClone(this.startReplies);
        await this.settledAll();
        return (await this.db()).pendingReplies();
      },
      settleReplies: async (idempotencyKeys: readonly string[]) => {
        open();
        this.startReplies = undefined;
        // A message still in the journal is settled right after its projection (the outbox row
        // is written with it); the others at once. Waiting for the whole backlog is not needed.
        const now: string[] = [];
        for (const k of idempotencyKeys) {
          if (this.unprojectedKeys.get(dedupeKey("idem", k))) this.settleAfterProjection.add(dedupeKey("idem", k));
          else now.push(k);
        }
        // A settle held in memory is lost in a crash (the reply would go out again): project now
        // rather than after the gathering delay.
        if (now.length < idempotencyKeys.length) this.kick(true);
        if (now.length > 0) await (await this.db()).settleReplies(now);
      },
      close: () => this.close(),
    };
    return log;
  }
}
