// The `agents` topic of `events.subscribe` (docs/protocol.md) against the real gateway process:
// the Control UI's Agents page is pushed, not polled. The current `agents.list` arrives right
// after subscribing; a config reload that changes an agent pushes the new list (once); a chat
// client is refused like `agents.list` itself.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { reloadConfig, saveConfig } from "../support/reload-traffic.js";

const TOKEN = "agents-push-token-0123456789abcdef";
const CHAT_TOKEN = "agents-push-chat-token-0123456789";

describe("agents topic", () => {
  let gw: ChannelGateway;
  let admin: RpcClient;
  let chat: RpcClient;
  const config = (gen: number) => ({ ...reloadConfig(gen, true), gateway: { clients: [{ name: "bob", token: CHAT_TOKEN, scopes: ["chat" as const] }] } });
  const pushes = (c: RpcClient) => c.received.filter((r) => r.msg.method === "event" && r.msg.params.topic === "agents").map((r) => r.msg.params.data);

  beforeAll(async () => {
    gw = await startChannelGateway({ config: config(1) as never, env: { EXOCLAW_TOKEN: TOKEN } });
    admin = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${TOKEN}` });
    chat = await RpcClient.connect(gw.gateway.url, { authorization: `Bearer ${CHAT_TOKEN}` });
  }, 120_000);

  afterAll(async () => {
    admin?.close();
    chat?.close();
    await gw?.stop();
  });

  it("pushes agents.list on subscribe and again after a config reload changed an agent, not before", async () => {
    const sub = await admin.call("events.subscribe", { topics: ["agents"] }, "msgpack");
    expect(sub.response.msg.result).toEqual({ topics: ["agents"] });
    await waitUntil(() => pushes(admin).length >= 1, 10_000, "the agents snapshot");
    expect(pushes(admin)[0]).toEqual([expect.objectContaining({ id: "main", model: "emu-reload", systemPrompt: "prompt generation 1." })]);
    // Nothing changed: no further push over a few ticks.
    await new Promise((r) => setTimeout(r, 2500));
    expect(pushes(admin)).toHaveLength(1);
    saveConfig(gw.configFile, config(2));
    const reload = await admin.call("config.reload");
    expect(reload.response.msg.result).toMatchObject({ status: "applied" });
    await waitUntil(() => pushes(admin).length >= 2, 10_000, "the reloaded agents pushed");
    expect(pushes(admin)[1]).toEqual([expect.objectContaining({ id: "main", systemPrompt: "prompt generation 2." })]);
    await new Promise((r) => setTimeout(r, 2500));
    expect(pushes(admin)).toHaveLength(2);
  }, 60_000);

  it("refuses a chat client (scope admin, like agents.list)", async () => {
    const { response } = await chat.call("events.subscribe", { topics: ["agents"] });
    expect(response.msg.error).toMatchObject({ code: -32010 });
  });
});
