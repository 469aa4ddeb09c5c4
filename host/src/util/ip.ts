// IPv6 address syntax, as `node:net`'s `isIPv6` checks it, without loading `node:net`: the
// gateway's Host check needs only this test at start-up, and `node:net` (with the stream and DNS
// modules it brings) was ~3 ms of the listen phase (docs/architecture.md, "Start-up").
// The expression is Node 20's own (lib/internal/net.js); tests/util/ip.test.ts compares both on
// fixed and random inputs.

const V4_SEG = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
const V4_STR = `(?:${V4_SEG}\\.){3}${V4_SEG}`;
const V6_SEG = "(?:[0-9a-fA-F]{1,4})";
const IPV6_RE = new RegExp(
  "^(?:" +
    `(?:${V6_SEG}:){7}(?:${V6_SEG}|:)|` +
    `(?:${V6_SEG}:){6}(?:${V4_STR}|:${V6_SEG}|:)|` +
    `(?:${V6_SEG}:){5}(?::${V4_STR}|(?::${V6_SEG}){1,2}|:)|` +
    `(?:${V6_SEG}:){4}(?:(?::${V6_SEG}){0,1}:${V4_STR}|(?::${V6_SEG}){1,3}|:)|` +
    `(?:${V6_SEG}:){3}(?:(?::${V6_SEG}){0,2}:${V4_STR}|(?::${V6_SEG}){1,4}|:)|` +
    `(?:${V6_SEG}:){2}(?:(?::${V6_SEG}){0,3}:${V4_STR}|(?::${V6_SEG}){1,5}|:)|` +
    `(?:${V6_SEG}:){1}(?:(?::${V6_SEG}){0,4}:${V4_STR}|(?::${V6_SEG}){1,6}|:)|` +
    `(?::(?:(?::${V6_SEG}){0,5}:${V4_STR}|(?::${V6_SEG}){1,7}|:))` +
    ")(?:%[0-9a-zA-Z-.:]{1,})?$",
);

/**
 * Whether `s` is an IPv6 address (zone id allowed: `fe80::1%eth0`), exactly as `net.isIPv6`.
 * @param s the text to test (no brackets)
 */
export function isIPv6(s: string): boolean {
  // Every IPv6 address has a colon. The test first: V8 compiles this expression at its first use
  // (~2-10 ms on the 2-core VM), which a default bind (127.0.0.1) then never pays.
  return s.includes(":") && IPV6_RE.test(s);
}
