/**
 * The SurrealDB {@link SessionLog}: embedded (`mem://`, `surrealkv:///dir`) through
 * `@surrealdb/node`, or a SurrealDB 3.x server (`ws://`, `wss://`) through the `surrealdb` SDK.
 * Both packages are imported on first use, so a gateway with another store never loads them.
 *
 * **Server connections.** Opening fails fast: if the first connection attempt fails (refused,
 * DNS, TLS, bad credentials) `createSurrealSessionLog` rejects with a StoreError naming the URL
 * (never the credentials), or after `connectTimeoutMs`. Once connected, the SDK reconnects by
 * itself when the socket drops (here: unlimited attempts, 0.5 s doubling to 10 s, ±10 %
 * jitter), then signs in again and re-selects namespace and database. Calls made while it is
 * reconnecting wait in the SDK and are re-sent once it is back; each store call gives up after
 * `queryTimeoutMs` with StoreError `unavailable`. A re-sent append whose first send had
 * committed is recognised by its batch id and answered with the original seqs instead of being
 * applied twice (for the session's latest append; an earlier one could only be replayed after
 * another append to the same session, which the in-process lane rules out).
 */
import { randomUUID } from "node:crypto";
import type * as Sdk from "surrealdb";
import { DuplicateEventError, isDiskFullError, SeqConflictError, StoreCorruptError, StoreError, type StoreHealth } from "../errors.js";
import {
  compactionRangeError,
  compareHits,
  joinText,
  pendingMessages,
  platformKey,
  prepareAppend,
  pruneCutoff,
  tokenMatchScore,
  type PreparedAppend,
} from "../events.js";
import { DEFAULT_MIGRATION_BATCH_ROWS } from "../migrations/index.js";
import { decodeCursor, encodeCursor, pageLimit, readBounds, searchLimit } from "../paging.js";
import { parseSessionKey } from "../session-key.js";
import type {
  AppendOptions,
  EventKind,
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
import { acquireEmbedded, embeddedEngineFactory, isEmbeddedOpen, loadNativeBinding, loadSdk, settleEmbeddedSchema, type SurrealSdk } from "./engine.js";
import { applyEngineMemoryEnv } from "./memory.js";
import { isKnockOn, migrate, withProgressTimeout } from "./migrate.js";
import { PROJECTED_ROWS_CACHE, ProjectedRows } from "./projected-rows.js";
import { searchScan } from "./search.js";
import { checkSurrealKvWal, describeWalDamage } from "./wal-check.js";
import { checkRocksDbWal } from "./rocksdb-wal.js";
import { isOnDiskEngine, parseSurrealUrl, type OnDiskEngine, type SurrealTarget, type SurrealUrlOptions } from "./url.js";
import { errorMessage, KeyedChain } from "../../util/index.js";
import {
  APPEND_BODY,
  eventRow,
  groupAppendSql,
  MAX_GROUP,
  PROJECT_SQL,
  projectedSession,
  projectionVars,
  SQL,
  toEvent,
  toInfo,
  type EventRow,
  type ProjectedSession,
  type SessionRow,
} from "./statements.js";
import type { ProjectedAppend } from "./statements.js";

export type { ProjectedAppend };

export { isOnDiskEngine, parseSurrealUrl, redactUrl, type OnDiskEngine, type SurrealTarget, type SurrealUrlOptions } from "./url.js";
export { detectOnDiskEngine, DEFAULT_ON_DISK_ENGINE } from "./detect.js";

/** Options of {@link createSurrealSessionLog}. */
export interface SurrealSessionLogOptions extends SessionLogOptions, SurrealUrlOptions {
  /** `mem://`, `surrealkv:///abs/dir` or `rocksdb:///abs/dir` (e.g. `<stateDir>/data`), `ws://host:8000`, `wss://…`. */
  url: string;
  /**
   * Level of the server's system user: `root` (default), `namespace` or `database` (the
   * user is defined on the configured namespace / database).
   */
  authLevel?: "root" | "namespace" | "database";
  /**
   * Open an embedded `surrealkv` store even though its write-ahead log is damaged in the middle
   * (default false: refuse with StoreCorruptError). The engine then drops every commit after the
   * damage; this is logged (warn). Set only by `exoclaw store check --accept-loss`.
   */
  acceptWalDamage?: boolean;
  /** The caller already ran {@link checkEmbeddedWal} on this store: skip the check. */
  walChecked?: boolean;
  /**
   * How long opening may take (connect, sign-in), ms; default 15000. Migrations get as long
   * from each piece of work they complete (a large store's copy runs in many).
   */
  connectTimeoutMs?: number;
  /**
   * Rows per statement of a migration's bounded copy (migration 8's dedupe keys); default
   * {@link DEFAULT_MIGRATION_BATCH_ROWS}. Tests lower it to cross page boundaries.
   */
  migrationBatchRows?: number;
  /** How long one store call may take, ms; default 30000. */
  queryTimeoutMs?: number;
  /** Receives connection state changes in server mode (reconnecting, reconnected), and the store turning broken. */
  logger?: { info(message: string): void; warn(message: string): void };
  /**
   * Called once when the store stops taking writes for good (see the log's `health()`): an
   * embedded engine whose write failed with a full disk or did not answer within
   * `queryTimeoutMs`. The gateway turns not-ready and restarts through its supervisor.
   */
  onUnhealthy?: (health: Exclude<StoreHealth, { ok: true }>) => void;
}

/** The SurrealDB session log, with the entry points the write-ahead journal projects through. */
export interface SurrealSessionLog extends SessionLog {
  /**
   * Writes appends to several sessions (at most one item per session) in one transaction,
   * bypassing the per-session lanes (the caller owns every write): {@link PROJECT_SQL}, a fixed
   * statement whatever the batch's size. Each session row is computed here from the row this
   * log last wrote for it (kept for the last 4,096 sessions projected); the rows of sessions it
   * does not keep at the expected seq are read first, with one query. Nothing is returned.
   * @throws StoreError `closed`, or the broken store's error; StoreError `internal` (or
   *   `disk_full`) when the transaction fails, e.g. a session's last seq is not `expectedSeq`
   *   (the whole batch is then not written)
   */
  projectAppends(items: readonly ProjectedAppend[]): Promise<void>;
  /**
   * Calls `onKey` with every stored dedupe key: `pm` keys as `platformKey` builds them, `idem`
   * keys as given. One full scan of the events that carry one (for the journal's filter at open).
   * @throws StoreError
   */
  scanDedupeKeys(onKey: (kind: "pm" | "idem", key: string) => void): Promise<void>;
  /**
   * Calls `onKey` with the key of every stored session (one scan of the session table; for the
   * journal's filter of sessions that exist, at open). @throws StoreError
   */
  scanSessionKeys(onKey: (sessionKey: string) => void): Promise<void>;
}

const EVENT_LIMIT_ALL = Number.MAX_SAFE_INTEGER;

const dynamicImport = (specifier: string): Promise<unknown> => import(specifier);

function isRetryable(err: unknown): boolean {
  const msg = errorMessage(err);
  return !/exoclaw:/.test(msg) && /conflict|can be retried|resource busy/i.test(msg);
}

/** `: message: cause` of a connection error (the SDK's own message is generic; the socket's cause names the problem). */
function describeCause(err: unknown): string {
  if (!(err instanceof Error)) return "";
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message : typeof cause === "string" ? cause : "";
  return `: ${err.message}${detail ? `: ${detail}` : ""}`;
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new StoreError("unavailable", what())), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Opens a SurrealDB session log and applies pending schema migrations.
 * @throws StoreError `invalid_argument` (bad URL/options), `unavailable` (cannot open or reach
 *   the database, bad credentials, timeout; the message names the URL without credentials),
 *   `schema` (server older than 3.0, or a database migrated by a newer exoclaw); StoreCorruptError
 *   (`corrupt`) when a surrealkv WAL is damaged in the middle (checked before the engine opens it)
 */
export async function createSurrealSessionLog(options: SurrealSessionLogOptions): Promise<SurrealSessionLog> {
  const target = parseSurrealUrl(options.url, options);
  const sdkLoading = loadSdk();
  sdkLoading.catch(() => {});
  if (isOnDiskEngine(target.engine)) {
    const engine = target.engine;
    // A bad engine memory setting fails here, before anything opens (the engine would ignore it).
    applyEngineMemoryEnv();
    // The native binding loads (15-50 ms; it opens nothing) while the WAL is read. Failures surface in acquireEmbedded.
    loadNativeBinding().catch(() => {});
    // Before the engine replays (and truncates) a damaged WAL; once open in this process it was checked.
    if (!isEmbeddedOpen(target.url) && options.walChecked !== true) await verifyWal(engine, target.path!, options);
    // Start opening the datastore (~40 ms in the native engine) while the SDK loads; the
    // engine's own acquire below gets the same shared open. Failures surface there.
    acquireEmbedded({ ...target, engine }).catch(() => {});
  }
  const sdk = await sdkLoading;
  const connectTimeoutMs = options.connectTimeoutMs ?? 15_000;
  const queryTimeoutMs = options.queryTimeoutMs ?? 30_000;
  const db = await connect(sdk, target, options, connectTimeoutMs);
  try {
    // The limit counts from the last progress: a migration copying a large store in pages may
    // take longer in all (tens of seconds for millions of events), a stuck engine may not.
    await withProgressTimeout(
      (progress) => migrate(db, target, { batchRows: options.migrationBatchRows ?? DEFAULT_MIGRATION_BATCH_ROWS, progress }),
      connectTimeoutMs,
      () => `SurrealDB store ${target.displayUrl}: schema set-up made no progress for ${connectTimeoutMs} ms`,
    );
  } catch (err) {
    void db.close().catch(() => {});
    const failure =
      err instanceof StoreError
        ? err
        : new StoreError("schema", `SurrealDB store ${target.displayUrl}: schema set-up failed: ${(err as Error).message}`, { cause: err });
    if (isOnDiskEngine(target.engine)) settleEmbeddedSchema(target.url, failure);
    throw failure;
  }
  if (isOnDiskEngine(target.engine)) settleEmbeddedSchema(target.url);
  return surrealLog(db, target, options, queryTimeoutMs);
}

/**
 * The engine's WAL check alone (a read of its WAL files, no engine opened), for a caller that
 * opens the engine later (`createSurrealSessionLog` with `walChecked`); nothing for a store open
 * in this process already or one that is not embedded on disk.
 * @throws as {@link verifyWal}
 */
export async function checkEmbeddedWal(options: SurrealSessionLogOptions): Promise<void> {
  const target = parseSurrealUrl(options.url, options);
  if (!isOnDiskEngine(target.engine) || isEmbeddedOpen(target.url)) return;
  await verifyWal(target.engine, target.path!, options);
}

/**
 * Refuses to open a surrealkv directory whose WAL is damaged in the middle (see wal-check.ts).
 * @throws StoreCorruptError naming the file and offset (unless `acceptWalDamage`); StoreError
 *   `unavailable` when a WAL file cannot be read
 */
async function verifyWal(engine: OnDiskEngine, dir: string, options: SurrealSessionLogOptions): Promise<void> {
  let check: Awaited<ReturnType<typeof checkSurrealKvWal>>;
  try {
    check = engine === "rocksdb" ? await checkRocksDbWal(dir) : await checkSurrealKvWal(dir);
  } catch (err) {
    throw new StoreError("unavailable", `cannot read the store's write-ahead log under ${dir}: ${(err as Error).message}`, { cause: err });
  }
  if (check.tornTail) {
    options.logger?.info(
      `the store's write-ahead log ends in a torn record (${check.tornTail.file}, byte ${check.tornTail.offset}): a write cut short by a crash, never acknowledged; the engine drops it`,
    );
  }
  if (!check.damage) return;
  const message = describeWalDamage(dir, check.damage);
  if (!options.acceptWalDamage) throw new StoreCorruptError(check.damage.file, check.damage.offset, message);
  options.logger?.warn(`opening anyway (accept loss): ${message}`);
}

/**
 * Connects (and for servers signs in), failing fast instead of waiting: the SDK's `connect()`
 * itself never rejects for an unreachable server or an embedded open error.
 */
async function connect(sdk: SurrealSdk, target: SurrealTarget, options: SurrealSessionLogOptions, timeoutMs: number): Promise<Sdk.Surreal> {
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => {});
  const timer = setTimeout(
    () => fail(new StoreError("unavailable", `cannot reach the SurrealDB store ${target.displayUrl}: no connection within ${timeoutMs} ms`)),
    timeoutMs,
  );
  const cleanup: (() => void)[] = [() => clearTimeout(timer)];
  let db: Sdk.Surreal | undefined;
  try {
    if (target.engine === "mem" || isOnDiskEngine(target.engine)) {
      const engine = embeddedEngineFactory(sdk, () => acquireEmbedded({ ...target, engine: target.engine as "mem" | "surrealkv" | "rocksdb" }), fail);
      db = new sdk.Surreal({ engines: { [target.engine]: engine } });
      await Promise.race([db.connect(target.url, { namespace: target.namespace, database: target.database }), failed]);
      return db;
    }
    const websocketImpl =
      (globalThis as { WebSocket?: typeof WebSocket }).WebSocket ?? ((await dynamicImport("ws")) as { WebSocket: typeof WebSocket }).WebSocket;
    const server = new sdk.Surreal({ engines: sdk.createRemoteEngines(), websocketImpl });
    db = server;
    const creds = target.credentials!;
    const level = options.authLevel ?? "root";
    const authentication =
      level === "root"
        ? { username: creds.username, password: creds.password }
        : level === "namespace"
          ? { namespace: target.namespace, username: creds.username, password: creds.password }
          : { namespace: target.namespace, database: target.database, username: creds.username, password: creds.password };
    let lastError: unknown;
    let connected = false;
    const stop = (why: string) => {
      if (!connected)
        fail(new StoreError("unavailable", `cannot reach the SurrealDB server ${target.displayUrl} (${why}${describeCause(lastError)})`, { cause: lastError }));
    };
    cleanup.push(
      server.subscribe("reconnecting", () => stop("connection failed")),
      server.subscribe("disconnected", () => stop("disconnected")),
    );
    await Promise.race([
      server.connect(target.url, {
        namespace: target.namespace,
        database: target.database,
        authentication,
        reconnect: {
          enabled: true,
          attempts: -1,
          retryDelay: 500,
          retryDelayMax: 10_000,
          retryDelayMultiplier: 2,
          retryDelayJitter: 0.1,
          catch: (err: Error) => {
            lastError = err;
            return true;
          },
        },
      }),
      failed,
    ]);
    connected = true;
    server.subscribe("reconnecting", () => options.logger?.warn(`SurrealDB store ${target.displayUrl}: connection lost, reconnecting`));
    server.subscribe("connected", () => options.logger?.info(`SurrealDB store ${target.displayUrl}: reconnected`));
    return server;
  } catch (err) {
    // Not awaited: closing an embedded engine whose open is stuck would wait for that open.
    void db?.close().catch(() => {});
    if (err instanceof StoreError) throw err;
    // Sign-in and version errors come from the server; their messages hold no credentials.
    throw new StoreError("unavailable", `cannot open the SurrealDB store ${target.displayUrl}: ${(err as Error).message}`, { cause: err });
  } finally {
    for (const c of cleanup) c();
  }
}

function surrealLog(db: Sdk.Surreal, target: SurrealTarget, options: SurrealSessionLogOptions, queryTimeoutMs: number): SurrealSessionLog {
  /** One operation per session key at a time, in call order. */
  const lanes = new KeyedChain();
  let closed = false;
  let closing: Promise<void> | undefined;
  const now = options.now ?? Date.now;

  const ensureOpen = () => {
    if (closed) throw new StoreError("closed", "the session log is closed");
  };

  /** The session rows as the projection last wrote them ({@link ProjectedRows}). */
  const projectedRows = new ProjectedRows(PROJECTED_ROWS_CACHE);
  const forgetProjected = (sessionKey: string) => projectedRows.forget(sessionKey);

  /** Runs one query; returns each statement's result; throws the first real statement error. */
  const exec = async (sql: string, vars: Record<string, unknown>): Promise<unknown[]> => {
    const responses = await withTimeout(
      db.query(sql, vars).responses(),
      queryTimeoutMs,
      () => `no answer from the SurrealDB store ${target.displayUrl} within ${queryTimeoutMs} ms`,
    );
    const failure = responses.find((r) => !r.success && !isKnockOn(r.error)) ?? responses.find((r) => !r.success);
    if (failure && !failure.success) throw failure.error;
    return responses.map((r) => (r.success ? r.result : undefined));
  };

  /** `exec` with retries on transaction conflicts, and any other failure as a StoreError. */
  const run = async (sql: string, vars: Record<string, unknown>): Promise<unknown[]> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await exec(sql, vars);
      } catch (err) {
        if (err instanceof StoreError) throw err;
        if (isRetryable(err) && attempt < 8) {
          await new Promise((r) => setTimeout(r, Math.random() * 2 ** attempt));
          continue;
        }
        throw err;
      }
    }
  };

  const internal = (what: string, err: unknown): StoreError => {
    if (err instanceof StoreError) return err;
    const msg = `SurrealDB store ${target.displayUrl}: ${what} failed: ${(err as Error).message}`;
    if (isDiskFullError(err)) {
      return new StoreError("disk_full", `${msg} (the disk is full)`, {
        cause: err,
        publicFailure: { reason: "disk_full", message: "session store: the disk is full; nothing was written" },
      });
    }
    return new StoreError("internal", msg, { cause: err });
  };

  /**
   * Broken: the embedded engine stopped taking writes. Measured with SurrealDB 3.0.2 (surrealkv):
   * after one commit fails with ENOSPC, every later write waits for ever, also once space is
   * free, while reads still answer; the datastore cannot be reopened in this process (see
   * engine.ts). So the first such failure (or a write the engine never answers) makes every
   * queued and later write fail at once with this error instead of each waiting
   * `queryTimeoutMs`, and tells the owner (`onUnhealthy`) so the process can restart. A server
   * (`ws://`) is never marked broken: its disk filling up is the server's to recover from.
   */
  let broken: StoreError | undefined;
  let health: StoreHealth = { ok: true };
  const embedded = isOnDiskEngine(target.engine) || target.engine === "mem";
  /** Records a failed write; marks the store broken when the embedded engine cannot take more. */
  const noteWriteFailure = (err: unknown): void => {
    if (!embedded || broken) return;
    const diskFull = isDiskFullError(err);
    const timedOut = err instanceof StoreError && err.code === "unavailable";
    if (!diskFull && !timedOut) return;
    const why = diskFull ? "a write failed because the disk is full" : `a write got no answer within ${queryTimeoutMs} ms`;
    const message = `SurrealDB store ${target.displayUrl}: writes stopped: ${why}; the embedded engine does not take writes again in this process, restart it (data written so far is intact)`;
    broken = new StoreError("unavailable", message, {
      cause: err,
      publicFailure: {
        reason: "store_unavailable",
        message: diskFull
          ? "session store unavailable: its disk filled up and it takes no writes until the gateway restarts"
          : "session store unavailable: it stopped answering writes; the gateway must restart",
      },
    });
    health = { ok: false, reason: diskFull ? "disk_full" : "store_unavailable", message };
    options.logger?.warn(message);
    options.onUnhealthy?.(health);
  };

  const inLane = <T>(key: string, fn: () => Promise<T>): Promise<T> => lanes.run(key, fn);

  /**
   * Group commit: one append transaction in flight at a time; appends (to different sessions —
   * the lanes keep one per session) that arrive meanwhile go into the next transaction
   * together, so concurrent sessions share its fixed cost (query overhead, fsync). If a group
   * fails, its appends are retried one by one so each gets its own outcome (a duplicate key in
   * one session must not fail another's append).
   * @returns the session's last seq before the append
   */
  const writes: { vars: Record<string, unknown>; resolve(last: number): void; reject(err: unknown): void }[] = [];
  let writing = false;
  const lastOf = (results: unknown[]) => results[results.length - 2];
  const write = (vars: Record<string, unknown>): Promise<number> =>
    new Promise<number>((resolve, reject) => {
      if (broken) return reject(broken);
      writes.push({ vars, resolve, reject });
      if (!writing) void flushWrites();
    });
  // Every queued write settles: each `run` is bounded by `queryTimeoutMs`, and once the store is
  // broken the rest of the queue is rejected at once instead of being tried one after another.
  const flushWrites = async (): Promise<void> => {
    writing = true;
    try {
      while (writes.length > 0) {
        if (broken) {
          for (const g of writes.splice(0)) g.reject(broken);
          break;
        }
        const group = writes.splice(0, MAX_GROUP);
        if (group.length > 1) {
          try {
            const lasts = lastOf(await run(groupAppendSql(group.length), Object.fromEntries(group.map((g, i) => [`b${i}`, g.vars])))) as unknown[];
            group.forEach((g, i) => g.resolve(Number(lasts[i])));
            continue;
          } catch (err) {
            noteWriteFailure(err);
            if (err instanceof StoreError || broken) {
              for (const g of group) g.reject(err);
              continue;
            }
            // Fall through: one by one.
          }
        }
        for (const g of group) {
          if (broken) {
            g.reject(broken);
            continue;
          }
          try {
            g.resolve(Number(lastOf(await run(SQL.append, g.vars))));
          } catch (err) {
            noteWriteFailure(err);
            g.reject(err);
          }
        }
      }
    } catch (err) {
      // Not expected (every step above catches); never leave a caller waiting.
      for (const g of writes.splice(0)) g.reject(err);
    } finally {
      writing = false;
    }
  };

  const readEvents = async (sessionKey: string, lo: number, hi: number): Promise<SessionEvent[]> => {
    if (hi < lo) return [];
    const [rows] = (await run(SQL.read, { key: sessionKey, lo, hi })) as [EventRow[]];
    return rows.map(toEvent);
  };

  const findOne = async (sql: string, k: string): Promise<SessionEventOf<"message_received"> | undefined> => {
    ensureOpen();
    try {
      const [rows] = (await run(sql, { k })) as [EventRow[]];
      const e = rows[0] ? toEvent(rows[0]) : undefined;
      return e?.kind === "message_received" ? e : undefined;
    } catch (err) {
      throw internal("lookup", err);
    }
  };

  /** The row of each event and the transaction parameters of one append (see {@link APPEND_BODY}). */
  const appendVars = (sessionKey: string, plan: PreparedAppend, expectedSeq: number | undefined, times: { now: number; created?: number }) => {
    const rows = plan.events.map(eventRow);
    const compaction = plan.lastCompactionIndex >= 0 ? (plan.events[plan.lastCompactionIndex] as SessionEventOf<"compaction">) : undefined;
    const vars = {
      key: sessionKey,
      parts: plan.parts,
      events: rows,
      batch: randomUUID(),
      expected: expectedSeq,
      min_last: plan.minLastSeq,
      now: times.now,
      created: times.created ?? times.now,
      reset_i: plan.lastResetIndex >= 0 ? plan.lastResetIndex : undefined,
      comp_i: compaction ? plan.lastCompactionIndex : undefined,
      comp_up: compaction?.data.upToSeq,
      open_floor: plan.openFloor,
      open_delta: plan.openDelta,
      // The dedupe rows of the batch (kind, key, index in the batch).
      dedupe: rows.flatMap((r, i) => {
        const out: { t: string; k: unknown; i: number }[] = [];
        if (r.pm_key !== undefined) out.push({ t: "pm", k: r.pm_key, i });
        if (r.idem_key !== undefined) out.push({ t: "idem", k: r.idem_key, i });
        return out;
      }),
      // The reply outbox rows of the batch (index in the batch, idempotency key).
      owed: plan.events.flatMap((e, i) => (e.kind === "message_received" && e.data.awaitsReply === true ? [{ i, k: e.data.idempotencyKey! }] : [])),
    };
    return { rows, vars };
  };

  /**
   * Writes one prepared append through the group commit and returns the events as stored.
   * @throws SeqConflictError, DuplicateEventError, StoreError
   */
  const commit = async (
    sessionKey: string,
    plan: PreparedAppend,
    expectedSeq: number | undefined,
    times: { now: number; created?: number },
  ): Promise<SessionEvent[]> => {
    const { rows, vars } = appendVars(sessionKey, plan, expectedSeq, times);
    let last: number;
    forgetProjected(sessionKey);
    try {
      last = await write(vars);
    } catch (err) {
      const msg = errorMessage(err);
      const thrown = /exoclaw:(\w+):(-?\d+)/.exec(msg);
      if (thrown?.[1] === "replay") last = Number(thrown[2]) - 1;
      else if (thrown?.[1] === "conflict") throw new SeqConflictError(sessionKey, expectedSeq!, Number(thrown[2]));
      else if (thrown?.[1] === "compaction") throw compactionRangeError(Number(thrown[2]), plan.minLastSeq);
      else if (/record `dedupe:/.test(msg)) throw await duplicateOf(plan, err);
      else throw internal("append", err);
    }
    forgetProjected(sessionKey);
    // What a read would return: the stored JSON parsed back.
    return rows.map((r, i) => {
      const e: Record<string, unknown> = {
        sessionKey,
        seq: last + 1 + i,
        kind: r.kind,
        data: joinText(r.kind as EventKind, JSON.parse(r.data as string) as Record<string, unknown>, r.text as string | undefined),
        at: r.at,
      };
      if (r.run_id !== undefined) e.runId = r.run_id;
      return e as SessionEvent;
    });
  };

  const log: SurrealSessionLog = {
    kind: target.engine,

    async projectAppends(items: readonly ProjectedAppend[]): Promise<void> {
      ensureOpen();
      if (broken) throw broken;
      if (items.length === 0) return;
      // Sessions whose previous row is not remembered at the seq this batch follows: read them (one query).
      const unknown = items.filter((i) => i.expectedSeq !== 0 && !projectedRows.isAt(i.sessionKey, i.expectedSeq)).map((i) => i.sessionKey);
      const read = new Map<string, ProjectedSession>();
      if (unknown.length > 0) {
        try {
          const [rows] = (await run(SQL.sessionRows, { keys: unknown })) as [SessionRow[]];
          for (const row of rows) read.set(String(row.id.id), projectedSession(row));
        } catch (err) {
          // Part of the projection's write: an engine that does not answer it is as broken as one that does not commit.
          noteWriteFailure(err);
          throw internal("projection", err);
        }
        for (const item of items) {
          if (item.expectedSeq === 0 || projectedRows.isAt(item.sessionKey, item.expectedSeq)) continue;
          // What the transaction's check would say (nothing is written).
          const last = read.get(item.sessionKey)?.lastSeq ?? 0;
          if (last !== item.expectedSeq) throw internal("projection", new Error(`exoclaw:conflict:${last}`));
        }
      }
      let vars: ReturnType<typeof projectionVars>;
      try {
        vars = projectionVars(items, (k) => read.get(k) ?? projectedRows.get(k));
      } catch (err) {
        throw internal("projection", err);
      }
      const { after, ...params } = vars;
      try {
        await run(PROJECT_SQL, params);
      } catch (err) {
        for (const item of items) forgetProjected(item.sessionKey);
        noteWriteFailure(err);
        throw internal("projection", err);
      }
      for (const [k, state] of after) projectedRows.remember(k, state);
    },

    async scanDedupeKeys(onKey: (kind: "pm" | "idem", key: string) => void): Promise<void> {
      ensureOpen();
      try {
        const [ids] = (await run(SQL.dedupeKeys, {})) as [[unknown, unknown][]];
        for (const [kind, key] of ids) {
          if ((kind === "pm" || kind === "idem") && typeof key === "string") onKey(kind, key);
        }
      } catch (err) {
        throw internal("scanDedupeKeys", err);
      }
    },

    async scanSessionKeys(onKey: (sessionKey: string) => void): Promise<void> {
      ensureOpen();
      try {
        const [ids] = (await run(SQL.sessionIds, {})) as [{ id: unknown }[]];
        for (const id of ids) onKey(String(id.id));
      } catch (err) {
        throw internal("scanSessionKeys", err);
      }
    },

    health: () => health,

    async append(sessionKey: string, events: readonly NewSessionEvent[], opts: AppendOptions = {}): Promise<number[]> {
      return (await log.appendEvents(sessionKey, events, opts)).map((e) => e.seq);
    },

    appendEvents(sessionKey: string, events: readonly NewSessionEvent[], opts: AppendOptions = {}): Promise<SessionEvent[]> {
      try {
        ensureOpen();
      } catch (err) {
        return Promise.reject(err);
      }
      let plan: ReturnType<typeof prepareAppend>;
      try {
        plan = prepareAppend(sessionKey, events, options);
      } catch (err) {
        return Promise.reject(err);
      }
      return inLane(sessionKey, async () => {
        if (plan.events.length === 0) {
          if (opts.expectedSeq !== undefined) {
            const info = await log.info(sessionKey);
            const last = info?.lastSeq ?? 0;
            if (last !== opts.expectedSeq) throw new SeqConflictError(sessionKey, opts.expectedSeq, last);
          }
          return [];
        }
        return commit(sessionKey, plan, opts.expectedSeq, { now: now() });
      });
    },

    async read(sessionKey: string, opts: ReadOptions = {}): Promise<SessionEvent[]> {
      ensureOpen();
      parseSessionKey(sessionKey);
      const { after, count } = readBounds(opts);
      try {
        return await readEvents(sessionKey, after + 1, Math.min(EVENT_LIMIT_ALL, after + count));
      } catch (err) {
        throw internal("read", err);
      }
    },

    async readHistory(sessionKey: string): Promise<SessionEvent[]> {
      ensureOpen();
      parseSessionKey(sessionKey);
      try {
        const results = await run(SQL.history, { key: sessionKey });
        return (results[results.length - 1] as EventRow[]).map(toEvent);
      } catch (err) {
        throw internal("readHistory", err);
      }
    },

    async info(sessionKey: string): Promise<SessionInfo | undefined> {
      ensureOpen();
      parseSessionKey(sessionKey);
      try {
        const [row] = (await run(SQL.info, { key: sessionKey })) as [SessionRow | undefined];
        return row ? toInfo(row) : undefined;
      } catch (err) {
        throw internal("info", err);
      }
    },

    async listSessions(opts: ListSessionsOptions = {}): Promise<SessionPage> {
      ensureOpen();
      const limit = pageLimit(opts.limit);
      const after = opts.cursor !== undefined ? decodeCursor(opts.cursor) : undefined;
      try {
        const [rows] = (await run(SQL.list, { agent: opts.agent, channel: opts.channel, peer: opts.peer, after, limit: limit + 1 })) as [SessionRow[]];
        const sessions = rows.slice(0, limit).map(toInfo);
        return rows.length > limit ? { sessions, nextCursor: encodeCursor(sessions[sessions.length - 1]!.sessionKey) } : { sessions };
      } catch (err) {
        throw internal("listSessions", err);
      }
    },

    async countSessions(): Promise<number> {
      ensureOpen();
      try {
        const [rows] = (await run(SQL.count, {})) as [{ n: number | bigint }[]];
        return Number(rows[0]?.n ?? 0);
      } catch (err) {
        throw internal("countSessions", err);
      }
    },

    async reset(sessionKey: string, reason?: string): Promise<number> {
      const [seq] = await log.append(sessionKey, [{ kind: "reset", data: reason === undefined ? {} : { reason } }]);
      return seq!;
    },

    delete(sessionKey: string): Promise<boolean> {
      try {
        ensureOpen();
        parseSessionKey(sessionKey);
      } catch (err) {
        return Promise.reject(err);
      }
      return inLane(sessionKey, async () => {
        if (broken) throw broken;
        forgetProjected(sessionKey);
        try {
          const results = await run(SQL.delete, { key: sessionKey });
          forgetProjected(sessionKey);
          return results[results.length - 2] === true;
        } catch (err) {
          noteWriteFailure(err);
          throw internal("delete", err);
        }
      });
    },

    async search(query: string, opts: SearchOptions = {}): Promise<SearchHit[]> {
      ensureOpen();
      const limit = searchLimit(opts.limit);
      if (opts.sessionKey !== undefined) parseSessionKey(opts.sessionKey);
      const scan = searchScan(query, opts.sessionKey);
      if (!scan) return [];
      let rows: EventRow[];
      try {
        [rows] = (await run(scan.sql, scan.vars)) as [EventRow[]];
      } catch (err) {
        throw internal("search", err);
      }
      const hits: SearchHit[] = [];
      for (const row of rows) {
        const event = toEvent(row);
        const score = tokenMatchScore(event, scan.terms);
        if (score !== undefined) hits.push({ event, score });
      }
      return hits.sort(compareHits).slice(0, limit);
    },

    findByPlatformMessageId(channel: string, account: string, platformMessageId: string) {
      return findOne(SQL.byPm, platformKey(channel, account, platformMessageId));
    },

    findByIdempotencyKey(idempotencyKey: string) {
      return findOne(SQL.byIdem, idempotencyKey);
    },

    async pendingTurns(): Promise<SessionEventOf<"message_received">[]> {
      ensureOpen();
      try {
        const [rows] = (await run(SQL.open, {})) as [SessionRow[]];
        const out: SessionEventOf<"message_received">[] = [];
        for (const row of rows) {
          const info = toInfo(row);
          out.push(...pendingMessages(await readEvents(info.sessionKey, info.resetSeq + 1, info.lastSeq)));
        }
        return out;
      } catch (err) {
        throw internal("pendingTurns", err);
      }
    },

    async pendingReplies(): Promise<SessionEventOf<"message_received">[]> {
      ensureOpen();
      try {
        const [rows] = (await run(SQL.owed, {})) as [{ session: string; seq: number | bigint }[]];
        const out: SessionEventOf<"message_received">[] = [];
        for (const row of rows) {
          const seq = Number(row.seq);
          const [e] = await readEvents(row.session, seq, seq);
          if (e?.kind === "message_received") out.push(e);
        }
        return out;
      } catch (err) {
        throw internal("pendingReplies", err);
      }
    },

    async settleReplies(idempotencyKeys: readonly string[]): Promise<void> {
      ensureOpen();
      if (idempotencyKeys.length === 0) return;
      if (broken) throw broken;
      try {
        await run(SQL.settle, { keys: [...idempotencyKeys] });
      } catch (err) {
        noteWriteFailure(err);
        throw internal("settleReplies", err);
      }
    },

    prune: (opts: PruneOptions) => prune(opts),

    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        await lanes.idle();
        await db.close().catch(() => {});
      })();
      return closing;
    },
  };

  /** Which dedupe key of the batch is taken (the unique index error does not say it reliably). */
  async function duplicateOf(plan: ReturnType<typeof prepareAppend>, cause: unknown): Promise<StoreError> {
    for (const k of plan.platformKeys) {
      if (await findOne(SQL.byPm, k).catch(() => undefined)) return new DuplicateEventError("platformMessageId", (JSON.parse(k) as string[])[2]!);
    }
    for (const k of plan.idempotencyKeys) {
      if (await findOne(SQL.byIdem, k).catch(() => undefined)) return new DuplicateEventError("idempotencyKey", k);
    }
    return internal("append", cause);
  }

  /**
   * Retention (see `SessionLog.prune`): lists the idle sessions, then removes them one at a time,
   * each in its session's lane and its own transaction that re-checks idleness and pending work,
   * so it never races an append of this process and never holds up other sessions for long.
   */
  async function prune(opts: PruneOptions): Promise<PruneResult> {
    ensureOpen();
    const cutoff = pruneCutoff(opts);
    const result: PruneResult = { sessions: 0, events: 0, kept: 0 };
    let rows: Pick<SessionRow, "id" | "last_seq" | "open_turns">[];
    let owing: Set<string>;
    try {
      [rows] = (await run(SQL.idle, { cutoff })) as [typeof rows];
      const [owed] = (await run(SQL.owed, {})) as [{ session: string }[]];
      owing = new Set(owed.map((o) => o.session));
    } catch (err) {
      throw internal("prune", err);
    }
    for (const row of rows) {
      const key = String(row.id.id);
      if (opts.signal?.aborted) break;
      if (opts.dryRun === true) {
        if (Number(row.open_turns) > 0 || owing.has(key)) result.kept++;
        else {
          result.sessions++;
          result.events += Number(row.last_seq);
        }
        continue;
      }
      const out = await inLane(key, async () => {
        if (broken) throw broken;
        forgetProjected(key);
        try {
          const results = await run(SQL.prune, { key, cutoff });
          forgetProjected(key);
          const out = results[results.length - 2] as string | number | bigint;
          if (typeof out !== "string") opts.onRemoved?.(key);
          return out;
        } catch (err) {
          noteWriteFailure(err);
          throw internal("prune", err);
        }
      });
      if (out === "kept") result.kept++;
      else if (out !== "fresh") {
        result.sessions++;
        result.events += Number(out);
      }
    }
    return result;
  }

  return log;
}
