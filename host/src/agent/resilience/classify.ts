/**
 * What a failed model call means for the next attempt (pure): retry the same provider, try
 * another of its keys, move on to the next model of the agent's chain, or stop — the request
 * itself is at fault and no provider would take it. Only {@link ProviderError}s are classified;
 * anything else (an abort's reason, a bug) stops at once.
 */
import { ErrorCode } from "../../protocol/index.js";
import { ProviderError } from "../errors.js";

/**
 * Why a call is retried or moved on (a bounded metric label and the `reason` of a `failover`
 * event): `rate_limited` (429), `overloaded` (529), `server_error` (other 5xx, 408, 409),
 * `unreachable` (connection refused, DNS, host unreachable), `stream_broken` (the connection or
 * stream broke mid-answer, or a stream `error` event), `idle_timeout` (the provider went
 * silent), `credentials` (401/403), `no_credentials` (no key configured), `circuit_open`.
 */
export type SwitchReason =
  | "rate_limited"
  | "overloaded"
  | "server_error"
  | "unreachable"
  | "stream_broken"
  | "idle_timeout"
  | "credentials"
  | "no_credentials"
  | "circuit_open";

/**
 * - `retry`: the provider may answer a later attempt (after a backoff, at least `retryAfterMs`);
 *   counts against its circuit breaker.
 * - `rotate`: the key was refused: rest it and try another key of the same provider.
 * - `next`: this provider cannot answer now; try the next model of the chain.
 * - `fatal`: the request (or the turn) is at fault: rethrow, no fallback.
 */
export type Verdict =
  | { action: "retry"; reason: SwitchReason; retryAfterMs?: number }
  | { action: "rotate"; reason: SwitchReason }
  | { action: "next"; reason: SwitchReason }
  | { action: "fatal" };

/**
 * Classifies a model call's failure.
 * HTTP 429 -> retry (rate_limited); 5xx, 408, 409 -> retry (529 overloaded, else server_error);
 * 401/403 -> rotate; any other 4xx (400 bad request, 404, 413, 422) -> fatal: it is the request's
 * fault. No status: unreachable -> retry; no credentials configured -> next;
 * broken stream, stream error event -> retry; idle timeout -> next. Not a ProviderError -> fatal.
 */
export function classify(err: unknown): Verdict {
  if (!(err instanceof ProviderError)) return { action: "fatal" };
  const status = err.status;
  const after = err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {};
  if (status !== undefined) {
    if (status === 429) return { action: "retry", reason: "rate_limited", ...after };
    if (status === 529) return { action: "retry", reason: "overloaded", ...after };
    if (status >= 500 || status === 408 || status === 409) return { action: "retry", reason: "server_error", ...after };
    // -32001 with a status is a refused key whatever the status (Gemini answers 400 API_KEY_INVALID).
    if (status === 401 || status === 403 || err.code === ErrorCode.ProviderUnavailable) return { action: "rotate", reason: "credentials" };
    return { action: "fatal" };
  }
  if (err.unreachable === true) return { action: "retry", reason: "unreachable" };
  if (err.code === ErrorCode.ProviderUnavailable) return { action: "next", reason: "no_credentials" };
  // A provider that went silent for a whole idle timeout is not retried (that would multiply
  // the wait); the next model of the chain takes the call.
  if (err.reason === "idle_timeout") return { action: "next", reason: "idle_timeout" };
  return { action: "retry", reason: "stream_broken" };
}
