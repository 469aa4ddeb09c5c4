// The SDK's MessagePack codec, run inside the guest (plugins/fixtures/msgpack-conformance through
// the sandbox): every case of the msgpack-test-suite data set, a property test against msgpackr,
// and malformed input.
//
// Expectations, per case and per listed encoding: the guest decodes it to the right value
// (`describe`), and re-encodes it (`roundtrip`) to one of the listed encodings, the shortest of
// its family. The family is "integer" or "float" for numbers (the SDK never turns one into the
// other: 1.0 stays a float, re-encoded as float32 since that holds it exactly) and the whole
// list otherwise (str 8 → fixstr, map 16 → fixmap, ...). The data set omits the float32 form of
// two numbers that float32 holds exactly; those re-encodings are checked by value and listed.
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallOutcome, SandboxPool } from "../../host/src/plugins/sandbox/index.js";
import { fixturePool, text } from "../plugins/sandbox/support.js";
import { prng } from "../support/prng.mjs";
import { describeCase, fromHex, loadSuite, normalize, numberFamily, randomValue, toHex, type SuiteCase } from "./support.js";

const suite = loadSuite();
let pool: SandboxPool;

beforeAll(async () => {
  pool = await fixturePool("msgpack-conformance", { limits: { maxInFlight: 2 } });
});
afterAll(async () => {
  await pool?.close();
});

async function guest(fn: "roundtrip" | "describe", input: Uint8Array): Promise<CallOutcome> {
  return pool.call(fn, input);
}

function ok(r: CallOutcome, what: string): Uint8Array {
  if (!r.ok) throw new Error(`${what}: ${r.kind}: ${r.message}`);
  return r.output;
}

const caseName = (c: SuiteCase): string => {
  const { msgpack: _m, ...value } = c;
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v));
};

/**
 * Whether `out` is the float32 encoding of exactly the case's number. The data set does not list
 * float32 for every number that float32 holds exactly (it lists `ca-4f-80-00-00` for 2^32 but
 * nothing for -2^32), so an SDK that narrows losslessly produces a few encodings it omits.
 */
function isExactFloat32(out: Uint8Array, c: SuiteCase): boolean {
  if (out.length !== 5 || out[0] !== 0xca) return false;
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength).getFloat32(1);
  return v === (c.number ?? Number(c.bignum));
}
const unlistedFloat32 = new Set<string>();

describe("msgpack-test-suite inside the guest", () => {
  it("has the data set", () => {
    const files = Object.keys(suite);
    expect(files.length).toBeGreaterThanOrEqual(15);
    expect(Object.values(suite).flat().length).toBeGreaterThanOrEqual(85);
  });

  for (const [file, cases] of Object.entries(suite)) {
    it(`${file}: ${cases.length} values, ${cases.reduce((n, c) => n + c.msgpack.length, 0)} encodings`, async () => {
      const failures: string[] = [];
      for (const c of cases) {
        for (const enc of c.msgpack) {
          const input = fromHex(enc);
          const family = numberFamily(input[0]!);
          const isNumber = c.number !== undefined || c.bignum !== undefined;
          // The acceptable outputs: the listed encodings of the same family, shortest only.
          const sameFamily = c.msgpack.filter((e) => !isNumber || numberFamily(fromHex(e)[0]!) === family);
          const shortest = Math.min(...sameFamily.map((e) => fromHex(e).length));
          const accepted = sameFamily.filter((e) => fromHex(e).length === shortest);

          const d = await guest("describe", input);
          const want = describeCase(c, family);
          if (!d.ok) failures.push(`${caseName(c)} from ${enc}: describe failed: ${d.kind}: ${d.message}`);
          else if (text(d.output) !== want) failures.push(`${caseName(c)} from ${enc}: decoded as ${text(d.output)}, expected ${want}`);

          const r = await guest("roundtrip", input);
          if (!r.ok) failures.push(`${caseName(c)} from ${enc}: roundtrip failed: ${r.kind}: ${r.message}`);
          else if (family === "float" && !accepted.includes(toHex(r.output)) && isExactFloat32(r.output, c)) {
            unlistedFloat32.add(`${caseName(c)} as ${toHex(r.output)}`);
          } else if (!accepted.includes(toHex(r.output))) {
            failures.push(`${caseName(c)} from ${enc}: re-encoded as ${toHex(r.output)}, expected ${accepted.join(" or ")}`);
          }
        }
      }
      expect(failures).toEqual([]);
    });
  }

  it("the only re-encodings not listed are the exact float32 forms of -2^31 and -2^32", () => {
    expect([...unlistedFloat32].sort()).toEqual([
      '{"number":-2147483648} as ca-cf-00-00-00',
      '{"number":-4294967296,"bignum":"-4294967296"} as ca-cf-80-00-00',
    ]);
  });
});

describe("property: random values through msgpackr and the guest", () => {
  const packr = new Packr({ useRecords: false });
  const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
  const SEED = Number(process.env["EXOCLAW_PROPERTY_SEED"] ?? 20_240_604);
  const COUNT = 2_000;

  it(`${COUNT} random values (seed ${SEED}) round-trip equal, and the guest's encoding is a fixpoint`, async () => {
    const rnd = prng(SEED);
    let bytesIn = 0;
    let bytesOut = 0;
    for (let i = 0; i < COUNT; i++) {
      const value = randomValue(rnd);
      const packed = packr.pack(value);
      const out = ok(await guest("roundtrip", packed), `value ${i} (seed ${SEED})`);
      bytesIn += packed.length;
      bytesOut += out.length;
      const back = unpackr.unpack(out);
      // toEqual: NaN equals NaN, key order is ignored, +0 and -0 differ (normalised away).
      expect(normalize(back), `value ${i} (seed ${SEED}): ${toHex(packed.subarray(0, 64))}`).toEqual(normalize(value));
      // Canonical: decoding the guest's own encoding and encoding again changes nothing.
      const again = ok(await guest("roundtrip", out), `value ${i} again`);
      expect(toHex(again), `value ${i} (seed ${SEED}) is not a fixpoint`).toBe(toHex(out));
    }
    // The guest never encodes larger than msgpackr (which uses map 16 for every object and
    // float64 for every non-integer).
    expect(bytesOut).toBeLessThanOrEqual(bytesIn);
  }, 120_000);

  it("64-bit integers at the edges keep every bit", async () => {
    const edges = [
      0n,
      127n,
      128n,
      255n,
      256n,
      65535n,
      65536n,
      4294967295n,
      4294967296n,
      (1n << 53n) + 1n,
      (1n << 63n) - 1n,
      1n << 63n,
      (1n << 64n) - 1n,
      -1n,
      -32n,
      -33n,
      -128n,
      -129n,
      -32768n,
      -32769n,
      -2147483648n,
      -2147483649n,
      -(1n << 53n) - 1n,
      -(1n << 63n),
    ];
    for (const v of edges) {
      const out = ok(await guest("roundtrip", packr.pack(v)), String(v));
      const back: unknown = unpackr.unpack(out);
      expect(BigInt(back as number | bigint), `${v} came back as ${toHex(out)}`).toBe(v);
      expect(text(ok(await guest("describe", packr.pack(v)), String(v)))).toBe(`i:${v}`);
    }
  });
});

describe("malformed input", () => {
  const cases: [string, string][] = [
    ["empty input", ""],
    ["0xc1 (never used)", "c1"],
    ["truncated uint16", "cd-01"],
    ["truncated float64", "cb-3f-f0-00"],
    ["str 8 longer than the input", "d9-05-61-62"],
    ["bin 32 claiming 4 GiB", "c6-ff-ff-ff-ff-00"],
    ["array 32 claiming 4 billion elements", "dd-ff-ff-ff-ff-c0"],
    ["map 32 claiming 4 billion entries", "df-ff-ff-ff-ff-c0-c0"],
    ["map missing its last value", "82-a1-61-01-a1-62"],
    ["ext 8 without its type byte", "c7-01"],
    ["fixext 16 cut short", "d8-01-00-00"],
    ["trailing bytes", "c0-c0"],
    ["nesting 100 deep", "91".repeat(100) + "-c0"],
  ];
  for (const [name, hex] of cases) {
    it(`${name}: an error naming the byte offset, the instance survives`, async () => {
      const input = fromHex(hex);
      const r = await guest("roundtrip", input);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.kind).toBe("plugin_error");
        expect(r.message).toMatch(/invalid MessagePack at byte \d+/);
      }
    });
  }

  it("still works after all of that", async () => {
    expect(toHex(ok(await guest("roundtrip", fromHex("92-c3-a1-61")), "after"))).toBe("92-c3-a1-61");
  });

  it("invalid UTF-8 in a str does not trap", async () => {
    for (const hex of ["a2-c3-28", "a3-ed-a0-80", "a1-ff", "a2-f0-9f"]) {
      const r = await guest("roundtrip", fromHex(hex));
      expect(r.ok, hex).toBe(true);
    }
  });
});
