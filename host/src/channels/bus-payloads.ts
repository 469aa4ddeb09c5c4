/**
 * The wire shapes of channel messages on the bus (MessagePack maps, version 1, docs/bus.md):
 * the inbound message a gateway publishes after its allowlist and limits, the reply it
 * publishes when the turn ends, their message ids (JetStream's duplicate window keys) and the
 * checks a consumer runs on what it reads (a malformed message is a dead letter, never a crash).
 */
import { createHash } from "node:crypto";
import type { InboundMessage } from "./types.js";
import { checkBusImages, type BusImage } from "./bus-media.js";

/**
 * An inbound channel message on the bus (MessagePack map, version 1): everything the consuming
 * gateway needs to route and run the turn and to address the reply. `content` is the turn's
 * text (attachments already described in it, see `turnContent`).
 */
export interface InboundPayload {
  v: 1;
  channel: string;
  account: string;
  peer: string;
  peerKind?: string;
  sender?: string;
  /** The sender's display name (groups). */
  senderName?: string;
  guild?: string;
  team?: string;
  thread?: string;
  content: string;
  platformMessageId: string;
  /** Attachments the message carried (their description is in `content`). */
  attachments: number;
  /** The images fetched at intake, for the model (bus-media.ts); absent = none. */
  images?: BusImage[];
  /** When the gateway received it, ms since the Unix epoch. */
  receivedAt: number;
}

/** A message to send on a channel (MessagePack map, version 1): a reply or a failure notice. */
export interface OutboundPayload {
  v: 1;
  channel: string;
  account: string;
  peer: string;
  thread?: string;
  content: string;
  /** The platform message id answered (the plugin may quote or thread on it). */
  replyTo?: string;
  /**
   * The platform id of the message the turn streamed (`stream = "edit"`, bus-presence.ts): the
   * final text is an edit of it (stream-edit.ts `sendFinal`), not a new message.
   */
  editOf?: string;
  what: "reply" | "failure notice";
}

/** Longest message id the bus accepts (validate.ts), characters. */
const MAX_MSG_ID = 256;
const PRINTABLE = /^[\x20-\x7e]*$/;

/**
 * The bus message id (and turn idempotency key) of a channel message:
 * `channel:<channel>:<account>:<platformMessageId>`, the same key as the direct path. When that
 * is not 1..256 printable ASCII (long or non-ASCII platform ids), `channel:<channel>:h:<sha-256
 * hex of account NUL platformMessageId>`, still one id per message.
 */
export function inboundMsgId(channel: string, account: string, platformMessageId: string): string {
  const plain = `channel:${channel}:${account}:${platformMessageId}`;
  if (plain.length <= MAX_MSG_ID && PRINTABLE.test(plain) && plain.trim() === plain) return plain;
  return `channel:${channel}:h:${createHash("sha256").update(`${account}\0${platformMessageId}`).digest("hex")}`;
}

/** The reply's message id: one per inbound message id, so a repeated publish is deduped. */
export function replyMsgId(msgId: string): string {
  return `${msgId}:reply`;
}

/** The payload of an admitted message. */
export function inboundPayload(channel: string, msg: InboundMessage, content: string, now = Date.now()): InboundPayload {
  const p: InboundPayload = {
    v: 1,
    channel,
    account: msg.account!,
    peer: msg.peer,
    peerKind: msg.peerKind,
    content,
    platformMessageId: msg.platformMessageId,
    attachments: msg.attachments.length,
    receivedAt: now,
  };
  for (const f of ["sender", "senderName", "guild", "team", "thread"] as const) if (msg[f] !== undefined) p[f] = msg[f];
  return p;
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
const str = (v: unknown) => typeof v === "string" && v.length > 0;
const optStr = (v: unknown) => v === undefined || v === null || typeof v === "string";

/** Checks a decoded inbound payload (other processes wrote it). @returns the payload or why it is malformed */
export function checkInboundPayload(v: unknown): InboundPayload | string {
  if (!isMap(v)) return "payload is not a map";
  if (v.v !== 1) return `unknown payload version ${JSON.stringify(v.v)}`;
  for (const f of ["channel", "account", "peer", "platformMessageId"]) if (!str(v[f])) return `field '${f}' is missing or not a string`;
  if (typeof v.content !== "string") return "field 'content' is not a string";
  for (const f of ["peerKind", "sender", "senderName", "guild", "team", "thread"]) if (!optStr(v[f])) return `field '${f}' is not a string`;
  const images = checkBusImages(v.images);
  if (typeof images === "string") return images;
  return v as unknown as InboundPayload;
}

/** Checks a decoded outbound payload. @returns the payload or why it is malformed */
export function checkOutboundPayload(v: unknown): OutboundPayload | string {
  if (!isMap(v)) return "payload is not a map";
  if (v.v !== 1) return `unknown payload version ${JSON.stringify(v.v)}`;
  for (const f of ["channel", "account", "peer"]) if (!str(v[f])) return `field '${f}' is missing or not a string`;
  if (typeof v.content !== "string") return "field 'content' is not a string";
  if (!optStr(v.thread) || !optStr(v.replyTo) || !optStr(v.editOf)) return "field 'thread', 'replyTo' or 'editOf' is not a string";
  if (v.what !== "reply" && v.what !== "failure notice") return "field 'what' is not reply or failure notice";
  return v as unknown as OutboundPayload;
}
