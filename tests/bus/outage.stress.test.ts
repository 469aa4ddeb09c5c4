/**
 * The NATS outage test under CPU pressure: busy-loop worker threads load every core while
 * several stop/restart cycles of nats-server run with publishes in flight. Per session, the
 * stream must hold the messages in publish order (publish side: spool drain vs live publishes)
 * and the handler must see them in that order (consumer side), each exactly once.
 *
 * Bounded: 3 cycles of 100 + 150 (server down) + 150 + (up to 1,000, until 60 went direct) publishes; 2 busy
 * threads per core, stopped in `afterEach`.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { afterEach, describe, expect, it } from "vitest";
import { createNatsBus } from "../../host/src/bus/nats/index.js";
import { inboundSubject } from "../../host/src/bus/subjects.js";
import type { PublishAck } from "../../host/src/bus/types.js";
import { sleep, waitFor } from "./bus.suite.js";
import { NatsServer, TEST_TIMINGS } from "./nats-server.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

/** Starts `n` threads that spin until terminated (CPU pressure, not a timing assertion). */
function busyThreads(n: number): Worker[] {
  const src = "const { parentPort } = require('node:worker_threads'); let x = 0; for (;;) { x = (x * 31 + 7) >>> 0; }";
  return Array.from({ length: n }, () => new Worker(src, { eval: true }));
}

describe("bus: NATS outages under CPU pressure", () => {
  it("3 stop/restart cycles with publishes in flight and every core busy: per session in order in the stream and in the handler, exactly once", async () => {
    const workers = busyThreads(Math.max(2, availableParallelism()) * 2);
    cleanup.push(async () => void (await Promise.all(workers.map((w) => w.terminate()))));
    const server = await NatsServer.start();
    cleanup.push(() => server.destroy());
    const dir = await mkdtemp(join(tmpdir(), "exoclaw-bus-"));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const bus = await createNatsBus({ servers: server.url, stateDir: dir, ...TEST_TIMINGS, publishTimeoutMs: 500, reconnectWaitMs: 100 });
    cleanup.push(() => bus.close());

    const counts = new Map<string, number>();
    /** session -> [n, stream seq] in handling order */
    const handled = new Map<string, Array<[number, number, number]>>();
    await bus.consume<{ s: string; n: number }>({
      stream: "in",
      durable: "gateway",
      handler: (m) => {
        counts.set(m.msgId, (counts.get(m.msgId) ?? 0) + 1);
        const list = handled.get(m.data.s) ?? [];
        list.push([m.data.n, m.seq, m.deliveryCount]);
        handled.set(m.data.s, list);
      },
    });

    const cycles = 3;
    const sessions = 40;
    const next = new Map<string, number>(); // session -> next n
    const acks: Array<Promise<PublishAck>> = [];
    let i = 0;
    const publish = async (): Promise<PublishAck> => {
      const s = `peer${i % sessions}`;
      const n = next.get(s) ?? 0;
      next.set(s, n + 1);
      // not awaited one by one: publishes overlap (the bus keeps them in order per subject)
      const ack = bus.publish(inboundSubject({ channel: "telegram", account: "bot", peer: s }), { s, n }, { msgId: `st-${i}` });
      acks.push(ack);
      if (++i % 8 === 0) await Promise.all(acks.slice(-8));
      return ack;
    };
    const directAfterRestart: number[] = [];
    for (let c = 0; c < cycles; c++) {
      for (let j = 0; j < 100; j++) await publish();
      await server.stop();
      for (let j = 0; j < 150; j++) {
        await publish();
        // one outage outlasts the lease TTL and the ack wait: partitions change hands on reconnect
        if (c === 1 && j === 75) await sleep(TEST_TIMINGS.leaseTtlMs! + 500);
      }
      await server.restart();
      // a burst while the consumers reconnect and the spool starts draining
      for (let j = 0; j < 150; j++) await publish();
      // publish on while the spool drains, slower than the drain, until publishes have gone
      // straight to the stream for a while: the switch-over happens with publishes in flight
      let direct = 0;
      for (let j = 0; j < 1_000 && direct < 60; j++) {
        if ((await publish()).storedIn === "stream") direct++;
        await sleep(10);
      }
      directAfterRestart.push(direct);
    }
    const total = i;
    const results = await Promise.all(acks);
    const spooled = results.filter((a) => a.storedIn === "spool").length;
    await waitFor(() => counts.size === total, 90_000, `all ${total} handled`);
    await waitFor(() => bus.status().spooled === 0, 20_000, "spool empty");
    await sleep(1_500); // any late redelivery would show up here

    const streamOrder: string[] = [];
    const handlerOrder: string[] = [];
    for (let s = 0; s < sessions; s++) {
      const expected = Array.from({ length: next.get(`peer${s}`) ?? 0 }, (_, n) => n);
      const got = handled.get(`peer${s}`) ?? [];
      // the order the stream stored them in (publish side) ...
      const bySeq = [...got].sort((a, b) => a[1] - b[1]).map(([n]) => n);
      if (JSON.stringify(bySeq) !== JSON.stringify(expected)) streamOrder.push(`peer${s}: ${bySeq.join(",")}`);
      // ... and the order the handler saw them in (consumer side); n@seq, xK = K-th delivery
      const seen = got.map(([n]) => n);
      if (JSON.stringify(seen) !== JSON.stringify(expected))
        handlerOrder.push(`peer${s}: ${got.map(([n, q, dc]) => `${n}@${q}${dc > 1 ? `x${dc}` : ""}`).join(",")}`);
    }
    console.log(
      `outage stress: ${spooled} of ${total} spooled over ${cycles} outages, ${directAfterRestart.join("/")} direct after each restart; ${streamOrder.length} sessions out of order in the stream, ${handlerOrder.length} in the handler`,
    );
    // each cycle reached the switch-over from spool back to direct publishing
    expect(directAfterRestart.every((d) => d > 0)).toBe(true);
    expect(streamOrder).toEqual([]);
    expect(handlerOrder).toEqual([]);
    expect([...counts.values()].every((c) => c === 1)).toBe(true);
    expect(spooled).toBeGreaterThanOrEqual(cycles * 150);
    expect(counts.size).toBe(total);
  }, 180_000);
});
