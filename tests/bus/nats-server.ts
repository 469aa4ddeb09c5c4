/**
 * Starts a real `nats-server` with JetStream on a free loopback port in a temporary directory.
 * The binary is found (or installed) by scripts/ensure-nats.mjs; tests fail loudly without it.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, connect as netConnect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsBusOptions } from "../../host/src/bus/nats/index.js";
import { PACKAGE_ROOT } from "../../host/src/paths.js";

/** Fast timings for tests: a dead process's partitions move within ~3 s. */
export const TEST_TIMINGS: Partial<NatsBusOptions> = { partitions: 8, ackWaitMs: 1_000, leaseTtlMs: 3_000 };

let binary: string | undefined;

/** The nats-server path (installs it when possible). @throws Error with the command to run */
export function natsServerBinary(): string {
  if (binary) return binary;
  try {
    binary = execFileSync(process.execPath, [join(PACKAGE_ROOT, "scripts", "ensure-nats.mjs"), "--print"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    }).trim();
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`nats-server is required for the bus tests: ${stderr.trim()}`);
  }
  return binary;
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect(port, "127.0.0.1");
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/** A nats-server process that can be stopped and restarted on the same port and store. */
export class NatsServer {
  private proc: ChildProcess | undefined;
  private log = "";

  private constructor(
    readonly port: number,
    readonly storeDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.proc !== undefined;
  }

  static async start(): Promise<NatsServer> {
    return NatsServer.startOn(await freePort());
  }

  /** Starts a server on a given port (with a new store directory). */
  static async startOn(port: number): Promise<NatsServer> {
    const dir = await mkdtemp(join(tmpdir(), "exoclaw-nats-"));
    const server = new NatsServer(port, dir);
    await server.restart();
    return server;
  }

  /** Starts the server (again) on the same port and store directory; resolves when it accepts connections. */
  async restart(): Promise<void> {
    if (this.proc) return;
    const proc = spawn(natsServerBinary(), ["-js", "-a", "127.0.0.1", "-p", String(this.port), "-sd", this.storeDir, "--no_advertise"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    this.proc = proc;
    proc.stderr!.on("data", (b: Buffer) => {
      this.log = (this.log + b.toString()).slice(-20_000);
    });
    const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (/Server is ready/.test(this.log) && (await canConnect(this.port))) return;
      const early = await Promise.race([exited, new Promise<"wait">((r) => setTimeout(() => r("wait"), 50))]);
      if (early !== "wait") {
        this.proc = undefined;
        throw new Error(`nats-server exited (${early}) at start:\n${this.log}`);
      }
      if (Date.now() > deadline) throw new Error(`nats-server did not start:\n${this.log}`);
    }
  }

  /** Stops the server (SIGTERM: a clean shutdown, like `systemctl stop`; SIGKILL to crash it). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = undefined;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill(signal);
    const t = setTimeout(() => proc.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  }

  /** Stops it and removes its store. */
  async destroy(): Promise<void> {
    await this.stop();
    await rm(this.storeDir, { recursive: true, force: true });
  }

  /** The server's recent log (for failure messages). */
  recentLog(): string {
    return this.log;
  }
}
