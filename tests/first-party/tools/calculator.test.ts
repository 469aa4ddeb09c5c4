import { readFile, rm } from "node:fs/promises";
import createPlugin from "@extism/extism";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadPlugins, type PluginHost } from "../../../host/src/plugins/index.js";
import { buildInto, tempDir } from "../../plugins/support.js";

let dir = "";
let wasmPath = "";
let host: PluginHost;

beforeAll(async () => {
  dir = await tempDir();
  const built = await buildInto(dir, ["plugins/tools/calculator"]);
  wasmPath = built["calculator"] ?? "";
  host = await loadPlugins({ dirs: [dir] });
}, 60_000);

afterAll(async () => {
  await host?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const calc = (expression: unknown) => host.callTool("calculator", { expression });

describe("calculator: results", () => {
  it.each([
    ["12.5 * (3 + 4)", "87.5"],
    ["2 + 3 * 4", "14"],
    ["(2 + 3) * 4", "20"],
    ["10 - 4 - 3", "3"],
    ["100 / 10 / 5", "2"],
    ["2 * 3 / 4", "1.5"],
    ["2^3^2", "512"],
    ["(2^3)^2", "64"],
    ["2^10 - 1", "1023"],
    ["-3", "-3"],
    ["-2^2", "-4"],
    ["(-2)^2", "4"],
    ["2^-1", "0.5"],
    ["--3", "3"],
    ["3 - -3", "6"],
    ["+4", "4"],
    ["-(1 + 2) * 3", "-9"],
    ["0.5 + .25", "0.75"],
    ["5. * 2", "10"],
    ["1.5e3 + 2E-1", "1500.2"],
    ["  7 *\t6\n ", "42"],
    ["0.1 + 0.2", "0.30000000000000004"],
    ["1/3", "0.3333333333333333"],
    ["2^0.5", "1.4142135623730951"],
    ["2^53 + 1", "9007199254740992"],
    ["1e21", "1e+21"],
    ["1e-7", "1e-7"],
    ["0 * -1", "0"],
    ["7 × 6 − 2 ÷ 2", "41"],
  ])("%j = %s", async (expression, expected) => {
    expect(await calc(expression)).toEqual({ content: expected, isError: false });
  });

  it("formats like JavaScript's String(number) (shortest round trip)", async () => {
    const f64 = new Float64Array(1);
    const bits = new Uint32Array(f64.buffer);
    for (let i = 0; i < 300; i++) {
      bits[0] = (Math.random() * 2 ** 32) >>> 0;
      bits[1] = (Math.random() * 2 ** 31) >>> 0; // positive, any exponent
      const x = f64[0] ?? 0;
      if (!Number.isFinite(x) || x === 0) continue;
      expect((await calc(String(x))).content).toBe(String(x));
    }
  });
});

describe("calculator: errors name the problem and its position", () => {
  it.each([
    ["", /^empty expression$/],
    ["   ", /^empty expression$/],
    ["(1 + 2", /^unbalanced parentheses: '\(' at position 1 is never closed$/],
    ["1 + 2)", /^unbalanced parentheses: unexpected '\)' at position 6$/],
    ["2 + $", /^unexpected character '\$' at position 5$/],
    ["12+$4", /^unexpected character '\$' at position 4$/],
    ["2 + 3 abc", /^unexpected character 'a' at position 7$/],
    ["1 / 0", /^division by zero at position 3$/],
    ["1 / (2 - 2)", /^division by zero at position 3$/],
    ["0^-1", /^division by zero at position 2/],
    ["3 +", /^missing operand after '\+' at position 3$/],
    ["3 * (4 -)", /^missing operand after '-' at position 8$/],
    ["* 3", /^missing operand before '\*' at position 1$/],
    ["()", /^empty parentheses at position 1$/],
    ["2 3", /^missing operator before '3' at position 3$/],
    ["2 (3)", /^missing operator before '\(' at position 3$/],
    ["1.2.3", /^malformed number '1\.2\.3' at position 1$/],
    ["1e400", /overflow/],
    ["(-8)^(1/3)", /^result of '\^' at position 5 is not a real number$/],
    ["(".repeat(300) + "1" + ")".repeat(300), /nested too deeply/],
  ])("%j", async (expression, pattern) => {
    const r = await calc(expression);
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(pattern);
  });

  it.each([
    [{ expression: 42 }, /^invalid input: 'expression' must be a string, got number$/],
    [{ expression: null }, /must be a string, got null/],
    [{}, /^invalid input: missing required field 'expression'$/],
    [{ expression: "1", extra: true }, /^invalid input: unexpected field 'extra'/],
    ["1 + 1", /^invalid input: expected an object, got string$/],
    [null, /expected an object, got null/],
  ])("input %j", async (input, pattern) => {
    const r = await host.callTool("calculator", input);
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(pattern);
  });

  it("decodes non-ASCII characters in messages, positions counting code points", async () => {
    expect(await calc("2 + €")).toEqual({ content: "unexpected character '€' at position 5", isError: true });
    expect(await calc("é + 1")).toEqual({ content: "unexpected character 'é' at position 1", isError: true });
    // The emoji is two UTF-16 units and four UTF-8 bytes, but one position.
    expect(await calc("1 + 😀 + ü")).toEqual({ content: "unexpected character '😀' at position 5", isError: true });
    expect(await calc("(1 + 😀")).toEqual({ content: "unexpected character '😀' at position 6", isError: true });
  });
});

describe("calculator: raw ABI", () => {
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

  it("speaks standard MessagePack through Extism's `call`, and names an unknown tool", async () => {
    const plugin = await createPlugin({ wasm: [{ data: await readFile(wasmPath) }] }, { useWasi: false });
    try {
      const ok = await plugin.call("call", packr.pack({ name: "calculator", input: { expression: "6*7" } }));
      expect(unpackr.unpack(ok?.bytes() ?? new Uint8Array())).toEqual({ content: "42", isError: false });

      const other = await plugin.call("call", packr.pack({ name: "weather", input: {} }));
      expect(unpackr.unpack(other?.bytes() ?? new Uint8Array())).toEqual({
        content: "unknown tool 'weather' (this plugin provides: calculator)",
        isError: true,
      });

      await expect(plugin.call("call", new Uint8Array([0xc1]))).rejects.toThrow(/invalid tool call: invalid MessagePack/);
      await expect(plugin.call("call", packr.pack([1, 2]))).rejects.toThrow(/expected a map \{name, input\}/);
    } finally {
      await plugin.close();
    }
  });
});
