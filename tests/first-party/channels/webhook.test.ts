// The `webhook` channel plugin (plugins/channels/webhook), compiled from source and run in a real
// sandbox pool: signature check through hmac_verify, body validation, the normalized message,
// and `send` to a local receiver with the bearer token substituted by the host.
import { createHmac } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { OutboundMessage, ParseResult, SendReceipt, WebhookRequest } from "../../../host/src/channels/types.js";
import { DEFAULT_LIMITS, type EffectiveGrant } from "../../../host/src/plugins/capabilities.js";
import { createHostServices, createSandboxPool, type CallOutcome, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { captureLogger, tempDir } from "../../plugins/sandbox/support.js";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const SECRET = "whsec_0123-abc";
/** The outbound bearer token: a separate secret from the inbound signing key. */
const TOKEN = "out-token-4567";

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let wasm: Uint8Array;
let receiver: Server;
let receiverUrl = "";
const seen: Seen[] = [];
/** What the receiver answers next: status and body. */
let reply: { status: number; body: string } = { status: 200, body: '{"id":"r-1"}' };
const pools: SandboxPool[] = [];

async function pool(grant: EffectiveGrant): Promise<SandboxPool> {
  const p = createSandboxPool({
    name: "webhook",
    wasm,
    grant,
    limits: { ...DEFAULT_LIMITS, timeoutMs: 5_000 },
    stateDir: await tempDir("exoclaw-state-"),
    services: createHostServices(),
    logger: captureLogger(),
  });
  pools.push(p);
  return p;
}

const fullGrant = (): EffectiveGrant => ({
  http: { hosts: ["127.0.0.1"], methods: ["POST"] },
  secrets: { WEBHOOK_SECRET: SECRET, WEBHOOK_TOKEN: TOKEN },
  config: { base_url: `${receiverUrl}/hook/in` },
});

beforeAll(async () => {
  ({ wasm } = await buildPlugin("plugins/channels/webhook"));
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(reply.status, { "content-type": "application/json" }).end(reply.body);
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  receiver?.closeAllConnections();
  await new Promise<void>((resolve) => (receiver ? receiver.close(() => resolve()) : resolve()));
});

function out<T>(r: CallOutcome): T {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return unpackr.unpack(r.output) as T;
}

const sign = (body: string | Uint8Array, key = SECRET): string => `sha256=${createHmac("sha256", key).update(body).digest("hex")}`;

function request(body: string, headers: Record<string, string>, over: Partial<WebhookRequest> = {}): WebhookRequest {
  return { channel: "webhook", account: "default", method: "POST", path: "", query: "", headers, body: new TextEncoder().encode(body), ...over };
}

async function parse(p: SandboxPool, req: WebhookRequest): Promise<ParseResult> {
  return out<ParseResult>(await p.call("parse", packr.pack(req)));
}

const json401 = { status: 401, headers: { "content-type": "application/json" }, body: '{"error":"bad signature"}' };

describe("webhook plugin: parse", () => {
  it("a correctly signed message becomes one normalized message, answered 200 {ok:true}", async () => {
    const p = await pool(fullGrant());
    const body = JSON.stringify({
      peer: "alice",
      content: "hello ü",
      messageId: "m-1",
      thread: "t-9",
      peerKind: "group",
      guild: "g",
      team: "T",
      sender: "bob",
      account: "acct2",
    });
    const r = await parse(p, request(body, { "x-exoclaw-signature": sign(body) }));
    expect(r.response).toEqual({ status: 200, headers: { "content-type": "application/json" }, body: '{"ok":true}' });
    expect(r.messages).toEqual([
      {
        account: "acct2",
        peer: "alice",
        peerKind: "group",
        sender: "bob",
        guild: "g",
        team: "T",
        thread: "t-9",
        content: "hello ü",
        attachments: [],
        platformMessageId: "m-1",
      },
    ]);
    // Integer ids are accepted as their decimal form; optional fields stay absent.
    const body2 = JSON.stringify({ peer: 4242, content: "x", messageId: 7 });
    const r2 = await parse(p, request(body2, { "x-exoclaw-signature": sign(body2).toUpperCase().replace("SHA256=", "sha256=") }));
    expect(r2.messages).toEqual([{ peer: "4242", peerKind: "direct", content: "x", attachments: [], platformMessageId: "7" }]);
  });

  it("missing, malformed or wrong signatures get 401 and no messages", async () => {
    const p = await pool(fullGrant());
    const body = JSON.stringify({ peer: "alice", content: "hi", messageId: "m-2" });
    const variants: Record<string, string>[] = [
      {},
      { "x-exoclaw-signature": "" },
      { "x-exoclaw-signature": sign(body).slice("sha256=".length) }, // no prefix
      { "x-exoclaw-signature": sign(body, "other-key") },
      { "x-exoclaw-signature": sign(`${body} `) }, // signature of different bytes
      { "x-exoclaw-signature": "sha256=not-hex" },
      { "x-exoclaw-signature": sign(body).slice(0, -2) },
    ];
    for (const headers of variants) expect(await parse(p, request(body, headers)), JSON.stringify(headers)).toEqual({ response: json401, messages: [] });
  });

  it("without the signing secret granted every request is refused 503 (a configuration fault the platform redelivers), never 401, never accepted", async () => {
    for (const secrets of [{}, { WEBHOOK_TOKEN: TOKEN }] as Record<string, string>[]) {
      const p = await pool({ ...fullGrant(), secrets });
      const body = JSON.stringify({ peer: "alice", content: "hi", messageId: "m-3" });
      const r = await parse(p, request(body, { "x-exoclaw-signature": sign(body) }));
      expect(r.messages).toEqual([]);
      expect(r.response.status).toBe(503);
      expect(JSON.parse(String(r.response.body)).error).toMatch(/^cannot verify signatures: .*secret 'WEBHOOK_SECRET' is not granted/);
    }
  });

  it("signed but malformed bodies get 400 naming the problem; other methods 405", async () => {
    const p = await pool(fullGrant());
    const cases: [string, string][] = [
      ["{not json", "the body is not JSON"],
      ["[1,2]", "the body must be a JSON object"],
      [JSON.stringify({ content: "x", messageId: "1" }), "'peer' is required (a non-empty string)"],
      [JSON.stringify({ peer: "a", messageId: "1" }), "'content' is required (a string)"],
      [JSON.stringify({ peer: "a", content: "x" }), "'messageId' is required (a non-empty string, unique per message)"],
      [JSON.stringify({ peer: "a", content: "x", messageId: "1", thread: { x: 1 } }), "'thread' must be a string"],
      [JSON.stringify({ peer: "a", content: "x", messageId: "1", peerKind: "room" }), '\'peerKind\' must be "direct", "group" or "channel"'],
    ];
    for (const [body, problem] of cases) {
      const r = await parse(p, request(body, { "x-exoclaw-signature": sign(body) }));
      expect(r.messages, body).toEqual([]);
      expect(r.response.status, body).toBe(400);
      expect(JSON.parse(String(r.response.body)), body).toEqual({ error: problem });
    }
    const r = await parse(p, request("", {}, { method: "GET" }));
    expect(r.response.status).toBe(405);
    expect(r.messages).toEqual([]);
  });
});

describe("webhook plugin: send", () => {
  it("POSTs {account, peer, content, thread, replyTo} to base_url with the bearer token substituted by the host", async () => {
    const p = await pool(fullGrant());
    seen.length = 0;
    reply = { status: 200, body: '{"id":"r-1"}' };
    const msg: OutboundMessage = { account: "default", peer: "alice", thread: "t-9", content: "hi there", replyTo: "m-1" };
    expect(out<SendReceipt>(await p.call("send", packr.pack(msg)))).toEqual({ platformMessageId: "r-1" });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.method).toBe("POST");
    expect(seen[0]!.url).toBe("/hook/in");
    // The outbound token, never the inbound signing key.
    expect(seen[0]!.headers["authorization"]).toBe(`Bearer ${TOKEN}`);
    expect(JSON.stringify(seen[0])).not.toContain(SECRET);
    expect(seen[0]!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(seen[0]!.body)).toEqual({ account: "default", peer: "alice", content: "hi there", thread: "t-9", replyTo: "m-1" });
    // No id in the answer: a receipt without one.
    reply = { status: 204, body: "" };
    expect(out<SendReceipt>(await p.call("send", packr.pack({ account: "default", peer: "bob", content: "x" })))).toEqual({});
    expect(JSON.parse(seen[1]!.body)).toEqual({ account: "default", peer: "bob", content: "x" });
  });

  it("without WEBHOOK_TOKEN granted, replies carry no authorization header (and never the signing secret)", async () => {
    const p = await pool({ ...fullGrant(), secrets: { WEBHOOK_SECRET: SECRET } });
    seen.length = 0;
    reply = { status: 200, body: "{}" };
    expect(out<SendReceipt>(await p.call("send", packr.pack({ account: "default", peer: "alice", content: "hi" })))).toEqual({});
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers["authorization"]).toBeUndefined();
    expect(JSON.stringify(seen[0])).not.toContain(SECRET);
  });

  it("a non-2xx answer, a missing base_url or an ungranted host is a send failure naming the cause", async () => {
    reply = { status: 503, body: '{"error":"down"}' };
    const p = await pool(fullGrant());
    const failed = await p.call("send", packr.pack({ account: "default", peer: "alice", content: "x" }));
    expect(failed).toMatchObject({ ok: false, kind: "plugin_error" });
    expect(!failed.ok && failed.message).toBe(`plugin 'webhook': POST ${receiverUrl}/hook/in answered 503: {"error":"down"}`);
    const noUrl = await (await pool({ ...fullGrant(), config: {} })).call("send", packr.pack({ account: "default", peer: "a", content: "x" }));
    expect(!noUrl.ok && noUrl.message).toMatch(/config value 'base_url' is not set .*config key 'base_url' is not granted/);
    const noHost = await (await pool({ ...fullGrant(), http: { hosts: ["example.com"] } })).call(
      "send",
      packr.pack({ account: "default", peer: "a", content: "x" }),
    );
    expect(!noHost.ok && noHost.message).toMatch(/host '127\.0\.0\.1' is not granted/);
    for (const r of [failed, noUrl, noHost]) {
      expect(JSON.stringify(r)).not.toContain(SECRET);
      expect(JSON.stringify(r)).not.toContain(TOKEN);
    }
  });
});
