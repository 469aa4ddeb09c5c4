/**
 * Shape checks of what channel plugins return (they are untrusted: a plugin bug must cost one
 * message, never the host), and the per-channel message limits.
 */
import type { Attachment, InboundMessage, PeerKind, PollResult, WebhookResponse } from "./types.js";

/** Longest id (peer, guild, team, thread, account, platform message id) accepted, characters. */
export const MAX_ID_CHARS = 512;

/** Longest sender display name kept, characters (longer names are cut). */
export const MAX_SENDER_NAME_CHARS = 128;

const PEER_KINDS: readonly PeerKind[] = ["direct", "group", "channel"];

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

/** An optional id field: absent/nil -> undefined; a non-empty string up to MAX_ID_CHARS; else the reason. */
function optionalId(m: Record<string, unknown>, field: string): string | undefined | { error: string } {
  const v = m[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return { error: `field '${field}' is not a string` };
  if (v.length === 0) return undefined;
  if (v.length > MAX_ID_CHARS) return { error: `field '${field}' is longer than ${MAX_ID_CHARS} characters` };
  return v;
}

function requiredId(m: Record<string, unknown>, field: string): string | { error: string } {
  const v = optionalId(m, field);
  if (v === undefined) return { error: `field '${field}' is missing or empty` };
  return v;
}

function checkAttachment(a: unknown, i: number): Attachment | string {
  if (!isMap(a)) return `attachments[${i}] is not a map`;
  if (typeof a.kind !== "string" || a.kind.length === 0) return `attachments[${i}].kind is not a non-empty string`;
  const out: Attachment = { kind: a.kind };
  for (const f of ["ref", "name", "mime"] as const) {
    const v = a[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== "string") return `attachments[${i}].${f} is not a string`;
    out[f] = v;
  }
  if (a.size !== undefined && a.size !== null) {
    if (typeof a.size !== "number" || !Number.isFinite(a.size) || a.size < 0) return `attachments[${i}].size is not a non-negative number`;
    out.size = a.size;
  }
  if (a.fetch !== undefined && a.fetch !== null) {
    const f = a.fetch;
    if (!isMap(f)) return `attachments[${i}].fetch is not a map`;
    if (typeof f.url !== "string" || !/^https?:\/\//i.test(f.url) || f.url.length > 8192)
      return `attachments[${i}].fetch.url is not an http(s) URL (up to 8192 characters)`;
    out.fetch = { url: f.url };
    if (f.headers !== undefined && f.headers !== null) {
      if (!isMap(f.headers)) return `attachments[${i}].fetch.headers is not a map`;
      const h: Record<string, string> = {};
      for (const [k, v] of Object.entries(f.headers)) {
        if (typeof v !== "string" || !/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k) || /[\r\n\0]/.test(v))
          return `attachments[${i}].fetch.headers.${k} is not a valid header`;
        h[k.toLowerCase()] = v;
      }
      out.fetch.headers = h;
    }
  }
  return out;
}

/**
 * Checks one message from a plugin (channels/types.ts, InboundMessage) and fills defaults:
 * `account` = `defaultAccount`, `peerKind` = `direct`, `attachments` = `[]` when nil.
 * @returns the normalized message, or why it is malformed
 */
export function normalizeInbound(value: unknown, defaultAccount: string): InboundMessage | string {
  if (!isMap(value)) return "message is not a map";
  const peer = requiredId(value, "peer");
  if (typeof peer !== "string") return peer.error;
  const id = requiredId(value, "platformMessageId");
  if (typeof id !== "string") return id.error;
  if (typeof value.content !== "string") return "field 'content' is not a string";
  const account = optionalId(value, "account");
  if (isErr(account)) return account.error;
  let peerKind: PeerKind = "direct";
  if (value.peerKind !== undefined && value.peerKind !== null) {
    if (!PEER_KINDS.includes(value.peerKind as PeerKind)) return `field 'peerKind' is not one of ${PEER_KINDS.join(", ")}`;
    peerKind = value.peerKind as PeerKind;
  }
  const msg: InboundMessage = { account: account ?? defaultAccount, peer, peerKind, content: value.content, attachments: [], platformMessageId: id };
  for (const f of ["sender", "guild", "team", "thread"] as const) {
    const v = optionalId(value, f);
    if (isErr(v)) return v.error;
    if (v !== undefined) msg[f] = v;
  }
  if (value.senderName !== undefined && value.senderName !== null) {
    if (typeof value.senderName !== "string") return "field 'senderName' is not a string";
    // A display name is the sender's own choice: bounded, one line, no control characters.
    const name = value.senderName
      .replace(/[\u0000-\u001f\u007f]+/g, " ")
      .trim()
      .slice(0, MAX_SENDER_NAME_CHARS);
    if (name.length > 0) msg.senderName = name;
  }
  for (const f of ["mentionsBot", "replyToBot"] as const) {
    const v = value[f];
    if (v === undefined || v === null) continue;
    if (typeof v !== "boolean") return `field '${f}' is not a boolean`;
    if (v) msg[f] = true;
  }
  if (value.attachments !== undefined && value.attachments !== null) {
    if (!Array.isArray(value.attachments)) return "field 'attachments' is not an array";
    for (let i = 0; i < value.attachments.length; i++) {
      const a = checkAttachment(value.attachments[i], i);
      if (typeof a === "string") return a;
      msg.attachments.push(a);
    }
  }
  return msg;
}

function isErr(v: unknown): v is { error: string } {
  return isMap(v) && typeof v.error === "string";
}

/** Checks a plugin's `response` (WebhookResponse). @returns it (body as bytes or string), or why it is malformed */
export function checkResponse(value: unknown): WebhookResponse | string {
  if (!isMap(value)) return "'response' is not a map";
  const { status, headers, body } = value;
  if (typeof status !== "number" || !Number.isInteger(status) || status < 200 || status > 599) return "'response.status' is not an HTTP status (200-599)";
  const out: WebhookResponse = { status };
  if (headers !== undefined && headers !== null) {
    if (!isMap(headers)) return "'response.headers' is not a map";
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (typeof v !== "string") return `'response.headers.${k}' is not a string`;
      if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(k) || /[\r\n\0]/.test(v)) return `'response.headers.${k}' is not a valid header`;
      h[k.toLowerCase()] = v;
    }
    out.headers = h;
  }
  if (body !== undefined && body !== null) {
    if (typeof body !== "string" && !(body instanceof Uint8Array)) return "'response.body' is neither bytes nor a string";
    out.body = body;
  }
  return out;
}

/** A checked `parse` output: the response and the raw messages (each checked on its own). */
export interface CheckedParse {
  response: WebhookResponse;
  messages: unknown[];
}

/** Checks a `parse` output's envelope (ParseResult); messages are checked one by one later. */
export function checkParseResult(value: unknown): CheckedParse | string {
  if (!isMap(value)) return "output is not a map";
  const response = checkResponse(value.response);
  if (typeof response === "string") return response;
  const messages = value.messages ?? [];
  if (!Array.isArray(messages)) return "'messages' is not an array";
  return { response, messages };
}

/** Checks a `poll` output's envelope (PollResult). */
export function checkPollResult(value: unknown): { messages: unknown[]; cursor?: string } | string {
  if (!isMap(value)) return "output is not a map";
  const messages = value.messages ?? [];
  if (!Array.isArray(messages)) return "'messages' is not an array";
  const out: { messages: unknown[]; cursor?: PollResult["cursor"] } = { messages };
  if (value.cursor !== undefined && value.cursor !== null) {
    if (typeof value.cursor !== "string") return "'cursor' is not a string";
    if (value.cursor.length > 4096) return "'cursor' is longer than 4096 characters";
    out.cursor = value.cursor;
  }
  return out;
}

/** Limits of one channel (`[channels.<name>]`). */
export interface MessageLimits {
  /** Bytes of UTF-8 content. */
  maxMessageBytes: number;
  maxAttachments: number;
}

/**
 * The reply to a message over the channel's limits, or null when it is within them. The reply
 * names the limit so the sender knows what to change.
 */
export function limitViolation(msg: InboundMessage, limits: MessageLimits): string | null {
  const bytes = Buffer.byteLength(msg.content, "utf8");
  if (bytes > limits.maxMessageBytes) {
    return `Your message is too long (${bytes} bytes); the limit is ${limits.maxMessageBytes} bytes. It was not passed on.`;
  }
  if (msg.attachments.length > limits.maxAttachments) {
    return `Your message has ${msg.attachments.length} attachments; the limit is ${limits.maxAttachments}. It was not passed on.`;
  }
  return null;
}

/**
 * The text an agent sees for a message: its content, plus one line listing its attachments
 * (metadata only: the files stay on the platform).
 */
export function turnContent(msg: InboundMessage): string {
  if (msg.attachments.length === 0) return msg.content;
  const parts = msg.attachments.map((a) => [a.kind, a.name, a.mime && `(${a.mime})`, a.size !== undefined && `${a.size} bytes`].filter(Boolean).join(" "));
  return `${msg.content}${msg.content ? "\n" : ""}[attachments: ${parts.join("; ")}]`;
}
