import { createHash, timingSafeEqual } from "node:crypto";
import type { UpgradeRequest } from "./types.js";

/** True for addresses that only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || h === "::ffff:127.0.0.1" || /^127(\.\d{1,3}){3}$/.test(h);
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/**
 * Constant-time token comparison: both sides are hashed first, so neither the content nor the
 * length of the expected token leaks through timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token a client presented: `Authorization: Bearer <token>`, else the `token` query parameter. */
export function presentedToken(req: UpgradeRequest): string | undefined {
  const m = req.authorization?.match(/^Bearer\s+(.+)$/i);
  if (m) return m[1]!.trim();
  return new URLSearchParams(req.query).get("token") ?? undefined;
}

/**
 * Builds the upgrade check. With a token configured, every client must present it; without one,
 * everything is allowed (only valid on loopback binds, which `assertBindAllowed` enforces).
 */
export function createAuthorizer(token: string | undefined): (req: UpgradeRequest) => boolean {
  if (!token) return () => true;
  return (req) => tokenMatches(presentedToken(req), token);
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
