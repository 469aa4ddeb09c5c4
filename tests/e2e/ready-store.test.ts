// The durable default store is ready when its journal is open (docs/operations.md, "Start-up
// time and what ready means"): the real gateway process, on a new state directory and then on
// the same one after a clean stop (its checkpoint), answers a message on a new session at once
// after ready, while its embedded engine may still be opening. Each answered turn must survive
// kill -9: after a restart it is there once (its idempotency key replays the same answer and the
// session's events are not written twice).
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

let emulator: Emulator;
let state: string;
let gateway: GatewayHandle | undefined;

const env = () => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });
const key = (peer: string) => `agent:main:ws:default:${peer}`;

beforeAll(async () => {
  emulator = await startEmulator();
  state = mkdtempSync(join(tmpdir(), "exoclaw-ready-store-"));
});
afterAll(async () => {
  await gateway?.stop("SIGKILL");
  await emulator?.close();
  rmSync(state, { recursive: true, force: true });
});

/** Sends one message on a new session right after ready; returns its answer's text. */
async function answerAtReady(gw: GatewayHandle, peer: string, idempotencyKey: string): Promise<string> {
  const client = await RpcClient.connect(gw.url);
  const { response } = await client.call("chat.send", { content: "what is 2 ^ 3 ^ 2?", peer, idempotencyKey });
  client.close();
  return response.msg.result.text as string;
}

/** The session's events (kind, seq) and the answer a resent key replays. */
async function afterRestart(gw: GatewayHandle, peer: string, idempotencyKey: string): Promise<{ kinds: string[]; replay: string }> {
  const client = await RpcClient.connect(gw.url);
  const history = (await client.call("chat.history", { sessionKey: key(peer) })).response.msg.result.events as { kind: string; seq: number }[];
  expect(history.map((e) => e.seq)).toEqual(history.map((_, i) => i + 1));
  const { response } = await client.call("chat.send", { content: "what is 2 ^ 3 ^ 2?", peer, idempotencyKey });
  const after = (await client.call("chat.history", { sessionKey: key(peer) })).response.msg.result.events as unknown[];
  // The resent key ran nothing: no event was added.
  expect(after.length).toBe(history.length);
  client.close();
  return { kinds: history.map((e) => e.kind), replay: response.msg.result.text as string };
}

describe("durable default store: ready before its engine", () => {
  it("a turn answered right after ready survives kill -9, on a new state directory and after a clean stop", { timeout: 180_000 }, async () => {
    // A new state directory: the engine is known empty, the store is ready with its journal.
    gateway = await startGateway(env());
    expect(gateway.ready.store).toMatch(/^rocksdb:\/\//);
    const first = await answerAtReady(gateway, "fresh", "k-fresh");
    expect(first).toBe("The answer is 512.");
    await gateway.stop("SIGKILL");
    // A crash leaves no checkpoint: this start opens the engine before it is ready and projects
    // the journal (or, if the kill came before the engine's files were created, starts as new).
    gateway = await startGateway(env());
    const fresh = await afterRestart(gateway, "fresh", "k-fresh");
    expect(fresh.replay).toBe(first);
    expect(fresh.kinds.filter((k) => k === "message_received")).toHaveLength(1);
    expect(fresh.kinds.at(-1)).toBe("turn_ended");
    // A clean stop writes the checkpoint.
    expect(await gateway.stop()).toBe(0);
    expect(existsSync(join(state, "data", "journal", "checkpoint"))).toBe(true);
    gateway = await startGateway(env());
    // Ready with the checkpoint (read and deleted at open); the engine opens after ready.
    expect(existsSync(join(state, "data", "journal", "checkpoint"))).toBe(false);
    const second = await answerAtReady(gateway, "after-stop", "k-after-stop");
    expect(second).toBe("The answer is 512.");
    await gateway.stop("SIGKILL");
    gateway = await startGateway(env());
    const again = await afterRestart(gateway, "after-stop", "k-after-stop");
    expect(again.replay).toBe(second);
    expect(again.kinds.filter((k) => k === "message_received")).toHaveLength(1);
    // The first session too, unchanged.
    expect((await afterRestart(gateway, "fresh", "k-fresh")).kinds).toEqual(fresh.kinds);
  });
});
