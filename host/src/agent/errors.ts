import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { redactUrl, processSecrets, type SecretRegistry } from "../log/index.js";
import { ErrorCode, FailureCode, isFailureReason, reasonOfCode, RpcError, type FailureReason } from "../protocol/index.js";
import { redactText } from "../store/index.js";
import { errorMessage } from "../util/index.js";

/**
 * A provider failure, already mapped onto a protocol error code: -32000 (the provider answered
 * with an error or the stream broke) or -32001 (no provider reachable / not configured). Its
 * message is the gateway's own fixed text — never the provider's error body, which may quote a
 * credential — and, for failures reported by {@link toProviderError}, ends with the request id
 * an operator finds in the log (`requestId`).
 */
export class ProviderError extends RpcError {
  /** `provider_error` (-32000) or `provider_unavailable` (-32001); `idle_timeout` for {@link ProviderStallError}. */
  readonly reason: FailureReason;
  /** The provider's request id (from its response header) or a gateway-generated `gw_…` id. */
  readonly requestId?: string;
  /** The HTTP status the provider answered with, when it answered. */
  readonly status?: number;
  /**
   * How long the provider asked to wait before another call, ms: its `retry-after-ms` header, else
   * `retry-after` (seconds, or an HTTP date), as sent with a 429 or 503 (RFC 9110 §10.2.3).
   */
  readonly retryAfterMs?: number;
  /** The provider was never reached (connection refused, DNS failure, host unreachable) or has no credentials. */
  readonly unreachable?: boolean;

  constructor(
    code: typeof ErrorCode.ProviderError | typeof ErrorCode.ProviderUnavailable,
    message: string,
    details: { requestId?: string; status?: number; retryAfterMs?: number; unreachable?: boolean } = {},
    data?: unknown,
  ) {
    super(code, message, data);
    this.name = "ProviderError";
    this.reason = code === ErrorCode.ProviderUnavailable ? "provider_unavailable" : "provider_error";
    if (details.requestId !== undefined) this.requestId = details.requestId;
    if (details.status !== undefined) this.status = details.status;
    if (details.retryAfterMs !== undefined) this.retryAfterMs = details.retryAfterMs;
    if (details.unreachable === true) this.unreachable = true;
  }
}

/** Longest `Retry-After` taken from a provider, ms (a day): a larger or unparsable value is ignored. */
const MAX_RETRY_AFTER_MS = 86_400_000;

/**
 * The wait a provider asked for, ms, from its response headers (a `Headers` object as the
 * Anthropic and OpenAI SDKs attach to their APIError, or a plain record): `retry-after-ms`
 * (milliseconds, sent by OpenAI and Anthropic), else `retry-after` in seconds or as an HTTP date
 * (RFC 9110 §10.2.3). Undefined when absent, negative or unparsable. `now`: ms since the epoch.
 */
export function retryAfterFromHeaders(headers: unknown, now = Date.now()): number | undefined {
  if (headers === null || typeof headers !== "object") return undefined;
  const get = (name: string): string | undefined => {
    const h = headers as { get?: unknown } & Record<string, unknown>;
    const v = typeof h.get === "function" ? (h.get as (n: string) => unknown).call(headers, name) : h[name];
    return typeof v === "string" && v.trim() !== "" ? v.trim() : undefined;
  };
  const ok = (ms: number) => (Number.isFinite(ms) && ms >= 0 && ms <= MAX_RETRY_AFTER_MS ? Math.ceil(ms) : undefined);
  const ms = get("retry-after-ms");
  if (ms !== undefined && /^\d+(\.\d+)?$/.test(ms)) return ok(Number(ms));
  const after = get("retry-after");
  if (after === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(after)) return ok(Number(after) * 1000);
  const date = /[a-z]/i.test(after) ? Date.parse(after) : Number.NaN;
  return Number.isNaN(date) ? undefined : ok(Math.max(0, date - now));
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
  "Set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY, or run Ollama (OLLAMA_HOST, default 127.0.0.1:11434); " +
  "EXOCLAW_PROVIDER=anthropic|openai|gemini|ollama and EXOCLAW_MODEL choose explicitly, and " +
  "ANTHROPIC_BASE_URL / OPENAI_BASE_URL / GOOGLE_GEMINI_BASE_URL point the SDKs at another server.";

/** Where a provider failure is reported (see {@link toProviderError}). */
export interface ProviderErrorContext {
  /** Provider name, for the message. */
  provider: string;
  /** Where it was reached (base URL), for the message; user info and query are dropped. */
  endpoint: string;
  /**
   * Gets one warn line per failure (provider, status, request id) and, at debug, the error
   * body scrubbed of secrets. Default: nothing is logged.
   */
  logger?: Pick<Logger, "warn" | "debug" | "isLevelEnabled">;
  /** Known secret values scrubbed from the debug body; default the process registry. */
  secrets?: SecretRegistry;
}

/**
 * Error types that mean the credentials were refused although the HTTP status is not 401/403:
 * the Gemini API answers an unknown key with 400 `INVALID_ARGUMENT` and `ErrorInfo.reason`
 * `API_KEY_INVALID` (source: Gemini API "Troubleshooting", "API key not valid").
 */
const REJECTED_KEY_TYPES = new Set(["API_KEY_INVALID"]);

/** Request ids and error types are echoed only when they look like identifiers. */
const ID_LIKE = /^[A-Za-z0-9_.:-]{1,128}$/;
const TYPE_LIKE = /^[A-Za-z][A-Za-z0-9_]{0,63}$/;
/** Longest error body kept for the debug log, characters. */
const MAX_DETAIL_CHARS = 4000;

/** The provider's own error type (`api_error`, `invalid_request_error`, `model_not_found`) if the SDK parsed one. */
function errorType(err: unknown): string | undefined {
  const e = err as { type?: unknown; code?: unknown; error?: { type?: unknown; error?: { type?: unknown } } };
  const t = e.error?.error?.type ?? e.type ?? e.error?.type ?? (typeof e.code === "string" && !CONNECT_CODES.has(e.code) ? e.code : undefined);
  return typeof t === "string" && TYPE_LIKE.test(t) ? t : undefined;
}

/** Message and cause chain of an error, for the debug log (bounded). */
function errorDetail(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e && depth < 4; depth++) {
    const msg = errorMessage(e);
    if (msg && !parts.includes(msg)) parts.push(msg);
    e = (e as { cause?: unknown }).cause;
  }
  const text = parts.join(": caused by: ");
  return text.length > MAX_DETAIL_CHARS ? `${text.slice(0, MAX_DETAIL_CHARS)}…` : text;
}

/**
 * Maps any error thrown by an SDK onto a ProviderError whose message is fixed text: what failed
 * (unreachable, credentials rejected, HTTP status and the provider's error type, a broken
 * stream) and a request id — the provider's (`request-id` / `x-request-id` header, as the
 * Anthropic and OpenAI SDKs expose it in `requestID`) or a gateway-generated `gw_<16 hex>`.
 * The provider's error text never enters the message: bodies and proxies can quote the API key.
 * With `context.logger`, the failure is logged at warn (same request id) and the error text at
 * debug, after scrubbing every registered secret value and the well-known key formats.
 * Errors that already are RpcErrors (the adapters' own) and abort errors pass through unchanged.
 */
export function toProviderError(err: unknown, context: ProviderErrorContext): unknown {
  if (err instanceof RpcError) return err;
  if ((err as Error)?.name === "AbortError") return err;
  const { provider } = context;
  const secrets = context.secrets ?? processSecrets;
  const status = (err as { status?: unknown }).status ?? (err as { status_code?: unknown }).status_code;
  const code = causeCode(err);
  const sdkId = (err as { requestID?: unknown }).requestID;
  const requestId = typeof sdkId === "string" && ID_LIKE.test(sdkId) && secrets.scrub(sdkId) === sdkId ? sdkId : `gw_${randomBytes(8).toString("hex")}`;
  const type = errorType(err);
  const endpoint = secrets.scrub(redactUrl(context.endpoint).replace(/\/$/, ""));
  const retryAfterMs = retryAfterFromHeaders((err as { headers?: unknown }).headers);
  const ids = { requestId, ...(typeof status === "number" ? { status } : {}), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  let failure: ProviderError;
  if (code && CONNECT_CODES.has(code)) {
    failure = new ProviderError(
      ErrorCode.ProviderUnavailable,
      `provider ${provider} at ${endpoint} is unreachable (${code}); request id ${requestId}. ${CONFIGURE_HINT}`,
      { ...ids, unreachable: true },
    );
  } else if (status === 401 || status === 403 || (type !== undefined && REJECTED_KEY_TYPES.has(type))) {
    failure = new ProviderError(
      ErrorCode.ProviderUnavailable,
      `provider ${provider} rejected the credentials (HTTP ${status}); request id ${requestId}. ${CONFIGURE_HINT}`,
      ids,
    );
  } else if (typeof status === "number") {
    failure = new ProviderError(ErrorCode.ProviderError, `provider ${provider} failed (HTTP ${status}${type ? ` ${type}` : ""}); request id ${requestId}`, ids);
  } else {
    // No HTTP status: the connection failed, timed out, or the stream broke (an error event,
    // a cut). Only the SDK's error class name or the provider's error type is shown.
    const name = (err as Error)?.name;
    const what =
      name === "APIConnectionTimeoutError"
        ? "timed out"
        : name === "APIConnectionError"
          ? "connection failed"
          : type
            ? `error in the stream: ${type}`
            : typeof name === "string" && TYPE_LIKE.test(name)
              ? `no answer: ${name}`
              : "no answer";
    failure = new ProviderError(ErrorCode.ProviderError, `provider ${provider} failed (${what}); request id ${requestId}`, ids);
  }
  const logger = context.logger;
  if (logger !== undefined) {
    logger.warn({ provider, endpoint, status, type, code, requestId }, "model provider failed");
    if (logger.isLevelEnabled("debug")) {
      const detail = redactText(errorDetail(err), undefined, secrets).text;
      logger.debug({ provider, requestId, detail }, "model provider error detail (secrets scrubbed)");
    }
  }
  return failure;
}

/** The default message of {@link InterruptedTurnError} (stored in the replaced turn's `error` event). */
export const SUPERSEDED_MESSAGE = "turn interrupted: a newer message in this session replaced it (queue mode interrupt)";

/**
 * The rejection of a turn that a newer message in the same session aborted (agent queue mode
 * `interrupt`), or that such a message superseded while it was still queued. Code -32006
 * (aborted); an `error` event with the same code and message closes the turn in the session log.
 * Channels send no failure reply for it: the newer message gets the answer.
 */
export class InterruptedTurnError extends RpcError {
  readonly reason = "interrupted" satisfies FailureReason;

  constructor(
    readonly runId: string,
    message = SUPERSEDED_MESSAGE,
  ) {
    super(ErrorCode.Aborted, message);
    this.name = "InterruptedTurnError";
  }
}

/**
 * Why the gateway itself ended a model call or a turn that had not failed on its own: the
 * `reason` in the JSON-RPC error's `data`, so a caller can tell a timeout from an abort without
 * parsing the message.
 * - `idle_timeout` (-32000): the provider sent no stream event for `idle_timeout_ms`.
 * - `turn_timeout` (-32006): the turn ran longer than `turn_timeout_ms`.
 * - `client_gone` (-32006): the only client that could see the turn disconnected.
 */
export type GatewayStopReason = "idle_timeout" | "turn_timeout" | "client_gone";

/** A duration for a message: whole seconds as "60 s", anything else as "300 ms". */
export function formatDuration(ms: number): string {
  return ms >= 1000 && ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * A model call the provider stopped feeding: no stream event (or no response at all) for
 * `idleTimeoutMs` since the request was sent or since the last event. Code -32000 (a provider
 * failure); `data` is `{ reason: "idle_timeout", idleTimeoutMs }`. The message is fixed text
 * naming the provider and the limit.
 */
export class ProviderStallError extends ProviderError {
  override readonly reason = "idle_timeout" satisfies GatewayStopReason;

  constructor(
    readonly provider: string,
    /** The idle limit that passed, ms. */
    readonly idleTimeoutMs: number,
  ) {
    super(
      ErrorCode.ProviderError,
      `provider ${provider} stopped sending: no stream event for ${formatDuration(idleTimeoutMs)} (idle_timeout_ms)`,
      {},
      { reason: "idle_timeout", idleTimeoutMs },
    );
    this.name = "ProviderStallError";
  }
}

/**
 * A turn that outlived its agent's turn deadline (`turn_timeout_ms`: the whole turn, model calls,
 * tool calls and compaction included). Code -32006; `data` is `{ reason: "turn_timeout", turnTimeoutMs }`.
 * The runtime aborts the turn's signal with it, which cancels the running model or tool call.
 */
export class TurnTimeoutError extends RpcError {
  readonly reason = "turn_timeout" satisfies GatewayStopReason;

  constructor(
    /** The deadline that passed, ms after the turn started. */
    readonly turnTimeoutMs: number,
  ) {
    super(ErrorCode.Aborted, `turn stopped: the turn deadline of ${formatDuration(turnTimeoutMs)} (turn_timeout_ms) passed`, {
      reason: "turn_timeout",
      turnTimeoutMs,
    });
    this.name = "TurnTimeoutError";
  }
}

/**
 * The abort reason of a WebSocket request whose connection closed: a turn started by it (a
 * `chat.send` without `idempotencyKey`) is cancelled, since no one is left to see its answer.
 * Code -32006; `data` is `{ reason: "client_gone" }`.
 */
export class ClientGoneError extends RpcError {
  readonly reason = "client_gone" satisfies GatewayStopReason;

  constructor() {
    super(ErrorCode.Aborted, "turn aborted: the client that sent it disconnected", { reason: "client_gone" });
    this.name = "ClientGoneError";
  }
}

/** Who stopped a turn on request: a client's `chat.abort`, or the channel peer's `/stop` command. */
export type StoppedBy = "chat.abort" | "stop_command";

/**
 * The abort reason of a turn stopped on request ({@link StoppedBy}). Code -32006; `data` is
 * `{ reason: "stopped", by }`. Aborting the turn's signal with it cancels the running model
 * call (the provider sees the connection close) and the running tool calls (their plugin calls
 * get the signal); the turn is closed with an `error` event carrying the same code and message.
 */
export class TurnStoppedError extends RpcError {
  readonly reason = "stopped" satisfies FailureReason;

  constructor(readonly by: StoppedBy) {
    super(ErrorCode.Aborted, by === "chat.abort" ? "turn stopped by chat.abort" : "turn stopped by /stop", { reason: "stopped", by });
    this.name = "TurnStoppedError";
  }
}

/**
 * A turn whose model asked for the same tool call — same tool name, same input (compared as
 * canonical JSON, key order ignored) — `limit` times (the agent's `loop_limit`). The turn ends
 * without running that call; code -32002 (like the iteration limit); `data` is
 * `{ reason: "tool_loop", tool, repeats }`.
 */
export class ToolLoopError extends RpcError {
  readonly reason = "tool_loop" satisfies FailureReason;

  constructor(
    readonly tool: string,
    readonly repeats: number,
  ) {
    super(ErrorCode.MaxIterations, `turn stopped: the model asked for the same ${tool} call ${repeats} times in this turn (loop_limit)`, {
      reason: "tool_loop",
      tool,
      repeats,
    });
    this.name = "ToolLoopError";
  }
}

export type { FailureReason } from "../protocol/index.js";

/**
 * A failure of the agent runtime named by its {@link FailureReason}; its JSON-RPC code is the
 * reason's (`FailureCode`, protocol/errors.ts), so no caller picks a number. Consumers
 * classify it with the predicates below, never by its code or its text.
 */
export class AgentError extends RpcError {
  constructor(
    readonly reason: FailureReason,
    message: string,
    data?: unknown,
  ) {
    super(FailureCode[reason], message, data);
    this.name = "AgentError";
  }
}

/**
 * The answer to a repeated idempotency key whose turn failed: the original failure's code and
 * message, and the original run id. No events are emitted for it. `reason` is the original
 * error's when it failed in this process, else derived from the stored code ({@link reasonOfCode}):
 * a stored `error` event keeps `{code, message}` only.
 */
export class ReplayedTurnError extends RpcError {
  readonly reason: FailureReason;

  constructor(
    code: number,
    message: string,
    readonly runId: string,
    /** The session of the original turn (the gateway checks the caller may see it before answering). */
    readonly sessionKey: string,
    reason?: FailureReason,
  ) {
    super(code, message);
    this.name = "ReplayedTurnError";
    this.reason = reason ?? reasonOfCode(code);
  }
}

/**
 * Why `err` failed, as the agent's vocabulary names it: the error's own `reason` when it is one
 * of the agent's typed errors, else the reason its JSON-RPC code stands for (an RpcError thrown
 * with a bare code, a failure rebuilt from a stored `{code, message}`). Undefined for anything
 * that is not a JSON-RPC failure: a store error (StoreError, host/src/store/errors.ts), a bug.
 * The one classifier every consumer (channels, bus consumer, reply outbox) goes through.
 */
export function failureReason(err: unknown): FailureReason | undefined {
  if (!(err instanceof RpcError)) return undefined;
  const own = (err as { reason?: unknown }).reason;
  return isFailureReason(own) ? own : reasonOfCode(err.code);
}

/**
 * Refusals of a message before it was journaled that may pass if it comes again later: the
 * channels answer the platform 503 so it redelivers (channels/intake.ts, admission).
 */
const RETRIED_ON_ADMISSION: ReadonlySet<FailureReason> = new Set<FailureReason>(["session_busy", "shutting_down"]);

/**
 * Turn failures a fresh attempt may not repeat: the bus consumer runs the message again under
 * its next attempt key, or naks it for redelivery with backoff (channels/bus.ts). Provider
 * trouble passes; a full queue drains; another gateway takes over from one shutting down; an
 * internal error may be a store in an odd state (an orphaned key claim expires).
 */
const RETRIED_AS_TURN: ReadonlySet<FailureReason> = new Set<FailureReason>([
  "provider_error",
  "idle_timeout",
  "provider_unavailable",
  "session_busy",
  "shutting_down",
  "internal",
  "orphan_claim",
]);

/** Reasons of a turn the gateway stopped (JSON-RPC -32006): not a failure of the message itself. */
const ABORTS: ReadonlySet<FailureReason> = new Set<FailureReason>(["aborted", "interrupted", "turn_timeout", "client_gone", "stopped"]);

/** Whether `err` answers a repeated idempotency key with the stored failure of its first turn. */
export function isReplay(err: unknown): err is ReplayedTurnError {
  return err instanceof ReplayedTurnError;
}

/** Whether a newer message of the session replaced the turn (queue mode `interrupt`); the newer one gets the answer. */
export function isInterrupted(err: unknown): err is InterruptedTurnError {
  return err instanceof InterruptedTurnError;
}

/**
 * Whether a message the runtime refused before journaling it may pass when it comes again
 * (session busy, shutting down, or not a runtime failure at all: the store could not journal it).
 */
export function isTransientRefusal(err: unknown): boolean {
  const reason = failureReason(err);
  return reason === undefined || RETRIED_ON_ADMISSION.has(reason);
}

/**
 * Whether a failed turn (or a refusal) is worth another attempt of the same message (see
 * RETRIED_AS_TURN; anything that is not a runtime failure, e.g. the store, counts as transient).
 */
export function isTransient(err: unknown): boolean {
  const reason = failureReason(err);
  return reason === undefined || RETRIED_AS_TURN.has(reason);
}

/** Whether the gateway stopped the turn (abort, interrupt, turn deadline, client gone, `chat.abort` / `/stop`) rather than the turn failing. */
export function isTurnAborted(err: unknown): boolean {
  const reason = failureReason(err);
  return reason !== undefined && ABORTS.has(reason);
}

/** Whether the session was busy: its queue full, the message dropped for a newer one, or its turn open and not running here. */
export function isSessionBusy(err: unknown): boolean {
  return failureReason(err) === "session_busy";
}

/**
 * Whether the store reported the message's key taken but holds no message under it: a claim a
 * process left when it died between claiming the key and journaling the message.
 */
export function isOrphanClaim(err: unknown): boolean {
  return failureReason(err) === "orphan_claim";
}
