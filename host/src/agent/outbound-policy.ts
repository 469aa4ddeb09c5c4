/**
 * The outbound allowlist of an agent (`[[agents]] outbound`): which peers it may message besides
 * the one it is answering. Pure; compiled once per agent when the runtime starts.
 */

/** Peers of one channel an allowlist admits. */
interface ChannelRule {
  any: boolean;
  exact: Set<string>;
  prefixes: string[];
}

/** A compiled outbound allowlist: `allows(channel, peer)`, and the entries it came from (for messages). */
export interface OutboundPolicy {
  allows(channel: string, peer: string): boolean;
  readonly entries: readonly string[];
}

/**
 * Compiles `<channel>:<peer>` entries. The channel is matched exactly; the peer (everything after
 * the first `:`, so peer ids may contain `:`) is `*` (every peer of that channel), a prefix
 * ending in `*` (`-100*`), or an exact id (a `*` anywhere else is a literal character). An empty
 * list allows nothing. The account is not part of an entry: an allowed peer may be reached
 * through any account of the channel.
 * @throws Error naming the entry when it has no `:`, an empty channel or an empty peer
 */
export function compileOutboundAllowlist(entries: readonly string[]): OutboundPolicy {
  const rules = new Map<string, ChannelRule>();
  for (const entry of entries) {
    const colon = entry.indexOf(":");
    const channel = colon > 0 ? entry.slice(0, colon) : "";
    const peer = colon > 0 ? entry.slice(colon + 1) : "";
    if (channel.length === 0 || peer.length === 0) {
      throw new Error(`outbound allowlist entry ${JSON.stringify(entry)} is not "<channel>:<peer>" (peer exact, a prefix ending in *, or *)`);
    }
    let rule = rules.get(channel);
    if (!rule) rules.set(channel, (rule = { any: false, exact: new Set(), prefixes: [] }));
    if (peer === "*") rule.any = true;
    else if (peer.endsWith("*")) rule.prefixes.push(peer.slice(0, -1));
    else rule.exact.add(peer);
  }
  const frozen = Object.freeze([...entries]);
  return {
    entries: frozen,
    allows(channel, peer) {
      const rule = rules.get(channel);
      if (!rule) return false;
      return rule.any || rule.exact.has(peer) || rule.prefixes.some((p) => peer.startsWith(p));
    },
  };
}
