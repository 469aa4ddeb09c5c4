/**
 * The telemetry sink the lower layers report to (docs/architecture.md, "Health, readiness, metrics and traces"). Every method is
 * called on a hot path (a turn, a plugin call, a WebSocket frame's connection) and must be cheap
 * and never throw. Labels are bounded sets only: agent ids, provider and model names from the
 * config, plugin names, failure kinds, configured channel names, HTTP statuses; never a session
 * key, a peer, a run id or anything a client chooses.
 */

/** Which kind of plugin export a call ran: a tool (`call`) or a channel export (`parse`, `send`, `poll`). */
export type PluginCallKind = "tool" | "channel";

/**
 * How a turn ended: `ok`, or its failure reason (the protocol's `FailureReason` vocabulary, e.g.
 * `provider_error`, `turn_timeout`, `interrupted`), or `error` for an unclassified failure.
 */
export type TurnOutcomeLabel = string;

/** One model call, started by {@link TurnTelemetry.providerCall}. */
export interface ProviderCallTelemetry {
  /**
   * Ends the call (once): its duration is measured from `providerCall` to here.
   * @param result `ok` false when the call threw; tokens as the provider reported them (0 when unknown)
   */
  end(result: { ok: boolean; inputTokens: number; outputTokens: number }): void;
}

/** One tool call of a turn (a trace span; the counters come from the plugin host). */
export interface ToolCallTelemetry {
  /** Ends the call (once). `isError`: the tool result is an error (or the call threw). */
  end(isError: boolean): void;
}

/** One turn, started by {@link Telemetry.turn}. */
export interface TurnTelemetry {
  /** A model call of this turn (also compaction's). */
  providerCall(provider: string, model: string): ProviderCallTelemetry;
  /** A tool call of this turn. */
  toolCall(tool: string): ToolCallTelemetry;
  /** Ends the turn (once): counts it by agent and outcome, observes its duration. */
  end(outcome: TurnOutcomeLabel): void;
}

/** The sink. {@link NOOP_TELEMETRY} when metrics are off; the Prometheus one (prometheus.ts) by default. */
export interface Telemetry {
  /** False for the no-op sink: callers may skip building what only telemetry would use. */
  readonly enabled: boolean;
  /** A turn of `agent` starts now. */
  turn(agent: string): TurnTelemetry;
  /** A plugin call finished (any outcome but the caller's abort), after `durationMs` ms in the sandbox. */
  pluginCall(plugin: string, kind: PluginCallKind, durationMs: number): void;
  /**
   * A plugin call produced no usable result. `failure`: the sandbox's kind (`timeout`, `memory`,
   * `trap`, `plugin_error`, `output_too_large`, `busy`, `closed`) or `malformed` (unusable output).
   */
  pluginCallFailed(plugin: string, kind: PluginCallKind, failure: string): void;
  /** A sandbox instance of `plugin` was stopped and is replaced (after a timeout, trap, out of memory, abort). */
  sandboxRestart(plugin: string, reason: string): void;
  /**
   * The provider resilience layer switched (host/src/agent/resilience): `kind` is `retry`, `key`,
   * `fallback`, `breaker_open` or `breaker_skip`; `provider` the provider switched away from
   * (`fallback`: switched to); `reason` a bounded label (`rate_limited`, `server_error`, …).
   */
  providerSwitch(kind: string, provider: string, reason: string): void;
  /** A webhook request was answered. `channel`: a configured channel's name, or `unknown`. */
  webhookRequest(channel: string, status: number): void;
  /** A WebSocket connection opened (+1) or closed (-1). */
  connections(delta: 1 | -1): void;
  /**
   * A budget event of `agent` (agent/budget/guard.ts): `warning` (a counter passed `[budgets]
   * warn_at`), `exceeded` (a model call refused), `downgraded` (a call moved to the cheaper model).
   * Optional so sinks written before budgets stay valid.
   */
  budgetEvent?(agent: string, kind: "warning" | "exceeded" | "downgraded"): void;
  /**
   * A scheduled run ended (host/src/automation): `kind` is `cron`, `heartbeat` or `reminder`;
   * `outcome` one of `delivered`, `silent` (the model answered NO_REPLY), `ran` (no target),
   * `skipped`, `claimed_elsewhere` (another gateway ran the slot), `failed`. Optional like `budgetEvent`.
   */
  scheduledRun?(kind: string, outcome: string): void;
  /** An MCP tool call to `server` (a configured `[mcp.servers.<name>]`) finished after `durationMs` ms; `isError`: a tool error. Optional. */
  mcpCall?(server: string, durationMs: number, isError: boolean): void;
  /** MCP server `server` was restarted after it died or failed to start. Optional. */
  mcpRestart?(server: string): void;
  /**
   * A lifecycle hook call of `plugin` finished after `durationMs` ms (agent/hooks/runner.ts):
   * `outcome` is `allow`, `deny`, `rewrite`, `timeout` or `error` (`HookOutcome`). Skipped
   * calls (plugin without that hook) are not reported. Optional.
   */
  hookCall?(hook: string, plugin: string, outcome: string, durationMs: number): void;
}
