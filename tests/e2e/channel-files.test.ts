// End to end (issue 18, media): the real gateway process with the telegram and discord channel
// plugins (build/plugins/*.wasm), the fake Telegram Bot API and the fake Discord (Gateway +
// REST), and the provider emulator. The emulator's `use:send_file {...}` makes the model call the
// built-in `send_file` tool; assertions are on what the fake platforms received (parsed as
// multipart/form-data by Node's own Fetch implementation, not the plugin SDK's builder).
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { CLI, startGateway, type GatewayHandle } from "../support/gateway.js";
import { startFakeDiscord, type FakeDiscord } from "../support/platforms/discord.mjs";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";

const SECRET_TOKEN = "e2e-files-secret_token";
const ALICE = 5151;
const BOB = 5252;
const CAROL = 5353;
const DM = "333000000000000077";
const DC_ALICE = "444000000000000077";
/** The Telegram channel's `media.send_max_bytes` (small, for the oversized case). */
const SEND_MAX = 2048;
const ENV: Record<string, string> = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN, E2E_DC_TOKEN: "" };

let tg: FakeTelegram;
let dc: FakeDiscord;
let gw: ChannelGateway;
let restarted: GatewayHandle | null = null;
let hookBase = "";

/** A PNG by its signature, `n` bytes long. */
function png(n: number): Buffer {
  const b = Buffer.alloc(n);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 8; i < n; i++) b[i] = (i * 7) % 251;
  return b;
}

beforeAll(async () => {
  tg = await startFakeTelegram();
  dc = await startFakeDiscord({ heartbeatIntervalMs: 5000 });
  ENV.E2E_TG_BOT = tg.token;
  ENV.E2E_DC_TOKEN = dc.token;
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-files", tools: ["send_file"] }],
      channels: {
        telegram: { allow: [String(ALICE), String(BOB), String(CAROL)], media: { send_max_bytes: SEND_MAX } },
        discord: { allow: [DM], connect: {} },
      },
      plugins: {
        grants: {
          telegram: {
            http: { hosts: ["127.0.0.1"], methods: ["POST", "GET"] },
            config: { base_url: tg.url },
            secrets: { TELEGRAM_BOT_TOKEN: { env: "E2E_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "E2E_TG_SECRET" } },
          },
          discord: {
            http: { hosts: ["127.0.0.1"] },
            config: { gateway_url: dc.gatewayUrl, api_base: dc.apiBase },
            secrets: { DISCORD_BOT_TOKEN: { env: "E2E_DC_TOKEN" } },
            random: true,
            clock: true,
            kv: { quota_bytes: 1024 * 1024 },
          },
        },
        limits: { telegram: { timeout_ms: 10_000 }, discord: { timeout_ms: 10_000 } },
      },
    } as never,
    env: ENV,
  });
  await waitUntil(() => dc.connected() && dc.identifies.length > 0, 30_000, "the Discord plugin's Identify");
  hookBase = gw.baseUrl;
}, 90_000);

afterAll(async () => {
  await restarted?.stop();
  await gw?.stop();
  await tg?.close();
  await dc?.close();
});

const hook = () => `${hookBase}/webhook/telegram`;
const deliver = (u: unknown) => deliverTelegramUpdate(hook(), u, SECRET_TOKEN);
const sentWith = (marker: string) => tg.sent.filter((s) => s.text.includes(marker));
/** The model's final text for a turn (the emulator answers a tool result with "The answer is <result>."). */
const replyWith = (marker: string) => waitUntil(() => sentWith(marker)[0], 30_000, `the reply carrying ${marker}`);
const useSendFile = (input: Record<string, unknown>) => `use:send_file ${JSON.stringify(input)}`;

describe("send_file on Telegram", () => {
  it("a text document goes out by sendDocument with its bytes, type, name and caption, to the current chat", async () => {
    const before = tg.filesSent.length;
    const csv = "city,temp\nOslo,-3\nLima,24\n";
    expect(
      (await deliver(telegramUpdate({ chatId: ALICE, text: useSendFile({ name: "weather.csv", text: csv, mime: "text/csv", caption: "file-1" }) }))).status,
    ).toBe(200);
    const [f] = (await tg.waitForFiles(before + 1)).slice(before);
    expect(f).toMatchObject({ method: "sendDocument", chat_id: String(ALICE), caption: "file-1", name: "weather.csv", type: "text/csv" });
    expect(f!.bytes.toString("utf8")).toBe(csv);
    // The bot token was substituted by the host into the URL.
    expect(tg.calls.find((c) => c.method === "sendDocument")!.token).toBe(tg.token);
    const reply = await replyWith("sent weather.csv");
    expect(Number(reply.chat_id)).toBe(ALICE);
  }, 60_000);

  it("an image given as base64 goes out by sendPhoto as image/png, byte for byte", async () => {
    const before = tg.filesSent.length;
    const image = png(1500);
    await deliver(telegramUpdate({ chatId: ALICE, text: useSendFile({ name: "chart.png", data_base64: image.toString("base64") }) }));
    const [f] = (await tg.waitForFiles(before + 1)).slice(before);
    expect(f).toMatchObject({ method: "sendPhoto", chat_id: String(ALICE), name: "chart.png", type: "image/png" });
    expect(Buffer.compare(f!.bytes, image)).toBe(0);
    await replyWith("sent chart.png (image/png, 1500 bytes)");
  }, 60_000);

  it("the model cannot aim a file at another peer: a peer, channel or account in the input is refused and nothing is sent", async () => {
    const before = tg.filesSent.length;
    for (const [i, extra] of [{ peer: String(BOB) }, { channel: "discord" }, { account: "other" }].entries()) {
      await deliver(telegramUpdate({ chatId: ALICE, text: useSendFile({ name: `x${i}.txt`, text: `secret-${i}`, ...extra }) }));
      const refusals = await waitUntil(
        () => {
          const r = sentWith("only go to the current conversation");
          return r.length >= i + 1 ? r : null;
        },
        30_000,
        `refusal ${i}`,
      );
      expect(Number(refusals[i]!.chat_id)).toBe(ALICE);
      expect(refusals[i]!.text).toContain(`"${Object.keys(extra)[0]}" is not accepted`);
    }
    expect(tg.filesSent.slice(before)).toEqual([]);
    expect(tg.sent.filter((s) => Number(s.chat_id) === BOB)).toEqual([]);
  }, 90_000);

  it("a file over the channel's media.send_max_bytes is refused with an error naming the limit; nothing is sent", async () => {
    const before = tg.filesSent.length;
    await deliver(telegramUpdate({ chatId: ALICE, text: useSendFile({ name: "big.txt", text: "y".repeat(SEND_MAX + 1) }) }));
    const reply = await replyWith("over this channel's limit");
    expect(reply.text).toContain(`limit of ${SEND_MAX} bytes (media.send_max_bytes)`);
    await deliver(telegramUpdate({ chatId: ALICE, text: useSendFile({ name: "big.png", data_base64: png(SEND_MAX + 10).toString("base64") }) }));
    await waitUntil(() => sentWith(`${SEND_MAX + 10} bytes, over`)[0], 30_000, "the refusal of the big PNG");
    expect(tg.filesSent.slice(before)).toEqual([]);
  }, 60_000);
});

describe("send_file on Discord", () => {
  it("a PNG goes out as a message attachment (payload_json + files[0]) in the DM it was asked from", async () => {
    const image = png(3000);
    dc.message({ channelId: DM, authorId: DC_ALICE, content: useSendFile({ name: "plot.png", data_base64: image.toString("base64"), caption: "dc-file-1" }) });
    const withFile = await waitUntil(() => dc.sent.find((s) => (s.attachments?.length ?? 0) > 0), 30_000, "a Discord message with an attachment");
    expect(withFile).toMatchObject({ channel_id: DM, content: "dc-file-1" });
    expect(withFile.attachments).toHaveLength(1);
    expect(withFile.attachments![0]).toMatchObject({ filename: "plot.png", content_type: "image/png" });
    expect(Buffer.compare(withFile.attachments![0]!.bytes, image)).toBe(0);
    const post = dc.calls.find((c) => c.method === "POST" && String(c.headers["content-type"]).startsWith("multipart/form-data"))!;
    expect(post.headers.authorization).toBe(`Bot ${dc.token}`);
    await waitUntil(() => dc.sent.find((s) => s.content.includes("sent plot.png")), 30_000, "the turn's reply");
  }, 60_000);
});

describe("inbound images in later turns", () => {
  const image = png(900);
  const b64 = image.toString("base64");
  const sha = createHash("sha256").update(image).digest("hex");
  const anthropicImage = { type: "image", source: { type: "base64", media_type: "image/png", data: b64 } };
  const modelRequestWith = (marker: string) =>
    waitUntil(() => gw.emulator.requests.find((r) => JSON.stringify(r.body).includes(marker)), 30_000, `the model request of ${marker}`);
  /** The user messages before the last one (the history), as the Anthropic request carries them. */
  const history = (body: any) => body.messages.slice(0, -1).filter((m: any) => m.role === "user");

  it("an image from message 1 reaches the model as an image block in turn 2 (stored 0600 under <state>/media/<sha256>), and after a restart; forgetting the peer removes it", async () => {
    const photo = telegramUpdate({
      chatId: CAROL,
      caption: "look img-t1",
      extra: { photo: [{ file_id: tg.addFile(image), file_unique_id: "u-img-t1", width: 4, height: 4, file_size: image.length }] },
    });
    expect((await deliver(photo)).status).toBe(200);
    await replyWith("img-t1");
    const file = join(gw.stateDir, "media", sha);
    await waitUntil(() => existsSync(file), 10_000, "the stored image");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(gw.stateDir, "media")).mode & 0o777).toBe(0o700);

    await deliver(telegramUpdate({ chatId: CAROL, text: "and now img-t2" }));
    await replyWith("img-t2");
    const turn2 = await modelRequestWith("img-t2");
    expect(history(turn2.body).flatMap((m: any) => m.content)).toContainEqual(anthropicImage);

    // Restart on the same state directory: the image is read back from the media directory.
    await gw.gateway.stop();
    restarted = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
    ]);
    hookBase = `http://127.0.0.1:${restarted.port}`;
    await deliver(telegramUpdate({ chatId: CAROL, text: "after the restart img-t3" }));
    await replyWith("img-t3");
    const turn3 = await modelRequestWith("img-t3");
    expect(history(turn3.body).flatMap((m: any) => m.content)).toContainEqual(anthropicImage);

    // `exoclaw memory forget --peer` (RPC memory.delete): the peer's sessions and their images go.
    const forget = spawnSync(process.execPath, [CLI, "memory", "forget", "--peer", String(CAROL), "--channel", "telegram", "-c", gw.configFile], {
      env: { ...process.env, EXOCLAW_STATE_DIR: gw.stateDir, EXOCLAW_PORT: String(restarted.port) },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(forget.status, forget.stderr).toBe(0);
    expect(existsSync(file)).toBe(false);
  }, 180_000);
});
