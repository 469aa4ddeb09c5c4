/**
 * What a NATS outage does to the pieces under the gateway, on a real nats-server (issue 21,
 * findings 5 and 6):
 * - the JetStream session log rides out an outage: an append made while the server is down
 *   resolves once it is back, stored once (a turn whose model already answered stores that answer
 *   instead of failing and being run again, model call included);
 * - `unspooledStreams` (`[bus] outage = "refuse"`): a channel message is refused with
 *   `unavailable` while NATS is down instead of spooled; other streams still spool.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createJetStreamSessionLog } from "../../host/src/store/jetstream-store.js";
import { createNatsBus } from "../../host/src/bus/nats/index.js";
import { inboundSubject, outboundSubject } from "../../host/src/bus/subjects.js";
import { formatSessionKey } from "../../host/src/store/index.js";
import { NatsServer, TEST_TIMINGS } from "./nats-server.js";

const cleanup: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

describe("NATS outage: session log and intake policy", () => {
  it("a session-log append made while NATS is down is stored once when it is back", async () => {
    const server = await NatsServer.start();
    cleanup.push(() => server.destroy());
    const log = await createJetStreamSessionLog({ servers: server.url, namespace: "outage", timeoutMs: 1_000 });
    cleanup.push(() => log.close());
    const k = formatSessionKey({ agent: "main", channel: "webhook", account: "default", peer: "p" });
    expect(await log.append(k, [{ kind: "assistant_text", data: { text: "before" } }])).toEqual([1]);
    await server.stop("SIGKILL");
    const pending = log.append(k, [{ kind: "assistant_text", data: { text: "during" } }]);
    let settled = false;
    void pending.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((r) => setTimeout(r, 2_500)); // longer than one publish timeout
    expect(settled).toBe(false);
    await server.restart();
    expect(await pending).toEqual([2]);
    expect((await log.read(k)).map((e) => (e.data as { text: string }).text)).toEqual(["before", "during"]);
  }, 60_000);

  it("with outageRetryMs 0 the append fails at once (unavailable), as before", async () => {
    const server = await NatsServer.start();
    cleanup.push(() => server.destroy());
    const log = await createJetStreamSessionLog({ servers: server.url, namespace: "outage0", timeoutMs: 1_000, outageRetryMs: 0 });
    cleanup.push(() => log.close());
    const k = formatSessionKey({ agent: "main", channel: "webhook", account: "default", peer: "p" });
    await log.append(k, [{ kind: "assistant_text", data: { text: "before" } }]);
    await server.stop("SIGKILL");
    await expect(log.append(k, [{ kind: "assistant_text", data: { text: "during" } }])).rejects.toMatchObject({ code: "unavailable" });
  }, 30_000);

  it('unspooledStreams ["in"]: inbound publishes are refused while NATS is down, replies still spool', async () => {
    const server = await NatsServer.start();
    cleanup.push(() => server.destroy());
    const stateDir = await mkdtemp(join(tmpdir(), "exoclaw-bus-"));
    cleanup.push(() => rm(stateDir, { recursive: true, force: true }));
    const bus = await createNatsBus({ servers: server.url, stateDir, ...TEST_TIMINGS, publishTimeoutMs: 1_000, unspooledStreams: ["in"] });
    cleanup.push(() => bus.close());
    const address = { channel: "webhook", account: "default", peer: "p" };
    expect(await bus.publish(inboundSubject(address), { n: 0 }, { msgId: "in-0" })).toMatchObject({ storedIn: "stream" });
    await server.stop("SIGKILL");
    await expect(bus.publish(inboundSubject(address), { n: 1 }, { msgId: "in-1" })).rejects.toMatchObject({ code: "unavailable" });
    expect(await bus.publish(outboundSubject(address), { n: 1 }, { msgId: "out-1" })).toMatchObject({ storedIn: "spool" });
    // a per-publish `spool: true` overrides the stream's default
    expect(await bus.publish(inboundSubject(address), { n: 2 }, { msgId: "in-2", spool: true })).toMatchObject({ storedIn: "spool" });
    expect(bus.status().spooled).toBe(2);
  }, 30_000);
});
