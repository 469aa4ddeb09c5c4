import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { pack, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let gateway: GatewayHandle;
let client: RpcClient;

beforeAll(async () => {
  emulator = await startEmulator();
  gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url });
  client = await RpcClient.connect(gateway.url);
});
afterAll(async () => {
  client?.close();
  await gateway?.stop();
  await emulator?.close();
});

/** Sends a raw frame and returns the next error response with the given id. */
async function rawError(frame: string | Uint8Array, id: unknown = null) {
  const before = client.received.length;
  client.sendRaw(frame);
  const r = await client.waitFor((m) => client.received.indexOf(m) >= before && "error" in m.msg && m.msg.id === id);
  expect(r.binary).toBe(typeof frame !== "string");
  return r.msg.error as { code: number; message: string };
}

/** The connection still works: a ping in each encoding answers pong. */
async function stillServes() {
  expect((await client.call("ping")).response.msg.result).toBe("pong");
  expect((await client.call("ping", undefined, "msgpack")).response.msg.result).toBe("pong");
}

describe("bad frames get JSON-RPC errors and the connection keeps working", () => {
  it("malformed JSON -> -32700", async () => {
    expect((await rawError("{not json")).code).toBe(-32700);
    await stillServes();
  });

  it("malformed MessagePack -> -32700", async () => {
    expect((await rawError(new Uint8Array([0x82, 0xa1]))).code).toBe(-32700);
    expect((await rawError(new Uint8Array([0xc1]))).code).toBe(-32700);
    await stillServes();
  });

  it("not a request -> -32600", async () => {
    expect((await rawError('"hello"')).code).toBe(-32600);
    expect((await rawError(JSON.stringify({ id: "raw-5", method: "ping" }), "raw-5")).code).toBe(-32600);
    expect((await rawError(pack({ jsonrpc: "2.0", id: "raw-6" }), "raw-6")).code).toBe(-32600);
    expect((await rawError(JSON.stringify([{ jsonrpc: "2.0", id: "raw-7", method: "ping" }]))).message).toMatch(/batch/);
    await stillServes();
  });

  it("unknown method -> -32601", async () => {
    const { response } = await client.call("no.such.method");
    expect(response.msg.error.code).toBe(-32601);
    expect(response.msg.error.message).toContain("no.such.method");
    await stillServes();
  });

  it("missing field and wrong type -> -32602 naming the field", async () => {
    const missing = (await client.call("chat.send", { peer: "x" })).response.msg.error;
    expect(missing.code).toBe(-32602);
    expect(missing.message).toMatch(/content/);
    const wrong = (await client.call("chat.send", { content: 42 }, "msgpack")).response.msg.error;
    expect(wrong.code).toBe(-32602);
    expect(wrong.message).toMatch(/content must be a string/);
    const extra = (await client.call("ping", { x: 1 })).response.msg;
    expect(extra.result ?? extra.error.code).toBeDefined();
    await stillServes();
  });

  it("a frame over 1 MiB -> -32003, not a crash", async () => {
    const big = JSON.stringify({ jsonrpc: "2.0", id: "raw-9", method: "chat.send", params: { content: "x".repeat(1_100_000) } });
    const err = await rawError(big);
    expect(err.code).toBe(-32003);
    expect(err.message).toMatch(/1048576/);
    const bigBin = pack({ jsonrpc: "2.0", id: "raw-10", method: "chat.send", params: { content: "y".repeat(1_100_000) } });
    expect((await rawError(bigBin)).code).toBe(-32003);
    await stillServes();
  });

  it("client notifications get no answer", async () => {
    client.sendRaw(JSON.stringify({ jsonrpc: "2.0", method: "ping" }));
    await stillServes();
    expect(client.received.filter((r) => r.msg.id === undefined && r.msg.method !== "chat.event")).toHaveLength(0);
  });

  it("status and plugin.list describe the gateway", async () => {
    const status = (await client.call("status")).response.msg.result;
    expect(status.transport).toBe("uws");
    expect(status.plugins).toBeGreaterThanOrEqual(1);
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(status.uptimeMs).toBeGreaterThanOrEqual(0);
    expect(typeof status.sessions).toBe("number");
    const list = (await client.call("plugin.list", undefined, "msgpack")).response.msg.result;
    expect(list).toContainEqual(
      expect.objectContaining({
        name: "calculator",
        version: expect.any(String),
        kind: "tool",
        tools: ["calculator"],
        sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
        path: expect.stringMatching(/calculator\.wasm$/),
        status: "loaded",
        capabilities: { requested: {}, granted: {}, pending: {} },
        calls: expect.any(Number),
        errors: 0,
        p50Ms: expect.any(Number),
        p99Ms: expect.any(Number),
      }),
    );
  });

  it("GET /health answers 200 and unknown paths 404", async () => {
    const health = await fetch(`http://127.0.0.1:${gateway.port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    expect((await fetch(`http://127.0.0.1:${gateway.port}/nope`)).status).toBe(404);
  });
});
