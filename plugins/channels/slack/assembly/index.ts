// slack: a channel plugin for the Slack Events API (inbound) and the Web API method
// chat.postMessage (outbound).
//
// Inbound (`parse`), per https://api.slack.com/authentication/verifying-requests-from-slack and
// https://api.slack.com/apis/events-api:
// - every request must carry `x-slack-signature: v0=<hex HMAC-SHA256>` over
//   `v0:<x-slack-request-timestamp>:<raw body>` keyed with the signing secret; the host computes
//   the HMAC (hmac_verify), the plugin never sees the secret. Missing or wrong -> 401.
// - with the clock capability, a timestamp more than 5 minutes away from now -> 401 (replay).
// - `url_verification` -> 200 with the challenge as text/plain.
// - `event_callback` with a `message` event from a person -> one message; bot messages (bot_id)
//   and edits/deletions/joins (subtypes other than file_share, thread_broadcast, me_message) are
//   acknowledged with 200 and produce nothing. Slack retries (x-slack-retry-num) carry the same
//   event_id, which is the platform message id the host deduplicates on.
//
// Outbound (`send`): POST <base_url>/chat.postMessage with the bot token injected by the host,
// JSON {channel, text, thread_ts?}; Slack answers HTTP 200 with {ok: false, error} on failure.
//
// Outbound files (`send_file`), Slack's external upload flow
// (https://docs.slack.dev/reference/methods/files.getUploadURLExternal, .../files.completeUploadExternal):
// 1. POST <base_url>/files.getUploadURLExternal, form-encoded {filename, length (bytes)} ->
//    {ok, upload_url, file_id};
// 2. POST the bytes to upload_url ("Files can be sent as raw bytes or can be multipart form
//    encoded"; Slack answers HTTP 200) with the file's Content-Type; the URL is pre-signed, so the
//    bot token is not sent there (the host's grant must include its host, files.slack.com);
// 3. POST <base_url>/files.completeUploadExternal, JSON {files: [{id, title}], channel_id,
//    initial_comment? (the caption), thread_ts?} -> the file is shared in the channel.
// The receipt id is the file id.
//
// Progressive replies (`edit`): POST <base_url>/chat.update {channel, ts, text}
// (https://api.slack.com/methods/chat.update: rate limit Tier 3, 50+ calls a minute, so the
// operator sets `stream_interval_ms` of about 1200). message_not_found, cant_update_message and
// edit_window_closed are permanent (the host sends the text anew); HTTP 429 carries Retry-After
// (seconds) and is transient.
//
// Typing (`typing`): Slack's Web API has no typing indicator for bots, except the status of an
// AI assistant thread, assistant.threads.setStatus {channel_id, thread_ts, status}
// (https://docs.slack.dev/reference/methods/assistant.threads.setStatus: scope chat:write, or
// assistant:write for now; special rate limits; the status clears when the app replies, or after
// two minutes without a message). So `typing` calls it only when config `assistant_status` is
// "on" (the operator's app has the "Agents & AI Apps" feature) and the conversation is a thread;
// otherwise it does nothing and succeeds.

import {
  Attachment,
  clockNow,
  hmacVerifyResult,
  hostConfigGet,
  httpRequest,
  isAsciiDigits,
  InboundMessage,
  OutboundMessage,
  channelDone,
  PEER_DIRECT,
  PEER_GROUP,
  parseJson,
  ParseReply,
  readEditRequest,
  readTypingRequest,
  readOutboundMessage,
  splitFirst,
  writeEditResult,
  channelPermanentError,
  readWebhookRequest,
  setError,
  splitText,
  stringField,
  toJson,
  truncate,
  Value,
  WebhookRequest,
  writeSendReceipt,
  readOutboundFile,
} from "@exoclaw/plugin-sdk/assembly";

const SIGNING_SECRET = "SLACK_SIGNING_SECRET";
const DEFAULT_BASE_URL = "https://slack.com/api";
// Slack's own recommendation for replay protection.
const MAX_SKEW_SECONDS: f64 = 300;
// chat.postMessage truncates `text` beyond 40,000 characters; longer replies are split.
const MAX_TEXT_CHARS: i32 = 40000;
// Subtypes that are still a person writing to us; every other subtype is an edit, deletion,
// join, topic change, bot post, ...
const USER_SUBTYPES: string[] = ["file_share", "thread_broadcast", "me_message"];

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The signature check: ok; or the 401 answer in `failure`; or `hostError` when the host could not check (secret not granted). */
class Verdict {
  constructor(public ok: bool, public failure: ParseReply | null, public hostError: string) {}
}

function verify(req: WebhookRequest): Verdict {
  const sig = req.header("x-slack-signature");
  const ts = req.header("x-slack-request-timestamp");
  if (sig == null || ts == null) {
    return new Verdict(false, new ParseReply(401, "missing x-slack-signature or x-slack-request-timestamp"), "");
  }
  if (!sig.startsWith("v0=")) return new Verdict(false, new ParseReply(401, "x-slack-signature must start with v0="), "");
  if (!isAsciiDigits(ts, 12)) return new Verdict(false, new ParseReply(401, "x-slack-request-timestamp must be unix seconds"), "");
  const now = clockNow();
  if (!isNaN(now)) {
    const skew = Math.abs(now / 1000 - parseFloat(ts));
    if (skew > MAX_SKEW_SECONDS) {
      return new Verdict(false, new ParseReply(401, "x-slack-request-timestamp is more than 5 minutes from now (replayed or delayed request)"), "");
    }
  }
  const signed = concat(Uint8Array.wrap(String.UTF8.encode("v0:" + ts + ":")), req.body);
  const r = hmacVerifyResult("sha256", SIGNING_SECRET, signed, sig.substring(3));
  if (!r.ok) return new Verdict(false, null, "cannot verify the Slack signature: " + r.error);
  if (!r.value.isBool() || !r.value.boolValue) return new Verdict(false, new ParseReply(401, "x-slack-signature does not match"), "");
  return new Verdict(true, null, "");
}

function attachmentKind(mime: string | null): string {
  if (mime == null) return "file";
  if (mime.startsWith("image/")) return "image";
  if (mime.startsWith("audio/")) return "audio";
  if (mime.startsWith("video/")) return "video";
  return "file";
}

/** The bot user id of this installation: `authorizations[0].user_id` (Events API wrapper), else `authed_users[0]`. */
function botUserId(payload: Value): string | null {
  const auths = payload.get("authorizations");
  if (auths != null && auths.isArray()) {
    for (let i = 0; i < auths.length; i++) {
      const a = auths.at(i);
      const bot = a.isMap() ? a.get("is_bot") : null;
      const id = stringField(a, "user_id");
      if (id != null && (bot == null || (bot.isBool() && bot.boolValue))) return id;
    }
  }
  const authed = payload.get("authed_users");
  if (authed != null && authed.isArray() && authed.length > 0 && authed.at(0).isString()) return authed.at(0).strValue;
  return null;
}

function messageFrom(payload: Value, event: Value): InboundMessage | null {
  if (event.get("bot_id") != null) return null;
  const subtype = stringField(event, "subtype");
  if (subtype != null && !USER_SUBTYPES.includes(subtype)) return null;
  const channel = stringField(event, "channel");
  if (channel == null || channel.length == 0) return null;

  // event_id is what Slack keeps across retries of one delivery.
  let id = stringField(payload, "event_id");
  if (id == null) {
    const ts = stringField(event, "ts");
    if (ts == null) return null;
    id = channel + ":" + ts;
  }
  const text = stringField(event, "text");
  const m = new InboundMessage(channel, text != null ? text : "", id);
  const channelType = stringField(event, "channel_type");
  m.peerKind = channelType != null && channelType == "im" ? PEER_DIRECT : PEER_GROUP;
  m.team = stringField(payload, "team_id");
  if (m.team == null) m.team = stringField(event, "team");
  m.sender = stringField(event, "user");
  m.thread = stringField(event, "thread_ts");
  // Display name: message events carry `user_profile` for people (display_name, else real_name).
  const profile = event.get("user_profile");
  if (profile != null && profile.isMap()) {
    let name = stringField(profile, "display_name");
    if (name == null || name.length == 0) name = stringField(profile, "real_name");
    if (name != null && name.length > 0) m.senderName = name;
  }
  // Mention gating: `app_mention` events are mentions by definition; in `message` events the bot
  // is mentioned as `<@BOTID>` in the text, BOTID being the installation's bot user
  // (`authorizations[].user_id` of the event_callback; source: Slack Events API, "Event
  // wrapper"). A thread reply whose parent the bot wrote carries `parent_user_id` = BOTID.
  const bot = botUserId(payload);
  if (stringField(event, "type") == "app_mention") m.mentionsBot = true;
  else if (bot != null && text != null && text.includes("<@" + bot + ">")) m.mentionsBot = true;
  const parent = stringField(event, "parent_user_id");
  if (bot != null && parent != null && parent == bot) m.replyToBot = true;
  const files = event.get("files");
  if (files != null && files.isArray()) {
    for (let i = 0; i < files.length; i++) {
      const f = files.at(i);
      if (!f.isMap()) continue;
      const mime = stringField(f, "mimetype");
      const a = new Attachment(attachmentKind(mime)).withRef(stringField(f, "id")).withName(stringField(f, "name")).withMime(mime);
      const size = f.get("size");
      if (size != null && size.isNumber()) a.size = <i64>size.asNumber();
      // Images: the host downloads url_private_download (else url_private) with the bot token
      // (source: Slack "Working with files": a bearer token in the Authorization header).
      if (a.kind == "image") {
        let url = stringField(f, "url_private_download");
        if (url == null) url = stringField(f, "url_private");
        if (url != null) a.withFetchUrl(url).withFetchHeader("authorization", "Bearer {{secret:SLACK_BOT_TOKEN}}");
      }
      m.attachments.push(a);
    }
  }
  return m;
}

function handleParse(req: WebhookRequest): ParseReply | null {
  if (req.method != "POST") return new ParseReply(405, "Slack sends events with POST");
  const v = verify(req);
  if (!v.ok) {
    if (v.failure != null) return v.failure;
    setError(v.hostError);
    return null;
  }
  const payload = parseJson(String.UTF8.decode(req.body.buffer));
  if (payload == null || !payload.isMap()) return new ParseReply(400, "expected a JSON Events API payload");
  const type = stringField(payload, "type");
  if (type != null && type == "url_verification") {
    const challenge = stringField(payload, "challenge");
    if (challenge == null) return new ParseReply(400, "url_verification without a challenge");
    return new ParseReply(200, challenge);
  }
  const result = new ParseReply(200);
  if (type == null || type != "event_callback") return result;
  const event = payload.get("event");
  if (event == null || !event.isMap()) return result;
  const eventType = stringField(event, "type");
  // `app_mention` (a mention-only bot may subscribe to it instead of message.channels; not both,
  // or a mention arrives twice under two event ids).
  if (eventType == null || (eventType != "message" && eventType != "app_mention")) return result;
  const m = messageFrom(payload, event);
  if (m != null) result.messages.push(m);
  return result;
}

/** Export `parse`: a Slack Events API request -> `{response, messages}` (see the header comment). 0 = ok, 1 = failed with the reason set. */
export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return channelDone(1);
  const r = handleParse(req);
  if (r == null) return channelDone(1);
  r.write();
  return channelDone(0);
}

function baseUrl(): string {
  const r = hostConfigGet("base_url");
  let base = DEFAULT_BASE_URL;
  if (r.ok) {
    const s = r.string();
    if (s != null && s.trim().length > 0) base = s.trim();
  }
  while (base.endsWith("/")) base = base.substring(0, base.length - 1);
  return base;
}

/** Posts one chunk; returns its ts, or null after setError. */
function post(url: string, channel: string, text: string, thread: string | null): string | null {
  const body = Value.map().set("channel", Value.str(channel)).set("text", Value.str(text));
  if (thread != null) body.set("thread_ts", Value.str(thread));
  const headers = new Map<string, string>();
  headers.set("authorization", "Bearer {{secret:SLACK_BOT_TOKEN}}");
  headers.set("content-type", "application/json; charset=utf-8");
  const r = httpRequest("POST", url, headers, Uint8Array.wrap(String.UTF8.encode(toJson(body))));
  if (!r.ok) {
    setError("cannot reach Slack chat.postMessage at " + url + ": " + r.error);
    return null;
  }
  if (r.status == 429) {
    const after = r.headers.has("retry-after") ? r.headers.get("retry-after") : "?";
    setError("Slack chat.postMessage is rate limited (HTTP 429, retry after " + after + " s)");
    return null;
  }
  const answer = parseJson(r.text());
  if (r.status < 200 || r.status >= 300 || answer == null || !answer.isMap()) {
    setError("Slack chat.postMessage answered HTTP " + r.status.toString() + ": " + truncate(r.text(), 200));
    return null;
  }
  const ok = answer.get("ok");
  if (ok == null || !ok.isBool() || !ok.boolValue) {
    const err = stringField(answer, "error");
    setError("Slack chat.postMessage failed: " + (err != null ? err : "ok is not true") + " (channel " + channel + ")");
    return null;
  }
  const ts = stringField(answer, "ts");
  return ts != null ? ts : "";
}

/** Export `send`: `{account, peer, thread?, content, replyTo?}` -> `{platformMessageId}` through chat.postMessage. 0 = ok, 1 = failed with the reason set. */
export function send(): i32 {
  const msg = readOutboundMessage();
  if (msg == null) return channelDone(1);
  if (msg.peer.length == 0) {
    setError("cannot send to Slack: the peer (channel id) is empty");
    return channelDone(1);
  }
  if (msg.content.length == 0) {
    setError("cannot send to Slack: the message is empty");
    return channelDone(1);
  }
  const url = baseUrl() + "/chat.postMessage";
  const parts = splitText(msg.content, MAX_TEXT_CHARS);
  let first: string | null = null;
  for (let i = 0; i < parts.length; i++) {
    const ts = post(url, msg.peer, parts[i], msg.thread);
    if (ts == null) return channelDone(1);
    if (first == null) first = ts;
  }
  writeSendReceipt(first != null && first.length > 0 ? first : null);
  return channelDone(0);
}

/** Slack errors of chat.update that no retry fixes: the message is gone or no longer ours to edit. */
const EDIT_GONE: string[] = ["message_not_found", "cant_update_message", "edit_window_closed", "channel_not_found"];

/** Export `edit`: `{account, peer, thread?, platformMessageId (the ts), content}` -> `{overflow?}` through chat.update. */
export function edit(): i32 {
  const req = readEditRequest();
  if (req == null) return channelDone(1);
  if (req.content.length == 0) return channelDone(channelPermanentError("cannot edit a Slack message to an empty text"));
  const cut = splitFirst(req.content, MAX_TEXT_CHARS);
  const url = baseUrl() + "/chat.update";
  const body = Value.map().set("channel", Value.str(req.peer)).set("ts", Value.str(req.platformMessageId)).set("text", Value.str(cut[0]));
  const headers = new Map<string, string>();
  headers.set("authorization", "Bearer {{secret:SLACK_BOT_TOKEN}}");
  headers.set("content-type", "application/json; charset=utf-8");
  const r = httpRequest("POST", url, headers, Uint8Array.wrap(String.UTF8.encode(toJson(body))));
  if (!r.ok) {
    setError("cannot reach Slack chat.update at " + url + ": " + r.error);
    return channelDone(1);
  }
  if (r.status == 429) {
    const after = r.headers.has("retry-after") ? r.headers.get("retry-after") : "?";
    setError("Slack chat.update is rate limited (HTTP 429, retry after " + after + " s)");
    return channelDone(1);
  }
  const answer = parseJson(r.text());
  if (r.status < 200 || r.status >= 300 || answer == null || !answer.isMap()) {
    setError("Slack chat.update answered HTTP " + r.status.toString() + ": " + truncate(r.text(), 200));
    return channelDone(1);
  }
  const ok = answer.get("ok");
  if (ok == null || !ok.isBool() || !ok.boolValue) {
    const err = stringField(answer, "error");
    const e: string = err != null ? err : "ok is not true";
    if (EDIT_GONE.includes(e)) return channelDone(channelPermanentError("Slack chat.update failed: " + e + " (channel " + req.peer + ")"));
    setError("Slack chat.update failed: " + e + " (channel " + req.peer + ")");
    return channelDone(1);
  }
  writeEditResult(cut[1].length > 0 ? cut[1] : null, -1);
  return channelDone(0);
}

/** Export `typing`: `{account, peer, thread?}` -> assistant.threads.setStatus "is thinking..." (see the header). */
export function typing(): i32 {
  const req = readTypingRequest();
  if (req == null) return channelDone(1);
  const on = hostConfigGet("assistant_status");
  const v = on.string();
  const thread = req.thread;
  if (!on.ok || v == null || v != "on" || thread == null || thread.length == 0) {
    writeSendReceipt(null);
    return channelDone(0);
  }
  const url = baseUrl() + "/assistant.threads.setStatus";
  const body = Value.map().set("channel_id", Value.str(req.peer)).set("thread_ts", Value.str(thread!)).set("status", Value.str("is thinking..."));
  const headers = new Map<string, string>();
  headers.set("authorization", "Bearer {{secret:SLACK_BOT_TOKEN}}");
  headers.set("content-type", "application/json; charset=utf-8");
  const r = httpRequest("POST", url, headers, Uint8Array.wrap(String.UTF8.encode(toJson(body))));
  if (!r.ok) {
    setError("cannot reach Slack assistant.threads.setStatus: " + r.error);
    return channelDone(1);
  }
  const answer = parseJson(r.text());
  const ok = answer != null && answer.isMap() ? answer.get("ok") : null;
  if (r.status != 200 || ok == null || !ok.isBool() || !ok.boolValue) {
    const err = answer != null && answer.isMap() ? stringField(answer, "error") : null;
    setError("Slack assistant.threads.setStatus failed: HTTP " + r.status.toString() + (err != null ? " " + err : ""));
    return channelDone(1);
  }
  writeSendReceipt(null);
  return channelDone(0);
}

/** `s` percent-encoded for application/x-www-form-urlencoded (unreserved characters kept). */
function formEncode(s: string): string {
  const b = Uint8Array.wrap(String.UTF8.encode(s));
  const hex = "0123456789ABCDEF";
  let out = "";
  for (let i = 0; i < b.length; i++) {
    const c = <i32>b[i];
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x2d || c == 0x2e || c == 0x5f || c == 0x7e) out += String.fromCharCode(c);
    else out += "%" + hex.charAt(c >> 4) + hex.charAt(c & 15);
  }
  return out;
}

/** A Web API answer `{ok: true, ...}`, or null after setError naming `method`. */
function webApi(method: string, contentType: string, body: Uint8Array): Value | null {
  const headers = new Map<string, string>();
  headers.set("authorization", "Bearer {{secret:SLACK_BOT_TOKEN}}");
  headers.set("content-type", contentType);
  const r = httpRequest("POST", baseUrl() + "/" + method, headers, body);
  if (!r.ok) {
    setError("cannot reach Slack " + method + ": " + r.error);
    return null;
  }
  if (r.status == 429) {
    setError("Slack " + method + " is rate limited (HTTP 429, retry after " + (r.headers.has("retry-after") ? r.headers.get("retry-after") : "?") + " s)");
    return null;
  }
  const answer = parseJson(r.text());
  if (r.status < 200 || r.status >= 300 || answer == null || !answer.isMap()) {
    setError("Slack " + method + " answered HTTP " + r.status.toString() + ": " + truncate(r.text(), 200));
    return null;
  }
  const ok = answer.get("ok");
  if (ok == null || !ok.isBool() || !ok.boolValue) {
    const err = stringField(answer, "error");
    setError("Slack " + method + " failed: " + (err != null ? err : "ok is not true"));
    return null;
  }
  return answer;
}

/** Export `send_file`: Slack's external upload (see the file comment). 0 = ok, 1 = failed with the reason set. */
export function send_file(): i32 {
  const msg = readOutboundFile();
  if (msg == null) return channelDone(1);
  const f = msg.file;
  const got = webApi(
    "files.getUploadURLExternal",
    "application/x-www-form-urlencoded",
    Uint8Array.wrap(String.UTF8.encode("filename=" + formEncode(f.name) + "&length=" + f.data.length.toString())),
  );
  if (got == null) return channelDone(1);
  const uploadUrl = stringField(got, "upload_url");
  const fileId = stringField(got, "file_id");
  if (uploadUrl == null || fileId == null) {
    setError("Slack files.getUploadURLExternal gave no upload_url or file_id");
    return channelDone(1);
  }
  const headers = new Map<string, string>();
  headers.set("content-type", f.mime);
  const up = httpRequest("POST", uploadUrl, headers, f.data);
  if (!up.ok) {
    setError("cannot upload to Slack's upload URL: " + up.error);
    return channelDone(1);
  }
  if (up.status != 200) {
    setError("Slack's upload URL answered HTTP " + up.status.toString() + ": " + truncate(up.text(), 200));
    return channelDone(1);
  }
  const files = Value.array();
  files.push(Value.map().set("id", Value.str(fileId)).set("title", Value.str(f.name)));
  const body = Value.map().set("files", files).set("channel_id", Value.str(msg.peer));
  const caption = f.caption;
  if (caption != null && caption.length > 0) body.set("initial_comment", Value.str(caption));
  const thread = msg.thread;
  if (thread != null && thread.length > 0) body.set("thread_ts", Value.str(thread));
  if (webApi("files.completeUploadExternal", "application/json; charset=utf-8", Uint8Array.wrap(String.UTF8.encode(toJson(body)))) == null) return channelDone(1);
  writeSendReceipt(fileId);
  return channelDone(0);
}
