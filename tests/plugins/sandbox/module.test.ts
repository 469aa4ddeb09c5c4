// Load-time module checks: the memory maximum is written into the module, imports are checked.
import { describe, expect, it } from "vitest";
import { prepareModule, SandboxModuleError } from "../../../host/src/plugins/sandbox/index.js";
import { createHostServices, createSandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { DEFAULT_LIMITS } from "../../../host/src/plugins/capabilities.js";
import { encodeULEB128 } from "../../../scripts/lib/manifest-section.mjs";
import { captureLogger, fixture } from "./support.js";

const PAGE = 65536;

/** A hand-assembled module: sections given as [id, content bytes]. */
function wasmModule(sections: Array<[number, number[]]>): Uint8Array {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, content] of sections) bytes.push(id, ...encodeULEB128(content.length), ...content);
  return Uint8Array.from(bytes);
}
const str = (s: string): number[] => [s.length, ...Buffer.from(s)];
const leb = (n: number): number[] => [...encodeULEB128(n)];
/** One memory with these limits, exported as "memory". */
const withMemory = (min: number, max?: number): Uint8Array =>
  wasmModule([
    [5, [1, max === undefined ? 0 : 1, ...leb(min), ...(max === undefined ? [] : leb(max))]],
    [7, [1, ...str("memory"), 0x02, 0x00]],
  ]);
const importing = (module: string, name: string, kind: number, desc: number[]): Uint8Array =>
  wasmModule([
    [1, [1, 0x60, 0x01, 0x7e, 0x01, 0x7e]], // type 0: (i64) -> i64
    [2, [1, ...str(module), ...str(name), kind, ...desc]],
  ]);

interface WasmMem {
  buffer: ArrayBuffer;
  grow(pages: number): number;
}
const wasm = (
  globalThis as unknown as {
    WebAssembly: { instantiate(b: Uint8Array): Promise<{ instance: { exports: { memory: WasmMem } } }> };
  }
).WebAssembly;

/** Instantiates a rewritten module and returns how far its memory can grow, in pages. */
async function growable(bytes: Uint8Array): Promise<number> {
  const { instance } = await wasm.instantiate(bytes);
  const mem = instance.exports.memory;
  while (true) {
    try {
      mem.grow(1);
    } catch {
      return mem.buffer.byteLength / PAGE;
    }
  }
}

describe("memory maximum", () => {
  it("a memory without a maximum gets the limit as its maximum", async () => {
    const p = prepareModule(withMemory(1), 4 * PAGE);
    expect(p.memories).toEqual([{ min: 1, declaredMax: null, max: 4 }]);
    expect(p.maxPages).toBe(4);
    expect(await growable(p.wasm)).toBe(4);
  });

  it("a larger declared maximum is lowered to the limit; a smaller one is kept", async () => {
    const high = prepareModule(withMemory(1, 100), 16 * PAGE);
    expect(high.memories).toEqual([{ min: 1, declaredMax: 100, max: 16 }]);
    expect(await growable(high.wasm)).toBe(16);
    const low = prepareModule(withMemory(1, 2), 16 * PAGE);
    expect(low.memories).toEqual([{ min: 1, declaredMax: 2, max: 2 }]);
    expect(await growable(low.wasm)).toBe(2);
  });

  it("rounds the limit down to whole pages and keeps multi-byte LEB128 sizes right", async () => {
    const p = prepareModule(withMemory(200, 70_000), 300 * PAGE + 1234);
    expect(p.memories).toEqual([{ min: 200, declaredMax: 70_000, max: 300 }]);
    expect(await growable(p.wasm)).toBe(300);
  });

  it("refuses a module whose initial memory is already over the limit", () => {
    expect(() => prepareModule(withMemory(20), 16 * PAGE)).toThrow(
      new SandboxModuleError(
        "memory 0 starts at 20 pages (1.25 MiB), above the plugin's memory limit of 16 pages (1 MiB); raise limits.memoryBytes or rebuild the plugin with a smaller initial memory",
      ),
    );
  });

  it("refuses shared and 64-bit memories and a limit under one page", () => {
    const shared = wasmModule([[5, [1, 0x03, 1, 2]]]);
    expect(() => prepareModule(shared, 16 * PAGE)).toThrow(/shared memory/);
    const mem64 = wasmModule([[5, [1, 0x04, 1]]]);
    expect(() => prepareModule(mem64, 16 * PAGE)).toThrow(/64-bit memory/);
    expect(() => prepareModule(withMemory(1), 1000)).toThrow(/below one 64 KiB page/);
  });

  it("caps a real AssemblyScript plugin (declared 256 pages) to 8 MiB", async () => {
    const p = prepareModule(await fixture("hostile"), 8 * 1024 * 1024);
    expect(p.memories).toHaveLength(1);
    expect(p.memories[0]).toMatchObject({ declaredMax: 256, max: 128 });
    expect(p.imports).toContain("exoclaw:host/v1.http_request");
  });
});

describe("imports and format", () => {
  it("allows Extism kernel and exoclaw host functions", () => {
    expect(prepareModule(importing("extism:host/env", "alloc", 0, [0]), PAGE).imports).toEqual(["extism:host/env.alloc"]);
    expect(prepareModule(importing("exoclaw:host/v1", "kv_get", 0, [0]), PAGE).imports).toEqual(["exoclaw:host/v1.kv_get"]);
  });

  it("refuses anything else, naming it", () => {
    expect(() => prepareModule(importing("wasi_snapshot_preview1", "fd_write", 0, [0]), PAGE)).toThrow(
      'imports function "wasi_snapshot_preview1"."fd_write", which the sandbox does not provide (only Extism kernel functions from "extism:host/env" and exoclaw host functions from "exoclaw:host/v1")',
    );
    expect(() => prepareModule(importing("exoclaw:host/v1", "secret_get", 0, [0]), PAGE)).toThrow(/"exoclaw:host\/v1"\."secret_get"/);
    expect(() => prepareModule(importing("env", "memory", 2, [0, 1]), PAGE)).toThrow(/imports memory "env"\."memory"/);
    expect(() => prepareModule(importing("extism:host/env", "alloc", 3, [0x7f, 0]), PAGE)).toThrow(/imports global/);
  });

  it("refuses bytes that are not a module, and truncated sections", () => {
    expect(() => prepareModule(new TextEncoder().encode("hello, I am text"), PAGE)).toThrow(/not a WebAssembly module/);
    const truncated = withMemory(1).subarray(0, 11);
    expect(() => prepareModule(truncated, PAGE)).toThrow(/malformed module/);
  });

  it("createSandboxPool refuses such a module synchronously, with the reason", () => {
    expect(() =>
      createSandboxPool({
        name: "bad",
        wasm: withMemory(300),
        grant: {},
        limits: DEFAULT_LIMITS,
        stateDir: "/nonexistent",
        services: createHostServices(),
        logger: captureLogger(),
      }),
    ).toThrow(SandboxModuleError);
  });
});
