#!/usr/bin/env node
// `npm run bench:plugins`: the cost of the sandbox. Side by side in one run: a bare Extism
// main-thread call (no limits) and an exoclaw sandboxed call (worker isolation, CPU and memory
// limits enforced) for 128 B, 1 KiB and 64 KiB payloads; a host function call; 100k calls with
// host functions (max call time); and cold start of the gateway with 20 plugins.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import createPlugin from "@extism/extism";
import { build } from "esbuild";
import { embedManifest, extractManifest } from "../scripts/lib/manifest-section.mjs";
import { freePort } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({ options: { calls: { type: "string", default: "20000" }, hostcalls: { type: "string", default: "100000" } } });
const CALLS = Number(opts.calls);
const HOST_CALLS = Number(opts.hostcalls);
const log = (s) => process.stderr.write(`${s}\n`);

// The sandbox is TypeScript; bundle its entry for this process (the worker script ships as .mjs).
async function importSandbox() {
  const out = join(ROOT, "dist", "bench-sandbox.mjs");
  await build({
    absWorkingDir: ROOT,
    entryPoints: ["host/src/plugins/sandbox/index.ts"],
    outfile: out,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "warning",
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  });
  return import(out);
}

function stats(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: at(0.5), p99: at(0.99), max: s[s.length - 1] };
}

const us = (ms) => (ms * 1000).toFixed(1);

async function timeCalls(n, call) {
  for (let i = 0; i < Math.min(2000, n / 5); i++) await call();
  const samples = new Array(n);
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await call();
    samples[i] = performance.now() - t;
  }
  return stats(samples);
}

function payload(bytes) {
  return new Uint8Array(bytes).fill(0x61);
}

async function coldStart(plugins) {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-plugins-"));
  const pdir = join(dir, "plugins");
  mkdirSync(pdir);
  // 20 distinct plugins: the calculator re-packed under 20 names (names and tool names must be unique).
  const calc = readFileSync(join(ROOT, "build/plugins/calculator.wasm"));
  const manifest = extractManifest(calc);
  for (let i = 0; i < plugins; i++) {
    const name = `calc_${String(i).padStart(2, "0")}`;
    const tools = manifest.tools.map((t) => ({ ...t, name: `${t.name}_${i}` }));
    writeFileSync(join(pdir, `${name}.wasm`), embedManifest(calc, { ...manifest, name, tools }));
  }
  const samples = [];
  // The first start fills the validation cache under the state dir; the rest start warm.
  for (let run = 0; run < 6; run++) {
    const port = await freePort();
    const t0 = performance.now();
    const proc = spawn(process.execPath, [join(ROOT, "bin/exoclaw.js"), "gateway", "--port", String(port), "--plugins-dir", pdir], {
      env: { ...process.env, EXOCLAW_STATE_DIR: dir, EXOCLAW_LOG_LEVEL: "warn" },
      stdio: "ignore",
    });
    for (;;) {
      try {
        if ((await fetch(`http://127.0.0.1:${port}/health`)).status === 200) break;
      } catch {
        // not yet listening
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    if (run > 0) samples.push(performance.now() - t0);
    await new Promise((r) => {
      proc.once("exit", r);
      proc.kill("SIGTERM");
    });
  }
  rmSync(dir, { recursive: true, force: true });
  return stats(samples);
}

async function main() {
  const sandbox = await importSandbox();
  const echoWasm = readFileSync(join(ROOT, "build/fixtures/echo.wasm"));
  const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-state-"));

  // The echo fixture imports exoclaw:host/v1.clock_now; the bare plugin gets a stub for it.
  const bare = await createPlugin(
    { wasm: [{ data: echoWasm }] },
    { useWasi: false, runInWorker: false, functions: { "exoclaw:host/v1": { clock_now: (ctx) => ctx.store(new Uint8Array(20)) } } },
  );
  const pool = sandbox.createSandboxPool({
    name: "echo",
    wasm: echoWasm,
    grant: { clock: true },
    limits: { timeoutMs: 1000, memoryBytes: 16 << 20, maxOutputBytes: 1 << 20, maxInFlight: 1, maxQueued: 64 },
    stateDir: state,
    services: sandbox.createHostServices(),
    logger: { info() {}, warn() {}, debug() {} },
  });

  const rows = [["payload", "bare Extism p50 us", "p99 us", "sandboxed p50 us", "p99 us", "ratio p50"]];
  for (const size of [128, 1024, 64 * 1024]) {
    const input = payload(size);
    log(`calls with ${size} B...`);
    const b = await timeCalls(CALLS, () => bare.call("echo", input));
    const s = await timeCalls(CALLS, async () => {
      const r = await pool.call("echo", input);
      if (!r.ok) throw new Error(`sandboxed call failed: ${r.kind} ${r.message}`);
    });
    rows.push([`${size} B`, us(b.p50), us(b.p99), us(s.p50), us(s.p99), (s.p50 / b.p50).toFixed(2)]);
  }

  log(`host function calls (${HOST_CALLS})...`);
  const hf = await pool.call("host_clock_loop", new TextEncoder().encode(String(1000)));
  const perHostCallUs = hf.ok ? Number(new TextDecoder().decode(hf.output)) : NaN;
  const many = await timeCalls(HOST_CALLS, () => pool.call("host_clock", new Uint8Array(0)));

  log("cold start with 20 plugins...");
  const cold = await coldStart(20);
  await pool.close();
  await bare.close();
  rmSync(state, { recursive: true, force: true });

  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join("  "));
  console.log(
    `\nhost function (clock_now) per call, measured inside the guest: ${Number.isFinite(perHostCallUs) ? perHostCallUs.toFixed(2) : "n/a"} us (target <= 5)`,
  );
  console.log(
    `${HOST_CALLS} sandboxed calls each making a host call: p50 ${us(many.p50)} us, p99 ${us(many.p99)} us, max ${many.max.toFixed(2)} ms (target: none over 10 ms)`,
  );
  console.log(`gateway ready with 20 plugins: p50 ${cold.p50.toFixed(0)} ms, max ${cold.max.toFixed(0)} ms (target < 300)`);
  console.log("targets: sandboxed 128 B p50 <= 50 us");
}

main().catch((err) => {
  log(`bench failed: ${err.stack ?? err}`);
  process.exit(1);
});
