/**
 * Taking over a turn parked on an approval by a gateway that died (issue 19; docs/bus.md,
 * "A parked turn whose gateway dies"). With `[bus]` and a shared store, the channel message of
 * such a turn was never acknowledged; once the holder's partition lease lapses, the bus
 * redelivers it to the gateway that took the partition over, whose runtime finds the message's
 * turn open and not running here. Instead of closing it and running the message again (which
 * would call the model again and park a new approval), the run resumes where it parked
 * (approvals/resume.ts): the same approval id waits here now, and an answer given at any gateway
 * reaches it through the relay. The partition lease is what makes the takeover exclusive (one
 * holder consumes a partition at a time), and the book forgets an approval before waking it, so
 * the call runs once.
 */
import { parseSessionKey } from "../../store/index.js";
import type { Agent } from "../agents.js";
import type { CachedSessionLog } from "../cached-log.js";
import type { IdempotentTurns } from "../idempotency.js";
import { outcomeFromEvents } from "../journal.js";
import type { SessionLanes } from "../lanes.js";
import type { MediaStore } from "../media-store.js";
import type { TurnResult } from "../turn-request.js";
import type { ApprovalBook } from "./book.js";
import { storedSender } from "../user-message.js";
import { parkedApproval } from "./resume.js";

/** What {@link resumeParkedTurn} needs of the runtime. */
export interface TakeoverDeps {
  sessions: CachedSessionLog;
  agents: ReadonlyMap<string, Agent>;
  lanes: Pick<SessionLanes, "requeue">;
  keys: Pick<IdempotentTurns, "adopt">;
  media?: MediaStore | undefined;
  /** This process's approvals; with a bus, it also lists those the other gateways hold (the relay). */
  book: Pick<ApprovalBook, "listEverywhere">;
}

/** What {@link resumeParkedTurn} did: resumed the run (`result`), or found it still held by a live gateway. */
export type Takeover = { result: Promise<TurnResult> } | { heldElsewhere: string };

/**
 * When the message stored under `idempotencyKey` has an open run that parked on an approval
 * (an `approval_pending` of the run, and no `turn_ended`/`error` for it), queues that run to
 * resume in its session's lane and holds the key for it (a repeat of the key waits for it).
 * Call only for a key whose turn is not running in this process (the caller holds its work).
 * Before resuming, asks the other gateways (the relay's listing) whether one still holds the
 * approval — alive, e.g. cut off from NATS for longer than its lease — and then leaves it there.
 * @returns the resumed run's outcome (as `{result}`, so it is not awaited here); `{heldElsewhere:
 *   approval id}` when a live gateway still lists the approval; undefined when there is no such
 *   parked run (unknown key, finished turn, not parked, agent gone)
 * @throws StoreError when the store cannot be read
 */
export async function resumeParkedTurn(deps: TakeoverDeps, idempotencyKey: string): Promise<Takeover | undefined> {
  const stored = await deps.sessions.log.findByIdempotencyKey(idempotencyKey);
  const runId = stored?.runId;
  if (stored === undefined || runId === undefined) return undefined;
  const agent = deps.agents.get(parseSessionKey(stored.sessionKey).agent);
  if (agent === undefined) return undefined;
  const later = await deps.sessions.readAll(stored.sessionKey, stored.seq - 1);
  const parked = parkedApproval(later, runId);
  if (outcomeFromEvents(later, runId).status !== "open" || parked === undefined) return undefined;
  if ((await deps.book.listEverywhere()).some((a) => a.id === parked.data.id)) return { heldElsewhere: parked.data.id };
  const sender = storedSender(stored.data);
  const refs = stored.data.media ?? [];
  const images = deps.media !== undefined && refs.length > 0 ? [...(await deps.media.load(refs)).values()] : [];
  const result = deps.lanes.requeue({
    agent,
    sessionKey: stored.sessionKey,
    runId,
    content: stored.data.content,
    thread: stored.data.thread,
    resume: true,
    ...(sender ? { sender } : {}),
    ...(images.length > 0 ? { images } : {}),
  });
  deps.keys.adopt(idempotencyKey, { runId, sessionKey: stored.sessionKey, promise: result });
  return { result };
}
