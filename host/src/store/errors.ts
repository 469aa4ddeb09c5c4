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
  /** Any other database failure. */
  | "internal";

/** A session-store failure. Messages never contain credentials. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "StoreError";
  }
}

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
