// The webhook route in both real transports (uWebSockets.js and node:http + ws), driven by real
// HTTP clients: URL decoding, head and body handed over intact, body limit while streaming,
// client aborts.
import { createHash } from "node:crypto";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createUwsTransport, loadUws } from "../../host/src/gateway/transport-uws.js";
import { createWsTransport } from "../../host/src/gateway/transport-ws.js";
import type { Transport, TransportHandlers } from "../../host/src/gateway/types.js";
import { createWebhookHandler, parseWebhookPath, type WebhookTarget } from "../../host/src/gateway/webhook.js";
import { WEBHOOK_LIMIT_DEFAULTS } from "../../host/src/config/types.js";

describe("webhook paths", () => {
  it.each([
    ["/webhook/telegram", { channel: "telegram", account: "default", rest: "" }],
    ["/webhook/telegram/", { channel: "telegram", account: "default", rest: "" }],
    ["/webhook/telegram/bot1", { channel: "telegram", account: "bot1", rest: "" }],
    ["/webhook/my%2Dchan/acc%2E1/extra/x%20y", { channel: "my-chan", account: "acc.1", rest: "/extra/x y" }],
  ])("%s", (path, expected) => {
    expect(parseWebhookPath(path)).toEqual(expected);
  });

  it.each([
    ["/webhook/", /invalid channel name ""/],
    ["/webhook/bad%20name", /invalid channel name "bad name"/],
    ["/webhook/a%2Fb", /invalid channel name "a\/b"/],
    ["/webhook/ok/bad:acct", /invalid account name "bad:acct"/],
    [`/webhook/${"x".repeat(65)}`, /invalid channel name/],
    ["/webhook/%E0%A4%A", /malformed percent-encoding/],
  ])("rejects %s with 400", (path, reason) => {
    const a = parseWebhookPath(path) as { status: number; body: string };
    expect(a.status).toBe(400);
    expect(JSON.parse(a.body).error).toMatch(reason);
  });

  it("leaves other paths alone", () => {
    expect(parseWebhookPath("/hooks/x")).toBeNull();
  });
});

/** Records what reached the service and echoes a digest of it. */
function echoTarget() {
  const seen: Parameters<WebhookTarget["handleWebhook"]>[0][] = [];
  const target: WebhookTarget = {
    webhookPolicy: (channel: string) =>
      channel === "small" || channel === "known"
        ? { maxBodyBytes: channel === "small" ? 1024 : 4 * 1024 * 1024, accounts: ["default", "acc.1"], signatureHeaders: [] }
        : undefined,
    intakeRefused() {},
    async handleWebhook(req) {
      seen.push(req);
      await new Promise((r) => setTimeout(r, 5)); // answer after an await, as the real service does
      const sha = createHash("sha256").update(req.body).digest("hex");
      return {
        status: 202,
        headers: { "content-type": "application/json", "x-echo": "1", "content-length": "1" },
        body: JSON.stringify({ bytes: req.body.length, sha }),
      };
    },
  };
  return { seen, target };
}

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** One HTTP request; the body is written in `chunks` (chunked encoding when no content-length is given). */
function call(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string | string[]>; chunks?: Buffer[]; abortAfterFirst?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: opts.method ?? "POST", headers: opts.headers }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString("utf8") }));
      res.on("error", reject);
    });
    req.on("error", reject);
    const chunks = opts.chunks ?? [];
    if (opts.abortAfterFirst) {
      req.write(chunks[0]);
      setTimeout(() => {
        req.destroy();
        resolve({ status: 0, headers: {}, text: "" });
      }, 50);
      return;
    }
    let i = 0;
    const next = () => {
      if (i >= chunks.length) return req.end();
      const ok = req.write(chunks[i++]!);
      if (ok) setImmediate(next);
      else req.once("drain", next);
    };
    next();
  });
}

const transports: [string, () => Transport | null][] = [
  [
    "uws",
    () => {
      const l = loadUws();
      return l.ok ? createUwsTransport(l.uws, 16 * 1024 * 1024) : null;
    },
  ],
  ["ws", () => createWsTransport()],
];

describe.each(transports)("webhook route on the %s transport", (_name, make) => {
  let transport: Transport | null;
  let port = 0;
  const { seen, target } = echoTarget();

  beforeAll(async () => {
    transport = make();
    if (transport === null) return;
    const handlers: TransportHandlers = {
      authorize: () => ({ ok: false, status: 401, error: "no WebSocket here" }),
      open() {},
      message() {},
      close() {},
      http: createWebhookHandler(target, WEBHOOK_LIMIT_DEFAULTS),
    };
    port = await transport.listen({ host: "127.0.0.1", port: 0, maxPayloadBytes: 1 << 20 }, handlers);
  });
  afterAll(async () => {
    await transport?.close();
  });

  it("hands the decoded names, method, query, headers and a multi-chunk body over intact", async ({ skip }) => {
    if (transport === null) return skip();
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(8192, i));
    const whole = Buffer.concat(chunks);
    const r = await call(port, "/webhook/known/acc%2E1/extra?a=1&b=%20", {
      method: "PUT",
      headers: { "X-Sig": ["one", "two"], "content-type": "application/octet-stream" },
      chunks,
    });
    expect(r.status).toBe(202);
    expect(r.headers["x-echo"]).toBe("1");
    expect(JSON.parse(r.text)).toEqual({ bytes: whole.length, sha: createHash("sha256").update(whole).digest("hex") });
    const req = seen.at(-1)!;
    expect(req).toMatchObject({ channel: "known", account: "acc.1", method: "PUT", path: "/extra", query: "a=1&b=%20" });
    expect(req.headers["x-sig"]).toBe("one, two");
    expect(req.remoteAddress).toMatch(/127\.0\.0\.1/);
  });

  it("answers a body-less GET", async ({ skip }) => {
    if (transport === null) return skip();
    const r = await call(port, "/webhook/known?hub.challenge=42", { method: "GET" });
    expect(r.status).toBe(202);
    expect(JSON.parse(r.text).bytes).toBe(0);
    expect(seen.at(-1)).toMatchObject({ method: "GET", query: "hub.challenge=42" });
  });

  it("answers 413 while a chunked body streams past the limit, and the route stays usable", async ({ skip }) => {
    if (transport === null) return skip();
    const before = seen.length;
    const r = await call(port, "/webhook/small", { chunks: [Buffer.alloc(600), Buffer.alloc(600), Buffer.alloc(600)] }).catch((err: Error) => ({
      status: -1,
      text: err.message,
      headers: {},
    }));
    // The server may close the connection while the client still writes; the status, when read, is 413.
    if (r.status !== -1) {
      expect(r.status).toBe(413);
      expect(JSON.parse(r.text).error).toBe("request body larger than 1024 bytes");
    }
    const declared = await call(port, "/webhook/small", { headers: { "content-length": "5000" }, chunks: [Buffer.alloc(5000)] }).catch((err: Error) => ({
      status: -1,
      text: err.message,
      headers: {},
    }));
    if (declared.status !== -1) expect(declared.status).toBe(413);
    expect([r.status, declared.status]).toContain(413);
    expect(seen.length).toBe(before);
    expect((await call(port, "/webhook/small", { chunks: [Buffer.from("ok")] })).status).toBe(202);
  });

  it("answers 404 for an unknown channel or another path, 400 for a bad name, before reading the body", async ({ skip }) => {
    if (transport === null) return skip();
    const unknown = await call(port, "/webhook/nope", { chunks: [Buffer.from("{}")] });
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text).error).toBe('unknown channel "nope"');
    expect((await call(port, "/elsewhere", { method: "GET" })).status).toBe(404);
    expect((await call(port, "/webhook/b%20d", { method: "GET" })).status).toBe(400);
    expect((await call(port, "/health", { method: "GET" })).status).toBe(200);
  });

  it("survives a client that goes away mid-body", async ({ skip }) => {
    if (transport === null) return skip();
    await call(port, "/webhook/known", { headers: { "content-length": "100000" }, chunks: [Buffer.alloc(1000)], abortAfterFirst: true });
    await new Promise((r) => setTimeout(r, 50));
    expect((await call(port, "/webhook/known", { chunks: [Buffer.from("after")] })).status).toBe(202);
  });
});
