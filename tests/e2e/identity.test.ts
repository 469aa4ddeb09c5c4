// End to end: every WebSocket connection has an identity fixed at the upgrade (account + scopes),
// and methods act only within it. A chat-only client cannot speak as a Telegram user, read or
// reset a Telegram session, claim a channel's idempotency key, replay another client's turn, or
// load/unload plugins; the gateway token (admin) reads everything but does not impersonate
// either; only a client entry with `impersonate` may speak as a platform user.
// Real gateway process, real ws clients, the provider emulator; both transports.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { ROOT, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const FORBIDDEN = -32010;
const ADMIN_TOKEN = "admin-token-0123456789";
const ALICE_TOKEN = "alice-token-0123456789";
const BOB_TOKEN = "bob-token-01234567890";
const BRIDGE_TOKEN = "bridge-token-0123456789";

const CONFIG = `
[[gateway.clients]]
name = "alice"
token = "${ALICE_TOKEN}"
scopes = ["chat"]

[[gateway.clients]]
name = "bob"
token_env = "BOB_TOKEN"

[[gateway.clients]]
name = "bridge"
token = "${BRIDGE_TOKEN}"
scopes = ["chat", "impersonate"]
`;

describe.each(["uws", "ws"] as const)("connection identities and scopes (%s transport)", (transport) => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let dir: string;
  const clients: RpcClient[] = [];

  async function connect(token?: string): Promise<RpcClient> {
    const c = await RpcClient.connect(gateway.url, token ? { authorization: `Bearer ${token}` } : {});
    clients.push(c);
    return c;
  }
  const msg = async (c: RpcClient, method: string, params?: unknown) => (await c.call(method, params)).response.msg;

  beforeAll(async () => {
    emulator = await startEmulator();
    dir = mkdtempSync(join(tmpdir(), "exoclaw-identity-"));
    writeFileSync(join(dir, "exoclaw.toml"), CONFIG);
    gateway = await startGateway(
      {
        ANTHROPIC_API_KEY: "sk-test",
        ANTHROPIC_BASE_URL: emulator.url,
        EXOCLAW_STORE: "memory",
        EXOCLAW_TOKEN: ADMIN_TOKEN,
        EXOCLAW_TRANSPORT: transport,
        BOB_TOKEN,
      },
      ["--config", join(dir, "exoclaw.toml")],
    );
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await gateway?.stop();
    await emulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses the upgrade without a known token", async () => {
    await expect(RpcClient.connect(gateway.url)).rejects.toThrow(/HTTP 401/);
    await expect(RpcClient.connect(gateway.url, { authorization: "Bearer not-a-configured-token" })).rejects.toThrow(/HTTP 401/);
    // token_env clients are read from the environment.
    expect(await msg(await connect(BOB_TOKEN), "ping")).toMatchObject({ result: "pong" });
  });

  it("a chat-only client cannot speak as a platform user or another client: -32010, no model request", async () => {
    const alice = await connect(ALICE_TOKEN);
    emulator.reset();
    for (const params of [
      { content: "hi", channel: "telegram", peer: "111" },
      { content: "hi", channel: "telegram", account: "alice", peer: "111" },
      { content: "hi", account: "default" },
      { content: "hi", account: "bob" },
      { content: "hi", idempotencyKey: "channel:telegram:default:42" },
    ]) {
      const r = await alice.call("chat.send", params);
      expect(r.response.msg.error, JSON.stringify(params)).toMatchObject({
        code: FORBIDDEN,
        message: expect.stringMatching(/^forbidden: needs scope impersonate: /),
        data: { scope: "impersonate" },
      });
      expect(r.events).toEqual([]);
    }
    // The admin token reads everything but does not impersonate either.
    const admin = await connect(ADMIN_TOKEN);
    expect((await msg(admin, "chat.send", { content: "hi", channel: "telegram", peer: "111" })).error).toMatchObject({ code: FORBIDDEN });
    expect(emulator.requests).toHaveLength(0);
    expect(await msg(alice, "sessions.list")).toEqual({ jsonrpc: "2.0", id: expect.any(Number), result: { sessions: [] } });
  });

  it("a client speaks as itself: channel ws, its own account, any peer", async () => {
    const alice = await connect(ALICE_TOKEN);
    const one = await msg(alice, "chat.send", { content: "hello", peer: "p1" });
    expect(one.result).toMatchObject({ sessionKey: "agent:main:ws:alice:p1" });
    const two = await msg(alice, "chat.send", { content: "hello again", channel: "ws", account: "alice" });
    expect(two.result).toMatchObject({ sessionKey: "agent:main:ws:alice:main" });
    const history = await msg(alice, "chat.history", { sessionKey: "agent:main:ws:alice:p1" });
    expect(history.result.events[0].data).toEqual({ content: "hello", channel: "ws", account: "alice", peer: "p1" });
    expect((await msg(alice, "sessions.reset", { sessionKey: "agent:main:ws:alice:p1" })).result).toMatchObject({ reset: true });
    expect((await msg(alice, "sessions.search", { query: "again" })).result.hits.map((h: any) => h.event.sessionKey)).toContain("agent:main:ws:alice:main");
  });

  it("sessions of other channels and accounts are admin-only; delete is admin-only", async () => {
    const bridge = await connect(BRIDGE_TOKEN);
    const alice = await connect(ALICE_TOKEN);
    const admin = await connect(ADMIN_TOKEN);
    // Only an explicit impersonate client reaches a platform user's session.
    const tg = await msg(bridge, "chat.send", {
      content: "the okapi secret",
      channel: "telegram",
      account: "default",
      peer: "111",
      idempotencyKey: "bridge-1",
    });
    expect(tg.result).toMatchObject({ sessionKey: "agent:main:telegram:default:111" });
    // ... and gets its own turn replayed.
    expect(
      (await msg(bridge, "chat.send", { content: "the okapi secret", channel: "telegram", account: "default", peer: "111", idempotencyKey: "bridge-1" }))
        .result,
    ).toEqual({ ...tg.result, replayed: true });
    const adminTurn = await msg(admin, "chat.send", { content: "the admin's quokka", peer: "ops", idempotencyKey: "shared-key" });
    expect(adminTurn.result.sessionKey).toBe("agent:main:ws:default:ops");

    const foreign = ["agent:main:telegram:default:111", "agent:main:ws:default:ops", "agent:main:ws:bob:main"];
    for (const sessionKey of foreign) {
      for (const [method, params] of [
        ["chat.history", { sessionKey }],
        ["sessions.reset", { sessionKey }],
        ["sessions.search", { query: "okapi", sessionKey }],
      ] as const) {
        const e = (await msg(alice, method, params)).error;
        expect(e, `${method} ${sessionKey}`).toMatchObject({ code: FORBIDDEN, message: expect.stringMatching(/^forbidden: needs scope admin: /) });
      }
    }
    expect((await msg(alice, "sessions.list", { channel: "telegram" })).error).toMatchObject({ code: FORBIDDEN });
    // Listing and searching without a target show only the client's own sessions.
    const mine = (await msg(alice, "sessions.list")).result.sessions.map((s: any) => s.sessionKey);
    expect(mine.length).toBeGreaterThan(0);
    expect(mine.every((k: string) => k.startsWith("agent:main:ws:alice:"))).toBe(true);
    const page = (await msg(alice, "sessions.list", { limit: 1 })).result;
    expect(page.sessions).toHaveLength(1);
    expect((await msg(alice, "sessions.list", { limit: 1, cursor: page.nextCursor })).result.sessions[0].sessionKey.startsWith("agent:main:ws:alice:")).toBe(
      true,
    );
    expect((await msg(alice, "sessions.search", { query: "okapi" })).result.hits).toEqual([]);
    expect((await msg(alice, "sessions.search", { query: "quokka" })).result.hits).toEqual([]);
    // Another client's idempotency key does not replay its turn to you.
    emulator.reset();
    const replay = await msg(alice, "chat.send", { content: "x", idempotencyKey: "shared-key" });
    expect(replay.error).toMatchObject({ code: FORBIDDEN });
    expect(JSON.stringify(replay)).not.toContain("quokka");
    expect(emulator.requests).toHaveLength(0);
    // Delete is an operator's act, even on your own session.
    expect((await msg(alice, "sessions.delete", { sessionKey: "agent:main:ws:alice:p1" })).error).toMatchObject({ code: FORBIDDEN, data: { scope: "admin" } });
    // So is pruning idle sessions (anyone's).
    expect((await msg(alice, "sessions.prune", { olderThanMs: 1000, dryRun: true })).error).toMatchObject({ code: FORBIDDEN, data: { scope: "admin" } });

    // The admin reads, searches, resets and deletes any session.
    const history = await msg(admin, "chat.history", { sessionKey: "agent:main:telegram:default:111" });
    expect(history.result.events[0].data).toMatchObject({ content: "the okapi secret", channel: "telegram", peer: "111" });
    expect((await msg(admin, "sessions.search", { query: "okapi" })).result.hits.length).toBeGreaterThan(0);
    expect((await msg(admin, "sessions.list", { channel: "telegram" })).result.sessions.map((s: any) => s.peer)).toEqual(["111"]);
    expect((await msg(admin, "sessions.reset", { sessionKey: "agent:main:telegram:default:111" })).result).toMatchObject({ reset: true });
    expect((await msg(admin, "sessions.delete", { sessionKey: "agent:main:ws:alice:p1" })).result).toEqual({
      sessionKey: "agent:main:ws:alice:p1",
      deleted: true,
    });
  });

  it("plugin.load and plugin.unload need admin", async () => {
    const alice = await connect(ALICE_TOKEN);
    const admin = await connect(ADMIN_TOKEN);
    const wasm = join(ROOT, "build/plugins/calculator.wasm");
    expect((await msg(alice, "plugin.unload", { name: "calculator" })).error).toMatchObject({
      code: FORBIDDEN,
      message: "forbidden: needs scope admin: plugin.unload",
    });
    expect((await msg(alice, "plugin.load", { path: wasm })).error).toMatchObject({ code: FORBIDDEN, message: "forbidden: needs scope admin: plugin.load" });
    expect((await msg(alice, "plugin.list")).result.find((p: any) => p.name === "calculator")).toMatchObject({ status: "loaded" });
    expect((await msg(admin, "plugin.unload", { name: "no-such-plugin" })).error).toMatchObject({ code: -32007 });
    expect((await msg(admin, "plugin.load", { path: wasm })).result).toMatchObject({ name: "calculator" });
  });
  it("channel webchat (the Control UI's chat) is a client's own like ws: its account only, and the UI methods need admin", async () => {
    const alice = await connect(ALICE_TOKEN);
    const bob = await connect(BOB_TOKEN);
    const admin = await connect(ADMIN_TOKEN);
    const sent = await msg(alice, "chat.send", { content: "hello from the browser", channel: "webchat", peer: "tab1" });
    expect(sent.result).toMatchObject({ sessionKey: "agent:main:webchat:alice:tab1" });
    // Another account's webchat is impersonation, as for ws.
    expect((await msg(alice, "chat.send", { content: "x", channel: "webchat", account: "bob", peer: "tab1" })).error).toMatchObject({ code: FORBIDDEN });
    const listed = (await msg(alice, "sessions.list", { channel: "webchat" })).result.sessions.map((s: any) => s.sessionKey);
    expect(listed).toEqual(["agent:main:webchat:alice:tab1"]);
    expect((await msg(alice, "chat.history", { sessionKey: "agent:main:webchat:alice:tab1" })).result.events[0].data).toMatchObject({
      content: "hello from the browser",
    });
    expect((await msg(bob, "chat.history", { sessionKey: "agent:main:webchat:alice:tab1" })).error).toMatchObject({ code: FORBIDDEN });
    expect((await msg(bob, "sessions.list", { channel: "webchat" })).result.sessions).toEqual([]);
    for (const method of ["logs.tail", "agents.list", "channels.list"]) {
      expect((await msg(alice, method)).error, method).toMatchObject({ code: FORBIDDEN, data: { scope: "admin" } });
      expect((await msg(admin, method)).result, method).toBeDefined();
    }
    expect((await msg(alice, "plugin.approve", { name: "calculator", sha256: "0".repeat(64) })).error).toMatchObject({ code: FORBIDDEN });
  });
});
