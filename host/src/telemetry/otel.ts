/**
 * OpenTelemetry traces, on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `..._TRACES_ENDPOINT`) is set:
 * a span per turn (`exoclaw.turn`), per model call (`exoclaw.provider_call`) and per tool call
 * (`exoclaw.tool_call`), the calls children of their turn, exported over OTLP/HTTP (protobuf) in
 * batches by the official SDK. The `@opentelemetry/*` packages are imported here only, with
 * dynamic `import()`, when tracing is on: a default start-up never loads them.
 */
import type { Span, Tracer } from "@opentelemetry/api";
import { VERSION } from "../version.js";

/** Span attributes: bounded values only (agent, provider, model, tool names; token counts; outcomes). */
export type SpanAttributes = Record<string, string | number | boolean>;

/** One open span. */
export interface TraceSpan {
  /** Ends the span (once), with `error` as its error status message when the work failed. */
  end(attributes?: SpanAttributes, error?: string): void;
}

/** The tracer the telemetry sink calls. */
export interface Tracing {
  /** Opens a span now; a child of `parent` when given. */
  start(name: string, attributes: SpanAttributes, parent?: TraceSpan): TraceSpan;
  /** Exports the spans still buffered and stops the exporter (bounded by the SDK's export timeout). */
  shutdown(): Promise<void>;
}

/** Whether the environment asks for traces (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, and `OTEL_SDK_DISABLED` not `true`). */
export function tracingRequested(env: NodeJS.ProcessEnv): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return false;
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim());
}

/** The wrapper that keeps the SDK's span beside its context (a child needs the parent's context). */
class OtelSpan implements TraceSpan {
  constructor(
    readonly span: Span,
    private readonly codeError: number,
  ) {}
  end(attributes?: SpanAttributes, error?: string): void {
    if (attributes) this.span.setAttributes(attributes);
    if (error !== undefined) this.span.setStatus({ code: this.codeError, message: error });
    this.span.end();
  }
}

/**
 * Starts the OTLP/HTTP trace exporter. The exporter reads the endpoint, headers and timeout from
 * the standard `OTEL_EXPORTER_OTLP_*` variables itself (the spec's names; `/v1/traces` is appended
 * to `OTEL_EXPORTER_OTLP_ENDPOINT`). Service name `exoclaw` unless `OTEL_SERVICE_NAME` is set.
 * @throws Error when the OpenTelemetry packages cannot be loaded
 */
export async function startTracing(env: NodeJS.ProcessEnv): Promise<Tracing> {
  const [api, sdk, exporterModule, resources] = await Promise.all([
    import("@opentelemetry/api"),
    import("@opentelemetry/sdk-trace-base"),
    import("@opentelemetry/exporter-trace-otlp-http"),
    import("@opentelemetry/resources"),
  ]);
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({ "service.name": env.OTEL_SERVICE_NAME?.trim() || "exoclaw", "service.version": VERSION }),
    spanProcessors: [new sdk.BatchSpanProcessor(new exporterModule.OTLPTraceExporter())],
  });
  const tracer: Tracer = provider.getTracer("exoclaw", VERSION);
  const codeError = api.SpanStatusCode.ERROR;
  const root = api.ROOT_CONTEXT;
  return {
    start(name, attributes, parent) {
      const context = parent instanceof OtelSpan ? api.trace.setSpan(root, parent.span) : root;
      return new OtelSpan(tracer.startSpan(name, { attributes }, context), codeError);
    },
    shutdown: () => provider.shutdown(),
  };
}
