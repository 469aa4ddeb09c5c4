import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { Logger } from "pino";
import { AgentRuntime, createProviderSet } from "../agent/index.js";
import type { ChatMessage } from "../agent/types.js";
import { loadConfig, type ConfigFlags } from "../config/index.js";
import { startGateway } from "../gateway/index.js";
import { ApprovalStore, loadPlugins, ValidationCache, watchPluginDirs } from "../plugins/index.js";
import { compileRouter } from "../router/index.js";
import { createMemoryStore } from "../store/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";


/** A running gateway process, as the CLI holds it. */
export interface GatewayProcess {
  port: number;
  /** Drains turns (up to the grace period), closes sockets and plugins. Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Starts everything `exoclaw gateway` runs: config, plugins, router, agent runtime, gateway.
 * @throws ConfigError / RouterConfigError for bad configuration; Error when the port cannot be bound
 */
export async function runGateway(flags: ConfigFlags, logger: Logger): Promise<GatewayProcess> {
  const t0 = performance.now();
  const config = loadConfig(flags, process.env, [BUILTIN_PLUGINS_DIR]);
  const router = compileRouter(config.bindings, config.agents.map((a) => a.id), config.defaultAgent);
  const plugins = await loadPlugins({
    dirs: config.plugins.dirs,
    logger,
    defaultLimits: config.plugins.defaultLimits,
    limits: config.plugins.limits,
    grants: config.plugins.grants,
    stateDir: config.stateDir,
    // Module metadata by sha256 survives restarts: validating then skips compiling.
    validationCache: await ValidationCache.open(join(config.stateDir, "plugins", "validated.json")),
  });
  // The approvals directory exists from the start, so that its watch is in place before the
  // first `exoclaw plugin approve` (best effort: without it approvals apply on restart).
  if (config.plugins.watch) await mkdir(dirname(ApprovalStore.pathFor(config.stateDir)), { recursive: true }).catch(() => {});
  const watcher = config.plugins.watch
    ? watchPluginDirs(plugins, config.plugins.userDirs, { logger, approvalsFile: ApprovalStore.pathFor(config.stateDir) })
    : null;
  const t1 = performance.now();
  const runtime = new AgentRuntime({
    agents: config.agents,
    providers: createProviderSet(config.providers),
    plugins,
    store: createMemoryStore<ChatMessage>(),
  });
  let gateway;
  try {
    gateway = await startGateway(config.gateway, { router, runtime, plugins, logger, startedAt: 0 });
  } catch (err) {
    await watcher?.close();
    await plugins.close();
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
      agent: main.id,
      provider: main.provider,
      model: main.model,
      config: config.source ?? null,
      readyMs: Math.round(performance.now()),
      startupMs: { modules: Math.round(t0), configAndPlugins: Math.round(t1 - t0), listen: Math.round(performance.now() - t1) },
    },
    "gateway ready",
  );
  let done: Promise<void> | undefined;
  return {
    port: gateway.port,
    shutdown: () =>
      (done ??= (async () => {
        logger.info({ activeTurns: runtime.activeTurns(), graceMs: config.gateway.shutdownGraceMs }, "shutting down");
        await runtime.drain(config.gateway.shutdownGraceMs);
        await gateway.close();
        await watcher?.close();
        await plugins.close();
        logger.info("stopped");
      })()),
  };
}
