/**
 * A session's events grouped for the Sessions page: by turn (run id), and inside a turn into
 * model calls (what streamed back up to each `usage` event, with its tokens and timing) and tool
 * calls (a `tool_use` with its `tool_result`: input, output, duration, error).
 */
import type { SessionEvent } from "./client/index.js";

export interface ModelCall {
  index: number;
  /** Text streamed back in this call. */
  text: string;
  /** Tool calls the model asked for in this call. */
  toolUses: string[];
  usage?: { inputTokens: number; outputTokens: number; provider?: string; model?: string; costUsd?: number; cacheReadTokens?: number; failover?: unknown };
  startedAt: number;
  endedAt: number;
}

export interface ToolCall {
  id: string;
  name: string;
  input: unknown;
  output?: string;
  isError?: boolean;
  startedAt: number;
  durationMs?: number;
}

export interface Turn {
  runId: string;
  /** The user's message that started it, if stored in this run. */
  message?: string;
  startedAt: number;
  endedAt: number;
  outcome: "ok" | "error" | "running";
  error?: string;
  modelCalls: ModelCall[];
  toolCalls: ToolCall[];
  events: SessionEvent[];
}

/** Groups events by run, in order of first appearance; events without a run id go to "(none)". */
export function groupTurns(events: SessionEvent[]): Turn[] {
  const byRun = new Map<string, SessionEvent[]>();
  for (const e of events) {
    const run = e.kind === "turn_started" || e.kind === "turn_ended" ? ((e.data as { runId?: string }).runId ?? e.runId ?? "(none)") : (e.runId ?? "(none)");
    let list = byRun.get(run);
    if (!list) byRun.set(run, (list = []));
    list.push(e);
  }
  return [...byRun.entries()].map(([runId, evs]) => turnOf(runId, evs));
}

function turnOf(runId: string, events: SessionEvent[]): Turn {
  const modelCalls: ModelCall[] = [];
  const toolCalls: ToolCall[] = [];
  let call: ModelCall | undefined;
  let lastBoundary = events[0]?.at ?? 0;
  let message: string | undefined;
  let outcome: Turn["outcome"] = "running";
  let error: string | undefined;
  const open = (at: number) => (call ??= { index: modelCalls.length + 1, text: "", toolUses: [], startedAt: lastBoundary, endedAt: at });
  for (const e of events) {
    switch (e.kind) {
      case "message_received":
        message ??= e.data.content;
        lastBoundary = e.at;
        break;
      case "turn_started":
        lastBoundary = e.at;
        break;
      case "assistant_text":
        open(e.at).text += e.data.text;
        call!.endedAt = e.at;
        break;
      case "tool_use":
        open(e.at).toolUses.push(e.data.name);
        call!.endedAt = e.at;
        toolCalls.push({ id: e.data.id, name: e.data.name, input: e.data.input, startedAt: e.at });
        break;
      case "usage":
        open(e.at).usage = e.data;
        call!.endedAt = e.at;
        modelCalls.push(call!);
        call = undefined;
        lastBoundary = e.at;
        break;
      case "tool_result": {
        const t = toolCalls.find((x) => x.id === e.data.toolUseId);
        if (t) {
          t.output = e.data.content;
          t.isError = e.data.isError;
          t.durationMs = e.at - t.startedAt;
        }
        lastBoundary = e.at;
        break;
      }
      case "turn_ended":
        outcome = "ok";
        break;
      case "error":
        outcome = "error";
        error = e.data.message;
        break;
    }
  }
  if (call) modelCalls.push(call);
  return {
    runId,
    ...(message !== undefined ? { message } : {}),
    startedAt: events[0]?.at ?? 0,
    endedAt: events.at(-1)?.at ?? 0,
    outcome,
    ...(error !== undefined ? { error } : {}),
    modelCalls,
    toolCalls,
    events,
  };
}

/** One line describing an event for the timeline. */
export function describeEvent(e: SessionEvent): string {
  switch (e.kind) {
    case "message_received":
      return `${e.data.channel}/${e.data.peer}: ${e.data.content}`;
    case "assistant_text":
      return e.data.text;
    case "tool_use":
      return `${e.data.name} ${JSON.stringify(e.data.input)}`;
    case "tool_result":
      return `${e.data.isError ? "error: " : ""}${e.data.content}`;
    case "usage":
      return `${e.data.inputTokens} in / ${e.data.outputTokens} out${e.data.model ? ` (${e.data.provider}/${e.data.model})` : ""}`;
    case "error":
      return `${e.data.code}: ${e.data.message}`;
    case "turn_ended":
      return `stop: ${e.data.stopReason}`;
    case "compaction":
      return `summary up to #${e.data.upToSeq}`;
    case "reset":
      return e.data.reason ?? "reset";
    default:
      return "";
  }
}
