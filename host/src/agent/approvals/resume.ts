/**
 * Resuming a run parked for an approval after a restart: its events so far (written when it
 * parked) become the conversation the model had, the calls of the round it parked in get their
 * results — an approved call runs now, a denied or expired one gets the denial, a call of that
 * round not under approval is not run again (it may have run: at most once) — and the loop
 * continues with the next model call.
 */
import type { AgentApprovals } from "../../config/index.js";
import type { SessionEvent, SessionEventOf } from "../../store/index.js";
import type { ApprovalBook, ApprovalDecision } from "./book.js";
import type { TurnTools } from "../loop.js";
import type { ChatMessage, ContentBlock, TurnEvent } from "../types.js";
import { denialResult } from "../hooks/tool-gate.js";

/** Result given to a call of the parked round that was not waiting for approval. */
export const NOT_RERUN_RESULT = "not run again: the gateway restarted while another call of this round waited for approval, and this call may already have run";

/** Whether `runId`'s events hold an approval it parked on (crash recovery resumes such a run instead of closing it). */
export function parkedApproval(events: readonly SessionEvent[], runId: string): SessionEventOf<"approval_pending"> | undefined {
  let last: SessionEventOf<"approval_pending"> | undefined;
  for (const e of events) if (e.runId === runId && e.kind === "approval_pending") last = e;
  return last;
}

/** Options of {@link resumeParkedRun}. */
export interface ResumeOptions {
  /** The session's events (at least the run's). */
  events: readonly SessionEvent[];
  runId: string;
  agentId: string;
  sessionKey: string;
  /** The user's message that started the run. */
  content: string;
  /** The turn's gated tools (hooks apply; approvals given here are not asked again). */
  tools: TurnTools;
  /** Decisions taken here become the gate's (so the approved call is not parked again). */
  decided: Map<string, ApprovalDecision>;
  rules: AgentApprovals | undefined;
  book: ApprovalBook;
  /** Records events (tool results) for the log and the caller. */
  record: (ev: TurnEvent) => void;
  signal: AbortSignal;
}

/**
 * The messages the resumed loop starts from (ending with the parked round's tool results).
 * Waits for approvals still unanswered (until their `expiresAt`).
 * @throws the signal's reason when it aborts
 */
export async function resumeParkedRun(o: ResumeOptions): Promise<ChatMessage[]> {
  const run = o.events.filter((e) => e.runId === o.runId).sort((a, b) => a.seq - b.seq);
  const messages: ChatMessage[] = [{ role: "user", content: [{ type: "text", text: o.content }] }];
  let assistant: ContentBlock[] | null = null;
  let results: ContentBlock[] | null = null;
  const pending = new Map<string, SessionEventOf<"approval_pending">>();
  const resolved = new Map<string, ApprovalDecision>();
  for (const e of run) {
    if (e.kind === "assistant_text" || e.kind === "tool_use") {
      if (results !== null) messages.push({ role: "user", content: results });
      results = null;
      assistant ??= [];
      assistant.push(
        e.kind === "assistant_text" ? { type: "text", text: e.data.text } : { type: "tool_use", id: e.data.id, name: e.data.name, input: e.data.input },
      );
    } else if (e.kind === "tool_result") {
      if (assistant !== null) messages.push({ role: "assistant", content: assistant });
      assistant = null;
      results ??= [];
      results.push({ type: "tool_result", toolUseId: e.data.toolUseId, content: e.data.content, isError: e.data.isError });
    } else if (e.kind === "approval_pending") pending.set(e.data.toolUseId, e);
    else if (e.kind === "approval_resolved") resolved.set(e.data.id, { approved: e.data.approved, by: e.data.by });
  }
  if (assistant === null) {
    if (results !== null) messages.push({ role: "user", content: results });
    return messages;
  }
  messages.push({ role: "assistant", content: assistant });
  const round = await Promise.all(
    assistant
      .filter((b): b is Extract<ContentBlock, { type: "tool_use" }> => b.type === "tool_use")
      .map(async (t): Promise<ContentBlock> => {
        const parked = pending.get(t.id);
        let r: { content: string; isError: boolean };
        if (parked === undefined) r = { content: NOT_RERUN_RESULT, isError: true };
        else {
          const d = parked.data;
          const decision =
            resolved.get(d.id) ??
            (await o.book.wait(
              {
                id: d.id,
                sessionKey: o.sessionKey,
                runId: o.runId,
                agentId: o.agentId,
                toolUseId: t.id,
                tool: d.tool,
                input: d.input,
                ...(d.approver !== undefined ? { approver: d.approver } : {}),
                expiresAt: d.expiresAt,
              },
              o.signal,
              false,
            ));
          if (decision.approved) {
            o.decided.set(t.id, decision);
            r = await o.tools.call(t.name, t.input, o.signal, { toolUseId: t.id });
          } else r = denialResult(t.name, decision);
        }
        o.record({ type: "tool_result", data: { toolUseId: t.id, content: r.content, isError: r.isError } });
        return { type: "tool_result", toolUseId: t.id, content: r.content, isError: r.isError };
      }),
  );
  o.signal.throwIfAborted();
  messages.push({ role: "user", content: round });
  return messages;
}
