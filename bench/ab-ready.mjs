#!/usr/bin/env node
// `node bench/ab-ready.mjs OLD_ROOT NEW_ROOT [--starts N] [--store memory|durable] [--existing [--warmups K]] [--cpu-prof DIR]`
//
// Spawn -> first `GET /health` 200 of two builds, starts alternating (old, new, new, old, ...),
// each in a fresh state directory, polled every 2 ms from the spawn as a supervisor would. Each
// root is a checkout or a copy with its own bin/, dist/ and build/plugins/ (e.g. `cp -r bin dist
// build` of the old build next to symlinks of node_modules). Prints per build p50/p90 of: spawn ->
// 200, the gateway's own readyMs and startupMs phases (its "gateway ready" line), and the main
// thread's CPU (`cpu`: /proc/<pid>/schedstat, ns) and every thread's (`allcpu`) at the 200; the load average before and after. `--store durable`
// runs the default store (EXOCLAW_STORE unset). `--node-args-old/--node-args-new "--flag ..."` pass
// Node/V8 flags to one build (to try a flag on one build: give the same root twice). `--cpu-prof DIR` adds `node --cpu-prof` (the
// profile is written at exit, after the 200; it slows the start, so read shares, not times).
// `--existing`: every start of a build reuses one state directory of that build (the second and
// later starts of an operator's gateway: a store with a clean stop's checkpoint, the plugins'
// validation cache, the scheduler's jobs file), made by `--warmups` unmeasured starts first
// (default 2: each stopped once its engine opened, so the store holds the engine's files); each
// start ends with SIGTERM, i.e. a clean stop (which writes the checkpoint).
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:http";
import { loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";

const { values: opts, positionals: roots } = parseArgs({
  allowPositionals: true,
  options: {
    starts: { type: "string", default: "10" },
    store: { type: "string", default: "memory" },
    "cpu-prof": { type: "string" },
    "node-args-old": { type: "string", default: "" },
    "node-args-new": { type: "string", default: "" },
    existing: { type: "boolean", default: false },
    warmups: { type: "string", default: "2" },
  },
});
if (roots.length < 1) {
  process.stderr.write("usage: node bench/ab-ready.mjs OLD_ROOT [NEW_ROOT] [--starts N] [--store memory|durable] [--cpu-prof DIR]\n");
  process.exit(2);
}
const STARTS = Number(opts.starts);
let nextPort = 20000 + (process.pid % 20000);

/**
 * Main-thread CPU of a process so far, ms: the main thread's on-CPU time in ns from
 * /proc/<pid>/schedstat (the thread-group leader: the main thread) (utime + stime of /proc/<pid>/stat count 10 ms ticks, too
 * coarse for differences of a few ms); the ticks where schedstat is missing.
 */
function mainCpu(pid) {
  try {
    return Number(readFileSync(`/proc/${pid}/schedstat`, "utf8").split(" ")[0]) / 1e6;
  } catch {
    // no schedstat (kernel without CONFIG_SCHEDSTATS): the ticks
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** CPU of all of a process's threads so far, ms (schedstat, ns): V8's compile and GC threads, the thread pool, uWS... */
function allCpu(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    return ns / 1e6;
  } catch {
    return Number.NaN;
  }
}

/** One GET /health; resolves with the status code, or 0 when the connection failed. */
function health(port) {
  return new Promise((res) => {
    const req = request({ host: "127.0.0.1", port, path: "/health", agent: false }, (r) => {
      r.resume();
      r.on("end", () => res(r.statusCode ?? 0));
    });
    req.on("error", () => res(0));
    req.end();
  });
}

/** `--existing`: each build's own state directory, kept across its starts. */
const existingState = {};

async function once(root, label, i, settle = false) {
  const state = opts.existing ? (existingState[label] ??= mkdtempSync(join(tmpdir(), "exoclaw-abready-"))) : mkdtempSync(join(tmpdir(), "exoclaw-abready-"));
  const port = nextPort++;
  const env = { ...process.env, EXOCLAW_STATE_DIR: state, ANTHROPIC_API_KEY: "x", EXOCLAW_LOG_LEVEL: "info" };
  if (opts.store === "memory") env.EXOCLAW_STORE = "memory";
  else delete env.EXOCLAW_STORE;
  const nodeArgs = (label === "new" ? opts["node-args-new"] : opts["node-args-old"]).split(" ").filter(Boolean);
  if (opts["cpu-prof"] !== undefined) {
    const dir = resolve(opts["cpu-prof"], label);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push("--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-name", `start-${i}.cpuprofile`);
  }
  const t0 = performance.now();
  const proc = spawn(process.execPath, [...nodeArgs, join(root, "bin/exoclaw.js"), "gateway", "--port", String(port)], {
    cwd: root,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let ready;
  let engineOpen = false;
  createInterface({ input: proc.stdout }).on("line", (line) => {
    try {
      const e = JSON.parse(line);
      if (e.msg === "gateway ready") ready = e;
      if (typeof e.msg === "string" && e.msg.startsWith("the store's engine is open")) engineOpen = true;
    } catch {}
  });
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr += d));
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${label}: exited ${proc.exitCode}: ${stderr}`);
      const status = await health(port);
      if (status === 200) {
        const ms = performance.now() - t0;
        const cpu = mainCpu(proc.pid);
        const allcpu = allCpu(proc.pid);
        // The ready line is written before the listener answers; give the pipe a moment.
        for (let k = 0; k < 100 && ready === undefined; k++) await new Promise((r) => setTimeout(r, 5));
        // A warm-up start stops once its engine opened, so the next start finds the engine's files and its checkpoint.
        for (let k = 0; settle && k < 2000 && !engineOpen; k++) await new Promise((r) => setTimeout(r, 5));
        return { ms, cpu, allcpu, readyMs: ready?.readyMs, ...(ready?.startupMs ?? {}) };
      }
      if (performance.now() - t0 > 30_000) throw new Error(`${label}: no /health 200 in 30 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r() : proc.once("exit", r)));
    if (!opts.existing) rmSync(state, { recursive: true, force: true });
  }
}

const pct = (xs, p) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))];
};
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");

const labels = roots.length === 2 ? ["old", "new"] : ["only"];
const results = Object.fromEntries(labels.map((l) => [l, []]));
console.log(
  `ab-ready: ${STARTS} starts each, store ${opts.store}${opts.existing ? `, existing state directory (${opts.warmups} warm-up starts)` : ", fresh state directory"}, load before ${load()}, ${new Date().toISOString()}`,
);
if (opts.existing) for (let w = 0; w < Number(opts.warmups); w++) for (const label of labels) await once(roots[labels.indexOf(label)], label, -1 - w, true);
for (let i = 0; i < STARTS; i++) {
  const order = i % 2 === 0 ? labels : [...labels].reverse();
  for (const label of order) {
    const root = roots[labels.indexOf(label)];
    results[label].push(await once(root, label, i));
  }
}
console.log(`load after ${load()}`);
for (const state of Object.values(existingState)) rmSync(state, { recursive: true, force: true });
const keys = ["ms", "cpu", "allcpu", "readyMs", "modules", "configAndPlugins", "storeOpen", "recover", "listen"];
console.log(["build", ...keys.map((k) => `${k} p50/p90`)].join("\t"));
for (const label of labels) {
  const rs = results[label];
  console.log(
    [
      label,
      ...keys.map(
        (k) =>
          `${Math.round(
            pct(
              rs.map((r) => r[k]),
              50,
            ),
          )}/${Math.round(
            pct(
              rs.map((r) => r[k]),
              90,
            ),
          )}`,
      ),
    ].join("\t"),
  );
}
