import { mkdir, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { buildPlugin } from "../../../scripts/build-plugins.mjs";
import { DEFAULT_LIMITS, type EffectiveGrant, type PluginLimits } from "../../../host/src/plugins/capabilities.js";
import type { PluginLogger } from "../../../host/src/plugins/types.js";
import { createHostServices, createSandboxPool, type HostServices, type SandboxPool } from "../../../host/src/plugins/sandbox/index.js";

const ROOT = path.resolve(import.meta.dirname, "../../..");
const FIXTURES_OUT = path.join(ROOT, "build", "fixtures");
const built = new Map<string, Promise<Uint8Array>>();

/**
 * The wasm of fixture `plugins/fixtures/<name>`, compiled once per test file (and cached in
 * build/fixtures/ across files while the sources are older than the output).
 */
export function fixture(name: string): Promise<Uint8Array> {
  let p = built.get(name);
  if (p === undefined) {
    p = (async () => {
      const out = path.join(FIXTURES_OUT, `${name}.wasm`);
      const src = path.join(ROOT, "plugins", "fixtures", name);
      const sdk = path.join(ROOT, "plugin-sdk", "assembly");
      try {
        const outTime = (await stat(out)).mtimeMs;
        const inputs = [path.join(src, "assembly", "index.ts"), path.join(src, "plugin.toml")];
        const sdkFiles = ["index.ts", "host.ts", "extism.ts", "msgpack.ts", "number.ts", "abort.ts", "json.ts", "context.ts", "channel.ts"].map((f) =>
          path.join(sdk, f),
        );
        const times = await Promise.all([...inputs, ...sdkFiles].map(async (f) => (await stat(f)).mtimeMs));
        if (times.every((t) => t < outTime)) return new Uint8Array(await readFile(out));
      } catch {
        // not built yet
      }
      const { wasm } = await buildPlugin(path.join("plugins", "fixtures", name));
      await mkdir(FIXTURES_OUT, { recursive: true });
      const tmp = `${out}.${process.pid}.tmp`;
      await writeFile(tmp, wasm);
      await (await import("node:fs/promises")).rename(tmp, out);
      return wasm;
    })();
    built.set(name, p);
  }
  return p;
}

/** A fresh directory under the OS temp dir. */
export function tempDir(prefix = "exoclaw-sandbox-"): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export interface LogRecord {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A PluginLogger that records pino-style calls. */
export function captureLogger(): PluginLogger & { records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at =
    (level: string) =>
    (objOrMsg: unknown, msg?: string): void => {
      if (typeof objOrMsg === "string") records.push({ level, fields: {}, msg: objOrMsg });
      else records.push({ level, fields: (objOrMsg ?? {}) as Record<string, unknown>, msg: msg ?? "" });
    };
  return { records, info: at("info"), warn: at("warn"), debug: at("debug"), isLevelEnabled: () => true };
}

export interface PoolSetup {
  grant?: EffectiveGrant;
  limits?: Partial<PluginLimits>;
  stateDir?: string;
  services?: HostServices;
  logger?: PluginLogger;
  idleTimeoutMs?: number;
}

/** A sandbox pool of fixture `name` with test-friendly defaults. */
export async function fixturePool(name: string, setup: PoolSetup = {}): Promise<SandboxPool> {
  return createSandboxPool({
    name,
    wasm: await fixture(name),
    grant: setup.grant ?? {},
    limits: { ...DEFAULT_LIMITS, ...setup.limits },
    stateDir: setup.stateDir ?? (await tempDir("exoclaw-state-")),
    services: setup.services ?? createHostServices(),
    logger: setup.logger ?? captureLogger(),
    ...(setup.idleTimeoutMs !== undefined ? { idleTimeoutMs: setup.idleTimeoutMs } : {}),
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array): string => dec.decode(b);

/** p50 / max of a list of ms samples. */
export function latency(samples: number[]): { p50: number; max: number; n: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: s[Math.floor(s.length / 2)] ?? 0, max: s[s.length - 1] ?? 0, n: s.length };
}

/** A request seen by {@link startTestServer}. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** The secret value granted as API_TOKEN in the tests. */
export const SECRET = "s3cr3t-Value-42";

/**
 * A local HTTP server for the http host function:
 * `/hello` text; `/echo` JSON of the request (method, url, headers, body) — it reflects secrets;
 * `/check` 200 "authorized" iff the Authorization header or `token` query is the secret, never
 * echoing it; `/hang` never answers; `/redirect?to=<url>` 302; `/big?n=<bytes>` n bytes.
 */
export async function startTestServer(): Promise<{ url: string; requests: SeenRequest[]; close(): Promise<void> }> {
  const http = await import("node:http");
  const requests: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString();
      const u = new URL(req.url ?? "/", "http://x");
      requests.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
      switch (u.pathname) {
        case "/hello":
          res.writeHead(200, { "content-type": "text/plain" }).end("hello");
          return;
        case "/echo":
          res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body }));
          return;
        case "/check": {
          const ok = req.headers.authorization === `Bearer ${SECRET}` || u.searchParams.get("token") === SECRET;
          res.writeHead(ok ? 200 : 401, { "content-type": "text/plain" }).end(ok ? "authorized" : "denied");
          return;
        }
        case "/hang":
          return; // never answers
        case "/redirect":
          res.writeHead(302, { location: u.searchParams.get("to") ?? "/hello" }).end();
          return;
        case "/big":
          res.writeHead(200, { "content-type": "application/octet-stream" }).end(Buffer.alloc(Number(u.searchParams.get("n") ?? "0"), 0x62));
          return;
        default:
          res.writeHead(404).end("not found");
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Keeps calling `echo` on another pool, one call at a time, until `work` settles; returns the
 * work's result and the echo latencies (ms). Every echo call must succeed.
 */
export async function whileEchoing<T>(echo: SandboxPool, work: Promise<T>): Promise<{ result: T; p50: number; max: number; n: number }> {
  let done = false;
  const samples: number[] = [];
  const payload = bytes("x".repeat(128));
  const load = (async () => {
    while (!done) {
      const t = performance.now();
      const r = await echo.call("echo", payload);
      if (!r.ok) throw new Error(`echo failed during the load: ${r.kind} ${r.message}`);
      samples.push(performance.now() - t);
    }
  })();
  try {
    const result = await work;
    return { result, ...latency(samples) };
  } finally {
    done = true;
    await load;
  }
}
