import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMemoryBus } from "../../host/src/bus/memory.js";
import { inboundSubject } from "../../host/src/bus/subjects.js";
import { busSuite, sleep, waitFor } from "./bus.suite.js";

busSuite("in-process", { make: (stateDir) => createMemoryBus({ stateDir }) });

describe("in-process bus specifics", () => {
  const subject = inboundSubject({ channel: "c", account: "a", peer: "p" });

  it("a full stream makes publishes wait (no drop) and fails only after the timeout", async () => {
    const bus = await createMemoryBus({ capacity: 5, publishTimeoutMs: 300 });
    try {
      for (let n = 0; n < 5; n++) await bus.publish(subject, n, { msgId: `f${n}` });
      const started = Date.now();
      await expect(bus.publish(subject, 5, { msgId: "f5" })).rejects.toMatchObject({ code: "backpressure" });
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      // a consumer frees room: the waiting publish goes through, in order
      const got: number[] = [];
      const waiting = bus.publish(subject, 6, { msgId: "f6" });
      await sleep(20);
      await bus.consume<number>({ stream: "in", durable: "d", handler: async (m) => void got.push(m.data) });
      await waiting;
      await waitFor(() => got.length === 6);
      expect(got).toEqual([0, 1, 2, 3, 4, 6]);
    } finally {
      await bus.close();
    }
  });

  it("keeps dead letters under the state dir across restarts", async () => {
    const dir = await mkdtemp(join(tmpdir(), "exoclaw-bus-"));
    try {
      const a = await createMemoryBus({ stateDir: dir });
      const sub = await a.consume({ stream: "in", durable: "d", maxDeliver: 1, handler: () => Promise.reject(new Error("no")) });
      await a.publish(subject, { x: 1 }, { msgId: "persist" });
      await waitFor(() => sub.stats().deadLettered === 1, 5_000, "dead-lettered");
      expect(await a.deadLetters.count()).toBe(1);
      await a.close();
      const b = await createMemoryBus({ stateDir: dir });
      const list = await b.deadLetters.list();
      expect(list).toHaveLength(1);
      expect(list[0]).toMatchObject({ msgId: "persist", data: { x: 1 }, attempts: 1 });
      expect(await b.deadLetters.purge()).toBe(1);
      await b.close();
      const c = await createMemoryBus({ stateDir: dir });
      expect(await c.deadLetters.count()).toBe(0);
      await c.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("createBus and the dlq command functions", () => {
  it("createBus picks the back end; dlq list/replay/purge work through the command functions", async () => {
    const { createBus, dlqList, dlqPurge, dlqReplay, formatDeadLetters } = await import("../../host/src/bus/index.js");
    const bus = await createBus({ kind: "memory" });
    try {
      expect(bus.kind).toBe("memory");
      let fail = true;
      const ok: string[] = [];
      await bus.consume<string>({
        stream: "in",
        durable: "cli",
        maxDeliver: 1,
        handler: (m) => (fail ? Promise.reject(new Error("boom\nstack")) : void ok.push(m.data)),
      });
      const subject = inboundSubject({ channel: "c", account: "a", peer: "p" });
      await bus.publish(subject, "one", { msgId: "cli-1" });
      await bus.publish(subject, "two", { msgId: "cli-2" });
      await waitFor(() => bus.status().connected, 1_000);
      let list = await dlqList(bus);
      for (let i = 0; i < 100 && list.length < 2; i++) {
        await sleep(10);
        list = await dlqList(bus);
      }
      expect(list.map((e) => e.msgId)).toEqual(["cli-1", "cli-2"]);
      const table = formatDeadLetters(list);
      expect(table.split("\n")[0]).toMatch(/^ID\s+FAILED AT\s+CONSUMER\s+TRIES\s+SUBJECT\s+MSG ID\s+ERROR$/);
      expect(table).toContain("Error: boom");
      expect(table).not.toContain("stack");
      await expect(dlqReplay(bus, [])).rejects.toThrow(/--all/);
      await expect(dlqPurge(bus, [])).rejects.toThrow(/--all/);
      fail = false;
      const replayed = await dlqReplay(bus, [list[0]!.id]);
      expect(replayed[0]!.msgId).toBe(`cli-1~r${list[0]!.id}`);
      await waitFor(() => ok.length === 1);
      expect(ok).toEqual(["one"]);
      expect(await dlqPurge(bus, [], { all: true })).toBe(1);
      expect(formatDeadLetters(await dlqList(bus))).toBe("no dead letters\n");
    } finally {
      await bus.close();
    }
  });
});
