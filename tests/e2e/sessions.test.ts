/**
 * Durable sessions over the wire: chat.history, sessions.list/reset/delete/search, idempotency
 * keys on chat.send, history surviving a restart, and `exoclaw sessions` on the same store.
 * The gateway runs with its default store (embedded SurrealDB under the state directory).
 */
import { DEFAULT_ON_DISK_ENGINE } from "../../host/src/store/index.js";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let state: string;
let gateway: GatewayHandle;
let client: RpcClient;

const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });
// A client allowed to speak as a platform user (scope impersonate), to put a telegram session in the store.
const BRIDGE_TOKEN = "bridge-token-0123456789";
const args = () => ["--config", join(state, "exoclaw.toml")];
const key = (peer: string) => `agent:main:ws:default:${peer}`;

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-sessions-"));
  writeFileSync(join(state, "exoclaw.toml"), `[[gateway.clients]]\nname = "bridge"\ntoken = "${BRIDGE_TOKEN}"\nscopes = ["chat", "impersonate"]\n`);
  gateway = await startGateway(env(), args());
  client = await RpcClient.connect(gateway.url);
});
afterAll(async () => {
  client?.close();
  await gateway?.stop();
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

const call = async (method: string, params?: unknown) => (await client.call(method, params)).response.msg;

/** Runs `exoclaw sessions ...` against the test's state directory. */
function cli(args: string[], extraEnv: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, "sessions", ...args], {
    env: { ...process.env, EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "", ...extraEnv },
    encoding: "utf8",
    timeout: 15_000,
  });
}

describe("sessions over the wire", () => {
  it("reports the store in the ready line", () => {
    expect(gateway.ready.store).toBe(`${DEFAULT_ON_DISK_ENGINE}://${state}/data`);
  });

  it("chat.history returns a turn's events in order, paginated", async () => {
    const turn = await call("chat.send", { content: "what is 6 * 7?", peer: "hist" });
    expect(turn.result.text).toBe("The answer is 42.");
    const all = await call("chat.history", { sessionKey: key("hist") });
    expect(all.result.nextAfterSeq).toBeUndefined();
    const events = all.result.events as any[];
    expect(events.map((e) => e.kind)).toEqual([
      "message_received",
      "turn_started",
      "assistant_text",
      "tool_use",
      "usage",
      "tool_result",
      "assistant_text",
      "usage",
      "turn_ended",
    ]);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(events.every((e) => e.runId === turn.result.runId && e.sessionKey === key("hist") && typeof e.at === "number")).toBe(true);
    expect(events[0].data).toEqual({ content: "what is 6 * 7?", channel: "ws", account: "default", peer: "hist" });
    expect(events[5].data).toMatchObject({ content: "42", isError: false });

    const page1 = await call("chat.history", { sessionKey: key("hist"), limit: 4 });
    expect(page1.result.events.map((e: any) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(page1.result.nextAfterSeq).toBe(4);
    const page2 = await call("chat.history", { sessionKey: key("hist"), afterSeq: 4, limit: 5 });
    expect(page2.result.events.map((e: any) => e.seq)).toEqual([5, 6, 7, 8, 9]);
    expect(page2.result.nextAfterSeq).toBeUndefined();
    expect((await call("chat.history", { sessionKey: key("nobody") })).result).toEqual({ sessionKey: key("nobody"), events: [] });
  });

  it("a repeated idempotencyKey gets the first outcome, without events, and never runs twice", async () => {
    emulator.reset();
    const first = await client.call("chat.send", { content: "remember the walrus", peer: "idem", idempotencyKey: "idem-1" });
    expect(first.events.length).toBeGreaterThan(0);
    const again = await client.call("chat.send", { content: "remember the walrus", peer: "idem", idempotencyKey: "idem-1" });
    expect(again.response.msg.result).toEqual({ ...first.response.msg.result, replayed: true });
    expect(again.events).toEqual([]);
    // The key names the message: a repeat with other params still gets the original turn.
    const elsewhere = await call("chat.send", { content: "something else", peer: "elsewhere", idempotencyKey: "idem-1" });
    expect(elsewhere.result).toEqual({ ...first.response.msg.result, replayed: true });
    expect(emulator.requests).toHaveLength(1);

    // Concurrent duplicates: one turn, every request answered with it.
    emulator.reset();
    const all = await Promise.all([0, 1, 2].map(() => client.call("chat.send", { content: "slowly now SLOW_50MS", peer: "idem", idempotencyKey: "idem-2" })));
    const results = all.map((r) => r.response.msg.result);
    expect(new Set(results.map((r) => r.runId)).size).toBe(1);
    expect(results.filter((r) => r.replayed)).toHaveLength(2);
    expect(emulator.requests).toHaveLength(1);

    // A failed turn replays its error, marked in error.data.
    const failed = await call("chat.send", { content: "FAIL_500 please", peer: "idem", idempotencyKey: "idem-3" });
    expect(failed.error.code).toBe(-32000);
    const failedAgain = await client.call("chat.send", { content: "FAIL_500 please", peer: "idem", idempotencyKey: "idem-3" });
    expect(failedAgain.response.msg.error).toMatchObject({ code: -32000, message: failed.error.message, data: { replayed: true } });
    expect(failedAgain.events).toEqual([]);

    const received = ((await call("chat.history", { sessionKey: key("idem") })).result.events as any[]).filter((e) => e.kind === "message_received");
    expect(received.map((e) => e.data.idempotencyKey)).toEqual(["idem-1", "idem-2", "idem-3"]);
  });

  it("sessions.list filters and pages; sessions.search finds text", async () => {
    await call("chat.send", { content: "the aardvark sleeps", peer: "list-a" });
    const bridge = await RpcClient.connect(gateway.url, { authorization: `Bearer ${BRIDGE_TOKEN}` });
    expect(
      (await bridge.call("chat.send", { content: "the pangolin wakes", peer: "list-b", channel: "telegram", account: "default" })).response.msg.error,
    ).toBeUndefined();
    bridge.close();
    const all = (await call("sessions.list")).result;
    expect(all.sessions.map((s: any) => s.sessionKey)).toEqual(expect.arrayContaining([key("list-a"), "agent:main:telegram:default:list-b"]));
    const s = all.sessions.find((x: any) => x.sessionKey === key("list-a"));
    expect(s).toMatchObject({ agent: "main", channel: "ws", account: "default", peer: "list-a", lastSeq: 5, resetSeq: 0 });
    expect((await call("sessions.list", { channel: "telegram" })).result.sessions.map((x: any) => x.peer)).toEqual(["list-b"]);
    expect((await call("sessions.list", { peer: "list-a" })).result.sessions).toHaveLength(1);
    const p1 = (await call("sessions.list", { limit: 2 })).result;
    expect(p1.sessions).toHaveLength(2);
    const p2 = (await call("sessions.list", { limit: 2, cursor: p1.nextCursor })).result;
    expect(p2.sessions[0].sessionKey > p1.sessions[1].sessionKey).toBe(true);

    const hits = (await call("sessions.search", { query: "pangolin" })).result.hits as any[];
    expect(hits.length).toBeGreaterThanOrEqual(2); // the message and the echo
    expect(hits.every((h) => h.event.sessionKey === "agent:main:telegram:default:list-b" && typeof h.score === "number")).toBe(true);
    expect((await call("sessions.search", { query: "pangolin", sessionKey: key("list-a") })).result.hits).toEqual([]);
    expect((await call("sessions.search", { query: "aardvark", limit: 1 })).result.hits).toHaveLength(1);
  });

  it("sessions.reset starts the model's history over; sessions.delete erases the session", async () => {
    await call("chat.send", { content: "my name is Ada", peer: "reset" });
    const reset = await call("sessions.reset", { sessionKey: key("reset"), reason: "user asked" });
    expect(reset.result).toEqual({ sessionKey: key("reset"), reset: true, seq: 6 });
    emulator.reset();
    await call("chat.send", { content: "who am I?", peer: "reset" });
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).not.toContain("Ada");
    const events = (await call("chat.history", { sessionKey: key("reset") })).result.events as any[];
    expect(events[5]).toMatchObject({ seq: 6, kind: "reset", data: { reason: "user asked" } });
    expect(events.some((e) => e.kind === "message_received" && e.data.content === "my name is Ada")).toBe(true);
    expect((await call("sessions.reset", { sessionKey: key("never") })).result).toEqual({ sessionKey: key("never"), reset: false });

    expect((await call("sessions.delete", { sessionKey: key("reset") })).result).toEqual({ sessionKey: key("reset"), deleted: true });
    expect((await call("chat.history", { sessionKey: key("reset") })).result.events).toEqual([]);
    expect((await call("sessions.list", { peer: "reset" })).result.sessions).toEqual([]);
    expect((await call("sessions.delete", { sessionKey: key("reset") })).result.deleted).toBe(false);
  });

  it("answers bad params with -32602 naming the field", async () => {
    const bad = async (method: string, params: unknown, pattern: RegExp) => {
      const r = await call(method, params);
      expect(r.error?.code).toBe(-32602);
      expect(r.error.message).toMatch(pattern);
    };
    await bad("chat.history", {}, /sessionKey is required/);
    await bad("chat.history", { sessionKey: "not-a-key" }, /not a session key/);
    await bad("chat.history", { sessionKey: key("x"), afterSeq: -1 }, /afterSeq/);
    await bad("chat.history", { sessionKey: key("x"), limit: 5000 }, /limit must be at most 1000/);
    await bad("sessions.list", { cursor: "bogus!" }, /cursor/);
    await bad("sessions.list", { limit: 0 }, /limit must be at least 1/);
    await bad("sessions.search", {}, /query is required/);
    await bad("sessions.reset", { sessionKey: 7 }, /sessionKey must be a string/);
    await bad("sessions.delete", { sessionKey: "agent:main" }, /not a session key/);
    await bad("chat.send", { content: "hi", idempotencyKey: "" }, /idempotencyKey must not be empty/);
    await bad("chat.send", { content: "hi", idempotencyKey: 5 }, /idempotencyKey must be a string/);
  });

  it("exoclaw sessions reads through the running gateway, then the store directly; history survives a restart", async () => {
    const viaGateway = cli(["list", "--json"], { EXOCLAW_PORT: String(gateway.port) });
    expect(viaGateway.status, viaGateway.stderr).toBe(0);
    const listed = JSON.parse(viaGateway.stdout).sessions.map((s: any) => s.sessionKey);
    expect(listed).toContain(key("hist"));
    const table = cli(["show", key("hist")], { EXOCLAW_PORT: String(gateway.port) });
    expect(table.stdout).toMatch(/^SEQ\s+TIME\s+KIND\s+RUN\s+TEXT/);
    expect(table.stdout).toMatch(/tool_result\s+\S+\s+42/);

    const before = (await call("chat.history", { sessionKey: key("hist") })).result.events;
    client.close();
    await gateway.stop();

    const direct = cli(["search", "walrus", "--json"]);
    expect(direct.status, direct.stderr).toBe(0);
    expect(JSON.parse(direct.stdout).hits.map((h: any) => h.event.sessionKey)).toContain(key("idem"));
    const shown = cli(["show", key("hist"), "--limit", "3"]);
    expect(shown.stdout.split("\n")[1]).toMatch(/^1\s+\S+\s+message_received\s+\S+\s+what is 6 \* 7\?$/);
    expect(shown.stdout).toContain(`--after-seq 3`);
    const missing = cli(["show", key("nobody")]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/no session agent:main:ws:default:nobody/);

    gateway = await startGateway(env(), args());
    client = await RpcClient.connect(gateway.url);
    expect((await call("chat.history", { sessionKey: key("hist") })).result.events).toEqual(before);
    emulator.reset();
    expect((await call("chat.send", { content: "and again", peer: "hist" })).result.text).toBe("You said: and again");
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).toContain("6 * 7");
    const replay = await call("chat.send", { content: "remember the walrus", peer: "idem", idempotencyKey: "idem-1" });
    expect(replay.result).toMatchObject({ text: "You said: remember the walrus", replayed: true });
    expect((await call("status")).result.sessions).toBeGreaterThanOrEqual(4);
  });
});
