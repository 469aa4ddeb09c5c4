/**
 * Acceptance and recovery hooks: `onAccepted` (also for repeated keys), and `onRecovered` after
 * a simulated crash (messages journaled by a process that never finished them).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { INTERRUPTED_MESSAGE, type RecoveredTurn } from "../../host/src/agent/index.js";
import { createMemorySessionLog, formatSessionKey } from "../../host/src/store/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, send, until } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});
beforeEach(() => emulator.reset());

describe("onAccepted", () => {
  it("fires once the message is stored, and at once with the original run id for a repeated key", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig()]);
    const seen: string[] = [];
    let storedWhenAccepted = -1;
    const first = send(runtime, "SLOW_30MS hello", {
      idempotencyKey: "k-1",
      onAccepted: (id) => {
        seen.push(id);
        void log.read(keyOf("alice")).then((ev) => (storedWhenAccepted = ev.filter((e) => e.kind === "message_received" && e.runId === id).length));
      },
    });
    // While it runs: a duplicate is accepted with the original's run id.
    let dupAccepted = "";
    const dup = send(runtime, "SLOW_30MS hello", { idempotencyKey: "k-1", onAccepted: (id) => (dupAccepted = id) });
    const [a, b] = await Promise.all([first, dup]);
    expect(seen).toEqual([a.runId]);
    expect(storedWhenAccepted).toBe(1);
    expect(dupAccepted).toBe(a.runId);
    expect(b).toEqual({ ...a, replayed: true });
    // After it finished, from the store (a new runtime, as after a restart).
    const { runtime: again } = makeRuntime(emulator, [agentConfig()], {}, log);
    let replayAccepted = "";
    const c = await send(again, "SLOW_30MS hello", { idempotencyKey: "k-1", onAccepted: (id) => (replayAccepted = id) });
    expect(replayAccepted).toBe(a.runId);
    expect(c.replayed).toBe(true);
    expect(emulator.requests).toHaveLength(1);
  });

  it("a hook that throws does not break the turn", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig()]);
    const out = await send(runtime, "ping", {
      onAccepted: () => {
        throw new Error("hook bug");
      },
    });
    expect(out.text).toBe("pong");
  });
});

describe("onRecovered", () => {
  it("reports the re-run turn's result and the interrupted turn's failure, with channel, peer, thread and platform message id", async () => {
    const log = createMemorySessionLog();
    const key = formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: "42" });
    const source = { channel: "telegram", account: "bot1", peer: "42" };
    // A crashed process: one turn had started (it may have called tools), one was only queued.
    await log.append(key, [
      { kind: "message_received", runId: "r-started", data: { content: "first", ...source, thread: "th-1", platformMessageId: "m1" } },
      { kind: "turn_started", runId: "r-started", data: { runId: "r-started" } },
      {
        kind: "message_received",
        runId: "r-queued",
        data: { content: "second", ...source, thread: "th-2", platformMessageId: "m2", idempotencyKey: "channel:telegram:bot1:m2" },
      },
    ]);
    const turns: RecoveredTurn[] = [];
    const { runtime } = makeRuntime(emulator, [agentConfig()], { onRecovered: (t) => turns.push(t) }, log);
    expect(await runtime.recover()).toEqual({ rerun: 1, failed: 1 });
    // The failure is reported at once.
    expect(turns[0]).toEqual({
      sessionKey: key,
      agentId: "main",
      runId: "r-started",
      ...source,
      thread: "th-1",
      platformMessageId: "m1",
      error: { code: -32006, message: INTERRUPTED_MESSAGE },
    });
    await until(() => turns.length === 2, 10_000, "the re-run turn");
    expect(turns[1]).toMatchObject({
      sessionKey: key,
      agentId: "main",
      runId: "r-queued",
      ...source,
      thread: "th-2",
      platformMessageId: "m2",
      result: { text: "You said: second", runId: "r-queued" },
    });
    expect(turns[1]!.error).toBeUndefined();
    expect(await log.pendingTurns()).toEqual([]);
    // A channel retrying the re-run message's key gets that result, not a second turn.
    const replay = await runtime.run({ agentId: "main", sessionKey: key, content: "second", ...source, idempotencyKey: "channel:telegram:bot1:m2" }, () => {});
    expect(replay).toMatchObject({ runId: "r-queued", replayed: true });
    expect(emulator.requests).toHaveLength(1);
  });

  it("a collected turn cut by a crash fails every folded message (they had started); the session stays usable", async () => {
    const log = createMemorySessionLog();
    const key = keyOf("alice");
    const source = { channel: "ws", account: "default", peer: "alice" };
    await log.append(key, [
      { kind: "message_received", runId: "a", data: { content: "a", ...source } },
      { kind: "message_received", runId: "b", data: { content: "b", ...source } },
      { kind: "turn_started", runId: "a", data: { runId: "b" } },
      { kind: "turn_started", runId: "b", data: { runId: "b" } },
      { kind: "assistant_text", runId: "b", data: { text: "half an ans" } },
    ]);
    const turns: RecoveredTurn[] = [];
    const collect = agentConfig({ queue: { mode: "collect", cap: 32, drop: "new" } });
    const { runtime } = makeRuntime(emulator, [collect], { onRecovered: (t) => turns.push(t) }, log);
    expect(await runtime.recover()).toEqual({ rerun: 0, failed: 2 });
    expect(turns.map((t) => [t.runId, t.error?.code])).toEqual([
      ["a", -32006],
      ["b", -32006],
    ]);
    expect(await log.pendingTurns()).toEqual([]);
    const out = await send(runtime, "after the crash");
    expect(out.text).toBe("You said: after the crash");
    expect(emulator.requests[0]!.body.messages).toHaveLength(1);
  });

  it("stores thread and platformMessageId with the message; a repeated platform message id is answered from the store", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig()]);
    const key = formatSessionKey({ agent: "main", channel: "slack", account: "T1", peer: "U1" });
    const req = { agentId: "main", sessionKey: key, content: "hello", channel: "slack", account: "T1", peer: "U1", thread: "1700.1", platformMessageId: "Ev1" };
    const a = await runtime.run(req, () => {});
    const stored = (await log.read(key))[0]!;
    expect(stored.data).toEqual({ content: "hello", channel: "slack", account: "T1", peer: "U1", thread: "1700.1", platformMessageId: "Ev1" });
    let accepted = "";
    const b = await runtime.run(req, () => {}, undefined, { onAccepted: (id) => (accepted = id) });
    expect(b).toEqual({ ...a, replayed: true });
    expect(accepted).toBe(a.runId);
    expect(emulator.requests).toHaveLength(1);
  });
});

describe("closeAbandoned", () => {
  it("closes a turn another process left open under a key, once; ended turns and unknown keys are left alone", async () => {
    const log = createMemorySessionLog();
    const key = keyOf("alice");
    const source = { channel: "webhook", account: "default", peer: "alice" };
    // A dead gateway accepted and started "cut"; "done" ended normally.
    await log.append(key, [
      { kind: "message_received", runId: "r-done", data: { content: "done", ...source, idempotencyKey: "k-done" } },
      { kind: "turn_started", runId: "r-done", data: { runId: "r-done" } },
      { kind: "turn_ended", runId: "r-done", data: { runId: "r-done", stopReason: "end_turn" } },
      { kind: "message_received", runId: "r-cut", data: { content: "cut", ...source, idempotencyKey: "k-cut" } },
      { kind: "turn_started", runId: "r-cut", data: { runId: "r-cut" } },
    ]);
    const { runtime } = makeRuntime(emulator, [agentConfig()], {}, log);
    expect(await runtime.closeAbandoned("k-cut", "run again elsewhere")).toBe(true);
    expect(await runtime.closeAbandoned("k-cut", "run again elsewhere")).toBe(false);
    expect(await runtime.closeAbandoned("k-done", "x")).toBe(false);
    expect(await runtime.closeAbandoned("k-unknown", "x")).toBe(false);
    const errors = (await log.read(key)).filter((e) => e.kind === "error");
    expect(errors).toEqual([expect.objectContaining({ runId: "r-cut", data: { code: -32006, message: "run again elsewhere" } })]);
    expect(await log.pendingTurns()).toEqual([]);
    // The session goes on: the next turn sees the ended turn, not the cut one.
    const next = await runtime.run({ agentId: "main", sessionKey: key, content: "next", ...source }, () => {});
    expect(next.text).toBe("You said: next");
    const sent = JSON.stringify(emulator.requests.at(-1)!.body);
    expect(sent).toContain("done");
    expect(sent).not.toContain('"cut"');
  });
});
