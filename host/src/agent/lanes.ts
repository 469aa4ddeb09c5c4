/**
 * Session lanes and queue policy: accepts a message into its session's lane (journaling its
 * `message_received` first), applies the agent's `queue` policy (cap, `drop`, `interrupt`; the
 * `collect` folding is in {@link SessionQueues}), queues session tasks (reset, delete) in order
 * with the turns, and tells when every lane is idle.
 */
import type { Logger } from "pino";
import { DEFAULT_QUEUE } from "../config/index.js";
import { ErrorCode, RpcError } from "../protocol/index.js";
import { parseSessionKey, type NewSessionEvent } from "../store/index.js";
import type { Agent } from "./agents.js";
import type { CachedSessionLog } from "./cached-log.js";
import { deferred } from "./deferred.js";
import { AgentError, InterruptedTurnError } from "./errors.js";
import { makeTurnJob, type Job, type TaskJob, type TurnJob } from "./jobs.js";
import { startedEvent } from "./journal.js";
import type { MediaStore } from "./media-store.js";
import { SessionQueues } from "./queue.js";
import { messageSource, type IdentifiedTurnRequest, type TurnResult } from "./turn-request.js";
import type { ImageInput, MessageSender, TurnEvent } from "./types.js";

/** Message of the `error` event that closes a queued message dropped for a newer one (`drop = "oldest"`). */
export const DROPPED_MESSAGE = "dropped: the session queue was full";

/** How one caller takes part in its turn: acceptance, the turn's events, its abort signal. */
export interface TurnCall {
  /** Called with the run id once the message is journaled (before any outcome). */
  onAccepted: (runId: string) => void;
  /** Receives the turn's events in order. */
  emit: (ev: TurnEvent) => void;
  /** The caller went away: the turn stops when every caller of its batch did. */
  signal?: AbortSignal | undefined;
}

/** A message already in the session log, queued again by crash recovery (nothing of it ran). */
export interface RequeuedMessage {
  agent: Agent;
  sessionKey: string;
  runId: string;
  content: string;
  thread?: string | undefined;
  /** A run a restart left parked for an approval: it resumes (its `turn_started` is already written). */
  resume?: true;
  /** The stored sender (recovery re-runs a group message with it). */
  sender?: MessageSender | undefined;
  /** The message's stored images (recovery reads them back from the media directory). */
  images?: ImageInput[] | undefined;
}

/** Options of {@link SessionLanes}. */
export interface SessionLanesOptions {
  /** The configured agents by id (a task's cap is its session's agent's). */
  agents: ReadonlyMap<string, Agent>;
  sessions: CachedSessionLog;
  logger: Logger;
  /** Overrides every agent's `queue.cap` (tests). */
  maxQueuedPerSession?: number | undefined;
  /** Runs one batch of turn jobs; must settle every job and never reject (the turn executor). */
  runBatch: (sessionKey: string, batch: TurnJob[]) => Promise<void>;
  /** Whether the runtime is shutting down (new messages are refused with -32005). */
  closing: () => boolean;
  /** Keeps inbound images for later turns (`message_received.media`); absent = the first turn only. */
  media?: MediaStore | undefined;
}

/** The session lanes of one runtime: one batch at a time per session, sessions concurrently. */
export class SessionLanes {
  private readonly queues: SessionQueues<Job>;
  /** Failure records of dropped or superseded messages still being written. */
  private detached = 0;
  /** Callers of {@link whenIdle} waiting for the last turn, task or failure record. */
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: SessionLanesOptions) {
    const { runBatch } = options;
    this.queues = new SessionQueues<Job>(
      (key, batch) => (batch[0]!.kind === "task" ? (batch[0] as TaskJob).run() : runBatch(key, batch as TurnJob[])),
      () => this.checkIdle(),
    );
  }

  /** Turns and tasks running or queued (messages, counting each message folded into a turn). */
  get size(): number {
    return this.queues.size;
  }

  /**
   * Journals the message and queues its turn, applying the agent's queue policy.
   * @returns the turn's result (rejects as {@link AgentRuntime.run} documents; DuplicateEventError
   *   when the store says the message's idempotency key or platform message id is taken)
   */
  accept(agent: Agent, request: IdentifiedTurnRequest, call: TurnCall): Promise<TurnResult> {
    if (this.options.closing()) return Promise.reject(new AgentError("shutting_down", "the gateway is shutting down"));
    const { sessionKey, runId } = request;
    const { onAccepted, emit, signal } = call;
    const policy = agent.config.queue ?? DEFAULT_QUEUE;
    const cap = this.capFor(sessionKey, agent);
    // Checked before journaling: a message the queue refuses must not be stored as accepted.
    if (this.queues.pendingFor(sessionKey) >= cap) {
      const victim = policy.drop === "oldest" ? this.queues.waiting(sessionKey).find((j): j is TurnJob => j.kind === "turn") : undefined;
      if (!victim) return Promise.reject(busyError(sessionKey, cap));
      this.queues.remove(sessionKey, victim);
      this.options.logger.warn({ sessionKey, dropped: victim.runId, cap }, "session queue full: dropped the oldest queued message");
      this.failQueued(victim, new AgentError("session_busy", DROPPED_MESSAGE));
    }
    const parts = messageSource(request);
    // Images: referenced by hash in the event, written beside the append (media-store.ts).
    const stored = this.options.media !== undefined ? (request.images ?? []).map((img) => this.options.media!.ref(img)).filter((r) => r !== undefined) : [];
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
        ...(request.sender !== undefined
          ? { sender: request.sender.id, ...(request.sender.name !== undefined ? { senderName: request.sender.name } : {}) }
          : {}),
        ...(request.awaitsReply === true && request.idempotencyKey !== undefined ? { awaitsReply: true as const } : {}),
        ...(stored.length > 0 ? { media: stored.map((s) => s.ref) } : {}),
      },
    };
    // An idle session starts the turn right away: journal its start with the message (one write).
    const startNow = this.queues.pendingFor(sessionKey) === 0;
    // `checked` lets the turn start its model call while the write is in flight (turn.ts).
    let onChecked!: () => void;
    const checked = new Promise<boolean>((resolve) => (onChecked = () => resolve(true)));
    const appended = this.options.sessions.append(sessionKey, startNow ? [message, startedEvent(runId)] : [message], { onChecked });
    const journal =
      stored.length > 0 ? Promise.all([appended, ...stored.map((s) => this.options.media!.put(s.ref, s.bytes))]).then(([seqs]) => seqs) : appended;
    const job = makeTurnJob({
      agent,
      sessionKey,
      runId,
      content: request.content,
      thread: request.thread,
      sender: request.sender,
      images: request.images,
      journal,
      // Resolved by the store's check, else when durable (a store that does not report checks).
      checked: Promise.race([
        checked,
        journal.then(
          () => false,
          () => checked,
        ),
      ]),
      startJournaled: startNow,
      emit,
      signal,
    });
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

  /**
   * Queue mode `steer`: takes the session's waiting messages (from the head, up to the first
   * task or message of an agent not in `steer` mode) into its running batch.
   * @returns the messages taken, oldest first
   */
  takeSteerable(sessionKey: string): TurnJob[] {
    const steer = (j: Job): j is TurnJob => j.kind === "turn" && (this.options.agents.get(j.agent.config.id) ?? j.agent).config.queue?.mode === "steer";
    return this.queues.absorb(sessionKey, steer) as TurnJob[];
  }

  /** The turn messages of `sessionKey`'s running batch (empty when none runs). */
  runningTurns(sessionKey: string): TurnJob[] {
    return (this.queues.running(sessionKey) ?? []).filter((j): j is TurnJob => j.kind === "turn");
  }

  /** Where the message of run `runId` is: its session, its job, and whether its turn runs (else it is queued). */
  findRun(runId: string): { sessionKey: string; job: TurnJob; running: boolean } | undefined {
    const found = this.queues.find((j) => j.kind === "turn" && j.runId === runId);
    return found && { sessionKey: found.key, job: found.job as TurnJob, running: found.running };
  }

  /**
   * Takes a queued (not running) message out of its session's queue and closes it with `error`
   * (an `error` event after its `message_received`; its promise rejects).
   * @returns false when it is not queued (it runs, or it is gone)
   */
  cancelQueued(job: TurnJob, error: RpcError): boolean {
    if (!this.queues.remove(job.sessionKey, job)) return false;
    this.failQueued(job, error);
    return true;
  }

  /** Queues a journaled message's turn again (crash recovery; no cap, no events streamed). */
  requeue(message: RequeuedMessage): Promise<TurnResult> {
    const job = makeTurnJob({ ...message, journal: Promise.resolve(), startJournaled: message.resume === true, emit: () => {} });
    if (message.resume) job.resume = true;
    this.queues.push(message.sessionKey, job);
    return job.promise;
  }

  /**
   * Queues non-turn session work behind the session's turns.
   * @throws RpcError -32004 (as a rejection) when the session's queue is full
   */
  task<T>(sessionKey: string, fn: () => Promise<T>): Promise<T> {
    const cap = this.capFor(sessionKey);
    if (this.queues.pendingFor(sessionKey) >= cap) return Promise.reject(busyError(sessionKey, cap));
    const d = deferred<T>();
    this.queues.push(sessionKey, {
      kind: "task",
      run: () => fn().then(d.resolve, d.reject),
    });
    return d.promise;
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

  /** Whether any turn, task or failure record is pending. */
  busy(): boolean {
    return this.queues.size > 0 || this.detached > 0;
  }

  /** Wakes {@link whenIdle} waiters when nothing is left (called when the queues empty and when a failure record is written). */
  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || this.busy()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** The queue cap for a session: the override, else its agent's `queue.cap`. */
  private capFor(sessionKey: string, agent?: Agent): number {
    if (this.options.maxQueuedPerSession !== undefined) return this.options.maxQueuedPerSession;
    if (!agent) {
      try {
        agent = this.options.agents.get(parseSessionKey(sessionKey).agent);
      } catch {
        // A malformed key: the store reports it when the task runs.
      }
    }
    return agent?.config.queue?.cap ?? DEFAULT_QUEUE.cap;
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
      this.options.logger.info(
        { sessionKey, interrupted: running!.map((j) => (j as TurnJob).runId), by: newcomer.runId },
        "turn interrupted by a newer message",
      );
      head.controller.abort(new InterruptedTurnError(head.runId));
    }
  }

  /** Closes a message taken out of the queue before it ran: an `error` event after its `message_received`, then rejects. */
  private failQueued(job: TurnJob, error: RpcError): void {
    this.detached++;
    job.journal
      .then(
        async () => {
          await this.options.sessions
            .append(job.sessionKey, [{ kind: "error", runId: job.runId, data: { code: error.code, message: error.message } }])
            .catch((appendErr: unknown) => {
              this.options.logger.error({ err: appendErr, sessionKey: job.sessionKey, runId: job.runId }, "cannot record a dropped message in the session log");
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
  return new AgentError("session_busy", `session ${sessionKey} already has ${cap} turns queued`);
}
