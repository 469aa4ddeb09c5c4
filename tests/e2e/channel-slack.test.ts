// End to end: the real gateway process with the slack channel plugin (build/plugins/slack.wasm,
// approved with the CLI), the provider emulator as the model, and the fake Slack as the platform.
// Events are delivered the way Slack delivers them (signed JSON POSTs, retries with the same
// event_id); replies must arrive at the fake Slack's chat.postMessage.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { slackMessageEvent, slackUrlVerification, startFakeSlack, type FakeSlack } from "../support/platforms/slack.mjs";

const SIGNING_SECRET = "e2e-slack-signing-secret";
const BOT_TOKEN = "xoxb-e2e-bot-token";

let slack: FakeSlack;
let gw: ChannelGateway;
let hook: string;

beforeAll(async () => {
  slack = await startFakeSlack({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET });
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-slack", tools: [] }],
      channels: { slack: { allow: ["D0ALICE", "team:T0ACME"] } },
      plugins: {
        grants: {
          slack: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            config: { base_url: slack.url },
            secrets: { SLACK_SIGNING_SECRET: { env: "E2E_SLACK_SIGNING" }, SLACK_BOT_TOKEN: { env: "E2E_SLACK_BOT" } },
            clock: true,
          },
        },
        // Generous for a loaded 2-core machine; the plugin's HTTP call is to 127.0.0.1.
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

/** Model requests whose body mentions `marker`. */
const modelRequestsWith = (marker: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(marker));

describe("slack channel through the gateway", () => {
  it("answers Slack's url_verification with the challenge", async () => {
    const r = await slack.deliver(hook, slackUrlVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"));
    expect(r.status).toBe(200);
    expect(r.body).toBe("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
  });

  it("an allowed peer's direct message is answered with chat.postMessage in the same conversation", async () => {
    const before = slack.posts.length;
    const r = await slack.deliver(hook, slackMessageEvent({ channel: "D0ALICE", user: "U0ALICE", team: "T0OTHER", text: "hello slack-dm-1" }));
    expect(r.status).toBe(200);
    const posts = await slack.waitForPosts(before + 1);
    const reply = posts[before]!;
    expect(reply.channel).toBe("D0ALICE");
    expect(reply.text).toBe("You said: hello slack-dm-1");
    expect(reply.thread_ts).toBeUndefined();
    const call = slack.calls.find((c) => c.json?.text === reply.text)!;
    expect(call.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    const model = modelRequestsWith("hello slack-dm-1");
    expect(model).toHaveLength(1);
    expect(model[0]!.body.model).toBe("emu-slack");
  });

  it("a team allowed by team:<id> is answered in the message's thread", async () => {
    const before = slack.posts.length;
    const event = slackMessageEvent({
      channel: "C0GENERAL",
      channelType: "channel",
      team: "T0ACME",
      user: "U0BOB",
      text: "thread question",
      threadTs: "1700000000.000100",
    });
    expect((await slack.deliver(hook, event)).status).toBe(200);
    const reply = (await slack.waitForPosts(before + 1))[before]!;
    // In a channel the model sees the host-written sender line first (docs/channels.md, Groups); the emulator echoes it.
    expect(reply).toMatchObject({
      channel: "C0GENERAL",
      thread_ts: "1700000000.000100",
      text: expect.stringMatching(/^You said: \[exoclaw sender\] id="U0[A-Z]+" .*\nthread question$/s),
    });
  });

  it("a stranger gets nothing: 200 to Slack, no model request, no post", async () => {
    const postsBefore = slack.posts.length;
    const r = await slack.deliver(hook, slackMessageEvent({ channel: "D0MALLORY", user: "U0MALLORY", team: "T0EVIL", text: "stranger slack-2" }));
    // Slack would retry anything but a 2xx; a dropped stranger is still acknowledged.
    expect(r.status).toBe(200);
    await gw.waitForLog((e) => e.channel === "slack" && e.peer === "D0MALLORY" && /allowlist/.test(String(e.msg)));
    // The drop is decided before the HTTP answer; a grace period shows nothing follows it.
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("stranger slack-2")).toHaveLength(0);
    expect(slack.posts.length).toBe(postsBefore);
  });

  it("a bad signature gets 401 and nothing else happens", async () => {
    const postsBefore = slack.posts.length;
    const callsBefore = slack.calls.length;
    const event = slackMessageEvent({ channel: "D0ALICE", text: "forged slack-3" });
    const forged = await slack.deliver(hook, event, { signingSecret: "attacker-guess" });
    expect(forged.status).toBe(401);
    const unsigned = await slack.deliver(hook, event, { unsigned: true });
    expect(unsigned.status).toBe(401);
    const stale = await slack.deliver(hook, event, { timestampSec: Math.floor(Date.now() / 1000) - 600 });
    expect(stale.status).toBe(401);
    await new Promise((res) => setTimeout(res, 1500));
    expect(modelRequestsWith("forged slack-3")).toHaveLength(0);
    expect(slack.posts.length).toBe(postsBefore);
    expect(slack.calls.length).toBe(callsBefore);
  });

  it("Slack's retries of one event (same event_id, x-slack-retry-num) are answered once", async () => {
    const before = slack.posts.length;
    const event = slackMessageEvent({ channel: "D0ALICE", text: "retry me slack-4", eventId: "Ev0E2ERETRY1" });
    const first = await slack.deliver(hook, event);
    expect(first.status).toBe(200);
    // Retries as Slack sends them when it did not see the 200 in time: during and after the turn.
    const retry1 = await slack.deliver(hook, event, { retryNum: 1 });
    expect(retry1.status).toBe(200);
    await slack.waitForPosts(before + 1);
    const retry2 = await slack.deliver(hook, event, { retryNum: 2 });
    expect(retry2.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1500));
    expect(slack.posts.slice(before).map((p) => p.text)).toEqual(["You said: retry me slack-4"]);
    expect(modelRequestsWith("retry me slack-4")).toHaveLength(1);
  });

  it("bot messages (including the bot's own replies echoed back as events) are not answered", async () => {
    const before = slack.posts.length;
    const r = await slack.deliver(hook, slackMessageEvent({ channel: "D0ALICE", text: "You said: loop slack-5", botId: "B0BOT" }));
    expect(r.status).toBe(200);
    await new Promise((res) => setTimeout(res, 1000));
    expect(modelRequestsWith("loop slack-5")).toHaveLength(0);
    expect(slack.posts.length).toBe(before);
  });

  it("a failed chat.postMessage is logged with Slack's error (nothing silently lost)", async () => {
    // Every attempt fails, so the service's retries give up and say why.
    for (let i = 0; i < 10; i++) slack.failNext("is_archived");
    const r = await slack.deliver(hook, slackMessageEvent({ channel: "D0ALICE", text: "archived slack-6" }));
    expect(r.status).toBe(200);
    const line = await waitUntil(
      () => gw.gateway.logs.find((e) => /is_archived/.test(JSON.stringify(e))),
      30_000,
      "a log line naming Slack's is_archived error",
    );
    expect(JSON.stringify(line)).toMatch(/chat\.postMessage failed: is_archived/);
  });
});
