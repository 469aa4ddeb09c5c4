// Helpers for the guest SDK tests: the msgpack-test-suite data set, hex, a seeded random value
// generator and value normalisation for comparing what msgpackr unpacks.
import { createRequire } from "node:module";

/** One case of the msgpack-test-suite data set: exactly one value key, plus its encodings. */
export interface SuiteCase {
  nil?: null;
  bool?: boolean;
  /** Hex bytes separated by dashes. */
  binary?: string;
  number?: number;
  /** A 64-bit integer as a decimal string (beside `number` when that holds it exactly). */
  bignum?: string;
  string?: string;
  array?: unknown[];
  map?: Record<string, unknown>;
  /** [seconds, nanoseconds]. */
  timestamp?: [number, number];
  /** [type, hex payload with dashes]. */
  ext?: [number, string];
  /** Acceptable encodings, hex with dashes; for each family the shortest is listed first. */
  msgpack: string[];
}

/** The data set, by file name (e.g. `20.number-positive.yaml`). */
export function loadSuite(): Record<string, SuiteCase[]> {
  return createRequire(import.meta.url)("msgpack-test-suite") as Record<string, SuiteCase[]>;
}

/** `"c4-02-00-ff"` → bytes. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/-/g, "");
  return Uint8Array.from(Buffer.from(clean, "hex"));
}

/** Bytes → `"c4-02-00-ff"` (the data set's notation). */
export function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("-");
}

/** Whether an encoding's first byte is a float (float32 / float64) or an integer format. */
export function numberFamily(firstByte: number): "float" | "int" | "other" {
  if (firstByte === 0xca || firstByte === 0xcb) return "float";
  if (firstByte <= 0x7f || firstByte >= 0xe0 || (firstByte >= 0xcc && firstByte <= 0xd3)) return "int";
  return "other";
}

const hex4 = (n: number): string => n.toString(16).padStart(4, "0");
const plainHex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** f64 bits as 16 hex digits (what the fixture prints for a float). */
export function floatBits(v: number): string {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, v);
  return view.getBigUint64(0).toString(16).padStart(16, "0");
}

/** Payload of the timestamp ext (-1) for [seconds, nanoseconds], smallest form (spec). */
export function timestampPayload(sec: number, nsec: number): Uint8Array {
  const s = BigInt(sec);
  if (s >= 0n && s < 1n << 34n) {
    if (nsec === 0 && s < 1n << 32n) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, Number(s));
      return b;
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, (BigInt(nsec) << 34n) | s);
    return b;
  }
  const b = new Uint8Array(12);
  const view = new DataView(b.buffer);
  view.setUint32(0, nsec);
  view.setBigInt64(4, s);
  return b;
}

/**
 * The description the msgpack-conformance fixture's `describe` export must print for a case's
 * value (grammar in plugins/fixtures/msgpack-conformance/assembly/index.ts). `family` says how
 * the top-level number was encoded: the SDK keeps integers and floats apart.
 */
export function describeCase(c: SuiteCase, family: "float" | "int" | "other"): string {
  if ("nil" in c) return "nil";
  if (c.bool !== undefined) return String(c.bool);
  if (c.binary !== undefined) return `b:${c.binary.replace(/-/g, "")}`;
  if (c.number !== undefined || c.bignum !== undefined) {
    if (family === "float") return `f:${floatBits(c.number ?? Number(c.bignum))}`;
    return `i:${c.bignum ?? String(c.number)}`;
  }
  if (c.string !== undefined) return describeJs(c.string);
  if (c.array !== undefined) return describeJs(c.array);
  if (c.map !== undefined) return describeJs(c.map);
  if (c.timestamp !== undefined) return `x-1:${plainHex(timestampPayload(c.timestamp[0], c.timestamp[1]))}`;
  if (c.ext !== undefined) return `x${c.ext[0]}:${c.ext[1].replace(/-/g, "")}`;
  throw new Error(`unknown case ${JSON.stringify(c)}`);
}

/** Description of a nested JSON value (integers are integers, as the data set encodes them). */
function describeJs(v: unknown): string {
  if (v === null) return "nil";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") return Number.isInteger(v) ? `i:${v}` : `f:${floatBits(v)}`;
  if (typeof v === "string") {
    let s = "s:";
    for (let i = 0; i < v.length; i++) s += hex4(v.charCodeAt(i));
    return s;
  }
  if (Array.isArray(v)) return `[${v.map(describeJs).join(",")}]`;
  if (typeof v === "object") {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${describeJs(k)}:${describeJs(x)}`)
      .join(",")}}`;
  }
  throw new Error(`cannot describe ${String(v)}`);
}

/**
 * A random value msgpackr can pack (`useRecords: false`) covering every SDK family and every
 * header size: small and 8/16/32/64-bit integers (BigInt beyond 2^53, up to 2^64-1), float64
 * and float32-exact numbers, specials (±Infinity, NaN, subnormals), ASCII/Unicode/astral
 * strings up to str 32, bin up to bin 32, arrays and string-keyed maps past 16 entries.
 * Strings are valid Unicode (no lone surrogates: those have no UTF-8 form).
 */
export function randomValue(rnd: () => number, depth = 0): unknown {
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)] as T;
  const big = (bits: number): bigint => {
    let v = 0n;
    for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(int(0, 0xffff));
    return v & ((1n << BigInt(bits)) - 1n);
  };
  const kinds = depth >= 4 ? 11 : 14;
  switch (int(0, kinds - 1)) {
    case 0:
      return pick([null, true, false]);
    case 1:
      return int(-32, 127);
    case 2:
      return pick([int(-128, 255), int(-32768, 65535), int(-(2 ** 31), 2 ** 32 - 1), -(2 ** 31), 2 ** 32 - 1, 255, 256, 65535, 65536]);
    case 3: // msgpackr packs integers beyond 32 bits that are JS numbers as float64
      return pick([int(2 ** 32, 2 ** 40), -int(2 ** 31 + 1, 2 ** 45), Number.MAX_SAFE_INTEGER, 2 ** 53 + 2]);
    case 4: // int64 / uint64 through BigInt
      return pick([big(63) - (1n << 62n), -big(63), (1n << 63n) - 1n, -(1n << 63n), (1n << 63n) + big(62), (1n << 64n) - 1n, BigInt(int(0, 1000))]);
    case 5:
      return (rnd() - 0.5) * 10 ** int(-10, 300);
    case 6: // float32-exact values, which the SDK narrows
      return pick([Math.fround((rnd() - 0.5) * 2 ** int(-20, 60)), 0.5, -0.25, 1.5, 3.4028234663852886e38, 1.401298464324817e-45]);
    case 7:
      return pick([Infinity, -Infinity, NaN, Number.MIN_VALUE, -Number.MAX_VALUE, 2.2250738585072014e-308, 0.1]);
    case 8:
      return randomString(rnd, pick([int(0, 31), int(32, 255), int(256, 2000), rnd() < 0.02 ? int(65536, 70000) : int(0, 8)]));
    case 9: {
      const n = pick([int(0, 16), int(17, 300), rnd() < 0.02 ? int(65536, 70000) : int(0, 4)]);
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = int(0, 255);
      return b;
    }
    case 10:
      return randomString(rnd, int(0, 40));
    case 11:
    case 12: {
      const n = pick([int(0, 15), int(16, 40)]);
      return Array.from({ length: n }, () => randomValue(rnd, depth + 1 + (n > 15 ? 1 : 0)));
    }
    default: {
      const n = pick([int(0, 15), int(16, 30)]);
      const o: Record<string, unknown> = {};
      for (let i = 0; i < n; i++) o[randomString(rnd, int(0, 12)) + String(i)] = randomValue(rnd, depth + 1 + (n > 15 ? 1 : 0));
      return o;
    }
  }
}

const ALPHABETS: readonly (readonly [number, number])[] = [
  [0x20, 0x7e], // ASCII
  [0x00, 0x1f], // controls, NUL included
  [0xa0, 0x7ff], // 2-byte UTF-8
  [0x800, 0xd7ff], // 3-byte UTF-8 below the surrogates
  [0xe000, 0xfffd], // 3-byte UTF-8 above them
  [0x10000, 0x10ffff], // astral: 4-byte UTF-8, surrogate pairs in UTF-16
];

/** A random valid Unicode string of about `n` code points. */
export function randomString(rnd: () => number, n: number): string {
  const set = ALPHABETS[Math.floor(rnd() * ALPHABETS.length)] ?? ALPHABETS[0]!;
  const mixed = rnd() < 0.3;
  let s = "";
  for (let i = 0; i < n; i++) {
    const [lo, hi] = mixed ? (ALPHABETS[Math.floor(rnd() * ALPHABETS.length)] ?? set) : set;
    s += String.fromCodePoint(lo + Math.floor(rnd() * (hi - lo + 1)));
  }
  return s;
}

/**
 * Normalises what msgpackr unpacked (or what was packed) for comparison: integer BigInts in
 * the safe range become numbers (msgpackr returns int64/uint64 as BigInt, while the SDK picks
 * the smallest encoding, which unpacks as a number), -0 becomes 0 (msgpackr packs -0 as the
 * integer 0), and byte arrays become `{bin: hex}`.
 */
export function normalize(v: unknown): unknown {
  if (typeof v === "bigint") {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (typeof v === "number") return Object.is(v, -0) ? 0 : v;
  if (v instanceof Uint8Array) return { bin: plainHex(v) };
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalize(x);
    return out;
  }
  return v;
}
