/**
 * The intake of the channels service: from a platform's webhook (or poll, or connection) to a
 * journaled turn or a refusal. Per message: shape check -> allowlist (or pairing) -> mention and
 * rate gate -> limits -> images -> router -> `runtime.run` with the idempotency key
 * `channel:<channel>:<account>:<platformMessageId>`, or, with a bus, published to NATS instead.
 * A webhook is answered only once every message of its request is journaled, published or
 * refused. Refusals and the outcome of each turn go to the reply path (replies.ts).
 */
import type { InboundAddress, Route } from "../router/index.js";
import { isReplay, isTransientRefusal } from "../agent/index.js";
import { isPluginBusy } from "../plugins/index.js";
import { toErrorObject } from "../protocol/index.js";
import { errorMessage } from "../util/index.js";
import { inboundPayload, type ChannelBus } from "./bus.js";
import { packImages } from "./bus-media.js";
import type { BusStores } from "./bus-stores.js";
import {
  NOTHING_TO_STOP_REPLY,
  STOP_COMMAND,
  STOPPED_REPLY,
  pluginOf,
  turnFailure,
  type Channel,
  type ChannelPlugins,
  type ChannelRuntime,
  type ChannelTurnRequest,
  type ChannelTurnResult,
  type HttpAnswer,
  type WebhookHttpRequest,
} from "./channel.js";
import { ChannelGate, type RateWindows } from "./gate.js";
import { isGroup } from "./groups.js";
import { fetchImages } from "./media.js";
import { checkParseResult, limitViolation, normalizeInbound, turnContent } from "./messages.js";
import type { PairingBook } from "./pairing.js";
import type { ReplyPath } from "./replies.js";
import type { TypingIndicators } from "./typing.js";
import type { Admission, ChannelLogger, IntakeRefusal, WebhookResponse } from "./types.js";

/** Options of {@link createIntake}. */
export interface IntakeOptions {
  /** The configured channels by name: the service's live map (a config reload changes it in place). */
  channels: ReadonlyMap<string, Channel>;
  plugins: ChannelPlugins;
  router: { resolve(address: InboundAddress): Route };
  runtime: ChannelRuntime;
  logger: ChannelLogger;
  /** Where refusals and turn outcomes go. */
  replies: Pick<ReplyPath, "deliver" | "settle" | "streamFor" | "replyIdField">;
  /** Whether the store owes each channel turn its reply (journaled with `awaitsReply`). */
  owesReplies: boolean;
  /** "typing..." while a turn runs. */
  typing: TypingIndicators;
  /** Keeps a turn's outcome delivery until it settles (the service's `idle` waits for it). */
  track(delivery: Promise<void>): void;
  /** The bus side: admitted messages are published to it instead of run here. */
  channelBus?: ChannelBus;
  /** The NATS stores of the bus (images over 512 KiB go to its object store). */
  stores: BusStores;
  /** With a bus: stops a conversation's turn on the gateway that runs it (a peer's `/stop`). */
  abortElsewhere?: (target: { sessionKey: string }, by: "stop_command") => Promise<{ aborted: string[] }>;
  /** Pairing requests and approvals; absent = `pairing` is off on every channel. */
  pairing?: PairingBook;
  /** Per-sender rate windows (default: this process's). */
  rateWindows?: RateWindows;
}

/** The intake (see the module comment). */
export interface Intake {
  /** Answers one webhook request (never throws; failures become 4xx/5xx answers). */
  handleWebhook(req: WebhookHttpRequest): Promise<HttpAnswer>;
  /** Admits messages of one channel and account in order (polls and connections). */
  admitAll(ch: Channel, account: string, messages: unknown[], source: string): Promise<Admission[]>;
  /** Counts and logs a webhook request the gateway refused from its head (never throws). */
  intakeRefused(refusal: { channel: string; account: string; reason: IntakeRefusal; remoteAddress: string }): void;
}

const JSON_HEADERS = { "content-type": "application/json" };

function jsonAnswer(status: number, error: string): HttpAnswer {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify({ error }) };
}

/** Headers a plugin may not set: the host frames the HTTP answer itself. */
const HOP_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date"]);

/** Builds the intake of the channels service. */
export function createIntake(options: IntakeOptions): Intake {
  const { channels, plugins, router, runtime, logger, typing, track, channelBus, stores, abortElsewhere } = options;
  const { deliver, settle, streamFor, replyIdField } = options.replies;
  const owesReplies = options.owesReplies;
  const pluginInfo = (ch: Channel) => pluginOf(plugins, ch);
  const gate = new ChannelGate({
    ...(options.pairing !== undefined ? { pairing: options.pairing } : {}),
    ...(options.rateWindows !== undefined ? { limiter: options.rateWindows } : {}),
  });
  /** Idempotency keys of refused messages, so a redelivery is not refused (and answered) twice. Bounded. */
  const refusedKeys = new Set<string>();

  function rememberRefused(key: string): boolean {
    if (refusedKeys.has(key)) return false;
    refusedKeys.add(key);
    if (refusedKeys.size > 4096) refusedKeys.delete(refusedKeys.values().next().value!);
    return true;
  }

  /** Whether `msg` is a peer's `/stop` this service handles (the runtime can stop turns). */
  function isStopCommand(msg: { content: string; attachments: readonly unknown[] }): boolean {
    return runtime.abort !== undefined && msg.attachments.length === 0 && msg.content.trim().toLowerCase() === STOP_COMMAND;
  }

  /**
   * A peer's `/stop`: stops the conversation's running turn here, else (with a bus) on the
   * gateway that runs it, and answers the peer. A redelivered `/stop` is answered once.
   */
  async function stopConversation(
    ch: Channel,
    sessionKey: string,
    key: string,
    to: { account: string; peer: string; thread?: string; replyTo?: string },
    msg: { account?: string; peer: string },
    source: string,
  ): Promise<void> {
    const name = ch.config.name;
    ch.counters.accepted++;
    if (!rememberRefused(key)) return;
    let stopped = runtime.abort!({ sessionKey }, "stop_command");
    let elsewhere = false;
    if (stopped.length === 0 && abortElsewhere !== undefined) {
      stopped = (await abortElsewhere({ sessionKey }, "stop_command")).aborted;
      elsewhere = stopped.length > 0;
    }
    logger.info({ channel: name, account: msg.account, peer: msg.peer, sessionKey, stopped, elsewhere, source }, "stop command from a channel peer");
    deliver(ch, { ...to, content: stopped.length > 0 ? STOPPED_REPLY : NOTHING_TO_STOP_REPLY, ...replyIdField(name, to) }, "reply");
  }

  /**
   * Takes one message from the plugin to a journaled turn (or a refusal). Resolves once it is
   * journaled or refused; the reply is delivered later, when the turn ends.
   */
  async function admit(ch: Channel, account: string, raw: unknown, source: string): Promise<Admission> {
    const name = ch.config.name;
    ch.counters.received++;
    const msg = normalizeInbound(raw, account);
    if (typeof msg === "string") {
      ch.counters.refused++;
      ch.counters.malformed++;
      logger.warn({ channel: name, account, plugin: ch.config.plugin, source, reason: msg }, "malformed message from channel plugin; skipped");
      return { kind: "refused" };
    }
    const key = `channel:${name}:${msg.account}:${msg.platformMessageId}`;
    const to = { account: msg.account!, peer: msg.peer, thread: msg.thread, replyTo: msg.platformMessageId };
    const gateChannel = { name, ...(ch.config.groups !== undefined ? { groups: ch.config.groups } : {}) };
    if (!ch.allow({ peer: msg.peer, guild: msg.guild, team: msg.team }) && !(await gate.paired(gateChannel, msg))) {
      ch.counters.refused++;
      // Pairing: a stranger's direct message gets a code the operator can approve (pairing.ts).
      let pairing: { code: string; reply?: string } | undefined;
      try {
        pairing = await gate.pairingAnswer(gateChannel, msg);
      } catch (err) {
        logger.error({ channel: name, account: msg.account, peer: msg.peer, error: errorMessage(err) }, "could not record a pairing request");
      }
      logger.warn(
        { channel: name, account: msg.account, peer: msg.peer, guild: msg.guild, team: msg.team, source, ...(pairing ? { pairingCode: pairing.code } : {}) },
        pairing ? "message from a peer not in the channel allowlist; pairing code issued" : "message from a peer not in the channel allowlist; dropped",
      );
      const text = pairing !== undefined ? pairing.reply : ch.config.refusal;
      if (text !== undefined && rememberRefused(key)) deliver(ch, { ...to, content: text, ...replyIdField(name, to) }, "refusal");
      return { kind: "refused" };
    }
    // Mention gating and per-sender rates (gate.ts).
    const verdict = await gate.check(gateChannel, msg);
    if (verdict.kind !== "pass") {
      ch.counters.refused++;
      const fields = { channel: name, account: msg.account, peer: msg.peer, sender: msg.sender, reason: verdict.reason, source };
      if (verdict.reason === "not_mentioned") logger.debug(fields, "group message that does not address the bot (mention_only); not passed on");
      else logger.warn(fields, "message over the sender's rate; not passed on");
      if (verdict.kind === "refuse" && rememberRefused(key)) deliver(ch, { ...to, content: verdict.reply, ...replyIdField(name, to) }, "refusal");
      return { kind: "refused" };
    }
    const over = limitViolation(msg, ch.config);
    if (over !== null) {
      ch.counters.refused++;
      logger.warn(
        { channel: name, account: msg.account, peer: msg.peer, bytes: Buffer.byteLength(msg.content), attachments: msg.attachments.length, source },
        "message over the channel limits; refused",
      );
      if (rememberRefused(key)) deliver(ch, { ...to, content: over, ...replyIdField(name, to) }, "refusal");
      return { kind: "refused" };
    }
    if (msg.content.length === 0 && msg.attachments.length === 0) {
      ch.counters.refused++;
      logger.info({ channel: name, account: msg.account, peer: msg.peer, source }, "message without content or attachments; skipped");
      return { kind: "refused" };
    }
    // `/stop` with a bus: handled here, never published (on the bus it would wait behind the very
    // turn it must stop, in the peer's partition); the turn may run in another gateway.
    if (channelBus !== undefined && isStopCommand(msg)) {
      let sessionKey: string;
      try {
        sessionKey = router.resolve({ channel: name, account: msg.account!, peer: msg.peer, guild: msg.guild, team: msg.team }).sessionKey;
      } catch (err) {
        ch.counters.refused++;
        logger.error({ channel: name, account: msg.account, peer: msg.peer, error: errorMessage(err) }, "cannot route channel message; dropped");
        return { kind: "refused" };
      }
      await stopConversation(ch, sessionKey, key, to, msg, source);
      return { kind: "accepted" };
    }
    // Images: fetched now under the plugin's grant, so an oversized one is refused with a reply.
    const media = await fetchImages({ plugin: ch.config.plugin, attachments: msg.attachments, groups: ch.config.groups, fetch: plugins.fetchAsChannel });
    if (media.kind === "oversized") {
      ch.counters.refused++;
      logger.warn(
        { channel: name, account: msg.account, peer: msg.peer, bytes: media.bytes, limit: media.limit, source },
        "image over the channel's media limit; refused",
      );
      if (rememberRefused(key)) deliver(ch, { ...to, content: media.reply, ...replyIdField(name, to) }, "refusal");
      return { kind: "refused" };
    }
    if (media.notes.length > 0)
      logger.info({ channel: name, account: msg.account, peer: msg.peer, notes: media.notes, source }, "images not given to the model");
    if (channelBus !== undefined) {
      // Routing and the turn happen in whichever gateway consumes it; the platform's answer waits
      // only until the message is durable (in JetStream, or in the disk spool while NATS is down).
      try {
        const payload = inboundPayload(name, msg, turnContent(msg));
        // The images travel with it (inline, or in the NATS object store: bus-media.ts).
        if (media.images.length > 0) payload.images = await packImages(media.images, await stores.media());
        const ack = await channelBus.publishInbound(payload);
        ch.counters.accepted++;
        logger.info(
          { channel: name, account: msg.account, peer: msg.peer, msgId: ack.msgId, storedIn: ack.storedIn, duplicate: ack.duplicate, source },
          "channel message published to the bus",
        );
        return { kind: "accepted" };
      } catch (err) {
        logger.warn(
          { channel: name, account: msg.account, peer: msg.peer, key, error: errorMessage(err) },
          "channel message not published to the bus; the platform should redeliver",
        );
        return { kind: "retry", reason: errorMessage(err) };
      }
    }
    let route: Route;
    try {
      route = router.resolve({ channel: name, account: msg.account!, peer: msg.peer, guild: msg.guild, team: msg.team });
    } catch (err) {
      ch.counters.refused++;
      logger.error({ channel: name, account: msg.account, peer: msg.peer, error: errorMessage(err) }, "cannot route channel message; dropped");
      return { kind: "refused" };
    }
    // `/stop`: never a turn. It stops the conversation's running turn (its model call and tool
    // calls are cancelled; it ends with an `error` event and sends no failure notice) and is
    // answered at once. A redelivered `/stop` is answered once and stops nothing more.
    if (isStopCommand(msg)) {
      await stopConversation(ch, route.sessionKey, key, to, msg, source);
      return { kind: "accepted" };
    }
    const request: ChannelTurnRequest = {
      agentId: route.agentId,
      sessionKey: route.sessionKey,
      content: turnContent(msg),
      channel: name,
      account: msg.account!,
      peer: msg.peer,
      idempotencyKey: key,
      thread: msg.thread,
      platformMessageId: msg.platformMessageId,
      // In a group the sender is part of the message (host-written; the model cannot forge it).
      ...(isGroup(msg) && msg.sender !== undefined
        ? { sender: msg.senderName !== undefined ? { id: msg.sender, name: msg.senderName } : { id: msg.sender } }
        : {}),
      ...(media.images.length > 0 ? { images: media.images } : {}),
      // The store owes this message its reply until the outbox settles it (survives a crash).
      ...(owesReplies ? { awaitsReply: true } : {}),
    };
    let accept!: () => void;
    let notAccepted!: (err: unknown) => void;
    let accepted = false;
    const acceptance = new Promise<void>((resolve, reject) => {
      accept = () => ((accepted = true), resolve());
      notAccepted = reject;
    });
    let turn: Promise<ChannelTurnResult>;
    // Progressive replies: the turn's text events feed the streamed message (stream-edit.ts).
    const stream = streamFor(ch, to, owesReplies ? key : undefined);
    try {
      turn = runtime.run(request, stream !== undefined ? (ev) => stream.push(ev) : () => {}, undefined, { onAccepted: () => accept() });
    } catch (err) {
      turn = Promise.reject(err);
    }
    turn.then(
      // A settled turn was journaled, even if the hook was not called.
      () => accept(),
      (err: unknown) => (accepted ? undefined : notAccepted(err)),
    );
    try {
      await acceptance;
    } catch (err) {
      if (isReplay(err)) {
        ch.counters.accepted++; // a redelivery of a message whose turn already failed (and was answered)
        return { kind: "accepted" };
      }
      // Session busy, shutting down, or the store could not journal it (agent/errors.ts).
      if (isTransientRefusal(err)) {
        logger.warn(
          { channel: name, account: msg.account, peer: msg.peer, key, error: errorMessage(err) },
          "channel message not journaled; the platform should redeliver",
        );
        // The platform sees the runtime's fixed texts or the store's public one (a full disk), never
        // a raw store error (it names the store's path and the engine's internals).
        return { kind: "retry", reason: toErrorObject(err).message };
      }
      const failure = turnFailure(err);
      ch.counters.refused++;
      logger.error(
        { channel: name, account: msg.account, peer: msg.peer, code: failure.code, error: failure.message },
        "channel message refused by the runtime",
      );
      // Not journaled: nothing is owed in the store, the notice is sent from memory.
      settle(ch, to, undefined, failure);
      return { kind: "refused" };
    }
    ch.counters.accepted++;
    const owedKey = owesReplies ? key : undefined;
    logger.info(
      { channel: name, account: msg.account, peer: msg.peer, agent: route.agentId, matchedBy: route.matchedBy, sessionKey: route.sessionKey, source },
      "channel message accepted",
    );
    // "typing..." in the conversation while the turn runs (plugins exporting `typing`).
    const stopTyping =
      ch.config.typing !== false && pluginInfo(ch)?.exports.typing === true
        ? typing.start(name, { account: to.account, peer: to.peer, ...(to.thread !== undefined ? { thread: to.thread } : {}) })
        : () => {};
    track(
      turn.then(
        (result) => (stopTyping(), settle(ch, to, result, undefined, owedKey, stream)),
        (err: unknown) => (stopTyping(), settle(ch, to, undefined, turnFailure(err), owedKey, stream)),
      ),
    );
    return { kind: "accepted" };
  }

  /** Admits messages in order (one session's messages keep their order); stops nothing on a failure. */
  async function admitAll(ch: Channel, account: string, messages: unknown[], source: string): Promise<Admission[]> {
    const out: Admission[] = [];
    for (const m of messages) out.push(await admit(ch, account, m, source));
    return out;
  }

  /** Last warn-level log of a throttled/overloaded refusal per channel and reason, ms: floods are counted, not logged line by line. */
  const lastFloodWarn = new Map<string, number>();

  function intakeRefused(r: { channel: string; account: string; reason: IntakeRefusal; remoteAddress: string }): void {
    const ch = channels.get(r.channel);
    if (ch === undefined) return;
    const fields = { channel: r.channel, account: r.account, remote: r.remoteAddress };
    switch (r.reason) {
      case "unknownAccount":
        ch.counters.unknownAccount++;
        logger.warn({ ...fields, accounts: ch.config.accounts }, "webhook for an account the channel does not serve; answered 404");
        return;
      case "missingSignature":
        ch.counters.missingSignature++;
        logger.warn(fields, "webhook without the plugin's signature header; answered 401 without calling the plugin");
        return;
      case "pluginNotLoaded":
        ch.counters.overloaded++;
        logger.warn({ ...fields, plugin: ch.config.plugin }, "webhook for a channel whose plugin is not loaded");
        return;
      case "throttled":
      case "overloaded": {
        ch.counters[r.reason]++;
        const key = `${r.channel}\0${r.reason}`;
        const now = Date.now();
        const quiet = now - (lastFloodWarn.get(key) ?? -Infinity) < 10_000;
        if (!quiet) lastFloodWarn.set(key, now);
        const msg =
          r.reason === "throttled" ? "webhook requests over the per-address rate; answered 429" : "webhook requests over the in-flight budget; answered 503";
        (quiet ? logger.debug : logger.warn).call(
          logger,
          { ...fields, counters: { throttled: ch.counters.throttled, overloaded: ch.counters.overloaded } },
          msg,
        );
        return;
      }
    }
  }

  function toAnswer(response: WebhookResponse): HttpAnswer {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(response.headers ?? {})) if (!HOP_HEADERS.has(k)) headers[k] = v;
    return { status: response.status, headers, body: response.body ?? "" };
  }

  async function handleWebhook(req: WebhookHttpRequest): Promise<HttpAnswer> {
    const ch = channels.get(req.channel);
    if (ch === undefined) return jsonAnswer(404, `unknown channel "${req.channel}"`);
    if (pluginInfo(ch) === undefined) {
      logger.warn({ channel: ch.config.name, plugin: ch.config.plugin }, "webhook for a channel whose plugin is not loaded");
      return jsonAnswer(503, `channel "${ch.config.name}": its plugin "${ch.config.plugin}" is not loaded`);
    }
    let output: unknown;
    try {
      output = await plugins.callChannel(ch.config.plugin, "parse", {
        channel: req.channel,
        account: req.account,
        method: req.method,
        path: req.path,
        query: req.query,
        headers: req.headers,
        body: req.body,
      });
    } catch (err) {
      if (isPluginBusy(err)) {
        // Every instance is taken and the queue is full: a moment's overload, not a bad request.
        logger.warn(
          { channel: ch.config.name, plugin: ch.config.plugin, remote: req.remoteAddress, error: errorMessage(err) },
          "channel plugin busy; webhook refused for redelivery",
        );
        const busy = jsonAnswer(503, `channel "${ch.config.name}": the plugin is busy; redeliver later`);
        busy.headers["retry-after"] = "1";
        return busy;
      }
      logger.error(
        { channel: ch.config.name, plugin: ch.config.plugin, remote: req.remoteAddress, error: errorMessage(err) },
        "channel plugin failed to parse a webhook",
      );
      return jsonAnswer(500, `channel "${ch.config.name}": the plugin failed to parse the request`);
    }
    const parsed = checkParseResult(output);
    if (typeof parsed === "string") {
      logger.error({ channel: ch.config.name, plugin: ch.config.plugin, reason: parsed }, "channel plugin returned a malformed parse result");
      return jsonAnswer(500, `channel "${ch.config.name}": the plugin returned a malformed result`);
    }
    if (parsed.response.status === 401) {
      ch.counters.badSignature++;
      logger.warn(
        { channel: ch.config.name, account: req.account, remote: req.remoteAddress },
        "webhook refused by the channel plugin (bad signature); ignored",
      );
      return toAnswer(parsed.response);
    }
    const admissions = await admitAll(ch, req.account, parsed.messages, "webhook");
    const retry = admissions.find((a): a is Extract<Admission, { kind: "retry" }> => a.kind === "retry");
    if (retry !== undefined) return jsonAnswer(503, `could not accept every message now (${retry.reason}); redeliver later`);
    return toAnswer(parsed.response);
  }

  return {
    async handleWebhook(req) {
      try {
        return await handleWebhook(req);
      } catch (err) {
        logger.error({ channel: req.channel, error: errorMessage(err) }, "webhook handling failed");
        return jsonAnswer(500, "internal error");
      }
    },
    admitAll,
    intakeRefused,
  };
}
