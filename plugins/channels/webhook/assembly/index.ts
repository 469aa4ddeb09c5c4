// The generic JSON webhook channel (see plugin.toml for the wire format and the secrets).
//
// Inbound body (JSON object):
//   {peer, content, messageId, account?, guild?, team?, thread?, peerKind?, sender?}
//   peer / messageId: string or integer; peerKind: "direct" (default) | "group" | "channel".
// Answers: 401 {"error":"bad signature"} (missing or wrong x-exoclaw-signature, no messages),
// 503 {"error":"..."} when the host refuses the check (WEBHOOK_SECRET not granted: a
// configuration fault, so the platform redelivers once it is fixed, instead of a 401 it would not),
// 405 for a method other than POST, 400 {"error":"..."} naming what is wrong with the body,
// 200 {"ok":true} with one message.
// Outbound: POST <base_url> {account, peer, content, thread?, replyTo?}, with
// `authorization: Bearer <WEBHOOK_TOKEN>` when that secret is granted (a separate secret: the
// inbound signing key WEBHOOK_SECRET never leaves the host); a 2xx answer is a delivery, its
// JSON `id` or `messageId` (if any) the receipt id.
import {
  channelDone, channelError, channelPermanentError, hmacVerifyResult, hostConfigGet, httpRequest, InboundMessage, jsonString, parseJson,
  PEER_CHANNEL, PEER_DIRECT, PEER_GROUP, readOutboundMessage, readWebhookRequest, toJson, utf8Bytes, Value,
  secretEqualsResult, writeJsonParseResult, writeSendReceipt,
} from "@exoclaw/plugin-sdk/assembly";

/** Inbound signing key (HMAC-SHA256 of the raw body); only ever used by the host's hmac_verify. */
const SIGNING_SECRET = "WEBHOOK_SECRET";
/** Outbound bearer token, substituted by the host into the reply POST; optional. */
const TOKEN_SECRET = "WEBHOOK_TOKEN";
const SIGNATURE_HEADER = "x-exoclaw-signature";
const SIGNATURE_PREFIX = "sha256=";

function badRequest(problem: string): i32 {
  writeJsonParseResult(400, "{\"error\":" + jsonString(problem) + "}", []);
  return channelDone(0);
}

/** A string field, an integer accepted as its decimal form; null when absent or nil. `bad` is set for other types. */
class Field {
  value: string | null = null;
  bad: bool = false;
}

function idField(body: Value, key: string): Field {
  const f = new Field();
  const v = body.get(key);
  if (v == null || v.isNil()) return f;
  if (v.isString()) f.value = v.strValue;
  else if (v.isInt()) f.value = v.intValue.toString();
  else f.bad = true;
  return f;
}

export function parse(): i32 {
  const req = readWebhookRequest();
  if (req == null) return 1;
  if (req.method != "POST") {
    writeJsonParseResult(405, "{\"error\":\"use POST\"}", []);
    return channelDone(0);
  }
  const sig = req.header(SIGNATURE_HEADER);
  if (sig == null || !sig.startsWith(SIGNATURE_PREFIX)) {
    writeJsonParseResult(401, "{\"error\":\"bad signature\"}", []);
    return channelDone(0);
  }
  // secret_equals fails only for a secret that is not granted: then the signature cannot be
  // checked at all, which is the operator's fault, not the sender's (503: redelivered later).
  const granted = secretEqualsResult(SIGNING_SECRET, "");
  if (!granted.ok) {
    writeJsonParseResult(503, "{\"error\":" + jsonString("cannot verify signatures: " + granted.error) + "}", []);
    return channelDone(0);
  }
  const check = hmacVerifyResult("sha256", SIGNING_SECRET, req.body, sig.substring(SIGNATURE_PREFIX.length));
  if (!check.ok) return badRequest("cannot verify the signature: " + check.error);
  if (!check.value.isBool() || !check.value.boolValue) {
    writeJsonParseResult(401, "{\"error\":\"bad signature\"}", []);
    return channelDone(0);
  }
  const body = parseJson(req.bodyText());
  if (body == null) return badRequest("the body is not JSON");
  if (!body.isMap()) return badRequest("the body must be a JSON object");
  const names = ["peer", "content", "messageId", "account", "guild", "team", "thread", "peerKind", "sender"];
  const fields = new Array<Field>(names.length);
  for (let i = 0; i < names.length; i++) {
    const f = idField(body, names[i]);
    if (f.bad) return badRequest("'" + names[i] + "' must be a string");
    fields[i] = f;
  }
  const peer = fields[0].value;
  const content = fields[1].value;
  const messageId = fields[2].value;
  if (peer == null || peer.length == 0) return badRequest("'peer' is required (a non-empty string)");
  if (content == null) return badRequest("'content' is required (a string)");
  if (messageId == null || messageId.length == 0) return badRequest("'messageId' is required (a non-empty string, unique per message)");
  let kind = fields[7].value;
  if (kind == null) kind = PEER_DIRECT;
  if (kind != PEER_DIRECT && kind != PEER_GROUP && kind != PEER_CHANNEL) {
    return badRequest("'peerKind' must be \"direct\", \"group\" or \"channel\"");
  }
  const msg = new InboundMessage(peer, content, messageId)
    .withAccount(fields[3].value)
    .withGuild(fields[4].value)
    .withTeam(fields[5].value)
    .withThread(fields[6].value)
    .withPeerKind(kind)
    .withSender(fields[8].value);
  writeJsonParseResult(200, "{\"ok\":true}", [msg]);
  return channelDone(0);
}

export function send(): i32 {
  const out = readOutboundMessage();
  if (out == null) return 1;
  const base = hostConfigGet("base_url");
  const url = base.string();
  if (!base.ok || url == null || url.length == 0) {
    return channelDone(channelError("config value 'base_url' is not set (grant it under [plugins.grants.webhook] config): " + base.error));
  }
  const payload = Value.map()
    .set("account", Value.str(out.account))
    .set("peer", Value.str(out.peer))
    .set("content", Value.str(out.content));
  const thread = out.thread;
  if (thread != null) payload.set("thread", Value.str(thread));
  const replyTo = out.replyTo;
  if (replyTo != null) payload.set("replyTo", Value.str(replyTo));
  const headers = new Map<string, string>();
  headers.set("content-type", "application/json");
  // Whether WEBHOOK_TOKEN is granted: secret_equals fails only for a secret not granted.
  if (secretEqualsResult(TOKEN_SECRET, "").ok) headers.set("authorization", "Bearer {{secret:" + TOKEN_SECRET + "}}");
  // The same key on every resend of this reply (crash, retry): a receiver that dedupes on it
  // sees each reply once.
  const replyId = out.replyId;
  if (replyId != null) headers.set("idempotency-key", replyId);
  const res = httpRequest("POST", url, headers, utf8Bytes(toJson(payload)));
  if (!res.ok) return channelDone(channelError("POST " + url + " failed: " + res.error));
  if (res.status < 200 || res.status >= 300) {
    const text = res.text();
    const what = "POST " + url + " answered " + res.status.toString() + ": " + (text.length > 300 ? text.substring(0, 300) + "…" : text);
    // The receiver refused this message itself (malformed, too large, unprocessable): resending
    // it cannot help. Other statuses (401/403/404: the operator's config, fixable; 408/429/5xx)
    // are retried.
    const s = res.status;
    const permanent = s == 400 || s == 413 || s == 414 || s == 415 || s == 422;
    return channelDone(permanent ? channelPermanentError(what) : channelError(what));
  }
  let id: string | null = null;
  const answer = parseJson(res.text());
  if (answer != null && answer.isMap()) {
    const f = idField(answer, "id");
    id = f.value;
    if (id == null) id = idField(answer, "messageId").value;
  }
  writeSendReceipt(id);
  return channelDone(0);
}
