/**
 * Migration 3: the reply outbox (docs/reliability.md, "A crash between answer and reply").
 * `outbox:⟨idempotency key⟩` — one row per channel message whose reply is owed (a
 * `message_received` with `awaitsReply`), written in the append's transaction with the message;
 * `session` and `seq` point at that event. `settleReplies` deletes the row once the reply went
 * out (or was given up), so the table holds only what is owed and `pendingReplies` reads it whole.
 */
export const sql = /* surql */ `
DEFINE TABLE outbox SCHEMAFULL;
DEFINE FIELD session ON outbox TYPE string;
DEFINE FIELD seq ON outbox TYPE int;
`;
