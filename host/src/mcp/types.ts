/** Shapes of the MCP client concern (docs/mcp.md). */

/** A tool as an MCP server's `tools/list` describes it (the parts exoclaw uses). Source: MCP spec 2025-06-18, "Tools". */
export interface McpToolDefinition {
  name: string;
  title?: string;
  description?: string;
  /** JSON Schema of the arguments (`type: "object"`). */
  inputSchema: Record<string, unknown>;
  /** JSON Schema of `structuredContent`, when the server declares one. */
  outputSchema?: Record<string, unknown>;
}

/**
 * State of one configured server:
 * - `stopped`: not running (a lazy server before its first call; after shutdown);
 * - `starting`: spawning / connecting / reading its tool list;
 * - `running`: connected;
 * - `backoff`: died or failed to start; restarts after `nextRestartMs`.
 */
export type McpServerState = "stopped" | "starting" | "running" | "backoff";

/** Approval of a server's tool list: `approved` (the live list is the approved one), `pending` (some tools wait), `unapproved` (never approved), `unknown` (not listed yet). */
export type McpApprovalState = "approved" | "pending" | "unapproved" | "unknown";

/** One entry of `mcp.list` / `exoclaw mcp list` (names and counters only: never an env value or a header). */
export interface McpServerInfo {
  name: string;
  transport: "stdio" | "http";
  /** The command (stdio) or URL (http, without credentials). */
  target: string;
  start: "lazy" | "startup";
  state: McpServerState;
  approval: McpApprovalState;
  /** sha256 of the live `tools/list` answer (null before the server answered one). */
  listSha256: string | null;
  /** Tools offered to agents, as `<server>__<tool>`. */
  tools: string[];
  /** Tools the server lists that are new or changed since the approval (server-side names). */
  pending: string[];
  /** Names of the environment variables a stdio server is given (never their values). */
  env: string[];
  /** Process id of a running stdio server. */
  pid: number | null;
  /** Tool calls since start-up, and those that ended in a tool error (server's `isError` included). */
  calls: number;
  errors: number;
  /** Times the server was restarted after it died or failed to start. */
  restarts: number;
  /** Median and 99th percentile call duration over the last 512 calls, ms (0 before any call). */
  p50Ms: number;
  p99Ms: number;
  /** The last failure (start-up, connection), if any. */
  lastError?: string;
}
