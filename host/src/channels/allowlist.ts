/**
 * Inbound allowlists (`[channels.<name>] allow`): who may reach an agent through a channel.
 * Closed by default: an empty list admits nobody, and `*` admits everyone only when written.
 */

/** The fields of an inbound message an allowlist looks at. */
export interface AllowSubject {
  peer: string;
  guild?: string;
  team?: string;
}

/** A compiled allowlist: true when the message may reach an agent. */
export type Allowlist = (m: AllowSubject) => boolean;

/** A malformed allowlist entry; the message names the channel and the entry. */
export class AllowlistError extends Error {
  constructor(
    readonly channel: string,
    readonly entry: string,
    readonly reason: string,
  ) {
    super(`[channels.${channel}] allow entry ${JSON.stringify(entry)}: ${reason}`);
    this.name = "AllowlistError";
  }
}

type Field = "peer" | "guild" | "team";

/** Exact ids and prefixes of one field. */
interface FieldRules {
  exact: Set<string>;
  prefixes: string[];
}

/**
 * Compiles allowlist entries into a predicate. Entries:
 * - `<peer id>`: that peer (exact match);
 * - `guild:<id>` / `team:<id>`: any peer of that guild / team;
 * - any of those ending in `*`: a prefix (`-100*`, `team:T0*`; `guild:*` = any message with a guild);
 * - `*` alone: everyone.
 *
 * Exact ids are set lookups; prefixes are checked in order (allowlists are short).
 * @param entries the config list; `[]` admits nobody
 * @param channel channel name, for error messages
 * @throws AllowlistError for an empty entry, `guild:`/`team:` with no id, a `*` anywhere but
 *   the end, or surrounding whitespace
 */
export function compileAllowlist(entries: readonly string[], channel = "?"): Allowlist {
  let everyone = false;
  const rules: Record<Field, FieldRules> = {
    peer: { exact: new Set(), prefixes: [] },
    guild: { exact: new Set(), prefixes: [] },
    team: { exact: new Set(), prefixes: [] },
  };
  for (const entry of entries) {
    if (entry === "*") {
      everyone = true;
      continue;
    }
    if (entry.length === 0) throw new AllowlistError(channel, entry, "is empty");
    if (entry.trim() !== entry) throw new AllowlistError(channel, entry, "has leading or trailing whitespace");
    let field: Field = "peer";
    let id = entry;
    const m = /^(guild|team):(.*)$/s.exec(entry);
    if (m) {
      field = m[1] as Field;
      id = m[2]!;
      if (id.length === 0) throw new AllowlistError(channel, entry, `has no ${field} id after "${field}:"`);
    }
    const star = id.indexOf("*");
    if (star >= 0 && star !== id.length - 1) {
      throw new AllowlistError(channel, entry, '"*" is only allowed at the end (a prefix) or alone (everyone)');
    }
    if (star === id.length - 1) rules[field].prefixes.push(id.slice(0, -1));
    else rules[field].exact.add(id);
  }
  if (everyone) return () => true;
  const test = (r: FieldRules, value: string | undefined): boolean => {
    if (value === undefined || value === "") return false;
    if (r.exact.has(value)) return true;
    for (const p of r.prefixes) if (value.startsWith(p)) return true;
    return false;
  };
  return (msg) => test(rules.peer, msg.peer) || test(rules.guild, msg.guild) || test(rules.team, msg.team);
}
