/**
 * Migration 1: sessions and their events.
 *
 * - `session:⟨key⟩` — one row per session: the key's parts as columns (filters never parse
 *   keys), `last_seq`, `reset_seq`, the latest compaction, `open_turns` (messages not yet
 *   answered, so `pendingTurns` reads only sessions that have some), timestamps in ms, and the
 *   id of the last append batch (a replayed append is recognised, see `surreal/index.ts`).
 * - `event:[key, seq]` — one row per event. The array id keeps a session's events together and
 *   in order, so reads are range scans. `data` is the event's JSON without its free-text field;
 *   that is in `text`, full-text indexed (BM25). `pm_key` (channel, account, platform message
 *   id) and `idem_key` are unique; events without them are not indexed.
 */
export const sql = /* surql */ `
DEFINE ANALYZER exo_text TOKENIZERS blank, class FILTERS lowercase, ascii, snowball(english);

DEFINE TABLE session SCHEMAFULL;
DEFINE FIELD agent ON session TYPE string;
DEFINE FIELD channel ON session TYPE string;
DEFINE FIELD account ON session TYPE string;
DEFINE FIELD peer ON session TYPE string;
DEFINE FIELD last_seq ON session TYPE int;
DEFINE FIELD reset_seq ON session TYPE int;
DEFINE FIELD compaction_seq ON session TYPE option<int>;
DEFINE FIELD compaction_up_to ON session TYPE option<int>;
DEFINE FIELD open_turns ON session TYPE int;
DEFINE FIELD created_at ON session TYPE int;
DEFINE FIELD updated_at ON session TYPE int;
DEFINE FIELD last_batch ON session TYPE option<string>;
DEFINE FIELD last_batch_first ON session TYPE option<int>;
DEFINE INDEX session_agent ON session FIELDS agent;
DEFINE INDEX session_channel ON session FIELDS channel;
DEFINE INDEX session_peer ON session FIELDS peer;
DEFINE INDEX session_open ON session FIELDS open_turns;

DEFINE TABLE event SCHEMAFULL;
DEFINE FIELD kind ON event TYPE string
  ASSERT $value IN ["message_received", "turn_started", "assistant_text", "tool_use", "tool_result", "usage", "error", "turn_ended", "compaction", "reset"];
DEFINE FIELD at ON event TYPE int;
DEFINE FIELD run_id ON event TYPE option<string>;
DEFINE FIELD data ON event TYPE string;
DEFINE FIELD text ON event TYPE option<string>;
DEFINE FIELD pm_key ON event TYPE option<string>;
DEFINE FIELD idem_key ON event TYPE option<string>;
DEFINE INDEX event_pm_key ON event FIELDS pm_key UNIQUE;
DEFINE INDEX event_idem_key ON event FIELDS idem_key UNIQUE;
DEFINE INDEX event_text ON event FIELDS text FULLTEXT ANALYZER exo_text BM25;
`;
