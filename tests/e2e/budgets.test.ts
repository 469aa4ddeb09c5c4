// End to end: metering and budgets in a real gateway process against the provider emulator.
// 50 concurrent turns (50 ws peers, so 50 sessions run at once) race an agent's daily USD
// budget: each model call reserves its worst case before it starts, so the recorded spend never
// passes the cap; the refused turns end with -32011. A webhook peer past its own token budget
// gets the failure notice on the platform. `usage.summary` and `exoclaw usage` agree with the
// usage events the clients saw.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../cli/run-cli.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  webhookGrant,
  type ChannelGateway,
  type FakePlatform,
} from "../support/channel-gateway.js";
import { startEmulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway } from "../support/gateway.js";

const SECRET = "test-webhook-secret-0123456789";
/** The racing agent's daily cap, USD. One call's worst case is ~$0.001 (est. input + 50 output tokens at $3/$15 per M). */
const CAP_USD = 0.004;

let platform: FakePlatform;
let gw: ChannelGateway;

beforeAll(async () => {
  platform = await startFakePlatform();
  gw = await startChannelGateway({
    config: {
      agents: [
        { id: "main", provider: "anthropic", model: "claude-sonnet-4-6", max_tokens: 50, tools: [] },
        { id: "racer", provider: "anthropic", model: "claude-sonnet-4-6", max_tokens: 50, tools: [], budget: { day_usd: CAP_USD } },
      ],
      default_agent: "main",
      bindings: [{ agent: "racer", channel: "ws" }],
      budgets: { timezone: "Europe/Berlin", peer: { session_tokens: 250 } },
      channels: { webhook: { allow: ["alice"] } },
      plugins: { grants: { webhook: webhookGrant(`${platform.url}/inbox`) } },
    },
    env: { TEST_WEBHOOK_SECRET: SECRET },
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  await platform?.close();
});

type Outcome = { ok: true; costs: number[] } | { ok: false; code: number; message: string };

describe("budgets through a real gateway", () => {
  it("50 concurrent turns never spend past the agent's daily cap; refused turns end with -32011; usage.summary and exoclaw usage agree", async () => {
    const clients = await Promise.all(Array.from({ length: 5 }, () => RpcClient.connect(gw.gateway.url)));
    const outcomes: Outcome[] = await Promise.all(
      Array.from({ length: 50 }, async (_, i): Promise<Outcome> => {
        const { response, events } = await clients[i % 5]!.call("chat.send", { content: `race ${i} hello`, peer: `racer-${i}` });
        if (response.msg.error) return { ok: false, code: response.msg.error.code, message: response.msg.error.message };
        const usage = events.filter((e) => e.msg.params.type === "usage").map((e) => e.msg.params.data);
        for (const u of usage) expect(u).toMatchObject({ provider: "anthropic", model: "claude-sonnet-4-6" });
        return { ok: true, costs: usage.map((u) => u.costUsd as number) };
      }),
    );
    const ok = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    expect(ok.length).toBeGreaterThan(0);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r).toEqual({
        ok: false,
        code: -32011,
        message: "budget exceeded: the daily spend budget of this agent is used up (it resets at the next midnight, Europe/Berlin)",
      });
    }
    const spent = ok.flatMap((o) => o.costs).reduce((a, b) => a + b, 0);
    expect(spent).toBeGreaterThan(0);
    expect(spent).toBeLessThanOrEqual(CAP_USD);
    // The operator's log line names the counter and the amounts.
    const line = await gw.waitForLog((l) => l.msg === "budget exceeded: model call refused");
    expect(line).toMatchObject({ agent: "racer", unit: "usd", limit: CAP_USD });
    expect(String(line.counter)).toMatch(/^agent:racer\|day:\d{4}-\d{2}-\d{2}$/);

    // One `exceeded` budget event per refused call, in /metrics.
    const metrics = await (await fetch(`${gw.baseUrl}/metrics`)).text();
    expect(metrics).toContain(`exoclaw_budget_events_total{agent="racer",kind="exceeded"} ${refused.length}`);

    // usage.summary counts exactly the calls and cost the clients saw.
    const { response } = await clients[0]!.call("usage.summary", { by: "agent" });
    const summary = response.msg.result;
    const racer = summary.groups.find((g: { key: string }) => g.key === "racer");
    expect(racer.calls).toBe(ok.flatMap((o) => o.costs).length);
    expect(racer.costUsd).toBeCloseTo(spent, 12);
    expect(racer.unpricedCalls).toBe(0);
    // And so does the CLI, asking the same gateway.
    const run = await runCli(["usage", "--by", "agent", "--json", "--since", "1d"], {
      EXOCLAW_CONFIG: gw.configFile,
      EXOCLAW_PORT: String(gw.port),
      EXOCLAW_STATE_DIR: gw.stateDir,
    });
    expect(run.code, run.stderr).toBe(0);
    const cli = JSON.parse(run.stdout);
    expect(cli.groups.find((g: { key: string }) => g.key === "racer")).toEqual(racer);
    const table = await runCli(["usage", "--by", "model"], { EXOCLAW_CONFIG: gw.configFile, EXOCLAW_PORT: String(gw.port), EXOCLAW_STATE_DIR: gw.stateDir });
    expect(table.stdout).toContain("anthropic/claude-sonnet-4-6");
    expect(table.stdout).toMatch(/cost\s+\$0\.\d{6}/);
    for (const c of clients) c.close();
  }, 120_000);

  it("a channel peer past its token budget gets the failure notice on its platform", async () => {
    let notice: { json?: { content?: string } } | undefined;
    for (let i = 0; i < 6 && notice === undefined; i++) {
      const body = JSON.stringify({ peer: "alice", content: `hello number ${i}`, messageId: `b${i}` });
      const answer = await gw.postWebhook("webhook", undefined, body, {
        "content-type": "application/json",
        "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, body)}`,
      });
      expect(answer.status).toBe(200);
      const reply = await platform.waitFor((r) => r.json?.replyTo === `b${i}`, 20_000);
      if (String(reply.json?.content).startsWith("Sorry")) notice = reply;
    }
    expect(notice?.json?.content).toBe("Sorry, your message could not be answered: budget exceeded: the session token budget of this conversation is used up");
    // The notice tells the peer which budget, never the amounts.
    expect(notice?.json?.content).not.toMatch(/\d/);
    await waitUntil(() =>
      gw.gateway.logs.find((l) => l.msg === "budget exceeded: model call refused" && String(l.counter).startsWith("peer:webhook:default:alice|session:")),
    );
  }, 120_000);

  it("spend survives a restart: the ledger is rebuilt from the usage events in the store", async () => {
    const emulator = await startEmulator();
    const state = mkdtempSync(join(tmpdir(), "exoclaw-budget-restart-"));
    const config = join(state, "exoclaw.toml");
    writeFileSync(config, stringify({ agents: [{ id: "main", model: "claude-sonnet-4-6", max_tokens: 50, tools: [], budget: { day_tokens: 400 } }] }));
    const env = { EXOCLAW_STATE_DIR: state, ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url };
    try {
      let gateway = await startGateway(env, ["--config", config]);
      let client = await RpcClient.connect(gateway.url);
      let refusedAt = -1;
      for (let i = 0; i < 10 && refusedAt < 0; i++) {
        const { response } = await client.call("chat.send", { content: `turn ${i}`, peer: "before" });
        if (response.msg.error) {
          expect(response.msg.error.code).toBe(-32011);
          refusedAt = i;
        }
      }
      expect(refusedAt).toBeGreaterThan(0);
      client.close();
      await gateway.stop();

      gateway = await startGateway(env, ["--config", config]);
      client = await RpcClient.connect(gateway.url);
      // The same call as the refused one (same session, same history) is still refused after the
      // restart: the spend before it was rebuilt from the store.
      const { response } = await client.call("chat.send", { content: `turn ${refusedAt}`, peer: "before" });
      expect(response.msg.error).toMatchObject({ code: -32011, message: expect.stringContaining("daily token budget of this agent") });
      expect(gateway.logs.some((l) => l.msg === "budgets: spend rebuilt from the session log" && (l.usageEvents as number) === refusedAt)).toBe(true);
      client.close();
      await gateway.stop();
    } finally {
      await emulator.close();
      rmSync(state, { recursive: true, force: true });
    }
  }, 120_000);
});
