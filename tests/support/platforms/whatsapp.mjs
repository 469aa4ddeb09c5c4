// A fake WhatsApp Cloud API (Meta Graph API) for tests: the send endpoint the whatsapp channel
// plugin calls and helpers that deliver webhook requests signed exactly as Meta signs them.
// Follows Meta's documentation:
// - verification handshake: `GET <callback>?hub.mode=subscribe&hub.challenge=<c>&hub.verify_token=<t>`,
//   answered 200 with the challenge as the body;
// - event notifications: `POST <callback>` with JSON
//   {object: "whatsapp_business_account", entry: [{id, changes: [{field: "messages", value:
//   {messaging_product, metadata: {display_phone_number, phone_number_id}, contacts, messages |
//   statuses}}]}]} and `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`;
// - sending: `POST /<version>/<phone_number_id>/messages`, `Authorization: Bearer <token>`, JSON
//   {messaging_product: "whatsapp", to, type: "text", text: {body}, context?: {message_id}} ->
//   {messaging_product, contacts: [{input, wa_id}], messages: [{id: "wamid..."}]}; errors are
//   {error: {message, type, code, error_subcode?, fbtrace_id}} with HTTP 400/401;
// - media (Cloud API media reference): `POST /<version>/<phone_number_id>/media`,
//   multipart/form-data with `messaging_product=whatsapp`, `type` (MIME) and `file` -> `{id}`;
//   a message `{type: "image", image: {id, caption?}}` or `{type: "document", document: {id,
//   caption?, filename?}}` then sends it (an unknown media id is error 131053).
import { createHmac } from "node:crypto";
import { arrivals, parseJsonOrNull, parseMultipart, readBytes, sendJson, startServer } from "./common.mjs";

/**
 * @typedef {object} WhatsAppCall one HTTP request the fake received
 * @property {string} method
 * @property {string} path
 * @property {import("node:http").IncomingHttpHeaders} headers
 * @property {string} body
 * @property {any} json   parsed JSON body or null
 */

/**
 * @typedef {object} WhatsAppSent one accepted send
 * @property {string} phoneNumberId  from the URL path
 * @property {string} version        e.g. "v21.0"
 * @property {string} to
 * @property {string} body           text.body
 * @property {string | undefined} replyTo context.message_id
 * @property {string} id             the wamid the fake assigned (the receipt)
 * @property {any} json              the whole request body
 */

/**
 * `X-Hub-Signature-256` of a raw body, as Meta computes it.
 * @param {string} appSecret
 * @param {string | Buffer} body
 * @returns {string} `sha256=<hex>`
 */
export function signWhatsAppBody(appSecret, body) {
  return `sha256=${createHmac("sha256", appSecret).update(body).digest("hex")}`;
}

let seq = 0;

/**
 * @param {string} phoneNumberId
 * @param {Record<string, unknown>} value the change's value without metadata
 */
function envelope(phoneNumberId, value) {
  return {
    object: "whatsapp_business_account",
    entry: [
      {
        id: "102290129340398",
        changes: [
          {
            value: {
              messaging_product: "whatsapp",
              metadata: { display_phone_number: "15550783881", phone_number_id: phoneNumberId },
              ...value,
            },
            field: "messages",
          },
        ],
      },
    ],
  };
}

/**
 * A `messages` notification carrying one user message.
 * @param {object} o
 * @param {string} o.phoneNumberId the business number's id (metadata.phone_number_id)
 * @param {string} o.from          the user's WhatsApp id (phone number)
 * @param {string} [o.text]        a text message with this body (default type)
 * @param {string} [o.id]          message id; default a fresh "wamid..."
 * @param {string} [o.name]        profile name; default "Test User"
 * @param {Record<string, unknown>} [o.message] extra/override fields of the message object
 *                                 (e.g. {type: "image", image: {id, mime_type, caption}})
 */
export function whatsappMessage(o) {
  seq++;
  const id = o.id ?? `wamid.HBgL${Date.now()}${String(seq).padStart(4, "0")}`;
  const message = {
    from: o.from,
    id,
    timestamp: String(Math.floor(Date.now() / 1000)),
    ...(o.text !== undefined ? { type: "text", text: { body: o.text } } : {}),
    ...(o.message ?? {}),
  };
  return envelope(o.phoneNumberId, {
    contacts: [{ profile: { name: o.name ?? "Test User" }, wa_id: o.from }],
    messages: [message],
  });
}

/**
 * A `statuses` notification (delivery receipt of a message the business sent); carries no user message.
 * @param {object} o
 * @param {string} o.phoneNumberId
 * @param {string} o.recipient
 * @param {string} [o.messageId]
 * @param {"sent" | "delivered" | "read" | "failed"} [o.status]
 */
export function whatsappStatus(o) {
  return envelope(o.phoneNumberId, {
    statuses: [
      {
        id: o.messageId ?? "wamid.status",
        status: o.status ?? "delivered",
        timestamp: String(Math.floor(Date.now() / 1000)),
        recipient_id: o.recipient,
        conversation: { id: "conv1", origin: { type: "service" } },
        pricing: { billable: true, pricing_model: "CBP", category: "service" },
      },
    ],
  });
}

/**
 * @typedef {object} FakeWhatsApp
 * @property {string} url            Graph base URL, e.g. "http://127.0.0.1:43123" (the plugin's base_url)
 * @property {number} port
 * @property {string} token          the access token the fake accepts
 * @property {string} appSecret
 * @property {string} verifyToken
 * @property {string} phoneNumberId  the business number that exists
 * @property {WhatsAppCall[]} calls
 * @property {WhatsAppSent[]} sent
 * @property {Array<{id: string, type: string, name: string, bytes: Buffer, messagingProduct: string | undefined}>} uploads media uploaded (`/media`)
 * @property {Array<{kind: "image" | "document", to: string, mediaId: string, caption?: string, filename?: string, upload: {name: string, type: string, bytes: Buffer} | undefined, id: string}>} filesSent
 *   media messages sent, with the upload they refer to
 * @property {(message: string, code?: number) => void} failNext the next send answers HTTP 400 with a Graph error
 * @property {(n: number, timeoutMs?: number) => Promise<WhatsAppSent[]>} waitForSent
 * @property {(webhookUrl: string, payload: unknown, options?: {appSecret?: string, signature?: string, unsigned?: boolean}) => Promise<{status: number, body: string}>} deliver
 *   POSTs a notification to `webhookUrl` as Meta does (JSON, signed with the app secret)
 * @property {(webhookUrl: string, options?: {verifyToken?: string, challenge?: string, mode?: string}) => Promise<{status: number, body: string}>} verify
 *   the GET verification handshake Meta sends when the callback URL is configured
 * @property {() => void} reset
 * @property {() => Promise<void>} close
 */

/**
 * Starts the fake WhatsApp Cloud API on 127.0.0.1.
 * @param {object} [options]
 * @param {string} [options.token]         default "wa-access-token"
 * @param {string} [options.appSecret]     default "wa-app-secret"
 * @param {string} [options.verifyToken]   default "wa-verify-token"
 * @param {string} [options.phoneNumberId] default "106540352242922"
 * @returns {Promise<FakeWhatsApp>}
 */
export async function startFakeWhatsApp(options = {}) {
  const token = options.token ?? "wa-access-token";
  const appSecret = options.appSecret ?? "wa-app-secret";
  const verifyToken = options.verifyToken ?? "wa-verify-token";
  const phoneNumberId = options.phoneNumberId ?? "106540352242922";
  /** @type {WhatsAppCall[]} */
  const calls = [];
  /** @type {WhatsAppSent[]} */
  const sent = [];
  /** @type {Array<{message: string, code: number}>} */
  const failures = [];
  const delivered = arrivals(sent, "fake WhatsApp: sends", (l) => l.map((s) => s.json));
  /** @type {Array<{id: string, type: string, name: string, bytes: Buffer, messagingProduct: string | undefined}>} */
  const uploads = [];
  /** @type {any[]} */
  const filesSent = [];
  let idSeq = 0;

  const { port, close } = await startServer(async (req, res) => {
    const bytes = await readBytes(req);
    const raw = bytes.toString("utf8");
    const url = new URL(req.url ?? "/", "http://fake");
    const json = parseJsonOrNull(raw);
    calls.push({ method: req.method ?? "", path: url.pathname, headers: req.headers, body: raw, json });
    const graphError = (status, message, code, type = "OAuthException", extra = {}) => {
      sendJson(res, status, { error: { message, type, code, ...extra, fbtrace_id: "AbCdEfGh123" } });
    };
    const media = /^\/(v\d+\.\d+)\/([^/]+)\/media$/.exec(url.pathname);
    if (media && req.method === "POST") {
      if (req.headers.authorization !== `Bearer ${token}`) return graphError(401, "Invalid OAuth access token - Cannot parse access token", 190);
      if (media[2] !== phoneNumberId)
        return graphError(400, `Unsupported post request. Object with ID '${media[2]}' does not exist`, 100, "GraphMethodException", { error_subcode: 33 });
      const ctype = req.headers["content-type"] ?? "";
      const form = ctype.startsWith("multipart/form-data") ? await parseMultipart(bytes, ctype).catch(() => null) : null;
      if (form === null) return graphError(400, "(#100) The request must be multipart/form-data", 100);
      if (form.fields.messaging_product !== "whatsapp") return graphError(400, "(#100) The parameter messaging_product is required.", 100);
      const file = form.files.find((f) => f.field === "file");
      if (file === undefined) return graphError(400, "(#100) The parameter file is required.", 100);
      const id = String(1_000_000_000_000 + uploads.length + 1);
      uploads.push({ id, type: form.fields.type ?? file.type, name: file.name, bytes: file.bytes, messagingProduct: form.fields.messaging_product });
      return sendJson(res, 200, { id });
    }
    const m = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/.exec(url.pathname);
    if (!m || req.method !== "POST") {
      graphError(400, `Unknown path components: ${url.pathname}`, 2500);
      return;
    }
    const auth = req.headers.authorization;
    if (auth !== `Bearer ${token}`) {
      graphError(
        401,
        auth === undefined ? "An access token is required to request this resource." : "Invalid OAuth access token - Cannot parse access token",
        190,
      );
      return;
    }
    const [, version, phoneId] = m;
    if (phoneId !== phoneNumberId) {
      graphError(
        400,
        `Unsupported post request. Object with ID '${phoneId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        100,
        "GraphMethodException",
        { error_subcode: 33 },
      );
      return;
    }
    const failure = failures.shift();
    if (failure !== undefined) {
      graphError(400, failure.message, failure.code);
      return;
    }
    if (json === null || typeof json !== "object" || json.messaging_product !== "whatsapp") {
      graphError(400, "(#100) The parameter messaging_product is required.", 100);
      return;
    }
    if (typeof json.to !== "string" || !/^\+?\d{5,20}$/.test(json.to)) {
      graphError(400, "(#100) Invalid parameter", 100);
      return;
    }
    if (json.type === "image" || json.type === "document") {
      const obj = json[json.type];
      const upload = uploads.find((u) => u.id === obj?.id);
      if (typeof obj?.id !== "string" || upload === undefined) return graphError(400, "(#131053) Media upload error: unknown media id", 131053);
      if (typeof obj.caption === "string" && obj.caption.length > 1024)
        return graphError(400, "(#100) Param caption must be at most 1024 characters long.", 100);
      idSeq++;
      const id = `wamid.FAKE${String(idSeq).padStart(8, "0")}`;
      filesSent.push({ kind: json.type, to: json.to, mediaId: obj.id, caption: obj.caption, filename: obj.filename, upload, id });
      return sendJson(res, 200, { messaging_product: "whatsapp", contacts: [{ input: json.to, wa_id: json.to.replace(/^\+/, "") }], messages: [{ id }] });
    }
    if ((json.type ?? "text") !== "text" || typeof json.text?.body !== "string" || json.text.body === "") {
      graphError(400, "(#100) Param text['body'] is required.", 100);
      return;
    }
    if (json.text.body.length > 4096) {
      graphError(400, "(#100) Param text['body'] must be at most 4096 characters long.", 100);
      return;
    }
    idSeq++;
    const id = `wamid.FAKE${String(idSeq).padStart(8, "0")}`;
    sent.push({
      phoneNumberId: phoneId,
      version,
      to: json.to,
      body: json.text.body,
      replyTo: typeof json.context?.message_id === "string" ? json.context.message_id : undefined,
      id,
      json,
    });
    delivered.notify();
    sendJson(res, 200, { messaging_product: "whatsapp", contacts: [{ input: json.to, wa_id: json.to.replace(/^\+/, "") }], messages: [{ id }] });
  });

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    token,
    appSecret,
    verifyToken,
    phoneNumberId,
    calls,
    sent,
    uploads,
    filesSent,
    failNext(message, code = 131000) {
      failures.push({ message, code });
    },
    waitForSent(n, timeoutMs) {
      return delivered.waitFor(n, timeoutMs);
    },
    async deliver(webhookUrl, payload, o = {}) {
      const body = typeof payload === "string" ? payload : JSON.stringify(payload);
      /** @type {Record<string, string>} */
      const headers = { "content-type": "application/json", "user-agent": "facebookexternalua" };
      if (!o.unsigned) headers["x-hub-signature-256"] = o.signature ?? signWhatsAppBody(o.appSecret ?? appSecret, body);
      const res = await fetch(webhookUrl, { method: "POST", headers, body });
      return { status: res.status, body: await res.text() };
    },
    async verify(webhookUrl, o = {}) {
      const u = new URL(webhookUrl);
      u.searchParams.set("hub.mode", o.mode ?? "subscribe");
      u.searchParams.set("hub.challenge", o.challenge ?? "1158201444");
      u.searchParams.set("hub.verify_token", o.verifyToken ?? verifyToken);
      const res = await fetch(u, { method: "GET" });
      return { status: res.status, body: await res.text() };
    },
    reset() {
      calls.length = 0;
      sent.length = 0;
      uploads.length = 0;
      filesSent.length = 0;
    },
    close() {
      delivered.release();
      return close();
    },
  };
}
