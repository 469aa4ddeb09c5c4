import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, ROOT, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let gateway: GatewayHandle;

// A client that may speak as a platform user (to reach telegram/webhook sessions), a chat-only
// client, and two agents: guild "g1" routes to `helper` without changing the session's
// channel, account or peer.
const BRIDGE_TOKEN = "bridge-token-0123456789";
const ALICE_TOKEN = "alice-token-0123456789";
const CONFIG = `[plugins.grants.memory]
kv = { quota_bytes = 65536 }

[[agents]]
id = "main"
provider = "anthropic"
model = "model-main"

[[agents]]
id = "helper"
provider = "anthropic"
model = "model-helper"

[[bindings]]
agent = "helper"
guild = "g1"

[[gateway.clients]]
name = "bridge"
token = "${BRIDGE_TOKEN}"
scopes = ["chat", "impersonate"]

[[gateway.clients]]
name = "alice"
token = "${ALICE_TOKEN}"
scopes = ["chat"]
`;

beforeAll(async () => {
  emulator = await startEmulator();
  const state = mkdtempSync(join(tmpdir(), "exoclaw-test-"));
  const config = join(state, "exoclaw.toml");
  writeFileSync(config, CONFIG);
  // The operator approves the first-party memory plugin for what it requests (kv).
  const approve = spawnSync(process.execPath, [CLI, "plugin", "approve", join(ROOT, "build/plugins/memory.wasm"), "-c", config], {
    env: { ...process.env, EXOCLAW_STATE_DIR: state },
    encoding: "utf8",
  });
  expect(approve.status, approve.stderr).toBe(0);
  gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state }, ["--config", config]);
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
});

async function memory(client: RpcClient, where: string | Record<string, string>, input: object): Promise<string> {
  const target = typeof where === "string" ? { peer: where } : where;
  const { events, response } = await client.call("chat.send", { content: `use:memory ${JSON.stringify(input)}`, ...target });
  expect(response.msg.error).toBeUndefined();
  const result = events.map((e) => e.msg.params).find((e) => e.type === "tool_result");
  expect(result.data.isError).toBe(false);
  return result.data.content as string;
}

describe("tool calls carry the host-written conversation context", () => {
  it("the memory tool keeps each peer's notes apart", async () => {
    const client = await RpcClient.connect(gateway.url);
    expect(await memory(client, "alice", { action: "remember", note: "Prefers tea" })).toMatch(/Remembered/);
    expect(await memory(client, "alice", { action: "recall" })).toMatch(/Prefers tea/);
    expect(await memory(client, "bob", { action: "recall" })).not.toMatch(/Prefers tea/);
    client.close();
  });

  it("the same peer id on two channels, two accounts or under two agents has separate notebooks", async () => {
    const bridge = await RpcClient.connect(gateway.url, { authorization: `Bearer ${BRIDGE_TOKEN}` });
    const admin = await RpcClient.connect(gateway.url);
    const telegram = { channel: "telegram", account: "default", peer: "111" };
    expect(await memory(bridge, telegram, { action: "remember", note: "telegram 111 likes okapis" })).toMatch(/Remembered note #1/);
    expect(await memory(bridge, telegram, { action: "recall" })).toMatch(/okapis/);
    // WS peer 111 (the gateway token's account), webhook peer 111, another bot account, and
    // the helper agent on telegram 111 all see empty notebooks.
    expect(await memory(admin, "111", { action: "recall" })).toBe("No notes yet.");
    expect(await memory(bridge, { ...telegram, channel: "webhook" }, { action: "recall" })).toBe("No notes yet.");
    expect(await memory(bridge, { ...telegram, account: "second-bot" }, { action: "recall" })).toBe("No notes yet.");
    expect(await memory(bridge, { ...telegram, guild: "g1" }, { action: "recall" })).toBe("No notes yet.");
    // And the reverse: the ws peer's note stays out of telegram 111's notebook.
    expect(await memory(admin, "111", { action: "remember", note: "ws 111 likes quokkas" })).toMatch(/Remembered note #1/);
    expect(await memory(bridge, telegram, { action: "recall" })).not.toMatch(/quokkas/);
    bridge.close();
    admin.close();
  });

  it("a chat-only client's tools see its own identity, whatever peer it names", async () => {
    const alice = await RpcClient.connect(gateway.url, { authorization: `Bearer ${ALICE_TOKEN}` });
    // Peer "111" of client alice is ws/alice/111: neither telegram 111 nor the admin's ws 111.
    const notes = await memory(alice, "111", { action: "recall" });
    expect(notes).toBe("No notes yet.");
    // Asking to be telegram 111 is refused before any tool runs.
    const refused = await alice.call("chat.send", { content: `use:memory ${JSON.stringify({ action: "recall" })}`, channel: "telegram", peer: "111" });
    expect(refused.response.msg.error).toMatchObject({ code: -32010 });
    expect(refused.events).toEqual([]);
    alice.close();
  });
});
