/**
 * The recording sink: the {@link Telemetry} the gateway hands its parts when metrics or traces are
 * on. It times turns and calls (`performance.now()`, ms) and passes them to the Prometheus metrics
 * and/or the tracer; each part is optional.
 */
import type { SpanAttributes, TraceSpan, Tracing } from "./otel.js";
import type { MetricsRecorder } from "./deferred.js";
import { NOOP_TELEMETRY } from "./noop.js";
import type { PluginCallKind, ProviderCallTelemetry, Telemetry, ToolCallTelemetry, TurnTelemetry } from "./types.js";

/** What {@link createTelemetry} records into. */
export interface TelemetryTargets {
  /** The Prometheus metrics (`[metrics] enabled`). */
  metrics?: MetricsRecorder;
  /** OpenTelemetry traces (`OTEL_EXPORTER_OTLP_ENDPOINT`). */
  tracing?: Tracing;
}

const NO_SPAN: TraceSpan = { end() {} };

class Turn implements TurnTelemetry {
  private readonly t0 = performance.now();
  private readonly span: TraceSpan;
  private ended = false;

  constructor(
    private readonly agent: string,
    private readonly targets: TelemetryTargets,
  ) {
    this.span = targets.tracing?.start("exoclaw.turn", { "exoclaw.agent": agent }) ?? NO_SPAN;
  }

  providerCall(provider: string, model: string): ProviderCallTelemetry {
    const t0 = performance.now();
    const { metrics, tracing } = this.targets;
    const span =
      tracing?.start("exoclaw.provider_call", { "exoclaw.agent": this.agent, "gen_ai.system": provider, "gen_ai.request.model": model }, this.span) ?? NO_SPAN;
    let done = false;
    return {
      end: ({ ok, inputTokens, outputTokens }) => {
        if (done) return;
        done = true;
        metrics?.providerCallEnded(this.agent, provider, model, ok, (performance.now() - t0) / 1000, inputTokens, outputTokens);
        const attrs: SpanAttributes = { "gen_ai.usage.input_tokens": inputTokens, "gen_ai.usage.output_tokens": outputTokens };
        span.end(attrs, ok ? undefined : "model call failed");
      },
    };
  }

  toolCall(tool: string): ToolCallTelemetry {
    const span = this.targets.tracing?.start("exoclaw.tool_call", { "exoclaw.agent": this.agent, "exoclaw.tool": tool }, this.span);
    if (span === undefined) return NO_SPAN_CALL;
    let done = false;
    return {
      end: (isError) => {
        if (done) return;
        done = true;
        span.end(undefined, isError ? "tool result is an error" : undefined);
      },
    };
  }

  end(outcome: string): void {
    if (this.ended) return;
    this.ended = true;
    this.targets.metrics?.turnEnded(this.agent, outcome, (performance.now() - this.t0) / 1000);
    this.span.end({ "exoclaw.outcome": outcome }, outcome === "ok" ? undefined : outcome);
  }
}

const NO_SPAN_CALL: ToolCallTelemetry = { end() {} };

/** The sink recording into `targets`; {@link NOOP_TELEMETRY} when both are absent. */
export function createTelemetry(targets: TelemetryTargets): Telemetry {
  const { metrics } = targets;
  if (metrics === undefined && targets.tracing === undefined) return NOOP_TELEMETRY;
  return {
    enabled: true,
    turn: (agent) => new Turn(agent, targets),
    pluginCall: (plugin: string, kind: PluginCallKind, durationMs: number) => metrics?.pluginCall(plugin, kind, durationMs / 1000),
    pluginCallFailed: (plugin, kind, failure) => metrics?.pluginCallFailed(plugin, kind, failure),
    sandboxRestart: (plugin, reason) => metrics?.sandboxRestart(plugin, reason),
    providerSwitch: (kind, provider, reason) => metrics?.providerSwitch(kind, provider, reason),
    webhookRequest: (channel, status) => metrics?.webhookRequest(channel, status),
    connections: (delta) => metrics?.connections(delta),
    budgetEvent: (agent, kind) => metrics?.budgetEvent(agent, kind),
    scheduledRun: (kind, outcome) => metrics?.scheduledRun(kind, outcome),
    mcpCall: (server, durationMs, isError) => metrics?.mcpCall(server, durationMs / 1000, isError),
    mcpRestart: (server) => metrics?.mcpRestart(server),
    hookCall: (hook, plugin, outcome, durationMs) => metrics?.hookCall(hook, plugin, outcome, durationMs / 1000),
  };
}
