// Telegram channel (Telegram Bot API, https://core.telegram.org/bots/api).
//
// parse: a webhook POST carrying one `Update`. The header X-Telegram-Bot-Api-Secret-Token must
//   equal the secret TELEGRAM_SECRET_TOKEN (host-side secret_equals), else 401 and no messages.
//   `message`, `edited_message`, `channel_post` and `edited_channel_post` become one message;
//   other updates (callback queries, member changes, ...), messages from bots and messages with
//   neither text nor an attachment are acknowledged with 200 and no messages.
// typing: sendChatAction {chat_id, action: "typing", message_thread_id?} (shown for 5 s or until
//   the next message; the host renews it every 4 s while a turn runs).
// edit: editMessageText {chat_id, message_id, text} (progressive replies; Bot API
//   https://core.telegram.org/bots/api#editmessagetext). The text is cut to 4096 characters, the
//   rest returned as overflow. "message is not modified" (the same text again) is success;
//   "message to edit not found" / "message can't be edited" are permanent (the host sends anew).
//   A 429 answers with parameters.retry_after (seconds): a transient error naming the wait. The
//   Bot FAQ (https://core.telegram.org/bots/faq, "My bot is hitting limits") asks for no more
//   than about one message per second in one chat: the host throttles edits to that.
// poll: getUpdates with offset = cursor (the last update_id + 1), timeout 0; the new cursor is
//   the highest update_id + 1 (unchanged when there is nothing new).
// send: sendMessage {chat_id, text, message_thread_id?, reply_parameters?}; text over 4096
//   characters is split into several messages (at a line break or space when there is one); the
//   receipt id is "<chat_id>:<message_id>" of the first one. An empty text is refused.
// send_file: sendPhoto (JPEG, PNG, WebP: Telegram re-encodes photos, at most 10 MB) or
//   sendDocument (any other type, at most 50 MB), multipart/form-data with chat_id, the file part
//   (`photo` / `document`, "upload a new one using multipart/form-data"), caption (0-1024
//   characters) and message_thread_id (https://core.telegram.org/bots/api#sendphoto,
//   #senddocument, #sending-files). The receipt id is "<chat_id>:<message_id>".
//
// Mapping: peer = chat.id (decimal string); peerKind from chat.type (private -> direct, group and
// supergroup -> group, channel -> channel); sender = from.id (else sender_chat.id); thread =
// message_thread_id; content = text, else caption; attachments from photo (largest size),
// document, audio, video, voice, video_note, animation, sticker (kind, ref = file_id, size =
// file_size, mime = mime_type, name = file_name).
// platformMessageId = "<chat.id>:<message_id>" — stable across webhook redeliveries and getUpdates
// repeats, and the same for a message whether it came by webhook or poll. An edit is a new
// message to answer: "<chat.id>:<message_id>:edit:<edit_date>".
import {
  Attachment, channelDone, channelError, hostConfigGet, httpRequest, HttpResponse, InboundMessage, parseJson,
  PEER_CHANNEL, PEER_DIRECT, PEER_GROUP, readEditRequest, readOutboundMessage, readPollRequest, readTypingRequest, splitFirst, readWebhookRequest, secretEquals, splitText,
  stringField, toJson, utf8Bytes, Value, writeEditResult, writeJsonParseResult, writePollResult, writeSendReceipt, channelPermanentError,
  Multipart, readOutboundFile,
} from "@exoclaw/plugin-sdk/assembly";

const DEFAULT_BASE_URL = "https://api.telegram.org";
const SECRET_HEADER = "x-telegram-bot-api-secret-token";
/** Longest text of one sendMessage (Telegram counts UTF-16 code units after entity parsing). */
const MAX_TEXT = 4096;
/** getUpdates batch size (Telegram's maximum is 100). */
const POLL_LIMIT = 100;

// ---- JSON helpers ---------------------------------------------------------------------------------

/** An integer field as its decimal text (Telegram ids exceed 32 bits), null if absent. */
function intText(v: Value | null, key: string): string | null {
  if (v == null) return null;
  const f = v.get(key);
  if (f == null) return null;
  if (f.isInt()) return f.intValue.toString();
  if (f.isFloat() && Math.floor(f.floatValue) == f.floatValue && Math.abs(f.floatValue) < 9007199254740992.0) {
    return (<i64>f.floatValue).toString();
  }
  return null;
}

function intOr(v: Value | null, key: string, dflt: i64): i64 {
  if (v == null) return dflt;
  const f = v.get(key);
  return f != null && f.isNumber() ? <i64>f.asNumber() : dflt;
}

function obj(v: Value | null, key: string): Value | null {
  if (v == null) return null;
  const f = v.get(key);
  return f != null && f.isMap() ? f : null;
}

// ---- Update -> InboundMessage ---------------------------------------------------------------------

function attachment(kind: string, file: Value): Attachment {
  const a = new Attachment(kind).withRef(stringField(file, "file_id")).withName(stringField(file, "file_name")).withMime(stringField(file, "mime_type"));
  const size = intOr(file, "file_size", -1);
  if (size >= 0) a.withSize(size);
  return a;
}

const FILE_KINDS = ["document", "audio", "video", "voice", "video_note", "animation", "sticker"];
const FILE_NAMES = ["file", "audio", "video", "audio", "video", "video", "sticker"];

/**
 * The message of an Update, or null when the update carries none we answer (no chat or ids, or
 * neither text, caption nor attachment).
 */
function fromUpdate(update: Value): InboundMessage | null {
  let msg = obj(update, "message");
  let edited = false;
  if (msg == null) msg = obj(update, "channel_post");
  if (msg == null) {
    msg = obj(update, "edited_message");
    edited = msg != null;
  }
  if (msg == null) {
    msg = obj(update, "edited_channel_post");
    edited = msg != null;
  }
  if (msg == null) return null;
  const chat = obj(msg, "chat");
  const chatId = intText(chat, "id");
  const messageId = intText(msg, "message_id");
  if (chat == null || chatId == null || messageId == null) return null;
  // Bots do not see each other's messages on Telegram; one that shows up anyway (a relay, a
  // misconfigured forward) is not answered, so that two bots cannot talk in a loop.
  const from = obj(msg, "from");
  if (from != null) {
    const isBot = from.get("is_bot");
    if (isBot != null && isBot.isBool() && isBot.boolValue) return null;
  }

  let content = stringField(msg, "text");
  if (content == null) content = stringField(msg, "caption");
  const atts = new Array<Attachment>();
  const photo = msg.get("photo");
  if (photo != null && photo.isArray() && photo.length > 0) {
    // PhotoSize[] lists the sizes smallest first; the largest is the one worth fetching.
    const largest = photo.at(photo.length - 1);
    if (largest.isMap()) atts.push(attachment("image", largest).withMime("image/jpeg"));
  }
  for (let i = 0; i < FILE_KINDS.length; i++) {
    const f = obj(msg, FILE_KINDS[i]);
    if (f != null) atts.push(attachment(FILE_NAMES[i], f));
  }
  if (content == null && atts.length == 0) return null;

  let id = chatId + ":" + messageId;
  if (edited) {
    const editDate = intText(msg, "edit_date");
    id += ":edit:" + (editDate != null ? editDate : "0");
  }
  const type = stringField(chat, "type");
  let kind = PEER_DIRECT;
  if (type == "group" || type == "supergroup") kind = PEER_GROUP;
  else if (type == "channel") kind = PEER_CHANNEL;
  let sender = intText(obj(msg, "from"), "id");
  if (sender == null) sender = intText(obj(msg, "sender_chat"), "id");
  const m = new InboundMessage(chatId, content != null ? content : "", id)
    .withPeerKind(kind)
    .withSender(sender)
    .withSenderName(displayName(from != null ? from : obj(msg, "sender_chat")))
    .withThread(intText(msg, "message_thread_id"));
  if (kind != PEER_DIRECT) {
    // Mention gating: only groups need to know who the bot is (one getMe per instance).
    const me = botIdentity();
    if (me != null) {
      m.withMentionsBot(mentions(msg, me));
      const replied = obj(msg, "reply_to_message");
      const repliedFrom = intText(obj(replied, "from"), "id");
      m.withReplyToBot(repliedFrom != null && repliedFrom == me.id);
    }
  }
  for (let i = 0; i < atts.length; i++) m.withAttachment(withFetch(atts[i]));
  return m;
}

/** "First Last", else "@username", else the chat title; null when the platform gave none. */
function displayName(u: Value | null): string | null {
  if (u == null) return null;
  const first = stringField(u, "first_name");
  const last = stringField(u, "last_name");
  if (first != null) return last != null ? first + " " + last : first;
  const user = stringField(u, "username");
  if (user != null) return "@" + user;
  return stringField(u, "title");
}

/** The bot's own id and username, from getMe (cached for the instance's life). */
class BotIdentity {
  constructor(public id: string, public username: string) {}
}
let botMe: BotIdentity | null = null;

function botIdentity(): BotIdentity | null {
  if (botMe != null) return botMe;
  const r = callApi("getMe", Value.map());
  const me = r.result;
  if (me == null || !me.isMap()) return null;
  const id = intText(me, "id");
  const user = stringField(me, "username");
  if (id == null) return null;
  botMe = new BotIdentity(id, user != null ? user : "");
  return botMe;
}

/**
 * Whether the message's entities mention the bot: a `mention` entity whose text is
 * "@<bot username>" (case-insensitive), or a `text_mention` of the bot's user id (source: Bot
 * API, MessageEntity; offsets and lengths are UTF-16 code units, as AssemblyScript strings are).
 */
function mentions(msg: Value, me: BotIdentity): bool {
  let text = stringField(msg, "text");
  let entities = msg.get("entities");
  if (text == null) {
    text = stringField(msg, "caption");
    entities = msg.get("caption_entities");
  }
  if (text == null || entities == null || !entities.isArray()) return false;
  const want = "@" + me.username.toLowerCase();
  for (let i = 0; i < entities.length; i++) {
    const e = entities.at(i);
    if (!e.isMap()) continue;
    const t = stringField(e, "type");
    if (t == "mention" && me.username.length > 0) {
      const off = <i32>intOr(e, "offset", -1);
      const len = <i32>intOr(e, "length", -1);
      if (off >= 0 && len > 0 && off + len <= text.length && text.substring(off, off + len).toLowerCase() == want) return true;
    } else if (t == "text_mention") {
      const uid = intText(obj(e, "user"), "id");
      if (uid != null && uid == me.id) return true;
    }
  }
  return false;
}

/** Largest file the Bot API lets a bot download (getFile), bytes. */
const MAX_DOWNLOAD = 20 * 1024 * 1024;

/**
 * An image attachment with its download URL: getFile gives the file_path; the content is at
 * <base>/file/bot<token>/<file_path> (source: Bot API, getFile). The token is a host-side secret.
 */
function withFetch(a: Attachment): Attachment {
  if (a.kind != "image" && !(a.mime != null && a.mime!.startsWith("image/"))) return a;
  const ref = a.ref;
  if (ref == null || a.size > MAX_DOWNLOAD) return a;
  const r = callApi("getFile", Value.map().set("file_id", Value.str(ref!)));
  const path = stringField(r.result, "file_path");
  if (path == null) return a;
  return a.withFetchUrl(baseUrl() + "/file/bot{{secret:TELEGRAM_BOT_TOKEN}}/" + path);
}

function plainResult(status: i32, json: string): i32 {
  writeJsonParseResult(status, json, []);
  return channelDone(0);
}

export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return 1;
  if (req.method != "POST") return plainResult(405, "{\"error\":\"use POST\"}");
  const token = req.header(SECRET_HEADER);
  if (token == null || token.length == 0 || !secretEquals("TELEGRAM_SECRET_TOKEN", token)) {
    return plainResult(401, "{\"error\":\"bad secret token\"}");
  }
  const update = parseJson(req.bodyText());
  if (update == null || !update.isMap()) return plainResult(400, "{\"error\":\"the body is not a JSON Update object\"}");
  if (intText(update, "update_id") == null) return plainResult(400, "{\"error\":\"the Update has no integer update_id\"}");
  const m = fromUpdate(update);
  const messages = new Array<InboundMessage>();
  if (m != null) messages.push(m);
  writeJsonParseResult(200, "{\"ok\":true}", messages);
  return channelDone(0);
}

// ---- Bot API calls --------------------------------------------------------------------------------

function baseUrl(): string {
  const r = hostConfigGet("base_url");
  const v = r.string();
  if (!r.ok || v == null || v.length == 0) return DEFAULT_BASE_URL;
  return v.endsWith("/") ? v.substring(0, v.length - 1) : v;
}

/** The Bot API answer's `result`, or null after setting `error`. */
class ApiCall {
  error: string = "";
  result: Value | null = null;
  /** The HTTP status (0 when the request did not get an answer). */
  status: i32 = 0;
  /** The Bot API's error description (empty when the call succeeded or gave none). */
  description: string = "";
  /** parameters.retry_after of a 429, seconds (-1: none). */
  retryAfter: i64 = -1;
}

function callApi(method: string, params: Value): ApiCall {
  const call = new ApiCall();
  const headers = new Map<string, string>();
  headers.set("content-type", "application/json");
  const res: HttpResponse = httpRequest("POST", baseUrl() + "/bot{{secret:TELEGRAM_BOT_TOKEN}}/" + method, headers, utf8Bytes(toJson(params)));
  return apiAnswer(method, res, call);
}

/** Reads a Bot API answer `{ok, result | error_code, description}` into `call`. */
function apiAnswer(method: string, res: HttpResponse, call: ApiCall): ApiCall {
  if (res.ok) call.status = res.status;
  if (!res.ok) {
    call.error = "telegram " + method + " failed: " + res.error;
    return call;
  }
  const body = parseJson(res.text());
  if (body == null || !body.isMap()) {
    const t = res.text();
    call.error = "telegram " + method + " answered HTTP " + res.status.toString() + " without a JSON body: " + (t.length > 200 ? t.substring(0, 200) + "…" : t);
    return call;
  }
  const ok = body.get("ok");
  if (ok == null || !ok.isBool() || !ok.boolValue) {
    const desc = stringField(body, "description");
    if (desc != null) call.description = desc;
    call.retryAfter = intOr(obj(body, "parameters"), "retry_after", -1);
    call.error = "telegram " + method + " failed (HTTP " + res.status.toString() + ", error_code " + intOr(body, "error_code", 0).toString() + "): " + (desc != null ? desc : "no description");
    return call;
  }
  const result = body.get("result");
  call.result = result != null ? result : Value.nil();
  return call;
}

/** A decimal id as a JSON integer when it is one (chat ids), else the string (@channelusername). */
function idValue(s: string): Value {
  if (s.length == 0 || s.length > 18) return Value.str(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 0x30 && c <= 0x39) || (i == 0 && c == 0x2d && s.length > 1))) return Value.str(s);
  }
  return Value.int(I64.parseInt(s));
}

/** The message_id inside a platformMessageId "<chat>:<message_id>[:edit:<date>]", or null. */
function replyMessageId(platformId: string): string | null {
  const parts = platformId.split(":");
  if (parts.length < 2) return null;
  const id = parts[1];
  if (id.length == 0) return null;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  return id;
}

export function send(): i32 {
  const out = readOutboundMessage();
  if (out == null) return 1;
  if (out.content.length == 0) return channelDone(channelError("cannot send to Telegram: the message is empty"));
  const parts = splitText(out.content, MAX_TEXT);
  let first: string | null = null;
  for (let i = 0; i < parts.length; i++) {
    const params = Value.map().set("chat_id", idValue(out.peer)).set("text", Value.str(parts[i]));
    const thread = out.thread;
    if (thread != null && thread.length > 0) params.set("message_thread_id", idValue(thread));
    const replyTo = out.replyTo;
    if (i == 0 && replyTo != null) {
      const mid = replyMessageId(replyTo);
      if (mid != null) {
        // The answered message may be gone by now; the reply is worth sending anyway.
        params.set("reply_parameters", Value.map().set("message_id", idValue(mid)).set("allow_sending_without_reply", Value.bool(true)));
      }
    }
    const r = callApi("sendMessage", params);
    if (r.result == null) {
      const sent = i > 0 ? " (after " + i.toString() + " of " + parts.length.toString() + " parts were sent)" : "";
      return channelDone(channelError(r.error + sent));
    }
    if (first == null) {
      const mid = intText(r.result, "message_id");
      const chat = intText(obj(r.result, "chat"), "id");
      const chatText: string = chat != null ? chat : out.peer;
      if (mid != null) first = chatText + ":" + mid;
    }
  }
  writeSendReceipt(first);
  return channelDone(0);
}

export function poll(): i32 {
  const req = readPollRequest();
  if (req == null) return 1;
  const params = Value.map().set("timeout", Value.int(0)).set("limit", Value.int(POLL_LIMIT));
  const cursor = req.cursor;
  if (cursor != null && cursor.length > 0) params.set("offset", idValue(cursor));
  const allowed = Value.array();
  allowed.push(Value.str("message")).push(Value.str("edited_message")).push(Value.str("channel_post")).push(Value.str("edited_channel_post"));
  params.set("allowed_updates", allowed);
  const r = callApi("getUpdates", params);
  const result = r.result;
  if (result == null) return channelDone(channelError(r.error));
  if (!result.isArray()) return channelDone(channelError("telegram getUpdates: 'result' is not an array"));
  const messages = new Array<InboundMessage>();
  let next: i64 = -1;
  for (let i = 0; i < result.length; i++) {
    const u = result.at(i);
    if (!u.isMap()) continue;
    const id = intOr(u, "update_id", -1);
    if (id >= 0 && id + 1 > next) next = id + 1;
    const m = fromUpdate(u);
    if (m != null) messages.push(m);
  }
  writePollResult(messages, next >= 0 ? next.toString() : cursor);
  return channelDone(0);
}

export function typing(): i32 {
  const req = readTypingRequest();
  if (req == null) return 1;
  const params = Value.map().set("chat_id", idValue(req.peer)).set("action", Value.str("typing"));
  const thread = req.thread;
  if (thread != null && thread.length > 0) params.set("message_thread_id", idValue(thread));
  const r = callApi("sendChatAction", params);
  if (r.result == null) return channelDone(channelError(r.error));
  writeSendReceipt(null);
  return channelDone(0);
}

export function edit(): i32 {
  const req = readEditRequest();
  if (req == null) return 1;
  if (req.content.length == 0) return channelDone(channelPermanentError("cannot edit a Telegram message to an empty text"));
  const mid = replyMessageId(req.platformMessageId);
  if (mid == null) return channelDone(channelPermanentError("cannot edit Telegram message '" + req.platformMessageId + "': not a <chat>:<message_id> id"));
  const cut = splitFirst(req.content, MAX_TEXT);
  const params = Value.map().set("chat_id", idValue(req.peer)).set("message_id", idValue(mid)).set("text", Value.str(cut[0]));
  const r = callApi("editMessageText", params);
  if (r.result == null) {
    const d = r.description.toLowerCase();
    // The same text again (a resend after a crash): the message already shows it.
    if (d.indexOf("message is not modified") >= 0) {
      writeEditResult(cut[1].length > 0 ? cut[1] : null, -1);
      return channelDone(0);
    }
    if (d.indexOf("message to edit not found") >= 0 || d.indexOf("message can't be edited") >= 0) return channelDone(channelPermanentError(r.error));
    if (r.retryAfter >= 0) return channelDone(channelError(r.error + "; retry after " + (r.retryAfter * 1000).toString() + " ms"));
    return channelDone(channelError(r.error));
  }
  writeEditResult(cut[1].length > 0 ? cut[1] : null, -1);
  return channelDone(0);
}

/** Telegram's longest photo/document caption, characters (sendPhoto `caption`: 0-1024 after entity parsing). */
const MAX_CAPTION = 1024;

/** Whether a type goes as a photo (sendPhoto takes JPEG, PNG and WebP; GIFs would lose their animation). */
function isPhoto(mime: string): bool {
  return mime == "image/jpeg" || mime == "image/png" || mime == "image/webp";
}

export function send_file(): i32 {
  const out = readOutboundFile();
  if (out == null) return 1;
  const f = out.file;
  const method = isPhoto(f.mime) ? "sendPhoto" : "sendDocument";
  const form = new Multipart();
  form.field("chat_id", out.peer);
  const thread = out.thread;
  if (thread != null && thread.length > 0) form.field("message_thread_id", thread);
  const caption = f.caption;
  if (caption != null && caption.length > 0) form.field("caption", caption.length > MAX_CAPTION ? caption.substring(0, MAX_CAPTION) : caption);
  form.file(method == "sendPhoto" ? "photo" : "document", f.name, f.mime, f.data);
  const body = form.finish();
  const res: HttpResponse = httpRequest("POST", baseUrl() + "/bot{{secret:TELEGRAM_BOT_TOKEN}}/" + method, form.headers(), body);
  const r = apiAnswer(method, res, new ApiCall());
  // A 4xx other than 429 (a file Telegram refuses: too big, bad type, chat not found) will not pass on a retry.
  if (r.result == null) return channelDone(r.status >= 400 && r.status < 500 && r.status != 429 ? channelPermanentError(r.error) : channelError(r.error));
  const mid = intText(r.result, "message_id");
  const chat = intText(obj(r.result, "chat"), "id");
  const chatText: string = chat != null ? chat : out.peer;
  writeSendReceipt(mid != null ? chatText + ":" + mid : null);
  return channelDone(0);
}
