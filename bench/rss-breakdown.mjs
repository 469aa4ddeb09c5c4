#!/usr/bin/env node
// `node bench/rss-breakdown.mjs [--stores rocksdb,surrealkv,memory] [--sessions N] [--snapshots DIR] [--env K=V,...]`
//
// Where a gateway's RSS is, at three stages: ready (+1 s), after `bench:persistence`'s load (100
// warm-up + `--turns` sequential turns, then 50 sessions for `--seconds` over 10 connections) and,
// with `--sessions N`, after `bench:scale`'s N one-turn sessions (50 in flight). At each stage it
// reads /proc/<pid>/smaps and the gateway's V8 figures (bench/rss-probe.mjs, preloaded, answers
// SIGUSR2) and prints RSS split into:
//   - file-backed: node's text and data, the SurrealDB binding (.node), other files;
//   - V8 heap: committed bytes of V8's spaces (getHeapSpaceStatistics; code space included);
//   - glibc malloc: the main arena ([heap]), the thread arenas (64 MiB-aligned reservations), and
//     chunks mmapped on their own (malloc of >= 32 MiB, e.g. RocksDB's lock buckets);
//   - thread stacks; the rest of the anonymous memory (V8's large objects and its other pages,
//     libuv, uWS, ...).
// With `--snapshots DIR` it also writes a heap snapshot at ready and after the load (a full GC
// each: the RSS of the stages after the first is then not the bench's; use a run without it for
// RSS figures) and prints their constructor diff (bench/heap-diff.mjs does the same for two files).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, cpuMs, spawnUntil, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    stores: { type: "string", default: "rocksdb,memory" },
    turns: { type: "string", default: "1000" },
    seconds: { type: "string", default: "5" },
    sessions: { type: "string", default: "0" },
    snapshots: { type: "string" },
    env: { type: "string", default: "" },
    root: { type: "string", default: ROOT },
    json: { type: "boolean", default: false },
    // Diagnostic: after the last stage, call glibc's malloc_trim(0) in the gateway through gdb and
    // measure again: what glibc held free (returned now) vs what is allocated.
    "trim-gdb": { type: "boolean", default: false },
  },
});
const log = (s) => process.stderr.write(`${s}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MiB = 1024 * 1024;
const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

/** /proc/<pid>/smaps as [{start, end, perms, path, kb: {Size, Rss, Anonymous, ...}}]. */
export function readSmaps(pid) {
  const out = [];
  let cur;
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      cur = { start: BigInt(`0x${head[1]}`), end: BigInt(`0x${head[2]}`), perms: head[3], path: head[4], kb: {} };
      out.push(cur);
      continue;
    }
    const kv = /^(\w+):\s+(\d+) kB/.exec(line);
    if (kv && cur) cur.kb[kv[1]] = Number(kv[2]);
  }
  return out;
}

const ARENA = 64n * BigInt(MiB);

/** Splits smaps into categories, bytes of RSS each; `big` lists the large anonymous mappings. */
export function classify(maps) {
  const cat = {};
  const add = (k, kb) => (cat[k] = (cat[k] ?? 0) + kb * 1024);
  const big = [];
  for (let i = 0; i < maps.length; i++) {
    const m = maps[i];
    const rss = m.kb.Rss ?? 0;
    if (m.path.startsWith("/")) {
      const name = m.path.includes("surrealdb-node") ? "file: SurrealDB binding (.node)" : /\/node$/.test(m.path) ? "file: node binary" : "file: other";
      // A file mapping's private dirty pages (relocations, .data, .bss-like) are anonymous memory.
      add(name, rss - (m.kb.Anonymous ?? 0));
      if (m.kb.Anonymous) add(`${name.replace("file: ", "file data (anon): ")}`, m.kb.Anonymous);
      continue;
    }
    if (m.path === "[heap]") {
      add("glibc main arena ([heap])", rss);
      continue;
    }
    if (m.path === "[stack]") {
      add("thread stacks", rss);
      continue;
    }
    if (m.path.startsWith("[")) {
      add("other ([vdso] ...)", rss);
      continue;
    }
    const size = Number(m.end - m.start);
    const next = maps[i + 1];
    const prev = maps[i - 1];
    const isArena =
      m.perms.startsWith("rw") &&
      m.start % ARENA === 0n &&
      ((next && next.start === m.end && next.perms.startsWith("---") && next.end - m.start === ARENA) || size === Number(ARENA));
    const guarded = prev && prev.end === m.start && prev.perms.startsWith("---") && Number(prev.end - prev.start) <= 64 * 1024;
    let kind;
    if (m.perms.startsWith("---")) kind = "reserved (no access)";
    else if (isArena) kind = "glibc thread arenas";
    else if (guarded && size >= 2 * MiB && size <= 16 * MiB && (m.kb.Rss ?? 0) < size / 1024) kind = "thread stacks";
    else kind = "anon: other";
    add(kind, rss);
    if (rss >= 1024 && kind !== "glibc thread arenas") big.push({ kind, sizeKb: size / 1024, rssKb: rss, at: `0x${m.start.toString(16)}` });
  }
  return { cat, big: big.sort((a, b) => b.rssKb - a.rssKb) };
}

/** Asks the probe for its figures (and a heap snapshot to `snapshot`), resolves with them. */
async function probe(pid, file, snapshot) {
  const before = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).length : 0;
  if (snapshot) writeFileSync(`${file}.snapshot`, snapshot);
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 600; i++) {
    await sleep(50);
    const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
    if (lines.length > before) return JSON.parse(lines[lines.length - 1]);
  }
  throw new Error("the probe did not answer");
}

/** One stage: RSS by category, V8 figures. */
async function stage(pid, file, name, snapshot) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)[1]) * 1024;
  const { cat, big } = classify(readSmaps(pid));
  const p = await probe(pid, file, snapshot);
  const v8committed = Object.values(p.spaces).reduce((s, x) => s + x.physical, 0);
  return {
    name,
    rss,
    cat,
    big,
    v8: {
      committed: v8committed,
      used: p.heap.used_heap_size,
      total: p.mem.heapTotal,
      external: p.mem.external,
      arrayBuffers: p.mem.arrayBuffers,
      malloced: p.heap.malloced_memory,
      peakMalloced: p.heap.peak_malloced_memory,
      spaces: p.spaces,
    },
  };
}

/** Processes this bench started: stopped when it is interrupted, so no gateway or emulator outlives it. */
const children = new Set();
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    for (const c of children) c.kill("SIGTERM");
    process.exit(130);
  });
}

async function pool(total, concurrency, job) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await job(next++);
    }),
  );
}

const message = (i) => `message ${i}: tell me something about the weather in a city of your choice, in one sentence`;

async function measure(store, providerUrl) {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-rss-"));
  const file = join(state, "probe.jsonl");
  const extra = Object.fromEntries(
    opts.env
      .split(",")
      .filter(Boolean)
      .map((kv) => kv.split("=")),
  );
  const env = {
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_LOG_LEVEL: "info",
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: providerUrl,
    EXOCLAW_TRANSPORT: "uws",
    EXOCLAW_RSS_PROBE: file,
    EXOCLAW_STORE: store === "memory" ? "memory" : `${store}://${join(state, "data")}`,
    ...extra,
  };
  const gw = await spawnUntil(
    ["--import", join(ROOT, "bench/rss-probe.mjs"), join(opts.root, "bin/exoclaw.js"), "gateway", "--port", "0"],
    env,
    (l) => (l.msg === "gateway ready" ? l : undefined),
    60_000,
  );
  const pid = gw.proc.pid;
  children.add(gw.proc);
  const snap = (n) => (opts.snapshots ? join(opts.snapshots, `${store}-${n}.heapsnapshot`) : undefined);
  const stages = [];
  try {
    await sleep(1000);
    stages.push(await stage(pid, file, "ready", snap("ready")));
    const url = `ws://127.0.0.1:${gw.value.port}/ws`;
    const conn = await connect(url);
    const turns = Number(opts.turns);
    for (let i = 0; i < Math.min(100, turns / 5); i++) await conn.send(message(i), `warm-${Math.floor(i / 20)}`);
    const cpu0 = cpuMs(pid);
    const t0 = performance.now();
    const lat = [];
    for (let i = 0; i < turns; i++) {
      const t = performance.now();
      await conn.send(message(i), `seq-${Math.floor(i / 20)}`);
      lat.push(performance.now() - t);
    }
    const seqCpu = (cpuMs(pid) - cpu0) / turns;
    conn.close();
    const conns = await Promise.all(Array.from({ length: 10 }, () => connect(url)));
    let done = 0;
    const cpu1 = cpuMs(pid);
    const stopAt = performance.now() + Number(opts.seconds) * 1000;
    const t1 = performance.now();
    await Promise.all(
      Array.from({ length: 50 }, async (_, w) => {
        for (let i = 0; performance.now() < stopAt; i++) {
          await conns[w % 10].send(message(i), `load-${w}-${Math.floor(i / 20)}`);
          done++;
        }
      }),
    );
    const rate = done / ((performance.now() - t1) / 1000);
    const loadCpu = (cpuMs(pid) - cpu1) / done;
    lat.sort((a, b) => a - b);
    stages.push({ ...(await stage(pid, file, "after load", snap("load"))), p50: lat[Math.floor(lat.length / 2)], seqCpu, rate, loadCpu });
    const sessions = Number(opts.sessions);
    if (sessions > 0) {
      const c0 = cpuMs(pid);
      const t2 = performance.now();
      await pool(sessions, 50, (i) => conns[i % 10].send("ping", `s-${i}`));
      stages.push({
        ...(await stage(pid, file, `after ${sessions} sessions`, snap("sessions"))),
        sessionCpu: (cpuMs(pid) - c0) / sessions,
        sessionRate: sessions / ((performance.now() - t2) / 1000),
      });
    }
    if (opts["trim-gdb"]) {
      execFileSync("gdb", ["-p", String(pid), "-batch", "-ex", "call (int) malloc_trim(0)"], { stdio: "ignore" });
      stages.push(await stage(pid, file, "after malloc_trim(0)"));
    }
    conns.forEach((c) => c.close());
    if (store === "rocksdb") {
      // Flushes write SSTables numbered in order: their count and size say how often memtables were flushed.
      const sst = readdirSync(join(state, "data")).filter((n) => n.endsWith(".sst"));
      const bytes = sst.reduce((s, n) => s + statSync(join(state, "data", n)).size, 0);
      stages[stages.length - 1].sst = `${sst.length} SSTables, ${f(bytes / MiB)} MiB, newest ${sst.sort().at(-1)}`;
    }
  } finally {
    await stop(gw.proc);
    rmSync(state, { recursive: true, force: true });
  }
  return stages;
}

function print(store, stages) {
  const keys = [...new Set(stages.flatMap((s) => Object.keys(s.cat)))].sort();
  const rows = [
    ["RSS", ...stages.map((s) => f(s.rss / MiB))],
    ...keys.map((k) => [k, ...stages.map((s) => f((s.cat[k] ?? 0) / MiB))]),
    ["V8 spaces committed (physical)", ...stages.map((s) => f(s.v8.committed / MiB))],
    ["  of which new_space", ...stages.map((s) => f(s.v8.spaces.new_space.physical / MiB))],
    ["  of which old_space", ...stages.map((s) => f(s.v8.spaces.old_space.physical / MiB))],
    ["  of which code_space", ...stages.map((s) => f(s.v8.spaces.code_space.physical / MiB))],
    ["  of which large_object_space", ...stages.map((s) => f(s.v8.spaces.large_object_space.physical / MiB))],
    ["V8 heap used", ...stages.map((s) => f(s.v8.used / MiB))],
    ["V8 external / arrayBuffers", ...stages.map((s) => `${f(s.v8.external / MiB)} / ${f(s.v8.arrayBuffers / MiB)}`)],
    ["V8 malloced (peak)", ...stages.map((s) => `${f(s.v8.malloced / MiB)} (${f(s.v8.peakMalloced / MiB)})`)],
    ["anon: other minus V8 committed", ...stages.map((s) => f(((s.cat["anon: other"] ?? 0) - s.v8.committed) / MiB))],
  ];
  console.log(`\n## ${store} (MiB)`);
  console.log(`| | ${stages.map((s) => s.name).join(" | ")} |`);
  console.log(`|---|${stages.map(() => "---").join("|")}|`);
  for (const r of rows) console.log(`| ${r.join(" | ")} |`);
  const load = stages[1];
  if (load)
    console.log(
      `load: seq p50 ${f(load.p50, 2)} ms, CPU/seq turn ${f(load.seqCpu, 2)} ms; 50 sessions ${f(load.rate, 0)} turns/s, CPU/turn ${f(load.loadCpu, 2)} ms`,
    );
  const last = stages[stages.length - 1];
  if (last.sst) console.log(`engine files at the end: ${last.sst}`);
  if (last.sessionCpu) console.log(`sessions: ${f(last.sessionRate, 0)}/s, CPU/session ${f(last.sessionCpu, 2)} ms`);
  for (const s of stages)
    console.log(
      `large anonymous mappings at ${s.name}: ${s.big
        .slice(0, 8)
        .map((b) => `${b.at} ${f(b.sizeKb / 1024)}/${f(b.rssKb / 1024)} MiB (${b.kind})`)
        .join("; ")}`,
    );
}

async function main() {
  log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
  children.add(emulator.proc);
  const all = {};
  try {
    for (const store of opts.stores.split(",")) {
      log(`${store}...`);
      all[store] = await measure(store, emulator.value);
      if (!opts.json) print(store, all[store]);
    }
  } finally {
    await stop(emulator.proc);
  }
  if (opts.json) console.log(JSON.stringify(all));
  log(
    `load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")}`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
