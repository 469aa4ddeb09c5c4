import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { createSurrealSessionLog, parseSurrealUrl, StoreError } from "../../host/src/store/index.js";
import { redactUrl } from "../../host/src/store/surreal/url.js";

/** A port that was free a moment ago and has nothing listening on it now. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe("SurrealDB URLs", () => {
  it("parses embedded URLs", () => {
    expect(parseSurrealUrl("mem://")).toEqual({ engine: "mem", url: "mem://", displayUrl: "mem://", namespace: "exoclaw", database: "sessions" });
    expect(parseSurrealUrl("surrealkv:///var/lib/exoclaw/data", { namespace: "ns1", database: "db_2" })).toEqual({
      engine: "surrealkv",
      url: "surrealkv:///var/lib/exoclaw/data",
      displayUrl: "surrealkv:///var/lib/exoclaw/data",
      path: "/var/lib/exoclaw/data",
      namespace: "ns1",
      database: "db_2",
      journal: true,
    });
    expect(parseSurrealUrl("surrealkv:///d?journal=off")).toMatchObject({ path: "/d", journal: false });
    expect(parseSurrealUrl("surrealkv:///d?sync=never")).toMatchObject({ url: "surrealkv:///d?sync=never", path: "/d" });
    expect(() => parseSurrealUrl("surrealkv:///d?x=1")).toThrow(/sync/);
  });

  it("takes server credentials from options or the URL and strips them from the URL", () => {
    expect(parseSurrealUrl("ws://db.internal:8000", { username: "root", password: "s3cret" })).toEqual({
      engine: "ws",
      url: "ws://db.internal:8000/rpc",
      displayUrl: "ws://db.internal:8000/rpc",
      namespace: "exoclaw",
      database: "sessions",
      credentials: { username: "root", password: "s3cret" },
    });
    const t = parseSurrealUrl("wss://alice:p%40ss%3Aword@db.example.com/rpc?x=1");
    expect(t.credentials).toEqual({ username: "alice", password: "p@ss:word" });
    expect(t.url).toBe("wss://db.example.com/rpc?x=1");
    expect(t.displayUrl).toBe("wss://db.example.com/rpc");
    // Options win over the URL's user info.
    expect(parseSurrealUrl("ws://a:b@h:1", { username: "u", password: "p" }).credentials).toEqual({ username: "u", password: "p" });
    expect(parseSurrealUrl("ws://h:1/base/", { username: "u", password: "p" }).url).toBe("ws://h:1/base/rpc");
  });

  it("rejects what it cannot use, without echoing credentials", () => {
    const bad = (url: string, opts = {}) => {
      try {
        parseSurrealUrl(url, opts);
      } catch (err) {
        expect(err).toBeInstanceOf(StoreError);
        expect((err as StoreError).code).toBe("invalid_argument");
        return (err as Error).message;
      }
      throw new Error(`accepted ${url}`);
    };
    expect(bad("ws://db:8000")).toMatch(/needs a username and password/);
    expect(bad("surrealkv://relative/dir")).toMatch(/absolute directory/);
    expect(bad("rocksdb://relative/dir")).toMatch(/absolute directory/);
    expect(bad("tikv://db:2379")).toMatch(/unsupported SurrealDB URL/);
    expect(bad("http://user:hunter2@db:8000")).not.toContain("hunter2");
    expect(bad("mem://", { namespace: "bad-name" })).toMatch(/namespace/);
    expect(redactUrl("wss://user:hunter2@h/rpc?token=abc")).toBe("wss://h/rpc");
    expect(redactUrl("not a url://user:hunter2@x")).not.toContain("hunter2");
  });
});

describe("SurrealDB server mode", () => {
  it("fails within seconds with an error naming the URL (not the password) when the server is unreachable", async () => {
    const port = await closedPort();
    const t0 = Date.now();
    const err = await createSurrealSessionLog({ url: `ws://root:hunter2@127.0.0.1:${port}` }).catch((e: unknown) => e);
    const ms = Date.now() - t0;
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: "unavailable" });
    const message = (err as Error).message;
    expect(message).toMatch(/ECONNREFUSED/);
    expect(message).toContain(`ws://127.0.0.1:${port}/rpc`);
    expect(message).toMatch(/cannot reach/);
    expect(message).not.toContain("hunter2");
    expect(JSON.stringify(err)).not.toContain("hunter2");
    expect(ms).toBeLessThan(5_000);
  });

  it("times out against a server that accepts TCP but never answers", async () => {
    const srv = createServer(() => {});
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const err = await createSurrealSessionLog({ url: `ws://127.0.0.1:${port}`, username: "root", password: "hunter2", connectTimeoutMs: 1_000 }).catch(
        (e: unknown) => e,
      );
      expect(Date.now() - t0).toBeLessThan(4_000);
      expect(err).toMatchObject({ code: "unavailable" });
      expect((err as Error).message).toContain(`ws://127.0.0.1:${port}/rpc`);
      expect((err as Error).message).not.toContain("hunter2");
    } finally {
      srv.close();
    }
  });
});
