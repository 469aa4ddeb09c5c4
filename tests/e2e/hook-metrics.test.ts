// End to end: lifecycle hook metrics on the real gateway process's /metrics. Two real WASM
// fixture hook plugins (plugins/fixtures/hooks-a, hooks-loop), granted and approved with
// `exoclaw plugin approve`, in `[hooks] order`; turns over a real WebSocket against the provider
// emulator. Each hook call is counted by hook, plugin and outcome (allow, deny, rewrite, timeout)
// with its duration, parsed with a Prometheus text-format parser; the values must match the
// calls the turns made.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fixture } from "../plugins/sandbox/support.js";
import { startChannelGateway, type ChannelGateway } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { scrapeMetrics } from "../support/metrics.js";

let gw: ChannelGateway;
let client: RpcClient;
let pluginsDir: string;

beforeAll(async () => {
  pluginsDir = mkdtempSync(join(tmpdir(), "exoclaw-hook-metrics-"));
  for (const name of ["hooks-a", "hooks-loop", "echo"]) writeFileSync(join(pluginsDir, `${name}.wasm`), await fixture(name));
  gw = await startChannelGateway({
    config: {
      hooks: { order: ["hooks-a", "hooks-loop"], timeout_ms: 1_000, fail: "open" },
      plugins: {
        grants: {
          "hooks-a": { hooks: ["before_message", "before_tool_call", "after_tool_call", "before_model_call", "agent_response"] },
          "hooks-loop": { hooks: ["before_tool_call"] },
        },
      },
    },
    approve: [join(pluginsDir, "hooks-a.wasm"), join(pluginsDir, "hooks-loop.wasm")],
    args: ["--plugins-dir", pluginsDir],
  });
  client = await RpcClient.connect(`ws://127.0.0.1:${gw.port}/ws`);
}, 180_000);

afterAll(async () => {
  client?.close();
  await gw?.stop();
  rmSync(pluginsDir, { recursive: true, force: true });
});

const send = async (content: string) => (await client.call("chat.send", { content })).response.msg;

describe("hook metrics on /metrics", () => {
  it("counts each hook call by hook, plugin and outcome, with its duration", async () => {
    // Turn 1: hooks-a vetoes the tool call (deny; hooks-loop is not asked after a denial).
    const vetoed = await send('use:echo {"text":"please veto this"}');
    expect(vetoed.result.text).toContain("vetoed by hooks-a");
    // Turn 2: hooks-a lets the call through (allow), hooks-loop never answers (timeout, fail-open: the call runs).
    const passed = await send('use:echo {"text":"plain words"}');
    expect(passed.result.text).toContain("plain words");
    // Turn 3: before_message rewrites.
    expect((await send("hello hooks")).result.text).toContain("hello (rewritten)");

    const s = await scrapeMetrics(gw.baseUrl);
    const calls = (hook: string, plugin: string, outcome: string) => s.value("exoclaw_hook_calls_total", { hook, plugin, outcome });
    expect(s.type("exoclaw_hook_calls_total")).toBe("COUNTER");
    expect(s.type("exoclaw_hook_call_duration_seconds")).toBe("HISTOGRAM");
    // before_tool_call: one deny, one allow from hooks-a; one timeout from hooks-loop (asked once).
    expect(calls("before_tool_call", "hooks-a", "deny")).toBe(1);
    expect(calls("before_tool_call", "hooks-a", "allow")).toBe(1);
    expect(calls("before_tool_call", "hooks-loop", "timeout")).toBe(1);
    expect(s.value("exoclaw_hook_calls_total", { plugin: "hooks-loop" })).toBe(1);
    // before_message: turns 1 and 2 pass, turn 3 is rewritten.
    expect(calls("before_message", "hooks-a", "allow")).toBe(2);
    expect(calls("before_message", "hooks-a", "rewrite")).toBe(1);
    // before_model_call adds context at each of the 5 model calls (2 + 2 + 1); agent_response rewrites each final text.
    expect(calls("before_model_call", "hooks-a", "rewrite")).toBe(5);
    expect(calls("agent_response", "hooks-a", "rewrite")).toBe(3);
    // after_tool_call ran once (the denied call never ran) and found nothing to redact.
    expect(calls("after_tool_call", "hooks-a", "allow")).toBe(1);
    // Durations: one observation per call; the timed-out call took at least its 1 s limit.
    expect(s.value("exoclaw_hook_call_duration_seconds", { hook: "before_tool_call", plugin: "hooks-a" })).toBe(2);
    const loopSum = s.samples("exoclaw_hook_call_duration_seconds_sum", { hook: "before_tool_call", plugin: "hooks-loop" });
    expect(Number(loopSum[0]?.value)).toBeGreaterThanOrEqual(0.9);
  }, 120_000);
});
