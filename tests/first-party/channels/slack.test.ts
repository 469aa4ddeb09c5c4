// The slack channel plugin (plugins/channels/slack), built from source and run in the real
// plugin host (grants, approval, sandbox, hmac_verify on the host) through `callChannel`, against
// the fake Slack of tests/support/platforms/slack.mjs.
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EditResult, ParseResult, SendReceipt, WebhookRequest } from "../../../host/src/channels/types.js";
import { ApprovalStore, approvalFor, loadPlugins, sha256Hex, type OperatorGrant, type PluginHost } from "../../../host/src/plugins/index.js";
import type { CapabilityRequest } from "../../../host/src/plugins/capabilities.js";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { signSlackRequest, slackMessageEvent, slackUrlVerification, startFakeSlack, type FakeSlack } from "../../support/platforms/slack.mjs";

const SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5";
const BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";

let wasm: Uint8Array;
let manifest: Record<string, unknown>;
let slack: FakeSlack;
const cleanup: Array<() => Promise<void>> = [];

/**
 * A plugin host with the slack plugin loaded, granted `grant` (secret values from `env`) and
 * approved exactly as `exoclaw plugin approve` would.
 */
async function hostWith(grant: OperatorGrant, env: Record<string, string>): Promise<PluginHost> {
  const dir = await mkdtemp(path.join(tmpdir(), "exoclaw-slack-"));
  const state = path.join(dir, "state");
  // The plugin directory must not contain the trust store (state/trust): a sibling of state.
  const plugins = path.join(dir, "plugins");
  await mkdir(plugins);
  await writeFile(path.join(plugins, "slack.wasm"), wasm);
  const { record } = approvalFor("slack", sha256Hex(wasm), manifest.capabilities as CapabilityRequest, grant);
  await (await ApprovalStore.open(ApprovalStore.pathFor(state))).add(record);
  const host = await loadPlugins({ dirs: [plugins], grants: { slack: grant }, stateDir: state, env });
  cleanup.push(async () => {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  });
  return host;
}

function fullGrant(clock = true): OperatorGrant {
  return {
    http: { hosts: ["127.0.0.1"] },
    config: { base_url: slack.url },
    secrets: { SLACK_SIGNING_SECRET: { env: "T_SLACK_SIGNING" }, SLACK_BOT_TOKEN: { env: "T_SLACK_BOT" } },
    ...(clock ? { clock: true } : {}),
  };
}
const ENV = { T_SLACK_SIGNING: SIGNING_SECRET, T_SLACK_BOT: BOT_TOKEN };

let host: PluginHost;
let hostNoClock: PluginHost;

beforeAll(async () => {
  const built = await buildPlugin("plugins/channels/slack");
  wasm = built.wasm;
  manifest = built.manifest;
  slack = await startFakeSlack({ botToken: BOT_TOKEN, signingSecret: SIGNING_SECRET });
  host = await hostWith(fullGrant(), ENV);
  hostNoClock = await hostWith(fullGrant(false), ENV);
}, 60_000);

afterAll(async () => {
  for (const f of cleanup) await f();
  await slack?.close();
});

/** A webhook request as the gateway hands it to `parse`, signed unless `headers` say otherwise. */
function request(payload: unknown, o: { timestampSec?: number; secret?: string; headers?: Record<string, string>; method?: string } = {}): WebhookRequest {
  const body = typeof payload === "string" ? payload : JSON.stringify(payload);
  return {
    channel: "slack",
    account: "default",
    method: o.method ?? "POST",
    path: "",
    query: "",
    headers: {
      "content-type": "application/json",
      ...signSlackRequest(o.secret ?? SIGNING_SECRET, body, o.timestampSec),
      ...o.headers,
    },
    body: new TextEncoder().encode(body),
  };
}

async function parse(req: WebhookRequest, h: PluginHost = host): Promise<ParseResult> {
  return (await h.callChannel("slack", "parse", req)) as ParseResult;
}

const bodyText = (r: ParseResult): string =>
  r.response.body === undefined ? "" : typeof r.response.body === "string" ? r.response.body : new TextDecoder().decode(r.response.body);

describe("slack parse: request signing", () => {
  it("Slack's documented example signature verifies (v0:timestamp:body, HMAC-SHA256)", () => {
    // From https://api.slack.com/authentication/verifying-requests-from-slack.
    const body =
      "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    expect(signSlackRequest(SIGNING_SECRET, body, 1531420618)["x-slack-signature"]).toBe("v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503");
  });

  it("url_verification: 200 with the challenge as text/plain", async () => {
    const r = await parse(request(slackUrlVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")));
    expect(r.response.status).toBe(200);
    expect(r.response.headers?.["content-type"]).toMatch(/^text\/plain/);
    expect(bodyText(r)).toBe("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    expect(r.messages).toEqual([]);
  });

  it("a request signed with another secret, a tampered body, or no signature: 401 and no messages", async () => {
    const event = slackMessageEvent({ channel: "D0ALICE", text: "hi" });
    const forged = await parse(request(event, { secret: "not-the-secret" }));
    expect(forged.response.status).toBe(401);
    expect(forged.messages).toEqual([]);

    const good = request(event);
    const tampered = { ...good, body: new TextEncoder().encode(JSON.stringify({ ...event, event: { ...event.event, text: "transfer all" } })) };
    const t = await parse(tampered);
    expect(t.response.status).toBe(401);
    expect(t.messages).toEqual([]);

    const unsigned = { ...good, headers: { "content-type": "application/json" } };
    const u = await parse(unsigned);
    expect(u.response.status).toBe(401);
    expect(bodyText(u)).toMatch(/missing x-slack-signature/);

    const wrongScheme = await parse(request(event, { headers: { "x-slack-signature": "v1=abc" } }));
    expect(wrongScheme.response.status).toBe(401);
  });

  it("with the clock granted, a correctly signed request older than 5 minutes is refused (replay)", async () => {
    const event = slackMessageEvent({ channel: "D0ALICE", text: "old" });
    const old = Math.floor(Date.now() / 1000) - 6 * 60;
    const r = await parse(request(event, { timestampSec: old }));
    expect(r.response.status).toBe(401);
    expect(bodyText(r)).toMatch(/more than 5 minutes/);
    expect(r.messages).toEqual([]);
    const future = await parse(request(event, { timestampSec: Math.floor(Date.now() / 1000) + 6 * 60 }));
    expect(future.response.status).toBe(401);
    // Within the window it passes.
    const recent = await parse(request(event, { timestampSec: Math.floor(Date.now() / 1000) - 60 }));
    expect(recent.response.status).toBe(200);
    expect(recent.messages).toHaveLength(1);
  });

  it("without the clock grant the signature is still checked but the age is not (documented)", async () => {
    const event = slackMessageEvent({ channel: "D0ALICE", text: "old" });
    const old = Math.floor(Date.now() / 1000) - 6 * 60;
    expect((await parse(request(event, { timestampSec: old }), hostNoClock)).response.status).toBe(200);
    expect((await parse(request(event, { timestampSec: old, secret: "forged" }), hostNoClock)).response.status).toBe(401);
  });

  it("without the signing secret granted, parse fails with an error naming the secret (the host answers 5xx, not 200)", async () => {
    const noSecret = await hostWith({ ...fullGrant(), secrets: { SLACK_BOT_TOKEN: { env: "T_SLACK_BOT" } } }, ENV);
    await expect(parse(request(slackMessageEvent({ channel: "D0ALICE", text: "x" })), noSecret)).rejects.toThrow(/SLACK_SIGNING_SECRET/);
  });
});

describe("slack parse: events", () => {
  it("a direct message becomes one normalized message (peer = channel, team, sender, event_id)", async () => {
    const event = slackMessageEvent({ channel: "D024BE91L", user: "U2147483697", team: "T061EG9R6", text: "Hello world", eventId: "Ev0PV52K21" });
    const r = await parse(request(event));
    expect(r.response.status).toBe(200);
    expect(bodyText(r)).toBe("");
    expect(r.messages).toEqual([
      {
        peer: "D024BE91L",
        peerKind: "direct",
        team: "T061EG9R6",
        sender: "U2147483697",
        content: "Hello world",
        attachments: [],
        platformMessageId: "Ev0PV52K21",
      },
    ]);
  });

  it("channel, private group and multi-person DM messages are groups; thread_ts is the thread; files are attachments", async () => {
    for (const channelType of ["channel", "group", "mpim"] as const) {
      const r = await parse(request(slackMessageEvent({ channel: "C0GENERAL", channelType, text: "x" })));
      expect(r.messages[0]?.peerKind).toBe("group");
    }
    const event = slackMessageEvent({
      channel: "C0GENERAL",
      channelType: "channel",
      text: "see attached",
      threadTs: "1700000000.000100",
      subtype: "file_share",
      files: [
        { id: "F0PIC", name: "cat.png", mimetype: "image/png", size: 2048, url_private: "https://files.slack.com/x" },
        { id: "F0DOC", name: "spec.pdf", mimetype: "application/pdf", size: 99 },
      ],
    });
    const r = await parse(request(event));
    expect(r.messages).toHaveLength(1);
    expect(r.messages[0]).toMatchObject({
      peer: "C0GENERAL",
      peerKind: "group",
      thread: "1700000000.000100",
      content: "see attached",
      attachments: [
        { kind: "image", ref: "F0PIC", name: "cat.png", mime: "image/png", size: 2048 },
        { kind: "file", ref: "F0DOC", name: "spec.pdf", mime: "application/pdf", size: 99 },
      ],
    });
  });

  it("groups: <@BOTID> of the installation's bot user (authorizations) and app_mention mention the bot; a thread under its message replies to it; user_profile names the sender", async () => {
    const base = { channel: "C0GENERAL", channelType: "channel" as const };
    const [mention] = (await parse(request(slackMessageEvent({ ...base, text: "<@U0BOT> what is up" })))).messages;
    expect(mention).toMatchObject({ peerKind: "group", mentionsBot: true });
    const [other] = (await parse(request(slackMessageEvent({ ...base, text: "<@U0SOMEONE> hi" })))).messages;
    expect(other!.mentionsBot).toBeUndefined();
    const appMention = slackMessageEvent({ ...base, text: "<@U0BOT> hi" });
    (appMention.event as Record<string, unknown>).type = "app_mention";
    expect((await parse(request(appMention))).messages[0]).toMatchObject({ mentionsBot: true, content: "<@U0BOT> hi" });
    const reply = slackMessageEvent({ ...base, text: "thanks", threadTs: "1.000100" });
    Object.assign(reply.event as Record<string, unknown>, { parent_user_id: "U0BOT", user_profile: { display_name: "", real_name: "Ada Lovelace" } });
    expect((await parse(request(reply))).messages[0]).toMatchObject({ replyToBot: true, senderName: "Ada Lovelace" });
  });

  it("an image file carries its url_private download with the bot token as a host-side secret", async () => {
    const event = slackMessageEvent({
      channel: "D0ALICE",
      text: "pic",
      subtype: "file_share",
      files: [
        {
          id: "F1",
          name: "a.png",
          mimetype: "image/png",
          size: 10,
          url_private: "https://files.slack.com/files-pri/T-F1/a.png",
          url_private_download: "https://files.slack.com/files-pri/T-F1/download/a.png",
        },
      ],
    });
    const [m] = (await parse(request(event))).messages;
    expect(m!.attachments[0]!.fetch).toEqual({
      url: "https://files.slack.com/files-pri/T-F1/download/a.png",
      headers: { authorization: "Bearer {{secret:SLACK_BOT_TOKEN}}" },
    });
  });

  it("bot messages, edits and deletions, and other event types are acknowledged with 200 and produce nothing", async () => {
    const cases = [
      slackMessageEvent({ channel: "D0ALICE", text: "I am a bot", botId: "B0OTHER" }),
      slackMessageEvent({ channel: "D0ALICE", text: "I am a bot", subtype: "bot_message" }),
      slackMessageEvent({ channel: "D0ALICE", text: "edited", subtype: "message_changed" }),
      slackMessageEvent({ channel: "D0ALICE", text: "", subtype: "message_deleted" }),
      slackMessageEvent({ channel: "C0GENERAL", text: "", subtype: "channel_join" }),
      { ...slackMessageEvent({ channel: "D0ALICE", text: "x" }), event: { type: "reaction_added", user: "U1", reaction: "thumbsup" } },
      { type: "app_rate_limited", team_id: "T0TEAM", minute_rate_limited: 1518467820, api_app_id: "A0APP" },
    ];
    for (const payload of cases) {
      const r = await parse(request(payload));
      expect(r.response.status, JSON.stringify(payload)).toBe(200);
      expect(r.messages, JSON.stringify(payload)).toEqual([]);
    }
  });

  it("a retry (x-slack-retry-num) carries the same event_id, so the host's dedupe answers it once", async () => {
    const event = slackMessageEvent({ channel: "D0ALICE", text: "once", eventId: "Ev0RETRY" });
    const first = await parse(request(event));
    const retry = await parse(request(event, { headers: { "x-slack-retry-num": "1", "x-slack-retry-reason": "http_timeout" } }));
    expect(first.messages[0]?.platformMessageId).toBe("Ev0RETRY");
    expect(retry.messages[0]?.platformMessageId).toBe("Ev0RETRY");
  });

  it("hostile but correctly signed bodies never crash the plugin: deep nesting, invalid UTF-8, odd shapes, a 512 KiB text", async () => {
    const deep = "[".repeat(5000) + "]".repeat(5000);
    expect((await parse(request(deep))).response.status).toBe(400);
    const badUtf8 = request("x");
    const raw = new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]);
    const signed = { ...badUtf8, body: raw, headers: { ...badUtf8.headers, ...signSlackRequest(SIGNING_SECRET, Buffer.from(raw)) } };
    expect([200, 400]).toContain((await parse(signed)).response.status);
    for (const odd of [
      { type: "event_callback", event: "not a map" },
      { type: "event_callback", event: { type: "message", channel: 42, text: ["x"] } },
      { type: "event_callback", event: { type: "message", channel: "D0ALICE", files: "nope" } },
      { type: "url_verification" },
      [1, 2, 3],
    ]) {
      const r = await parse(request(odd));
      expect([200, 400], JSON.stringify(odd)).toContain(r.response.status);
    }
    const big = "y".repeat(512 * 1024);
    const r = await parse(request(slackMessageEvent({ channel: "D0ALICE", text: big })));
    expect(r.messages[0]?.content.length).toBe(big.length);
  });

  it("non-JSON bodies are 400, other methods 405", async () => {
    expect((await parse(request("not json"))).response.status).toBe(400);
    expect((await parse(request(slackUrlVerification("c"), { method: "GET" }))).response.status).toBe(405);
  });
});

describe("slack send: chat.postMessage", () => {
  it("posts {channel, text, thread_ts} with the bot token injected by the host; the receipt is Slack's ts", async () => {
    slack.reset();
    const receipt = (await host.callChannel("slack", "send", {
      account: "default",
      peer: "C0GENERAL",
      thread: "1700000000.000100",
      content: "Hello from exoclaw",
    })) as SendReceipt;
    expect(slack.posts).toHaveLength(1);
    expect(receipt.platformMessageId).toBe(slack.posts[0]!.ts);
    const call = slack.calls[0]!;
    expect(call.path).toBe("/api/chat.postMessage");
    expect(call.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    expect(call.headers["content-type"]).toMatch(/^application\/json/);
    expect(call.json).toEqual({ channel: "C0GENERAL", text: "Hello from exoclaw", thread_ts: "1700000000.000100" });
  });

  it("without a thread no thread_ts is sent", async () => {
    slack.reset();
    await host.callChannel("slack", "send", { account: "default", peer: "D0ALICE", content: "hi" });
    expect(slack.calls[0]!.json).toEqual({ channel: "D0ALICE", text: "hi" });
  });

  it("ok:false is a send error naming Slack's error code", async () => {
    slack.failNext("not_in_channel");
    await expect(host.callChannel("slack", "send", { account: "default", peer: "C0GENERAL", content: "hi" })).rejects.toThrow(
      /chat\.postMessage failed: not_in_channel/,
    );
    await expect(host.callChannel("slack", "send", { account: "default", peer: "X0NOPE", content: "hi" })).rejects.toThrow(/channel_not_found/);
  });

  it("a wrong bot token is invalid_auth; rate limiting names Retry-After", async () => {
    const badToken = await hostWith(fullGrant(), { ...ENV, T_SLACK_BOT: "xoxb-wrong" });
    await expect(badToken.callChannel("slack", "send", { account: "default", peer: "C0GENERAL", content: "hi" })).rejects.toThrow(/invalid_auth/);
    slack.rateLimitNext(30);
    await expect(host.callChannel("slack", "send", { account: "default", peer: "C0GENERAL", content: "hi" })).rejects.toThrow(
      /rate limited \(HTTP 429, retry after 30 s\)/,
    );
  });

  it("a reply longer than Slack's 40,000 characters is split at a line break, nothing dropped", async () => {
    slack.reset();
    const line = "x".repeat(99);
    const text = Array.from({ length: 600 }, () => line).join("\n"); // 59,999 characters
    await host.callChannel("slack", "send", { account: "default", peer: "C0GENERAL", content: text });
    expect(slack.posts.length).toBe(2);
    for (const p of slack.posts) expect(p.text.length).toBeLessThanOrEqual(40_000);
    expect(slack.posts.map((p) => p.text).join("\n")).toBe(text);
  });

  it("an empty message is refused before any request", async () => {
    slack.reset();
    await expect(host.callChannel("slack", "send", { account: "default", peer: "C0GENERAL", content: "" })).rejects.toThrow(/empty/);
    expect(slack.calls).toHaveLength(0);
  });
});

describe("slack edit: chat.update (progressive replies)", () => {
  it("updates {channel, ts, text} with the bot token; message_not_found is permanent; over 40,000 characters the rest is the overflow", async () => {
    slack.reset();
    const { platformMessageId: ts } = (await host.callChannel("slack", "send", { account: "default", peer: "D0ALICE", content: "first" })) as SendReceipt;
    const r = (await host.callChannel("slack", "edit", {
      account: "default",
      peer: "D0ALICE",
      platformMessageId: ts,
      content: "first and more",
    })) as EditResult;
    expect(r).toEqual({});
    const call = slack.calls.at(-1)!;
    expect(call.path).toBe("/api/chat.update");
    expect(call.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    expect(call.json).toEqual({ channel: "D0ALICE", ts, text: "first and more" });
    expect(slack.posts[0]!.text).toBe("first and more");
    const long = `${"a".repeat(39_990)}\n${"b".repeat(20)}`;
    const r2 = (await host.callChannel("slack", "edit", { account: "default", peer: "D0ALICE", platformMessageId: ts, content: long })) as EditResult;
    expect(r2.overflow).toBe("b".repeat(20));
    await expect(host.callChannel("slack", "edit", { account: "default", peer: "D0ALICE", platformMessageId: "1.000009", content: "x" })).rejects.toThrow(
      /permanent: Slack chat\.update failed: message_not_found/,
    );
  });

  it("typing does nothing without assistant_status (no call)", async () => {
    slack.reset();
    await host.callChannel("slack", "typing", { account: "default", peer: "D0ALICE", thread: "1700000000.000100" });
    expect(slack.calls).toEqual([]);
  });
});

describe("send_file (Slack's external upload: getUploadURLExternal, upload, completeUploadExternal)", () => {
  it("uploads the bytes with their type to the pre-signed URL (no token there) and shares the file in the channel and thread with the caption", async () => {
    expect(host.channelPlugins().find((p) => p.name === "slack")?.exports.sendFile).toBe(true);
    const bytes = Buffer.from([0x25, 0x50, 0x44, 0x46, 0x2d, 0x31, 0x2e, 0x34, 0x0a, 0x00, 0xff, 0x80]); // "%PDF-1.4\n" + binary
    const receipt = (await host.callChannel("slack", "send_file", {
      account: "default",
      peer: "C0GENERAL",
      thread: "1700000000.000100",
      file: { data: bytes, mime: "application/pdf", name: "q3 report.pdf", caption: "the report" },
    })) as SendReceipt;
    const [f] = slack.files.slice(-1);
    expect(receipt.platformMessageId).toBe(f!.file_id);
    expect(f).toMatchObject({
      filename: "q3 report.pdf",
      title: "q3 report.pdf",
      type: "application/pdf",
      channel_id: "C0GENERAL",
      initial_comment: "the report",
      thread_ts: "1700000000.000100",
    });
    expect(Buffer.compare(f!.bytes, bytes)).toBe(0);
    expect(f!.uploadAuthorization).toBeUndefined();
    const get = slack.calls.find((c) => c.path === "/api/files.getUploadURLExternal")!;
    expect(get.headers.authorization).toBe(`Bearer ${BOT_TOKEN}`);
    expect(get.json).toEqual({ filename: "q3 report.pdf", length: String(bytes.length) });
  });

  it("a Slack error on completion is a send_file error naming it", async () => {
    await expect(
      host.callChannel("slack", "send_file", {
        account: "default",
        peer: "X-not-a-channel",
        file: { data: Buffer.from("hi"), mime: "text/plain", name: "a.txt" },
      }),
    ).rejects.toThrow(/files.completeUploadExternal failed: channel_not_found/);
  });
});
