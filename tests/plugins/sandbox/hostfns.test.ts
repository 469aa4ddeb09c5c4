// exoclaw:host/v1 host functions through the hostcalls fixture: each works when granted and is
// refused with a message naming the capability when not (checked on every call).
import { createHmac } from "node:crypto";
import { mkdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EffectiveGrant } from "../../../host/src/plugins/capabilities.js";
import { createHostServices, KV_FILE, type CallOutcome, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import { captureLogger, fixturePool, SECRET, startTestServer, tempDir, type PoolSetup } from "./support.js";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

interface ToolOut {
  content: string;
  isError: boolean;
}

function result(r: CallOutcome): ToolOut {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return unpackr.unpack(r.output) as ToolOut;
}

const pools: SandboxPool[] = [];
let root = "";
let server: Awaited<ReturnType<typeof startTestServer>>;

async function pool(grant: EffectiveGrant, setup: PoolSetup = {}): Promise<(tool: string, input?: unknown) => Promise<ToolOut>> {
  const p = await fixturePool("hostcalls", { grant, ...setup });
  pools.push(p);
  return async (tool, input = {}) => result(await p.call("call", packr.pack({ name: tool, input })));
}

const ok = (content: string): ToolOut => ({ content, isError: false });
const err = (content: string): ToolOut => ({ content, isError: true });

beforeAll(async () => {
  root = await tempDir();
  server = await startTestServer();
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

describe("clock_now", () => {
  it("returns the wall clock in ms since the epoch, with sub-ms precision", async () => {
    const call = await pool({ clock: true });
    const before = Date.now();
    const t = Number((await call("clock")).content);
    expect(t).toBeGreaterThanOrEqual(before - 5);
    expect(t).toBeLessThanOrEqual(Date.now() + 5);
  });

  it("is refused without the grant", async () => {
    const call = await pool({});
    expect(await call("clock")).toEqual(err("clock_now: capability 'clock' is not granted to this plugin"));
  });
});

describe("random_bytes", () => {
  it("returns the requested number of random bytes, at most 64 KiB", async () => {
    const call = await pool({ random: true });
    const a = (await call("random", { len: 32 })).content;
    const b = (await call("random", { len: 32 })).content;
    expect(a).toMatch(/^32:[0-9a-f]{64}$/); // (the fixture shows the first 32 bytes)
    expect(a).not.toBe(b);
    expect((await call("random", { len: 65536 })).content).toMatch(/^65536:/);
    expect(await call("random", { len: 65537 })).toEqual(err("random_bytes: len must be an integer from 0 to 65536"));
  });

  it("is refused without the grant", async () => {
    const call = await pool({ clock: true });
    expect(await call("random", { len: 8 })).toEqual(err("random_bytes: capability 'random' is not granted to this plugin"));
  });
});

describe("config_get", () => {
  it("returns granted keys only", async () => {
    const call = await pool({ config: { greeting: "hello ü" } });
    expect(await call("config", { key: "greeting" })).toEqual(ok("hello ü"));
    expect(await call("config", { key: "password" })).toEqual(err("config_get: config key 'password' is not granted (capability 'config' grants 'greeting')"));
  });

  it("is refused without the grant", async () => {
    const call = await pool({});
    expect(await call("config", { key: "greeting" })).toEqual(err("config_get: capability 'config' is not granted to this plugin"));
  });
});

describe("log", () => {
  it("forwards lines at debug, tagged with the plugin and level; at most 256 lines a call; long lines cut", async () => {
    const logger = captureLogger();
    const call = await pool({ log: true }, { logger });
    expect(await call("log", { level: "warn", message: "disk almost full ü" })).toEqual(ok("logged"));
    expect(await call("log", { level: "info", message: "x".repeat(10_000) })).toEqual(ok("logged"));
    expect(await call("log", { level: "info", message: "spam", count: 300 })).toEqual(err("line 257: log: more than 256 log lines in one call"));
    await new Promise((r) => setTimeout(r, 50)); // log lines are posted, not awaited
    const lines = logger.records.filter((r) => r.level === "debug");
    expect(lines[0]).toEqual({ level: "debug", fields: { plugin: "hostcalls", level: "warn" }, msg: "disk almost full ü" });
    expect(lines[1]?.msg).toMatch(/^x{8192}… \(10000 bytes, cut\)$/);
    expect(lines.filter((l) => l.msg === "spam")).toHaveLength(256);
  });

  it("is refused without the grant (and nothing is logged)", async () => {
    const logger = captureLogger();
    const call = await pool({}, { logger });
    expect(await call("log", { message: "hi" })).toEqual(err("line 1: log: capability 'log' is not granted to this plugin"));
    expect(logger.records.filter((r) => r.level === "debug")).toEqual([]);
  });
});

describe("kv", () => {
  it("set / get / list / delete, persisted under the state dir and shared by every instance", async () => {
    const stateDir = path.join(root, "kv-state");
    const grant = { kv: { quotaBytes: 1024 } };
    const call = await pool(grant, { stateDir, limits: { maxInFlight: 2 } });
    expect(await call("kv", { op: "get", key: "a" })).toEqual(ok("nil"));
    expect(await call("kv", { op: "set", key: "a", value: "1" })).toEqual(ok("ok"));
    expect(await call("kv", { op: "set", key: "ab", value: "2" })).toEqual(ok("ok"));
    expect(await call("kv", { op: "set", key: "b", value: "3" })).toEqual(ok("ok"));
    // Two calls at once land on two instances; both see the same store.
    const [x, y] = await Promise.all([call("kv", { op: "get", key: "a" }), call("kv", { op: "get", key: "ab" })]);
    expect([x, y]).toEqual([ok("1"), ok("2")]);
    expect(await call("kv", { op: "list", prefix: "a" })).toEqual(ok("[a,ab]"));
    expect(await call("kv", { op: "delete", key: "b" })).toEqual(ok("deleted"));
    expect(await call("kv", { op: "delete", key: "b" })).toEqual(ok("absent"));
    expect(await call("kv", { op: "set", key: "", value: "x" })).toEqual(err("kv_set: key must be 1 to 1024 bytes, got 0"));
    expect((await stat(path.join(stateDir, KV_FILE))).isFile()).toBe(true);
    expect(unpackr.unpack(await readFile(path.join(stateDir, KV_FILE)))).toEqual({ a: Buffer.from("1"), ab: Buffer.from("2") });

    // A new pool of the same plugin (e.g. after a restart or a hot reload) sees the data.
    await Promise.all(pools.splice(0).map((p) => p.close()));
    const again = await pool(grant, { stateDir });
    expect(await again("kv", { op: "list", prefix: "" })).toEqual(ok("[a,ab]"));
  });

  it("refuses writes over the quota (keys + values), allows shrinking ones", async () => {
    const call = await pool({ kv: { quotaBytes: 20 } });
    expect(await call("kv", { op: "set", key: "k", value: "0123456789" })).toEqual(ok("ok"));
    expect(await call("kv", { op: "set", key: "k2", value: "0123456789" })).toEqual(
      err("kv_set: quota exceeded: storing 'k2' (12 bytes) would use 23 of the 20 bytes granted (capability 'kv', quotaBytes)"),
    );
    expect(await call("kv", { op: "set", key: "k", value: "01234" })).toEqual(ok("ok"));
    expect(await call("kv", { op: "set", key: "k2", value: "0123456789" })).toEqual(ok("ok"));
  });

  it("is refused without the grant", async () => {
    const call = await pool({});
    for (const op of ["get", "set", "delete", "list"]) {
      const fn = op === "list" ? "kv_list" : `kv_${op}`;
      expect(await call("kv", { op, key: "a", value: "1", prefix: "" })).toEqual(err(`${fn}: capability 'kv' is not granted to this plugin`));
    }
  });
});

describe("fs", () => {
  let data = "";
  let ro = "";
  let outside = "";
  beforeAll(async () => {
    data = path.join(root, "fs-data");
    ro = path.join(root, "fs-ro");
    outside = path.join(root, "fs-outside");
    for (const d of [data, ro, outside, path.join(data, "sub")]) await mkdir(d, { recursive: true });
    await writeFile(path.join(data, "a.txt"), "alpha");
    await writeFile(path.join(ro, "r.txt"), "read only");
    await writeFile(path.join(outside, "victim.txt"), "untouched");
    await symlink(path.join(outside, "victim.txt"), path.join(data, "evil.txt"));
    await symlink(outside, path.join(data, "evil-dir"));
  });
  const fsGrant = (): EffectiveGrant => ({
    fs: [
      { guest: "/data", host: data, write: true },
      { guest: "/ro", host: ro, write: false },
    ],
  });

  it("reads, writes and lists inside the mapped directories", async () => {
    const call = await pool(fsGrant());
    expect(await call("fs", { op: "read", path: "/data/a.txt" })).toEqual(ok("alpha"));
    expect(await call("fs", { op: "write", path: "/data/sub/new.txt", data: "fresh" })).toEqual(ok("written"));
    expect(await readFile(path.join(data, "sub", "new.txt"), "utf8")).toBe("fresh");
    expect(await call("fs", { op: "read", path: "/data/sub/../sub/new.txt" })).toEqual(ok("fresh"));
    expect(await call("fs", { op: "list", path: "/data" })).toEqual(ok("[a.txt,evil-dir,evil.txt,sub]"));
    expect(await call("fs", { op: "list", path: "/ro" })).toEqual(ok("[r.txt]"));
    expect(await call("fs", { op: "read", path: "/ro/r.txt" })).toEqual(ok("read only"));
  });

  it("refuses writes to read-only mounts, through symlinks, and outside; errors never show host paths", async () => {
    const call = await pool(fsGrant());
    const outs = [
      await call("fs", { op: "write", path: "/ro/r.txt", data: "x" }),
      await call("fs", { op: "write", path: "/data/evil.txt", data: "x" }),
      await call("fs", { op: "write", path: "/data/evil-dir/victim.txt", data: "x" }),
      await call("fs", { op: "write", path: "/data/../escape.txt", data: "x" }),
      await call("fs", { op: "write", path: "/data", data: "x" }),
      await call("fs", { op: "read", path: "/data/missing.txt" }),
      await call("fs", { op: "read", path: "/data/sub" }),
      await call("fs", { op: "list", path: "/data/evil-dir" }),
    ];
    expect(outs).toEqual([
      err("fs_write: '/ro/r.txt' is in '/ro', which is granted read-only (capability 'fs' without write)"),
      err("fs_write: '/data/evil.txt': is a symbolic link (not followed)"),
      err("fs_write: '/data/evil-dir' resolves outside its granted directory (symbolic link)"),
      err("fs_write: '/data/../escape.txt' is outside the granted directories (capability 'fs' grants '/data', '/ro')"),
      err("fs_write: '/data': is a directory"),
      err("fs_read: '/data/missing.txt': no such file or directory"),
      err("fs_read: '/data/sub': is a directory"),
      err("fs_list: '/data/evil-dir' resolves outside its granted directory (symbolic link)"),
    ]);
    expect(await readFile(path.join(outside, "victim.txt"), "utf8")).toBe("untouched");
    expect(JSON.stringify(outs)).not.toContain(root);
  });

  it("is refused without the grant", async () => {
    const call = await pool({});
    expect(await call("fs", { op: "read", path: "/data/a.txt" })).toEqual(err("fs_read: capability 'fs' is not granted to this plugin"));
    expect(await call("fs", { op: "write", path: "/data/a.txt", data: "x" })).toEqual(err("fs_write: capability 'fs' is not granted to this plugin"));
    expect(await call("fs", { op: "list", path: "/data" })).toEqual(err("fs_list: capability 'fs' is not granted to this plugin"));
  });
});

describe("http_request", () => {
  it("GET and POST to a granted host", async () => {
    const call = await pool({ http: { hosts: ["127.0.0.1"] } });
    expect(await call("http", { url: `${server.url}/hello` })).toEqual(ok("200\ntext/plain\nhello"));
    const echoed = await call("http", { method: "POST", url: `${server.url}/echo`, headers: { "x-a": "1" }, body: "payload ü" });
    const [status, type, json] = echoed.content.split("\n");
    expect([status, type]).toEqual(["200", "application/json"]);
    expect(JSON.parse(json ?? "")).toMatchObject({ method: "POST", url: "/echo", body: "payload ü", headers: { "x-a": "1" } });
  });

  it("enforces the granted methods", async () => {
    const call = await pool({ http: { hosts: ["127.0.0.1"], methods: ["GET"] } });
    expect((await call("http", { url: `${server.url}/hello` })).content).toMatch(/^200/);
    expect(await call("http", { method: "DELETE", url: `${server.url}/hello` })).toEqual(
      err("http_request: method DELETE is not granted (capability 'http' allows GET)"),
    );
  });

  it("follows redirects only to granted hosts; drops secret-bearing headers when leaving the origin", async () => {
    const port = new URL(server.url).port;
    const call = await pool({ http: { hosts: ["127.0.0.1", "localhost"] }, secrets: { API_TOKEN: SECRET } });
    const to = encodeURIComponent(`http://localhost:${port}/echo`);
    const r = await call("http", { url: `${server.url}/redirect?to=${to}`, headers: { "x-token": "{{secret:API_TOKEN}}", "x-plain": "p" } });
    const seen = JSON.parse(r.content.split("\n")[2] ?? "") as { headers: Record<string, string> };
    expect(seen.headers["x-plain"]).toBe("p");
    expect(seen.headers["x-token"]).toBeUndefined();

    const narrow = await pool({ http: { hosts: ["127.0.0.1"] } });
    expect(await narrow("http", { url: `${server.url}/redirect?to=${to}` })).toEqual(
      err(`http_request: redirect to http://localhost:${port}: http: host 'localhost' is not granted (capability 'http' allows '127.0.0.1')`),
    );
  });

  it("caps the response body", async () => {
    const call = await pool({ http: { hosts: ["127.0.0.1"] } }, { services: createHostServices({ maxResponseBytes: 1000 }) });
    expect((await call("http", { url: `${server.url}/big?n=1000` })).content).toMatch(/^200\napplication\/octet-stream\nb{1000}$/);
    expect(await call("http", { url: `${server.url}/big?n=1001` })).toEqual(
      err("http_request: response body is over the 1000-byte limit"), // chunked: no Content-Length to check first
    );
  });

  it("never shows a secret value in an error", async () => {
    const secret = "tok\nen"; // not a valid header value: fetch rejects it, naming the value
    const call = await pool({ http: { hosts: ["127.0.0.1"] }, secrets: { API_TOKEN: secret } });
    const r = await call("http", { url: `${server.url}/hello`, headers: { authorization: "{{secret:API_TOKEN}}" } });
    expect(r.isError).toBe(true);
    expect(r.content).not.toContain("tok\nen");
    expect(r.content).not.toContain(JSON.stringify(secret).slice(1, -1));
  });

  it("is refused without the grant, before any request is made", async () => {
    const before = server.requests.length;
    const call = await pool({});
    expect(await call("http", { url: `${server.url}/hello` })).toEqual(err("http_request: capability 'http' is not granted to this plugin"));
    expect(server.requests.length).toBe(before);
  });
});

describe("hmac_verify and secret_equals", () => {
  const KEY = "whsec-Very-Secret-7";
  const body = '{"peer":"42","content":"hi ü"}';
  const mac = (alg: string, data = body, key = KEY): string => createHmac(alg, key).update(data, "utf8").digest("hex");

  it("verify a correct HMAC (sha256, sha1, either hex case) and reject a wrong one, in constant time on the host", async () => {
    const call = await pool({ secrets: { HOOK_KEY: KEY, TOKEN: "t0ken" } });
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256") })).toEqual(ok("true"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256").toUpperCase() })).toEqual(ok("true"));
    expect(await call("hmac", { algorithm: "sha1", secret: "HOOK_KEY", data: body, signature: mac("sha1") })).toEqual(ok("true"));
    // Tampered body, wrong key, wrong algorithm's MAC, truncated, not hex, empty: false, never an error.
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: `${body} `, signature: mac("sha256") })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256", body, "other") })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha1") })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256").slice(0, 63) })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: `zz${mac("sha256").slice(2)}` })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: "" })).toEqual(ok("false"));
    expect(await call("hmac", { algorithm: "md5", secret: "HOOK_KEY", data: body, signature: "00" })).toEqual(
      err("hmac_verify: algorithm 'md5' is not supported (use 'sha256' or 'sha1')"),
    );
  });

  it("secret_equals compares a presented value with a granted secret", async () => {
    const call = await pool({ secrets: { HOOK_KEY: KEY, TOKEN: "t0ken" } });
    expect(await call("secret_equals", { secret: "TOKEN", value: "t0ken" })).toEqual(ok("true"));
    expect(await call("secret_equals", { secret: "TOKEN", value: "t0ke" })).toEqual(ok("false"));
    expect(await call("secret_equals", { secret: "TOKEN", value: "t0kenX" })).toEqual(ok("false"));
    expect(await call("secret_equals", { secret: "TOKEN", value: "" })).toEqual(ok("false"));
  });

  it("refuse a secret that is not granted, naming it and the granted ones, never showing a value", async () => {
    const call = await pool({ secrets: { TOKEN: "t0ken" } });
    const r1 = await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256") });
    expect(r1).toEqual(err("hmac_verify: secret 'HOOK_KEY' is not granted to this plugin (capability 'secrets' grants 'TOKEN')"));
    const r2 = await call("secret_equals", { secret: "HOOK_KEY", value: KEY });
    expect(r2).toEqual(err("secret_equals: secret 'HOOK_KEY' is not granted to this plugin (capability 'secrets' grants 'TOKEN')"));
    for (const r of [r1, r2]) expect(r.content).not.toContain("t0ken");
  });

  it("are refused without the grant", async () => {
    const call = await pool({ http: { hosts: ["127.0.0.1"] } });
    expect(await call("hmac", { algorithm: "sha256", secret: "HOOK_KEY", data: body, signature: mac("sha256") })).toEqual(
      err("hmac_verify: capability 'secrets' is not granted to this plugin"),
    );
    expect(await call("secret_equals", { secret: "TOKEN", value: "x" })).toEqual(err("secret_equals: capability 'secrets' is not granted to this plugin"));
  });
});
