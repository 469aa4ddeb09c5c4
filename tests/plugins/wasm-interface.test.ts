// Start-up validates plugins with WebAssembly.validate and reads their imports/exports from the
// bytes (plugins/wasm-interface.ts) instead of compiling them: the lists must be V8's exactly, and
// nothing V8 would refuse may pass.
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeULEB128, embedManifest } from "../../host/src/plugins/manifest-section.mjs";
import { PluginRejectedError, validatePluginBytes } from "../../host/src/plugins/validate.js";
import { readModuleInterface } from "../../host/src/plugins/wasm-interface.js";
import { REPO_ROOT } from "./support.js";

type Wasm = {
  compile(b: Uint8Array): Promise<object>;
  Module: { imports(m: object): unknown[]; exports(m: object): unknown[] };
};
const W = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

function wasmModule(sections: [number, number[]][]): Uint8Array {
  const bytes = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  for (const [id, content] of sections) bytes.push(id, ...encodeULEB128(content.length), ...content);
  return new Uint8Array(bytes);
}
const str = (s: string) => [Buffer.byteLength(s), ...Buffer.from(s)];

/** Imports and exports of every kind the reader covers (function, table, memory, global; names with UTF-8). */
const everyKind = wasmModule([
  [1, [0x01, 0x60, 0x00, 0x00]],
  [
    2,
    [
      0x04,
      ...str("env"),
      ...str("f"),
      0x00,
      0x00,
      ...str("env"),
      ...str("t"),
      0x01,
      0x70,
      0x01,
      0x01,
      0x02,
      ...str("env"),
      ...str("m"),
      0x02,
      0x00,
      0x01,
      ...str("modül"),
      ...str("g"),
      0x03,
      0x7f,
      0x00,
    ],
  ],
  [3, [0x01, 0x00]],
  [6, [0x01, 0x7e, 0x01, 0x42, 0x00, 0x0b]],
  [7, [0x04, ...str("run"), 0x00, 0x01, ...str("tab"), 0x01, 0x00, ...str("mem"), 0x02, 0x00, ...str("gläs"), 0x03, 0x01]],
  [10, [0x01, 0x02, 0x00, 0x0b]],
]);

describe("readModuleInterface", () => {
  it("lists what V8's WebAssembly.Module.imports/exports list, for every first-party plugin and every import/export kind", async () => {
    const dir = path.join(REPO_ROOT, "build", "plugins");
    const files = (await readdir(dir)).filter((f) => f.endsWith(".wasm"));
    expect(files.length).toBeGreaterThanOrEqual(9);
    const modules = [everyKind, ...(await Promise.all(files.map(async (f) => new Uint8Array(await readFile(path.join(dir, f))))))];
    for (const bytes of modules) {
      const compiled = await W.compile(bytes);
      expect(readModuleInterface(bytes)).toEqual({ imports: W.Module.imports(compiled), exports: W.Module.exports(compiled) });
    }
  });
});

describe("validatePluginBytes without compiling", () => {
  const manifest = {
    abi: 1,
    name: "bodycheck",
    version: "1.0.0",
    kind: "tool",
    tools: [{ name: "t", description: "d", inputSchema: { type: "object" } }],
    capabilities: {},
  };
  const realCompile = W.compile;
  afterEach(() => {
    W.compile = realCompile;
  });

  it("does not compile a valid plugin", async () => {
    const bytes = new Uint8Array(await readFile(path.join(REPO_ROOT, "build", "plugins", "calculator.wasm")));
    let compiles = 0;
    W.compile = (b) => (compiles++, realCompile.call(W, b));
    const v = await validatePluginBytes(bytes, "calculator.wasm");
    expect(v.manifest.name).toBe("calculator");
    expect(compiles).toBe(0);
  });

  it("still refuses a module whose function body is invalid, with V8's reason", async () => {
    // `call` pops an i32 from an empty stack: the sections are well formed, the body is not.
    const bad = embedManifest(
      wasmModule([
        [1, [0x01, 0x60, 0x00, 0x00]],
        [3, [0x01, 0x00]],
        [7, [0x01, ...str("call"), 0x00, 0x00]],
        [10, [0x01, 0x03, 0x00, 0x6a, 0x0b]],
      ]),
      manifest,
    );
    const err = await validatePluginBytes(bad, "bad.wasm").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginRejectedError);
    expect((err as PluginRejectedError).reason).toMatch(/^not a valid WebAssembly module: .*Compiling function #0.*failed/);
  });
});
