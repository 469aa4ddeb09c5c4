// The history cache is bounded by bytes, not only by sessions: a few sessions with long
// histories must not pin their whole history in the gateway's heap (issue 13, memory under load).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimateBytes, HistoryCache } from "../../host/src/agent/history-cache.js";
import { createMemorySessionLog, type SessionEvent, type SessionLog } from "../../host/src/store/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, send } from "./support.js";

/** A stored `message_received` event of `chars` characters at `seq`. */
const message = (seq: number, chars: number): SessionEvent =>
  ({ seq, kind: "message_received", ts: 0, runId: `r${seq}`, data: { content: "x".repeat(chars), role: "user" } }) as unknown as SessionEvent;

describe("HistoryCache limits", () => {
  it("evicts the least recently used sessions once their estimated bytes exceed the budget", () => {
    const one = estimateBytes(message(1, 1000));
    const cache = new HistoryCache({ sessions: 100, bytes: Math.floor(one * 2.5) });
    cache.fill("a", [message(1, 1000)]);
    cache.fill("b", [message(1, 1000)]);
    expect(cache.get("a")).toHaveLength(1); // a is now the most recently used
    cache.fill("c", [message(1, 1000)]);
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toHaveLength(1);
    expect(cache.get("c")).toHaveLength(1);
    expect(cache.bytes).toBe(2 * one);
    cache.drop("a");
    cache.drop("c");
    expect(cache.bytes).toBe(0);
  });

  it("drops a session whose history grows past the budget by appends, and never caches one that starts past it", () => {
    const one = estimateBytes(message(1, 1000));
    const cache = new HistoryCache({ sessions: 100, bytes: one * 3 });
    cache.fill("a", [message(1, 1000)]);
    cache.appended("a", [message(2, 1000), message(3, 1000)]);
    expect(cache.get("a")).toHaveLength(3);
    cache.appended("a", [message(4, 1000)]);
    expect(cache.get("a")).toBeUndefined();
    expect(cache.bytes).toBe(0);
    cache.fill("b", [message(1, 5000)]);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.bytes).toBe(0);
  });

  it("counts two bytes per character, so long text weighs what it holds", () => {
    expect(estimateBytes("x".repeat(10_000))).toBeGreaterThanOrEqual(20_000);
    expect(estimateBytes({ a: ["y".repeat(500), { b: "z".repeat(500) }] })).toBeGreaterThanOrEqual(2000);
  });
});

describe("AgentRuntime historyCacheBytes", () => {
  let emulator: Emulator;
  beforeAll(async () => {
    emulator = await startEmulator();
  });
  afterAll(async () => {
    await emulator.close();
  });

  /** The memory log, counting `readHistory` calls per session. */
  function countingLog(): { log: SessionLog; reads: Map<string, number> } {
    const inner = createMemorySessionLog();
    const reads = new Map<string, number>();
    const log: SessionLog = Object.create(inner);
    log.readHistory = (key, ...rest) => {
      reads.set(key, (reads.get(key) ?? 0) + 1);
      return inner.readHistory(key, ...rest);
    };
    return { log, reads };
  }

  it("reads from the store the history of a session too large for the byte budget, and caches a small one", async () => {
    const { log, reads } = countingLog();
    const { runtime } = makeRuntime(emulator, [agentConfig()], { historyCacheBytes: 64 * 1024 }, log);
    const big = "b".repeat(40 * 1024); // ~80 KB estimated: over the budget from the first turn
    for (let i = 0; i < 3; i++) await send(runtime, `${big} ${i}`, { peer: "big" });
    for (let i = 0; i < 3; i++) await send(runtime, `small ${i}`, { peer: "small" });
    expect(reads.get(keyOf("big"))).toBe(3);
    expect(reads.get(keyOf("small"))).toBe(1);
  });
});
