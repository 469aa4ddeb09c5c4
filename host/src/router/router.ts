import { sessionKey } from "./session-key.js";
import { TIERS, type Binding, type InboundAddress, type MatchedBy, type Route, type Router, type Tier } from "./types.js";

/** A config error found while compiling bindings; `index` is the binding's position (0-based). */
export class RouterConfigError extends Error {
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
    this.name = "RouterConfigError";
  }
}

type Selector = Exclude<keyof Binding, "agent">;
const SELECTORS: readonly Selector[] = TIERS;

/** The binding's tier: its most specific selector that is set. */
function tierOf(binding: Binding): Tier | undefined {
  return TIERS.find((t) => binding[t] !== undefined);
}

/** Index key of a binding: its set selectors and values, in a fixed order. */
function keyOf(fields: Partial<Record<Selector, string>>, mask: readonly Selector[]): string {
  return mask.map((s) => `${s}=${fields[s] ?? ""}`).join("\u0000");
}

interface TierIndex {
  tier: Tier;
  /** Distinct selector masks used by bindings of this tier, in first-seen order. */
  masks: { mask: Selector[]; byKey: Map<string, { order: number; agent: string }> }[];
}

/**
 * Compiles bindings into a router. Within each tier, bindings are grouped by which selectors
 * they set (their mask) and indexed by those values, so `resolve` costs one map lookup per
 * (tier, mask) pair in use — independent of the number of bindings.
 *
 * @param bindings in config order (earlier wins within a tier)
 * @param agents the known agent ids
 * @param defaultAgent used when nothing matches; must be in `agents`
 * @throws RouterConfigError for a binding with an unknown agent or no selector, or an unknown default agent
 */
export function compileRouter(bindings: readonly Binding[], agents: readonly string[], defaultAgent: string): Router {
  const known = new Set(agents);
  if (!known.has(defaultAgent)) {
    throw new RouterConfigError(`default agent "${defaultAgent}" is not defined (agents: ${agents.join(", ") || "none"})`, -1);
  }
  const tiers: TierIndex[] = TIERS.map((tier) => ({ tier, masks: [] }));
  bindings.forEach((binding, order) => {
    if (!known.has(binding.agent)) {
      throw new RouterConfigError(`bindings[${order}]: unknown agent "${binding.agent}"`, order);
    }
    const tier = tierOf(binding);
    if (!tier) {
      throw new RouterConfigError(`bindings[${order}]: a binding needs at least one of ${SELECTORS.join(", ")}`, order);
    }
    const mask = SELECTORS.filter((s) => binding[s] !== undefined);
    const index = tiers.find((t) => t.tier === tier)!;
    const maskId = mask.join(",");
    let group = index.masks.find((m) => m.mask.join(",") === maskId);
    if (!group) {
      group = { mask, byKey: new Map() };
      index.masks.push(group);
    }
    const key = keyOf(binding, mask);
    if (!group.byKey.has(key)) group.byKey.set(key, { order, agent: binding.agent });
  });

  return {
    resolve(address: InboundAddress): Route {
      for (const { tier, masks } of tiers) {
        let best: { order: number; agent: string } | undefined;
        for (const { mask, byKey } of masks) {
          const hit = byKey.get(keyOf(address, mask));
          if (hit && (!best || hit.order < best.order)) best = hit;
        }
        if (best) return route(best.agent, address, `binding.${tier}`);
      }
      return route(defaultAgent, address, "default");
    },
  };
}

function route(agentId: string, a: InboundAddress, matchedBy: MatchedBy): Route {
  return { agentId, sessionKey: sessionKey(agentId, a.channel, a.account, a.peer), matchedBy };
}
