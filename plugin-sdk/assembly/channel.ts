// Channel plugins: the readers and writers of the channel contract (wit/exoclaw.wit, interface
// `channel-types`, world `channel`; TypeScript mirror host/src/channels/types.ts), and the two
// host functions that check webhook credentials without the plugin ever reading a secret.
//
// A channel plugin exports up to three functions, each `func() -> i32` (0 = ok, 1 = failed after
// `setError`), MessagePack in through the Extism input and out through the Extism output:
//
//   parse: WebhookRequest -> ParseResult    readWebhookRequest / writeParseResult
//   send:  OutboundMessage -> SendReceipt   readOutboundMessage / writeSendReceipt
//   poll:  PollRequest -> PollResult        readPollRequest / writePollResult   (optional)
//
// ```ts
// export function parse(): i32 {
//   const req = readWebhookRequest();
//   if (req == null) return 1;                       // the reason is already reported
//   const token = req.header("x-token");
//   if (token == null || !secretEquals("TOKEN", token)) {
//     writeParseResult(401, null, "{\"error\":\"bad token\"}", []);
//     return 0;
//   }
//   const msgs = [new InboundMessage("peer-1", req.bodyText(), "msg-1")];
//   writeParseResult(200, null, "ok", msgs);
//   return 0;
// }
// ```
//
// Like `runTool`, a channel export should end with `__collect()` under the minimal runtime
// (`channelDone(status)` does that and returns the status).

import { inputBytes, outputBytes, setError } from "./extism";
import { hmacVerifyResult, secretEqualsResult } from "./host";
import { Decoder, Encoder, Value } from "./msgpack";

// ---- host functions ----------------------------------------------------------------------------

/**
 * Whether `signatureHex` (either case) is HMAC-`algorithm` ("sha256" or "sha1") of `data` keyed
 * with the granted secret named `secret`. Computed and compared (constant time) by the host;
 * needs the `secrets` capability with that name. False when the MAC does not match, the
 * signature is not hex, or the host refused (secret not granted, unknown algorithm, data over
 * 4 MiB): `hmacVerifyResult` (in host.ts) gives the reason.
 */
export function hmacVerify(algorithm: string, secret: string, data: Uint8Array, signatureHex: string): bool {
  const r = hmacVerifyResult(algorithm, secret, data, signatureHex);
  return r.ok && r.value.isBool() && r.value.boolValue;
}

/**
 * Whether `value` (a token header, a verify token) equals the granted secret named `secret`,
 * compared in constant time by the host. False on a mismatch or when the host refused;
 * `secretEqualsResult` (in host.ts) gives the reason.
 */
export function secretEquals(secret: string, value: string): bool {
  const r = secretEqualsResult(secret, value);
  return r.ok && r.value.isBool() && r.value.boolValue;
}

// ---- small helpers -----------------------------------------------------------------------------

const HEX_DIGITS = "0123456789abcdef";

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  const parts = new Array<string>(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = <i32>bytes[i];
    parts[i] = HEX_DIGITS.charAt(b >> 4) + HEX_DIGITS.charAt(b & 15);
  }
  return parts.join("");
}

function hexNibble(c: i32): i32 {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** Hex (either case) as bytes; null when the length is odd or a character is not hex. */
export function fromHex(s: string): Uint8Array | null {
  if ((s.length & 1) != 0) return null;
  const out = new Uint8Array(s.length >> 1);
  for (let i = 0; i < out.length; i++) {
    const hi = hexNibble(s.charCodeAt(2 * i));
    const lo = hexNibble(s.charCodeAt(2 * i + 1));
    if (hi < 0 || lo < 0) return null;
    out[i] = <u8>((hi << 4) | lo);
  }
  return out;
}

/** A string's UTF-8 bytes. */
export function utf8Bytes(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/**
 * Percent-decodes a query component (`+` is a space, as in HTML forms). A malformed escape is
 * kept as written; the bytes are decoded as UTF-8.
 */
export function urlDecode(s: string): string {
  if (s.indexOf("%") < 0 && s.indexOf("+") < 0) return s;
  const src = utf8Bytes(s);
  const out = new Uint8Array(src.length);
  let n = 0;
  for (let i = 0; i < src.length; i++) {
    const c = <i32>src[i];
    if (c == 0x2b) {
      out[n++] = 0x20;
    } else if (c == 0x25 && i + 2 < src.length && hexNibble(<i32>src[i + 1]) >= 0 && hexNibble(<i32>src[i + 2]) >= 0) {
      out[n++] = <u8>((hexNibble(<i32>src[i + 1]) << 4) | hexNibble(<i32>src[i + 2]));
      i += 2;
    } else {
      out[n++] = <u8>c;
    }
  }
  return String.UTF8.decode(out.subarray(0, n).slice().buffer);
}

/**
 * The first value of parameter `name` in a raw query string (`a=1&b=x%20y`, no `?`),
 * percent-decoded; "" for `name` without `=`; null when absent.
 */
export function queryParam(query: string, name: string): string | null {
  if (query.length == 0) return null;
  const pairs = query.split("&");
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i];
    const eq = pair.indexOf("=");
    const key = urlDecode(eq < 0 ? pair : pair.substring(0, eq));
    if (key == name) return eq < 0 ? "" : urlDecode(pair.substring(eq + 1));
  }
  return null;
}

// ---- helpers for platform plugins ---------------------------------------------------------------

/**
 * Splits `text` into pieces of at most `max` UTF-16 code units (the unit platforms such as
 * Telegram, WhatsApp and Slack count their text limits in), for sending a long reply as several
 * messages. A cut prefers the last line break, then the last space, in the second half of the
 * window; failing both it cuts at `max`, one unit earlier when that would split a surrogate pair.
 * The line break or space a cut is made at is dropped; nothing else is. "" gives no pieces.
 * `max` must be at least 2.
 */
export function splitText(text: string, max: i32): string[] {
  const out = new Array<string>();
  let rest = text;
  while (rest.length > max) {
    let cut = rest.lastIndexOf("\n", max);
    if (cut < max / 2) cut = rest.lastIndexOf(" ", max);
    if (cut < max / 2) {
      cut = max;
      const c = rest.charCodeAt(cut - 1);
      if (c >= 0xd800 && c <= 0xdbff) cut--;
    }
    out.push(rest.substring(0, cut));
    rest = rest.substring(cut);
    // The break character itself is not worth a message of its own.
    if (rest.startsWith("\n") || rest.startsWith(" ")) rest = rest.substring(1);
  }
  if (rest.length > 0) out.push(rest);
  return out;
}

/** `s` cut to its first `max` UTF-16 code units followed by "..." when longer; for quoting platform answers in errors. */
export function truncate(s: string, max: i32): string {
  return s.length <= max ? s : s.substring(0, max) + "...";
}

/** Whether `s` is 1 to `maxLength` ASCII digits (platform ids such as phone numbers or unix seconds). */
export function isAsciiDigits(s: string, maxLength: i32): bool {
  if (s.length == 0 || s.length > maxLength) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** The string at `key` of map `v`; null when `v` is null or not a map, or the field is absent or not a string. */
export function stringField(v: Value | null, key: string): string | null {
  if (v == null || !v.isMap()) return null;
  const x = v.get(key);
  if (x == null || !x.isString()) return null;
  return x.strValue;
}

/** Ends an export: runs the collector (minimal runtime) and returns `status`. */
export function channelDone(status: i32): i32 {
  __collect();
  return status;
}

/** Reports `message` as the call's error (the host logs it); returns 1 for the export to return. */
export function channelError(message: string): i32 {
  setError(message);
  return 1;
}

/**
 * Reports a `send` failure that retrying will not fix (the platform refused this message as
 * invalid, e.g. HTTP 400): the error text is `permanent: <message>`, and the host gives the
 * reply up (dead letter: logged, counted in `sendFailures`) instead of retrying it. Any other
 * error is retried with backoff. Returns 1 for the export to return.
 */
export function channelPermanentError(message: string): i32 {
  return channelError("permanent: " + message);
}

function strField(map: Value, key: string): string | null {
  const v = map.get(key);
  return v != null && v.isString() ? v.strValue : null;
}

/** The Extism input decoded as a map, or null after reporting what was wrong (`what` names the export). */
function readInputMap(what: string): Value | null {
  const dec = new Decoder(inputBytes());
  const v = dec.decode();
  if (v == null) {
    setError("invalid " + what + " input: " + dec.error);
    return null;
  }
  if (!v.isMap()) {
    setError("invalid " + what + " input: expected a MessagePack map");
    return null;
  }
  return v;
}

function requireStr(map: Value, key: string, what: string): string | null {
  const s = strField(map, key);
  if (s == null) setError("invalid " + what + " input: '" + key + "' must be a string");
  return s;
}

// ---- parse -------------------------------------------------------------------------------------

/** Input of `parse`: one HTTP request to `/webhook/<channel>[/<account>]`. */
export class WebhookRequest {
  /** The channel's name in the host config. */
  channel: string = "";
  /** From the URL (`/webhook/<channel>/<account>`), else "default". */
  account: string = "default";
  /** Upper-case HTTP method. */
  method: string = "";
  /** The path after `/webhook/<channel>[/<account>]`, usually "". */
  path: string = "";
  /** The raw query string without `?`; read parameters with `queryParam`. */
  query: string = "";
  /** The raw body (signatures are computed over these exact bytes). */
  body: Uint8Array = new Uint8Array(0);
  private headerNames: Array<string> = new Array<string>();
  private headerValues: Array<string> = new Array<string>();

  /** A header's value (name case-insensitive; repeats arrive joined with ", "), null if absent. */
  header(name: string): string | null {
    const lower = name.toLowerCase();
    for (let i = 0; i < this.headerNames.length; i++) {
      if (this.headerNames[i] == lower) return this.headerValues[i];
    }
    return null;
  }

  /** The body decoded as UTF-8. */
  bodyText(): string {
    return String.UTF8.decode(this.body.buffer);
  }

  /** The query parameter `name`, percent-decoded; null if absent. */
  queryParam(name: string): string | null {
    return queryParam(this.query, name);
  }

  /** @internal Adds a header (stored lower-case). */
  addHeader(name: string, value: string): void {
    this.headerNames.push(name.toLowerCase());
    this.headerValues.push(value);
  }
}

/**
 * Reads the `parse` input `{channel, account, method, path, query, headers, body}`. On a
 * protocol fault (not MessagePack, a field of the wrong type) reports it with `setError` and
 * returns null; `parse` should then return 1.
 */
export function readWebhookRequest(): WebhookRequest | null {
  const m = readInputMap("parse");
  if (m == null) return null;
  const req = new WebhookRequest();
  const channel = requireStr(m, "channel", "parse");
  if (channel == null) return null;
  req.channel = channel;
  const account = strField(m, "account");
  if (account != null) req.account = account;
  const method = strField(m, "method");
  if (method != null) req.method = method.toUpperCase();
  const path = strField(m, "path");
  if (path != null) req.path = path;
  const query = strField(m, "query");
  if (query != null) req.query = query;
  const headers = m.get("headers");
  if (headers != null && headers.isMap()) {
    for (let i = 0; i < headers.length; i++) {
      const k = headers.keyAt(i);
      const v = headers.at(i);
      if (k.isString() && v.isString()) req.addHeader(k.strValue, v.strValue);
    }
  }
  const body = m.get("body");
  if (body != null) {
    if (body.isBin()) req.body = <Uint8Array>body.binValue;
    else if (body.isString()) req.body = utf8Bytes(body.strValue);
    else if (!body.isNil()) {
      setError("invalid parse input: 'body' must be bytes");
      return null;
    }
  }
  return req;
}

/** Peer kinds (`InboundMessage.peerKind`). */
export const PEER_DIRECT = "direct";
export const PEER_GROUP = "group";
export const PEER_CHANNEL = "channel";

/** An attachment's metadata; the content stays on the platform. */
export class Attachment {
  /** "image", "audio", "video", "file", "sticker", ... */
  kind: string;
  /** Platform file id or URL. */
  ref: string | null = null;
  name: string | null = null;
  mime: string | null = null;
  /** Bytes; -1 = unknown. */
  size: i64 = -1;
  /**
   * Where the host may download the content (an image it gives the model): an http(s) URL the
   * host fetches with GET under this plugin's `http` grant, `{{secret:NAME}}` substituted
   * host-side as for `httpRequest`; null = not fetched (metadata only).
   */
  fetchUrl: string | null = null;
  /** Headers of that GET (`{{secret:NAME}}` allowed in values), e.g. Slack's bearer token. */
  fetchHeaders: Map<string, string> = new Map<string, string>();

  constructor(kind: string) {
    this.kind = kind;
  }

  withRef(ref: string | null): Attachment { this.ref = ref; return this; }
  withName(name: string | null): Attachment { this.name = name; return this; }
  withMime(mime: string | null): Attachment { this.mime = mime; return this; }
  withSize(size: i64): Attachment { this.size = size; return this; }
  withFetchUrl(url: string | null): Attachment { this.fetchUrl = url; return this; }
  withFetchHeader(name: string, value: string): Attachment { this.fetchHeaders.set(name, value); return this; }
}

/**
 * One normalized inbound message. Built with the constructor plus the `with*` setters, e.g.
 * `new InboundMessage(chatId, text, chatId + ":" + msgId).withPeerKind(PEER_GROUP).withSender(userId)`.
 */
export class InboundMessage {
  /** Overrides the request's account; null = the request's. */
  account: string | null = null;
  /** Where the reply goes (chat id, channel id, phone number). */
  peer: string;
  /** "direct" (default), "group" or "channel". */
  peerKind: string = PEER_DIRECT;
  /** Author inside a group (platform user id). */
  sender: string | null = null;
  /** The author's display name, as the platform reports it (shown to the model as data). */
  senderName: string | null = null;
  /** The message mentions this bot (Telegram `mention` entity of its username, Slack `<@BOTID>`). */
  mentionsBot: bool = false;
  /** The message replies to one of this bot's messages. */
  replyToBot: bool = false;
  guild: string | null = null;
  team: string | null = null;
  /** Thread the reply belongs in. */
  thread: string | null = null;
  /** Text content. */
  content: string;
  attachments: Array<Attachment> = new Array<Attachment>();
  /** The platform's message id: a redelivered id is never answered twice. */
  platformMessageId: string;

  constructor(peer: string, content: string, platformMessageId: string) {
    this.peer = peer;
    this.content = content;
    this.platformMessageId = platformMessageId;
  }

  withAccount(account: string | null): InboundMessage { this.account = account; return this; }
  withPeerKind(kind: string): InboundMessage { this.peerKind = kind; return this; }
  withSender(sender: string | null): InboundMessage { this.sender = sender; return this; }
  withSenderName(name: string | null): InboundMessage { this.senderName = name; return this; }
  withMentionsBot(yes: bool): InboundMessage { this.mentionsBot = yes; return this; }
  withReplyToBot(yes: bool): InboundMessage { this.replyToBot = yes; return this; }
  withGuild(guild: string | null): InboundMessage { this.guild = guild; return this; }
  withTeam(team: string | null): InboundMessage { this.team = team; return this; }
  withThread(thread: string | null): InboundMessage { this.thread = thread; return this; }
  withAttachment(a: Attachment): InboundMessage { this.attachments.push(a); return this; }
}

function optStr(map: Value, key: string, v: string | null): void {
  if (v != null) map.set(key, Value.str(v));
}

/** `InboundMessage` as the contract's MessagePack map (absent optional fields omitted). */
export function inboundMessageValue(msg: InboundMessage): Value {
  const m = Value.map();
  optStr(m, "account", msg.account);
  m.set("peer", Value.str(msg.peer));
  m.set("peerKind", Value.str(msg.peerKind));
  optStr(m, "sender", msg.sender);
  optStr(m, "senderName", msg.senderName);
  if (msg.mentionsBot) m.set("mentionsBot", Value.bool(true));
  if (msg.replyToBot) m.set("replyToBot", Value.bool(true));
  optStr(m, "guild", msg.guild);
  optStr(m, "team", msg.team);
  optStr(m, "thread", msg.thread);
  m.set("content", Value.str(msg.content));
  const atts = Value.array();
  for (let i = 0; i < msg.attachments.length; i++) {
    const a = msg.attachments[i];
    const av = Value.map().set("kind", Value.str(a.kind));
    optStr(av, "ref", a.ref);
    optStr(av, "name", a.name);
    optStr(av, "mime", a.mime);
    if (a.size >= 0) av.set("size", Value.int(a.size));
    const url = a.fetchUrl;
    if (url != null) {
      const f = Value.map().set("url", Value.str(url));
      if (a.fetchHeaders.size > 0) {
        const h = Value.map();
        const names = a.fetchHeaders.keys();
        for (let j = 0; j < names.length; j++) h.set(names[j], Value.str(a.fetchHeaders.get(names[j])));
        f.set("headers", h);
      }
      av.set("fetch", f);
    }
    atts.push(av);
  }
  m.set("attachments", atts);
  m.set("platformMessageId", Value.str(msg.platformMessageId));
  return m;
}

function messagesValue(messages: Array<InboundMessage>): Value {
  const arr = Value.array();
  for (let i = 0; i < messages.length; i++) arr.push(inboundMessageValue(messages[i]));
  return arr;
}

function writeOutput(v: Value): void {
  const enc = new Encoder(256);
  enc.writeValue(v);
  outputBytes(enc.finish());
}

/**
 * Writes the `parse` output `{response: {status, headers?, body?}, messages}`. `body` is sent as
 * text ("" = no body). A 401 tells the host the request was not authentic: it ignores `messages`.
 */
export function writeParseResult(status: i32, headers: Map<string, string> | null, body: string, messages: Array<InboundMessage>): void {
  const resp = Value.map().set("status", Value.int(<i64>status));
  if (headers != null) {
    const h = Value.map();
    const names = headers.keys();
    for (let i = 0; i < names.length; i++) h.set(names[i], Value.str(headers.get(names[i])));
    resp.set("headers", h);
  }
  if (body.length > 0) resp.set("body", Value.str(body));
  writeOutput(Value.map().set("response", resp).set("messages", messagesValue(messages)));
}

/** `writeParseResult` with a JSON body and `content-type: application/json`. */
export function writeJsonParseResult(status: i32, json: string, messages: Array<InboundMessage>): void {
  const h = new Map<string, string>();
  h.set("content-type", "application/json");
  writeParseResult(status, h, json, messages);
}

/**
 * A `parse` answer being built: HTTP status, a text/plain body ("" for none) and the messages;
 * `write()` sets it as the output (through {@link writeTextParseResult}). For plugins that decide
 * the answer in several places, e.g. `return new ParseReply(401, "bad signature")`.
 */
export class ParseReply {
  messages: Array<InboundMessage> = new Array<InboundMessage>();
  constructor(public status: i32, public text: string = "") {}

  /** Writes `{response, messages}` as the `parse` output. */
  write(): void {
    writeTextParseResult(this.status, this.text, this.messages);
  }
}

/** `writeParseResult` with a `text/plain; charset=utf-8` body, or no body and no headers when `text` is "". */
export function writeTextParseResult(status: i32, text: string, messages: Array<InboundMessage>): void {
  let h: Map<string, string> | null = null;
  if (text.length > 0) {
    h = new Map<string, string>();
    h.set("content-type", "text/plain; charset=utf-8");
  }
  writeParseResult(status, h, text, messages);
}

// ---- send --------------------------------------------------------------------------------------

/** Input of `send`. */
export class OutboundMessage {
  account: string = "default";
  peer: string = "";
  /** Thread to reply in, null for none. */
  thread: string | null = null;
  content: string = "";
  /** The platform message id being answered, null for none. */
  replyTo: string | null = null;
  /**
   * The reply's id, the same on every resend of this reply (after a crash, a retry, a bus
   * redelivery): pass it as the platform's idempotency key where it has one. Null for
   * agent-initiated messages (and from hosts before it existed).
   */
  replyId: string | null = null;
}

/**
 * Reads the `send` input `{account, peer, thread?, content, replyTo?, replyId?}`. On a protocol fault
 * reports it with `setError` and returns null; `send` should then return 1.
 */
export function readOutboundMessage(): OutboundMessage | null {
  const m = readInputMap("send");
  if (m == null) return null;
  const out = new OutboundMessage();
  const peer = requireStr(m, "peer", "send");
  if (peer == null) return null;
  const content = requireStr(m, "content", "send");
  if (content == null) return null;
  out.peer = peer;
  out.content = content;
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.thread = strField(m, "thread");
  out.replyTo = strField(m, "replyTo");
  out.replyId = strField(m, "replyId");
  return out;
}

/** Writes the `send` output `{platformMessageId?}` (null = the platform gave no id). */
export function writeSendReceipt(platformMessageId: string | null): void {
  const m = Value.map();
  optStr(m, "platformMessageId", platformMessageId);
  writeOutput(m);
}

// ---- send_file (optional export) --------------------------------------------------------------

/** The file of a `send_file` call: bytes checked by the host (size, type) before the call. */
export class FileToSend {
  /** The file's bytes (at most the channel's `media.send_max_bytes`, at most 2 MiB). */
  data: Uint8Array = new Uint8Array(0);
  /** MIME type, e.g. "image/png", "application/pdf" (one of the channel's `media.send_types`). */
  mime: string = "application/octet-stream";
  /** File name shown to the recipient ([A-Za-z0-9._ -], 1..100 characters, no path). */
  name: string = "file";
  /** Text shown with the file, null for none. */
  caption: string | null = null;
}

/** Input of `send_file`: where to send (as for `send`) and the file. */
export class OutboundFile {
  account: string = "default";
  peer: string = "";
  /** Thread to post in, null for none. */
  thread: string | null = null;
  file: FileToSend = new FileToSend();
}

/**
 * Reads the `send_file` input `{account, peer, thread?, file: {data, mime, name, caption?}}`
 * (`data` bin). On a protocol fault reports it with `setError` and returns null; `send_file`
 * should then return 1.
 */
export function readOutboundFile(): OutboundFile | null {
  const m = readInputMap("send_file");
  if (m == null) return null;
  const out = new OutboundFile();
  const peer = requireStr(m, "peer", "send_file");
  if (peer == null) return null;
  out.peer = peer;
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.thread = strField(m, "thread");
  const f = m.get("file");
  if (f == null || !f.isMap()) {
    setError("invalid send_file input: 'file' must be a map {data, mime, name, caption?}");
    return null;
  }
  const data = f.get("data");
  if (data == null || !data.isBin()) {
    setError("invalid send_file input: 'file.data' must be bin");
    return null;
  }
  const mime = requireStr(f, "mime", "send_file");
  if (mime == null) return null;
  const name = requireStr(f, "name", "send_file");
  if (name == null) return null;
  out.file.data = <Uint8Array>data.binValue;
  out.file.mime = mime;
  out.file.name = name;
  out.file.caption = strField(f, "caption");
  return out;
}

// ---- poll --------------------------------------------------------------------------------------

/** Input of `poll`. */
export class PollRequest {
  account: string = "default";
  /** The cursor the last poll returned (persisted by the host), null on the first poll. */
  cursor: string | null = null;
}

/**
 * Reads the `poll` input `{account, cursor?}`. On a protocol fault reports it with `setError`
 * and returns null; `poll` should then return 1.
 */
export function readPollRequest(): PollRequest | null {
  const m = readInputMap("poll");
  if (m == null) return null;
  const out = new PollRequest();
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.cursor = strField(m, "cursor");
  return out;
}

/**
 * Writes the `poll` output `{messages, cursor?}`. The host persists `cursor` only after every
 * message is journaled and hands it back on the next poll (null keeps the previous one).
 */
export function writePollResult(messages: Array<InboundMessage>, cursor: string | null): void {
  const m = Value.map().set("messages", messagesValue(messages));
  optStr(m, "cursor", cursor);
  writeOutput(m);
}

// ---- persistent connections (connect + on_frame) -------------------------------------------------
//
// A channel that holds a connection (Discord Gateway, Slack Socket Mode, ...) exports both:
//
//   connect:  ConnectRequest -> ConnectResult   readConnectRequest / writeConnectResult
//             call wsOpen(url, headers) (and maybe wsHeartbeat / timerSet); the host opens the
//             socket when the call returns, and calls connect again after every close.
//   on_frame: FrameEvent -> FrameResult         readFrameEvent / writeFrameResult
//             one event at a time, in order: "open", "text" / "binary" (a frame), "timer",
//             "closed"; answer frames with wsSend, return messages and the new state.
//
// The plugin's state (a string, e.g. JSON with a session id and sequence number) comes in with
// every event and goes out with every result: the host persists it once the result's messages
// are journaled, so it survives restarts and a crash hands back the previous one.

/** Input of `connect`. */
export class ConnectRequest {
  account: string = "default";
  /** The state the plugin last returned (persisted by the host), null for none. */
  state: string | null = null;
  /** Connections attempted since the last one that stayed up (0 = the first). */
  attempt: i64 = 0;
}

/** Reads the `connect` input `{account, state?, attempt}`; null after `setError` on a protocol fault. */
export function readConnectRequest(): ConnectRequest | null {
  const m = readInputMap("connect");
  if (m == null) return null;
  const out = new ConnectRequest();
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.state = strField(m, "state");
  const attempt = m.get("attempt");
  if (attempt != null && attempt.isNumber()) out.attempt = <i64>attempt.asNumber();
  return out;
}

/** Writes the `connect` output `{state?}` (null keeps the persisted state). */
export function writeConnectResult(state: string | null): void {
  const m = Value.map();
  optStr(m, "state", state);
  writeOutput(m);
}

/** Frame event kinds (`FrameEvent.kind`). */
export const FRAME_OPEN = "open";
export const FRAME_TEXT = "text";
export const FRAME_BINARY = "binary";
export const FRAME_CLOSED = "closed";
export const FRAME_TIMER = "timer";

/** Input of `on_frame`. */
export class FrameEvent {
  account: string = "default";
  /** The state the plugin last returned, null for none. */
  state: string | null = null;
  /** "open", "text", "binary", "closed" or "timer". */
  kind: string = "";
  /** The frame: text for "text" (`text`), bytes for "binary" (`data`). */
  text: string = "";
  data: Uint8Array = new Uint8Array(0);
  /** Close code and reason ("closed"). */
  code: i32 = 0;
  reason: string = "";
  /** Timer name ("timer"). */
  name: string = "";
}

/** Reads the `on_frame` input `{account, state?, kind, data?, code?, reason?, name?}`; null after `setError` on a protocol fault. */
export function readFrameEvent(): FrameEvent | null {
  const m = readInputMap("on_frame");
  if (m == null) return null;
  const out = new FrameEvent();
  const kind = requireStr(m, "kind", "on_frame");
  if (kind == null) return null;
  out.kind = kind;
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.state = strField(m, "state");
  const data = m.get("data");
  if (data != null) {
    if (data.isString()) out.text = data.strValue;
    else if (data.isBin()) out.data = <Uint8Array>data.binValue;
  }
  const code = m.get("code");
  if (code != null && code.isNumber()) out.code = <i32>code.asNumber();
  const reason = strField(m, "reason");
  if (reason != null) out.reason = reason;
  const name = strField(m, "name");
  if (name != null) out.name = name;
  return out;
}

/** Writes the `on_frame` output `{messages, state?}` (null keeps the state). */
export function writeFrameResult(messages: Array<InboundMessage>, state: string | null): void {
  const m = Value.map().set("messages", messagesValue(messages));
  optStr(m, "state", state);
  writeOutput(m);
}

// ---- typing (optional) -----------------------------------------------------------------------------

/** Input of `typing`: the conversation a turn is answering. */
export class TypingRequest {
  account: string = "default";
  peer: string = "";
  thread: string | null = null;
}

/**
 * Reads the `typing` input `{account, peer, thread?}`; null after `setError` on a protocol fault.
 * The export shows the platform's typing indicator and writes an empty output
 * (`writeSendReceipt(null)`); the host calls it again every few seconds while the turn runs.
 */
export function readTypingRequest(): TypingRequest | null {
  const m = readInputMap("typing");
  if (m == null) return null;
  const out = new TypingRequest();
  const peer = requireStr(m, "peer", "typing");
  if (peer == null) return null;
  out.peer = peer;
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.thread = strField(m, "thread");
  return out;
}

// ---- edit (optional: progressive replies) ------------------------------------------------------------

/** Input of `edit`: replace the text of a message this plugin's `send` returned. */
export class EditRequest {
  account: string = "default";
  peer: string = "";
  thread: string | null = null;
  /** The id `send` returned for the message. */
  platformMessageId: string = "";
  /** The whole text so far; may be longer than one platform message (see {@link splitFirst}). */
  content: string = "";
}

/**
 * Reads the `edit` input `{account, peer, thread?, platformMessageId, content}`; null after
 * `setError` on a protocol fault. The export edits the message to the part of `content` that fits
 * one platform message and writes {@link writeEditResult} with the rest as `overflow`. A message
 * that is gone or can no longer be edited: `channelPermanentError` (the host sends the text anew).
 */
export function readEditRequest(): EditRequest | null {
  const m = readInputMap("edit");
  if (m == null) return null;
  const out = new EditRequest();
  const peer = requireStr(m, "peer", "edit");
  if (peer == null) return null;
  const id = requireStr(m, "platformMessageId", "edit");
  if (id == null) return null;
  const content = requireStr(m, "content", "edit");
  if (content == null) return null;
  out.peer = peer;
  out.platformMessageId = id;
  out.content = content;
  const account = strField(m, "account");
  if (account != null) out.account = account;
  out.thread = strField(m, "thread");
  return out;
}

/**
 * Writes the `edit` output `{overflow?, retryAfterMs?}`: `overflow` the text that did not fit
 * (null: all of it did), `retryAfterMs` a pause the platform asked for (negative: none).
 */
export function writeEditResult(overflow: string | null, retryAfterMs: i64): void {
  const m = Value.map();
  optStr(m, "overflow", overflow);
  if (retryAfterMs >= 0) m.set("retryAfterMs", Value.int(retryAfterMs));
  writeOutput(m);
}

/**
 * `text` as [the first piece {@link splitText} would send, the rest] — the rest is "" when all of
 * it fits in `max` UTF-16 code units. For `edit`: the message gets the first piece, the rest is
 * the overflow.
 */
export function splitFirst(text: string, max: i32): string[] {
  if (text.length <= max) return [text, ""];
  const parts = splitText(text, max);
  const first = parts.length > 0 ? parts[0] : "";
  let rest = text.substring(first.length);
  if (rest.startsWith("\n") || rest.startsWith(" ")) rest = rest.substring(1);
  return [first, rest];
}
