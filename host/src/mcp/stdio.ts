/**
 * A stdio client transport for MCP servers started as child processes, under exoclaw's rules
 * (the SDK's `StdioClientTransport` merges the gateway's HOME, USER, SHELL, ... into the child's
 * environment and puts the child in the gateway's process group, so neither a clean environment
 * nor stopping the whole process tree is possible with it):
 * - the child's environment is exactly `env` (the caller passes PATH and the granted variables);
 * - the child leads its own process group (`detached`), so `close()` signals the whole tree
 *   (`npx` -> `node` -> ...): SIGTERM, then SIGKILL after `killAfterMs`;
 * - stderr is piped to `onStderr` (bounded lines), never inherited.
 * Framing (one JSON-RPC message per line) is the SDK's `ReadBuffer` / `serializeMessage`.
 * Source: MCP spec 2025-06-18, "Transports" > "stdio".
 */
import { spawn, type ChildProcess } from "node:child_process";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import type { ReadBuffer } from "@modelcontextprotocol/sdk/shared/stdio.js";

/**
 * The SDK's framing module, imported on the first start: a static import would load the SDK's
 * message schemas (and a second copy of zod) into every gateway start, MCP servers or not (~100 ms).
 */
let framing: Promise<typeof import("@modelcontextprotocol/sdk/shared/stdio.js")> | undefined;

/** Options of {@link ChildStdioTransport}. */
export interface ChildStdioOptions {
  command: string;
  args: string[];
  /** The child's whole environment. */
  env: Record<string, string>;
  cwd?: string;
  /** One line of the child's stderr (at most 2,000 characters). */
  onStderr?: (line: string) => void;
  /** Time between SIGTERM and SIGKILL on close, ms; default 2000. */
  killAfterMs?: number;
}

/** The SDK `Transport` over a child process's stdin/stdout; see the module comment. */
export class ChildStdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: (message: JSONRPCMessage) => void;
  private child: ChildProcess | undefined;
  private buffer: ReadBuffer | undefined;
  private serialize: ((message: JSONRPCMessage) => string) | undefined;
  private exited: Promise<void> | undefined;

  constructor(private readonly options: ChildStdioOptions) {}

  /** Process id of the child (its process group id too), once started. */
  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /**
   * Spawns the child.
   * @throws Error when it cannot be spawned (command not found, not executable)
   */
  async start(): Promise<void> {
    if (this.child) throw new Error("ChildStdioTransport already started");
    const { ReadBuffer, serializeMessage } = await (framing ??= import("@modelcontextprotocol/sdk/shared/stdio.js"));
    const buffer = new ReadBuffer();
    this.buffer = buffer;
    this.serialize = serializeMessage;
    return new Promise((resolve, reject) => {
      const child = spawn(this.options.command, this.options.args, {
        env: this.options.env,
        cwd: this.options.cwd,
        stdio: ["pipe", "pipe", "pipe"],
        detached: true,
        shell: false,
      });
      this.child = child;
      this.exited = new Promise((r) => child.once("close", () => r()));
      child.once("error", (err) => {
        reject(err);
        this.onerror?.(err);
      });
      child.once("spawn", () => resolve());
      child.once("close", () => {
        // What the child left in its process group (a server under `npx`, say) goes with it.
        try {
          process.kill(-child.pid!, "SIGKILL");
        } catch {
          // the group is empty
        }
        this.child = undefined;
        this.onclose?.();
      });
      child.stdin?.on("error", (err) => this.onerror?.(err));
      child.stdout?.on("data", (chunk: Buffer) => {
        buffer.append(chunk);
        for (;;) {
          let message: JSONRPCMessage | null;
          try {
            message = buffer.readMessage();
          } catch (err) {
            this.onerror?.(err as Error);
            continue;
          }
          if (message === null) break;
          this.onmessage?.(message);
        }
      });
      let partial = "";
      child.stderr?.setEncoding("utf8");
      child.stderr?.on("data", (text: string) => {
        const lines = (partial + text).split("\n");
        partial = lines.pop()!.slice(-2000);
        for (const l of lines) if (l.trim() !== "") this.options.onStderr?.(l.slice(0, 2000));
      });
    });
  }

  /** Writes one message. @throws Error when the child is gone */
  send(message: JSONRPCMessage): Promise<void> {
    return new Promise((resolve, reject) => {
      const stdin = this.child?.stdin;
      if (!stdin || stdin.destroyed || this.serialize === undefined) return reject(new Error("the MCP server process is not running"));
      if (stdin.write(this.serialize(message))) resolve();
      else stdin.once("drain", resolve);
    });
  }

  /** Stops the child's whole process group: stdin closed, SIGTERM, then SIGKILL. Resolves when it exited. */
  async close(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    const exited = this.exited!;
    const signalGroup = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        try {
          child.kill(sig);
        } catch {
          // already gone
        }
      }
    };
    child.stdin?.end();
    signalGroup("SIGTERM");
    const wait = (ms: number) => new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref());
    const done = await Promise.race([exited.then(() => true), wait(this.options.killAfterMs ?? 2000)]);
    if (!done) {
      signalGroup("SIGKILL");
      await Promise.race([exited, wait(2000)]);
    }
    this.buffer?.clear();
  }
}
