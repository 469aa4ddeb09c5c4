/**
 * `[bus]` / `EXOCLAW_NATS_URL`, `[store] url = "nats://..."`, and the bus payloads and message
 * ids the channels publish (host/src/channels/bus.ts).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkInboundPayload, checkOutboundPayload, inboundMsgId, inboundPayload, replyMsgId } from "../../host/src/channels/bus.js";
import { ConfigError, DEFAULT_BUS_MAX_DELIVER, loadConfig } from "../../host/src/config/index.js";
import { describeStoreUrl, openSessionLog } from "../../host/src/store/index.js";
import { StoreError } from "../../host/src/store/errors.js";
import { freePort } from "./nats-server.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-bus-config-"));
const state = join(dir, "state");

function load(toml: string | undefined, env: Record<string, string> = {}) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: state, ...env }, []);
}

describe("[bus] configuration", () => {
  it("is absent by default: no NATS, the in-process mode", () => {
    expect(load(undefined).bus).toBeUndefined();
    expect(load("[bus]\npartitions = 8\n").bus).toBeUndefined();
    expect(load(undefined, { EXOCLAW_NATS_URL: "" }).bus).toBeUndefined();
  });

  it("reads url (a comma-separated list), partitions and max_deliver (default 3)", () => {
    expect(load('[bus]\nurl = "nats://127.0.0.1:4222"\n').bus).toEqual({
      servers: ["nats://127.0.0.1:4222"],
      maxDeliver: DEFAULT_BUS_MAX_DELIVER,
      outage: "spool",
    });
    expect(DEFAULT_BUS_MAX_DELIVER).toBe(3);
    const c = load('[bus]\nurl = "nats://a:4222, nats://user:pw@b:4223"\npartitions = 8\nmax_deliver = 5\n');
    expect(c.bus).toEqual({ servers: ["nats://a:4222", "nats://user:pw@b:4223"], partitions: 8, maxDeliver: 5, outage: "spool" });
    expect(load('[bus]\nurl = "nats://a:4222"\nack_wait_ms = 2000\nlease_ttl_ms = 6000\n').bus).toMatchObject({ ackWaitMs: 2000, leaseTtlMs: 6000 });
  });

  it("EXOCLAW_NATS_URL wins over the file (keeping the file's other keys)", () => {
    const c = load('[bus]\nurl = "nats://file:4222"\nmax_deliver = 2\n', { EXOCLAW_NATS_URL: "nats://env:4222" });
    expect(c.bus).toEqual({ servers: ["nats://env:4222"], maxDeliver: 2, outage: "spool" });
    expect(load(undefined, { EXOCLAW_NATS_URL: "nats://127.0.0.1:1" }).bus?.servers).toEqual(["nats://127.0.0.1:1"]);
  });

  it("refuses bad values naming the field, without echoing credentials", () => {
    expect(() => load('[bus]\nurl = "http://x:4222"\n')).toThrow(/bus\.url: must be "nats:\/\/host:port"/);
    expect(() => load('[bus]\nurl = "nats://a:4222,"\n')).not.toThrow(); // a trailing comma is harmless
    expect(() => load('[bus]\nurl = "nats://a:4222"\npartitions = 0\n')).toThrow(/bus\.partitions/);
    expect(() => load('[bus]\nurl = "nats://a:4222"\nmax_deliver = 0\n')).toThrow(/bus\.max_deliver/);
    expect(() => load('[bus]\nurl = "nats://a:4222"\noutage = "drop"\n')).toThrow(/bus\.outage: must be "spool" or "refuse"/);
    expect(() => load('[bus]\nurl = "nats://a:4222"\nreorder_window_ms = -1\n')).toThrow(/bus\.reorder_window_ms/);
    expect(load('[bus]\nurl = "nats://a:4222"\noutage = "refuse"\nreorder_window_ms = 0\n').bus).toMatchObject({ outage: "refuse", reorderWindowMs: 0 });
    expect(() => load('[bus]\nurl = "nats://a:4222"\nretries = 1\n')).toThrow(/retries/);
    expect(() => load('[bus]\nurl = "nats://a:4222"\nack_wait_ms = 5000\nlease_ttl_ms = 5000\n')).toThrow(
      /bus\.lease_ttl_ms: lease_ttl_ms must be larger than ack_wait_ms/,
    );
    expect(() => load(undefined, { EXOCLAW_NATS_URL: "tcp://u:secret@h:4222" })).toThrow(ConfigError);
    expect(() => load(undefined, { EXOCLAW_NATS_URL: "tcp://u:secret@h:4222" })).toThrow(/EXOCLAW_NATS_URL/);
    expect(() => load(undefined, { EXOCLAW_NATS_URL: "tcp://u:secret@h:4222" })).not.toThrow(/secret/);
  });
});

describe("[store] url = nats://", () => {
  it("is accepted from the file and EXOCLAW_STORE; bad server lists are refused", () => {
    expect(load('[store]\nurl = "nats://127.0.0.1:4222"\nnamespace = "prod"\n').store).toMatchObject({ url: "nats://127.0.0.1:4222", namespace: "prod" });
    expect(load(undefined, { EXOCLAW_STORE: "nats://a:1,nats://b:2" }).store.url).toBe("nats://a:1,nats://b:2");
    expect(() => load('[store]\nurl = "nats://a:1,http://b"\n')).toThrow(/store\.url/);
    expect(() => load(undefined, { EXOCLAW_STORE: "nats://" })).toThrow(/EXOCLAW_STORE/);
  });

  it("describeStoreUrl hides credentials of every server", () => {
    expect(describeStoreUrl("nats://u:pw@a:1,nats://b:2")).toBe("nats://a:1,nats://b:2");
    expect(describeStoreUrl("nats://a:4222")).toBe("nats://a:4222");
  });

  it("openSessionLog on an unreachable NATS fails with StoreError unavailable naming the URL (no credentials)", async () => {
    const port = await freePort();
    const err = await openSessionLog({ url: `nats://u:pw@127.0.0.1:${port}` }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect((err as StoreError).code).toBe("unavailable");
    expect((err as Error).message).toContain(`nats://127.0.0.1:${port}`);
    expect((err as Error).message).not.toContain("pw");
  }, 20_000);
});

describe("bus payloads and message ids of channel messages", () => {
  it("the message id is the direct path's idempotency key; long or non-ASCII ids are hashed, stable and distinct", () => {
    expect(inboundMsgId("telegram", "bot1", "42")).toBe("channel:telegram:bot1:42");
    expect(replyMsgId("channel:telegram:bot1:42")).toBe("channel:telegram:bot1:42:reply");
    const long = inboundMsgId("webhook", "default", "x".repeat(300));
    expect(long).toMatch(/^channel:webhook:h:[0-9a-f]{64}$/);
    expect(inboundMsgId("webhook", "default", "x".repeat(300))).toBe(long);
    expect(inboundMsgId("webhook", "default", "x".repeat(301))).not.toBe(long);
    const accented = inboundMsgId("webhook", "café", "1");
    expect(accented).toMatch(/^channel:webhook:h:/);
    // The account and the id are separated before hashing: no collision by moving the boundary.
    expect(inboundMsgId("webhook", "é", "ab")).not.toBe(inboundMsgId("webhook", "éa", "b"));
  });

  it("inbound payloads carry what the turn needs and are checked on the way out of the bus", () => {
    const p = inboundPayload(
      "slack",
      {
        account: "T1",
        peer: "C1",
        peerKind: "group",
        sender: "U1",
        team: "T1",
        thread: "171.5",
        content: "hi",
        attachments: [{ kind: "image" }],
        platformMessageId: "m9",
      },
      "hi\n[attachments: image]",
      1234,
    );
    expect(p).toEqual({
      v: 1,
      channel: "slack",
      account: "T1",
      peer: "C1",
      peerKind: "group",
      sender: "U1",
      team: "T1",
      thread: "171.5",
      content: "hi\n[attachments: image]",
      platformMessageId: "m9",
      attachments: 1,
      receivedAt: 1234,
    });
    expect(checkInboundPayload(p)).toBe(p);
    expect(checkInboundPayload({ ...p, v: 2 })).toMatch(/unknown payload version 2/);
    expect(checkInboundPayload({ ...p, peer: "" })).toMatch(/field 'peer'/);
    expect(checkInboundPayload({ ...p, content: 5 })).toMatch(/content/);
    expect(checkInboundPayload({ ...p, thread: 7 })).toMatch(/thread/);
    expect(checkInboundPayload([p])).toMatch(/not a map/);
    const out = { v: 1, channel: "slack", account: "T1", peer: "C1", content: "ok", replyTo: "m9", what: "reply" };
    expect(checkOutboundPayload(out)).toBe(out);
    expect(checkOutboundPayload({ ...out, what: "shout" })).toMatch(/what/);
    expect(checkOutboundPayload({ ...out, replyTo: 3 })).toMatch(/replyTo/);
  });
});
