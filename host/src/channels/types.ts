/**
 * The channel plugin contract (ABI v1), TypeScript mirror of `wit/exoclaw.wit` world `channel`.
 *
 * A channel plugin is a core Wasm module run by Extism, like a tool plugin, with manifest kind
 * `channel` (or `both`) and these exports, each `func() -> i32` reading MessagePack from the
 * Extism input and writing MessagePack to the Extism output (0 = ok; a failure goes through
 * Extism's error channel with a message):
 *
 * - `parse` (required): {@link WebhookRequest} -> {@link ParseResult}
 * - `send` (required): {@link OutboundMessage} -> {@link SendReceipt}
 * - `poll` (optional): {@link PollRequest} -> {@link PollResult}
 * - `edit` (optional, progressive replies): {@link EditRequest} -> {@link EditResult}
 *
 * The channel's name in config (`[channels.<name>]`) selects the plugin (`plugin`, default the
 * same name). All platform I/O goes through the host's `http_request` with `{{secret:NAME}}`
 * substitution; webhook signatures are checked with the host functions `hmac_verify` and
 * `secret_equals`, so the plugin never reads a secret.
 */

/** Header list as pairs, names lower-case; a header sent twice appears twice. */
export type HeaderList = [name: string, value: string][];

/**
 * Input of `parse`: one inbound HTTP request to `/webhook/<channel>[/<account>]`.
 * MessagePack map `{channel, account, method, path, query, headers, body}`; `headers` is a map
 * of lower-case name to value (repeated headers joined with `, `), `body` is bin.
 */
export interface WebhookRequest {
  channel: string;
  /** From the URL (`/webhook/<channel>/<account>`), else `default`. */
  account: string;
  /** Upper-case HTTP method (`GET` for verification handshakes, `POST` for events). */
  method: string;
  /** The path after `/webhook/<channel>[/<account>]`, usually `` (empty). */
  path: string;
  /** The raw query string without `?` (e.g. WhatsApp's `hub.mode=subscribe&...`). */
  query: string;
  headers: Record<string, string>;
  /** The raw request body, bytes (signatures are computed over these exact bytes). */
  body: Uint8Array;
}

/** What kind of conversation a peer is. */
export type PeerKind = "direct" | "group" | "channel";

/** An attachment's metadata; the content stays on the platform (fetched by tools, if at all). */
export interface Attachment {
  /** `image`, `audio`, `video`, `file`, `sticker`, ... (platform's word, lower-case). */
  kind: string;
  /** Platform file id or URL. */
  ref?: string;
  name?: string;
  mime?: string;
  /** Bytes, when the platform says. */
  size?: number;
  /**
   * Where the host may download the content (images it gives the model): a GET the host makes
   * under the plugin's `http` grant (hosts, methods), `{{secret:NAME}}` substituted host-side,
   * the body capped at the channel's `media.max_bytes`. Absent = metadata only.
   */
  fetch?: AttachmentFetch;
}

/** An attachment's download request (MessagePack `{url, headers?}`). */
export interface AttachmentFetch {
  /** http(s) URL; `{{secret:NAME}}` in its path or query is substituted by the host. */
  url: string;
  /** Request headers (lower-case names); `{{secret:NAME}}` in a value is substituted by the host. */
  headers?: Record<string, string>;
}

/**
 * One normalized inbound message, as a channel plugin produces it. MessagePack map with these
 * camelCase keys; absent optional fields may be nil.
 */
export interface InboundMessage {
  /** Overrides the request's account (e.g. a Slack `team_id`-scoped bot); default the request's. */
  account?: string;
  /** Conversation id the reply goes to (Telegram chat id, Slack channel id, WhatsApp phone). */
  peer: string;
  peerKind: PeerKind;
  /**
   * Who wrote it (platform user id). In a group the host shows it to the model as host-written
   * metadata, rate-limits per sender and passes it to tools as the call context's `sender`.
   */
  sender?: string;
  /** The author's display name as the platform reports it (data, quoted for the model). */
  senderName?: string;
  /** The message mentions this bot (`mention_only` gating). Default false. */
  mentionsBot?: boolean;
  /** The message replies to one of this bot's messages (`mention_only` gating). Default false. */
  replyToBot?: boolean;
  /** Server/guild id (Discord-like platforms). */
  guild?: string;
  /** Team/workspace id (Slack `team_id`). */
  team?: string;
  /** Thread the reply belongs in (Slack `thread_ts`, Telegram `message_thread_id`). */
  thread?: string;
  /** Text content (UTF-8). */
  content: string;
  attachments: Attachment[];
  /** The platform's id of this message: redelivery of the same id is never answered twice. */
  platformMessageId: string;
}

/** The HTTP answer the platform expects; the host sends it after the messages are journaled. */
export interface WebhookResponse {
  /** HTTP status; 401 for a bad signature (the host then ignores `messages`). */
  status: number;
  headers?: Record<string, string>;
  /** Body bytes (or a UTF-8 string); default empty. */
  body?: Uint8Array | string;
}

/** Output of `parse`: MessagePack `{response, messages}`. */
export interface ParseResult {
  response: WebhookResponse;
  /** Zero or more messages (verification handshakes and ignored events carry none). */
  messages: InboundMessage[];
}

/** Input of `send`: MessagePack `{account, peer, thread?, content, replyTo?, replyId?}`. */
export interface OutboundMessage {
  account: string;
  peer: string;
  thread?: string;
  content: string;
  /** Platform message id being answered, when there is one. */
  replyTo?: string;
  /**
   * The reply's id: one per inbound message answered (`channel:<channel>:<account>:<platform
   * message id>:reply`, or the hashed form of bus.ts's `inboundMsgId`; 1..262 printable ASCII),
   * the same on every resend of that reply (after a crash, a retry, a bus redelivery). A plugin
   * whose platform takes an idempotency key should pass it, so the platform drops a resend.
   * Absent for agent-initiated messages. Optional: plugins that ignore it keep working.
   */
  replyId?: string;
}

/**
 * A file to send: MessagePack `{data (bin), mime, name, caption?}`. The host checked it before the
 * call: `data` at most the channel's `media.send_max_bytes` (at most 2 MiB, what the default
 * 16 MiB guest memory carries while the upload is built), `mime` one of `media.send_types` (an image's type from its first bytes), `name`
 * 1..100 characters of `[A-Za-z0-9._ -]` (no path), `caption` at most 1,024 characters.
 */
export interface OutboundFile {
  data: Uint8Array;
  mime: string;
  name: string;
  caption?: string;
}

/**
 * Input of `send_file` (optional export, WIT `send-file`): MessagePack `{account, peer, thread?,
 * file}`; output a {@link SendReceipt}. A plugin without the export cannot send files (the
 * `send_file` tool says so); older plugins keep working.
 */
export interface OutboundFileMessage {
  account: string;
  peer: string;
  thread?: string;
  file: OutboundFile;
}

/** Output of `send`: MessagePack `{platformMessageId?}`. A failed send is an Extism error. */
export interface SendReceipt {
  platformMessageId?: string;
}

/** Input of `poll`: MessagePack `{account, cursor?}`; the cursor is the last `PollResult.cursor`. */
export interface PollRequest {
  account: string;
  cursor?: string;
}

/**
 * Output of `poll`: MessagePack `{messages, cursor?}`. The host persists `cursor` (under the
 * state directory) only after every message is journaled, so a crash re-polls, and the
 * platform message id dedupe answers each message once.
 */
export interface PollResult {
  messages: InboundMessage[];
  cursor?: string;
}

/**
 * Input of `typing` (optional export): MessagePack `{account, peer, thread?}`. The host calls it
 * when a turn for that conversation starts and every few seconds until the turn ends (platform
 * indicators expire: Telegram's after 5 s, Discord's after 10 s); the output is ignored and a
 * failure only logged.
 */
export interface TypingRequest {
  account: string;
  peer: string;
  thread?: string;
}

/**
 * Input of `edit` (optional export; progressive replies, `[channels.<name>] stream = "edit"`):
 * MessagePack `{account, peer, thread?, platformMessageId, content}`. The plugin replaces the
 * text of message `platformMessageId` (an id its `send` returned) with `content`, cut to what one
 * platform message holds; the rest comes back as {@link EditResult.overflow}. A message that is
 * gone or can no longer be edited is a permanent error (`permanent: ...`, the SDK's
 * `channelPermanentError`): the host then sends the text once with `send`. An edit to the text
 * the message already has succeeds (Telegram's "message is not modified" is not an error).
 */
export interface EditRequest {
  account: string;
  peer: string;
  thread?: string;
  /** The id `send` returned for the message. */
  platformMessageId: string;
  content: string;
}

/** Output of `edit`: MessagePack `{overflow?, retryAfterMs?}`. */
export interface EditResult {
  /** The part of `content` that did not fit in the edited message; the host sends it after the final edit. */
  overflow?: string;
  /** The platform asked for a pause (rate-limit headers): no edit of this conversation before this many ms. */
  retryAfterMs?: number;
}

/**
 * Input of `connect` (persistent-connection channels): MessagePack `{account, state?, attempt}`.
 * The plugin calls the host function `ws_open` (and may set a heartbeat and timers); the host
 * opens the WebSocket when the call returns.
 */
export interface ConnectRequest {
  account: string;
  /** The plugin's state as it last returned it (persisted by the host across restarts), if any. */
  state?: string;
  /** Connections attempted since the last one that stayed up (0 = the first). */
  attempt: number;
}

/** Output of `connect`: MessagePack `{state?}`; a state given replaces the persisted one. */
export interface ConnectResult {
  state?: string;
}

/**
 * What happened on the connection: `open` (handshake done), `text` / `binary` (a frame arrived,
 * `data`), `closed` (`code`, `reason`; the host reconnects afterwards with `connect`), `timer`
 * (`name` set with `timer_set` is due).
 */
export type FrameKind = "open" | "text" | "binary" | "closed" | "timer";

/**
 * Input of `on_frame` (WIT `on-frame`): MessagePack `{account, state?, kind, data?, code?,
 * reason?, name?}`; `data` is a string for text frames and bin for binary ones.
 */
export interface FrameEvent {
  account: string;
  state?: string;
  kind: FrameKind;
  data?: Uint8Array | string;
  /** Close code (`closed`). */
  code?: number;
  /** Close reason (`closed`). */
  reason?: string;
  /** Timer name (`timer`). */
  name?: string;
}

/**
 * Output of `on_frame`: MessagePack `{messages, state?}`. The host journals the messages, then
 * persists `state` (when given and changed), then delivers the next event: a crash in between
 * hands the plugin its previous state, and the platform message id answers each message once.
 */
export interface FrameResult {
  messages: InboundMessage[];
  state?: string;
}

// Host-side types of the channels service (not part of the plugin ABI above). They live here, not in
// service.ts, so poller.ts and the gateway's webhook routes use them without an import cycle.

/** Log sink (pino's Logger fits). */
export interface ChannelLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** What happened to one message on the way in. */
export type Admission =
  | { kind: "accepted" }
  | { kind: "refused" }
  /** Not journaled for a reason that may pass (store failure, session busy, shutting down): the platform should redeliver. */
  | { kind: "retry"; reason: string };

/**
 * What the host checks of a channel's webhook request before reading its body (from the
 * channel's config and its plugin's manifest).
 */
export interface WebhookPolicy {
  /** Largest body, bytes (`max_body_bytes`); a larger one gets 413. */
  maxBodyBytes: number;
  /** Accounts served (`accounts`); a URL naming another gets 404. */
  accounts: readonly string[];
  /**
   * Lower-case header names of which a request other than GET/HEAD must carry one (the plugin
   * manifest's `signatureHeaders`; empty = no check), or undefined while the plugin is not
   * loaded (503).
   */
  signatureHeaders: readonly string[] | undefined;
}

/** Why a webhook request was answered from its head alone (the status counters' names). */
export type IntakeRefusal = "unknownAccount" | "missingSignature" | "throttled" | "overloaded" | "pluginNotLoaded";
