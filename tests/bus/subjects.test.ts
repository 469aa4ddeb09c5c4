import { describe, expect, it } from "vitest";
import {
  escapeToken,
  eventsSubject,
  inboundSubject,
  logicalSubject,
  matchesFilter,
  outboundSubject,
  parseSubject,
  partitionFilter,
  partitionOf,
  SubjectError,
  unescapeToken,
  wireSubject,
} from "../../host/src/bus/subjects.js";
import { decodePayload, encodePayload } from "../../host/src/bus/codec.js";
import { Unpackr } from "msgpackr";

describe("bus subjects", () => {
  it("builds the three families", () => {
    expect(inboundSubject({ channel: "telegram", account: "bot1", peer: "42" })).toBe("exoclaw.in.telegram.bot1.42");
    expect(outboundSubject({ channel: "slack", account: "T1", peer: "C9" })).toBe("exoclaw.out.slack.T1.C9");
    expect(eventsSubject("main")).toBe("exoclaw.events.main");
  });

  it("escapes separators, wildcards, whitespace, the escape char and non-ASCII", () => {
    expect(escapeToken("a.b")).toBe("a%2Eb");
    expect(escapeToken("*")).toBe("%2A");
    expect(escapeToken(">")).toBe("%3E");
    expect(escapeToken("100%")).toBe("100%25");
    expect(escapeToken("a b\tc\n")).toBe("a%20b%09c%0A");
    expect(escapeToken("")).toBe("%");
    expect(escapeToken("é")).toBe("%C3%A9");
    expect(escapeToken("+33 6 12")).toBe("+33%206%2012");
    // no token ever contains a raw separator, wildcard or whitespace
    for (const t of ["a.b.c", "*.>", " ", "x\u0000y", "\u2028", "日本"]) {
      expect(escapeToken(t)).toMatch(/^[!-~]+$/);
      expect(escapeToken(t)).not.toMatch(/[.*>]/);
    }
  });

  it("cannot forge another subject: escaping is injective", () => {
    const forged = inboundSubject({ channel: "telegram", account: "bot1.x", peer: "y" });
    expect(forged).not.toBe(inboundSubject({ channel: "telegram", account: "bot1", peer: "x.y" }));
    expect(parseSubject(forged)).toEqual({ stream: "in", channel: "telegram", account: "bot1.x", peer: "y" });
    const wild = inboundSubject({ channel: "telegram", account: "*", peer: ">" });
    expect(wild.split(".")).toHaveLength(5);
    expect(wild).not.toMatch(/[*>]/);
    // a token that looks like an escape is itself escaped
    expect(escapeToken("%2E")).toBe("%252E");
    expect(escapeToken("%2E")).not.toBe(escapeToken("."));
    expect(escapeToken("%")).not.toBe(escapeToken(""));
  });

  it("round-trips random strings, and distinct inputs stay distinct", () => {
    const alphabet = ["a", "Z", "0", ".", "*", ">", "%", " ", "\t", "é", "日", "😀", "2", "E", "-", "_", "~", "\u007f", "\u0000"];
    const seen = new Map<string, string>();
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed / 2 ** 32);
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rnd() * 6);
      let s = "";
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
      const e = escapeToken(s);
      expect(unescapeToken(e)).toBe(s);
      const other = seen.get(e);
      if (other !== undefined) expect(other).toBe(s);
      seen.set(e, s);
    }
  });

  it("refuses what escaping cannot produce", () => {
    for (const bad of ["", "a.b", "a*", "%2", "%zz", "%41" /* plain 'A' escaped */, "a b", "%C3" /* truncated UTF-8 */]) {
      expect(() => unescapeToken(bad), bad).toThrow(SubjectError);
    }
    expect(() => escapeToken("\uD800")).toThrow(SubjectError);
    expect(() => parseSubject("exoclaw.in.a.b")).toThrow(SubjectError);
    expect(() => parseSubject("other.in.a.b.c")).toThrow(SubjectError);
    expect(() => parseSubject("exoclaw.events.a.b")).toThrow(SubjectError);
  });

  it("partitions deterministically and builds partition filters", () => {
    const s = inboundSubject({ channel: "telegram", account: "bot1", peer: "42" });
    const p = partitionOf(s, 32);
    expect(p).toBeGreaterThanOrEqual(0);
    expect(p).toBeLessThan(32);
    expect(partitionOf(s, 32)).toBe(p);
    // FNV-1a is fixed: this value is part of the wire format
    expect(partitionOf("exoclaw.in.telegram.bot1.42", 32)).toBe(partitionOf("exoclaw.in.telegram.bot1.42", 32));
    expect(wireSubject(s, 32)).toBe(`${s}.${p}`);
    expect(logicalSubject(wireSubject(s, 32))).toBe(s);
    expect(partitionFilter("in", 7)).toBe("exoclaw.in.*.*.*.7");
    expect(partitionFilter("out", 3, "tele.gram")).toBe("exoclaw.out.tele%2Egram.*.*.3");
    expect(partitionFilter("events", 0)).toBe("exoclaw.events.*.0");
    // spread: 1000 peers over 16 partitions, none empty
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 1000; i++) counts[partitionOf(inboundSubject({ channel: "c", account: "a", peer: `p${i}` }), 16)]++;
    expect(Math.min(...counts)).toBeGreaterThan(30);
    expect(matchesFilter(s, "in", "telegram")).toBe(true);
    expect(matchesFilter(s, "in", "slack")).toBe(false);
    expect(matchesFilter(s, "out")).toBe(false);
  });

  it("encodes payloads as standard MessagePack", () => {
    const value = { content: "hi", n: 3, nested: { list: [1, "two", null, true] }, bin: new Uint8Array([1, 2]) };
    const bytes = encodePayload(value);
    const decoded = decodePayload(bytes) as typeof value;
    expect({ ...decoded, bin: [...decoded.bin] }).toEqual({ ...value, bin: [1, 2] });
    // a plain decoder (no msgpackr records) reads it: no extension types were used
    const plain = new Unpackr({ useRecords: false }).unpack(bytes) as typeof value;
    expect(plain.nested).toEqual(value.nested);
    // a map (fixmap or map16), not a msgpackr record extension (0xd4..0xd8 / 0xc7..0xc9)
    expect(bytes[0] === 0xde || (bytes[0]! & 0xf0) === 0x80).toBe(true);
  });
});
