/**
 * Session retention end to end: `sessions.prune` over the wire (and the runtime forgetting a
 * pruned session's cached history), `exoclaw sessions prune` through the running gateway and on
 * the store directly, and `[store] retention` pruning at start-up. Default store (embedded
 * SurrealDB under the state directory).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let state: string;
let gateway: GatewayHandle | undefined;
let client: RpcClient | undefined;

const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });
const key = (peer: string) => `agent:main:ws:default:${peer}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-retention-"));
});
afterAll(async () => {
  client?.close();
  await gateway?.stop();
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

/** Starts the gateway on the test's state directory with this exoclaw.toml. */
async function start(toml: string): Promise<RpcClient> {
  writeFileSync(join(state, "exoclaw.toml"), toml);
  gateway = await startGateway(env(), ["--config", join(state, "exoclaw.toml")]);
  client = await RpcClient.connect(gateway.url);
  return client;
}

async function stop(): Promise<void> {
  client?.close();
  client = undefined;
  await gateway?.stop();
  gateway = undefined;
}

/** Runs `exoclaw sessions ...` against the test's state directory (and gateway port, if one runs). */
function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, "sessions", ...args, "--config", join(state, "exoclaw.toml")], {
    env: { ...process.env, EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "", ...(gateway ? { EXOCLAW_PORT: String(gateway.port) } : {}) },
    encoding: "utf8",
    timeout: 30_000,
  });
}

describe("session retention", () => {
  it("sessions.prune removes idle sessions, and the next message in one starts from an empty history", async () => {
    const c = await start("");
    const call = async (method: string, params?: unknown) => (await c.call(method, params)).response.msg;
    expect((await call("chat.send", { content: "my name is Ada", peer: "ada" })).result.text).toBe("You said: my name is Ada");
    await sleep(1100);
    const dry = await call("sessions.prune", { olderThanMs: 1000, dryRun: true });
    expect(dry.result).toMatchObject({ sessions: 1, events: 5, kept: 0, dryRun: true });
    expect((await call("chat.history", { sessionKey: key("ada") })).result.events).toHaveLength(5);
    const done = await call("sessions.prune", { olderThanMs: 1000 });
    expect(done.result).toMatchObject({ sessions: 1, events: 5, kept: 0, dryRun: false });
    expect(Date.parse(done.result.idleBefore)).toBeLessThan(Date.now() - 1000);
    expect((await call("chat.history", { sessionKey: key("ada") })).result.events).toEqual([]);

    // The runtime's cached history of the pruned session went with it.
    emulator.reset();
    await call("chat.send", { content: "who am I?", peer: "ada" });
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).not.toContain("Ada");
    expect((await call("chat.history", { sessionKey: key("ada") })).result.events.map((e: { seq: number }) => e.seq)).toEqual([1, 2, 3, 4, 5]);

    // Bad params name the field.
    expect((await call("sessions.prune", {})).error).toMatchObject({ code: -32602, message: expect.stringMatching(/olderThanMs is required/) });
    expect((await call("sessions.prune", { olderThanMs: 5 })).error.message).toMatch(/olderThanMs must be at least 1000/);
  });

  it("exoclaw sessions prune goes through the running gateway (which holds the store), then on the store directly", async () => {
    const viaGateway = cli(["prune", "--older-than", "1h", "--json"]);
    expect(viaGateway.status, viaGateway.stderr).toBe(0);
    expect(JSON.parse(viaGateway.stdout)).toMatchObject({ sessions: 0, events: 0, kept: 0, dryRun: false, via: expect.stringMatching(/^gateway ws:/) });
    await client!.call("chat.send", { content: "hello there", peer: "bob" });
    await stop();
    await sleep(1100);

    const dry = cli(["prune", "--older-than", "1s", "--dry-run"]);
    expect(dry.status, dry.stderr).toBe(0);
    expect(dry.stdout).toMatch(/^would remove 2 sessions \(10 events\) idle since before \S+Z \(via store\)$/m);
    expect(dry.stdout).toMatch(/run again without --dry-run/);
    const done = cli(["prune", "--older-than", "1s"]);
    expect(done.stdout).toMatch(/^removed 2 sessions \(10 events\)/m);
    expect(JSON.parse(cli(["list", "--json"]).stdout).sessions).toEqual([]);

    const bad = cli(["prune", "--older-than", "30 days"]);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/--older-than <age>' argument '30 days' is invalid\. It must be a whole number and a unit, like "30d"/);
  });

  it("[store] retention prunes idle sessions right after start-up and logs the counts", async () => {
    const c = await start("");
    await c.call("chat.send", { content: "an old conversation", peer: "old" });
    await stop();
    await sleep(2100);
    await start('[store]\nretention = "2s"\n');
    const deadline = Date.now() + 10_000;
    let line: Record<string, unknown> | undefined;
    while (!(line = gateway!.logs.find((l) => l.msg === "retention: pruned idle sessions")) && Date.now() < deadline) await sleep(50);
    expect(line).toMatchObject({ sessions: 1, events: 5, kept: 0 });
    expect(gateway!.logs.some((l) => /retention is under a day/.test(String(l.msg)))).toBe(true);
    expect((await client!.call("sessions.list")).response.msg.result.sessions).toEqual([]);
  });
});
