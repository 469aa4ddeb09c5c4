import { StoreError } from "./errors.js";
import type { SessionKeyParts } from "./types.js";

function escapePart(part: string): string {
  return part.replace(/%/g, "%25").replace(/:/g, "%3A");
}

function unescapePart(part: string): string {
  return part.replace(/%3A|%25/g, (m) => (m === "%3A" ? ":" : "%"));
}

/**
 * Builds `agent:<agent>:<channel>:<account>:<peer>`, escaping `%` → `%25` and `:` → `%3A` in
 * each part (the same format as the router's `sessionKey`).
 */
export function formatSessionKey(parts: SessionKeyParts): string {
  return ["agent", parts.agent, parts.channel, parts.account, parts.peer].map((p, i) => (i === 0 ? p : escapePart(p))).join(":");
}

/**
 * Splits a session key into its unescaped parts.
 * @throws StoreError `invalid_argument` unless the key is exactly what {@link formatSessionKey}
 *   produces for some non-empty parts (so every stored key is canonical)
 */
export function parseSessionKey(key: string): SessionKeyParts {
  const fields = typeof key === "string" ? key.split(":") : [];
  if (fields.length === 5 && fields[0] === "agent" && fields.slice(1).every((f) => f.length > 0)) {
    const [, agent, channel, account, peer] = fields.map(unescapePart) as [string, string, string, string, string];
    const parts = { agent, channel, account, peer };
    if (formatSessionKey(parts) === key) return parts;
  }
  throw new StoreError("invalid_argument", `not a session key (agent:<agent>:<channel>:<account>:<peer>, parts escaped): ${JSON.stringify(key)}`);
}
