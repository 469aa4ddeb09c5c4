// Pure pieces of the host side: host patterns, secret substitution and redaction.
import { describe, expect, it } from "vitest";
import { HostHttpError, hostMatches, redactSecrets, substituteSecrets } from "../../host/src/plugins/sandbox/index.js";

describe("hostMatches", () => {
  it("matches exact names and *.suffix wildcards, case-insensitively", () => {
    expect(hostMatches("api.example.com", "api.example.com")).toBe(true);
    expect(hostMatches("api.example.com", "API.Example.com.")).toBe(true);
    expect(hostMatches("api.example.com", "example.com")).toBe(false);
    expect(hostMatches("*.example.com", "a.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "a.b.example.com")).toBe(true);
    expect(hostMatches("*.example.com", "example.com")).toBe(false);
    expect(hostMatches("*.example.com", "badexample.com")).toBe(false);
    expect(hostMatches("*.example.com", "example.com.evil.net")).toBe(false);
  });
});

describe("secrets", () => {
  const secrets = { API_TOKEN: "t0k/en+1", OTHER: "o" };

  it("substitutes granted placeholders and names the first one not granted", () => {
    const used = new Set<string>();
    expect(substituteSecrets("Bearer {{secret:API_TOKEN}} {{secret:OTHER}}", secrets, used)).toBe("Bearer t0k/en+1 o");
    expect([...used].sort()).toEqual(["API_TOKEN", "OTHER"]);
    expect(substituteSecrets("no placeholders", undefined)).toBe("no placeholders");
    expect(() => substituteSecrets("{{secret:NOPE}}", secrets)).toThrow(
      new HostHttpError("secret 'NOPE' is not granted to this plugin (capability 'secrets')"),
    );
    expect(() => substituteSecrets("{{secret:API_TOKEN}}", undefined)).toThrow(/not granted/);
  });

  it("redacts raw and URL-encoded secret values back to placeholders", () => {
    expect(redactSecrets("bad header t0k/en+1 and t0k%2Fen%2B1", secrets)).toBe(
      "bad header {{secret:API_TOKEN}} and {{secret:API_TOKEN}}",
    );
    expect(redactSecrets("nothing here", undefined)).toBe("nothing here");
  });
});

describe("hmacVerify / secretEquals (main-thread side)", () => {
  const grant = { secrets: { K: "key" } };
  it("limit data to 4 MiB and never name a secret's value in an error", async () => {
    const { hmacVerify, secretEquals, HostSecretError } = await import("../../host/src/plugins/sandbox/services.js");
    const big = new Uint8Array(4 * 1024 * 1024 + 1);
    expect(() => hmacVerify(grant, { algorithm: "sha256", secret: "K", data: big, signature: "00" })).toThrow(
      new HostSecretError("data is 4194305 bytes, over the 4194304-byte limit"),
    );
    expect(() => secretEquals(grant, { secret: "NOPE", value: "key" })).toThrow(/secret 'NOPE' is not granted to this plugin \(capability 'secrets' grants 'K'\)$/);
    expect(() => secretEquals({}, { secret: "K", value: "key" })).toThrow(/grants no secrets/);
    expect(secretEquals(grant, { secret: "K", value: "key" })).toBe(true);
    expect(secretEquals(grant, { secret: "K", value: "key\0" })).toBe(false);
  });
});
