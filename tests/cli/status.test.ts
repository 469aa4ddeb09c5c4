/**
 * `exoclaw status`, `exoclaw channels list|status` and `exoclaw doctor` against a real running
 * gateway (webhook channel, provider emulator) after a WebSocket chat turn and a channel message:
 * the counts the commands print match the turns made. And the clear error when no gateway runs.
 */
import { DEFAULT_ON_DISK_ENGINE } from "../../host/src/store/index.js";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hmacSha256Hex, startChannelGateway, startFakePlatform, webhookGrant, type ChannelGateway, type FakePlatform } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { runCli } from "./run-cli.js";

const SECRET = "test-webhook-secret-0123456789";
let gw: ChannelGateway;
let platform: FakePlatform;

beforeAll(async () => {
  platform = await startFakePlatform();
  gw = await startChannelGateway({
    config: {
      channels: { webhook: { allow: ["alice"] } },
      plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
    },
    env: { TEST_WEBHOOK_SECRET: SECRET },
  });
  // One WebSocket turn that calls the calculator once, one channel message answered on the platform.
  const client = await RpcClient.connect(gw.gateway.url);
  const turn = (await client.call("chat.send", { content: "what is 6 * 7?" })).response.msg;
  expect(turn.result.text).toBe("The answer is 42.");
  client.close();
  const body = JSON.stringify({ peer: "alice", content: "hello", messageId: "m1" });
  const answer = await gw.postWebhook("webhook", undefined, body, {
    "content-type": "application/json",
    "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, body)}`,
  });
  expect(answer.status).toBe(200);
  await platform.waitFor((r) => r.json?.replyTo === "m1", 20_000);
}, 60_000);
afterAll(async () => {
  await gw?.stop();
  await platform?.close();
});

/** The CLI against the running gateway's config, state directory and port. */
const cli = (args: string[], env: Record<string, string> = {}) =>
  runCli([...args, "-c", gw.configFile], {
    EXOCLAW_STATE_DIR: gw.stateDir,
    EXOCLAW_PORT: String(gw.port),
    ANTHROPIC_API_KEY: "sk-test",
    ANTHROPIC_BASE_URL: gw.emulator.url,
    ...env,
  });

describe("exoclaw status", () => {
  it("--json: uptime, transport, agents, plugin calls and p99, channel counters, sessions, bus, store", async () => {
    const r = await cli(["status", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.pid).toBe(gw.gateway.proc.pid);
    expect(s.uptimeMs).toBeGreaterThan(0);
    expect(["uws", "ws"]).toContain(s.transport);
    expect(s.agents).toEqual([{ id: "main", provider: "anthropic", model: "claude-sonnet-4-6", default: true }]);
    const calculator = s.pluginStats.find((p: { name: string }) => p.name === "calculator");
    expect(calculator).toMatchObject({ kind: "tool", status: "loaded", calls: 1, errors: 0 });
    expect(calculator.p99Ms).toBeGreaterThan(0);
    // The webhook plugin parsed one message and sent one reply (plus whatever else it exports were called).
    expect(s.pluginStats.find((p: { name: string }) => p.name === "webhook").calls).toBeGreaterThanOrEqual(2);
    expect(s.channels.webhook).toMatchObject({ received: 1, accepted: 1, refused: 0, answered: 1 });
    expect(s.sessions).toBe(2);
    expect(s.bus).toBeNull();
    expect(s.store).toBe(`${DEFAULT_ON_DISK_ENGINE}://${gw.stateDir}/data`);
  });

  it("prints tables with the same counts", async () => {
    const r = await cli(["status"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`gateway   ws://127.0.0.1:${gw.port}/ws (pid ${gw.gateway.proc.pid}`);
    expect(r.stdout).toMatch(new RegExp(`^store {5}${DEFAULT_ON_DISK_ENGINE}://.* \\(2 session\\(s\\)\\)$`, "m"));
    expect(r.stdout).toMatch(/^main +anthropic +claude-sonnet-4-6 +yes$/m);
    expect(r.stdout).toMatch(/^calculator +tool +loaded +1 +0 +[\d.]+ +[\d.]+$/m);
    expect(r.stdout).toMatch(/^webhook +1 +1 +0 +1 +0 +0$/m);
  });

  it("no gateway: exit 1 naming the URL tried", async () => {
    const port = await closedPort();
    const r = await cli(["status"], { EXOCLAW_PORT: String(port) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`exoclaw: no gateway answers at ws://127.0.0.1:${port}/ws`);
  });
});

describe("exoclaw channels", () => {
  it("list: plugin, accounts, allowlist, secrets set y/n (never the value), live counters", async () => {
    const r = await cli(["channels", "list"], { TEST_WEBHOOK_SECRET: SECRET });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^CHANNEL +PLUGIN +MODE +ACCOUNTS +ALLOW +SECRETS +RECEIVED +ACCEPTED +REFUSED +ANSWERED +SEND FAILURES$/m);
    expect(r.stdout).toMatch(/^webhook +webhook +webhook +default +alice +WEBHOOK_SECRET=y +1 +1 +0 +1 +0$/m);
    expect(r.stdout).not.toContain(SECRET);
    const unset = await cli(["channels", "list", "--json"]);
    expect(JSON.parse(unset.stdout).channels[0]).toMatchObject({
      name: "webhook",
      plugin: "webhook",
      secrets: { WEBHOOK_SECRET: false },
      counters: { answered: 1 },
    });
  });

  it("list without a gateway: the configuration, and a note on stderr; status fails naming the URL", async () => {
    const port = await closedPort();
    const list = await cli(["channels", "list"], { EXOCLAW_PORT: String(port) });
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/^webhook +webhook +webhook +default +alice +WEBHOOK_SECRET=n$/m);
    expect(list.stderr).toContain(`no live counters: no gateway answers at ws://127.0.0.1:${port}/ws`);
    const status = await cli(["channels", "status"], { EXOCLAW_PORT: String(port) });
    expect(status.code).toBe(1);
    expect(status.stderr).toContain(`no gateway answers at ws://127.0.0.1:${port}/ws`);
  });
});

describe("exoclaw doctor with the gateway running", () => {
  it("names the gateway's pid as the store's lock holder, and the port as served by it", async () => {
    const r = await cli(["doctor", "--json"], { TEST_WEBHOOK_SECRET: SECRET });
    const report = JSON.parse(r.stdout) as { findings: { check: string; severity: string; message: string }[] };
    const store = report.findings.find((f) => f.check === "store")!;
    expect(store.severity).toBe("ok");
    expect(store.message).toContain(`is open in the running gateway, pid ${gw.gateway.proc.pid}`);
    expect(report.findings.find((f) => f.check === "port")).toMatchObject({ severity: "ok", message: `127.0.0.1:${gw.port} is served by the running gateway` });
  });

  it("another process holding the store (no gateway on the configured port): error naming its pid", async () => {
    const port = await closedPort();
    const r = await cli(["doctor", "--json"], { TEST_WEBHOOK_SECRET: SECRET, EXOCLAW_PORT: String(port) });
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout) as { findings: { check: string; severity: string; message: string; fix?: string }[] };
    const store = report.findings.find((f) => f.check === "store")!;
    expect(store.severity).toBe("error");
    expect(store.message).toContain(`is locked by another process, pid ${gw.gateway.proc.pid}`);
    expect(store.fix).toContain(`kill ${gw.gateway.proc.pid}`);
  });
});

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
