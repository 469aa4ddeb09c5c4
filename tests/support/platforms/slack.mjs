// A fake Slack for tests: the Web API method chat.postMessage (what the slack channel plugin
// calls) and helpers that deliver Events API requests to a webhook URL signed exactly as Slack
// signs them. Follows Slack's documentation:
// - request signing: https://api.slack.com/authentication/verifying-requests-from-slack
//   `x-slack-signature: v0=<hex HMAC-SHA256(signing secret, "v0:<timestamp>:<raw body>")>`,
//   `x-slack-request-timestamp: <unix seconds>`;
// - Events API envelopes: `url_verification` {token, challenge, type} and `event_callback`
//   {token, team_id, api_app_id, event, type, event_id, event_time}; retries carry
//   `x-slack-retry-num` / `x-slack-retry-reason` and the same event_id;
// - Web API: `POST /api/chat.postMessage`, `Authorization: Bearer xoxb-...`, JSON body
//   {channel, text, thread_ts?}; every answer is HTTP 200 `{ok: true, channel, ts, message}` or
//   `{ok: false, error: "<code>"}` (not_authed, invalid_auth, channel_not_found,
//   no_text, invalid_arguments), except rate limiting: HTTP 429 with `Retry-After`;
// - `POST /api/chat.update` {channel, ts, text} (https://api.slack.com/methods/chat.update) ->
//   `{ok: true, channel, ts, text}`; an unknown ts -> `{ok: false, error: "message_not_found"}`;
// - `POST /api/assistant.threads.setStatus` {channel_id, thread_ts, status}
//   (https://docs.slack.dev/reference/methods/assistant.threads.setStatus) -> `{ok: true}`; no
//   thread_ts -> `{ok: false, error: "invalid_thread_ts"}`.
import { createHmac } from "node:crypto";
import { arrivals, parseJsonOrNull, readBytes, sendJson, startServer } from "./common.mjs";

/**
 * @typedef {object} SlackCall one HTTP request the fake received
 * @property {string} method
 * @property {string} path       URL path without the query string
 * @property {import("node:http").IncomingHttpHeaders} headers
 * @property {string} body       raw body text
 * @property {any} json          the parsed JSON body, or null
 */

/**
 * @typedef {object} SlackPost one accepted chat.postMessage
 * @property {string} channel
 * @property {string} text
 * @property {string | undefined} thread_ts
 * @property {string} ts         the message timestamp the fake assigned (the receipt)
 */

/**
 * Signs a request body as Slack does.
 * @param {string} signingSecret
 * @param {string | Buffer} body the exact raw body bytes that will be sent
 * @param {number} [timestampSec] unix seconds; default now
 * @returns {{"x-slack-signature": string, "x-slack-request-timestamp": string}}
 */
export function signSlackRequest(signingSecret, body, timestampSec = Math.floor(Date.now() / 1000)) {
  const ts = String(timestampSec);
  const mac = createHmac("sha256", signingSecret).update(`v0:${ts}:`).update(body).digest("hex");
  return { "x-slack-signature": `v0=${mac}`, "x-slack-request-timestamp": ts };
}

let eventSeq = 0;

/**
 * An `event_callback` envelope with a `message` event, as the Events API sends it.
 * @param {object} o
 * @param {string} o.channel          conversation id (C..., D..., G...)
 * @param {string} o.text
 * @param {string} [o.user]           default "U0USER"
 * @param {string} [o.team]           default "T0TEAM"
 * @param {"im" | "channel" | "group" | "mpim"} [o.channelType] default "im"
 * @param {string} [o.eventId]        default a fresh "Ev..." id
 * @param {string} [o.ts]             message ts; default derived from the clock
 * @param {string} [o.threadTs]
 * @param {string} [o.botId]          set for messages written by a bot
 * @param {string} [o.subtype]
 * @param {object[]} [o.files]        Slack file objects
 * @returns {object}
 */
export function slackMessageEvent(o) {
  eventSeq++;
  const now = Date.now();
  const ts = o.ts ?? `${Math.floor(now / 1000)}.${String(eventSeq).padStart(6, "0")}`;
  /** @type {Record<string, unknown>} */
  const event = {
    type: "message",
    channel: o.channel,
    user: o.user ?? "U0USER",
    text: o.text,
    ts,
    event_ts: ts,
    channel_type: o.channelType ?? "im",
    team: o.team ?? "T0TEAM",
  };
  if (o.threadTs !== undefined) event.thread_ts = o.threadTs;
  if (o.botId !== undefined) event.bot_id = o.botId;
  if (o.subtype !== undefined) event.subtype = o.subtype;
  if (o.files !== undefined) event.files = o.files;
  return {
    token: "verification-token-unused",
    team_id: o.team ?? "T0TEAM",
    api_app_id: "A0APP",
    event,
    type: "event_callback",
    event_id: o.eventId ?? `Ev${String(now).slice(-8)}${String(eventSeq).padStart(4, "0")}`,
    event_time: Math.floor(now / 1000),
    authorizations: [{ team_id: o.team ?? "T0TEAM", user_id: "U0BOT", is_bot: true }],
  };
}

/**
 * The `url_verification` envelope Slack sends when a Request URL is configured.
 * @param {string} challenge
 */
export function slackUrlVerification(challenge) {
  return { token: "verification-token-unused", challenge, type: "url_verification" };
}

/**
 * @typedef {object} DeliverOptions
 * @property {number} [retryNum]      adds `x-slack-retry-num` and `x-slack-retry-reason: http_timeout`
 * @property {number} [timestampSec]  signing timestamp (default now)
 * @property {string} [signingSecret] sign with this secret instead of the fake's (a forged request)
 * @property {string} [signature]     send this `x-slack-signature` verbatim
 * @property {boolean} [unsigned]     send no signature headers at all
 */

/**
 * @typedef {object} FakeSlack
 * @property {string} url        base URL of the Web API, e.g. "http://127.0.0.1:43123/api" (the plugin's base_url)
 * @property {number} port
 * @property {string} botToken
 * @property {string} signingSecret
 * @property {SlackCall[]} calls every request received
 * @property {SlackPost[]} posts accepted chat.postMessage calls, in order (chat.update changes `text`)
 * @property {{channel: string, ts: string, text: string, at: number}[]} updates accepted chat.update calls, in order
 * @property {{channel_id: string, thread_ts: string, status: string, at: number}[]} statuses accepted assistant.threads.setStatus calls
 * @property {(error: string) => void} failNext the next chat.postMessage answers `{ok: false, error}`
 * @property {(retryAfterSec: number) => void} rateLimitNext the next call answers HTTP 429
 * @property {(n: number, timeoutMs?: number) => Promise<SlackPost[]>} waitForPosts resolves once `posts.length >= n`; rejects after timeoutMs (default 30 000) naming what arrived
 * @property {(webhookUrl: string, payload: unknown, options?: DeliverOptions) => Promise<{status: number, headers: Headers, body: string}>} deliver
 *   POSTs an Events API payload to `webhookUrl` as Slack does (JSON body, signed)
 * @property {() => void} reset  clears calls, posts, updates and statuses
 * @property {() => Promise<void>} close
 */

/**
 * Starts the fake Slack on 127.0.0.1.
 * @param {object} [options]
 * @param {string} [options.botToken]      the bot token the fake accepts; default "xoxb-test-token"
 * @param {string} [options.signingSecret] default "slack-signing-secret"
 * @param {string[]} [options.channels]    conversation ids that exist; default any id starting with C, D or G
 * @returns {Promise<FakeSlack>}
 */
export async function startFakeSlack(options = {}) {
  const botToken = options.botToken ?? "xoxb-test-token";
  const signingSecret = options.signingSecret ?? "slack-signing-secret";
  const known = options.channels ? new Set(options.channels) : null;
  /** @type {SlackCall[]} */
  const calls = [];
  /** @type {SlackPost[]} */
  const posts = [];
  /** @type {string[]} */
  const failures = [];
  /** @type {number[]} */
  const rateLimits = [];
  /** Accepted chat.update calls: {channel, ts, text, at (ms)}. */
  const updates = [];
  /** Accepted assistant.threads.setStatus calls: {channel_id, thread_ts, status, at (ms)}. */
  const statuses = [];
  const posted = arrivals(posts, "fake Slack: chat.postMessage calls");
  let tsSeq = 0;
  /** External uploads by file id: getUploadURLExternal's {filename, length}, then the uploaded bytes. */
  const pendingUploads = new Map();
  /** Files shared by files.completeUploadExternal, in order. */
  const files = [];
  const shared = arrivals(files, "fake Slack: files.completeUploadExternal calls");

  const { port, close } = await startServer(async (req, res) => {
    const bytes = await readBytes(req);
    const raw = bytes.toString("utf8");
    const url = new URL(req.url ?? "/", "http://fake");
    let json = null;
    const type = String(req.headers["content-type"] ?? "");
    if (type.includes("json")) {
      json = parseJsonOrNull(raw);
    } else if (type.includes("x-www-form-urlencoded")) {
      json = Object.fromEntries(new URLSearchParams(raw));
    }
    calls.push({ method: req.method ?? "", path: url.pathname, headers: req.headers, body: raw, json });
    const answer = (status, body, headers = {}) => sendJson(res, status, body, { "content-type": "application/json; charset=utf-8", ...headers });
    // Slack's external upload flow (docs.slack.dev, files.getUploadURLExternal and
    // files.completeUploadExternal): get a pre-signed URL, POST the bytes there, complete.
    const uploadRoute = /^\/upload\/(F\w+)$/.exec(url.pathname);
    if (uploadRoute !== null && req.method === "POST") {
      const pending = pendingUploads.get(uploadRoute[1]);
      if (pending === undefined) return void res.writeHead(404).end("not found");
      pending.bytes = bytes;
      pending.type = String(req.headers["content-type"] ?? "");
      pending.authorization = req.headers.authorization;
      res.writeHead(200, { "content-type": "text/plain" }).end(`OK - ${bytes.length}`);
      return;
    }
    if (url.pathname === "/api/files.getUploadURLExternal" || url.pathname === "/api/files.completeUploadExternal") {
      if (req.headers.authorization !== `Bearer ${botToken}`) return answer(200, { ok: false, error: "invalid_auth" });
      if (json === null || typeof json !== "object") return answer(200, { ok: false, error: "invalid_arguments" });
      if (url.pathname === "/api/files.getUploadURLExternal") {
        const length = Number(json.length);
        if (typeof json.filename !== "string" || json.filename === "" || !(length > 0)) return answer(200, { ok: false, error: "missing_argument" });
        const fileId = `F${String(pendingUploads.size + 1).padStart(8, "0")}`;
        pendingUploads.set(fileId, { filename: json.filename, length });
        return answer(200, { ok: true, upload_url: `http://127.0.0.1:${port}/upload/${fileId}`, file_id: fileId });
      }
      const list = Array.isArray(json.files) ? json.files : [];
      const out = [];
      for (const f of list) {
        const pending = pendingUploads.get(f?.id);
        if (pending === undefined || pending.bytes === undefined) return answer(200, { ok: false, error: "file_not_found" });
        if (pending.bytes.length !== pending.length) return answer(200, { ok: false, error: "file_upload_size_mismatch" });
        if (typeof json.channel_id === "string" && (known ? !known.has(json.channel_id) : !/^[CDG]/.test(json.channel_id)))
          return answer(200, { ok: false, error: "channel_not_found" });
        files.push({
          file_id: f.id,
          title: f.title,
          filename: pending.filename,
          type: pending.type,
          bytes: pending.bytes,
          uploadAuthorization: pending.authorization,
          channel_id: json.channel_id,
          initial_comment: json.initial_comment,
          thread_ts: json.thread_ts,
        });
        out.push({ id: f.id, title: f.title ?? pending.filename });
      }
      shared.notify();
      return answer(200, { ok: true, files: out });
    }
    if (url.pathname !== "/api/chat.postMessage" && url.pathname !== "/api/chat.update" && url.pathname !== "/api/assistant.threads.setStatus") {
      answer(404, { ok: false, error: "unknown_method" });
      return;
    }
    if (req.method !== "POST") {
      answer(200, { ok: false, error: "method_not_supported_for_channel_type" });
      return;
    }
    const retryAfter = rateLimits.shift();
    if (retryAfter !== undefined) {
      answer(429, { ok: false, error: "ratelimited" }, { "retry-after": String(retryAfter) });
      return;
    }
    const auth = req.headers.authorization;
    if (auth === undefined) {
      answer(200, { ok: false, error: "not_authed" });
      return;
    }
    if (auth !== `Bearer ${botToken}`) {
      answer(200, { ok: false, error: "invalid_auth" });
      return;
    }
    if (json === null || typeof json !== "object") {
      answer(200, { ok: false, error: "invalid_arguments" });
      return;
    }
    if (url.pathname === "/api/assistant.threads.setStatus") {
      if (typeof json.thread_ts !== "string" || json.thread_ts === "") return answer(200, { ok: false, error: "invalid_thread_ts" });
      statuses.push({ channel_id: json.channel_id, thread_ts: json.thread_ts, status: json.status, at: Date.now() });
      return answer(200, { ok: true });
    }
    if (url.pathname === "/api/chat.update") {
      const target = posts.find((p) => p.channel === json.channel && p.ts === json.ts);
      if (target === undefined) return answer(200, { ok: false, error: "message_not_found" });
      if (typeof json.text !== "string" || json.text === "") return answer(200, { ok: false, error: "no_text" });
      target.text = json.text;
      updates.push({ channel: target.channel, ts: target.ts, text: json.text, at: Date.now() });
      return answer(200, { ok: true, channel: target.channel, ts: target.ts, text: json.text });
    }
    const failure = failures.shift();
    if (failure !== undefined) {
      answer(200, { ok: false, error: failure });
      return;
    }
    const channel = json.channel;
    if (typeof channel !== "string" || channel === "") {
      answer(200, { ok: false, error: "channel_not_found" });
      return;
    }
    if (known ? !known.has(channel) : !/^[CDG]/.test(channel)) {
      answer(200, { ok: false, error: "channel_not_found" });
      return;
    }
    if (typeof json.text !== "string" || json.text === "") {
      answer(200, { ok: false, error: "no_text" });
      return;
    }
    tsSeq++;
    const ts = `${Math.floor(Date.now() / 1000)}.${String(tsSeq).padStart(6, "0")}`;
    const threadTs = typeof json.thread_ts === "string" ? json.thread_ts : undefined;
    posts.push({ channel, text: json.text, thread_ts: threadTs, ts });
    posted.notify();
    answer(200, {
      ok: true,
      channel,
      ts,
      message: { type: "message", bot_id: "B0BOT", text: json.text, user: "U0BOT", ts, ...(threadTs ? { thread_ts: threadTs } : {}) },
    });
  });

  return {
    url: `http://127.0.0.1:${port}/api`,
    port,
    botToken,
    signingSecret,
    calls,
    posts,
    files,
    waitForFiles(n, timeoutMs) {
      return shared.waitFor(n, timeoutMs);
    },
    updates,
    statuses,
    failNext(error) {
      failures.push(error);
    },
    rateLimitNext(retryAfterSec) {
      rateLimits.push(retryAfterSec);
    },
    waitForPosts(n, timeoutMs) {
      return posted.waitFor(n, timeoutMs);
    },
    async deliver(webhookUrl, payload, o = {}) {
      const body = typeof payload === "string" ? payload : JSON.stringify(payload);
      /** @type {Record<string, string>} */
      const headers = { "content-type": "application/json", "user-agent": "Slackbot 1.0 (+https://api.slack.com/robots)" };
      if (!o.unsigned) {
        Object.assign(headers, signSlackRequest(o.signingSecret ?? signingSecret, body, o.timestampSec));
        if (o.signature !== undefined) headers["x-slack-signature"] = o.signature;
      }
      if (o.retryNum !== undefined) {
        headers["x-slack-retry-num"] = String(o.retryNum);
        headers["x-slack-retry-reason"] = "http_timeout";
      }
      const res = await fetch(webhookUrl, { method: "POST", headers, body });
      return { status: res.status, headers: res.headers, body: await res.text() };
    },
    reset() {
      calls.length = 0;
      posts.length = 0;
      updates.length = 0;
      statuses.length = 0;
    },
    close() {
      posted.release();
      shared.release();
      return close();
    },
  };
}
