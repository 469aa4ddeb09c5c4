/**
 * The single tool dispatch entry point of a turn: {@link gateToolDispatch} wraps `TurnTools.call`
 * (after every other wrapper, so the loop calls it first), and every tool call of the turn —
 * WASM plugin tools, built-in tools, and whatever else `TurnToolbox.forTurn` dispatches (MCP
 * tools) — passes `before_tool_call` hooks, then the agent's approval rules (the call may park
 * until a person answers), then runs, then passes `after_tool_call` hooks. A denial (by a hook,
 * a person or a timeout) is an error `tool_result` the model sees; the tool does not run.
 */
import type { AgentApprovals } from "../../config/index.js";
import { needsApproval } from "../../config/index.js";
import type { ToolResult } from "../../plugins/index.js";
import type { NewSessionEvent } from "../../store/index.js";
import type { ApprovalBook, ApprovalDecision, PendingApproval } from "../approvals/book.js";
import type { TurnTools } from "../loop.js";
import type { TurnEvent } from "../types.js";
import type { LifecycleHooks } from "./lifecycle.js";
import type { HookContext } from "./runner.js";

/** Approval settings of one turn (the agent's rules and where the turn parks). */
export interface TurnApprovals {
  rules: AgentApprovals;
  book: ApprovalBook;
  /**
   * Writes the run's events so far followed by `event` (`approval_pending`) to the session log,
   * durably, before the approver is asked (so the turn can resume after a restart).
   */
  park: (event: NewSessionEvent) => Promise<void>;
  /** Stops the turn deadline while parked; call the returned function to start it again. */
  pauseDeadline: () => () => void;
  emit: (ev: TurnEvent) => void;
}

/** Options of {@link gateToolDispatch}. */
export interface ToolGateOptions {
  hooks?: LifecycleHooks | undefined;
  approvals?: TurnApprovals | undefined;
  /** Who the turn is for (host-written); `runId` and `agentId` are required here. */
  ctx: HookContext & { runId: string; agentId: string; sessionKey: string };
  /** Answers already given, by tool use id (a run resumed after a restart): those calls are not parked again. */
  decided?: ReadonlyMap<string, ApprovalDecision>;
}

/** The error result the model gets for a call a person denied (or that timed out). */
export function denialResult(tool: string, decision: ApprovalDecision): ToolResult {
  return decision.by === "timeout"
    ? { content: `tool "${tool}" was not run: approval timed out (no answer from the approver)`, isError: true }
    : { content: `tool "${tool}" was not run: the approver denied this call`, isError: true };
}

/**
 * Wraps `tools.call` in place with hooks and approvals (see the module comment). With neither
 * configured, leaves `tools` as it is (no cost).
 */
export function gateToolDispatch(tools: TurnTools, options: ToolGateOptions): void {
  const { hooks, approvals, ctx } = options;
  const hooked = hooks !== undefined && hooks.active;
  if (!hooked && approvals === undefined && options.decided === undefined) return;
  const call = tools.call;
  tools.call = async (name, input, signal, meta) => {
    let args = input;
    if (hooked) {
      const verdict = await hooks.beforeToolCall(ctx, name, args, signal);
      if (verdict.deny) return { content: `tool "${name}" was not run: denied by plugin ${verdict.plugin}: ${verdict.reason}`, isError: true };
      args = verdict.input;
    }
    const known = meta !== undefined ? options.decided?.get(meta.toolUseId) : undefined;
    if (known !== undefined) {
      if (!known.approved) return denialResult(name, known);
    } else if (approvals !== undefined && needsApproval(approvals.rules, name, args)) {
      const decision = await parkForApproval(approvals, ctx, name, args, meta?.toolUseId ?? "", signal);
      if (!decision.approved) return denialResult(name, decision);
    }
    const result = await call(name, args, signal);
    return hooked ? hooks.afterToolCall(ctx, name, args, result, signal) : result;
  };
}

/** Parks one call: `approval_pending` to the log, the approver asked, the deadline paused until the answer. */
async function parkForApproval(
  approvals: TurnApprovals,
  ctx: ToolGateOptions["ctx"],
  tool: string,
  input: unknown,
  toolUseId: string,
  signal: AbortSignal,
): Promise<ApprovalDecision> {
  const { book, rules } = approvals;
  const approval: PendingApproval = {
    id: book.newId(),
    sessionKey: ctx.sessionKey,
    runId: ctx.runId,
    agentId: ctx.agentId,
    toolUseId,
    tool,
    input: input ?? null,
    ...(rules.approver !== undefined ? { approver: rules.approver } : {}),
    expiresAt: Date.now() + rules.timeoutMs,
  };
  const { id, expiresAt } = approval;
  await approvals.park({
    kind: "approval_pending",
    runId: ctx.runId,
    data: { id, toolUseId, tool, input: approval.input, expiresAt, ...(approval.approver !== undefined ? { approver: approval.approver } : {}) },
  });
  approvals.emit({ type: "approval_pending", data: { id, tool, input: approval.input, expiresAt } });
  const resume = approvals.pauseDeadline();
  try {
    return await book.wait(approval, signal);
  } finally {
    resume();
  }
}
