import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { DEFAULT_QUEUE, type AgentConfig, type ProviderName } from "../config/types.js";
import { silentLogger } from "../log/index.js";
import { ErrorCode, RpcError } from "../protocol/errors.js";
import { toErrorObject } from "../protocol/jsonrpc.js";
import type { PluginRegistry } from "../plugins/types.js";
import { DuplicateEventError } from "../store/errors.js";
import { parseSessionKey } from "../store/session-key.js";
import type { NewSessionEvent, SessionEventOf, SessionLog } from "../store/types.js";
import { compileAgents, type Agent } from "./agents.js";
import { CachedSessionLog } from "./cached-log.js";
import { deferred } from "./deferred.js";
import { InterruptedTurnError } from "./errors.js";
import { makeTurnJob, type Job, type TaskJob, type TurnJob } from "./jobs.js";
import { outcomeFromEvents, startedEvent } from "./journal.js";
import { SessionQueues } from "./queue.js";
import { SoulFiles } from "./soul.js";
import { TurnExecutor, type SettledTurn } from "./turn.js";
import { messageSource, type RunHooks, type TurnRequest, type TurnResult } from "./turn-request.js";
import { TurnToolbox } from "./turn-tools.js";
import type { ModelProvider, OutboundSender, TurnEvent } from "./types.js";

export { COLLECT_SEPARATOR, type SettledTurn } from "./turn.js";
export type { RunHooks, TurnRequest, TurnResult } from "./turn-request.js";

/**
 * A turn {@link AgentRuntime.recover} handled, with where its message came from (from the
 * stored `message_received`), so a channel can deliver the reply, or a "could not answer",
 * after a crash: `result` when a re-run turn finished, `error` when it failed or when a turn
 * that had started before the crash was closed as failed.
 */
export interface RecoveredTurn {
  sessionKey: string;
  agentId: string;
  runId: string;
  channel: string;
  account: string;
  peer: string;
  thread?: string;
  platformMessageId?: string;
  result?: TurnResult;
  error?: { code: number; message: string };
}

/**
 * The answer to a repeated idempotency key whose turn failed: the original failure's code and
 * message, and the original run id. No events are emitted for it.
 */
export class ReplayedTurnError extends RpcError {
  constructor(
    code: number,
    message: string,
    readonly runId: string,
    /** The session of the original turn (the gateway checks the caller may see it before answering). */
    readonly sessionKey: string,
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
  /** Recovery, compaction, soul file, outbound and store warnings; default silent. */
  logger?: Logger;
  /**
   * Turns allowed per session (running + queued) for every agent, overriding each agent's
   * `queue.cap` (tests); default: the agent's cap.
   */
  maxQueuedPerSession?: number;
  /**
   * Sessions whose history events are kept in process between turns (saves a store read per
   * turn); default 256; 0 reads every turn's history from the store.
   */
  historyCacheSessions?: number;
  /** Called for each turn {@link AgentRuntime.recover} re-ran (when it settles) or closed as failed (at once). */
  onRecovered?: (turn: RecoveredTurn) => void;
  /**
   * Delivers messages on platforms. When set, agents whose tool allowlist allows it get the
   * built-in `message_send` tool (see `builtin-tools.ts`), limited to their own conversation's
   * peer and their outbound allowlist.
   */
  outbound?: OutboundSender;
  /**
   * Called once per turn this process ran, after its outcome is in the session log: its run id,
   * session, agent, and either the stop reason, usage (tokens) and model calls, or the error.
   * Folded (`collect`) messages are not reported separately. Must not throw (a throw is logged).
   * The gateway publishes these to `exoclaw.events.<agent>` when a bus is configured.
   */
  onTurnSettled?: (turn: SettledTurn) => void;
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

/** Message of the `error` event that closes a queued message dropped for a newer one (`drop = "oldest"`). */
export const DROPPED_MESSAGE = "dropped: the session queue was full";

/** A turn with an idempotency key in this process: its run id (the original's, once known), acceptance and outcome. */
interface KeyedTurn {
  runId?: string;
  /** The session of the turn that holds the key. */
  sessionKey: string;
  /** Resolves with the run id once the message is journaled (or found stored); undefined when it was refused. */
  accepted: Promise<string | undefined>;
  promise: Promise<TurnResult>;
}

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
 *
 * Queueing follows each agent's `queue` policy:
 * - `followup`: queued messages run one turn each, in arrival order.
 * - `collect`: when a turn ends, every message queued behind it runs as ONE turn whose user
 *   content is their contents joined by a blank line. Each message keeps its own
 *   `message_received`; each gets a `turn_started` and a `turn_ended` (or `error`) whose
 *   `data.runId` names the run that answered it (the last message's). The projection renders
 *   them as one user message. The folded messages resolve with that run's result,
 *   `merged: true`; events stream to the last message's caller only.
 * - `interrupt`: a new message aborts the running turn (rejects with
 *   {@link InterruptedTurnError}, closed by an `error` event -32006) and supersedes any message
 *   still queued (the same error), then runs. Superseded messages leave the history, like any
 *   failed turn.
 * - At `cap` (running + queued messages): `drop = "new"` refuses the newcomer before journaling
 *   (-32004); `drop = "oldest"` drops the oldest queued, not running, message (an `error` event
 *   -32004 {@link DROPPED_MESSAGE}; its promise rejects) and accepts the newcomer (refused when
 *   nothing is queued to drop). Every accepted message ends with `turn_ended` or `error`.
 */
export class AgentRuntime {
  private readonly agents: Map<string, Agent>;
  private readonly queues: SessionQueues<Job>;
  /** Turns with an idempotency key that are being decided or run in this process. */
  private readonly keyed = new Map<string, KeyedTurn>();
  private readonly log: SessionLog;
  private readonly logger: Logger;
  private readonly sessions: CachedSessionLog;
  private readonly executor: TurnExecutor;
  /** Failure records of dropped or superseded messages still being written. */
  private detached = 0;
  /** Callers of {@link whenIdle} waiting for the last turn, task or failure record. */
  private readonly idleWaiters: (() => void)[] = [];
  private closing = false;

  /** @throws Error when an agent's outbound allowlist has a malformed entry */
  constructor(private readonly options: AgentRuntimeOptions) {
    this.agents = compileAgents(options.agents);
    this.queues = new SessionQueues<Job>(
      (key, batch) => (batch[0]!.kind === "task" ? (batch[0] as TaskJob).run() : this.executor.executeBatch(key, batch as TurnJob[])),
      () => this.checkIdle(),
    );
    this.log = options.log;
    this.logger = options.logger ?? silentLogger();
    this.sessions = new CachedSessionLog(options.log, options.historyCacheSessions ?? 256);
    this.executor = new TurnExecutor({
      providers: options.providers,
      sessions: this.sessions,
      souls: new SoulFiles(this.logger),
      tools: new TurnToolbox({ plugins: options.plugins, ...(options.outbound !== undefined ? { outbound: options.outbound } : {}), logger: this.logger }),
      logger: this.logger,
      closing: () => this.closing,
      onTurnSettled: options.onTurnSettled,
    });
  }

  /** Sessions in the store. @throws StoreError when the store fails */
  sessionCount(): Promise<number> {
    return this.log.countSessions();
  }

  /** Turns running or queued (messages, counting each message folded into a turn). */
  activeTurns(): number {
    return this.queues.size;
  }

  /**
   * Runs one turn in its session's queue (see the class comment for the queue modes).
   *
   * With `idempotencyKey`: if a turn with that key is running or queued in this process, waits
   * for it and returns its outcome (`replayed: true`, no events); if the store has it, returns
   * its stored outcome the same way, or throws {@link ReplayedTurnError} with its failure;
   * otherwise runs the turn. The key is taken by the store's unique index, so even two
   * processes on one server database never both run it. A repeated `platformMessageId` (same
   * channel and account) is answered the same way.
   *
   * @param emit receives the turn's events in order (text, tool_use, tool_result, usage)
   * @param signal aborts this turn (e.g. the client went away; its reason, when an RpcError,
   *   is the turn's error). Ignored for a request with `idempotencyKey`: such a client can
   *   reconnect and repeat the key for the outcome, so the turn runs on (within its deadline).
   * @param hooks `onAccepted` once the message is journaled
   * @throws RpcError: -32005 shutting down, -32004 session queue full or the message dropped
   *   from a full queue (or a stored turn with this key has not finished), -32602 unknown
   *   agent, -32002 iteration limit, -32000/-32001 provider failures (ProviderStallError: the
   *   provider went silent), -32006 aborted (TurnTimeoutError: past the agent's turn deadline);
   *   InterruptedTurnError (-32006) when a newer message interrupted it; ReplayedTurnError;
   *   StoreError when the store fails
   */
  async run(request: TurnRequest, emit: (ev: TurnEvent) => void, signal?: AbortSignal, hooks?: RunHooks): Promise<TurnResult> {
    if (this.closing) throw new RpcError(ErrorCode.ShuttingDown, "the gateway is shutting down");
    const agent = this.agents.get(request.agentId);
    if (!agent) throw new RpcError(ErrorCode.InvalidParams, `unknown agent "${request.agentId}"`);
    const key = request.idempotencyKey;
    if (key === undefined) {
      const runId = request.runId ?? randomUUID();
      return this.runDeduped(agent, { ...request, runId }, (id) => this.accepted(hooks, id), emit, signal);
    }
    // A keyed turn belongs to the key, not to the connection that sent it (see `signal` above).
    signal = undefined;
    const running = this.keyed.get(key);
    if (running) {
      void running.accepted.then((id) => id !== undefined && this.accepted(hooks, id));
      return asReplay(running);
    }
    const runId = request.runId ?? randomUUID();
    const accepted = deferred<string | undefined>();
    const slot: KeyedTurn = { runId, sessionKey: request.sessionKey, accepted: accepted.promise, promise: undefined as unknown as Promise<TurnResult> };
    const onAccepted = (id: string) => {
      slot.runId = id;
      accepted.resolve(id);
      this.accepted(hooks, id);
    };
    slot.promise = this.runDeduped(agent, { ...request, runId }, onAccepted, emit, signal);
    slot.promise.then(
      () => accepted.resolve(undefined),
      () => accepted.resolve(undefined),
    );
    this.track(key, slot);
    return slot.promise;
  }

  /**
   * Crash recovery, once at start-up before taking requests: finds the turns the store says were
   * accepted but never finished. A turn that had not started (no `turn_started`) is queued again
   * in its session's queue, in order — its outcome goes to the log, and a client repeating its
   * idempotency key gets it. A turn that had started is closed with an `error` event (-32006,
   * {@link INTERRUPTED_MESSAGE}) and not re-run: it may have called tools with side effects.
   * A turn whose agent is no longer configured is closed with -32602. Each handled turn is
   * reported to `options.onRecovered`.
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
      const later = await this.sessions.readAll(sessionKey, messages[0]!.seq - 1);
      const started = new Set(later.filter((e) => e.kind === "turn_started").map((e) => e.runId ?? (e as SessionEventOf<"turn_started">).data.runId));
      const agentId = parseSessionKey(sessionKey).agent;
      const agent = this.agents.get(agentId);
      const failures: { message: SessionEventOf<"message_received">; runId: string; code: number; text: string }[] = [];
      const rerun: { message: SessionEventOf<"message_received">; runId: string }[] = [];
      for (const m of messages) {
        const runId = m.runId ?? randomUUID();
        if (!agent) failures.push({ message: m, runId, code: ErrorCode.InvalidParams, text: `agent "${agentId}" is no longer configured` });
        else if (m.runId !== undefined && started.has(m.runId)) failures.push({ message: m, runId, code: ErrorCode.Aborted, text: INTERRUPTED_MESSAGE });
        else rerun.push({ message: m, runId });
      }
      if (failures.length > 0) {
        await this.sessions.append(
          sessionKey,
          failures.map((f): NewSessionEvent => ({ kind: "error", runId: f.runId, data: { code: f.code, message: f.text } })),
        );
        for (const f of failures) this.recovered(f.message, agentId, f.runId, { error: { code: f.code, message: f.text } });
      }
      report.failed += failures.length;
      for (const { message, runId } of rerun) {
        const job = makeTurnJob({ agent: agent!, sessionKey, runId, content: message.data.content, thread: message.data.thread, journal: Promise.resolve(), startJournaled: false, emit: () => {} });
        this.queues.push(sessionKey, job);
        job.promise.then(
          (r) => {
            this.logger.info({ sessionKey, runId, stopReason: r.stopReason, merged: r.merged }, "recovered turn finished");
            this.recovered(message, agentId, runId, { result: r });
          },
          (err: unknown) => {
            const error = toErrorObject(err);
            this.logger.warn({ sessionKey, runId, error: error.message }, "recovered turn failed");
            this.recovered(message, agentId, runId, { error: { code: error.code, message: error.message } });
          },
        );
        const key = message.data.idempotencyKey;
        if (key !== undefined) this.track(key, { runId, sessionKey, accepted: Promise.resolve(runId), promise: job.promise });
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
    if (graceMs > 0 && this.busy()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.whenIdle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.executor.abortAll();
    await this.whenIdle();
  }

  /**
   * Resolves once no turn or session task is running or queued and no failure record of a
   * dropped or superseded message is still being written (at once when that is already so).
   * New work accepted after it resolved is not waited for.
   */
  whenIdle(): Promise<void> {
    if (!this.busy()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private busy(): boolean {
    return this.queues.size > 0 || this.detached > 0;
  }

  /** Wakes {@link whenIdle} waiters when nothing is left (called when the queues empty and when a failure record is written). */
  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || this.busy()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /**
   * Appends a `reset` marker after the session's running and queued turns (a reset never cuts a
   * turn in half; turns accepted before it do not enter the new history).
   * @returns the marker's seq, or undefined for an unknown session (nothing is written)
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  resetSession(sessionKey: string, reason?: string): Promise<number | undefined> {
    return this.task(sessionKey, async () => {
      this.sessions.drop(sessionKey);
      if (!(await this.log.info(sessionKey))) return undefined;
      return this.log.reset(sessionKey, reason);
    });
  }

  /**
   * Closes a turn that another process accepted under `idempotencyKey` and left unfinished (it
   * died, and the caller now holds its work): appends an `error` event (-32006, `message`) for
   * it, in its session's lane, unless it ended, failed or was folded meanwhile. The bus consumer
   * calls this before running such a message again under a new key, so the log keeps no open turn.
   * @returns true when an error event was written; false for an unknown key or a closed turn
   * @throws RpcError -32004 when the session's queue is full; StoreError when the store fails
   */
  async closeAbandoned(idempotencyKey: string, message: string): Promise<boolean> {
    const stored = await this.log.findByIdempotencyKey(idempotencyKey);
    const runId = stored?.runId;
    if (stored === undefined || runId === undefined) return false;
    return this.task(stored.sessionKey, async () => {
      const later = await this.sessions.readAll(stored.sessionKey, stored.seq - 1);
      if (outcomeFromEvents(later, runId).status !== "open") return false;
      await this.sessions.append(stored.sessionKey, [{ kind: "error", runId, data: { code: ErrorCode.Aborted, message } }]);
      return true;
    });
  }

  /**
   * Erases the session after its running and queued turns.
   * @returns false for an unknown session
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  deleteSession(sessionKey: string): Promise<boolean> {
    return this.task(sessionKey, async () => {
      this.sessions.drop(sessionKey);
      return this.log.delete(sessionKey);
    });
  }

  /** Queues non-turn session work behind the session's turns. */
  private task<T>(sessionKey: string, fn: () => Promise<T>): Promise<T> {
    const cap = this.capFor(sessionKey);
    if (this.queues.pendingFor(sessionKey) >= cap) return Promise.reject(busyError(sessionKey, cap));
    const d = deferred<T>();
    this.queues.push(sessionKey, {
      kind: "task",
      run: () => fn().then(d.resolve, d.reject),
    });
    return d.promise;
  }

  /** The queue cap for a session: the override, else its agent's `queue.cap`. */
  private capFor(sessionKey: string, agent?: Agent): number {
    if (this.options.maxQueuedPerSession !== undefined) return this.options.maxQueuedPerSession;
    if (!agent) {
      try {
        agent = this.agents.get(parseSessionKey(sessionKey).agent);
      } catch {
        // A malformed key: the store reports it when the task runs.
      }
    }
    return agent?.config.queue?.cap ?? DEFAULT_QUEUE.cap;
  }

  private accepted(hooks: RunHooks | undefined, runId: string): void {
    if (!hooks?.onAccepted) return;
    try {
      hooks.onAccepted(runId);
    } catch (err) {
      this.logger.error({ err, runId }, "onAccepted hook threw");
    }
  }

  private recovered(message: SessionEventOf<"message_received">, agentId: string, runId: string, outcome: { result?: TurnResult; error?: { code: number; message: string } }): void {
    const cb = this.options.onRecovered;
    if (!cb) return;
    const d = message.data;
    const turn: RecoveredTurn = { sessionKey: message.sessionKey, agentId, runId, channel: d.channel, account: d.account, peer: d.peer, ...outcome };
    if (d.thread !== undefined) turn.thread = d.thread;
    if (d.platformMessageId !== undefined) turn.platformMessageId = d.platformMessageId;
    try {
      cb(turn);
    } catch (err) {
      this.logger.error({ err, sessionKey: message.sessionKey, runId }, "onRecovered callback threw");
    }
  }

  private track(key: string, slot: KeyedTurn): void {
    this.keyed.set(key, slot);
    const forget = () => {
      if (this.keyed.get(key) === slot) this.keyed.delete(key);
    };
    slot.promise.then(forget, forget);
  }

  /**
   * Accepts the message; when the store says its idempotency key or platform message id is
   * taken, answers with the stored turn's outcome instead.
   */
  private async runDeduped(
    agent: Agent,
    request: TurnRequest & { runId: string },
    onAccepted: (runId: string) => void,
    emit: (ev: TurnEvent) => void,
    signal?: AbortSignal,
  ): Promise<TurnResult> {
    let duplicate: DuplicateEventError;
    try {
      // The store's unique index decides: no lookup on the common path (a new key).
      return await this.accept(agent, request, onAccepted, emit, signal);
    } catch (err) {
      if (!(err instanceof DuplicateEventError)) throw err;
      duplicate = err;
    }
    const parts = messageSource(request);
    const stored =
      duplicate.key === "idempotencyKey" && request.idempotencyKey !== undefined
        ? await this.log.findByIdempotencyKey(request.idempotencyKey)
        : request.platformMessageId !== undefined
          ? await this.log.findByPlatformMessageId(parts.channel, parts.account, request.platformMessageId)
          : undefined;
    if (!stored) throw new RpcError(ErrorCode.InternalError, `the ${duplicate.key} was reported taken but its message was not found`);
    if (stored.runId !== undefined) onAccepted(stored.runId);
    return this.replayStored(stored);
  }

  /** The outcome of a stored turn, as a replay (a message folded into a later turn: that turn's, `merged`). */
  private async replayStored(message: SessionEventOf<"message_received">): Promise<TurnResult> {
    const runId = message.runId;
    if (runId !== undefined) {
      const later = await this.sessions.readAll(message.sessionKey, message.seq);
      let stored = outcomeFromEvents(later, runId);
      let answeredBy = runId;
      if (stored.status === "merged") {
        answeredBy = stored.into;
        stored = outcomeFromEvents(later, answeredBy);
      }
      const agentId = parseSessionKey(message.sessionKey).agent;
      if (stored.status === "ended") {
        const result: TurnResult = { ...stored.outcome, runId: answeredBy, sessionKey: message.sessionKey, agentId, replayed: true };
        if (answeredBy !== runId) result.merged = true;
        return result;
      }
      if (stored.status === "failed") throw new ReplayedTurnError(stored.code, stored.message, runId, message.sessionKey);
    }
    throw new RpcError(ErrorCode.SessionBusy, "the message with this idempotencyKey was accepted and its turn has not finished yet; retry later");
  }

  /** Journals the message and queues its turn, applying the agent's queue policy. */
  private accept(
    agent: Agent,
    request: TurnRequest & { runId: string },
    onAccepted: (runId: string) => void,
    emit: (ev: TurnEvent) => void,
    signal?: AbortSignal,
  ): Promise<TurnResult> {
    if (this.closing) return Promise.reject(new RpcError(ErrorCode.ShuttingDown, "the gateway is shutting down"));
    const { sessionKey, runId } = request;
    const policy = agent.config.queue ?? DEFAULT_QUEUE;
    const cap = this.capFor(sessionKey, agent);
    // Checked before journaling: a message the queue refuses must not be stored as accepted.
    if (this.queues.pendingFor(sessionKey) >= cap) {
      const victim = policy.drop === "oldest" ? this.queues.waiting(sessionKey).find((j): j is TurnJob => j.kind === "turn") : undefined;
      if (!victim) return Promise.reject(busyError(sessionKey, cap));
      this.queues.remove(sessionKey, victim);
      this.logger.warn({ sessionKey, dropped: victim.runId, cap }, "session queue full: dropped the oldest queued message");
      this.failQueued(victim, new RpcError(ErrorCode.SessionBusy, DROPPED_MESSAGE));
    }
    const parts = messageSource(request);
    const message: NewSessionEvent = {
      kind: "message_received",
      runId,
      data: {
        content: request.content,
        channel: parts.channel,
        account: parts.account,
        peer: parts.peer,
        ...(request.platformMessageId !== undefined ? { platformMessageId: request.platformMessageId } : {}),
        ...(request.idempotencyKey !== undefined ? { idempotencyKey: request.idempotencyKey } : {}),
        ...(request.thread !== undefined ? { thread: request.thread } : {}),
      },
    };
    // An idle session starts the turn right away: journal its start with the message (one write).
    const startNow = this.queues.pendingFor(sessionKey) === 0;
    const journal = this.sessions.append(sessionKey, startNow ? [message, startedEvent(runId)] : [message]);
    const job = makeTurnJob({ agent, sessionKey, runId, content: request.content, thread: request.thread, journal, startJournaled: startNow, emit, signal });
    // Registered before the job can await the journal: acceptance is reported before any outcome.
    journal.then(
      () => onAccepted(runId),
      (err: unknown) => {
        // Not stored (e.g. a duplicate key): answer now rather than after the queue ahead of it.
        if (this.queues.remove(sessionKey, job)) job.reject(err);
      },
    );
    this.queues.push(sessionKey, job);
    if (policy.mode === "interrupt") this.interrupt(sessionKey, job);
    return job.promise;
  }

  /** Queue mode `interrupt`: the newcomer aborts the running turn and supersedes queued ones. */
  private interrupt(sessionKey: string, newcomer: TurnJob): void {
    for (const j of this.queues.waiting(sessionKey)) {
      if (j.kind !== "turn" || j === newcomer) continue;
      this.queues.remove(sessionKey, j);
      this.failQueued(j, new InterruptedTurnError(j.runId));
    }
    const running = this.queues.running(sessionKey);
    const head = running?.[0];
    if (head?.kind === "turn" && !running!.includes(newcomer) && head.controller && !head.controller.signal.aborted) {
      this.logger.info({ sessionKey, interrupted: running!.map((j) => (j as TurnJob).runId), by: newcomer.runId }, "turn interrupted by a newer message");
      head.controller.abort(new InterruptedTurnError(head.runId));
    }
  }

  /** Closes a message taken out of the queue before it ran: an `error` event after its `message_received`, then rejects. */
  private failQueued(job: TurnJob, error: RpcError): void {
    this.detached++;
    job.journal
      .then(
        async () => {
          await this.sessions.append(job.sessionKey, [{ kind: "error", runId: job.runId, data: { code: error.code, message: error.message } }]).catch((appendErr: unknown) => {
            this.logger.error({ err: appendErr, sessionKey: job.sessionKey, runId: job.runId }, "cannot record a dropped message in the session log");
          });
          job.reject(error);
        },
        (journalErr: unknown) => job.reject(journalErr),
      )
      .finally(() => {
        this.detached--;
        this.checkIdle();
      });
  }


}

function busyError(sessionKey: string, cap: number): RpcError {
  return new RpcError(ErrorCode.SessionBusy, `session ${sessionKey} already has ${cap} turns queued`);
}

/** A waiting duplicate's view of the original turn: the same outcome, marked as a replay. */
function asReplay(slot: KeyedTurn): Promise<TurnResult> {
  return slot.promise.then(
    (r) => ({ ...r, replayed: true as const }),
    (err: unknown) => {
      if (err instanceof ReplayedTurnError) throw err;
      const e = toErrorObject(err);
      throw new ReplayedTurnError(e.code, e.message, slot.runId ?? "", slot.sessionKey);
    },
  );
}
