const NEEDS_ESCAPE = /[%:]/;

/**
 * Escapes one session-key part so that `:` (the separator) and `%` (the escape) inside an id
 * cannot forge another key: `%` -> `%25`, `:` -> `%3A`; everything else (including any Unicode)
 * is kept as is. Injective: distinct parts give distinct escaped parts, and an escaped part
 * never contains `:`. The store's `formatSessionKey` is built on it and `parseSessionKey` undoes it.
 */
export function escapeKeyPart(part: string): string {
  // Most ids (numeric user ids, Slack U/T ids) need nothing; skip the two replaces for them.
  if (!NEEDS_ESCAPE.test(part)) return part;
  return part.replace(/%/g, "%25").replace(/:/g, "%3A");
}

/**
 * Builds the session key `agent:<agent>:<channel>:<account>:<peer>`, each part escaped with
 * {@link escapeKeyPart}, so the key splits back into exactly these four parts. Guild and team
 * do not split a peer's session, so they are not part of it. Parts should be non-empty: the
 * store rejects keys with an empty part.
 */
export function sessionKey(agent: string, channel: string, account: string, peer: string): string {
  return `agent:${escapeKeyPart(agent)}:${escapeKeyPart(channel)}:${escapeKeyPart(account)}:${escapeKeyPart(peer)}`;
}
