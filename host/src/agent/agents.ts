/** An agent as the runtime holds it: its config with its tool and outbound allowlists compiled once, at start-up. */
import type { AgentConfig } from "../config/index.js";
import { compileOutboundAllowlist, type OutboundPolicy } from "./outbound-policy.js";
import { compileToolAllowlist } from "./tool-policy.js";

/** A configured agent: `allows(tool)` answers its tool allowlist, `outbound` its outbound allowlist. */
export interface Agent {
  config: AgentConfig;
  allows: (tool: string) => boolean;
  outbound: OutboundPolicy;
}

/**
 * The agents by id, their allowlists compiled.
 * @throws Error when an agent's outbound allowlist has a malformed entry
 */
export function compileAgents(configs: readonly AgentConfig[]): Map<string, Agent> {
  return new Map(configs.map((a) => [a.id, { config: a, allows: compileToolAllowlist(a.tools), outbound: compileOutboundAllowlist(a.outbound ?? []) }]));
}
