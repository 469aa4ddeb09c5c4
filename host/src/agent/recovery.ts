/**
 * Crash recovery, once at start-up before taking requests: the turns the store says were accepted
 * but never finished are queued again when nothing of them ran, and closed as failed when they had
 * started (they may have called tools with side effects), each reported to a callback so a channel
 * can still answer the message.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ErrorCode, toErrorObject } from "../protocol/index.js";
import { parseSessionKey, type NewSessionEvent, type SessionEventOf } from "../store/index.js";
import type { Agent } from "./agents.js";
import type { CachedSessionLog } from "./cached-log.js";
import type { IdempotentTurns } from "./idempotency.js";
import type { SessionLanes } from "./lanes.js";
import type { TurnResult } from "./turn-request.js";
import { parkedApproval } from "./approvals/resume.js";
import { storedSender } from "./user-message.js";
import type { MediaStore } from "./media-store.js";

/** Message of the `error` event that closes a turn a crash interrupted. */
export const INTERRUPTED_MESSAGE =
  "turn interrupted: the gateway stopped while this turn was running; it was not re-run because it may already have called tools";

/**
 * A turn {@link recoverTurns} handled, with where its message came from (from the
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
  /** The message's idempotency key, when it had one. */
  idempotencyKey?: string;
  /** The message's reply is owed through the store's reply outbox (the channels service sends it from there, not from this report). */
  awaitsReply?: true;
  result?: TurnResult;
  error?: { code: number; message: string };
}

/** What {@link recoverTurns} did with the turns a previous process left unfinished. */
export interface RecoveryReport {
  /** Accepted turns that had not started: queued again, in their original order. */
  rerun: number;
  /** Turns that had started: closed with an `error` event (-32006), not re-run. */
  failed: number;
}

/** What {@link recoverTurns} works with. */
export interface RecoveryOptions {
  sessions: CachedSessionLog;
  agents: ReadonlyMap<string, Agent>;
  /** Where a turn that had not started is queued again. */
  lanes: Pick<SessionLanes, "requeue">;
  /** Holds a re-run message's idempotency key, so a client repeating it waits for the outcome. */
  keys: Pick<IdempotentTurns, "adopt">;
  logger: Logger;
  /** Called for each turn re-run (when it settles) or closed as failed (at once); a throw is logged. */
  onRecovered?: ((turn: RecoveredTurn) => void) | undefined;
  /** Stored inbound images: a re-run message gets its own images back (media-store.ts). */
  media?: MediaStore | undefined;
}

/**
 * Finds the turns the store says were accepted but never finished. A turn that had not started
 * (no `turn_started`) is queued again in its session's queue, in order — its outcome goes to the
 * log, and a client repeating its idempotency key gets it. A turn that had started is closed with
 * an `error` event (-32006, {@link INTERRUPTED_MESSAGE}) and not re-run. A turn whose agent is no
 * longer configured is closed with -32602. Each handled turn is reported to `onRecovered`.
 * @throws StoreError when the store cannot be read
 */
export async function recoverTurns(options: RecoveryOptions): Promise<RecoveryReport> {
  const { sessions, agents, lanes, keys, logger } = options;
  const pending = await sessions.log.pendingTurns();
  const bySession = new Map<string, SessionEventOf<"message_received">[]>();
  for (const m of pending) {
    const list = bySession.get(m.sessionKey) ?? [];
    list.push(m);
    bySession.set(m.sessionKey, list);
  }
  const report: RecoveryReport = { rerun: 0, failed: 0 };
  for (const [sessionKey, messages] of bySession) {
    messages.sort((a, b) => a.seq - b.seq);
    const later = await sessions.readAll(sessionKey, messages[0]!.seq - 1);
    const started = new Set(later.filter((e) => e.kind === "turn_started").map((e) => e.runId ?? (e as SessionEventOf<"turn_started">).data.runId));
    const agentId = parseSessionKey(sessionKey).agent;
    const agent = agents.get(agentId);
    const failures: { message: SessionEventOf<"message_received">; runId: string; code: number; text: string }[] = [];
    const rerun: { message: SessionEventOf<"message_received">; runId: string; resume?: true }[] = [];
    for (const m of messages) {
      const runId = m.runId ?? randomUUID();
      if (!agent) failures.push({ message: m, runId, code: ErrorCode.InvalidParams, text: `agent "${agentId}" is no longer configured` });
      // Parked for a person's yes when the gateway stopped: it resumes where it parked (agent/approvals/resume.ts).
      else if (m.runId !== undefined && started.has(m.runId) && parkedApproval(later, m.runId) !== undefined) rerun.push({ message: m, runId, resume: true });
      else if (m.runId !== undefined && started.has(m.runId)) failures.push({ message: m, runId, code: ErrorCode.Aborted, text: INTERRUPTED_MESSAGE });
      else rerun.push({ message: m, runId });
    }
    if (failures.length > 0) {
      await sessions.append(
        sessionKey,
        failures.map((f): NewSessionEvent => ({ kind: "error", runId: f.runId, data: { code: f.code, message: f.text } })),
      );
      for (const f of failures) recovered(options, f.message, agentId, f.runId, { error: { code: f.code, message: f.text } });
    }
    report.failed += failures.length;
    for (const { message, runId, resume } of rerun) {
      const sender = storedSender(message.data);
      const refs = message.data.media ?? [];
      const images = options.media !== undefined && refs.length > 0 ? [...(await options.media.load(refs)).values()] : [];
      const promise = lanes.requeue({
        agent: agent!,
        sessionKey,
        runId,
        content: message.data.content,
        thread: message.data.thread,
        ...(resume ? { resume } : {}),
        ...(sender ? { sender } : {}),
        ...(images.length > 0 ? { images } : {}),
      });
      promise.then(
        (r) => {
          logger.info({ sessionKey, runId, stopReason: r.stopReason, merged: r.merged }, "recovered turn finished");
          recovered(options, message, agentId, runId, { result: r });
        },
        (err: unknown) => {
          const error = toErrorObject(err);
          logger.warn({ sessionKey, runId, error: error.message }, "recovered turn failed");
          recovered(options, message, agentId, runId, { error: { code: error.code, message: error.message } });
        },
      );
      const key = message.data.idempotencyKey;
      if (key !== undefined) keys.adopt(key, { runId, sessionKey, promise });
      report.rerun++;
    }
  }
  if (report.rerun + report.failed > 0) logger.warn(report, "recovered turns left unfinished by the previous gateway process");
  return report;
}

/** Reports one handled turn to `onRecovered`, with where its message came from. */
function recovered(
  options: RecoveryOptions,
  message: SessionEventOf<"message_received">,
  agentId: string,
  runId: string,
  outcome: { result?: TurnResult; error?: { code: number; message: string } },
): void {
  const cb = options.onRecovered;
  if (!cb) return;
  const d = message.data;
  const turn: RecoveredTurn = { sessionKey: message.sessionKey, agentId, runId, channel: d.channel, account: d.account, peer: d.peer, ...outcome };
  if (d.thread !== undefined) turn.thread = d.thread;
  if (d.platformMessageId !== undefined) turn.platformMessageId = d.platformMessageId;
  if (d.idempotencyKey !== undefined) turn.idempotencyKey = d.idempotencyKey;
  if (d.awaitsReply === true) turn.awaitsReply = true;
  try {
    cb(turn);
  } catch (err) {
    options.logger.error({ err, sessionKey: message.sessionKey, runId }, "onRecovered callback threw");
  }
}
