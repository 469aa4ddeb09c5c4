// A fake Discord for tests: the Gateway (WebSocket) and the REST API on one local server,
// following Discord's documented protocol (github.com/discord/discord-api-docs:
// developers/events/gateway.mdx, gateway-events.mdx, topics/opcodes-and-status-codes.mdx,
// topics/rate-limits.mdx, resources/message.mdx):
//
// Gateway (`ws://127.0.0.1:<port>/?v=10&encoding=json`, resume URL `.../resume`):
//   on connect: Hello {op: 10, d: {heartbeat_interval}}.
//   op 1 Heartbeat -> op 11 Heartbeat ACK (unless `ackHeartbeats` is false).
//   op 2 Identify {token, intents, properties} -> a new session and the READY dispatch
//     {v, user, guilds, session_id, resume_gateway_url}; a wrong token closes with 4004.
//   op 6 Resume {token, session_id, seq} -> every dispatch of the session after `seq` again, then
//     RESUMED; an unknown session or wrong token gets op 9 Invalid Session (d: false).
//   Dispatches (op 0) carry the session's sequence number `s`, counted up per dispatch; a
//   dispatch while the session has no connection is kept and delivered on Resume (as Discord
//   does within its resume window).
// REST (`http://127.0.0.1:<port>/api/v10`): POST /channels/{id}/messages (Authorization: Bot
//   <token>; content up to 2,000 characters; nonce + enforce_nonce dedupe; per-channel rate
//   limit with X-RateLimit-* headers and 429 {retry_after, global}), POST /channels/{id}/typing
//   (204), PATCH /channels/{id}/messages/{id} (edit), GET /gateway/bot.
import { randomBytes } from "node:crypto";
import { WebSocketServer } from "ws";
import { arrivals, parseJsonOrNull, parseMultipart, readBytes, sendJson, startServer } from "./common.mjs";

const BOT_ID = "900000000000000001";
let snowflake = 1_200_000_000_000_000_000n;
/** A new unique snowflake id (string, as Discord sends ids). */
export function nextSnowflake() {
  snowflake += 1n;
  return snowflake.toString();
}

/**
 * Starts the fake.
 * @param {{token?: string, heartbeatIntervalMs?: number, rateLimit?: {limit: number, resetAfterMs: number}}} [options]
 */
export async function startFakeDiscord(options = {}) {
  const token = options.token ?? `fake-discord-${randomBytes(12).toString("hex")}`;
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 1000;
  const rateLimit = options.rateLimit ?? { limit: 1_000_000, resetAfterMs: 1000 };
  /** @type {Map<string, {id: string, seq: number, log: {s: number, t: string, d: any}[], ws: import("ws").WebSocket | null}>} */
  const sessions = new Map();
  /** @type {string | null} */
  let current = null;
  const connections = /** @type {{url: string, opened: number, closedAt?: number, code?: number}[]} */ ([]);
  const identifies = /** @type {any[]} */ ([]);
  const resumes = /** @type {any[]} */ ([]);
  const heartbeats = /** @type {{at: number, d: any}[]} */ ([]);
  const calls = /** @type {{method: string, path: string, headers: any, json: any}[]} */ ([]);
  const sent = /** @type {{id: string, channel_id: string, content: string, message_reference?: any, nonce?: string}[]} */ ([]);
  const typing = /** @type {{channel_id: string, at: number}[]} */ ([]);
  const edits = /** @type {{channel_id: string, message_id: string, content: string, at: number}[]} */ ([]);
  const violations = /** @type {string[]} */ ([]);
  const nonces = new Map();
  const buckets = new Map();
  const sentArrivals = arrivals(sent, "fake Discord: created message(s)", (l) => l.map((m) => m.content));
  const fake = { ackHeartbeats: true };

  const srv = await startServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    const raw = await readBytes(req);
    const ctype = req.headers["content-type"] ?? "";
    /** Uploaded files (reference.mdx, "Uploading Files": multipart/form-data, `payload_json` + `files[n]`). */
    let uploads = /** @type {{field: string, name: string, type: string, bytes: Buffer}[]} */ ([]);
    let json = null;
    if (ctype.startsWith("multipart/form-data")) {
      const form = await parseMultipart(raw, ctype).catch(() => null);
      if (form === null) return sendJson(res, 400, { message: "Invalid Form Body (multipart)", code: 50035 });
      json = parseJsonOrNull(form.fields.payload_json ?? "");
      uploads = form.files.filter((f) => /^files\[\d+\]$/.test(f.field));
    } else {
      json = parseJsonOrNull(raw.toString("utf8"));
    }
    calls.push({ method: req.method ?? "GET", path: url.pathname, headers: req.headers, json });
    if (!url.pathname.startsWith("/api/v10/")) return sendJson(res, 404, { message: "404: Not Found", code: 0 });
    const route = url.pathname.slice("/api/v10".length);
    if (route === "/gateway/bot" && req.method === "GET") {
      return sendJson(res, 200, {
        url: `ws://127.0.0.1:${srv.port}`,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
      });
    }
    if (req.headers.authorization !== `Bot ${token}`) return sendJson(res, 401, { message: "401: Unauthorized", code: 0 });
    let m = /^\/channels\/(\d+)\/messages$/.exec(route);
    if (m && req.method === "POST") {
      const channelId = /** @type {string} */ (m[1]);
      const limited = takeToken(channelId);
      if (limited !== null)
        return sendJson(res, 429, { message: "You are being rate limited.", retry_after: limited.retryAfterS, global: false }, limited.headers);
      const headers = rateHeaders(channelId);
      if (json === null || ((typeof json.content !== "string" || json.content.length === 0) && uploads.length === 0))
        return sendJson(res, 400, { message: "Cannot send an empty message", code: 50006 }, headers);
      // Each files[n] must be described in `attachments` by its id n (message.mdx, Create Message).
      for (const u of uploads) {
        const n = Number(/\d+/.exec(u.field)?.[0]);
        if (!Array.isArray(json.attachments) || !json.attachments.some((/** @type {any} */ a) => Number(a.id) === n))
          return sendJson(res, 400, { message: `Invalid Form Body (attachments: no entry for ${u.field})`, code: 50035 }, headers);
      }
      json.content ??= "";
      if ([...json.content].length > 2000) {
        return sendJson(
          res,
          400,
          {
            message: "Invalid Form Body",
            code: 50035,
            errors: { content: { _errors: [{ code: "BASE_TYPE_MAX_LENGTH", message: "Must be 2000 or fewer in length." }] } },
          },
          headers,
        );
      }
      if (json.nonce !== undefined && String(json.nonce).length > 25) return sendJson(res, 400, { message: "Invalid Form Body (nonce)", code: 50035 }, headers);
      if (json.enforce_nonce === true && json.nonce !== undefined && nonces.has(`${channelId}:${json.nonce}`)) {
        return sendJson(res, 200, nonces.get(`${channelId}:${json.nonce}`), headers);
      }
      const msg = {
        id: nextSnowflake(),
        channel_id: channelId,
        content: json.content,
        author: { id: BOT_ID, username: "exobot", bot: true },
        message_reference: json.message_reference,
        nonce: json.nonce,
      };
      if (json.nonce !== undefined) nonces.set(`${channelId}:${json.nonce}`, msg);
      sent.push({
        id: msg.id,
        channel_id: channelId,
        content: json.content,
        message_reference: json.message_reference,
        nonce: json.nonce,
        ...(uploads.length > 0 ? { attachments: uploads.map((u) => ({ filename: u.name, content_type: u.type, bytes: u.bytes })) } : {}),
      });
      sentArrivals.notify();
      return sendJson(res, 200, msg, headers);
    }
    m = /^\/channels\/(\d+)\/typing$/.exec(route);
    if (m && req.method === "POST") {
      typing.push({ channel_id: /** @type {string} */ (m[1]), at: Date.now() });
      res.writeHead(204).end();
      return;
    }
    m = /^\/channels\/(\d+)\/messages\/(\d+)$/.exec(route);
    if (m && req.method === "PATCH") {
      // Edits draw on the channel's bucket too (rate-limits.mdx: limits are per route, and the
      // channel id is a major parameter; the fake keeps one bucket per channel for both routes).
      const limited = takeToken(/** @type {string} */ (m[1]));
      if (limited !== null)
        return sendJson(res, 429, { message: "You are being rate limited.", retry_after: limited.retryAfterS, global: false }, limited.headers);
      const headers = rateHeaders(/** @type {string} */ (m[1]));
      const found = sent.find((s) => s.id === m?.[2] && s.channel_id === m?.[1]);
      if (found === undefined) return sendJson(res, 404, { message: "Unknown Message", code: 10008 }, headers);
      if (json !== null && typeof json.content === "string" && [...json.content].length > 2000)
        return sendJson(res, 400, { message: "Invalid Form Body", code: 50035 }, headers);
      found.content = json?.content ?? found.content;
      edits.push({ channel_id: found.channel_id, message_id: found.id, content: found.content, at: Date.now() });
      return sendJson(res, 200, { ...found }, headers);
    }
    return sendJson(res, 404, { message: "404: Not Found", code: 0 });
  });

  /** Takes a request from the channel's bucket; the 429 answer when it is empty. */
  function takeToken(channelId) {
    const now = Date.now();
    let b = buckets.get(channelId);
    if (b === undefined || now >= b.resetAt) {
      b = { used: 0, resetAt: now + rateLimit.resetAfterMs };
      buckets.set(channelId, b);
    }
    if (b.used >= rateLimit.limit) {
      const retryAfterS = Math.max(0.001, (b.resetAt - now) / 1000);
      violations.push(`request on channel ${channelId} while its bucket was empty (${retryAfterS.toFixed(3)} s left)`);
      return { retryAfterS, headers: { ...rateHeaders(channelId), "retry-after": String(Math.ceil(retryAfterS)), "x-ratelimit-scope": "user" } };
    }
    b.used++;
    return null;
  }

  function rateHeaders(channelId) {
    const b = buckets.get(channelId);
    const now = Date.now();
    const resetAfter = b === undefined ? rateLimit.resetAfterMs / 1000 : Math.max(0, (b.resetAt - now) / 1000);
    return {
      "x-ratelimit-limit": String(rateLimit.limit),
      "x-ratelimit-remaining": String(b === undefined ? rateLimit.limit : Math.max(0, rateLimit.limit - b.used)),
      "x-ratelimit-reset": ((now + resetAfter * 1000) / 1000).toFixed(3),
      "x-ratelimit-reset-after": resetAfter.toFixed(3),
      "x-ratelimit-bucket": `channel-${channelId}`,
    };
  }

  const wss = new WebSocketServer({ noServer: true });
  srv.server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => onGateway(ws, req.url ?? "/"));
  });

  /** Sends a dispatch on a session (kept for Resume; delivered now when it has a connection). */
  function dispatch(session, t, d) {
    const s = ++session.seq;
    session.log.push({ s, t, d });
    if (session.ws !== null && session.ws.readyState === 1) session.ws.send(JSON.stringify({ op: 0, s, t, d }));
    return s;
  }

  function onGateway(ws, path) {
    const url = new URL(path, "http://x");
    if (url.searchParams.get("v") !== "10" || url.searchParams.get("encoding") !== "json")
      violations.push(`gateway connection without ?v=10&encoding=json: ${path}`);
    const conn = { url: path, opened: Date.now() };
    connections.push(conn);
    /** @type {string | null} */
    let sessionId = null;
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: heartbeatIntervalMs }, s: null, t: null }));
    ws.on("message", (raw) => {
      let p;
      try {
        p = JSON.parse(raw.toString("utf8"));
      } catch {
        ws.close(4002, "Decode error");
        return;
      }
      switch (p.op) {
        case 1:
          heartbeats.push({ at: Date.now(), d: p.d });
          if (fake.ackHeartbeats) ws.send(JSON.stringify({ op: 11 }));
          return;
        case 2: {
          identifies.push(p.d);
          if (sessionId !== null) return ws.close(4005, "Already authenticated");
          if (p.d?.token !== token) return ws.close(4004, "Authentication failed");
          if (typeof p.d?.intents !== "number") return ws.close(4013, "Invalid intent(s)");
          const session = { id: randomBytes(16).toString("hex"), seq: 0, log: [], ws };
          sessions.set(session.id, session);
          sessionId = session.id;
          current = session.id;
          dispatch(session, "READY", {
            v: 10,
            user: { id: BOT_ID, username: "exobot", discriminator: "0", bot: true },
            guilds: [],
            session_id: session.id,
            resume_gateway_url: `ws://127.0.0.1:${srv.port}/resume`,
            application: { id: BOT_ID, flags: 0 },
          });
          return;
        }
        case 6: {
          resumes.push(p.d);
          const session = sessions.get(p.d?.session_id);
          if (session === undefined || p.d?.token !== token || typeof p.d?.seq !== "number" || p.d.seq > session.seq) {
            ws.send(JSON.stringify({ op: 9, d: false }));
            return;
          }
          if (session.ws !== null && session.ws !== ws) session.ws.terminate();
          session.ws = ws;
          sessionId = session.id;
          current = session.id;
          for (const e of session.log) if (e.s > p.d.seq) ws.send(JSON.stringify({ op: 0, s: e.s, t: e.t, d: e.d }));
          dispatch(session, "RESUMED", {});
          return;
        }
        default:
          violations.push(`unexpected opcode ${p.op}`);
      }
    });
    ws.on("close", (code) => {
      conn.closedAt = Date.now();
      conn.code = code;
      const session = sessionId === null ? undefined : sessions.get(sessionId);
      if (session !== undefined && session.ws === ws) session.ws = null;
    });
  }

  function currentSession() {
    const s = current === null ? undefined : sessions.get(current);
    if (s === undefined) throw new Error("fake Discord: no session yet (the plugin has not identified)");
    return s;
  }

  return {
    url: `http://127.0.0.1:${srv.port}`,
    apiBase: `http://127.0.0.1:${srv.port}/api/v10`,
    gatewayUrl: `ws://127.0.0.1:${srv.port}`,
    port: srv.port,
    token,
    botId: BOT_ID,
    connections,
    identifies,
    resumes,
    heartbeats,
    calls,
    sent,
    typing,
    edits,
    violations,
    get ackHeartbeats() {
      return fake.ackHeartbeats;
    },
    set ackHeartbeats(v) {
      fake.ackHeartbeats = v;
    },
    /** Whether a session is identified and connected now. */
    connected() {
      const s = current === null ? undefined : sessions.get(current);
      return s !== undefined && s.ws !== null && s.ws.readyState === 1;
    },
    /**
     * Dispatches MESSAGE_CREATE on the current session. `guildId` absent = a DM.
     * @returns {{id: string, s: number}}
     */
    message(o) {
      const id = o.id ?? nextSnowflake();
      const d = {
        id,
        type: o.type ?? 0,
        channel_id: o.channelId,
        ...(o.guildId !== undefined ? { guild_id: o.guildId } : {}),
        author: { id: o.authorId, username: `user${o.authorId}`, discriminator: "0", ...(o.bot ? { bot: true } : {}) },
        content: o.content,
        attachments: o.attachments ?? [],
        embeds: [],
        mentions: [],
        timestamp: new Date().toISOString(),
        ...(o.webhookId !== undefined ? { webhook_id: o.webhookId } : {}),
      };
      const s = dispatch(currentSession(), "MESSAGE_CREATE", d);
      return { id, s };
    },
    /** Dispatches any event on the current session. */
    dispatch(t, d) {
      return dispatch(currentSession(), t, d);
    },
    /** Drops the current connection without a close frame (the session stays resumable). */
    drop() {
      currentSession().ws?.terminate();
    },
    /** Sends op 7 Reconnect. */
    requestReconnect() {
      currentSession().ws?.send(JSON.stringify({ op: 7, d: null }));
    },
    /** Sends op 9 Invalid Session with `d = resumable`. */
    invalidateSession(resumable) {
      const s = currentSession();
      s.ws?.send(JSON.stringify({ op: 9, d: resumable }));
      if (!resumable) sessions.delete(s.id);
    },
    /** Resolves once at least `n` messages were created; rejects after `timeoutMs` (default 30 000). */
    waitForSent: (n, timeoutMs) => sentArrivals.waitFor(n, timeoutMs),
    async close() {
      sentArrivals.release();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await srv.close();
    },
  };
}
