/**
 * Group behaviour of channels (pure logic, no I/O): mention gating (`mention_only`), the sender
 * of a message, and per-sender rate limits (`rate = { messages, per_s }`). The channels service
 * applies them after the allowlist and before the size limits (docs/channels.md, Groups).
 */
import type { SenderRate } from "../config/index.js";
import type { InboundMessage } from "./types.js";

/** Whether the message comes from a conversation with several people (peer kind `group` or `channel`). */
export function isGroup(msg: Pick<InboundMessage, "peerKind">): boolean {
  return msg.peerKind !== "direct";
}

/**
 * Whether a message passes `mention_only`: any direct message; in a group, one that mentions
 * the bot or replies to it (as its plugin reports: `mentionsBot`, `replyToBot`), or whose text
 * starts (after blanks) with one of `commandPrefixes` (`/help`).
 */
export function passesMentionGate(
  msg: Pick<InboundMessage, "peerKind" | "mentionsBot" | "replyToBot" | "content">,
  commandPrefixes: readonly string[],
): boolean {
  if (!isGroup(msg)) return true;
  if (msg.mentionsBot === true || msg.replyToBot === true) return true;
  const text = msg.content.trimStart();
  return commandPrefixes.some((p) => text.startsWith(p));
}

/** Who wrote a message: the plugin's `sender`, else the peer (a direct conversation's other side). */
export function senderOf(msg: Pick<InboundMessage, "sender" | "peer">): string {
  return msg.sender ?? msg.peer;
}

/** The reply to a message over its sender's rate; it names the limit. */
export function rateReply(rate: SenderRate): string {
  const per = rate.perS === 1 ? "second" : `${rate.perS} seconds`;
  return `You are sending messages too fast: the limit is ${rate.messages} message${rate.messages === 1 ? "" : "s"} per ${per}. This message was not passed on; try again shortly.`;
}

/** What {@link SenderRateLimiter.take} decided. */
export type RateDecision =
  | { ok: true }
  | { ok: false /** The first refusal of this window: worth a reply (later ones are dropped quietly). */; notify: boolean };

/** Senders tracked at once; past it the least recently seen is forgotten (memory stays bounded). */
export const MAX_TRACKED_SENDERS = 10_000;

/** One sender's sliding window (this process's map entry, or a NATS KV value as JSON). */
export interface RateWindow {
  /** Arrival times of the admitted messages in the window, ms, oldest first (at most `messages`). */
  times: number[];
  /** Their message ids, same order (a platform's redelivery of one is not counted again). */
  ids: (string | undefined)[];
  /** When the sender was last told it is over the limit, ms; -Infinity = never. */
  notifiedAt: number;
}

/**
 * A sliding-window log per sender key: at most `rate.messages` admitted in any `rate.perS`
 * seconds. Refused messages do not count. In memory, per gateway process (a restart forgets
 * the windows). With a bus the gateways share their windows in NATS KV instead
 * (channels/rate-kv.ts), and fall back to this one while NATS is unreachable.
 */
export class SenderRateLimiter {
  private readonly windows = new Map<string, RateWindow>();

  constructor(private readonly maxKeys = MAX_TRACKED_SENDERS) {}

  /**
   * Counts one message of `key` at `nowMs` against `rate`.
   * @param key who, e.g. `<channel>\0<account>\0<sender>`
   * @param id the message's id: a redelivery of a message admitted in the window passes without counting
   */
  take(key: string, rate: SenderRate, nowMs = Date.now(), id?: string): RateDecision {
    let w = this.windows.get(key);
    if (w === undefined) {
      w = { times: [], ids: [], notifiedAt: -Infinity };
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value!);
    } else this.windows.delete(key); // re-inserted below: the map's order is least recently seen first
    this.windows.set(key, w);
    return takeWindow(w, rate, nowMs, id);
  }

  /** Senders tracked now. */
  get size(): number {
    return this.windows.size;
  }
}

/**
 * The sliding-window step of {@link SenderRateLimiter.take} on one window, in place: drops
 * arrivals older than `rate.perS`, then admits (a redelivered `id` without counting) or refuses.
 * Pure; the shared windows in NATS KV (channels/rate-kv.ts) apply it to the stored value.
 */
export function takeWindow(w: RateWindow, rate: SenderRate, nowMs: number, id?: string): RateDecision {
  const windowMs = rate.perS * 1000;
  while (w.times.length > 0 && nowMs - w.times[0]! >= windowMs) {
    w.times.shift();
    w.ids.shift();
  }
  if (id !== undefined && w.ids.includes(id)) return { ok: true };
  if (w.times.length < rate.messages) {
    w.times.push(nowMs);
    w.ids.push(id);
    return { ok: true };
  }
  const notify = nowMs - w.notifiedAt >= windowMs;
  if (notify) w.notifiedAt = nowMs;
  return { ok: false, notify };
}
