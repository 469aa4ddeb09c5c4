import { isIPv6 as netIsIPv6 } from "node:net";
import { describe, expect, it } from "vitest";
import { isIPv6 } from "../../host/src/util/ip.js";

describe("isIPv6", () => {
  it("answers as node:net's isIPv6 on fixed cases", () => {
    const cases = [
      "::",
      "::1",
      "1::",
      "fe80::1%eth0",
      "fe80::1%",
      "2001:db8::8a2e:370:7334",
      "2001:db8:0:0:0:0:2:1",
      "2001:db8:0:0:0:0:0:0:1",
      "::ffff:192.0.2.128",
      "::ffff:192.0.2.256",
      "1:2:3:4:5:6:1.2.3.4",
      "1:2:3:4:5:6:7:1.2.3.4",
      "12345::",
      ":::",
      "1::2::3",
      "127.0.0.1",
      "localhost",
      "[::1]",
      "",
      "::1 ",
      "g::1",
      "FE80::ABCD",
    ];
    for (const c of cases) expect([c, isIPv6(c)]).toEqual([c, netIsIPv6(c)]);
  });

  it("answers as node:net's isIPv6 on 20,000 random near-addresses", () => {
    // Seeded (xorshift) so a failure reproduces.
    let x = 0x9e3779b9;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    const alphabet = "0123456789abcdefABCDEFg:::::..%z-";
    let agree = 0;
    let v6 = 0;
    for (let i = 0; i < 20_000; i++) {
      let s = "";
      const len = 1 + rnd(40);
      for (let k = 0; k < len; k++) s += alphabet[rnd(alphabet.length)];
      if (i % 3 === 0) s = `${s.slice(0, rnd(8))}::${s.slice(rnd(8))}`;
      expect([s, isIPv6(s)]).toEqual([s, netIsIPv6(s)]);
      agree++;
      if (netIsIPv6(s)) v6++;
    }
    expect(agree).toBe(20_000);
    expect(v6).toBeGreaterThan(100); // the sample reaches the accepting side too
  });
});
