/**
 * Waiting for the runtime to be idle without polling: `whenIdle()` and `drain(graceMs)` on the
 * real runtime (memory session log, real provider adapter, the provider emulator as the model;
 * `SLOW_<n>MS` makes the emulator stream slowly, so a turn is still running when we wait).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { DROPPED_MESSAGE } from "../../host/src/agent/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, ofKind, send } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});
beforeEach(() => emulator.reset());

describe("whenIdle", () => {
  it("resolves at once on an idle runtime", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig()]);
    await runtime.whenIdle();
    expect(runtime.activeTurns()).toBe(0);
  });

  it("resolves after the running and queued turns and a dropped message's error record are written", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "followup", cap: 2, drop: "oldest" } })]);
    // "two" is dropped for "three" (cap 2, drop oldest); settled at once so its rejection is handled.
    const outs = Promise.allSettled([send(runtime, "SLOW_40MS one"), send(runtime, "two"), send(runtime, "three")]);
    await runtime.whenIdle();
    expect(runtime.activeTurns()).toBe(0);
    const stored = await log.read(keyOf("alice"));
    expect(ofKind(stored, "turn_ended")).toHaveLength(2);
    expect(ofKind(stored, "error").map((e) => (e.data as { message: string }).message)).toEqual([DROPPED_MESSAGE]);
    expect(await log.pendingTurns()).toEqual([]);
    expect((await outs).map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });
});

describe("drain", () => {
  it("with a grace longer than the test's timeout, returns when the last turn ends (the turn completes, later ones are refused)", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig()]);
    const turn = send(runtime, "SLOW_40MS finish me");
    await runtime.drain(10 * 60_000);
    expect((await turn).text).toBe("You said: SLOW_40MS finish me");
    expect(ofKind(await log.read(keyOf("alice")), "turn_ended")).toHaveLength(1);
    await expect(send(runtime, "too late")).rejects.toMatchObject({ code: -32005 });
  });

  it("with no grace, aborts the running turn, records its error and returns once it is written", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig()]);
    const turn = send(runtime, "SLOW_200MS abort me").catch((e: unknown) => e);
    await new Promise((r) => setImmediate(r));
    await runtime.drain(0);
    expect(await turn).toMatchObject({ code: -32006, message: "turn aborted: the gateway is shutting down" });
    expect(ofKind(await log.read(keyOf("alice")), "error")).toHaveLength(1);
    expect(await log.pendingTurns()).toEqual([]);
  });
});
