/**
 * What a session lane holds: a turn job per accepted message (with the promise its caller
 * awaits) or a task job (reset, delete, closing an abandoned turn) that runs alone.
 */
import type { Agent } from "./agents.js";
import { deferred } from "./deferred.js";
import type { QueueItem } from "./queue.js";
import type { TurnResult } from "./turn-request.js";
import type { ImageInput, MessageSender, TurnEvent } from "./types.js";

/** One accepted message waiting for, or running in, its session's queue. */
export interface TurnJob extends QueueItem {
  readonly kind: "turn";
  readonly collect: boolean;
  agent: Agent;
  sessionKey: string;
  runId: string;
  content: string;
  thread?: string;
  /** Who wrote it in a group (host-written); absent = the peer. */
  sender?: MessageSender;
  /** Images given to the model with it (this turn only). */
  images?: ImageInput[];
  /** The `message_received` append (with `turn_started` when `startJournaled`): resolves once durable. */
  journal: Promise<unknown>;
  /**
   * Resolves (never rejects) with true once the store checked the message's append and is
   * writing it (AppendOptions.onChecked), or with false once `journal` resolved without that (a
   * store that does not report checks); stays pending when the append is refused. On true the
   * turn may start its model call; anything leaving the turn waits for `journal`.
   */
  checked: Promise<boolean>;
  startJournaled: boolean;
  emit: (ev: TurnEvent) => void;
  signal?: AbortSignal;
  promise: Promise<TurnResult>;
  resolve: (r: TurnResult) => void;
  reject: (err: unknown) => void;
  /** The running batch's controller (set when the job starts): aborting it ends the batch. */
  controller?: AbortController;
  /** A run parked for an approval before a restart, resumed from its logged events (agent/approvals/resume.ts). */
  resume?: true;
}

/** Session work that is not a turn (reset, delete): runs alone, in order with the turns. */
export interface TaskJob extends QueueItem {
  readonly kind: "task";
  run(): Promise<void>;
}

/** What a session queue holds. */
export type Job = TurnJob | TaskJob;

/** The parts of a {@link TurnJob} its creator decides (see {@link makeTurnJob}). */
export interface TurnJobSpec {
  agent: Agent;
  sessionKey: string;
  runId: string;
  /** The message's content (the user's text). */
  content: string;
  /** The platform thread a reply goes to. */
  thread?: string | undefined;
  sender?: MessageSender | undefined;
  images?: ImageInput[] | undefined;
  /** The `message_received` append; a job recovered from the log passes a resolved promise. */
  journal: Promise<unknown>;
  /** See {@link TurnJob.checked}; absent = when `journal` resolves. */
  checked?: Promise<boolean>;
  /** Whether `turn_started` was appended with the message (the session was idle). */
  startJournaled: boolean;
  /** Receives the turn's events (the last message of a folded batch gets them). */
  emit: (ev: TurnEvent) => void;
  /** The caller's signal: the turn stops when every caller of its batch went away. */
  signal?: AbortSignal | undefined;
}

/** A pending turn job; `collect` follows the agent's queue mode. */
export function makeTurnJob(spec: TurnJobSpec): TurnJob {
  const { agent, sessionKey, runId, content, thread, sender, images, journal, startJournaled, emit, signal } = spec;
  const checked =
    spec.checked ??
    journal.then(
      () => false,
      () => new Promise<boolean>(() => {}),
    );
  const d = deferred<TurnResult>();
  const job: TurnJob = {
    kind: "turn",
    collect: agent.config.queue?.mode === "collect",
    agent,
    sessionKey,
    runId,
    content,
    journal,
    checked,
    startJournaled,
    emit,
    promise: d.promise,
    resolve: d.resolve,
    reject: d.reject,
  };
  if (thread !== undefined) job.thread = thread;
  if (sender !== undefined) job.sender = sender;
  if (images !== undefined && images.length > 0) job.images = images;
  if (signal !== undefined) job.signal = signal;
  return job;
}
