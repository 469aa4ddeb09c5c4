/**
 * The tools one turn offers its model: the agent's allowed plugin tools plus the host's built-in
 * tools (`message_send`), each call carrying the conversation it belongs to.
 */
import type { Logger } from "pino";
import type { PluginRegistry, ToolCallContext, ToolSpec } from "../plugins/index.js";
import { parseSessionKey } from "../store/index.js";
import type { Agent } from "./agents.js";
import { BUILTIN_TOOL_NAMES, MESSAGE_SEND, MESSAGE_SEND_SPEC, messageSend } from "./builtin-tools.js";
import type { TurnTools } from "./loop.js";
import type { OutboundSender } from "./types.js";

/** Options of {@link TurnToolbox}. */
export interface TurnToolboxOptions {
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  /** Delivers messages on platforms; without it no agent gets `message_send`. */
  outbound?: OutboundSender;
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
   * @param senderId who wrote the turn's message in a group (host-written, from the channel
   *   plugin's parse); absent = the peer
   * @throws Error for a malformed session key
   */
  forTurn(agent: Agent, sessionKey: string, thread: string | undefined, senderId?: string): TurnTools {
    const { config } = agent;
    const { plugins, logger } = this.options;
    const sender = this.options.outbound;
    const specs: ToolSpec[] = [];
    for (const t of plugins.tools()) {
      if (BUILTIN_TOOL_NAMES.has(t.name)) {
        // Built-in names are reserved: a plugin cannot stand in for a host-enforced tool.
        if (!this.shadowed.has(t.name)) {
          this.shadowed.add(t.name);
          logger.warn({ tool: t.name }, "a plugin tool has the name of a built-in tool; the plugin's tool is hidden");
        }
        continue;
      }
      if (agent.allows(t.name)) specs.push(t);
    }
    const sendOffered = sender !== undefined && agent.allows(MESSAGE_SEND);
    if (sendOffered) specs.push(MESSAGE_SEND_SPEC);
    const session = parseSessionKey(sessionKey);
    // The conversation the call belongs to, written by the host from the session key (the model
    // cannot forge it, and the gateway built that key from the connection's identity, never from
    // client text): tools such as `memory` keep data apart per agent, channel, account and peer.
    // `sender` is the group member who wrote the message (from the channel plugin, via the
    // journaled message), else the peer.
    const toolContext: ToolCallContext = {
      agentId: config.id,
      channel: session.channel,
      account: session.account,
      peer: session.peer,
      sender: senderId ?? session.peer,
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
        return plugins.callTool(name, input, s, toolContext);
      },
    };
  }
}
