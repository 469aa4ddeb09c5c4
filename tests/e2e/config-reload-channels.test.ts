// Live config reload of what a channel message meets: the channel's allowlist, the bindings and
// the agents. Real gateway process, the first-party webhook channel plugin (real Wasm, approved
// with the CLI), the provider emulator and a fake platform receiving the replies.
import { afterAll, beforeAll, expect, it } from "vitest";
import type { FileConfig } from "../../host/src/config/schema.js";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, webhookGrant, type ChannelGateway, type FakePlatform } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { saveConfig } from "../support/reload-traffic.js";

const SECRET = "test-webhook-secret-0123456789";
const PHONE_TOKEN = "phone-token-0123456789";
let platform: FakePlatform;
let gw: ChannelGateway;

const config = (allow: string[], support: boolean): FileConfig => ({
  agents: [
    { id: "main", provider: "anthropic", model: "emu", system_prompt: "main prompt" },
    ...(support ? [{ id: "support", provider: "anthropic" as const, model: "emu", system_prompt: "support prompt" }] : []),
  ],
  ...(support ? { bindings: [{ agent: "support", channel: "webhook", peer: "bob" }] } : {}),
  // A chat-only client: config.reload is an operator's act (scope admin).
  gateway: { clients: [{ name: "phone", token: PHONE_TOKEN, scopes: ["chat"] }] },
  channels: { webhook: { allow } },
  plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
});

beforeAll(async () => {
  platform = await startFakePlatform();
  gw = await startChannelGateway({ config: config(["alice"], false), env: { TEST_WEBHOOK_SECRET: SECRET } });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await platform?.close();
});

const post = (body: object) => {
  const text = JSON.stringify(body);
  return gw.postWebhook("webhook", undefined, text, { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` });
};

async function counters(client: RpcClient): Promise<Record<string, number>> {
  return (await client.call("status")).response.msg.result.channels.webhook;
}

it("a reload opens the allowlist to a new peer and binds it to a new agent; counters carry on", async () => {
  const admin = await RpcClient.connect(gw.gateway.url);
  expect((await post({ peer: "bob", content: "bob before reload", messageId: "b1" })).status).toBe(200);
  await expect.poll(async () => (await counters(admin)).refused).toBe(1);

  saveConfig(gw.configFile, config(["alice", "bob"], true));
  const result = (await admin.call("config.reload")).response.msg.result;
  // The file watch may have applied it first: then this reload finds nothing new.
  if (result.status === "applied") expect(result.changed).toEqual(expect.arrayContaining(["agents.support", "bindings", "channels.webhook"]));
  else expect(gw.gateway.logs.some((l) => l.msg === "config reloaded" && (l.changed as string[]).includes("channels.webhook"))).toBe(true);

  expect((await post({ peer: "bob", content: "bob after reload", messageId: "b2" })).status).toBe(200);
  const reply = await platform.waitFor((r) => r.json?.peer === "bob" && r.json?.replyTo === "b2", 20_000);
  expect(reply.json.content).toBe("You said: bob after reload");
  const call = gw.emulator.requests.find((q) => JSON.stringify(q.body.messages).includes("bob after reload"));
  expect(call!.body.system).toBe("support prompt");
  expect(await counters(admin)).toMatchObject({ refused: 1, accepted: 1 });
  admin.close();
});

it("config.reload needs scope admin: a chat-only client gets -32010 and nothing is reloaded", async () => {
  const phone = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${PHONE_TOKEN}` });
  const before = gw.gateway.logs.filter((l) => l.trigger === "rpc").length;
  const { response } = await phone.call("config.reload");
  expect(response.msg.error).toMatchObject({ code: -32010 });
  expect(gw.gateway.logs.filter((l) => l.trigger === "rpc")).toHaveLength(before);
  phone.close();
});
