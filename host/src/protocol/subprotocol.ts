// WebSocket subprotocols of protocol v1 (docs/protocol.md, "Transport"). A browser cannot set
// `Authorization` on a WebSocket upgrade, and a token in the URL ends up in logs and history, so a
// browser client presents its token as a subprotocol: `Sec-WebSocket-Protocol: exoclaw.v1,
// exoclaw.bearer.<base64url(token)>` (the approach of Kubernetes' `base64url.bearer.authorization.k8s.io.`).
// The server answers with `exoclaw.v1` only, never echoing the token. No Node imports: the
// browser client (ui/src/client) imports this file too.

/** The subprotocol a client offers and the server selects: JSON-RPC 2.0 over text (JSON) and binary (MessagePack) frames. */
export const WS_SUBPROTOCOL = "exoclaw.v1";

/** Prefix of the subprotocol that carries a bearer token, base64url-encoded without padding (RFC 4648 section 5). */
export const BEARER_SUBPROTOCOL_PREFIX = "exoclaw.bearer.";

/** `exoclaw.bearer.<base64url(token)>` for `token` (UTF-8). */
export function bearerSubprotocol(token: string): string {
  const bytes = new TextEncoder().encode(token);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return BEARER_SUBPROTOCOL_PREFIX + btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * The token carried by a `Sec-WebSocket-Protocol` header value (comma-separated list), or
 * undefined when no entry starts with {@link BEARER_SUBPROTOCOL_PREFIX} or it is not base64url UTF-8.
 */
export function tokenFromSubprotocols(header: string | undefined): string | undefined {
  if (header === undefined || header === "") return undefined;
  for (const raw of header.split(",")) {
    const p = raw.trim();
    if (!p.startsWith(BEARER_SUBPROTOCOL_PREFIX)) continue;
    const b64 = p.slice(BEARER_SUBPROTOCOL_PREFIX.length);
    if (!/^[A-Za-z0-9_-]+$/.test(b64)) return undefined;
    try {
      const bin = atob(b64.replace(/-/g, "+").replace(/_/g, "/"));
      const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Whether a `Sec-WebSocket-Protocol` header value offers {@link WS_SUBPROTOCOL}. */
export function offersSubprotocol(header: string | undefined): boolean {
  return header !== undefined && header.split(",").some((p) => p.trim() === WS_SUBPROTOCOL);
}
