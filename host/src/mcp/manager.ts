/**
 * The MCP client side as the rest of the host sees it: every `[mcp.servers.<name>]`, the tools
 * they may serve (approved ones only) named `<server>__<tool>`, a call entry point for the
 * agent's tool-call path, the `mcp.list` entries, and shutdown. Approvals are re-read when
 * `exoclaw mcp approve` rewrites the approvals file (polled, once a second).
 */
import { unwatchFile, watchFile } from "node:fs";
import type { Logger } from "pino";
import type { McpServerConfig } from "../config/index.js";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import { McpApprovalStore } from "./approvals.js";
import { McpServerConnection } from "./connection.js";
import { exposedToolName, serverOf } from "./naming.js";
import type { McpServerInfo } from "./types.js";

/** Options of {@link startMcpClients}. */
export interface McpClientsOptions {
  servers: readonly McpServerConfig[];
  /** `<state dir>`: approvals are read from `<state dir>/trust/mcp-approvals.json`. */
  stateDir: string;
  /** Secret values by name (config `secretEnv`): what stdio servers' `env` grants name. */
  secrets: Record<string, string | undefined>;
  logger: Logger;
  /** PATH given to stdio children; default the gateway's. */
  path?: string;
  /** Per-server call metrics (telemetry); absent = counted in `mcp.list` only. */
  onCall?: (server: string, durationMs: number, isError: boolean) => void;
  onRestart?: (server: string) => void;
  /** Poll the approvals file for changes; default true (tests turn it off and call `reloadApprovals`). */
  watchApprovals?: boolean;
}

/** The running MCP client side; see the module comment. */
export interface McpClients {
  /**
   * The tools agents may be offered: each server's approved tools as `<server>__<tool>`, with
   * their input schemas. A name that collides after sanitizing (naming.ts) is left out, warned once.
   */
  tools(): ToolSpec[];
  /** Whether `name` is an MCP tool name (`<server>__...` of a configured server). */
  owns(name: string): boolean;
  /**
   * Runs one MCP tool call (the dispatch entry point of the agent's tool-call path). Never throws
   * for server or tool faults (an `isError` result); throws the signal's reason when it aborts.
   */
  callMcpTool(name: string, input: unknown, signal: AbortSignal): Promise<ToolResult>;
  /** `mcp.list`: one entry per configured server, in config order. */
  list(): McpServerInfo[];
  /** Re-reads the approvals file now. @throws Error when it is invalid (the old approvals stay) */
  reloadApprovals(): Promise<void>;
  /** The connection of a server (tests, `mcp approve`). */
  server(name: string): McpServerConnection | undefined;
  /** Stops every server (process trees included) and the approvals watch. */
  close(): Promise<void>;
}

/**
 * Builds the MCP client side and starts the `start = "startup"` servers (in the background: a
 * server that fails to start is retried with backoff and does not hold up the gateway).
 * @throws Error naming the approvals file when it is invalid
 */
export async function startMcpClients(options: McpClientsOptions): Promise<McpClients> {
  const store = await McpApprovalStore.open(McpApprovalStore.pathFor(options.stateDir));
  const { logger } = options;
  const warned = new Set<string>();
  let cache: { specs: ToolSpec[]; route: Map<string, { server: McpServerConnection; tool: string }> } | undefined;
  const invalidate = () => {
    cache = undefined;
  };
  const connections = new Map<string, McpServerConnection>();
  for (const s of options.servers) {
    connections.set(
      s.name,
      new McpServerConnection(s, {
        secrets: options.secrets,
        ...(options.path !== undefined ? { path: options.path } : {}),
        approval: () => store.get(s.name),
        onToolsChanged: invalidate,
        ...(options.onCall ? { onCall: options.onCall } : {}),
        ...(options.onRestart ? { onRestart: options.onRestart } : {}),
        logger,
      }),
    );
  }
  const build = () => {
    const specs: ToolSpec[] = [];
    const route = new Map<string, { server: McpServerConnection; tool: string }>();
    for (const conn of connections.values()) {
      for (const t of conn.servedTools()) {
        const name = exposedToolName(conn.config.name, t.name);
        if (route.has(name)) {
          if (!warned.has(name)) {
            warned.add(name);
            logger.warn({ mcpServer: conn.config.name, tool: t.name, exposed: name }, "MCP tool name collides with another after sanitizing; not offered");
          }
          continue;
        }
        route.set(name, { server: conn, tool: t.name });
        const desc = t.description ?? t.title ?? "";
        specs.push({ name, description: `${desc}${desc ? " " : ""}(MCP server ${conn.config.name})`, inputSchema: t.inputSchema });
      }
    }
    return { specs, route };
  };
  const current = () => (cache ??= build());
  const reloadApprovals = async () => {
    await store.reload();
    invalidate();
  };
  const file = McpApprovalStore.pathFor(options.stateDir);
  const watching = options.watchApprovals !== false && options.servers.length > 0;
  if (watching) {
    watchFile(file, { interval: 1000, persistent: false }, () => {
      reloadApprovals().catch((err) => logger.warn({ file, error: (err as Error).message }, "MCP approvals not reloaded"));
    });
  }
  for (const conn of connections.values()) {
    if (conn.config.start === "startup") conn.start().catch(() => {});
  }
  return {
    tools: () => current().specs,
    owns: (name) => {
      const s = serverOf(name);
      return s !== undefined && connections.has(s);
    },
    async callMcpTool(name, input, signal) {
      const hit = current().route.get(name);
      if (hit === undefined) {
        const s = serverOf(name);
        const why = s !== undefined && connections.has(s) ? `is not an approved tool of MCP server ${s} (see: exoclaw mcp list)` : "is not an MCP tool";
        return { content: `tool "${name}" ${why}`, isError: true };
      }
      return hit.server.call(hit.tool, input, signal);
    },
    list: () => {
      const { route } = current();
      return [...connections.values()].map((conn) => ({
        ...conn.info(),
        tools: [...route.entries()].filter(([, r]) => r.server === conn).map(([n]) => n),
      }));
    },
    reloadApprovals,
    server: (name) => connections.get(name),
    async close() {
      if (watching) unwatchFile(file);
      await Promise.all([...connections.values()].map((c) => c.close()));
    },
  };
}
