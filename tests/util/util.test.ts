// The shared helpers of host/src/util: one copy each, used across layers.
import { describe, expect, it } from "vitest";
import { errorMessage, KeyedChain, percentile, sleep } from "../../host/src/util/index.js";

describe("errorMessage", () => {
  it("is the message of an Error (no stack) and String() of anything else", () => {
    expect(errorMessage(new TypeError("bad"))).toBe("bad");
    expect(errorMessage("plain")).toBe("plain");
    expect(errorMessage(42)).toBe("42");
    expect(errorMessage(undefined)).toBe("undefined");
  });
});

describe("sleep", () => {
  it("resolves after the delay; with a signal, rejects with its reason when it aborts (before or during)", async () => {
    await expect(sleep(1)).resolves.toBeUndefined();
    const ac = new AbortController();
    const waiting = sleep(60_000, ac.signal);
    ac.abort(new Error("stop"));
    await expect(waiting).rejects.toThrow("stop");
    await expect(sleep(1, ac.signal)).rejects.toThrow("stop");
    await expect(sleep(1, new AbortController().signal)).resolves.toBeUndefined();
  });
});

describe("percentile", () => {
  it("takes the nearest rank floor(q * n) of the ascending order, 0 for no values, without sorting the input in place", () => {
    const values = [4, 1, 3, 2];
    expect(percentile(values, 0.5)).toBe(3);
    expect(percentile(values, 0.99)).toBe(4);
    expect(percentile(values, 0)).toBe(1);
    expect(values).toEqual([4, 1, 3, 2]);
    expect(percentile([], 0.5)).toBe(0);
    expect(percentile(Float64Array.from([1, 2, 3]), 0.5, true)).toBe(2);
  });
});

describe("KeyedChain", () => {
  it("runs one key's tasks in call order, one at a time; other keys do not wait; a failure does not stop the chain", async () => {
    const chain = new KeyedChain();
    const log: string[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a1 = chain.run("a", async () => {
      log.push("a1 start");
      await gate;
      log.push("a1 end");
      throw new Error("a1 failed");
    });
    const a2 = chain.run("a", async () => {
      log.push("a2");
      return 2;
    });
    const b1 = chain.run("b", async () => {
      log.push("b1");
      return "b";
    });
    expect(await b1).toBe("b");
    expect(log).toEqual(["a1 start", "b1"]);
    await new Promise((r) => setImmediate(r));
    expect(chain.size).toBe(1); // "b" is forgotten once idle; "a" still runs
    release();
    await expect(a1).rejects.toThrow("a1 failed");
    expect(await a2).toBe(2);
    expect(log).toEqual(["a1 start", "b1", "a1 end", "a2"]);
    await chain.idle();
    expect(chain.size).toBe(0);
  });
});
