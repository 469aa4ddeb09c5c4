// What the fake platforms (slack.mjs, whatsapp.mjs, telegram.mjs) share: reading a request body,
// JSON answers, waiting until a number of sends was recorded, and starting / stopping an HTTP
// server on 127.0.0.1. The platform-specific protocol stays in each fake.
import http from "node:http";

/**
 * The whole request body as UTF-8 text ("" for none).
 * @param {http.IncomingMessage} req
 * @returns {Promise<string>}
 */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/**
 * The whole request body as bytes.
 * @param {http.IncomingMessage} req
 * @returns {Promise<Buffer>}
 */
export function readBytes(req) {
  return new Promise((resolve, reject) => {
    /** @type {Buffer[]} */
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * A multipart/form-data body (RFC 7578) parsed by Node's own Fetch implementation (undici's
 * `Response.formData()`), independent of the plugin SDK's builder: text fields and file parts.
 * @param {Buffer} body
 * @param {string} contentType the request's Content-Type (with its boundary)
 * @returns {Promise<{fields: Record<string, string>, files: {field: string, name: string, type: string, bytes: Buffer}[]}>}
 * @throws TypeError when the body is not valid multipart for that boundary
 */
export async function parseMultipart(body, contentType) {
  const form = await new Response(body, { headers: { "content-type": contentType } }).formData();
  /** @type {Record<string, string>} */
  const fields = {};
  const files = [];
  for (const [field, v] of form.entries()) {
    if (typeof v === "string") fields[field] = v;
    else files.push({ field, name: v.name, type: v.type, bytes: Buffer.from(await v.arrayBuffer()) });
  }
  return { fields, files };
}

/**
 * `text` parsed as JSON; null when it is empty or not JSON.
 * @param {string} text
 * @returns {any}
 */
export function parseJsonOrNull(text) {
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/**
 * Answers with `body` as JSON.
 * @param {http.ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 * @param {Record<string, string>} [headers] extra headers; a `content-type` here replaces "application/json"
 */
export function sendJson(res, status, body, headers = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify(body));
}

/**
 * Lets tests wait until a list of recorded sends reaches a length. The fake calls `notify()`
 * after each push; `release()` (on close) ends every wait with what was recorded so far, so that
 * no test hangs on a stopped fake.
 * @template T
 * @param {T[]} list the fake's record, pushed to by the fake
 * @param {string} what names the fake and the record in the timeout error, e.g. "fake Slack: chat.postMessage call(s)"
 * @param {(list: T[]) => unknown} [describe] what the timeout error shows of the record (default the list itself)
 */
export function arrivals(list, what, describe = (l) => l) {
  /** @type {Array<() => void>} */
  let waiters = [];
  let released = false;
  const wake = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  return {
    notify: wake,
    release() {
      released = true;
      wake();
    },
    /**
     * Resolves with a copy of the record once it holds at least `n` entries (or the fake was
     * released); rejects after `timeoutMs` (default 30 000) naming what arrived.
     * @param {number} n
     * @param {number} [timeoutMs]
     * @returns {Promise<T[]>}
     */
    async waitFor(n, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (list.length < n && !released) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`${what}: expected ${n}, got ${list.length} after ${timeoutMs} ms: ${JSON.stringify(describe(list))}`);
        await new Promise((resolve) => {
          const t = setTimeout(resolve, Math.min(left, 250));
          waiters.push(() => {
            clearTimeout(t);
            resolve(undefined);
          });
        });
      }
      return list.slice();
    },
  };
}

/**
 * Starts an HTTP server on 127.0.0.1 (a random port) with `handler` for every request; a handler
 * that throws answers 500 with the error instead of crashing the test process.
 * @param {(req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>} handler
 * @returns {Promise<{server: http.Server, port: number, close: () => Promise<void>}>}
 *   `close` drops open connections (keep-alive clients would otherwise hold it open) and resolves once closed
 */
export async function startServer(handler) {
  const server = http.createServer((req, res) => {
    Promise.resolve()
      .then(() => handler(req, res))
      .catch((/** @type {unknown} */ e) => {
        if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
        res.end(`fake platform failed: ${e instanceof Error ? e.stack : String(e)}`);
      });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
  const port = /** @type {import("node:net").AddressInfo} */ (server.address()).port;
  return {
    server,
    port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve(undefined));
      }),
  };
}
