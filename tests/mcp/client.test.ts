/**
 * The MCP client against real MCP servers from npm started as stdio children
 * (`@modelcontextprotocol/server-everything`, `@modelcontextprotocol/server-filesystem`): approval
 * bound to the tools/list answer, a chat turn through the provider emulator in which the model
 * calls an MCP tool, the agent allowlist, the child's clean environment, a server killed mid-call.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { approveMcpServer, startMcpClients, type McpClients } from "../../host/src/mcp/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, makeRuntime, send } from "../agent/support.js";
import { EVERYTHING, FILESYSTEM, alive, approveConfig, silent, stdioServer, tempState, until } from "./support.js";

let emulator: Emulator;
const open: McpClients[] = [];
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator.close();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

async function clients(servers: ReturnType<typeof stdioServer>[], stateDir: string, secrets: Record<string, string | undefined> = {}) {
  const c = await startMcpClients({ servers, stateDir, secrets, logger: silent, watchApprovals: false });
  open.push(c);
  return c;
}

describe("MCP client (stdio, server-everything)", () => {
  it("offers no tool of an unapproved server, and the approved list after exoclaw mcp approve", { timeout: 60_000 }, async () => {
    const state = tempState();
    const server = stdioServer("everything", EVERYTHING, ["stdio"], { start: "startup" });
    const c = await clients([server], state);
    await until(() => c.list()[0]!.state === "running", 30_000, "server running");
    expect(c.list()[0]!.approval).toBe("unapproved");
    expect(c.tools()).toEqual([]);
    expect(c.list()[0]!.pending).toContain("echo");
    // A call to a tool of an unapproved server is refused (the model could not see it anyway).
    const refused = await c.callMcpTool("everything__echo", { message: "x" }, new AbortController().signal);
    expect(refused.isError).toBe(true);

    const r = await approveMcpServer("everything", approveConfig([server], state));
    expect(r.tools).toContain("echo");
    await c.reloadApprovals();
    const echo = c.tools().find((t) => t.name === "everything__echo");
    expect(echo).toBeDefined();
    expect((echo!.inputSchema as { properties: Record<string, unknown> }).properties).toHaveProperty("message");
    expect(c.list()[0]!.approval).toBe("approved");
    expect(c.list()[0]!.listSha256).toBe(r.listSha256);
  });

  it("runs a chat turn in which the model calls an MCP tool and gets its result; the allowlist applies", { timeout: 60_000 }, async () => {
    const state = tempState();
    const server = stdioServer("everything", EVERYTHING, ["stdio"]);
    await approveMcpServer("everything", approveConfig([server], state));
    const c = await clients([server], state);
    expect(c.list()[0]!.state).toBe("stopped"); // lazy: offered from the approval before it runs
    const { runtime } = makeRuntime(emulator, [agentConfig({ tools: ["everything__*"] }), agentConfig({ id: "calc", tools: ["calculator"] })], { mcp: c });
    emulator.reset();
    const result = await send(runtime, 'use:everything__echo {"message":"hello from the model"}');
    expect(result.text).toContain("Echo: hello from the model");
    const offered = (emulator.requests[0]!.body.tools as { name: string; input_schema: { properties: Record<string, unknown> } }[]).map((t) => t.name);
    expect(offered).toContain("everything__echo");
    expect(offered).toContain("everything__get-env");
    expect(c.list()[0]!.calls).toBe(1);
    expect(c.list()[0]!.state).toBe("running");

    // An agent whose allowlist does not name the MCP tools neither sees nor reaches them.
    emulator.reset();
    const denied = await send(runtime, 'force:everything__echo {"message":"x"}', { agent: "calc" });
    expect(((emulator.requests[0]!.body.tools ?? []) as { name: string }[]).map((t) => t.name)).not.toContain("everything__echo");
    expect(denied.text).toContain("not available");
    expect(c.list()[0]!.calls).toBe(1);
  });

  it("gives a stdio server a clean environment: PATH and the granted variables only", { timeout: 60_000 }, async () => {
    const state = tempState();
    process.env.EXOCLAW_TEST_CANARY = "gateway-only-value";
    try {
      const server = stdioServer("everything", EVERYTHING, ["stdio"], { env: { API_TOKEN: "MY_SECRET", MISSING_ONE: "NOT_SET" } });
      await approveMcpServer("everything", approveConfig([server], state, { MY_SECRET: "s3cret-value" }));
      const c = await clients([server], state, { MY_SECRET: "s3cret-value" });
      const r = await c.callMcpTool("everything__get-env", {}, new AbortController().signal);
      expect(r.isError).toBe(false);
      const env = JSON.parse(r.content) as Record<string, string>;
      expect(env.API_TOKEN).toBe("s3cret-value");
      expect(env.EXOCLAW_TEST_CANARY).toBeUndefined();
      expect(env.HOME).toBeUndefined();
      expect(env.MISSING_ONE).toBeUndefined();
      expect(Object.keys(env).sort()).toEqual(["API_TOKEN", "PATH"]);
      expect(c.list()[0]!.env).toEqual(["API_TOKEN", "MISSING_ONE"]);
    } finally {
      delete process.env.EXOCLAW_TEST_CANARY;
    }
  });

  it("turns a server killed mid-call into a tool error, restarts it, and stops its process on close", { timeout: 90_000 }, async () => {
    const state = tempState();
    const server = stdioServer("everything", EVERYTHING, ["stdio"], { start: "startup" });
    await approveMcpServer("everything", approveConfig([server], state));
    const c = await clients([server], state);
    await until(() => c.list()[0]!.state === "running", 30_000, "server running");
    const pid = c.list()[0]!.pid!;
    expect(alive(pid)).toBe(true);
    const call = c.callMcpTool("everything__trigger-long-running-operation", { duration: 20, steps: 20 }, new AbortController().signal);
    await new Promise((r) => setTimeout(r, 500));
    process.kill(pid, "SIGKILL");
    const r = await call;
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(/exited during the call/);
    await until(() => c.list()[0]!.state === "running" && c.list()[0]!.pid !== pid, 30_000, "server restarted");
    expect(c.list()[0]!.restarts).toBe(1);
    const again = await c.callMcpTool("everything__echo", { message: "back" }, new AbortController().signal);
    expect(again).toEqual({ content: "Echo: back", isError: false });
    const pid2 = c.list()[0]!.pid!;
    await c.close();
    expect(alive(pid2)).toBe(false);
  });

  it("maps results: structuredContent, images as placeholders, and enforces max_output_bytes", { timeout: 60_000 }, async () => {
    const state = tempState();
    const server = stdioServer("everything", EVERYTHING, ["stdio"], { limits: { timeoutMs: 30_000, maxOutputBytes: 64, maxInFlight: 2 } });
    await approveMcpServer("everything", approveConfig([server], state));
    const c = await clients([server], state);
    const signal = new AbortController().signal;
    const image = await c.callMcpTool("everything__get-tiny-image", {}, signal);
    // The tiny image's text parts are longer than 64 bytes with the placeholder: the limit speaks.
    expect(image.isError).toBe(true);
    expect(image.content).toMatch(/max_output_bytes \(64\)/);
    const sum = await c.callMcpTool("everything__get-sum", { a: 2, b: 3 }, signal);
    expect(sum.isError).toBe(false);
    expect(sum.content).toContain("5");
    const bad = await c.callMcpTool("everything__get-sum", { a: "two" }, signal);
    expect(bad.isError).toBe(true);
  });
});

describe("MCP client (stdio, server-filesystem on a temp dir)", () => {
  it("reads a file in the allowed directory and refuses one outside it", { timeout: 60_000 }, async () => {
    const state = tempState();
    const dir = join(tempState(), "files");
    mkdirSync(dir);
    writeFileSync(join(dir, "note.txt"), "the note's content");
    const server = stdioServer("files", FILESYSTEM, [dir]);
    const r = await approveMcpServer("files", approveConfig([server], state));
    expect(r.tools).toContain("read_text_file");
    const c = await clients([server], state);
    const signal = new AbortController().signal;
    const ok = await c.callMcpTool("files__read_text_file", { path: join(dir, "note.txt") }, signal);
    expect(ok).toEqual({ content: "the note's content", isError: false });
    const outside = await c.callMcpTool("files__read_text_file", { path: "/etc/passwd" }, signal);
    expect(outside.isError).toBe(true);
    expect(outside.content).not.toContain("root:");
  });
});
