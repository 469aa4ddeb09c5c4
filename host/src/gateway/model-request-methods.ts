/**
 * `sessions.request {sessionKey, runId, call?}` (docs/protocol.md): what one model call of a turn
 * was sent, reconstructed from the session log — the Sessions page's "what was sent".
 *
 * Why reconstructed, not recorded: the store keeps no request bodies, and recording them (in the
 * store, or in a ring in memory) would add bytes or work to every turn and hold a copy of the
 * prompt outside the one place where content lives and is redacted (the session log). The model
 * input is a pure function of the log (agent/projection.ts: the history before the turn, the
 * turn's user message, then this turn's earlier calls and tool results), plus configuration.
 * So the answer costs nothing until asked, works for any stored turn (also after a restart), and
 * holds nothing the log and configuration do not. What it cannot show is said in `notes`: the
 * system prompt (soul file) and tool list are today's, memory recall and hook-injected context
 * are not in the log, and images are not journaled.
 *
 * Scope `admin` (the system prompt and tool list are the operator's configuration).
 */
import * as z from "zod";
import { compileToolAllowlist, projectHistory, SoulFiles, type ChatMessage } from "../agent/index.js";
import type { Config } from "../config/index.js";
import { processSecrets } from "../log/index.js";
import type { ToolSpec } from "../plugins/index.js";
import { ErrorCode, RpcError, parseParams } from "../protocol/index.js";
import { StoreError, parseSessionKey, type SessionEvent, type SessionLog } from "../store/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";
import type { Logger } from "pino";

/** What the method reads. */
export interface ModelRequestDeps {
  log: Pick<SessionLog, "read">;
  config?: () => Config;
  /** `tools()` when the registry has it (the gateway's does): the specs offered to models. */
  plugins: { list(): unknown; tools?(): ToolSpec[] };
  logger: Logger;
}

/** Result of `sessions.request`. */
export interface ModelRequestView {
  sessionKey: string;
  runId: string;
  /** 1-based index of the model call in the turn. */
  call: number;
  /** Model calls the turn made (as far as the log shows). */
  calls: number;
  agent: string;
  /** From the call's `usage` event, else the agent's configured model. */
  provider: string;
  model: string;
  maxTokens: number | null;
  /** The agent's system prompt with its soul file, as configured now; null when none. */
  system: string | null;
  /** The conversation the model was given, in the providers' shared shape. */
  messages: ChatMessage[];
  /** The tools the agent is offered now (name, description, input schema). */
  tools: ToolSpec[];
  /** Always true: built from the log and today's configuration, see `notes`. */
  reconstructed: true;
  notes: string[];
}

const Schema = z.lazy(() =>
  z.strictObject({
    sessionKey: z.string().min(1).max(512),
    runId: z.string().min(1).max(200),
    call: z.number().int().min(1).max(10_000).optional(),
  }),
);

const NOTES = [
  "reconstructed from the session log: the history before the turn, the turn's message, then its earlier calls and tool results",
  "system prompt, soul file and tool list are as configured now, not necessarily as they were then",
  "not shown: memory recall and hook-injected context, images, and a compaction summary written after this turn",
];

/** Reads a whole session, oldest first. */
async function readAll(log: Pick<SessionLog, "read">, sessionKey: string): Promise<SessionEvent[]> {
  const out: SessionEvent[] = [];
  let afterSeq = 0;
  for (;;) {
    const page = await log.read(sessionKey, { afterSeq, limit: 1000 });
    out.push(...page);
    if (page.length < 1000) return out;
    afterSeq = page[page.length - 1]!.seq;
  }
}

const runOf = (e: SessionEvent): string | undefined =>
  e.kind === "turn_started" || e.kind === "turn_ended" ? ((e.data as { runId?: string }).runId ?? e.runId) : e.runId;
const isOutput = (e: SessionEvent) => e.kind === "assistant_text" || e.kind === "tool_use" || e.kind === "usage";

/**
 * The events the model saw for call `call` of run `runId`: everything before the run's first
 * output event, then the run's events up to the start of that call, then a synthetic
 * `turn_ended` so that the projection renders the turn so far (only completed turns show).
 * @returns the events and the number of calls the run made, or undefined when the run is not in the log
 */
export function eventsBeforeCall(
  events: readonly SessionEvent[],
  runId: string,
  call: number,
): { events: SessionEvent[]; calls: number; usage?: SessionEvent } | undefined {
  const mine = events.filter((e) => runOf(e) === runId);
  if (mine.length === 0) return undefined;
  const usages = mine.filter((e) => e.kind === "usage");
  const calls = Math.max(usages.length, mine.some(isOutput) ? 1 : 0);
  // Where call `call` starts: after the (call-1)th usage, at the first output (or end) event that follows.
  const after = call === 1 ? -1 : (usages[call - 2]?.seq ?? Number.NaN);
  if (Number.isNaN(after)) return { events: [], calls };
  const start = mine.find((e) => e.seq > after && (isOutput(e) || e.kind === "error" || e.kind === "turn_ended"));
  const cutSeq = start?.seq ?? Number.POSITIVE_INFINITY;
  const before = events.filter((e) => e.seq < cutSeq);
  const last = before[before.length - 1];
  const end = {
    kind: "turn_ended",
    seq: (last?.seq ?? 0) + 0.5,
    at: last?.at ?? 0,
    sessionKey: last?.sessionKey ?? "",
    runId,
    data: { runId, stopReason: "end_turn" },
  };
  return { events: [...before, end as unknown as SessionEvent], calls, ...(usages[call - 1] ? { usage: usages[call - 1] } : {}) };
}

/**
 * The method, to be added to the method table.
 * @returns name -> handler
 */
export function createModelRequestMethods(deps: ModelRequestDeps): Map<string, MethodHandler> {
  const methods = new Map<string, MethodHandler>();
  const souls = new SoulFiles(deps.logger);

  methods.set("sessions.request", async (params, ctx): Promise<ModelRequestView> => {
    requireScope(ctx.identity, "admin", "sessions.request");
    const p = parseParams(Schema, params);
    const call = p.call ?? 1;
    let events: SessionEvent[];
    let agentId: string;
    try {
      agentId = parseSessionKey(p.sessionKey).agent;
      events = await readAll(deps.log, p.sessionKey);
    } catch (err) {
      if (err instanceof StoreError && err.code === "invalid_argument") throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
      throw err;
    }
    const cut = eventsBeforeCall(events, p.runId, call);
    if (cut === undefined) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: no run ${p.runId} in session ${p.sessionKey}`);
    if (call > cut.calls) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: run ${p.runId} made ${cut.calls} model call(s), not ${call}`);
    const config = deps.config?.();
    const agent = config?.agents.find((a) => a.id === agentId);
    const usage = cut.usage?.kind === "usage" ? cut.usage.data : undefined;
    let system: string | undefined;
    const notes = [...NOTES];
    if (agent !== undefined) {
      try {
        system = await souls.systemPrompt(agent);
      } catch (err) {
        system = agent.systemPrompt;
        notes.push(`soul file not readable now: ${(err as Error).message}`);
      }
    } else notes.push(`agent ${agentId} is not configured now: no system prompt or tools shown`);
    const allowed = agent ? compileToolAllowlist(agent.tools) : () => false;
    const view: ModelRequestView = {
      sessionKey: p.sessionKey,
      runId: p.runId,
      call,
      calls: cut.calls,
      agent: agentId,
      provider: usage?.provider ?? agent?.provider ?? "",
      model: usage?.model ?? agent?.model ?? "",
      maxTokens: agent?.maxTokens ?? null,
      system: system ?? null,
      messages: projectHistory(cut.events),
      tools: (deps.plugins.tools?.() ?? []).filter((t) => allowed(t.name)),
      reconstructed: true,
      notes,
    };
    // Known secret values never leave, whatever a prompt or a message quoted.
    return JSON.parse(processSecrets.scrub(JSON.stringify(view))) as ModelRequestView;
  });

  return methods;
}
