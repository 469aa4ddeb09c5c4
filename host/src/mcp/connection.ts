/**
 * One configured MCP server, as the client side runs it: starting (lazily or at start-up),
 * reading its tool list (again on `notifications/tools/list_changed`), calling tools under the
 * server's limits, restarting it with backoff when it dies, and stopping it (with its process
 * tree) on shutdown. Which tools it may serve is decided against its approval (approvals.ts).
 * The SDK is imported when the first server starts, not at gateway start-up.
 */
import type { Logger } from "pino";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import type { McpServerConfig } from "../config/index.js";
import type { ToolResult } from "../plugins/index.js";
import { VERSION } from "../version.js";
import { judgeToolList, listHash, type McpApproval } from "./approvals.js";
import { mapCallResult } from "./results.js";
import { ChildStdioTransport } from "./stdio.js";
import type { McpServerInfo, McpServerState, McpToolDefinition } from "./types.js";

/** First restart delay after a server died, ms; doubled for each failure in a row, up to {@link MAX_BACKOFF_MS}. */
export const BASE_BACKOFF_MS = 500;
/** Longest restart delay, ms. */
export const MAX_BACKOFF_MS = 30_000;
/** A server that ran this long before dying restarts after {@link BASE_BACKOFF_MS} again, ms. */
const STABLE_MS = 30_000;
/** Time `initialize` + `tools/list` may take at start, ms. */
const START_TIMEOUT_MS = 30_000;
/** Durations kept for p50/p99. */
const WINDOW = 512;

/** What a connection needs from its manager. */
export interface McpConnectionDeps {
  /** The secrets stdio servers' `env` grants name, by secret name (env first, then credential files). */
  secrets: Record<string, string | undefined>;
  /** PATH given to stdio children (to find `node`, `npx`, ...); default the gateway's. */
  path?: string;
  /** The server's current approval (re-read when the approvals file changes). */
  approval: () => McpApproval | undefined;
  /** Called when the set of tools the server serves may have changed. */
  onToolsChanged: () => void;
  /** Called after each finished call: server, duration (ms), whether it was a tool error. */
  onCall?: (server: string, durationMs: number, isError: boolean) => void;
  /** Called when the server is restarted after dying or failing to start. */
  onRestart?: (server: string) => void;
  logger: Logger;
}

/** The environment of a stdio server: PATH and the granted variables, nothing else. Pure. */
export function childEnvironment(
  grants: Record<string, string>,
  secrets: Record<string, string | undefined>,
  path: string | undefined,
): { env: Record<string, string>; missing: string[] } {
  const env: Record<string, string> = {};
  if (path !== undefined) env.PATH = path;
  const missing: string[] = [];
  for (const [variable, secret] of Object.entries(grants)) {
    const v = secrets[secret];
    if (v === undefined || v === "") missing.push(`${variable} (secret ${secret})`);
    else env[variable] = v;
  }
  return { env, missing };
}

/** A counting semaphore with a FIFO of waiters. */
class Slots {
  private busy = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly size: number) {}
  async take(signal: AbortSignal): Promise<() => void> {
    if (this.busy >= this.size) {
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener("abort", stop);
          resolve();
        };
        const stop = () => {
          const i = this.waiters.indexOf(go);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        };
        this.waiters.push(go);
        signal.addEventListener("abort", stop, { once: true });
      });
    } else this.busy++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      if (next) next();
      else this.busy--;
    };
  }
}

const percentile = (sorted: number[], p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);

/** One server's connection and lifecycle; see the module comment. */
export class McpServerConnection {
  private state: McpServerState = "stopped";
  private client: Client | undefined;
  private transport: ChildStdioTransport | undefined;
  private starting: Promise<void> | undefined;
  private live: McpToolDefinition[] | undefined;
  private failures = 0;
  private startedAt = 0;
  private restartTimer: NodeJS.Timeout | undefined;
  private nextRestartAt = 0;
  private closed = false;
  private lastError: string | undefined;
  private readonly slots: Slots;
  private readonly stats = { calls: 0, errors: 0, restarts: 0, durations: [] as number[] };

  constructor(
    readonly config: McpServerConfig,
    private readonly deps: McpConnectionDeps,
  ) {
    this.slots = new Slots(config.limits.maxInFlight);
  }

  /** The tools the server may serve now: its live approved tools, or (not started yet) the approved definitions. */
  servedTools(): McpToolDefinition[] {
    const approval = this.deps.approval();
    if (this.live === undefined) return approval?.tools.map((t) => t.definition) ?? [];
    return judgeToolList(this.live, approval).approved;
  }

  /** Starts the server unless it is running or starting; resolves when it is running. @throws Error why it could not start */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`MCP server ${this.config.name} is stopped (the gateway is shutting down)`));
    if (this.state === "running") return Promise.resolve();
    this.starting ??= this.connect().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async connect(): Promise<void> {
    const c = this.config;
    this.state = "starting";
    clearTimeout(this.restartTimer);
    const [{ Client }, { ToolListChangedNotificationSchema }] = await Promise.all([
      import("@modelcontextprotocol/sdk/client/index.js"),
      import("@modelcontextprotocol/sdk/types.js"),
    ]);
    const newClient = () => new Client({ name: "exoclaw", version: VERSION }, { capabilities: {} });
    let client = newClient();
    try {
      if (c.transport === "stdio") {
        const { env, missing } = childEnvironment(c.env, this.deps.secrets, this.deps.path ?? process.env.PATH);
        if (missing.length > 0) this.deps.logger.warn({ mcpServer: c.name, missing }, "MCP server: granted secrets are not set; the variables are left out");
        const transport = new ChildStdioTransport({
          command: c.command,
          args: c.args,
          env,
          ...(c.cwd !== undefined ? { cwd: c.cwd } : {}),
          onStderr: (line) => this.deps.logger.debug({ mcpServer: c.name, stderr: line }, "MCP server stderr"),
        });
        this.transport = transport;
        await client.connect(transport, { timeout: START_TIMEOUT_MS });
      } else {
        const [{ StreamableHTTPClientTransport }, { SSEClientTransport }] = await Promise.all([
          import("@modelcontextprotocol/sdk/client/streamableHttp.js"),
          import("@modelcontextprotocol/sdk/client/sse.js"),
        ]);
        try {
          await client.connect(new StreamableHTTPClientTransport(new URL(c.url)), { timeout: START_TIMEOUT_MS });
        } catch (err) {
          // Servers of the 2024-11-05 protocol speak HTTP+SSE only (MCP spec 2025-06-18,
          // "Transports" > "Backwards Compatibility"): try it before giving up.
          this.deps.logger.debug({ mcpServer: c.name, error: (err as Error).message }, "MCP server: Streamable HTTP failed; trying HTTP+SSE");
          await client.close().catch(() => {});
          client = newClient();
          await client.connect(new SSEClientTransport(new URL(c.url)), { timeout: START_TIMEOUT_MS });
        }
      }
      this.client = client;
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        void this.refreshTools().catch((err) =>
          this.deps.logger.warn({ mcpServer: c.name, error: (err as Error).message }, "MCP server: cannot re-read the tool list"),
        );
      });
      await this.refreshTools();
      // Set after the list is read: a close during start-up is a failed start, handled below.
      client.onclose = () => this.onClosed(client);
      this.state = "running";
      this.startedAt = Date.now();
      this.lastError = undefined;
      this.deps.logger.info({ mcpServer: c.name, pid: this.transport?.pid ?? null, tools: this.live?.length ?? 0 }, "MCP server started");
    } catch (err) {
      const reason = (err as Error).message;
      this.lastError = `start failed: ${reason}`;
      this.client = undefined;
      const t = this.transport;
      this.transport = undefined;
      await client.close().catch(() => {});
      await t?.close().catch(() => {});
      this.deps.logger.warn({ mcpServer: c.name, error: reason }, "MCP server failed to start");
      this.scheduleRestart();
      throw new Error(`MCP server ${c.name} failed to start: ${reason}`);
    }
  }

  /** Reads `tools/list` (every page) and tells the manager. */
  private async refreshTools(): Promise<void> {
    const client = this.client;
    if (client === undefined) return;
    const tools: McpToolDefinition[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listTools(cursor !== undefined ? { cursor } : undefined, { timeout: START_TIMEOUT_MS });
      for (const t of page.tools) tools.push(t as McpToolDefinition);
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    const before = this.live === undefined ? undefined : listHash(this.live);
    this.live = tools;
    const verdict = judgeToolList(tools, this.deps.approval());
    if (before !== undefined && before !== listHash(tools)) {
      this.deps.logger.warn(
        { mcpServer: this.config.name, pending: verdict.pending.map((t) => t.name) },
        "MCP server changed its tool list; new or changed tools wait for: exoclaw mcp approve",
      );
    }
    this.deps.onToolsChanged();
  }

  private onClosed(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.transport = undefined;
    if (this.closed) {
      this.state = "stopped";
      return;
    }
    this.lastError = "the server exited or closed the connection";
    this.deps.logger.warn({ mcpServer: this.config.name }, "MCP server exited; restarting it with backoff");
    if (Date.now() - this.startedAt >= STABLE_MS) this.failures = 0;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.closed) return;
    const delay = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** this.failures);
    this.failures++;
    this.state = "backoff";
    this.nextRestartAt = Date.now() + delay;
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => {
      this.stats.restarts++;
      this.deps.onRestart?.(this.config.name);
      this.start().catch(() => {});
    }, delay);
    this.restartTimer.unref();
  }

  /**
   * Calls one tool. Never throws for server faults (not startable, exited mid-call, timed out,
   * protocol error, oversized result, tool not approved): they are `isError` results naming the
   * server. Throws only the signal's reason when `signal` aborts.
   * @param tool the server's own tool name
   */
  async call(tool: string, args: unknown, signal: AbortSignal): Promise<ToolResult> {
    const name = this.config.name;
    const t0 = performance.now();
    const done = (r: ToolResult): ToolResult => {
      const ms = performance.now() - t0;
      this.stats.calls++;
      if (r.isError) this.stats.errors++;
      this.stats.durations.push(ms);
      if (this.stats.durations.length > WINDOW) this.stats.durations.shift();
      this.deps.onCall?.(name, ms, r.isError);
      return r;
    };
    if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) {
      return done({ content: `MCP tool ${name}/${tool}: input must be a JSON object`, isError: true });
    }
    if (this.state === "backoff") {
      const wait = Math.max(0, this.nextRestartAt - Date.now());
      return done({
        content: `MCP server ${name} is restarting (next attempt in ${wait} ms; ${this.lastError ?? "it stopped"}); try again later`,
        isError: true,
      });
    }
    try {
      await this.start();
    } catch (err) {
      return done({ content: (err as Error).message, isError: true });
    }
    const def = this.live?.find((t) => t.name === tool);
    if (def === undefined || !judgeToolList([def], this.deps.approval()).approved.length) {
      return done({ content: `MCP tool ${name}/${tool} is not approved in its current form (run: exoclaw mcp approve ${name})`, isError: true });
    }
    let release: () => void;
    try {
      release = await this.slots.take(signal);
    } catch (err) {
      throw signal.reason ?? err;
    }
    // A signal of this call only: the SDK leaves a listener on the signal it is given, and the
    // caller's (a turn's) signal outlives many calls.
    const own = new AbortController();
    const forward = () => own.abort(signal.reason);
    signal.addEventListener("abort", forward, { once: true });
    try {
      const client = this.client;
      if (client === undefined) return done({ content: `MCP server ${name} is not running (${this.lastError ?? "stopped"})`, isError: true });
      const result = await client.callTool({ name: tool, arguments: (args ?? {}) as Record<string, unknown> }, undefined, {
        signal: own.signal,
        timeout: this.config.limits.timeoutMs,
        maxTotalTimeout: this.config.limits.timeoutMs,
      });
      return done(mapCallResult(result as { content?: unknown[]; structuredContent?: unknown; isError?: boolean }, this.config.limits.maxOutputBytes));
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const msg = (err as Error).message ?? String(err);
      const exited = this.client === undefined || /connection closed/i.test(msg);
      const why = exited
        ? `the MCP server ${name} exited during the call (${msg}); it is being restarted`
        : /timed out|RequestTimeout|-32001/i.test(msg)
          ? `MCP tool ${name}/${tool} timed out after ${this.config.limits.timeoutMs} ms (timeout_ms)`
          : `MCP tool ${name}/${tool} failed: ${msg}`;
      return done({ content: why, isError: true });
    } finally {
      signal.removeEventListener("abort", forward);
      release();
    }
  }

  /** This server's `mcp.list` entry. */
  info(): McpServerInfo {
    const c = this.config;
    const approval = this.deps.approval();
    const verdict = this.live === undefined ? undefined : judgeToolList(this.live, approval);
    const sorted = [...this.stats.durations].sort((a, b) => a - b);
    return {
      name: c.name,
      transport: c.transport,
      target: c.transport === "stdio" ? [c.command, ...c.args].join(" ") : c.url.replace(/\/\/[^/@]*@/, "//"),
      start: c.start,
      state: this.state,
      approval:
        verdict === undefined
          ? approval === undefined
            ? "unapproved"
            : "unknown"
          : approval === undefined
            ? "unapproved"
            : verdict.pending.length > 0
              ? "pending"
              : "approved",
      listSha256: this.live === undefined ? null : listHash(this.live),
      tools: [],
      pending: verdict?.pending.map((t) => t.name) ?? [],
      env: c.transport === "stdio" ? Object.keys(c.env).sort() : [],
      pid: this.transport?.pid ?? null,
      calls: this.stats.calls,
      errors: this.stats.errors,
      restarts: this.stats.restarts,
      p50Ms: Math.round(percentile(sorted, 0.5) * 100) / 100,
      p99Ms: Math.round(percentile(sorted, 0.99) * 100) / 100,
      ...(this.lastError !== undefined ? { lastError: this.lastError } : {}),
    };
  }

  /** The live tool list (undefined before the server answered one). */
  liveTools(): McpToolDefinition[] | undefined {
    return this.live;
  }

  /** Stops the server (its process tree) and any restart; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.restartTimer);
    await this.starting?.catch(() => {});
    const client = this.client;
    const transport = this.transport;
    this.client = undefined;
    this.transport = undefined;
    this.state = "stopped";
    await transport?.close().catch(() => {});
    await client?.close().catch(() => {});
  }
}
