/** Where an inbound message came from, normalized across channels. */
export interface InboundAddress {
  /** Channel name, e.g. `ws`, `telegram`. */
  channel: string;
  /** Account on that channel (a bot, a workspace); `default` when there is one. */
  account: string;
  /** The peer the conversation is with (user or chat id). */
  peer: string;
  /** Server/guild id, when the platform has one (Discord). */
  guild?: string;
  /** Team/workspace id, when the platform has one (Slack, Teams). */
  team?: string;
}

/**
 * A binding routes matching messages to an agent. Every selector it sets must equal the
 * message's field; at least one selector must be set.
 */
export interface Binding {
  agent: string;
  channel?: string;
  account?: string;
  peer?: string;
  guild?: string;
  team?: string;
}

/** Selector fields, most specific first: the tier of a binding is its first set field here. */
export const TIERS = ["peer", "guild", "team", "account", "channel"] as const;
export type Tier = (typeof TIERS)[number];

/** How a route was chosen. */
export type MatchedBy = `binding.${Tier}` | "default";

/** The router's answer for one message. */
export interface Route {
  agentId: string;
  /** `agent:<agent>:<channel>:<account>:<peer>`, each part escaped (see `sessionKey`). */
  sessionKey: string;
  matchedBy: MatchedBy;
}

/** A router compiled from config: resolution is index lookups, not a scan of all bindings. */
export interface Router {
  resolve(address: InboundAddress): Route;
}
