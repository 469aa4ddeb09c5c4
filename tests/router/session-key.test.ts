// Session keys (issue 5): `agent:<agent>:<channel>:<account>:<peer>`, each part escaped so a `:`
// inside an id cannot forge another key. Checked against the store's parser, which is what
// persists and reads these keys.
import { describe, expect, it } from "vitest";
import { compileRouter, escapeKeyPart, sessionKey } from "../../host/src/router/index.js";
import { formatSessionKey, parseSessionKey } from "../../host/src/store/index.js";
import { prng } from "../support/prng.mjs";

describe("session key", () => {
  it.each([
    [["main", "telegram", "bot1", "12345"], "agent:main:telegram:bot1:12345"],
    [["main", "ws", "a:b", "c"], "agent:main:ws:a%3Ab:c"],
    [["main", "ws", "a", "b:c"], "agent:main:ws:a:b%3Ac"],
    [["main", "ws", "a%3Ab", "c"], "agent:main:ws:a%253Ab:c"],
    [["main", "ws", "100%", "::"], "agent:main:ws:100%25:%3A%3A"],
    [["main", "slack", "T0:W", "U%1:"], "agent:main:slack:T0%3AW:U%251%3A"],
    [["main", "matrix", "@bot:example.org", "@zoë:例え.jp"], "agent:main:matrix:@bot%3Aexample.org:@zoë%3A例え.jp"],
    [["main", "telegram", "bot", "😀 ü 日本"], "agent:main:telegram:bot:😀 ü 日本"],
    [["a-b_c", "x", "y", "z"], "agent:a-b_c:x:y:z"],
  ] as const)("%j -> %s", (parts, key) => {
    const [agent, channel, account, peer] = parts;
    expect(sessionKey(agent, channel, account, peer)).toBe(key);
    // The store formats the same key and parses it back to the same parts.
    expect(formatSessionKey({ agent, channel, account, peer })).toBe(key);
    expect(parseSessionKey(key)).toEqual({ agent, channel, account, peer });
  });

  it("an id with ':' cannot forge another peer's key", () => {
    // Without escaping, account "a:b" + peer "c" would equal account "a" + peer "b:c".
    expect(sessionKey("main", "ws", "a:b", "c")).not.toBe(sessionKey("main", "ws", "a", "b:c"));
    expect(sessionKey("main", "ws", "a%3Ab", "c")).not.toBe(sessionKey("main", "ws", "a:b", "c"));
    expect(sessionKey("main", "telegram:bot1", "x", "y")).not.toBe(sessionKey("main", "telegram", "bot1:x", "y"));
  });

  it("escapeKeyPart leaves ids without ':' or '%' as they are (same string)", () => {
    for (const id of ["123456789", "U0123ABC", "Zoë", "日本", "", "a b", "%3"]) {
      if (!/[:%]/.test(id)) expect(escapeKeyPart(id)).toBe(id);
    }
    expect(escapeKeyPart("%3")).toBe("%253");
  });

  it("property: distinct addresses never give the same key; every key splits into its 4 parts", () => {
    // Small alphabet full of the characters that matter, so near-collisions are common.
    const alphabet = [":", "%", "3", "A", "a", "2", "5", "ü", "😀", "\u0000"];
    const rand = prng(0xc0ffee);
    const part = () => {
      let s = "";
      const n = Math.floor(rand() * 5);
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
      return s;
    };
    const seen = new Map<string, string>();
    let distinct = 0;
    for (let i = 0; i < 40_000; i++) {
      const parts = [part(), part(), part(), part()] as const;
      const key = sessionKey(...parts);
      const id = JSON.stringify(parts);
      const before = seen.get(key);
      if (before === undefined) {
        seen.set(key, id);
        distinct++;
      } else {
        expect(before, `key ${JSON.stringify(key)}`).toBe(id);
      }
      const fields = key.split(":");
      expect(fields).toHaveLength(5);
      expect(fields[0]).toBe("agent");
      // An independent decoder: every '%' in a key starts %25 or %3A, so URI decoding inverts it.
      expect(fields.slice(1).map(decodeURIComponent)).toEqual([...parts]);
      // The store's parser inverts it (keys without '%' take its fast path), and refuses empty parts.
      const [agent, channel, account, peer] = parts;
      if (parts.every((p) => p.length > 0)) expect(parseSessionKey(key)).toEqual({ agent, channel, account, peer });
      else expect(() => parseSessionKey(key)).toThrow(/not a session key/);
    }
    // The generator really produced many different addresses (the check above was exercised).
    expect(distinct).toBeGreaterThan(20_000);
  });

  it("the router's keys: per agent, channel, account and peer; not per guild or team", () => {
    const r = compileRouter([{ agent: "b", peer: "u2" }], ["a", "b"], "a");
    const base = { channel: "discord", account: "default", peer: "u1" };
    const k = (m: Partial<typeof base> & { guild?: string; team?: string }) => r.resolve({ ...base, ...m }).sessionKey;
    expect(k({})).toBe("agent:a:discord:default:u1");
    expect(k({ guild: "g1" })).toBe(k({}));
    expect(k({ team: "t1", guild: "g2" })).toBe(k({}));
    expect(new Set([k({}), k({ channel: "slack" }), k({ account: "bot2" }), k({ peer: "u3" }), k({ peer: "u2" })]).size).toBe(5);
    expect(k({ peer: "u2" })).toBe("agent:b:discord:default:u2");
  });
});
