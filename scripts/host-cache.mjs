#!/usr/bin/env node
// Writes the host bundle's V8 code cache, dist/exoclaw.cjs.cache, with the gateway's start-up path
// compiled in it: `node scripts/host-cache.mjs` (the end of `npm run build`, and of
// `npm run build:host` once the first-party plugins are built).
//
// Why: the cache `exoclaw --version` leaves holds the bundle's top level only; every function a
// gateway runs on its way to ready (config, plugin loading, the store's open, the listener) was
// then compiled lazily, at every start. A cache written after a real start holds them compiled:
// on the 2-core machine a start's main-thread CPU went down ~17 ms p50 (bench/ab-ready.mjs, 20
// alternating starts each, docs/architecture.md "Start-up", sixth pass).
//
// How: two zero-config gateways in a scratch state directory (a fresh one, then the same one
// again, so both a first start and a restart over an existing store are compiled), each started
// to its ready line and stopped with SIGTERM; bin/exoclaw.js writes the cache at their exit
// (EXOCLAW_CODE_CACHE=train). They run with `EXOCLAW_HEAP=throughput`: V8 stamps a cache with the
// flags of the moment it is written and rejects it under others, and the compact heap mode (the
// default) switches a V8 flag once the gateway runs, after the cache is read. Best effort: a
// training run that fails leaves the top-level cache of `exoclaw --version` and a warning, never a
// failed build (the cache only saves time; a missing or rejected one is compiled and rewritten).
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** How long one training start may take to reach ready, ms (a loaded CI machine: seconds). */
const READY_TIMEOUT_MS = 60_000;

/**
 * Writes dist/exoclaw.cjs.cache (see the header): the top-level cache first, then, when the
 * first-party plugins are built (build/plugins/*.wasm), the trained one.
 * @param {string} root the package root (bin/, dist/, build/plugins/)
 * @returns {Promise<boolean>} true when the trained cache was written, false when only the top-level one was (a warning says why)
 */
export async function writeHostCache(root = ROOT) {
  const bin = join(root, "bin/exoclaw.js");
  execFileSync(process.execPath, [bin, "--version"], { cwd: root, stdio: "ignore" });
  const plugins = join(root, "build/plugins");
  if (!existsSync(plugins) || !readdirSync(plugins).some((f) => f.endsWith(".wasm"))) return false;
  const scratch = mkdtempSync(join(tmpdir(), "exoclaw-host-cache-"));
  try {
    for (const run of ["a fresh state directory", "the same state directory again"]) {
      const problem = await trainOnce(bin, scratch);
      if (problem !== undefined) {
        // The cache file is the last one written whole (atomically): the top-level one, or the first run's.
        process.stderr.write(`host-cache: the training start on ${run} failed (${problem}); the code cache may hold the bundle's top level only\n`);
        return false;
      }
    }
    return true;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * One gateway of the training: started in `scratch` (its state directory and working directory,
 * so no exoclaw.toml of the caller's directory is read), stopped at its ready line.
 * @param {string} bin the package's bin/exoclaw.js
 * @param {string} scratch a scratch directory (the state directory is `scratch`/state)
 * @returns {Promise<string | undefined>} what went wrong, or undefined when it exited 0 after its ready line
 */
function trainOnce(bin, scratch) {
  const env = { ...process.env };
  // Zero config: nothing of the caller's environment chooses the store, the config or a provider.
  for (const name of Object.keys(env)) if (name.startsWith("EXOCLAW_")) delete env[name];
  Object.assign(env, {
    EXOCLAW_CODE_CACHE: "train",
    EXOCLAW_HEAP: "throughput",
    EXOCLAW_STATE_DIR: join(scratch, "state"),
    EXOCLAW_LOG_LEVEL: "info",
    // Never called: the training sends no message. A placeholder so no real key is read.
    ANTHROPIC_API_KEY: "sk-code-cache-training",
  });
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [bin, "gateway", "--port", "0"], { cwd: scratch, env, stdio: ["ignore", "pipe", "pipe"] });
    let ready = false;
    let stderr = "";
    let buffered = "";
    const timer = setTimeout(() => proc.kill("SIGKILL"), READY_TIMEOUT_MS);
    proc.stdout.setEncoding("utf8").on("data", (chunk) => {
      buffered += chunk;
      for (let nl = buffered.indexOf("\n"); nl >= 0; nl = buffered.indexOf("\n")) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (!ready && line.includes('"gateway ready"')) {
          ready = true;
          // A moment past ready: the steps it leaves for later (the store's engine, the warm-up) run too.
          setTimeout(() => proc.kill("SIGTERM"), 300);
        }
      }
    });
    proc.stderr.setEncoding("utf8").on("data", (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    proc.on("error", (err) => {
      clearTimeout(timer);
      resolve(err.message);
    });
    proc.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (!ready) resolve(`no ready line within ${READY_TIMEOUT_MS} ms: exit ${code ?? signal}${stderr ? `: ${stderr.trim().split("\n").pop()}` : ""}`);
      else resolve(code === 0 ? undefined : `exit ${code ?? signal} after ready`);
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = performance.now();
  const trained = await writeHostCache();
  console.log(
    `host code cache -> dist/exoclaw.cjs.cache (${trained ? "gateway start-up compiled" : "top level only"}) in ${Math.round(performance.now() - t0)} ms`,
  );
}
