// The Gemini adapter (official @google/genai SDK) inside the agent runtime, against the provider
// emulator speaking Gemini's wire format: the system prompt goes as `systemInstruction`, parallel
// function calls come back as functionResponse parts in one `user` content (named, without the
// ids the adapter made up), and the usage of each call is journaled in the session log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TurnEvent } from "../../host/src/agent/types.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, ofKind, send } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

const calculator = { name: "calculator", description: "evaluates arithmetic", inputSchema: { type: "object", properties: { expression: { type: "string" } } } };

describe("a turn on Gemini", () => {
  it("sends the system instruction, runs parallel function calls, and journals the usage of each call", async () => {
    emulator.reset();
    const calls: unknown[] = [];
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ provider: "gemini", model: "gemini-2.5-flash", systemPrompt: "Be brief." })], {
      plugins: {
        tools: () => [calculator],
        callTool: async (_name, input) => {
          calls.push(input);
          return { content: String(calls.length * 10), isError: false };
        },
      },
    });
    const events: TurnEvent[] = [];
    const out = await send(runtime, "calc: 1+1; 2*3", { peer: "g", events });
    expect(out.text).toBe("The answer is 10, 20.");
    expect(calls).toEqual([{ expression: "1+1" }, { expression: "2*3" }]);

    const [first, second] = emulator.requests;
    expect(first!.path).toBe("/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    expect(first!.body.systemInstruction).toEqual({ parts: [{ text: "Be brief." }], role: "user" });
    expect(first!.body.generationConfig).toEqual({ maxOutputTokens: 4096 });
    expect(first!.body.tools[0].functionDeclarations[0]).toMatchObject({ name: "calculator", parametersJsonSchema: calculator.inputSchema });
    // The second call replays the model's two calls and answers both in one user content.
    const contents = second!.body.contents as any[];
    expect(contents.map((c) => c.role)).toEqual(["user", "model", "user"]);
    expect(contents[1].parts).toEqual([
      { functionCall: { name: "calculator", args: { expression: "1+1" } } },
      { functionCall: { name: "calculator", args: { expression: "2*3" } } },
    ]);
    expect(contents[2].parts).toEqual([
      { functionResponse: { name: "calculator", response: { output: "10" } } },
      { functionResponse: { name: "calculator", response: { output: "20" } } },
    ]);

    // Two distinct ids made up for the id-less calls, used for the tool results.
    const uses = events.filter((e) => e.type === "tool_use").map((e) => (e.data as { id: string }).id);
    expect(new Set(uses).size).toBe(2);
    expect(uses.every((id) => id.startsWith("gemini_call_"))).toBe(true);

    // Usage: promptTokenCount / candidatesTokenCount of each call, journaled and summed.
    const usage = ofKind(await log.read(keyOf("g")), "usage").map((e) => e.data as { inputTokens: number; outputTokens: number });
    expect(usage).toHaveLength(2);
    expect(usage.every((u) => u.inputTokens > 0 && u.outputTokens > 0)).toBe(true);
    expect(out.usage).toEqual({
      inputTokens: usage[0]!.inputTokens + usage[1]!.inputTokens,
      outputTokens: usage[0]!.outputTokens + usage[1]!.outputTokens,
    });
  });

  it("a thinking model's thoughtsTokenCount counts as output (it is billed as output)", async () => {
    emulator.reset();
    const { runtime } = makeRuntime(emulator, [agentConfig({ provider: "gemini", model: "gemini-2.5-flash" })]);
    const plain = await send(runtime, "one two", { peer: "t1" });
    const thinking = await send(runtime, "one THINK", { peer: "t2" });
    // Same answer length ("You said: one two" / "You said: one THINK"); 7 thinking tokens more.
    expect(thinking.usage.outputTokens).toBe(plain.usage.outputTokens + 7);
  });

  it("a prompt Gemini blocks (promptFeedback.blockReason, no candidate) ends the turn as a refusal, not a provider error", async () => {
    emulator.reset();
    const { runtime } = makeRuntime(emulator, [agentConfig({ provider: "gemini", model: "gemini-2.5-flash" })]);
    const out = await send(runtime, "BLOCK_PROMPT please", { peer: "blocked" });
    expect(out.stopReason).toBe("refusal");
    expect(out.text).toBe("");
  });

  it("a failed tool goes back as functionResponse {error}", async () => {
    emulator.reset();
    const { runtime } = makeRuntime(emulator, [agentConfig({ provider: "gemini", model: "gemini-2.5-flash" })], {
      plugins: { tools: () => [calculator], callTool: async () => ({ content: "division by zero", isError: true }) },
    });
    const out = await send(runtime, "what is 1/0?", { peer: "err" });
    expect(out.text).toBe("The answer is division by zero.");
    const last = (emulator.requests[1]!.body.contents as any[]).at(-1);
    expect(last.parts).toEqual([{ functionResponse: { name: "calculator", response: { error: "division by zero" } } }]);
    expect(emulator.requests[1]!.body.systemInstruction).toBeUndefined();
  });
});
