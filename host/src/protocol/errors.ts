/**
 * JSON-RPC 2.0 error codes used by wire protocol v1 (see docs/protocol.md).
 * -32700..-32603 are the standard codes of the JSON-RPC 2.0 specification; -32000..-32099 is the
 * range the specification reserves for implementation-defined server errors.
 */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  InternalError: -32603,
  /** The LLM provider failed (HTTP error, cut stream, `error` event). */
  ProviderError: -32000,
  /** No provider is configured or reachable. */
  ProviderUnavailable: -32001,
  /** The turn reached the agent's iteration limit. */
  MaxIterations: -32002,
  /** The frame is larger than the gateway's frame limit. */
  FrameTooLarge: -32003,
  /** The session's queue of waiting turns is full. */
  SessionBusy: -32004,
  /** The gateway is shutting down and takes no new turns. */
  ShuttingDown: -32005,
  /** The turn was aborted (shutdown, client gone, turn deadline, `chat.abort`, a channel peer's `/stop`). */
  Aborted: -32006,
  /** `plugin.load` / `plugin.unload` failed: the file is not a loadable plugin, or no such plugin is loaded. */
  PluginError: -32007,
  /**
   * The connection's identity lacks the scope the method (or its target session/channel) needs;
   * nothing was run. `data.scope` names the missing scope.
   */
  Forbidden: -32010,
  /**
   * A model call would take a budget (`[budgets]`, `[agents.budget]`) past its limit: the turn
   * ends before that call. `data` names `scope` (gateway, agent, conversation), `window`
   * (session, day, month) and `unit` (usd, tokens), never amounts.
   */
  BudgetExceeded: -32011,
} as const;

export type ErrorCodeValue = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error that maps onto a JSON-RPC error object. Throw it from a method handler. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data?: unknown,
  ) {
    super(message);
    this.name = "RpcError";
  }
}

/**
 * The JSON-RPC code of each failure reason of the agent's error vocabulary
 * (`FailureReason`, host/src/agent/errors.ts; the table of who retries which is in
 * docs/reliability.md, "Errors and retries"): the one place a reason becomes a number on the
 * wire. Several reasons share a code (the wire keeps the codes of protocol v1; `data.reason`
 * tells some of them apart, see docs/protocol.md).
 */
export const FailureCode = {
  parse_error: ErrorCode.ParseError,
  invalid_request: ErrorCode.InvalidRequest,
  method_not_found: ErrorCode.MethodNotFound,
  invalid_params: ErrorCode.InvalidParams,
  /** A bug or a store in an odd state. */
  internal: ErrorCode.InternalError,
  /** The store reported a key taken but holds no message under it (a claim a dead process left). */
  orphan_claim: ErrorCode.InternalError,
  provider_error: ErrorCode.ProviderError,
  /** The provider sent no stream event for `idle_timeout_ms`. */
  idle_timeout: ErrorCode.ProviderError,
  provider_unavailable: ErrorCode.ProviderUnavailable,
  max_iterations: ErrorCode.MaxIterations,
  /** The model asked for the same tool call (same name, same input) `loop_limit` times in one turn. */
  tool_loop: ErrorCode.MaxIterations,
  frame_too_large: ErrorCode.FrameTooLarge,
  /** The session's queue is full, a queued message was dropped for a newer one, or the turn is open elsewhere. */
  session_busy: ErrorCode.SessionBusy,
  shutting_down: ErrorCode.ShuttingDown,
  /** Aborted: shutdown, crash recovery, a dead gateway's turn. */
  aborted: ErrorCode.Aborted,
  /** A newer message of the session replaced the turn (queue mode `interrupt`). */
  interrupted: ErrorCode.Aborted,
  turn_timeout: ErrorCode.Aborted,
  client_gone: ErrorCode.Aborted,
  /** A client (`chat.abort`) or the channel peer (`/stop`) stopped the turn. */
  stopped: ErrorCode.Aborted,
  plugin_error: ErrorCode.PluginError,
  forbidden: ErrorCode.Forbidden,
  /** A spend or token budget is used up (or a USD budget meets a model without a price). */
  budget_exceeded: ErrorCode.BudgetExceeded,
  /** A code this table does not know (e.g. from a newer peer): never retried. */
  unknown: ErrorCode.InternalError,
} as const satisfies Record<string, ErrorCodeValue>;

/** A failure reason: why a request or a turn failed, independent of its wire code and wording. */
export type FailureReason = keyof typeof FailureCode;

/**
 * The reason a bare code stands for, when nothing finer is known: a failure rebuilt from its
 * wire or stored form (`{code, message}`: a replayed turn, a recovered one). Each code maps to
 * its first, most general reason (-32006 is `aborted`, -32603 `internal`); an unknown code is
 * `unknown`.
 */
export function reasonOfCode(code: number): FailureReason {
  return CODE_REASON.get(code) ?? "unknown";
}

const CODE_REASON = new Map<number, FailureReason>();
for (const [reason, code] of Object.entries(FailureCode) as [FailureReason, number][]) if (!CODE_REASON.has(code)) CODE_REASON.set(code, reason);

/** Whether `value` is one of the {@link FailureReason}s. */
export function isFailureReason(value: unknown): value is FailureReason {
  return typeof value === "string" && Object.hasOwn(FailureCode, value);
}
