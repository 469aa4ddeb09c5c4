// End to end: the real gateway process, the first-party `webhook` channel plugin (real Wasm,
// approved with the CLI), the provider emulator, and a fake platform receiving the replies.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embedManifest, extractManifest } from "../../scripts/lib/manifest-section.mjs";
import { startEmulator } from "../support/emulator/server.mjs";
import { ROOT, RpcClient, startGateway } from "../support/gateway.js";
import {
  hmacSha256Hex,
  openRequest,
  startChannelGateway,
  startFakePlatform,
  type ChannelGateway,
  type FakePlatform,
  webhookGrant,
} from "../support/channel-gateway.js";

const SECRET = "test-webhook-secret-0123456789";
/** The outbound bearer token: its own secret, so the reply receiver never learns the signing key. */
const TOKEN = "test-webhook-token-9876543210";

/** Signs a JSON body the way the webhook plugin checks it. */
function signed(body: object): { text: string; headers: Record<string, string> } {
  const text = JSON.stringify(body);
  return { text, headers: { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` } };
}

const settle = (ms = 600) => new Promise((r) => setTimeout(r, ms));

describe.each(["uws", "ws"] as const)("webhook channel end to end (%s transport)", (transport) => {
  let platform: FakePlatform;
  let gw: ChannelGateway;

  beforeAll(async () => {
    platform = await startFakePlatform();
    gw = await startChannelGateway({
      config: {
        gateway: { transport },
        channels: { webhook: { allow: ["alice", "bob"], accounts: ["default", "bot2"], max_message_bytes: 64, max_body_bytes: 2048 } },
        plugins: {
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`, { token: true }),
          },
        },
      },
      env: { TEST_WEBHOOK_SECRET: SECRET, TEST_WEBHOOK_TOKEN: TOKEN },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
  });

  const post = (body: object, account?: string) => {
    const s = signed(body);
    return gw.postWebhook("webhook", account, s.text, s.headers);
  };
  const repliesTo = (peer: string) => platform.requests.filter((r) => r.json?.peer === peer);
  const modelSaw = (text: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(text));

  it("answers an allowed peer on the platform", async () => {
    const answer = await post({ peer: "alice", content: "hello there", messageId: "m1" });
    expect(answer.status).toBe(200);
    const reply = await platform.waitFor((r) => r.json?.peer === "alice" && r.json?.replyTo === "m1", 20_000);
    expect(reply.method).toBe("POST");
    expect(reply.url).toBe("/inbox");
    expect(reply.json).toMatchObject({ account: "default", peer: "alice", content: "You said: hello there", replyTo: "m1" });
    // The token was substituted by the host into the plugin's request; the signing key never leaves.
    expect(reply.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.stringify(platform.requests)).not.toContain(SECRET);
  });

  it("routes by account from the URL", async () => {
    expect((await post({ peer: "bob", content: "via bot2", messageId: "a1" }, "bot2")).status).toBe(200);
    const reply = await platform.waitFor((r) => r.json?.peer === "bob" && r.json?.replyTo === "a1", 20_000);
    expect(reply.json.account).toBe("bot2");
  });

  it("drops a stranger: no reply, and the model is never asked", async () => {
    const answer = await post({ peer: "mallory", content: "let me in STRANGER_MARK", messageId: "s1" });
    expect(answer.status).toBe(200);
    await gw.waitForLog((l) => l.msg === "message from a peer not in the channel allowlist; dropped" && l.peer === "mallory");
    await settle();
    expect(repliesTo("mallory")).toHaveLength(0);
    expect(modelSaw("STRANGER_MARK")).toHaveLength(0);
  });

  it("answers a bad signature 401 and does nothing else but log it at warn", async () => {
    const logsBefore = gw.gateway.logs.length;
    const body = JSON.stringify({ peer: "alice", content: "forged FORGED_MARK", messageId: "f1" });
    const bad = await gw.postWebhook("webhook", undefined, body, {
      "content-type": "application/json",
      "x-exoclaw-signature": `sha256=${hmacSha256Hex("wrong", body)}`,
    });
    expect(bad.status).toBe(401);
    await settle();
    expect(modelSaw("FORGED_MARK")).toHaveLength(0);
    expect(platform.requests.filter((r) => r.json?.replyTo === "f1")).toHaveLength(0);
    // docs/security.md: "the event is logged": one warn line for the refused request, naming the
    // channel and account, and never the signing secret. (A request with no signature header at
    // all is refused by the host before the plugin and only counted: see the next test.)
    const refusals = gw.gateway.logs.slice(logsBefore).filter((l) => typeof l.msg === "string" && /bad signature/.test(l.msg));
    expect(refusals).toHaveLength(1);
    for (const line of refusals) expect(line).toMatchObject({ level: 40, channel: "webhook", account: "default" });
    expect(gw.gateway.stdout.join("\n")).not.toContain(SECRET);
  });

  it("answers a post without the declared signature header 401 before reading its body, without calling the plugin", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    try {
      const counters = async () => (await client.call("status")).response.msg.result.channels.webhook;
      const before = await counters();
      // Head only: the body (declared 1000 bytes) is never sent, yet the answer comes.
      const open = openRequest(gw.port, "/webhook/webhook", { headers: { "content-type": "application/json", "content-length": "1000" } });
      const answer = await open.answer;
      open.abort();
      expect(answer.status).toBe(401);
      expect(JSON.parse(answer.text).error).toBe("missing signature header (x-exoclaw-signature)");
      const after = await counters();
      expect(after.missingSignature).toBe(before.missingSignature + 1);
      // The plugin answers every unsigned request 401 itself, counted as badSignature: unchanged,
      // so it never ran.
      expect(after.badSignature).toBe(before.badSignature);
      await gw.waitForLog((l) => l.msg === "webhook without the plugin's signature header; answered 401 without calling the plugin");
    } finally {
      client.close();
    }
  });

  it("refuses a captured signed request replayed to another account's path: 404, one reply, one model call", async () => {
    const captured = signed({ peer: "alice", content: "pay once REPLAY_MARK", messageId: "r1" });
    expect((await gw.postWebhook("webhook", undefined, captured.text, captured.headers)).status).toBe(200);
    await platform.waitFor((r) => r.json?.replyTo === "r1", 20_000);
    for (const account of ["elsewhere", "bot3", "default2"]) {
      const replay = await gw.postWebhook("webhook", account, captured.text, captured.headers);
      expect(replay.status).toBe(404);
      expect(replay.json.error).toBe(`unknown account "${account}" of channel "webhook"`);
    }
    await settle(1000);
    expect(platform.requests.filter((r) => r.json?.replyTo === "r1")).toHaveLength(1);
    expect(modelSaw("REPLAY_MARK")).toHaveLength(1);
  });

  it("answers a redelivered message id once", async () => {
    const body = { peer: "alice", content: "only once ONCE_MARK", messageId: "dup-1" };
    const [a, b] = await Promise.all([post(body), post(body)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await platform.waitFor((r) => r.json?.replyTo === "dup-1", 20_000);
    expect((await post(body)).status).toBe(200);
    await settle(1000);
    expect(platform.requests.filter((r) => r.json?.replyTo === "dup-1")).toHaveLength(1);
    expect(modelSaw("ONCE_MARK")).toHaveLength(1);
  });

  it("refuses an oversize message with a reply naming the limit, without asking the model", async () => {
    const content = `BIG_MARK ${"x".repeat(80)}`;
    expect((await post({ peer: "alice", content, messageId: "big-1" })).status).toBe(200);
    const reply = await platform.waitFor((r) => r.json?.replyTo === "big-1", 20_000);
    expect(reply.json.content).toMatch(/too long \(\d+ bytes\); the limit is 64 bytes/);
    expect(modelSaw("BIG_MARK")).toHaveLength(0);
  });

  it("answers 413 for a body over max_body_bytes, 404 for an unknown channel, 400 for a bad name", async () => {
    const huge = await post({ peer: "alice", content: "y".repeat(4000), messageId: "h1" });
    expect(huge.status).toBe(413);
    expect(huge.json.error).toMatch(/larger than 2048 bytes/);
    const unknown = await gw.postWebhook("nochannel", undefined, "{}");
    expect(unknown.status).toBe(404);
    expect(unknown.json.error).toBe('unknown channel "nochannel"');
    // A body-less GET reaches the plugin too (it decides: the generic webhook wants POST).
    const get = await gw.postWebhook("webhook", undefined, undefined, {}, { method: "GET" });
    expect(get.status).toBe(405);
    const res = await fetch(`${gw.baseUrl}/webhook/bad%20name`, { method: "POST", body: "{}" });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toMatch(/invalid channel name "bad name"/);
  });

  it("shows the channel counters in status", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    try {
      const counters = async () => (await client.call("status")).response.msg.result.channels.webhook;
      // Earlier tests waited for their replies, so `answered` is final here.
      const c = await counters();
      expect(c).toMatchObject({ badSignature: 1, missingSignature: 1, unknownAccount: 3, throttled: 0, overloaded: 0 });
      expect(c.accepted).toBeGreaterThanOrEqual(4);
      expect(c.refused).toBeGreaterThanOrEqual(2);
      expect(c.answered).toBeGreaterThanOrEqual(3);
      expect(c.sendFailures).toBe(0);
    } finally {
      client.close();
    }
  });
});

/**
 * A copy of the first-party webhook plugin whose manifest declares no signature header, named
 * `webhook_open`: a channel plugin from before `signatureHeaders`, whose requests the host cannot
 * tell signed from unsigned (so they may use only the unsigned share of the in-flight budget).
 */
function writeOpenPlugin(dir: string): string {
  const manifest = extractManifest(readFileSync(join(ROOT, "build", "plugins", "webhook.wasm")));
  delete manifest.signatureHeaders;
  manifest.name = "webhook_open";
  const file = join(dir, "webhook_open.wasm");
  writeFileSync(file, embedManifest(readFileSync(join(ROOT, "build", "plugins", "webhook.wasm")), manifest));
  return file;
}

describe.each(["uws", "ws"] as const)("webhook intake limits (%s transport)", (transport) => {
  const KiB = 1024;
  let platform: FakePlatform;
  let gw: ChannelGateway;
  let pluginDir: string;
  /** Each probe gets its own source address, so polling never spends the flood's or the bucket test's tokens. */
  let probes = 0;
  const fresh = () => {
    const n = probes++;
    return `127.1.${Math.floor(n / 254) % 256}.${(n % 254) + 1}`;
  };

  beforeAll(async () => {
    platform = await startFakePlatform();
    pluginDir = mkdtempSync(join(tmpdir(), "exoclaw-open-plugin-"));
    const open = writeOpenPlugin(pluginDir);
    const grant = {
      http: { hosts: ["127.0.0.1"] },
      config: { base_url: `${platform.url}/inbox` },
      secrets: { WEBHOOK_SECRET: { env: "TEST_WEBHOOK_SECRET" } },
    };
    gw = await startChannelGateway({
      config: {
        gateway: {
          transport,
          // 256 KiB in flight, half of it for unsigned requests: two 64 KiB uploads fill that half.
          webhooks: {
            max_in_flight_bytes: 256 * KiB,
            max_in_flight: 16,
            unsigned_share: 0.5,
            per_address_rate: 1,
            per_address_burst: 40,
            per_address_in_flight: 3,
          },
        },
        channels: {
          webhook: { allow: ["alice"] },
          open: { plugin: "webhook_open", allow: ["alice"], max_body_bytes: 64 * KiB },
        },
        plugins: { grants: { webhook: grant, webhook_open: grant } },
      },
      approve: [join(ROOT, "build", "plugins", "webhook.wasm"), open],
      args: ["--plugins-dir", pluginDir],
      env: { TEST_WEBHOOK_SECRET: SECRET },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await platform?.close();
    if (pluginDir) rmSync(pluginDir, { recursive: true, force: true });
  });

  /** A complete small unsigned post to the `open` channel from a fresh address; its status. */
  const probe = async () => {
    const r = openRequest(gw.port, "/webhook/open", { headers: { "content-type": "application/json", "content-length": "2" }, localAddress: fresh() });
    r.finish(Buffer.from("{}"));
    return (await r.answer).status;
  };
  /** Opens an unsigned 64 KiB upload to `open` and sends only its first KiB. */
  const hold = () =>
    openRequest(gw.port, "/webhook/open", {
      headers: { "content-type": "application/json", "content-length": String(64 * KiB) },
      first: Buffer.alloc(KiB, 0x20),
      localAddress: "127.0.0.1",
    });

  it("a flood of unsigned uploads held open gets further unsigned posts 503 before their body, while a signed delivery gets through; aborting the uploads frees the capacity", async () => {
    const held = [hold(), hold()];
    try {
      // Once both uploads hold their reservation, every further unsigned request is refused.
      await waitUntilTrue(async () => (await probe()) === 503, "the unsigned share to fill up");
      const refused = openRequest(gw.port, "/webhook/open", {
        headers: { "content-type": "application/json", "content-length": String(64 * KiB) },
        localAddress: fresh(),
      });
      const answer = await refused.answer; // no body byte was sent
      refused.abort();
      expect(answer.status).toBe(503);
      expect(answer.headers["retry-after"]).toBe("1");
      expect(JSON.parse(answer.text).error).toBe("too many webhook requests in flight; retry later");

      // The signed share is still free.
      const s = signed({ peer: "alice", content: "signed through the flood", messageId: "flood-1" });
      const delivery = await gw.postWebhook("webhook", undefined, s.text, s.headers);
      expect(delivery.status).toBe(200);
      await platform.waitFor((r) => r.json?.replyTo === "flood-1", 20_000);
    } finally {
      for (const h of held) h.abort();
    }
    // Aborted uploads release what they reserved: a full-size unsigned upload is admitted again.
    await waitUntilTrue(async () => (await probe()) !== 503, "the aborted uploads' capacity to come back");
    const again = openRequest(gw.port, "/webhook/open", {
      headers: { "content-type": "application/json", "content-length": String(64 * KiB) },
      localAddress: fresh(),
    });
    again.finish(Buffer.alloc(64 * KiB, 0x20));
    // Admitted and read: the plugin refuses it for its missing signature (not 503).
    expect((await again.answer).status).toBe(401);
  });

  it("lets one address hold only per_address_in_flight uploads (429 past it), so a signed delivery from another still gets through", async () => {
    // Forged signatures: the header is present, so these count as signed until the plugin reads them.
    const forged = () =>
      openRequest(gw.port, "/webhook/webhook", {
        headers: { "content-type": "application/json", "content-length": String(32 * KiB), "x-exoclaw-signature": "sha256=00" },
        first: Buffer.alloc(KiB, 0x20),
        localAddress: "127.0.0.4",
      });
    const held = [forged(), forged(), forged()];
    try {
      await waitUntilTrue(async () => {
        const extra = forged();
        const a = await Promise.race([extra.answer, new Promise<null>((r) => setTimeout(() => r(null), 200))]);
        extra.abort();
        return a?.status === 429;
      }, "the address's in-flight share to fill up");
      const over = forged();
      const answer = await over.answer;
      over.abort();
      expect(answer.status).toBe(429);
      expect(JSON.parse(answer.text).error).toMatch(/^too many webhook requests in flight from .*127\.0\.0\.4/);
      expect(answer.headers["retry-after"]).toBe("1");
      const s = signed({ peer: "alice", content: "from another address", messageId: "addr-1" });
      const delivery = openRequest(gw.port, "/webhook/webhook", {
        headers: { ...s.headers, "content-length": String(Buffer.byteLength(s.text)) },
        localAddress: "127.0.0.5",
      });
      delivery.finish(Buffer.from(s.text));
      expect((await delivery.answer).status).toBe(200);
    } finally {
      for (const h of held) h.abort();
    }
  });

  it("answers 429 with Retry-After once an address spends its bucket, and other addresses are unaffected", async () => {
    const client = await RpcClient.connect(gw.gateway.url);
    const throttledBefore = (await client.call("status")).response.msg.result.channels.webhook.throttled;
    const statuses = await Promise.all(
      Array.from({ length: 60 }, async () => {
        const r = openRequest(gw.port, "/webhook/webhook", { headers: { "content-length": "2" }, localAddress: "127.0.0.3" });
        r.finish(Buffer.from("{}"));
        return r.answer;
      }),
    );
    const throttled = statuses.filter((a) => a.status === 429);
    // A burst of 40 refilled at 1 per second: 60 at once cannot all pass (some may also be over
    // the address's 3 in flight).
    const overRate = throttled.filter((a) => /^too many webhook requests from .*127\.0\.0\.3/.test(JSON.parse(a.text).error));
    expect(overRate.length).toBeGreaterThanOrEqual(1);
    expect(Number(overRate[0]!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    // The others were refused for their missing signature header, by the host.
    expect(statuses.every((a) => a.status === 429 || a.status === 401)).toBe(true);
    expect(await probe()).not.toBe(429);
    try {
      const c = (await client.call("status")).response.msg.result.channels;
      expect(c.webhook.throttled - throttledBefore).toBe(throttled.length);
      expect(c.open.overloaded).toBeGreaterThanOrEqual(2);
    } finally {
      client.close();
    }
  });
});

describe("webhook channel: durability and config errors", () => {
  it("a crash after the webhook answer loses nothing: the queued message is answered after restart, the interrupted one gets a notice, redeliveries get no second reply", async () => {
    // Slow model: the first turn is mid-call when the gateway is killed, the second queued behind it.
    const emulator = await startEmulator({ latencyMs: 2500 });
    const platform = await startFakePlatform();
    const config = {
      channels: { webhook: { allow: ["alice"] } },
      plugins: {
        grants: {
          webhook: webhookGrant(`${platform.url}/inbox`),
        },
      },
    };
    const env = { TEST_WEBHOOK_SECRET: SECRET };
    const gw = await startChannelGateway({ config, env, emulator });
    let again: Awaited<ReturnType<typeof startGateway>> | undefined;
    try {
      for (const [id, content] of [
        ["c1", "first"],
        ["c2", "second"],
      ]) {
        const s = signed({ peer: "alice", content, messageId: id });
        // 200 means journaled: the platform will not redeliver, so the gateway owns the message now.
        expect((await gw.postWebhook("webhook", undefined, s.text, s.headers)).status).toBe(200);
      }
      await waitUntilTrue(() => emulator.requests.length === 1, "the first model call");
      await gw.gateway.stop("SIGKILL");
      expect(platform.requests).toHaveLength(0);

      again = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: gw.stateDir, ...env }, [
        "--config",
        gw.configFile,
      ]);
      const notice = await platform.waitFor((r) => r.json?.replyTo === "c1", 30_000);
      expect(notice.json.content).toMatch(/^Sorry, your message could not be answered: turn interrupted/);
      const reply = await platform.waitFor((r) => r.json?.replyTo === "c2", 30_000);
      expect(reply.json).toMatchObject({ peer: "alice", content: "You said: second" });

      // The platform redelivers both (it may have missed our 200s): neither is run or answered again.
      const modelCalls = emulator.requests.length;
      for (const [id, content] of [
        ["c1", "first"],
        ["c2", "second"],
      ]) {
        const s = signed({ peer: "alice", content, messageId: id });
        const res = await fetch(`http://127.0.0.1:${again.port}/webhook/webhook`, { method: "POST", headers: s.headers, body: s.text });
        expect(res.status).toBe(200);
      }
      await new Promise((r) => setTimeout(r, 1500));
      expect(platform.requests.map((r) => r.json?.replyTo).sort()).toEqual(["c1", "c2"]);
      expect(emulator.requests.length).toBe(modelCalls);
    } catch (err) {
      console.log(
        JSON.stringify(
          again?.logs.filter((l) => (l.level as number) >= 40 || /recover|channel/.test(String(l.msg))),
          null,
          1,
        ),
      );
      console.log(JSON.stringify(platform.requests.map((r) => r.json)));
      throw err;
    } finally {
      await again?.stop();
      await gw.stop();
      await platform.close();
      await emulator.close();
    }
  }, 90_000);

  it("a malformed allowlist entry stops the gateway at start, naming the channel and entry", async () => {
    const err = await startChannelGateway({ config: { channels: { webhook: { allow: ["alice", "guild:"] } } } }).then(
      async (gw) => (await gw.stop(), null),
      (e: unknown) => e as Error,
    );
    expect(err?.message).toContain('[channels.webhook] allow entry "guild:": has no guild id after "guild:"');
  });
});

async function waitUntilTrue(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
