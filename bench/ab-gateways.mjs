#!/usr/bin/env node
// `node bench/ab-gateways.mjs OLD_ROOT NEW_ROOT [--rate N] [--seconds S] [--rounds R] [--store memory|rocksdb|surrealkv] [--heap compact|throughput]`
//
// Gateway CPU per turn of two builds measured AT THE SAME TIME: both gateways (each root is a
// checkout or a copy with its own bin/ and dist/, e.g. `cp -r bin dist` of the old build next to
// symlinks of the rest) run side by side against one provider emulator, each driven by 50
// sessions on 10 JSON WebSocket connections, each session paced at rate/50 turns/s (a rate above
// what the machine does saturates both alike). CPU per turn is read from /proc/<pid>/task/*/stat:
// all threads, the main thread, and V8's four platform threads (the first threads Node starts:
// GC helpers, concurrent compilation). On a shared machine whose load swings, running the two
// builds one after the other gave CPU figures 2x apart for the same build; side by side, both see
// the same load, so the per-round ratio is what to read. Start order alternates between rounds.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect, rssMb, spawnUntil, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: {
    rate: { type: "string", default: "1000" },
    seconds: { type: "string", default: "12" },
    rounds: { type: "string", default: "4" },
    store: { type: "string", default: "memory" },
    heap: { type: "string", default: "" },
  },
});
if (roots.length !== 2) {
  process.stderr.write("usage: node bench/ab-gateways.mjs OLD_ROOT NEW_ROOT [--rate N] [--seconds S] [--rounds R] [--store S] [--heap H]\n");
  process.exit(2);
}
const RATE = Number(opts.rate);
const SECONDS = Number(opts.seconds);
const SESSIONS = 50;
const CONNECTIONS = 10;

/**
 * CPU time used so far by a process, ms: all threads, the main thread, V8's platform threads, the
 * embedded SurrealDB engine's executor threads (`tokio-runtime-w*`).
 */
function threadCpu(pid) {
  const tids = readdirSync(`/proc/${pid}/task`)
    .map(Number)
    .sort((a, b) => a - b);
  const platform = new Set(tids.filter((t) => t !== pid).slice(0, 4));
  const out = { all: 0, main: 0, v8: 0, engine: 0 };
  for (const tid of tids) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended
    }
    const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
    const ms = (Number(f[11]) + Number(f[12])) * 10;
    out.all += ms;
    if (tid === pid) out.main += ms;
    else if (platform.has(tid)) out.v8 += ms;
    else if (stat.slice(stat.indexOf("(") + 1).startsWith("tokio-runtime-w")) out.engine += ms;
  }
  return out;
}

const message = (i) => `message ${i}: tell me something about the weather in a city of your choice, in one sentence`;

/** Starts `root`'s gateway against the emulator and opens its connections. */
async function startGateway(root, providerUrl) {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-ab-"));
  const store = opts.store === "memory" ? "memory" : `${opts.store}://${join(state, "data")}`;
  const env = {
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_LOG_LEVEL: "info",
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: providerUrl,
    EXOCLAW_TRANSPORT: "uws",
    EXOCLAW_STORE: store,
    ...(opts.heap ? { EXOCLAW_HEAP: opts.heap } : {}),
  };
  const gw = await spawnUntil([join(root, "bin/exoclaw.js"), "gateway", "--port", "0"], env, (l) => (l.msg === "gateway ready" ? l : undefined), 60_000);
  const conns = await Promise.all(Array.from({ length: CONNECTIONS }, () => connect(`ws://127.0.0.1:${gw.value.port}/ws`)));
  return { gw, conns, state };
}

/** Paced turns for `seconds`: each session at RATE / SESSIONS turns/s, never more than one in flight. */
async function drive(g, seconds, tag) {
  const interval = (SESSIONS / RATE) * 1000;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let done = 0;
  await Promise.all(
    Array.from({ length: SESSIONS }, async (_, w) => {
      let next = t0 + (w * interval) / SESSIONS;
      for (let i = 0; ; i++) {
        const now = performance.now();
        if (now >= end) break;
        if (next > now) await new Promise((r) => setTimeout(r, next - now));
        if (performance.now() >= end) break;
        await g.conns[w % CONNECTIONS].send(message(i), `${tag}-${w}-${Math.floor(i / 20)}`);
        done++;
        next += interval;
      }
    }),
  );
  return done;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
  const results = [[], []];
  try {
    for (let round = 0; round < Number(opts.rounds); round++) {
      const order = round % 2 ? [1, 0] : [0, 1];
      const gs = [];
      for (const i of order) gs[i] = await startGateway(roots[i], emulator.value);
      try {
        await Promise.all(gs.map((g) => drive(g, 2, "warm")));
        const before = gs.map((g) => threadCpu(g.gw.proc.pid));
        const done = await Promise.all(gs.map((g) => drive(g, SECONDS, "load")));
        const after = gs.map((g) => threadCpu(g.gw.proc.pid));
        gs.forEach((g, i) => {
          const per = (k) => (after[i][k] - before[i][k]) / done[i];
          const row = { rate: done[i] / SECONDS, cpu: per("all"), main: per("main"), v8: per("v8"), engine: per("engine"), rss: rssMb(g.gw.proc.pid) };
          results[i].push(row);
          console.log(
            `round ${round + 1} ${i === 0 ? "old" : "new"}: ${row.rate.toFixed(0)} turns/s, CPU ${row.cpu.toFixed(3)} ms/turn ` +
              `(main ${row.main.toFixed(3)}, V8 threads ${row.v8.toFixed(3)}, engine ${row.engine.toFixed(3)}), RSS ${row.rss.toFixed(0)} MB`,
          );
        });
      } finally {
        for (const g of gs) {
          for (const c of g.conns) c.close();
          await stop(g.gw.proc);
          rmSync(g.state, { recursive: true, force: true });
        }
      }
    }
  } finally {
    await stop(emulator.proc);
  }
  const ratios = results[1].map((r, k) => r.cpu / results[0][k].cpu);
  const rates = results[1].map((r, k) => r.rate / results[0][k].rate);
  console.log(
    `\n${opts.rounds} rounds, ${RATE} turns/s offered to each, store ${opts.store}, heap ${opts.heap || "default"}, load ${readFileSync("/proc/loadavg", "utf8").trim()}`,
  );
  roots.forEach((root, i) => {
    const r = results[i];
    console.log(
      `${i === 0 ? "old" : "new"} (${root}): median CPU ${median(r.map((x) => x.cpu)).toFixed(3)} ms/turn, ` +
        `${median(r.map((x) => x.rate)).toFixed(0)} turns/s, engine ${median(r.map((x) => x.engine)).toFixed(3)} ms/turn, RSS ${median(r.map((x) => x.rss)).toFixed(0)} MB`,
    );
  });
  console.log(
    `new / old per round: CPU ${ratios.map((x) => x.toFixed(2)).join(", ")} (median ${median(ratios).toFixed(2)}); turns/s ${rates.map((x) => x.toFixed(2)).join(", ")}`,
  );
}

main().catch((err) => {
  process.stderr.write(`bench failed: ${err.stack ?? err}\n`);
  process.exit(1);
});
