/**
 * What a zero-config gateway loads before it is ready (issue 13, start-up; docs/architecture.md
 * "Start-up"): bin/ is CommonJS, so Node starts it without its ES module loader; the built-ins no
 * part of start-up uses are stand-ins until first use (`$xolazy`, bin/load-bundle.js
 * LAZY_BUILTINS), msgpackr's native addon loads after ready, and the NATS client is not in the host
 * bundle (dist/nats.cjs, loaded on first use). The stand-ins must behave as the modules they stand
 * for. Speed is measured by bench/ab-ready.mjs, not here.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { PACKAGE_ROOT } from "../../host/src/paths.js";

const CLI = join(PACKAGE_ROOT, "bin/exoclaw.js");
const PRELOAD = join(PACKAGE_ROOT, "tests/support/ready-modules.cjs");

/** What a gateway had loaded when ready, and the addons it had mapped once `later` returned true (or 20 s passed). */
interface Loaded {
  builtins: string[];
  files: string[];
  addons: string[];
  later: string[];
}

/**
 * Starts a zero-config gateway (memory store, first-party plugins) with the preload; what it had
 * loaded when ready, and later (the first report of addons `later` accepts, else the last in 20 s).
 */
async function modulesAtReady(later: (addons: string[]) => boolean = () => true): Promise<Loaded> {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-start-modules-"));
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|NODE_OPTIONS)/.test(k)) clean[k] = v;
  const proc = spawn(process.execPath, ["--require", PRELOAD, CLI, "gateway", "--port", "0"], {
    env: { ...clean, EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "memory", EXOCLAW_LOG_LEVEL: "info", ANTHROPIC_API_KEY: "sk-test-start-modules" },
    stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    return await new Promise((resolve, reject) => {
      let err = "";
      let atReady: Omit<Loaded, "later"> | undefined;
      let last: string[] = [];
      const timer = setTimeout(() => (atReady === undefined ? reject(new Error(`not ready in 20 s: ${err}`)) : resolve({ ...atReady, later: last })), 20_000);
      createInterface({ input: proc.stderr! }).on("line", (line) => {
        if (line.startsWith("ready-modules: ")) atReady = JSON.parse(line.slice("ready-modules: ".length));
        else if (line.startsWith("later-addons: ")) {
          last = JSON.parse(line.slice("later-addons: ".length));
          if (atReady !== undefined && later(last)) {
            clearTimeout(timer);
            resolve({ ...atReady, later: last });
          }
        } else err += `${line}\n`;
      });
      proc.on("exit", (code) => reject(new Error(`the gateway exited (${code}) before ready: ${err}`)));
    });
  } finally {
    proc.kill("SIGTERM");
    await new Promise((r) => (proc.exitCode !== null ? r(undefined) : proc.once("exit", r)));
    rmSync(state, { recursive: true, force: true });
  }
}

/** Runs a CommonJS snippet in a fresh node in the package root; its stdout parsed as JSON. */
const nodeJson = (code: string): unknown => JSON.parse(execFileSync(process.execPath, ["-e", code], { cwd: PACKAGE_ROOT, encoding: "utf8", timeout: 60_000 }));

describe("a zero-config gateway at ready", () => {
  it("has not loaded the ES module loader, the built-ins start-up does not use, msgpackr's native addon (loaded after)", { timeout: 60_000 }, async () => {
    const msgpackrAddon = (addons: string[]) => addons.some((f) => f.includes("msgpackr-extract"));
    const { builtins, addons, later } = await modulesAtReady(msgpackrAddon);
    // What start-up does use is there (the check sees what it should).
    expect(builtins).toContain("crypto");
    expect(builtins).toContain("fs/promises");
    // worker_threads: pino and thread-stream destructure it at their load; the build patches both
    // (scripts/bundle-host.mjs, deferWorkerThreads), and no plugin sandbox starts a worker before ready.
    for (const unused of [
      "child_process",
      "http",
      "https",
      "tls",
      "zlib",
      "dgram",
      "assert",
      "worker_threads",
      "internal/worker",
      "internal/modules/esm/module_job",
    ]) {
      expect(builtins, unused).not.toContain(unused);
    }
    // uWebSockets.js's addon is loaded (the listener), msgpackr's is not (it loads after ready).
    expect(addons.some((f) => f.includes("uws"))).toBe(true);
    expect(msgpackrAddon(addons)).toBe(false);
    // ... and then it is (the host bundle once looked for it next to dist/exoclaw.cjs and never found it).
    expect(msgpackrAddon(later)).toBe(true);
  });
});

describe("the host bundle", () => {
  it("leaves the NATS client out (dist/nats.cjs), and gives it the same exports as node_modules", () => {
    const sources = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs.map"), "utf8")) as { sources: string[] }).sources;
    expect(sources.filter((s) => s.includes("node_modules/@nats-io/"))).toEqual([]);
    expect(readFileSync(join(PACKAGE_ROOT, "dist/exoclaw.cjs"), "latin1")).toContain('$xolazy("@nats-io/jetstream")');
    const shapes = nodeJson(`
      const { BUNDLED_PACKAGES, PACKAGES_BUNDLE, runBundle } = require("./bin/load-bundle.js");
      const { exports } = runBundle(PACKAGES_BUNDLE, undefined, (s) => import(s));
      const out = {};
      for (const p of BUNDLED_PACKAGES) out[p] = [Object.keys(exports.require(p)).sort(), Object.keys(require(p)).sort()];
      // One evaluation per package: the same object again.
      out.same = exports.require("@nats-io/kv") === exports.require("@nats-io/kv");
      console.log(JSON.stringify(out));`) as Record<string, unknown>;
    expect(shapes.same).toBe(true);
    for (const [p, v] of Object.entries(shapes)) {
      if (p === "same") continue;
      const [bundled, installed] = v as [string[], string[]];
      expect(bundled.length, p).toBeGreaterThan(5);
      expect(bundled, p).toEqual(installed);
    }
  });
});

describe("a lazy built-in stand-in (lazyBuiltin)", () => {
  it("requires the module at its first use only, and then behaves as the module", () => {
    const r = nodeJson(`
      const { lazyBuiltin } = require("./bin/load-bundle.js");
      const loads = [];
      const req = (id) => (loads.push(id), require(id));
      const zlib = lazyBuiltin(req, "node:zlib");
      const before = loads.length;
      const roundTrip = zlib.gunzipSync(zlib.gzipSync(Buffer.from("abc"))).toString();
      const keys = Reflect.ownKeys(zlib).length === Reflect.ownKeys(require("node:zlib")).length;
      const has = "createGzip" in zlib && !("nope" in zlib);
      const events = lazyBuiltin(req, "events");
      const emitter = new events.EventEmitter();
      const assert = lazyBuiltin(req, "assert");
      assert(true);
      let threw = "";
      try { assert(false, "no"); } catch (err) { threw = err.code; }
      let strict = "";
      try { assert.strictEqual(1, 2); } catch (err) { strict = err.code; }
      console.log(JSON.stringify({ before, loads, roundTrip, keys, has, isEmitter: emitter instanceof require("events"), threw, strict }));`);
    expect(r).toEqual({
      before: 0,
      loads: ["node:zlib", "events", "assert"],
      roundTrip: "abc",
      keys: true,
      has: true,
      isEmitter: true,
      threw: "ERR_ASSERTION",
      strict: "ERR_ASSERTION",
    });
  });
});
