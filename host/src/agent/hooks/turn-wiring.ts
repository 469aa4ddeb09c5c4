/**
 * What hooks and approvals add to one turn, in one place so turn.ts wires it with a few lines:
 * the tool gate ({@link gateToolDispatch}), `session_start`, `before_model_call`,
 * `agent_response`, `on_error`, and the resumption of a run parked for an approval.
 */
import type { AgentConfig } from "../../config/index.js";
import type { NewSessionEvent, SessionEvent } from "../../store/index.js";
import { parseSessionKey } from "../../store/index.js";
import type { ApprovalBook, ApprovalDecision } from "../approvals/book.js";
import type { TurnDeadline } from "../approvals/deadline.js";
import { resumeParkedRun } from "../approvals/resume.js";
import type { TurnTools } from "../loop.js";
import type { ChatMessage, TurnEvent } from "../types.js";
import type { LifecycleHooks } from "./lifecycle.js";
import type { HookContext } from "./runner.js";
import { gateToolDispatch } from "./tool-gate.js";

/** The host-written context of a hook call for a session (as a tool call's context). @throws Error for a malformed session key */
export function hookContext(agentId: string, sessionKey: string, runId?: string): HookContext {
  const s = parseSessionKey(sessionKey);
  return { agentId, channel: s.channel, account: s.account, peer: s.peer, sender: s.peer, sessionKey, ...(runId !== undefined ? { runId } : {}) };
}

/** Options of {@link wireTurn}. */
export interface WireTurnOptions {
  hooks?: LifecycleHooks | undefined;
  book?: ApprovalBook | undefined;
  config: AgentConfig;
  sessionKey: string;
  runId: string;
  content: string;
  /** The turn's tools (wrapped in place by the gate). */
  tools: TurnTools;
  /** The session's history events (read at the turn's start). */
  events: readonly SessionEvent[];
  /** The run is one a restart left parked for an approval (crash recovery requeued it). */
  resume: boolean;
  record: (ev: TurnEvent) => void;
  /** Writes the run's events so far plus one more (`approval_pending`). */
  park: (event: NewSessionEvent) => Promise<void>;
  deadline: TurnDeadline;
  signal: AbortSignal;
}

/** What {@link wireTurn} gives the turn. */
export interface TurnWiring {
  /** Messages a resumed run continues from (absent: a fresh run). */
  resume?: ChatMessage[];
  /** `before_model_call`: text to add to a model call's system prompt. */
  beforeModelCall?: (iteration: number, signal: AbortSignal) => Promise<string | undefined>;
  /** `agent_response`: the final text. */
  finalText(text: string, signal: AbortSignal): Promise<string>;
  /** `on_error` (fire and forget). */
  failed(error: { code: number; message: string }): void;
  /** Whether a call of this run is parked for an approval right now (a shutdown then leaves the run open for resumption). */
  parked(): boolean;
}

/**
 * Wires hooks and approvals into one turn (see the module comment). Runs `session_start` when
 * the session has no finished turn yet. With neither hooks nor approvals configured, costs nothing.
 * @throws HookFailedError (a fail-closed hook); the signal's reason
 */
export async function wireTurn(o: WireTurnOptions): Promise<TurnWiring> {
  const hooks = o.hooks?.active === true ? o.hooks : undefined;
  const ctx = { ...hookContext(o.config.id, o.sessionKey, o.runId), agentId: o.config.id, sessionKey: o.sessionKey, runId: o.runId };
  let parkedNow = 0;
  const decided = new Map<string, ApprovalDecision>();
  const rules = o.config.approvals;
  const book = o.book;
  const approvals =
    rules !== undefined && book !== undefined
      ? {
          rules,
          book,
          park: o.park,
          emit: o.record,
          pauseDeadline: () => {
            parkedNow++;
            const resume = o.deadline.pause();
            return () => {
              parkedNow--;
              resume();
            };
          },
        }
      : undefined;
  gateToolDispatch(o.tools, { hooks, approvals, ctx, ...(o.resume ? { decided } : {}) });
  if (hooks !== undefined && !o.resume && !o.events.some((e) => e.kind === "turn_ended" || e.kind === "error")) {
    await hooks.notify("session_start", ctx, {}, o.signal);
  }
  let resume: ChatMessage[] | undefined;
  if (o.resume && book !== undefined) {
    resume = await resumeParkedRun({
      events: o.events,
      runId: o.runId,
      agentId: o.config.id,
      sessionKey: o.sessionKey,
      content: o.content,
      tools: o.tools,
      decided,
      rules,
      book,
      record: o.record,
      signal: o.signal,
    });
  }
  return {
    ...(resume !== undefined ? { resume } : {}),
    ...(hooks !== undefined ? { beforeModelCall: (iteration: number, signal: AbortSignal) => hooks.beforeModelCall(ctx, iteration, signal) } : {}),
    finalText: (text, signal) => (hooks === undefined ? Promise.resolve(text) : hooks.agentResponse(ctx, text, signal)),
    failed: (error) => {
      if (hooks !== undefined) void hooks.notify("on_error", ctx, { code: error.code, message: error.message }).catch(() => {});
    },
    parked: () => parkedNow > 0,
  };
}
