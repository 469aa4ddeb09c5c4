#!/usr/bin/env node
// `npm run bench`: the gateway's own overhead per turn, its throughput, idle memory and start-up
// time, with uWebSockets.js and with the ws fallback side by side, against a direct SDK call to
// the same instant provider (the floor). The provider emulator runs in its own process.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import Anthropic from "@anthropic-ai/sdk";
import WebSocket from "ws";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    turns: { type: "string", default: "2000" },
    parallel: { type: "string", default: "50" },
    seconds: { type: "string", default: "5" },
    starts: { type: "string", default: "5" },
  },
});
const SEQ_TURNS = Number(opts.turns);
const PARALLEL = Number(opts.parallel);
const LOAD_SECONDS = Number(opts.seconds);
const STARTS = Number(opts.starts);

const log = (s) => process.stderr.write(`${s}\n`);

/** Spawns a process and resolves with the first stdout line for which `pick` returns a value. */
function spawnUntil(args, env, pick, timeoutMs = 15_000) {
  const t0 = performance.now();
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(" ")}: not ready in ${timeoutMs} ms`)), timeoutMs);
    createInterface({ input: proc.stdout }).on("line", (line) => {
      let v;
      try {
        v = pick(JSON.parse(line));
      } catch {
        return;
      }
      if (v !== undefined) {
        clearTimeout(timer);
        resolve({ proc, value: v, ms: performance.now() - t0 });
      }
    });
    proc.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${code}`)));
  });
}

function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
  });
}

function rssMb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
}

/** The floor: the same request through the Anthropic SDK straight to the emulator. */
async function directCall(client) {
  const stream = await client.messages.create({ model: "bench", max_tokens: 64, messages: [{ role: "user", content: "ping" }], stream: true });
  let text = "";
  for await (const ev of stream) if (ev.type === "content_block_delta" && ev.delta.type === "text_delta") text += ev.delta.text;
  if (text !== "pong") throw new Error(`direct call answered ${JSON.stringify(text)}`);
}

/** A minimal protocol v1 client: resolves each chat.send on its response. */
async function connect(url) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  await new Promise((resolve, reject) => {
    ws.once("open", resolve);
    ws.once("error", reject);
  });
  const pending = new Map();
  let nextId = 1;
  ws.on("message", (data) => {
    const msg = JSON.parse(data.toString());
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p.reject(new Error(`${msg.error.code} ${msg.error.message}`));
    else p.resolve(msg.result);
  });
  return {
    send(content, peer) {
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        ws.send(JSON.stringify({ jsonrpc: "2.0", id, method: "chat.send", params: { content, peer } }));
      });
    },
    close: () => ws.close(),
  };
}

async function measureSequential(fn, n) {
  for (let i = 0; i < Math.min(200, n / 5); i++) await fn(i); // warm-up
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn(i);
    samples.push(performance.now() - t);
  }
  return stats(samples);
}

/**
 * `parallel` sessions, each sending turns back to back for `seconds`. Each session moves to a
 * fresh peer every 20 turns so history (and so request size) stays bounded, as it would with
 * compaction.
 */
async function measureThroughput(url, parallel, seconds) {
  const conns = await Promise.all(Array.from({ length: Math.min(parallel, 10) }, () => connect(url)));
  let done = 0;
  let stopAt = 0;
  const worker = async (w) => {
    const conn = conns[w % conns.length];
    for (let i = 0; performance.now() < stopAt; i++) {
      await conn.send("ping", `load-${w}-${Math.floor(i / 20)}`);
      done++;
    }
  };
  stopAt = performance.now() + 500; // warm-up
  await Promise.all(Array.from({ length: parallel }, (_, w) => worker(w)));
  done = 0;
  const t0 = performance.now();
  stopAt = t0 + seconds * 1000;
  await Promise.all(Array.from({ length: parallel }, (_, w) => worker(w)));
  const rate = done / ((performance.now() - t0) / 1000);
  conns.forEach((c) => c.close());
  return rate;
}

async function startGateway(transport, providerUrl) {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-"));
  const env = {
    EXOCLAW_TRANSPORT: transport,
    // The gateway's own overhead, without persistence: `npm run bench:persistence` measures the
    // durable store (the zero-config default) against this in one run.
    EXOCLAW_STORE: "memory",
    EXOCLAW_STATE_DIR: state,
    EXOCLAW_LOG_LEVEL: "warn",
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: providerUrl,
  };
  const started = await spawnUntil([join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"], { ...env, EXOCLAW_LOG_LEVEL: "info" }, (l) =>
    l.msg === "gateway ready" ? l : undefined,
  );
  return { ...started, state, env };
}

/** Wall time from spawn to the first `GET /health` 200, ms. */
async function measureStart(transport, providerUrl) {
  const samples = [];
  for (let i = 0; i < STARTS; i++) {
    const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-"));
    const port = 17_300 + i;
    const t0 = performance.now();
    const proc = spawn(process.execPath, [join(ROOT, "bin/exoclaw.js"), "gateway", "--port", String(port)], {
      env: { ...process.env, EXOCLAW_TRANSPORT: transport, EXOCLAW_STORE: "memory", EXOCLAW_STATE_DIR: state, EXOCLAW_LOG_LEVEL: "warn", ANTHROPIC_API_KEY: "x", ANTHROPIC_BASE_URL: providerUrl },
      stdio: "ignore",
    });
    for (;;) {
      try {
        const r = await fetch(`http://127.0.0.1:${port}/health`);
        if (r.status === 200) break;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    samples.push(performance.now() - t0);
    await stop(proc);
    rmSync(state, { recursive: true, force: true });
  }
  return stats(samples);
}

const f = (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

async function main() {
  log(`exoclaw bench: ${SEQ_TURNS} sequential turns, ${PARALLEL} sessions x ${LOAD_SECONDS} s, ${STARTS} cold starts per transport`);
  const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
  const providerUrl = emulator.value;
  const results = {};
  try {
    const sdk = new Anthropic({ apiKey: "sk-bench", baseURL: providerUrl, maxRetries: 0 });
    log("direct SDK call (floor)...");
    const direct = await measureSequential(() => directCall(sdk), SEQ_TURNS);
    results.direct = { turn: direct };

    for (const transport of ["uws", "ws"]) {
      log(`gateway on ${transport}...`);
      const gw = await startGateway(transport, providerUrl);
      try {
        await new Promise((r) => setTimeout(r, 1000));
        const idleRss = rssMb(gw.proc.pid);
        const conn = await connect(`ws://127.0.0.1:${gw.value.port}/ws`);
        const turn = await measureSequential((i) => conn.send("ping", `seq-${Math.floor(i / 20)}`), SEQ_TURNS);
        conn.close();
        const rate = await measureThroughput(`ws://127.0.0.1:${gw.value.port}/ws`, PARALLEL, LOAD_SECONDS);
        const loadedRss = rssMb(gw.proc.pid);
        results[transport] = { turn, rate, idleRss, loadedRss, transportReported: gw.value.transport };
      } finally {
        await stop(gw.proc);
        rmSync(gw.state, { recursive: true, force: true });
      }
      results[transport].start = await measureStart(transport, providerUrl);
    }
  } finally {
    await stop(emulator.proc);
  }

  const d = results.direct.turn;
  const rows = [
    ["", "direct SDK (floor)", "gateway uws", "gateway ws", "target"],
    ["turn p50 ms", f(d.p50), f(results.uws.turn.p50), f(results.ws.turn.p50), ""],
    ["turn p99 ms", f(d.p99), f(results.uws.turn.p99), f(results.ws.turn.p99), ""],
    ["overhead p50 ms", "-", f(results.uws.turn.p50 - d.p50), f(results.ws.turn.p50 - d.p50), "<= 1"],
    ["overhead p99 ms", "-", f(results.uws.turn.p99 - d.p99), f(results.ws.turn.p99 - d.p99), ""],
    [`turns/s (${PARALLEL} sessions)`, "-", f(results.uws.rate, 0), f(results.ws.rate, 0), ">= 1000"],
    ["idle RSS MB", "-", f(results.uws.idleRss, 1), f(results.ws.idleRss, 1), "<= 80"],
    ["RSS after load MB", "-", f(results.uws.loadedRss, 1), f(results.ws.loadedRss, 1), ""],
    ["ready p50 ms", "-", f(results.uws.start.p50, 0), f(results.ws.start.p50, 0), "<= 300"],
    ["ratio uws/ws turns/s", "-", f(results.uws.rate / results.ws.rate), "1.00", ""],
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  "));
  console.log(`\nreported transports: uws run -> ${results.uws.transportReported}, ws run -> ${results.ws.transportReported}`);
  console.log("store: memory (the gateway's own cost); npm run bench:persistence adds the durable store's cost.");
  console.log(
    "For scale (same kind of machine, same instant provider): the TypeScript original takes about 300 ms per turn, 3.4 turns/s, 950 MB idle, 8 s to start.",
  );
}

main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
