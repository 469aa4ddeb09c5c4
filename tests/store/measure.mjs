#!/usr/bin/env node
// Measures the session log back ends: single-event append latency (p50/p99), append throughput,
// and disk bytes per 1,000 turns (6 events each) for embedded surrealkv.
// Usage: node tests/store/measure.mjs [--turns 1000] [--appends 2000]
// Bundles host/src/store with esbuild first (the store is TypeScript).
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const TURNS = arg("turns", 1000);
const APPENDS = arg("appends", 2000);

const repo = resolve(import.meta.dirname, "../..");
const bundleDir = join(repo, `.exoclaw-test-measure-${process.pid}`);
const dataRoot = mkdtempSync(join(tmpdir(), "exoclaw-measure-"));
await build({
  entryPoints: [join(repo, "host/src/store/index.ts")],
  outfile: join(bundleDir, "store.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  logLevel: "error",
});
const store = await import(pathToFileURL(join(bundleDir, "store.mjs")).href);

const key = (i) => store.formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: `user${i}` });
const words = "the quick brown fox jumps over a lazy dog while seven wizards quietly box jackal hounds".split(" ");
const sentence = (n, seed) => Array.from({ length: n }, (_, i) => words[(seed * 7 + i * 13) % words.length]).join(" ");

function dirBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : statSync(p).size;
  }
  return total;
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function latency(log) {
  const lat = [];
  const k = key("lat");
  for (let i = 0; i < APPENDS; i++) {
    const t = performance.now();
    await log.append(k, [{ kind: "assistant_text", data: { text: sentence(20, i) } }]);
    lat.push(performance.now() - t);
  }
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), perSec: APPENDS / (lat.reduce((a, b) => a + b, 0) / 1000) };
}

async function parallelThroughput(log) {
  // 32 sessions appending concurrently, 3-event batches.
  const sessions = 32;
  const rounds = Math.max(1, Math.floor(APPENDS / sessions / 2));
  const t = performance.now();
  await Promise.all(
    Array.from({ length: sessions }, async (_, s) => {
      for (let r = 0; r < rounds; r++) {
        await log.append(key(`par${s}`), [
          { kind: "turn_started", data: { runId: `r${r}` }, runId: `r${r}` },
          { kind: "assistant_text", data: { text: sentence(20, r) }, runId: `r${r}` },
          { kind: "turn_ended", data: { runId: `r${r}`, stopReason: "end_turn" }, runId: `r${r}` },
        ]);
      }
    }),
  );
  const secs = (performance.now() - t) / 1000;
  return { eventsPerSec: (sessions * rounds * 3) / secs, appendsPerSec: (sessions * rounds) / secs };
}

/** One turn as the runtime would record it: the message, then the run in two appends. */
async function writeTurns(log, n) {
  for (let i = 0; i < n; i++) {
    const k = key(i % 50);
    const runId = `run-${i}`;
    await log.append(k, [
      {
        kind: "message_received",
        data: { content: sentence(18, i), channel: "telegram", account: "bot1", peer: `user${i % 50}`, platformMessageId: `pm-${i}` },
        runId,
      },
    ]);
    await log.append(k, [
      { kind: "turn_started", data: { runId }, runId },
      { kind: "tool_use", data: { id: `tu-${i}`, name: "search", input: { query: sentence(4, i) } }, runId },
      { kind: "tool_result", data: { toolUseId: `tu-${i}`, content: sentence(40, i + 1), isError: false }, runId },
    ]);
    await log.append(k, [
      { kind: "assistant_text", data: { text: sentence(60, i + 2) }, runId },
      { kind: "turn_ended", data: { runId, stopReason: "end_turn" }, runId },
    ]);
  }
}

const results = {};
try {
  {
    const log = store.createMemorySessionLog();
    results.memory = { ...(await latency(log)), ...(await parallelThroughput(log)) };
    await log.close();
  }
  {
    const log = await store.createSurrealSessionLog({ url: "mem://" });
    results["surreal mem://"] = { ...(await latency(log)), ...(await parallelThroughput(log)) };
    await log.close();
  }
  {
    const log = await store.createSurrealSessionLog({ url: `surrealkv://${join(dataRoot, "lat")}` });
    results["surreal surrealkv"] = { ...(await latency(log)), ...(await parallelThroughput(log)) };
    await log.close();
  }
  const dir = join(dataRoot, "turns");
  const tOpen = performance.now();
  const log = await store.createSurrealSessionLog({ url: `surrealkv://${dir}` });
  results.open = { freshSurrealkvWithMigrationsMs: performance.now() - tOpen };
  const empty = dirBytes(dir);
  const t = performance.now();
  await writeTurns(log, TURNS);
  const secs = (performance.now() - t) / 1000;
  const t2 = performance.now();
  const hits = await log.search("wizards jackal", { limit: 20 });
  const searchMs = performance.now() - t2;
  const t3 = performance.now();
  const history = await log.readHistory(key(0));
  const historyMs = performance.now() - t3;
  await log.close();
  // surrealkv writes its log asynchronously; give it a moment before measuring.
  await new Promise((r) => setTimeout(r, 1500));
  const bytes = dirBytes(dir) - empty;
  results.disk = {
    turns: TURNS,
    events: TURNS * 6,
    bytes,
    bytesPer1000Turns: Math.round((bytes / TURNS) * 1000),
    bytesPerEvent: Math.round(bytes / (TURNS * 6)),
    turnsPerSec: TURNS / secs,
    searchMs,
    searchHits: hits.length,
    readHistoryMs: historyMs,
    historyEvents: history.length,
  };
} finally {
  rmSync(bundleDir, { recursive: true, force: true });
  rmSync(dataRoot, { recursive: true, force: true });
}

const fmt = (v) => (typeof v === "number" ? (Number.isInteger(v) ? v : Number(v.toFixed(3))) : v);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name}: ${Object.entries(r)
      .map(([k, v]) => `${k}=${fmt(v)}`)
      .join(" ")}`,
  );
}
process.exit(0);
