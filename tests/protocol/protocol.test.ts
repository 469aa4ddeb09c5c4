import { Packr, Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, parseChatSendParams, parseEnvelope, RpcError } from "../../host/src/protocol/index.js";

describe("codec", () => {
  it("round-trips JSON and standard MessagePack", () => {
    const msg = { jsonrpc: "2.0", id: 1, result: { a: [1, "é€", null, true], n: 1.5 } };
    const json = encodeFrame(msg, "json");
    expect(typeof json).toBe("string");
    expect(decodeFrame(Buffer.from(json as string), "json")).toEqual({ ok: true, value: msg });
    const bin = encodeFrame(msg, "msgpack") as Uint8Array;
    // A plain decoder without msgpackr's record extension must read it.
    expect(new Unpackr({ useRecords: false, mapsAsObjects: true }).unpack(bin)).toEqual(msg);
    expect(decodeFrame(bin, "msgpack")).toEqual({ ok: true, value: msg });
  });

  it("never emits msgpackr record extensions", () => {
    const bin = encodeFrame([{ a: 1 }, { a: 2 }, { a: 3 }], "msgpack") as Uint8Array;
    expect(bin.includes(0xd4) || bin.includes(0xc7)).toBe(false); // no ext headers
    expect(bin[0]).toBe(0x93); // fixarray of 3
  });

  it("reports malformed input without throwing", () => {
    expect(decodeFrame(Buffer.from("{nope"), "json").ok).toBe(false);
    expect(decodeFrame(new Uint8Array([0xc1]), "msgpack").ok).toBe(false);
    expect(decodeFrame(new Uint8Array([0x82, 0xa1]), "msgpack").ok).toBe(false);
    expect(decodeFrame(new Uint8Array([]), "msgpack").ok).toBe(false);
    const trailing = new Uint8Array([...new Packr({ useRecords: false }).pack(1), 0x01]);
    expect(decodeFrame(trailing, "msgpack").ok).toBe(false);
  });
});

describe("envelope", () => {
  it("accepts requests and notifications", () => {
    expect(parseEnvelope({ jsonrpc: "2.0", id: "a", method: "ping" })).toMatchObject({ ok: true, request: { id: "a", method: "ping" } });
    const n = parseEnvelope({ jsonrpc: "2.0", method: "ping" });
    expect(n.ok && !("id" in n.request)).toBe(true);
  });

  it.each([
    [[{ jsonrpc: "2.0", id: 1, method: "ping" }], null, /batch/],
    ["hello", null, /object/],
    [{ id: 1, method: "ping" }, 1, /jsonrpc/],
    [{ jsonrpc: "2.0", id: 2 }, 2, /method/],
    [{ jsonrpc: "2.0", id: 3, method: 5 }, 3, /method/],
    [{ jsonrpc: "2.0", id: { x: 1 }, method: "ping" }, null, /id must be/],
    [{ jsonrpc: "2.0", id: 4, method: "ping", params: "x" }, 4, /params/],
  ])("rejects %j with -32600", (value, id, message) => {
    const r = parseEnvelope(value);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe(-32600);
      expect(r.id).toBe(id);
      expect(r.error.message).toMatch(message);
    }
  });
});

describe("chat.send params", () => {
  it("applies defaults", () => {
    expect(parseChatSendParams({ content: "hi" })).toEqual({ content: "hi", channel: "ws", account: "default", peer: "main" });
  });

  it("names the offending field", () => {
    const fail = (p: unknown) => {
      try {
        parseChatSendParams(p);
      } catch (err) {
        expect(err).toBeInstanceOf(RpcError);
        expect((err as RpcError).code).toBe(-32602);
        return (err as RpcError).message;
      }
      throw new Error("expected a failure");
    };
    expect(fail({})).toMatch(/content: content is required/);
    expect(fail({ content: 42 })).toMatch(/content: content must be a string/);
    expect(fail({ content: "x", peer: 7 })).toMatch(/peer: peer must be a string/);
    expect(fail({ content: "x", peer: "p".repeat(300) })).toMatch(/peer/);
  });
});
