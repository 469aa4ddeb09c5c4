// A fake Telegram Bot API for tests: the methods the telegram channel plugin calls (sendMessage,
// getUpdates) and helpers that build Updates and deliver them to a webhook URL as Telegram does.
// Follows https://core.telegram.org/bots/api:
// - requests: `POST <base>/bot<token>/<method>` with a JSON body; a wrong token answers HTTP 401
//   `{ok: false, error_code: 401, description: "Unauthorized"}`, an unknown method 404
//   `{ok: false, error_code: 404, description: "Not Found"}`;
// - every answer is `{ok: true, result}` or `{ok: false, error_code, description}` with the HTTP
//   status equal to error_code;
// - sendMessage {chat_id, text, message_thread_id?, reply_parameters?} -> the sent Message
//   {message_id, from, chat, date, text, message_thread_id?}; empty text -> 400 "Bad Request:
//   message text is empty", over 4096 characters -> 400 "Bad Request: message is too long";
// - editMessageText {chat_id, message_id, text} -> the edited Message; an unknown (or deleted)
//   message -> 400 "Bad Request: message to edit not found"; the text it already has -> 400
//   "Bad Request: message is not modified: ..."; over 4096 characters -> 400 "message is too
//   long"; with a `rate` option, more than `rate.edits` edits of one chat within `rate.perMs`
//   -> 429 {parameters: {retry_after}} (the Bot FAQ's "about one message per second per chat");
// - getUpdates {offset?, limit?, timeout?, allowed_updates?} -> Update[] with update_id >= offset;
//   like Telegram, an offset confirms (and forgets) every update below it;
// - webhook delivery: `POST <url>` with the Update as JSON and, when a secret token is set,
//   `X-Telegram-Bot-Api-Secret-Token: <token>`.
import { arrivals, parseJsonOrNull, parseMultipart, readBody, readBytes, sendJson, startServer } from "./common.mjs";

/**
 * @typedef {object} TelegramCall one Bot API request the fake received
 * @property {string} method     the Bot API method (sendMessage, getUpdates, ...)
 * @property {string} token      the token from the path
 * @property {any} json          the parsed JSON body ({} when empty)
 * @property {import("node:http").IncomingHttpHeaders} headers
 */

/**
 * @typedef {object} TelegramSent one accepted sendMessage
 * @property {number | string} chat_id
 * @property {string} text
 * @property {number | undefined} message_thread_id
 * @property {any} reply_parameters
 * @property {number} message_id the id the fake assigned
 * @property {boolean} [deleted] deleteMessage was called for it
 */

let updateSeq = 100_000;
let messageSeq = 500;

/**
 * An Update with a `message` (or `edited_message` / `channel_post`), as Telegram sends it.
 * @param {object} o
 * @param {number} o.chatId
 * @param {string} [o.text]
 * @param {string} [o.caption]
 * @param {"private" | "group" | "supergroup" | "channel"} [o.chatType] default "private"
 * @param {number} [o.fromId]             default = chatId for private chats, else 777
 * @param {number} [o.messageId]          default a fresh id
 * @param {number} [o.updateId]           default a fresh id
 * @param {number} [o.threadId]           message_thread_id (forum topics)
 * @param {"message" | "edited_message" | "channel_post" | "edited_channel_post"} [o.field] default "message"
 * @param {number} [o.editDate]           for edits
 * @param {Record<string, unknown>} [o.extra] more Message fields (photo, document, ...)
 * @returns {{update_id: number, [k: string]: any}}
 */
export function telegramUpdate(o) {
  const chatType = o.chatType ?? "private";
  const chat =
    chatType === "private"
      ? { id: o.chatId, type: "private", first_name: "Test", username: `user${o.chatId}` }
      : { id: o.chatId, type: chatType, title: `Chat ${o.chatId}` };
  /** @type {Record<string, unknown>} */
  const message = {
    message_id: o.messageId ?? ++messageSeq,
    date: Math.floor(Date.now() / 1000),
    chat,
    ...(chatType === "channel"
      ? { sender_chat: chat }
      : { from: { id: o.fromId ?? (chatType === "private" ? o.chatId : 777), is_bot: false, first_name: "Test" } }),
    ...(o.text !== undefined ? { text: o.text } : {}),
    ...(o.caption !== undefined ? { caption: o.caption } : {}),
    ...(o.threadId !== undefined ? { message_thread_id: o.threadId, is_topic_message: true } : {}),
    ...(o.editDate !== undefined ? { edit_date: o.editDate } : {}),
    ...(o.extra ?? {}),
  };
  return { update_id: o.updateId ?? ++updateSeq, [o.field ?? "message"]: message };
}

/**
 * POSTs an Update to a webhook URL as Telegram does.
 * @param {string} url
 * @param {unknown} update
 * @param {string | undefined} secretToken sent as X-Telegram-Bot-Api-Secret-Token (omitted when undefined)
 * @returns {Promise<{status: number, body: string}>}
 */
export async function deliverTelegramUpdate(url, update, secretToken) {
  /** @type {Record<string, string>} */
  const headers = { "content-type": "application/json" };
  if (secretToken !== undefined) headers["x-telegram-bot-api-secret-token"] = secretToken;
  const res = await fetch(url, { method: "POST", headers, body: JSON.stringify(update) });
  return { status: res.status, body: await res.text() };
}

/**
 * Starts the fake Bot API on 127.0.0.1 (a random port).
 * @param {{token?: string, rate?: {edits: number, perMs: number}}} [options] the bot token the fake
 *   accepts (default "123456:TEST-token_abc"); `rate`: editMessageText calls of one chat allowed
 *   per `perMs` window (more answer 429)
 */
export async function startFakeTelegram(options = {}) {
  const token = options.token ?? "123456:TEST-token_abc";
  /** @type {TelegramCall[]} */
  const calls = [];
  /** @type {TelegramSent[]} */
  const sent = [];
  /** sendChatAction calls: {chat_id, action, message_thread_id, at (ms)}. */
  const typing = [];
  /** Accepted editMessageText calls: {chat_id, message_id, text, at (ms)}. */
  const edits = [];
  /** Every editMessageText call received, accepted or not, with its HTTP status: {chat_id, message_id, at, status}. */
  const editAttempts = [];
  /** Updates not yet confirmed by an offset. @type {any[]} */
  let queue = [];
  const delivered = arrivals(sent, "fake Telegram: sendMessage calls");
  /** Files received by sendPhoto / sendDocument. */
  const filesSent = [];
  const filesDelivered = arrivals(filesSent, "fake Telegram: sendPhoto/sendDocument calls");
  /** @type {{code: number, description: string} | null} */
  let failNextSend = null;
  /** While true, editMessageText answers 500 (a platform outage for edits). */
  let editsDown = false;

  const fail = (/** @type {import("node:http").ServerResponse} */ res, /** @type {number} */ code, /** @type {string} */ description) =>
    sendJson(res, code, { ok: false, error_code: code, description });

  /** Files bots may download (getFile, then GET /file/bot<token>/<file_path>), by file_id. @type {Map<string, {path: string, bytes: Buffer}>} */
  const files = new Map();
  /** GETs of /file/... received (token, path). @type {{token: string, path: string}[]} */
  const downloads = [];

  const { port, close } = await startServer(async (req, res) => {
    const fileRoute = /^\/file\/bot([^/]+)\/(.+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (fileRoute !== null) {
      // Bot API file download (source: Bot API, getFile): GET <base>/file/bot<token>/<file_path>.
      const [, fileToken, filePath] = /** @type {[string, string, string]} */ (fileRoute);
      downloads.push({ token: decodeURIComponent(fileToken), path: filePath });
      const f = [...files.values()].find((x) => x.path === filePath);
      if (req.method !== "GET" || decodeURIComponent(fileToken) !== token || f === undefined) {
        res.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(f.bytes.length) }).end(f.bytes);
      return;
    }
    const ctype = req.headers["content-type"] ?? "";
    if (ctype.startsWith("multipart/form-data")) {
      // sendPhoto / sendDocument with an uploaded file (Bot API, "Sending files": "upload a new
      // one using multipart/form-data"; sendPhoto field `photo`, at most 10 MB; sendDocument
      // field `document`, at most 50 MB; caption 0-1024 characters).
      const mm = /^\/bot([^/]+)\/(\w+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
      if (mm === null) return fail(res, 404, "Not Found");
      const method = /** @type {string} */ (mm[2]);
      const form = await parseMultipart(await readBytes(req), ctype).catch(() => null);
      if (form === null) return fail(res, 400, "Bad Request: can't parse multipart/form-data");
      calls.push({ method, token: decodeURIComponent(/** @type {string} */ (mm[1])), json: form.fields, headers: req.headers });
      if (decodeURIComponent(/** @type {string} */ (mm[1])) !== token) return fail(res, 401, "Unauthorized");
      const field = method === "sendPhoto" ? "photo" : method === "sendDocument" ? "document" : null;
      if (field === null) return fail(res, 404, "Not Found");
      if (failNextSend !== null) {
        const f = failNextSend;
        failNextSend = null;
        return fail(res, f.code, f.description);
      }
      const file = form.files.find((f) => f.field === field);
      if (form.fields.chat_id === undefined) return fail(res, 400, "Bad Request: chat_id is empty");
      if (file === undefined) return fail(res, 400, `Bad Request: there is no ${field} in the request`);
      if ((form.fields.caption ?? "").length > 1024) return fail(res, 400, "Bad Request: message caption is too long");
      if (field === "photo" && file.bytes.length > 10 * 1024 * 1024) return fail(res, 400, "Bad Request: PHOTO_INVALID_DIMENSIONS");
      const message_id = ++messageSeq;
      filesSent.push({
        method,
        chat_id: form.fields.chat_id,
        caption: form.fields.caption,
        message_thread_id: form.fields.message_thread_id,
        name: file.name,
        type: file.type,
        bytes: file.bytes,
        message_id,
      });
      filesDelivered.notify();
      return sendJson(res, 200, {
        ok: true,
        result: {
          message_id,
          chat: { id: Number(form.fields.chat_id), type: "private" },
          date: Math.floor(Date.now() / 1000),
          ...(form.fields.caption ? { caption: form.fields.caption } : {}),
        },
      });
    }
    const text = await readBody(req);
    const m = /^\/bot([^/]+)\/(\w+)$/.exec(new URL(req.url ?? "/", "http://x").pathname);
    if (m === null) return fail(res, 404, "Not Found");
    const [, pathToken, method] = /** @type {[string, string, string]} */ (m);
    const json = text.length > 0 ? parseJsonOrNull(text) : {};
    if (json === null || typeof json !== "object") return fail(res, 400, "Bad Request: can't parse JSON");
    calls.push({ method, token: decodeURIComponent(pathToken), json, headers: req.headers });
    if (decodeURIComponent(pathToken) !== token) return fail(res, 401, "Unauthorized");
    if (method === "sendMessage") {
      if (failNextSend !== null) {
        const f = failNextSend;
        failNextSend = null;
        return fail(res, f.code, f.description);
      }
      if (json.chat_id === undefined) return fail(res, 400, "Bad Request: chat_id is empty");
      if (typeof json.text !== "string" || json.text.length === 0) return fail(res, 400, "Bad Request: message text is empty");
      if (json.text.length > 4096) return fail(res, 400, "Bad Request: message is too long");
      const message_id = ++messageSeq;
      /** @type {TelegramSent} */
      const s = { chat_id: json.chat_id, text: json.text, message_thread_id: json.message_thread_id, reply_parameters: json.reply_parameters, message_id };
      sent.push(s);
      delivered.notify();
      return sendJson(res, 200, {
        ok: true,
        result: {
          message_id,
          from: { id: Number(token.split(":")[0]), is_bot: true, first_name: "Bot" },
          chat: { id: Number(json.chat_id), type: "private" },
          date: Math.floor(Date.now() / 1000),
          text: json.text,
          ...(json.message_thread_id !== undefined ? { message_thread_id: json.message_thread_id } : {}),
        },
      });
    }
    if (method === "editMessageText") {
      const at = Date.now();
      const status = (() => {
        if (editsDown) return (fail(res, 500, "Internal Server Error"), 500);
        const target = sent.find((x) => String(x.chat_id) === String(json.chat_id) && x.message_id === Number(json.message_id));
        if (target === undefined || target.deleted) return (fail(res, 400, "Bad Request: message to edit not found"), 400);
        if (typeof json.text !== "string" || json.text.length === 0) return (fail(res, 400, "Bad Request: message text is empty"), 400);
        if (json.text.length > 4096) return (fail(res, 400, "Bad Request: message is too long"), 400);
        if (options.rate !== undefined) {
          const recent = edits.filter((e) => String(e.chat_id) === String(json.chat_id) && at - e.at < options.rate.perMs);
          if (recent.length >= options.rate.edits) {
            sendJson(res, 429, { ok: false, error_code: 429, description: "Too Many Requests: retry after 1", parameters: { retry_after: 1 } });
            return 429;
          }
        }
        if (json.text === target.text) {
          fail(
            res,
            400,
            "Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
          );
          return 400;
        }
        target.text = json.text;
        edits.push({ chat_id: json.chat_id, message_id: target.message_id, text: json.text, at });
        sendJson(res, 200, {
          ok: true,
          result: {
            message_id: target.message_id,
            chat: { id: Number(json.chat_id), type: "private" },
            date: Math.floor(at / 1000),
            edit_date: Math.floor(at / 1000),
            text: json.text,
          },
        });
        return 200;
      })();
      editAttempts.push({ chat_id: json.chat_id, message_id: Number(json.message_id), at, status });
      return;
    }
    if (method === "getUpdates") {
      if (typeof json.offset === "number") queue = queue.filter((u) => u.update_id >= json.offset);
      const limit = typeof json.limit === "number" ? Math.max(1, Math.min(100, json.limit)) : 100;
      const allowed = Array.isArray(json.allowed_updates) && json.allowed_updates.length > 0 ? json.allowed_updates : null;
      const result = queue.filter((u) => allowed === null || Object.keys(u).some((k) => allowed.includes(k))).slice(0, limit);
      return sendJson(res, 200, { ok: true, result });
    }
    if (method === "sendChatAction") {
      typing.push({ chat_id: json?.chat_id, action: json?.action, message_thread_id: json?.message_thread_id, at: Date.now() });
      return sendJson(res, 200, { ok: true, result: true });
    }
    if (method === "getFile") {
      const f = files.get(String(json.file_id));
      if (f === undefined) return fail(res, 400, "Bad Request: invalid file_id");
      return sendJson(res, 200, {
        ok: true,
        result: { file_id: json.file_id, file_unique_id: `u${json.file_id}`, file_size: f.bytes.length, file_path: f.path },
      });
    }
    if (method === "getMe")
      return sendJson(res, 200, { ok: true, result: { id: Number(token.split(":")[0]), is_bot: true, first_name: "Bot", username: "test_bot" } });
    return fail(res, 404, "Not Found");
  });

  return {
    /** The Bot API base URL, e.g. "http://127.0.0.1:43123": the plugin's `base_url`. */
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    calls,
    sent,
    typing,
    edits,
    editAttempts,
    downloads,
    filesSent,
    /** Resolves once at least `n` files were sent; rejects after `timeoutMs` (default 30 000). @param {number} n @param {number} [timeoutMs] */
    waitForFiles(n, timeoutMs) {
      return filesDelivered.waitFor(n, timeoutMs);
    },
    /** While `down`, editMessageText answers 500 "Internal Server Error". @param {boolean} down */
    failEdits(down) {
      editsDown = down;
    },
    /** Marks a sent message deleted (editMessageText then answers "message to edit not found"). @param {number} messageId */
    deleteMessage(messageId) {
      const m = sent.find((x) => x.message_id === messageId);
      if (m !== undefined) m.deleted = true;
    },
    /**
     * Stores a file bots can fetch; returns its file_id (use it in a PhotoSize / Document).
     * @param {Uint8Array} bytes
     * @param {string} [name] file_path suffix, default "photo.jpg"
     */
    addFile(bytes, name = "photo.jpg") {
      const id = `F${files.size + 1}x${Math.random().toString(36).slice(2, 8)}`;
      files.set(id, { path: `photos/${id}-${name}`, bytes: Buffer.from(bytes) });
      return id;
    },
    /** Queues an Update for getUpdates. @param {any} update */
    enqueue(update) {
      queue.push(update);
    },
    /** Updates not yet confirmed by an offset. */
    pending() {
      return queue.slice();
    },
    /** The next sendMessage fails with this error_code (HTTP status) and description. */
    failNextSend(/** @type {number} */ code, /** @type {string} */ description) {
      failNextSend = { code, description };
    },
    /**
     * Resolves once at least `n` messages were sent; rejects after `timeoutMs` (default 30 000).
     * @param {number} n
     * @param {number} [timeoutMs]
     * @returns {Promise<TelegramSent[]>}
     */
    waitForSent(n, timeoutMs) {
      return delivered.waitFor(n, timeoutMs);
    },
    reset() {
      calls.length = 0;
      sent.length = 0;
      typing.length = 0;
      edits.length = 0;
      editAttempts.length = 0;
      queue = [];
      failNextSend = null;
    },
    close() {
      delivered.release();
      filesDelivered.release();
      return close();
    },
  };
}
