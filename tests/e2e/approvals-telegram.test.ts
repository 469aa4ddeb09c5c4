// End to end: durable human approvals through the real gateway process, the telegram channel
// plugin, the fake Telegram Bot API and the provider emulator. A turn whose tool call needs a
// person's yes parks (`approval_pending` in the session log), the approver is asked on Telegram,
// the gateway is killed (SIGKILL) and started again on the same state, and the approver's
// `approve <id>` arriving through Telegram resumes the turn: the tool runs once, the model is not
// asked again for what it already answered, and the peer gets one reply. Another allowed peer
// saying `approve <id>` approves nothing.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";
import { fixture } from "../plugins/sandbox/support.js";

const SECRET_TOKEN = "approvals-Telegram-secret_token";
const ALICE = 4242; // asks for the risky call
const APPROVER = 1001; // the configured approver
const MALLORY = 6666; // allowed to talk to the agent, not an approver
const ENV = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN };

let tg: FakeTelegram;
let gw: ChannelGateway;
let restarted: GatewayHandle | null = null;
let hook: string;
let pluginsDir: string;

beforeAll(async () => {
  tg = await startFakeTelegram();
  ENV.E2E_TG_BOT = tg.token;
  pluginsDir = mkdtempSync(join(tmpdir(), "exoclaw-approvals-plugins-"));
  writeFileSync(join(pluginsDir, "echo.wasm"), await fixture("echo"));
  gw = await startChannelGateway({
    config: {
      agents: [
        {
          id: "main",
          provider: "anthropic",
          model: "emu-approvals",
          approvals: { rules: [{ tool: "echo" }], approver: `telegram:default:${APPROVER}`, timeout_ms: 300_000 },
        },
      ],
      channels: { telegram: { allow: [String(ALICE), String(APPROVER), String(MALLORY)] } },
      plugins: {
        grants: {
          telegram: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: tg.url },
            secrets: { TELEGRAM_BOT_TOKEN: { env: "E2E_TG_BOT" }, TELEGRAM_SECRET_TOKEN: { env: "E2E_TG_SECRET" } },
          },
        },
        limits: { telegram: { timeout_ms: 10_000 } },
      },
    },
    env: ENV,
    args: ["--plugins-dir", pluginsDir],
  });
  hook = `${gw.baseUrl}/webhook/telegram`;
}, 180_000);

afterAll(async () => {
  await restarted?.stop();
  await gw?.stop();
  await tg?.close();
});

const sentTo = (chat: number, marker: string) => tg.sent.filter((s) => s.chat_id === chat && s.text.includes(marker));
const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("approvals through Telegram across a gateway kill", () => {
  it("parks, survives SIGKILL, is approved by the approver only, and completes once", async () => {
    expect((await deliverTelegramUpdate(hook, telegramUpdate({ chatId: ALICE, text: 'use:echo {"text":"launch-tg"}' }), SECRET_TOKEN)).status).toBe(200);
    const [ask] = await waitUntil(
      () => (sentTo(APPROVER, "Approval needed").length > 0 ? sentTo(APPROVER, "Approval needed") : null),
      60_000,
      "the approver asked",
    );
    const id = /\[([a-z2-9]{6})\]/.exec(ask!.text)![1]!;
    expect(ask!.text).toContain(`approve ${id}`);
    expect(ask!.text).toContain("echo");
    expect(modelRequestsWith("launch-tg")).toHaveLength(1);

    await gw.gateway.stop("SIGKILL");
    restarted = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
      "--plugins-dir",
      pluginsDir,
    ]);
    await waitUntil(() => restarted!.logs.find((l) => l.msg === "approval waits again after a restart" && l.id === id), 60_000, "the approval waiting again");
    const hook2 = `http://127.0.0.1:${restarted.port}/webhook/telegram`;

    // Another peer cannot approve: its message is an ordinary turn.
    expect((await deliverTelegramUpdate(hook2, telegramUpdate({ chatId: MALLORY, text: `approve ${id}` }), SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => sentTo(MALLORY, `You said: approve ${id}`).length > 0, 60_000, "mallory's ordinary reply");
    expect(sentTo(ALICE, "The answer is")).toHaveLength(0);

    expect((await deliverTelegramUpdate(hook2, telegramUpdate({ chatId: APPROVER, text: `approve ${id}` }), SECRET_TOKEN)).status).toBe(200);
    await waitUntil(() => sentTo(APPROVER, `Approved ${id}.`).length > 0, 60_000, "the approver's confirmation");
    await waitUntil(() => sentTo(ALICE, "The answer is launch-tg.").length > 0, 60_000, "alice's reply");
    await new Promise((r) => setTimeout(r, 1500));
    expect(sentTo(ALICE, "The answer is launch-tg.")).toHaveLength(1);
    // The model call that asked for the tool is not repeated; one more call takes the tool result.
    expect(modelRequestsWith("launch-tg")).toHaveLength(2);
  }, 240_000);
});
