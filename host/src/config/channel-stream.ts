/**
 * `[channels.<name>]` progressive replies (issue 18): `stream = "edit"` sends the reply's first
 * message as soon as some text has streamed and edits it as the text grows, at most once per
 * `stream_interval_ms`, the final edit carrying the whole text (channels/stream-edit.ts). An
 * account may override the mode (`[channels.<name>.per_account.<account>] stream`). The zod
 * fields are spread into the channel's schema (schema.ts); {@link toChannelStream} turns the
 * parsed file shape into the host's.
 */
import * as z from "zod";

/**
 * Default pause between two edits of one reply, ms: Telegram's Bot FAQ asks for no more than
 * about one message per second in one chat (https://core.telegram.org/bots/faq); Discord's
 * per-route buckets (a few requests a second) and Slack's Tier 3 `chat.update` (50+ a minute:
 * set 1200) are honoured by the plugins' `retryAfterMs` as well.
 */
export const DEFAULT_STREAM_INTERVAL_MS = 1000;

// Functions, not schemas: called inside the config file's schema (z.lazy, schema.ts), so that they
// are built at its first parse, not when the host bundle is evaluated (issue 13, start-up).
const mode = () => z.enum(["off", "edit"], { error: 'must be "off" or "edit"' });

/** The setting an account may override (spread into `per_account`'s table, channel-groups.ts). */
export const streamOverridable = () => ({ stream: mode().optional() });

/** Fields of `[channels.<name>]` added by this module (spread into the channel's strictObject). */
export const channelStreamFields = () => ({
  stream: mode().optional(),
  /** Least time between two edits of one reply, ms (250 to 60 000). */
  stream_interval_ms: z.number().int().min(250).max(60_000).optional(),
});

/** `[channels.<name>]` progressive-reply settings as the host uses them. */
export interface ChannelStream {
  /** The channel's mode (`off` = one message at the end of the turn). */
  mode: "off" | "edit";
  /** Least time between two edits of one reply, ms. */
  intervalMs: number;
  /** Mode overrides by account. */
  perAccount: Record<string, "off" | "edit">;
}

type FileStream = {
  stream?: "off" | "edit";
  stream_interval_ms?: number;
  per_account?: Record<string, { stream?: "off" | "edit" }>;
};

/** The host's {@link ChannelStream} of one parsed `[channels.<name>]` table; undefined when no account streams. */
export function toChannelStream(c: FileStream): ChannelStream | undefined {
  const perAccount: Record<string, "off" | "edit"> = {};
  for (const [account, o] of Object.entries(c.per_account ?? {})) if (o.stream !== undefined) perAccount[account] = o.stream;
  const mode = c.stream ?? "off";
  if (mode === "off" && !Object.values(perAccount).includes("edit")) return undefined;
  return { mode, intervalMs: c.stream_interval_ms ?? DEFAULT_STREAM_INTERVAL_MS, perAccount };
}

/** Whether `account` streams its replies by editing, and how often it may edit (ms); undefined = off. */
export function accountStream(s: ChannelStream | undefined, account: string): { intervalMs: number } | undefined {
  if (s === undefined) return undefined;
  return (s.perAccount[account] ?? s.mode) === "edit" ? { intervalMs: s.intervalMs } : undefined;
}
