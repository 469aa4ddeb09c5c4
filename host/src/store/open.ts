import { existsSync } from "node:fs";
import { chmod, mkdir, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { StoreError, type StoreHealth } from "./errors.js";
import { createMemorySessionLog } from "./memory-log.js";
import { createJournaledSessionLog, lockJournalDir, takeCheckpoint, type EngineSnapshot } from "./journal/index.js";
import { BloomFilter } from "./journal/bloom.js";
import {
  checkEmbeddedWal,
  createSurrealSessionLog,
  detectOnDiskEngine,
  isOnDiskEngine,
  parseSurrealUrl,
  redactUrl,
  type SurrealSessionLog,
} from "./surreal/index.js";
import { isEmbeddedOpen } from "./surreal/engine.js";
import type { SessionLog } from "./types.js";

/** The in-process store's name in `[store] url` / `EXOCLAW_STORE`. */
export const MEMORY_STORE_URL = "memory";

/** The write-ahead journal's directory inside a surrealkv store directory (see `journal/`). */
export const JOURNAL_DIR = "journal";

/** What {@link openSessionLog} needs: the resolved `[store]` settings. */
export interface OpenSessionLogOptions {
  /**
   * `memory` (in process, lost on exit), `mem://` (embedded SurrealDB in memory),
   * `surrealkv:///abs/dir[?sync=…][&journal=off]` or `rocksdb:///abs/dir[?…]` (embedded SurrealDB
   * on disk, behind exoclaw's write-ahead journal in `<dir>/journal` unless `journal=off`), `ws://` / `wss://` (server),
   * `nats://host:port[,nats://...]` (the JetStream session log, shared by several gateways).
   */
  url: string;
  namespace?: string;
  database?: string;
  username?: string;
  /** Server password (already read from its environment variable; never logged). */
  password?: string;
  /** Redact secrets before writing (see `redact.ts`). */
  redact?: boolean;
  /** Receives server reconnect notices (SurrealDB server only) and the store turning broken. */
  logger?: { info(message: string): void; warn(message: string): void };
  /** Open an embedded store whose WAL is damaged, dropping what follows the damage (see `SurrealSessionLogOptions.acceptWalDamage`). */
  acceptWalDamage?: boolean;
  /** Called once when the store stops taking writes for good (embedded SurrealDB; see `SessionLog.health`). */
  onUnhealthy?: (health: Exclude<StoreHealth, { ok: true }>) => void;
  /**
   * When the embedded engine's background open may begin (journaled on-disk stores that are
   * ready before their engine): once this settles, or at the first operation that needs the
   * engine, whichever comes first. The gateway passes its listening, so the engine's open (its
   * native load, RocksDB's open, the schema check) does not share the CPU with the start-up.
   * Absent: at once.
   */
  engineStart?: Promise<unknown>;
}

/**
 * Opens the session log a gateway or CLI is configured with; creates a surrealkv directory (and
 * its parents) with mode 0700 first, and narrows an existing one group or others can open.
 * @throws StoreError `invalid_argument` (bad URL, or a rocksdb/surrealkv URL on the other engine's
 *   directory), `unavailable` (cannot open/reach, e.g. the
 *   directory is locked by a running gateway), `schema` (see `createSurrealSessionLog`);
 *   StoreCorruptError (`corrupt`) when a surrealkv WAL is damaged in the middle
 */
export async function openSessionLog(options: OpenSessionLogOptions): Promise<SessionLog> {
  if (options.url === MEMORY_STORE_URL) return createMemorySessionLog({ redact: options.redact === true });
  if (options.url.startsWith("nats://")) {
    const servers = options.url
      .split(",")
      .map((u) => u.trim())
      .filter((u) => u.length > 0);
    // Loaded on demand: the NATS client costs ~65 ms to import and most gateways never need it.
    const { createJetStreamSessionLog } = await import("./jetstream-store.js");
    try {
      return await createJetStreamSessionLog({ servers, namespace: options.namespace, redact: options.redact === true });
    } catch (err) {
      const code = err instanceof StoreError ? err.code : "unavailable";
      throw new StoreError(code, `cannot open the JetStream session log at ${describeStoreUrl(options.url)}: ${(err as Error).message}`, { cause: err });
    }
  }
  const target = parseSurrealUrl(options.url, options);
  let narrowed: Promise<void> = Promise.resolve();
  // Read before anything is created: an engine directory that does not exist yet is known empty.
  const newEngine = isOnDiskEngine(target.engine) && !isEmbeddedOpen(target.url) && detectOnDiskEngine(target.path!) === undefined;
  if (isOnDiskEngine(target.engine)) {
    // One engine cannot read the other's files (no silent migration): name the right URL.
    const found = detectOnDiskEngine(target.path!);
    if (found !== undefined && found !== target.engine) {
      throw new StoreError(
        "invalid_argument",
        `${target.displayUrl}: the directory holds a ${found} store, not ${target.engine}; use ${found}://${target.path} (the default URL picks the engine a store was written by)`,
      );
    }
    // The directory holds every conversation: private to the user (an existing one is narrowed).
    // A journaled store's journal directory is made with it (one call: both 0700).
    const made = target.journal !== false ? join(target.path!, JOURNAL_DIR) : target.path!;
    await mkdir(made, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw new StoreError("unavailable", `cannot create the store directory ${made}: ${(err as Error).message}`, { cause: err });
    });
    // Narrowed while the journal's directory is made and locked (independent steps).
    narrowed = narrowStoreDir(target.path!, options.logger);
  }
  const journaled = isOnDiskEngine(target.engine) && target.journal !== false;
  // The journal and the engine may both find the store broken: the owner hears it once.
  let unhealthy = false;
  const onUnhealthy = (health: Exclude<StoreHealth, { ok: true }>) => {
    if (unhealthy) return;
    unhealthy = true;
    options.onUnhealthy?.(health);
  };
  const surrealOptions = {
    url: options.url,
    namespace: options.namespace,
    database: options.database,
    username: options.username,
    password: options.password,
    // With the journal, events are redacted before they are journaled.
    redact: !journaled && options.redact === true,
    logger: options.logger,
    onUnhealthy,
    acceptWalDamage: options.acceptWalDamage === true,
  };
  if (!journaled) {
    // `?journal=off` on a journaled store's directory: its lock too (so it never opens the engine
    // under a gateway whose engine is still opening). A directory never journaled has none.
    const journalDir = isOnDiskEngine(target.engine) ? join(target.path!, JOURNAL_DIR) : undefined;
    await narrowed;
    const dirLock = journalDir !== undefined && existsSync(journalDir) ? await lockJournalDir(journalDir, target.displayUrl) : undefined;
    try {
      const log = await createSurrealSessionLog(surrealOptions);
      // SurrealKV chmods its `wal` directory to 0750 itself, past the process umask.
      if (isOnDiskEngine(target.engine)) await narrowDirectories(target.path!);
      if (dirLock === undefined) return log;
      const close = log.close.bind(log);
      return Object.assign(log, { close: () => close().finally(() => dirLock.release()) });
    } catch (err) {
      await dirLock?.release();
      throw err;
    }
  }
  // The journaled store is ready when its journal is open (docs/architecture.md, "Start-up"):
  // the engine opens in the background when the journal knows what it holds without it (a new
  // store, or the checkpoint of a clean close); else (a crash, a first start after an upgrade)
  // the open waits for the engine, as before.
  const dir = target.path!;
  const journalDir = join(dir, JOURNAL_DIR);
  // One process per directory, before anything is journaled (the engine's own lock comes later).
  // The journal's directory was made with the store's (above).
  const [lock] = await Promise.all([lockJournalDir(journalDir, target.displayUrl), narrowed]);
  let engine: Promise<SurrealSessionLog> | undefined;
  try {
    // A damaged engine WAL still refuses the start (a read of its files, no engine opened).
    // Both only read (the checkpoint is deleted once read); neither opens the engine.
    const [, known] = await Promise.all([
      checkEmbeddedWal(surrealOptions),
      newEngine
        ? Promise.resolve<EngineSnapshot>({ filter: new BloomFilter(), pendingTurns: [], pendingReplies: [] })
        : takeCheckpoint(journalDir, dir, options.logger),
    ]);
    // The engine's open begins at `engineStart`, or when something needs it (`startEngine`).
    let started = false;
    // Set by the journal's close when the engine never began: a later signal must not open it.
    let cancelled = false;
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    const begin = () => {
      if (started || cancelled) return;
      started = true;
      open();
    };
    if (known !== undefined && options.engineStart !== undefined) options.engineStart.then(begin, begin);
    else begin();
    const tReady = performance.now();
    engine = gate.then(() => {
      const tStart = performance.now();
      return createSurrealSessionLog({ ...surrealOptions, walChecked: true }).then(async (log) => {
        // SurrealKV chmods its `wal` directory to 0750 itself, past the process umask.
        await narrowDirectories(dir);
        if (known !== undefined) {
          const ms = (t: number) => Math.round(performance.now() - t);
          options.logger?.info(`the store's engine is open (${ms(tStart)} ms; began ${Math.round(tStart - tReady)} ms after the journal was ready)`);
        }
        return log;
      });
    });
    engine.catch(() => {});
    // Without what the journal needs to know, the engine's open is part of the store's.
    const inner = known === undefined ? await engine : engine;
    return await createJournaledSessionLog({
      inner,
      kind: target.engine,
      known,
      checkpointEngineDir: dir,
      startEngine: begin,
      cancelEngineStart: () => {
        if (!started) cancelled = true;
        return cancelled;
      },
      lock,
      dir: journalDir,
      displayUrl: target.displayUrl,
      redact: options.redact === true,
      logger: options.logger,
      onUnhealthy,
      acceptLoss: options.acceptWalDamage === true,
    });
  } catch (err) {
    // Not awaited when still opening: the close follows the open.
    void engine?.then((log) => log.close()).catch(() => {});
    await lock.release();
    throw err;
  }
}

/**
 * Narrows the store directory `dir` to mode 0700 when group or others may open it, telling
 * `logger` (a warning either way: narrowed, or why it could not be). Never throws.
 */
async function narrowStoreDir(dir: string, logger: OpenSessionLogOptions["logger"]): Promise<void> {
  const mode = await stat(dir).then(
    (st) => st.mode & 0o777,
    () => 0,
  );
  if ((mode & 0o077) === 0) return;
  await chmod(dir, 0o700).then(
    () => logger?.warn(`the store directory ${dir} was open to other users (mode ${mode.toString(8)}); its mode is now 700`),
    (err: unknown) =>
      logger?.warn(`the store directory ${dir} is open to other users (mode ${mode.toString(8)}) and cannot be narrowed: ${(err as Error).message}`),
  );
}

/**
 * Removes group and other permissions from every directory under `dir` (not `dir` itself;
 * files keep their mode: the process umask already made them 0600). Best effort: an entry that
 * vanishes meanwhile is skipped.
 */
async function narrowDirectories(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory()) continue;
    const path = join(dir, e.name);
    const mode = await stat(path).then(
      (st) => st.mode & 0o777,
      () => 0,
    );
    if ((mode & 0o077) !== 0) await chmod(path, mode & 0o700).catch(() => {});
    await narrowDirectories(path);
  }
}

/** The store URL for logs and messages: credentials and query string removed (each server of a `nats://` list). */
export function describeStoreUrl(url: string): string {
  if (url === MEMORY_STORE_URL) return url;
  if (url.startsWith("nats://")) {
    return url
      .split(",")
      .map((u) => u.trim().replace(/\/\/[^/@]*@/, "//"))
      .join(",");
  }
  return redactUrl(url);
}
