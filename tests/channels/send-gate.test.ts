/** The send gate (channels/send-gate.ts): per-plugin limit, order, aborts while waiting. */
import { describe, expect, it } from "vitest";
import { SendGate } from "../../host/src/channels/send-gate.js";

/** A call that stays running until `finish(i)`. */
function calls() {
  const started: number[] = [];
  const finishers = new Map<number, () => void>();
  return {
    started,
    call: (i: number) => () =>
      new Promise<number>((resolve) => {
        started.push(i);
        finishers.set(i, () => resolve(i));
      }),
    finish: (i: number) => finishers.get(i)!(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("SendGate", () => {
  it("runs at most the plugin's slots at once, the rest in arrival order; plugins are independent", async () => {
    const gate = new SendGate((p) => (p === "a" ? 2 : 1));
    const c = calls();
    const done = [1, 2, 3, 4].map((i) => gate.run("a", c.call(i)));
    const other = gate.run("b", c.call(10));
    await tick();
    expect(c.started).toEqual([1, 2, 10]);
    expect(gate.stats("a")).toEqual({ running: 2, waiting: 2 });
    c.finish(2);
    await tick();
    expect(c.started).toEqual([1, 2, 10, 3]);
    c.finish(1);
    c.finish(3);
    await tick();
    c.finish(4);
    c.finish(10);
    expect(await Promise.all(done)).toEqual([1, 2, 3, 4]);
    expect(await other).toBe(10);
    expect(gate.stats("a")).toEqual({ running: 0, waiting: 0 });
  });

  it("releases the slot when the call throws", async () => {
    const gate = new SendGate(() => 1);
    await expect(gate.run("a", async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await gate.run("a", async () => "next")).toBe("next");
    expect(gate.stats("a")).toEqual({ running: 0, waiting: 0 });
  });

  it("a waiting call whose signal aborts runs at once without a slot (to throw its own abort error)", async () => {
    const gate = new SendGate(() => 1);
    const c = calls();
    const first = gate.run("a", c.call(1));
    const ctl = new AbortController();
    const waiting = gate.run(
      "a",
      async () => {
        if (ctl.signal.aborted) throw new Error("aborted before the plugin ran");
        return 2;
      },
      ctl.signal,
    );
    await tick();
    expect(gate.stats("a")).toEqual({ running: 1, waiting: 1 });
    ctl.abort();
    await expect(waiting).rejects.toThrow("aborted before the plugin ran");
    expect(gate.stats("a")).toEqual({ running: 1, waiting: 0 });
    c.finish(1);
    await first;
    expect(gate.stats("a")).toEqual({ running: 0, waiting: 0 });
  });

  it("a lowered limit applies as running calls end", async () => {
    let slots = 2;
    const gate = new SendGate(() => slots);
    const c = calls();
    const all = [1, 2, 3].map((i) => gate.run("a", c.call(i)));
    await tick();
    slots = 1;
    c.finish(1);
    await tick();
    expect(c.started).toEqual([1, 2]); // 2 still runs: 3 waits for it
    c.finish(2);
    await tick();
    expect(c.started).toEqual([1, 2, 3]);
    c.finish(3);
    await Promise.all(all);
  });
});
