import { createHash, timingSafeEqual } from "node:crypto";
import type { ClientEntry } from "../config/index.js";
import { ErrorCode, GATEWAY_ACCOUNT, GATEWAY_SCOPES, RpcError, type Scope } from "../protocol/index.js";

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Constant-time token comparison: both sides are hashed first, so neither the content nor the
 * length of the expected token leaks through timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

// The scopes and the gateway account are protocol facts (protocol/scopes.ts); a client entry is
// configuration (config/types.ts). Re-exported here, where connections get them.
export { SCOPES, GATEWAY_ACCOUNT, GATEWAY_SCOPES, type Scope } from "../protocol/index.js";
export type { ClientEntry } from "../config/index.js";

/** Who a connection is, fixed at the WebSocket upgrade; the client cannot change it later. */
export interface ClientIdentity {
  /** The account the client's `ws` sessions live under: `default` for the gateway token, else the client's name. */
  readonly account: string;
  readonly scopes: ReadonlySet<Scope>;
}

/** Options of {@link createIdentifier}. */
export interface IdentifierOptions {
  /** The gateway token; absent = clients without a token are the gateway identity (loopback only). */
  token?: string;
  /** Extra client tokens, each with its own account and scopes. */
  clients?: readonly ClientEntry[];
}

/**
 * Builds the token step of the upgrade check (`createUpgradeGuard`): the token a client
 * presented (undefined: none) -> its identity, or null (refuse with 401).
 * - the gateway token -> account `default`, scopes `chat` + `admin`;
 * - a client token -> that client's name and scopes;
 * - no token presented on a gateway without a gateway token -> the gateway identity (the
 *   token-less loopback default; `assertBindAllowed` keeps such a gateway on loopback);
 * - any other presented token, or none where a gateway token is configured -> null.
 * Every configured token is compared, in constant time each, whatever matched first.
 */
export function createIdentifier(options: IdentifierOptions): (presented: string | undefined) => ClientIdentity | null {
  const gateway: ClientIdentity = { account: GATEWAY_ACCOUNT, scopes: new Set(GATEWAY_SCOPES) };
  const entries: { token: string; identity: ClientIdentity }[] = [];
  if (options.token) entries.push({ token: options.token, identity: gateway });
  for (const c of options.clients ?? []) entries.push({ token: c.token, identity: { account: c.name, scopes: new Set(c.scopes) } });
  return (presented) => {
    if (presented === undefined) return options.token ? null : gateway;
    let found: ClientIdentity | null = null;
    // No early exit: the time taken does not say which entry (if any) matched.
    for (const e of entries) if (tokenMatches(presented, e.token) && found === null) found = e.identity;
    if (found === null && entries.length === 0) return gateway; // no token configured anywhere: tokens are ignored, as before
    return found;
  };
}

/** The -32010 error for a method or target the identity's scopes do not cover. */
export function forbidden(scope: Scope, what: string): RpcError {
  return new RpcError(ErrorCode.Forbidden, `forbidden: needs scope ${scope}: ${what}`, { scope });
}

/** @throws RpcError -32010 unless the identity has `scope` */
export function requireScope(identity: ClientIdentity, scope: Scope, what: string): void {
  if (!identity.scopes.has(scope)) throw forbidden(scope, what);
}

/**
 * The channel of the Control UI's WebChat (docs/ui.md): like `ws`, a client's own channel (its
 * account, scope `chat`); no configured channel may take the name (config/schema.ts).
 */
export const WEBCHAT_CHANNEL = "webchat";

/** True when the session (by its parsed key parts) is one of the identity's own `ws` (or `webchat`) sessions. */
export function ownsSession(identity: ClientIdentity, parts: { channel: string; account: string }): boolean {
  return identity.scopes.has("chat") && (parts.channel === "ws" || parts.channel === WEBCHAT_CHANNEL) && parts.account === identity.account;
}
