/**
 * `[gateway] allowed_origins` / `allowed_hosts` (and their environment variables), and the
 * upgrade guard's decisions (host/src/gateway/auth.ts). The transports are covered end to end in
 * tests/e2e/gateway-edge.test.ts.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../host/src/config/index.js";
import { createUpgradeGuard, hostName, selfOrigins } from "../../host/src/gateway/auth.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-guard-config-"));

function load(toml: string | undefined, env: Record<string, string> = {}) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state"), ...env }, []);
}

describe("[gateway] allowed_origins / allowed_hosts", () => {
  it("default to empty", () => {
    expect(load(undefined).gateway).toMatchObject({ allowedOrigins: [], allowedHosts: [] });
  });

  it("are read from the file, the environment winning", () => {
    const toml = '[gateway]\nallowed_origins = ["self", "https://app.example"]\nallowed_hosts = ["bot.example.com", "[fd00::1]"]\n';
    expect(load(toml).gateway).toMatchObject({ allowedOrigins: ["self", "https://app.example"], allowedHosts: ["bot.example.com", "[fd00::1]"] });
    const env = { EXOCLAW_ALLOWED_ORIGINS: " http://localhost:5173 , self", EXOCLAW_ALLOWED_HOSTS: "a.example" };
    expect(load(toml, env).gateway).toMatchObject({ allowedOrigins: ["http://localhost:5173", "self"], allowedHosts: ["a.example"] });
  });

  it("refuse entries that are not an origin or a host name, naming the key or variable", () => {
    for (const bad of ["https://app.example/path", "app.example", "*", "ftp://x.example", "https://u:p@x.example"]) {
      expect(() => load(`[gateway]\nallowed_origins = ["${bad}"]\n`), bad).toThrow(/gateway\.allowed_origins\.0: must be "self" or an origin/);
    }
    expect(() => load('[gateway]\nallowed_hosts = ["bot.example.com:443"]\n')).toThrow(
      /gateway\.allowed_hosts\.0: must be a host name or IP without scheme or port/,
    );
    expect(() => load(undefined, { EXOCLAW_ALLOWED_ORIGINS: "self,evil" })).toThrow(ConfigError);
    expect(() => load(undefined, { EXOCLAW_ALLOWED_ORIGINS: "self,evil" })).toThrow(/^EXOCLAW_ALLOWED_ORIGINS: "evil" must be "self" or an origin/);
    expect(() => load(undefined, { EXOCLAW_ALLOWED_HOSTS: "http://x" })).toThrow(/^EXOCLAW_ALLOWED_HOSTS: "http:\/\/x" must be a host name/);
  });
});

describe("the upgrade guard", () => {
  const base = { bind: "127.0.0.1", port: () => 7200, allowedOrigins: [], allowedHosts: [] };
  const req = (h: { host?: string; origin?: string; authorization?: string; query?: string }) => ({
    remoteAddress: "127.0.0.1",
    query: "",
    host: "127.0.0.1:7200",
    ...h,
  });

  it("reads host names out of Host values", () => {
    expect(hostName("Example.COM:80")).toBe("example.com");
    expect(hostName("[::1]:7200")).toBe("::1");
    expect(hostName("[not-ip]")).toBeUndefined();
    expect(hostName("a b")).toBeUndefined();
    expect(hostName("a.example:99999999")).toBeUndefined();
  });

  it("names the gateway's own origins for `self`", () => {
    expect(selfOrigins("127.0.0.1", 7200)).toEqual(["http://localhost:7200", "http://127.0.0.1:7200", "http://[::1]:7200"]);
    expect(selfOrigins("192.168.1.5", 80)).toEqual(["http://localhost", "http://127.0.0.1", "http://[::1]", "http://192.168.1.5"]);
    expect(selfOrigins("0.0.0.0", 7200)).toHaveLength(3);
    expect(selfOrigins("127.0.0.1", 7443, "https")).toEqual(["https://localhost:7443", "https://127.0.0.1:7443", "https://[::1]:7443"]);
  });

  it("with TLS, `self` stands for the https origins only", () => {
    const g = createUpgradeGuard({ ...base, allowedOrigins: ["self"], tls: true });
    expect(g(req({ origin: "https://localhost:7200" }))).toMatchObject({ ok: true });
    expect(g(req({ origin: "http://localhost:7200" }))).toMatchObject({ ok: false, status: 403 });
  });

  it("refuses a missing Host, admits the bind address on a non-loopback bind", () => {
    const g = createUpgradeGuard({ ...base, bind: "192.168.1.5", token: "t".repeat(16) });
    const auth = { authorization: `Bearer ${"t".repeat(16)}` };
    expect(g(req({ ...auth, host: undefined }))).toEqual({ ok: false, status: 403, error: "missing Host header" });
    expect(g(req({ ...auth, host: "192.168.1.5:7200" }))).toMatchObject({ ok: true, identity: { account: "default" } });
    expect(g(req({ ...auth, host: "192.168.1.6:7200" }))).toMatchObject({ ok: false, status: 403 });
    expect(g(req({ host: "192.168.1.5:7200" }))).toMatchObject({ ok: false, status: 401 });
  });

  it("checks Host and Origin before the token, so a refused page learns nothing about the token", () => {
    const g = createUpgradeGuard({ ...base, token: "t".repeat(16) });
    expect(g(req({ origin: "http://evil.example", authorization: `Bearer ${"t".repeat(16)}` }))).toMatchObject({ status: 403 });
    expect(g(req({ origin: "http://evil.example" }))).toMatchObject({ status: 403 });
  });

  it("calls onQueryToken only for a token presented in the query", () => {
    let calls = 0;
    const g = createUpgradeGuard({ ...base, token: "t".repeat(16), onQueryToken: () => calls++ });
    expect(g(req({ query: `token=${"t".repeat(16)}` }))).toMatchObject({ ok: true, identity: { account: "default" } });
    expect(g(req({ authorization: `Bearer ${"t".repeat(16)}`, query: "token=x" }))).toMatchObject({ ok: true, identity: { account: "default" } });
    expect(calls).toBe(1);
  });
});
