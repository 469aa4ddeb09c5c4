import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { fixture } from "../plugins/sandbox/support.js";

let emulator: Emulator;
let gateway: GatewayHandle;
let baseline: number[] = [];

beforeAll(async () => {
  emulator = await startEmulator();
  const plugins = mkdtempSync(join(tmpdir(), "exoclaw-test-plugins-"));
  writeFileSync(join(plugins, "hostile.wasm"), await fixture("hostile"));
  const config = join(plugins, "exoclaw.toml");
  // A short CPU budget keeps the test quick; the limits are per plugin.
  writeFileSync(config, "[plugins.limits.hostile]\ntimeout_ms = 1000\nmemory_mb = 32\nmax_output_bytes = 65536\n");
  gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url }, ["--plugins-dir", plugins, "--config", config]);
  // Warm up (SDK import, first worker of each plugin) so the figures below are steady state.
  const client = await RpcClient.connect(gateway.url);
  await client.call("chat.send", { content: "use:count", peer: "warmup" });
  const t = performance.now();
  const stop = new Promise((r) => setTimeout(r, 500));
  baseline = await bystander(client, stop);
  console.log(
    `baseline: ${baseline.length} bystander turns in ${(performance.now() - t).toFixed(0)} ms, p50 ${p(baseline, 0.5).toFixed(1)} ms, max ${Math.max(...baseline).toFixed(1)} ms`,
  );
  client.close();
});
afterAll(async () => {
  await gateway?.stop();
  await emulator?.close();
});

/**
 * Runs calculator turns on another session back to back until `until` settles, and returns
 * their latencies (ms). Every one of them must succeed.
 */
async function bystander(client: RpcClient, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const latencies: number[] = [];
  while (!done) {
    const t = performance.now();
    const { response } = await client.call("chat.send", { content: "what is 6 * 7?", peer: "bystander" });
    expect(response.msg.result?.text).toBe("The answer is 42.");
    latencies.push(performance.now() - t);
  }
  return latencies;
}

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

describe("a hostile plugin in a chat turn fails that tool call; other sessions carry on", () => {
  it.each([
    // Limits: the call fails with an error result naming the limit.
    ["loop", "", true, /exceeded its time limit of 1000 ms/],
    // A refused memory.grow is not observable from outside; the sandbox names the memory limit
    // when the guest traps with its memory nearly full, else it reports the trap.
    ["membomb", "", true, /memory limit of 32 MiB|crashed on tool .membomb./],
    ["huge_output", "", true, /too much output for tool .huge_output.: the output is 8388608 bytes, over the plugin.s limit of 65536 bytes/],
    ["trap", "", true, /crashed on tool 'trap'/],
    ["bad_output", "", true, /malformed output/],
    // Not approved, so the plugin runs with pure computation only: every host call is denied
    // with a clear message (the plugin reports it as its own result).
    ["http_denied", "", false, /capability 'http' is not granted/],
    ["fs_escape", ' {"paths": ["/data/../../etc/passwd", "/etc/passwd"]}', false, /capability 'fs' is not granted/],
    ["kv_quota", "", false, /capability 'kv' is not granted/],
    ["secret_read", "", false, /capability 'config' is not granted/],
  ] as const)("%s", async (tool, input, isError, reason) => {
    const attacker = await RpcClient.connect(gateway.url);
    const other = await RpcClient.connect(gateway.url);
    const t0 = performance.now();
    const turn = attacker.call("chat.send", { content: `use:${tool}${input}`, peer: `attacker-${tool}` });
    const latencies = await bystander(other, turn);
    const { response, events } = await turn;
    const elapsed = performance.now() - t0;

    // The hostile call became an error tool_result for the model; the turn itself completed.
    const result = events.map((e) => e.msg.params).find((e) => e.type === "tool_result");
    expect(result.data.isError).toBe(isError);
    expect(result.data.content).toMatch(reason);
    expect(result.data.content).not.toMatch(/root:/); // nothing of /etc/passwd came back
    expect(response.msg.result.text).toMatch(/^The answer is /);
    expect(elapsed).toBeLessThan(5_000);

    console.log(
      `${tool}: hostile turn ${elapsed.toFixed(0)} ms; ${latencies.length} bystander turns meanwhile, p50 ${p(latencies, 0.5).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (baseline p50 ${p(baseline, 0.5).toFixed(1)} ms)`,
    );
    expect(latencies.length).toBeGreaterThan(0);
    // Not stalled: a blocked event loop would hold a bystander turn for the whole hostile call.
    // The bound is loose because CI runs other suites on the same two cores.
    expect(Math.max(...latencies)).toBeLessThan(Math.max(1_000, 4 * Math.max(...baseline)));
    if (tool === "loop") expect(latencies.length).toBeGreaterThanOrEqual(3);

    // The plugin's instance was recycled: the next call works.
    const again = await attacker.call("chat.send", { content: "use:count", peer: `attacker-${tool}-after` });
    const next = again.events.map((e) => e.msg.params).find((e) => e.type === "tool_result");
    expect(next.data.isError).toBe(false);
    attacker.close();
    other.close();
  });
});
