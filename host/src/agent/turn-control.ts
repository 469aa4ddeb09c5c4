/**
 * Turn control inside a running turn: loop detection (the same tool call asked for `loop_limit`
 * times ends the turn) and queue mode `steer` (messages that arrive mid-turn join the running
 * turn at its next model call). `chat.abort` / `/stop` are the runtime's
 * ({@link AgentRuntime.abort}): they abort the turn's signal with a {@link TurnStoppedError}.
 * Each part is a small hook the turn executor (turn.ts) installs; the tool-use loop (loop.ts)
 * knows nothing of them beyond {@link TurnInput.steer}.
 */
import type { NewSessionEvent } from "../store/index.js";
import { ToolLoopError } from "./errors.js";
import type { TurnJob } from "./jobs.js";
import { startedEvent, type TurnRecorder } from "./journal.js";
import type { TurnTools } from "./loop.js";

/**
 * JSON with object keys sorted at every level, so `{a:1,b:2}` and `{b:2,a:1}` compare equal.
 * Values JSON cannot hold (undefined, functions) are dropped as `JSON.stringify` drops them.
 */
export function canonicalJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) return v;
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v as Record<string, unknown>).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }) ?? "undefined"
  );
}

/**
 * Loop detection for one turn: wraps `tools.call` so that the `limit`-th call of the same tool
 * with the same input (canonical JSON) in this turn is not run; instead `stop` gets a
 * {@link ToolLoopError} (the executor aborts the turn with it, which also cancels the other
 * tool calls of that round) and the call answers an error result (never seen: the turn is over).
 * Calls of different tools or inputs count separately. `limit` 0 = off (nothing is wrapped).
 */
export function guardToolLoops(tools: TurnTools, limit: number, stop: (err: ToolLoopError) => void): void {
  if (limit <= 0) return;
  const seen = new Map<string, number>();
  const call = tools.call;
  tools.call = (name, input, signal) => {
    const key = `${name}\u0000${canonicalJson(input)}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n >= limit) {
      const err = new ToolLoopError(name, n);
      stop(err);
      return Promise.resolve({ content: err.message, isError: true });
    }
    return call(name, input, signal);
  };
}

/** What {@link steerInbox} works with: the running batch and where its events go. */
export interface SteerInboxOptions {
  sessionKey: string;
  /** The run that answers (the batch's own run id). */
  runId: string;
  /** Takes the session's waiting turn messages that may join the running turn (removed from the queue, added to the running batch). */
  take: () => TurnJob[];
  /** The running turn's recorder: what it recorded so far is written before the steered messages' `turn_started`. */
  recorder: TurnRecorder;
  /** Appends to the session log (in order, durably for a durable store). */
  append: (events: NewSessionEvent[]) => Promise<unknown>;
  /** Called with the messages that joined the turn (the executor closes them with the turn). */
  joined: (jobs: TurnJob[]) => void;
  /** The turn's controller: a steered message inherits it (a `chat.abort` of its run id stops this turn). */
  controller: AbortController;
}

/**
 * Queue mode `steer`: the {@link TurnInput.steer} hook of a running turn. Before each model call
 * after a tool round it takes the messages waiting in the session, journals them as joining this
 * run — the turn's events recorded so far, then a `turn_started` per message whose `data.runId`
 * names this run (the way `collect` folds messages; the projection renders such a message as
 * user text after the tool results it followed) — and returns their contents, which the loop
 * appends to that model call's last user message. Each joined message ends with this run
 * (`turn_ended` naming it, or its `error`), and its caller gets this run's result (`merged`).
 * @returns the contents to inject, oldest first (empty when nothing waits)
 * @throws StoreError when the journal write fails (the turn then fails, its messages with it)
 */
export function steerInbox(options: SteerInboxOptions): () => Promise<string[]> {
  return async () => {
    const taken = options.take();
    if (taken.length === 0) return [];
    // The message itself must be stored before its turn_started (it was appended at acceptance);
    // one whose journal failed (e.g. a duplicate key) is answered with that failure, as in the queue.
    const journals = await Promise.allSettled(taken.map((j) => j.journal));
    const jobs: TurnJob[] = [];
    journals.forEach((r, i) => (r.status === "fulfilled" ? jobs.push(taken[i]!) : taken[i]!.reject(r.reason)));
    if (jobs.length === 0) return [];
    for (const j of jobs) j.controller = options.controller;
    options.joined(jobs);
    await options.append([...options.recorder.take(), ...jobs.map((j) => startedEvent(j.runId, options.runId))]);
    return jobs.map((j) => j.content);
  };
}
