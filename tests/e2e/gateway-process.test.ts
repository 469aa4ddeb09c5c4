import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, pack, RpcClient, startGateway } from "../support/gateway.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

const anthropic = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url });

describe("the ws fallback transport behaves like uWebSockets.js", () => {
  it("serves a full tool turn, bad frames and status, and says which transport runs", async () => {
    const gateway = await startGateway({ ...anthropic(), EXOCLAW_TRANSPORT: "ws" });
    try {
      expect(gateway.ready.transport).toBe("ws");
      const client = await RpcClient.connect(gateway.url);
      expect((await client.call("status")).response.msg.result.transport).toBe("ws");
      const { response, events } = await client.call("chat.send", { content: "what is 2 ^ 3 ^ 2?" }, "msgpack");
      expect(response.binary).toBe(true);
      expect(response.msg.result.text).toBe("The answer is 512.");
      expect(events.map((e) => e.msg.params.type)).toContain("tool_result");
      client.sendRaw("{oops");
      expect((await client.waitFor((r) => r.msg.error?.code === -32700)).binary).toBe(false);
      client.sendRaw(new Uint8Array([0xc1]));
      expect((await client.waitFor((r) => r.msg.error?.code === -32700 && r.binary)).msg.id).toBeNull();
      client.sendRaw(pack({ jsonrpc: "2.0", id: "big", method: "ping", params: ["z".repeat(1_200_000)] }));
      expect((await client.waitFor((r) => r.msg.error?.code === -32003)).binary).toBe(true);
      expect((await client.call("ping")).response.msg.result).toBe("pong");
      expect((await fetch(`http://127.0.0.1:${gateway.port}/health`)).status).toBe(200);
      client.close();
    } finally {
      await gateway.stop();
    }
  });
});

describe("security", () => {
  it("refuses to bind off loopback without a token", () => {
    const r = spawnSync(process.execPath, [CLI, "gateway", "--bind", "0.0.0.0", "--port", "0"], {
      env: { ...process.env, EXOCLAW_TOKEN: "", EXOCLAW_STATE_DIR: mkdtempSync(join(tmpdir(), "exoclaw-test-")) },
      encoding: "utf8",
      timeout: 15_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/refusing to bind 0\.0\.0\.0 without a token/);
  });

  it("with a token, upgrades without it get 401 and with it succeed; the token is never logged", async () => {
    const token = "s3cret-token-0123456789";
    const gateway = await startGateway({ ...anthropic(), EXOCLAW_TOKEN: token });
    try {
      await expect(RpcClient.connect(gateway.url)).rejects.toThrow(/401/);
      await expect(RpcClient.connect(gateway.url, { authorization: "Bearer wrong-token-000000000" })).rejects.toThrow(/401/);
      const byHeader = await RpcClient.connect(gateway.url, { authorization: `Bearer ${token}` });
      expect((await byHeader.call("ping")).response.msg.result).toBe("pong");
      byHeader.close();
      const byQuery = await RpcClient.connect(`${gateway.url}?token=${token}`);
      expect((await byQuery.call("ping")).response.msg.result).toBe("pong");
      byQuery.close();
      expect(JSON.stringify(gateway.logs)).not.toContain(token);
    } finally {
      await gateway.stop();
    }
  });
});

describe("process lifecycle", () => {
  it("SIGINT lets an in-flight turn finish, then closes sockets and exits 0", async () => {
    const gateway = await startGateway(anthropic());
    const client = await RpcClient.connect(gateway.url);
    const closed = new Promise<number>((resolve) => client.ws.once("close", (code) => resolve(code)));
    // SLOW_200MS spaces the emulator's chunks, so the turn is still streaming when the signal lands.
    const turn = client.call("chat.send", { content: "tell me something SLOW_200MS please" });
    await client.waitFor((r) => r.msg.method === "chat.event");
    const exit = gateway.stop("SIGINT");
    const { response } = await turn;
    expect(response.msg.result.text).toBe("You said: tell me something SLOW_200MS please");
    expect(await closed).toBe(1001);
    expect(await exit).toBe(0);
    expect(gateway.logs.map((l) => l.msg)).toEqual(expect.arrayContaining(["shutting down", "stopped"]));
  });

  it("reports a bad config file naming the field, and exits 1", () => {
    const dir = mkdtempSync(join(tmpdir(), "exoclaw-test-"));
    const file = join(dir, "exoclaw.toml");
    writeFileSync(file, '[gateway]\nport = "eighty"\n[[agents]]\nid = "main"\nmax_iterations = 0\n');
    const r = spawnSync(process.execPath, [CLI, "gateway", "--config", file], {
      encoding: "utf8",
      timeout: 15_000,
      env: { ...process.env, EXOCLAW_STATE_DIR: dir },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/gateway\.port/);
    expect(r.stderr).toMatch(/agents\.0\.max_iterations/);
  });

  it("prints help", () => {
    const r = spawnSync(process.execPath, [CLI, "gateway", "--help"], { encoding: "utf8", timeout: 15_000 });
    expect(r.status).toBe(0);
    for (const flag of ["--port", "--bind", "--config", "--plugins-dir", "EXOCLAW_PROVIDER", "OLLAMA_HOST"]) expect(r.stdout).toContain(flag);
  });
});
