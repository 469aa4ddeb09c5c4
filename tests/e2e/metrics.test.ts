// End to end: /metrics, /ready and /health of the real gateway process. Chat turns over a real
// WebSocket against the provider emulator (plain, with a calculator tool call, and one the
// provider fails), a signed webhook request through the first-party `webhook` channel plugin
// (real Wasm), then /metrics parsed with a Prometheus text-format parser: the values must match
// the turns made. /metrics needs the gateway token when one is set; /ready is 503 with the reason
// while NATS is down and 200 once it is up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, NatsServer } from "../bus/nats-server.js";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, webhookGrant, type ChannelGateway, type FakePlatform } from "../support/channel-gateway.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { scrapeMetrics } from "../support/metrics.js";

const SECRET = "test-webhook-secret-0123456789";

/** Polls the async `probe` every 50 ms until it returns a value; rejects after `timeoutMs`. */
async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("/metrics after real turns", () => {
  let platform: FakePlatform;
  let gw: ChannelGateway;
  let client: RpcClient;
  const usage = { input: 0, output: 0 };
  const PLAIN_TURNS = 4;

  beforeAll(async () => {
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        channels: { webhook: { allow: ["alice"] } },
        plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
      },
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
    client = await RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
    const send = async (content: string) => {
      const { response } = await client.call("chat.send", { content });
      if (response.msg.result) {
        usage.input += response.msg.result.usage.inputTokens;
        usage.output += response.msg.result.usage.outputTokens;
      }
      return response.msg;
    };
    for (let i = 0; i < PLAIN_TURNS; i++) expect((await send(`hello ${i}`)).result.text).toBe(`You said: hello ${i}`);
    const calc = await send("what is 12.5 * (3 + 4)?");
    expect(calc.result.text).toContain("87.5");
    const failed = await send("FAIL_400 please");
    expect(failed.error.code).toBe(-32000);
    // One channel turn through a signed webhook, and one request for a channel that is not configured.
    const body = JSON.stringify({ peer: "alice", content: "via webhook", messageId: "m1" });
    const hook = await gw.postWebhook("webhook", undefined, body, {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, body)}`,
    });
    expect(hook.status).toBe(200);
    await platform.waitFor((r) => r.json?.replyTo === "m1", 20_000);
    expect((await gw.postWebhook("nosuchchannel", undefined, "{}")).status).toBe(404);
  });

  afterAll(async () => {
    client?.close();
    await gw?.stop();
    await platform?.close();
  });

  it("counts turns by agent and outcome, with their durations", async () => {
    // The webhook turn settles (and is counted) before its reply goes out; wait for the scrape to show it anyway.
    const scrape = await eventually(async () => {
      const s = await scrapeMetrics(gw.baseUrl);
      return s.value("exoclaw_turns_total", { agent: "main", outcome: "ok" }) >= PLAIN_TURNS + 2 ? s : undefined;
    });
    expect(scrape.type("exoclaw_turns_total")).toBe("COUNTER");
    expect(scrape.value("exoclaw_turns_total", { agent: "main", outcome: "ok" })).toBe(PLAIN_TURNS + 2);
    expect(scrape.value("exoclaw_turns_total", { agent: "main", outcome: "provider_error" })).toBe(1);
    expect(scrape.value("exoclaw_turns_total")).toBe(PLAIN_TURNS + 3);
    expect(scrape.type("exoclaw_turn_duration_seconds")).toBe("HISTOGRAM");
    expect(scrape.value("exoclaw_turn_duration_seconds", { agent: "main" })).toBe(PLAIN_TURNS + 3);
  });

  it("counts model calls and tokens as the turns reported them", async () => {
    const scrape = await scrapeMetrics(gw.baseUrl);
    // Plain turns and the webhook turn: one call each; the calculator turn: two; the failed one: one.
    expect(scrape.value("exoclaw_provider_call_duration_seconds", { provider: "anthropic", outcome: "ok" })).toBe(PLAIN_TURNS + 1 + 2);
    expect(scrape.value("exoclaw_provider_call_duration_seconds", { provider: "anthropic", outcome: "error" })).toBe(1);
    // The WebSocket turns' usage, as chat.send returned it, plus the webhook turn's (> 0).
    expect(usage.input).toBeGreaterThan(0);
    const input = scrape.value("exoclaw_tokens_total", { agent: "main", direction: "input" });
    const output = scrape.value("exoclaw_tokens_total", { agent: "main", direction: "output" });
    expect(input).toBeGreaterThan(usage.input);
    expect(output).toBeGreaterThan(usage.output);
    const [sample] = scrape.samples("exoclaw_tokens_total", { direction: "input" });
    expect(sample?.labels?.model).toBeTruthy();
  });

  it("counts plugin calls by plugin and kind, webhook requests by channel and status, connections and the queue", async () => {
    const scrape = await scrapeMetrics(gw.baseUrl);
    expect(scrape.value("exoclaw_plugin_calls_total", { plugin: "calculator", kind: "tool" })).toBe(1);
    // The webhook plugin: `parse` for the request, `send` for the reply.
    expect(scrape.value("exoclaw_plugin_calls_total", { plugin: "webhook", kind: "channel" })).toBe(2);
    expect(scrape.value("exoclaw_plugin_call_failures_total")).toBe(0);
    expect(scrape.value("exoclaw_webhook_requests_total", { channel: "webhook", status: "200" })).toBe(1);
    // An unconfigured channel name is not a label value: a client cannot grow the series.
    expect(scrape.value("exoclaw_webhook_requests_total", { channel: "unknown", status: "404" })).toBe(1);
    expect(scrape.samples("exoclaw_webhook_requests_total", { channel: "nosuchchannel" })).toEqual([]);
    expect(scrape.value("exoclaw_websocket_connections")).toBe(1);
    expect(scrape.value("exoclaw_turn_queue_depth")).toBe(0);
    expect(scrape.value("exoclaw_sandbox_restarts_total")).toBe(0);
    // No session key or peer anywhere in the exposition.
    expect(scrape.text).not.toContain("alice");
    expect(scrape.text).not.toContain("agent:main:");
  });

  it("/ready and /health answer 200 while everything is up", async () => {
    const ready = await fetch(`${gw.baseUrl}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { store: "ok", plugins: "ok", bus: "not_configured" } });
    expect((await fetch(`${gw.baseUrl}/health`)).status).toBe(200);
  });
});

describe("/metrics behind the gateway token", () => {
  const TOKEN = "metrics-test-token-0123456789";
  let emulator: Emulator;
  let gw: GatewayHandle;
  let base: string;

  beforeAll(async () => {
    emulator = await startEmulator();
    // Off loopback: a wildcard bind, which requires the token.
    gw = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_TOKEN: TOKEN }, ["--bind", "0.0.0.0"]);
    base = `http://127.0.0.1:${gw.port}`;
  });
  afterAll(async () => {
    await gw?.stop();
    await emulator?.close();
  });

  it("answers 401 without the token or with a wrong one, and the metrics with it", async () => {
    const none = await fetch(`${base}/metrics`);
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe("Bearer");
    expect(await none.text()).not.toContain("exoclaw_");
    const wrong = await fetch(`${base}/metrics`, { headers: { authorization: "Bearer not-the-token-at-all" } });
    expect(wrong.status).toBe(401);
    const scrape = await scrapeMetrics(base, TOKEN);
    expect(scrape.type("exoclaw_turns_total")).toBe("COUNTER");
    expect(scrape.value("exoclaw_websocket_connections")).toBe(0);
  });

  it("/ready and /health need no token", async () => {
    expect((await fetch(`${base}/ready`)).status).toBe(200);
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it("refuses other methods on /metrics and /ready", async () => {
    const post = await fetch(`${base}/ready`, { method: "POST" });
    expect(post.status).toBe(405);
  });
});

describe("/ready with a bus", () => {
  let emulator: Emulator;
  let gw: GatewayHandle;
  let nats: NatsServer | undefined;

  afterAll(async () => {
    await gw?.stop();
    await nats?.destroy();
    await emulator?.close();
  });

  it("is 503 naming the bus while NATS is down, 200 once it is up", async () => {
    emulator = await startEmulator();
    const port = await freePort();
    gw = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_NATS_URL: `nats://127.0.0.1:${port}` });
    const base = `http://127.0.0.1:${gw.port}`;
    const down = await fetch(`${base}/ready`);
    expect(down.status).toBe(503);
    const body = (await down.json()) as { status: string; checks: Record<string, string>; reasons: string[] };
    expect(body.status).toBe("not_ready");
    expect(body.checks.bus).toBe("disconnected");
    expect(body.reasons.join("; ")).toMatch(/bus: NATS is not connected/);
    // Liveness is not readiness: the process serves (channel messages wait in the spool).
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const before = await scrapeMetrics(base);
    expect(before.value("exoclaw_bus_connected")).toBe(0);

    nats = await NatsServer.startOn(port);
    const up = await eventually(async () => {
      const r = await fetch(`${base}/ready`);
      return r.status === 200 ? r : undefined;
    }, 30_000);
    expect(await up.json()).toEqual({ status: "ready", checks: { store: "ok", plugins: "ok", bus: "ok" } });
    const after = await scrapeMetrics(base);
    expect(after.value("exoclaw_bus_connected")).toBe(1);
    expect(after.value("exoclaw_bus_spooled_messages")).toBe(0);
    expect(after.type("exoclaw_bus_dead_letters_total")).toBe("COUNTER");
  });
});
