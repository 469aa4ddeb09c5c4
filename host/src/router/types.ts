/**
 * Where an inbound message came from, normalized across channels. `channel`, `account` and
 * `peer` make the session key and should be non-empty; `guild` and `team` only select bindings.
 */
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
 * A binding (`[[bindings]]` in `exoclaw.toml`) routes matching messages to an agent. Every
 * selector it sets must equal the message's field exactly (case-sensitive, no globs); at least
 * one selector must be set, each a non-empty string.
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

/**
 * A router compiled from config by `compileRouter`: resolution is a bounded number of index
 * lookups (at most 31, one per selector mask in use), not a scan of all bindings.
 */
export interface Router {
  /** The agent, session key and `matchedBy` for one inbound message. Pure; never throws. */
  resolve(address: InboundAddress): Route;
}
