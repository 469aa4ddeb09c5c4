// Pure pieces of the host side: host patterns, secret substitution and redaction.
import { describe, expect, it } from "vitest";
import { HostHttpError, hostMatches, redactSecrets, substituteSecrets } from "../../../host/src/plugins/sandbox/index.js";

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
    expect(redactSecrets("bad header t0k/en+1 and t0k%2Fen%2B1", secrets)).toBe("bad header {{secret:API_TOKEN}} and {{secret:API_TOKEN}}");
    expect(redactSecrets("nothing here", undefined)).toBe("nothing here");
  });
});

describe("hmacVerify / secretEquals (main-thread side)", () => {
  const grant = { secrets: { K: "key" } };
  it("limit data to 4 MiB and never name a secret's value in an error", async () => {
    const { hmacVerify, secretEquals, HostSecretError } = await import("../../../host/src/plugins/sandbox/services.js");
    const big = new Uint8Array(4 * 1024 * 1024 + 1);
    expect(() => hmacVerify(grant, { algorithm: "sha256", secret: "K", data: big, signature: "00" })).toThrow(
      new HostSecretError("data is 4194305 bytes, over the 4194304-byte limit"),
    );
    expect(() => secretEquals(grant, { secret: "NOPE", value: "key" })).toThrow(
      /secret 'NOPE' is not granted to this plugin \(capability 'secrets' grants 'K'\)$/,
    );
    expect(() => secretEquals({}, { secret: "K", value: "key" })).toThrow(/grants no secrets/);
    expect(secretEquals(grant, { secret: "K", value: "key" })).toBe(true);
    expect(secretEquals(grant, { secret: "K", value: "key\0" })).toBe(false);
  });
});

describe("secrets go only over https, or http to loopback, unless allow_insecure", () => {
  /** A fetch that records what would be sent and answers 200: the hosts below are not reachable from here. */
  function recorder() {
    const sent: { url: string; headers: Record<string, string> }[] = [];
    const fetch = (async (url: URL, init: RequestInit) => {
      sent.push({ url: String(url), headers: init.headers as Record<string, string> });
      return new Response("ok", { status: 200 });
    }) as unknown as typeof globalThis.fetch;
    return { sent, fetch };
  }
  const request = (url: string, headers: Record<string, string> = {}) => ({ method: "GET", url, headers });
  const grant = { http: { hosts: ["api.example.com", "127.0.0.1", "localhost"] }, secrets: { TOKEN: "t0ken-value" } };

  it("refuses a secret in a header or the URL of a plain-http request to another machine, sending nothing", async () => {
    const { createHostServices } = await import("../../../host/src/plugins/sandbox/services.js");
    const r = recorder();
    const services = createHostServices({ fetch: r.fetch });
    const signal = new AbortController().signal;
    await expect(services.http(request("http://api.example.com/x", { authorization: "Bearer {{secret:TOKEN}}" }), grant, signal)).rejects.toThrow(
      new HostHttpError(
        "secret 'TOKEN' is sent only over https (or http to loopback), not to http://api.example.com; the operator can allow it with allow_insecure = true on the secret in [plugins.grants]",
      ),
    );
    await expect(services.http(request("http://api.example.com/x?key={{secret:TOKEN}}"), grant, signal)).rejects.toThrow(
      /secret 'TOKEN' is sent only over https/,
    );
    expect(r.sent).toEqual([]);
    // Without a secret, plain http is the grant's business.
    await services.http(request("http://api.example.com/plain"), grant, signal);
    expect(r.sent.map((s) => s.url)).toEqual(["http://api.example.com/plain"]);
  });

  it("allows https, loopback, and a secret the operator marked allow_insecure", async () => {
    const { createHostServices } = await import("../../../host/src/plugins/sandbox/services.js");
    const r = recorder();
    const services = createHostServices({ fetch: r.fetch });
    const signal = new AbortController().signal;
    const auth = { authorization: "Bearer {{secret:TOKEN}}" };
    await services.http(request("https://api.example.com/x", auth), grant, signal);
    await services.http(request("http://127.0.0.1:8080/x", auth), grant, signal);
    await services.http(request("http://localhost:8080/x", auth), grant, signal);
    await services.http(request("http://api.example.com/insecure", auth), { ...grant, insecureSecrets: ["TOKEN"] }, signal);
    expect(r.sent.map((s) => [s.url, s.headers.authorization])).toEqual([
      ["https://api.example.com/x", "Bearer t0ken-value"],
      ["http://127.0.0.1:8080/x", "Bearer t0ken-value"],
      ["http://localhost:8080/x", "Bearer t0ken-value"],
      ["http://api.example.com/insecure", "Bearer t0ken-value"],
    ]);
  });

  it("materializeGrant passes allow_insecure through as insecureSecrets (names only)", async () => {
    const { materializeGrant } = await import("../../../host/src/plugins/grants.js");
    const { effective } = materializeGrant({ secrets: ["A", "B"] }, { secrets: { A: { env: "A" }, B: { env: "B", allowInsecure: true } } }, { A: "a", B: "b" });
    expect(effective).toEqual({ secrets: { A: "a", B: "b" }, insecureSecrets: ["B"] });
  });
});
