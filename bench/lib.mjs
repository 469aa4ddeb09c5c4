// Helpers shared by the benchmarks: child processes, a minimal protocol-v1 client, statistics.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createInterface } from "node:readline";
import { build } from "esbuild";
import { ensureNatsServer } from "../scripts/ensure-nats.mjs";
import WebSocket from "ws";

/**
 * Spawns `node <args>` and resolves with the first stdout JSON line for which `pick` returns a
 * value: `{proc, value, ms}` (ms from spawn). Rejects if the process exits first or after `timeoutMs`.
 * With `maxFds`, node runs under `bash -c 'ulimit -n ...; exec node ...'` with its open-file limit
 * raised to `maxFds`, or to the hard limit when that is lower (`proc.pid` is node's: exec keeps it).
 */
export function spawnUntil(args, env, pick, timeoutMs = 20_000, { maxFds } = {}) {
  const t0 = performance.now();
  const [cmd, argv] =
    maxFds === undefined
      ? [process.execPath, args]
      : ["bash", ["-c", `ulimit -n ${Number(maxFds)} 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"`, process.execPath, ...args]];
  const proc = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
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

/** SIGTERM and wait for exit. */
export function stop(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null) return resolve();
    proc.once("exit", () => resolve());
    proc.kill("SIGTERM");
  });
}

/** Resident set size of a process, MB (Linux /proc). */
export function rssMb(pid) {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Open-file limit (soft) of a running process (Linux /proc), or NaN. */
export function maxFdsOf(pid) {
  const m = readFileSync(`/proc/${pid}/limits`, "utf8").match(/Max open files\s+(\d+)/);
  return m ? Number(m[1]) : NaN;
}

/** CPU time (user + system) a process has used so far, ms (Linux /proc, clock ticks of 10 ms). */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** p50, p99 and max of samples (same unit as the samples). */
export function stats(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
  return { p50: at(50), p99: at(99), max: s[s.length - 1], n: s.length };
}

/** A minimal protocol v1 client over JSON: `send(content, peer)` resolves with the chat.send result. */
export async function connect(url) {
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

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a throwaway `nats-server` with JetStream on a free port in a temp directory (installed by
 * `scripts/ensure-nats.mjs` when missing): `{url, stop()}`; `stop` ends it and removes the directory.
 * Rejects when it does not report ready within 15 s. The one way every bench starts NATS.
 */
export async function startNats() {
  const bin = ensureNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-nats-"));
  const port = await freePort();
  const proc = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", dir], { stdio: ["ignore", "ignore", "pipe"] });
  let logText = "";
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`nats-server did not start: ${logText}`)), 15_000);
    proc.stderr.on("data", (d) => {
      logText += d;
      if (/Server is ready/.test(logText)) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once("exit", (code) => reject(new Error(`nats-server exited ${code}: ${logText}`)));
  });
  return {
    url: `nats://127.0.0.1:${port}`,
    async stop() {
      await stop(proc);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Bundles one host source entry (TypeScript) into `dist/bench-<name>.mjs`, npm packages kept as
 * imports (pino and others require node built-ins dynamically, which an ESM bundle cannot), and
 * imports it: how a bench reaches host modules without the gateway around them.
 * @param {string} entry path from the source root, e.g. "host/src/router/index.ts"
 * @param {string} name the bundle's name under dist/
 * @param {{ root?: string }} [options] `root`: the checkout whose sources are bundled (default
 *   this one; another checkout for A/B in one process). The bundle is always written to this
 *   checkout's dist/, so its npm packages resolve from here.
 * @returns {Promise<any>} the module's exports
 */
export async function importSource(entry, name, { root: sourceRoot } = {}) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const out = join(root, "dist", `bench-${name}.mjs`);
  await build({
    absWorkingDir: sourceRoot ?? root,
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
  });
  return import(pathToFileURL(out).href);
}

/**
 * Node's own start on this machine: wall time from spawn to the exit of `node -e 0` with this
 * process's environment, p50 of `runs` (ms). The floor under every "ready" figure: a variable such
 * as NODE_EXTRA_CA_CERTS (read and parsed at every start by Node 20) adds to it, and to the gateway
 * alike.
 * @param {number} runs starts to take (>= 1)
 * @returns {Promise<{ p50: number, caCerts: boolean }>} `caCerts`: NODE_EXTRA_CA_CERTS is set
 */
export async function nodeBootMs(runs) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const proc = spawn(process.execPath, ["-e", "0"], { stdio: "ignore" });
    await new Promise((resolve) => proc.once("exit", resolve));
    samples.push(performance.now() - t0);
  }
  return { p50: stats(samples).p50, caCerts: Boolean(process.env.NODE_EXTRA_CA_CERTS) };
}

/** Median of numbers (the mean of the two middle ones for an even count; NaN for none). */
export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Busy CPU time of the whole machine so far, ms summed over its cores (Linux `/proc/stat`, first
 * line: user, nice, system, irq, softirq and steal; guest time is already inside user). Read around
 * a window, minus the CPU of the processes a bench drives over the same window, what is left is
 * what the rest of the machine used meanwhile: on a shared 2-core machine, the noise in that
 * window's figures (others' benches, builds, test runs).
 */
export function machineCpuMs() {
  const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (USER_HZ = 100: 10 ms ticks)
  return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) * 10;
}

/**
 * The verdict on one target from paired rounds: met or not by the median of the per-round values,
 * with every round's value, the spread and how many rounds met it on their own.
 * @param {string} label the target, e.g. "turn p50 <= memory p50 + 1 ms"
 * @param {number[]} perRound one value per round (a difference, a ratio, a rate)
 * @param {(v: number) => boolean} ok whether a value meets the target
 * @param {(v: number) => string} fmt how a value prints, unit included
 * @returns {string} one line: "label: met|NOT MET, median X (rounds a, b, c; min-max a..c; met in k of n)"
 */
export function verdictLine(label, perRound, ok, fmt) {
  const m = median(perRound);
  const met = perRound.filter(ok).length;
  return (
    `${label}: ${ok(m) ? "met" : "NOT MET"}, median ${fmt(m)} (rounds ${perRound.map(fmt).join(", ")}; ` +
    `min-max ${fmt(Math.min(...perRound))}..${fmt(Math.max(...perRound))}; met in ${met} of ${perRound.length} rounds)`
  );
}

/**
 * The verdict lines on issue 13's three turn targets (durable p50 <= memory p50 + 1 ms; durable
 * turns/s >= 80 % of memory's and >= 1,000) from paired rounds, each line a {@link verdictLine}.
 * A round's phases are noisy when other processes used more than `noisyCores` cores in one of
 * them; when some rounds are noisy and some clean, the lines are given again over the clean
 * rounds alone (after the lines over every round, which stay the verdict).
 * @param {object} opts
 * @param {{ turn: { p50: number }, rate: number, others: { seq: number, load: number } }[]} opts.durable
 *   per round: the durable gateway's sequential turn p50 (ms), turns/s with `parallel` sessions,
 *   and other processes' cores in its sequential phase and its parallel window
 * @param {typeof opts.durable} opts.memory the memory store's rounds, paired by index
 * @param {number} opts.parallel sessions in the parallel window (for the labels)
 * @param {number} opts.noisyCores the noise threshold, cores
 * @returns {{ lines: string[], noisy: boolean }} the lines to print, and whether any phase was noisy
 */
export function targetVerdicts({ durable, memory, parallel, noisyCores }) {
  const num = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const p50Diffs = durable.map((g, i) => g.turn.p50 - memory[i].turn.p50);
  const rateRatios = durable.map((g, i) => (g.rate / memory[i].rate) * 100);
  const rates = durable.map((g) => g.rate);
  const quiet = (g) => Math.max(g.others.seq, g.others.load) <= noisyCores;
  const all = durable.map((_, i) => i);
  const clean = all.filter((i) => quiet(durable[i]) && quiet(memory[i]));
  const noisy = clean.length < all.length;
  const block = (which) => {
    const pick = (list) => which.map((i) => list[i]);
    return [
      verdictLine(
        "durable turn p50 <= memory p50 + 1 ms",
        pick(p50Diffs),
        (v) => v <= 1,
        (v) => `${v >= 0 ? "+" : ""}${num(v, 2)} ms`,
      ),
      verdictLine(
        `durable turns/s (${parallel} sessions) >= 80 % of memory's`,
        pick(rateRatios),
        (v) => v >= 80,
        (v) => `${num(v, 0)} %`,
      ),
      verdictLine(
        `durable turns/s (${parallel} sessions) >= 1,000`,
        pick(rates),
        (v) => v >= 1000,
        (v) => num(v, 0),
      ),
    ].map((line) => `  ${line}`);
  };
  const lines = [
    `verdict, issue 13 (median of ${all.length} paired round(s)${noisy ? "; NOISY run, see the machine line below: not a verdict to rely on" : ""}):`,
    ...block(all),
  ];
  if (noisy && clean.length > 0) {
    lines.push(
      `verdict over the clean rounds only (${clean.map((i) => i + 1).join(", ")}: others <= ${noisyCores} cores in all four phases):`,
      ...block(clean),
    );
  }
  return { lines, noisy };
}

/**
 * The order of paired rounds: `pair` as given in round 1, reversed in round 2, as given in round
 * 3, ... So a drift of a shared machine over the minutes (another process's load starting or
 * ending, the disk's writeback) falls on both members alike instead of always on the second.
 * @param {[string, string]} pair the two things compared
 * @param {number} rounds >= 1
 * @returns {[string, string][]} per round, which runs first and which second
 */
export function alternatingRounds(pair, rounds) {
  return Array.from({ length: rounds }, (_, round) => (round % 2 === 0 ? [pair[0], pair[1]] : [pair[1], pair[0]]));
}
