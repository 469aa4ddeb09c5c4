/**
 * Full-text search on the SurrealDB back end without a per-event index (migration 5): the engine
 * scans event rows and keeps those whose lower-cased text contains every term (a cheap native
 * filter, a superset of the matches), and the host scores them exactly as the memory and
 * JetStream back ends do (`tokenMatchScore`: every term must be a word of the text, or the start
 * of one when the term has 3 or more characters), best first.
 *
 * Why not SurrealDB's BM25 index: it cost ~90 % of projecting an event and ~74 % of the bytes
 * written per turn (docs/architecture.md, "Store"), on the path every turn takes, for a search
 * only operators run. A scan costs per search instead: measured in `bench/persistence.mjs`.
 */
import { tokenize } from "../events.js";

/** At most this many pre-filtered rows are scored per search (a bound on memory per search). */
export const SEARCH_SCAN_CAP = 20_000;

/** At most this many query terms take part in the engine-side filter (the rest are checked in process). */
const FILTER_TERMS = 8;

/** The query and parameters of one search scan. */
export interface SearchScan {
  sql: string;
  vars: Record<string, unknown>;
  /** The query's tokens (for `tokenMatchScore`). */
  terms: string[];
}

/**
 * Builds the scan for `query`: `undefined` when the query has no word to look for.
 * Terms with characters outside ASCII are left to the in-process check (the engine's lower-casing
 * does not fold accents the way `tokenize` does, so filtering on them could drop a match).
 * @param query the operator's search text
 * @param sessionKey restricts the scan to one session's events (a range read of its rows)
 */
export function searchScan(query: string, sessionKey: string | undefined): SearchScan | undefined {
  const terms = [...new Set(tokenize(String(query)))];
  if (terms.length === 0) return undefined;
  const filtered = terms.filter((t) => /^[\x20-\x7e]+$/.test(t)).slice(0, FILTER_TERMS);
  const vars: Record<string, unknown> = { cap: SEARCH_SCAN_CAP };
  const where = ["text != NONE", ...filtered.map((t, i) => `string::contains(string::lowercase(text), $t${i})`)];
  filtered.forEach((t, i) => {
    vars[`t${i}`] = t;
  });
  let from = "event";
  if (sessionKey !== undefined) {
    from = "event:[$key, 1]..=[$key, $last]";
    vars.key = sessionKey;
    vars.last = Number.MAX_SAFE_INTEGER;
  }
  return { sql: `SELECT * FROM ${from} WHERE ${where.join(" AND ")} LIMIT $cap;`, vars, terms };
}
