// One real gateway process with `[bus] url` on a real nats-server (JetStream, temporary store,
// free port), the first-party `webhook` channel plugin (real Wasm), the provider emulator and a
// fake platform: webhook -> JetStream `in` -> the gateway's consumer -> turn -> `out` -> the
// plugin's `send`. Also the outage path (spool) and `exoclaw dlq list|replay|purge`.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Unpackr } from "msgpackr";
import { eventsSubject, wireSubject } from "../../host/src/bus/subjects.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FileConfig } from "../../host/src/config/schema.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  type ChannelGateway,
  type FakePlatform,
  webhookGrant,
} from "../support/channel-gateway.js";
import { CLI, RpcClient } from "../support/gateway.js";
import { freePort, NatsServer } from "./nats-server.js";

const SECRET = "bus-gateway-webhook-secret-0123";
const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the CLI; resolves with its exit code and output. */
function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (b: Buffer) => (stdout += b.toString()));
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    p.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("gateway with [bus]: webhook channel over NATS JetStream", () => {
  let nats: NatsServer;
  let platform: FakePlatform;
  let gw: ChannelGateway;

  beforeAll(async () => {
    nats = await NatsServer.start();
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        // `[bus]` as an operator writes it; the per-process embedded store (the default).
        bus: { url: nats.url, partitions: 4, max_deliver: 3 },
        // One model call per delivery attempt (the dead-letter test counts them).
        providers: { anthropic: { max_retries: 0, breaker_failures: 1000 } },
        channels: { webhook: { allow: ["*"] } },
        plugins: {
          // Generous call budget: the default 1 s includes the HTTP request to the fake platform in
          // this busy test process; a timed-out send that did reach it is sent again (exactly-once checks).
          limits: { webhook: { timeout_ms: 10_000 } },
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`),
          },
        },
      } as FileConfig,
      env: { TEST_WEBHOOK_SECRET: SECRET, EXOCLAW_LOG_LEVEL: "debug" },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
    await nats?.destroy();
  });

  const post = (body: object) => {
    const text = JSON.stringify(body);
    return gw.postWebhook("webhook", undefined, text, { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` });
  };
  const repliesTo = (id: string) => platform.requests.filter((r) => r.json?.replyTo === id);
  const modelSaw = (text: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(text));
  const status = async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    try {
      return (await client.call("status")).response.msg.result;
    } finally {
      client.close();
    }
  };

  it("logs the bus in 'gateway ready' and shows it in status", async () => {
    const ready = await gw.waitForLog((l) => l.msg === "gateway ready");
    expect(ready.bus).toEqual({ kind: "nats", servers: [nats.url], connected: true });
    const s = await status();
    expect(s.bus).toMatchObject({ kind: "nats", connected: true, spooled: 0 });
    expect(Object.keys(s.bus.partitions).sort()).toEqual(["in/gateway", "out/out-webhook"]);
    // Alone on the bus, it soon holds the lease of every partition of both consumers.
    let last: any;
    const deadline = Date.now() + 15_000;
    for (;;) {
      last = (await status()).bus.partitions;
      if (last["in/gateway"].length === 4 && last["out/out-webhook"].length === 4) break;
      if (Date.now() > deadline) break;
      await settle(100);
    }
    expect(last["in/gateway"]).toEqual([0, 1, 2, 3]);
    expect(last["out/out-webhook"]).toEqual([0, 1, 2, 3]);
  });

  it("answers a message once, through the in and out streams", async () => {
    const answer = await post({ peer: "alice", content: "hello over the bus", messageId: "m1" });
    expect(answer.status).toBe(200);
    const published = await gw.waitForLog((l) => l.msg === "channel message published to the bus" && l.msgId === "channel:webhook:default:m1");
    expect(published).toMatchObject({ storedIn: "stream", duplicate: false });
    const reply = await platform.waitFor((r) => r.json?.replyTo === "m1", 20_000);
    expect(reply.url).toBe("/inbox");
    expect(reply.json).toMatchObject({ account: "default", peer: "alice", content: "You said: hello over the bus" });
    // The reply went through the out stream: its consumer logged the send with the reply's id.
    await gw.waitForLog((l) => l.msg === "channel message sent" && l.msgId === "channel:webhook:default:m1:reply");
    await settle(500);
    expect(repliesTo("m1")).toHaveLength(1);
  });

  it("publishes each settled turn to exoclaw.events.<agent> (metadata only, no content)", async () => {
    const answer = await post({ peer: "erin", content: "observe me", messageId: "ev1" });
    expect(answer.status).toBe(200);
    await platform.waitFor((r) => r.json?.replyTo === "ev1", 20_000);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      let event: Record<string, unknown> | undefined;
      const deadline = Date.now() + 10_000;
      while (event === undefined || event.sessionKey !== "agent:main:webhook:default:erin") {
        if (Date.now() > deadline) throw new Error(`no turn event for erin; last: ${JSON.stringify(event)}`);
        const msg = await jsm.streams.getMessage("EXOCLAW_EVENTS", { last_by_subj: wireSubject(eventsSubject("main"), 4) }).catch(() => null);
        event = msg ? (new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(msg.data) as Record<string, unknown>) : undefined;
        if (event?.sessionKey !== "agent:main:webhook:default:erin") await settle(100);
      }
      expect(event).toMatchObject({ type: "turn_settled", agentId: "main", ok: true, stopReason: "end_turn", messages: 1, iterations: 1 });
      expect(typeof event.runId).toBe("string");
      expect(JSON.stringify(event)).not.toContain("observe me");
    } finally {
      await nc.close();
    }
  });

  it("answers a redelivered message once (JetStream dedupe on the message id, and the turn's idempotency key)", async () => {
    const body = { peer: "bob", content: "only once BUS_ONCE", messageId: "dup-1" };
    const [a, b] = await Promise.all([post(body), post(body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await platform.waitFor((r) => r.json?.replyTo === "dup-1", 20_000);
    expect((await post(body)).status).toBe(200);
    const dupes = () => gw.gateway.logs.filter((l) => l.msg === "channel message published to the bus" && l.msgId === "channel:webhook:default:dup-1");
    await waitUntil(() => dupes().length === 3, 10_000, "three publish log lines");
    // Exactly one publish stored it; the others were JetStream duplicates.
    expect(dupes().filter((l) => l.duplicate === false)).toHaveLength(1);
    await settle(1500);
    expect(repliesTo("dup-1")).toHaveLength(1);
    expect(modelSaw("BUS_ONCE")).toHaveLength(1);
  });

  it("keeps order per peer: a burst to one peer is answered in order", async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `ord-${i}`);
    // One request at a time: the platform delivers a chat's messages in order.
    for (const [i, id] of ids.entries()) expect((await post({ peer: "carol", content: `order ${i}`, messageId: id })).status).toBe(200);
    await waitUntil(() => ids.every((id) => repliesTo(id).length > 0), 30_000, "8 replies");
    const carol = platform.requests.filter((r) => r.json?.peer === "carol").map((r) => r.json.content);
    expect(carol).toEqual(ids.map((_, i) => `You said: order ${i}`));
  });

  it("with NATS stopped: the webhook is still answered 200 (spooled) and the messages are answered once NATS is back", async () => {
    await nats.stop();
    try {
      const ids = ["out-1", "out-2", "out-3"];
      for (const [i, id] of ids.entries()) {
        const t0 = Date.now();
        const answer = await post({ peer: i === 1 ? "erin" : "dave", content: `while down ${id}`, messageId: id });
        expect(answer.status).toBe(200);
        // Spooled to disk, not waiting for NATS (the publish timeout is 5 s; generous bound).
        expect(Date.now() - t0).toBeLessThan(8_000);
      }
      for (const id of ids) {
        const line = await gw.waitForLog((l) => l.msg === "channel message published to the bus" && l.msgId === `channel:webhook:default:${id}`);
        expect(line.storedIn).toBe("spool");
      }
      const s = await status();
      expect(s.bus.connected).toBe(false);
      expect(s.bus.spooled).toBeGreaterThanOrEqual(3);
      await settle(1000);
      expect(ids.flatMap(repliesTo)).toHaveLength(0);
    } finally {
      await nats.restart();
    }
    await waitUntil(() => ["out-1", "out-2", "out-3"].every((id) => repliesTo(id).length > 0), 45_000, "replies after NATS returned");
    await settle(1500);
    for (const id of ["out-1", "out-2", "out-3"]) expect(repliesTo(id)).toHaveLength(1);
    const dave = platform.requests.filter((r) => r.json?.peer === "dave").map((r) => r.json.content);
    expect(dave).toEqual(["You said: while down out-1", "You said: while down out-3"]);
    expect((await status()).bus).toMatchObject({ connected: true, spooled: 0 });
  }, 90_000);

  describe("exoclaw dlq", () => {
    const env = () => ({ EXOCLAW_STATE_DIR: gw.stateDir });

    it("a message whose turn always fails is tried max_deliver times, the peer told once, then list / replay / purge", async () => {
      expect((await post({ peer: "frank", content: "FAIL_500 always", messageId: "bad-1" })).status).toBe(200);
      // The last attempt publishes the failure notice.
      const notice = await platform.waitFor((r) => r.json?.replyTo === "bad-1", 40_000);
      expect(notice.json.content).toMatch(/^Sorry, your message could not be answered: /);
      await gw.waitForLog((l) => l.msg === "channel message moved to the dead-letter store" && l.msgId === "channel:webhook:default:bad-1", 20_000);
      expect(modelSaw("FAIL_500 always")).toHaveLength(3);

      const listed = await cli(["dlq", "list", "--json", "-c", gw.configFile], env());
      expect(listed.stderr).toBe("");
      expect(listed.code).toBe(0);
      const entries = JSON.parse(listed.stdout) as Array<{
        id: string;
        msgId: string;
        consumer: string;
        attempts: number;
        subject: string;
        data: any;
        error: string;
      }>;
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({
        msgId: "channel:webhook:default:bad-1",
        consumer: "gateway",
        attempts: 3,
        subject: "exoclaw.in.webhook.default.frank",
      });
      expect(entries[0]!.data).toMatchObject({
        v: 1,
        channel: "webhook",
        account: "default",
        peer: "frank",
        content: "FAIL_500 always",
        platformMessageId: "bad-1",
        attachments: 0,
      });
      expect(entries[0]!.error).toMatch(/500|internal server error/i);

      const table = await cli(["dlq", "list", "-c", gw.configFile], env());
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/^ID\s+FAILED AT\s+CONSUMER/);
      expect(table.stdout).toContain("channel:webhook:default:bad-1");
      expect((await cli(["dlq", "list", "--json", "--consumer", "out-webhook", "-c", gw.configFile], env())).stdout.trim()).toBe("[]");

      // A bare replay is refused (it would replay everything).
      const bare = await cli(["dlq", "replay", "-c", gw.configFile], env());
      expect(bare.code).toBe(1);
      expect(bare.stderr).toMatch(/name the dead letters to replay, or pass --all/);

      // Replay: a fresh turn (the model is asked again), which fails again here and comes back
      // as a new dead letter carrying the replay's id.
      const replayed = await cli(["dlq", "replay", entries[0]!.id, "-c", gw.configFile], env());
      expect(replayed.stderr).toBe("");
      expect(replayed.code).toBe(0);
      expect(replayed.stdout).toContain(`replayed ${entries[0]!.id} as channel:webhook:default:bad-1~r${entries[0]!.id}`);
      await waitUntil(() => modelSaw("FAIL_500 always").length >= 6, 40_000, "three more model calls after the replay");
      await gw.waitForLog(
        (l) => l.msg === "channel message moved to the dead-letter store" && l.msgId === `channel:webhook:default:bad-1~r${entries[0]!.id}`,
        20_000,
      );
      const again = JSON.parse((await cli(["dlq", "list", "--json", "-c", gw.configFile], env())).stdout) as typeof entries;
      expect(again.map((e) => e.msgId)).toEqual([`channel:webhook:default:bad-1~r${entries[0]!.id}`]);

      const purged = await cli(["dlq", "purge", "--all", "-c", gw.configFile], env());
      expect(purged.code).toBe(0);
      expect(purged.stdout.trim()).toBe("1 dead letter(s) purged");
      expect((await cli(["dlq", "list", "-c", gw.configFile], env())).stdout.trim()).toBe("no dead letters");
    }, 120_000);

    it("deadletters.list / replay / purge over RPC (the Control UI's Channels page), each act logged with the client's address", async () => {
      expect((await post({ peer: "gina", content: "FAIL_500 over rpc", messageId: "bad-rpc" })).status).toBe(200);
      await gw.waitForLog((l) => l.msg === "channel message moved to the dead-letter store" && l.msgId === "channel:webhook:default:bad-rpc", 60_000);
      const client = await RpcClient.connect(gw.gateway.url);
      try {
        const call = async (method: string, params?: unknown) => (await client.call(method, params, "msgpack")).response.msg;
        const listed = (await call("deadletters.list")).result;
        expect(listed.enabled).toBe(true);
        const entry = listed.entries.find((e: { msgId: string }) => e.msgId === "channel:webhook:default:bad-rpc");
        expect(entry).toMatchObject({
          consumer: "gateway",
          attempts: 3,
          subject: "exoclaw.in.webhook.default.gina",
          error: expect.stringMatching(/500|internal server error/i),
        });
        expect(entry.preview).toContain("FAIL_500 over rpc");
        expect(entry.data).toBeUndefined(); // a bounded preview, not the payload
        const replayed = (await call("deadletters.replay", { ids: [entry.id] })).result;
        expect(replayed).toEqual({ replayed: [{ id: entry.id, msgId: `channel:webhook:default:bad-rpc~r${entry.id}` }] });
        expect(await gw.waitForLog((l) => l.msg === "deadletters.replay")).toMatchObject({ client: "default", remote: expect.stringMatching(/127\.0\.0\.1/) });
        // The replay is a fresh attempt: it fails again here and comes back as a new dead letter.
        await gw.waitForLog(
          (l) => l.msg === "channel message moved to the dead-letter store" && l.msgId === `channel:webhook:default:bad-rpc~r${entry.id}`,
          60_000,
        );
        const again = (await call("deadletters.list")).result.entries as { msgId: string }[];
        expect(again.map((e) => e.msgId)).toContain(`channel:webhook:default:bad-rpc~r${entry.id}`);
        expect((await call("deadletters.replay", { ids: ["999999"] })).error).toMatchObject({ code: -32602 });
        expect((await call("deadletters.purge", { all: true })).result).toEqual({ purged: again.length });
        expect(await gw.waitForLog((l) => l.msg === "deadletters.purge")).toMatchObject({
          all: true,
          client: "default",
          remote: expect.stringMatching(/127\.0\.0\.1/),
        });
        expect((await call("deadletters.list")).result).toEqual({ enabled: true, entries: [] });
      } finally {
        client.close();
      }
    }, 180_000);

    it("exits 2 with a clear message without [bus], and when NATS is unreachable (naming the URL)", async () => {
      const dir = mkdtempSync(join(tmpdir(), "exoclaw-dlq-cli-"));
      try {
        const none = join(dir, "none.toml");
        writeFileSync(none, "");
        const noBus = await cli(["dlq", "list", "-c", none], { EXOCLAW_STATE_DIR: dir, EXOCLAW_NATS_URL: "" });
        expect(noBus.code).toBe(2);
        expect(noBus.stderr).toMatch(/no message bus is configured \(set \[bus\] url/);
        const port = await freePort();
        const down = join(dir, "down.toml");
        writeFileSync(down, `[bus]\nurl = "nats://127.0.0.1:${port}"\n`);
        const t0 = Date.now();
        const unreachable = await cli(["dlq", "list", "-c", down], { EXOCLAW_STATE_DIR: dir, EXOCLAW_NATS_URL: "" });
        expect(unreachable.code).toBe(2);
        expect(unreachable.stderr).toContain(`cannot reach NATS at nats://127.0.0.1:${port}`);
        expect(Date.now() - t0).toBeLessThan(20_000);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }, 40_000);
  });

  it("shuts down cleanly on SIGTERM: stops consuming, closes the bus, exit code 0", async () => {
    const t0 = Date.now();
    const code = await gw.gateway.stop();
    expect(code).toBe(0);
    expect(gw.gateway.logs.some((l) => l.msg === "stopped")).toBe(true);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);
});
