#!/usr/bin/env node
// `npm run bench:hooks`: what plugin lifecycle hooks cost (host/src/agent/hooks). The real
// plugin host runs the fixture plugins hooks-a (before_message, before_tool_call,
// after_tool_call, before_model_call, agent_response) and echo (the cheapest tool), granted and
// approved. Printed: p50/p99 of one call of each hook (through HookRunner: MessagePack both ways,
// the sandbox worker round trip, the time limit), and of one tool call of `echo` without hooks
// (baseline) and through the tool gate with hooks-a's before_tool_call + after_tool_call, measured
// in alternating blocks of the same run so machine load falls on both alike.
// Options: --calls N (per variant, default 5000), --block N (calls per alternation, 500).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { buildPlugin } from "../scripts/build-plugins.mjs";
import { importSource } from "./lib.mjs";

const { values: opts } = parseArgs({ options: { calls: { type: "string", default: "5000" }, block: { type: "string", default: "500" } } });
const CALLS = Number(opts.calls);
const BLOCK = Number(opts.block);

const h = await importSource("bench/hooks-entry.ts", "hooks");
const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-hooks-"));
const state = join(dir, "state");
const plugins = join(dir, "plugins");
mkdirSync(plugins);
const grants = {
  "hooks-a": { hooks: ["before_message", "before_tool_call", "after_tool_call", "before_model_call", "agent_response"] },
  echo: { clock: true },
};
const approvals = await h.ApprovalStore.open(h.ApprovalStore.pathFor(state));
for (const [name, grant] of Object.entries(grants)) {
  const { wasm } = await buildPlugin(join("plugins", "fixtures", name));
  const file = join(plugins, `${name}.wasm`);
  writeFileSync(file, wasm);
  const { manifest } = await h.inspectPluginFile(file);
  await approvals.add(h.approvalFor(name, h.sha256Hex(wasm), manifest.capabilities, grant).record);
}
const host = await h.loadPlugins({ dirs: [plugins], grants, stateDir: state });
const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {} };
const hooks = h.createLifecycleHooks({ host, config: () => ({ order: ["hooks-a"], timeoutMs: 5_000, fail: "open", plugins: {} }), logger: silent });
const ctx = { agentId: "main", channel: "ws", account: "default", peer: "alice", sender: "alice", sessionKey: "agent:main:ws:default:alice", runId: "r1" };
const signal = new AbortController().signal;

const plain = { specs: [], call: (name, input, s) => host.callTool(name, input, s, ctx) };
const gated = { specs: [], call: (name, input, s) => host.callTool(name, input, s, ctx) };
h.gateToolDispatch(gated, { hooks, ctx });

const variants = {
  "tool call, no hooks (baseline)": () => plain.call("echo", { text: "hello" }, signal, { toolUseId: "t" }),
  "tool call + before/after_tool_call": () => gated.call("echo", { text: "hello" }, signal, { toolUseId: "t" }),
  before_message: () => hooks.beforeMessage(ctx, "hello", signal),
  before_tool_call: () => hooks.beforeToolCall(ctx, "echo", { text: "hello" }, signal),
  after_tool_call: () => hooks.afterToolCall(ctx, "echo", { text: "hello" }, { content: "hello", isError: false }, signal),
  before_model_call: () => hooks.beforeModelCall(ctx, 1, signal),
  agent_response: () => hooks.agentResponse(ctx, "the answer", signal),
};
const samples = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (const fn of Object.values(variants)) for (let i = 0; i < 200; i++) await fn(); // warm-up
for (let done = 0; done < CALLS; done += BLOCK) {
  for (const [name, fn] of Object.entries(variants)) {
    for (let i = 0; i < BLOCK; i++) {
      const t = performance.now();
      await fn();
      samples[name].push(performance.now() - t);
    }
  }
}
const pct = (xs, p) => {
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
};
const us = (ms) => `${(ms * 1000).toFixed(1)} us`;
console.log(
  `hooks bench: ${CALLS} calls per variant, blocks of ${BLOCK}, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (const [name, xs] of Object.entries(samples))
  console.log(`  ${name.padEnd(38)} p50 ${us(pct(xs, 0.5)).padStart(10)}  p99 ${us(pct(xs, 0.99)).padStart(10)}`);
const base = pct(samples["tool call, no hooks (baseline)"], 0.5);
const withHooks = pct(samples["tool call + before/after_tool_call"], 0.5);
console.log(`  the two tool-call hooks add p50 ${us(withHooks - base)} to a tool call (${((withHooks / base - 1) * 100).toFixed(0)}%)`);
await host.close();
rmSync(dir, { recursive: true, force: true });
