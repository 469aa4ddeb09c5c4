import { isIPv6 } from "../util/index.js";
import { createIdentifier, type ClientEntry } from "./identity.js";
import { WS_SUBPROTOCOL, offersSubprotocol, tokenFromSubprotocols } from "../protocol/index.js";
import type { UpgradeRequest, UpgradeVerdict } from "./types.js";

/** True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h === "::ffff:127.0.0.1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/** True for the "every interface" addresses (`0.0.0.0`, `::`), where the bind address names no host. */
export function isWildcard(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "");
  return h === "0.0.0.0" || h === "::" || h === "0:0:0:0:0:0:0:0";
}

// The constant-time comparison lives with the token -> identity step; re-exported for callers.
export { tokenMatches } from "./identity.js";

/**
 * The token a client presented: `Authorization: Bearer <token>`, else the subprotocol
 * `exoclaw.bearer.<base64url(token)>` (browsers; protocol/subprotocol.ts), else the (deprecated)
 * `token` query parameter, with where it came from.
 */
export function presentedToken(req: UpgradeRequest): { token: string; via: "header" | "subprotocol" | "query" } | undefined {
  const m = req.authorization?.match(/^Bearer\s+(.+)$/i);
  if (m) return { token: m[1]!.trim(), via: "header" };
  const sub = tokenFromSubprotocols(req.protocols);
  if (sub !== undefined) return { token: sub, via: "subprotocol" };
  const q = new URLSearchParams(req.query).get("token");
  return q === null ? undefined : { token: q, via: "query" };
}

/**
 * The host name of a `Host` header value, lower-case, without the port and IPv6 brackets
 * (`[::1]:7200` -> `::1`, `Example.com:80` -> `example.com`). Undefined when it is not a
 * syntactically valid host (RFC 9110 section 7.2 / RFC 3986 section 3.2.2).
 */
export function hostName(header: string): string | undefined {
  const v = header.trim().toLowerCase();
  const bracketed = v.match(/^\[([0-9a-f:.]+)\](?::\d{1,5})?$/);
  if (bracketed) return isIPv6(bracketed[1]!) ? bracketed[1] : undefined;
  const plain = v.match(/^([a-z0-9._~%!$&'()*+,;=-]+)(?::\d{1,5})?$/);
  return plain ? plain[1] : undefined;
}

/**
 * The serialized origin of an `Origin` header or an `allowed_origins` entry (RFC 6454 section
 * 6.1: scheme, host, and port unless it is the scheme's default), or undefined when it is not an
 * http(s) origin (`null`, `file://`, garbage).
 */
export function normalizeOrigin(value: string): string | undefined {
  try {
    const u = new URL(value.trim());
    if (u.protocol !== "http:" && u.protocol !== "https:") return undefined;
    return u.origin;
  } catch {
    return undefined;
  }
}

/** `allowed_origins` entry that stands for the gateway's own origins (for a UI it serves). */
export const SELF_ORIGIN = "self";

/**
 * The origins a UI served by this gateway would have: `http://<bind>:<port>` (unless the bind is
 * a wildcard), `http://localhost:<port>`, `http://127.0.0.1:<port>` and `http://[::1]:<port>`;
 * `https://` instead when `scheme` is `https` (`[gateway.tls]`).
 */
export function selfOrigins(bind: string, port: number, scheme: "http" | "https" = "http"): string[] {
  const hosts = ["localhost", "127.0.0.1", "[::1]"];
  if (!isWildcard(bind)) hosts.push(isIPv6(bind.replace(/^\[|\]$/g, "")) ? `[${bind.replace(/^\[|\]$/g, "")}]` : bind);
  return [...new Set(hosts.map((h) => normalizeOrigin(`${scheme}://${h}:${port}`)).filter((o): o is string => o !== undefined))];
}

/** Options of {@link createUpgradeGuard}. */
export interface UpgradeGuardOptions {
  /** The address the gateway binds (`gateway.bind`). */
  bind: string;
  /** The bound port; asked at each upgrade because it is known only after listening (port 0). */
  port: () => number;
  /** The gateway token; undefined = no token (only allowed on loopback binds). */
  token?: string;
  /** The gateway serves https:// (`[gateway.tls]`): `self` stands for the https origins. */
  tls?: boolean;
  /** `[[gateway.clients]]`: extra tokens, each with its own account and scopes; default none. */
  clients?: readonly ClientEntry[];
  /** `gateway.allowed_origins`: origins (`https://app.example`) or `self`; empty = no browser origin. */
  allowedOrigins: readonly string[];
  /** `gateway.allowed_hosts`: extra host names the `Host` header may carry (ports ignored). */
  allowedHosts: readonly string[];
  /** The gateway serves its UI (`[gateway] ui`): its own origins pass as if `self` were listed. */
  ui?: boolean;
  /** Called for each upgrade that presented the token in the query string (deprecated). */
  onQueryToken?: () => void;
}

const refuse = (status: 401 | 403, error: string): UpgradeVerdict => ({ ok: false, status, error });

/**
 * Builds the WebSocket upgrade check, run by both transports on the request's headers:
 *
 * 1. `Host` (DNS rebinding): the host name must be the bind address, `localhost`, a loopback IP,
 *    or listed in `allowedHosts`. On a wildcard bind (`0.0.0.0`, `::`) with no `allowedHosts`
 *    any `Host` is accepted: such a bind always has a token, and a rebinding page cannot present
 *    it. A missing `Host` is refused (RFC 9112 section 3.2 requires one).
 * 2. `Origin` (cross-site WebSocket hijacking): browsers send it on every WebSocket upgrade;
 *    when present it must be on `allowedOrigins` (`self` = {@link selfOrigins}). Requests without
 *    `Origin` are not from a browser page and pass.
 * 3. The token -> the connection's identity ({@link createIdentifier}): the gateway token or a
 *    client token, each compared in constant time; none on a token-less (loopback) gateway.
 *
 * @returns `{ok: true, identity}` or a refusal: 403 for Host/Origin, 401 for the token, with an
 *   error message that names the header and the config key that would admit it (never the token)
 */
export function createUpgradeGuard(options: UpgradeGuardOptions): (req: UpgradeRequest) => UpgradeVerdict {
  const hosts = new Set<string>(["localhost"]);
  for (const h of options.allowedHosts) hosts.add(hostName(h) ?? h.toLowerCase());
  const bindName = hostName(isIPv6(options.bind) ? `[${options.bind}]` : options.bind);
  if (bindName && !isWildcard(options.bind)) hosts.add(bindName);
  const anyHost = isWildcard(options.bind) && options.allowedHosts.length === 0 && options.token !== undefined;
  const explicitOrigins = new Set(options.allowedOrigins.filter((o) => o !== SELF_ORIGIN).map((o) => normalizeOrigin(o) ?? o));
  const allowSelf = options.allowedOrigins.includes(SELF_ORIGIN) || options.ui === true;
  const identify = createIdentifier({ token: options.token, clients: options.clients });

  return (req) => {
    if (!anyHost) {
      if (req.host === undefined || req.host === "") return refuse(403, "missing Host header");
      const name = hostName(req.host);
      if (name === undefined || !(hosts.has(name) || isLoopback(name))) {
        return refuse(
          403,
          `Host "${req.host.slice(0, 200)}" is not allowed: the gateway answers to its bind address, localhost and loopback IPs; add the name to [gateway] allowed_hosts`,
        );
      }
    }
    if (req.origin !== undefined) {
      const origin = normalizeOrigin(req.origin);
      const allowed =
        origin !== undefined &&
        (explicitOrigins.has(origin) || (allowSelf && selfOrigins(options.bind, options.port(), options.tls === true ? "https" : "http").includes(origin)));
      if (!allowed) {
        return refuse(
          403,
          `Origin "${req.origin.slice(0, 200)}" is not allowed: add it to [gateway] allowed_origins (browser pages need it; clients that send no Origin are not affected)`,
        );
      }
    }
    const presented = presentedToken(req);
    if (presented?.via === "query") options.onQueryToken?.();
    const identity = identify(presented?.token);
    if (identity === null) return refuse(401, "unauthorized: present the gateway token (or a [[gateway.clients]] token) as Authorization: Bearer <token>");
    return offersSubprotocol(req.protocols) ? { ok: true, identity, protocol: WS_SUBPROTOCOL } : { ok: true, identity };
  };
}

/**
 * Refuses to serve a non-loopback address without a token.
 * @throws Error naming the bind address and how to set a token
 */
export function assertBindAllowed(bind: string, token: string | undefined): void {
  if (!isLoopback(bind) && !token) {
    throw new Error(
      `refusing to bind ${bind} without a token: anyone who can reach it could drive your agents. ` +
        "Set EXOCLAW_TOKEN (16+ characters) or gateway.token in exoclaw.toml, or bind 127.0.0.1.",
    );
  }
}
