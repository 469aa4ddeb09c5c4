// End to end (issue 18): mention gating and sender identity on Slack — the real gateway with the
// slack plugin, the fake Slack (signed Events API deliveries, chat.postMessage) and the emulator.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { slackMessageEvent, startFakeSlack, type FakeSlack } from "../support/platforms/slack.mjs";

const SIGNING_SECRET = "e2e-slack-groups-signing";
const BOT_TOKEN = "xoxb-e2e-groups";

let slack: FakeSlack;
let gw: ChannelGateway;
let hook: string;

beforeAll(async () => {
  slack = await startFakeSlack({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET });
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-slack-groups", tools: [] }],
      channels: { slack: { allow: ["team:T0ACME"], mention_only: true } } as never,
      plugins: {
        grants: {
          slack: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: slack.url },
            secrets: { SLACK_SIGNING_SECRET: { env: "E2E_SLACK_SIGNING" }, SLACK_BOT_TOKEN: { env: "E2E_SLACK_BOT" } },
            clock: true,
          },
        },
        limits: { slack: { timeout_ms: 10_000 } },
      },
    },
    env: { E2E_SLACK_SIGNING: SIGNING_SECRET, E2E_SLACK_BOT: BOT_TOKEN },
  });
  hook = `${gw.baseUrl}/webhook/slack`;
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await slack?.close();
});

const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("slack groups", () => {
  it("with mention_only, channel chatter is not passed on; <@BOTID> is, with the host-written sender", async () => {
    const base = { channel: "C0GENERAL", channelType: "channel" as const, team: "T0ACME" };
    expect((await slack.deliver(hook, slackMessageEvent({ ...base, user: "U0BOB", text: "chatter sg-1" }))).status).toBe(200);
    await gw.waitForLog((e) => /does not address the bot/.test(String(e.msg)) && e.sender === "U0BOB");
    const before = slack.posts.length;
    expect((await slack.deliver(hook, slackMessageEvent({ ...base, user: "U0ALICE", text: "<@U0BOT> hello sg-2" }))).status).toBe(200);
    await slack.waitForPosts(before + 1);
    await waitUntil(() => slack.posts.some((p) => p.text.includes("sg-2")) || null, 30_000, "the reply to sg-2");
    expect(modelRequestsWith("sg-1")).toHaveLength(0);
    const [req] = modelRequestsWith("sg-2");
    const user = [...req!.body.messages].reverse().find((m: any) => m.role === "user");
    expect(user.content[0].text).toMatch(/^\[exoclaw sender\] id="U0ALICE" /);
  });
});
