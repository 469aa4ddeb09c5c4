/**
 * Behaviour every Bus back end must have. Run by memory.test.ts and nats.test.ts with their own
 * factory.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { BusError } from "../../host/src/bus/errors.js";
import { inboundSubject, outboundSubject } from "../../host/src/bus/subjects.js";
import type { Bus, BusMessage } from "../../host/src/bus/types.js";

export interface BusFactory {
  /** A fresh bus on a clean back end (the factory may reset state between tests). */
  make(stateDir: string): Promise<Bus>;
  /** A second bus on the same back end (shares streams with the last `make`). */
  attach?(stateDir: string): Promise<Bus>;
  setup?(): Promise<void>;
  teardown?(): Promise<void>;
  /** Between tests (e.g. delete streams). */
  reset?(): Promise<void>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(cond: () => boolean, timeoutMs = 20_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const addr = (peer: string) => inboundSubject({ channel: "telegram", account: "bot1", peer });

export function busSuite(name: string, factory: BusFactory): void {
  describe(`Bus: ${name}`, () => {
    const buses: Bus[] = [];
    const dirs: string[] = [];
    const make = async () => {
      const dir = await mkdtemp(join(tmpdir(), "exoclaw-bus-"));
      dirs.push(dir);
      const bus = await factory.make(dir);
      buses.push(bus);
      return { bus, dir };
    };
    beforeAll(async () => factory.setup?.());
    afterAll(async () => factory.teardown?.());
    afterEach(async () => {
      await Promise.all(buses.splice(0).map((b) => b.close()));
      await factory.reset?.();
      await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
    });

    it("delivers payloads with their subject, id and headers", async () => {
      const { bus } = await make();
      const got: BusMessage<{ text: string }>[] = [];
      await bus.consume<{ text: string }>({ stream: "in", durable: "t1", handler: (m) => void got.push(m) });
      const subject = inboundSubject({ channel: "tele.gram", account: "*", peer: "a b" });
      const ack = await bus.publish(subject, { text: "hello" }, { msgId: "m-1", headers: { "X-Trace": "abc" } });
      expect(ack).toMatchObject({ msgId: "m-1", storedIn: "stream", duplicate: false });
      expect(ack.seq).toBeGreaterThan(0);
      await waitFor(() => got.length === 1);
      const m = got[0]!;
      expect(m.subject).toBe(subject);
      expect(m.stream).toBe("in");
      expect(m.data).toEqual({ text: "hello" });
      expect(m.msgId).toBe("m-1");
      expect(m.headers["X-Trace"]).toBe("abc");
      expect(m.headers["Nats-Msg-Id"]).toBe("m-1");
      expect(m.attempt).toBe(1);
      expect(m.deliveryCount).toBe(1);
      expect(Math.abs(m.publishedAt - Date.now())).toBeLessThan(10_000);
      expect(bus.status()).toMatchObject({ kind: bus.kind, connected: true, spooled: 0 });
    });

    it("keeps each session in order, handles each message exactly once, sessions run concurrently", async () => {
      const { bus } = await make();
      const sessions = 40;
      const perSession = 25;
      const seen = new Map<string, number[]>();
      const running = new Set<string>();
      let maxConcurrent = 0;
      let overlap = 0;
      let handled = 0;
      await bus.consume<{ s: string; n: number }>({
        stream: "in",
        durable: "order",
        maxAckPending: 64,
        handler: async (m) => {
          if (running.has(m.subject)) overlap++;
          running.add(m.subject);
          maxConcurrent = Math.max(maxConcurrent, running.size);
          await sleep(Math.random() * 3);
          const list = seen.get(m.data.s) ?? [];
          list.push(m.data.n);
          seen.set(m.data.s, list);
          running.delete(m.subject);
          handled++;
        },
      });
      const publishes: Promise<unknown>[] = [];
      for (let n = 0; n < perSession; n++) {
        for (let s = 0; s < sessions; s++) publishes.push(bus.publish(addr(`p${s}`), { s: `p${s}`, n }, { msgId: `o-${s}-${n}` }));
      }
      await Promise.all(publishes);
      await waitFor(() => handled >= sessions * perSession, 30_000, "all handled");
      await sleep(100);
      expect(handled).toBe(sessions * perSession);
      expect(overlap).toBe(0);
      expect(maxConcurrent).toBeGreaterThan(1);
      for (let s = 0; s < sessions; s++) expect(seen.get(`p${s}`)).toEqual(Array.from({ length: perSession }, (_, i) => i));
    });

    it("dedupes a re-published message id (publisher side and consumer side)", async () => {
      const { bus } = await make();
      let calls = 0;
      await bus.consume({ stream: "in", durable: "dup", handler: () => void calls++ });
      const a = await bus.publish(addr("x"), { n: 1 }, { msgId: "same" });
      const b = await bus.publish(addr("x"), { n: 1 }, { msgId: "same" });
      expect(a.duplicate).toBe(false);
      expect(b.duplicate).toBe(true);
      expect(b.seq).toBe(a.seq);
      await waitFor(() => calls === 1);
      await sleep(150);
      expect(calls).toBe(1);
    });

    it("retries a failing handler in place, keeping its session's order", async () => {
      const { bus } = await make();
      const order: string[] = [];
      const attempts: number[] = [];
      await bus.consume<{ n: number }>({
        stream: "in",
        durable: "retry",
        backoffMs: [20, 40],
        handler: (m) => {
          if (m.data.n === 1) {
            attempts.push(m.attempt);
            if (m.attempt < 3) throw new Error("flaky");
          }
          order.push(`${m.data.n}`);
        },
      });
      for (let n = 1; n <= 3; n++) await bus.publish(addr("r"), { n }, { msgId: `r-${n}` });
      await waitFor(() => order.length === 3);
      expect(order).toEqual(["1", "2", "3"]);
      expect(attempts).toEqual([1, 2, 3]);
      expect(await bus.deadLetters.count()).toBe(0);
    });

    it("dead-letters a message after 3 failed attempts; replay and purge work", async () => {
      const { bus } = await make();
      let failing = true;
      const handled: number[] = [];
      const attemptsSeen: number[] = [];
      const sub = await bus.consume<{ n: number }>({
        stream: "in",
        durable: "dlq",
        backoffMs: [10],
        handler: (m) => {
          if (m.data.n === 1 && failing) {
            attemptsSeen.push(m.attempt);
            throw new Error("always fails");
          }
          handled.push(m.data.n);
        },
      });
      await bus.publish(addr("d"), { n: 1 }, { msgId: "dead-1" });
      await bus.publish(addr("d"), { n: 2 }, { msgId: "dead-2" });
      await waitFor(() => handled.length === 1);
      expect(handled).toEqual([2]); // the session moves on once its head is dead-lettered
      expect(attemptsSeen).toEqual([1, 2, 3]);
      const dead = await bus.deadLetters.list();
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ subject: addr("d"), stream: "in", msgId: "dead-1", data: { n: 1 }, consumer: "dlq", attempts: 3 });
      expect(dead[0]!.error).toContain("always fails");
      await waitFor(() => sub.stats().handled === 1, 5_000, "ack of the second message");
      expect(sub.stats()).toMatchObject({ handled: 1, failures: 3, deadLettered: 1 });

      failing = false;
      const replayed = await bus.deadLetters.replay([dead[0]!.id]);
      expect(replayed).toHaveLength(1);
      expect(replayed[0]!.msgId).toContain("dead-1");
      await waitFor(() => handled.length === 2);
      expect(handled).toEqual([2, 1]);
      expect(await bus.deadLetters.count()).toBe(0);
      await expect(bus.deadLetters.replay(["nope"])).rejects.toMatchObject({ code: "not_found" });

      // purge: two more dead letters, purge one by id, then all
      failing = true;
      await bus.publish(addr("d"), { n: 1 }, { msgId: "dead-3" });
      await bus.publish(addr("e"), { n: 1 }, { msgId: "dead-4" });
      await waitFor(() => sub.stats().deadLettered === 3, 20_000, "two more dead letters");
      const two = await bus.deadLetters.list();
      expect(two.map((d) => d.msgId).sort()).toEqual(["dead-3", "dead-4"]);
      expect(await bus.deadLetters.purge([two[0]!.id])).toBe(1);
      expect(await bus.deadLetters.count()).toBe(1);
      expect(await bus.deadLetters.purge()).toBe(1);
      expect(await bus.deadLetters.list()).toEqual([]);
    });

    it("term() dead-letters at once; nak(delay) retries", async () => {
      const { bus } = await make();
      const seen: string[] = [];
      await bus.consume<{ k: string }>({
        stream: "out",
        durable: "explicit",
        handler: (m) => {
          seen.push(`${m.data.k}${m.attempt}`);
          if (m.data.k === "t") m.term("poison");
          else if (m.data.k === "n" && m.attempt === 1) m.nak(10);
        },
      });
      const s = outboundSubject({ channel: "c", account: "a", peer: "p" });
      await bus.publish(s, { k: "t" }, { msgId: "t" });
      await bus.publish(s, { k: "n" }, { msgId: "n" });
      await waitFor(() => seen.length === 3);
      expect(seen).toEqual(["t1", "n1", "n2"]);
      const dead = await bus.deadLetters.list();
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({ msgId: "t", attempts: 1, error: "poison" });
    });

    it("backpressure: a slow consumer sees every message, never more than its window at once", async () => {
      const { bus } = await make();
      const total = 300;
      let inFlight = 0;
      let maxHeld = 0;
      const got = new Set<number>();
      const sub = await bus.consume<{ n: number }>({
        stream: "in",
        durable: "slow",
        maxAckPending: 8,
        handler: async (m) => {
          inFlight++;
          maxHeld = Math.max(maxHeld, sub.stats().held);
          await sleep(2);
          got.add(m.data.n);
          inFlight--;
        },
      });
      await Promise.all(Array.from({ length: total }, (_, n) => bus.publish(addr(`s${n % 30}`), { n }, { msgId: `bp-${n}` })));
      await waitFor(() => got.size === total, 30_000, "slow consumer done");
      await waitFor(() => sub.stats().handled === total, 5_000, "last acks");
      expect(maxHeld).toBeLessThanOrEqual(8);
      expect(inFlight).toBe(0);
    });

    it("stop() hands unhandled messages back; the same durable resumes them in order", async () => {
      const { bus } = await make();
      const got: number[] = [];
      let gate: () => void = () => {};
      const blocked = new Promise<void>((r) => (gate = r));
      let started = false;
      const first = await bus.consume<{ n: number }>({
        stream: "in",
        durable: "resume",
        handler: async (m) => {
          if (m.data.n === 0) {
            started = true;
            await blocked;
          }
          got.push(m.data.n);
        },
      });
      for (let n = 0; n < 10; n++) await bus.publish(addr("z"), { n }, { msgId: `z-${n}` });
      await waitFor(() => started, 20_000, "first handler call");
      await sleep(100);
      const stopping = first.stop();
      gate();
      await stopping;
      expect(got).toEqual([0]);
      await bus.consume<{ n: number }>({ stream: "in", durable: "resume", handler: (m) => void got.push(m.data.n) });
      await waitFor(() => got.length === 10);
      expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    });

    it("a channel filter only sees its channel; other durables see everything", async () => {
      const { bus } = await make();
      const tele: string[] = [];
      const all: string[] = [];
      await bus.consume({ stream: "out", durable: "tele", channel: "telegram", handler: (m) => void tele.push(m.msgId) });
      await bus.consume({ stream: "out", durable: "all", handler: (m) => void all.push(m.msgId) });
      await bus.publish(outboundSubject({ channel: "telegram", account: "a", peer: "p" }), 1, { msgId: "f1" });
      await bus.publish(outboundSubject({ channel: "slack", account: "a", peer: "p" }), 2, { msgId: "f2" });
      await waitFor(() => all.length === 2);
      await sleep(100);
      expect(tele).toEqual(["f1"]);
    });

    it("rejects bad arguments with BusError", async () => {
      const { bus } = await make();
      await expect(bus.publish("exoclaw.in.a.b", 1, { msgId: "x" })).rejects.toBeInstanceOf(BusError);
      await expect(bus.publish("nats.in.a.b.c", 1, { msgId: "x" })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(bus.publish(addr("p"), 1, { msgId: "" })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(bus.publish(addr("p"), 1, { msgId: "x", headers: { "Nats-Expected-Stream": "y" } })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(bus.publish(addr("p"), new Uint8Array(2 * 1024 * 1024), { msgId: "big" })).rejects.toMatchObject({ code: "too_large" });
      await expect(bus.consume({ stream: "in", durable: "bad name", handler: () => {} })).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(bus.consume({ stream: "events", durable: "ok", channel: "x", handler: () => {} })).rejects.toMatchObject({ code: "invalid_argument" });
    });
  });
}
