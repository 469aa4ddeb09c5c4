/**
 * `[channels.<name>]` settings for groups, strangers and media (issue 18): mention gating,
 * per-sender rate limits, pairing, and inbound image limits, with per-account overrides
 * (`[channels.<name>.per_account.<account>]`). The zod fields are spread into the channel's
 * schema (schema.ts); {@link toChannelGroups} turns the parsed file shape into the host's.
 */
import * as z from "zod";
import { streamOverridable } from "./channel-stream.js";

/** Largest image the host fetches for a model when `media.max_bytes` is not set, bytes (5 MiB: Anthropic's per-image limit). */
export const DEFAULT_MEDIA_MAX_BYTES = 5 * 1024 * 1024;
/** Image types given to models when `media.types` is not set (the four every supported provider accepts). */
export const DEFAULT_MEDIA_TYPES: readonly string[] = ["image/jpeg", "image/png", "image/gif", "image/webp"];
/** Largest file the `send_file` tool sends when `media.send_max_bytes` is not set, bytes (1 MiB). */
export const DEFAULT_SEND_MAX_BYTES = 1024 * 1024;
/**
 * Highest `media.send_max_bytes`, bytes (2 MiB): the file goes to the plugin in one call and out
 * in one `http_request` (whose body the sandbox caps at 4 MiB, plugins/sandbox/protocol.mjs
 * MAX_HTTP_BODY_BYTES), and the guest holds it about four times while the multipart body is built
 * and handed to the host: 2 MiB is what the default 16 MiB plugin memory was measured to carry
 * (tests/first-party/channels/telegram.test.ts; 3,000,000 bytes ran out of it).
 */
export const MAX_SEND_MAX_BYTES = 2 * 1024 * 1024;
/** File types the `send_file` tool sends when `media.send_types` is not set. */
export const DEFAULT_SEND_TYPES: readonly string[] = [
  "image/jpeg",
  "image/png",
  "image/gif",
  "image/webp",
  "application/pdf",
  "text/plain",
  "text/csv",
  "text/markdown",
  "application/json",
];
/** Command prefixes that pass `mention_only` when `command_prefixes` is not set. */
export const DEFAULT_COMMAND_PREFIXES: readonly string[] = ["/"];

// Built on the config file's first parse (z.lazy), not at module load: see schema.ts.
const rate = z.lazy(() =>
  z.strictObject({
    messages: z.number().int().min(1).max(100_000),
    per_s: z.number().min(1).max(86_400),
  }),
);

/** The settings an account may override (a function: built inside the config file's z.lazy schema). */
const overridable = () => ({
  mention_only: z.boolean().optional(),
  rate: rate.optional(),
  pairing: z.boolean().optional(),
  // Progressive replies per account (channel-stream.ts).
  ...streamOverridable(),
});

/** Fields of `[channels.<name>]` added by this module (spread into the channel's strictObject). */
export const channelGroupFields = () => ({
  ...overridable(),
  command_prefixes: z.lazy(() => z.array(z.string().min(1).max(32)).max(16)).optional(),
  media: z
    .lazy(() =>
      z.strictObject({
        max_bytes: z
          .number()
          .int()
          .min(1)
          .max(20 * 1024 * 1024)
          .optional(),
        types: z
          .array(z.string().regex(/^image\/[a-z0-9.+-]+$/, 'must be an image MIME type such as "image/png"'))
          .max(16)
          .optional(),
        send_max_bytes: z.number().int().min(1).max(MAX_SEND_MAX_BYTES).optional(),
        send_types: z
          .array(z.string().regex(/^[a-z]+\/[a-z0-9.+-]+$/, 'must be a MIME type such as "application/pdf"'))
          .max(32)
          .optional(),
      }),
    )
    .optional(),
  per_account: z
    .lazy(() => z.record(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "account names must match [A-Za-z0-9_.-]{1,64}"), z.strictObject(overridable())))
    .optional(),
});

/** A per-sender rate: at most `messages` in any `perS`-second window. */
export interface SenderRate {
  messages: number;
  /** Window, seconds. */
  perS: number;
}

/** What one account of a channel applies (the channel's settings with the account's overrides). */
export interface AccountGroupSettings {
  /** In a group (peer kind `group`/`channel`), only messages that mention the bot, reply to it or start with a command prefix reach the agent. */
  mentionOnly: boolean;
  /** Per-sender rate; absent = no limit. */
  rate?: SenderRate;
  /** A stranger's direct message gets a pairing code instead of silence (or `refusal`). */
  pairing: boolean;
}

/** `[channels.<name>]` group, pairing and media settings, as the host uses them. */
export interface ChannelGroups extends AccountGroupSettings {
  /** Prefixes that count as a command under `mentionOnly` (default `["/"]`). */
  commandPrefixes: readonly string[];
  /** Inbound images fetched for the model (`maxBytes`, `types`); files the `send_file` tool may send (`sendMaxBytes`, `sendTypes`). */
  media: { maxBytes: number; types: readonly string[]; sendMaxBytes?: number; sendTypes?: readonly string[] };
  /** Overrides by account. */
  perAccount: Record<string, Partial<AccountGroupSettings>>;
}

type RateIn = z.infer<typeof rate>;
type GroupFields = ReturnType<typeof channelGroupFields>;
type FileGroups = { [K in keyof GroupFields]?: z.infer<GroupFields[K]> };

const toRate = (r: RateIn | undefined): { rate?: SenderRate } => (r === undefined ? {} : { rate: { messages: r.messages, perS: r.per_s } });

/** The host's {@link ChannelGroups} of one parsed `[channels.<name>]` table (defaults filled in). */
export function toChannelGroups(c: FileGroups): ChannelGroups {
  const perAccount: Record<string, Partial<AccountGroupSettings>> = {};
  for (const [account, o] of Object.entries(c.per_account ?? {})) {
    perAccount[account] = {
      ...(o.mention_only !== undefined ? { mentionOnly: o.mention_only } : {}),
      ...(o.pairing !== undefined ? { pairing: o.pairing } : {}),
      ...toRate(o.rate),
    };
  }
  return {
    mentionOnly: c.mention_only ?? false,
    pairing: c.pairing ?? false,
    ...toRate(c.rate),
    commandPrefixes: c.command_prefixes ?? DEFAULT_COMMAND_PREFIXES,
    media: {
      maxBytes: c.media?.max_bytes ?? DEFAULT_MEDIA_MAX_BYTES,
      types: c.media?.types ?? DEFAULT_MEDIA_TYPES,
      sendMaxBytes: c.media?.send_max_bytes ?? DEFAULT_SEND_MAX_BYTES,
      sendTypes: c.media?.send_types ?? DEFAULT_SEND_TYPES,
    },
    perAccount,
  };
}

/** The settings `account` applies: the channel's, with that account's overrides. */
export function accountGroups(g: ChannelGroups | undefined, account: string): AccountGroupSettings {
  if (g === undefined) return { mentionOnly: false, pairing: false };
  const o = g.perAccount[account] ?? {};
  const rate = o.rate ?? g.rate;
  return { mentionOnly: o.mentionOnly ?? g.mentionOnly, pairing: o.pairing ?? g.pairing, ...(rate !== undefined ? { rate } : {}) };
}
