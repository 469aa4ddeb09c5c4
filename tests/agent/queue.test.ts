/**
 * Per-agent queue policy on the real runtime: memory session log, real provider adapter, the
 * provider emulator as the model. `SLOW_<n>MS` in a message makes the emulator stream its
 * reply with n ms between chunks, so a turn is still running when the next message arrives.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { COLLECT_SEPARATOR, DROPPED_MESSAGE, InterruptedTurnError } from "../../host/src/agent/index.js";
import type { TurnResult } from "../../host/src/agent/runtime.js";
import { projectHistory } from "../../host/src/agent/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, lastUserText, makeRuntime, ofKind, send, until } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});
beforeEach(() => emulator.reset());

const KEY = keyOf("alice");
const contents = (events: { kind: string; data: unknown }[]) => events.map((e) => (e.data as { content: string }).content);

describe("queue mode followup", () => {
  it("runs queued messages one turn each, in order, each seeing the previous ones; onAccepted comes before each outcome", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig()]);
    const order: string[] = [];
    const msgs = ["SLOW_40MS first", "second", "third"];
    const outs = msgs.map((m) =>
      send(runtime, m, { onAccepted: (id) => order.push(`accepted ${m} ${id}`) }).then((r) => {
        order.push(`done ${m} ${r.runId}`);
        return r;
      }),
    );
    const results = await Promise.all(outs);
    expect(results.map((r) => r.text)).toEqual(msgs.map((m) => `You said: ${m}`));
    expect(emulator.requests.map(lastUserText)).toEqual(msgs);
    // The third call sees both earlier turns.
    expect(emulator.requests[2]!.body.messages.map((m: { role: string }) => m.role)).toEqual(["user", "assistant", "user", "assistant", "user"]);
    for (const [i, m] of msgs.entries()) {
      const accepted = order.indexOf(`accepted ${m} ${results[i]!.runId}`);
      expect(accepted).toBeGreaterThanOrEqual(0);
      expect(accepted).toBeLessThan(order.indexOf(`done ${m} ${results[i]!.runId}`));
    }
    const stored = await log.read(KEY);
    expect(ofKind(stored, "turn_ended")).toHaveLength(3);
    expect(await log.pendingTurns()).toEqual([]);
  });
});

describe("queue mode collect", () => {
  it("runs every message queued behind a turn as ONE turn with all contents, each message journaled on its own", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "collect", cap: 32, drop: "new" } })]);
    const first = send(runtime, "SLOW_60MS first");
    await until(() => emulator.requests.length === 1, 10_000, "the first model call");
    const queued = [send(runtime, "b", { idempotencyKey: "collect-b" }), send(runtime, "c"), send(runtime, "d")];
    const [r1, rb, rc, rd] = (await Promise.all([first, ...queued])) as TurnResult[];
    expect(r1!.merged).toBeUndefined();
    // One model call for b, c and d, whose user content is all three in order.
    expect(emulator.requests).toHaveLength(2);
    const merged = ["b", "c", "d"].join(COLLECT_SEPARATOR);
    expect(lastUserText(emulator.requests[1]!)).toBe(merged);
    expect(rd).toMatchObject({ text: `You said: ${merged}` });
    expect(rd!.merged).toBeUndefined();
    // The folded messages resolve with that turn's result, marked merged (a channel replies once).
    expect(rb).toEqual({ ...rd, merged: true });
    expect(rc).toEqual({ ...rd, merged: true });

    const stored = await log.read(KEY);
    expect(contents(ofKind(stored, "message_received"))).toEqual(["SLOW_60MS first", "b", "c", "d"]);
    // Every message is closed; the folded ones name the run that answered them.
    const ended = ofKind(stored, "turn_ended");
    expect(ended).toHaveLength(4);
    expect(ended.filter((e) => (e.data as { runId: string }).runId === rd!.runId)).toHaveLength(3);
    expect(await log.pendingTurns()).toEqual([]);

    // The history the next turn gets: one user message for the collected turn, roles alternate.
    const history = projectHistory(await log.readHistory(KEY));
    expect(history.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
    expect(history[2]!.content).toEqual([{ type: "text", text: merged }]);
    await send(runtime, "e");
    const next = emulator.requests[2]!.body.messages as { role: string }[];
    expect(next.map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant", "user"]);

    // A repeated key of a folded message replays the merged result; nothing runs again.
    const replay = await send(runtime, "b", { idempotencyKey: "collect-b" });
    expect(replay).toEqual({ ...rd, merged: true, replayed: true });
    const { runtime: fresh } = makeRuntime(emulator, [agentConfig({ queue: { mode: "collect", cap: 32, drop: "new" } })], {}, log);
    expect(await send(fresh, "b", { idempotencyKey: "collect-b" })).toEqual({ ...rd, merged: true, replayed: true });
    expect(await fresh.recover()).toEqual({ rerun: 0, failed: 0 });
    expect(emulator.requests).toHaveLength(3);
  });

  it("a failed collected turn fails every folded message with an error event", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "collect", cap: 32, drop: "new" } })]);
    const first = send(runtime, "SLOW_40MS first");
    await until(() => emulator.requests.length === 1, 10_000, "the first model call");
    const queued = [send(runtime, "x").catch((e: unknown) => e), send(runtime, "FAIL_500 y").catch((e: unknown) => e)];
    await first;
    const [ex, ey] = await Promise.all(queued);
    expect(ex).toMatchObject({ code: -32000 });
    expect(ey).toMatchObject({ code: -32000 });
    const stored = await log.read(KEY);
    expect(ofKind(stored, "error")).toHaveLength(2);
    expect(await log.pendingTurns()).toEqual([]);
    expect(projectHistory(stored)).toHaveLength(2);
  });
});

describe("queue mode interrupt", () => {
  it("a new message aborts the running turn (InterruptedTurnError, error event) and runs next", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "interrupt", cap: 32, drop: "new" } })]);
    const started = Date.now();
    const long = send(runtime, "SLOW_2000MS a long answer please").catch((e: unknown) => e);
    await until(() => emulator.requests.length === 1, 10_000, "the first model call");
    const out = await send(runtime, "never mind");
    const err = await long;
    expect(err).toBeInstanceOf(InterruptedTurnError);
    expect(err).toMatchObject({ code: -32006 });
    expect(out.text).toBe("You said: never mind");
    // The slow reply would have taken ~8 s (four chunks, 2 s apart).
    expect(Date.now() - started).toBeLessThan(5000);
    const stored = await log.read(KEY);
    const errors = ofKind(stored, "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.data).toMatchObject({ code: -32006 });
    expect(errors[0]!.runId).toBe((err as InterruptedTurnError).runId);
    expect(await log.pendingTurns()).toEqual([]);
    // The interrupted turn left the history, like any failed turn.
    expect(emulator.requests[1]!.body.messages).toHaveLength(1);
  });

  it("messages still queued behind the running turn are superseded too, each closed by an error event", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "interrupt", cap: 32, drop: "new" } })]);
    const a = send(runtime, "SLOW_2000MS a").catch((e: unknown) => e);
    await until(() => emulator.requests.length === 1, 10_000, "the first model call");
    const b = send(runtime, "b").catch((e: unknown) => e);
    const c = send(runtime, "c");
    expect(await a).toBeInstanceOf(InterruptedTurnError);
    expect(await b).toBeInstanceOf(InterruptedTurnError);
    expect((await c).text).toBe("You said: c");
    expect(emulator.requests.map(lastUserText)).toEqual(["SLOW_2000MS a", "c"]);
    expect(ofKind(await log.read(KEY), "error")).toHaveLength(2);
    expect(await log.pendingTurns()).toEqual([]);
  });
});

describe("queue cap and drop policy", () => {
  it("drop new: the newcomer is refused (-32004) before journaling; onAccepted is not called", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "followup", cap: 2, drop: "new" } })]);
    const one = send(runtime, "SLOW_40MS one");
    const two = send(runtime, "two");
    let accepted = false;
    await expect(send(runtime, "three", { onAccepted: () => (accepted = true) })).rejects.toMatchObject({ code: -32004 });
    await Promise.all([one, two]);
    expect(accepted).toBe(false);
    expect(contents(ofKind(await log.read(KEY), "message_received"))).toEqual(["SLOW_40MS one", "two"]);
  });

  it("drop oldest: the oldest queued message is dropped with an error event and the newcomer runs", async () => {
    const { runtime, log } = makeRuntime(emulator, [agentConfig({ queue: { mode: "followup", cap: 2, drop: "oldest" } })]);
    const one = send(runtime, "SLOW_60MS one");
    let twoRunId = "";
    const two = send(runtime, "two", { onAccepted: (id) => (twoRunId = id) }).catch((e: unknown) => e);
    const three = send(runtime, "three");
    const [r1, e2, r3] = await Promise.all([one, two, three]);
    expect(e2).toMatchObject({ code: -32004, message: DROPPED_MESSAGE });
    expect((r1 as TurnResult).text).toBe("You said: SLOW_60MS one");
    expect((r3 as TurnResult).text).toBe("You said: three");
    expect(emulator.requests.map(lastUserText)).toEqual(["SLOW_60MS one", "three"]);
    const stored = await log.read(KEY);
    expect(contents(ofKind(stored, "message_received"))).toEqual(["SLOW_60MS one", "two", "three"]);
    const errors = ofKind(stored, "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.runId).toBe(twoRunId);
    expect(errors[0]!.data).toEqual({ code: -32004, message: DROPPED_MESSAGE });
    expect(await log.pendingTurns()).toEqual([]);
    // The drop did not disturb the turn that was running: both completed turns are in the history.
    expect(projectHistory(stored).map((m) => m.role)).toEqual(["user", "assistant", "user", "assistant"]);
  });

  it("drop oldest with nothing queued to drop refuses the newcomer", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig({ queue: { mode: "followup", cap: 1, drop: "oldest" } })]);
    const one = send(runtime, "SLOW_30MS one");
    await expect(send(runtime, "two")).rejects.toMatchObject({ code: -32004 });
    await one;
  });

  it("sessions do not share a cap", async () => {
    const { runtime } = makeRuntime(emulator, [agentConfig({ queue: { mode: "followup", cap: 1, drop: "new" } })]);
    const outs = await Promise.all(["p1", "p2", "p3"].map((peer) => send(runtime, "SLOW_20MS hi", { peer })));
    expect(outs.map((o) => o.sessionKey)).toEqual([keyOf("p1"), keyOf("p2"), keyOf("p3")]);
  });
});
