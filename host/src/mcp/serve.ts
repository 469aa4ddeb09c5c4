/**
 * exoclaw as an MCP server (docs/mcp.md, "Serving MCP"): one agent's allowed WASM tools, and
 * optionally a `chat` tool that runs a turn with that agent, over any SDK server transport
 * (stdio for `exoclaw mcp serve`, Streamable HTTP at the gateway's `/mcp`). Only tools of the
 * plugin registry are served: MCP-proxied tools (`<server>__<tool>`) never are, so exoclaw is not
 * an open relay. Calls go through `PluginRegistry.callTool`: the same sandbox, limits, logging
 * and metrics as an agent's calls. Source: MCP spec 2025-06-18, "Tools".
 */
import type { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { PluginRegistry, ToolCallContext, ToolSpec } from "../plugins/index.js";
import { VERSION } from "../version.js";

/** Name of the optional tool that runs a turn. */
export const CHAT_TOOL = "chat";

/** The `chat` tool as MCP clients see it. */
export const CHAT_TOOL_SPEC: ToolSpec = {
  name: CHAT_TOOL,
  description: "Send a message to the exoclaw agent and get its reply (runs one agent turn, with the agent's own tools, model and limits).",
  inputSchema: {
    type: "object",
    properties: { message: { type: "string", description: "what to say to the agent" } },
    required: ["message"],
    additionalProperties: false,
  },
};

/** What an exoclaw MCP server serves. */
export interface McpServeOptions {
  /** The agent whose tools are served. */
  agentId: string;
  /** The agent's tool allowlist (`Agent.allows`). */
  allows: (tool: string) => boolean;
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  /** Runs a turn with the agent and returns its reply text; absent = no `chat` tool. */
  chat?: (message: string, signal: AbortSignal) => Promise<string>;
  /** Who calls (for the tools' host-written context); default channel `mcp`, account `default`, peer `mcp`. */
  context?: ToolCallContext;
}

/** The agent's allowed WASM tools (the `chat` tool name excluded when chat is offered), in registry order. */
export function servedTools(o: Pick<McpServeOptions, "allows" | "plugins" | "chat">): ToolSpec[] {
  return o.plugins.tools().filter((t) => o.allows(t.name) && !(o.chat !== undefined && t.name === CHAT_TOOL));
}

/**
 * A low-level SDK `Server` answering `tools/list` and `tools/call` as the module comment says.
 * A bad input, an unknown tool or a plugin fault is a tool error (`isError: true`), never a
 * protocol error, so the client's model sees it. Connect it to a transport with `server.connect`.
 */
export async function createExoclawMcpServer(o: McpServeOptions): Promise<Server> {
  const [{ Server }, { ListToolsRequestSchema, CallToolRequestSchema }] = await Promise.all([
    import("@modelcontextprotocol/sdk/server/index.js"),
    import("@modelcontextprotocol/sdk/types.js"),
  ]);
  const server = new Server({ name: `exoclaw-${o.agentId}`, version: VERSION }, { capabilities: { tools: {} } });
  const context: ToolCallContext = o.context ?? { agentId: o.agentId, channel: "mcp", account: "default", peer: "mcp", sender: "mcp" };
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [
      ...servedTools(o).map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema as { type: "object" } })),
      ...(o.chat !== undefined ? [{ ...CHAT_TOOL_SPEC, inputSchema: CHAT_TOOL_SPEC.inputSchema as { type: "object" } }] : []),
    ],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const { name } = req.params;
    const args = req.params.arguments ?? {};
    const text = (t: string, isError: boolean) => ({ content: [{ type: "text" as const, text: t }], isError });
    if (o.chat !== undefined && name === CHAT_TOOL) {
      const message = (args as { message?: unknown }).message;
      if (typeof message !== "string" || message === "") return text("chat: message must be a non-empty string", true);
      try {
        return text(await o.chat(message, extra.signal), false);
      } catch (err) {
        return text(`chat failed: ${(err as Error).message}`, true);
      }
    }
    if (!servedTools(o).some((t) => t.name === name))
      return text(`tool "${name}" is not served to this client (not an allowed tool of agent ${o.agentId})`, true);
    try {
      const r = await o.plugins.callTool(name, args, extra.signal, context);
      return text(r.content, r.isError);
    } catch (err) {
      return text(`tool ${name} was cancelled: ${(err as Error).message}`, true);
    }
  });
  return server;
}
