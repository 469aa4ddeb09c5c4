/**
 * The outcome label of a hook call (`exoclaw_hook_calls_total{outcome}`, docs/hooks.md#metrics)
 * follows the rules lifecycle.ts applies to each hook's answer: an action a hook does not take
 * is `allow`, so the metric never claims a change that did not happen.
 */
import { describe, expect, it } from "vitest";
import { answerOutcome } from "../../../host/src/agent/hooks/index.js";

describe("answerOutcome", () => {
  it("classifies each hook's answer by what the host does with it", () => {
    expect(answerOutcome("before_message", {})).toBe("allow");
    expect(answerOutcome("before_message", { action: "drop", reason: "spam" })).toBe("deny");
    expect(answerOutcome("before_message", { action: "rewrite", content: "x" })).toBe("rewrite");
    expect(answerOutcome("before_message", { action: "rewrite" })).toBe("allow"); // nothing to rewrite with
    expect(answerOutcome("before_message", { action: "deny" })).toBe("allow"); // not an action of this hook
    expect(answerOutcome("before_tool_call", { action: "deny", reason: "no" })).toBe("deny");
    expect(answerOutcome("before_tool_call", { action: "rewrite", input: { a: 1 } })).toBe("rewrite");
    expect(answerOutcome("before_tool_call", { action: "drop" })).toBe("allow");
    expect(answerOutcome("after_tool_call", { action: "rewrite", content: "[redacted]" })).toBe("rewrite");
    expect(answerOutcome("agent_response", { action: "rewrite", content: "checked" })).toBe("rewrite");
    expect(answerOutcome("before_model_call", { content: "context" })).toBe("rewrite");
    expect(answerOutcome("before_model_call", { content: "" })).toBe("allow");
    // Notifications: any answer is ignored.
    expect(answerOutcome("session_start", { action: "deny" })).toBe("allow");
    expect(answerOutcome("on_error", { action: "rewrite", content: "x" })).toBe("allow");
  });
});
