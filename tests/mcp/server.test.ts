/**
 * exoclaw as an MCP server, driven by the official SDK's client: `exoclaw mcp serve` over stdio
 * and the gateway's `/mcp` over Streamable HTTP. tools/list is exactly the agent's allowed WASM
 * tools (an approved MCP server's tools are never re-exported), calculator answers 87.5 for
 * `12.5 * (3 + 4)`, bad input is a tool error, a hostile plugin's timeout is contained, and `/mcp`
 * refuses requests without the token.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { fixture } from "../plugins/sandbox/support.js";
import { EVERYTHING } from "./support.js";

const TOKEN = "test-token-0123456789abcdef";
const VIEWER = "viewer-token-0123456789abcdef";
const OPS = "ops-token-0123456789abcdef0";
let dir: string;
let config: string;
let state: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "exoclaw-mcp-serve-"));
  state = mkdtempSync(join(tmpdir(), "exoclaw-mcp-state-"));
  writeFileSync(join(dir, "hostile.wasm"), await fixture("hostile"));
  config = join(dir, "exoclaw.toml");
  writeFileSync(
    config,
    [
      "[[agents]]",
      'id = "main"',
      'tools = ["calculator", "loop", "everything__*"]',
      "[[agents]]",
      'id = "all"',
      'tools = ["*"]',
      "[[gateway.clients]]",
      'name = "viewer"',
      `token = "${VIEWER}"`,
      'scopes = ["chat"]',
      "[[gateway.clients]]",
      'name = "ops"',
      `token = "${OPS}"`,
      'scopes = ["admin"]',
      "[plugins.limits.hostile]",
      "timeout_ms = 1000",
      "[mcp.servers.everything]",
      `command = ${JSON.stringify(process.execPath)}`,
      `args = [${JSON.stringify(EVERYTHING)}, "stdio"]`,
      "",
    ].join("\n"),
  );
});

const text = (r: unknown) => ((r as { content: { type: string; text: string }[] }).content[0]?.text ?? "") as string;

/** The checks both transports must pass. */
async function commonChecks(client: Client): Promise<void> {
  const listed = await client.listTools();
  expect(listed.tools.map((t) => t.name).sort()).toEqual(["calculator", "chat", "loop"].filter((n) => listed.tools.some((t) => t.name === n)).sort());
  expect(
    listed.tools
      .map((t) => t.name)
      .filter((n) => n !== "chat")
      .sort(),
  ).toEqual(["calculator", "loop"]);
  const calc = listed.tools.find((t) => t.name === "calculator")!;
  expect(calc.inputSchema.type).toBe("object");
  const r = await client.callTool({ name: "calculator", arguments: { expression: "12.5 * (3 + 4)" } });
  expect(r.isError).toBe(false);
  expect(text(r)).toBe("87.5");
  const bad = await client.callTool({ name: "calculator", arguments: { expression: "12.5 * (" } });
  expect(bad.isError).toBe(true);
  const wrongShape = await client.callTool({ name: "calculator", arguments: { nope: 1 } });
  expect(wrongShape.isError).toBe(true);
  const hidden = await client.callTool({ name: "time", arguments: {} });
  expect(hidden.isError).toBe(true);
  expect(text(hidden)).toMatch(/not served/);
  const loop = await client.callTool({ name: "loop", arguments: {} });
  expect(loop.isError).toBe(true);
  expect(text(loop)).toMatch(/time limit of 1000 ms/);
  // The sandbox recovered: the next call works.
  expect(text(await client.callTool({ name: "calculator", arguments: { expression: "1+1" } }))).toBe("2");
}

describe("exoclaw mcp serve (stdio)", () => {
  it("serves exactly the agent's allowed WASM tools, runs them in the sandbox", { timeout: 90_000 }, async () => {
    const env: Record<string, string> = { EXOCLAW_STATE_DIR: state, PATH: process.env.PATH ?? "", EXOCLAW_LOG_LEVEL: "warn" };
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp", "serve", "--agent", "main", "--config", config, "--plugins-dir", dir],
      env,
      stderr: "pipe",
    });
    const client = new Client({ name: "test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const listed = await client.listTools();
      expect(listed.tools.map((t) => t.name).sort()).toEqual(["calculator", "loop"]);
      await commonChecks(client);
    } finally {
      await client.close();
    }
  });

  it("serves every WASM tool for an agent allowed everything, and no MCP-proxied tool", { timeout: 90_000 }, async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp", "serve", "--agent", "all", "--config", config, "--plugins-dir", dir],
      env: { EXOCLAW_STATE_DIR: state, PATH: process.env.PATH ?? "", EXOCLAW_LOG_LEVEL: "warn" },
      stderr: "pipe",
    });
    const client = new Client({ name: "test", version: "1.0.0" });
    await client.connect(transport);
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      for (const n of ["calculator", "time", "json_query", "memory", "http_fetch", "loop"]) expect(names).toContain(n);
      expect(names.filter((n) => n.includes("__"))).toEqual([]);
    } finally {
      await client.close();
    }
  });
});

describe("/mcp on the gateway (Streamable HTTP)", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let url: string;
  beforeAll(async () => {
    emulator = await startEmulator();
    // The agent may use the approved MCP server; /mcp must still not re-export its tools.
    const approve = spawnSync(process.execPath, [CLI, "mcp", "approve", "everything", "--config", config], {
      env: { ...process.env, EXOCLAW_STATE_DIR: state },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(approve.status, approve.stderr).toBe(0);
    expect(approve.stdout).toMatch(/approved MCP server everything/);
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_TOKEN: TOKEN, EXOCLAW_STATE_DIR: state }, [
      "--config",
      config,
      "--plugins-dir",
      dir,
    ]);
    url = `http://127.0.0.1:${gateway.port}/mcp`;
  }, 90_000);
  afterAll(async () => {
    await gateway?.stop();
    await emulator?.close();
  });

  const connect = async (path = "/mcp") => {
    const client = new Client({ name: "test", version: "1.0.0" });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${gateway.port}${path}`), { requestInit: { headers: { Authorization: `Bearer ${TOKEN}` } } }),
    );
    return client;
  };

  it("serves the agent's allowed WASM tools and a chat tool that runs a turn", { timeout: 90_000 }, async () => {
    const client = await connect();
    try {
      const names = (await client.listTools()).tools.map((t) => t.name).sort();
      expect(names).toEqual(["calculator", "chat", "loop"]);
      await commonChecks(client);
      const reply = await client.callTool({ name: "chat", arguments: { message: "what is 6 * 7?" } });
      expect(reply.isError).toBe(false);
      expect(text(reply)).toBe("The answer is 42.");
      // The agent itself reaches the approved MCP server's tools; /mcp did not list them.
      const viaMcp = await client.callTool({ name: "chat", arguments: { message: 'use:everything__echo {"message":"relay?"}' } });
      expect(text(viaMcp)).toContain("Echo: relay?");
      const direct = await client.callTool({ name: "everything__echo", arguments: { message: "relay?" } });
      expect(direct.isError).toBe(true);
      // mcp.list and status report the server, its approval and the call.
      const rpc = await RpcClient.connect(gateway.url, { authorization: `Bearer ${TOKEN}` });
      try {
        const list = (await rpc.call("mcp.list")).response.msg.result as { name: string; state: string; approval: string; calls: number; tools: string[] }[];
        expect(list).toHaveLength(1);
        expect(list[0]).toMatchObject({ name: "everything", state: "running", approval: "approved", calls: 1 });
        expect(list[0]!.tools).toContain("everything__echo");
        const status = (await rpc.call("status")).response.msg.result as { mcp: { name: string; calls: number }[] };
        expect(status.mcp[0]).toMatchObject({ name: "everything", calls: 1 });
        const metrics = await (await fetch(`http://127.0.0.1:${gateway.port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text();
        expect(metrics).toMatch(/exoclaw_mcp_calls_total\{server="everything",outcome="ok"\} 1/);
        expect(metrics).toMatch(/exoclaw_mcp_call_duration_seconds_count\{server="everything"\} 1/);
      } finally {
        rpc.close();
      }
      // `exoclaw mcp list` reads the same from the running gateway.
      const cli = spawnSync(process.execPath, [CLI, "mcp", "list", "--config", config], {
        env: { ...process.env, EXOCLAW_STATE_DIR: state, EXOCLAW_PORT: String(gateway.port), EXOCLAW_TOKEN: TOKEN },
        encoding: "utf8",
        timeout: 30_000,
      });
      expect(cli.status, cli.stderr).toBe(0);
      expect(cli.stdout).toMatch(/^SERVER\s+TRANSPORT\s+STATE\s+APPROVAL/m);
      expect(cli.stdout).toMatch(/^everything\s+stdio\s+running\s+approved/m);
    } finally {
      await client.close();
    }
    const all = await connect("/mcp/all");
    try {
      const names = (await all.listTools()).tools.map((t) => t.name);
      expect(names).toContain("time");
      expect(names.filter((n) => n.includes("__"))).toEqual([]);
    } finally {
      await all.close();
    }
  });

  it("exoclaw mcp serve --chat sends chat to the running gateway", { timeout: 90_000 }, async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [CLI, "mcp", "serve", "--agent", "main", "--chat", "--config", config, "--plugins-dir", dir],
      env: { EXOCLAW_STATE_DIR: state, PATH: process.env.PATH ?? "", EXOCLAW_LOG_LEVEL: "warn", EXOCLAW_PORT: String(gateway.port), EXOCLAW_TOKEN: TOKEN },
      stderr: "pipe",
    });
    const client = new Client({ name: "test", version: "1.0.0" });
    await client.connect(transport);
    try {
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(["calculator", "chat", "loop"]);
      const reply = await client.callTool({ name: "chat", arguments: { message: "what is 6 * 7?" } });
      expect(text(reply)).toBe("The answer is 42.");
    } finally {
      await client.close();
    }
  });

  it("refuses requests without the token, with a wrong token, or from a foreign Origin", { timeout: 30_000 }, async () => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" });
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    expect((await fetch(url, { method: "POST", headers, body })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { ...headers, authorization: "Bearer wrong-token-wrong-token" }, body })).status).toBe(401);
    expect((await fetch(url, { method: "POST", headers: { ...headers, authorization: `Bearer ${TOKEN}`, origin: "https://evil.example" }, body })).status).toBe(
      403,
    );
    const client = new Client({ name: "test", version: "1.0.0" });
    await expect(client.connect(new StreamableHTTPClientTransport(new URL(url)))).rejects.toThrow();
    // A client token with scope chat may use /mcp; one without chat may not; mcp.list needs admin.
    expect((await fetch(url, { method: "POST", headers: { ...headers, authorization: `Bearer ${VIEWER}` }, body })).status).toBe(200);
    expect((await fetch(url, { method: "POST", headers: { ...headers, authorization: `Bearer ${OPS}` }, body })).status).toBe(403);
    const viewer = await RpcClient.connect(gateway.url, { authorization: `Bearer ${VIEWER}` });
    try {
      const refused = (await viewer.call("mcp.list")).response.msg as { error?: { code: number } };
      expect(refused.error?.code).toBe(-32010);
    } finally {
      viewer.close();
    }
    const ok = await fetch(url, { method: "POST", headers: { ...headers, authorization: `Bearer ${TOKEN}` }, body });
    expect(ok.status).toBe(200);
    const listed = (await ok.json()) as { result: { tools: { name: string }[] } };
    expect(listed.result.tools.map((t) => t.name)).toContain("calculator");
  });
});
