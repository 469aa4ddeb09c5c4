// End to end: everything the gateway writes under its state directory — the embedded SurrealDB
// session store, a plugin's kv file, approvals, the validation cache — is private to the user:
// directories 0700, files 0600. An existing state directory open to others is narrowed at start.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, RpcClient, startGateway } from "../support/gateway.js";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";

/** Every entry under `dir` with its permission bits. */
function walk(dir: string): { path: string; dir: boolean; mode: number }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    const entry = { path, dir: e.isDirectory(), mode: statSync(path).mode & 0o777 };
    return e.isDirectory() ? [entry, ...walk(path)] : [entry];
  });
}

describe("state directory file modes", () => {
  let gw: ChannelGateway;
  const previous = process.umask(0o022); // the usual umask, so the test proves the gateway sets its own

  beforeAll(async () => {
    gw = await startChannelGateway({
      config: { plugins: { grants: { memory: { kv: { quota_bytes: 65536 } } } } },
      approve: [join(ROOT, "build/plugins/memory.wasm")],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    process.umask(previous);
  });

  it("after a turn with the memory tool and the embedded store: directories 0700, files 0600", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const { response, events } = await client.call("chat.send", {
      content: `use:memory ${JSON.stringify({ action: "remember", note: "the secret plan" })}`,
      peer: "p",
    });
    expect(response.msg.result.text).toBeTruthy();
    expect(events.some((e) => e.msg.params.type === "tool_result" && e.msg.params.data.isError === false)).toBe(true);
    client.close();
    expect(statSync(gw.stateDir).mode & 0o777).toBe(0o700);
    // The config file is the test's (an operator's file, written before the gateway started).
    const entries = walk(gw.stateDir).filter((e) => e.path !== gw.configFile);
    const names = entries.map((e) => relative(gw.stateDir, e.path));
    expect(names).toContain("data");
    expect(names.some((n) => n.endsWith("kv.msgpack"))).toBe(true);
    expect(names.some((n) => n.endsWith("approvals.json"))).toBe(true);
    const open = entries.filter((e) => e.mode !== (e.dir ? 0o700 : 0o600)).map((e) => `${relative(gw.stateDir, e.path)} ${e.mode.toString(8)}`);
    expect(open).toEqual([]);
  });
});

describe("an existing state directory open to others", () => {
  it("is narrowed to 0700 at start, with a warning in the log", async () => {
    const dir = mkdtempSync(join(tmpdir(), "exoclaw-open-state-"));
    try {
      chmodSync(dir, 0o755);
      mkdirSync(join(dir, "plugins"), { mode: 0o755 });
      writeFileSync(join(dir, "plugins", "old.json"), "{}", { mode: 0o644 });
      const gateway = await startGateway({ EXOCLAW_STATE_DIR: dir, EXOCLAW_STORE: "memory" });
      try {
        expect(statSync(dir).mode & 0o777).toBe(0o700);
        expect(gateway.logs.find((l) => l.msg === "the state directory was open to other users; its mode is now 700")).toMatchObject({
          level: 40,
          stateDir: dir,
          mode: "755",
        });
      } finally {
        await gateway.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
