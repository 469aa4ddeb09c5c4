// Discord channel: the Gateway in (a WebSocket the host holds for this plugin), the REST API out.
// Protocol facts from Discord's documentation (github.com/discord/discord-api-docs,
// developers/events/gateway.mdx, developers/topics/opcodes-and-status-codes.mdx,
// developers/topics/rate-limits.mdx, developers/resources/message.mdx).
//
// connect: opens `<gateway_url>/?v=10&encoding=json`, or, when the persisted state holds a
//   session (session_id, resume_gateway_url, last sequence), the resume URL to Resume it.
// on_frame, per Gateway payload {op, d, s, t}:
//   op 10 Hello      -> the host heartbeats every heartbeat_interval, the first after
//                       interval x jitter (random in [0, 1)), expecting an ACK between beats
//                       (a missed ACK: the host drops the connection and this plugin resumes);
//                       then Identify (op 2, token + intents) or Resume (op 6, token +
//                       session_id + seq). The token is `{{secret:DISCORD_BOT_TOKEN}}`,
//                       substituted by the host; the plugin never reads it.
//   op 11 ACK        -> ws_ack.  op 1 Heartbeat request -> a heartbeat at once.
//   op 7 Reconnect   -> close (code 4000, keeping the session) and resume at once.
//   op 9 Invalid Session -> d = true: close and resume; d = false: forget the session, close,
//                       and identify on a new connection 1-5 s later.
//   op 0 Dispatch    -> `s` is kept as the sequence (in the state, persisted by the host after
//                       the frame's messages are journaled, so a resume after a crash replays
//                       from there); READY stores session_id and resume_gateway_url;
//                       MESSAGE_CREATE becomes a message unless its author is a bot (this one
//                       included) or a webhook, or it is a system message (type other than 0
//                       DEFAULT / 19 REPLY), or it has neither content nor attachments;
//                       THREAD_CREATE / THREAD_UPDATE / GUILD_CREATE threads record each
//                       thread's parent channel (kv).
//   closed           -> codes 4007 (invalid seq) and 4009 (session timed out) forget the session
//                       (a fresh Identify next); the others resume.
// Mapping: guild = guild_id; peer = channel_id, or the parent channel of a thread with thread =
//   the thread's id (bindings route per guild and channel); peerKind group in a guild, direct in
//   a DM; sender = author.id; platformMessageId = the message id (a snowflake, unique).
// send: POST <api_base>/channels/<thread or peer>/messages {content, allowed_mentions: {parse:
//   []}, message_reference (the first part, answering replyTo), nonce + enforce_nonce (from the
//   reply id: a resend after a crash or retry is dropped by Discord)}; content over 2,000
//   characters is split. Rate limits: X-RateLimit-Remaining 0 with X-RateLimit-Reset-After, or a
//   429 (retry_after / Retry-After), block the channel's route until then (kv): a send before
//   then fails at once with the wait, without a request, and the host retries it later; parts
//   already sent are not repeated: the count of parts sent is kept per reply (kv), and a part
//   posted just before a crash is dropped by Discord (nonce).
// send_file: POST <api_base>/channels/<thread or peer>/messages as multipart/form-data: a
//   `payload_json` part {content: caption, attachments: [{id: 0, filename}], allowed_mentions}
//   and the file as `files[0]` with its filename and Content-Type (reference.mdx, "Uploading
//   Files"; message.mdx, "Create Message"). Status handling and rate limits as for send.
// edit: PATCH <api_base>/channels/<thread or peer>/messages/<id> {content} (progressive replies;
//   developers/resources/message.mdx, "Edit Message": the author may edit content). Content is
//   cut to 2,000 characters, the rest returned as overflow. The same rate-limit handling as send
//   (the route's bucket, X-RateLimit-Remaining / X-RateLimit-Reset-After, 429 retry_after): a
//   spent bucket is reported as retryAfterMs so the host holds its next edit. 404 (Unknown
//   Message, code 10008) and 403 are permanent: the host sends the text anew.
// typing: POST <api_base>/channels/<thread or peer>/typing (shown for 10 s or until the bot's next
//   message; the host renews it every 4 s while a turn runs).
import {
  Attachment, channelDone, channelError, channelPermanentError, clockNow, hostConfigGet, httpRequest, InboundMessage,
  isAsciiDigits, kvDelete, kvGet, kvSet, parseJson, PEER_DIRECT, PEER_GROUP, randomBytes, readConnectRequest, readFrameEvent,
  readEditRequest, readOutboundMessage, readTypingRequest, splitFirst, writeEditResult, readWebhookRequest, splitText, stringField, toJson, truncate, utf8Bytes, Value, writeConnectResult,
  writeFrameResult, writeSendReceipt, writeTextParseResult, wsAck, wsClose, wsHeartbeat, wsOpen, wsSend, HostResult,
  FRAME_CLOSED, FRAME_TEXT, InboundMessage as Msg, Multipart, readOutboundFile, HttpResponse,
} from "@exoclaw/plugin-sdk/assembly";

const DEFAULT_GATEWAY = "wss://gateway.discord.gg";
const DEFAULT_API = "https://discord.com/api/v10";
/** GUILDS (1 << 0) | GUILD_MESSAGES (1 << 9) | DIRECT_MESSAGES (1 << 12) | MESSAGE_CONTENT (1 << 15). */
const DEFAULT_INTENTS: i64 = 37377;
/** Longest message content Discord accepts, characters. */
const MAX_CONTENT = 2000;
const TOKEN = "{{secret:DISCORD_BOT_TOKEN}}";
/** Our own closes: not 1000/1001, which would end the session (gateway.mdx, "Heartbeat Interval"). */
const CLOSE_KEEP_SESSION = 4000;

// ---- small helpers --------------------------------------------------------------------------------

function cfg(key: string, dflt: string): string {
  const r = hostConfigGet(key);
  const v = r.string();
  if (!r.ok || v == null || v.length == 0) return dflt;
  return v;
}

function intOr(v: Value | null, key: string, dflt: i64): i64 {
  if (v == null || !v.isMap()) return dflt;
  const f = v.get(key);
  return f != null && f.isNumber() ? <i64>f.asNumber() : dflt;
}

function obj(v: Value | null, key: string): Value | null {
  if (v == null || !v.isMap()) return null;
  const f = v.get(key);
  return f != null && f.isMap() ? f : null;
}

function isTrue(v: Value | null, key: string): bool {
  if (v == null || !v.isMap()) return false;
  const f = v.get(key);
  return f != null && f.isBool() && f.boolValue;
}

/** A random number in [0, 1) from the host (0.5 without the `random` grant). */
function random01(): f64 {
  const r = randomBytes(4);
  const b = r.bytes();
  if (!r.ok || b == null || b.length < 4) return 0.5;
  const n = (<u32>b[0]) | ((<u32>b[1]) << 8) | ((<u32>b[2]) << 16) | ((<u32>b[3]) << 24);
  return <f64>n / 4294967296.0;
}

/** Fails the call when a host function refused (the host then reconnects). */
function check(r: HostResult, what: string): string | null {
  return r.ok ? null : "discord: " + what + ": " + r.error;
}

/** `<base>/?v=10&encoding=json` (gateway.mdx, "Connecting"): the same query for Resume URLs. */
function gatewayUrl(base: string): string {
  let b = base;
  while (b.endsWith("/")) b = b.substring(0, b.length - 1);
  return b + "/?v=10&encoding=json";
}

// ---- state ----------------------------------------------------------------------------------------

/** What survives a reconnect (persisted by the host): the session to resume and the heartbeat interval. */
class State {
  sid: string = "";
  seq: i64 = -1;
  resume: string = "";
  hb: i64 = 0;

  canResume(): bool {
    return this.sid.length > 0 && this.resume.length > 0 && this.seq >= 0;
  }

  forget(): void {
    this.sid = "";
    this.seq = -1;
    this.resume = "";
  }
}

function readState(s: string | null): State {
  const st = new State();
  if (s == null) return st;
  const v = parseJson(s);
  if (v == null || !v.isMap()) return st;
  const sid = stringField(v, "sid");
  if (sid != null) st.sid = sid;
  const resume = stringField(v, "resume");
  if (resume != null) st.resume = resume;
  st.seq = intOr(v, "seq", -1);
  st.hb = intOr(v, "hb", 0);
  return st;
}

function stateText(st: State): string {
  return toJson(Value.map().set("sid", Value.str(st.sid)).set("seq", Value.int(st.seq)).set("resume", Value.str(st.resume)).set("hb", Value.int(st.hb)));
}

// ---- webhook (unused) -----------------------------------------------------------------------------

export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return 1;
  writeTextParseResult(404, "discord messages arrive over the Gateway (configure the channel with connect), not webhooks", []);
  return channelDone(0);
}

// ---- the Gateway ----------------------------------------------------------------------------------

export function connect(): i32 {
  const req = readConnectRequest();
  if (req == null) return 1;
  const st = readState(req.state);
  const url = st.canResume() ? gatewayUrl(st.resume) : gatewayUrl(cfg("gateway_url", DEFAULT_GATEWAY));
  const r = wsOpen(url, null);
  if (!r.ok) return channelDone(channelError("discord: cannot open the Gateway: " + r.error));
  writeConnectResult(null);
  return channelDone(0);
}

function heartbeatPayload(st: State): string {
  return toJson(Value.map().set("op", Value.int(1)).set("d", st.seq >= 0 ? Value.int(st.seq) : Value.nil()));
}

function identify(): string | null {
  let intents = DEFAULT_INTENTS;
  const configured = cfg("intents", "");
  if (isAsciiDigits(configured, 10)) intents = I64.parseInt(configured);
  const props = Value.map().set("os", Value.str("linux")).set("browser", Value.str("exoclaw")).set("device", Value.str("exoclaw"));
  const d = Value.map().set("token", Value.str(TOKEN)).set("intents", Value.int(intents)).set("properties", props);
  return check(wsSend(toJson(Value.map().set("op", Value.int(2)).set("d", d))), "identify");
}

function resume(st: State): string | null {
  const d = Value.map().set("token", Value.str(TOKEN)).set("session_id", Value.str(st.sid)).set("seq", Value.int(st.seq));
  return check(wsSend(toJson(Value.map().set("op", Value.int(6)).set("d", d))), "resume");
}

export function on_frame(): i32 {
  const ev = readFrameEvent();
  if (ev == null) return 1;
  const st = readState(ev.state);
  const messages = new Array<Msg>();
  let err: string | null = null;
  if (ev.kind == FRAME_TEXT) err = onPayload(ev.text, st, messages);
  else if (ev.kind == FRAME_CLOSED) {
    // opcodes-and-status-codes.mdx: 4007 invalid seq, 4009 session timed out -> a new session.
    if (ev.code == 4007 || ev.code == 4009) st.forget();
  }
  if (err != null) return channelDone(channelError(err));
  writeFrameResult(messages, stateText(st));
  return channelDone(0);
}

function onPayload(text: string, st: State, out: Array<Msg>): string | null {
  const p = parseJson(text);
  if (p == null || !p.isMap()) return "discord: a Gateway frame is not a JSON object";
  const op = intOr(p, "op", -1);
  const s = p.get("s");
  if (s != null && s.isNumber()) st.seq = <i64>s.asNumber();
  const dv = p.get("d");
  const d: Value = dv != null ? dv : Value.nil();
  if (op == 10) {
    const interval = intOr(d, "heartbeat_interval", 0);
    if (interval <= 0) return "discord: Hello without heartbeat_interval";
    st.hb = interval;
    const first = <i64>(<f64>interval * random01());
    const e = check(wsHeartbeat(interval, first, heartbeatPayload(st), true), "heartbeat");
    if (e != null) return e;
    return st.canResume() ? resume(st) : identify();
  }
  if (op == 11) return check(wsAck(), "heartbeat ACK");
  if (op == 1) return check(wsSend(heartbeatPayload(st)), "heartbeat");
  if (op == 7) return check(wsClose(CLOSE_KEEP_SESSION, "reconnect requested (op 7)", 0), "reconnect");
  if (op == 9) {
    if (d.isBool() && d.boolValue) return check(wsClose(CLOSE_KEEP_SESSION, "invalid session, resumable (op 9)", 0), "reconnect");
    st.forget();
    // gateway.mdx: wait a random 1-5 s, then identify on a new connection.
    const wait = 1000 + <i64>(4000.0 * random01());
    return check(wsClose(CLOSE_KEEP_SESSION, "invalid session (op 9)", wait), "reconnect");
  }
  if (op != 0) return null;
  const t = stringField(p, "t");
  if (t == null) return null;
  if (t == "READY") {
    const sid = stringField(d, "session_id");
    const url = stringField(d, "resume_gateway_url");
    if (sid != null) st.sid = sid;
    if (url != null) st.resume = url;
  } else if (t == "MESSAGE_CREATE") {
    const m = fromMessage(d);
    if (m != null) out.push(m);
  } else if (t == "THREAD_CREATE" || t == "THREAD_UPDATE") {
    rememberThread(d);
  } else if (t == "GUILD_CREATE") {
    const threads = d.isMap() ? d.get("threads") : null;
    if (threads != null && threads.isArray()) {
      for (let i = 0; i < threads.length && i < 1000; i++) rememberThread(threads.at(i));
    }
  }
  // The heartbeat carries the last sequence: same interval, new payload.
  if (st.hb > 0) return check(wsHeartbeat(st.hb, -1, heartbeatPayload(st), true), "heartbeat");
  return null;
}

function rememberThread(ch: Value): void {
  const id = stringField(ch, "id");
  const parent = stringField(ch, "parent_id");
  if (id != null && parent != null && isAsciiDigits(id, 25) && isAsciiDigits(parent, 25)) kvSet("thread:" + id, utf8Bytes(parent));
}

function threadParent(channelId: string): string | null {
  const r = kvGet("thread:" + channelId);
  const b = r.bytes();
  if (!r.ok || b == null || b.length == 0) return null;
  return String.UTF8.decode(b.slice().buffer);
}

/** A MESSAGE_CREATE payload as a message, or null when it is not one to answer. */
function fromMessage(d: Value): Msg | null {
  if (!d.isMap()) return null;
  const author = obj(d, "author");
  if (author == null || isTrue(author, "bot")) return null;
  const webhook = d.get("webhook_id");
  if (webhook != null && !webhook.isNil()) return null;
  const type = intOr(d, "type", 0);
  if (type != 0 && type != 19) return null;
  const id = stringField(d, "id");
  const channelId = stringField(d, "channel_id");
  const authorId = stringField(author, "id");
  if (id == null || channelId == null) return null;
  const guild = stringField(d, "guild_id");
  const c = stringField(d, "content");
  const content: string = c != null ? c : "";
  const atts = new Array<Attachment>();
  const list = d.get("attachments");
  if (list != null && list.isArray()) {
    for (let i = 0; i < list.length; i++) {
      const a = list.at(i);
      if (!a.isMap()) continue;
      const mime = stringField(a, "content_type");
      const kind = mime != null && mime.startsWith("image/") ? "image" : "file";
      const att = new Attachment(kind).withRef(stringField(a, "url")).withName(stringField(a, "filename")).withMime(mime);
      const size = intOr(a, "size", -1);
      if (size >= 0) att.withSize(size);
      atts.push(att);
    }
  }
  if (content.length == 0 && atts.length == 0) return null;
  let peer: string = channelId;
  let thread: string | null = null;
  if (guild != null) {
    const parent = threadParent(channelId);
    if (parent != null) {
      peer = parent;
      thread = channelId;
    }
  }
  const m = new InboundMessage(peer, content, id).withPeerKind(guild != null ? PEER_GROUP : PEER_DIRECT).withSender(authorId).withGuild(guild).withThread(thread);
  for (let i = 0; i < atts.length; i++) m.withAttachment(atts[i]);
  return m;
}

// ---- REST: send -----------------------------------------------------------------------------------

/** FNV-1a 64 of `s` as 16 hex digits: a nonce base of bounded length (nonces are at most 25 characters). */
function shortHash(s: string): string {
  const b = utf8Bytes(s);
  let h: u64 = 0xcbf29ce484222325;
  for (let i = 0; i < b.length; i++) {
    h ^= <u64>b[i];
    h *= 0x100000001b3;
  }
  let hex = h.toString(16);
  while (hex.length < 16) hex = "0" + hex;
  return hex;
}

function rateKey(target: string): string {
  return "rl:" + target;
}

/** The epoch ms before which the route of `target` is blocked (0 = not blocked or unknown). */
function blockedUntil(target: string): f64 {
  const r = kvGet(rateKey(target));
  const b = r.bytes();
  if (!r.ok || b == null || b.length == 0) return 0;
  return parseFloat(String.UTF8.decode(b.slice().buffer));
}

function block(target: string, until: f64): void {
  kvSet(rateKey(target), utf8Bytes(until.toString()));
}

/**
 * Shared rate-limit handling of every REST call on a channel route (send, edit, send_file;
 * rate-limits.mdx): the error of a call made while the route is blocked, or null.
 */
function routeBlocked(target: string): string | null {
  const now = clockNow();
  const until = blockedUntil(target);
  if (now == now && until > now) return "discord: channel " + target + " is rate limited; retry after " + (<i64>(until - now)).toString() + " ms";
  return null;
}

/**
 * A 429 answer (rate-limits.mdx: rely on Retry-After or retry_after, seconds, may have
 * decimals): blocks the route until then and returns the call's error (`suffix` appended).
 */
function rateLimited(res: HttpResponse, target: string, t: f64, suffix: string): string {
  const j = parseJson(res.text());
  let after: f64 = 1;
  const ra = j != null && j.isMap() ? j.get("retry_after") : null;
  if (ra != null && ra.isNumber()) after = ra.asNumber();
  else if (res.headers.has("retry-after")) after = parseFloat(res.headers.get("retry-after"));
  if (!(after >= 0)) after = 1;
  if (t == t) block(target, t + after * 1000);
  return "discord: rate limited (429) on channel " + target + "; retry after " + (<i64>(after * 1000)).toString() + " ms" + suffix;
}

/**
 * A success that spent the route's bucket (X-RateLimit-Remaining 0 with X-RateLimit-Reset-After):
 * blocks the route until its reset. @returns the wait in ms, or -1 when the bucket is not spent
 */
function spentBucket(res: HttpResponse, target: string, t: f64): i64 {
  if (!res.headers.has("x-ratelimit-remaining") || res.headers.get("x-ratelimit-remaining") != "0" || !res.headers.has("x-ratelimit-reset-after")) return -1;
  const resetAfter = parseFloat(res.headers.get("x-ratelimit-reset-after"));
  if (!(resetAfter == resetAfter) || !(t == t)) return -1;
  block(target, t + resetAfter * 1000);
  return <i64>Math.ceil(resetAfter * 1000);
}

export function send(): i32 {
  const out = readOutboundMessage();
  if (out == null) return 1;
  if (out.content.length == 0) return channelDone(channelPermanentError("cannot send to Discord: the message is empty"));
  const thread = out.thread;
  const target: string = thread != null && thread.length > 0 ? thread : out.peer;
  if (!isAsciiDigits(target, 25)) return channelDone(channelPermanentError("cannot send to Discord: '" + truncate(target, 40) + "' is not a channel id"));
  const blocked = routeBlocked(target);
  if (blocked != null) return channelDone(channelError(blocked));
  const api = cfg("api_base", DEFAULT_API);
  const url = (api.endsWith("/") ? api.substring(0, api.length - 1) : api) + "/channels/" + target + "/messages";
  const headers = new Map<string, string>();
  headers.set("authorization", "Bot " + TOKEN);
  headers.set("content-type", "application/json");
  headers.set("user-agent", "DiscordBot (https://github.com/exoclaw/exoclaw, 0.1.0)");
  const parts = splitText(out.content, MAX_CONTENT);
  const replyId = out.replyId;
  const nonceBase: string | null = replyId != null && replyId.length > 0 ? shortHash(replyId) : null;
  let first: string | null = null;
  // Parts of this reply already sent by an earlier attempt (kv "parts:<nonce base>" = "<count> <first id>").
  let start = 0;
  const progressKey = nonceBase != null ? "parts:" + nonceBase : "";
  if (nonceBase != null) {
    const r = kvGet(progressKey);
    const b = r.bytes();
    if (r.ok && b != null && b.length > 0) {
      const saved = String.UTF8.decode(b.slice().buffer).split(" ");
      if (saved.length == 2 && isAsciiDigits(saved[0], 4)) {
        start = <i32>I64.parseInt(saved[0]);
        if (start > parts.length) start = 0;
        if (saved[1].length > 0) first = saved[1];
      }
    }
  }
  for (let i = start; i < parts.length; i++) {
    const body = Value.map().set("content", Value.str(parts[i])).set("allowed_mentions", Value.map().set("parse", Value.array()));
    const replyTo = out.replyTo;
    if (i == 0 && replyTo != null && isAsciiDigits(replyTo, 25)) {
      body.set("message_reference", Value.map().set("message_id", Value.str(replyTo)).set("fail_if_not_exists", Value.bool(false)));
    }
    if (nonceBase != null) body.set("nonce", Value.str(nonceBase + "." + i.toString())).set("enforce_nonce", Value.bool(true));
    const res = httpRequest("POST", url, headers, utf8Bytes(toJson(body)));
    const sent = i > 0 ? " (after " + i.toString() + " of " + parts.length.toString() + " parts were sent)" : "";
    if (!res.ok) return channelDone(channelError("discord: POST /channels/" + target + "/messages failed: " + res.error + sent));
    const t = clockNow();
    if (res.status == 429) return channelDone(channelError(rateLimited(res, target, t, sent)));
    if (res.status >= 500) return channelDone(channelError("discord: HTTP " + res.status.toString() + " from POST /channels/" + target + "/messages" + sent));
    if (res.status >= 400) {
      return channelDone(channelPermanentError("discord: HTTP " + res.status.toString() + " from POST /channels/" + target + "/messages: " + truncate(res.text(), 200) + sent));
    }
    if (first == null) {
      const j = parseJson(res.text());
      first = stringField(j, "id");
    }
    if (nonceBase != null && i + 1 < parts.length) kvSet(progressKey, utf8Bytes((i + 1).toString() + " " + (first != null ? first : "")));
    // The bucket is spent: wait for its reset before the next request on this route.
    const wait = spentBucket(res, target, t);
    if (wait >= 0 && i + 1 < parts.length && nonceBase != null) {
      // The retry sends the same nonces: the parts already sent are not repeated.
      return channelDone(channelError("discord: rate limit reached on channel " + target + "; retry after " + wait.toString() + " ms (after " + (i + 1).toString() + " of " + parts.length.toString() + " parts were sent)"));
    }
  }
  if (nonceBase != null && parts.length > 1) kvDelete(progressKey);
  writeSendReceipt(first);
  return channelDone(0);
}

export function typing(): i32 {
  const req = readTypingRequest();
  if (req == null) return 1;
  const thread = req.thread;
  const target: string = thread != null && thread.length > 0 ? thread : req.peer;
  if (!isAsciiDigits(target, 25)) return channelDone(channelPermanentError("discord typing: '" + truncate(target, 40) + "' is not a channel id"));
  const until = blockedUntil(target);
  const now = clockNow();
  // A rate-limited route is left alone: the reply matters more than the indicator.
  if (now == now && until > now) return channelDone(channelError("discord typing: channel " + target + " is rate limited"));
  const api = cfg("api_base", DEFAULT_API);
  const headers = new Map<string, string>();
  headers.set("authorization", "Bot " + TOKEN);
  const res = httpRequest("POST", (api.endsWith("/") ? api.substring(0, api.length - 1) : api) + "/channels/" + target + "/typing", headers, null);
  if (!res.ok) return channelDone(channelError("discord typing failed: " + res.error));
  if (res.status >= 300) return channelDone(channelError("discord typing: HTTP " + res.status.toString()));
  writeSendReceipt(null);
  return channelDone(0);
}

export function edit(): i32 {
  const req = readEditRequest();
  if (req == null) return 1;
  if (req.content.length == 0) return channelDone(channelPermanentError("cannot edit a Discord message to an empty text"));
  const thread = req.thread;
  const target: string = thread != null && thread.length > 0 ? thread : req.peer;
  if (!isAsciiDigits(target, 25)) return channelDone(channelPermanentError("cannot edit on Discord: '" + truncate(target, 40) + "' is not a channel id"));
  if (!isAsciiDigits(req.platformMessageId, 25)) return channelDone(channelPermanentError("cannot edit on Discord: '" + truncate(req.platformMessageId, 40) + "' is not a message id"));
  const blocked = routeBlocked(target);
  if (blocked != null) return channelDone(channelError(blocked));
  const api = cfg("api_base", DEFAULT_API);
  const path = "/channels/" + target + "/messages/" + req.platformMessageId;
  const headers = new Map<string, string>();
  headers.set("authorization", "Bot " + TOKEN);
  headers.set("content-type", "application/json");
  headers.set("user-agent", "DiscordBot (https://github.com/exoclaw/exoclaw, 0.1.0)");
  const cut = splitFirst(req.content, MAX_CONTENT);
  const body = Value.map().set("content", Value.str(cut[0])).set("allowed_mentions", Value.map().set("parse", Value.array()));
  const res = httpRequest("PATCH", (api.endsWith("/") ? api.substring(0, api.length - 1) : api) + path, headers, utf8Bytes(toJson(body)));
  if (!res.ok) return channelDone(channelError("discord: PATCH " + path + " failed: " + res.error));
  const t = clockNow();
  if (res.status == 429) return channelDone(channelError(rateLimited(res, target, t, "")));
  if (res.status >= 500) return channelDone(channelError("discord: HTTP " + res.status.toString() + " from PATCH " + path));
  if (res.status >= 400) return channelDone(channelPermanentError("discord: HTTP " + res.status.toString() + " from PATCH " + path + ": " + truncate(res.text(), 200)));
  const wait = spentBucket(res, target, t);
  writeEditResult(cut[1].length > 0 ? cut[1] : null, wait);
  return channelDone(0);
}

export function send_file(): i32 {
  const out = readOutboundFile();
  if (out == null) return 1;
  const thread = out.thread;
  const target: string = thread != null && thread.length > 0 ? thread : out.peer;
  if (!isAsciiDigits(target, 25)) return channelDone(channelPermanentError("cannot send to Discord: '" + truncate(target, 40) + "' is not a channel id"));
  const blocked = routeBlocked(target);
  if (blocked != null) return channelDone(channelError(blocked));
  const f = out.file;
  const attachments = Value.array();
  attachments.push(Value.map().set("id", Value.int(0)).set("filename", Value.str(f.name)));
  const payload = Value.map().set("attachments", attachments).set("allowed_mentions", Value.map().set("parse", Value.array()));
  const caption = f.caption;
  if (caption != null && caption.length > 0) payload.set("content", Value.str(caption.length > MAX_CONTENT ? caption.substring(0, MAX_CONTENT) : caption));
  const form = new Multipart();
  form.field("payload_json", toJson(payload));
  form.file("files[0]", f.name, f.mime, f.data);
  const body = form.finish();
  const headers = form.headers();
  headers.set("authorization", "Bot " + TOKEN);
  headers.set("user-agent", "DiscordBot (https://github.com/exoclaw/exoclaw, 0.1.0)");
  const api = cfg("api_base", DEFAULT_API);
  const res = httpRequest("POST", (api.endsWith("/") ? api.substring(0, api.length - 1) : api) + "/channels/" + target + "/messages", headers, body);
  if (!res.ok) return channelDone(channelError("discord: POST /channels/" + target + "/messages (file) failed: " + res.error));
  const t = clockNow();
  if (res.status == 429) return channelDone(channelError(rateLimited(res, target, t, "")));
  if (res.status >= 500) return channelDone(channelError("discord: HTTP " + res.status.toString() + " from POST /channels/" + target + "/messages (file)"));
  if (res.status >= 400) return channelDone(channelPermanentError("discord: HTTP " + res.status.toString() + " from POST /channels/" + target + "/messages (file): " + truncate(res.text(), 200)));
  spentBucket(res, target, t);
  writeSendReceipt(stringField(parseJson(res.text()), "id"));
  return channelDone(0);
}
