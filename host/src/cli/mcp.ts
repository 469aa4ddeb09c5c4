/**
 * `exoclaw mcp list|approve|serve` (docs/mcp.md):
 * - `list`: the MCP servers of a running gateway (`mcp.list`), with state, approval, tools, counters;
 * - `approve <name>`: records the current `tools/list` of `[mcp.servers.<name>]` as approved;
 * - `serve --agent <id> [--chat]`: exoclaw as an MCP server on stdin/stdout, serving the agent's
 *   allowed WASM tools (and, with `--chat`, a `chat` tool sent to the running gateway's `chat.send`).
 *   Logs go to stderr: stdout carries the protocol.
 */
import type { Command } from "commander";
import { loadConfig, type Config } from "../config/index.js";
import { compileToolAllowlist } from "../agent/index.js";
import { createLogger } from "../log/index.js";
import type { McpServerInfo } from "../mcp/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { loadPlugins, ValidationCache } from "../plugins/index.js";
import type { ChatSendResult } from "../protocol/index.js";
import { connectGateway } from "./gateway-client.js";
import type { CliIo } from "./io.js";
import pino from "pino";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};
import { formatTable } from "./plugin.js";

function cliConfig(opts: { config?: string; pluginsDir?: string }, env: NodeJS.ProcessEnv): Config {
  return loadConfig({ config: opts.config, pluginsDir: opts.pluginsDir }, env, [BUILTIN_PLUGINS_DIR]);
}

/** `exoclaw mcp list` rows as text lines. */
export function formatMcpList(rows: McpServerInfo[]): string[] {
  if (rows.length === 0) return ["no MCP servers configured ([mcp.servers.<name>] in exoclaw.toml)"];
  const lines = formatTable(
    ["SERVER", "TRANSPORT", "STATE", "APPROVAL", "TOOLS", "PENDING", "CALLS", "ERRORS", "RESTARTS", "P50 MS", "P99 MS"],
    rows.map((r) => [
      r.name,
      r.transport,
      r.state,
      r.approval,
      String(r.tools.length),
      String(r.pending.length),
      String(r.calls),
      String(r.errors),
      String(r.restarts),
      String(r.p50Ms),
      String(r.p99Ms),
    ]),
  );
  for (const r of rows) {
    if (r.pending.length > 0) lines.push(`${r.name}: pending (not offered until approved): ${r.pending.join(", ")}  ->  exoclaw mcp approve ${r.name}`);
    if (r.approval === "unapproved") lines.push(`${r.name}: never approved; its tools are invisible to agents  ->  exoclaw mcp approve ${r.name}`);
    if (r.lastError !== undefined) lines.push(`${r.name}: ${r.lastError}`);
  }
  return lines;
}

/**
 * Serves the agent's tools over stdio until stdin closes.
 * @throws Error for an unknown agent
 */
export async function serveStdio(config: Config, agentId: string | undefined, chat: boolean): Promise<void> {
  const logger = createLogger({ destination: pino.destination(2) });
  const id = agentId ?? config.defaultAgent;
  const agent = config.agents.find((a) => a.id === id);
  if (agent === undefined) throw new Error(`no agent "${id}" (configured: ${config.agents.map((a) => a.id).join(", ")})`);
  const plugins = await loadPlugins({
    dirs: config.plugins.dirs,
    logger,
    maxInstancesPerPlugin: config.plugins.maxInstances,
    defaultLimits: config.plugins.defaultLimits,
    limits: config.plugins.limits,
    grants: config.plugins.grants,
    env: config.secretEnv,
    stateDir: config.stateDir,
    validationCache: await ValidationCache.open(ValidationCache.pathFor(config.stateDir)),
  });
  const [{ createExoclawMcpServer }, { StdioServerTransport }] = await Promise.all([
    import("../mcp/index.js"),
    import("@modelcontextprotocol/sdk/server/stdio.js"),
  ]);
  const server = await createExoclawMcpServer({
    agentId: agent.id,
    allows: compileToolAllowlist(agent.tools),
    plugins,
    ...(chat
      ? {
          chat: async (message: string) => {
            const client = await connectGateway(config);
            try {
              return (await client.call<ChatSendResult>("chat.send", { content: message, channel: "ws", peer: `mcp-${agent.id}` })).text;
            } finally {
              await client.close();
            }
          },
        }
      : {}),
  });
  const transport = new StdioServerTransport();
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve();
    process.stdin.once("end", () => resolve());
  });
  await server.connect(transport);
  logger.info({ agent: agent.id, tools: plugins.tools().length }, "exoclaw MCP server on stdio");
  await closed;
  await server.close().catch(() => {});
  await plugins.close();
}

/** Adds `exoclaw mcp list|approve|serve`. Failures print `exoclaw: <reason>` and set exit code 1. */
export function registerMcpCommands(program: Command, io: CliIo = processIo): void {
  const fail = (err: unknown): void => {
    io.err(`exoclaw: ${(err as Error).message}`);
    process.exitCode = 1;
  };
  const mcp = program.command("mcp").description("MCP servers: list (from the gateway), approve their tool lists, serve exoclaw's tools over MCP");
  mcp
    .command("list")
    .description("The MCP servers of the running gateway: state, approval, tools, pending tools, calls")
    .option("-c, --config <file>", "exoclaw.toml to read")
    .option("--json", "print JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      try {
        const config = cliConfig(opts, io.env);
        const client = await connectGateway(config);
        try {
          const rows = await client.call<McpServerInfo[]>("mcp.list");
          if (opts.json) io.out(JSON.stringify(rows, null, 2));
          else for (const l of formatMcpList(rows)) io.out(l);
        } finally {
          await client.close();
        }
      } catch (err) {
        fail(err);
      }
    });
  mcp
    .command("approve <name>")
    .description("Start [mcp.servers.<name>], read its tools/list and approve exactly that list (bound to its hash)")
    .option("-c, --config <file>", "exoclaw.toml to read")
    .action(async (name: string, opts: { config?: string }) => {
      try {
        const config = cliConfig(opts, io.env);
        const { approveMcpServer } = await import("../mcp/index.js");
        const r = await approveMcpServer(name, config);
        io.out(`approved MCP server ${r.name}: ${r.tools.length} tool(s), list sha256 ${r.listSha256}`);
        io.out(`tools: ${r.tools.join(", ") || "-"}`);
        if (r.diff)
          io.out(
            `since the previous approval: added ${r.diff.added.join(", ") || "-"}; changed ${r.diff.changed.join(", ") || "-"}; removed ${r.diff.removed.join(", ") || "-"}`,
          );
        io.out(`recorded in ${r.store} (a running gateway applies it within a second)`);
      } catch (err) {
        fail(err);
      }
    });
  mcp
    .command("serve")
    .description("Serve an agent's allowed WASM tools as an MCP server on stdin/stdout (for Claude Desktop, Cursor, any MCP host)")
    .option("-a, --agent <id>", "agent whose tools are served (default: the default agent)")
    .option("--chat", "also serve a chat tool that sends a message to the running gateway (chat.send) and returns the reply")
    .option("-c, --config <file>", "exoclaw.toml to read")
    .option("--plugins-dir <dir>", "directory of .wasm plugins (env EXOCLAW_PLUGINS_DIR)")
    .action(async (opts: { agent?: string; chat?: boolean; config?: string; pluginsDir?: string }) => {
      try {
        await serveStdio(cliConfig(opts, io.env), opts.agent, opts.chat === true);
      } catch (err) {
        fail(err);
      }
    });
}
