// Pool mechanics: in-flight and queue limits, abort, idle reaping, close, large payloads,
// start-up failures, the bundled worker, and the cost of a sandboxed call.
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { build } from "esbuild";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, describe, expect, it } from "vitest";
import type { CallOutcome, SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { encodeULEB128 } from "../../../scripts/lib/manifest-section.mjs";
import { bytes, fixture, fixturePool, text, type PoolSetup } from "./support.js";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const tool = (name: string, input: unknown = {}): Uint8Array => packr.pack({ name, input });
const content = (r: CallOutcome): string => {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return (unpackr.unpack(r.output) as { content: string }).content;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const pools: SandboxPool[] = [];
async function hostile(setup: PoolSetup = {}): Promise<SandboxPool> {
  const pool = await fixturePool("hostile", { ...setup, limits: { timeoutMs: 300, ...setup.limits } });
  pools.push(pool);
  return pool;
}

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
});

describe("in flight and queued", () => {
  it("runs at most maxInFlight calls, queues up to maxQueued, refuses the rest as busy", async () => {
    const pool = await hostile({ limits: { maxInFlight: 2, maxQueued: 1 } });
    const loops = [pool.call("call", tool("loop")), pool.call("call", tool("loop"))];
    const queued = pool.call("call", tool("count"));
    expect(pool.stats()).toMatchObject({ instances: 2, queued: 1 });
    const t0 = performance.now();
    const refused = await pool.call("call", tool("count"));
    expect(performance.now() - t0).toBeLessThan(20);
    expect(refused).toMatchObject({ ok: false, kind: "busy", message: "plugin 'hostile' is busy: 2 calls running and 1 waiting" });
    expect((await Promise.all(loops)).map((r) => (r.ok ? "ok" : r.kind))).toEqual(["timeout", "timeout"]);
    // The queued call gets a replacement instance once a looping one is stopped.
    expect(content(await queued)).toBe("1");
    expect(pool.stats()).toMatchObject({ calls: 4, queued: 0, failures: { busy: 1, timeout: 2 } });
  });

  it("reuses idle instances and starts new ones lazily", async () => {
    const pool = await hostile({ limits: { maxInFlight: 3 } });
    expect(pool.stats().instances).toBe(0);
    for (let i = 0; i < 5; i++) await pool.call("call", tool("count"));
    expect(pool.stats().instances).toBe(1);
    expect(content(await pool.call("call", tool("count")))).toBe("6");
  });

  it("stops instances that stay idle and starts fresh ones on demand", async () => {
    const pool = await hostile({ idleTimeoutMs: 100 });
    expect(content(await pool.call("call", tool("count")))).toBe("1");
    expect(pool.stats().instances).toBe(1);
    await sleep(400);
    expect(pool.stats().instances).toBe(0);
    expect(content(await pool.call("call", tool("count")))).toBe("1");
  });
});

describe("abort and close", () => {
  it("an abort stops a running call at once and recycles its instance", async () => {
    const pool = await hostile({ limits: { timeoutMs: 5000, maxInFlight: 1 } });
    await pool.ready?.();
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 50);
    const r = await pool.call("call", tool("loop"), ac.signal);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(r).toMatchObject({ ok: false, kind: "aborted", message: "plugin 'hostile': the call was aborted by the caller; the instance was stopped" });
    expect(content(await pool.call("call", tool("count")))).toBe("1");
    const pre = new AbortController();
    pre.abort();
    expect(await pool.call("call", tool("count"), pre.signal)).toMatchObject({
      ok: false,
      kind: "aborted",
      message: "plugin 'hostile': the call was aborted by the caller",
    });
  });

  it("an abort takes a waiting call out of the queue", async () => {
    const pool = await hostile({ limits: { maxInFlight: 1 } });
    const looping = pool.call("call", tool("loop"));
    const ac = new AbortController();
    const waiting = pool.call("call", tool("count"), ac.signal);
    expect(pool.stats().queued).toBe(1);
    ac.abort();
    expect(await waiting).toMatchObject({ ok: false, kind: "aborted", message: "plugin 'hostile': the call was aborted by the caller" });
    expect(pool.stats().queued).toBe(0);
    expect((await looping).ok).toBe(false);
  });

  it("close lets running calls finish, fails queued and later ones with closed, and stops every instance", async () => {
    const pool = await hostile({ limits: { maxInFlight: 1, timeoutMs: 300 } });
    await pool.ready?.();
    const running = pool.call("call", tool("loop"));
    const queued = pool.call("call", tool("count"));
    await sleep(20);
    const closing = pool.close();
    expect(await queued).toMatchObject({ ok: false, kind: "closed", message: "plugin 'hostile' is unloaded (its sandbox pool is closed)" });
    await closing;
    expect(await running).toMatchObject({ ok: false, kind: "timeout" });
    expect(await pool.call("call", tool("count"))).toMatchObject({ ok: false, kind: "closed" });
    expect(pool.stats()).toMatchObject({ instances: 0, busy: 0, queued: 0 });
    await pool.close();
  });
});

describe("payloads and failures", () => {
  it("moves inputs and outputs of any size (inline up to 256 KiB, through a port beyond)", async () => {
    const pool = await fixturePool("echo", { limits: { maxOutputBytes: 4 << 20 } });
    pools.push(pool);
    for (const size of [0, 1, 200_000, 262_139, 262_140, 1 << 20, 3 << 20]) {
      const input = randomBytes(size);
      const r = await pool.call("echo", input);
      expect(r.ok, `size ${size}`).toBe(true);
      if (r.ok) expect(Buffer.from(r.output).equals(input), `size ${size}`).toBe(true);
    }
  });

  it("an export that does not exist is a plugin_error", async () => {
    const pool = await hostile();
    expect(await pool.call("nope", new Uint8Array(0))).toMatchObject({
      ok: false,
      kind: "plugin_error",
      message: "plugin 'hostile': the plugin has no exported function 'nope'",
    });
  });

  it("a module that traps while starting fails ready() and calls with the reason", async () => {
    const str = (s: string) => [s.length, ...Buffer.from(s)];
    const sections: Array<[number, number[]]> = [
      [1, [0x01, 0x60, 0x00, 0x00]],
      [3, [0x01, 0x00]],
      [7, [0x01, ...str("call"), 0x00, 0x00]],
      [8, [0x00]],
      [10, [0x01, 0x03, 0x00, 0x00, 0x0b]],
    ];
    const b = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    for (const [id, c] of sections) b.push(id, ...encodeULEB128(c.length), ...c);
    const { createSandboxPool, createHostServices } = await import("../../../host/src/plugins/sandbox/index.js");
    const { DEFAULT_LIMITS } = await import("../../../host/src/plugins/capabilities.js");
    const pool = createSandboxPool({
      name: "broken",
      wasm: Uint8Array.from(b),
      grant: {},
      limits: DEFAULT_LIMITS,
      stateDir: os.tmpdir(),
      services: createHostServices(),
      logger: { info() {}, warn() {}, debug() {} },
    });
    pools.push(pool);
    await expect(pool.ready?.()).rejects.toThrow(/unreachable/);
    expect(await pool.call("call", new Uint8Array(0))).toMatchObject({
      ok: false,
      kind: "trap",
      message: expect.stringMatching(/^plugin 'broken' could not start an instance: .*unreachable/),
    });
    expect(pool.stats().instances).toBe(0);
  });
});

describe("the bundled worker", () => {
  it("runs from an esbuild bundle with the worker next to it (as dist/ does)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "exoclaw-bundle-"));
    try {
      const root = path.resolve(import.meta.dirname, "../../..");
      const common = { bundle: true, platform: "node" as const, format: "esm" as const, target: "node20", logLevel: "warning" as const };
      const banner = { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" };
      await build({
        ...common,
        banner,
        entryPoints: [path.join(root, "host/src/plugins/sandbox/sandbox-worker.mjs")],
        outfile: path.join(dir, "sandbox-worker.mjs"),
      });
      const entry = path.join(dir, "entry.ts");
      await writeFile(
        entry,
        `import { readFileSync } from "node:fs";
import { createHostServices, createSandboxPool, SANDBOX_WORKER_URL } from ${JSON.stringify(path.join(root, "host/src/plugins/sandbox/index.ts"))};
const pool = createSandboxPool({ name: "echo", wasm: readFileSync(process.argv[2]), grant: { clock: true },
  limits: { timeoutMs: 2000, memoryBytes: 16 << 20, maxOutputBytes: 1 << 20, maxInFlight: 1, maxQueued: 1 },
  stateDir: process.argv[3], services: createHostServices(), logger: { info() {}, warn() {}, debug() {} } });
const r = await pool.call("echo", new TextEncoder().encode("bundled"));
const c = await pool.call("host_clock_loop", new TextEncoder().encode("100"));
console.log(JSON.stringify({ url: SANDBOX_WORKER_URL.href, echo: r.ok ? new TextDecoder().decode(r.output) : r, clock: c.ok }));
await pool.close();
`,
      );
      await build({ ...common, banner, entryPoints: [entry], outfile: path.join(dir, "entry.mjs") });
      const wasmFile = path.join(dir, "echo.wasm");
      await writeFile(wasmFile, await fixture("echo"));
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [path.join(dir, "entry.mjs"), wasmFile, dir], { cwd: dir });
      expect(stderr).toBe("");
      expect(JSON.parse(stdout)).toEqual({ url: `file://${path.join(dir, "sandbox-worker.mjs")}`, echo: "bundled", clock: true });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("cost of a sandboxed call", () => {
  it("a loop of calls that finish within the main-thread spin still lets timers and I/O run", async () => {
    const pool = await fixturePool("echo", { limits: { maxInFlight: 1 } });
    pools.push(pool);
    await pool.ready?.();
    let fired = 0;
    const timer = setInterval(() => fired++, 1);
    const t0 = performance.now();
    let calls = 0;
    while (performance.now() - t0 < 200) {
      await pool.call("echo", bytes("x"));
      calls++;
    }
    clearInterval(timer);
    expect(calls).toBeGreaterThan(100);
    expect(fired).toBeGreaterThan(20);
  });

  it("reports p50/p99 for 128 B, 1 KiB and 64 KiB echo calls and the clock_now host function", async () => {
    const pool = await fixturePool("echo", { grant: { clock: true }, limits: { maxInFlight: 1 } });
    pools.push(pool);
    await pool.ready?.();
    const rows: string[] = [];
    const p50s: Record<number, number> = {};
    for (const [size, n] of [
      [128, 3000],
      [1024, 3000],
      [65536, 300],
    ] as const) {
      const input = new Uint8Array(size).fill(0x61);
      for (let i = 0; i < n / 3; i++) await pool.call("echo", input);
      const samples: number[] = [];
      for (let i = 0; i < n; i++) {
        const t = performance.now();
        const r = await pool.call("echo", input);
        samples.push(performance.now() - t);
        if (!r.ok) throw new Error(r.message);
      }
      samples.sort((a, b) => a - b);
      const p50 = (samples[Math.floor(n / 2)] as number) * 1000;
      const p99 = (samples[Math.floor(n * 0.99)] as number) * 1000;
      p50s[size] = p50;
      rows.push(`${String(size).padStart(6)} B: p50 ${p50.toFixed(1)} us, p99 ${p99.toFixed(1)} us`);
    }
    const perCall: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await pool.call("host_clock_loop", bytes("10000"));
      if (r.ok) perCall.push(Number(text(r.output)));
    }
    const clockUs = Math.min(...perCall);
    console.log(`sandboxed echo (main-thread view):\n${rows.join("\n")}\nclock_now inside the guest: ${clockUs.toFixed(2)} us per call`);
    // Generous bounds: this runs next to other test files on a small machine.
    expect(p50s[128]).toBeLessThan(1000);
    expect(clockUs).toBeLessThan(20);
  });
});
