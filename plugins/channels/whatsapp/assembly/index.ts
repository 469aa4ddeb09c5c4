// whatsapp: a channel plugin for the WhatsApp Cloud API (Meta Graph API).
//
// Inbound (`parse`), per Meta's webhook documentation:
// - GET verification handshake: `hub.mode=subscribe`, `hub.verify_token` (compared with the
//   secret WHATSAPP_VERIFY_TOKEN by the host, constant-time) and `hub.challenge` -> 200 with the
//   challenge as the body; anything else -> 403.
// - POST notifications must carry `x-hub-signature-256: sha256=<hex HMAC-SHA256 of the raw body>`
//   keyed with the app secret (WHATSAPP_APP_SECRET, checked by the host) -> else 401.
// - `entry[].changes[].value.messages[]` become messages: peer = `from` (the user's WhatsApp id,
//   a phone number), account = `metadata.phone_number_id` (the business number that received
//   it, which is also what sending needs), peer kind direct, content = text body, caption,
//   button or list reply title; media (image, video, audio, document, sticker) become
//   attachments with the media id and MIME type. Reactions, system and unsupported messages
//   are acknowledged and produce nothing; `statuses` (delivery receipts) produce nothing.
//
// Outbound (`send`): POST <base_url>/<api_version>/<phone_number_id>/messages with the access
// token injected by the host, JSON {messaging_product: "whatsapp", to, type: "text",
// text: {body}, context?: {message_id}}. The account is the phone_number_id (config
// `phone_number_id` when it is not one). Text over 4096 characters is split into several
// messages; the receipt is the first message's id.
//
// Files (`send_file`), per Meta's Cloud API media reference: the bytes are uploaded first with
// `POST <base_url>/<api_version>/<phone_number_id>/media` as multipart/form-data (fields
// `messaging_product=whatsapp`, `type=<MIME>` and `file`) -> `{id}`; then a message of type
// `image` (image/jpeg, image/png) with `image: {id, caption?}`, or `document` (any other type)
// with `document: {id, caption?, filename}`, goes to the messages endpoint as for text. The
// receipt is that message's wamid. Captions are cut to 1,024 characters.

import {
  Attachment,
  hmacVerifyResult,
  hostConfigGet,
  httpRequest,
  InboundMessage,
  isAsciiDigits,
  channelDone,
  PEER_DIRECT,
  parseJson,
  ParseReply,
  queryParam,
  readOutboundMessage,
  readWebhookRequest,
  secretEqualsResult,
  setError,
  splitText,
  stringField,
  toJson,
  truncate,
  Value,
  WebhookRequest,
  writeSendReceipt,
  channelError,
  channelPermanentError,
  Multipart,
  readOutboundFile,
} from "@exoclaw/plugin-sdk/assembly";

const DEFAULT_BASE_URL = "https://graph.facebook.com";
const DEFAULT_API_VERSION = "v21.0";
// Cloud API limit of text.body.
const MAX_TEXT_CHARS: i32 = 4096;
// Longest phone_number_id or WhatsApp id (a phone number in digits) accepted.
const MAX_ID_DIGITS: i32 = 32;
const MEDIA_TYPES: string[] = ["image", "video", "audio", "document", "sticker"];
// Message types that are not something to answer.
const IGNORED_TYPES: string[] = ["reaction", "system", "unsupported", "ephemeral", "request_welcome"];

function handshake(req: WebhookRequest): ParseReply | null {
  const mode = queryParam(req.query, "hub.mode");
  const token = queryParam(req.query, "hub.verify_token");
  const challenge = queryParam(req.query, "hub.challenge");
  if (mode == null || mode != "subscribe" || token == null || challenge == null) {
    return new ParseReply(403, "expected hub.mode=subscribe, hub.verify_token and hub.challenge");
  }
  const r = secretEqualsResult("WHATSAPP_VERIFY_TOKEN", token);
  if (!r.ok) {
    setError("cannot check hub.verify_token: " + r.error);
    return null;
  }
  if (!r.value.isBool() || !r.value.boolValue) return new ParseReply(403, "hub.verify_token does not match");
  return new ParseReply(200, challenge);
}

function attachmentOf(type: string, media: Value): Attachment {
  return new Attachment(type == "document" ? "file" : type)
    .withRef(stringField(media, "id"))
    .withMime(stringField(media, "mime_type"))
    .withName(stringField(media, "filename"));
}

/** The normalized message, or null for message types that need no answer. */
function messageOf(m: Value, phoneNumberId: string | null): InboundMessage | null {
  const from = stringField(m, "from");
  const id = stringField(m, "id");
  if (from == null || id == null || from.length == 0 || id.length == 0) return null;
  const t = stringField(m, "type");
  const type = t != null ? t : "text";
  if (IGNORED_TYPES.includes(type)) return null;

  const msg = new InboundMessage(from, "", id).withAccount(phoneNumberId).withPeerKind(PEER_DIRECT).withSender(from);
  let content: string | null = null;
  if (type == "text") {
    content = stringField(m.get("text"), "body");
  } else if (MEDIA_TYPES.includes(type)) {
    const media = m.get(type);
    if (media != null && media.isMap()) {
      msg.attachments.push(attachmentOf(type, media));
      content = stringField(media, "caption");
    }
  } else if (type == "button") {
    content = stringField(m.get("button"), "text");
  } else if (type == "interactive") {
    const it = m.get("interactive");
    content = stringField(it != null ? it.get("button_reply") : null, "title");
    if (content == null) content = stringField(it != null ? it.get("list_reply") : null, "title");
  } else if (type == "location") {
    const loc = m.get("location");
    if (loc != null && loc.isMap()) {
      const lat = loc.get("latitude");
      const lon = loc.get("longitude");
      const name = stringField(loc, "name");
      const address = stringField(loc, "address");
      let s = "[location";
      if (lat != null && lon != null) s += " " + toJson(lat) + "," + toJson(lon);
      if (name != null) s += " " + name;
      if (address != null) s += " (" + address + ")";
      content = s + "]";
    }
  }
  // A type this plugin does not know still reaches the agent, so nothing vanishes unseen.
  if (content != null) msg.content = content;
  else if (msg.attachments.length == 0) msg.content = "[" + type + " message]";
  return msg;
}

function handleParse(req: WebhookRequest): ParseReply | null {
  if (req.method == "GET") return handshake(req);
  if (req.method != "POST") return new ParseReply(405, "WhatsApp webhooks use GET (verification) and POST (notifications)");
  const sig = req.header("x-hub-signature-256");
  if (sig == null || !sig.startsWith("sha256=")) return new ParseReply(401, "missing x-hub-signature-256: sha256=<hex>");
  const r = hmacVerifyResult("sha256", "WHATSAPP_APP_SECRET", req.body, sig.substring(7));
  if (!r.ok) {
    setError("cannot verify the WhatsApp signature: " + r.error);
    return null;
  }
  if (!r.value.isBool() || !r.value.boolValue) return new ParseReply(401, "x-hub-signature-256 does not match");

  const payload = parseJson(String.UTF8.decode(req.body.buffer));
  if (payload == null || !payload.isMap()) return new ParseReply(400, "expected a JSON webhook notification");
  const result = new ParseReply(200);
  const entries = payload.get("entry");
  if (entries == null || !entries.isArray()) return result;
  for (let i = 0; i < entries.length; i++) {
    const changes = entries.at(i).get("changes");
    if (changes == null || !changes.isArray()) continue;
    for (let j = 0; j < changes.length; j++) {
      const change = changes.at(j);
      const field = stringField(change, "field");
      if (field != null && field != "messages") continue;
      const value = change.get("value");
      if (value == null || !value.isMap()) continue;
      const phoneNumberId = stringField(value.get("metadata"), "phone_number_id");
      const messages = value.get("messages");
      if (messages == null || !messages.isArray()) continue;
      for (let k = 0; k < messages.length; k++) {
        const m = messages.at(k);
        if (!m.isMap()) continue;
        const msg = messageOf(m, phoneNumberId);
        if (msg != null) result.messages.push(msg);
      }
    }
  }
  return result;
}

/** Export `parse`: a WhatsApp Cloud API webhook request (GET handshake or POST notification) -> `{response, messages}` (see the header comment). 0 = ok, 1 = failed with the reason set. */
export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return channelDone(1);
  const r = handleParse(req);
  if (r == null) return channelDone(1);
  r.write();
  return channelDone(0);
}

function configValue(key: string): string | null {
  const r = hostConfigGet(key);
  if (!r.ok) return null;
  const s = r.string();
  if (s == null) return null;
  const t = s.trim();
  return t.length > 0 ? t : null;
}

/** Sends one text message; returns its wamid ("" when the answer has none), or null after setError. */
function post(url: string, to: string, text: string, replyTo: string | null): string | null {
  const body = Value.map()
    .set("messaging_product", Value.str("whatsapp"))
    .set("recipient_type", Value.str("individual"))
    .set("to", Value.str(to))
    .set("type", Value.str("text"))
    .set("text", Value.map().set("preview_url", Value.bool(false)).set("body", Value.str(text)));
  if (replyTo != null) body.set("context", Value.map().set("message_id", Value.str(replyTo)));
  return postMessage(url, body);
}

/** The Graph error of an answer (`{error: {message, code}}`), or null when it succeeded. */
function graphFailure(status: i32, text: string, answer: Value | null): string | null {
  const err = answer != null ? answer.get("error") : null;
  if (status >= 200 && status < 300 && err == null) return null;
  let detail = truncate(text, 200);
  if (err != null && err.isMap()) {
    const message = stringField(err, "message");
    const code = err.get("code");
    if (message != null) detail = message + (code != null && code.isNumber() ? " (code " + toJson(code) + ")" : "");
  }
  return "HTTP " + status.toString() + "): " + detail;
}

/** Last HTTP status of a failed Graph call (for send_file's permanent/transient choice). */
let lastStatus: i32 = 0;
/** Its error text. */
let lastFailure: string = "";

/** Posts one message body (JSON) to the messages endpoint; returns its wamid ("" when none), or null after setError. */
function postMessage(url: string, body: Value): string | null {
  const headers = new Map<string, string>();
  headers.set("authorization", "Bearer {{secret:WHATSAPP_TOKEN}}");
  headers.set("content-type", "application/json");
  const r = httpRequest("POST", url, headers, Uint8Array.wrap(String.UTF8.encode(toJson(body))));
  lastStatus = 0;
  if (!r.ok) {
    setError("cannot reach the WhatsApp Cloud API at " + url + ": " + r.error);
    return null;
  }
  const answer = parseJson(r.text());
  const failure = graphFailure(r.status, r.text(), answer);
  if (failure != null) {
    lastStatus = r.status;
    lastFailure = "WhatsApp Cloud API send failed (" + failure;
    setError(lastFailure);
    return null;
  }
  const msgs = answer != null ? answer.get("messages") : null;
  if (msgs != null && msgs.isArray() && msgs.length > 0) {
    const id = stringField(msgs.at(0), "id");
    if (id != null) return id;
  }
  return "";
}

/** Export `send`: `{account, peer, thread?, content, replyTo?}` -> `{platformMessageId}` through the Graph API messages endpoint. 0 = ok, 1 = failed with the reason set. */
export function send(): i32 {
  const msg = readOutboundMessage();
  if (msg == null) return channelDone(1);
  let phoneNumberId: string | null = isAsciiDigits(msg.account, MAX_ID_DIGITS) ? msg.account : configValue("phone_number_id");
  if (phoneNumberId == null || !isAsciiDigits(phoneNumberId, MAX_ID_DIGITS)) {
    setError(
      "cannot send to WhatsApp: account '" + truncate(msg.account, 64) +
        "' is not a phone_number_id (digits) and no config value phone_number_id is granted to plugin 'whatsapp'",
    );
    return channelDone(1);
  }
  const to = msg.peer.startsWith("+") ? msg.peer.substring(1) : msg.peer;
  if (!isAsciiDigits(to, MAX_ID_DIGITS)) {
    setError("cannot send to WhatsApp: peer '" + truncate(msg.peer, 64) + "' is not a WhatsApp id (phone number digits)");
    return channelDone(1);
  }
  if (msg.content.length == 0) {
    setError("cannot send to WhatsApp: the message is empty");
    return channelDone(1);
  }
  const b = configValue("base_url");
  let base = b != null ? b : DEFAULT_BASE_URL;
  while (base.endsWith("/")) base = base.substring(0, base.length - 1);
  const v = configValue("api_version");
  const version = v != null ? v : DEFAULT_API_VERSION;
  const url = base + "/" + version + "/" + phoneNumberId + "/messages";
  const parts = splitText(msg.content, MAX_TEXT_CHARS);
  let first: string | null = null;
  for (let i = 0; i < parts.length; i++) {
    // Only the first part quotes the message being answered.
    const id = post(url, to, parts[i], i == 0 ? msg.replyTo : null);
    if (id == null) return channelDone(1);
    if (first == null) first = id;
  }
  writeSendReceipt(first != null && first.length > 0 ? first : null);
  return channelDone(0);
}

/** Longest caption of a media message, characters (Cloud API messages reference). */
const MAX_CAPTION_CHARS: i32 = 1024;

/** The Graph base URL with the API version, e.g. "https://graph.facebook.com/v21.0". */
function graphBase(): string {
  const b = configValue("base_url");
  let base = b != null ? b : DEFAULT_BASE_URL;
  while (base.endsWith("/")) base = base.substring(0, base.length - 1);
  const v = configValue("api_version");
  return base + "/" + (v != null ? v : DEFAULT_API_VERSION);
}

/** Ends a failed Graph call: 4xx other than 429 is permanent (the same request fails again), the rest transient. */
function failed(message: string, status: i32): i32 {
  return channelDone(status >= 400 && status < 500 && status != 429 ? channelPermanentError(message) : channelError(message));
}

/**
 * Export `send_file`: `{account, peer, thread?, file: {data, mime, name, caption?}}` ->
 * `{platformMessageId}`: uploads the bytes (`POST /<phone_number_id>/media`, multipart), then
 * sends an `image` (JPEG/PNG) or `document` message by the media id (see the header comment).
 */
export function send_file(): i32 {
  const out = readOutboundFile();
  if (out == null) return 1;
  const phoneNumberId: string | null = isAsciiDigits(out.account, MAX_ID_DIGITS) ? out.account : configValue("phone_number_id");
  if (phoneNumberId == null || !isAsciiDigits(phoneNumberId, MAX_ID_DIGITS)) {
    return channelDone(channelPermanentError("cannot send a file to WhatsApp: account '" + truncate(out.account, 64) + "' is not a phone_number_id and no config value phone_number_id is granted"));
  }
  const to = out.peer.startsWith("+") ? out.peer.substring(1) : out.peer;
  if (!isAsciiDigits(to, MAX_ID_DIGITS)) return channelDone(channelPermanentError("cannot send a file to WhatsApp: peer '" + truncate(out.peer, 64) + "' is not a WhatsApp id"));
  const f = out.file;
  const base = graphBase() + "/" + phoneNumberId;
  // 1. Upload (media reference: messaging_product, type, file).
  const form = new Multipart();
  form.field("messaging_product", "whatsapp");
  form.field("type", f.mime);
  form.file("file", f.name, f.mime, f.data);
  const body = form.finish();
  const headers = form.headers();
  headers.set("authorization", "Bearer {{secret:WHATSAPP_TOKEN}}");
  const up = httpRequest("POST", base + "/media", headers, body);
  if (!up.ok) return channelDone(channelError("cannot reach the WhatsApp Cloud API at " + base + "/media: " + up.error));
  const answer = parseJson(up.text());
  const failure = graphFailure(up.status, up.text(), answer);
  if (failure != null) return failed("WhatsApp Cloud API media upload failed (" + failure, up.status);
  const mediaId = answer != null ? stringField(answer, "id") : null;
  if (mediaId == null || mediaId.length == 0) return channelDone(channelError("WhatsApp Cloud API media upload answered without an id"));
  // 2. The message referring to it.
  const kind = f.mime == "image/jpeg" || f.mime == "image/png" ? "image" : "document";
  const media = Value.map().set("id", Value.str(mediaId));
  const caption = f.caption;
  if (caption != null && caption.length > 0) media.set("caption", Value.str(caption.length > MAX_CAPTION_CHARS ? caption.substring(0, MAX_CAPTION_CHARS) : caption));
  if (kind == "document") media.set("filename", Value.str(f.name));
  const msg = Value.map()
    .set("messaging_product", Value.str("whatsapp"))
    .set("recipient_type", Value.str("individual"))
    .set("to", Value.str(to))
    .set("type", Value.str(kind))
    .set(kind, media);
  const id = postMessage(base + "/messages", msg);
  if (id == null) return lastStatus >= 400 && lastStatus < 500 && lastStatus != 429 ? channelDone(channelPermanentError(lastFailure)) : channelDone(1);
  writeSendReceipt(id.length > 0 ? id : null);
  return channelDone(0);
}
