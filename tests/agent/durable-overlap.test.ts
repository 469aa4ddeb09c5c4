/**
 * A turn runs its model call while its message's write is in flight (turn.ts, `early`), and
 * nothing leaves the turn before that write is durable: no acceptance, no streamed event, no
 * tool call, no outcome append, no answer. A failed write fails the turn with the store's error.
 *
 * The store is the real memory log behind a gate that holds each append's durability until the
 * test releases it (what a slow fsync looks like to the runtime): the append is checked and
 * applied at once and reports it through `onChecked`, as the journaled store does once a record
 * is handed to its writer.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TurnEvent } from "../../host/src/agent/types.js";
import { createMemorySessionLog, StoreError, type SessionLog } from "../../host/src/store/index.js";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, ofKind, send, until } from "./support.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

/** An append whose durability the test decides. */
interface Held {
  kinds: string[];
  release(): void;
  fail(err: Error): void;
  /** Whether an earlier append was still held when this one was made. */
  afterHeld: boolean;
}

/** The memory log with every append's durability held until the test releases it. */
function gatedLog(): { log: SessionLog; held: Held[] } {
  const inner = createMemorySessionLog();
  const held: Held[] = [];
  const hold = <T>(kinds: string[], apply: () => Promise<T>, onChecked?: () => void): Promise<T> => {
    const afterHeld = held.some((h) => h.kinds.length > 0 && !("done" in h));
    return apply().then((value) => {
      onChecked?.();
      return new Promise<T>((resolve, reject) => {
        const h: Held & { done?: true } = {
          kinds,
          afterHeld,
          release: () => {
            h.done = true;
            resolve(value);
          },
          fail: (err) => {
            h.done = true;
            reject(err);
          },
        };
        held.push(h);
      });
    });
  };
  const log: SessionLog = {
    ...inner,
    append: (key, events, opts = {}) =>
      hold(
        events.map((e) => e.kind),
        () => inner.append(key, events, { ...opts, onChecked: undefined }),
        opts.onChecked,
      ),
    appendEvents: (key, events, opts = {}) =>
      hold(
        events.map((e) => e.kind),
        () => inner.appendEvents(key, events, { ...opts, onChecked: undefined }),
        opts.onChecked,
      ),
  };
  return { log, held };
}

describe("a turn whose message is not yet durable", () => {
  it("calls the model meanwhile, but accepts, streams, calls tools and answers only after the write is durable", async () => {
    emulator.reset();
    const { log, held } = gatedLog();
    const toolCalls: { messageDurable: boolean }[] = [];
    const { runtime } = makeRuntime(emulator, [agentConfig()], {
      plugins: {
        tools: () => [{ name: "probe", description: "records when it runs", inputSchema: { type: "object" } }],
        callTool: async () => {
          toolCalls.push({ messageDurable: "done" in held[0]! });
          return { content: "probed", isError: false };
        },
      },
      log,
    });
    const events: TurnEvent[] = [];
    const order: string[] = [];
    let answered = false;
    const turn = send(runtime, 'use:probe {"x":1}', { peer: "overlap", events, onAccepted: () => order.push("accepted") }).then((r) => {
      order.push("answered");
      answered = true;
      return r;
    });
    // The model is asked while the message's write is still held.
    await until(() => emulator.requests.length >= 1, 10_000, "the model call");
    expect(held).toHaveLength(1);
    expect(held[0]!.kinds).toEqual(["message_received", "turn_started"]);
    // Give the model's answer time to arrive: nothing may come out of the turn meanwhile.
    await new Promise((r) => setTimeout(r, 100));
    expect(order).toEqual([]);
    expect(events).toEqual([]);
    expect(toolCalls).toEqual([]);
    expect(held).toHaveLength(1);
    held[0]!.release();
    // The tool ran after the message was durable; the outcome's append comes next.
    await until(() => held.length === 2, 10_000, "the outcome append");
    expect(toolCalls).toEqual([{ messageDurable: true }]);
    expect(held[1]!.afterHeld).toBe(false);
    expect(held[1]!.kinds.at(-1)).toBe("turn_ended");
    await new Promise((r) => setTimeout(r, 20));
    expect(answered).toBe(false);
    expect(order).toEqual(["accepted"]);
    expect(events.length).toBeGreaterThan(0);
    held[1]!.release();
    const out = await turn;
    expect(out.stopReason).toBe("end_turn");
    expect(order).toEqual(["accepted", "answered"]);
    expect(events.map((e) => e.type)).toContain("tool_result");
  });

  it("fails with the store's error when the write fails, having appended nothing of the turn", async () => {
    emulator.reset();
    const { log, held } = gatedLog();
    const { runtime } = makeRuntime(emulator, [agentConfig()], {}, log);
    const events: TurnEvent[] = [];
    const accepted: string[] = [];
    const turn = send(runtime, "hello there", { peer: "lost", events, onAccepted: (id) => accepted.push(id) });
    turn.catch(() => {});
    await until(() => emulator.requests.length >= 1, 10_000, "the model call");
    held[0]!.fail(new StoreError("disk_full", "no space left on device"));
    await expect(turn).rejects.toMatchObject({ name: "StoreError", message: "no space left on device" });
    expect(accepted).toEqual([]);
    expect(events).toEqual([]);
    // Only the message's append was made: no outcome, no error event after a message not stored.
    await new Promise((r) => setTimeout(r, 50));
    expect(held).toHaveLength(1);
    expect(ofKind(await log.read(keyOf("lost")), "turn_ended")).toEqual([]);
  });
});
