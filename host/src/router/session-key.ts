/**
 * Escapes one session-key part so that `:` (the separator) and `%` (the escape) inside an id
 * cannot forge another key: `%` -> `%25`, `:` -> `%3A`. Injective, so distinct inputs give
 * distinct keys.
 */
export function escapeKeyPart(part: string): string {
  return part.replace(/%/g, "%25").replace(/:/g, "%3A");
}

/**
 * Builds the session key `agent:<agent>:<channel>:<account>:<peer>`. Guild and team do not
 * split a peer's session, so they are not part of it.
 */
export function sessionKey(agent: string, channel: string, account: string, peer: string): string {
  return ["agent", agent, channel, account, peer].map((p, i) => (i === 0 ? p : escapeKeyPart(p))).join(":");
}
