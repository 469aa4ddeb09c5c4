import type { Logger } from "pino";
import { loadConfig, type ConfigFlags } from "../config/index.js";
import { createGatewayApp, type GatewayApp } from "../gateway/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { applyHeapMode } from "./heap.js";

/**
 * Starts everything `exoclaw gateway` runs (see `createGatewayApp`, host/src/gateway/app.ts) and
 * prints its `gateway ready` line (the line supervisors and the tests wait for).
 * @returns the started app; the caller stops it (signals, a broken store)
 * @throws ConfigError / RouterConfigError for bad configuration; Error when the port cannot be
 *   bound (everything opened before is closed again first)
 */
export async function runGateway(flags: ConfigFlags, logger: Logger): Promise<GatewayApp> {
  const loadStartedAt = performance.now();
  const load = () => loadConfig(flags, process.env, [BUILTIN_PLUGINS_DIR]);
  const config = load();
  // The heap mode is read once, at start (a reload cannot undo V8 flags).
  const v8Flags = applyHeapMode(config.gateway.heap);
  if (v8Flags.length > 0) logger.debug({ heap: config.gateway.heap, v8Flags }, "heap mode");
  // `loadConfig`: reloads (file changes, SIGHUP, `config.reload`) read the file the same way.
  const app = createGatewayApp({ config, logger, loadStartedAt, loadConfig: load });
  logger.info(await app.start(), "gateway ready");
  return app;
}
