/**
 * The channels service: from a platform's webhook (or poll) to the right agent and session,
 * and the agent's reply back to the platform, through the channel's plugin.
 *
 * Inbound, per message: shape check -> allowlist -> limits -> router -> `runtime.run` with the
 * idempotency key `channel:<channel>:<account>:<platformMessageId>`. The platform gets its HTTP
 * answer only once every message of the request is journaled or refused (a crash after the
 * answer loses nothing: recovery re-runs journaled turns); if journaling fails it gets 503 and
 * redelivers, and the key makes the redelivery answer once.
 *
 * Outbound: a turn's reply (or failure notice) goes out through the plugin's `send` from the reply
 * outbox (outbox.ts): the message is journaled with `awaitsReply`, so the store owes its reply
 * until it is sent (retried with backoff, without giving up on transient failures) or given up
 * as a dead letter, across restarts (`resumeReplies`). Each carries a reply id derived from the
 * message's id, the same on every resend, for platforms that dedupe on one.
 *
 * With a bus (`options.bus`, `[bus]` in the config) the message is published to NATS after the
 * limits instead (the answer waits for the publish), and routing, the turn and the reply happen
 * in whichever gateway consumes it: see bus.ts.
 *
 * This file composes the parts: intake.ts (inbound, to a journaled turn or a refusal),
 * replies.ts (outbound, through the outbox and the send gate), channel.ts (what they share);
 * here are the channel set and its reloads, polls and persistent connections, the bus side,
 * crash recovery's replies and the counters.
 */
// Type-only: channels describe what they need of the agent runtime by its own types, without
// depending on its code (the gateway wires the two together). The one exception is the error
// vocabulary (agent/errors.ts): channels classify the runtime's failures with its predicates.
import type { RecoveredTurn } from "../agent/index.js";
import type { InboundAddress, Route } from "../router/index.js";
import { DEFAULT_TURN_TIMEOUT_MS, type ChannelConfig } from "../config/index.js";
import { compileAllowlist } from "./allowlist.js";
import {
  NOTHING_TO_STOP_REPLY,
  STOP_COMMAND,
  STOPPED_REPLY,
  failureReply,
  newCounters,
  pluginOf,
  type Channel,
  type ChannelOutboundTarget,
  type ChannelPlugins,
  type ChannelRuntime,
  type ChannelTurnRequest,
  type ChannelTurnResult,
  type FileSupport,
  type FileTarget,
  type HttpAnswer,
  type WebhookHttpRequest,
} from "./channel.js";
import { createReplyPath, type OwedReplies } from "./replies.js";
import { createIntake } from "./intake.js";
import { cursorPath } from "./cursor.js";
import { Poller } from "./poller.js";
import { startConnections, type Connection } from "./connections.js";
import { TypingIndicators } from "./typing.js";
import { accountStream } from "../config/index.js";
import { isPermanentSendError } from "./outbox.js";
import { createChannelBus, inboundMsgId, replyMsgId, type ChannelBus } from "./bus.js";
import { createBusPresence } from "./bus-presence.js";
import { busStores } from "./bus-stores.js";
import type { Bus } from "../bus/index.js";
import { type RateWindows } from "./gate.js";
import type { PairingBook } from "./pairing.js";
import { type ChannelCounters } from "../protocol/index.js";
import { errorMessage } from "../util/index.js";
import type { Admission, ChannelLogger, IntakeRefusal, WebhookPolicy } from "./types.js";

export type { Admission, ChannelLogger };
export type {
  ChannelOutboundTarget,
  ChannelPlugins,
  ChannelRuntime,
  ChannelTurnRequest,
  ChannelTurnResult,
  FileSupport,
  FileTarget,
  HttpAnswer,
  WebhookHttpRequest,
};
export { NOTHING_TO_STOP_REPLY, STOP_COMMAND, STOPPED_REPLY };
export { failureReply };

/** Counters of one channel (the wire shape of `status`'s `channels`, protocol/types.ts). */
export type { ChannelCounters };

/**
 * A turn that crash recovery settled: the runtime's {@link RecoveredTurn} (where the message
 * came from, and `result` or `error`), with only the parts of the result channels use.
 */
export type RecoveredChannelTurn = Omit<RecoveredTurn, "result"> & { result?: ChannelTurnResult };

/** Options of {@link createChannelService}. */
export interface ChannelServiceOptions {
  channels: ChannelConfig[];
  plugins: ChannelPlugins;
  router: { resolve(address: InboundAddress): Route };
  runtime: ChannelRuntime;
  /** Poll cursors live under `<stateDir>/channels/`. */
  stateDir: string;
  logger: ChannelLogger;
  /** Waits before each retry of an agent-initiated send (`send`), ms; default 200, 800, 2000 (tests shorten it). */
  sendBackoffMs?: readonly number[];
  /** Waits before each retry of a reply, ms, the last repeating for ever; default `REPLY_BACKOFF_MS` (outbox.ts). */
  replyBackoffMs?: readonly number[];
  /**
   * The store's reply outbox (the session log). Present: channel turns are journaled with
   * `awaitsReply`, their replies settled there once sent, and `resumeReplies` sends what a
   * previous process left owed. Absent: replies are sent from memory only (lost in a crash).
   */
  replies?: OwedReplies;
  /**
   * The NATS bus (`[bus]`): admitted messages are published to it instead of run here, and
   * `bus.start()` consumes them (see bus.ts). Absent: the direct path.
   */
  /**
   * The bus side: `maxDeliver` handler attempts; `longestTurnMs` the longest turn deadline of the
   * configured agents (how long a redelivered message waits for a turn another live gateway runs;
   * default `DEFAULT_TURN_TIMEOUT_MS`).
   */
  bus?: { bus: Bus; maxDeliver: number; longestTurnMs?: number };
  /**
   * With a bus: asks the other gateways to stop the conversation's turn when it does not run
   * here (a peer's `/stop`; gateway/remote-abort.ts). Resolves with the run ids stopped.
   */
  abortElsewhere?: (target: { sessionKey: string }, by: "stop_command") => Promise<{ aborted: string[] }>;
  /** Pairing requests and approvals (`<stateDir>/pairing.json`, or NATS KV with a bus); absent = `pairing` is off on every channel. */
  pairing?: PairingBook;
  /** Per-sender rate windows (default: this process's; with a bus, shared in NATS KV). */
  rateWindows?: RateWindows;
}

/** The running service. */
export interface ChannelService {
  /** Answers one webhook request (never throws; failures become 4xx/5xx answers). */
  handleWebhook(req: WebhookHttpRequest): Promise<HttpAnswer>;
  /** What the gateway checks before reading a webhook body of `channel`; undefined when no such channel is configured. */
  webhookPolicy(channel: string): WebhookPolicy | undefined;
  /** Counts and logs a webhook request the gateway refused from its head (never throws). */
  intakeRefused(refusal: { channel: string; account: string; reason: IntakeRefusal; remoteAddress: string }): void;
  /**
   * Sends an agent-initiated message (the runtime's OutboundSender, `message_send` tool).
   * @throws Error naming the channel when it is not configured or its plugin is not loaded, or
   *   the plugin's error after the retries
   */
  send(target: ChannelOutboundTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
  /**
   * Whether `channel` can send files now and its limits (`media.send_max_bytes`, `media.send_types`),
   * or why not (not configured, plugin not loaded, no `send_file` export).
   */
  fileSupport(channel: string): FileSupport;
  /**
   * Sends a file through the channel plugin's `send_file` export (retried like `send`). The
   * caller checked the file against {@link fileSupport}'s limits (send-file.ts does).
   * @throws Error naming the channel when it cannot send files, or the plugin's error after the retries
   */
  sendFile(target: FileTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
  /**
   * Delivers the reply (or failure notice) of a turn crash recovery settled; ignores channels it
   * does not serve, and turns whose reply is owed in the outbox (`resumeReplies` sends those).
   */
  onRecovered(turn: RecoveredChannelTurn): void;
  /**
   * Sends the replies the store's outbox still owes (a previous process ended between a turn's
   * outcome and its reply): once at start-up, after the runtime's `recover` (a re-run turn's reply
   * goes out when it ends). Needs `options.replies` and `runtime.outcome`; otherwise does nothing.
   * @returns how many owed replies were found
   * @throws StoreError when the outbox cannot be read
   */
  resumeReplies(): Promise<number>;
  /** Abandons replies still being retried (they stay owed in the store for the next start). */
  closeReplies(): Promise<void>;
  /** Warnings about the configuration against the loaded plugins (channel whose plugin is not loaded, poll without a `poll` export). */
  check(): string[];
  /** Starts one poll loop per configured account of every channel with `poll`. Idempotent. */
  startPolling(): void;
  /** Ends the poll loops and waits for polls in flight (their messages are processed first). */
  stop(): Promise<void>;
  /** Waits until no reply is being delivered, at most `timeoutMs`. */
  idle(timeoutMs: number): Promise<void>;
  /** Counters by channel name, in config order. */
  counters(): Record<string, ChannelCounters>;
  /**
   * Prepares new `[channels]` settings (a config reload): compiles every allowlist now, so a bad
   * entry throws before anything changes. `commit` swaps them synchronously: the next message of
   * a channel is checked against its new allowlist and limits and sent to its (new) plugin;
   * channels added serve webhooks at once, channels removed answer 404; counters of kept
   * channels go on. What this process cannot change while running is listed in
   * `restartRequired` (poll settings once polling started, the channel set with a bus) and left
   * as it was; the rest of the change is still applied.
   * @throws AllowlistError naming the channel and entry for a malformed `allow` entry
   */
  stageChannels(configs: readonly ChannelConfig[]): { commit(): void; restartRequired: string[] };
  /** The bus side (consumers to start and stop), when `options.bus` was given. */
  readonly bus?: ChannelBus;
}

/**
 * Builds the channels service.
 * @throws AllowlistError naming the channel and entry for a malformed `allow` entry
 */
export function createChannelService(options: ChannelServiceOptions): ChannelService {
  const { plugins, router, runtime, logger } = options;
  const channels = new Map<string, Channel>();
  for (const config of options.channels) channels.set(config.name, newChannel(config));
  function newChannel(config: ChannelConfig): Channel {
    return { config, allow: compileAllowlist(config.allow, config.name), counters: newCounters() };
  }
  /** Turns whose outcome is still to come (their reply is then pushed to the outbox). */
  const deliveries = new Set<Promise<void>>();
  const replies = options.replies;
  const { callSend, callEdit, sendReply, deliver, settle, streamFor, replyIdField, ...replyPath } = createReplyPath({
    channels,
    plugins,
    logger,
    stateDir: options.stateDir,
    ...(replies !== undefined ? { replies } : {}),
    ...(options.sendBackoffMs !== undefined ? { sendBackoffMs: options.sendBackoffMs } : {}),
    ...(options.replyBackoffMs !== undefined ? { replyBackoffMs: options.replyBackoffMs } : {}),
    ...(runtime.outcome !== undefined ? { outcome: (key: string) => runtime.outcome!(key) } : {}),
  });
  const pollers: Poller[] = [];
  const connections: Connection[] = [];
  const typing = new TypingIndicators({
    logger,
    call: (name, req, signal) => {
      const ch = channels.get(name);
      if (ch === undefined) return Promise.resolve(undefined);
      return plugins.callChannel(ch.config.plugin, "typing", req, signal);
    },
  });
  let polling = false;
  const channelBus: ChannelBus | undefined =
    options.bus === undefined
      ? undefined
      : createChannelBus({
          bus: options.bus.bus,
          maxDeliver: options.bus.maxDeliver,
          heldElsewhereMaxWaitMs: (options.bus.longestTurnMs ?? DEFAULT_TURN_TIMEOUT_MS) + 60_000,
          channelNames: [...channels.keys()],
          router,
          run: (request, hooks, emit) => runtime.run(request, emit ?? (() => {}), undefined, hooks),
          // Typing and streamed replies on the gateway that runs the turn (bus-presence.ts).
          presence: (to, msgId, replyId) => busPresence(to, msgId, replyId),
          mediaObjects: () => stores.media(),
          delivered: (msgId) => void stores.streamed().then((s) => s?.forget(msgId)),
          ...(runtime.closeAbandoned !== undefined ? { closeAbandoned: (key: string, message: string) => runtime.closeAbandoned!(key, message) } : {}),
          ...(runtime.resumeParked !== undefined ? { resumeParked: (key: string) => runtime.resumeParked!(key) } : {}),
          async send(name, message) {
            const ch = channels.get(name);
            if (ch === undefined) throw new Error(`unknown channel "${name}"`);
            if (pluginInfo(ch) === undefined) throw new Error(`channel "${name}": its plugin "${ch.config.plugin}" is not loaded`);
            const { editOf, ...rest } = message;
            if (editOf === undefined) await callSend(ch.config.plugin, rest);
            else await sendReply(name, rest, new AbortController().signal, editOf);
          },
          permanent: isPermanentSendError,
          count(name, what) {
            const ch = channels.get(name);
            if (ch !== undefined) ch.counters[what]++;
          },
          failureReply,
          logger,
        });

  const stores = busStores(options.bus?.bus);
  const busPresence = createBusPresence({
    streamLimits(name, account) {
      const ch = channels.get(name);
      const limits = ch !== undefined ? accountStream(ch.config.stream, account) : undefined;
      return limits !== undefined && pluginInfo(ch!)?.exports.edit === true ? limits : undefined;
    },
    startTyping(name, req) {
      const ch = channels.get(name);
      return ch !== undefined && ch.config.typing !== false && pluginInfo(ch)?.exports.typing === true ? typing.start(name, req) : undefined;
    },
    async send(name, m) {
      const out = (await callSend(channels.get(name)!.config.plugin, m)) as Record<string, unknown> | undefined;
      return typeof out?.platformMessageId === "string" && out.platformMessageId.length > 0 ? out.platformMessageId : undefined;
    },
    edit: (name, req) => callEdit(channels.get(name)!.config.plugin, req),
    store: stores.streamed,
    logger,
  });

  const pluginInfo = (ch: Channel) => pluginOf(plugins, ch);
  const intake = createIntake({
    channels,
    plugins,
    router,
    runtime,
    logger,
    replies: { deliver, settle, streamFor, replyIdField },
    owesReplies: replies !== undefined,
    typing,
    track,
    stores,
    ...(channelBus !== undefined ? { channelBus } : {}),
    ...(options.abortElsewhere !== undefined ? { abortElsewhere: options.abortElsewhere } : {}),
    ...(options.pairing !== undefined ? { pairing: options.pairing } : {}),
    ...(options.rateWindows !== undefined ? { rateWindows: options.rateWindows } : {}),
  });

  function track(p: Promise<void>): void {
    deliveries.add(p);
    void p.finally(() => deliveries.delete(p));
  }

  function onRecovered(turn: RecoveredChannelTurn): void {
    const ch = channels.get(turn.channel);
    if (ch === undefined) return; // `ws` and channels no longer configured: nobody to tell
    if (channelBus !== undefined) {
      // A retry attempt's turn carries no platform message id, so its reply id is unknown here;
      // the bus redelivers its unacknowledged message, whose handler answers from the store.
      if (turn.platformMessageId === undefined) return;
      // The same reply id as the redelivered message's consumer would publish: sent once.
      const result = turn.result;
      const error = turn.error;
      if (result !== undefined ? result.replayed || result.merged || result.text.length === 0 : error === undefined) return;
      const content = result !== undefined ? result.text : failureReply(error!.message);
      const msgId = replyMsgId(inboundMsgId(turn.channel, turn.account, turn.platformMessageId));
      channelBus
        .publishOutbound(
          {
            v: 1,
            channel: turn.channel,
            account: turn.account,
            peer: turn.peer,
            ...(turn.thread !== undefined ? { thread: turn.thread } : {}),
            content,
            replyTo: turn.platformMessageId,
            what: result !== undefined ? "reply" : "failure notice",
          },
          msgId,
        )
        .catch((err: unknown) =>
          logger.error({ channel: turn.channel, peer: turn.peer, msgId, error: errorMessage(err) }, "could not publish the reply of a recovered turn"),
        );
      return;
    }
    // Owed in the store's outbox: `resumeReplies` sends it (in the peer's order), not this report.
    if (turn.awaitsReply === true && replies !== undefined) return;
    settle(
      ch,
      { account: turn.account, peer: turn.peer, thread: turn.thread, replyTo: turn.platformMessageId },
      turn.result,
      turn.error ? { code: turn.error.code, message: turn.error.message } : undefined,
    );
  }

  function check(): string[] {
    const warnings: string[] = [];
    for (const ch of channels.values()) {
      const info = pluginInfo(ch);
      if (info === undefined) {
        warnings.push(`channel "${ch.config.name}": plugin "${ch.config.plugin}" is not loaded (webhooks answer 503 until it is)`);
      } else if (ch.config.poll !== undefined && !info.exports.poll) {
        warnings.push(`channel "${ch.config.name}": poll is configured but plugin "${ch.config.plugin}" does not export "poll"`);
      } else if (ch.config.connect !== undefined && info.exports.connect !== true) {
        warnings.push(`channel "${ch.config.name}": connect is configured but plugin "${ch.config.plugin}" does not export "connect" and "on_frame"`);
      } else if (info.signatureHeaders.length === 0) {
        warnings.push(
          `channel "${ch.config.name}": plugin "${ch.config.plugin}" declares no signature_headers, so every webhook request reaches it and counts as unsigned ([gateway.webhooks] unsigned_share)`,
        );
      }
      if (ch.config.allow.length === 0) warnings.push(`channel "${ch.config.name}": the allowlist is empty, so every message is refused`);
      if (ch.config.stream !== undefined && info !== undefined && info.exports.edit !== true) {
        warnings.push(
          `channel "${ch.config.name}": stream = "edit" is configured but plugin "${ch.config.plugin}" does not export "edit" (replies go out once, at the end)`,
        );
      }
    }
    return warnings;
  }

  function startPolling(): void {
    if (polling) return;
    polling = true;
    for (const ch of channels.values()) {
      const poll = ch.config.poll;
      if (poll === undefined) continue;
      for (const account of poll.accounts) {
        const poller = new Poller({
          channel: ch.config.name,
          account,
          intervalMs: poll.intervalMs,
          cursorFile: cursorPath(options.stateDir, ch.config.name, account),
          logger,
          ready: () => pluginInfo(ch)?.exports.poll === true,
          poll: (cursor, signal) => plugins.callChannel(ch.config.plugin, "poll", { account, cursor }, signal),
          admit: (messages) => intake.admitAll(ch, account, messages, "poll"),
        });
        pollers.push(poller);
        poller.start();
      }
    }
    connections.push(
      ...startConnections({
        channels: [...channels.values()].map((ch) => ({ ch, config: ch.config })),
        plugins,
        stateDir: options.stateDir,
        logger,
        ready: (ch) => pluginInfo(ch)?.exports.connect === true,
        pluginOf: (ch) => ch.config.plugin,
        admit: (ch, account, messages) => intake.admitAll(ch, account, messages, "connection"),
      }),
    );
  }

  function stageChannels(configs: readonly ChannelConfig[]): { commit(): void; restartRequired: string[] } {
    const restartRequired: string[] = [];
    const next = new Map<string, Channel>();
    for (const wanted of configs) {
      const old = channels.get(wanted.name);
      let config = wanted;
      // Pollers run per channel and account from start-up: they keep their settings.
      if (polling && JSON.stringify(old?.config.poll) !== JSON.stringify(wanted.poll)) {
        restartRequired.push(`channels.${wanted.name}.poll`);
        const { poll: _dropped, ...rest } = wanted;
        config = old?.config.poll !== undefined ? { ...rest, poll: old.config.poll } : rest;
      }
      // So do persistent connections.
      if (polling && JSON.stringify(old?.config.connect) !== JSON.stringify(config.connect)) {
        restartRequired.push(`channels.${wanted.name}.connect`);
        const { connect: _dropped, ...rest } = config;
        config = old?.config.connect !== undefined ? { ...rest, connect: old.config.connect } : rest;
      }
      next.set(config.name, { config, allow: compileAllowlist(config.allow, config.name), counters: old?.counters ?? newChannel(config).counters });
    }
    for (const [name, old] of channels) {
      if (next.has(name)) continue;
      if (polling && (old.config.poll !== undefined || old.config.connect !== undefined)) {
        restartRequired.push(`channels.${name}.${old.config.poll !== undefined ? "poll" : "connect"}`);
        next.set(name, old);
      }
    }
    // The bus consumers subscribe per channel at start-up: with a bus the set of channels stays.
    if (channelBus !== undefined) {
      for (const name of new Set([...channels.keys(), ...next.keys()])) {
        if (channels.has(name) === next.has(name)) continue;
        restartRequired.push(`channels.${name}`);
        if (channels.has(name)) next.set(name, channels.get(name)!);
        else next.delete(name);
      }
    }
    return {
      restartRequired,
      commit() {
        for (const [name, ch] of next) {
          const old = channels.get(name);
          // In place for kept channels: pollers and deliveries in flight hold the object.
          if (old !== undefined) {
            old.config = ch.config;
            old.allow = ch.allow;
          } else channels.set(name, ch);
        }
        for (const name of [...channels.keys()]) if (!next.has(name)) channels.delete(name);
      },
    };
  }

  return {
    stageChannels,
    handleWebhook: intake.handleWebhook,
    webhookPolicy(channel) {
      const ch = channels.get(channel);
      if (ch === undefined) return undefined;
      return { maxBodyBytes: ch.config.maxBodyBytes, accounts: ch.config.accounts, signatureHeaders: pluginInfo(ch)?.signatureHeaders };
    },
    intakeRefused: intake.intakeRefused,
    send: replyPath.send,
    fileSupport: replyPath.fileSupport,
    sendFile: replyPath.sendFile,
    onRecovered,
    resumeReplies: replyPath.resumeReplies,
    closeReplies: replyPath.close,
    check,
    startPolling,
    async stop() {
      typing.stopAll();
      await Promise.all([...pollers.map((p) => p.stop()), ...connections.map((c) => c.stop())]);
    },
    async idle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (deliveries.size > 0 && Date.now() < deadline) {
        await Promise.race([Promise.allSettled([...deliveries]), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
      }
      await replyPath.idle(Math.max(0, deadline - Date.now()));
    },
    counters: () => Object.fromEntries([...channels.values()].map((c) => [c.config.name, { ...c.counters }])),
    ...(channelBus !== undefined ? { bus: channelBus } : {}),
  };
}
