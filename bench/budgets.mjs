#!/usr/bin/env node
// `npm run bench:budgets` (also run by `npm run bench`): what metering and budget checks add to a
// turn, in process. One turn = two model calls (a tool round trip), each through
// BudgetGuard.meter: the reservation of its worst case on every limited counter (global day and
// month USD, the agent's session USD, the peer's day tokens: 4 counters), the input estimate of
// a 20-message history, the settlement with the real usage, the price of the call and the
// annotation of its usage event. Baseline: the same two calls on the bare provider, in the same
// run (alternating blocks, so machine load falls on both alike). Target: < 50 us per turn.
// host/src/agent/budget is bundled with esbuild into dist/bench-budgets.mjs.
// Options: --turns N (per variant, default 200000), --block N (turns per alternation, 10000).
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { importSource } from "./lib.mjs";

const { values: opts } = parseArgs({ options: { turns: { type: "string", default: "200000" }, block: { type: "string", default: "10000" } } });
const TURNS = Number(opts.turns);
const BLOCK = Number(opts.block);

const budget = await importSource("host/src/agent/budget/index.ts", "budgets");
const { BudgetGuard, MemoryLedger, estimateInputTokens, costUsd } = budget;

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const guard = new BudgetGuard({
  // Limits far above what the bench spends: every call is admitted (the check still runs in full).
  budgets: { timezone: "Europe/Berlin", warnAt: 0.8, global: { dayUsd: 1e9, monthUsd: 1e9 }, peer: { dayTokens: 1e15 } },
  pricing: {},
  logger: silent,
});
const agent = {
  id: "main",
  provider: "anthropic",
  model: "claude-sonnet-4-6",
  maxIterations: 10,
  maxTokens: 4096,
  tools: ["*"],
  contextWindow: 100000,
  outbound: [],
  queue: { mode: "followup", cap: 32, drop: "new" },
  budget: { sessionUsd: 1e9, onExceeded: "stop" },
};
const provider = {
  name: "anthropic",
  async *stream() {
    yield { type: "text", delta: "The answer is 42." };
    yield { type: "usage", inputTokens: 1200, outputTokens: 30 };
    yield { type: "stop", reason: "end_turn" };
  },
};
const history = Array.from({ length: 20 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: [{ type: "text", text: `message ${i} `.repeat(20) }] }));
const tools = [{ name: "calculator", description: "Evaluates arithmetic.", inputSchema: { type: "object", properties: { expression: { type: "string" } } } }];
const request = { model: "claude-sonnet-4-6", system: "You are a helpful assistant.", messages: history, tools, maxTokens: 4096 };
const signal = new AbortController().signal;
const sessionKey = "agent:main:telegram:default:12345";

async function drain(p) {
  for await (const ev of p.stream(request, signal)) void ev;
}

/** A pass-through wrapper: what any provider wrapper costs (telemetry's observeProvider is one). */
const wrapped = {
  name: "anthropic",
  async *stream(req, sig) {
    try {
      for await (const ev of provider.stream(req, sig)) yield ev;
    } finally {
      void 0;
    }
  },
};

/** One turn, two model calls: on the bare provider, through a pass-through wrapper, or metered (usage events annotated). */
async function turn(variant, i) {
  if (variant !== "metered") {
    const p = variant === "bare" ? provider : wrapped;
    await drain(p);
    await drain(p);
    return;
  }
  const m = guard.meter(provider, agent, sessionKey, `run-${i}`);
  await drain(m.provider);
  m.annotate({ type: "usage", data: { inputTokens: 1200, outputTokens: 30 } });
  await drain(m.provider);
  m.annotate({ type: "usage", data: { inputTokens: 1200, outputTokens: 30 } });
}

const VARIANTS = ["bare", "wrapped", "metered"];
const ns = { bare: 0, wrapped: 0, metered: 0 };
for (let w = 0; w < 3000; w++) await turn(VARIANTS[w % 3], w); // warm-up
for (let done = 0; done < TURNS; done += BLOCK) {
  for (const variant of VARIANTS) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < BLOCK; i++) await turn(variant, done + i);
    ns[variant] += Number(process.hrtime.bigint() - t0);
  }
}
const bareUs = ns.bare / TURNS / 1000;
const wrappedUs = ns.wrapped / TURNS / 1000;
const meteredUs = ns.metered / TURNS / 1000;
const addedUs = meteredUs - bareUs;

// The synchronous work alone, per model call: counters, input estimate, reservation, price, settlement.
const ledger = new MemoryLedger(0.8);
const counters = guard.counters(agent, "main", sessionKey, Date.now(), true);
const price = guard.prices.priceOf("anthropic", "claude-sonnet-4-6");
const CALLS = TURNS * 2;
const t0 = process.hrtime.bigint();
for (let i = 0; i < CALLS; i++) {
  const input = estimateInputTokens(request);
  const r = ledger.reserve(counters, { usd: costUsd(price, { inputTokens: input, outputTokens: 4096 }), tokens: input + 4096 });
  ledger.settle(r.id, { usd: costUsd(price, { inputTokens: 1200, outputTokens: 30 }), tokens: 1230 });
}
const syncUs = Number(process.hrtime.bigint() - t0) / CALLS / 1000;
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");
console.log(`budgets bench (load ${load}; ${TURNS} turns per variant, 2 model calls each, 4 limited counters, 20-message history)`);
console.log(`  bare provider          ${bareUs.toFixed(2)} us/turn`);
console.log(`  pass-through wrapper   ${wrappedUs.toFixed(2)} us/turn (the async generator layer alone: ${(wrappedUs - bareUs).toFixed(2)} us)`);
console.log(`  metered + budgeted     ${meteredUs.toFixed(2)} us/turn`);
console.log(`  budget logic alone     ${syncUs.toFixed(2)} us per model call (estimate, reserve on 4 counters, price, settle; no async)`);
console.log(
  `  added by budgets       ${addedUs.toFixed(2)} us/turn (target < 50 us: ${addedUs < 50 ? "met" : "NOT met"}), ${(addedUs / 2).toFixed(2)} us per model call`,
);
