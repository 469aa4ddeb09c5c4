import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const ENV = {
  anthropic: (url: string) => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: url }),
  openai: (url: string) => ({ OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${url}/v1` }),
  ollama: (url: string) => ({ EXOCLAW_PROVIDER: "ollama", OLLAMA_HOST: url }),
  gemini: (url: string) => ({ GEMINI_API_KEY: "test-gemini-key", GOOGLE_GEMINI_BASE_URL: url }),
};

describe.each(["anthropic", "openai", "ollama", "gemini"] as const)("%s failing mid-turn", (provider) => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  beforeAll(async () => {
    emulator = await startEmulator();
    gateway = await startGateway(ENV[provider](emulator.url));
  });
  afterAll(async () => {
    await gateway?.stop();
    await emulator?.close();
  });

  it.each(["FAIL_500", "FAIL_CUT", "FAIL_ERROR_EVENT"])("%s -> error event + JSON-RPC error, gateway keeps serving", async (token) => {
    const client = await RpcClient.connect(gateway.url);
    const { response, events } = await client.call("chat.send", { content: `please ${token}`, peer: token });
    const error = response.msg.error;
    expect(error.code).toBe(-32000);
    expect(error.message).toMatch(new RegExp(provider));
    const last = events.at(-1)!.msg.params;
    expect(last.type).toBe("error");
    expect(last.data).toEqual({ code: error.code, message: error.message });
    // The same session and the gateway still work.
    const ok = await client.call("chat.send", { content: "ping", peer: token });
    expect(ok.response.msg.result.text).toBe("pong");
    client.close();
  });

  it("the iteration limit ends a runaway tool loop with -32002", async () => {
    const client = await RpcClient.connect(gateway.url);
    emulator.reset();
    // Each call's input differs (LOOP_GROWING), so loop detection (loop_limit) does not end it first.
    const { response, events } = await client.call("chat.send", { content: "LOOP_GROWING", peer: "loop" });
    expect(response.msg.error.code).toBe(-32002);
    expect(response.msg.error.message).toMatch(/10 model calls/);
    expect(emulator.requests).toHaveLength(10);
    expect(events.filter((e) => e.msg.params.type === "tool_result")).toHaveLength(9);
    client.close();
  });
});

describe("no provider reachable", () => {
  it("the gateway starts and chat.send says how to configure one", async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise((r) => probe.close(r));
    const gateway = await startGateway({ EXOCLAW_PROVIDER: "ollama", OLLAMA_HOST: `http://127.0.0.1:${port}` });
    try {
      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      const { response } = await client.call("chat.send", { content: "hi" });
      expect(response.msg.error.code).toBe(-32001);
      expect(response.msg.error.message).toMatch(/unreachable/);
      expect(response.msg.error.message).toMatch(/ANTHROPIC_API_KEY/);
      client.close();
    } finally {
      await gateway.stop();
    }
  });
});
