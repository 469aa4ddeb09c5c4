// The turn deadline (`turn_timeout_ms`) in the runtime: it covers tool calls as well as model
// calls, cancels the running call through its signal, closes the turn with an `error` event, and
// frees the session even when something in the turn ignores the abort. Short deadlines keep the
// tests quick; nothing is timed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TurnTimeoutError } from "../../host/src/agent/errors.js";
import { createProviderSet } from "../../host/src/agent/providers/index.js";
import type { ModelProvider } from "../../host/src/agent/types.js";
import type { ToolSpec } from "../../host/src/plugins/types.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, ofKind, send } from "./support.js";

const HANG: ToolSpec = { name: "hang", description: "never answers on its own", inputSchema: { type: "object" } } as ToolSpec;

describe("turn deadline", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator?.close();
  });

  it("ends a turn stuck in a tool call: the tool's signal is aborted, the session records the error and answers its next message", async () => {
    const toolSignals: AbortSignal[] = [];
    // Agent "warm" (default deadline) makes the first call, which imports the SDK, so the short
    // deadline of "main" passes in the tool call.
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ turnTimeoutMs: 1000 }), agentConfig({ id: "warm" })], {
      plugins: {
        tools: () => [HANG],
        callTool: (_name, _input, signal) => {
          if (!signal) throw new Error("the runtime passes every tool call its turn's signal");
          toolSignals.push(signal);
          return new Promise((resolve) => signal.addEventListener("abort", () => resolve({ content: "aborted", isError: true }), { once: true }));
        },
      },
    });
    expect((await send(runtime, "ping", { agent: "warm" })).text).toBe("pong");
    const stuck = send(runtime, "use:hang", { peer: "tool" });
    const next = send(runtime, "ping", { peer: "tool" });
    const err = await stuck.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TurnTimeoutError);
    expect(err).toMatchObject({
      code: -32006,
      message: "turn stopped: the turn deadline of 1 s (turn_timeout_ms) passed",
      data: { reason: "turn_timeout", turnTimeoutMs: 1000 },
    });
    expect(toolSignals).toHaveLength(1);
    expect(toolSignals[0]!.aborted).toBe(true);
    expect((await next).text).toBe("pong");
    const events = await log.read(keyOf("tool"), { afterSeq: 0, limit: 100 });
    expect(ofKind(events, "error").map((e) => e.data)).toEqual([{ code: -32006, message: "turn stopped: the turn deadline of 1 s (turn_timeout_ms) passed" }]);
  });

  it("frees the session even when the provider ignores the abort", async () => {
    const real = createProviderSet({
      anthropic: { apiKey: "sk-test", baseUrl: emulator.url, timeoutMs: 60_000 },
      openai: { timeoutMs: 60_000 },
      ollama: { timeoutMs: 60_000 },
      gemini: { timeoutMs: 60_000 },
    });
    let calls = 0;
    // The first call never yields and never looks at its signal (a broken adapter); later calls are real.
    const deaf: ModelProvider = {
      name: "anthropic",
      stream(request, signal) {
        if (calls++ === 0) return { [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => {}) }) };
        return real("anthropic").stream(request, signal);
      },
    };
    // 2 s: room for the next turn's first real call (which imports the SDK) within its own deadline.
    const { runtime } = makeRuntime(emulator, [agentConfig({ turnTimeoutMs: 2000 })], { providers: () => deaf });
    const stuck = send(runtime, "hello", { peer: "deaf" });
    const next = send(runtime, "ping", { peer: "deaf" });
    await expect(stuck).rejects.toBeInstanceOf(TurnTimeoutError);
    expect((await next).text).toBe("pong");
  });
});
