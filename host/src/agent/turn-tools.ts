/**
 * The tools one turn offers its model: the agent's allowed plugin tools, the approved tools of
 * MCP servers it allows, and the host's built-in tools (`message_send`), each call carrying the
 * conversation it belongs to.
 */
import type { Logger } from "pino";
import type { PluginRegistry, ToolCallContext, ToolResult, ToolSpec } from "../plugins/index.js";
import { parseSessionKey, type SessionKeyParts } from "../store/index.js";
import type { Agent } from "./agents.js";
import { BUILTIN_TOOL_NAMES, MESSAGE_SEND, MESSAGE_SEND_SPEC, messageSend } from "./builtin-tools.js";
import type { TurnTools } from "./loop.js";
import { MEMORY_TOOL, MEMORY_TOOL_SPEC, SESSION_SEARCH, SESSION_SEARCH_SPEC, type MemoryScope, type MemoryService } from "./memory/index.js";
import type { OutboundSender } from "./types.js";

/** The conversation a host tool is called from: written by the host, never by the model. */
export interface HostToolContext {
  agentId: string;
  sessionKey: string;
  /** The session key's parts. */
  session: SessionKeyParts;
  /** The platform thread of the message being answered, when it came in one. */
  thread?: string;
}

/**
 * A tool the host provides beside `message_send` (e.g. the scheduler's `remind`), given to the
 * runtime by a layer above the agent (`AgentRuntimeOptions.hostTools`). Its name is reserved
 * like a built-in's: a plugin tool of that name is hidden.
 */
export interface HostTool {
  spec: ToolSpec;
  /** Whether a turn of `agentId` offers it now (beyond the agent's tool allowlist, which applies too). */
  available(agentId: string): boolean;
  /** Runs one call. Should not throw: a bad input or a refusal is an error result the model sees. */
  call(input: unknown, context: HostToolContext, signal?: AbortSignal): Promise<ToolResult>;
}

/**
 * MCP tools (host/src/mcp `McpClients`): the approved tools of MCP servers as `<server>__<tool>`,
 * and their dispatch entry point. Offered and called through the same {@link TurnTools} as plugin
 * tools, so the agent's allowlist and whatever wraps `TurnTools.call` apply to both.
 */
export interface McpToolSource {
  tools(): ToolSpec[];
  callMcpTool(name: string, input: unknown, signal: AbortSignal): Promise<ToolResult>;
}

/** Options of {@link TurnToolbox}. */
export interface TurnToolboxOptions {
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  /** Host tools offered to agents that allow them (see {@link HostTool}). */
  hostTools?: readonly HostTool[];
  /** MCP servers' approved tools; absent = none. A plugin tool or built-in of the same name wins. */
  mcp?: McpToolSource;
  /** Delivers messages on platforms; without it no agent gets `message_send`. */
  outbound?: OutboundSender;
  /** The host's memory: agents with `[agents.memory]` get the built-in `memory` and `session_search` tools. */
  memory?: MemoryService | undefined;
  /** Warns once per plugin tool hidden by a built-in's name; logs `message_send`'s refusals. */
  logger: Logger;
}

/** Builds each turn's {@link TurnTools} from the plugins loaded at that moment (hot loading changes them). */
export class TurnToolbox {
  /** Plugin tools hidden because a built-in tool has their name (warned once each). */
  private readonly shadowed = new Set<string>();

  constructor(private readonly options: TurnToolboxOptions) {}

  /**
   * The tools a turn offers: the agent's allowed plugin tools and built-ins.
   * @param thread the platform thread a `message_send` reply goes to (the turn's message's)
   * @param speaker who spoke in a group chat (the channel's sender); absent = the peer
   * @throws Error for a malformed session key
   */
  forTurn(agent: Agent, sessionKey: string, thread: string | undefined, speaker?: string): TurnTools {
    const { config } = agent;
    const { plugins, logger } = this.options;
    const sender = this.options.outbound;
    const specs: ToolSpec[] = [];
    const session = parseSessionKey(sessionKey);
    // Memory built-ins: scoped by the host's facts (session key, the channel's sender), never the model's input.
    const memory = config.memory !== undefined ? this.options.memory : undefined;
    const scope: MemoryScope = { agent: config.id, channel: session.channel, account: session.account, peer: session.peer, sender: speaker ?? session.peer };
    const memoryOffered = memory !== undefined && agent.allows(MEMORY_TOOL);
    // In a group under scope "sender", a member searches only their own lines (docs/memory.md).
    const searchOffered = memory !== undefined && agent.allows(SESSION_SEARCH);
    const searchOwner = config.memory?.share === "sender" ? scope.sender : undefined;
    const hostTools = this.options.hostTools ?? [];
    for (const t of plugins.tools()) {
      // The host's memory tools replace a plugin's of the same name for an agent with `[agents.memory]`.
      if (memory !== undefined && (t.name === MEMORY_TOOL || t.name === SESSION_SEARCH)) continue;
      if (BUILTIN_TOOL_NAMES.has(t.name) || hostTools.some((h) => h.spec.name === t.name)) {
        // Built-in names are reserved: a plugin cannot stand in for a host-enforced tool.
        if (!this.shadowed.has(t.name)) {
          this.shadowed.add(t.name);
          logger.warn({ tool: t.name }, "a plugin tool has the name of a built-in tool; the plugin's tool is hidden");
        }
        continue;
      }
      if (agent.allows(t.name)) specs.push(t);
    }
    const mcpOffered = new Set<string>();
    if (this.options.mcp !== undefined) {
      const taken = new Set(plugins.tools().map((t) => t.name));
      for (const t of this.options.mcp.tools()) {
        if (taken.has(t.name) || BUILTIN_TOOL_NAMES.has(t.name) || !agent.allows(t.name)) continue;
        specs.push(t);
        mcpOffered.add(t.name);
      }
    }
    const sendOffered = sender !== undefined && agent.allows(MESSAGE_SEND);
    if (sendOffered) specs.push(MESSAGE_SEND_SPEC);
    if (memoryOffered) specs.push(MEMORY_TOOL_SPEC);
    if (searchOffered) specs.push(SESSION_SEARCH_SPEC);
    const offeredHostTools = hostTools.filter((h) => agent.allows(h.spec.name) && h.available(config.id));
    for (const h of offeredHostTools) specs.push(h.spec);
    // The conversation the call belongs to, written by the host from the session key (the model
    // cannot forge it, and the gateway built that key from the connection's identity, never from
    // client text): tools such as `memory` keep data apart per agent, channel, account and peer.
    // `sender` is who spoke in a group chat (the channel's), else the peer.
    const toolContext: ToolCallContext = {
      agentId: config.id,
      channel: session.channel,
      account: session.account,
      peer: session.peer,
      sender: scope.sender,
      sessionKey,
    };
    return {
      specs,
      call: (name, input, s) => {
        if (sendOffered && name === MESSAGE_SEND) {
          return messageSend(
            input,
            { agentId: config.id, sessionKey, session, ...(thread !== undefined ? { thread } : {}), policy: agent.outbound, sender: sender!, logger },
            s,
          );
        }
        if (memoryOffered && name === MEMORY_TOOL) return memory.memoryTool(input, scope, config.memory!.share);
        if (searchOffered && name === SESSION_SEARCH) return memory.sessionSearch(input, sessionKey, searchOwner);
        const host = offeredHostTools.find((h) => h.spec.name === name);
        if (host !== undefined) return host.call(input, { agentId: config.id, sessionKey, session, ...(thread !== undefined ? { thread } : {}) }, s);
        if (mcpOffered.has(name)) return this.options.mcp!.callMcpTool(name, input, s);
        return plugins.callTool(name, input, s, toolContext);
      },
    };
  }
}
