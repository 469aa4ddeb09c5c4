// End to end: two agents in one exoclaw.toml, bound to two peers of the same channel, each with
// its own provider, model, tool allowlist and system prompt (one from a soul file, reloaded when
// it changes). Real gateway process, real WebSocket clients naming their peer in chat.send;
// what each agent really used is read from the provider emulator's recorded requests.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { startEmulator, type Emulator, type RecordedRequest } from "../support/emulator/server.mjs";
import { RpcClient } from "../support/gateway.js";

let emulator: Emulator;
let gw: ChannelGateway;
let dir: string;
let soul: string;

beforeAll(async () => {
  emulator = await startEmulator();
  dir = mkdtempSync(join(tmpdir(), "exoclaw-agents-"));
  soul = join(dir, "sales-soul.md");
  writeFileSync(soul, "# Sales soul\nYou sell calculators.\n");
  gw = await startChannelGateway({
    emulator,
    config: {
      agents: [
        { id: "sales", provider: "anthropic", model: "emu-sales-model", system_prompt: "Be brief.", soul, tools: ["calculator"] },
        { id: "support", provider: "openai", model: "emu-support-model", system_prompt: "You are support.", tools: ["json_*", "time"], max_iterations: 3 },
      ],
      default_agent: "sales",
      bindings: [
        { agent: "sales", peer: "alice" },
        { agent: "support", peer: "bob" },
      ],
    },
    env: { OPENAI_API_KEY: "sk-test", OPENAI_BASE_URL: `${emulator.url}/v1` },
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await emulator?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The model requests whose body mentions `marker`. */
const requestsWith = (marker: string): RecordedRequest[] => emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));
const anthropicTools = (r: RecordedRequest) => ((r.body.tools ?? []) as { name: string }[]).map((t) => t.name).sort();
const openaiTools = (r: RecordedRequest) => ((r.body.tools ?? []) as { function: { name: string } }[]).map((t) => t.function.name).sort();

async function chat(client: RpcClient, peer: string, content: string) {
  const { response } = await client.call("chat.send", { content, peer });
  expect(response.msg.error, JSON.stringify(response.msg.error)).toBeUndefined();
  return response.msg.result as { agentId: string; sessionKey: string; text: string };
}

describe("two agents bound to two peers", () => {
  it("each peer's messages reach its own agent: provider, model, tools and system prompt", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const [a, b] = await Promise.all([chat(client, "alice", "hello from alice-1"), chat(client, "bob", "hello from bob-1")]);
    expect(a).toMatchObject({ agentId: "sales", sessionKey: "agent:sales:ws:default:alice", text: "You said: hello from alice-1" });
    expect(b).toMatchObject({ agentId: "support", sessionKey: "agent:support:ws:default:bob", text: "You said: hello from bob-1" });

    const [ra] = requestsWith("hello from alice-1");
    expect(ra).toMatchObject({ provider: "anthropic" });
    expect(ra!.body.model).toBe("emu-sales-model");
    expect(ra!.body.system).toBe("Be brief.\n\n# Sales soul\nYou sell calculators.");
    expect(anthropicTools(ra!)).toEqual(["calculator"]);

    const [rb] = requestsWith("hello from bob-1");
    expect(rb).toMatchObject({ provider: "openai" });
    expect(rb!.body.model).toBe("emu-support-model");
    expect(rb!.body.messages[0]).toMatchObject({ role: "system", content: "You are support." });
    expect(openaiTools(rb!)).toEqual(["json_query", "time"]);
    client.close();
  });

  it("a tool outside an agent's allowlist is not offered to its model", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    // The support agent is not offered the calculator: the emulator's "what is ...?" rule does not fire.
    const b = await chat(client, "bob", "what is 6*7? bob-2");
    expect(b.text).toBe("You said: what is 6*7? bob-2");
    // The sales agent has it.
    const a = await chat(client, "alice", "what is 6*7? alice-2");
    expect(a.text).toBe("The answer is 42.");
    client.close();
  });

  it("a model that calls a tool outside its agent's allowlist gets an error tool_result; the plugin never runs", async () => {
    // `force:` makes the emulator ask for the tool although the request did not offer it, as a
    // prompt-injected model would. The host must refuse it, whatever the provider's wire format.
    const client = await RpcClient.connect(gw.gateway.url);
    try {
      const calls = async () => {
        const list = (await client.call("plugin.list")).response.msg.result as { name: string; calls: number }[];
        return Object.fromEntries(list.map((p) => [p.name, p.calls]));
      };
      const before = await calls();
      const cases = [
        { peer: "bob", agent: "support", tool: "calculator", content: 'force:calculator {"expression": "6*7"}' }, // openai wire
        { peer: "alice", agent: "sales", tool: "time", content: "force:time {}" }, // anthropic wire
      ];
      for (const c of cases) {
        const { response, events } = await client.call("chat.send", { content: c.content, peer: c.peer });
        expect(response.msg.error, JSON.stringify(response.msg.error)).toBeUndefined();
        expect(response.msg.result.agentId).toBe(c.agent);
        const params = events.map((e) => e.msg.params);
        const use = params.find((e) => e.type === "tool_use");
        expect(use?.data.name, c.tool).toBe(c.tool);
        const result = params.find((e) => e.type === "tool_result");
        expect(result?.data, c.tool).toEqual({ toolUseId: use.data.id, content: `tool "${c.tool}" is not available to this agent`, isError: true });
        // The refusal is what the model saw next, and it ended the turn.
        const [first, second] = requestsWith(`force:${c.tool}`);
        expect(first && second, c.tool).toBeTruthy();
        expect(JSON.stringify(second!.body.messages)).toContain(`tool \\"${c.tool}\\" is not available to this agent`);
        // (The OpenAI wire has no error flag on tool results: the host prefixes "Error: " there.)
        expect(response.msg.result.text).toMatch(new RegExp(`^The answer is (Error: )?tool "${c.tool}" is not available to this agent\\.$`));
      }
      // Neither plugin ran: their call counters did not move.
      const after = await calls();
      expect(before.calculator).toBeTypeOf("number");
      expect(after.calculator).toBe(before.calculator);
      expect(after.time).toBe(before.time);
    } finally {
      client.close();
    }
  });

  it("a peer with no binding gets the default agent", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const c = await chat(client, "carol", "hello from carol-1");
    expect(c).toMatchObject({ agentId: "sales", sessionKey: "agent:sales:ws:default:carol" });
    expect(requestsWith("hello from carol-1")[0]!.body.model).toBe("emu-sales-model");
    client.close();
  });

  it("editing the soul file changes the next turn's system prompt, without a restart", async () => {
    writeFileSync(soul, "# Sales soul, second edition\nYou sell slide rules now.\n");
    const client = await RpcClient.connect(gw.gateway.url);
    await chat(client, "alice", "hello from alice-3");
    expect(requestsWith("hello from alice-3")[0]!.body.system).toBe("Be brief.\n\n# Sales soul, second edition\nYou sell slide rules now.");
    client.close();
  });
});
