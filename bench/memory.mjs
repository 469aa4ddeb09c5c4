#!/usr/bin/env node
// `npm run bench:memory`: what memory in context assembly adds to a turn (docs/memory.md).
// In process: AgentRuntime on the memory session log, a scripted in-process provider (no HTTP),
// one peer whose conversation has 10,000 notes stored in its own notebook (the worst case for
// recall: every note is a candidate; notebooks are capped at 1,000 by default, raised here) and
// an earlier session of 400 events (recall over it too). Each turn's message is a 15-word
// question sharing words with many notes. Variants, alternated in blocks in the same run so
// load falls on both alike:
//   baseline  the agent without [agents.memory] (same runtime, same notes stored)
//   memory    the agent with [agents.memory] (budget 1024 tokens): standing notes + BM25 recall
//             over notes and the earlier session, the block put before the message
// Target: memory adds p50 <= 1 ms per turn. Also printed: the assembly call alone (p50/p99).
// Options: --turns N (per variant, default 3000), --block N (turns per alternation, 250),
// --notes N (default 10000).
import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { importSource } from "./lib.mjs";

const { values: opts } = parseArgs({
  options: { turns: { type: "string", default: "3000" }, block: { type: "string", default: "250" }, notes: { type: "string", default: "10000" } },
});
const TURNS = Number(opts.turns);
const BLOCK = Number(opts.block);
const NOTES = Number(opts.notes);

const agentMod = await importSource("host/src/agent/index.ts", "memory-agent");
const storeMod = await importSource("host/src/store/index.ts", "memory-store");
const { AgentRuntime, MemoryService, NoteStore } = agentMod;
const { createMemorySessionLog, formatSessionKey } = storeMod;

// Deterministic text: a 3,000-word vocabulary, Zipf-ish picks (small ids far more often).
let seed = 42;
const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const vocab = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}${"abcdefghij"[i % 10]}`);
const word = () => vocab[Math.floor(vocab.length * rand() ** 3)];
const sentence = (n) => Array.from({ length: n }, word).join(" ");

const silent = { info() {}, warn() {}, error() {}, debug() {}, trace() {}, fatal() {}, child: () => silent };
const log = createMemorySessionLog();
const notes = await NoteStore.open({ maxPerBook: NOTES });
const memory = new MemoryService({ notes, log, logger: silent });
const base = {
  provider: "anthropic",
  model: "m",
  maxIterations: 4,
  maxTokens: 1024,
  tools: ["*"],
  contextWindow: 200000,
  outbound: [],
  queue: { mode: "followup", cap: 32, drop: "new" },
};
const policy = { budgetTokens: 1024, notes: 20, recall: 5, share: "sender", sessionRecall: true };
const provider = {
  name: "anthropic",
  async *stream() {
    yield { type: "text", delta: "Sure." };
    yield { type: "usage", inputTokens: 100, outputTokens: 2 };
    yield { type: "stop", reason: "end_turn" };
  },
};
const runtime = new AgentRuntime({
  agents: [
    { ...base, id: "baseline" },
    { ...base, id: "memory", memory: policy },
  ],
  providers: () => provider,
  plugins: { tools: () => [], callTool: async () => ({ content: "", isError: true }) },
  log,
  logger: silent,
  memory,
});

// Both agents talk to the same peer; each has 10,000 notes and an earlier session of 400 events.
const sessions = {};
for (const agent of ["baseline", "memory"]) {
  const scope = { agent, channel: "telegram", account: "bot", peer: "12345", sender: "12345" };
  for (let i = 0; i < NOTES; i++) await notes.add(scope, sentence(12));
  const key = formatSessionKey({ agent, channel: "telegram", account: "bot", peer: "12345" });
  sessions[agent] = key;
  for (let t = 0; t < 200; t++) {
    const runId = `old-${t}`;
    await log.append(key, [
      { kind: "message_received", runId, data: { content: sentence(15), channel: "telegram", account: "bot", peer: "12345" } },
      { kind: "assistant_text", runId, data: { text: sentence(20) } },
    ]);
  }
  await log.reset(key, "bench");
}

const samples = { baseline: [], memory: [] };
async function turn(agent, i) {
  const t0 = process.hrtime.bigint();
  await runtime.run({ agentId: agent, sessionKey: sessions[agent], content: `${sentence(15)}?` }, () => {});
  samples[agent].push(Number(process.hrtime.bigint() - t0) / 1e6);
  // Keep the current session short (as a real one after compaction): reset every 20 turns.
  if (i % 20 === 19) await runtime.resetSession(sessions[agent], "bench");
}

for (let w = 0; w < 400; w++) await turn(w % 2 ? "memory" : "baseline", w); // warm-up
samples.baseline.length = 0;
samples.memory.length = 0;
for (let done = 0; done < TURNS; done += BLOCK) {
  for (const agent of ["baseline", "memory"]) for (let i = 0; i < BLOCK; i++) await turn(agent, done + i);
}

// The assembly alone (what the turn awaits), over the same data.
const scope = { agent: "memory", channel: "telegram", account: "bot", peer: "12345", sender: "12345" };
const assembly = [];
let items = 0;
let tokens = 0;
for (let i = 0; i < TURNS; i++) {
  const q = `${sentence(15)}?`;
  const t0 = process.hrtime.bigint();
  const out = await memory.assemble(policy, scope, sessions.memory, q);
  assembly.push(Number(process.hrtime.bigint() - t0) / 1e6);
  items += out.items.length;
  tokens += out.tokens;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const load = loadavg()
  .map((l) => l.toFixed(2))
  .join(" ");
const b50 = pct(samples.baseline, 50);
const m50 = pct(samples.memory, 50);
console.log(`memory bench (load ${load}; ${TURNS} turns per variant; ${NOTES} notes in the peer's notebook, 400-event earlier session, 15-word messages)`);
console.log(`  baseline (no [agents.memory])  p50 ${b50.toFixed(3)} ms  p99 ${pct(samples.baseline, 99).toFixed(3)} ms`);
console.log(`  memory (budget 1024 tokens)    p50 ${m50.toFixed(3)} ms  p99 ${pct(samples.memory, 99).toFixed(3)} ms`);
console.log(`  added by memory                p50 ${(m50 - b50).toFixed(3)} ms (target <= 1 ms)`);
console.log(
  `  assembly alone                 p50 ${pct(assembly, 50).toFixed(3)} ms  p99 ${pct(assembly, 99).toFixed(3)} ms; ${(items / TURNS).toFixed(1)} items, ~${Math.round(tokens / TURNS)} tokens per block`,
);
await runtime.close?.();
