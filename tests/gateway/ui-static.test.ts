// The Control UI's static routes (gateway/ui-static.ts) on a built-like directory, and the
// upgrade guard's handling of the UI's token subprotocol and its own origins (auth.ts).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../host/src/config/index.js";
import { createUpgradeGuard } from "../../host/src/gateway/auth.js";
import { createUiRoutes, UI_CSP } from "../../host/src/gateway/ui-static.js";
import type { HttpAnswer, HttpRequestHead } from "../../host/src/gateway/types.js";
import { bearerSubprotocol, tokenFromSubprotocols } from "../../host/src/protocol/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-ui-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, "assets"));
writeFileSync(join(dir, "index.html"), '<!doctype html><script type="module" src="/assets/index-abc123.js"></script>');
writeFileSync(join(dir, "assets", "index-abc123.js"), `console.log(${JSON.stringify("x".repeat(4000))});`);
writeFileSync(join(dir, "assets", "index-def456.css"), "body{}");

const head = (path: string, method = "GET", headers: Record<string, string> = {}): HttpRequestHead => ({
  method,
  path,
  query: "",
  headers,
  remoteAddress: "127.0.0.1",
});

describe("UI static routes", () => {
  const routes = createUiRoutes({ dir })!;
  const get = (path: string, method?: string, headers?: Record<string, string>) => routes.route(head(path, method, headers)) as HttpAnswer | null;

  it("serves index.html no-cache and hashed assets immutable, with their content types, CSP and nosniff", () => {
    for (const path of ["/", "/index.html"]) {
      const a = get(path)!;
      expect(a.status).toBe(200);
      expect(a.headers).toMatchObject({
        "content-type": "text/html; charset=utf-8",
        "cache-control": "no-cache",
        "content-security-policy": UI_CSP,
        "x-content-type-options": "nosniff",
      });
    }
    expect(get("/assets/index-abc123.js")!.headers).toMatchObject({
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=31536000, immutable",
    });
    expect(get("/assets/index-def456.css")!.headers["content-type"]).toBe("text/css; charset=utf-8");
    expect(UI_CSP).toContain("script-src 'self'");
    expect(UI_CSP).not.toMatch(/unsafe-(inline|eval)/);
  });

  it("gzips for clients that accept it, and only them", () => {
    const gz = get("/assets/index-abc123.js", "GET", { "accept-encoding": "gzip, br" })!;
    expect(gz.headers["content-encoding"]).toBe("gzip");
    expect(gunzipSync(gz.body as Buffer).toString()).toContain("console.log");
    expect(get("/assets/index-abc123.js")!.headers["content-encoding"]).toBeUndefined();
  });

  it("answers 404 for an unknown asset, 405 for other methods, and leaves other paths to the next routes", () => {
    expect(get("/assets/index-zzz.js")!.status).toBe(404);
    expect(get("/", "POST")!.status).toBe(405);
    expect(get("/webhook/telegram")).toBeNull();
    expect(get("/ready")).toBeNull();
    expect(get("/assets/../index.html")).not.toMatchObject({ status: 200 });
  });

  it("refuses other origins' pages (Fetch Metadata, Origin) and serves its own, direct visits, links followed and non-browser clients", () => {
    const fm = (site: string, mode: string, dest: string, extra: Record<string, string> = {}) => ({
      host: "127.0.0.1:7200",
      "sec-fetch-site": site,
      "sec-fetch-mode": mode,
      "sec-fetch-dest": dest,
      ...extra,
    });
    const status = (path: string, headers: Record<string, string>) => get(path, "GET", headers)!.status;
    expect(status("/assets/index-abc123.js", fm("cross-site", "no-cors", "script"))).toBe(403);
    expect(status("/assets/index-abc123.js", fm("same-site", "cors", "script", { origin: "http://127.0.0.1:9999" }))).toBe(403);
    expect(status("/", fm("cross-site", "navigate", "iframe"))).toBe(403);
    expect(status("/", fm("same-site", "cors", "empty"))).toBe(403);
    expect(status("/", { host: "127.0.0.1:7200", origin: "http://evil.example" })).toBe(403);
    expect(get("/", "GET", fm("cross-site", "no-cors", "image"))!.body).toMatch(/cross-site request \(image\)/);
    expect(status("/assets/index-abc123.js", fm("same-origin", "cors", "script", { origin: "http://127.0.0.1:7200" }))).toBe(200);
    expect(status("/", fm("none", "navigate", "document"))).toBe(200);
    expect(status("/", fm("cross-site", "navigate", "document"))).toBe(200);
    expect(status("/", { host: "127.0.0.1:7200" })).toBe(200);
  });

  it("is absent when the UI is not built", () => {
    expect(createUiRoutes({ dir: join(dir, "nope") })).toBeUndefined();
  });
});

describe("the UI's upgrade: token as subprotocol, own origins with [gateway] ui", () => {
  const TOKEN = "t0ken-with-ünïcode/+=";
  const base = { bind: "127.0.0.1", port: () => 7200, token: TOKEN, allowedOrigins: [], allowedHosts: [] };
  const req = (origin: string | undefined, protocols: string | undefined) => ({
    remoteAddress: "127.0.0.1",
    host: "127.0.0.1:7200",
    query: "",
    ...(origin ? { origin } : {}),
    ...(protocols ? { protocols } : {}),
  });

  it("round-trips a token through the subprotocol (base64url: only token characters)", () => {
    const p = bearerSubprotocol(TOKEN);
    expect(p).toMatch(/^exoclaw\.bearer\.[A-Za-z0-9_-]+$/);
    expect(tokenFromSubprotocols(`exoclaw.v1, ${p}`)).toBe(TOKEN);
    expect(tokenFromSubprotocols("exoclaw.v1")).toBeUndefined();
    expect(tokenFromSubprotocols("exoclaw.bearer.***")).toBeUndefined();
  });

  it("admits the gateway's own origin with the token subprotocol when the UI is on, and answers exoclaw.v1 (never the token)", () => {
    const g = createUpgradeGuard({ ...base, ui: true });
    const ok = g(req("http://127.0.0.1:7200", `exoclaw.v1, ${bearerSubprotocol(TOKEN)}`));
    expect(ok).toMatchObject({ ok: true, protocol: "exoclaw.v1" });
    expect(g(req("http://localhost:7200", `exoclaw.v1, ${bearerSubprotocol("wrong-token-123456")}`))).toMatchObject({ ok: false, status: 401 });
    expect(g(req("http://evil.example", `exoclaw.v1, ${bearerSubprotocol(TOKEN)}`))).toMatchObject({ ok: false, status: 403 });
    expect(g(req("http://127.0.0.1:7201", `exoclaw.v1, ${bearerSubprotocol(TOKEN)}`))).toMatchObject({ ok: false, status: 403 });
  });

  it("refuses the gateway's own origin when the UI is off and allowed_origins does not list self", () => {
    const g = createUpgradeGuard({ ...base, ui: false });
    expect(g(req("http://127.0.0.1:7200", `exoclaw.v1, ${bearerSubprotocol(TOKEN)}`))).toMatchObject({ ok: false, status: 403 });
    // Clients without Origin are unaffected, and may use the subprotocol too.
    expect(g(req(undefined, bearerSubprotocol(TOKEN)))).toMatchObject({ ok: true });
  });
});

describe("[gateway] ui", () => {
  const load = (toml: string | undefined, env: Record<string, string> = {}) => {
    let file: string | undefined;
    if (toml !== undefined) {
      file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
      writeFileSync(file, toml);
    }
    return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state"), ...env }, []);
  };

  it("is on by default; the file and EXOCLAW_UI turn it off; the environment wins", () => {
    expect(load(undefined).gateway.ui).toBe(true);
    expect(load("[gateway]\nui = false\n").gateway.ui).toBe(false);
    expect(load(undefined, { EXOCLAW_UI: "0" }).gateway.ui).toBe(false);
    expect(load("[gateway]\nui = false\n", { EXOCLAW_UI: "1" }).gateway.ui).toBe(true);
    expect(() => load('[gateway]\nui = "yes"\n')).toThrow(ConfigError);
  });

  it("reserves the channel name webchat (the UI's chat) like ws", () => {
    expect(() => load('[channels.webchat]\nplugin = "webhook"\n')).toThrow(/channels\.webchat/);
    expect(load('[channels.webchat2]\nplugin = "webhook"\n').channels.map((c) => c.name)).toEqual(["webchat2"]);
  });
});
