import { StoreError } from "./errors.js";

/** Page size of `listSessions`: default 100, clamped to 1..1000. */
export function pageLimit(limit: number | undefined): number {
  return clampLimit(limit, 100, 1000);
}

/** Hits of `search`: default 20, clamped to 1..200. */
export function searchLimit(limit: number | undefined): number {
  return clampLimit(limit, 20, 200);
}

function clampLimit(limit: number | undefined, dflt: number, max: number): number {
  if (limit === undefined) return dflt;
  if (typeof limit !== "number" || !Number.isFinite(limit)) throw new StoreError("invalid_argument", `limit must be a number, got ${String(limit)}`);
  return Math.min(max, Math.max(1, Math.floor(limit)));
}

/** An opaque `listSessions` cursor for "after this session key". */
export function encodeCursor(sessionKey: string): string {
  return Buffer.from(sessionKey, "utf8").toString("base64url");
}

/**
 * The session key inside a cursor.
 * @throws StoreError `invalid_argument` for a string that no `listSessions` call returned
 */
export function decodeCursor(cursor: string): string {
  const key = typeof cursor === "string" && /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, "base64url").toString("utf8") : "";
  if (!key.startsWith("agent:")) throw new StoreError("invalid_argument", "invalid listSessions cursor");
  return key;
}

/**
 * Validated `read` bounds: events with `after < seq <= after + count`.
 * @throws StoreError `invalid_argument` for a negative or non-numeric `afterSeq`/`limit`
 */
export function readBounds(options: { afterSeq?: number; limit?: number }): { after: number; count: number } {
  const check = (name: string, v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
      throw new StoreError("invalid_argument", `${name} must be a non-negative number, got ${String(v)}`);
    return Math.floor(v);
  };
  return { after: check("afterSeq", options.afterSeq, 0), count: check("limit", options.limit, Number.MAX_SAFE_INTEGER) };
}
