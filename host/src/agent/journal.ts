/**
 * How a turn becomes session events, and back: the recorder turns the loop's `TurnEvent`s into
 * `NewSessionEvent`s (one `assistant_text` per stretch of text deltas), and
 * {@link outcomeFromEvents} rebuilds a finished turn's outcome from its stored events, which is
 * what a repeated `idempotencyKey` is answered with. {@link startedEvent} builds the event that
 * marks a message's turn as started.
 */
import type { NewSessionEvent, SessionEvent } from "../store/index.js";
import type { StopReason, TurnEvent, TurnOutcome } from "./types.js";

/** Collects one run's events for the session log, in emission order. */
export class TurnRecorder {
  private readonly events: NewSessionEvent[] = [];
  private text = "";
  /** Where the current model call's events start in `events` (after the last `usage` or `tool_result`). */
  private callStart = 0;
  /** Failovers of the current model call, stored on its `usage` event (`data.failover`). */
  private failovers: Extract<TurnEvent, { type: "failover" }>["data"][] = [];
  /** Ids of recorded `tool_use` events whose `tool_result` has not come yet. */
  private readonly open = new Set<string>();

  constructor(private readonly runId: string) {}

  /**
   * Records one loop event (text deltas are joined until the next non-text event). `error` is not
   * recorded here. A `failover` with `discard` drops what the model call recorded so far (its
   * text and tool calls never reach the log, so the history holds only the answer that
   * completed); every failover of a call is kept on that call's `usage` event as `data.failover`.
   */
  record(ev: TurnEvent): void {
    if (ev.type === "text") {
      this.text += ev.data.delta;
      return;
    }
    if (ev.type === "failover") {
      if (ev.data.discard) {
        this.text = "";
        // Tool calls of the discarded attempt never ran: they are owed no tool_result.
        for (const e of this.events.splice(this.callStart)) if (e.kind === "tool_use") this.open.delete(e.data.id);
      }
      this.failovers.push(ev.data);
      return;
    }
    this.flush();
    const runId = this.runId;
    switch (ev.type) {
      case "tool_use":
        this.open.add(ev.data.id);
        this.events.push({ kind: "tool_use", runId, data: { id: ev.data.id, name: ev.data.name, input: ev.data.input ?? null } });
        break;
      case "tool_result":
        this.open.delete(ev.data.toolUseId);
        this.events.push({ kind: "tool_result", runId, data: { toolUseId: ev.data.toolUseId, content: ev.data.content, isError: ev.data.isError } });
        this.callStart = this.events.length;
        break;
      case "usage": {
        const failover = this.failovers.splice(0);
        this.events.push({
          kind: "usage",
          runId,
          data: { ...ev.data, ...(failover.length > 0 ? { failover } : {}) },
        });
        this.callStart = this.events.length;
        break;
      }
      case "error":
        break;
    }
  }

  /**
   * The events recorded so far (text joined up to now); the recorder keeps going from empty.
   * Used when the turn writes part of its events before its end (queue mode `steer`).
   */
  take(): NewSessionEvent[] {
    this.flush();
    this.callStart = 0;
    return this.events.splice(0);
  }

  /**
   * The recorded events followed by the run's terminator (`turn_ended` or `error`); the recorder
   * is empty afterwards. Before an `error`, each `tool_use` without its `tool_result` (a turn
   * aborted mid-tool-call) gets one (`isError`, the error's message), so the log never holds a
   * tool call without its outcome.
   */
  finish(terminator: { kind: "turn_ended"; stopReason: StopReason } | { kind: "error"; code: number; message: string }): NewSessionEvent[] {
    this.flush();
    const runId = this.runId;
    if (terminator.kind === "error") {
      for (const id of this.open)
        this.events.push({ kind: "tool_result", runId, data: { toolUseId: id, content: `not run to the end: ${terminator.message}`, isError: true } });
    }
    this.open.clear();
    this.callStart = 0;
    const end: NewSessionEvent =
      terminator.kind === "turn_ended"
        ? { kind: "turn_ended", runId, data: { runId, stopReason: terminator.stopReason } }
        : { kind: "error", runId, data: { code: terminator.code, message: terminator.message } };
    return this.events.splice(0).concat(end);
  }

  private flush(): void {
    if (this.text.length === 0) return;
    this.events.push({ kind: "assistant_text", runId: this.runId, data: { text: this.text } });
    this.text = "";
  }
}

/**
 * `turn_started` of `runId`; `answeredBy` is the run that answers it (itself, or the turn it was
 * folded into by queue mode `collect`).
 */
export const startedEvent = (runId: string, answeredBy = runId): NewSessionEvent => ({ kind: "turn_started", runId, data: { runId: answeredBy } });

/** What a stored run ended with. */
export type StoredOutcome =
  | { status: "ended"; outcome: TurnOutcome }
  | { status: "failed"; code: number; message: string }
  /** The message was folded into run `into` (queue mode `collect`): its outcome is that run's. */
  | { status: "merged"; into: string }
  | { status: "open" };

const STOP_REASONS = new Set<string>(["end_turn", "tool_use", "max_tokens", "stop_sequence", "refusal", "other"]);

/**
 * Rebuilds a run's outcome from its events (those with its `runId`, in seq order), the way the
 * loop computed it: `text` is the text of the last model call that produced text (calls end at
 * their `usage` event), `usage` sums the calls, `iterations` counts them. A run closed by a
 * `turn_ended` whose `data.runId` names another run was folded into that run: `merged`.
 */
export function outcomeFromEvents(events: readonly SessionEvent[], runId: string): StoredOutcome {
  let finalText = "";
  let callText = "";
  let iterations = 0;
  const usage = { inputTokens: 0, outputTokens: 0 };
  for (const e of events) {
    if (e.runId !== runId) continue;
    switch (e.kind) {
      case "assistant_text":
        callText += e.data.text;
        break;
      case "usage":
        usage.inputTokens += e.data.inputTokens;
        usage.outputTokens += e.data.outputTokens;
        iterations++;
        if (callText) finalText = callText;
        callText = "";
        break;
      case "error":
        return { status: "failed", code: e.data.code, message: e.data.message };
      case "turn_ended": {
        if (e.data.runId !== runId) return { status: "merged", into: e.data.runId };
        if (callText) finalText = callText;
        const stopReason = (STOP_REASONS.has(e.data.stopReason) ? e.data.stopReason : "other") as StopReason;
        return { status: "ended", outcome: { text: finalText, stopReason, usage, iterations } };
      }
      default:
        break;
    }
  }
  return { status: "open" };
}
