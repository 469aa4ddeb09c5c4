/** SessionQueues: batching rules, barriers, removal, concurrency across keys (no runtime). */
import { describe, expect, it } from "vitest";
import { SessionQueues, type QueueItem } from "../../host/src/agent/queue.js";

type Item = QueueItem & { id: string };
const turn = (id: string, collect = false): Item => ({ kind: "turn", collect, id });
const task = (id: string): Item => ({ kind: "task", id });

/** A queue whose batches finish when released, recording what started. */
function harness() {
  const started: string[][] = [];
  const releases: (() => void)[] = [];
  const q = new SessionQueues<Item>((key, batch) => {
    started.push([key, ...batch.map((b) => b.id)]);
    return new Promise<void>((r) => releases.push(r));
  });
  const releaseNext = async () => {
    releases.shift()!();
    await new Promise((r) => setTimeout(r, 0));
  };
  return { q, started, releaseNext };
}

describe("SessionQueues", () => {
  it("starts an idle key's job at once, and one batch at a time per key", async () => {
    const { q, started, releaseNext } = harness();
    q.push("k", turn("a"));
    expect(started).toEqual([["k", "a"]]);
    q.push("k", turn("b"));
    q.push("k", turn("c"));
    expect(q.pendingFor("k")).toBe(3);
    await releaseNext();
    expect(started).toEqual([
      ["k", "a"],
      ["k", "b"],
    ]);
    await releaseNext();
    await releaseNext();
    expect(started.map((s) => s[1])).toEqual(["a", "b", "c"]);
    expect(q.size).toBe(0);
  });

  it("runs different keys concurrently", () => {
    const { q, started } = harness();
    q.push("k1", turn("a"));
    q.push("k2", turn("b"));
    expect(started).toEqual([
      ["k1", "a"],
      ["k2", "b"],
    ]);
  });

  it("collect folds the turns waiting at the head, stopping at a task (a barrier)", async () => {
    const { q, started, releaseNext } = harness();
    q.push("k", turn("a", true));
    for (const j of [turn("b", true), turn("c", true), task("reset"), turn("d", true)]) q.push("k", j);
    await releaseNext();
    expect(started.at(-1)).toEqual(["k", "b", "c"]);
    await releaseNext();
    expect(started.at(-1)).toEqual(["k", "reset"]);
    await releaseNext();
    expect(started.at(-1)).toEqual(["k", "d"]);
  });

  it("followup never folds", async () => {
    const { q, started, releaseNext } = harness();
    q.push("k", turn("a"));
    q.push("k", turn("b"));
    q.push("k", turn("c"));
    await releaseNext();
    expect(started.at(-1)).toEqual(["k", "b"]);
  });

  it("remove takes out a waiting job only; the lane is forgotten when empty", async () => {
    const { q, started, releaseNext } = harness();
    const a = turn("a");
    const b = turn("b");
    q.push("k", a);
    q.push("k", b);
    expect(q.remove("k", a)).toBe(false);
    expect(q.waiting("k")).toEqual([b]);
    expect(q.remove("k", b)).toBe(true);
    expect(q.running("k")).toEqual([a]);
    await releaseNext();
    expect(started).toEqual([["k", "a"]]);
    expect(q.pendingFor("k")).toBe(0);
    expect(q.running("k")).toBeUndefined();
  });

  it("a batch that rejects or throws does not stall the key", async () => {
    let n = 0;
    const seen: string[] = [];
    const q = new SessionQueues<Item>((_k, batch) => {
      seen.push(batch[0]!.id);
      if (n++ === 0) throw new Error("sync bug");
      return Promise.reject(new Error("async bug"));
    });
    q.push("k", turn("a"));
    q.push("k", turn("b"));
    q.push("k", turn("c"));
    await new Promise((r) => setTimeout(r, 10));
    expect(seen).toEqual(["a", "b", "c"]);
    expect(q.size).toBe(0);
  });
});
