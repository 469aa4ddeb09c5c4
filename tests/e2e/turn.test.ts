import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

type Provider = "anthropic" | "openai" | "ollama" | "gemini";

function providerEnv(provider: Provider, url: string): Record<string, string> {
  switch (provider) {
    case "anthropic":
      return { ANTHROPIC_API_KEY: "sk-test-anthropic", ANTHROPIC_BASE_URL: url };
    case "openai":
      return { OPENAI_API_KEY: "sk-test-openai", OPENAI_BASE_URL: `${url}/v1` };
    case "ollama":
      return { EXOCLAW_PROVIDER: "ollama", OLLAMA_HOST: url };
    case "gemini":
      return { GEMINI_API_KEY: "test-gemini-key", GOOGLE_GEMINI_BASE_URL: url };
  }
}

/** The tool result the gateway sent back to the provider, in that provider's own shape. */
function toolResultOf(provider: Provider, req: RecordedRequest): { id?: string; name?: string; content: string } {
  if (provider === "gemini") {
    // A `user` content whose parts are functionResponse {name, response: {output}}.
    const last = (req.body.contents as any[]).at(-1);
    expect(last.role).toBe("user");
    const { name, id, response } = last.parts.find((p: any) => p.functionResponse).functionResponse;
    return { id, name, content: response.output };
  }
  const messages = req.body.messages as any[];
  if (provider === "anthropic") {
    const block = messages.at(-1).content.find((b: any) => b.type === "tool_result");
    return { id: block.tool_use_id, content: typeof block.content === "string" ? block.content : block.content[0].text };
  }
  const tool = messages.at(-1);
  expect(tool.role).toBe("tool");
  return { id: tool.tool_call_id, content: tool.content };
}

describe.each(["anthropic", "openai", "ollama", "gemini"] as const)("full turn via %s", (provider) => {
  let emulator: Emulator;
  let gateway: GatewayHandle;

  beforeAll(async () => {
    emulator = await startEmulator();
    gateway = await startGateway(providerEnv(provider, emulator.url));
  });
  afterAll(async () => {
    await gateway?.stop();
    await emulator?.close();
  });

  it.each(["json", "msgpack"] as const)("asks calculator in %s and streams the answer", async (encoding) => {
    emulator.reset();
    const client = await RpcClient.connect(gateway.url);
    const peer = `peer-${encoding}`;
    const { response, events } = await client.call("chat.send", { content: "what is 12.5 * (3 + 4)?", peer }, encoding);
    client.close();

    // Everything came back in the request's encoding.
    expect(response.binary).toBe(encoding === "msgpack");
    expect(events.every((e) => e.binary === (encoding === "msgpack"))).toBe(true);

    expect(response.msg.error).toBeUndefined();
    const result = response.msg.result;
    expect(result.sessionKey).toBe(`agent:main:ws:default:${peer}`);
    expect(result.agentId).toBe("main");
    expect(result.text).toBe("The answer is 87.5.");
    expect(result.stopReason).toBe("end_turn");
    expect(result.usage.inputTokens).toBeGreaterThan(0);
    expect(result.usage.outputTokens).toBeGreaterThan(0);

    const params = events.map((e) => e.msg.params);
    expect(params.map((p) => p.seq)).toEqual(params.map((_, i) => i));
    expect(new Set(params.map((p) => p.runId))).toEqual(new Set([result.runId]));
    const toolUse = params.find((p) => p.type === "tool_use");
    expect(toolUse.data).toMatchObject({ name: "calculator", input: { expression: "12.5 * (3 + 4)" } });
    const toolResult = params.find((p) => p.type === "tool_result");
    expect(toolResult.data).toEqual({ toolUseId: toolUse.data.id, content: "87.5", isError: false });
    expect(params.filter((p) => p.type === "usage")).toHaveLength(2);
    // The final text streamed in several deltas after the tool result.
    const after = params.slice(params.indexOf(toolResult) + 1).filter((p) => p.type === "text");
    expect(after.length).toBeGreaterThan(1);
    expect(after.map((p) => p.data.delta).join("")).toBe("The answer is 87.5.");

    // The provider saw the tool offered with its schema, then the tool_result with the right id.
    expect(emulator.requests).toHaveLength(2);
    const [first, second] = emulator.requests as [RecordedRequest, RecordedRequest];
    if (provider === "gemini") {
      // The official SDK's wire format: streamGenerateContent over SSE, key in x-goog-api-key.
      expect(first.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent");
      expect(first.headers["x-goog-api-key"]).toBe("test-gemini-key");
      expect(first.body.systemInstruction).toBeUndefined();
    }
    const tools = JSON.stringify(first.body.tools);
    expect(tools).toContain("calculator");
    expect(tools).toContain("expression");
    const sent = toolResultOf(provider, second);
    expect(sent.content).toBe("87.5");
    if (provider === "anthropic" || provider === "openai") expect(sent.id).toBe(toolUse.data.id);
    // Gemini's Developer API sends calls without an id: the response names the function, and the
    // id the gateway made up is not sent back.
    if (provider === "gemini") expect(sent).toMatchObject({ id: undefined, name: "calculator" });
  });

  it("runs parallel tool calls and keeps session history", async () => {
    emulator.reset();
    const client = await RpcClient.connect(gateway.url);
    const { response, events } = await client.call("chat.send", { content: "calc: 2^10; 1/0; 7*6", peer: "parallel" });
    expect(response.msg.result.text).toMatch(/^The answer is /);
    const results = events.map((e) => e.msg.params).filter((p) => p.type === "tool_result");
    expect(results).toHaveLength(3);
    const contents = results.map((r) => r.data.content);
    expect(contents).toContain("1024");
    expect(contents).toContain("42");
    // A failing tool becomes an error result for the model; the turn goes on.
    expect(results.filter((r) => r.data.isError)).toHaveLength(1);

    emulator.reset();
    const second = await client.call("chat.send", { content: "hello again", peer: "parallel" });
    expect(second.response.msg.result.text).toBe("You said: hello again");
    // The second turn's request carries the first turn's history.
    expect(JSON.stringify(emulator.requests[0]!.body.messages ?? emulator.requests[0]!.body.contents)).toContain("2^10");
    client.close();
  });
});
