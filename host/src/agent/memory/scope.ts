/**
 * Who a note belongs to and who may read it: a {@link MemoryScope} names the conversation a
 * note was written in (agent, channel, account, peer, sender), always taken from host-written
 * facts (the session key and the channel's sender), never from model or client text.
 */

/** The conversation a note was written in, or a recall is made for. All parts non-empty. */
export interface MemoryScope {
  agent: string;
  channel: string;
  account: string;
  /** The chat: a user in a direct chat, a group/channel id in a group. */
  peer: string;
  /** Who spoke: the user in a group; equal to `peer` in a direct chat (or when the channel does not say). */
  sender: string;
}

/**
 * `[agents.memory] scope`: how far an agent's notes are shared when it reads them.
 * - `sender` (default): only notes written in the same agent + channel + account + peer + sender.
 * - `peer`: every sender of the same chat (agent + channel + account + peer) shares them.
 * - `agent`: every conversation of the agent shares them (an operator's explicit choice).
 * Never across agents: there is no wider scope.
 */
export type MemoryShare = "sender" | "peer" | "agent";

/** The memory shares, in widening order. */
export const MEMORY_SHARES: readonly MemoryShare[] = ["sender", "peer", "agent"];

/** The exact notebook key of a scope (JSON of its five parts: injective, no escaping rules to get wrong). */
export function bookKey(s: MemoryScope): string {
  return JSON.stringify([s.agent, s.channel, s.account, s.peer, s.sender]);
}

/** Key of a scope's chat (agent + channel + account + peer), for the `peer` share. */
export function chatKey(s: Pick<MemoryScope, "agent" | "channel" | "account" | "peer">): string {
  return JSON.stringify([s.agent, s.channel, s.account, s.peer]);
}

/** Whether a note written in `note` may be read in `reader` under `share`. */
export function readable(note: MemoryScope, reader: MemoryScope, share: MemoryShare): boolean {
  if (note.agent !== reader.agent) return false;
  if (share === "agent") return true;
  if (note.channel !== reader.channel || note.account !== reader.account || note.peer !== reader.peer) return false;
  return share === "peer" || note.sender === reader.sender;
}

/** A filter over scopes (RPC, CLI): each given part must equal the note's. */
export interface ScopeFilter {
  agent?: string | undefined;
  channel?: string | undefined;
  account?: string | undefined;
  peer?: string | undefined;
  sender?: string | undefined;
}

/** Whether `s` matches every part `f` gives. */
export function matchesFilter(s: MemoryScope, f: ScopeFilter): boolean {
  return (
    (f.agent === undefined || s.agent === f.agent) &&
    (f.channel === undefined || s.channel === f.channel) &&
    (f.account === undefined || s.account === f.account) &&
    (f.peer === undefined || s.peer === f.peer) &&
    (f.sender === undefined || s.sender === f.sender)
  );
}
