// The plugin host's reports into the real Prometheus metrics (prom-client, parsed with a
// Prometheus text-format parser): calls by plugin and kind, failures by kind, and sandbox
// restarts, from a real misbehaving plugin (plugins/fixtures/faulty, real Wasm in the sandbox).
import { rm } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugins, type PluginHost } from "../../host/src/plugins/index.js";
import { createTelemetry, loadPrometheus, type PromMetrics } from "../../host/src/telemetry/index.js";
import { Scrape } from "../support/metrics.js";
import { buildInto, tempDir } from "../plugins/support.js";

let root = "";
let host: PluginHost;
let metrics: PromMetrics;

beforeAll(async () => {
  root = await tempDir();
  const dir = path.join(root, "plugins");
  await buildInto(dir, ["plugins/fixtures/faulty"]);
  metrics = new (await loadPrometheus()).PromMetrics();
  host = await loadPlugins({ dirs: [dir], telemetry: createTelemetry({ metrics }) });
});

afterAll(async () => {
  await host?.close();
  await rm(root, { recursive: true, force: true });
});

describe("plugin call metrics", () => {
  it("counts calls by plugin and kind, failures by kind, and the instances a crash replaced", async () => {
    expect(await host.callTool("echo", { text: "hi" })).toEqual({ content: "hi", isError: false });
    expect((await host.callTool("fail", {})).isError).toBe(true); // plugin_error: the instance stays
    expect((await host.callTool("trap", {})).isError).toBe(true); // trap: the instance is replaced
    expect((await host.callTool("crash", {})).isError).toBe(true); // abort() is a trap too
    expect((await host.callTool("garbage", {})).isError).toBe(true); // output not MessagePack
    expect((await host.callTool("noop", {})).isError).toBe(true); // no output
    expect(await host.callTool("echo", { text: "still here" })).toEqual({ content: "still here", isError: false });

    const scrape = new Scrape((await metrics.scrape()).body);
    expect(scrape.value("exoclaw_plugin_calls_total", { plugin: "faulty", kind: "tool" })).toBe(7);
    expect(scrape.value("exoclaw_plugin_call_duration_seconds", { plugin: "faulty", kind: "tool" })).toBe(7);
    expect(scrape.value("exoclaw_plugin_call_failures_total", { plugin: "faulty", kind: "tool", failure: "plugin_error" })).toBe(1);
    expect(scrape.value("exoclaw_plugin_call_failures_total", { plugin: "faulty", kind: "tool", failure: "trap" })).toBe(2);
    expect(scrape.value("exoclaw_plugin_call_failures_total", { plugin: "faulty", kind: "tool", failure: "malformed" })).toBe(2);
    expect(scrape.value("exoclaw_sandbox_restarts_total", { plugin: "faulty", reason: "trap" })).toBe(2);
    expect(scrape.value("exoclaw_sandbox_restarts_total")).toBe(2);
  });

  it("does not count a call for a tool that no plugin serves", async () => {
    const before = new Scrape((await metrics.scrape()).body).value("exoclaw_plugin_calls_total");
    expect(await host.callTool("nope", {})).toEqual({ content: "unknown tool 'nope'", isError: true });
    expect(new Scrape((await metrics.scrape()).body).value("exoclaw_plugin_calls_total")).toBe(before);
  });
});
