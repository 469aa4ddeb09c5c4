import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, ROOT, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let gateway: GatewayHandle;

beforeAll(async () => {
  emulator = await startEmulator();
  const state = mkdtempSync(join(tmpdir(), "exoclaw-test-"));
  const config = join(state, "exoclaw.toml");
  writeFileSync(config, "[plugins.grants.memory]\nkv = { quota_bytes = 65536 }\n");
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

async function memory(client: RpcClient, peer: string, input: object): Promise<string> {
  const { events } = await client.call("chat.send", { content: `use:memory ${JSON.stringify(input)}`, peer });
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
});
