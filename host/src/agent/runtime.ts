/**
 * The agent runtime's front: {@link AgentRuntime}, the one object the gateway and the channels
 * talk to, wiring the parts that each do one job — session lanes and queue policy (`lanes.ts`),
 * turn execution (`turn.ts`, with `turn-tools.ts` and `turn-history.ts`), idempotency and replay
 * (`idempotency.ts`), crash recovery (`recovery.ts`) — over the session log (`cached-log.ts`).
 */
import type { Logger } from "pino";
import type { AgentConfig, ProviderName } from "../config/index.js";
import { silentLogger } from "../log/index.js";
import { ErrorCode, RpcError } from "../protocol/index.js";
import type { PluginRegistry } from "../plugins/index.js";
import { parseSessionKey, type PruneOptions, type PruneResult, type SessionLog } from "../store/index.js";
import { compileAgents, type Agent } from "./agents.js";
import { CachedSessionLog } from "./cached-log.js";
import { DEFAULT_HISTORY_CACHE_LIMITS } from "./history-cache.js";
import { AgentError, TurnStoppedError, type StoppedBy } from "./errors.js";
import { IdempotentTurns } from "./idempotency.js";
import type { TurnJob } from "./jobs.js";
import { outcomeFromEvents } from "./journal.js";
import { SessionLanes } from "./lanes.js";
import { recoverTurns, type RecoveredTurn, type RecoveryReport } from "./recovery.js";
import { resumeParkedTurn, type Takeover } from "./approvals/takeover.js";
import { SoulFiles } from "./soul.js";
import { TurnExecutor, type SettledTurn } from "./turn.js";
import type { BudgetGuard } from "./budget/index.js";
import { NOOP_TELEMETRY, type Telemetry } from "../telemetry/index.js";
import type { RunHooks, TurnRequest, TurnResult } from "./turn-request.js";
import { TurnToolbox, type HostTool, type McpToolSource } from "./turn-tools.js";
import type { ModelProvider, OutboundSender, TurnEvent } from "./types.js";
import { ProviderResilience, type ResiliencePolicy } from "./resilience/index.js";
import { parseApprovalCommand, type ApprovalBook } from "./approvals/book.js";
import { answerApprovalCommand, createApprovalBook } from "./approvals/front.js";
import type { LifecycleHooks } from "./hooks/lifecycle.js";
import { hookContext } from "./hooks/turn-wiring.js";
import { deleteSessionAndMedia, type MediaStore } from "./media-store.js";
import { forgetPeer, type ForgetResult, type ForgetTarget, type MemoryService } from "./memory/index.js";

// The runtime's public names, wherever they live (agent/index.ts and callers import them from here).
export { ReplayedTurnError } from "./idempotency.js";
export { DROPPED_MESSAGE } from "./lanes.js";
export { INTERRUPTED_MESSAGE, type RecoveredTurn, type RecoveryReport } from "./recovery.js";
export { COLLECT_SEPARATOR, type SettledTurn } from "./turn.js";
export type { RunHooks, TurnRequest, TurnResult } from "./turn-request.js";

/** Options of {@link AgentRuntime}. */
export interface AgentRuntimeOptions {
  agents: AgentConfig[];
  /** The adapter of a provider, using its API key number `key` (0-based, default 0; see createProviderSet). */
  providers: (name: ProviderName, key?: number) => ModelProvider;
  /**
   * Retry, key rotation and circuit breaker settings per provider (resiliencePolicies of the
   * config); missing providers get DEFAULT_RESILIENCE with one key.
   */
  resilience?: Partial<Record<ProviderName, ResiliencePolicy>>;
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  /** MCP servers' approved tools (host/src/mcp), offered and dispatched beside the plugin tools; absent = none. */
  mcp?: McpToolSource;
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
  /**
   * Estimated bytes of history events kept in process, all sessions together (least recently
   * used sessions are evicted beyond it; see `history-cache.ts`); default 16 MiB; 0 disables the
   * cache.
   */
  historyCacheBytes?: number;
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
  /** Where turns, model calls and tool calls are reported (metrics, traces); default none. */
  telemetry?: Telemetry;
  /** Metering and budgets of every model call (agent/budget/guard.ts); default none (no cost on usage events). */
  budget?: BudgetGuard;
  /** The agents' memory (notes, recall, memory tools; docs/memory.md); without it `[agents.memory]` does nothing. */
  memory?: MemoryService;
  /** Tools provided by layers above the agent (the scheduler's `remind`); see turn-tools.ts. */
  hostTools?: readonly HostTool[];
  /** Plugin lifecycle hooks (agent/hooks, `[hooks]`); default none. */
  hooks?: LifecycleHooks;
  /** Keeps inbound images for later turns (`<stateDir>/media`, media-store.ts); default: the first turn only. */
  media?: MediaStore;
}

/**
 * Runs turns on the session log: one at a time per session key (later ones wait their turn),
 * different sessions concurrently.
 *
 * A turn is journaled as events (see `host/src/store/README.md`, turn protocol):
 * `message_received` (+ `turn_started` when the session is idle) is appended — durably, for a
 * durable store — before anything of the turn leaves it (its events, tool calls, outcome; a turn
 * of one message may call its model while that write is in flight, turn.ts); a queued turn
 * appends `turn_started` when it starts;
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
  private readonly log: SessionLog;
  private readonly logger: Logger;
  private readonly sessions: CachedSessionLog;
  private readonly executor: TurnExecutor;
  private readonly lanes: SessionLanes;
  private readonly keys: IdempotentTurns;
  private closing = false;
  /** Tool calls parked for a person's yes in this process (`[agents.approvals]`; `approvals.*` RPC). */
  readonly approvals: ApprovalBook;

  /** @throws Error when an agent's outbound allowlist has a malformed entry */
  constructor(private readonly options: AgentRuntimeOptions) {
    this.agents = compileAgents(options.agents);
    this.log = options.log;
    this.logger = options.logger ?? silentLogger();
    this.sessions = new CachedSessionLog(options.log, {
      sessions: options.historyCacheSessions ?? DEFAULT_HISTORY_CACHE_LIMITS.sessions,
      bytes: options.historyCacheBytes ?? DEFAULT_HISTORY_CACHE_LIMITS.bytes,
    });
    const closing = () => this.closing;
    const telemetry = options.telemetry ?? NOOP_TELEMETRY;
    const logger = this.logger;
    this.approvals = createApprovalBook({ append: (key, evs) => this.sessions.append(key, evs), outbound: options.outbound, logger });
    this.executor = new TurnExecutor({
      providers: new ProviderResilience({
        providers: options.providers,
        ...(options.resilience !== undefined ? { policies: options.resilience } : {}),
        onSwitch: (n) => {
          telemetry.providerSwitch(n.kind, n.provider, n.reason);
          logger.warn({ provider: n.provider, reason: n.reason, switch: n.kind }, "model provider switch");
        },
      }),
      sessions: this.sessions,
      souls: new SoulFiles(this.logger),
      tools: new TurnToolbox({
        plugins: options.plugins,
        ...(options.outbound !== undefined ? { outbound: options.outbound } : {}),
        ...(options.mcp !== undefined ? { mcp: options.mcp } : {}),
        memory: options.memory,
        ...(options.hostTools !== undefined ? { hostTools: options.hostTools } : {}),
        logger: this.logger,
      }),
      logger: this.logger,
      closing,
      onTurnSettled: options.onTurnSettled,
      agents: this.agents,
      telemetry,
      takeSteerable: (sessionKey) => this.lanes.takeSteerable(sessionKey),
      budget: options.budget,
      hooks: options.hooks,
      approvals: this.approvals,
      memory: options.memory,
      media: options.media,
    });
    this.lanes = new SessionLanes({
      agents: this.agents,
      sessions: this.sessions,
      logger: this.logger,
      maxQueuedPerSession: options.maxQueuedPerSession,
      runBatch: (sessionKey, batch) => this.executor.executeBatch(sessionKey, batch),
      closing,
      media: options.media,
    });
    this.keys = new IdempotentTurns({ sessions: this.sessions, accept: (agent, request, call) => this.lanes.accept(agent, request, call) });
  }

  /**
   * Prepares a new set of agents (a config reload): compiles them now, so that a bad one throws
   * before anything changes, and returns the swap. The swap is synchronous: turns that start
   * after it (including messages already queued) use the new agents; running turns finish with
   * the agent they started with. Sessions of an agent that is gone keep their history; new
   * messages for it are refused (-32602 unknown agent) unless a binding sends them elsewhere.
   * @returns the function that makes the new agents current
   * @throws Error when an agent's outbound allowlist has a malformed entry (nothing swapped)
   */
  stageAgents(configs: readonly AgentConfig[]): () => void {
    const next = compileAgents(configs);
    return () => {
      // In place: the lanes, the executor and recovery hold this map.
      this.agents.clear();
      for (const [id, agent] of next) this.agents.set(id, agent);
    };
  }

  /** Sessions in the store. @throws StoreError when the store fails */
  sessionCount(): Promise<number> {
    return this.log.countSessions();
  }

  /** Turns running or queued (messages, counting each message folded into a turn). */
  activeTurns(): number {
    return this.lanes.size;
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
    if (this.closing) throw new AgentError("shutting_down", "the gateway is shutting down");
    // `approve <id>` / `deny <id>` from an approval's approver answers it; it is not a turn.
    // (Checked without awaiting anything when no approval waits: a turn is queued synchronously.)
    if (this.approvals.mayAnswer && parseApprovalCommand(request.content) !== null) {
      const answered = await answerApprovalCommand(this.approvals, request);
      if (answered !== undefined) return answered;
    }
    const agent = this.agents.get(request.agentId);
    if (!agent) throw new RpcError(ErrorCode.InvalidParams, `unknown agent "${request.agentId}"`);
    const lifecycle = this.options.hooks;
    if (lifecycle?.active === true) {
      // before_message: a dropped message is refused before it is journaled.
      const verdict = await lifecycle.beforeMessage(hookContext(request.agentId, request.sessionKey), request.content, signal);
      if (verdict.drop) throw new AgentError("forbidden", `message dropped by plugin ${verdict.plugin}: ${verdict.reason}`, { reason: "dropped_by_hook" });
      request = { ...request, content: verdict.content };
    }
    return this.keys.run(agent, request, { onAccepted: (id) => this.accepted(hooks, id), emit, signal });
  }

  /**
   * The session of a turn message running or queued in this process (for the gateway's check
   * that the caller may stop it); undefined when no such run is here.
   */
  sessionOfRun(runId: string): string | undefined {
    return this.lanes.findRun(runId)?.sessionKey;
  }

  /**
   * Stops a turn on request (`chat.abort`, a channel peer's `/stop`): aborts the turn's signal
   * with a {@link TurnStoppedError}, which cancels its model call (the provider request is
   * closed) and its running tool calls (their signal aborts); the turn is then closed in the
   * session log like any failed turn — its events so far, a `tool_result` for each call left
   * without one, and an `error` event (-32006, `turn stopped by …`) — and contributes nothing to
   * the model's history. Its callers get that error (`data: {reason: "stopped", by}`).
   * - `{sessionKey}`: the turn running in that session (messages queued behind it then run).
   * - `{runId}`: the turn that message runs in (with the messages folded or steered into it), or,
   *   when it is still queued, that message alone (closed with the same `error` event).
   * @returns the run ids stopped (empty when nothing matched: no turn runs, or it already ended)
   */
  abort(target: { runId: string } | { sessionKey: string }, by: StoppedBy): string[] {
    const error = new TurnStoppedError(by);
    let batch: TurnJob[];
    if ("runId" in target) {
      const found = this.lanes.findRun(target.runId);
      if (found === undefined) return [];
      if (!found.running) return this.lanes.cancelQueued(found.job, error) ? [found.job.runId] : [];
      batch = this.lanes.runningTurns(found.sessionKey);
    } else batch = this.lanes.runningTurns(target.sessionKey);
    const controller = batch[0]?.controller;
    if (controller === undefined || controller.signal.aborted) return [];
    this.logger.info({ runIds: batch.map((j) => j.runId), sessionKey: batch[0]!.sessionKey, by }, "turn stopped on request");
    controller.abort(error);
    return batch.map((j) => j.runId);
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
  recover(): Promise<RecoveryReport> {
    const { sessions, agents, lanes, keys, logger } = this;
    return recoverTurns({ sessions, agents, lanes, keys, logger, onRecovered: this.options.onRecovered, media: this.options.media });
  }

  /**
   * The outcome of the turn that holds `idempotencyKey`, for the channels' reply outbox after a
   * restart (call it after {@link recover}): waits for the turn when it runs or is queued in this
   * process (a recovered re-run), else rebuilds it from the store. No events are written.
   * @returns the result, `replayed`, and `merged` when the message was folded into a later turn
   * @throws InterruptedTurnError when a newer message of the session replaced the turn (queue
   *   mode `interrupt`: that message's turn answers); ReplayedTurnError with any other stored
   *   failure; RpcError -32004 when the turn is open and not running here (nothing will finish
   *   it), -32602 when no message has the key; StoreError when the store fails
   */
  outcome(idempotencyKey: string): Promise<TurnResult> {
    return this.keys.outcome(idempotencyKey);
  }

  /**
   * Stops taking turns, waits up to `graceMs` for running and queued turns to finish, then
   * aborts the rest (each gets an `error` event in its session). Resolves when no turn is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    if (graceMs > 0 && this.lanes.busy()) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.lanes.whenIdle(), new Promise<void>((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
    }
    this.executor.abortAll();
    await this.lanes.whenIdle();
  }

  /**
   * Resolves once no turn or session task is running or queued and no failure record of a
   * dropped or superseded message is still being written (at once when that is already so).
   * Work accepted after it resolved is not waited for.
   */
  whenIdle(): Promise<void> {
    return this.lanes.whenIdle();
  }

  /**
   * Appends a `reset` marker after the session's running and queued turns (a reset never cuts a
   * turn in half; turns accepted before it do not enter the new history).
   * @returns the marker's seq, or undefined for an unknown session (nothing is written)
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  resetSession(sessionKey: string, reason?: string): Promise<number | undefined> {
    return this.lanes.task(sessionKey, async () => {
      this.sessions.drop(sessionKey);
      if (!(await this.log.info(sessionKey))) return undefined;
      const seq = await this.log.reset(sessionKey, reason);
      this.sessionEnded(sessionKey, "reset");
      return seq;
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
    return this.lanes.task(stored.sessionKey, async () => {
      const later = await this.sessions.readAll(stored.sessionKey, stored.seq - 1);
      if (outcomeFromEvents(later, runId).status !== "open") return false;
      await this.sessions.append(stored.sessionKey, [{ kind: "error", runId, data: { code: ErrorCode.Aborted, message } }]);
      return true;
    });
  }

  /**
   * Takes over a turn another process accepted under `idempotencyKey` and left parked on an
   * approval (it died; the caller now holds its work): the run resumes here where it parked
   * (approvals/takeover.ts). The bus consumer calls this before {@link closeAbandoned}.
   * @returns `{result}` of the resumed run, `{heldElsewhere}` when a live gateway still holds its
   *   approval, or undefined when the key's turn is not parked
   * @throws StoreError when the store fails
   */
  resumeParked(idempotencyKey: string): Promise<Takeover | undefined> {
    const { sessions, agents, lanes, keys } = this;
    return resumeParkedTurn({ sessions, agents, lanes, keys, media: this.options.media, book: this.approvals }, idempotencyKey);
  }

  /**
   * Erases the session after its running and queued turns.
   * @returns false for an unknown session
   * @throws RpcError -32004 when the session's queue is full; StoreError
   */
  /**
   * Retention: {@link SessionLog.prune} through the runtime, so that a removed session's cached
   * history goes with it (a later message starts from an empty history, not the cached one).
   * @throws StoreError as `SessionLog.prune`
   */
  pruneSessions(options: PruneOptions): Promise<PruneResult> {
    return this.log.prune({
      ...options,
      onRemoved: (sessionKey) => {
        this.sessions.drop(sessionKey);
        options.onRemoved?.(sessionKey);
      },
    });
  }

  deleteSession(sessionKey: string): Promise<boolean> {
    return this.lanes.task(sessionKey, async () => {
      this.sessions.drop(sessionKey);
      // Its stored images go with it (media-store.ts): named by its events, read before they are gone.
      const deleted = await deleteSessionAndMedia(this.log, this.options.media, sessionKey);
      if (deleted) this.sessionEnded(sessionKey, "deleted");
      return deleted;
    });
  }

  /** `session_end` hooks (fire and forget: the session is already reset or gone). */
  private sessionEnded(sessionKey: string, reason: string): void {
    const lifecycle = this.options.hooks;
    if (lifecycle?.active !== true) return;
    let agentId: string;
    try {
      agentId = parseSessionKey(sessionKey).agent;
    } catch {
      return;
    }
    void lifecycle.notify("session_end", hookContext(agentId, sessionKey), { reason }).catch(() => {});
  }

  /**
   * Erases everything stored about a peer: its sessions (each after its queued turns) and the
   * notes written with or by it (agent/memory/forget.ts).
   * @throws StoreError when the store fails; Error when the notes file cannot be written
   */
  forgetPeer(target: ForgetTarget): Promise<ForgetResult> {
    return forgetPeer({ log: this.log, deleteSession: (key) => this.deleteSession(key), memory: this.options.memory }, target);
  }

  /** The agents' memory, when configured (RPC `memory.*`). */
  get memory(): MemoryService | undefined {
    return this.options.memory;
  }

  private accepted(hooks: RunHooks | undefined, runId: string): void {
    if (!hooks?.onAccepted) return;
    try {
      hooks.onAccepted(runId);
    } catch (err) {
      this.logger.error({ err, runId }, "onAccepted hook threw");
    }
  }
}
