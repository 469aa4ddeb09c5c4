/**
 * The channels service's checks between the allowlist and the limits (issue 18): pairing of
 * strangers, mention gating in groups and per-sender rates. One {@link ChannelGate} per
 * service; the settings come from each channel's config at the time of the message, so a
 * config reload applies to the next message.
 */
import { accountGroups, type ChannelGroups } from "../config/index.js";
import { passesMentionGate, rateReply, SenderRateLimiter, senderOf, type RateDecision } from "./groups.js";
import type { SenderRate } from "../config/index.js";
import { pairingReply, type PairingBook } from "./pairing.js";
import type { InboundMessage } from "./types.js";

/** What happens to a message the allowlist let in. */
export type GateVerdict =
  | { kind: "pass" }
  /** Dropped without an answer (a group message that does not address the bot; a repeated rate refusal). */
  | { kind: "drop"; reason: "not_mentioned" | "rate_limited" }
  /** Refused with a reply (the first message over the sender's rate in a window). */
  | { kind: "refuse"; reason: "rate_limited"; reply: string };

/** Options of {@link ChannelGate}. */
export interface ChannelGateOptions {
  /** The pairing store (the state directory's file, or NATS KV with a bus); absent = pairing off whatever the config says. */
  pairing?: PairingBook;
  /** The rate windows (tests pass their own; with a bus, the windows shared in NATS KV). */
  limiter?: RateWindows;
}

/**
 * Per-sender rate windows: {@link SenderRateLimiter} (this process's) or, with a bus, the
 * windows shared by every gateway in NATS KV (channels/rate-kv.ts).
 */
export interface RateWindows {
  /** Counts one message of `key` at `nowMs` (ms since the epoch) against `rate`; see {@link SenderRateLimiter.take}. */
  take(key: string, rate: SenderRate, nowMs: number, id?: string): RateDecision | Promise<RateDecision>;
}

/** A message's channel, with its group settings (`[channels.<name>]`). */
export interface GateChannel {
  name: string;
  groups?: ChannelGroups;
}

/** Pairing, mention gating and per-sender rates for every channel of one service. */
export class ChannelGate {
  private readonly limiter: RateWindows;

  constructor(private readonly options: ChannelGateOptions = {}) {
    this.limiter = options.limiter ?? new SenderRateLimiter();
  }

  /** Whether pairing applies to this stranger: on for the account, and a direct message. */
  private pairs(ch: GateChannel, msg: InboundMessage): boolean {
    return this.options.pairing !== undefined && msg.peerKind === "direct" && accountGroups(ch.groups, msg.account!).pairing;
  }

  /** Whether a peer the allowlist refuses was approved by pairing (re-read from the state dir when it changed). */
  async paired(ch: GateChannel, msg: InboundMessage): Promise<boolean> {
    if (!this.pairs(ch, msg)) return false;
    return await this.options.pairing!.isApproved({ channel: ch.name, account: msg.account!, peer: msg.peer });
  }

  /**
   * The pairing answer to a stranger's direct message: its code (new, or a reminder at most every
   * ten minutes), or undefined when pairing is off for it or the code was sent recently.
   * @throws Error when the pairing store cannot be written (file system; NATS unreachable)
   */
  async pairingAnswer(ch: GateChannel, msg: InboundMessage): Promise<{ code: string; reply?: string } | undefined> {
    if (!this.pairs(ch, msg)) return undefined;
    const ask = await this.options.pairing!.request({
      channel: ch.name,
      account: msg.account!,
      peer: msg.peer,
      ...(msg.sender !== undefined ? { sender: msg.sender } : {}),
      ...(msg.senderName !== undefined ? { senderName: msg.senderName } : {}),
    });
    return ask.send ? { code: ask.code, reply: pairingReply(ask.code) } : { code: ask.code };
  }

  /** Mention gating, then the sender's rate (a message dropped by the gate does not count against it). */
  async check(ch: GateChannel, msg: InboundMessage, nowMs = Date.now()): Promise<GateVerdict> {
    const settings = accountGroups(ch.groups, msg.account!);
    if (settings.mentionOnly && !passesMentionGate(msg, ch.groups?.commandPrefixes ?? ["/"])) return { kind: "drop", reason: "not_mentioned" };
    if (settings.rate !== undefined) {
      const d = await this.limiter.take(`${ch.name}\u0000${msg.account}\u0000${senderOf(msg)}`, settings.rate, nowMs, msg.platformMessageId);
      if (!d.ok) return d.notify ? { kind: "refuse", reason: "rate_limited", reply: rateReply(settings.rate) } : { kind: "drop", reason: "rate_limited" };
    }
    return { kind: "pass" };
  }
}
