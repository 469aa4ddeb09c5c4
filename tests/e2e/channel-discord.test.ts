// End to end: the real gateway process with the discord channel plugin (build/plugins/
// discord.wasm, approved with the CLI) holding a Gateway connection through the host's
// persistent-connection capability, the provider emulator as the model, and the fake Discord
// (tests/support/platforms/discord.mjs: Gateway + REST, as documented) as the platform.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startFakeDiscord, type FakeDiscord } from "../support/platforms/discord.mjs";

const GUILD = "111000000000000001";
const GENERAL = "222000000000000001";
const RANDOM = "222000000000000002";
const DM = "333000000000000001";
const ALICE = "444000000000000001";
const STRANGER_GUILD = "111000000000000999";
const STRANGER_CHANNEL = "222000000000000999";
const ENV = { E2E_DC_TOKEN: "" };

let dc: FakeDiscord;
let gw: ChannelGateway;

beforeAll(async () => {
  // A short heartbeat interval so that the missed-ACK case shows within seconds.
  dc = await startFakeDiscord({ heartbeatIntervalMs: 700 });
  ENV.E2E_DC_TOKEN = dc.token;
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-discord", tools: [] }],
      channels: { discord: { allow: [`guild:${GUILD}`, DM], connect: {} } },
      plugins: {
        grants: {
          discord: {
            http: { hosts: ["127.0.0.1"] },
            config: { gateway_url: dc.gatewayUrl, api_base: dc.apiBase },
            secrets: { DISCORD_BOT_TOKEN: { env: "E2E_DC_TOKEN" } },
            random: true,
            clock: true,
            kv: { quota_bytes: 1024 * 1024 },
          },
        },
        // Generous for a loaded 2-core machine; the plugin's HTTP calls go to 127.0.0.1.
        limits: { discord: { timeout_ms: 10_000 } },
      },
    } as never,
    env: ENV,
  });
  await waitUntil(() => dc.connected() && dc.identifies.length > 0, 30_000, "the plugin's Identify");
}, 90_000);

afterAll(async () => {
  await gw?.stop();
  await dc?.close();
});

const sentWith = (marker: string) => dc.sent.filter((s) => s.content.includes(marker));
const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("discord over the Gateway", () => {
  it("identifies with the token (substituted by the host) and the intents; heartbeats with the last sequence", async () => {
    const id = dc.identifies[0];
    expect(id.token).toBe(dc.token);
    expect(id.intents).toBe(37377);
    expect(id.properties).toMatchObject({ browser: "exoclaw" });
    expect(dc.violations).toEqual([]);
    await waitUntil(() => dc.heartbeats.length >= 1, 10_000, "a heartbeat");
    // After READY (s = 1) the heartbeat carries the sequence.
    await waitUntil(() => dc.heartbeats.some((h) => typeof h.d === "number" && h.d >= 1), 10_000, "a heartbeat with d >= 1");
  });

  it("a guild message is answered once in its channel, replying to it", async () => {
    const { id } = dc.message({ guildId: GUILD, channelId: GENERAL, authorId: ALICE, content: "hello dc-1" });
    const [reply] = await waitUntil(() => (sentWith("dc-1").length > 0 ? sentWith("dc-1") : null), 30_000, "the reply to dc-1");
    // A guild message is a group message: the model gets the host-written sender line first (docs/channels.md, "Groups").
    expect(reply).toMatchObject({
      channel_id: GENERAL,
      content: expect.stringMatching(new RegExp(`^You said: \\[exoclaw sender\\] id="${ALICE}".*\\nhello dc-1$`, "s")),
      message_reference: { message_id: id, fail_if_not_exists: false },
    });
    expect(reply!.nonce).toMatch(/^[0-9a-f]{16}\.0$/);
    const rest = dc.calls.find((c) => c.method === "POST" && c.json?.content === reply!.content)!;
    expect(rest.headers.authorization).toBe(`Bot ${dc.token}`);
    await new Promise((r) => setTimeout(r, 1000));
    expect(sentWith("dc-1")).toHaveLength(1);
    expect(modelRequestsWith("hello dc-1")).toHaveLength(1);
  });

  it("a DM is answered; bots, webhooks and strangers are dropped", async () => {
    dc.message({ channelId: DM, authorId: ALICE, content: "dm dc-2" });
    dc.message({ guildId: GUILD, channelId: GENERAL, authorId: "555", bot: true, content: "bot dc-3" });
    dc.message({ guildId: GUILD, channelId: GENERAL, authorId: "556", webhookId: "777", content: "hook dc-4" });
    dc.message({ guildId: STRANGER_GUILD, channelId: STRANGER_CHANNEL, authorId: "666", content: "stranger dc-5" });
    await waitUntil(() => sentWith("dc-2").length > 0, 30_000, "the reply to the DM");
    expect(sentWith("dc-2")[0]!.channel_id).toBe(DM);
    await gw.waitForLog((e) => e.channel === "discord" && e.peer === STRANGER_CHANNEL && /allowlist/.test(String(e.msg)));
    await new Promise((r) => setTimeout(r, 1500));
    for (const m of ["dc-3", "dc-4", "dc-5"]) {
      expect(sentWith(m), m).toHaveLength(0);
      expect(modelRequestsWith(m), m).toHaveLength(0);
    }
  });

  it("the fake drops the connection mid-stream: the plugin resumes, nothing is lost or answered twice", async () => {
    const identifiesBefore = dc.identifies.length;
    const resumesBefore = dc.resumes.length;
    for (let i = 0; i < 5; i++) dc.message({ guildId: GUILD, channelId: GENERAL, authorId: ALICE, content: `before drop dc-6.${i}` });
    dc.drop();
    // Dispatched while the connection is down: delivered on Resume.
    for (let i = 0; i < 5; i++) dc.message({ guildId: GUILD, channelId: GENERAL, authorId: ALICE, content: `during drop dc-7.${i}` });
    await waitUntil(() => dc.resumes.length > resumesBefore, 30_000, "a Resume");
    const resume = dc.resumes[resumesBefore];
    expect(resume.token).toBe(dc.token);
    expect(typeof resume.session_id).toBe("string");
    expect(dc.connections.at(-1)!.url).toMatch(/^\/resume\/\?v=10&encoding=json$/);
    await waitUntil(() => sentWith("dc-6.").length === 5 && sentWith("dc-7.").length === 5, 60_000, "replies to all ten messages");
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 5; i++) {
      expect(sentWith(`dc-6.${i}`), `dc-6.${i}`).toHaveLength(1);
      expect(sentWith(`dc-7.${i}`), `dc-7.${i}`).toHaveLength(1);
    }
    expect(dc.identifies.length).toBe(identifiesBefore); // resumed, not a new session
  });

  it("a missed heartbeat ACK makes the plugin reconnect and resume", async () => {
    const resumesBefore = dc.resumes.length;
    const connectionsBefore = dc.connections.length;
    dc.ackHeartbeats = false;
    await waitUntil(() => dc.connections.length > connectionsBefore, 30_000, "a new connection after missed ACKs");
    dc.ackHeartbeats = true;
    await waitUntil(() => dc.resumes.length > resumesBefore, 30_000, "a Resume after the missed ACK");
    // The zombie connection was closed by the client, not by the fake.
    const old = dc.connections[connectionsBefore - 1]!;
    await waitUntil(() => old.closedAt !== undefined, 10_000, "the old connection closed");
    expect(old.code).not.toBe(1000);
    await gw.waitForLog((e) => /heartbeat not acknowledged/.test(String(e.msg)));
    dc.message({ guildId: GUILD, channelId: GENERAL, authorId: ALICE, content: "after ack dc-8" });
    await waitUntil(() => sentWith("dc-8").length > 0, 30_000, "the reply after the reconnect");
  });

  it("op 7 Reconnect: the plugin closes and resumes", async () => {
    const resumesBefore = dc.resumes.length;
    await waitUntil(() => dc.connected(), 30_000, "connected");
    dc.requestReconnect();
    await waitUntil(() => dc.resumes.length > resumesBefore, 30_000, "a Resume after op 7");
    dc.message({ guildId: GUILD, channelId: RANDOM, authorId: ALICE, content: "after op7 dc-9" });
    await waitUntil(() => sentWith("dc-9").length > 0, 30_000, "the reply after op 7");
  });

  it("50 guild messages over two channels are answered once each, in order per channel", async () => {
    await waitUntil(() => dc.connected(), 30_000, "connected");
    for (let i = 0; i < 50; i++) {
      dc.message({ guildId: GUILD, channelId: i % 2 === 0 ? GENERAL : RANDOM, authorId: ALICE, content: `burst dc-10 #${String(i).padStart(2, "0")}` });
    }
    await waitUntil(() => sentWith("burst dc-10").length >= 50, 120_000, "50 replies");
    await new Promise((r) => setTimeout(r, 1000));
    const replies = sentWith("burst dc-10");
    expect(replies).toHaveLength(50);
    for (const [channel, parity] of [
      [GENERAL, 0],
      [RANDOM, 1],
    ] as const) {
      const got = replies.filter((r) => r.channel_id === channel).map((r) => Number(/#(\d+)/.exec(r.content)![1]));
      const want = Array.from({ length: 50 }, (_, i) => i).filter((i) => i % 2 === parity);
      expect(got, channel).toEqual(want);
    }
  }, 180_000);

  it("a typing indicator is shown while the turn runs, renewed, and stops with the reply", async () => {
    const TYPING = "222000000000000003";
    const t0 = Date.now();
    dc.message({ guildId: GUILD, channelId: TYPING, authorId: ALICE, content: "typing dc-12 SLOW_1500MS" });
    await waitUntil(() => sentWith("dc-12").length > 0, 60_000, "the reply to dc-12");
    const replyAt = Date.now();
    const typed = dc.typing.filter((t) => t.channel_id === TYPING);
    console.log(`typing calls before the reply: ${typed.length} over ${replyAt - t0} ms`);
    expect(typed.length).toBeGreaterThanOrEqual(2);
    expect(typed[0]!.at).toBeLessThan(replyAt);
    await new Promise((r) => setTimeout(r, 5000));
    // Renewed every 4 s while running; none after the reply.
    expect(dc.typing.filter((t) => t.channel_id === TYPING && t.at > replyAt + 500)).toEqual([]);
  }, 90_000);

  it("the session state survives a gateway restart: the plugin resumes where it left off", async () => {
    const resumesBefore = dc.resumes.length;
    const identifiesBefore = dc.identifies.length;
    // The plugin's state (session id, resume URL, last sequence) is persisted by the host, 0600.
    const stateFile = join(gw.stateDir, "channels", "discord", "default.state");
    expect(statSync(stateFile).mode & 0o777).toBe(0o600);
    const persisted = JSON.parse(readFileSync(stateFile, "utf8"));
    expect(persisted.sid).toBe(dc.resumes.at(-1).session_id);
    expect(persisted.seq).toBeGreaterThan(50);
    await gw.gateway.stop();
    dc.message({ guildId: GUILD, channelId: GENERAL, authorId: ALICE, content: "while down dc-11" });
    const { startGateway } = await import("../support/gateway.js");
    const again = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
    ]);
    try {
      await waitUntil(() => dc.resumes.length > resumesBefore, 30_000, "a Resume after the restart");
      await waitUntil(() => sentWith("dc-11").length > 0, 30_000, "the reply to the message sent while down");
      await new Promise((r) => setTimeout(r, 1500));
      expect(dc.identifies.length).toBe(identifiesBefore);
      expect(sentWith("dc-11")).toHaveLength(1);
      expect(sentWith("hello dc-1")).toHaveLength(1);
    } finally {
      await again.stop();
    }
  }, 90_000);
});
