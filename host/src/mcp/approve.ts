/**
 * `exoclaw mcp approve <name>`: starts the server as the gateway would (same command, clean
 * environment with its granted variables, or its granted URL), reads its `tools/list`, and
 * records that exact list as approved (approvals.ts). A running gateway picks it up within a
 * second. The operator sees what changed since the previous approval.
 */
import pino from "pino";
import type { Config } from "../config/index.js";
import { McpApprovalStore, approvalOf, toolHash } from "./approvals.js";
import { McpServerConnection } from "./connection.js";

/** What `exoclaw mcp approve` recorded. */
export interface McpApproveResult {
  name: string;
  listSha256: string;
  /** Every approved tool (server-side names). */
  tools: string[];
  /** Compared with the previous approval (absent: none): tools new, changed, gone. */
  diff?: { added: string[]; changed: string[]; removed: string[] };
  /** The approvals file written. */
  store: string;
}

/**
 * Approves the current tool list of `[mcp.servers.<name>]`.
 * @throws Error when no such server is configured, or it cannot be started or listed (the message says why)
 */
export async function approveMcpServer(name: string, config: Config): Promise<McpApproveResult> {
  const server = config.mcp.servers.find((s) => s.name === name);
  if (server === undefined) {
    const known = config.mcp.servers.map((s) => s.name);
    throw new Error(
      `no MCP server "${name}" in ${config.source ?? "the configuration"} (configured: ${known.length ? known.join(", ") : "none"}); add [mcp.servers.${name}]`,
    );
  }
  const file = McpApprovalStore.pathFor(config.stateDir);
  const store = await McpApprovalStore.open(file);
  const conn = new McpServerConnection(server, {
    secrets: config.secretEnv,
    approval: () => undefined,
    onToolsChanged: () => {},
    logger: pino({ level: "silent" }),
  });
  try {
    await conn.start();
    const tools = conn.liveTools() ?? [];
    const before = store.get(name);
    const approval = approvalOf(tools);
    await store.set(name, approval);
    let diff: McpApproveResult["diff"];
    if (before !== undefined) {
      const old = new Map(before.tools.map((t) => [t.definition.name, t.sha256]));
      const now = new Map(tools.map((t) => [t.name, toolHash(t)]));
      diff = {
        added: [...now.keys()].filter((n) => !old.has(n)),
        changed: [...now.entries()].filter(([n, h]) => old.has(n) && old.get(n) !== h).map(([n]) => n),
        removed: [...old.keys()].filter((n) => !now.has(n)),
      };
    }
    return { name, listSha256: approval.listSha256, tools: tools.map((t) => t.name), ...(diff ? { diff } : {}), store: file };
  } finally {
    await conn.close();
  }
}
