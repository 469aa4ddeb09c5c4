// Test harness for a real gateway process serving channels: writes exoclaw.toml, approves the
// channel plugins with the CLI (as an operator would), starts the provider emulator and the
// gateway, and posts webhooks. Also a recording fake platform server (`startFakePlatform`) that
// channel plugins send replies to, via their `base_url` config value.
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "smol-toml";
import type { FileConfig } from "../../host/src/config/schema.js";
import { startEmulator, type Emulator } from "./emulator/server.mjs";
import { CLI, ROOT, startGateway, type GatewayHandle } from "./gateway.js";

/** Options of {@link startChannelGateway}. */
export interface ChannelGatewayOptions {
  /**
   * The `exoclaw.toml` content as an object with the file's snake_case keys, e.g.
   * `{ channels: { webhook: { allow: ["alice"] } }, plugins: { grants: { webhook: { http: { hosts: ["127.0.0.1"] }, config: { base_url: platform.url }, secrets: { WEBHOOK_SECRET: { env: "TEST_WEBHOOK_SECRET" }, WEBHOOK_TOKEN: { env: "TEST_WEBHOOK_TOKEN" } } } } } }`
   * (WEBHOOK_SECRET signs inbound requests; WEBHOOK_TOKEN, optional, is the bearer token of replies).
   * Written with smol-toml's `stringify`.
   */
  config: FileConfig;
  /**
   * Plugin `.wasm` files to approve with `exoclaw plugin approve` before the gateway starts.
   * Default: `build/plugins/<plugin>.wasm` for every plugin named by `config.channels` (the
   * channel's `plugin`, else its name) that has a grant in `config.plugins.grants`.
   */
  approve?: string[];
  /** Extra gateway environment (the secrets' variables, `EXOCLAW_TRANSPORT`, ...). */
  env?: Record<string, string>;
  /** Extra CLI arguments (`--plugins-dir <dir>` for fixture plugins, ...). */
  args?: string[];
  /** Reuse a running emulator (not closed by `stop`); default: a new one. */
  emulator?: Emulator;
}

/** What a webhook POST got back. */
export interface WebhookAnswer {
  status: number;
  headers: Headers;
  /** The body as UTF-8 text. */
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: any;
}

/** A running gateway with channels, its emulator and its private state directory. */
export interface ChannelGateway {
  gateway: GatewayHandle;
  emulator: Emulator;
  port: number;
  /** `http://127.0.0.1:<port>` */
  baseUrl: string;
  stateDir: string;
  configFile: string;
  /**
   * Sends an HTTP request to `/webhook/<channel>[/<account>]` (default method POST). A string or
   * bytes body is sent as is; any other value as JSON. Never throws on an HTTP error status.
   */
  postWebhook(
    channel: string,
    account: string | undefined,
    body: unknown,
    headers?: Record<string, string>,
    options?: { method?: string; query?: string; path?: string },
  ): Promise<WebhookAnswer>;
  /** Waits for the first gateway log line (parsed JSON) matching `pred`; default 15 s. */
  waitForLog(pred: (entry: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  /** Stops the gateway (and the emulator it started), removes the state directory. */
  stop(): Promise<void>;
}

/**
 * Writes the config, approves the channel plugins, starts the emulator (unless given) and the
 * gateway (`ANTHROPIC_BASE_URL` pointing at the emulator, the default provider).
 * @throws Error when approval fails (with the CLI's stderr) or the gateway does not become ready
 */
export async function startChannelGateway(options: ChannelGatewayOptions): Promise<ChannelGateway> {
  const stateDir = mkdtempSync(join(tmpdir(), "exoclaw-channels-"));
  const configFile = join(stateDir, "exoclaw.toml");
  writeFileSync(configFile, stringify(options.config as Record<string, unknown>));
  const grants = (options.config.plugins?.grants ?? {}) as Record<string, unknown>;
  const approve =
    options.approve ??
    [...new Set(Object.entries(options.config.channels ?? {}).map(([name, c]) => c.plugin ?? name))]
      .filter((p) => p in grants)
      .map((p) => join(ROOT, "build", "plugins", `${p}.wasm`));
  for (const file of approve) {
    const r = spawnSync(process.execPath, [CLI, "plugin", "approve", file, "-c", configFile], {
      env: { ...process.env, EXOCLAW_STATE_DIR: stateDir },
      encoding: "utf8",
    });
    if (r.status !== 0) throw new Error(`exoclaw plugin approve ${file} failed (${r.status}): ${r.stderr}`);
  }
  const ownEmulator = options.emulator === undefined;
  const emulator = options.emulator ?? (await startEmulator());
  let gateway: GatewayHandle;
  try {
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, ...options.env, EXOCLAW_STATE_DIR: stateDir }, [
      "--config",
      configFile,
      ...(options.args ?? []),
    ]);
  } catch (err) {
    if (ownEmulator) await emulator.close();
    rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  const baseUrl = `http://127.0.0.1:${gateway.port}`;
  return {
    gateway,
    emulator,
    port: gateway.port,
    baseUrl,
    stateDir,
    configFile,
    async postWebhook(channel, account, body, headers = {}, opts = {}) {
      const path = `/webhook/${encodeURIComponent(channel)}${account === undefined ? "" : `/${encodeURIComponent(account)}`}${opts.path ?? ""}`;
      const url = `${baseUrl}${path}${opts.query ? `?${opts.query}` : ""}`;
      const method = opts.method ?? "POST";
      const payload = method === "GET" || method === "HEAD" ? undefined : typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
      const h: Record<string, string> = { ...headers };
      if (
        payload !== undefined &&
        typeof body !== "string" &&
        !(body instanceof Uint8Array) &&
        !Object.keys(h).some((k) => k.toLowerCase() === "content-type")
      ) {
        h["content-type"] = "application/json";
      }
      const res = await fetch(url, { method, headers: h, body: payload });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    waitForLog(pred, timeoutMs = 15_000) {
      return waitUntil(() => gateway.logs.find(pred), timeoutMs, "gateway log line");
    },
    async stop() {
      // A process already killed by a signal has exitCode null: gateway.stop() would wait for an
      // exit event that already happened.
      if (gateway.proc.exitCode === null && gateway.proc.signalCode === null) await gateway.stop();
      if (ownEmulator) await emulator.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** One request a {@link FakePlatform} received. */
export interface PlatformRequest {
  method: string;
  /** Path with the query string. */
  url: string;
  headers: IncomingHttpHeaders;
  /** Raw body bytes. */
  raw: Buffer;
  /** The body as UTF-8 text. */
  text: string;
  /** The body parsed as JSON, or undefined. */
  json: any;
}

/** What a fake platform answers; default 200 `{"ok":true}`. */
export interface PlatformResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: string | object;
}

/** A local HTTP server standing in for a messaging platform's API. */
export interface FakePlatform {
  /** `http://127.0.0.1:<port>` (no trailing slash). */
  url: string;
  port: number;
  /** Live list of the requests received, in order. */
  requests: PlatformRequest[];
  /** Replaces the responder. */
  respond(fn: (req: PlatformRequest) => PlatformResponse | Promise<PlatformResponse>): void;
  /** Waits for the first (past or future) request matching `pred`; default 15 s. */
  waitFor(pred: (req: PlatformRequest) => boolean, timeoutMs?: number): Promise<PlatformRequest>;
  close(): Promise<void>;
}

/**
 * Starts a recording HTTP server on 127.0.0.1 (free port).
 * @param responder answers each request; default 200 `{"ok":true}`
 */
export async function startFakePlatform(responder?: (req: PlatformRequest) => PlatformResponse | Promise<PlatformResponse>): Promise<FakePlatform> {
  let respondWith: (req: PlatformRequest) => PlatformResponse | Promise<PlatformResponse> = responder ?? (() => ({}));
  const requests: PlatformRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const raw = Buffer.concat(chunks);
      const text = raw.toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      const entry: PlatformRequest = { method: req.method ?? "GET", url: req.url ?? "/", headers: req.headers, raw, text, json };
      requests.push(entry);
      try {
        const answer = await respondWith(entry);
        const body = answer.body === undefined ? '{"ok":true}' : typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
        res.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers });
        res.end(body);
      } catch (err) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(err));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    respond(fn) {
      respondWith = fn;
    },
    waitFor(pred, timeoutMs = 15_000) {
      return waitUntil(() => requests.find(pred), timeoutMs, "fake platform request");
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A webhook request whose body may be left unfinished (see {@link openRequest}). */
export interface OpenRequest {
  /** The answer; status -1 (and the error in `text`) when the connection failed before one arrived. */
  answer: Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>;
  /** Sends the rest of the body (`bytes` more) and ends the request. */
  finish(bytes: Buffer): void;
  /** Destroys the connection (a client that goes away mid-upload). */
  abort(): void;
}

/**
 * Starts an HTTP request with `node:http` and sends its head and `first` body bytes only, so
 * that the upload stays open until `finish` or `abort`. `localAddress` picks the client's source
 * address (any of 127.0.0.0/8 on Linux), i.e. its per-address rate bucket at the gateway.
 */
export function openRequest(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; first?: Buffer; localAddress?: string } = {},
): OpenRequest {
  const req = request({
    host: "127.0.0.1",
    port,
    path,
    method: options.method ?? "POST",
    headers: options.headers,
    localAddress: options.localAddress,
    agent: false,
  });
  const answer = new Promise<{ status: number; headers: IncomingHttpHeaders; text: string }>((resolve) => {
    req.on("response", (res) => {
      const parts: Buffer[] = [];
      res.on("data", (c: Buffer) => parts.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString("utf8") }));
      res.on("error", (err) => resolve({ status: -1, headers: {}, text: err.message }));
    });
    req.on("error", (err) => resolve({ status: -1, headers: {}, text: err.message }));
  });
  req.flushHeaders();
  if (options.first !== undefined && options.first.length > 0) req.write(options.first);
  return {
    answer,
    finish(bytes) {
      req.end(bytes);
    },
    abort() {
      req.destroy();
    },
  };
}

/**
 * The grant of the first-party webhook plugin that the e2e tests use: HTTP to 127.0.0.1 only, replies
 * POSTed to `baseUrl`, inbound requests signed with the secret from `TEST_WEBHOOK_SECRET`, and with
 * `token` the replies' bearer token from `TEST_WEBHOOK_TOKEN`. Shaped as `[plugins.grants.webhook]`
 * in `exoclaw.toml` (snake_case keys).
 */
export function webhookGrant(baseUrl: string, options: { token?: boolean } = {}) {
  return {
    http: { hosts: ["127.0.0.1"] },
    config: { base_url: baseUrl },
    secrets: {
      WEBHOOK_SECRET: { env: "TEST_WEBHOOK_SECRET" },
      ...(options.token ? { WEBHOOK_TOKEN: { env: "TEST_WEBHOOK_TOKEN" } } : {}),
    },
  };
}

/** Hex HMAC-SHA256 of `body` with `secret` (the generic webhook plugin's `x-exoclaw-signature: sha256=<hex>`). */
export function hmacSha256Hex(secret: string, body: string | Uint8Array): string {
  return createHmac("sha256", secret).update(body).digest("hex");
}

/** Polls `probe` every 20 ms until it returns a value; rejects after `timeoutMs` naming `what`. */
export async function waitUntil<T>(probe: () => T | undefined | null | false, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
