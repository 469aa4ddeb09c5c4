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
  /** The turn was aborted (shutdown or client gone). */
  Aborted: -32006,
  /** `plugin.load` / `plugin.unload` failed: the file is not a loadable plugin, or no such plugin is loaded. */
  PluginError: -32007,
  /**
   * The connection's identity lacks the scope the method (or its target session/channel) needs;
   * nothing was run. `data.scope` names the missing scope.
   */
  Forbidden: -32010,
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
