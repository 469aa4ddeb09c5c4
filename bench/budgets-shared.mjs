#!/usr/bin/env node
// `npm run bench:budgets-shared`: what the budget ledger shared over NATS KV (`[bus]`, issue 16)
// adds to a turn, against the in-process ledger, on a real nats-server on loopback (started
// here, temporary store). One turn = two model calls through BudgetGuard.meter with 4 limited
// counters (as `bench:budgets`): each call reserves on the 4 counters (a get and a
// compare-and-set put each) and settles on them (the same). Baseline: the same turns with the
// in-process ledger, in the same run (alternating blocks). Then `--concurrency` turns at once on
// the same counters (one process): compare-and-set conflicts are redone, so this shows the cost
// of contention. Options: --turns N (per variant, default 400), --block N (50), --concurrency N (16).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { importSource, startNats } from "./lib.mjs";

const { values: opts } = parseArgs({
  options: { turns: { type: "string", default: "400" }, block: { type: "string", default: "50" }, concurrency: { type: "string", default: "16" } },
});
const TURNS = Number(opts.turns);
const BLOCK = Number(opts.block);
const CONCURRENCY = Number(opts.concurrency);

const budget = await importSource("host/src/agent/budget/index.ts", "budgets");
const nats = await importSource("host/src/bus/nats/index.ts", "bus-nats");
const { BudgetGuard } = budget;

const store = mkdtempSync(join(tmpdir(), "exoclaw-bench-budgets-"));
const server = await startNats();
const bus = await nats.createNatsBus({ servers: server.url, stateDir: join(store, "gw"), instanceId: "bench", connectWaitMs: 10_000 });

const silent = { info() {}, warn() {}, error() {}, debug() {} };
const budgets = { timezone: "Europe/Berlin", warnAt: 0.8, global: { dayUsd: 1e9, monthUsd: 1e9 }, peer: { dayTokens: 1e15 } };
const memoryGuard = new BudgetGuard({ budgets, pricing: {}, logger: silent });
const ledger = new nats.KvBudgetLedger({ bus, warnAt: 0.8 });
const sharedGuard = new BudgetGuard({ budgets, pricing: {}, logger: silent, ledger });
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
const request = { model: "claude-sonnet-4-6", system: "You are a helpful assistant.", messages: history, tools: [], maxTokens: 4096 };
const signal = new AbortController().signal;

async function turn(guard, i) {
  const m = guard.meter(provider, agent, `agent:main:telegram:default:${i % 50}`, `run-${i}`);
  for (let call = 0; call < 2; call++) {
    for await (const ev of m.provider.stream(request, signal)) void ev;
    m.annotate({ type: "usage", data: { inputTokens: 1200, outputTokens: 30 } });
  }
}

try {
  for (let w = 0; w < 20; w++) await turn(w % 2 ? memoryGuard : sharedGuard, w); // warm-up (creates the bucket)
  const ns = { memory: 0, shared: 0 };
  for (let done = 0; done < TURNS; done += BLOCK) {
    for (const [name, guard] of [
      ["memory", memoryGuard],
      ["shared", sharedGuard],
    ]) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < BLOCK; i++) await turn(guard, done + i);
      ns[name] += Number(process.hrtime.bigint() - t0);
    }
  }
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => turn(sharedGuard, 100_000 + i)));
  const concurrentMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
  const memUs = ns.memory / TURNS / 1000;
  const sharedUs = ns.shared / TURNS / 1000;
  console.log(`budgets-shared bench (load ${load}; ${TURNS} turns per variant, 2 model calls each, 4 limited counters; nats-server on loopback)`);
  console.log(`  in-process ledger      ${memUs.toFixed(1)} us/turn`);
  console.log(
    `  NATS KV ledger         ${sharedUs.toFixed(1)} us/turn (${((sharedUs - memUs) / 2 / 1000).toFixed(2)} ms added per model call: 16 round trips, 4 in sequence)`,
  );
  console.log(
    `  ${CONCURRENCY} turns at once      ${concurrentMs.toFixed(1)} ms in all (they share the 2 global counters: updates of a key queue in the process)`,
  );
} finally {
  ledger.close();
  await bus.close();
  await server.stop();
  rmSync(store, { recursive: true, force: true });
}
