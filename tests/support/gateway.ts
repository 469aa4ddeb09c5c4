import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { Packr, Unpackr } from "msgpackr";
import WebSocket from "ws";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const CLI = join(ROOT, "bin", "exoclaw.js");
/** How long {@link startGateway} waits for the "gateway ready" line, ms. */
const READY_TIMEOUT_MS = 45_000;

/** A gateway started as a real subprocess of the CLI. */
export interface GatewayHandle {
  port: number;
  url: string;
  proc: ChildProcess;
  /** Every JSON log line the process printed so far. */
  logs: Record<string, unknown>[];
  /** Every stdout line as printed (JSON or not), for checks on the raw text. */
  stdout: string[];
  stderr: string[];
  ready: Record<string, unknown>;
  /** SIGTERM, wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Spawns `node bin/exoclaw.js gateway --port 0` with a private state directory and waits for the
 * "gateway ready" log line.
 * @param env extra environment (provider selection, base URLs, transport)
 * @param cli the `bin/exoclaw.js` to run; default the package's ({@link CLI}), another for a scratch copy of bin/ and dist/
 */
export async function startGateway(env: Record<string, string> = {}, args: string[] = [], cli: string = CLI): Promise<GatewayHandle> {
  const state = mkdtempSync(join(tmpdir(), "exoclaw-test-"));
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_|GEMINI_|GOOGLE_)/.test(k)) clean[k] = v;
  }
  // The journal's test-only guard on shared event objects (vitest.config.ts) holds in the gateway too.
  if (process.env.EXOCLAW_FREEZE_SHARED_EVENTS !== undefined) clean.EXOCLAW_FREEZE_SHARED_EVENTS = process.env.EXOCLAW_FREEZE_SHARED_EVENTS;
  const proc = spawn(process.execPath, [cli, "gateway", "--port", "0", ...args], {
    env: { ...clean, EXOCLAW_STATE_DIR: state, EXOCLAW_LOG_LEVEL: "debug", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: Record<string, unknown>[] = [];
  const stdout: string[] = [];
  const stderr: string[] = [];
  createInterface({ input: proc.stderr! }).on("line", (l) => stderr.push(l));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    // Generous: on a loaded 2-core CI machine (every test file running at once) start-up (module
    // load, plugin compile, store open, recovery) has been seen taking over 15 s.
    // The last stdout lines (debug level) say which start-up step it was in.
    const timer = setTimeout(
      () =>
        reject(
          new Error(`gateway not ready in ${READY_TIMEOUT_MS / 1000} s; stderr: ${stderr.join("\n")}; last stdout lines:\n${stdout.slice(-15).join("\n")}`),
        ),
      READY_TIMEOUT_MS,
    );
    createInterface({ input: proc.stdout! }).on("line", (line) => {
      stdout.push(line);
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.msg === "gateway ready") {
        clearTimeout(timer);
        resolve(entry);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before ready; stderr: ${stderr.join("\n")}`));
    });
  });
  const port = ready.port as number;
  return {
    port,
    url: `ws://127.0.0.1:${port}/ws`,
    proc,
    logs,
    stdout,
    stderr,
    ready,
    stop(signal: NodeJS.Signals = "SIGTERM") {
      return new Promise((resolve) => {
        // A process killed by a signal keeps exitCode null: check signalCode too, or this waits forever.
        if (proc.exitCode !== null || proc.signalCode !== null) {
          rmSync(state, { recursive: true, force: true });
          return resolve(proc.exitCode);
        }
        proc.once("exit", (code) => {
          rmSync(state, { recursive: true, force: true });
          resolve(code);
        });
        proc.kill(signal);
      });
    },
  };
}

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** Any message the server sent, decoded, with the frame kind it came in. */
export interface Received {
  binary: boolean;
  msg: any;
}

/** A real WebSocket client speaking protocol v1 in JSON or MessagePack. */
export class RpcClient {
  readonly received: Received[] = [];
  private waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];
  private nextId = 1;

  private constructor(readonly ws: WebSocket) {
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      const r: Received = { binary: isBinary, msg: isBinary ? unpackr.unpack(data) : JSON.parse(data.toString("utf8")) };
      this.received.push(r);
      this.waiters = this.waiters.filter((w) => (w.pred(r) ? (w.resolve(r), false) : true));
    });
  }

  /** Connects and waits for the socket to open; `options` go to the `ws` client (e.g. `ca` for wss://). */
  static async connect(url: string, headers: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<RpcClient> {
    const ws = new WebSocket(url, { ...options, headers });
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return new RpcClient(ws);
  }

  /** Sends a raw frame: a string as text, bytes as binary. */
  sendRaw(frame: string | Uint8Array): void {
    this.ws.send(frame, { binary: typeof frame !== "string" });
  }

  /** Waits for the first (already received or future) message matching `pred`. */
  waitFor(pred: (r: Received) => boolean, timeoutMs = 15_000): Promise<Received> {
    const have = this.received.find(pred);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("timed out waiting for a message")), timeoutMs);
      this.waiters.push({ pred, resolve: (r) => (clearTimeout(timer), resolve(r)) });
    });
  }

  /** Sends a request and resolves with its response (result or error), plus its chat.event notifications. */
  async call(method: string, params?: unknown, encoding: "json" | "msgpack" = "json"): Promise<{ response: Received; events: Received[] }> {
    const id = this.nextId++;
    const req = params === undefined ? { jsonrpc: "2.0", id, method } : { jsonrpc: "2.0", id, method, params };
    this.sendRaw(encoding === "json" ? JSON.stringify(req) : packr.pack(req));
    const response = await this.waitFor((r) => r.msg.id === id && ("result" in r.msg || "error" in r.msg));
    const events = this.received.filter((r) => r.msg.method === "chat.event" && r.msg.params.requestId === id);
    return { response, events };
  }

  close(): void {
    this.ws.close();
  }
}

/** Packs a value as standard MessagePack, for raw frames in tests. */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}
