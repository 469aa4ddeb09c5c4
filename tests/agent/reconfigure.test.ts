// A config reload swaps the runtime's agents (`AgentRuntime.stageAgents`): a running turn keeps
// the agent it started with across all its model calls; a message already queued behind it runs
// with the new one; a bad agent throws before anything changes. Real runtime, memory session
// log, the real Anthropic adapter against the provider emulator (slowed so the swap lands mid-turn).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, lastUserText, makeRuntime, send, until } from "./support.js";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator({ latencyMs: 150 });
});

afterAll(async () => {
  await emulator?.close();
});

describe("AgentRuntime.stageAgents", () => {
  it("running turn: old snapshot for every model call; queued turn: the new agent at its start", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig({ systemPrompt: "old prompt" })]);
    // A model that asks for a tool (refused: none is offered) makes the turn call the model twice.
    const running = send(runtime, 'force:calculator {"expression":"12345+1"}');
    await until(() => emulator.requests.some((r) => lastUserText(r).includes("12345+1")), 10_000, "the running turn's first model call");
    const queued = send(runtime, "hello [queued]");
    runtime.stageAgents([agentConfig({ systemPrompt: "new prompt" })])();
    await Promise.all([running, queued]);

    // The running turn's calls: its message in them, the queued one's not (the queued turn's history holds both).
    const has = (r: (typeof emulator.requests)[number], tag: string) => JSON.stringify(r.body.messages).includes(tag);
    const runningCalls = emulator.requests.filter((r) => has(r, "12345+1") && !has(r, "[queued]"));
    expect(runningCalls.length).toBe(2);
    expect(runningCalls.map((r) => r.body.system)).toEqual(["old prompt", "old prompt"]);
    const queuedCall = emulator.requests.find((r) => lastUserText(r) === "hello [queued]");
    expect(queuedCall!.body.system).toBe("new prompt");
  });

  it("a malformed agent throws when staged; the running agents stay", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig({ systemPrompt: "kept prompt" })]);
    expect(() => runtime.stageAgents([agentConfig({ systemPrompt: "never", outbound: ["not an entry"] })])).toThrow();
    await send(runtime, "hello [kept]", { peer: "bob" });
    expect(emulator.requests.find((r) => lastUserText(r) === "hello [kept]")!.body.system).toBe("kept prompt");
  });
});
