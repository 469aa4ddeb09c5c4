/**
 * The gateway's Prometheus metrics (prom-client): the metric objects, their pre-bound label
 * children, and the values read at scrape time. Loaded only when `[metrics] enabled` (see
 * `loadPrometheus` in index.ts), so a gateway with metrics off never loads prom-client.
 * Every metric is listed in docs/operations.md ("Metrics").
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** Seconds. Turns include every model and tool call: from 50 ms to the 10 min turn deadline. */
const TURN_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
/** Seconds. One model call (streamed to its end). */
const PROVIDER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds. One plugin call in the sandbox (the default time limit is 5 s). */
const PLUGIN_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5];

/** Values read when Prometheus scrapes (each is called once per scrape and must not throw). */
export interface ScrapeSources {
  /** Messages running or queued for a turn (`AgentRuntime.activeTurns`). */
  queueDepth?: () => number;
  /** The NATS bus, when configured: connection, spool, and per consumer its held messages and dead letters. */
  bus?: () => BusScrape | null;
}

/** What {@link ScrapeSources.bus} reports. */
export interface BusScrape {
  connected: boolean;
  /** Messages in the disk spool waiting for NATS (publish side lag). */
  spooled: number;
  /** Per consumer (`<stream>/<durable>`): messages held in this process, dead letters so far (a counter of this process). */
  consumers: { consumer: string; held: number; deadLettered: number }[];
}

/** The metric objects of one gateway, with pre-bound children for the hot label sets. */
export class PromMetrics {
  readonly registry = new Registry();
  private readonly turns: Counter<"agent" | "outcome">;
  private readonly turnSeconds: Histogram<"agent">;
  private readonly providerSeconds: Histogram<"provider" | "model" | "outcome">;
  private readonly tokens: Counter<"agent" | "model" | "direction">;
  private readonly pluginCalls: Counter<"plugin" | "kind">;
  private readonly pluginSeconds: Histogram<"plugin" | "kind">;
  private readonly pluginFailures: Counter<"plugin" | "kind" | "failure">;
  private readonly restarts: Counter<"plugin" | "reason">;
  private readonly webhooks: Counter<"channel" | "status">;
  private readonly wsConnections: Gauge;
  /** Bound children by joined label values (`labels()` hashes its arguments on every call). */
  private readonly bound = new Map<string, unknown>();
  private sources: ScrapeSources = {};

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.turns = new Counter({
      name: "exoclaw_turns_total",
      help: "Turns finished, by agent and outcome (ok or the failure reason).",
      labelNames: ["agent", "outcome"],
      registers,
    });
    this.turnSeconds = new Histogram({
      name: "exoclaw_turn_duration_seconds",
      help: "Turn duration, from start to outcome, seconds.",
      labelNames: ["agent"],
      buckets: TURN_BUCKETS,
      registers,
    });
    this.providerSeconds = new Histogram({
      name: "exoclaw_provider_call_duration_seconds",
      help: "Model call duration (streamed to its end), seconds, by provider, model and outcome (ok, error).",
      labelNames: ["provider", "model", "outcome"],
      buckets: PROVIDER_BUCKETS,
      registers,
    });
    this.tokens = new Counter({
      name: "exoclaw_tokens_total",
      help: "Model tokens, by agent, model and direction (input, output).",
      labelNames: ["agent", "model", "direction"],
      registers,
    });
    this.pluginCalls = new Counter({
      name: "exoclaw_plugin_calls_total",
      help: "Plugin calls finished (callers' aborts excluded), by plugin and kind (tool, channel).",
      labelNames: ["plugin", "kind"],
      registers,
    });
    this.pluginSeconds = new Histogram({
      name: "exoclaw_plugin_call_duration_seconds",
      help: "Plugin call duration in the sandbox, seconds.",
      labelNames: ["plugin", "kind"],
      buckets: PLUGIN_BUCKETS,
      registers,
    });
    this.pluginFailures = new Counter({
      name: "exoclaw_plugin_call_failures_total",
      help: "Plugin calls without a usable result, by plugin, kind (tool, channel) and failure (timeout, memory, trap, plugin_error, output_too_large, busy, closed, malformed).",
      labelNames: ["plugin", "kind", "failure"],
      registers,
    });
    this.restarts = new Counter({
      name: "exoclaw_sandbox_restarts_total",
      help: "Sandbox instances stopped and replaced, by plugin and reason.",
      labelNames: ["plugin", "reason"],
      registers,
    });
    this.webhooks = new Counter({
      name: "exoclaw_webhook_requests_total",
      help: "Webhook requests answered, by channel (unknown for unconfigured names) and HTTP status.",
      labelNames: ["channel", "status"],
      registers,
    });
    this.wsConnections = new Gauge({ name: "exoclaw_websocket_connections", help: "Open WebSocket connections.", registers });
    const self = this;
    new Gauge({
      name: "exoclaw_turn_queue_depth",
      help: "Messages running or queued for a turn (each message folded into a turn counts).",
      registers,
      collect() {
        const depth = self.sources.queueDepth;
        if (depth) this.set(depth());
      },
    });
    const busScrape = (): BusScrape | null => self.sources.bus?.() ?? null;
    let lastBus: BusScrape | null = null;
    new Gauge({
      name: "exoclaw_bus_connected",
      help: "1 while the NATS bus is connected (absent without [bus]).",
      registers,
      collect() {
        // One read of the bus per scrape, shared by the bus metrics below (collected in registration order).
        lastBus = busScrape();
        if (lastBus) this.set(lastBus.connected ? 1 : 0);
      },
    });
    new Gauge({
      name: "exoclaw_bus_spooled_messages",
      help: "Messages in the disk spool waiting for NATS (publish lag).",
      registers,
      collect() {
        if (lastBus) this.set(lastBus.spooled);
      },
    });
    new Gauge({
      name: "exoclaw_bus_held_messages",
      help: "Messages a consumer of this process holds (running, waiting for retry, or queued behind their subject): consumer lag.",
      labelNames: ["consumer"],
      registers,
      collect() {
        for (const c of lastBus?.consumers ?? []) this.set({ consumer: c.consumer }, c.held);
      },
    });
    const deadSeen = new Map<string, number>();
    new Counter({
      name: "exoclaw_bus_dead_letters_total",
      help: "Messages this process dead-lettered, by consumer.",
      labelNames: ["consumer"],
      registers,
      collect() {
        // The consumers count themselves; the counter follows their totals (a new consumer starts at 0).
        for (const c of lastBus?.consumers ?? []) {
          const seen = deadSeen.get(c.consumer) ?? 0;
          if (c.deadLettered > seen) this.inc({ consumer: c.consumer }, c.deadLettered - seen);
          else if (!deadSeen.has(c.consumer)) this.inc({ consumer: c.consumer }, 0);
          deadSeen.set(c.consumer, Math.max(seen, c.deadLettered));
        }
      },
    });
  }

  /** Sets what is read at scrape time (the parts exist only once the gateway started). */
  setSources(sources: ScrapeSources): void {
    this.sources = sources;
  }

  /** The text exposition (`text/plain; version=0.0.4`) and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** The child of `metric` for `values`, bound once. */
  private child<T>(key: string, make: () => T): T {
    let c = this.bound.get(key) as T | undefined;
    if (c === undefined) {
      c = make();
      this.bound.set(key, c);
    }
    return c;
  }

  turnEnded(agent: string, outcome: string, seconds: number): void {
    this.child(`t\0${agent}\0${outcome}`, () => this.turns.labels(agent, outcome)).inc();
    this.child(`ts\0${agent}`, () => this.turnSeconds.labels(agent)).observe(seconds);
  }

  providerCallEnded(agent: string, provider: string, model: string, ok: boolean, seconds: number, inputTokens: number, outputTokens: number): void {
    const outcome = ok ? "ok" : "error";
    this.child(`p\0${provider}\0${model}\0${outcome}`, () => this.providerSeconds.labels(provider, model, outcome)).observe(seconds);
    if (inputTokens > 0) this.child(`ti\0${agent}\0${model}`, () => this.tokens.labels(agent, model, "input")).inc(inputTokens);
    if (outputTokens > 0) this.child(`to\0${agent}\0${model}`, () => this.tokens.labels(agent, model, "output")).inc(outputTokens);
  }

  pluginCall(plugin: string, kind: string, seconds: number): void {
    this.child(`c\0${plugin}\0${kind}`, () => this.pluginCalls.labels(plugin, kind)).inc();
    this.child(`cs\0${plugin}\0${kind}`, () => this.pluginSeconds.labels(plugin, kind)).observe(seconds);
  }

  pluginCallFailed(plugin: string, kind: string, failure: string): void {
    this.pluginFailures.labels(plugin, kind, failure).inc();
  }

  sandboxRestart(plugin: string, reason: string): void {
    this.restarts.labels(plugin, reason).inc();
  }

  webhookRequest(channel: string, status: number): void {
    this.child(`w\0${channel}\0${status}`, () => this.webhooks.labels(channel, String(status))).inc();
  }

  connections(delta: 1 | -1): void {
    this.wsConnections.inc(delta);
  }
}
