/**
 * Turn execution: runs one batch of journaled messages (one message, or several folded by queue
 * mode `collect`) as one turn — system prompt, tools, history (compacted when needed), the
 * tool-use loop under the turn deadline — and appends its events, settling every message's job.
 */
import type { Logger } from "pino";
import { DEFAULT_LOOP_LIMIT, DEFAULT_TURN_TIMEOUT_MS } from "../config/index.js";
import { ErrorCode, RpcError, toErrorObject } from "../protocol/index.js";
import type { NewSessionEvent } from "../store/index.js";
import type { Agent } from "./agents.js";
import type { Telemetry, TurnTelemetry } from "../telemetry/index.js";
import type { CachedSessionLog } from "./cached-log.js";
import { AgentError, failureReason, InterruptedTurnError, TurnTimeoutError } from "./errors.js";
import type { BudgetGuard } from "./budget/index.js";
import type { TurnJob } from "./jobs.js";
import { startedEvent, TurnRecorder } from "./journal.js";
import { runTurn, type TurnTools } from "./loop.js";
import type { SoulFiles } from "./soul.js";
import type { MemoryService } from "./memory/index.js";
import { turnHistory } from "./turn-history.js";
import type { TurnResult } from "./turn-request.js";
import { guardToolLoops, steerInbox } from "./turn-control.js";
import type { TurnToolbox } from "./turn-tools.js";
import { userContent } from "./user-message.js";
import type { ProviderResilience } from "./resilience/index.js";
import type { ModelProvider, TurnEvent } from "./types.js";
import { TurnDeadline } from "./approvals/deadline.js";
import type { ApprovalBook } from "./approvals/book.js";
import type { LifecycleHooks } from "./hooks/lifecycle.js";
import { wireTurn, type TurnWiring } from "./hooks/turn-wiring.js";
import type { MediaStore } from "./media-store.js";

/** Separator between the contents of messages folded into one turn (queue mode `collect`). */
export const COLLECT_SEPARATOR = "\n\n";

/** A finished turn, as {@link AgentRuntimeOptions.onTurnSettled} reports it (no content: metadata only). */
export type SettledTurn = { runId: string; sessionKey: string; agentId: string; messages: number } & (
  | { ok: true; stopReason: string; usage: { inputTokens: number; outputTokens: number }; iterations: number }
  | { ok: false; error: { code: number; message: string } }
);

/** Options of {@link TurnExecutor}. */
export interface TurnExecutorOptions {
  /** Every model call goes through it: retries, key rotation, breaker and the agent's fallback chain. */
  providers: ProviderResilience;
  sessions: CachedSessionLog;
  souls: SoulFiles;
  tools: TurnToolbox;
  logger: Logger;
  /** Whether the runtime is shutting down (an aborted turn's error then says so). */
  closing: () => boolean;
  /** Called once per turn run, after its outcome is in the session log; must not throw (a throw is logged). */
  onTurnSettled?: ((turn: SettledTurn) => void) | undefined;
  /**
   * The agents as configured now (swapped by a config reload): a batch takes its agent from here
   * when it starts, so a message queued before a reload runs on the configuration current at its
   * start; absent (or an agent removed meanwhile) = the agent the message was accepted with.
   */
  agents?: ReadonlyMap<string, Agent> | undefined;
  /** Where the turn, its model calls and its tool calls are reported. */
  telemetry: Telemetry;
  /** Queue mode `steer`: takes the session's waiting messages into the running batch (SessionLanes.takeSteerable). */
  takeSteerable?: ((sessionKey: string) => TurnJob[]) | undefined;
  /** Metering and budgets of every model call (agent/budget); absent = neither. */
  budget?: BudgetGuard | undefined;
  /** Plugin lifecycle hooks (agent/hooks); absent = none. */
  hooks?: LifecycleHooks | undefined;
  /** Where tool calls under an agent's approval rules park (agent/approvals); absent = no approvals. */
  approvals?: ApprovalBook | undefined;
  /** The agents' memory: agents with `[agents.memory]` get a memory block before each new message. */
  memory?: MemoryService | undefined;
  /** Stored inbound images, rebuilt into later turns' history (media-store.ts). */
  media?: MediaStore | undefined;
}

/** Runs turn batches; tracks the running ones so a shutdown can abort them. */
export class TurnExecutor {
  private readonly inflight = new Set<AbortController>();
  /** Set by {@link abortAll}: a batch starting afterwards is aborted at once. */
  private aborting = false;

  constructor(private readonly options: TurnExecutorOptions) {}

  /** Aborts every running turn (shutdown past its grace) and every turn that starts from now on. */
  abortAll(): void {
    this.aborting = true;
    for (const c of this.inflight) c.abort(new Error("shutdown"));
  }

  /**
   * Runs one batch of journaled messages (one message, or several folded by `collect`) as one
   * turn and appends its events. Settles every job's promise; never rejects.
   */
  async executeBatch(sessionKey: string, batch: TurnJob[]): Promise<void> {
    const { sessions, logger } = this.options;
    const controller = new AbortController();
    for (const j of batch) j.controller = controller;
    // The turn belongs to every caller in the batch: it stops only when all of them went away.
    const signals = batch.map((j) => j.signal);
    const onAbort = () => {
      if (signals.every((s) => s?.aborted === true)) controller.abort(signals[signals.length - 1]!.reason);
    };
    if (this.aborting) controller.abort(new Error("shutdown"));
    onAbort();
    for (const s of signals) s?.addEventListener("abort", onAbort, { once: true });
    // The turn's configuration snapshot, taken once at its start: a reload during the turn
    // changes nothing in it (the next turn gets the new one).
    const agentOf = (job: TurnJob): Agent => this.options.agents?.get(job.agent.config.id) ?? job.agent;
    // The turn deadline: from the start of the batch, over everything it does.
    const turnTimeoutMs = agentOf(batch[batch.length - 1]!).config.turnTimeoutMs ?? DEFAULT_TURN_TIMEOUT_MS;
    const deadline = new TurnDeadline(turnTimeoutMs, () => controller.abort(new TurnTimeoutError(turnTimeoutMs)));
    this.inflight.add(controller);
    // Reported from here (the turn deadline's start) to the outcome; never a session key as a label.
    // (A batch whose messages all failed to journal never becomes a turn and is not counted.)
    const observed = this.options.telemetry.turn(batch[batch.length - 1]!.agent.config.id);
    let live: TurnJob[] = [];
    let recorder: TurnRecorder | undefined;
    let wiring: TurnWiring | undefined;
    // The message's write, when the turn started before it was durable (`early` below).
    let durable: Promise<void> | undefined;
    // Set when that write failed: the message is not stored, so neither is anything of its turn.
    let unjournaled: { err: unknown } | undefined;
    let durableSettled = false;
    try {
      // One message and no lifecycle hooks: the turn starts once the store has checked the
      // message's append (seq, dedupe keys: a refused message never reaches the model) and runs
      // its model call while the write is in flight (one fsync less on the turn's critical path;
      // docs/architecture.md, "A turn's durable waits"). What leaves the turn waits for the write:
      // streamed events, tool calls, the outcome's append, and so the answer. With several
      // messages (collect) or hooks (plugins see the turn from its start), it waits first.
      const overlap = batch.length === 1 && this.options.hooks?.active !== true;
      // The history does not depend on this turn's own messages: read it while they are written.
      const [journals, events] = await Promise.all([
        Promise.allSettled(batch.map((j) => (overlap ? Promise.race([j.checked, j.journal.then(() => false)]) : j.journal))),
        sessions.readHistory(sessionKey),
      ]);
      journals.forEach((r, i) => (r.status === "fulfilled" ? live.push(batch[i]!) : batch[i]!.reject(r.reason)));
      if (live.length === 0) return;
      const own = live[live.length - 1]!;
      // Only when the store reported the check before durability (the memory store does not).
      const early = overlap && (journals[0] as PromiseFulfilledResult<unknown>).value === true;
      if (early) {
        durable = own.journal.then(
          () => {
            durableSettled = true;
          },
          (err: unknown) => {
            durableSettled = true;
            unjournaled = { err };
            controller.abort(err);
            throw err;
          },
        );
        durable.catch(() => {});
      }
      // Streamed events wait for the message to be durable (they follow its acceptance).
      let held: TurnEvent[] | undefined;
      if (durable) {
        held = [];
        durable.then(
          () => {
            const out = held!;
            held = undefined;
            for (const ev of out) own.emit(ev);
          },
          () => {},
        );
      }
      const runId = own.runId;
      const agent = agentOf(own);
      const { config } = agent;
      recorder = new TurnRecorder(runId);
      const rec = recorder;
      const chain = this.options.providers.provider(config.models ?? [{ provider: config.provider, model: config.model }]);
      // Metering and budgets: every model call (compaction's too) goes through the meter, around the chain.
      const meter = this.options.budget?.meter(chain, config, sessionKey, runId);
      const record = (event: TurnEvent) => {
        const ev = meter ? meter.annotate(event) : event;
        rec.record(ev);
        if (held) held.push(ev);
        else own.emit(ev);
      };
      const starts = live.filter((j) => !j.startJournaled).map((j) => startedEvent(j.runId, runId));
      if (starts.length > 0) await sessions.append(sessionKey, starts);
      const content = live.map((j) => j.content).join(COLLECT_SEPARATOR);
      const system = await this.options.souls.systemPrompt(config);
      const base = meter?.provider ?? chain;
      // The loop reports its own model calls (no wrapper, no hop per streamed event); compaction's
      // summarization call goes through the observing wrapper.
      const provider = base;
      const compacting = this.options.telemetry.enabled ? observeProvider(base, observed) : base;
      // Memory recall runs while the history is assembled (docs/memory.md).
      const memory = config.memory !== undefined ? this.options.memory?.forTurn(config.memory, config.id, sessionKey, own.sender?.id, content) : undefined;
      const tools = this.options.tools.forTurn(agent, sessionKey, own.thread, own.sender?.id);
      // Group messages and images: each message's own blocks (sender line, images, text).
      const userBlocks = live.some((j) => j.sender !== undefined || j.images !== undefined)
        ? live.flatMap((j) => userContent(j.content, j.sender, j.images))
        : undefined;
      if (this.options.telemetry.enabled) observeTools(tools, observed);
      // A tool call may act on the world: not before the message it answers is durable.
      if (durable) {
        const gate = durable;
        const call = tools.call;
        tools.call = async (name, input, signal, meta) => {
          await gate;
          return call(name, input, signal, meta);
        };
      }
      // Loop detection: the repeated call aborts the turn with its ToolLoopError (turn-control.ts).
      guardToolLoops(tools, config.loopLimit ?? DEFAULT_LOOP_LIMIT, (err) => controller.abort(err));
      // Hooks and approvals: the tool gate around every tool dispatch, session_start, a resumed parked run.
      wiring = await wireTurn({
        hooks: this.options.hooks,
        book: this.options.approvals,
        config,
        sessionKey,
        runId,
        content,
        tools,
        events,
        resume: own.resume === true,
        record,
        park: (ev) => sessions.append(sessionKey, [...rec.take(), ev]).then(() => undefined),
        deadline,
        signal: controller.signal,
      });
      const takeSteerable = this.options.takeSteerable;
      const steer =
        config.queue?.mode === "steer" && takeSteerable !== undefined
          ? steerInbox({
              sessionKey,
              runId,
              take: () => takeSteerable(sessionKey),
              recorder: rec,
              append: (evs) => sessions.append(sessionKey, evs),
              // Before the run's own message: the batch's last job stays the one that answers.
              joined: (jobs) => live.unshift(...jobs),
              controller,
            })
          : undefined;
      const compaction = { usage: { inputTokens: 0, outputTokens: 0 }, calls: 0 };
      const history = await turnHistory(
        { sessions, logger, media: this.options.media },
        {
          config,
          system,
          provider: compacting,
          sessionKey,
          events,
          content,
          runId,
          firstRunId: live[0]!.runId,
          specs: tools.specs,
          signal: controller.signal,
          onUsage: (usage) => {
            compaction.calls++;
            compaction.usage.inputTokens += usage.inputTokens;
            compaction.usage.outputTokens += usage.outputTokens;
            record({ type: "usage", data: usage });
          },
        },
      );
      const turn = await runTurn(
        {
          provider,
          model: config.model,
          system,
          maxTokens: config.maxTokens,
          maxIterations: config.maxIterations,
          ...(config.idleTimeoutMs !== undefined ? { idleTimeoutMs: config.idleTimeoutMs } : {}),
          history: memory ? [...history, ...(await memory)] : history,
          content,
          ...(userBlocks !== undefined ? { userBlocks } : {}),
          tools,
          ...(steer !== undefined ? { steer } : {}),
          ...(this.options.telemetry.enabled ? { telemetry: observed } : {}),
          ...(wiring.resume !== undefined ? { resume: wiring.resume } : {}),
          ...(wiring.beforeModelCall !== undefined ? { beforeModelCall: wiring.beforeModelCall } : {}),
        },
        record,
        controller.signal,
      );
      turn.outcome.text = await wiring.finalText(turn.outcome.text, controller.signal);
      const stopReason = turn.outcome.stopReason;
      const folded = live.slice(0, -1);
      // The outcome follows its message in the log, and the answer follows both on disk.
      if (durable) await durable;
      await sessions.append(sessionKey, [
        ...rec.finish({ kind: "turn_ended", stopReason }),
        ...folded.map((j): NewSessionEvent => ({ kind: "turn_ended", runId: j.runId, data: { runId, stopReason } })),
      ]);
      const { outcome } = turn;
      const result: TurnResult =
        compaction.calls === 0
          ? { ...outcome, runId, sessionKey, agentId: config.id }
          : {
              ...outcome,
              usage: {
                inputTokens: outcome.usage.inputTokens + compaction.usage.inputTokens,
                outputTokens: outcome.usage.outputTokens + compaction.usage.outputTokens,
              },
              iterations: outcome.iterations + compaction.calls,
              runId,
              sessionKey,
              agentId: config.id,
            };
      for (const j of folded) j.resolve({ ...result, merged: true });
      own.resolve(result);
      observed.end("ok");
      this.settled({ runId, sessionKey, agentId: config.id, messages: live.length, ok: true, stopReason, usage: result.usage, iterations: result.iterations });
    } catch (err) {
      // Read before any await: a call parked for an approval stops being parked as the abort unwinds.
      const parked = wiring?.parked() === true;
      // A turn that failed before its message was durable reports the write's failure if it had one.
      if (durable && !durableSettled) await durable.catch(() => {});
      if (unjournaled) {
        for (const j of live) j.reject(unjournaled.err);
        return;
      }
      let failure = err;
      const reason: unknown = controller.signal.reason;
      if (controller.signal.aborted) {
        // The abort's own reason names why: interrupted, turn deadline, client gone.
        if (reason instanceof RpcError) failure = reason;
        else if (!(err instanceof RpcError && err.code !== ErrorCode.Aborted)) {
          failure = new AgentError("aborted", this.options.closing() ? "turn aborted: the gateway is shutting down" : "turn aborted");
        }
      }
      if (live.length > 0 && parked && this.options.closing()) {
        // Parked for an approval at shutdown: the run stays open in the log (with its
        // `approval_pending`) and resumes after the restart (agent/approvals/resume.ts).
        logger.info({ sessionKey, runId: live[live.length - 1]!.runId }, "turn parked for an approval left open for the next start");
        for (const j of live) j.reject(failure);
        observed.end("aborted");
      } else if (live.length > 0) {
        const e = toErrorObject(failure);
        wiring?.failed(e);
        const own = live[live.length - 1]!;
        if (e.code === ErrorCode.InternalError) logger.error({ err, sessionKey, runId: own.runId }, "turn failed with an internal error");
        const end = { kind: "error" as const, code: e.code, message: e.message };
        const events = [
          ...(recorder ?? new TurnRecorder(own.runId)).finish(end),
          ...live.slice(0, -1).map((j): NewSessionEvent => ({ kind: "error", runId: j.runId, data: { code: e.code, message: e.message } })),
        ];
        await sessions.append(sessionKey, events).catch((appendErr: unknown) => {
          logger.error({ err: appendErr, sessionKey, runId: own.runId }, "cannot record a failed turn in the session log");
        });
        for (const j of live) j.reject(failure instanceof InterruptedTurnError ? new InterruptedTurnError(j.runId, failure.message) : failure);
        observed.end(failureReason(failure) ?? "error");
        this.settled({
          runId: own.runId,
          sessionKey,
          agentId: own.agent.config.id,
          messages: live.length,
          ok: false,
          error: { code: e.code, message: e.message },
        });
      } else {
        for (const j of batch) j.reject(failure);
      }
    } finally {
      deadline.clear();
      for (const s of signals) s?.removeEventListener("abort", onAbort);
      this.inflight.delete(controller);
    }
  }

  private settled(turn: SettledTurn): void {
    try {
      this.options.onTurnSettled?.(turn);
    } catch (err) {
      this.options.logger.error({ err, runId: turn.runId }, "onTurnSettled callback threw");
    }
  }
}

/**
 * `provider` with each model call reported to `turn` (the turn's compaction call; the loop
 * reports its own calls, see `TurnInput.telemetry`): its duration (to the stream's end) and its
 * tokens (the provider's last `usage` event), `ok` false when the stream threw or was left early.
 */
function observeProvider(provider: ModelProvider, turn: TurnTelemetry): ModelProvider {
  return {
    name: provider.name,
    async *stream(request, signal) {
      const call = turn.providerCall(provider.name, request.model);
      let ok = false;
      let inputTokens = 0;
      let outputTokens = 0;
      try {
        for await (const ev of provider.stream(request, signal)) {
          if (ev.type === "usage") {
            if (ev.inputTokens !== undefined) inputTokens = ev.inputTokens;
            if (ev.outputTokens !== undefined) outputTokens = ev.outputTokens;
          }
          yield ev;
        }
        ok = true;
      } finally {
        call.end({ ok, inputTokens, outputTokens });
      }
    },
  };
}

/** Reports each tool call of `tools` to `turn` (a trace span; the plugin host counts the calls). */
function observeTools(tools: TurnTools, turn: TurnTelemetry): void {
  const call = tools.call;
  tools.call = async (name, input, signal) => {
    const observed = turn.toolCall(name);
    let isError = true;
    try {
      const result = await call(name, input, signal);
      isError = result.isError;
      return result;
    } finally {
      observed.end(isError);
    }
  };
}
