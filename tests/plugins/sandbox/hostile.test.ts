// A hostile plugin against the sandbox: every attack fails that call with a clear kind and
// message, the instance is replaced (or kept, when it is still sound), and meanwhile another
// plugin (echo) keeps answering on the same gateway event loop.
import { mkdir, rm, symlink, writeFile } from "node:fs/promises";
import path from "node:path";
import { Packr, Unpackr } from "msgpackr";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CallOutcome, SandboxPool } from "../../../host/src/plugins/sandbox/index.js";
import type { EffectiveGrant } from "../../../host/src/plugins/capabilities.js";
import { captureLogger, fixturePool, SECRET, startTestServer, tempDir, whileEchoing } from "./support.js";

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const tool = (name: string, input: unknown = {}): Uint8Array => packr.pack({ name, input });

/** The {content, isError} of a successful call. */
function content(r: CallOutcome): string {
  if (!r.ok) throw new Error(`call failed: ${r.kind}: ${r.message}`);
  return (unpackr.unpack(r.output) as { content: string }).content;
}

const TIMEOUT_MS = 300;
/** How late a timeout may be reported (timer and scheduling slack on a loaded 2-core box). */
const SLACK_MS = 200;
/** Echo calls must stay well under this while a hostile call runs. */
// Below TIMEOUT_MS: an echo blocked behind a hostile call would take at least that long. Loose
// because CI runs other suites on the same two cores.
const ECHO_MAX_MS = 250;

let echo: SandboxPool;
let server: Awaited<ReturnType<typeof startTestServer>>;
let dataDir = "";
let outsideDir = "";
let grant: EffectiveGrant;
const pools: SandboxPool[] = [];

async function hostile(limits: Record<string, number> = {}, extra: Partial<EffectiveGrant> = {}): Promise<SandboxPool> {
  const pool = await fixturePool("hostile", {
    grant: { ...grant, ...extra },
    limits: { timeoutMs: TIMEOUT_MS, maxInFlight: 1, ...limits },
  });
  pools.push(pool);
  await pool.ready?.();
  return pool;
}

async function count(pool: SandboxPool): Promise<number> {
  return Number(content(await pool.call("call", tool("count"))));
}

function report(name: string, load: { p50: number; max: number; n: number }): void {
  console.log(`${name}: ${load.n} echo calls meanwhile, p50 ${(load.p50 * 1000).toFixed(0)} us, max ${load.max.toFixed(2)} ms`);
}

beforeAll(async () => {
  server = await startTestServer();
  const root = await tempDir();
  dataDir = path.join(root, "data");
  outsideDir = path.join(root, "outside");
  await mkdir(dataDir);
  await mkdir(outsideDir);
  await writeFile(path.join(dataDir, "ok.txt"), "inside");
  await writeFile(path.join(outsideDir, "secret.txt"), "outside-the-mount");
  await symlink(path.join(outsideDir, "secret.txt"), path.join(dataDir, "link.txt"));
  await symlink(outsideDir, path.join(dataDir, "dirlink"));
  grant = {
    http: { hosts: ["127.0.0.1"] },
    kv: { quotaBytes: 4096 },
    fs: [{ guest: "/data", host: dataDir, write: false }],
    config: { greeting: "hello" },
    secrets: { API_TOKEN: SECRET },
  };
  echo = await fixturePool("echo", { grant: { clock: true } });
  await echo.ready?.();
}, 30_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await echo?.close();
  await server?.close();
  if (dataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
});

describe("hostile plugin: CPU and time", () => {
  it("an infinite loop times out within its budget, the instance is replaced, other plugins and sessions carry on", async () => {
    // What must hold: the guest spins on its worker thread, never on the gateway's event loop,
    // so (1) another plugin's call made while it spins completes before the spinning call is
    // ended, and (2) the event loop itself ends it at its deadline. Both are checked by the order
    // of events, not by counting or timing echo calls: on a loaded machine (CI, other suites on
    // the same two cores) the counts shrink to nothing while the order holds. Starting the second
    // instance below can alone take longer than the whole budget under load, so nothing here
    // waits for it before the loop is over.
    const pool = await hostile({ maxInFlight: 2 });
    const order: string[] = [];
    const t0 = performance.now();
    let loopMs = 0;
    const looping = pool.call("call", tool("loop")).then((r) => {
      loopMs = performance.now() - t0;
      order.push("loop ended");
      return r;
    });
    // The event loop's own clock: a timer due SLACK_MS after the loop's deadline. Armed with the
    // call, it is as late as the loop's deadline is when the main thread gets little CPU.
    const late = setTimeout(() => order.push("deadline + slack"), TIMEOUT_MS + SLACK_MS);
    // Echo calls, back to back, from the moment the loop was dispatched until it ends.
    let echoes = 0;
    const echoing = (async () => {
      const payload = new TextEncoder().encode("x".repeat(128));
      while (!order.includes("loop ended")) {
        const r = await echo.call("echo", payload);
        if (!r.ok) throw new Error(`echo failed while the loop ran: ${r.kind} ${r.message}`);
        if (!order.includes("loop ended")) {
          echoes++;
          if (echoes === 1) order.push("echo answered");
        }
      }
    })();
    // Another session of the same plugin gets the second instance meanwhile.
    const other = pool.call("call", tool("count"));
    const r = await looping;
    clearTimeout(late);
    await echoing;
    console.log(`loop: ended after ${loopMs.toFixed(0)} ms, ${echoes} echo calls answered meanwhile; events: ${order.join(" < ")}`);
    expect(order).toEqual(["echo answered", "loop ended"]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("timeout");
    expect(r.message).toMatch(/exceeded its time limit of 300 ms; the instance was stopped/);
    expect(loopMs).toBeGreaterThanOrEqual(TIMEOUT_MS - 5);
    expect(content(await other)).toBe("1");
    // The looping instance is gone; the other one serves on, a replacement starts when needed.
    expect(pool.stats()).toMatchObject({ instances: 1, busy: 0, failures: { timeout: 1 } });
    expect(await count(pool)).toBe(2);
  });

  it("unbounded recursion is a trap (stack overflow); the next call gets a fresh instance", async () => {
    const pool = await hostile();
    expect(await count(pool)).toBe(1);
    const load = await whileEchoing(echo, pool.call("call", tool("recurse")));
    report("recurse", load);
    const r = load.result;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("trap");
    expect(r.message).toMatch(/stack overflow/);
    expect(await count(pool)).toBe(1);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });
});

describe("hostile plugin: memory", () => {
  it("a memory bomb stops at the guest memory limit (kind memory, message names the limit)", async () => {
    const pool = await hostile({ memoryBytes: 8 * 1024 * 1024 });
    const load = await whileEchoing(echo, pool.call("call", tool("membomb")));
    report("membomb", load);
    const r = load.result;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("memory");
    expect(r.message).toMatch(/memory limit of 8 MiB \(128 of 128 pages in use\)/);
    expect(await count(pool)).toBe(1);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });

  it("decoding a crafted host-call request blows the worker's heap limit, not the gateway's (kind memory)", async () => {
    const pool = await hostile({ timeoutMs: 10_000 }, { log: true });
    const load = await whileEchoing(echo, pool.call("call", tool("heap_bomb")));
    report("heap_bomb", load);
    const r = load.result;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("memory");
    expect(r.message).toMatch(/ran out of host memory/);
    expect(await count(pool)).toBe(1);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  }, 20_000);

  it("an 8 MiB output is refused in the worker (output_too_large); the instance is kept", async () => {
    // Filling 8 MiB takes a while on a loaded machine; this test is about the output limit.
    const pool = await hostile({ maxOutputBytes: 1024 * 1024, timeoutMs: 10_000 });
    expect(await count(pool)).toBe(1);
    const load = await whileEchoing(echo, pool.call("call", tool("huge_output")));
    report("huge_output", load);
    const r = load.result;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("output_too_large");
    expect(r.message).toBe("plugin 'hostile': the output is 8388608 bytes, over the plugin's limit of 1048576 bytes");
    expect(await count(pool)).toBe(3);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });
});

describe("hostile plugin: traps, errors, bad output", () => {
  it("unreachable is a trap; the instance is replaced", async () => {
    const pool = await hostile();
    expect(await count(pool)).toBe(1);
    const load = await whileEchoing(echo, pool.call("call", tool("trap")));
    const r = load.result;
    expect(r).toMatchObject({ ok: false, kind: "trap", message: "plugin 'hostile': unreachable" });
    expect(await count(pool)).toBe(1);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });

  it("an abort keeps the guest's error_set message in the trap", async () => {
    const pool = await hostile();
    const r = await pool.call("call", tool("abort"));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("trap");
    expect(r.message).toMatch(/^plugin 'hostile': abort: boom: the guest gave up at .*index\.ts:\d+:\d+ \(unreachable\)$/);
    expect(await count(pool)).toBe(1);
  });

  it("error_set and a normal return is plugin_error; the instance is kept", async () => {
    const pool = await hostile();
    expect(await count(pool)).toBe(1);
    const r = await pool.call("call", tool("fail"));
    expect(r).toMatchObject({ ok: false, kind: "plugin_error", message: "plugin 'hostile': refused politely" });
    expect(await count(pool)).toBe(3);
  });

  it("invalid MessagePack output passes through the sandbox as bytes (the registry rejects it); the instance is kept", async () => {
    const pool = await hostile();
    const r = await pool.call("call", tool("bad_output"));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(Array.from(r.output)).toEqual([0xc1, 0, 0]);
    expect(() => unpackr.unpack(r.output)).toThrow();
    expect(await count(pool)).toBe(2);
  });
});

describe("hostile plugin: host calls", () => {
  it("HTTP to hosts, schemes and URLs outside the grant is refused with the reason", async () => {
    const pool = await hostile();
    const load = await whileEchoing(echo, pool.call("call", tool("http_denied")));
    const lines = content(load.result).split("\n");
    expect(lines).toEqual([
      "error: http_request: host 'example.com' is not granted (capability 'http' allows '127.0.0.1')",
      "error: http_request: host '127.0.0.1.example.net' is not granted (capability 'http' allows '127.0.0.1')",
      "error: http_request: only http and https URLs are allowed, not 'file:'",
      "error: http_request: invalid URL 'not a url' (placeholders are allowed in the path, query and headers, not in the host)",
    ]);
    expect(server.requests.filter((q) => q.url.includes("example"))).toEqual([]);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });

  it("file reads cannot escape the mapped directory: '..', absolute paths, symlinks", async () => {
    const pool = await hostile();
    const paths = ["/data/../../etc/passwd", "/etc/passwd", "/data/link.txt", "/data/dirlink/secret.txt", "/data/./ok.txt", "relative.txt"];
    const lines = content(await pool.call("call", tool("fs_escape", { paths }))).split("\n");
    expect(lines).toEqual([
      "/data/../../etc/passwd -> fs_read: '/data/../../etc/passwd' is outside the granted directories (capability 'fs' grants '/data')",
      "/etc/passwd -> fs_read: '/etc/passwd' is outside the granted directories (capability 'fs' grants '/data')",
      "/data/link.txt -> fs_read: '/data/link.txt' resolves outside its granted directory (symbolic link)",
      "/data/dirlink/secret.txt -> fs_read: '/data/dirlink/secret.txt' resolves outside its granted directory (symbolic link)",
      "/data/./ok.txt -> READ inside",
      "relative.txt -> fs_read: 'relative.txt' is not an absolute guest path",
    ]);
    expect(lines.join("\n")).not.toMatch(/root:|outside-the-mount/);
    expect(lines.join("\n")).not.toContain(dataDir);
  });

  it("kv writes past the quota fail with a message naming the quota", async () => {
    const pool = await hostile({}, { kv: { quotaBytes: 4096 } });
    const text = content(await pool.call("call", tool("kv_quota")));
    expect(text).toBe(
      "stored 3 values; then: kv_set: quota exceeded: storing 'key-3' (1029 bytes) would use 4116 of the 4096 bytes granted (capability 'kv', quotaBytes)",
    );
  });

  it("a secret cannot be read back: no secret_get, not a config key, not in errors; only a granted host sees it", async () => {
    // Two real HTTP round trips and three host calls: over 300 ms on a loaded machine (seen with
    // four busy loops on the two cores). This test is about secrets, not the time limit.
    const pool = await hostile({ timeoutMs: 10_000 });
    const before = server.requests.length;
    const load = await whileEchoing(echo, pool.call("call", tool("secret_read", { url: server.url })));
    const out = content(load.result);
    expect(out).not.toContain(SECRET);
    expect(out.split("\n")).toEqual([
      "config_get: config_get: config key 'API_TOKEN' is not granted (capability 'config' grants 'greeting')",
      "check: 200 authorized",
      "other: error: http_request: secret 'OTHER_TOKEN' is not granted to this plugin (capability 'secrets')",
      "host: error: http_request: invalid URL 'http://{{secret:API_TOKEN}}.127.0.0.1.nip.io/' (placeholders are allowed in the path, query and headers, not in the host)",
      "query: 200 authorized",
    ]);
    // The server did get the real value (that is the point of the placeholder).
    const seen = server.requests.slice(before);
    expect(seen.map((q) => q.headers.authorization ?? q.url)).toEqual([`Bearer ${SECRET}`, `/check?token=${SECRET}`]);
  });

  it("documented limit: a granted host that echoes the request hands the secret back", async () => {
    // The sandbox cannot tell a reflected secret from data; docs/security.md says to grant
    // secrets only with hosts trusted with them. This pins that behaviour down.
    const pool = await fixturePool("hostcalls", { grant: { http: { hosts: ["127.0.0.1"] }, secrets: { API_TOKEN: SECRET } } });
    pools.push(pool);
    const r = await pool.call("call", tool("http", { url: `${server.url}/echo`, headers: { "x-token": "{{secret:API_TOKEN}}" } }));
    expect(content(r)).toContain(SECRET);
  });

  it("HTTP to a server that never answers times out within the call's budget", async () => {
    const pool = await hostile();
    const t0 = performance.now();
    const load = await whileEchoing(echo, pool.call("call", tool("block_http", { url: `${server.url}/hang` })));
    const elapsed = performance.now() - t0;
    report("block_http", load);
    const r = load.result;
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.kind).toBe("timeout");
    expect(r.message).toMatch(/time limit of 300 ms/);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + SLACK_MS);
    expect(await count(pool)).toBe(1);
    expect(load.max).toBeLessThan(ECHO_MAX_MS);
  });
});

describe("hostile plugin: logging", () => {
  it("failures are logged as warnings naming the plugin and the kind", async () => {
    const logger = captureLogger();
    const pool = await fixturePool("hostile", { grant, limits: { timeoutMs: TIMEOUT_MS, maxInFlight: 1 }, logger });
    pools.push(pool);
    await pool.call("call", tool("trap"));
    expect(logger.records.filter((r) => r.level === "warn").map((r) => r.fields)).toEqual([
      { plugin: "hostile", fn: "call", kind: "trap", reason: "unreachable" },
    ]);
  });
});
