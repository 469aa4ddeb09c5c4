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
 */
// Type-only: channels describe what they need of the agent runtime by its own types, without
// depending on its code (the gateway wires the two together). The one exception is the error
// vocabulary (agent/errors.ts): channels classify the runtime's failures with its predicates.
import type { RecoveredTurn, RunHooks, TurnRequest, TurnResult, OutboundTarget } from "../agent/index.js";
import type { InboundAddress, Route } from "../router/index.js";
import { DEFAULT_SEND_MAX_BYTES, DEFAULT_SEND_TYPES, DEFAULT_TURN_TIMEOUT_MS, type ChannelConfig } from "../config/index.js";
import type { SessionEventOf } from "../store/index.js";
import type { ChannelExport, ChannelPluginInfo, PluginHost } from "../plugins/index.js";
import { compileAllowlist, type Allowlist } from "./allowlist.js";
import { cursorPath } from "./cursor.js";
import { checkParseResult, limitViolation, normalizeInbound, turnContent } from "./messages.js";
import { Poller } from "./poller.js";
import { startConnections, type Connection } from "./connections.js";
import { TypingIndicators } from "./typing.js";
import { sendFinal, StreamingReply } from "./stream-edit.js";
import { StreamedReplies, streamStatePath } from "./stream-state.js";
import { accountStream } from "../config/index.js";
import { SEND_BACKOFF_MS, withRetry } from "./retry.js";
import { isPermanentSendError, ReplyOutbox, type OutboxMessage, type ReplyKind } from "./outbox.js";
import { DEFAULT_SEND_SLOTS, SendGate } from "./send-gate.js";
import { createChannelBus, inboundMsgId, inboundPayload, replyMsgId, type ChannelBus } from "./bus.js";
import { createBusPresence } from "./bus-presence.js";
import { packImages } from "./bus-media.js";
import { busStores } from "./bus-stores.js";
import type { Bus } from "../bus/index.js";
import { ChannelGate, type RateWindows } from "./gate.js";
import { isGroup } from "./groups.js";
import { fetchImages, type ChannelFetch } from "./media.js";
import type { PairingBook } from "./pairing.js";
import { processSecrets } from "../log/index.js";
import { failureReason, isInterrupted, isReplay, isTransientRefusal } from "../agent/index.js";
import { isPluginBusy } from "../plugins/index.js";
import { toErrorObject, type ChannelCounters } from "../protocol/index.js";
import { errorMessage } from "../util/index.js";
import type {
  Admission,
  ChannelLogger,
  EditRequest,
  EditResult,
  InboundMessage,
  IntakeRefusal,
  OutboundFileMessage,
  OutboundMessage,
  SendReceipt,
  WebhookPolicy,
  WebhookRequest,
  WebhookResponse,
} from "./types.js";

export type { Admission, ChannelLogger };

/**
 * An inbound HTTP request for `/webhook/<channel>[/<account>][<path>]`, names already decoded and
 * checked: the plugin's {@link WebhookRequest} plus where it came from.
 */
export interface WebhookHttpRequest extends WebhookRequest {
  /** The client's IP address (for logs; platforms are authenticated by the plugin's signature check). */
  remoteAddress: string;
}

/** An HTTP answer: status, headers, body (bytes or UTF-8 text). */
export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/** Counters of one channel (the wire shape of `status`'s `channels`, protocol/types.ts). */
export type { ChannelCounters };

/** The channel plugin calls the service needs (PluginHost implements them). */
export interface ChannelPlugins {
  channelPlugins(): ChannelPluginInfo[];
  callChannel(plugin: string, fn: ChannelExport, input: unknown, signal?: AbortSignal): Promise<unknown>;
  /** Persistent-connection exports with their effects (PluginHost.callConnection); absent: `connect` channels never start. */
  callConnection?: PluginHost["callConnection"];
  /** Downloads an attachment under the plugin's `http` grant (media.ts); absent = images stay placeholders. */
  fetchAsChannel?: ChannelFetch;
}

/**
 * A turn request as channels make it: the runtime's {@link TurnRequest} with the message's
 * origin (`channel`, `account`, `peer`) and `idempotencyKey` always set, and no `runId`.
 */
export type ChannelTurnRequest = Pick<
  TurnRequest,
  "agentId" | "sessionKey" | "content" | "thread" | "platformMessageId" | "awaitsReply" | "sender" | "images"
> &
  Required<Pick<TurnRequest, "channel" | "account" | "peer" | "idempotencyKey">>;

/**
 * The parts of a {@link TurnResult} channels use. `replayed`: the answer to a repeated
 * idempotency key, whose reply was already sent; `merged`: folded into a later turn (queue mode
 * `collect`), whose own message gets the reply. Neither is sent.
 */
export type ChannelTurnResult = Pick<TurnResult, "text" | "runId" | "replayed" | "merged">;

/** The runtime API channels use (AgentRuntime implements it; see host/src/agent). */
export interface ChannelRuntime {
  /**
   * Runs (or queues) a turn. `hooks.onAccepted` fires once the message is journaled; a
   * rejection before it means the message was not journaled.
   */
  run(request: ChannelTurnRequest, emit: (ev: unknown) => void, signal: AbortSignal | undefined, hooks: RunHooks): Promise<ChannelTurnResult>;
  /**
   * Closes a turn a dead process left open under `idempotencyKey` (the runtime's
   * `closeAbandoned`); optional, used on the bus path only.
   */
  closeAbandoned?(idempotencyKey: string, message: string): Promise<boolean>;
  /** Resumes a turn a dead process left parked on an approval (the runtime's `resumeParked`); optional, bus path only. */
  resumeParked?(idempotencyKey: string): Promise<{ result: Promise<ChannelTurnResult> } | { heldElsewhere: string } | undefined>;
  /**
   * The outcome of the turn holding `idempotencyKey`, waiting for it when it runs here (the
   * runtime's `outcome`); used by `resumeReplies`. Throws like it: InterruptedTurnError,
   * ReplayedTurnError (a stored failure), RpcError, StoreError.
   */
  outcome?(idempotencyKey: string): Promise<ChannelTurnResult>;
  /**
   * Stops the turn running in a session (the runtime's `abort`), for a peer's `/stop`; returns
   * the run ids stopped (empty: nothing ran). Absent: `/stop` is an ordinary message.
   */
  abort?(target: { sessionKey: string }, by: "stop_command"): string[];
}

/** The command a channel peer sends to stop its running turn (the whole message, case and surrounding blanks ignored). */
export const STOP_COMMAND = "/stop";
/** What the peer gets back for {@link STOP_COMMAND}: a turn was stopped. */
export const STOPPED_REPLY = "Stopped.";
/** What the peer gets back for {@link STOP_COMMAND} when no turn of its conversation was running. */
export const NOTHING_TO_STOP_REPLY = "Nothing to stop.";

/**
 * A turn that crash recovery settled: the runtime's {@link RecoveredTurn} (where the message
 * came from, and `result` or `error`), with only the parts of the result channels use.
 */
export type RecoveredChannelTurn = Omit<RecoveredTurn, "result"> & { result?: ChannelTurnResult };

/** A message sent on an agent's own initiative (the runtime's {@link OutboundTarget}). */
export type ChannelOutboundTarget = OutboundTarget;

/** Where a file goes and the file (the `send_file` export's input). */
export type FileTarget = OutboundFileMessage & { channel: string };

/** {@link ChannelService.fileSupport}'s answer. */
export type FileSupport = { ok: true; maxBytes: number; types: readonly string[] } | { ok: false; reason: string };

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
  replies?: { pendingReplies(): Promise<SessionEventOf<"message_received">[]>; settleReplies(keys: readonly string[]): Promise<void> };
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

/** A configured channel with its compiled allowlist and counters. */
interface Channel {
  config: ChannelConfig;
  allow: Allowlist;
  counters: ChannelCounters;
}

const JSON_HEADERS = { "content-type": "application/json" };

function jsonAnswer(status: number, error: string): HttpAnswer {
  return { status, headers: { ...JSON_HEADERS }, body: JSON.stringify({ error }) };
}

/**
 * A turn's failure as the reply path needs it, classified once by the agent's predicates
 * (agent/errors.ts), never by class name, code or text: its message, whether it replays a
 * stored failure (a redelivery; the first turn's entry owns the notice), whether a newer message
 * replaced the turn (that one answers). `code` is for the log.
 */
interface TurnFailure {
  message: string;
  code?: unknown;
  replayed?: boolean;
  interrupted?: boolean;
  /** The peer stopped the turn (`/stop`) or a client did (`chat.abort`): no failure notice (the `/stop` got its answer). */
  stopped?: boolean;
}

/** {@link TurnFailure} of a rejection of the runtime. */
function turnFailure(err: unknown): TurnFailure {
  return {
    message: errorMessage(err),
    code: (err as { code?: unknown } | undefined)?.code,
    replayed: isReplay(err),
    interrupted: isInterrupted(err),
    stopped: failureReason(err) === "stopped",
  };
}

/** Headers a plugin may not set: the host frames the HTTP answer itself. */
const HOP_HEADERS = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "date"]);

/** The failure notice a peer gets when its message could not be answered (no stack, one line, bounded). */
export function failureReply(message: string): string {
  // Known secret values never reach a peer, whatever produced the message.
  const line = processSecrets.scrub(message.split("\n")[0]!).slice(0, 300);
  return `Sorry, your message could not be answered: ${line}`;
}

/**
 * Builds the channels service.
 * @throws AllowlistError naming the channel and entry for a malformed `allow` entry
 */
export function createChannelService(options: ChannelServiceOptions): ChannelService {
  const { plugins, router, runtime, logger } = options;
  const backoff = options.sendBackoffMs ?? SEND_BACKOFF_MS;
  const channels = new Map<string, Channel>();
  for (const config of options.channels) channels.set(config.name, newChannel(config));
  function newChannel(config: ChannelConfig): Channel {
    return {
      config,
      allow: compileAllowlist(config.allow, config.name),
      counters: {
        received: 0,
        accepted: 0,
        refused: 0,
        malformed: 0,
        answered: 0,
        sendFailures: 0,
        sendRetries: 0,
        badSignature: 0,
        missingSignature: 0,
        unknownAccount: 0,
        throttled: 0,
        overloaded: 0,
      },
    };
  }
  /** Turns whose outcome is still to come (their reply is then pushed to the outbox). */
  const deliveries = new Set<Promise<void>>();
  const replies = options.replies;
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
  const gate = new ChannelGate({
    ...(options.pairing !== undefined ? { pairing: options.pairing } : {}),
    ...(options.rateWindows !== undefined ? { limiter: options.rateWindows } : {}),
  });
  /** Idempotency keys of refused messages, so a redelivery is not refused (and answered) twice. Bounded. */
  const refusedKeys = new Set<string>();
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

  const pluginInfo = (ch: Channel): ChannelPluginInfo | undefined => plugins.channelPlugins().find((p) => p.name === ch.config.plugin);

  function track(p: Promise<void>): void {
    deliveries.add(p);
    void p.finally(() => deliveries.delete(p));
  }

  function rememberRefused(key: string): boolean {
    if (refusedKeys.has(key)) return false;
    refusedKeys.add(key);
    if (refusedKeys.size > 4096) refusedKeys.delete(refusedKeys.values().next().value!);
    return true;
  }

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
    if (stopped.length === 0 && options.abortElsewhere !== undefined) {
      stopped = (await options.abortElsewhere({ sessionKey }, "stop_command")).aborted;
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
      ...(replies !== undefined ? { awaitsReply: true } : {}),
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
    const stream = streamFor(ch, to, replies !== undefined ? key : undefined);
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
    const owedKey = replies !== undefined ? key : undefined;
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

  async function resumeReplies(): Promise<number> {
    if (replies === undefined || runtime.outcome === undefined) return 0;
    const outcomeOf = runtime.outcome.bind(runtime);
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
          admit: (messages) => admitAll(ch, account, messages, "poll"),
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
        admit: (ch, account, messages) => admitAll(ch, account, messages, "connection"),
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
    handleWebhook: async (req) => {
      try {
        return await handleWebhook(req);
      } catch (err) {
        logger.error({ channel: req.channel, error: errorMessage(err) }, "webhook handling failed");
        return jsonAnswer(500, "internal error");
      }
    },
    webhookPolicy(channel) {
      const ch = channels.get(channel);
      if (ch === undefined) return undefined;
      return { maxBodyBytes: ch.config.maxBodyBytes, accounts: ch.config.accounts, signatureHeaders: pluginInfo(ch)?.signatureHeaders };
    },
    intakeRefused,
    send,
    fileSupport,
    sendFile,
    onRecovered,
    resumeReplies,
    closeReplies: () => outbox.close(),
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
      await outbox.idle(Math.max(0, deadline - Date.now()));
    },
    counters: () => Object.fromEntries([...channels.values()].map((c) => [c.config.name, { ...c.counters }])),
    ...(channelBus !== undefined ? { bus: channelBus } : {}),
  };
}
