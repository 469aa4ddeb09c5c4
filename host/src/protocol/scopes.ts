// Identities and scopes of protocol v1 (docs/protocol.md, "Identities and scopes"); the gateway
// (gateway/identity.ts) checks them, the config validates `[[gateway.clients]]` against them.

/**
 * What a WebSocket connection may do (docs/protocol.md, "Identities and scopes"):
 * - `chat`: `chat.send`, `chat.history` and `sessions.*` (except delete) on sessions of channel
 *   `ws` and the connection's own account; `status`, `plugin.list`.
 * - `admin`: `plugin.load` / `plugin.unload`, `sessions.delete`, reading and resetting any session.
 * - `impersonate`: `chat.send` as another channel or account (act as a platform user).
 */
export type Scope = "chat" | "admin" | "impersonate";

/** Every scope, in documentation order. */
export const SCOPES: readonly Scope[] = ["chat", "admin", "impersonate"];

/** The account and scopes of the gateway token (and of every client on a token-less loopback gateway). */
export const GATEWAY_ACCOUNT = "default";
export const GATEWAY_SCOPES: readonly Scope[] = ["chat", "admin"];
