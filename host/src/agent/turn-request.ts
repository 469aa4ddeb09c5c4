/**
 * What a caller hands the runtime for one turn ({@link TurnRequest}, {@link RunHooks}) and what it
 * gets back ({@link TurnResult}), and where a message came from ({@link messageSource}).
 */
import { parseSessionKey } from "../store/index.js";
import type { ImageInput, MessageSender, TurnOutcome } from "./types.js";

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
   * Platform thread the message came in (Slack `thread_ts`, Telegram `message_thread_id`),
   * stored in `message_received` so a reply — even one written after a crash — goes there.
   */
  thread?: string;
  /**
   * The platform's id of the message, stored in `message_received` (a dedupe key per channel +
   * account: a second message with the same id is answered like a repeated idempotency key).
   */
  platformMessageId?: string;
  /**
   * The client's key for this message (unique per store). A repeated key never runs a second
   * turn: it is answered with the first turn's outcome (see {@link AgentRuntime.run}).
   */
  idempotencyKey?: string;
  /**
   * The channels service owes this message a reply through the store's reply outbox (stored as
   * `message_received.data.awaitsReply`; needs `idempotencyKey`). See `SessionLog.pendingReplies`.
   */
  awaitsReply?: boolean;
  /**
   * Who wrote the message in a group (channels): stored in `message_received` (`sender`,
   * `senderName`), shown to the model as a host-written line before the text, and given to tools
   * as the call context's `sender`; scopes the agent's memory (docs/memory.md). Absent: the
   * sender is the peer.
   */
  sender?: MessageSender;
  /** Images given to the model with this message (this turn only; not journaled). */
  images?: ImageInput[];
}

/**
 * A finished turn: its outcome, run id and session (for a replay: the original turn's, which
 * may differ from the repeated request's); `replayed` when it answers a repeated idempotency key;
 * `merged` when this message was folded into a later message's turn (queue mode `collect`):
 * the outcome and `runId` are that turn's, and only that turn's own message resolves unmarked,
 * so a channel sends one reply, not one per message.
 */
export type TurnResult = TurnOutcome & { runId: string; sessionKey: string; agentId: string; replayed?: true; merged?: true };

/** Callbacks of one {@link AgentRuntime.run} call. */
export interface RunHooks {
  /**
   * The message is accepted: its `message_received` event is written (durably, for a durable
   * store) under this run id. For a repeated idempotency key whose message is already stored or
   * running, called at once with the original run id. Not called when the message is refused
   * before journaling (queue full, shutting down, unknown agent). Called before the turn's
   * outcome is delivered; an exception it throws is logged and ignored.
   */
  onAccepted?: (runId: string) => void;
}

/** A request whose run id is decided (the caller's, or a new one). */
export type IdentifiedTurnRequest = TurnRequest & { runId: string };

/** Where a message came from: the request's channel/account/peer, else the session key's. @throws Error for a malformed session key */
export function messageSource(request: TurnRequest): { channel: string; account: string; peer: string } {
  return request.channel !== undefined && request.account !== undefined && request.peer !== undefined
    ? { channel: request.channel, account: request.account, peer: request.peer }
    : parseSessionKey(request.sessionKey);
}
