/**
 * Migration 5: full-text search leaves SurrealDB's per-event index. The BM25 index `event_text`
 * cost ~90 % of projecting an event (each of a text's terms writes a posting and a document-count
 * delta, and its compaction queue runs on every commit) and ~74 % of the bytes written per turn,
 * for a search only operators run (`sessions.search`, `exoclaw sessions search`). Search is now a
 * scan filtered in the engine and scored in process, as on the memory and JetStream back ends
 * (see `surreal/search.ts`; docs/architecture.md, "Store", has the measurements). Removing the
 * index drops its keys once; the `exo_text` analyzer stays defined (unused).
 */
export const sql = /* surql */ `
REMOVE INDEX IF EXISTS event_text ON TABLE event;
`;
