/**
 * Migration 2: a checksum per event (`sum`, CRC-32 of kind, data and text; see
 * `eventChecksum` in `surreal/index.ts`). Measured with SurrealDB 3.0.2 (surrealkv): damage in
 * the engine's value log (`vlog/*.vlog`, where large values go after a memtable flush) is
 * returned by reads as altered bytes without an error; with `sum` a read finds it and fails
 * with StoreError `corrupt` instead of handing the altered event on. Events written before
 * this migration have no `sum` and are not checked.
 */
export const sql = `DEFINE FIELD sum ON event TYPE option<int>;`;
