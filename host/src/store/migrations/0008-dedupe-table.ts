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
 * - Existing keys are copied here, inside the migration's transaction, by two statements that run
 *   in the engine (nothing goes through the host, whatever the store's size). `INSERT IGNORE`: the
 *   migration may run again on a store that has it (its record lost), and then the rows exist.
 */
export const sql = /* surql */ `
DEFINE TABLE IF NOT EXISTS dedupe SCHEMALESS;
INSERT IGNORE INTO dedupe (SELECT VALUE { id: type::record('dedupe', ['pm', pm_key]), session: record::id(id)[0], seq: record::id(id)[1] } FROM event WHERE pm_key != NONE) RETURN NONE;
INSERT IGNORE INTO dedupe (SELECT VALUE { id: type::record('dedupe', ['idem', idem_key]), session: record::id(id)[0], seq: record::id(id)[1] } FROM event WHERE idem_key != NONE) RETURN NONE;
REMOVE INDEX IF EXISTS event_pm_key ON TABLE event;
REMOVE INDEX IF EXISTS event_idem_key ON TABLE event;
`;
