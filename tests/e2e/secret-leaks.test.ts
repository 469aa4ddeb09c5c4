// End to end: a provider (the emulator) whose error bodies quote the API key, and a platform
// whose error bodies quote the bearer token a channel plugin sent. Neither secret may reach a
// WebSocket client, a channel peer, the session store on disk, or the gateway's output — at
// log level info and at debug.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RpcClient } from "../support/gateway.js";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, type ChannelGateway, type FakePlatform, webhookGrant } from "../support/channel-gateway.js";

const API_KEY = "sk-ant-api03-LEAKCHECK-0123456789abcdefghijklmnop";
const WEBHOOK_SECRET = "webhook-secret-LEAKCHECK-0123456789";
/** The bearer token of the plugin's replies (separate from the signing secret). */
const WEBHOOK_TOKEN = "webhook-token-LEAKCHECK-9876543210";

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

describe.each(["info", "debug"] as const)("no secret leaks at log level %s", (level) => {
  let platform: FakePlatform;
  let gw: ChannelGateway;

  beforeAll(async () => {
    platform = await startFakePlatform((req) =>
      // The platform refuses the reply to "carol" and quotes the credential it got, as some do.
      req.json?.peer === "carol" ? { status: 401, body: { error: `invalid token: ${req.headers.authorization}` } } : {},
    );
    gw = await startChannelGateway({
      config: {
        // Each failure here must reach the provider (no retries, no breaker opening mid-file):
        // the tests check the provider's error text as the client and the peer see it.
        providers: { anthropic: { max_retries: 0, breaker_failures: 1000 } },
        channels: { webhook: { allow: ["alice", "carol"] } },
        plugins: {
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`, { token: true }),
          },
        },
      },
      env: { ANTHROPIC_API_KEY: API_KEY, TEST_WEBHOOK_SECRET: WEBHOOK_SECRET, TEST_WEBHOOK_TOKEN: WEBHOOK_TOKEN, EXOCLAW_LOG_LEVEL: level },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
  });

  const post = (body: object) => {
    const text = JSON.stringify(body);
    return gw.postWebhook("webhook", undefined, text, {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${hmacSha256Hex(WEBHOOK_SECRET, text)}`,
    });
  };

  it("a WebSocket client gets fixed text with the provider's request id, in the response and the error event", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    for (const [content, code] of [
      ["FAIL_500 QUOTE_KEY", -32000],
      ["FAIL_401 QUOTE_KEY", -32001],
      ["FAIL_ERROR_EVENT QUOTE_KEY", -32000],
    ] as const) {
      const { response, events } = await client.call("chat.send", { content, peer: "ws-peer" });
      const error = response.msg.error;
      expect(JSON.stringify(response.msg)).not.toContain(API_KEY);
      expect(JSON.stringify(events.map((e) => e.msg))).not.toContain(API_KEY);
      expect(error.code).toBe(code);
      expect(error.message).toMatch(/request id (req_|gw_)\w+/);
      expect(events.at(-1)!.msg.params.data).toEqual({ code, message: error.message });
      // The request id the client sees is in the operator's log.
      const id = /request id (\S+?)\.?(?: |$)/.exec(error.message)![1];
      await gw.waitForLog((l) => l.msg === "model provider failed" && l.requestId === id);
    }
    // The session history holds the same fixed text.
    const sessionKey = "agent:main:ws:default:ws-peer";
    const history = await client.call("chat.history", { sessionKey });
    const errors = history.response.msg.result.events.filter((e: { kind: string }) => e.kind === "error");
    expect(errors).toHaveLength(3);
    expect(JSON.stringify(history.response.msg)).not.toContain(API_KEY);
    client.close();
  });

  it("a channel peer's failure notice is fixed text with a request id", async () => {
    expect((await post({ peer: "alice", content: "FAIL_500 QUOTE_KEY", messageId: "f1" })).status).toBe(200);
    const notice = await platform.waitFor((r) => r.json?.peer === "alice" && r.json?.replyTo === "f1", 20_000);
    expect(notice.text).not.toContain(API_KEY);
    expect(notice.json.content).toMatch(/^Sorry, your message could not be answered: provider anthropic failed \(HTTP 500 api_error\); request id req_\w+$/);
  });

  it("a platform error quoting the plugin's bearer token is logged scrubbed", async () => {
    expect((await post({ peer: "carol", content: "hello", messageId: "c1" })).status).toBe(200);
    const line = await gw.waitForLog((l) => l.msg === "channel send failed; retrying" && l.peer === "carol", 20_000);
    expect(line.error).toMatch(/answered 401/);
    expect(line.error).toContain("Bearer [REDACTED]");
  });

  it("nothing secret is in the gateway's output or its state directory", async () => {
    // The store's files hold the turns (committed before each answer), so they are read here.
    expect(files(gw.stateDir).some((f) => readFileSync(f).includes("FAIL_500 QUOTE_KEY"))).toBe(true);
    for (const f of files(gw.stateDir)) {
      const bytes = readFileSync(f);
      expect(bytes.includes(API_KEY), f).toBe(false);
      expect(bytes.includes(WEBHOOK_SECRET), f).toBe(false);
      expect(bytes.includes(WEBHOOK_TOKEN), f).toBe(false);
    }
    const output = [...gw.gateway.stdout, ...gw.gateway.stderr].join("\n");
    expect(output).not.toContain(API_KEY);
    expect(output).not.toContain(WEBHOOK_SECRET);
    expect(output).not.toContain(WEBHOOK_TOKEN);
    const details = gw.gateway.logs.filter((l) => l.msg === "model provider error detail (secrets scrubbed)");
    if (level === "debug") {
      // The body is there for the operator, with the key replaced.
      expect(details.length).toBeGreaterThan(0);
      expect(details.some((l) => /credential received: (Bearer )?\[REDACTED\]/.test(String(l.detail)))).toBe(true);
    } else {
      expect(details).toHaveLength(0);
      expect(output).not.toMatch(/Emulated|credential received/);
    }
  });
});
