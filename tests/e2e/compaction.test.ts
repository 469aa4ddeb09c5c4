/**
 * Compaction end to end: an agent with a small context window keeps talking past it; older
 * turns are folded into a summary written by the agent's own model (the emulator echoes, which
 * is a fine summary here) and recorded as a `compaction` event; the model input stays bounded,
 * also after a restart on the same store.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const WINDOW = 400; // tokens, estimated as characters / 4
const SESSION = "agent:main:ws:default:long";

let emulator: Emulator;
let state: string;
let config: string;
let gateway: GatewayHandle;

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-compaction-"));
  config = join(state, "exoclaw.toml");
  writeFileSync(config, `[[agents]]\nid = "main"\ncontext_window = ${WINDOW}\ntools = []\nsystem_prompt = "You are terse."\n`);
  gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state }, ["--config", config]);
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

const text = (content: unknown): string =>
  typeof content === "string"
    ? content
    : (content as { type: string; text?: string }[])
        .filter((b) => b.type === "text")
        .map((b) => b.text)
        .join("");
const isSummaryCall = (r: RecordedRequest) => text(r.body.messages.at(-1).content).startsWith("Summarize this conversation:");
const inputChars = (r: RecordedRequest) => (r.body.messages as { content: unknown }[]).reduce((n, m) => n + text(m.content).length, 0);

describe("compaction", () => {
  it("keeps the conversation going past the context window, with the summary in the log", async () => {
    const client = await RpcClient.connect(gateway.url);
    const usageEvents: number[] = [];
    for (let i = 0; i < 16; i++) {
      const content = `turn ${i}: the quick brown fox number ${i} jumps over the lazy dog again and again`;
      const { response, events } = await client.call("chat.send", { content, peer: "long" });
      expect(response.msg.result?.text, JSON.stringify(response.msg)).toBe(`You said: ${content}`);
      usageEvents.push(events.filter((e) => e.msg.params.type === "usage").length);
    }

    const history = (await client.call("chat.history", { sessionKey: SESSION, limit: 1000 })).response.msg.result.events as any[];
    const compactions = history.filter((e) => e.kind === "compaction");
    expect(compactions.length).toBeGreaterThan(0);
    for (const c of compactions) {
      expect(c.data.summary).toMatch(/^You said: Summarize this conversation:/);
      expect(c.data.upToSeq).toBeLessThan(c.seq);
    }
    // Each summarization was one model call without tools, with the summarizer's system prompt,
    // reported as an extra usage event in the turn that compacted.
    const summaryCalls = emulator.requests.filter(isSummaryCall);
    expect(summaryCalls).toHaveLength(compactions.length);
    expect(summaryCalls.every((r) => JSON.stringify(r.body.system).includes("condense") && !r.body.tools?.length)).toBe(true);
    expect(usageEvents.filter((n) => n === 2)).toHaveLength(compactions.length);

    // The model input stays bounded; after the first compaction it starts with the summary.
    const turnCalls = emulator.requests.filter((r) => !isSummaryCall(r));
    expect(turnCalls).toHaveLength(16);
    for (const r of turnCalls) expect(inputChars(r) / 4).toBeLessThanOrEqual(WINDOW + 100);
    const last = turnCalls.at(-1)!;
    expect(text(last.body.messages[0].content)).toMatch(/^\[Summary of the earlier conversation\]\n\nYou said: Summarize/);
    expect(text(last.body.messages.at(-1).content)).toMatch(/^turn 15:/);
    expect(JSON.stringify(last.body.system)).toContain("You are terse.");
    client.close();
  });

  it("keeps using the summary after a restart on the same store", async () => {
    await gateway.stop();
    emulator.reset();
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state }, ["--config", config]);
    const client = await RpcClient.connect(gateway.url);
    const { response } = await client.call("chat.send", { content: "still there?", peer: "long" });
    expect(response.msg.result.text).toBe("You said: still there?");
    const first = emulator.requests.find((r) => !isSummaryCall(r))!;
    expect(text(first.body.messages[0].content)).toMatch(/^\[Summary of the earlier conversation\]/);
    expect(inputChars(first) / 4).toBeLessThanOrEqual(WINDOW + 100);
    client.close();
  });
});
