/** The outbound allowlist compiler: table tests (pure). */
import { describe, expect, it } from "vitest";
import { compileOutboundAllowlist } from "../../host/src/agent/outbound-policy.js";

const LIST = ["telegram:100", "telegram:-100*", "slack:*", "webhook:user:42", "webhook:a*b"];

describe("compileOutboundAllowlist", () => {
  const policy = compileOutboundAllowlist(LIST);
  it.each([
    ["telegram", "100", true, "exact peer"],
    ["telegram", "1000", false, "exact does not prefix"],
    ["telegram", "10", false, "exact does not match a prefix of itself"],
    ["telegram", "-100", true, "prefix matches itself"],
    ["telegram", "-1001234", true, "prefix"],
    ["telegram", "-99", false, "outside the prefix"],
    ["telegram", "999", false, "stranger"],
    ["slack", "U123", true, "channel wildcard peer"],
    ["slack", "", true, "channel wildcard matches any id"],
    ["whatsapp", "100", false, "channel not listed"],
    ["Telegram", "100", false, "channel is case-sensitive"],
    ["webhook", "user:42", true, "peer ids may contain ':'"],
    ["webhook", "user:4", false, "no partial match"],
    ["webhook", "a*b", true, "a '*' inside is literal"],
    ["webhook", "axxb", false, "a '*' inside is not a glob"],
    ["webhook", "a", false, "a '*' inside is not a prefix"],
  ])("%s:%s -> %s (%s)", (channel, peer, want) => {
    expect(policy.allows(channel, peer)).toBe(want);
  });

  it("allows nothing when empty", () => {
    const none = compileOutboundAllowlist([]);
    expect(none.allows("telegram", "100")).toBe(false);
    expect(none.entries).toEqual([]);
  });

  it("keeps the entries for refusal messages", () => {
    expect(policy.entries).toEqual(LIST);
  });

  it.each(["telegram", ":100", "telegram:", ""])("rejects the malformed entry %j, naming it", (entry) => {
    expect(() => compileOutboundAllowlist([entry])).toThrow(JSON.stringify(entry));
  });
});
