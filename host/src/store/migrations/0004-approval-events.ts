/**
 * Migration 4: the event kinds of durable human approvals (`approval_pending`,
 * `approval_resolved`; host/src/agent/approvals/) join the allowed kinds.
 */
export const sql = /* surql */ `
DEFINE FIELD OVERWRITE kind ON event TYPE string
  ASSERT $value IN ["message_received", "turn_started", "assistant_text", "tool_use", "tool_result", "usage", "error", "turn_ended", "compaction", "reset", "approval_pending", "approval_resolved"];
`;
