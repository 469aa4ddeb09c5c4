// End to end: `memory.list|search|delete` are scoped like `chat.history` (a chat client reaches
// the notes of its own ws conversations, admin everything), forgetting a peer erases its notes
// and its session log, and notes outlive a gateway restart (the notes file in the state
// directory). Real gateway process (default surrealkv store), real ws clients, the provider
// emulator; the model writes notes through the host's built-in `memory` tool.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { runCli } from "../cli/run-cli.js";

const FORBIDDEN = -32010;
const ADMIN_TOKEN = "admin-token-0123456789";
const ALICE_TOKEN = "alice-token-0123456789";
const BOB_TOKEN = "bob-token-01234567890";
const BRIDGE_TOKEN = "bridge-token-0123456789";

const CONFIG = `
[[agents]]
id = "main"
provider = "anthropic"
model = "model-main"

[agents.memory]
budget_tokens = 800

[[gateway.clients]]
name = "alice"
token = "${ALICE_TOKEN}"
scopes = ["chat"]

[[gateway.clients]]
name = "bob"
token = "${BOB_TOKEN}"
scopes = ["chat"]

[[gateway.clients]]
name = "bridge"
token = "${BRIDGE_TOKEN}"
scopes = ["chat", "impersonate"]
`;

describe("memory.* RPC", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let state: string;
  const clients: RpcClient[] = [];
  const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_TOKEN: ADMIN_TOKEN, EXOCLAW_STATE_DIR: state });

  async function connect(token: string): Promise<RpcClient> {
    const c = await RpcClient.connect(gateway.url, { authorization: `Bearer ${token}` });
    clients.push(c);
    return c;
  }
  const msg = async (c: RpcClient, method: string, params?: unknown) => (await c.call(method, params)).response.msg;
  async function remember(c: RpcClient, note: string, target: Record<string, string>) {
    const { response } = await c.call("chat.send", { content: `use:memory ${JSON.stringify({ action: "remember", note })}`, ...target });
    expect(response.msg.error).toBeUndefined();
  }

  beforeAll(async () => {
    emulator = await startEmulator();
    state = mkdtempSync(join(tmpdir(), "exoclaw-memory-rpc-"));
    writeFileSync(join(state, "exoclaw.toml"), CONFIG);
    gateway = await startGateway(env(), ["--config", join(state, "exoclaw.toml")]);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await gateway?.stop();
    await emulator?.close();
    if (state) rmSync(state, { recursive: true, force: true });
  });

  it("scopes reads and deletes like chat.history; forgetting a peer erases its notes and log; notes outlive a restart", async () => {
    const alice = await connect(ALICE_TOKEN);
    const bob = await connect(BOB_TOKEN);
    const bridge = await connect(BRIDGE_TOKEN);
    const admin = await connect(ADMIN_TOKEN);
    await remember(alice, "Alice prefers oolong tea", { peer: "p1" });
    await remember(bridge, "Telegram user 42 plays chess on Sundays", { channel: "telegram", account: "bot", peer: "42" });

    // A chat client sees its own ws conversations' notes only.
    const own = (await msg(alice, "memory.list")).result.notes as { id: number; text: string; channel: string; account: string; peer: string }[];
    expect(own.map((n) => [n.text, n.channel, n.account, n.peer])).toEqual([["Alice prefers oolong tea", "ws", "alice", "p1"]]);
    expect((await msg(bob, "memory.list")).result.notes).toEqual([]);
    expect((await msg(bob, "memory.search", { query: "oolong" })).result.hits).toEqual([]);
    expect((await msg(alice, "memory.list", { channel: "telegram" })).error.code).toBe(FORBIDDEN);
    // Bob cannot delete Alice's note, nor forget a telegram peer.
    expect((await msg(bob, "memory.delete", { ids: [own[0]!.id] })).result).toEqual({ notes: 0, sessions: [] });
    expect((await msg(bob, "memory.delete", { peer: "42", channel: "telegram" })).error.code).toBe(FORBIDDEN);
    expect((await msg(bob, "memory.delete", { nope: 1 })).error.code).toBe(-32602);

    // Admin reads everything.
    const hits = (await msg(admin, "memory.search", { query: "chess sunday" })).result.hits as { note: { text: string; peer: string } }[];
    expect(hits.map((h) => h.note.text)).toEqual(["Telegram user 42 plays chess on Sundays"]);

    // Forget telegram peer 42: notes and session log.
    const key = "agent:main:telegram:bot:42";
    expect((await msg(admin, "chat.history", { sessionKey: key })).result.events.length).toBeGreaterThan(0);
    expect((await msg(admin, "memory.delete", { peer: "42" })).result).toEqual({ notes: 1, sessions: [key] });
    expect((await msg(admin, "chat.history", { sessionKey: key })).result.events).toEqual([]);
    expect((await msg(admin, "memory.search", { query: "chess" })).result.hits).toEqual([]);
    expect((await msg(admin, "sessions.search", { query: "chess" })).result.hits).toEqual([]);

    // The notes file is private, and notes survive a restart.
    expect(statSync(join(state, "memory", "notes.jsonl")).mode & 0o777).toBe(0o600);
    for (const c of clients.splice(0)) c.close();
    await gateway.stop();
    gateway = await startGateway(env(), ["--config", join(state, "exoclaw.toml")]);
    const admin2 = await connect(ADMIN_TOKEN);
    expect(((await msg(admin2, "memory.list")).result.notes as { text: string }[]).map((n) => n.text)).toEqual(["Alice prefers oolong tea"]);
    // The next session of alice's conversation gets the note in its model request.
    const alice2 = await connect(ALICE_TOKEN);
    await msg(alice2, "sessions.reset", { sessionKey: "agent:main:ws:alice:p1" });
    const before = emulator.requests.length;
    await alice2.call("chat.send", { content: "what tea do I like?", peer: "p1" });
    expect(JSON.stringify(emulator.requests[before]!.body.messages)).toContain("Alice prefers oolong tea");
    // The CLI asks the running gateway.
    const cliEnv = { ...env(), EXOCLAW_PORT: String(gateway.port) };
    const config = ["--config", join(state, "exoclaw.toml")];
    const listed = await runCli(["memory", "list", "--json", ...config], cliEnv);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).notes.map((n: { text: string }) => n.text)).toEqual(["Alice prefers oolong tea"]);
    const searched = await runCli(["memory", "search", "oolong", ...config], cliEnv);
    expect(searched.stdout).toMatch(/Alice prefers oolong tea/);

    // With no gateway running, `forget` erases from the store and the notes file directly.
    for (const c of clients.splice(0)) c.close();
    await gateway.stop();
    const forgot = await runCli(["memory", "forget", "--peer", "p1", "--json", ...config], cliEnv);
    expect(forgot.code, forgot.stderr).toBe(0);
    expect(JSON.parse(forgot.stdout)).toEqual({ sessions: ["agent:main:ws:alice:p1"], notes: 1, via: "store" });
    gateway = await startGateway(env(), ["--config", join(state, "exoclaw.toml")]);
    const admin3 = await connect(ADMIN_TOKEN);
    expect((await msg(admin3, "memory.list")).result.notes).toEqual([]);
    expect((await msg(admin3, "chat.history", { sessionKey: "agent:main:ws:alice:p1" })).result.events).toEqual([]);
    expect((await msg(admin3, "sessions.search", { query: "oolong" })).result.hits).toEqual([]);
    // Three gateway starts and three CLI runs: more than the default 30 s on a loaded machine.
  }, 180_000);

  it("a chat client deletes its own notes by id", async () => {
    const alice = await connect(ALICE_TOKEN);
    const admin = await connect(ADMIN_TOKEN);
    await remember(alice, "Alice's locker is number 31", { peer: "p2" });
    const [note] = (await msg(alice, "memory.list")).result.notes as { id: number }[];
    expect((await msg(alice, "memory.delete", { ids: [note!.id] })).result).toEqual({ notes: 1, sessions: [] });
    expect((await msg(admin, "memory.list")).result.notes).toEqual([]);
  });
});
