import { ErrorCode, RpcError } from "../protocol/index.js";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import type { TurnTelemetry } from "../telemetry/index.js";
import type { ChatMessage, ContentBlock, ModelProvider, StopReason, TurnEvent, TurnOutcome } from "./types.js";

/** The tools a turn may use: what to offer the model, and how to run a call. */
export interface TurnTools {
  specs: ToolSpec[];
  /**
   * Runs one call; must not throw for tool faults (return `isError: true`). `meta.toolUseId` is
   * the model's id of the call (the loop passes it; approvals log it).
   */
  call(name: string, input: unknown, signal: AbortSignal, meta?: { toolUseId: string }): Promise<ToolResult>;
}

/** Everything one turn needs. */
export interface TurnInput {
  provider: ModelProvider;
  model: string;
  system?: string;
  maxTokens: number;
  /** Model calls allowed in this turn. */
  maxIterations: number;
  /** The agent's provider idle timeout, ms (passed on to each model call); default the provider's. */
  idleTimeoutMs?: number;
  /** The session's history before this turn. */
  history: ChatMessage[];
  /** The user's message. */
  content: string;
  /**
   * The user message's blocks when it is more than `content` as one text block (a host-written
   * sender line, images: user-message.ts); absent = `[{type: "text", text: content}]`.
   */
  userBlocks?: ContentBlock[];
  tools: TurnTools;
  /**
   * Queue mode `steer`: called before each model call that follows a tool round; the user
   * messages it returns (already journaled) are appended, as text, to that call's last user
   * message (after the tool results). Absent = nothing is injected.
   */
  steer?: () => Promise<string[]>;
  /**
   * Where each model call of the loop is reported (duration to the stream's end, the call's
   * tokens as its last `usage` event gave them, `ok` false when the stream threw). Recorded at
   * the points the loop already has, so observing adds no hop per streamed event. Absent = not
   * reported.
   */
  telemetry?: Pick<TurnTelemetry, "providerCall">;
  /** A run resumed after a restart: the messages it continues from (instead of `content` as a new user message). */
  resume?: ChatMessage[];
  /** `before_model_call` hooks: text added to the system prompt of model call `iteration` (1-based). */
  beforeModelCall?: (iteration: number, signal: AbortSignal) => Promise<string | undefined>;
}

/** A finished turn: its outcome and the messages to append to the session. */
export interface TurnRecord {
  outcome: TurnOutcome;
  messages: ChatMessage[];
}

/**
 * The streaming tool-use loop. Calls the model, streams text deltas through `emit` as they
 * arrive, collects tool calls, runs them in parallel, feeds the results back, and repeats until
 * the model stops asking for tools or `maxIterations` model calls have been made.
 *
 * A tool that fails becomes an error `tool_result` for the model; it does not end the turn.
 *
 * The turn deadline is the caller's: it aborts `signal` (which cancels the model call or the
 * tool calls in progress); the provider's idle timeout ends a stalled model call on its own.
 *
 * It settles as soon as `signal` aborts, even if a model or tool call does not honour the signal
 * (that call's late result is dropped, and nothing more is emitted): an abort or a deadline
 * always frees the session.
 *
 * @throws ProviderError when the provider fails (ProviderStallError when it stopped sending);
 *   RpcError -32002 when the model still wants tools after `maxIterations` calls; the signal's
 *   reason when aborted
 */
export function runTurn(input: TurnInput, emit: (ev: TurnEvent) => void, signal: AbortSignal): Promise<TurnRecord> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<TurnRecord>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    loop(input, (ev) => signal.aborted || emit(ev), signal)
      .then(resolve, reject)
      .finally(() => signal.removeEventListener("abort", onAbort));
  });
}

async function loop(input: TurnInput, emit: (ev: TurnEvent) => void, signal: AbortSignal): Promise<TurnRecord> {
  const offered = new Set(input.tools.specs.map((t) => t.name));
  const added: ChatMessage[] =
    input.resume !== undefined ? [...input.resume] : [{ role: "user", content: input.userBlocks ?? [{ type: "text", text: input.content }] }];
  const usage = { inputTokens: 0, outputTokens: 0 };
  let finalText = "";

  for (let iteration = 1; iteration <= input.maxIterations; iteration++) {
    signal.throwIfAborted();
    const blocks: ContentBlock[] = [];
    const toolUses: { id: string; name: string; input: unknown }[] = [];
    const callUsage = { inputTokens: 0, outputTokens: 0 };
    let text = "";
    let stopReason: StopReason = "other";
    const extra = input.beforeModelCall !== undefined ? await input.beforeModelCall(iteration, signal) : undefined;
    const call = input.telemetry?.providerCall(input.provider.name, input.model);
    let ok = false;

    try {
      for await (const ev of input.provider.stream(
        {
          model: input.model,
          system: extra === undefined ? input.system : input.system ? `${input.system}\n\n${extra}` : extra,
          messages: [...input.history, ...added],
          tools: input.tools.specs,
          maxTokens: input.maxTokens,
          ...(input.idleTimeoutMs !== undefined ? { idleTimeoutMs: input.idleTimeoutMs } : {}),
        },
        signal,
      )) {
        switch (ev.type) {
          case "text":
            text += ev.delta;
            emit({ type: "text", data: { delta: ev.delta } });
            break;
          case "tool_use":
            toolUses.push({ id: ev.id, name: ev.name, input: ev.input });
            emit({ type: "tool_use", data: { id: ev.id, name: ev.name, input: ev.input } });
            break;
          case "usage":
            if (ev.inputTokens !== undefined) callUsage.inputTokens = ev.inputTokens;
            if (ev.outputTokens !== undefined) callUsage.outputTokens = ev.outputTokens;
            break;
          case "stop":
            stopReason = ev.reason;
            break;
          case "failover":
            // Another attempt takes over this model call: what the failed one produced is void.
            if (ev.discard) {
              text = "";
              toolUses.length = 0;
            }
            emit({ type: "failover", data: { from: ev.from, to: ev.to, reason: ev.reason, discard: ev.discard } });
            break;
        }
      }
      ok = true;
    } finally {
      call?.end({ ok, inputTokens: callUsage.inputTokens, outputTokens: callUsage.outputTokens });
    }
    usage.inputTokens += callUsage.inputTokens;
    usage.outputTokens += callUsage.outputTokens;
    emit({ type: "usage", data: callUsage });

    if (text) blocks.push({ type: "text", text });
    for (const t of toolUses) blocks.push({ type: "tool_use", ...t });
    if (text) finalText = text;

    if (toolUses.length === 0) {
      if (blocks.length) added.push({ role: "assistant", content: blocks });
      return { outcome: { text: finalText, stopReason, usage, iterations: iteration }, messages: added };
    }
    if (iteration === input.maxIterations) {
      throw new RpcError(
        ErrorCode.MaxIterations,
        `turn stopped after ${input.maxIterations} model calls (the agent's max_iterations) while the model still asked for tools`,
      );
    }
    added.push({ role: "assistant", content: blocks });
    const results = await Promise.all(
      toolUses.map(async (t): Promise<ContentBlock> => {
        const r = offered.has(t.name)
          ? await input.tools.call(t.name, t.input, signal, { toolUseId: t.id })
          : { content: `tool "${t.name}" is not available to this agent`, isError: true };
        emit({ type: "tool_result", data: { toolUseId: t.id, content: r.content, isError: r.isError } });
        return { type: "tool_result", toolUseId: t.id, content: r.content, isError: r.isError };
      }),
    );
    signal.throwIfAborted();
    added.push({ role: "user", content: results });
    if (input.steer) for (const text of await input.steer()) results.push({ type: "text", text });
  }
  // Unreachable: the loop returns or throws on its last iteration.
  throw new RpcError(ErrorCode.InternalError, "agent loop ended unexpectedly");
}
