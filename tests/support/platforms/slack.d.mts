// Types for slack.mjs, so TypeScript tests can import the fake Slack (no allowJs in tsconfig).
import type { IncomingHttpHeaders } from "node:http";

/** One HTTP request the fake received. */
export interface SlackCall {
  method: string;
  /** URL path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Raw body text. */
  body: string;
  /** Parsed JSON (or form) body, null when neither. */
  json: any;
}

/** One accepted chat.postMessage. */
export interface SlackPost {
  channel: string;
  text: string;
  thread_ts: string | undefined;
  /** The message timestamp the fake assigned (the plugin's receipt). */
  ts: string;
}

export interface DeliverOptions {
  /** Adds `x-slack-retry-num` and `x-slack-retry-reason: http_timeout`. */
  retryNum?: number;
  /** Signing timestamp, unix seconds (default now). */
  timestampSec?: number;
  /** Sign with this secret instead of the fake's (a forged request). */
  signingSecret?: string;
  /** Send this `x-slack-signature` verbatim. */
  signature?: string;
  /** Send no signature headers. */
  unsigned?: boolean;
}

/** One file shared through Slack's external upload flow. */
export interface SlackFileShared {
  file_id: string;
  title: string | undefined;
  /** getUploadURLExternal's filename. */
  filename: string;
  /** The upload POST's Content-Type and bytes. */
  type: string;
  bytes: Buffer;
  /** The upload POST's Authorization header (undefined: the pre-signed URL was used without the token). */
  uploadAuthorization: string | undefined;
  channel_id: string | undefined;
  initial_comment: string | undefined;
  thread_ts: string | undefined;
}

export interface FakeSlack {
  /** Web API base URL, e.g. "http://127.0.0.1:43123/api": the plugin's `base_url`. */
  url: string;
  port: number;
  botToken: string;
  signingSecret: string;
  calls: SlackCall[];
  posts: SlackPost[];
  /** Accepted chat.update calls, in order (`posts` shows the new text too). */
  updates: { channel: string; ts: string; text: string; at: number }[];
  /** Accepted assistant.threads.setStatus calls (the typing indicator of AI assistant threads). */
  statuses: { channel_id: string; thread_ts: string; status: string; at: number }[];
  /** The next chat.postMessage answers HTTP 200 `{ok: false, error}`. */
  failNext(error: string): void;
  /** The next call answers HTTP 429 with `Retry-After`. */
  rateLimitNext(retryAfterSec: number): void;
  /** Resolves once at least `n` posts arrived; rejects after `timeoutMs` (default 30 000). */
  waitForPosts(n: number, timeoutMs?: number): Promise<SlackPost[]>;
  /** Files shared by files.completeUploadExternal (after getUploadURLExternal and the upload), in order. */
  files: SlackFileShared[];
  /** Resolves once at least `n` files were shared; rejects after `timeoutMs` (default 30 000). */
  waitForFiles(n: number, timeoutMs?: number): Promise<SlackFileShared[]>;
  /** POSTs an Events API payload to `webhookUrl` as Slack does (JSON, signed). */
  deliver(webhookUrl: string, payload: unknown, options?: DeliverOptions): Promise<{ status: number; headers: Headers; body: string }>;
  reset(): void;
  close(): Promise<void>;
}

export interface MessageEventOptions {
  channel: string;
  text: string;
  user?: string;
  team?: string;
  channelType?: "im" | "channel" | "group" | "mpim";
  eventId?: string;
  ts?: string;
  threadTs?: string;
  botId?: string;
  subtype?: string;
  files?: Record<string, unknown>[];
}

export function signSlackRequest(
  signingSecret: string,
  body: string | Buffer,
  timestampSec?: number,
): { "x-slack-signature": string; "x-slack-request-timestamp": string };
export function slackMessageEvent(o: MessageEventOptions): {
  type: "event_callback";
  event_id: string;
  team_id: string;
  event: Record<string, unknown>;
  [key: string]: unknown;
};
export function slackUrlVerification(challenge: string): { token: string; challenge: string; type: "url_verification" };
export function startFakeSlack(options?: { botToken?: string; signingSecret?: string; channels?: string[] }): Promise<FakeSlack>;
