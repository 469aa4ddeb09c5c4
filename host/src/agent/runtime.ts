import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { AgentConfig, ProviderName } from "../config/types.js";
import { silentLogger } from "../log/index.js";
import { ErrorCode, RpcError } from "../protocol/errors.js";
import { toErrorObject } from "../protocol/jsonrpc.js";
import type { PluginRegistry, ToolSpec } from "../plugins/types.js";
import { DuplicateEventError } from "../store/errors.js";
import { projectHistory } from "../store/projection.js";
import { parseSessionKey } from "../store/session-key.js";
import type { NewSessionEvent, SessionEvent, SessionEventOf, SessionLog } from "../store/types.js";
import { estimateTokens, messageChars, planCompaction, renderTranscript, summarize, summaryBudget } from "./compaction.js";
import { HistoryCache } from "./history-cache.js";
import { outcomeFromEvents, TurnRecorder } from "./journal.js";
import { SessionLanes } from "./lanes.js";
import { runTurn, type TurnTools } from "./loop.js";
import { compileToolAllowlist } from "./tool-policy.js";
import type { ChatMessage, ModelProvider, TurnEvent, TurnOutcome } from "./types.js";

/** A turn to run: which agent, which session, what the user said. */
export interface TurnRequest {
  agentId: string;
  sessionKey: string;
  content: string;
  /** Run id to use (e.g. already announced to the client); generated when absent. */
  runId?: string;
  /** Where the message came from, stored with it; default: the session key's parts. */
  channel?: string;
  account?: string;
  peer?: string;
  /**
   * The client's key for this message (unique per store). A repeated key never runs a second
   * turn: it is answered with the first turn's outcome (see {@link AgentRuntime.run}).
   */
  idempotencyKey?: string;
}

/**
 * A finished turn: its outcome, run id and session (for a replay: the original turn's, which
 * may differ from the repeated request's); `replayed` when it answers a repeated idempotency key.
 */
export type TurnResult = TurnOutcome & { runId: string; sessionKey: string; agentId: string; replayed?: true };

/**
 * The answer to a repeated idempotency key whose turn failed: the original failure's code and
 * message, and the original run id. No events are emitted for it.
 */
export class ReplayedTurnError extends RpcError {
  constructor(
    code: number,
    message: string,
    readonly runId: string,
  ) {
    super(code, message);
    this.name = "ReplayedTurnError";
  }
}

/** Options of {@link AgentRuntime}. */
export interface AgentRuntimeOptions {
  agents: AgentConfig[];
  providers: (name: ProviderName) => ModelProvider;
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  /** Where sessions live: every turn is journaled here and its model input projected from it. */
  log: SessionLog;
  /** Recovery, compaction and store warnings; default silent. */
  logger?: Logger;
  /** Turns allowed per session (running + queued); default 32. */
  maxQueuedPerSession?: number;
  /**
   * Sessions whose history events are kept in process between turns (saves a store read per
   * turn); default 256; 0 reads every turn's history from the store.
   */
  historyCacheSessions?: number;
}

/** What {@link AgentRuntime.recover} did with the turns a previous process left unfinished. */
export interface RecoveryReport {
  /** Accepted turns that had not started: queued again, in their original order. */
  rerun: number;
  /** Turns that had started: closed with an `error` event (-32006), not re-run. */
  failed: number;
}

/** Message of the `error` event that closes a turn a crash interrupted. */
export const INTERRUPTED_MESSAGE =
  "turn interrupted: the gateway stopped while this turn was running; it was not re-run because it may already have called tools";

interface Agent {
  config: AgentConfig;
  allows: (tool: string) => boolean;
}

/** A turn with an idempotency key in this process: its run id (the original's, once known) and outcome. */
interface KeyedTurn {
  runId?: string;
  promise: Promise<TurnResult>;
}

const startedEvent = (runId: string): NewSessionEvent => ({ kind: "turn_started", runId, data: { runId } });

/**
 * Runs turns on the session log: one at a time per session key (later ones wait their turn),
 * different sessions concurrently.
 *
 * A turn is journaled as events (see `host/src/store/README.md`, turn protocol):
 * `message_received` (+ `turn_started` when the session is idle) is appended — durably, for a
 * durable store — before the turn starts; a queued turn appends `turn_started` when it starts;
 * the rest (`assistant_text`, `tool_use`, `tool_result`, `usage`, then `turn_ended` or `error`)
 * is appended in one batch when the turn ends, before the caller gets the outcome. The model
 * sees `projectHistory` of the session's events: completed turns only, so a failed turn leaves
 * the history valid for the next one. When that history would exceed the agent's
 * `contextWindow`, older turns are first folded into a summary (a `compaction` event).
 */
export class AgentRuntime {
  private readonly agents: Map<string, Agent>;
  private readonly lanes: SessionLanes;
  private readonly inflight = new Map<string, AbortController>();
  /** Turns with an idempotency key that are being decided or run in this process. */
  private readonly keyed = new Map<string, KeyedTurn>();
  private readonly log: SessionLog;
  private readonly logger: Logger;
  private readonly cache: HistoryCache;
  private closing = false;
  private aborting = false;

  constructor(private readonly options: AgentRuntimeOptions) {
    this.agents = new Map(options.agents.map((a) => [a.id, { config: a, allows: compileToolAllowlist(a.tools) }]));
    this.lanes = new SessionLanes(options.maxQueuedPerSession ?? 32);
    this.log = options.log;
    this.logger = options.logger ?? silentLogger();
    this.cache = new HistoryCache(options.historyCacheSessions ?? 256);
  }

  /** Sessions in the store. @throws StoreError when the store fails */
  sessionCount(): Promise<number> {
    return this.log.countSessions();
  }

  /** Turns running or queued. */
  activeTurns(): number {
    return this.lanes.size;
  }

  /**
   * Runs one turn in its session's lane.
   *
   * With `idempotencyKey`: if a turn with that key is running or queued in this process, waits
   * for it and returns its outcome (`replayed: true`, no events); if the store has it, returns
   * its stored outcome the same way, or throws {@link ReplayedTurnError} with its failure;
   * otherwise runs the turn. The key is taken by the store's unique index, so even two
   * processes on one server database never both run it.
   *
   * @param emit receives the turn's events in order (text, tool_use, tool_result, usage)
   * @param signal aborts this turn (e.g. the client went away)
   * @throws RpcError: -32005 shutting down, -32004 session queue full (or a stored turn with this
   *   key has not finished), -32602 unknown agent, -32002 iteration limit, -32000/-32001 provider
   *   failures, -32006 aborted; ReplayedTurnError; StoreError when the store fails
   */
  async run(request: TurnRequest, emit: (ev: TurnEvent) => void, signal?: AbortSignal): Promise<TurnResult> {
    if (this.closing) throw new RpcError(ErrorCode.ShuttingDown, "the gateway is shutting down");
    const agent = this.agents.get(request.agentId);
    if (!agent) throw new RpcError(ErrorCode.InvalidParams, `unknown agent "${request.agentId}"`);
    const key = request.idempotencyKey;
    if (key === undefined) return this.accept(agent, request, emit, signal);
    const running = this.keyed.get(key);
    if (running) return asReplay(running);
    const runId = request.runId ?? randomUUID();
    const slot = { runId } as KeyedTurn;
    slot.promise = this.runKeyed(agent, { ...request, runId }, key, slot, emit, signal);
    this.track(key, slot);
    return slot.promise;
  }

  /**
   * Crash recovery, once at start-up before taking requests: finds the turns the store says were
   * accepted but never finished. A turn that had not started (no `turn_started`) is queued again
   * in its session's lane, in order — its outcome goes to the log, and a client repeating its
   * idempotency key gets it. A turn that had started is closed with an `error` event (-32006,
   * {@link INTERRUPTED_MESSAGE}) and not re-run: it may have called tools with side effects.
   * A turn whose agent is no longer configured is closed with -32602.
   * @throws StoreError when the store cannot be read
   */
  async recover(): Promise<RecoveryReport> {
    const pending = await this.log.pendingTurns();
    const bySession = new Map<string, SessionEventOf<"message_received">[]>();
    for (const m of pending) {
      const list = bySession.get(m.sessionKey) ?? [];
      list.push(m);
      bySession.set(m.sessionKey, list);
    }
    const report: RecoveryReport = { rerun: 0, failed: 0 };
    for (const [sessionKey, messages] of bySession) {
      messages.sort((a, b) => a.seq - b.seq);
      const later = await this.readAll(sessionKey, messages[0]!.seq - 1);
      const started = new Set(later.filter((e) => e.kind === "turn_started").map((e) => e.runId ?? (e as SessionEventOf<"turn_started">).data.runId));
      const agentId = parseSessionKey(sessionKey).agent;
      const agent = this.agents.get(agentId);
      const failures: NewSessionEvent[] = [];
      const rerun: { message: SessionEventOf<"message_received">; runId: string }[] = [];
      for (const m of messages) {
        const runId = m.runId ?? randomUUID();
        if (!agent) failures.push({ kind: "error", runId, data: { code: ErrorCode.InvalidParams, message: `agent "${agentId}" is no longer configured` } });
        else if (m.runId !== undefined && started.has(m.runId)) failures.push({ kind: "error", runId, data: { code: ErrorCode.Aborted, message: INTERRUPTED_MESSAGE } });
        else rerun.push({ message: m, runId });
      }
      if (failures.length > 0) await this.append(sessionKey, failures);
      report.failed += failures.length;
      for (const { message, runId } of rerun) {
        const promise = this.lanes.run(sessionKey, () => this.execute(agent!, sessionKey, message.data.content, runId, Promise.resolve(), false, () => {}), { force: true });
        promise.then(
          (r) => this.logger.info({ sessionKey, runId, stopReason: r.stopReason }, "recovered turn finished"),
          (err: unknown) => this.logger.warn({ sessionKey, runId, error: toErrorObject(err).message }, "recovered turn failed"),
        );
        const key = message.data.idempotencyKey;
        if (key !== undefined) this.track(key, { runId, promise });
        report.rerun++;
      }
    }
    if (report.rerun + report.failed > 0) this.logger.warn(report, "recovered turns left unfinished by the previous gateway process");
    return report;
  }

  /**
   * Stops taking turns, waits up to `graceMs` for running and queued turns to finish, then
   * aborts the rest (each gets an `error` event in its session). Resolves when no turn is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while (this.lanes.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.aborting = true;
    for (const c of this.inflight.values()) c.abort(new Error("shutdown"));
    while (this.lanes.size > 0) await new Promise((r) => setTimeout(r, 10));
  }

  /**
   * Appends a `reset` marker after the session's running and queued turns (a reset never cuts a
   * turn in half; turns accepted before it do not enter the new history).
   * @returns the marker's seq, or undefined for an unknown session (nothing is written)
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  resetSession(sessionKey: string, reason?: string): Promise<number | undefined> {
    return this.lanes.run(sessionKey, async () => {
      this.cache.drop(sessionKey);
      if (!(await this.log.info(sessionKey))) return undefined;
      return this.log.reset(sessionKey, reason);
    });
  }

  /**
   * Erases the session after its running and queued turns.
   * @returns false for an unknown session
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  deleteSession(sessionKey: string): Promise<boolean> {
    return this.lanes.run(sessionKey, async () => {
      this.cache.drop(sessionKey);
      return this.log.delete(sessionKey);
    });
  }

  /** Appends through the history cache. */
  private async append(sessionKey: string, events: NewSessionEvent[]): Promise<SessionEvent[]> {
    const stored = await this.log.appendEvents(sessionKey, events);
    this.cache.appended(sessionKey, stored);
    return stored;
  }

  /** The session's `readHistory` events, from the cache when it has them. */
  private async readHistory(sessionKey: string): Promise<SessionEvent[]> {
    const cached = this.cache.get(sessionKey);
    if (cached) return cached;
    const events = await this.log.readHistory(sessionKey);
    this.cache.fill(sessionKey, events);
    return events;
  }

  private track(key: string, slot: KeyedTurn): void {
    this.keyed.set(key, slot);
    const forget = () => {
      if (this.keyed.get(key) === slot) this.keyed.delete(key);
    };
    slot.promise.then(forget, forget);
  }

  private async runKeyed(
    agent: Agent,
    request: TurnRequest,
    key: string,
    slot: { runId?: string },
    emit: (ev: TurnEvent) => void,
    signal?: AbortSignal,
  ): Promise<TurnResult> {
    try {
      // The store's unique index decides: no lookup on the common path (a new key).
      return await this.accept(agent, request, emit, signal);
    } catch (err) {
      if (!(err instanceof DuplicateEventError)) throw err;
    }
    const stored = await this.log.findByIdempotencyKey(key);
    if (!stored) throw new RpcError(ErrorCode.InternalError, "idempotency key reported taken but not found");
    slot.runId = stored.runId;
    return this.replayStored(stored);
  }

  /** The outcome of a stored turn, as a replay. */
  private async replayStored(message: SessionEventOf<"message_received">): Promise<TurnResult> {
    const runId = message.runId;
    if (runId !== undefined) {
      for (let after = message.seq; ; ) {
        const page = await this.log.read(message.sessionKey, { afterSeq: after, limit: 512 });
        const stored = outcomeFromEvents(page, runId);
        if (stored.status === "ended") return { ...stored.outcome, runId, sessionKey: message.sessionKey, agentId: parseSessionKey(message.sessionKey).agent, replayed: true };
        if (stored.status === "failed") throw new ReplayedTurnError(stored.code, stored.message, runId);
        if (page.length < 512) break;
        after = page[page.length - 1]!.seq;
      }
    }
    throw new RpcError(ErrorCode.SessionBusy, "the message with this idempotencyKey was accepted and its turn has not finished yet; retry later");
  }

  /** Journals the message and queues the turn in its session's lane. */
  private accept(agent: Agent, request: TurnRequest, emit: (ev: TurnEvent) => void, signal?: AbortSignal): Promise<TurnResult> {
    if (this.closing) return Promise.reject(new RpcError(ErrorCode.ShuttingDown, "the gateway is shutting down"));
    const { sessionKey } = request;
    // Checked before journaling: a message the lane would refuse must not be stored as accepted.
    if (this.lanes.isFull(sessionKey)) return this.lanes.run(sessionKey, () => Promise.reject(new Error("unreachable: the lane is full")));
    const runId = request.runId ?? randomUUID();
    const parts = request.channel !== undefined && request.account !== undefined && request.peer !== undefined ? request : parseSessionKey(sessionKey);
    const message: NewSessionEvent = {
      kind: "message_received",
      runId,
      data: {
        content: request.content,
        channel: parts.channel!,
        account: parts.account!,
        peer: parts.peer!,
        ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
      },
    };
    // An idle session starts the turn right away: journal its start with the message (one write).
    const startNow = this.lanes.pendingFor(sessionKey) === 0;
    const journal = this.append(sessionKey, startNow ? [message, startedEvent(runId)] : [message]);
    journal.catch(() => {});
    return this.lanes.run(sessionKey, () => this.execute(agent, sessionKey, request.content, runId, journal, startNow, emit, signal));
  }

  /** Runs a journaled turn (in its lane) and appends its events. */
  private async execute(
    agent: Agent,
    sessionKey: string,
    content: string,
    runId: string,
    journal: Promise<unknown>,
    startJournaled: boolean,
    emit: (ev: TurnEvent) => void,
    signal?: AbortSignal,
  ): Promise<TurnResult> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted || this.aborting) controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.inflight.set(runId, controller);
    const recorder = new TurnRecorder(runId);
    const record = (ev: TurnEvent) => {
      recorder.record(ev);
      emit(ev);
    };
    let journaled = false;
    try {
      // The history does not depend on this turn's own message: read it while that is written.
      const [, events] = await Promise.all([journal, this.readHistory(sessionKey)]);
      journaled = true;
      if (!startJournaled) await this.append(sessionKey, [startedEvent(runId)]);
      const { config } = agent;
      const provider = this.options.providers(config.provider);
      const tools: TurnTools = {
        specs: this.options.plugins.tools().filter((t) => agent.allows(t.name)),
        // The conversation the call belongs to, written by the host (the model cannot forge it):
        // tools such as `memory` keep per-peer data apart with it.
        call: (name, input, s) =>
          this.options.plugins.callTool(name, input, s, { peer: parseSessionKey(sessionKey).peer, sessionKey, agentId: config.id }),
      };
      const compaction = { usage: { inputTokens: 0, outputTokens: 0 }, calls: 0 };
      const history = await this.history(config, provider, sessionKey, events, content, runId, tools.specs, controller.signal, (usage) => {
        compaction.calls++;
        compaction.usage.inputTokens += usage.inputTokens;
        compaction.usage.outputTokens += usage.outputTokens;
        record({ type: "usage", data: usage });
      });
      const turn = await runTurn(
        {
          provider,
          model: config.model,
          system: config.systemPrompt,
          maxTokens: config.maxTokens,
          maxIterations: config.maxIterations,
          history,
          content,
          tools,
        },
        record,
        controller.signal,
      );
      await this.append(sessionKey, recorder.finish({ kind: "turn_ended", stopReason: turn.outcome.stopReason }));
      const { outcome } = turn;
      if (compaction.calls === 0) return { ...outcome, runId, sessionKey, agentId: config.id };
      return {
        ...outcome,
        usage: { inputTokens: outcome.usage.inputTokens + compaction.usage.inputTokens, outputTokens: outcome.usage.outputTokens + compaction.usage.outputTokens },
        iterations: outcome.iterations + compaction.calls,
        runId,
        sessionKey,
        agentId: config.id,
      };
    } catch (err) {
      let failure = err;
      if (controller.signal.aborted && !(err instanceof RpcError && err.code !== ErrorCode.Aborted)) {
        failure = new RpcError(ErrorCode.Aborted, this.closing ? "turn aborted: the gateway is shutting down" : "turn aborted");
      }
      if (journaled) {
        const e = toErrorObject(failure);
        if (e.code === ErrorCode.InternalError) this.logger.error({ err, sessionKey, runId }, "turn failed with an internal error");
        await this.append(sessionKey, recorder.finish({ kind: "error", code: e.code, message: e.message })).catch((appendErr: unknown) => {
          this.logger.error({ err: appendErr, sessionKey, runId }, "cannot record a failed turn in the session log");
        });
      }
      throw failure;
    } finally {
      signal?.removeEventListener("abort", onAbort);
      this.inflight.delete(runId);
    }
  }

  /**
   * The model input for a turn: the projection of the session's events, compacted first when
   * it would not fit the agent's context window. A failed summarization is logged and the full
   * history is used (the provider then decides).
   */
  private async history(
    config: AgentConfig,
    provider: ModelProvider,
    sessionKey: string,
    events: SessionEvent[],
    content: string,
    runId: string,
    specs: ToolSpec[],
    signal: AbortSignal,
    onUsage: (usage: { inputTokens: number; outputTokens: number }) => void,
  ): Promise<ChatMessage[]> {
    const messages = projectHistory(events);
    const window = config.contextWindow;
    const historyTokens = estimateTokens(messageChars(messages));
    const contentTokens = estimateTokens(content.length + (config.systemPrompt?.length ?? 0));
    if (historyTokens + contentTokens <= window / 2) return messages; // far from the limit: skip the tool-spec estimate
    const fixed = contentTokens + (specs.length > 0 ? estimateTokens(JSON.stringify(specs).length) : 0);
    if (historyTokens + fixed <= window) return messages;
    const budget = summaryBudget(window, config.maxTokens);
    const plan = planCompaction(events, runId, window, fixed, budget);
    if (!plan) return messages;
    let summary: string;
    try {
      const transcript = renderTranscript(plan.folded, Math.max(4000, (window - budget) * 4));
      const out = await summarize(provider, config.model, transcript, budget, signal);
      onUsage(out.usage);
      summary = out.summary;
    } catch (err) {
      if (signal.aborted) throw err;
      this.logger.warn({ sessionKey, runId, error: toErrorObject(err).message }, "compaction failed: the summarization call failed; using the full history");
      return messages;
    }
    if (summary.length === 0) return messages;
    this.cache.drop(sessionKey);
    await this.log.append(sessionKey, [{ kind: "compaction", runId, data: { summary, upToSeq: plan.upToSeq } }]);
    this.logger.info({ sessionKey, runId, upToSeq: plan.upToSeq, foldedTurns: plan.foldedTurns, keptTurns: plan.keptTurns, historyTokens, window }, "session compacted");
    return projectHistory(await this.readHistory(sessionKey));
  }

  /** Every event of a session after `afterSeq`. */
  private async readAll(sessionKey: string, afterSeq: number): Promise<SessionEvent[]> {
    const out: SessionEvent[] = [];
    for (let after = afterSeq; ; ) {
      const page = await this.log.read(sessionKey, { afterSeq: after, limit: 1000 });
      out.push(...page);
      if (page.length < 1000) return out;
      after = page[page.length - 1]!.seq;
    }
  }
}

/** A waiting duplicate's view of the original turn: the same outcome, marked as a replay. */
function asReplay(slot: KeyedTurn): Promise<TurnResult> {
  return slot.promise.then(
    (r) => ({ ...r, replayed: true as const }),
    (err: unknown) => {
      if (err instanceof ReplayedTurnError) throw err;
      const e = toErrorObject(err);
      throw new ReplayedTurnError(e.code, e.message, slot.runId ?? "");
    },
  );
}
