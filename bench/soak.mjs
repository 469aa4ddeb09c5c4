#!/usr/bin/env node
// `npm run bench:soak`: does the gateway's memory stay flat under a steady load?
//
// A real gateway (bin/exoclaw.js, the bundled host) with the durable store (embedded SurrealDB,
// surrealkv, its defaults) takes chat turns at a fixed rate (default 100 turns/s, open loop, many
// sessions; each session moves to a fresh peer every 20 turns, so per-session history stays
// bounded as compaction would keep it) from the instant provider emulator, for a fixed time
// (default 30 min). Every few seconds the bench samples the gateway's RSS (/proc), its JS heap
// (a preloaded probe, bench/soak-probe.mjs) and the store directory's size. A second gateway with
// the in-process memory store runs the same load at the same time as the baseline, so machine
// noise hits both (absolute figures on a shared machine are noisy: compare within one run).
//
// Output: a table over time, then per gateway the RSS after warm-up vs at the end, the slope of
// RSS after warm-up (least squares) in KiB per turn and MiB per minute (also for RSS minus the JS
// heap: the native part, mostly the engine), and a verdict: flat when the RSS peak in the second
// half after warm-up is at most 5 % above the first half's (the engine's memtable makes RSS a
// sawtooth of ~150 MiB, so a slope over a few cycles alone is noisy), else growing.
//
//   node bench/soak.mjs [--minutes 30] [--rate 100] [--sessions 400] [--sample 10]
//                       [--warmup <min>] [--baseline memory|none] [--env KEY=VALUE ...]
//                       [--label text] [--json file] [--from file]
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, rssMb, spawnUntil, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HELP = `npm run bench:soak -- [options]

  --minutes N       load duration in minutes (default 30; fractions allowed)
  --rate R          turns per second offered, per gateway (default 100)
  --sessions S      sessions taking turns (default 400; a session's turns run one at a time)
  --sample SEC      seconds between samples (default 10)
  --warmup MIN      minutes excluded from the slope (default: a sixth of the run, at most 5)
  --baseline B      "memory" (default): a memory-store gateway under the same load at the same
                    time; "none": only the surrealkv gateway
  --engine E        the durable gateway's embedded engine: "rocksdb" (default for new stores)
                    or "surrealkv" (stores made before; store URL <engine>://<state>/data)
  --env KEY=VALUE   extra environment for the durable gateway (repeatable), e.g.
                    --env SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY=64MiB
  --label TEXT      a name for this run in the summary
  --json FILE       also write the samples and summary as JSON
  --from FILE       print the summary of a run saved with --json (no load; --warmup applies)
  --help            this text`;

const { values: opts } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "100" },
    sessions: { type: "string", default: "400" },
    sample: { type: "string", default: "10" },
    warmup: { type: "string" },
    baseline: { type: "string", default: "memory" },
    engine: { type: "string", default: "rocksdb" },
    env: { type: "string", multiple: true, default: [] },
    label: { type: "string", default: "" },
    json: { type: "string" },
    from: { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
const MINUTES = Number(opts.minutes);
const RATE = Number(opts.rate);
const SESSIONS = Number(opts.sessions);
const SAMPLE_S = Number(opts.sample);
const WARMUP_MIN = opts.warmup !== undefined ? Number(opts.warmup) : Math.min(5, MINUTES / 6);
for (const [name, v] of [
  ["minutes", MINUTES],
  ["rate", RATE],
  ["sessions", SESSIONS],
  ["sample", SAMPLE_S],
  ["warmup", WARMUP_MIN],
]) {
  if (!Number.isFinite(v) || v < 0 || (name !== "warmup" && v === 0)) {
    console.error(`--${name} must be a positive number; got ${JSON.stringify(opts[name])}\n\n${HELP}`);
    process.exit(2);
  }
}
if (!["memory", "none"].includes(opts.baseline)) {
  console.error(`--baseline must be "memory" or "none"; got ${JSON.stringify(opts.baseline)}`);
  process.exit(2);
}
if (!["rocksdb", "surrealkv"].includes(opts.engine)) {
  console.error(`--engine must be "rocksdb" or "surrealkv"; got ${JSON.stringify(opts.engine)}`);
  process.exit(2);
}
const extraEnv = {};
for (const kv of opts.env) {
  const eq = kv.indexOf("=");
  if (eq <= 0) {
    console.error(`--env takes KEY=VALUE; got ${JSON.stringify(kv)}`);
    process.exit(2);
  }
  extraEnv[kv.slice(0, eq)] = kv.slice(eq + 1);
}
const TURNS_PER_PEER = 20;
// ~8 sessions per connection: a connection with more turns in flight trips Node's 10-listener warning on
// its AbortSignal (harmless; each turn removes its listener when it ends).
const CONNECTIONS = Math.max(1, Math.ceil(SESSIONS / 8));
const log = (s) => process.stderr.write(`${s}\n`);

/** Bytes under `dir` by top-level entry (`wal`, `sstables`, `vlog`, …) and in total. */
function storeSize(dir) {
  const out = { total: 0, parts: {} };
  const walk = (p) => {
    let n = 0;
    for (const e of readdirSync(p, { withFileTypes: true })) n += e.isDirectory() ? walk(join(p, e.name)) : statSync(join(p, e.name)).size;
    return n;
  };
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const n = e.isDirectory() ? walk(join(dir, e.name)) : statSync(join(dir, e.name)).size;
    out.parts[e.name] = n;
    out.total += n;
  }
  return out;
}

/** The probe's latest `process.memoryUsage()` line, or undefined. */
function lastProbe(file) {
  try {
    const text = readFileSync(file, "utf8").trimEnd();
    return JSON.parse(text.slice(text.lastIndexOf("\n") + 1));
  } catch {
    return undefined;
  }
}

/** A message of ~100 characters; the emulator echoes it ("You said: ..."). */
const message = (i) => `message ${i}: tell me something about the weather in a city of your choice, in one sentence`;

async function startGateway(name, store, providerUrl) {
  const state = mkdtempSync(join(tmpdir(), `exoclaw-soak-${name}-`));
  const probe = join(state, "probe.jsonl");
  writeFileSync(probe, "");
  const env = {
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_STORE: store === "memory" ? "memory" : `${store}://${join(state, "data")}`,
    EXOCLAW_LOG_LEVEL: "info",
    EXOCLAW_TRANSPORT: "uws",
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: providerUrl,
    EXOCLAW_SOAK_PROBE: probe,
    EXOCLAW_SOAK_PROBE_MS: "1000",
    ...(store === "memory" ? {} : extraEnv),
  };
  const gw = await spawnUntil(["--import", join(ROOT, "bench/soak-probe.mjs"), join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"], env, (l) =>
    l.msg === "gateway ready" ? l : undefined,
  );
  const url = `ws://127.0.0.1:${gw.value.port}/ws`;
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(url)));
  return {
    name,
    store,
    proc: gw.proc,
    state,
    probe,
    conns,
    sessions: Array.from({ length: SESSIONS }, () => ({ busy: false, turns: 0 })),
    next: 0,
    sent: 0,
    done: 0,
    failed: 0,
    skipped: 0,
    samples: [],
    lastError: undefined,
  };
}

/** Sends one turn on the next idle session; false when every session is busy. */
function sendOne(gw) {
  for (let tries = 0; tries < SESSIONS; tries++) {
    const i = gw.next;
    gw.next = (gw.next + 1) % SESSIONS;
    const s = gw.sessions[i];
    if (s.busy) continue;
    s.busy = true;
    const n = s.turns++;
    gw.sent++;
    gw.conns[i % CONNECTIONS].send(message(n), `soak-${i}-${Math.floor(n / TURNS_PER_PEER)}`).then(
      () => {
        gw.done++;
        s.busy = false;
      },
      (err) => {
        gw.failed++;
        gw.lastError = String(err.message ?? err);
        s.busy = false;
      },
    );
    return true;
  }
  return false;
}

/** Anonymous and file-backed resident memory of a process, MiB (/proc/<pid>/status). */
function rssParts(pid) {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN) / 1024;
  return { anonMiB: kb("RssAnon"), fileMiB: kb("RssFile") };
}

function sample(gw, t0) {
  const heap = lastProbe(gw.probe);
  const disk = storeSize(join(gw.state, "data"));
  const s = {
    min: (performance.now() - t0) / 60_000,
    turns: gw.done,
    rssMiB: rssMb(gw.proc.pid),
    ...rssParts(gw.proc.pid),
    heapUsedMiB: heap ? heap.heapUsed / 2 ** 20 : NaN,
    heapTotalMiB: heap ? heap.heapTotal / 2 ** 20 : NaN,
    externalMiB: heap ? heap.external / 2 ** 20 : NaN,
    storeMiB: disk.total / 2 ** 20,
    storeParts: disk.parts,
  };
  gw.samples.push(s);
  return s;
}

/** Least-squares slope of y over x. */
function slope(xs, ys) {
  const n = xs.length;
  if (n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

/** Flat: the peak RSS of the second half after warm-up is at most 5 % above the first half's. */
const FLAT_PEAK_GROWTH = 0.05;

function summarize(gw, warmupMin) {
  const after = gw.samples.filter((s) => s.min >= warmupMin);
  const first = after[0] ?? gw.samples[0];
  const last = gw.samples[gw.samples.length - 1];
  const kibPerTurn = slope(
    after.map((s) => s.turns),
    after.map((s) => s.rssMiB * 1024),
  );
  const mibPerMin = slope(
    after.map((s) => s.min),
    after.map((s) => s.rssMiB),
  );
  const heapKibPerTurn = slope(
    after.map((s) => s.turns),
    after.map((s) => s.heapUsedMiB * 1024),
  );
  const peak = Math.max(...after.map((s) => s.rssMiB));
  // The engine's memtable fills and is flushed in cycles (a sawtooth of ~150 MiB), so a slope over
  // a few cycles is noisy: the verdict compares the RSS peaks of the two halves after warm-up.
  const mid = after.length >> 1;
  const peak1 = Math.max(...after.slice(0, mid).map((s) => s.rssMiB));
  const peak2 = Math.max(...after.slice(mid).map((s) => s.rssMiB));
  const native = (s) => (s.rssMiB - s.heapTotalMiB) * 1024;
  return {
    name: gw.name,
    turns: gw.done,
    failed: gw.failed,
    skipped: gw.skipped,
    rateAchieved: last.turns / (last.min * 60),
    rssStartMiB: gw.samples[0].rssMiB,
    rssWarmMiB: first.rssMiB,
    rssEndMiB: last.rssMiB,
    rssPeakAfterWarmMiB: peak,
    anonEndMiB: last.anonMiB,
    fileEndMiB: last.fileMiB,
    kibPerTurn,
    mibPerMin,
    heapKibPerTurn,
    nativeKibPerTurn: slope(
      after.map((s) => s.turns),
      after.map(native),
    ),
    peak1,
    peak2,
    heapEndMiB: last.heapUsedMiB,
    storeEndMiB: last.storeMiB,
    storeParts: last.storeParts,
    verdict: after.length < 4 ? "n/a (too few samples after warm-up)" : peak2 <= peak1 * (1 + FLAT_PEAK_GROWTH) ? "flat" : "growing",
  };
}

const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "-");
const pad = (cells, widths) => cells.map((c, i) => String(c).padStart(widths[i])).join("  ");

async function main() {
  log(
    `exoclaw soak: ${MINUTES} min at ${RATE} turns/s over ${SESSIONS} sessions, sample every ${SAMPLE_S} s, warm-up ${f(WARMUP_MIN, 2)} min, baseline ${opts.baseline}` +
      (opts.env.length ? `, ${opts.engine} env ${opts.env.join(" ")}` : ""),
  );
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
  const gws = [];
  try {
    gws.push(await startGateway(opts.engine, opts.engine, emulator.value));
    if (opts.baseline === "memory") gws.push(await startGateway("memory", "memory", emulator.value));
    await new Promise((r) => setTimeout(r, 1500)); // let the probe write and start-up settle
    const widths = [6, 8, 9, 9, 8, 9];
    const header = ["min", "turns", "RSS MiB", "heap MiB", "ext MiB", "store MiB"];
    log(gws.map((g) => `${g.name}: ${pad(header, widths)}`).join("   |   "));
    const t0 = performance.now();
    const endAt = t0 + MINUTES * 60_000;
    for (const g of gws) sample(g, t0);
    let nextSample = t0 + SAMPLE_S * 1000;
    // Open loop: every 10 ms, send what the rate owes since t0 (a debt of at most one second is
    // kept; turns that find every session busy are counted as skipped).
    while (performance.now() < endAt) {
      const now = performance.now();
      const owed = Math.floor(((now - t0) / 1000) * RATE);
      for (const g of gws) {
        if (owed - g.sent - g.skipped > RATE) g.skipped += owed - g.sent - g.skipped - RATE;
        while (g.sent + g.skipped < owed) if (!sendOne(g)) break;
      }
      if (now >= nextSample) {
        nextSample += SAMPLE_S * 1000;
        const row = gws.map((g) => {
          const s = sample(g, t0);
          return `${g.name}: ${pad([f(s.min), s.turns, f(s.rssMiB), f(s.heapUsedMiB), f(s.externalMiB), f(s.storeMiB)], widths)}`;
        });
        log(row.join("   |   "));
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    // Let turns in flight finish, then take the last sample.
    const drainUntil = performance.now() + 10_000;
    while (gws.some((g) => g.done + g.failed < g.sent) && performance.now() < drainUntil) await new Promise((r) => setTimeout(r, 50));
    for (const g of gws) sample(g, t0);
  } finally {
    for (const g of gws) {
      g.conns.forEach((c) => c.close());
      await stop(g.proc);
      rmSync(g.state, { recursive: true, force: true });
    }
    await stop(emulator.proc);
  }

  report(gws, { minutes: MINUTES, rate: RATE, sessions: SESSIONS, env: opts.env, label: opts.label, warmup: WARMUP_MIN });
}

/** Prints the summary table of a run (`meta`: the run's options); writes --json when asked. */
function report(gws, meta) {
  const sums = gws.map((g) => summarize(g, meta.warmup));
  const rows = [
    ["", ...sums.map((s) => `${s.name}`)],
    ["turns answered (failed, skipped)", ...sums.map((s) => `${s.turns} (${s.failed}, ${s.skipped})`)],
    ["turns/s achieved", ...sums.map((s) => f(s.rateAchieved))],
    ["RSS at start MiB", ...sums.map((s) => f(s.rssStartMiB))],
    [`RSS after warm-up (${f(meta.warmup, 1)} min) MiB`, ...sums.map((s) => f(s.rssWarmMiB))],
    ["RSS at end MiB", ...sums.map((s) => f(s.rssEndMiB))],
    ["RSS peak after warm-up MiB", ...sums.map((s) => f(s.rssPeakAfterWarmMiB))],
    ["RSS peak, 1st / 2nd half after warm-up MiB", ...sums.map((s) => `${f(s.peak1)} / ${f(s.peak2)}`)],
    ["RSS at end: anonymous / file-backed MiB", ...sums.map((s) => `${f(s.anonEndMiB)} / ${f(s.fileEndMiB)}`)],
    ["RSS slope KiB/turn", ...sums.map((s) => f(s.kibPerTurn, 2))],
    ["RSS slope MiB/min", ...sums.map((s) => f(s.mibPerMin, 2))],
    ["native (RSS - heap total) slope KiB/turn", ...sums.map((s) => f(s.nativeKibPerTurn, 2))],
    ["heap used slope KiB/turn", ...sums.map((s) => f(s.heapKibPerTurn, 3))],
    ["heap used at end MiB", ...sums.map((s) => f(s.heapEndMiB))],
    ["store dir at end MiB", ...sums.map((s) => (s.name === "memory" ? "-" : f(s.storeEndMiB)))],
    [`verdict (flat: 2nd-half peak <= 1st-half peak + ${FLAT_PEAK_GROWTH * 100} %)`, ...sums.map((s) => s.verdict)],
  ];
  if (sums.length === 2) rows.push([`RSS at end, ${sums[0].name} / memory`, f(sums[0].rssEndMiB / sums[1].rssEndMiB, 2), ""]);
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  console.log(
    `\nsoak${meta.label ? ` [${meta.label}]` : ""}: ${meta.minutes} min, ${meta.rate} turns/s offered, ${meta.sessions} sessions${meta.env.length ? `, env ${meta.env.join(" ")}` : ""}`,
  );
  for (const r of rows)
    console.log(
      r
        .map((c, i) => String(c).padEnd(w[i]))
        .join("  ")
        .trimEnd(),
    );
  const parts = sums[0].storeParts;
  console.log(
    `store dir (${sums[0]?.name ?? "durable"}) by part, MiB: ${Object.entries(parts)
      .map(([k, v]) => `${k} ${f(v / 2 ** 20)}`)
      .join(", ")}`,
  );
  for (const g of gws) if (g.lastError) console.log(`${g.name}: last error: ${g.lastError}`);
  console.log("Absolute figures vary with the machine's other load; compare the two gateways within one run.");
  if (opts.json && !opts.from)
    writeFileSync(opts.json, JSON.stringify({ opts, summary: sums, samples: Object.fromEntries(gws.map((g) => [g.name, g.samples])) }, null, 1));
}

/** `--from FILE`: the summary of a run saved with --json, again (e.g. with another --warmup). */
function reportSaved(file) {
  const saved = JSON.parse(readFileSync(file, "utf8"));
  const gws = saved.summary.map((s) => ({ name: s.name, done: s.turns, failed: s.failed, skipped: s.skipped, samples: saved.samples[s.name] }));
  const o = saved.opts;
  const minutes = Number(o.minutes);
  const warmup = opts.warmup !== undefined ? Number(opts.warmup) : o.warmup !== undefined ? Number(o.warmup) : Math.min(5, minutes / 6);
  report(gws, { minutes, rate: Number(o.rate), sessions: Number(o.sessions), env: o.env ?? [], label: o.label ?? "", warmup });
}

if (opts.from) {
  reportSaved(opts.from);
  process.exit(0);
}
main().catch((err) => {
  log(`soak failed: ${err.stack ?? err}`);
  process.exit(1);
});
