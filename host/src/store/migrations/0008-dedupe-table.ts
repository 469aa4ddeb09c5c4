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
 * - Existing keys are copied here, inside the migration's transaction, by one statement that runs
 *   in the engine (one scan of `event`; nothing goes through the host, whatever the store's size).
 *   `INSERT IGNORE`: the migration may run again on a store that has it (its record lost), and
 *   then the rows exist. Measured (rocksdb, 10,000 sessions, 100,000 events, every message with
 *   both keys: 40,000 rows, load ~5-6): the first open after the upgrade 3.9 / 6.3 s (two scans,
 *   one per key kind: 4.9 / 5.8 s); the engine holds the copied rows in memory until the commit
 *   (~40,000 small objects here). Later opens pay nothing.
 */
export const sql = /* surql */ `
DEFINE TABLE IF NOT EXISTS dedupe SCHEMALESS;
INSERT IGNORE INTO dedupe array::filter(array::flatten(
  SELECT VALUE [
    IF pm_key != NONE { { id: type::record('dedupe', ['pm', pm_key]), session: record::id(id)[0], seq: record::id(id)[1] } },
    IF idem_key != NONE { { id: type::record('dedupe', ['idem', idem_key]), session: record::id(id)[0], seq: record::id(id)[1] } }
  ] FROM event WHERE pm_key != NONE OR idem_key != NONE
), |$v| $v != NONE) RETURN NONE;
REMOVE INDEX IF EXISTS event_pm_key ON TABLE event;
REMOVE INDEX IF EXISTS event_idem_key ON TABLE event;
`;
