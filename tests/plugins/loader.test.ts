import { copyFile, mkdir, readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inspectPluginFile, loadPlugins, ApprovalStore, ManifestError, ValidationCache, sha256Hex, type PluginHost } from "../../host/src/plugins/index.js";
import {
  appendCustomSection,
  embedManifest,
  encodeULEB128,
  extractManifest,
  MANIFEST_SECTION,
  removeCustomSections,
} from "../../scripts/lib/manifest-section.mjs";
import { buildInto, captureLogger, tempDir } from "./support.js";

const toolManifest = (name: string, extra: Record<string, unknown> = {}) => ({
  abi: 1,
  name,
  version: "1.0.0",
  kind: "tool",
  tools: [{ name: `${name}_tool`, description: "x", inputSchema: { type: "object" } }],
  capabilities: [],
  ...extra,
});

/** A hand-assembled module: sections given as [id, content bytes]. */
function wasmModule(sections: Array<[number, number[]]>): Uint8Array {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, content] of sections) bytes.push(id, ...encodeULEB128(content.length), ...content);
  return Uint8Array.from(bytes);
}
const str = (s: string) => [s.length, ...Buffer.from(s)];
const TYPE_VOID = [1, [0x01, 0x60, 0x00, 0x00]] as [number, number[]];
/** Exports `call` = func 0 and runs it as the start function; func 0 is `unreachable`. */
const trapsOnStart = wasmModule([TYPE_VOID, [3, [0x01, 0x00]], [7, [0x01, ...str("call"), 0x00, 0x00]], [8, [0x00]], [10, [0x01, 0x03, 0x00, 0x00, 0x0b]]]);
/** Imports WASI's fd_write, which this host never provides. */
const importsWasi = wasmModule([TYPE_VOID, [2, [0x01, ...str("wasi_snapshot_preview1"), ...str("fd_write"), 0x00, 0x00]]]);

let root = "";
let good = "";
let bad = "";
let calculatorWasm = "";
let host: PluginHost;
const logger = captureLogger();

beforeAll(async () => {
  root = await tempDir();
  good = path.join(root, "good");
  bad = path.join(root, "bad");
  const built = await buildInto(good, ["plugins/tools/calculator"]);
  calculatorWasm = built["calculator"] ?? "";
  await buildInto(bad, ["plugins/fixtures/faulty"]);
  const calc = new Uint8Array(await readFile(calculatorWasm));
  const stripped = removeCustomSections(calc, MANIFEST_SECTION);
  await writeFile(path.join(bad, "not-wasm.wasm"), "hello, I am text");
  await writeFile(path.join(bad, "truncated.wasm"), calc.subarray(0, 200));
  await writeFile(path.join(bad, "no-manifest.wasm"), stripped);
  await writeFile(path.join(bad, "abi2.wasm"), appendCustomSection(stripped, MANIFEST_SECTION, JSON.stringify(toolManifest("future", { abi: 2 }))));
  await writeFile(
    path.join(bad, "bad-schema.wasm"),
    appendCustomSection(
      stripped,
      MANIFEST_SECTION,
      JSON.stringify(toolManifest("badschema", { tools: [{ name: "t", description: "d", inputSchema: { type: "string" } }] })),
    ),
  );
  await writeFile(path.join(bad, "not-json.wasm"), appendCustomSection(stripped, MANIFEST_SECTION, "{nope"));
  await writeFile(path.join(bad, "wasi.wasm"), appendCustomSection(importsWasi, MANIFEST_SECTION, JSON.stringify(toolManifest("wasi"))));
  await writeFile(path.join(bad, "start-trap.wasm"), appendCustomSection(trapsOnStart, MANIFEST_SECTION, JSON.stringify(toolManifest("starttrap"))));
  await copyFile(calculatorWasm, path.join(bad, "calculator-copy.wasm"));
  await writeFile(path.join(bad, "README.txt"), "not a plugin, not even looked at");
  host = await loadPlugins({ dirs: [good, path.join(root, "missing"), bad], logger, maxInstancesPerPlugin: 4 });
}, 60_000);

afterAll(async () => {
  await host?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function warningFor(file: string) {
  const hits = logger.warnings().filter((r) => r.fields["file"] === path.join(bad, file));
  expect(hits, `warnings for ${file}`).toHaveLength(1);
  return String(hits[0]?.fields["reason"]);
}

describe("loading", () => {
  it("loads good plugins in directory order and skips the rest", () => {
    const listed = host.list().filter((p) => p.status !== "error");
    expect(listed.map(({ name, version, kind, tools }) => ({ name, version, kind, tools }))).toEqual([
      { name: "calculator", version: "0.1.0", kind: "tool", tools: ["calculator"] },
      {
        name: "faulty",
        version: "0.0.1",
        kind: "tool",
        tools: ["echo", "fail", "crash", "trap", "garbage", "badshape", "noop", "log"],
      },
      // Instantiated lazily: a module that traps in its start function loads, and fails on call.
      { name: "starttrap", version: "1.0.0", kind: "tool", tools: ["starttrap_tool"] },
    ]);
    expect(listed[0]).toMatchObject({
      path: calculatorWasm,
      status: "loaded",
      capabilities: { requested: {}, granted: {}, pending: {} },
      calls: expect.any(Number),
      errors: 0,
    });
    const rejected = host.list().filter((p) => p.status === "error");
    expect(rejected.map((p) => path.basename(p.path)).sort()).toEqual([
      "abi2.wasm",
      "bad-schema.wasm",
      "calculator-copy.wasm",
      "no-manifest.wasm",
      "not-json.wasm",
      "not-wasm.wasm",
      "truncated.wasm",
      "wasi.wasm",
    ]);
    for (const p of rejected) expect(p).toMatchObject({ tools: [], error: expect.any(String) });
    expect(rejected.find((p) => p.path.endsWith("calculator-copy.wasm"))).toMatchObject({ name: "calculator", version: "0.1.0", kind: "tool" });
    expect(host.tools().map((t) => t.name)).toEqual(["calculator", "echo", "fail", "crash", "trap", "garbage", "badshape", "noop", "log", "starttrap_tool"]);
    const calc = host.tools()[0];
    expect(calc?.inputSchema).toMatchObject({
      type: "object",
      properties: { expression: { type: "string" } },
      required: ["expression"],
      additionalProperties: false,
    });
    const [loaded] = host.plugins();
    expect(loaded?.path).toBe(calculatorWasm);
    expect(loaded?.sha256).toMatch(/^[0-9a-f]{64}$/);
  });

  it("warns once per bad file, naming the file and the reason", () => {
    expect(warningFor("not-wasm.wasm")).toMatch(/not a valid WebAssembly module/);
    expect(warningFor("truncated.wasm")).toMatch(/not a valid WebAssembly module/);
    expect(warningFor("no-manifest.wasm")).toMatch(/no "exoclaw\.manifest" custom section/);
    expect(warningFor("abi2.wasm")).toMatch(/manifest field abi: unsupported ABI version 2 \(this host speaks 1\)/);
    expect(warningFor("bad-schema.wasm")).toMatch(/manifest field tools\[0\]\.inputSchema\.type/);
    expect(warningFor("not-json.wasm")).toMatch(/not UTF-8 JSON/);
    expect(warningFor("wasi.wasm")).toMatch(/"wasi_snapshot_preview1"\."fd_write".*deny by default/);
    expect(warningFor("calculator-copy.wasm")).toMatch(/already loaded from .*calculator\.wasm/);
    const dup = logger.warnings().filter((r) => r.msg.includes("duplicate tool name"));
    expect(dup.map((r) => r.fields)).toEqual([expect.objectContaining({ plugin: "faulty", tool: "calculator", keptFrom: "calculator" })]);
    expect(logger.warnings().some((r) => String(r.fields["file"]).endsWith("README.txt"))).toBe(false);
  });

  it("reports a module that cannot start when it is called", async () => {
    const r = await host.callTool("starttrap_tool", {});
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(/^plugin 'starttrap' crashed on tool 'starttrap_tool': could not start an instance: .*unreachable/);
  });

  it("reads a manifest without running the module", async () => {
    const inspected = await inspectPluginFile(path.join(bad, "start-trap.wasm"));
    expect(inspected.manifest).toEqual({ ...toolManifest("starttrap"), capabilities: {} });
    const calc = await inspectPluginFile(calculatorWasm);
    expect(calc.manifest).toMatchObject({ abi: 1, name: "calculator", kind: "tool", capabilities: {} });
    expect(calc.sha256).toBe(host.plugins()[0]?.sha256);
  });

  it("reports the offending field in ManifestError", async () => {
    const err = await inspectPluginFile(path.join(bad, "abi2.wasm")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ManifestError);
    expect(err).toMatchObject({ field: "abi", file: path.join(bad, "abi2.wasm") });
  });

  it("treats an empty or missing directory list as no plugins, silently", async () => {
    const quiet = captureLogger();
    const empty = await loadPlugins({ dirs: [path.join(root, "nope"), path.join(root, "nope2")], logger: quiet });
    expect(empty.list()).toEqual([]);
    expect(await empty.callTool("calculator", { expression: "1" })).toEqual({ content: "unknown tool 'calculator'", isError: true });
    expect(quiet.warnings()).toEqual([]);
    await empty.close();
  });
});

describe("calling", () => {
  it("routes a duplicated tool name to the first plugin", async () => {
    expect(await host.callTool("calculator", { expression: "12.5 * (3 + 4)" })).toEqual({ content: "87.5", isError: false });
  });

  it("round-trips non-ASCII text", async () => {
    const text = "héllo wörld € 😀 ñ 中文";
    expect(await host.callTool("echo", { text })).toEqual({ content: text, isError: false });
  });

  it("turns plugin faults into isError results and replaces trapped instances", async () => {
    const before = host.stats().find((s) => s.name === "faulty");
    const fail = await host.callTool("fail", {});
    expect(fail).toEqual({ content: "plugin 'faulty' failed on tool 'fail': refused politely: ü", isError: true });

    const crash = await host.callTool("crash", {});
    expect(crash.isError).toBe(true);
    expect(crash.content).toMatch(/^plugin 'faulty' crashed on tool 'crash': abort: boom é€ 😀 at .*index\.ts:\d+:\d+ \(.*unreachable.*\)$/);

    const trap = await host.callTool("trap", {});
    expect(trap.isError).toBe(true);
    expect(trap.content).toMatch(/crashed on tool 'trap': .*unreachable/);

    expect(await host.callTool("garbage", {})).toMatchObject({ isError: true, content: expect.stringMatching(/malformed output.*not MessagePack/) });
    expect(await host.callTool("badshape", {})).toMatchObject({ isError: true, content: expect.stringMatching(/'content' is not a string/) });
    expect(await host.callTool("noop", {})).toEqual({ content: "plugin 'faulty' returned no output for tool 'noop'", isError: true });
    expect(await host.callTool("nope", {})).toEqual({ content: "unknown tool 'nope'", isError: true });

    const after = host.stats().find((s) => s.name === "faulty");
    expect((after?.failures.trap ?? 0) - (before?.failures.trap ?? 0)).toBe(2);
    // Still fully usable.
    expect(await host.callTool("echo", { text: "still here" })).toEqual({ content: "still here", isError: false });
  });

  it("drops guest log lines without the log capability", async () => {
    expect(await host.callTool("log", {})).toEqual({ content: "logged", isError: false });
    expect(logger.records.some((r) => r.msg.includes("hello from the guest"))).toBe(false);
  });

  it("routes guest log lines to the logger at debug once log is requested, granted and approved", async () => {
    // The faulty fixture re-packed to request `log`; the operator grants it; an approval for this sha256.
    const dir = path.join(root, "logging");
    const state = path.join(root, "logging-state");
    const faulty = new Uint8Array(await readFile(path.join(bad, "faulty.wasm")));
    const manifest = { ...extractManifest(faulty), capabilities: { log: true } };
    const wasm = embedManifest(faulty, manifest);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, "faulty.wasm"), wasm);
    const store = await ApprovalStore.open(ApprovalStore.pathFor(state));
    await store.add({ name: "faulty", sha256: sha256Hex(wasm), approved: { log: true }, at: new Date().toISOString() });
    const records = captureLogger();
    const h = await loadPlugins({ dirs: [dir], logger: records, grants: { faulty: { log: true } }, stateDir: state });
    try {
      expect(h.list()[0]).toMatchObject({ status: "loaded", capabilities: { requested: { log: true }, granted: { log: true }, pending: {} } });
      expect(await h.callTool("log", {})).toEqual({ content: "logged", isError: false });
      // Log lines travel from the sandbox worker by message, so they may land just after the result.
      await expect
        .poll(() => records.records, { timeout: 2000 })
        .toContainEqual({ level: "debug", fields: { plugin: "faulty", level: "info" }, msg: "hello from the guest: ñ" });
    } finally {
      await h.close();
    }
  });

  it("throws only when the signal aborts", async () => {
    const ctl = new AbortController();
    ctl.abort(new Error("stop"));
    await expect(host.callTool("calculator", { expression: "1" }, ctl.signal)).rejects.toThrow("stop");
  });

  it("runs 20 concurrent calls correctly, crashes included, within the instance limit", async () => {
    const jobs = Array.from({ length: 20 }, (_, i) =>
      i % 5 === 4 ? host.callTool("crash", {}) : host.callTool("calculator", { expression: `${i} * 3 + 0.5` }),
    );
    const results = await Promise.all(jobs);
    results.forEach((r, i) => {
      if (i % 5 === 4) expect(r.isError).toBe(true);
      else expect(r).toEqual({ content: String(i * 3 + 0.5), isError: false });
    });
    const echoes = await Promise.all(Array.from({ length: 20 }, (_, i) => host.callTool("echo", { text: `n${i}` })));
    expect(echoes.map((r) => r.content)).toEqual(Array.from({ length: 20 }, (_, i) => `n${i}`));
    for (const s of host.stats()) {
      expect(s.instances).toBeLessThanOrEqual(4);
      expect(s.busy).toBe(0);
      expect(s.queued).toBe(0);
    }
  });

  it("runs 20,000 sequential calls on one instance without failures", async () => {
    const single = await loadPlugins({ dirs: [good], maxInstancesPerPlugin: 1 });
    try {
      const long = Array.from({ length: 400 }, (_, i) => `(${i} + 0.5)`).join(" + ");
      const run = async (i: number) => {
        const expression = i % 100 === 0 ? long : `${i} * 2 - (${i} / 4) ^ 2`;
        const r = await single.callTool("calculator", { expression });
        if (r.isError) throw new Error(`call ${i} failed: ${r.content}`);
        return r;
      };
      // Memory flatness itself is the sandbox's to measure (tests/plugins/sandbox): instances live there.
      for (let i = 0; i < 20_000; i++) await run(i);
      const stats = single.stats()[0];
      expect(stats?.instances).toBe(1);
      expect(stats?.failures).toEqual({});
      expect(stats?.calls).toBe(20_000);
      expect(await single.callTool("calculator", { expression: "2^3^2" })).toEqual({ content: "512", isError: false });
    } finally {
      await single.close();
    }
  }, 30_000);

  it("answers isError after close", async () => {
    const h = await loadPlugins({ dirs: [good] });
    await h.close();
    expect(await h.callTool("calculator", { expression: "1" })).toEqual({ content: "plugin host is closed", isError: true });
  });
});

describe("validation cache", () => {
  it("persists module metadata by sha256 and skips compiling on the next load", async () => {
    const file = path.join(root, "cache", "validated.json");
    const first = await ValidationCache.open(file);
    const h1 = await loadPlugins({ dirs: [good], validationCache: first });
    expect(h1.cacheStats()).toEqual({ hits: 0, misses: 1 });
    await h1.close(); // saves
    const second = await ValidationCache.open(file);
    const h2 = await loadPlugins({ dirs: [good], validationCache: second });
    expect(h2.cacheStats()).toEqual({ hits: 1, misses: 0 });
    expect(await h2.callTool("calculator", { expression: "6*7" })).toEqual({ content: "42", isError: false });
    await h2.close();
  });

  it("takes the cache as a promise that settles after the plugin files are read: they wait for it", async () => {
    // The gateway passes the cache file's read as a promise so both reads overlap; a plugin file
    // read first once reached the cache before it existed (a ReferenceError that killed the start).
    const file = path.join(root, "cache", "late.json");
    const seeded = await loadPlugins({ dirs: [good], validationCache: await ValidationCache.open(file) });
    await seeded.close(); // saves the entry
    const late = new Promise<ValidationCache>((resolve) => setTimeout(() => resolve(ValidationCache.open(file)), 200));
    const h = await loadPlugins({ dirs: [good], validationCache: late });
    expect(h.cacheStats()).toEqual({ hits: 1, misses: 0 });
    expect(await h.callTool("calculator", { expression: "6*7" })).toEqual({ content: "42", isError: false });
    await h.close();
  });

  it("drops invalid entries and still applies the interface rules to cached ones", async () => {
    const file = path.join(root, "cache", "tampered.json");
    const sha = host.plugins()[0]!.sha256;
    const manifest = host.plugins()[0]!.manifest;
    await writeFile(
      file,
      JSON.stringify({
        version: 1,
        entries: {
          [sha]: { manifest, imports: [{ module: "wasi_snapshot_preview1", name: "fd_write", kind: "function" }], exports: [] },
          ["f".repeat(64)]: { manifest: { nope: true }, imports: [], exports: [] },
        },
      }),
    );
    const cache = await ValidationCache.open(file);
    const quiet = captureLogger();
    const h = await loadPlugins({ dirs: [good], validationCache: cache, logger: quiet });
    expect(h.list()[0]).toMatchObject({ status: "error", error: expect.stringMatching(/wasi_snapshot_preview1.*deny by default/) });
    await h.close();
    await writeFile(file, "{corrupt");
    expect((await ValidationCache.open(file)).get(sha)).toBeUndefined();
  });

  it("never takes a module's manifest from the cache: an edited entry claiming other tools is ignored and re-validated", async () => {
    const file = path.join(root, "cache", "forged.json");
    const { sha256: sha, manifest } = host.plugins()[0]!;
    const forged = { ...manifest, kind: "tool", tools: [{ name: "exfiltrate", description: "forged", inputSchema: { type: "object" } }] };
    const [imports, exports] = [[], [{ name: "call", kind: "function" }]];
    await writeFile(file, JSON.stringify({ version: 1, entries: { [sha]: { manifest: forged, imports, exports } } }));
    const cache = await ValidationCache.open(file);
    const h = await loadPlugins({ dirs: [good], validationCache: cache });
    expect(h.tools().map((t) => t.name)).toEqual(manifest.tools.map((t) => t.name));
    expect(h.tools().map((t) => t.name)).not.toContain("exfiltrate");
    expect(h.cacheStats().misses).toBeGreaterThan(0); // validated from the bytes
    await h.close();
  });
});
