/**
 * Idempotency and replay: a message with an `idempotencyKey` (or a platform message id) runs at
 * most one turn. Duplicates that arrive while the turn is in this process wait for it; a key the
 * store's unique index reports taken is answered with the stored turn's outcome, rebuilt from its
 * events (see `journal.ts`, {@link outcomeFromEvents}).
 */
import { randomUUID } from "node:crypto";
import { ErrorCode, RpcError, toErrorObject } from "../protocol/index.js";
import { DuplicateEventError, parseSessionKey, type SessionEventOf } from "../store/index.js";
import type { Agent } from "./agents.js";
import type { CachedSessionLog } from "./cached-log.js";
import { deferred } from "./deferred.js";
import { AgentError, failureReason, InterruptedTurnError, ReplayedTurnError, SUPERSEDED_MESSAGE } from "./errors.js";
import { outcomeFromEvents } from "./journal.js";
import type { TurnCall } from "./lanes.js";
import { messageSource, type IdentifiedTurnRequest, type TurnRequest, type TurnResult } from "./turn-request.js";

// Defined with the rest of the error vocabulary; re-exported for the modules that imported it here.
export { ReplayedTurnError };

/** A turn with an idempotency key in this process: its run id (the original's, once known), acceptance and outcome. */
interface KeyedTurn {
  runId?: string;
  /** The session of the turn that holds the key. */
  sessionKey: string;
  /** Resolves with the run id once the message is journaled (or found stored); undefined when it was refused. */
  accepted: Promise<string | undefined>;
  promise: Promise<TurnResult>;
}

/** Options of {@link IdempotentTurns}. */
export interface IdempotentTurnsOptions {
  sessions: CachedSessionLog;
  /** Journals and queues a message (the session lanes' `accept`); rejects with DuplicateEventError for a taken key. */
  accept: (agent: Agent, request: IdentifiedTurnRequest, call: TurnCall) => Promise<TurnResult>;
}

/** Runs each keyed message at most once, and answers repeats with the first turn's outcome. */
export class IdempotentTurns {
  /** Turns with an idempotency key that are being decided or run in this process. */
  private readonly keyed = new Map<string, KeyedTurn>();

  constructor(private readonly options: IdempotentTurnsOptions) {}

  /**
   * Runs the request's turn unless its key (or platform message id) already ran or runs: then
   * answers with that turn's outcome, `replayed: true` (see {@link AgentRuntime.run}).
   * `call.signal` is ignored for a request with `idempotencyKey`: the turn belongs to the key.
   */
  run(agent: Agent, request: TurnRequest, call: TurnCall): Promise<TurnResult> {
    const key = request.idempotencyKey;
    if (key === undefined) {
      const runId = request.runId ?? randomUUID();
      return this.runDeduped(agent, { ...request, runId }, call);
    }
    // A keyed turn belongs to the key, not to the connection that sent it (see `signal` above).
    const { onAccepted, emit } = call;
    const running = this.keyed.get(key);
    if (running) {
      void running.accepted.then((id) => id !== undefined && onAccepted(id));
      return asReplay(running);
    }
    const runId = request.runId ?? randomUUID();
    const accepted = deferred<string | undefined>();
    const slot: KeyedTurn = { runId, sessionKey: request.sessionKey, accepted: accepted.promise, promise: undefined as unknown as Promise<TurnResult> };
    const accept = (id: string) => {
      slot.runId = id;
      accepted.resolve(id);
      onAccepted(id);
    };
    slot.promise = this.runDeduped(agent, { ...request, runId }, { onAccepted: accept, emit, signal: undefined });
    slot.promise.then(
      () => accepted.resolve(undefined),
      () => accepted.resolve(undefined),
    );
    this.track(key, slot);
    return slot.promise;
  }

  /**
   * Holds `key` for a turn queued without a caller (crash recovery re-runs a journaled message):
   * a client repeating the key meanwhile waits for that turn's outcome.
   */
  adopt(key: string, turn: { runId: string; sessionKey: string; promise: Promise<TurnResult> }): void {
    this.track(key, { ...turn, accepted: Promise.resolve(turn.runId) });
  }

  /**
   * The outcome of the turn that holds `idempotencyKey` (see {@link AgentRuntime.outcome}): waits
   * for it when it runs or is queued in this process, else rebuilds it from the store.
   * @throws InterruptedTurnError when a newer message of the session replaced the turn;
   *   ReplayedTurnError with any other stored failure; RpcError -32004 when the turn is open and
   *   not running here, -32602 when no message has the key; StoreError when the store fails
   */
  async outcome(idempotencyKey: string): Promise<TurnResult> {
    const running = this.keyed.get(idempotencyKey);
    const stored = running ? undefined : await this.options.sessions.log.findByIdempotencyKey(idempotencyKey);
    if (!running && !stored) throw new RpcError(ErrorCode.InvalidParams, `no message with idempotency key "${idempotencyKey}"`);
    try {
      return await (running ? asReplay(running) : this.replayStored(stored!));
    } catch (err) {
      // A stored `error` event keeps code and text only: a superseded turn is known by its fixed text.
      if (err instanceof ReplayedTurnError && (err.reason === "interrupted" || (err.code === ErrorCode.Aborted && err.message === SUPERSEDED_MESSAGE)))
        throw new InterruptedTurnError(err.runId);
      throw err;
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
  private async runDeduped(agent: Agent, request: IdentifiedTurnRequest, call: TurnCall): Promise<TurnResult> {
    let duplicate: DuplicateEventError;
    try {
      // The store's unique index decides: no lookup on the common path (a new key).
      return await this.options.accept(agent, request, call);
    } catch (err) {
      if (!(err instanceof DuplicateEventError)) throw err;
      duplicate = err;
    }
    const { log } = this.options.sessions;
    const parts = messageSource(request);
    const stored =
      duplicate.key === "idempotencyKey" && request.idempotencyKey !== undefined
        ? await log.findByIdempotencyKey(request.idempotencyKey)
        : request.platformMessageId !== undefined
          ? await log.findByPlatformMessageId(parts.channel, parts.account, request.platformMessageId)
          : undefined;
    if (!stored) throw new AgentError("orphan_claim", `the ${duplicate.key} was reported taken but its message was not found`);
    if (stored.runId !== undefined) call.onAccepted(stored.runId);
    return this.replayStored(stored);
  }

  /** The outcome of a stored turn, as a replay (a message folded into a later turn: that turn's, `merged`). */
  private async replayStored(message: SessionEventOf<"message_received">): Promise<TurnResult> {
    const runId = message.runId;
    if (runId !== undefined) {
      const later = await this.options.sessions.readAll(message.sessionKey, message.seq);
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
    throw new AgentError("session_busy", "the message with this idempotencyKey was accepted and its turn has not finished yet; retry later");
  }
}

/** A waiting duplicate's view of the original turn: the same outcome, marked as a replay. */
function asReplay(slot: KeyedTurn): Promise<TurnResult> {
  return slot.promise.then(
    (r) => ({ ...r, replayed: true as const }),
    (err: unknown) => {
      if (err instanceof ReplayedTurnError) throw err;
      const e = toErrorObject(err);
      throw new ReplayedTurnError(e.code, e.message, slot.runId ?? "", slot.sessionKey, failureReason(err));
    },
  );
}
