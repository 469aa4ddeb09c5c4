import { errorMessage } from "../util/index.js";

/** Machine-readable reason of a {@link StoreError}. */
export type StoreErrorCode =
  /** `expectedSeq` did not match (see {@link SeqConflictError}). */
  | "conflict"
  /** A dedupe key is already stored (see {@link DuplicateEventError}). */
  | "duplicate"
  /** Malformed session key, event, option or URL. */
  | "invalid_argument"
  /** The log was closed. */
  | "closed"
  /** The database cannot be reached or opened. */
  | "unavailable"
  /** The database schema is unknown or newer than this build. */
  | "schema"
  /** The disk under the store is full (ENOSPC); nothing was written. */
  | "disk_full"
  /** The store's files are damaged: opening would lose committed data ({@link StoreCorruptError}), or a read found an event whose bytes do not match its checksum. */
  | "corrupt"
  /** Any other database failure. */
  | "internal";

/**
 * What a client may be told about a store failure: a fixed text without paths or URLs, and a
 * machine-readable reason. The JSON-RPC layer (`toErrorObject`, host/src/protocol/jsonrpc.ts)
 * answers an error carrying one with -32603, this message and `data.reason`; see
 * docs/protocol.md ("Errors") and docs/reliability.md ("Full disk").
 */
export interface PublicStoreFailure {
  /** `disk_full` (the disk is full now) or `store_unavailable` (the store stopped accepting writes). */
  reason: "disk_full" | "store_unavailable";
  message: string;
}

/** A session-store failure. Messages never contain credentials. */
export class StoreError extends Error {
  /** Set on failures a client should hear about as such (full disk, broken store); see {@link PublicStoreFailure}. */
  readonly publicFailure?: PublicStoreFailure;

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown; publicFailure?: PublicStoreFailure },
  ) {
    super(message, options);
    this.name = "StoreError";
    if (options?.publicFailure) this.publicFailure = options.publicFailure;
  }
}

/** Messages of the operating system and of SurrealKV for "no space left on device" (errno 28). */
const DISK_FULL = /no space left on device|no storage space|os error 28|ENOSPC|disk quota exceeded|EDQUOT/i;

/** True when a database error says the disk (or the user's quota) is full. */
export function isDiskFullError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const msg = errorMessage(e);
    if (DISK_FULL.test(msg) || (e as { code?: unknown }).code === "ENOSPC") return true;
  }
  return false;
}

/**
 * The health of a session store, for readiness (`GET /health`): `ok`, or the reason it cannot
 * take writes. `message` is operator text (may name the store's directory, never credentials).
 */
export type StoreHealth = { ok: true } | { ok: false; reason: "disk_full" | "store_unavailable"; message: string };

/** `append` with `expectedSeq` found another last seq; nothing was written. */
export class SeqConflictError extends StoreError {
  constructor(
    readonly sessionKey: string,
    readonly expectedSeq: number,
    readonly actualSeq: number,
  ) {
    super("conflict", `session ${sessionKey}: expected last seq ${expectedSeq}, found ${actualSeq}`);
    this.name = "SeqConflictError";
  }
}

/** `append` carried a platform message id or idempotency key that is already stored; nothing was written. */
export class DuplicateEventError extends StoreError {
  constructor(
    readonly key: "platformMessageId" | "idempotencyKey",
    readonly value: string,
  ) {
    super("duplicate", `a message with this ${key} is already stored: ${JSON.stringify(value)}`);
    this.name = "DuplicateEventError";
  }
}

/**
 * The embedded store's write-ahead log is damaged in the middle: opening it would make the
 * engine cut the log at the damage and silently drop every commit after it (see
 * `surreal/wal-check.ts`). Nothing was opened or changed. The message names the file, the byte
 * offset and what to do.
 */
export class StoreCorruptError extends StoreError {
  constructor(
    /** The damaged `.wal` file (absolute path). */
    readonly file: string,
    /** Byte offset in `file` of the first record that does not verify. */
    readonly offset: number,
    message: string,
  ) {
    super("corrupt", message);
    this.name = "StoreCorruptError";
  }
}
