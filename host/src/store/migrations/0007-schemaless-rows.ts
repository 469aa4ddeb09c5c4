/**
 * Migration 7: `event` and `session` become SCHEMALESS, their field definitions are removed, and
 * so are the three session indexes no query uses.
 *
 * Why: SurrealDB processes every defined field of every row it writes (type check, coercion,
 * assertion), which was ~25-30 % of the engine's CPU per projected event (rocksdb, a projection
 * batch of 50 sessions x 2 turns of 5 events: ~80 -> ~55 us per event with this migration;
 * docs/architecture.md, "Where a durable turn's extra CPU goes"). Every row of these tables is
 * written by exoclaw's own statements (`surreal/statements.ts`) from values the host computed or
 * validated (`prepareAppend` checks each event's kind and data before it is journaled), so the
 * schema's checks were a second copy of those; reads still verify each event's checksum (`sum`)
 * and kind (`toEvent`). `session_agent`, `session_channel` and `session_peer` were updated on
 * every session write but never read: `listSessions`' filter (`$agent = NONE OR agent = $agent`)
 * is a table scan in SurrealDB 3's planner (EXPLAIN). Kept: `session_open` (`pendingTurns`), the
 * unique dedupe indexes `event_pm_key` and `event_idem_key`, and the `outbox` and
 * `memory_vector` schemas (written rarely).
 *
 * Existing rows keep their values: removing a field's definition does not touch stored records.
 */
export const sql = /* surql */ `
ALTER TABLE event SCHEMALESS;
REMOVE FIELD IF EXISTS kind ON TABLE event;
REMOVE FIELD IF EXISTS at ON TABLE event;
REMOVE FIELD IF EXISTS run_id ON TABLE event;
REMOVE FIELD IF EXISTS data ON TABLE event;
REMOVE FIELD IF EXISTS text ON TABLE event;
REMOVE FIELD IF EXISTS pm_key ON TABLE event;
REMOVE FIELD IF EXISTS idem_key ON TABLE event;
REMOVE FIELD IF EXISTS sum ON TABLE event;
ALTER TABLE session SCHEMALESS;
REMOVE FIELD IF EXISTS agent ON TABLE session;
REMOVE FIELD IF EXISTS channel ON TABLE session;
REMOVE FIELD IF EXISTS account ON TABLE session;
REMOVE FIELD IF EXISTS peer ON TABLE session;
REMOVE FIELD IF EXISTS last_seq ON TABLE session;
REMOVE FIELD IF EXISTS reset_seq ON TABLE session;
REMOVE FIELD IF EXISTS compaction_seq ON TABLE session;
REMOVE FIELD IF EXISTS compaction_up_to ON TABLE session;
REMOVE FIELD IF EXISTS open_turns ON TABLE session;
REMOVE FIELD IF EXISTS created_at ON TABLE session;
REMOVE FIELD IF EXISTS updated_at ON TABLE session;
REMOVE FIELD IF EXISTS last_batch ON TABLE session;
REMOVE FIELD IF EXISTS last_batch_first ON TABLE session;
REMOVE INDEX IF EXISTS session_agent ON TABLE session;
REMOVE INDEX IF EXISTS session_channel ON TABLE session;
REMOVE INDEX IF EXISTS session_peer ON TABLE session;
`;
