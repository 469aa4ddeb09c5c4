// Hot loading: files dropped into, replaced in and deleted from a watched plugin directory.
// First in process (registry + watcher, with a sandbox fake that can hold calls open, to pin
// down the swap semantics), then end to end: a gateway subprocess keeps serving chat turns that
// use the calculator while a plugin comes, changes and goes, and plugin.list follows within ~1 s.
import { execFile } from "node:child_process";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { Packr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugins, watchPluginDirs, type PluginHost, type PluginWatcher } from "../../host/src/plugins/index.js";
import type { SandboxPool, SandboxPoolOptions } from "../../host/src/plugins/sandbox/types.js";
import { embedManifest, extractManifest, manifestFromToml } from "../../scripts/lib/manifest-section.mjs";
import { parse as parseToml } from "smol-toml";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";
import { captureLogger, compileWat, REPO_ROOT, tempDir } from "./support.js";

const packr = new Packr({ useRecords: false });
let root = "";
let raw: Uint8Array;
let baseManifest: Record<string, unknown>;

/** hello.wat packed with the given manifest changes. */
const variant = (extra: Record<string, unknown>) => embedManifest(raw, { ...baseManifest, ...extra });

/** Writes a file the way deploy tools should: a temporary name, then an atomic rename. */
async function atomicWrite(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, bytes);
  await rename(tmp, file);
}

/** Polls `check` every 10 ms until it is truthy; returns the time it took, ms. */
async function within(ms: number, check: () => unknown | Promise<unknown>, what: string): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await check()) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  root = await tempDir();
  raw = await compileWat("plugins/fixtures/wat/hello.wat");
  baseManifest = manifestFromToml(parseToml(await readFile(path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "utf8")) as Record<string, unknown>);
}, 60_000);

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A sandbox fake: answers `v<manifest version>`, can hold calls open, records close(). */
interface FakePool {
  version: string;
  closed: boolean;
  running: number;
  release: Array<() => void>;
}

describe("hot loading in process", () => {
  const pools: FakePool[] = [];
  let hold = false;
  let dir = "";
  let host: PluginHost;
  let watcher: PluginWatcher;
  const logger = captureLogger();
  const file = () => path.join(dir, "hello.wasm");

  function createPool(o: SandboxPoolOptions): SandboxPool {
    const fp: FakePool = { version: String(extractManifest(o.wasm)["version"]), closed: false, running: 0, release: [] };
    pools.push(fp);
    return {
      async call() {
        if (fp.closed) return { ok: false, kind: "closed", message: "closed", durationMs: 0 };
        fp.running++;
        if (hold) await new Promise<void>((r) => fp.release.push(r));
        fp.running--;
        return { ok: true, output: packr.pack({ content: `v${fp.version}`, isError: false }), durationMs: 1 };
      },
      stats: () => ({ instances: 0, busy: fp.running, queued: 0, calls: 0, failures: {}, p50Ms: 0, p99Ms: 0 }),
      async close() {
        expect(fp.running).toBe(0); // the registry only closes a drained pool
        fp.closed = true;
      },
    };
  }
  const pool = (version: string) => pools.find((p) => p.version === version);
  const shaOf = (name: string) => host.list().find((p) => p.name === name)?.sha256;

  beforeAll(async () => {
    dir = path.join(root, "inproc");
    await mkdir(dir);
    await writeFile(file(), variant({ version: "1" }));
    host = await loadPlugins({ dirs: [dir], logger, createPool });
    watcher = watchPluginDirs(host, [dir], { debounceMs: 50, logger });
  });
  afterAll(async () => {
    hold = false;
    for (const p of pools) for (const r of p.release.splice(0)) r();
    await watcher?.close();
    await host?.close();
  });

  it("is lazy: loading creates the pool but runs nothing", () => {
    expect(host.list()).toMatchObject([{ name: "hello-wat", version: "1", status: "loaded" }]);
    expect(pools).toHaveLength(1);
  });

  it("swaps a changed file atomically: running calls finish on the old version, then it closes", async () => {
    hold = true;
    const first = host.callTool("hello_wat", {});
    await within(1000, () => pool("1")!.running === 1, "call running on v1");
    const oldSha = shaOf("hello-wat");
    await atomicWrite(file(), variant({ version: "2" }));
    await within(1000, () => shaOf("hello-wat") !== oldSha, "v2 listed");
    expect(host.list()[0]).toMatchObject({ version: "2", status: "loaded" });
    hold = false;
    expect(await host.callTool("hello_wat", {})).toEqual({ content: "v2", isError: false }); // new calls: new version
    expect(pool("1")!.closed).toBe(false); // still running a call
    for (const r of pool("1")!.release.splice(0)) r();
    expect(await first).toEqual({ content: "v1", isError: false });
    await within(1000, () => pool("1")!.closed, "v1 closed after its call finished");
    expect(host.list()[0]).toMatchObject({ calls: 2, errors: 0 });
  });

  it("ignores a rewrite with identical content", async () => {
    const before = pools.length;
    await atomicWrite(file(), variant({ version: "2" }));
    await new Promise((r) => setTimeout(r, 200));
    expect(pools).toHaveLength(before);
  });

  it("keeps the running version when the new content is invalid, and says so", async () => {
    await atomicWrite(file(), "not wasm at all");
    await within(1000, () => host.list()[0]?.error !== undefined, "error reported");
    expect(host.list()[0]).toMatchObject({
      version: "2",
      status: "loaded",
      error: expect.stringMatching(/new version was rejected \(not a valid WebAssembly module/),
    });
    expect(await host.callTool("hello_wat", {})).toEqual({ content: "v2", isError: false });
    await atomicWrite(file(), variant({ version: "3" }));
    await within(1000, () => host.list()[0]?.version === "3", "v3 listed");
    expect(host.list()[0]?.error).toBeUndefined();
  });

  it("lists a new invalid file as an error with the reason, then loads it once it is valid", async () => {
    const other = path.join(dir, "other.wasm");
    await atomicWrite(other, "garbage");
    await within(1000, () => host.list().some((p) => p.path === other), "error entry listed");
    expect(host.list().find((p) => p.path === other)).toMatchObject({
      name: "other",
      status: "error",
      tools: [],
      error: expect.stringMatching(/not a valid WebAssembly module/),
    });
    expect(logger.warnings().some((w) => w.fields["file"] === other)).toBe(true);
    await atomicWrite(other, variant({ name: "other", version: "9", tools: [{ name: "other_tool", description: "d", inputSchema: { type: "object" } }] }));
    await within(1000, () => host.list().find((p) => p.path === other)?.status === "loaded", "other loaded");
    expect(await host.callTool("other_tool", {})).toEqual({ content: "v9", isError: false });
  });

  it("unloads a deleted file after its running calls finish", async () => {
    hold = true;
    const running = host.callTool("other_tool", {});
    await within(1000, () => pool("9")!.running === 1, "call running");
    await rm(path.join(dir, "other.wasm"));
    await within(1000, () => !host.list().some((p) => p.name === "other"), "other gone");
    expect(await host.callTool("other_tool", {})).toEqual({ content: "unknown tool 'other_tool'", isError: true });
    expect(pool("9")!.closed).toBe(false);
    hold = false;
    for (const r of pool("9")!.release.splice(0)) r();
    expect(await running).toEqual({ content: "v9", isError: false });
    await within(1000, () => pool("9")!.closed, "closed after drain");
  });

  it("unload(name) sticks until the file changes; load(path) brings it back", async () => {
    const gone = await host.unload("hello-wat");
    expect(gone).toMatchObject({ name: "hello-wat", version: "3" });
    await expect(host.unload("hello-wat")).rejects.toThrow('no plugin named "hello-wat" is loaded');
    await host.syncFile(file()); // same content: stays unloaded
    expect(host.list()).toEqual([]);
    const back = await host.load(file());
    expect(back).toMatchObject({ name: "hello-wat", version: "3", status: "loaded" });
    await expect(host.load(path.join(dir, "missing.wasm"))).rejects.toThrow(/missing\.wasm: cannot read/);
    expect(host.list().map((p) => p.name)).toEqual(["hello-wat"]); // a failed explicit load lists nothing
  });

  it("a second file claiming a loaded name is an error until the first one goes", async () => {
    const twin = path.join(dir, "twin.wasm");
    await atomicWrite(twin, variant({ version: "twin" }));
    await within(1000, () => host.list().some((p) => p.path === twin), "twin listed");
    expect(host.list().find((p) => p.path === twin)).toMatchObject({ status: "error", error: expect.stringMatching(/already loaded from .*hello\.wasm/) });
    await rm(file());
    await within(1000, () => host.list().find((p) => p.path === twin)?.status === "loaded", "twin takes over");
    expect(await host.callTool("hello_wat", {})).toEqual({ content: "vtwin", isError: false });
  });
});

describe("watched directory lifecycle", () => {
  it("follows a directory that is created late, deleted and created again", async () => {
    const dir = path.join(root, "late");
    const host = await loadPlugins({ dirs: [dir] });
    const watcher = watchPluginDirs(host, [dir], { debounceMs: 20, retryMs: 100 });
    try {
      expect(host.list()).toEqual([]);
      await mkdir(dir);
      await writeFile(path.join(dir, "hello.wasm"), variant({}));
      await within(2000, () => host.list()[0]?.status === "loaded", "loaded after the directory appeared");
      expect(await host.callTool("hello_wat", {})).toEqual({ content: "hello from wat", isError: false });
      await rm(dir, { recursive: true });
      await within(2000, () => host.list().length === 0, "unloaded with its directory");
      await mkdir(dir);
      await atomicWrite(path.join(dir, "hello.wasm"), variant({ version: "5" }));
      await within(2000, () => host.list()[0]?.version === "5", "loaded from the new directory");
    } finally {
      await watcher.close();
      await host.close();
    }
  });
});

const run = promisify(execFile);

describe("hot loading in a running gateway", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let client: RpcClient;
  let pluginsDir = "";
  let state = "";
  let config = "";
  const cliEnv = () => {
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)) clean[k] = v;
    return { ...clean, EXOCLAW_STATE_DIR: state };
  };

  beforeAll(async () => {
    pluginsDir = path.join(root, "gw-plugins");
    state = path.join(root, "gw-state");
    config = path.join(root, "gw.toml");
    await mkdir(pluginsDir);
    await writeFile(config, `[plugins.grants.hello-wat]\nclock = true\n`);
    await writeFile(path.join(root, "hello.raw.wasm"), raw);
    emulator = await startEmulator({ record: false });
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state }, [
      "--plugins-dir",
      pluginsDir,
      "--config",
      config,
    ]);
    client = await RpcClient.connect(gateway.url);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await gateway?.stop();
    await emulator?.close();
  });

  const list = async (): Promise<any[]> => (await client.call("plugin.list")).response.msg.result;
  const hello = async () => (await list()).find((p) => p.name === "hello-wat");

  it("keeps serving calculator turns while a plugin is dropped, replaced, approved and deleted", async () => {
    // Two clients send turns that use the calculator, back to back, for the whole test.
    let stop = false;
    const failures: unknown[] = [];
    let turns = 0;
    const loop = async (peer: string) => {
      const c = await RpcClient.connect(gateway.url);
      try {
        for (let i = 0; !stop; i++) {
          const { response } = await c.call("chat.send", { content: `what is ${i} + 2?`, peer });
          if (response.msg.error || response.msg.result.text !== `The answer is ${i + 2}.`) failures.push(response.msg);
          turns++;
        }
      } finally {
        c.close();
      }
    };
    const loops = [loop("a"), loop("b")];
    const delays: Record<string, number> = {};
    try {
      // Drop: packed by the real CLI, straight into the watched directory.
      const file = path.join(pluginsDir, "hello.wasm");
      const packed = await run(
        process.execPath,
        [CLI, "plugin", "pack", path.join(root, "hello.raw.wasm"), "-m", path.join(REPO_ROOT, "plugins/fixtures/wat/hello.toml"), "-o", file],
        { env: cliEnv() },
      );
      expect(packed.stdout).toMatch(/^packed hello-wat/);
      delays.drop = await within(1000, async () => (await hello())?.status === "loaded", "dropped plugin listed");
      const first = await hello();
      expect(first).toMatchObject({
        version: "1.0.0",
        kind: "tool",
        tools: ["hello_wat"],
        path: file,
        capabilities: { requested: {}, granted: {}, pending: {} },
      });

      // Replace with a version that requests the clock, which exoclaw.toml grants: pending approval.
      await atomicWrite(file, variant({ version: "2.0.0", capabilities: { clock: true } }));
      delays.replace = await within(1000, async () => (await hello())?.version === "2.0.0", "replacement listed");
      const second = await hello();
      expect(second.sha256).not.toBe(first.sha256);
      expect(second).toMatchObject({ status: "pending_approval", capabilities: { requested: { clock: true }, granted: {}, pending: { clock: true } } });

      // Approve with the CLI: the gateway sees the approvals file change.
      const approved = await run(process.execPath, [CLI, "plugin", "approve", file, "-c", config], { env: cliEnv() });
      expect(approved.stdout).toMatch(/^approved hello-wat sha256 [0-9a-f]{64}: clock/);
      delays.approve = await within(1000, async () => (await hello())?.status === "loaded", "approval applied");
      expect(await hello()).toMatchObject({ capabilities: { granted: { clock: true }, pending: {} } });

      // Unload and load over RPC.
      const unloaded = await client.call("plugin.unload", { name: "hello-wat" });
      expect(unloaded.response.msg.result).toMatchObject({ name: "hello-wat", version: "2.0.0" });
      expect(await hello()).toBeUndefined();
      const loaded = await client.call("plugin.load", { path: file });
      expect(loaded.response.msg.result).toMatchObject({ name: "hello-wat", version: "2.0.0", status: "loaded" });
      expect((await client.call("plugin.unload", { name: "nope" })).response.msg.error).toEqual({
        code: -32007,
        message: 'cannot unload plugin: no plugin named "nope" is loaded',
      });
      const missing = (await client.call("plugin.load", { path: path.join(pluginsDir, "missing.wasm") })).response.msg.error;
      expect(missing.code).toBe(-32007);
      expect(missing.message).toMatch(/^cannot load plugin: .*missing\.wasm: cannot read/);
      expect((await client.call("plugin.load", { path: "relative.wasm" })).response.msg.error).toMatchObject({
        code: -32602,
        message: "Invalid params: path: path must be absolute",
      });
      expect((await client.call("plugin.load", {})).response.msg.error).toMatchObject({ code: -32602, message: "Invalid params: path: path is required" });

      // Delete.
      await rm(file);
      delays.delete = await within(1000, async () => (await hello()) === undefined, "deleted plugin gone");
      expect((await list()).map((p) => p.name)).not.toContain("hello-wat");
      expect((await list()).map((p) => p.name)).toContain("calculator");
      expect(turns).toBeGreaterThan(0);
    } finally {
      stop = true;
      await Promise.all(loops);
    }
    expect(failures).toEqual([]);
    expect(turns).toBeGreaterThan(4);
    // The calculator served every turn.
    expect((await list()).find((p) => p.name === "calculator")).toMatchObject({ status: "loaded", errors: 0, calls: turns });
    console.log(`hot-load latency (ms): ${JSON.stringify(Object.fromEntries(Object.entries(delays).map(([k, v]) => [k, Math.round(v)])))}, turns: ${turns}`);
  }, 60_000);
});
