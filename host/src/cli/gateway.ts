import { chmod, mkdir, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { AgentRuntime, createProviderSet, type SettledTurn } from "../agent/index.js";
import { createChannelService, type ChannelService } from "../channels/index.js";
import { loadConfig, type ConfigFlags } from "../config/index.js";
import { HEALTH_BODY, startGateway } from "../gateway/index.js";
import { ApprovalStore, loadPlugins, ValidationCache, watchPluginDirs } from "../plugins/index.js";
import { compileRouter } from "../router/index.js";
import { describeStoreUrl, openSessionLog, type SessionLog } from "../store/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { processSecrets, registerConfigSecrets } from "../log/index.js";
import type { Config } from "../config/index.js";
import { claimBusInstance, createBus, eventsSubject, type Bus, type BusInstance } from "../bus/index.js";


/** A running gateway process, as the CLI holds it. */
export interface GatewayProcess {
  port: number;
  /** `[gateway] shutdown_grace_ms`: how long `shutdown` lets running turns finish, ms. */
  shutdownGraceMs: number;
  /** Drains turns (up to the grace period), closes sockets and plugins. Idempotent. */
  shutdown(): Promise<void>;
  /**
   * Resolves (never rejects) with the reason when the gateway can no longer serve and must be
   * restarted: the session store stopped taking writes (e.g. its disk filled up). `/health`
   * answers 503 from then on; the CLI shuts down and exits non-zero so a supervisor restarts it.
   */
  broken: Promise<string>;
}

/** The `/health` body while the session store takes no writes (no paths: `/health` needs no token). */
function storeUnavailableHealth(reason: string): { status: 503; body: string } {
  return { status: 503, body: JSON.stringify({ status: "store_unavailable", reason, message: "the session store takes no writes; the gateway is restarting" }) };
}

/**
 * Starts everything `exoclaw gateway` runs: config, plugins, router, agent runtime, gateway.
 * @throws ConfigError / RouterConfigError for bad configuration; Error when the port cannot be bound
 */
export async function runGateway(flags: ConfigFlags, logger: Logger): Promise<GatewayProcess> {
  const t0 = performance.now();
  const config = loadConfig(flags, process.env, [BUILTIN_PLUGINS_DIR]);
  // Secret values are scrubbed from every log line from here on (and from provider error text
  // and channel failure notices), whatever field or message carries them.
  const short = registerConfigSecrets(processSecrets, configSecretSources(config), process.env);
  for (const name of short) logger.warn({ secret: name }, "a secret is shorter than 8 characters: it is not scrubbed from logs");
  const router = compileRouter(config.bindings, config.agents.map((a) => a.id), config.defaultAgent);
  await secureStateDir(config.stateDir, logger);
  // The session store opens while plugins load (the embedded SurrealDB engine loads in ~40 ms).
  const tStore = performance.now();
  let storeOpenMs = 0;
  let markBroken: (reason: string) => void = () => {};
  const broken = new Promise<string>((resolve) => (markBroken = resolve));
  let storeDown: string | undefined;
  const opening = openSessionLog({
    ...config.store,
    logger: { info: (m) => logger.info({ store: describeStoreUrl(config.store.url) }, m), warn: (m) => logger.warn({ store: describeStoreUrl(config.store.url) }, m) },
    onUnhealthy: (h) => {
      storeDown = h.reason;
      logger.fatal({ store: describeStoreUrl(config.store.url), reason: h.reason, error: h.message }, "the session store takes no writes: the gateway is not ready and shuts down so that a supervisor restarts it");
      markBroken(h.reason);
    },
  }).then((l) => ((storeOpenMs = performance.now() - tStore), l));
  opening.catch(() => {});
  const pluginsLoading = loadPlugins({
    dirs: config.plugins.dirs,
    logger,
    defaultLimits: config.plugins.defaultLimits,
    limits: config.plugins.limits,
    grants: config.plugins.grants,
    stateDir: config.stateDir,
    // Module metadata by sha256 survives restarts: validating then skips compiling.
    // (kept in the trust directory, outside every plugin directory; see docs/security.md)
    validationCache: await ValidationCache.open(ValidationCache.pathFor(config.stateDir)),
  });
  // The bus never blocks start-up on NATS for more than its connect wait (2 s): with NATS down
  // the gateway serves, and channel messages wait in the disk spool.
  // The member id is kept in the state directory, so a restart after a crash takes its
  // partitions back at once instead of after the lease TTL.
  let busInstance: BusInstance | undefined;
  const busOpening: Promise<Bus | undefined> =
    config.bus === undefined
      ? Promise.resolve(undefined)
      : claimBusInstance(config.stateDir).then((instance) => {
          busInstance = instance;
          return createBus({
            kind: "nats",
            servers: config.bus!.servers,
            stateDir: config.stateDir,
            instanceId: instance.id,
            ...(config.bus!.partitions !== undefined ? { partitions: config.bus!.partitions } : {}),
            ...(config.bus!.ackWaitMs !== undefined ? { ackWaitMs: config.bus!.ackWaitMs } : {}),
            ...(config.bus!.leaseTtlMs !== undefined ? { leaseTtlMs: config.bus!.leaseTtlMs } : {}),
            ...(config.bus!.reorderWindowMs !== undefined ? { reorderWindowMs: config.bus!.reorderWindowMs } : {}),
            // `[bus] outage = "refuse"`: channel messages are never spooled; intake answers 503
            ...(config.bus!.outage === "refuse" ? { unspooledStreams: ["in" as const] } : {}),
            name: `exoclaw-gateway-${instance.id}`,
            onWarning: (message, error) => logger.warn({ bus: "nats", error: error instanceof Error ? error.message : error === undefined ? undefined : String(error) }, message),
          }).catch(async (err: unknown) => {
            await instance.release();
            throw err;
          });
        });
  busOpening.catch(() => {});
  const closeBus = () => busOpening.then((b) => b?.close().then(() => busInstance?.release()), () => {});
  let plugins: Awaited<typeof pluginsLoading>;
  let log: SessionLog;
  let bus: Bus | undefined;
  try {
    plugins = await pluginsLoading;
  } catch (err) {
    await opening.then((l) => l.close(), () => {});
    await closeBus();
    throw err;
  }
  try {
    log = await opening;
  } catch (err) {
    await plugins.close();
    await closeBus();
    throw err;
  }
  try {
    bus = await busOpening;
  } catch (err) {
    await plugins.close();
    await log.close();
    throw err;
  }
  // The approvals directory exists from the start, so that its watch is in place before the
  // first `exoclaw plugin approve` (best effort: without it approvals apply on restart).
  if (config.plugins.watch) await mkdir(dirname(ApprovalStore.pathFor(config.stateDir)), { recursive: true, mode: 0o700 }).catch(() => {});
  const watcher = config.plugins.watch
    ? watchPluginDirs(plugins, config.plugins.userDirs, { logger, approvalsFile: ApprovalStore.pathFor(config.stateDir) })
    : null;
  const t1 = performance.now();
  // The runtime and the channels service need each other (the `message_send` tool and recovered
  // turns go out through channels; channels run turns): late-bound through `channels`.
  let channels: ChannelService | undefined;
  const runtime = new AgentRuntime({
    agents: config.agents,
    providers: createProviderSet(config.providers, { logger }),
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
    // Turn outcomes for observers on other processes (metadata only, no content: the session
    // log, with its redactor, is where content lives). With NATS down they wait in the spool.
    ...(bus !== undefined ? { onTurnSettled: (turn: SettledTurn) => publishTurnEvent(bus!, turn, logger) } : {}),
  });
  try {
    channels = createChannelService({
      channels: config.channels,
      plugins,
      router,
      runtime,
      stateDir: config.stateDir,
      logger,
      // The reply outbox lives in the session log (docs/reliability.md, "A crash between answer and reply").
      replies: log,
      ...(bus !== undefined ? { bus: { bus, maxDeliver: config.bus!.maxDeliver } } : {}),
    });
  } catch (err) {
    await runtime.drain(0);
    await watcher?.close();
    await plugins.close();
    await log.close();
    await bus?.close();
    await busInstance?.release();
    throw err;
  }
  // A channel whose plugin is not loaded is not fatal: the plugin may be hot-loaded later.
  for (const warning of channels.check()) logger.warn({ reason: warning }, "channel configuration");
  const channelService = channels;
  let gateway;
  let recoverMs = 0;
  try {
    // Turns a previous process accepted but did not finish are re-queued (or failed) before any
    // new request can take their place in a session's lane.
    const tRecover = performance.now();
    const sharedStore = config.store.url.startsWith("nats://") || /^wss?:\/\//.test(config.store.url);
    if (bus !== undefined && sharedStore) {
      // Other live gateways share this store: their running turns look unfinished from here.
      // Channel messages left by a dead process come back from the bus instead (see bus.ts).
      logger.info({ store: describeStoreUrl(config.store.url) }, "shared session store with a bus: start-up recovery skipped (the bus redelivers unfinished channel messages)");
    } else {
      await runtime.recover();
      // Replies a previous process owed (its turns ended, the replies had not gone out) go out
      // again, in each peer's order; a re-run turn's reply when it ends.
      await channelService.resumeReplies();
    }
    recoverMs = performance.now() - tRecover;
    gateway = await startGateway(config.gateway, {
      router,
      runtime,
      log,
      plugins,
      logger,
      startedAt: 0,
      webhooks: channelService,
      channels: () => channelService.counters(),
      bus: () => (bus === undefined ? null : bus.status()),
      health: () => (storeDown === undefined ? { status: 200, body: HEALTH_BODY } : storeUnavailableHealth(storeDown)),
    });
    // Consuming starts after recovery, so a redelivered message finds its recovered turn.
    await channelService.bus?.start();
    channelService.startPolling();
  } catch (err) {
    await channelService.stop();
    await channelService.closeReplies();
    await channelService.bus?.stopInbound();
    await runtime.drain(0);
    await channelService.bus?.stopOutbound();
    await watcher?.close();
    await plugins.close();
    await log.close();
    await bus?.close();
    await busInstance?.release();
    throw err;
  }
  const main = config.agents.find((a) => a.id === config.defaultAgent)!;
  logger.info(
    {
      url: `ws://${gateway.host.includes(":") ? `[${gateway.host}]` : gateway.host}:${gateway.port}/ws`,
      host: gateway.host,
      port: gateway.port,
      transport: gateway.transport,
      plugins: plugins.plugins().map((p) => p.manifest.name),
      tools: plugins.tools().map((t) => t.name),
      channels: config.channels.map((c) => c.name),
      agent: main.id,
      provider: main.provider,
      model: main.model,
      config: config.source ?? null,
      store: describeStoreUrl(config.store.url),
      bus: bus === undefined ? null : { kind: bus.kind, servers: config.bus!.servers.map((u) => u.replace(/\/\/[^/@]*@/, "//")), connected: bus.status().connected },
      readyMs: Math.round(performance.now()),
      startupMs: {
        modules: Math.round(t0),
        configAndPlugins: Math.round(t1 - t0),
        storeOpen: Math.round(storeOpenMs),
        recover: Math.round(recoverMs),
        listen: Math.round(performance.now() - t1),
      },
    },
    "gateway ready",
  );
  let done: Promise<void> | undefined;
  return {
    port: gateway.port,
    shutdownGraceMs: config.gateway.shutdownGraceMs,
    broken,
    shutdown: () =>
      (done ??= (async () => {
        logger.info({ activeTurns: runtime.activeTurns(), graceMs: config.gateway.shutdownGraceMs }, "shutting down");
        // Pollers stop first (a poll in flight is admitted), so no new turn starts while draining.
        await channelService.stop();
        // The bus consumer stops taking messages and waits for its running turns, which the
        // drain bounds; messages not handled go back to NATS for the next gateway.
        const t = performance.now();
        await Promise.all([channelService.bus?.stopInbound(), runtime.drain(config.gateway.shutdownGraceMs)]);
        const tDrained = performance.now();
        // Replies of the drained turns go out before the plugins close (bounded: a platform may hang).
        await channelService.idle(Math.min(5000, config.gateway.shutdownGraceMs + 1000));
        // Replies still being retried stay owed in the store: the next start sends them.
        await channelService.closeReplies();
        await channelService.bus?.stopOutbound();
        const tOut = performance.now();
        await bus?.close();
        await busInstance?.release();
        if (bus !== undefined) logger.debug({ drainMs: Math.round(tDrained - t), outboundMs: Math.round(tOut - tDrained), busCloseMs: Math.round(performance.now() - tOut) }, "bus stopped");
        await gateway.close();
        await watcher?.close();
        await plugins.close();
        await log.close();
        logger.info("stopped");
      })()),
  };
}

/**
 * Publishes a settled turn to `exoclaw.events.<agent>` (MessagePack, msg id `turn:<runId>`, so a
 * re-publish is dropped by the stream): `{type: "turn_settled", at (ms since epoch), ...turn}`.
 * Never throws; a failed publish is logged at warn.
 */
function publishTurnEvent(bus: Bus, turn: SettledTurn, logger: Logger): void {
  bus.publish(eventsSubject(turn.agentId), { type: "turn_settled", at: Date.now(), ...turn }, { msgId: `turn:${turn.runId}` }).catch((err: unknown) => {
    logger.warn({ runId: turn.runId, agent: turn.agentId, error: err instanceof Error ? err.message : String(err) }, "cannot publish the turn event to the bus");
  });
}

/** Where the configuration keeps secret values (for the log scrubber; see `registerConfigSecrets`). */
function configSecretSources(config: Config): Parameters<typeof registerConfigSecrets>[1] {
  return {
    gatewayToken: config.gateway.token,
    providerKeys: Object.fromEntries(Object.entries(config.providers).map(([name, p]) => [name, p.apiKey])),
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
export async function secureStateDir(dir: string, logger: Logger): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const mode = (await stat(dir)).mode & 0o777;
  if ((mode & 0o077) === 0) return;
  try {
    await chmod(dir, 0o700);
    logger.warn({ stateDir: dir, mode: mode.toString(8) }, "the state directory was open to other users; its mode is now 700");
  } catch (err) {
    logger.warn({ stateDir: dir, mode: mode.toString(8), error: (err as Error).message }, "the state directory is open to other users and cannot be narrowed to 700");
  }
}
