/**
 * The JetStream session log passes the SessionLog suite every back end passes, against a real
 * nats-server; plus what only a shared store shows: two processes' worth of logs on one server.
 */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJetStreamSessionLog } from "../../host/src/store/jetstream-store.js";
import { formatSessionKey, SeqConflictError } from "../../host/src/store/index.js";
import { sessionLogSuite } from "../store/session-log.suite.js";
import { NatsServer } from "./nats-server.js";

let server: NatsServer;
let nc: NatsConnection;
let n = 0;

beforeAll(async () => {
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});
afterAll(async () => {
  await nc?.close();
  await server?.destroy();
});

// each log of the suite gets its own namespace (its own stream and key bucket) on one server
sessionLogSuite("jetstream", (options) => createJetStreamSessionLog({ connection: nc, namespace: `t${++n}`, ...options }));

describe("JetStream session log across processes", () => {
  it("two logs on one namespace see each other's appends; stale writers are refused", async () => {
    const a = await createJetStreamSessionLog({ servers: server.url, namespace: "shared" });
    const b = await createJetStreamSessionLog({ servers: server.url, namespace: "shared" });
    try {
      const k = formatSessionKey({ agent: "main", channel: "telegram", account: "bot", peer: "42" });
      expect(await a.append(k, [{ kind: "assistant_text", data: { text: "from a" } }])).toEqual([1]);
      expect(await b.append(k, [{ kind: "assistant_text", data: { text: "from b" } }])).toEqual([2]);
      // a's cache is behind: it recomputes from the server instead of overwriting seq 2
      expect(await a.append(k, [{ kind: "assistant_text", data: { text: "a again" } }])).toEqual([3]);
      expect((await b.read(k)).map((e) => (e.data as { text: string }).text)).toEqual(["from a", "from b", "a again"]);
      await expect(b.append(k, [{ kind: "assistant_text", data: { text: "stale" } }], { expectedSeq: 2 })).rejects.toBeInstanceOf(SeqConflictError);
      // dedupe keys are shared
      await a.append(k, [{ kind: "message_received", data: { content: "hi", channel: "telegram", account: "bot", peer: "42", idempotencyKey: "k-1" } }]);
      expect(await b.findByIdempotencyKey("k-1")).toMatchObject({ sessionKey: k, seq: 4 });
      await expect(
        b.append(k, [{ kind: "message_received", data: { content: "hi", channel: "telegram", account: "bot", peer: "42", idempotencyKey: "k-1" } }]),
      ).rejects.toMatchObject({ code: "duplicate" });
      expect(await b.countSessions()).toBe(1);
      // concurrent appends from both: contiguous seqs, nothing lost
      await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).append(k, [{ kind: "assistant_text", data: { text: `c${i}` } }])));
      const all = await a.read(k);
      expect(all.map((e) => e.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
      expect(new Set(all.slice(4).map((e) => (e.data as { text: string }).text)).size).toBe(20);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
