// End to end: scheduled work in the real gateway process (docs/automation.md). A `[[cron]]` job
// every second delivers to the fake Telegram Bot API; a restart in the middle neither loses nor
// doubles a run (each slot is one turn, keyed by its slot, delivered once); a heartbeat whose
// model answers NO_REPLY sends nothing and only counts a metric; a reminder set by the model
// through the `remind` tool arrives once, also when the gateway was down at its time.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { runCli } from "../cli/run-cli.js";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { deliverTelegramUpdate, startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";

const SECRET_TOKEN = "e2e-Automation-secret_token";
const ALICE = 4242;
const ENV = { E2E_TG_BOT: "", E2E_TG_SECRET: SECRET_TOKEN };
const TICK = "agent:main:cron:default:tick";

let tg: FakeTelegram;
let gw: ChannelGateway;
let current: GatewayHandle;
const extra: GatewayHandle[] = [];

const ticks = () => tg.sent.filter((s) => s.text === "You said: tick report").length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A counter of `/metrics`: `exoclaw_scheduled_runs_total{kind,outcome}`. */
async function scheduledRuns(kind: string, outcome: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${current.port}/metrics`)).text();
  return Number(new RegExp(`exoclaw_scheduled_runs_total\\{kind="${kind}",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
}
const cronSkipped = () => scheduledRuns("cron", "skipped");

/** Restarts the gateway on the same state directory and config (SIGTERM, then a new process). */
async function restart(downMs: number): Promise<void> {
  await current.stop();
  await sleep(downMs);
  current = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
    "--config",
    gw.configFile,
  ]);
  extra.push(current);
}

beforeAll(async () => {
  tg = await startFakeTelegram();
  ENV.E2E_TG_BOT = tg.token;
  gw = await startChannelGateway({
    config: {
      agents: [
        {
          id: "main",
          provider: "anthropic",
          model: "emu-automation",
          tools: ["remind"],
          outbound: [`telegram:${ALICE}`],
          heartbeat: { every: "2s", prompt: "ANSWER_NO_REPLY heartbeat check", deliver: { channel: "telegram", peer: String(ALICE) } },
        },
      ],
      cron: [{ id: "tick", every: "1s", prompt: "tick report", deliver: { channel: "telegram", peer: String(ALICE) }, missed: "run_once" }],
      channels: { telegram: { allow: [String(ALICE)] } },
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
    } as never,
    env: ENV,
  });
  current = gw.gateway;
}, 60_000);

afterAll(async () => {
  for (const g of extra) await g.stop().catch(() => {});
  await gw?.stop();
  await tg?.close();
});

describe("scheduled work through the gateway", () => {
  it("a job every second runs 10 times (±1) in 10 s, each reply delivered to Telegram", async () => {
    await waitUntil(() => ticks() > 0, 20_000, "the first scheduled reply");
    const start = ticks();
    const skippedBefore = await cronSkipped();
    await sleep(10_000);
    const runs = ticks() - start;
    // A slot that comes due while the previous run still goes (a loaded machine) is skipped and
    // counted, never queued: fired slots are the runs plus those.
    const fired = runs + (await cronSkipped()) - skippedBefore;
    expect(fired).toBeGreaterThanOrEqual(9);
    expect(fired).toBeLessThanOrEqual(11);
    expect(runs).toBeGreaterThanOrEqual(5);
    expect(tg.sent.find((s) => s.text === "You said: tick report")).toMatchObject({ chat_id: ALICE });
  }, 40_000);

  it("a restart in the middle neither loses nor doubles a run: one turn per slot, one delivery per turn", async () => {
    await restart(2500);
    await waitUntil(() => ticks() > 0, 20_000, "the restarted gateway is up");
    await sleep(3000);
    const client = await RpcClient.connect(current.url);
    try {
      const history = await client.call("chat.history", { sessionKey: TICK, limit: 1000 });
      const events = history.response.msg.result.events as { kind: string; data: { idempotencyKey?: string; channel?: string } }[];
      const received = events.filter((e) => e.kind === "message_received");
      const keys = received.map((e) => e.data.idempotencyKey);
      // Every run is its own slot (no slot twice), marked as scheduled in the session log.
      expect(new Set(keys).size).toBe(keys.length);
      expect(received.every((e) => e.data.channel === "cron" && /^cron:tick:\d+$/.test(e.data.idempotencyKey ?? ""))).toBe(true);
      const ended = events.filter((e) => e.kind === "turn_ended").length;
      // Sent after the history read: the deliveries of the turns in it (a turn may be running now).
      const sent = ticks();
      expect(sent).toBeGreaterThanOrEqual(ended - 1);
      expect(sent).toBeLessThanOrEqual(ended + 1);
      // Slots are whole seconds on one grid, each at most once (a slot may be skipped, and
      // counted as skipped, when the previous run is still going on a loaded machine; the 2.5 s
      // downtime's slots collapse into one catch-up run, missed = run_once: unit-tested).
      const slots = keys.map((k) => Number(k!.split(":")[2])).sort((a, b) => a - b);
      expect(slots.every((s, i) => s % 1000 === 0 && (i === 0 || s - slots[i - 1]! >= 1000))).toBe(true);
    } finally {
      client.close();
    }
  }, 60_000);

  it("a heartbeat answered NO_REPLY sends nothing and logs nothing, only counts a metric", async () => {
    const silentRuns = () => scheduledRuns("heartbeat", "silent");
    let silent = 0;
    for (let i = 0; i < 50 && silent === 0; i++) {
      silent = await silentRuns();
      if (silent === 0) await sleep(200);
    }
    expect(silent, JSON.stringify(current.logs.filter((l) => l.job === "heartbeat-main"))).toBeGreaterThan(0);
    expect(tg.sent.some((s) => s.text.includes("NO_REPLY") || s.text.includes("heartbeat"))).toBe(false);
    expect(current.logs.some((l) => l.job === "heartbeat-main")).toBe(false);
  }, 30_000);

  it("a reminder set by the model for +3 s is delivered once, also when the gateway was down at its time", async () => {
    const hook = `http://127.0.0.1:${current.port}/webhook/telegram`;
    const set = (text: string, id: number) =>
      deliverTelegramUpdate(
        hook,
        telegramUpdate({ chatId: ALICE, text: `use:remind {"action":"set","in_seconds":3,"text":"${text}"}`, messageId: id }),
        SECRET_TOKEN,
      );
    expect((await set("water the plants", 301)).status).toBe(200);
    await waitUntil(() => tg.sent.some((s) => s.text === "water the plants"), 20_000, "the reminder");
    expect((await set("call mum", 302)).status).toBe(200);
    // The tool's answer went back to Alice: the reminder is stored; now the gateway goes down past its time.
    await waitUntil(() => tg.sent.some((s) => s.text.includes('"follow_up":false') && s.text.includes("The answer is")), 20_000, "the remind tool's answer");
    await restart(4000);
    await waitUntil(() => tg.sent.some((s) => s.text === "call mum"), 20_000, "the reminder after the restart");
    await sleep(2000);
    expect(tg.sent.filter((s) => s.text === "water the plants")).toHaveLength(1);
    expect(tg.sent.filter((s) => s.text === "call mum")).toHaveLength(1);
    expect(tg.sent.find((s) => s.text === "call mum")).toMatchObject({ chat_id: ALICE });
  }, 90_000);
});

describe("exoclaw cron", () => {
  /** The CLI against the running gateway's config, state directory and port. */
  const cli = (args: string[]) =>
    runCli([...args, "-c", gw.configFile], { EXOCLAW_STATE_DIR: gw.stateDir, EXOCLAW_PORT: String(current.port), ...ENV, ANTHROPIC_API_KEY: "sk-test" });

  it("lists the configured jobs; adds, runs and removes a runtime job; refuses bad input naming it", async () => {
    const list = await cli(["cron", "list", "--json"]);
    expect(list.code, list.stderr).toBe(0);
    const jobs = JSON.parse(list.stdout) as { id: string; kind: string; source: string; runs: number }[];
    expect(jobs.map((j) => `${j.id}/${j.kind}/${j.source}`).sort()).toEqual(["heartbeat-main/heartbeat/config", "tick/cron/config"]);

    const add = await cli([
      "cron",
      "add",
      "weekly",
      "--cron",
      "0 9 * * 1",
      "--tz",
      "Europe/Berlin",
      "--prompt",
      "weekly digest",
      "--deliver",
      `telegram:${ALICE}`,
    ]);
    expect(add.code, add.stderr).toBe(0);
    expect(add.stdout).toMatch(/^added weekly: cron 0 9 \* \* 1 \(Europe\/Berlin\), next run 20\d\d-/);
    const run = await cli(["cron", "run", "weekly"]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe("weekly: delivered");
    await waitUntil(() => tg.sent.some((s) => s.text === "You said: weekly digest"), 20_000, "the weekly digest");
    const table = await cli(["cron", "list"]);
    expect(table.stdout).toMatch(/weekly\s+cron\s+main\s+cron 0 9 \* \* 1 \(Europe\/Berlin\)/);

    const bad = await cli(["cron", "add", "broken", "--cron", "61 * * * *", "--prompt", "x"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cron: invalid cron expression "61 \* \* \* \*"/);
    const configured = await cli(["cron", "remove", "tick"]);
    expect(configured.code).toBe(1);
    expect(configured.stderr).toMatch(/comes from the configuration file/);
    const removed = await cli(["cron", "remove", "weekly"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await cli(["cron", "remove", "weekly"])).stderr).toMatch(/no scheduled job "weekly"/);
  }, 60_000);
});
