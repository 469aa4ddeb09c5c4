// The long variant of config-reload.test.ts: 20 sessions running turns while the config file is
// rewritten 50 times, valid and invalid alternately (issue 14).
import { afterAll, beforeAll, expect, it } from "vitest";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { reloadConfig, reloadUnderTraffic } from "../support/reload-traffic.js";

let gw: ChannelGateway;

beforeAll(async () => {
  gw = await startChannelGateway({ config: reloadConfig(0, true) });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
});

it("50 rewrites under 20 sessions of traffic: zero failed turns, each turn on one snapshot no older than the last reload, invalid versions ignored", async () => {
  const { turns } = await reloadUnderTraffic(gw, { sessions: 20, rewrites: 50 });
  expect(turns).toBeGreaterThan(100);
}, 180_000);
