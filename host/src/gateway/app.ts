import { createLifecycleHooks } from "../agent/index.js";
import { resolveHooks } from "../config/index.js";
import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import {
  AgentRuntime,
  BudgetGuard,
  MediaStore,
  createProviderSet,
  openMemoryService,
  providerWarmUp,
  providersInUse,
  resiliencePolicies,
  type SettledTurn,
} from "../agent/index.js";
import { Automation } from "../automation/index.js";
import { claimBusInstance, createBus, eventsSubject, openSharedBudgetLedger, type Bus, type BusInstance } from "../bus/index.js";
import { createChannelService, openSharedChannelState, PairingStore, sendFileTool, type ChannelService } from "../channels/index.js";
import { DEFAULT_TURN_TIMEOUT_MS, type Config, type ProviderName } from "../config/index.js";
import { processSecrets, redactUrl, registerConfigSecrets } from "../log/index.js";
import { startMcpClients, type McpClients } from "../mcp/index.js";
import { mcpServeTarget } from "./mcp-route.js";
import { ApprovalStore, loadPlugins, ValidationCache, watchPluginDirs, type PluginHost, type PluginWatcher } from "../plugins/index.js";
import { loadNativeStrings } from "../protocol/msgpack.mjs";
import { compileRouter } from "../router/index.js";
import { describeStoreUrl, openSessionLog, type SessionLog } from "../store/index.js";
import {
  createTelemetry,
  deferMetrics,
  loadPrometheus,
  startTracing,
  tracingRequested,
  type DeferredMetrics,
  type MetricsRecorder,
  type Telemetry,
  type Tracing,
} from "../telemetry/index.js";
import { startRetention } from "./retention.js";
import { startRemoteAbort } from "./remote-abort.js";
import { startRemoteApprovals } from "./remote-approvals.js";
import { errorMessage } from "../util/index.js";
import { CloseStack, type CloseReport } from "./close-stack.js";
import { ConfigReloader, SwappableRouter, type ConfigReloadResult, type ReloadTrigger } from "./reload.js";
import { startGateway, type RunningGateway } from "./server.js";
import { preloadTransport } from "./transport.js";
import { SessionChanges, watchSessionLog } from "./session-changes.js";
import { HEALTH_BODY, type HealthAnswer, type TransportName } from "./types.js";

/**
 * How long after ready the metrics (prom-client) load, ms, unless a scrape asks first: a
 * supervisor's first `/health` or a client's first message is not queued behind the load.
 */
export const METRICS_LOAD_DELAY_MS = 200;

/**
 * How long after ready the provider SDKs start loading in the background (agent/providers/warm.ts),
 * ms, unless a `/health` poll was answered first (then right after it): a supervisor polling from
 * the spawn gets its first 200 without waiting for them, and a message sent then finds them
 * loading or loaded.
 */
export const PROVIDER_WARM_DELAY_MS = 50;

/** Time a shutdown may take beyond the grace period (replies, bus, sockets, plugins, store), ms. */
export const SHUTDOWN_CLOSE_MS = 5_000;

/** Options of {@link createGatewayApp}. */
export interface GatewayAppOptions {
  /** The loaded configuration (`loadConfig`). */
  config: Config;
  logger: Logger;
  /** Where the config's plugin secret references (`{ env = "NAME" }`) are read; default `config.secretEnv` (env, then credentials files). */
  env?: NodeJS.ProcessEnv;
  /**
   * `performance.now()` when the process began loading the configuration, ms: the ready info's
   * `startupMs.configAndPlugins` counts from there. Default: when `start()` is called.
   */
  loadStartedAt?: number;
  /** Parts started after everything else and stopped first; see {@link GatewayComponent}. */
  components?: GatewayComponent[];
  /**
   * Reads the configuration again as start-up did (same flags and environment), for live
   * reloads (`reload()`, the `config.reload` RPC, changes to the config file). Absent: no reload
   * (no `config.reload` method, the file is not watched; `reload()` answers `invalid`).
   * @throws ConfigError for an invalid file (the reload is refused, the running config stays)
   */
  loadConfig?: () => Config;
}

/**
 * Where a later part of the gateway plugs in (a scheduler, an MCP server, ...). Components start
 * in order once the gateway listens, after crash recovery and after the channel consumers and
 * pollers started (so their work queues behind recovered turns); on shutdown their closes run
 * first, before the turns drain, so they admit no new work while running turns finish.
 * (An HTTP route belongs in `startGateway`'s deps, server.ts, not here.)
 */
export interface GatewayComponent {
  /** For logs (`starting <name>`) and close reports. */
  name: string;
  /**
   * Starts the component. Register each close with `context.defer` as soon as the thing it
   * closes exists: a throw fails start-up and everything registered so far is closed.
   */
  start(context: GatewayContext): Promise<void>;
}

/** What a {@link GatewayComponent} gets: the running parts and the app's close stack. */
export interface GatewayContext {
  config: Config;
  logger: Logger;
  runtime: AgentRuntime;
  log: SessionLog;
  plugins: PluginHost;
  channels: ChannelService;
  /** The NATS bus, when `[bus]` is configured. */
  bus?: Bus;
  /** Where the gateway listens. */
  listening: { host: string; port: number };
  /** Registers a close; it runs before everything registered earlier (see {@link CloseStack.defer}). */
  defer(name: string, close: () => unknown): void;
}

/** What `start()` resolves with: the fields of the CLI's `gateway ready` log line, in its order. */
export interface StartedInfo {
  /** `ws://<host>:<port>/ws` (`wss://` with `[gateway.tls]`; an IPv6 host in brackets). */
  url: string;
  host: string;
  port: number;
  transport: TransportName;
  /** Loaded plugin names. */
  plugins: string[];
  /** Tool names offered to the models. */
  tools: string[];
  /** Configured channel names, in config order. */
  channels: string[];
  /** The default agent's id, provider and model. */
  agent: string;
  provider: ProviderName;
  model: string;
  /** The config file read, or null. */
  config: string | null;
  /** The store URL without credentials (`describeStoreUrl`). */
  store: string;
  /** The bus, servers without credentials; null without `[bus]`. */
  bus: { kind: "memory" | "nats"; servers: string[]; connected: boolean } | null;
  /** `performance.now()` when ready, ms since the process started. */
  readyMs: number;
  /** Start-up phases, ms: module loading (until the config load began), config + plugins + store, store open alone, crash recovery, the rest until ready. */
  startupMs: { modules: number; configAndPlugins: number; storeOpen: number; recover: number; listen: number };
}

/** What `stop()` resolves with. */
export interface StopReport extends CloseReport {
  /** The shutdown's hard deadline, ms: the grace period plus {@link SHUTDOWN_CLOSE_MS}. */
  deadlineMs: number;
}

/** A gateway application: everything `exoclaw gateway` runs, with one start-up and one shutdown. */
export interface GatewayApp {
  /**
   * Opens the store, plugins and bus, starts the agent runtime and channels, re-queues turns a
   * previous process left, listens, starts the channel consumers and the components. Once only
   * (a second call gets the first call's promise). On failure everything opened so far is
   * closed (in reverse order) before it rejects.
   * @throws RouterConfigError for bad bindings; StoreError when the store does not open; Error
   *   when the port cannot be bound or off-loopback binding lacks a token; Error when the app was stopped
   */
  start(): Promise<StartedInfo>;
  /**
   * Shuts down: components and channel pollers stop, running turns get `graceMs` (default
   * `[gateway] shutdown_grace_ms`) to finish while the consumers stop, their replies go out
   * (at most 5 s), then the bus, the listener (sockets close 1001), the plugin watcher, the
   * plugins and the store close. Bounded by the grace period plus {@link SHUTDOWN_CLOSE_MS}: a
   * step still running then is reported in `unfinished`. Logs `shutting down`, and `stopped`
   * when every step finished cleanly. Idempotent; during `start()` it waits for start-up first.
   * Never rejects.
   */
  stop(options?: { graceMs?: number }): Promise<StopReport>;
  /** The `/health` answer: 200 `{"status":"ok"}`, or 503 `store_unavailable` once the store takes no writes. */
  health(): HealthAnswer;
  /** The `/ready` answer: see {@link readiness}. */
  ready(): HealthAnswer;
  /**
   * Resolves (never rejects) with the reason when the gateway can no longer serve and must be
   * restarted: the session store stopped taking writes (e.g. its disk filled up). `/health`
   * answers 503 from then on; the CLI shuts down and exits non-zero so a supervisor restarts it.
   */
  readonly broken: Promise<string>;
  /**
   * Re-reads the configuration and applies what can change while running (see reload.ts and
   * docs/architecture.md, "Reloading the configuration"). Never rejects: an invalid file, no
   * `loadConfig`, or a gateway not started yet give `status: "invalid"` with the reason.
   */
  reload(trigger: ReloadTrigger): Promise<ConfigReloadResult>;
}

/** The `/health` body while the session store takes no writes (no paths: `/health` needs no token). */
function storeUnavailableHealth(reason: string): HealthAnswer {
  return {
    status: 503,
    body: JSON.stringify({ status: "store_unavailable", reason, message: "the session store takes no writes; the gateway is restarting" }),
  };
}

/**
 * Builds the gateway application for `options.config`; nothing is opened until `start()`.
 * This is the one place that wires the parts together (the CLI keeps flags, signals, printing).
 */
export function createGatewayApp(options: GatewayAppOptions): GatewayApp {
  const { config, logger } = options;
  const stack = new CloseStack({ logger });
  /** The grace running turns get on close: set by stop(); 0 when start-up fails. */
  let graceMs = 0;
  let storeDown: string | undefined;
  /**
   * Settles once start-up finished and the first `/health` was answered (after its answer is
   * written), or PROVIDER_WARM_DELAY_MS after ready: the durable store's engine opens then
   * (`engineStart`), so a supervisor's first poll is not queued behind its native load.
   */
  let afterFirstHealth: () => void = () => {};
  const engineSignal = new Promise<void>((resolve) => (afterFirstHealth = () => setImmediate(resolve)));
  let markBroken: (reason: string) => void = () => {};
  const broken = new Promise<string>((resolve) => (markBroken = resolve));
  const health = (): HealthAnswer => {
    // The first /health answered once ready starts the provider warm-up, right after the answer is written.
    if (started) {
      warmUp.start();
      afterFirstHealth();
    }
    return storeDown === undefined ? { status: 200, body: HEALTH_BODY } : storeUnavailableHealth(storeDown);
  };

  // Metrics (`[metrics] enabled`) and traces (OTEL_EXPORTER_OTLP_ENDPOINT), set up first in run().
  let metrics: MetricsRecorder | undefined;
  let deferredMetrics: DeferredMetrics | undefined;
  let tracing: Tracing | undefined;
  let started = false;
  let readyState: () => ReadyState = () => ({ stopping: stopping !== undefined, storeDown, started });
  const ready = (): HealthAnswer => readiness(readyState());

  // What start-up opens, as far as it got.
  let opening: Promise<SessionLog> | undefined;
  let pluginsLoading: Promise<PluginHost> | undefined;
  let mcpClients: McpClients | undefined;
  let busOpening: Promise<Bus | undefined> | undefined;
  let busInstance: BusInstance | undefined;
  let watcher: PluginWatcher | null = null;
  let runtime: AgentRuntime | undefined;
  let channels: ChannelService | undefined;
  let gateway: RunningGateway | undefined;
  let reloader: ConfigReloader | undefined;
  /**
   * The SDKs of the providers the configuration calls, loaded once in the background
   * (providers/warm.ts): a first message then finds them loaded, or waits for the load under way.
   */
  const warmUp = providerWarmUp(
    () => providersInUse(config),
    (provider, err) => logger.debug({ provider, error: errorMessage(err) }, "the provider's SDK did not load ahead of its first call"),
  );

  // The shutdown order, registered before anything opens; the stack runs it bottom-up. Each step
  // closes only what start-up reached, so a failed start-up and a stop release the same things
  // the same way. The order is not the reverse of opening: the listener closes after the turns
  // drained and their replies went out (clients get their answers), and the bus closes before
  // the listener (a socket that never closes must not keep the bus lease).
  // Traces close last, so that the spans of the turns drained on the way out are exported (at most 2 s).
  if (tracingRequested(options.env ?? process.env)) {
    stack.defer("traces", () =>
      tracing === undefined ? undefined : Promise.race([tracing.shutdown(), new Promise<void>((r) => setTimeout(r, 2000).unref())]),
    );
  }
  stack.defer("session store", () =>
    opening?.then(
      (l) => l.close(),
      () => {},
    ),
  );
  stack.defer("plugins", () =>
    pluginsLoading?.then(
      (p) => p.close(),
      () => {},
    ),
  );
  stack.defer("plugin watcher", () => watcher?.close());
  // The provider SDKs' background load ends before the process does (a few hundred ms at most).
  stack.defer("provider warm-up", () => warmUp.stop());
  // MCP servers stop (with their process trees) after the turns that call them drained.
  if ((config.mcp?.servers.length ?? 0) > 0) stack.defer("mcp servers", () => mcpClients?.close());
  stack.defer("listener", () => gateway?.close());
  stack.defer("bus", async () => {
    const bus = await busOpening?.catch(() => undefined);
    await bus?.close();
    await busInstance?.release();
  });
  stack.defer("channel outbound consumer", () => channels?.bus?.stopOutbound());
  // Replies of the drained turns go out before the plugins close (bounded: a platform may hang).
  // Replies still being retried after that stay owed in the store: the next start sends them.
  stack.defer("channel replies", async () => {
    await channels?.idle(Math.min(5000, graceMs + 1000));
    await channels?.closeReplies();
  });
  // The bus consumer stops taking messages and waits for its running turns, which the drain
  // bounds; messages not handled go back to NATS for the next gateway.
  stack.defer("turns", () => Promise.all([channels?.bus?.stopInbound(), runtime?.drain(graceMs)]));
  // Pollers stop first (a poll in flight is admitted), so no new turn starts while draining.
  stack.defer("channel pollers", () => channels?.stop());
  // Components register their own closes as they start (after these: they close first).

  async function run(): Promise<StartedInfo> {
    const t0 = options.loadStartedAt ?? performance.now();
    // Secret values are scrubbed from every log line from here on (and from provider error text
    // and channel failure notices), whatever field or message carries them.
    const short = registerConfigSecrets(processSecrets, configSecretSources(config), options.env ?? config.secretEnv);
    for (const name of short) logger.warn({ secret: name }, "a secret is shorter than 8 characters: it is not scrubbed from logs");
    // One router object for the gateway's life; a config reload swaps its bindings.
    const router = new SwappableRouter(
      compileRouter(
        config.bindings,
        config.agents.map((a) => a.id),
        config.defaultAgent,
      ),
    );
    // The state directory is made and narrowed while the session store begins its open (whose
    // own mkdir makes the directories it needs, 0700 as well): the store's open is a chain of
    // thread-pool round trips that an existing store's start waits for (docs/architecture.md,
    // "Start-up on an existing store"). Everything else that uses the directory waits for it.
    const stateDirReady = secureStateDir(config.stateDir, logger);
    stateDirReady.catch(() => {});
    // The session store opens while plugins load (the embedded SurrealDB engine loads in ~40 ms).
    const tStore = performance.now();
    let storeOpenMs = 0;
    opening = openSessionLog({
      ...config.store,
      // A journaled store on disk is ready with its journal (a new store, or a clean stop's
      // checkpoint); its engine then opens after the first /health answered once ready (or 50 ms
      // after ready), or at the first operation that needs it (docs/architecture.md, "Start-up").
      engineStart: engineSignal,
      logger: {
        info: (m) => logger.info({ store: describeStoreUrl(config.store.url) }, m),
        warn: (m) => logger.warn({ store: describeStoreUrl(config.store.url) }, m),
      },
      onUnhealthy: (h) => {
        storeDown = h.reason;
        logger.fatal(
          { store: describeStoreUrl(config.store.url), reason: h.reason, error: h.message },
          "the session store takes no writes: the gateway is not ready and shuts down so that a supervisor restarts it",
        );
        markBroken(h.reason);
      },
    }).then((l) => ((storeOpenMs = performance.now() - tStore), l));
    opening.catch(() => {});
    await stateDirReady;
    // Traces load while the store opens; plugins and the runtime need the sink, so they wait for
    // it. Metrics record into a queue until prom-client loads, after ready (telemetry/deferred.ts).
    const telemetry = await openTelemetry(config, options.env ?? process.env, logger);
    metrics = telemetry.metrics?.recorder;
    deferredMetrics = telemetry.metrics;
    tracing = telemetry.tracing;
    pluginsLoading = loadPlugins({
      dirs: config.plugins.dirs,
      logger,
      defaultLimits: config.plugins.defaultLimits,
      limits: config.plugins.limits,
      grants: config.plugins.grants,
      env: options.env ?? config.secretEnv,
      stateDir: config.stateDir,
      // Module metadata by sha256 survives restarts: validating then skips compiling.
      // (kept in the trust directory, outside every plugin directory; see docs/security.md)
      // Read while the plugin files are (the loader awaits it after starting their reads).
      validationCache: ValidationCache.open(ValidationCache.pathFor(config.stateDir)),
      telemetry: telemetry.sink,
    });
    pluginsLoading.catch(() => {});
    busOpening = openBus(config, logger, (instance) => (busInstance = instance));
    busOpening.catch(() => {});
    const plugins = await pluginsLoading;
    // uWebSockets.js's native binary loads while the store may still be opening (transport.ts).
    preloadTransport(config.gateway.transport, config.gateway.tls !== undefined);
    // Every writer gets the watched log: `events.subscribe` learns which sessions changed (event-hub.ts).
    const sessionChanges = new SessionChanges();
    const log = watchSessionLog(await opening, sessionChanges);
    const bus = await busOpening;
    // The approvals directory exists from the start, so that its watch is in place before the
    // first `exoclaw plugin approve` (best effort: without it approvals apply on restart).
    if (config.plugins.watch) await mkdir(dirname(ApprovalStore.pathFor(config.stateDir)), { recursive: true, mode: 0o700 }).catch(() => {});
    watcher = config.plugins.watch
      ? watchPluginDirs(plugins, config.plugins.userDirs, { logger, approvalsFile: ApprovalStore.pathFor(config.stateDir) })
      : null;
    const t1 = performance.now();
    // The runtime and the channels service need each other (the `message_send` tool and recovered
    // turns go out through channels; channels run turns): late-bound through `channels`.
    // Metering and budgets: spend already in the log is counted before any call is admitted.
    // With `[bus]`, spend is counted in NATS KV, shared by every gateway (docs/bus.md, "Budgets across gateways").
    // (Only when a budget is configured: without one, nothing is ever reserved.)
    const anyBudget = config.budgets.global !== undefined || config.budgets.peer !== undefined || config.agents.some((a) => a.budget !== undefined);
    const sharedLedger = bus === undefined || !anyBudget ? undefined : await openBudgetLedger(bus, config, logger);
    if (sharedLedger !== undefined) stack.defer("budget ledger", () => sharedLedger.close());
    const budget = new BudgetGuard({
      budgets: config.budgets,
      pricing: config.pricing,
      logger,
      ...(sharedLedger !== undefined ? { ledger: sharedLedger } : {}),
      onEvent: (kind, agent) => telemetry.sink.budgetEvent?.(agent, kind),
    });
    // Without a budget nothing waits for the rebuild (agent/budget/guard.ts): it reads the whole
    // store, so it runs once the gateway is ready, not during start-up (with the durable store
    // it would begin the engine's open before ready: docs/architecture.md, "Start-up").
    if (anyBudget) void budget.rebuild(log);
    else void engineSignal.then(() => budget.rebuild(log));
    // Scheduled work (cron, heartbeats, reminders): its `remind` tool goes to the runtime, and it
    // starts once the channels run (a bad configured schedule fails start-up here, named).
    const automation = new Automation({ cron: config.cron, agents: config.agents, stateDir: config.stateDir, logger, ...(bus !== undefined ? { bus } : {}) });
    // MCP servers ([mcp.servers.*]): `startup` ones start now, in the background.
    if ((config.mcp?.servers.length ?? 0) > 0) {
      mcpClients = await startMcpClients({
        servers: config.mcp.servers,
        stateDir: config.stateDir,
        secrets: config.secretEnv,
        logger,
        onCall: (server, ms, isError) => telemetry.sink.mcpCall?.(server, ms, isError),
        onRestart: (server) => telemetry.sink.mcpRestart?.(server),
      });
    }
    const mcp = mcpClients;
    const media = new MediaStore({ dir: join(config.stateDir, "media"), logger });
    const agents = new AgentRuntime({
      agents: config.agents,
      ...(mcp !== undefined ? { mcp } : {}),
      budget,
      // Notes and recall of agents with [agents.memory] (docs/memory.md).
      memory: await openMemoryService({
        stateDir: config.stateDir,
        log,
        logger,
        providers: config.providers,
        store: config.store,
        preload: config.agents.flatMap((a) => (a.memory?.embeddings ? [`${a.memory.embeddings.provider}/${a.memory.embeddings.model}`] : [])),
      }),
      providers: createProviderSet(config.providers, { logger }),
      resilience: resiliencePolicies(config.providers),
      plugins,
      log,
      logger,
      outbound: {
        send: (target, signal) => {
          if (channels === undefined) return Promise.reject(new Error("channels are not started yet"));
          return channels.send(target, signal);
        },
      },
      onRecovered: (turn) => channels?.onRecovered(turn),
      // `remind` (automation) and `send_file` (channels/send-file.ts: a file to the current peer).
      hostTools: [...automation.tools, sendFileTool({ channels: () => channels, logger })],
      // Inbound images for later turns: <stateDir>/media/<sha256> (agent/media-store.ts).
      media,
      // Plugin lifecycle hooks, in `[hooks] order` as last reloaded (agent/hooks).
      hooks: createLifecycleHooks({
        host: plugins,
        config: () => (reloader?.current() ?? config).hooks ?? resolveHooks(undefined),
        logger,
        onCall: (r) => telemetry.sink.hookCall?.(r.hook, r.plugin, r.outcome, r.durationMs),
      }),
      telemetry: telemetry.sink,
      // Turn outcomes for observers on other processes (metadata only, no content: the session
      // log, with its redactor, is where content lives). With NATS down they wait in the spool.
      ...(bus !== undefined ? { onTurnSettled: (turn: SettledTurn) => publishTurnEvent(bus, turn, logger) } : {}),
    });
    runtime = agents;
    // `chat.abort` / `/stop` of a turn running on another gateway of the bus (remote-abort.ts).
    const remoteAbort = bus === undefined ? undefined : await startRemoteAbort({ bus, runtime: agents, logger });
    if (remoteAbort !== undefined) stack.defer("stop requests", () => remoteAbort.close());
    // Approvals answered at a gateway that does not hold the parked turn (remote-approvals.ts).
    const closeRemoteApprovals = bus === undefined ? undefined : await startRemoteApprovals({ bus, book: agents.approvals, logger });
    if (closeRemoteApprovals !== undefined) stack.defer("approval relay", closeRemoteApprovals);
    // Channel pairing: approvals in <state dir>/pairing.json, shared by gateways on that directory;
    // with a NATS bus, pairing and per-sender rate windows live in NATS KV for every gateway.
    const pairingFile = PairingStore.inStateDir(config.stateDir);
    const shared =
      bus === undefined
        ? undefined
        : await openSharedChannelState(bus, { seed: () => pairingFile.snapshot(), onWarning: (message, err) => logger.warn({ err }, message) });
    const pairing = shared?.pairing ?? pairingFile;
    const channelService = createChannelService({
      pairing,
      ...(shared !== undefined ? { rateWindows: shared.rateWindows } : {}),
      channels: config.channels,
      plugins,
      router,
      runtime: agents,
      stateDir: config.stateDir,
      logger,
      // The reply outbox lives in the session log (docs/reliability.md, "A crash between answer and reply").
      replies: log,
      ...(bus !== undefined
        ? { bus: { bus, maxDeliver: config.bus!.maxDeliver, longestTurnMs: Math.max(...config.agents.map((a) => a.turnTimeoutMs ?? DEFAULT_TURN_TIMEOUT_MS)) } }
        : {}),
      ...(remoteAbort !== undefined ? { abortElsewhere: remoteAbort.abortElsewhere } : {}),
    });
    channels = channelService;
    // A channel whose plugin is not loaded is not fatal: the plugin may be hot-loaded later.
    for (const warning of channelService.check()) logger.warn({ reason: warning }, "channel configuration");
    // Turns a previous process accepted but did not finish are re-queued (or failed) before any
    // new request can take their place in a session's lane.
    const tRecover = performance.now();
    const sharedStore = config.store.url.startsWith("nats://") || /^wss?:\/\//.test(config.store.url);
    if (bus !== undefined && sharedStore) {
      // Other live gateways share this store: their running turns look unfinished from here.
      // Channel messages left by a dead process come back from the bus instead (see bus.ts).
      logger.info(
        { store: describeStoreUrl(config.store.url) },
        "shared session store with a bus: start-up recovery skipped (the bus redelivers unfinished channel messages)",
      );
    } else {
      await agents.recover();
      // Replies a previous process owed (its turns ended, the replies had not gone out) go out
      // again, in each peer's order; a re-run turn's reply when it ends.
      await channelService.resumeReplies();
    }
    const recoverMs = performance.now() - tRecover;
    const liveConfig = options.loadConfig;
    if (liveConfig !== undefined) {
      reloader = new ConfigReloader({
        initial: config,
        load: liveConfig,
        targets: { router, runtime: agents, channels: channelService, plugins },
        logger,
        registerSecrets: (next) => registerConfigSecrets(processSecrets, configSecretSources(next), options.env ?? next.secretEnv),
      });
      const r = reloader;
      stack.defer("config watcher", () => r.close());
    }
    const reloadConfig = reloader === undefined ? undefined : (trigger: ReloadTrigger) => reloader!.reload(trigger);
    const listener = await startGateway(config.gateway, {
      router,
      runtime: agents,
      log,
      plugins,
      logger,
      startedAt: 0,
      webhooks: channelService,
      channels: () => channelService.counters(),
      bus: () => (bus === undefined ? null : bus.status()),
      // The agents as last reloaded (the start-up config when reload is off).
      agents: () => {
        const live = reloader?.current() ?? config;
        return live.agents.map((a) => ({ id: a.id, provider: a.provider, model: a.model, default: a.id === live.defaultAgent }));
      },
      store: describeStoreUrl(config.store.url),
      sessionChanges,
      ...(bus !== undefined ? { deadLetters: bus.deadLetters } : {}),
      config: () => reloader?.current() ?? config,
      budgetTimeZone: config.budgets.timezone,
      flows: () => automation.flows,
      cron: {
        flows: () => automation.flows,
        scheduler: () => automation.running,
        agentIds: () => (reloader?.current() ?? config).agents.map((a) => a.id),
        defaultAgent: () => (reloader?.current() ?? config).defaultAgent,
      },
      ...(remoteAbort !== undefined ? { abortElsewhere: remoteAbort.abortElsewhere } : {}),
      approvals: agents.approvals,
      ...(mcp !== undefined ? { mcp } : {}),
      pairing,
      health,
      ...(reloadConfig !== undefined ? { reloadConfig: () => reloadConfig("rpc") } : {}),
      ops: { ready, ...(metrics !== undefined ? { metrics: () => metrics!.scrape() } : {}) },
      // `/mcp[/<agent>]`: the agent's allowed WASM tools (never MCP-proxied ones) and a `chat` tool.
      mcpRoute: mcpServeTarget({ config: () => reloader?.current() ?? config, plugins, runtime: agents }),
      telemetry: telemetry.sink,
    });
    readyState = () => ({
      stopping: stopping !== undefined,
      storeDown,
      started,
      missingChannelPlugins: missingChannelPlugins(reloader?.current() ?? config, plugins),
      ...(bus !== undefined ? { bus: bus.status().connected } : {}),
    });
    metrics?.setSources({
      queueDepth: () => agents.activeTurns(),
      ...(bus !== undefined
        ? {
            bus: () => {
              const st = bus.status();
              return { connected: st.connected, spooled: st.spooled, consumers: channelService.bus?.consumerStats() ?? [] };
            },
          }
        : {}),
    });
    gateway = listener;
    reloader?.watchFile();
    // Consuming starts after recovery, so a redelivered message finds its recovered turn.
    await channelService.bus?.start();
    channelService.startPolling();
    // Its close runs before the turns drain (the stack is last in, first out): no new scheduled
    // turn starts while running ones finish; a run cut by the shutdown resumes at the next start.
    stack.defer("automation", () => automation.stop());
    await automation.start({
      runtime: agents,
      outbound: { send: (target, signal) => channelService.send(target, signal) },
      channelNames: () => (reloader?.current() ?? config).channels.map((c) => c.name),
      onRun: (kind, outcome) => telemetry.sink.scheduledRun?.(kind, outcome),
    });
    if (config.store.retention) {
      // Off by default: sessions are kept unless the operator set [store] retention.
      if (config.store.retention.maxIdleMs < 86_400_000) {
        logger.warn(
          { retentionMs: config.store.retention.maxIdleMs },
          "[store] retention is under a day: a pruned session's idempotency and platform message ids are free again, so a platform retrying an older message would run it again",
        );
      }
      const retentionMs = config.store.retention.maxIdleMs;
      // Stored images idle as long as a pruned session go with it (agent/media-store.ts).
      const prune = (o: Parameters<typeof agents.pruneSessions>[0]) => agents.pruneSessions(o).then(async (r) => (await media.pruneIdle(retentionMs), r));
      const retention = startRetention({ prune, ...config.store.retention, logger });
      stack.defer("session retention", () => retention.stop());
    }
    const context: GatewayContext = {
      config,
      logger,
      runtime: agents,
      log,
      plugins,
      channels: channelService,
      ...(bus !== undefined ? { bus } : {}),
      listening: { host: listener.host, port: listener.port },
      defer: (name, close) => stack.defer(name, close),
    };
    for (const component of options.components ?? []) {
      logger.debug({ component: component.name }, `starting ${component.name}`);
      await component.start(context);
    }
    started = true;
    setTimeout(() => afterFirstHealth(), PROVIDER_WARM_DELAY_MS).unref();
    // The provider SDKs load once a first /health was answered (`health` above), or at the latest
    // PROVIDER_WARM_DELAY_MS after ready: a supervisor's first poll is not queued behind them.
    // Not while the durable store opens, although the main thread waits there: its steps then
    // interleave with the open's own continuations, and at load ~8 on the 2-core VM ready was
    // 1,971 vs 1,607 ms p50 (13 interleaved starts) for the same spawn -> first answer (2,118 vs
    // 2,098 ms): the work moved before ready instead of going away (docs/architecture.md).
    setTimeout(() => warmUp.start(), PROVIDER_WARM_DELAY_MS).unref();
    // msgpackr's native string decoding (protocol/msgpack.mjs), off the start-up path as well.
    setTimeout(() => void loadNativeStrings(), PROVIDER_WARM_DELAY_MS).unref();
    // prom-client loads once the gateway is ready, off the path of its first requests (or at the first scrape): telemetry/deferred.ts.
    const metricsLoad = deferredMetrics;
    if (metricsLoad !== undefined) {
      setTimeout(
        () => metricsLoad.load().catch((err: unknown) => logger.error({ error: errorMessage(err) }, "cannot load the metrics: /metrics fails")),
        METRICS_LOAD_DELAY_MS,
      ).unref();
    }
    const main = config.agents.find((a) => a.id === config.defaultAgent)!;
    return {
      url: `${listener.tls ? "wss" : "ws"}://${listener.host.includes(":") ? `[${listener.host}]` : listener.host}:${listener.port}/ws`,
      host: listener.host,
      port: listener.port,
      transport: listener.transport,
      plugins: plugins.plugins().map((p) => p.manifest.name),
      tools: plugins.tools().map((t) => t.name),
      channels: config.channels.map((c) => c.name),
      agent: main.id,
      provider: main.provider,
      model: main.model,
      config: config.source ?? null,
      store: describeStoreUrl(config.store.url),
      bus:
        bus === undefined
          ? null
          : { kind: bus.kind, servers: config.bus!.servers.map((u) => u.replace(/\/\/[^/@]*@/, "//")), connected: bus.status().connected },
      readyMs: Math.round(performance.now()),
      startupMs: {
        modules: Math.round(t0),
        configAndPlugins: Math.round(t1 - t0),
        storeOpen: Math.round(storeOpenMs),
        recover: Math.round(recoverMs),
        listen: Math.round(performance.now() - t1),
      },
    };
  }

  let starting: Promise<StartedInfo> | undefined;
  let stopping: Promise<StopReport> | undefined;
  return {
    broken,
    health,
    reload(trigger) {
      if (reloader === undefined) {
        const error =
          options.loadConfig === undefined ? "this gateway was started without a config loader: reload is not available" : "the gateway is not started";
        return Promise.resolve({ status: "invalid", trigger, source: config.source ?? null, changed: [], restartRequired: [], pluginsSwapped: [], error });
      }
      return reloader.reload(trigger);
    },
    ready,
    start() {
      if (stopping !== undefined) return Promise.reject(new Error("the gateway app was stopped; create a new one to start again"));
      return (starting ??= run().catch(async (err: unknown) => {
        // The same closes as a stop, without a grace period: nothing was answered yet.
        graceMs = 0;
        await stack.close({ deadlineMs: SHUTDOWN_CLOSE_MS });
        throw err;
      }));
    },
    stop(stopOptions = {}) {
      return (stopping ??= (async () => {
        const grace = stopOptions.graceMs ?? config.gateway.shutdownGraceMs;
        const deadlineMs = grace + SHUTDOWN_CLOSE_MS;
        // A failed start-up closed the stack already: its report is the answer.
        if (
          starting !== undefined &&
          !(await starting.then(
            () => true,
            () => false,
          ))
        )
          return { ...(await stack.close()), deadlineMs };
        logger.info({ activeTurns: runtime?.activeTurns() ?? 0, graceMs: grace }, "shutting down");
        graceMs = grace;
        const report = await stack.close({ deadlineMs });
        if (report.failed.length === 0 && report.unfinished.length === 0) logger.info("stopped");
        return { ...report, deadlineMs };
      })());
    },
  };
}

/**
 * Opens the NATS bus of `[bus]` (undefined without it). It never blocks start-up on NATS for more
 * than its connect wait (2 s): with NATS down the gateway serves, and channel messages wait in the
 * disk spool. The member id is kept in the state directory, so a restart after a crash takes its
 * partitions back at once instead of after the lease TTL.
 * @param onInstance gets the claimed member id, which the caller releases after closing the bus
 * @throws BusError / Error when the bus cannot be created (the claimed id is released first)
 */
/** The shared budget ledger on `bus`; a reservation counts for the longest turn deadline plus 5 minutes. */
function openBudgetLedger(bus: Bus, config: Config, logger: Logger): ReturnType<typeof openSharedBudgetLedger> {
  const longestTurnMs = Math.max(...config.agents.map((a) => a.turnTimeoutMs ?? DEFAULT_TURN_TIMEOUT_MS));
  return openSharedBudgetLedger(bus, {
    warnAt: config.budgets.warnAt,
    reservationTtlMs: longestTurnMs + 300_000,
    onWarning: (message, error) => logger.warn({ err: error }, message),
  });
}

function openBus(config: Config, logger: Logger, onInstance: (instance: BusInstance) => void): Promise<Bus | undefined> {
  const settings = config.bus;
  if (settings === undefined) return Promise.resolve(undefined);
  return claimBusInstance(config.stateDir).then((instance) => {
    onInstance(instance);
    return createBus({
      kind: "nats",
      servers: settings.servers,
      stateDir: config.stateDir,
      instanceId: instance.id,
      ...(settings.partitions !== undefined ? { partitions: settings.partitions } : {}),
      ...(settings.ackWaitMs !== undefined ? { ackWaitMs: settings.ackWaitMs } : {}),
      ...(settings.leaseTtlMs !== undefined ? { leaseTtlMs: settings.leaseTtlMs } : {}),
      ...(settings.reorderWindowMs !== undefined ? { reorderWindowMs: settings.reorderWindowMs } : {}),
      // `[bus] outage = "refuse"`: channel messages are never spooled; intake answers 503
      ...(settings.outage === "refuse" ? { unspooledStreams: ["in" as const] } : {}),
      name: `exoclaw-gateway-${instance.id}`,
      onWarning: (message, error) =>
        logger.warn({ bus: "nats", error: error instanceof Error ? error.message : error === undefined ? undefined : String(error) }, message),
    }).catch(async (err: unknown) => {
      await instance.release();
      throw err;
    });
  });
}

/**
 * Publishes a settled turn to `exoclaw.events.<agent>` (MessagePack, msg id `turn:<runId>`, so a
 * re-publish is dropped by the stream): `{type: "turn_settled", at (ms since epoch), ...turn}`.
 * Never throws; a failed publish is logged at warn.
 */
function publishTurnEvent(bus: Bus, turn: SettledTurn, logger: Logger): void {
  bus.publish(eventsSubject(turn.agentId), { type: "turn_settled", at: Date.now(), ...turn }, { msgId: `turn:${turn.runId}` }).catch((err: unknown) => {
    logger.warn({ runId: turn.runId, agent: turn.agentId, error: errorMessage(err) }, "cannot publish the turn event to the bus");
  });
}

/** Where the configuration keeps secret values (for the log scrubber; see `registerConfigSecrets`); `exoclaw doctor` scrubs its output with the same. */
export function configSecretSources(config: Config): Parameters<typeof registerConfigSecrets>[1] {
  return {
    gatewayToken: config.gateway.token,
    providerKeys: Object.fromEntries(
      Object.entries(config.providers).flatMap(([name, p]) => (p.apiKeys ?? [p.apiKey]).map((key, i) => [i === 0 ? name : `${name} key ${i + 1}`, key])),
    ),
    pluginSecrets: Object.fromEntries(Object.entries(config.plugins.grants).map(([name, g]) => [name, g.secrets])),
    storePassword: config.store.password,
    urls: [...config.store.url.split(","), ...(config.bus?.servers ?? []), ...Object.values(config.providers).flatMap((p) => (p.baseUrl ? [p.baseUrl] : []))],
  };
}

/**
 * The state directory holds conversations, plugin state and approvals: it is created 0700, and
 * an existing one that group or others can open is narrowed to 0700 (logged at warn). Files and
 * directories inside get 0600 / 0700 from the process umask (set by the CLI, `main.ts`).
 * @throws Error when the directory cannot be created
 */
async function secureStateDir(dir: string, logger: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  try {
    await chmod(dir, 0o700);
    logger.warn({ stateDir: dir, mode: mode.toString(8) }, "the state directory was open to other users; its mode is now 700");
  } catch (err) {
    logger.warn(
      { stateDir: dir, mode: mode.toString(8), error: (err as Error).message },
      "the state directory is open to other users and cannot be narrowed to 700",
    );
  }
}

/** What `/ready` looks at (see {@link readiness}). */
interface ReadyState {
  /** `stop()` was called. */
  stopping: boolean;
  /** Why the store takes no writes, once it stopped taking them. */
  storeDown: string | undefined;
  /** Start-up finished (channel consumers, pollers and components started). */
  started: boolean;
  /** Configured channels whose plugin is not loaded. */
  missingChannelPlugins?: string[];
  /** With `[bus]`: whether NATS is connected. */
  bus?: boolean;
}

/**
 * The `/ready` answer: 200 `{"status":"ready","checks":{...}}` when start-up finished, the store
 * takes writes, every configured channel's plugin is loaded and (with `[bus]`) NATS is connected;
 * else 503 `{"status":"not_ready","reasons":[...],"checks":{...}}`, each reason a short code with
 * its detail (`store: disk_full`, `bus: NATS is not connected`, `channel telegram: plugin not loaded`,
 * `shutting down`). No paths or addresses: `/ready` needs no token.
 */
export function readiness(state: ReadyState): HealthAnswer {
  const reasons: string[] = [];
  const checks: Record<string, string> = {};
  if (state.stopping) reasons.push("shutting down");
  if (!state.started && !state.stopping) reasons.push("starting");
  checks.store = state.storeDown === undefined ? "ok" : state.storeDown;
  if (state.storeDown !== undefined) reasons.push(`store: ${state.storeDown} (the session store takes no writes)`);
  const missing = state.missingChannelPlugins ?? [];
  checks.plugins = missing.length === 0 ? "ok" : "channel plugins missing";
  for (const c of missing) reasons.push(`channel ${c}: its plugin is not loaded`);
  checks.bus = state.bus === undefined ? "not_configured" : state.bus ? "ok" : "disconnected";
  if (state.bus === false) reasons.push("bus: NATS is not connected (channel messages wait in the disk spool)");
  return reasons.length === 0
    ? { status: 200, body: JSON.stringify({ status: "ready", checks }) }
    : { status: 503, body: JSON.stringify({ status: "not_ready", reasons, checks }) };
}

/** Configured channels whose plugin is not loaded (their webhooks answer 503). */
function missingChannelPlugins(config: Config, plugins: PluginHost): string[] {
  if (config.channels.length === 0) return [];
  const loaded = new Set(plugins.channelPlugins().map((p) => p.name));
  return config.channels.filter((c) => !loaded.has(c.plugin)).map((c) => c.name);
}

/**
 * Sets up metrics (`[metrics] enabled`, default on: prom-client, loaded once the gateway is ready,
 * see telemetry/deferred.ts) and traces (when
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set: the OpenTelemetry SDK, loaded here and only then). A
 * tracer that cannot start is logged at warn and left off; the gateway serves without it.
 */
async function openTelemetry(
  config: Config,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<{ sink: Telemetry; metrics?: DeferredMetrics; tracing?: Tracing }> {
  const metrics = (config.metrics?.enabled ?? true) ? deferMetrics(() => loadPrometheus().then((m) => new m.PromMetrics())) : undefined;
  const [tracing] = await Promise.all([
    tracingRequested(env)
      ? startTracing(env).catch((err: unknown) => {
          logger.warn({ error: errorMessage(err) }, "cannot start OpenTelemetry tracing; the gateway runs without traces");
          return undefined;
        })
      : undefined,
  ]);
  if (tracing !== undefined)
    logger.info({ endpoint: redactUrl((env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT)!.trim()) }, "OpenTelemetry tracing on");
  return {
    sink: createTelemetry({ ...(metrics ? { metrics: metrics.recorder } : {}), ...(tracing ? { tracing } : {}) }),
    ...(metrics ? { metrics } : {}),
    ...(tracing ? { tracing } : {}),
  };
}
