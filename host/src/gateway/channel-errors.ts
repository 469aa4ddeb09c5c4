/**
 * Per channel and account: how many warnings and errors the gateway logged about it, and the
 * last one (time, level, message), for `channels.list` (the Control UI's Channels page).
 *
 * Read from the log as written (the log tail's line hook, log/tail.ts) rather than counted at
 * each failure site: every warn/error line carrying a `channel` field is one (a refused or
 * failed send, a turn that failed, a malformed plugin answer, a bad signature, a poll error,
 * ...), whichever module wrote it, and the text is the log's, after its key and value redaction
 * (so no secret the log would not hold). Lines below the configured log level are not written,
 * so not seen either. Only warn-and-above lines are parsed; bounded to {@link MAX_KEYS} keys.
 */
import type { LogTail, TailLine } from "../log/index.js";

/** What `channels.list` shows per account (`""`: lines that name no account). */
export interface ChannelAccountHealth {
  account: string;
  /** Warn lines about this channel and account since the gateway started. */
  warnings: number;
  /** Error and fatal lines. */
  errors: number;
  /** The newest warn-or-worse line. */
  last: { at: number; level: "warn" | "error" | "fatal"; message: string } | null;
}

const MAX_KEYS = 1000;
const MESSAGE_CHARS = 300;
const WARN = 40;

/** Counts by `channel` -> `account`. */
export class ChannelErrors {
  private readonly byChannel = new Map<string, Map<string, ChannelAccountHealth>>();
  private keys = 0;

  /** Starts reading `tail`'s lines; returns the stop. */
  attach(tail: Pick<LogTail, "onLine">): () => void {
    return tail.onLine((l) => this.see(l));
  }

  /** Takes one kept log line into account (ignored below warn, or without a `channel` field). */
  see(l: TailLine): void {
    if (l.level < WARN || !l.line.includes('"channel":"')) return;
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(l.line) as Record<string, unknown>;
    } catch {
      return;
    }
    if (typeof o.channel !== "string") return;
    const account = typeof o.account === "string" ? o.account : "";
    let accounts = this.byChannel.get(o.channel);
    if (accounts === undefined) {
      if (this.keys >= MAX_KEYS) return;
      this.byChannel.set(o.channel, (accounts = new Map()));
    }
    let h = accounts.get(account);
    if (h === undefined) {
      if (this.keys >= MAX_KEYS) return;
      this.keys++;
      accounts.set(account, (h = { account, warnings: 0, errors: 0, last: null }));
    }
    if (l.level >= 50) h.errors++;
    else h.warnings++;
    const detail = o.error ?? o.reason;
    const message = `${String(o.msg ?? "")}${detail !== undefined ? `: ${typeof detail === "string" ? detail : JSON.stringify(detail)}` : ""}`;
    h.last = {
      at: typeof o.time === "number" ? o.time : Date.now(),
      level: l.level >= 60 ? "fatal" : l.level >= 50 ? "error" : "warn",
      message: message.slice(0, MESSAGE_CHARS),
    };
  }

  /** A channel's accounts with something logged, `""` (no account named) first, then by name. */
  of(channel: string): ChannelAccountHealth[] {
    return [...(this.byChannel.get(channel)?.values() ?? [])]
      .map((h) => ({ ...h, last: h.last && { ...h.last } }))
      .sort((a, b) => a.account.localeCompare(b.account));
  }
}
