// End to end: progressive replies (`stream = "edit"`) on Discord (message PATCH, rate-limit
// headers honoured) and Slack (chat.update), through the real gateway process, the real channel
// plugins (build/plugins/discord.wasm, slack.wasm), the provider emulator streaming slowly and
// the fake platforms (tests/support/platforms/discord.mjs, slack.mjs). Telegram and the crash
// cases: channel-stream.test.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { startFakeDiscord, type FakeDiscord } from "../support/platforms/discord.mjs";
import { slackMessageEvent, startFakeSlack, type FakeSlack } from "../support/platforms/slack.mjs";

const DM = "333000000000000077";
const ALICE = "444000000000000077";
const SIGNING_SECRET = "stream-slack-signing-secret";
const BOT_TOKEN = "xoxb-stream-bot-token";
const ENV = { E2E_DC_TOKEN: "", E2E_SLACK_SIGNING: SIGNING_SECRET, E2E_SLACK_BOT: BOT_TOKEN };

let dc: FakeDiscord;
let slack: FakeSlack;
let gw: ChannelGateway;

beforeAll(async () => {
  // A small bucket (3 requests per 4 s per channel): the stream must wait for its resets.
  dc = await startFakeDiscord({ rateLimit: { limit: 3, resetAfterMs: 4000 } });
  slack = await startFakeSlack({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET });
  ENV.E2E_DC_TOKEN = dc.token;
  gw = await startChannelGateway({
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "emu-stream", tools: [] }],
      channels: {
        discord: { allow: [DM, "333000000000000078"], connect: {}, stream: "edit", stream_interval_ms: 500 },
        slack: { allow: ["D0ALICE"], stream: "edit", stream_interval_ms: 1200 },
        // Same plugin, not streaming: the typing indicator on its own.
        slacktyping: { plugin: "slack", allow: ["D0BOB"] },
      },
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
          slack: {
            http: { hosts: ["127.0.0.1"], methods: ["POST"] },
            // The app has Slack's "Agents & AI Apps" feature: typing = assistant.threads.setStatus.
            config: { base_url: slack.url, assistant_status: "on" },
            secrets: { SLACK_SIGNING_SECRET: { env: "E2E_SLACK_SIGNING" }, SLACK_BOT_TOKEN: { env: "E2E_SLACK_BOT" } },
            clock: true,
          },
        },
        limits: { discord: { timeout_ms: 10_000 }, slack: { timeout_ms: 10_000 } },
      },
    } as never,
    env: ENV,
  });
  await waitUntil(() => dc.connected() && dc.identifies.length > 0, 30_000, "the Discord plugin's Identify");
}, 90_000);

afterAll(async () => {
  await gw?.stop();
  await dc?.close();
  await slack?.close();
});

const words = (n: number) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

describe("stream = edit on Discord", () => {
  it("one message, edited by PATCH within the channel's rate-limit bucket, ending with the turn's text", async () => {
    const content = `stream dc-s1 SLOW_200MS ${words(30)}`;
    const expected = `You said: ${content}`;
    const { id } = dc.message({ channelId: DM, authorId: ALICE, content });
    const mine = () => dc.sent.filter((s) => s.channel_id === DM);
    const [first] = await waitUntil(() => (mine().length > 0 ? mine() : null), 60_000, "the first streamed message");
    expect(expected.startsWith(first!.content)).toBe(true);
    expect(first!.content.length).toBeLessThan(expected.length);
    expect(first!.message_reference).toEqual({ message_id: id, fail_if_not_exists: false });
    await waitUntil(() => first!.content === expected, 60_000, "the final edit");
    await new Promise((r) => setTimeout(r, 1500));
    expect(mine()).toHaveLength(1);
    const edits = dc.edits.filter((e) => e.message_id === first!.id);
    expect(edits.length).toBeGreaterThanOrEqual(1);
    // The bucket ran dry during the stream (3 per 4 s against an interval of 0.5 s): the plugin
    // reported X-RateLimit-Remaining 0 / Reset-After, and the host held its edits until the reset
    // instead of sending a request into an empty bucket.
    expect(dc.violations).toEqual([]);
    // ...and never asked the plugin for an edit while the route was blocked (which it would refuse).
    expect(gw.gateway.logs.filter((e) => e.msg === "streamed reply: call failed" && e.channel === "discord")).toEqual([]);
    const patches = dc.calls.filter((c) => c.method === "PATCH");
    expect(patches.length).toBe(edits.length);
  }, 120_000);
});

describe("stream = edit: a reply longer than one Discord message", () => {
  it("the streamed message holds the first 2,000 characters and the rest follows as one more message; together they are the turn's text", async () => {
    const channel = "333000000000000078";
    const content = `stream dc-s2 SLOW_10MS ${words(450)}`;
    const expected = `You said: ${content}`;
    expect(expected.length).toBeGreaterThan(2000);
    dc.message({ channelId: channel, authorId: ALICE, content });
    const mine = () => dc.sent.filter((s) => s.channel_id === channel);
    await waitUntil(() => mine().length === 2, 90_000, "the overflow message");
    await new Promise((r) => setTimeout(r, 1500));
    const [first, rest] = mine();
    expect(mine()).toHaveLength(2);
    expect([...first!.content].length).toBeLessThanOrEqual(2000);
    // Cut at a space (dropped), as a long send is split.
    expect(`${first!.content} ${rest!.content}`).toBe(expected);
    expect(rest!.nonce).toMatch(/^[0-9a-f]{16}\.0$/);
  }, 120_000);
});

describe("stream = edit on Slack", () => {
  it("one message posted early and updated with chat.update, ending with the turn's text", async () => {
    const text = `stream slack-s1 SLOW_200MS ${words(24)}`;
    const expected = `You said: ${text}`;
    const before = slack.posts.length;
    const r = await slack.deliver(`${gw.baseUrl}/webhook/slack`, slackMessageEvent({ channel: "D0ALICE", user: "U0ALICE", team: "T0OTHER", text }));
    expect(r.status).toBe(200);
    const posts = await slack.waitForPosts(before + 1, 60_000);
    const post = posts[before]!;
    expect(post.channel).toBe("D0ALICE");
    await waitUntil(() => post.text === expected, 60_000, "the final chat.update");
    await new Promise((res) => setTimeout(res, 1500));
    expect(slack.posts.filter((p) => p.channel === "D0ALICE" && p.text.includes("slack-s1"))).toHaveLength(1);
    const updates = slack.updates.filter((u) => u.ts === post.ts);
    expect(updates.length).toBeGreaterThanOrEqual(2);
    // At most one chat.update per 1.2 s, the final one included (+2 for arrival jitter).
    const span = updates.at(-1)!.at - updates[0]!.at;
    expect(updates.length).toBeLessThanOrEqual(Math.floor(span / 1200) + 3);
  }, 120_000);
});

describe("Slack typing through assistant.threads.setStatus", () => {
  it("a message in an (assistant) thread gets the 'is thinking...' status before the reply; outside a thread there is no call", async () => {
    const hook = `${gw.baseUrl}/webhook/slacktyping`;
    const threadTs = "1712345678.000100";
    const before = slack.posts.length;
    const r = await slack.deliver(hook, slackMessageEvent({ channel: "D0BOB", user: "U0BOB", team: "T0OTHER", text: "typing slack-t1 SLOW_600MS", threadTs }));
    expect(r.status).toBe(200);
    const posts = await slack.waitForPosts(before + 1, 60_000);
    const reply = posts.find((p) => p.text.includes("slack-t1"))!;
    expect(reply.thread_ts).toBe(threadTs);
    const statuses = slack.statuses.filter((s) => s.channel_id === "D0BOB");
    expect(statuses.length).toBeGreaterThanOrEqual(1);
    expect(statuses[0]).toMatchObject({ thread_ts: threadTs, status: "is thinking..." });
    const replyCall = slack.calls.findIndex((c) => c.path === "/api/chat.postMessage" && c.json?.text === reply.text);
    const statusCall = slack.calls.findIndex((c) => c.path === "/api/assistant.threads.setStatus" && c.json?.channel_id === "D0BOB");
    expect(statusCall).toBeLessThan(replyCall);
    const auth = slack.calls[statusCall]!.headers.authorization;
    expect(auth).toBe(`Bearer ${BOT_TOKEN}`);

    // A direct message outside any thread: no status call (the API has none for it).
    const n = slack.statuses.length;
    await slack.deliver(hook, slackMessageEvent({ channel: "D0BOB", user: "U0BOB", team: "T0OTHER", text: "no thread slack-t2 SLOW_600MS" }));
    await waitUntil(() => slack.posts.some((p) => p.text.includes("slack-t2")), 60_000, "the reply to slack-t2");
    expect(slack.statuses.length).toBe(n);
  }, 120_000);
});
