// protocol/msgpack.mjs: the host's MessagePack configurations, each with the behaviour its call
// sites had before they were gathered in one module (bytes and decoded shapes).
import { describe, expect, it } from "vitest";
import { busMsgpack, frameMsgpack, kvFileMsgpack, pluginEnvelope, standardMsgpack } from "../../host/src/protocol/msgpack.mjs";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** {a: 2^53 + 2} with the value as uint64 (0xcf). */
const int64Map = Uint8Array.from([0x81, 0xa1, 0x61, 0xcf, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02]);

describe("MessagePack configurations", () => {
  it("write standard MessagePack: plain maps and arrays, no msgpackr records", () => {
    for (const c of [frameMsgpack, busMsgpack, pluginEnvelope, standardMsgpack, kvFileMsgpack]) {
      expect(hex(c.pack({ a: [1, "x"] }))).toMatch(/^(81|de0001)a1619201a178$/);
    }
    for (const c of [frameMsgpack, busMsgpack, pluginEnvelope, standardMsgpack]) expect(c.unpack(c.pack({ a: [1, "x"] }))).toEqual({ a: [1, "x"] });
  });

  it("pluginEnvelope writes undefined as nil; the standard configuration as msgpackr's undefined extension", () => {
    expect(hex(pluginEnvelope.pack([undefined]))).toBe("91c0");
    expect(hex(standardMsgpack.pack([undefined]))).toBe("91d40000");
  });

  it("frames and bus payloads decode int64 as numbers; plugin outputs as BigInt (as before)", () => {
    expect(frameMsgpack.unpack(int64Map)).toEqual({ a: 2 ** 53 + 2 });
    expect(busMsgpack.unpack(int64Map)).toEqual({ a: 2 ** 53 + 2 });
    expect(pluginEnvelope.unpack(int64Map)).toEqual({ a: 2n ** 53n + 2n });
  });

  it("kv files decode maps as Map (keys keep their type); everything else as plain objects", () => {
    const bytes = standardMsgpack.pack(new Map([["k", Uint8Array.from([1])]]));
    const decoded = kvFileMsgpack.unpack(bytes);
    expect(decoded).toBeInstanceOf(Map);
    expect([...(decoded as Map<string, Uint8Array>).get("k")!]).toEqual([1]);
    const plain = pluginEnvelope.unpack(bytes) as Record<string, Uint8Array>;
    expect(Object.getPrototypeOf(plain)).toBe(Object.prototype);
    expect([...plain["k"]!]).toEqual([1]);
  });

  it("frames encode maps of any size (variableMapSize)", () => {
    const big = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(frameMsgpack.unpack(frameMsgpack.pack(big)) as object)).toHaveLength(70_000);
  });
});
