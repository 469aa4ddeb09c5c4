/**
 * The reply path of the channels service: everything a channel sends. A turn's reply (or
 * failure notice, or a refusal) goes through the reply outbox (outbox.ts) in its peer's order,
 * retried, and settled in the store once sent; a streamed reply (`stream = "edit"`) is edited in
 * place and gets its final edit from the outbox; agent-initiated messages and files go straight
 * through the plugin with retries. Every `send`/`edit`/`send_file` call passes the send gate
 * (send-gate.ts). service.ts admits messages and hands their outcomes here.
 */
import { DEFAULT_SEND_MAX_BYTES, DEFAULT_SEND_TYPES, accountStream } from "../config/index.js";
import type { SessionEventOf } from "../store/index.js";
import { failureReason } from "../agent/index.js";
import { errorMessage } from "../util/index.js";
import { inboundMsgId, replyMsgId } from "./bus.js";
import {
  pluginOf,
  turnFailure,
  failureReply,
  type Channel,
  type ChannelOutboundTarget,
  type ChannelPlugins,
  type ChannelTurnResult,
  type FileSupport,
  type FileTarget,
  type TurnFailure,
} from "./channel.js";
import { isPermanentSendError, ReplyOutbox, type OutboxMessage, type ReplyKind } from "./outbox.js";
import { SEND_BACKOFF_MS, withRetry } from "./retry.js";
import { DEFAULT_SEND_SLOTS, SendGate } from "./send-gate.js";
import { sendFinal, StreamingReply } from "./stream-edit.js";
import { StreamedReplies, streamStatePath } from "./stream-state.js";
import type { ChannelLogger, EditRequest, EditResult, OutboundMessage, SendReceipt } from "./types.js";

/** The store's reply outbox as the reply path uses it (the session log implements it). */
export interface OwedReplies {
  pendingReplies(): Promise<SessionEventOf<"message_received">[]>;
  settleReplies(keys: readonly string[]): Promise<void>;
}

/** Where a reply goes: the conversation, and the inbound message it answers (`replyTo`, its platform id). */
export interface ReplyAddress {
  account: string;
  peer: string;
  thread?: string;
  replyTo?: string;
}

/** Options of {@link createReplyPath}. */
export interface ReplyPathOptions {
  /** The configured channels by name: the service's live map (a config reload changes it in place). */
  channels: ReadonlyMap<string, Channel>;
  plugins: ChannelPlugins;
  logger: ChannelLogger;
  /** Streamed messages' ids are kept in `<stateDir>/channels/` (stream-state.ts). */
  stateDir: string;
  /** The store's outbox; absent: replies are sent from memory only (lost in a crash). */
  replies?: OwedReplies;
  /** Waits before each retry of an agent-initiated send, ms; default `SEND_BACKOFF_MS`. */
  sendBackoffMs?: readonly number[];
  /** Waits before each retry of a reply, ms, the last repeating for ever; default `REPLY_BACKOFF_MS` (outbox.ts). */
  replyBackoffMs?: readonly number[];
  /** The outcome of the turn holding an idempotency key (the runtime's `outcome`); absent: `resumeReplies` does nothing. */
  outcome?: (idempotencyKey: string) => Promise<ChannelTurnResult>;
}

/** The reply path (see the module comment); the service's `send`, `fileSupport`, `sendFile`, `resumeReplies` are these. */
export interface ReplyPath {
  /** The plugin's `send`, through the send gate. @returns the plugin's output */
  callSend(plugin: string, message: OutboundMessage, signal?: AbortSignal): Promise<unknown>;
  /** The plugin's `edit`, through the send gate. */
  callEdit(plugin: string, req: EditRequest, signal?: AbortSignal): Promise<EditResult>;
  /**
   * Sends a reply on channel `name`, or makes the final edit of its streamed message `editOf`.
   * @throws Error for an unknown channel, or the plugin's error
   */
  sendReply(name: string, message: OutboundMessage, signal: AbortSignal, editOf?: string): Promise<void>;
  /**
   * Sends in the background through the outbox (in the peer's order, retried); `key` is the
   * outbox entry it settles (the message's idempotency key), absent for a message the store does
   * not owe (a refusal, a message journaled without `awaitsReply`).
   */
  deliver(ch: Channel, message: OutboundMessage, what: ReplyKind, key?: string): void;
  /**
   * What a settled turn sends: its reply, a failure notice, or nothing; a replayed outcome sends
   * nothing (the first turn's entry owns the reply). `key` is settled once sent, or at once.
   */
  settle(ch: Channel, to: ReplyAddress, result: ChannelTurnResult | undefined, error: TurnFailure | undefined, key?: string, stream?: StreamingReply): void;
  /** The streamed reply of a turn when its channel and account stream and the plugin exports `edit`; else undefined. */
  streamFor(ch: Channel, to: ReplyAddress, key: string | undefined): StreamingReply | undefined;
  /** `{ replyId }` of the answer to the message `to.replyTo` (the same on every resend), or `{}`. */
  replyIdField(channel: string, to: { account: string; replyTo?: string }): { replyId?: string };
  /** An agent-initiated message (ChannelService.send). */
  send(target: ChannelOutboundTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
  /** ChannelService.fileSupport. */
  fileSupport(name: string): FileSupport;
  /** ChannelService.sendFile. */
  sendFile(target: FileTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
  /** ChannelService.resumeReplies. */
  resumeReplies(): Promise<number>;
  /** Abandons replies still being retried (they stay owed in the store). */
  close(): Promise<void>;
  /** Waits until the outbox is empty, at most `timeoutMs`. */
  idle(timeoutMs: number): Promise<void>;
}

/** Builds the reply path of the channels service. */
export function createReplyPath(options: ReplyPathOptions): ReplyPath {
  const { channels, plugins, logger, replies } = options;
  const backoff = options.sendBackoffMs ?? SEND_BACKOFF_MS;
  const pluginInfo = (ch: Channel) => pluginOf(plugins, ch);
  // Every `send` goes through the gate: a burst of replies waits here, not in the plugin's pool
  // queue, which inbound webhooks' `parse` calls need (send-gate.ts).
  const sendGate = new SendGate((plugin) => plugins.channelPlugins().find((p) => p.name === plugin)?.maxInFlight ?? DEFAULT_SEND_SLOTS);
  const callSend = (plugin: string, message: OutboundMessage, signal?: AbortSignal): Promise<unknown> =>
    sendGate.run(plugin, () => plugins.callChannel(plugin, "send", message, signal), signal);
  /** Progressive replies (`stream = "edit"`): the plugin's `edit`, through the send gate. */
  const callEdit = async (plugin: string, req: EditRequest, signal?: AbortSignal): Promise<EditResult> => {
    const out = (await sendGate.run(plugin, () => plugins.callChannel(plugin, "edit", req, signal), signal)) as Record<string, unknown> | undefined;
    return {
      ...(typeof out?.overflow === "string" ? { overflow: out.overflow } : {}),
      ...(typeof out?.retryAfterMs === "number" ? { retryAfterMs: out.retryAfterMs } : {}),
    };
  };
  /** Streamed messages' ids with their owed replies (stream-state.ts), for the final edit after a crash. */
  const streamed = new StreamedReplies(streamStatePath(options.stateDir), logger);
  /** Sends a reply, or makes the final edit of its streamed message `editOf` (the outbox's and the bus's `send`). */
  async function sendReply(name: string, message: OutboundMessage, signal: AbortSignal, editOf?: string): Promise<void> {
    const ch = channels.get(name);
    if (ch === undefined) throw new Error(`unknown channel "${name}"`);
    const plugin = ch.config.plugin;
    if (editOf === undefined) {
      await callSend(plugin, message, signal);
      return;
    }
    const at = { account: message.account, peer: message.peer, ...(message.thread !== undefined ? { thread: message.thread } : {}) };
    const how = await sendFinal(
      {
        edit: (platformMessageId, content, sig) => callEdit(plugin, { ...at, platformMessageId, content }, sig),
        send: async (m, sig) => void (await callSend(plugin, m, sig)),
        permanent: isPermanentSendError,
      },
      message,
      editOf,
      signal,
    );
    if (how === "sent")
      logger.warn({ channel: name, peer: message.peer, replyId: message.replyId }, "streamed message could not be edited; the reply was sent as a new message");
  }
  const outbox = new ReplyOutbox({
    send: sendReply,
    permanent: isPermanentSendError,
    settle: async (keys) => {
      if (replies !== undefined) await replies.settleReplies(keys);
      await streamed.forget(keys);
    },
    ...(options.replyBackoffMs !== undefined ? { backoffMs: options.replyBackoffMs } : {}),
    onSent(m) {
      const ch = channels.get(m.channel);
      if (ch !== undefined && m.what === "reply") ch.counters.answered++;
      logger.debug({ channel: m.channel, account: m.message.account, peer: m.message.peer, what: m.what, replyId: m.message.replyId }, "channel message sent");
    },
    onRetry(m, attempt, waitMs, err) {
      const ch = channels.get(m.channel);
      if (ch !== undefined) ch.counters.sendRetries++;
      logger.warn(
        {
          channel: m.channel,
          account: m.message.account,
          peer: m.message.peer,
          what: m.what,
          replyId: m.message.replyId,
          attempt,
          waitMs,
          error: errorMessage(err),
        },
        "channel send failed; retrying",
      );
    },
    onDead(m, attempts, err) {
      const ch = channels.get(m.channel);
      if (ch !== undefined) ch.counters.sendFailures++;
      logger.error(
        {
          channel: m.channel,
          plugin: ch?.config.plugin,
          account: m.message.account,
          peer: m.message.peer,
          what: m.what,
          replyId: m.message.replyId,
          attempts,
          error: errorMessage(err),
        },
        "channel send failed permanently; reply dead-lettered (not retried)",
      );
    },
    logger,
  });

  /** Calls the plugin's `send` with retries. @throws the last error */
  async function sendVia(ch: Channel, message: OutboundMessage, signal?: AbortSignal): Promise<SendReceipt> {
    const out = await withRetry(
      () => callSend(ch.config.plugin, message, signal),
      backoff,
      (err, n) =>
        logger.warn(
          { channel: ch.config.name, account: message.account, peer: message.peer, attempt: n, error: errorMessage(err) },
          "channel send failed; retrying",
        ),
      signal,
    );
    const id = (out as Record<string, unknown>).platformMessageId;
    return typeof id === "string" && id.length > 0 ? { platformMessageId: id } : {};
  }

  /** The outbox's order key: one peer's messages go out in the order their turns ended. */
  const peerKey = (channel: string, to: { account: string; peer: string }) => `${channel}\u0000${to.account}\u0000${to.peer}`;

  /**
   * Sends in the background through the outbox (in the peer's order, retried); `key` is the
   * outbox entry it settles (the message's idempotency key), absent for a message the store does
   * not owe (a refusal, a message journaled without `awaitsReply`).
   */
  function deliver(ch: Channel, message: OutboundMessage, what: ReplyKind, key?: string): void {
    const m: OutboxMessage = { channel: ch.config.name, message, what };
    outbox.push(peerKey(ch.config.name, message), key, async () => m);
  }

  /** Settles an owed entry without sending anything (in the peer's order, after its earlier replies). */
  function settleOnly(channel: string, to: { account: string; peer: string }, key: string | undefined): void {
    if (key !== undefined) outbox.push(peerKey(channel, to), key, async () => undefined);
  }

  /** The reply id of the answer to a message: one per inbound message, the same on every resend (bus.ts's reply message id). */
  function replyIdField(channel: string, to: { account: string; replyTo?: string }): { replyId?: string } {
    return to.replyTo === undefined ? {} : { replyId: replyMsgId(inboundMsgId(channel, to.account, to.replyTo)) };
  }

  /** What to send for a turn's outcome: its reply, a failure notice, or nothing (undefined). */
  function replyFor(
    ch: Channel,
    to: { account: string; peer: string; thread?: string; replyTo?: string },
    result: ChannelTurnResult | undefined,
    error: TurnFailure | undefined,
  ): { message: OutboundMessage; what: ReplyKind } | undefined {
    const base = { account: to.account, peer: to.peer, thread: to.thread, replyTo: to.replyTo, ...replyIdField(ch.config.name, to) };
    if (result !== undefined) {
      if (result.merged || result.text.length === 0) return undefined;
      return { message: { ...base, content: result.text }, what: "reply" };
    }
    if (error === undefined || error.interrupted === true || error.stopped === true) return undefined;
    logger.warn(
      { channel: ch.config.name, account: to.account, peer: to.peer, code: error.code, error: error.message },
      "channel turn failed; telling the peer",
    );
    return { message: { ...base, content: failureReply(error.message) }, what: "failure notice" };
  }

  /**
   * What a settled turn sends: its reply, a failure notice, or nothing. A replayed result or
   * failure (a redelivered message) sends nothing: the first turn's entry owns the reply.
   * `key`: the outbox entry the turn's message owes, settled once sent (or when nothing is sent).
   */
  function settle(
    ch: Channel,
    to: { account: string; peer: string; thread?: string; replyTo?: string },
    result: ChannelTurnResult | undefined,
    error: TurnFailure | undefined,
    key?: string,
    stream?: StreamingReply,
  ): void {
    if (result?.replayed || error?.replayed === true) return void stream?.finish();
    const r = replyFor(ch, to, result, error);
    if (r === undefined) {
      void stream?.finish();
      settleOnly(ch.config.name, to, key);
    } else if (stream === undefined) deliver(ch, r.message, r.what, key);
    else {
      // The final edit of the streamed message (once no send or edit of it is in flight).
      outbox.push(peerKey(ch.config.name, to), key, async () => {
        const editOf = await stream.finish();
        return { channel: ch.config.name, message: r.message, what: r.what, ...(editOf !== undefined ? { editOf } : {}) };
      });
    }
  }

  /**
   * The streamed reply of a turn when its channel and account stream (`stream = "edit"`) and the
   * plugin exports `edit`; undefined otherwise. Its message id is recorded under `key`.
   */
  function streamFor(
    ch: Channel,
    to: { account: string; peer: string; thread?: string; replyTo?: string },
    key: string | undefined,
  ): StreamingReply | undefined {
    const limits = accountStream(ch.config.stream, to.account);
    if (limits === undefined || pluginInfo(ch)?.exports.edit !== true) return undefined;
    const name = ch.config.name;
    const plugin = ch.config.plugin;
    const at = { account: to.account, peer: to.peer, ...(to.thread !== undefined ? { thread: to.thread } : {}) };
    return new StreamingReply(
      {
        // No reply id: the preview is not the reply (a platform deduping on it would return this message for the final send).
        send: async (content) => {
          const out = (await callSend(plugin, { ...at, content, ...(to.replyTo !== undefined ? { replyTo: to.replyTo } : {}) })) as
            | Record<string, unknown>
            | undefined;
          return typeof out?.platformMessageId === "string" && out.platformMessageId.length > 0 ? out.platformMessageId : undefined;
        },
        remember: (platformMessageId) =>
          key === undefined
            ? Promise.resolve()
            : streamed.remember(key, { channel: name, account: to.account, peer: to.peer, platformMessageId, at: Date.now() }),
        edit: (platformMessageId, content) => callEdit(plugin, { ...at, platformMessageId, content }),
        failed: (what, err) =>
          logger.warn({ channel: name, account: to.account, peer: to.peer, what, error: errorMessage(err) }, "streamed reply: call failed"),
      },
      limits,
    );
  }

  async function send(target: ChannelOutboundTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }> {
    const ch = channels.get(target.channel);
    if (ch === undefined) {
      throw new Error(`unknown channel "${target.channel}" (configured channels: ${[...channels.keys()].join(", ") || "none"})`);
    }
    if (pluginInfo(ch) === undefined) throw new Error(`channel "${target.channel}": its plugin "${ch.config.plugin}" is not loaded`);
    try {
      const receipt = await sendVia(ch, { account: target.account, peer: target.peer, thread: target.thread, content: target.content }, signal);
      ch.counters.answered++;
      return receipt;
    } catch (err) {
      if (!signal?.aborted) ch.counters.sendFailures++;
      throw err;
    }
  }

  function fileSupport(name: string): FileSupport {
    const ch = channels.get(name);
    if (ch === undefined) return { ok: false, reason: `channel "${name}" is not configured` };
    const info = pluginInfo(ch);
    if (info === undefined) return { ok: false, reason: `channel "${name}": its plugin "${ch.config.plugin}" is not loaded` };
    if (info.exports.sendFile !== true)
      return { ok: false, reason: `channel "${name}": its plugin "${ch.config.plugin}" cannot send files (no send_file export)` };
    const media = ch.config.groups?.media;
    return { ok: true, maxBytes: media?.sendMaxBytes ?? DEFAULT_SEND_MAX_BYTES, types: media?.sendTypes ?? DEFAULT_SEND_TYPES };
  }

  async function sendFile(target: FileTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }> {
    const support = fileSupport(target.channel);
    if (!support.ok) throw new Error(support.reason);
    const ch = channels.get(target.channel)!;
    const { channel: _channel, ...message } = target;
    try {
      const out = await withRetry(
        () => sendGate.run(ch.config.plugin, () => plugins.callChannel(ch.config.plugin, "send_file", message, signal), signal),
        backoff,
        (err, n) =>
          logger.warn(
            { channel: ch.config.name, account: target.account, peer: target.peer, attempt: n, error: errorMessage(err) },
            "channel send_file failed; retrying",
          ),
        signal,
        isPermanentSendError,
      );
      ch.counters.answered++;
      const id = (out as Record<string, unknown>).platformMessageId;
      return typeof id === "string" && id.length > 0 ? { platformMessageId: id } : {};
    } catch (err) {
      if (!signal?.aborted) ch.counters.sendFailures++;
      throw err;
    }
  }

  async function resumeReplies(): Promise<number> {
    const outcomeOf = options.outcome;
    if (replies === undefined || outcomeOf === undefined) return 0;
    const owed = await replies.pendingReplies();
    // Streamed messages of owed replies get their final edit; entries of settled ones are dropped.
    await streamed.load();
    await streamed.forget([], new Set(owed.map((m) => m.data.idempotencyKey!)));
    for (const m of owed) {
      const d = m.data;
      const key = d.idempotencyKey!;
      const to = { account: d.account, peer: d.peer, thread: d.thread, replyTo: d.platformMessageId };
      const ch = channels.get(d.channel);
      if (ch === undefined) {
        // Dead letter: nobody to send it through.
        logger.error({ channel: d.channel, account: d.account, peer: d.peer, key }, "owed reply for a channel that is no longer configured; dead-lettered");
        outbox.push(peerKey(d.channel, to), key, async () => undefined);
        continue;
      }
      outbox.push(peerKey(d.channel, to), key, async () => {
        let result: ChannelTurnResult | undefined;
        let error: TurnFailure | undefined;
        try {
          result = await outcomeOf(key);
        } catch (err) {
          error = turnFailure(err);
          if (!error.interrupted && !error.replayed) {
            if (failureReason(err) !== undefined) {
              // Open and not running here (nothing will finish it), or the message is gone.
              logger.error(
                { channel: d.channel, peer: d.peer, key, code: error.code, error: error.message },
                "owed reply whose turn has no outcome; dead-lettered",
              );
              return undefined;
            }
            throw err; // the store: stays owed for the next start
          }
        }
        const r = replyFor(ch, to, result, error);
        const editOf = streamed.get(key)?.platformMessageId;
        return r === undefined ? undefined : { channel: d.channel, message: r.message, what: r.what, ...(editOf !== undefined ? { editOf } : {}) };
      });
    }
    if (owed.length > 0) logger.warn({ replies: owed.length }, "replies owed by the previous gateway process are sent again");
    return owed.length;
  }

  return {
    callSend,
    callEdit,
    sendReply,
    deliver,
    settle,
    streamFor,
    replyIdField,
    send,
    fileSupport,
    sendFile,
    resumeReplies,
    close: () => outbox.close(),
    idle: (timeoutMs) => outbox.idle(timeoutMs),
  };
}
