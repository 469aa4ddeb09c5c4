/**
 * The gateway's Prometheus metrics (prom-client's registry and text format): the hot-path
 * counters and histograms as plain numbers (HotMetric), the rest as prom-client metrics, and the
 * values read at scrape time. Loaded only when `[metrics] enabled` (see
 * `loadPrometheus` in index.ts), so a gateway with metrics off never loads prom-client.
 * Every metric is listed in docs/architecture.md ("Health, readiness, metrics and traces").
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

/** One labelled series of a {@link HotMetric}. */
interface Series {
  labels: Record<string, string>;
  value: number;
  /** Histogram only: observations per bucket (not cumulative), the last one +Inf. */
  counts?: number[];
}

/**
 * A counter or histogram kept as plain numbers on the hot path and handed to prom-client's
 * registry, which formats it at scrape time (the registry reads `get()`, as it does for its own
 * metrics). prom-client's own `labels()` children validate and hash their labels on every
 * `inc`/`observe`; here a series is found once per label set and then only added to.
 */
class HotMetric {
  private readonly all = new Map<string, Series>();
  readonly aggregator = "sum";

  constructor(
    registry: Registry,
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "histogram",
    private readonly labelNames: readonly string[],
    private readonly buckets: readonly number[] = [],
  ) {
    // The registry takes any object with name, help, type and get(); its typings name only its own classes.
    registry.registerMetric(this as never);
  }

  /** The series of these label values (in `labelNames` order), created at 0 on first use. */
  series(...values: string[]): Series {
    const key = values.length === 1 ? values[0]! : values.join("\u0000");
    let s = this.all.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      s = this.type === "histogram" ? { labels, value: 0, counts: new Array<number>(this.buckets.length + 1).fill(0) } : { labels, value: 0 };
      this.all.set(key, s);
    }
    return s;
  }

  /** Adds `v` to a histogram series: its bucket, the sum (`value`) and the count. */
  observe(s: Series, v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    s.counts![i]!++;
    s.value += v;
  }

  reset(): void {
    this.all.clear();
  }

  /** What prom-client's registry formats: counters one value per series; histograms cumulative `_bucket`s, `_sum`, `_count`. */
  get(): {
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: { labels: Record<string, string | number>; value: number; metricName?: string }[];
  } {
    const values: { labels: Record<string, string | number>; value: number; metricName?: string }[] = [];
    for (const s of this.all.values()) {
      if (this.type === "counter") {
        values.push({ labels: s.labels, value: s.value });
        continue;
      }
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts![i]!;
        values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      cumulative += s.counts![this.buckets.length]!;
      values.push({ labels: { ...s.labels, le: "+Inf" }, value: cumulative, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.value, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: cumulative, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** The metric objects of one gateway: the hot ones as {@link HotMetric}s, the rest prom-client's own. */
export class PromMetrics {
  readonly registry = new Registry();
  private readonly turns: HotMetric;
  private readonly turnSeconds: HotMetric;
  private readonly providerSeconds: HotMetric;
  private readonly tokens: HotMetric;
  private readonly pluginCalls: HotMetric;
  private readonly pluginSeconds: HotMetric;
  private readonly pluginFailures: Counter<"plugin" | "kind" | "failure">;
  private readonly restarts: Counter<"plugin" | "reason">;
  private readonly switches: Counter<"kind" | "provider" | "reason">;
  private readonly webhooks: HotMetric;
  private readonly wsConnections: Gauge;
  private readonly budgetEvents: Counter<"agent" | "kind">;
  private readonly scheduledRuns: Counter<"kind" | "outcome">;
  private readonly mcpCalls: Counter<"server" | "outcome">;
  private readonly mcpSeconds: Histogram<"server">;
  private readonly mcpRestarts: Counter<"server">;
  private readonly hookCalls: HotMetric;
  private readonly hookSeconds: HotMetric;
  private sources: ScrapeSources = {};

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const r = this.registry;
    this.turns = new HotMetric(r, "exoclaw_turns_total", "Turns finished, by agent and outcome (ok or the failure reason).", "counter", ["agent", "outcome"]);
    this.turnSeconds = new HotMetric(
      r,
      "exoclaw_turn_duration_seconds",
      "Turn duration, from start to outcome, seconds.",
      "histogram",
      ["agent"],
      TURN_BUCKETS,
    );
    this.providerSeconds = new HotMetric(
      r,
      "exoclaw_provider_call_duration_seconds",
      "Model call duration (streamed to its end), seconds, by provider, model and outcome (ok, error).",
      "histogram",
      ["provider", "model", "outcome"],
      PROVIDER_BUCKETS,
    );
    this.tokens = new HotMetric(r, "exoclaw_tokens_total", "Model tokens, by agent, model and direction (input, output).", "counter", [
      "agent",
      "model",
      "direction",
    ]);
    this.pluginCalls = new HotMetric(
      r,
      "exoclaw_plugin_calls_total",
      "Plugin calls finished (callers' aborts excluded), by plugin and kind (tool, channel).",
      "counter",
      ["plugin", "kind"],
    );
    this.pluginSeconds = new HotMetric(
      r,
      "exoclaw_plugin_call_duration_seconds",
      "Plugin call duration in the sandbox, seconds.",
      "histogram",
      ["plugin", "kind"],
      PLUGIN_BUCKETS,
    );
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
    this.switches = new Counter({
      name: "exoclaw_provider_switches_total",
      help: "Provider resilience switches, by kind (retry, key, fallback, breaker_open, breaker_skip), provider and reason (rate_limited, server_error, overloaded, unreachable, stream_broken, idle_timeout, credentials, no_credentials, circuit_open).",
      labelNames: ["kind", "provider", "reason"],
      registers,
    });
    this.webhooks = new HotMetric(
      r,
      "exoclaw_webhook_requests_total",
      "Webhook requests answered, by channel (unknown for unconfigured names) and HTTP status.",
      "counter",
      ["channel", "status"],
    );
    this.wsConnections = new Gauge({ name: "exoclaw_websocket_connections", help: "Open WebSocket connections.", registers });
    this.budgetEvents = new Counter({
      name: "exoclaw_budget_events_total",
      help: "Budget events, by agent and kind (warning: a counter passed warn_at; exceeded: a model call refused; downgraded: a call moved to the cheaper model).",
      labelNames: ["agent", "kind"],
      registers,
    });
    this.scheduledRuns = new Counter({
      name: "exoclaw_scheduled_runs_total",
      help: "Scheduled runs, by kind (cron, heartbeat, reminder) and outcome (delivered, silent, ran, skipped, claimed_elsewhere, failed).",
      labelNames: ["kind", "outcome"],
      registers,
    });
    this.mcpCalls = new Counter({
      name: "exoclaw_mcp_calls_total",
      help: "MCP tool calls finished, by server and outcome (ok, error: a tool error, the server's isError included).",
      labelNames: ["server", "outcome"],
      registers,
    });
    this.mcpSeconds = new Histogram({
      name: "exoclaw_mcp_call_duration_seconds",
      help: "MCP tool call duration, seconds, by server.",
      labelNames: ["server"],
      buckets: PLUGIN_BUCKETS,
      registers,
    });
    this.mcpRestarts = new Counter({
      name: "exoclaw_mcp_restarts_total",
      help: "MCP servers restarted after dying or failing to start, by server.",
      labelNames: ["server"],
      registers,
    });
    this.hookCalls = new HotMetric(
      r,
      "exoclaw_hook_calls_total",
      "Lifecycle hook calls, by hook, plugin and outcome (allow, deny, rewrite, timeout, error); plugins without the hook not counted.",
      "counter",
      ["hook", "plugin", "outcome"],
    );
    this.hookSeconds = new HotMetric(
      r,
      "exoclaw_hook_call_duration_seconds",
      "Lifecycle hook call duration, seconds, by hook and plugin (failed calls included).",
      "histogram",
      ["hook", "plugin"],
      PLUGIN_BUCKETS,
    );
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

  turnEnded(agent: string, outcome: string, seconds: number): void {
    this.turns.series(agent, outcome).value++;
    this.turnSeconds.observe(this.turnSeconds.series(agent), seconds);
  }

  providerCallEnded(agent: string, provider: string, model: string, ok: boolean, seconds: number, inputTokens: number, outputTokens: number): void {
    this.providerSeconds.observe(this.providerSeconds.series(provider, model, ok ? "ok" : "error"), seconds);
    if (inputTokens > 0) this.tokens.series(agent, model, "input").value += inputTokens;
    if (outputTokens > 0) this.tokens.series(agent, model, "output").value += outputTokens;
  }

  pluginCall(plugin: string, kind: string, seconds: number): void {
    this.pluginCalls.series(plugin, kind).value++;
    this.pluginSeconds.observe(this.pluginSeconds.series(plugin, kind), seconds);
  }

  pluginCallFailed(plugin: string, kind: string, failure: string): void {
    this.pluginFailures.labels(plugin, kind, failure).inc();
  }

  sandboxRestart(plugin: string, reason: string): void {
    this.restarts.labels(plugin, reason).inc();
  }

  providerSwitch(kind: string, provider: string, reason: string): void {
    this.switches.labels(kind, provider, reason).inc();
  }

  webhookRequest(channel: string, status: number): void {
    this.webhooks.series(channel, String(status)).value++;
  }

  connections(delta: 1 | -1): void {
    this.wsConnections.inc(delta);
  }

  budgetEvent(agent: string, kind: string): void {
    this.budgetEvents.labels(agent, kind).inc();
  }

  scheduledRun(kind: string, outcome: string): void {
    this.scheduledRuns.labels(kind, outcome).inc();
  }

  /** An MCP tool call finished (server: a configured `[mcp.servers.<name>]`). */
  mcpCall(server: string, seconds: number, isError: boolean): void {
    this.mcpCalls.labels(server, isError ? "error" : "ok").inc();
    this.mcpSeconds.labels(server).observe(seconds);
  }

  /** An MCP server was restarted. */
  mcpRestart(server: string): void {
    this.mcpRestarts.labels(server).inc();
  }

  /** A lifecycle hook call finished (hook name, plugin name, outcome: bounded labels). */
  hookCall(hook: string, plugin: string, outcome: string, seconds: number): void {
    this.hookCalls.series(hook, plugin, outcome).value++;
    this.hookSeconds.observe(this.hookSeconds.series(hook, plugin), seconds);
  }
}
