import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodeFrame } from "../../host/src/protocol/codec.js";
import { checkStandardMsgpack } from "../../host/src/protocol/msgpack-check.js";
import { prng } from "../support/prng.mjs";

const std = new Packr({ useRecords: false, variableMapSize: true });
/** msgpackr with every extension it knows switched on: what a hostile client would send. */
const withExt = new Packr({ useRecords: false, moreTypes: true, structuredClone: true, useBigIntExtension: true });

/** A random value of standard MessagePack types only, with strings and bins full of ext header bytes. */
function randomValue(next: () => number, depth = 0): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 6 : 8));
  // Characters whose UTF-8 starts with an ext header byte: U+01C0 -> c7 80, U+0500 -> d4 80, ...
  const trap = () =>
    String.fromCharCode(...Array.from({ length: Math.floor(next() * 40) }, () => [0x1c0, 0x200, 0x240, 0x500, 0x580, 0x600, 0x41][Math.floor(next() * 7)]!));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return Math.floor((next() - 0.5) * 2 ** [7, 15, 31, 52][Math.floor(next() * 4)]!);
    case 3:
      return (next() - 0.5) * 1e10;
    case 4:
      return trap() + "x".repeat(Math.floor(next() * 300));
    case 5:
      return new Uint8Array(Array.from({ length: Math.floor(next() * 300) }, () => [0xc7, 0xd4, 0xd8, 0xc1][Math.floor(next() * 4)]!));
    case 6:
      return Array.from({ length: Math.floor(next() * 20) }, () => randomValue(next, depth + 1));
    default:
      return Object.fromEntries(Array.from({ length: Math.floor(next() * 20) }, (_, i) => [`${trap()}${i}`, randomValue(next, depth + 1)]));
  }
}

describe("checkStandardMsgpack: a walker, not a byte grep", () => {
  it("accepts every standard value msgpackr packs, however many ext header bytes hide in strings and bins", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const bytes = std.pack(randomValue(prng(seed)));
      expect(checkStandardMsgpack(bytes), `seed ${seed}`).toEqual({ ok: true });
    }
    const long = std.pack({ s: "\u0580".repeat(70_000), b: new Uint8Array(70_000).fill(0xc9), a: new Array(70_000).fill(0xd4) });
    expect(checkStandardMsgpack(long)).toEqual({ ok: true });
  });

  it("refuses every proper prefix of a value as truncated, and trailing bytes", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const bytes = std.pack([randomValue(prng(seed)), 1]);
      for (let cut = 0; cut < bytes.length; cut++) {
        const r = checkStandardMsgpack(bytes.subarray(0, cut));
        expect(r.ok, `seed ${seed} cut ${cut}`).toBe(false);
      }
      const r = checkStandardMsgpack(new Uint8Array([...bytes, 0x00]));
      expect(!r.ok && r.reason).toMatch(/1 bytes after the end of the value/);
    }
  });

  it("refuses a header claiming more entries than the frame has bytes, before counting them", () => {
    const r = checkStandardMsgpack(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]));
    expect(!r.ok && r.reason).toMatch(/truncated/);
    const m = checkStandardMsgpack(new Uint8Array([0xdf, 0x7f, 0xff, 0xff, 0xff]));
    expect(!m.ok && m.reason).toMatch(/truncated/);
  });

  it("refuses the reserved byte 0xc1 naming its offset", () => {
    const r = checkStandardMsgpack(new Uint8Array([0x92, 0x01, 0xc1]));
    expect(r).toEqual({ ok: false, reason: "invalid MessagePack: reserved byte 0xc1 at byte 2" });
  });

  const o: Record<string, unknown> = {};
  o.self = o;
  const hostile: [string, unknown][] = [
    ["BigInt", 2n ** 100n],
    ["Error", new Error("x")],
    ["RegExp", /a/g],
    ["Set", new Set([1])],
    ["Uint16Array", new Uint16Array([1, 2])],
    ["ArrayBuffer", new ArrayBuffer(3)],
    ["Date (timestamp -1)", new Date(1_700_000_000_123)],
    ["structured-clone reference", o],
  ];
  it.each(hostile)("refuses a %s in msgpackr's extension encoding, naming the type and offset", (_name, value) => {
    const bytes = withExt.pack({ jsonrpc: "2.0", id: 1, method: "ping", params: { x: value } });
    const r = checkStandardMsgpack(bytes);
    expect(!r.ok && r.reason).toMatch(/^MessagePack extension type -?\d+ \(header 0x(c[789]|d[4-8])\) at byte \d+ is not allowed/);
    const d = decodeFrame(bytes, "msgpack");
    expect(d.ok).toBe(false);
  });

  it("refuses every ext header form: fixext 1/2/4/8/16, ext 8/16/32, timestamp 32/64/96", () => {
    const frames: [number[], string][] = [
      [[0xd4, 0x05, 0x00], "type 5 (header 0xd4) at byte 0"],
      [[0xd5, 0x7f, 0, 0], "type 127 (header 0xd5)"],
      [[0xd6, 0xff, 0, 0, 0, 1], "type -1 (header 0xd6)"],
      [[0xd7, 0xff, ...new Array(8).fill(0)], "type -1 (header 0xd7)"],
      [[0xd8, 0x42, ...new Array(16).fill(0)], "type 66 (header 0xd8)"],
      [[0xc7, 12, 0xff, ...new Array(12).fill(0)], "type -1 (header 0xc7)"],
      [[0xc8, 0, 1, 0x42, 0], "type 66 (header 0xc8)"],
      [[0xc9, 0, 0, 0, 1, 0x74, 0], "type 116 (header 0xc9)"],
      [[0x81, 0xa1, 0x61, 0x91, 0xd4, 0x01, 0x00], "type 1 (header 0xd4) at byte 4"],
    ];
    for (const [bytes, says] of frames) {
      const r = checkStandardMsgpack(new Uint8Array(bytes));
      expect(!r.ok && r.reason).toContain(says);
    }
  });

  it("decodes int64 and uint64 to numbers, as JSON would, not BigInts", () => {
    const r = decodeFrame(new Uint8Array([0x92, 0xd3, 0, 0, 0, 0, 0, 0, 0, 5, 0xcf, 0, 0, 0, 1, 0, 0, 0, 0]), "msgpack");
    expect(r).toEqual({ ok: true, value: [5, 2 ** 32] });
  });
});
