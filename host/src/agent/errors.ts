import { ErrorCode, RpcError } from "../protocol/errors.js";

/**
 * A provider failure, already mapped onto a protocol error code: -32000 (the provider answered
 * with an error or the stream broke) or -32001 (no provider reachable / not configured).
 */
export class ProviderError extends RpcError {
  constructor(code: typeof ErrorCode.ProviderError | typeof ErrorCode.ProviderUnavailable, message: string) {
    super(code, message);
    this.name = "ProviderError";
  }
}

const CONNECT_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

/** The first `code` found along an error's `cause` chain (Node/undici put it there). */
function causeCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 6; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Hint appended to "unreachable" errors so the user knows how to configure a provider. */
export const CONFIGURE_HINT =
  "Set ANTHROPIC_API_KEY or OPENAI_API_KEY, or run Ollama (OLLAMA_HOST, default 127.0.0.1:11434); " +
  "EXOCLAW_PROVIDER=anthropic|openai|ollama and EXOCLAW_MODEL choose explicitly, and " +
  "ANTHROPIC_BASE_URL / OPENAI_BASE_URL point the SDKs at another server.";

/**
 * Maps any error thrown by an SDK onto a ProviderError with a readable message that never
 * contains credentials. Abort errors pass through unchanged.
 * @param provider provider name for the message
 * @param endpoint where it was reached (base URL), for the message
 */
export function toProviderError(err: unknown, provider: string, endpoint: string): unknown {
  if (err instanceof RpcError) return err;
  if ((err as Error)?.name === "AbortError") return err;
  const status = (err as { status?: unknown }).status ?? (err as { status_code?: unknown }).status_code;
  const code = causeCode(err);
  const msg = (err as Error)?.message ?? String(err);
  if (code && CONNECT_CODES.has(code)) {
    return new ProviderError(ErrorCode.ProviderUnavailable, `provider ${provider} at ${endpoint} is unreachable (${code}). ${CONFIGURE_HINT}`);
  }
  if (status === 401 || status === 403) {
    return new ProviderError(ErrorCode.ProviderUnavailable, `provider ${provider} rejected the credentials (HTTP ${status}). ${CONFIGURE_HINT}`);
  }
  if (typeof status === "number") return new ProviderError(ErrorCode.ProviderError, `provider ${provider} returned HTTP ${status}: ${msg}`);
  return new ProviderError(ErrorCode.ProviderError, `provider ${provider} failed: ${msg}`);
}

/**
 * The rejection of a turn that a newer message in the same session aborted (agent queue mode
 * `interrupt`), or that such a message superseded while it was still queued. Code -32006
 * (aborted); an `error` event with the same code and message closes the turn in the session log.
 * Channels send no failure reply for it: the newer message gets the answer.
 */
export class InterruptedTurnError extends RpcError {
  constructor(
    readonly runId: string,
    message = "turn interrupted: a newer message in this session replaced it (queue mode interrupt)",
  ) {
    super(ErrorCode.Aborted, message);
    this.name = "InterruptedTurnError";
  }
}
