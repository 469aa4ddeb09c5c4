import { sessionKey } from "./session-key.js";
import { TIERS, type Binding, type InboundAddress, type MatchedBy, type Route, type Router, type Tier } from "./types.js";

/**
 * A config error found while compiling bindings. `index` is the offending binding's 0-based
 * position in `bindings` (the order of `[[bindings]]` tables in `exoclaw.toml`), or -1 when the
 * error is not about one binding (an undefined default agent).
 */
export class RouterConfigError extends Error {
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
    this.name = "RouterConfigError";
  }
}

type Selector = Tier;
const SELECTORS: readonly Selector[] = TIERS;
const BINDING_FIELDS = new Set<string>(["agent", ...SELECTORS]);

/**
 * A binding as stored in the index: `order * agentCount + agentIndex`. A small integer (no
 * object to chase), and the smaller of two codes is the binding earlier in config, so a tie
 * within a tier is `Math.min`.
 */
type Code = number;

/**
 * A trie level: value of one selector -> the next level, or the code at the last selector.
 * Nested maps rather than one joined string key, so no separator inside an id can make two
 * different bindings collide, and a lookup allocates nothing.
 */
type Level = Map<string, Level | Code>;

/** Bindings that, besides the tier's selector, set exactly `fields` (in TIERS order). */
interface MaskGroup {
  fields: readonly Selector[];
  root: Level;
}

/**
 * Everything bound to one value of a tier's selector (e.g. one peer id): `self` for the binding
 * that sets nothing else (-1 if none), `groups` for bindings that also set less specific
 * selectors. A value with only a `self` binding (the usual per-peer binding) is stored as its
 * bare code instead.
 */
interface Node {
  self: Code;
  groups: MaskGroup[];
}

/** One tier: its selector's value -> what is bound to it. */
interface TierIndex {
  tier: Tier;
  matchedBy: MatchedBy;
  byValue: Map<string, Code | Node>;
}

/** Position of a binding in config, as people count it, for error messages. */
function where(i: number): string {
  return `bindings[${i}] (the ${ordinal(i + 1)} [[bindings]] table)`;
}

function ordinal(n: number): string {
  const s = n % 100 >= 11 && n % 100 <= 13 ? "th" : (({ 1: "st", 2: "nd", 3: "rd" } as Record<number, string>)[n % 10] ?? "th");
  return `${n}${s}`;
}

/** Checks one binding; returns its set selectors in TIERS order (the first one is its tier). */
function validate(binding: Binding, i: number, known: ReadonlySet<string>, agents: readonly string[]): Selector[] {
  if (binding === null || typeof binding !== "object") {
    throw new RouterConfigError(`${where(i)}: a binding must be a table with "agent" and at least one of ${SELECTORS.join(", ")}`, i);
  }
  for (const key of Object.keys(binding)) {
    if (!BINDING_FIELDS.has(key)) {
      throw new RouterConfigError(`${where(i)}: unknown field "${key}" (a binding has agent, ${SELECTORS.join(", ")})`, i);
    }
  }
  if (typeof binding.agent !== "string" || !known.has(binding.agent)) {
    throw new RouterConfigError(`${where(i)}: unknown agent ${JSON.stringify(binding.agent)} (agents: ${agents.join(", ") || "none"})`, i);
  }
  const fields: Selector[] = [];
  for (const s of SELECTORS) {
    const v: unknown = binding[s];
    if (v === undefined) continue;
    // An empty selector would equal nothing a channel sends, and "" must not mean "any".
    if (typeof v !== "string" || v.length === 0) {
      throw new RouterConfigError(`${where(i)}: ${s} must be a non-empty string, got ${JSON.stringify(v)}`, i);
    }
    fields.push(s);
  }
  if (fields.length === 0) {
    throw new RouterConfigError(`${where(i)}: agent "${binding.agent}" has no selector; set at least one of ${SELECTORS.join(", ")}`, i);
  }
  return fields;
}

/** Walks `fields` of `address` down the trie; -1 when a field is absent or unmatched. */
function lookup(group: MaskGroup, address: InboundAddress): Code {
  const { fields } = group;
  let node: Level | Code | undefined = group.root;
  for (let i = 0; i < fields.length; i++) {
    const value = address[fields[i]!];
    // A binding's selector never equals an absent field (e.g. a guild binding vs. a DM).
    if (value === undefined) return -1;
    node = (node as Level).get(value);
    if (node === undefined) return -1;
  }
  return node as Code;
}

/** The earliest binding in `node` that matches `address`, or -1. */
function best(node: Node, address: InboundAddress): Code {
  let code = node.self;
  for (let g = 0; g < node.groups.length; g++) {
    const hit = lookup(node.groups[g]!, address);
    if (hit >= 0 && (code < 0 || hit < code)) code = hit;
  }
  return code;
}

/**
 * Compiles bindings into a router (at config load; pure, no I/O).
 *
 * Matching (issue 5, "Router"): a binding matches a message when every selector it sets equals
 * the message's field (an absent field equals nothing). A binding's tier is its most specific
 * set selector, in the order peer > guild > team > account > channel. The matching binding of
 * the highest tier wins; within a tier, the earliest in config order wins, whatever else it
 * sets. No match: `defaultAgent`, `matchedBy: "default"`.
 *
 * Index: per tier, a map from the value of the tier's selector (the peer id, guild id, ...)
 * to the bindings with that value; those that also set less specific selectors are grouped by
 * mask (the exact set of extra selectors) into tries keyed by those values. `resolve` does, per
 * tier from the highest, one Map.get on the message's field and, only for a value that has
 * extra-selector bindings, one trie lookup per mask under it; it stops at the first tier with a
 * hit. So the cost is O(number of masks in use), never O(number of bindings), and the number of
 * masks is bounded: a tier-t binding sets t plus any subset of the less specific selectors, so
 * at most 16 + 8 + 4 + 2 + 1 = 31 (< 2^5) lookups whatever the binding count. A per-peer
 * binding and a message from an unbound peer cost one Map.get each for the peer tier.
 * Exact duplicates (same selectors and values) keep only the first; later ones can never win.
 *
 * @param bindings in config order (earlier wins within a tier)
 * @param agents the known agent ids
 * @param defaultAgent the agent for messages no binding matches; must be in `agents`
 * @throws RouterConfigError (with the binding's `index`) for a binding that is not a table, has
 *   an unknown field, names an unknown agent, has no selector, or sets a selector to something
 *   other than a non-empty string; (index -1) when `defaultAgent` is not in `agents`
 */
export function compileRouter(bindings: readonly Binding[], agents: readonly string[], defaultAgent: string): Router {
  const known = new Set(agents);
  if (!known.has(defaultAgent)) {
    throw new RouterConfigError(`default agent "${defaultAgent}" is not defined (agents: ${agents.join(", ") || "none"})`, -1);
  }
  const agentList = [...agents];
  const agentIndex = new Map(agentList.map((a, i) => [a, i]));
  const agentCount = agentList.length;
  // One fields array per mask, shared by every group with that mask.
  const maskFields = new Map<string, readonly Selector[]>();
  const byTier = new Map<Tier, TierIndex>(TIERS.map((tier) => [tier, { tier, matchedBy: `binding.${tier}` as MatchedBy, byValue: new Map() }]));
  bindings.forEach((binding, order) => {
    const [tier, ...extra] = validate(binding, order, known, agents) as [Tier, ...Selector[]];
    const code = order * agentCount + agentIndex.get(binding.agent)!;
    const { byValue } = byTier.get(tier)!;
    const value = binding[tier]!;
    const held = byValue.get(value);
    if (extra.length === 0) {
      if (held === undefined) byValue.set(value, code);
      else if (typeof held !== "number" && held.self < 0) held.self = code;
      return; // otherwise an earlier binding with the same selectors already wins
    }
    let node: Node;
    if (held === undefined || typeof held === "number") {
      node = { self: held ?? -1, groups: [] };
      byValue.set(value, node);
    } else {
      node = held;
    }
    const maskId = extra.join(",");
    let fields = maskFields.get(maskId);
    if (!fields) {
      fields = extra;
      maskFields.set(maskId, fields);
    }
    let group = node.groups.find((g) => g.fields === fields);
    if (!group) {
      group = { fields, root: new Map() };
      node.groups.push(group);
    }
    let level = group.root;
    for (let i = 0; i < extra.length - 1; i++) {
      const v = binding[extra[i]!]!;
      let next = level.get(v) as Level | undefined;
      if (!next) {
        next = new Map();
        level.set(v, next);
      }
      level = next;
    }
    const last = binding[extra[extra.length - 1]!]!;
    if (!level.has(last)) level.set(last, code);
  });
  const tiers = TIERS.map((t) => byTier.get(t)!).filter((t) => t.byValue.size > 0);
  const agentOf = (code: Code) => agentList[code % agentCount]!;

  return {
    resolve(address: InboundAddress): Route {
      for (let t = 0; t < tiers.length; t++) {
        const { tier, byValue, matchedBy } = tiers[t]!;
        const value = address[tier];
        if (value === undefined) continue;
        const held = byValue.get(value);
        if (held === undefined) continue;
        const code = typeof held === "number" ? held : best(held, address);
        if (code >= 0) return route(agentOf(code), address, matchedBy);
      }
      return route(defaultAgent, address, "default");
    },
  };
}

function route(agentId: string, a: InboundAddress, matchedBy: MatchedBy): Route {
  return { agentId, sessionKey: sessionKey(agentId, a.channel, a.account, a.peer), matchedBy };
}
