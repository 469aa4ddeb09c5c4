// End to end: an agent with a fallback chain (`models`) in a real gateway process, against the
// provider emulator scripted to fail the primary. The client gets the fallback's answer (with a
// `failover` chat.event first), the session log keeps the switch on the call's `usage` event,
// /metrics counts it, and a 400 fails the turn without falling back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient } from "../support/gateway.js";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { scrapeMetrics } from "../support/metrics.js";

describe("fallback chain through the gateway", () => {
  let emulator: Emulator;
  let gw: ChannelGateway;
  let client: RpcClient;

  beforeAll(async () => {
    emulator = await startEmulator();
    gw = await startChannelGateway({
      emulator,
      config: {
        providers: {
          anthropic: { max_retries: 1, retry_base_ms: 10, breaker_failures: 100 },
          openai: { base_url: `${emulator.url}/v1`, max_retries: 0 },
        },
        agents: [{ id: "main", models: ["anthropic/primary", "openai/emulator"] }],
      },
      env: { OPENAI_API_KEY: "sk-test-openai" },
    });
    client = await RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    await emulator?.close();
  });

  it("500 on the primary: the turn completes on the fallback; the switch is in the log and the metrics", async () => {
    emulator.clearFaults();
    const rule = emulator.fault({ model: "primary", mode: "http_500" });
    const { response, events } = await client.call("chat.send", { content: "hello", peer: "p500" });
    expect(response.msg.error).toBeUndefined();
    expect(response.msg.result.text).toBe("You said: hello");
    expect(rule.hits).toBe(2); // 1 + max_retries 1
    const failover = events.map((e) => e.msg.params).filter((p) => p.type === "failover");
    expect(failover.map((p) => p.data)).toEqual([{ from: "anthropic/primary", to: "openai/emulator", reason: "server_error", discard: false }]);

    const history = await client.call("chat.history", { sessionKey: response.msg.result.sessionKey });
    const stored = history.response.msg.result.events as { kind: string; data: any }[];
    expect(stored.find((e) => e.kind === "usage")!.data.failover).toEqual([
      { from: "anthropic/primary", to: "openai/emulator", reason: "server_error", discard: false },
    ]);
    const scrape = await scrapeMetrics(gw.baseUrl);
    expect(scrape.value("exoclaw_provider_switches_total", { kind: "retry", provider: "anthropic", reason: "server_error" })).toBe(1);
    expect(scrape.value("exoclaw_provider_switches_total", { kind: "fallback", provider: "openai", reason: "server_error" })).toBe(1);
  });

  it("a cut mid-answer: the client is told to discard the partial text; the log and the next turn see the answer once", async () => {
    emulator.clearFaults();
    emulator.fault({ model: "primary", mode: "cut" });
    const { response, events } = await client.call("chat.send", { content: "tell me", peer: "pcut" });
    expect(response.msg.result.text).toBe("You said: tell me");
    const seen = events.map((e) => e.msg.params);
    const at = seen.findLastIndex((p) => p.type === "failover");
    expect(seen[at].data).toMatchObject({ to: "openai/emulator", reason: "stream_broken", discard: true });
    // Text before the last discarding failover is void; after it comes the whole answer, once.
    expect(seen.slice(0, at).some((p) => p.type === "text" && p.data.delta === "Partial ")).toBe(true);
    expect(
      seen
        .slice(at)
        .filter((p) => p.type === "text")
        .map((p) => p.data.delta)
        .join(""),
    ).toBe("You said: tell me");
    const history = await client.call("chat.history", { sessionKey: response.msg.result.sessionKey });
    const texts = (history.response.msg.result.events as { kind: string; data: any }[]).filter((e) => e.kind === "assistant_text").map((e) => e.data.text);
    expect(texts).toEqual(["You said: tell me"]);
    // The next turn's history is valid and holds the answer once.
    emulator.clearFaults();
    emulator.reset();
    const next = await client.call("chat.send", { content: "again", peer: "pcut" });
    expect(next.response.msg.result.text).toBe("You said: again");
    const sent = JSON.stringify(emulator.requests[0]!.body.messages);
    expect(sent.match(/You said: tell me/g)).toHaveLength(1);
    expect(sent).not.toContain("Partial");
  });

  it("a 400 from the primary fails the turn without trying the fallback", async () => {
    emulator.clearFaults();
    emulator.reset();
    emulator.fault({ model: "primary", mode: "http_400" });
    const { response, events } = await client.call("chat.send", { content: "bad", peer: "p400" });
    expect(response.msg.error.code).toBe(-32000);
    expect(response.msg.error.message).toMatch(/HTTP 400/);
    expect(emulator.requests.map((r) => r.provider)).toEqual(["anthropic"]);
    expect(events.some((e) => e.msg.params.type === "failover")).toBe(false);
  });
});
