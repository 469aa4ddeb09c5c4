/**
 * Typing indicators and progressive replies (`stream = "edit"`) for channel turns that run on a
 * consuming gateway of the bus (bus.ts; docs/bus.md, "Progressive replies and typing across
 * gateways"). Every gateway on a bus serves the same channels with the same plugins, so the
 * gateway that runs the turn drives the platform itself, through its own instance of the
 * channel plugin: it keeps the indicator alive while the turn runs and sends and edits the
 * streamed message as text arrives (stream-edit.ts, same throttle as without a bus). The
 * streamed message's platform id goes to the shared store (stream-kv.ts, NATS KV) before any
 * edit, and the reply published to the `out` stream carries it as `editOf`, so the gateway whose
 * `out-<channel>` consumer delivers the reply makes the final edit instead of a second message.
 *
 * After a crash of the gateway running the turn, the one that runs it again finds the message id
 * in the shared store and edits that message. The first message is sent with the reply id +
 * `:preview` as its own reply id: a platform deduping on it (Discord's `enforce_nonce`) returns
 * the same message when a gateway died between the platform accepting it and the store's write.
 */
import { errorMessage } from "../util/index.js";
import { StreamingReply, type StreamLimits } from "./stream-edit.js";
import type { SharedStreamedReplies } from "./stream-kv.js";
import type { ChannelLogger, EditRequest, EditResult, OutboundMessage, TypingRequest } from "./types.js";

/** Where a bus turn's reply goes (from the inbound payload). */
export interface PresenceTarget {
  channel: string;
  account: string;
  peer: string;
  thread?: string;
  /** The platform message id answered. */
  replyTo?: string;
}

/** What one bus turn shows while it runs. */
export interface TurnPresence {
  /** Takes one turn event (`{type, data}`). */
  emit(ev: unknown): void;
  /**
   * Ends the indicator and the streaming (idempotent); waits for a call in flight and the final
   * edit's throttle. @returns the streamed message's platform id (to edit), or undefined
   */
  finish(): Promise<string | undefined>;
}

/** What {@link createBusPresence} needs from the channels service. */
export interface BusPresenceDeps {
  /** The throttle of `channel`/`account` when it streams and its plugin exports `edit`; else undefined. */
  streamLimits(channel: string, account: string): StreamLimits | undefined;
  /** Starts the typing indicator (typing.ts) when the channel shows one; @returns its stop function, or undefined */
  startTyping(channel: string, req: TypingRequest): (() => void) | undefined;
  /** The plugin's `send` (through the send gate). @returns the message's platform id, or undefined */
  send(channel: string, message: OutboundMessage): Promise<string | undefined>;
  /** The plugin's `edit` (through the send gate). */
  edit(channel: string, req: EditRequest): Promise<EditResult>;
  /** Opens the shared store; undefined = ids kept in this process only (a crash may cost a second message). */
  store(): Promise<SharedStreamedReplies | undefined>;
  logger: ChannelLogger;
}

/**
 * Builds the per-turn presence factory.
 * @returns `(target, msgId, replyId) => TurnPresence`; `msgId`: the inbound message's bus id
 *   (the key in the shared store), `replyId`: the reply's id (bus.ts `replyMsgId`)
 */
export function createBusPresence(deps: BusPresenceDeps): (to: PresenceTarget, msgId: string, replyId: string) => Promise<TurnPresence> {
  const { logger } = deps;
  return async (to, msgId, replyId) => {
    const where = { channel: to.channel, account: to.account, peer: to.peer, msgId };
    const at = { account: to.account, peer: to.peer, ...(to.thread !== undefined ? { thread: to.thread } : {}) };
    const stopTyping = deps.startTyping(to.channel, at);
    const limits = deps.streamLimits(to.channel, to.account);
    let stream: StreamingReply | undefined;
    // A message streamed by an earlier run of this turn (a gateway that died), or the id of a
    // replayed turn's message: looked up even when this gateway does not stream it any more.
    let earlier: string | undefined;
    // Only a streaming channel can have one (no NATS round trip for the others).
    const store = limits !== undefined ? await deps.store() : undefined;
    if (store !== undefined) {
      try {
        earlier = (await store.get(msgId))?.platformMessageId;
      } catch (err) {
        logger.warn({ ...where, error: errorMessage(err) }, "streamed reply: cannot read the shared store; a streamed message may be sent again");
      }
    }
    if (limits !== undefined) {
      stream = new StreamingReply(
        {
          send: (content) =>
            deps.send(to.channel, {
              ...at,
              content,
              ...(to.replyTo !== undefined ? { replyTo: to.replyTo } : {}),
              // Not the reply's id (a platform deduping on it would return this message for the final send).
              replyId: `${replyId.slice(0, 254)}:preview`,
            }),
          remember: async (platformMessageId) => {
            earlier = platformMessageId;
            await store?.remember(msgId, { channel: to.channel, account: to.account, peer: to.peer, platformMessageId, at: Date.now() });
          },
          edit: (platformMessageId, content) => deps.edit(to.channel, { ...at, platformMessageId, content }),
          failed: (what, err) => logger.warn({ ...where, what, error: errorMessage(err) }, "streamed reply: call failed"),
        },
        limits,
        earlier,
      );
    }
    let finished: Promise<string | undefined> | undefined;
    return {
      emit: (ev) => stream?.push(ev),
      finish() {
        return (finished ??= (async () => {
          stopTyping?.();
          const id = stream !== undefined ? await stream.finish() : undefined;
          return id ?? earlier;
        })());
      },
    };
  };
}
