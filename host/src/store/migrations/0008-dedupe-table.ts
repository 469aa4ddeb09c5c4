import type { MigrationContext } from "./types.js";

/**
 * Migration 8: the dedupe keys leave the event rows' `UNIQUE` indexes for their own table.
 *
 * - `dedupe:['pm', key]` (a message's `platformKey(channel, account, platform message id)`) and
 *   `dedupe:['idem', idempotency key]`: one row per key, whose record id IS the key, so a second
 *   row for it cannot be created ("Database record `dedupe:[…]` already exists" fails the
 *   transaction, as the unique index did); `session` and `seq` point at the message. Written in
 *   the append's (or projection's) transaction with the event row, only for messages that carry a
 *   key (`surreal/statements.ts`).
 * - `event_pm_key` and `event_idem_key` are removed. Every event row paid for both on every write
 *   (~5.5 µs of engine CPU of the ~20 µs per row, rocksdb), although most rows carry neither key.
 *   `pm_key` / `idem_key` stay on the message rows as plain columns: deleting or pruning a session
 *   reads them to remove its `dedupe` rows, so a deleted session's keys are free again, as before.
 * - Existing keys are copied first by {@link copyDedupeKeys}, in pages of `batchRows` event rows,
 *   each page one transaction run in the engine (nothing but the page's last event id
 *   comes back to the host), so the engine never holds more than one page of copied rows,
 *   whatever the store's size. Until then the unique indexes still refuse duplicates; `sql` below
 *   removes them and records the version in one transaction once every key is copied.
 */
export const sql = /* surql */ `
DEFINE TABLE IF NOT EXISTS dedupe SCHEMALESS;
REMOVE INDEX IF EXISTS event_pm_key ON TABLE event;
REMOVE INDEX IF EXISTS event_idem_key ON TABLE event;
REMOVE TABLE IF EXISTS migration_progress;
`;

/**
 * One page: the next `$limit` event rows from `from` in record-id order (whether or not they carry
 * a key, so that a page's scan is bounded too, not only what it keeps: a store whose keyed
 * messages are rare would otherwise scan most of it in one statement), their keys as `dedupe`
 * rows, then the cursor.
 */
const page = (from: string) => /* surql */ `
BEGIN TRANSACTION;
LET $rows = SELECT id, pm_key, idem_key FROM ${from} LIMIT $limit;
LET $keyed = array::filter($rows, |$r| $r.pm_key != NONE OR $r.idem_key != NONE);
INSERT IGNORE INTO dedupe array::filter(array::flatten(array::map($keyed, |$r| [
  IF $r.pm_key != NONE { { id: type::record('dedupe', ['pm', $r.pm_key]), session: record::id($r.id)[0], seq: record::id($r.id)[1] } },
  IF $r.idem_key != NONE { { id: type::record('dedupe', ['idem', $r.idem_key]), session: record::id($r.id)[0], seq: record::id($r.id)[1] } }
])), |$v| $v != NONE) RETURN NONE;
LET $last = IF array::len($rows) > 0 { record::id(array::last($rows).id) };
DEFINE TABLE IF NOT EXISTS migration_progress SCHEMALESS;
IF $last != NONE { UPSERT type::record('migration_progress', 8) CONTENT { after: $last } RETURN NONE };
RETURN { rows: array::len($rows), last: $last };
COMMIT TRANSACTION;`;

const FIRST_PAGE = page("event");
/** `event:[$from_key, $from_seq]>..`: the rows after the cursor (a range scan, not a scan from the start). */
const NEXT_PAGE = page("event:[$from_key, $from_seq]>..");

/**
 * Copies every dedupe key stored on event rows (`pm_key`, `idem_key`) into `dedupe` rows, page by
 * page in event-id order. Idempotent (`INSERT IGNORE`: a key already copied, or written by a
 * newer exoclaw, stays as it is) and resumable: each page's transaction also stores the last
 * event id it covered as `migration_progress:8`, so a process stopped midway (crash, the open's
 * time limit) continues after that id at its next open; the migration's own transaction removes
 * the cursor's table. Calls `ctx.progress()` after each page.
 * @throws the engine's error for a failing page (the pages before it stay copied)
 */
export async function copyDedupeKeys(ctx: MigrationContext): Promise<void> {
  // NONE when the table does not exist (the first attempt).
  const [cursor] = (await ctx.query("RETURN type::record('migration_progress', 8).after;")) as [[string, number] | undefined | null];
  let after = cursor ?? undefined;
  for (;;) {
    const results = await ctx.query(
      after === undefined ? FIRST_PAGE : NEXT_PAGE,
      after === undefined ? { limit: ctx.batchRows } : { limit: ctx.batchRows, from_key: after[0], from_seq: after[1] },
    );
    ctx.progress();
    const { rows, last } = results.findLast((r) => r !== null && r !== undefined) as { rows: number; last?: [string, number] };
    if (rows < ctx.batchRows || last === undefined) return;
    after = last;
  }
}
