/**
 * Telemetry: the sink the lower layers report turns, model calls, plugin calls, webhooks and
 * connections to (types.ts), a no-op default, the recording sink (sink.ts), and lazy loaders for
 * the Prometheus metrics (prom-client) and OpenTelemetry traces, so that neither package is
 * loaded unless it is used. Sits just above `log` in the import order: every layer may report.
 */
export type { Telemetry, TurnTelemetry, ProviderCallTelemetry, ToolCallTelemetry, PluginCallKind, TurnOutcomeLabel } from "./types.js";
export { NOOP_TELEMETRY } from "./noop.js";
export { createTelemetry, type TelemetryTargets } from "./sink.js";
export { deferMetrics, DEFERRED_QUEUE_LIMIT, type DeferredMetrics, type MetricsRecorder } from "./deferred.js";
export type { PromMetrics, ScrapeSources, BusScrape } from "./prometheus.js";
export { tracingRequested, startTracing, type Tracing, type TraceSpan } from "./otel.js";

/** Loads prom-client and the gateway's metric definitions (prometheus.ts). */
export const loadPrometheus = (): Promise<typeof import("./prometheus.js")> => import("./prometheus.js");
