/**
 * What the channels service's parts share: a configured channel's live state, the plugin calls
 * they make, and how a turn's failure reads on the reply path. Internal to channels/, except
 * the types service.ts re-exports.
 */
import type { OutboundTarget, RunHooks, TurnRequest, TurnResult } from "../agent/index.js";
import type { ChannelExport, ChannelPluginInfo, PluginHost } from "../plugins/index.js";
import type { ChannelConfig } from "../config/index.js";
import { failureReason, isInterrupted, isReplay } from "../agent/index.js";
import { processSecrets } from "../log/index.js";
import type { ChannelCounters } from "../protocol/index.js";
import { errorMessage } from "../util/index.js";
import type { Allowlist } from "./allowlist.js";
import type { ChannelFetch } from "./media.js";
import type { OutboundFileMessage, WebhookRequest } from "./types.js";

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
 * The parts of a {@link TurnResult} channels use. `replayed`: the answer to a repeated
 * idempotency key, whose reply was already sent; `merged`: folded into a later turn (queue mode
 * `collect`), whose own message gets the reply. Neither is sent.
 */
export type ChannelTurnResult = Pick<TurnResult, "text" | "runId" | "replayed" | "merged">;

/** Where a file goes and the file (the `send_file` export's input). */
export type FileTarget = OutboundFileMessage & { channel: string };

/** {@link ChannelService.fileSupport}'s answer. */
export type FileSupport = { ok: true; maxBytes: number; types: readonly string[] } | { ok: false; reason: string };

/** A message sent on an agent's own initiative (the runtime's {@link OutboundTarget}). */
export type ChannelOutboundTarget = OutboundTarget;

/** A configured channel with its compiled allowlist and counters. */
export interface Channel {
  config: ChannelConfig;
  allow: Allowlist;
  counters: ChannelCounters;
}

/** A channel's counters, all zero. */
export function newCounters(): ChannelCounters {
  return {
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
  };
}

/** The loaded plugin serving `ch`, or undefined when it is not loaded (yet, or any more). */
export function pluginOf(plugins: ChannelPlugins, ch: Channel): ChannelPluginInfo | undefined {
  return plugins.channelPlugins().find((p) => p.name === ch.config.plugin);
}

/**
 * A turn's failure as the reply path needs it, classified once by the agent's predicates
 * (agent/errors.ts), never by class name, code or text: its message, whether it replays a
 * stored failure (a redelivery; the first turn's entry owns the notice), whether a newer message
 * replaced the turn (that one answers). `code` is for the log.
 */
export interface TurnFailure {
  message: string;
  code?: unknown;
  replayed?: boolean;
  interrupted?: boolean;
  /** The peer stopped the turn (`/stop`) or a client did (`chat.abort`): no failure notice (the `/stop` got its answer). */
  stopped?: boolean;
}

/** {@link TurnFailure} of a rejection of the runtime. */
export function turnFailure(err: unknown): TurnFailure {
  return {
    message: errorMessage(err),
    code: (err as { code?: unknown } | undefined)?.code,
    replayed: isReplay(err),
    interrupted: isInterrupted(err),
    stopped: failureReason(err) === "stopped",
  };
}

/** The failure notice a peer gets when its message could not be answered (no stack, one line, bounded). */
export function failureReply(message: string): string {
  // Known secret values never reach a peer, whatever produced the message.
  const line = processSecrets.scrub(message.split("\n")[0]!).slice(0, 300);
  return `Sorry, your message could not be answered: ${line}`;
}

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

/**
 * A turn request as channels make it: the runtime's {@link TurnRequest} with the message's
 * origin (`channel`, `account`, `peer`) and `idempotencyKey` always set, and no `runId`.
 */
export type ChannelTurnRequest = Pick<
  TurnRequest,
  "agentId" | "sessionKey" | "content" | "thread" | "platformMessageId" | "awaitsReply" | "sender" | "images"
> &
  Required<Pick<TurnRequest, "channel" | "account" | "peer" | "idempotencyKey">>;

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
