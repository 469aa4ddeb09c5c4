/**
 * NATS outages: the bus keeps accepting publishes (disk spool) and, when the server is back,
 * forwards them in order; every message is handled exactly once, in order per session.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createNatsBus, type NatsBus } from "../../host/src/bus/nats/index.js";
import { inboundSubject } from "../../host/src/bus/subjects.js";
import type { PublishAck } from "../../host/src/bus/types.js";
import { waitFor } from "./bus.suite.js";
import { freePort, NatsServer, TEST_TIMINGS } from "./nats-server.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

async function stateDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "exoclaw-bus-"));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Records handling: per msgId count and per session order. */
function recorder() {
  const counts = new Map<string, number>();
  const order = new Map<string, number[]>();
  return {
    counts,
    order,
    handle(msgId: string, session: string, n: number) {
      counts.set(msgId, (counts.get(msgId) ?? 0) + 1);
      const list = order.get(session) ?? [];
      list.push(n);
      order.set(session, list);
    },
  };
}

describe("bus: NATS outages", () => {
  it("stop nats-server while 1,000 messages are published, restart it: all handled exactly once, in order per session", async () => {
    const server = await NatsServer.start();
    cleanup.push(() => server.destroy());
    const bus: NatsBus = await createNatsBus({
      servers: server.url,
      stateDir: await stateDir(),
      ...TEST_TIMINGS,
      publishTimeoutMs: 1_000,
      reconnectWaitMs: 250,
    });
    cleanup.push(() => bus.close());
    const rec = recorder();
    await bus.consume<{ s: string; n: number }>({ stream: "in", durable: "gateway", handler: (m) => rec.handle(m.msgId, m.data.s, m.data.n) });

    const total = 1_000;
    const sessions = 50;
    const acks: PublishAck[] = [];
    const started = Date.now();
    let stoppedAt = 0;
    let restartedAt = 0;
    for (let i = 0; i < total; i++) {
      if (i === 300) {
        await server.stop();
        stoppedAt = Date.now();
      }
      if (i === 500) {
        // stay down past the lease TTL and the ack wait: leases expire, held messages are abandoned
        await new Promise((r) => setTimeout(r, 3_500));
      }
      if (i === 700) {
        await server.restart();
        restartedAt = Date.now();
      }
      const s = `peer${i % sessions}`;
      acks.push(await bus.publish(inboundSubject({ channel: "telegram", account: "bot", peer: s }), { s, n: Math.floor(i / sessions) }, { msgId: `out-${i}` }));
    }
    const spooled = acks.filter((a) => a.storedIn === "spool").length;
    expect(spooled).toBeGreaterThanOrEqual(300); // at least everything published while it was down
    await waitFor(() => rec.counts.size === total, 45_000, "all 1,000 handled");
    await waitFor(() => bus.status().spooled === 0, 10_000, "spool empty");
    await new Promise((r) => setTimeout(r, 1_500)); // any late redelivery would show up here
    expect([...rec.counts.values()].every((c) => c === 1)).toBe(true);
    expect(rec.counts.size).toBe(total);
    for (let s = 0; s < sessions; s++) expect(rec.order.get(`peer${s}`)).toEqual(Array.from({ length: total / sessions }, (_, i) => i));
    console.log(
      `outage: ${spooled} of ${total} spooled; server down ${restartedAt - stoppedAt} ms; all handled ${Date.now() - started} ms after the first publish`,
    );
  }, 80_000);

  it("starts and accepts publishes with no server at all; drains when one appears", async () => {
    const port = await freePort();
    const bus = await createNatsBus({
      servers: `nats://127.0.0.1:${port}`,
      stateDir: await stateDir(),
      ...TEST_TIMINGS,
      connectWaitMs: 300,
      reconnectWaitMs: 200,
    });
    cleanup.push(() => bus.close());
    expect(bus.status()).toMatchObject({ kind: "nats", connected: false });
    const rec = recorder();
    await bus.consume<{ n: number }>({ stream: "out", durable: "worker", handler: (m) => rec.handle(m.msgId, "s", m.data.n) });
    const subject = inboundSubject({ channel: "c", account: "a", peer: "p" }).replace(".in.", ".out.");
    for (let n = 0; n < 20; n++) expect((await bus.publish(subject, { n }, { msgId: `early-${n}` })).storedIn).toBe("spool");
    expect(bus.status().spooled).toBe(20);
    // the server appears on the configured port
    const server = await NatsServer.startOn(port);
    cleanup.push(() => server.destroy());
    await waitFor(() => rec.counts.size === 20, 20_000, "spooled messages handled");
    expect(rec.order.get("s")).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(bus.status()).toMatchObject({ connected: true, spooled: 0 });
  }, 40_000);

  it("keeps the spool across a restart of the publishing process", async () => {
    const port = await freePort();
    const dir = await stateDir();
    const a = await createNatsBus({ servers: `nats://127.0.0.1:${port}`, stateDir: dir, ...TEST_TIMINGS, connectWaitMs: 0 });
    const subject = inboundSubject({ channel: "c", account: "a", peer: "kept" });
    for (let n = 0; n < 5; n++) await a.publish(subject, { n }, { msgId: `kept-${n}` });
    await a.close();
    const server = await NatsServer.startOn(port);
    cleanup.push(() => server.destroy());
    const b = await createNatsBus({ servers: server.url, stateDir: dir, ...TEST_TIMINGS });
    cleanup.push(() => b.close());
    const rec = recorder();
    await b.consume<{ n: number }>({ stream: "in", durable: "g", handler: (m) => rec.handle(m.msgId, "s", m.data.n) });
    await waitFor(() => rec.counts.size === 5, 20_000, "spool from the previous process handled");
    expect(rec.order.get("s")).toEqual([0, 1, 2, 3, 4]);
  }, 40_000);
});
