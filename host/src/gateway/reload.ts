/**
 * Live configuration reload: re-reads the config file (on change, SIGHUP or the `config.reload`
 * RPC), checks it completely, and swaps what can change while running — agents, the default
 * agent, bindings, channels (allowlists, limits, plugins), plugin grants and limits — in one
 * synchronous step, so the next turn sees all of it and a running turn finishes on the snapshot
 * it started with. An invalid file changes nothing (the error, naming the field, is logged and
 * returned); changes that need a restart are listed, not silently ignored. See
 * docs/architecture.md, "Reloading the configuration".
 */
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import type { Logger } from "pino";
import type { AgentRuntime } from "../agent/index.js";
import type { ChannelService } from "../channels/index.js";
import type { Config } from "../config/index.js";
import { processSecrets } from "../log/index.js";
import type { PluginHost } from "../plugins/index.js";
import { compileRouter, type InboundAddress, type Route, type Router } from "../router/index.js";
import { errorMessage, KeyedChain, watchFiles, type FileWatch } from "../util/index.js";

/** What started a reload. */
export type ReloadTrigger = "file" | "signal" | "rpc";

/** The outcome of one reload: the `config.reload` RPC result, and the fields of its log line. */
export interface ConfigReloadResult {
  /** `applied`: something changed (live or restart-needed); `unchanged`: nothing differs; `invalid`: nothing changed, see `error`. */
  status: "applied" | "unchanged" | "invalid";
  trigger: ReloadTrigger;
  /** The config file read, or null (defaults and environment only). */
  source: string | null;
  /** Config keys whose new values are in effect from the next turn (`agents.main`, `bindings`, `channels.telegram`, `plugins.grants.web`, ...). */
  changed: string[];
  /** Config keys that changed but take effect only after a restart (`gateway.port`, `store`, ...); the running values stay. */
  restartRequired: string[];
  /** Plugins whose sandbox pool was replaced (grants or limits changed). */
  pluginsSwapped: string[];
  /** Why the file was refused (`status: "invalid"`): the config error, naming the file and field. */
  error?: string;
}

/** A router whose bindings a reload replaces; callers keep this one object. */
export class SwappableRouter implements Router {
  constructor(private current: Router) {}

  resolve(address: InboundAddress): Route {
    return this.current.resolve(address);
  }

  /** Makes `next` answer every `resolve` from now on. */
  swap(next: Router): void {
    this.current = next;
  }
}

/** `[gateway]` fields (camelCase in {@link Config}) by their key in exoclaw.toml; all need a restart. */
const GATEWAY_KEYS: Record<string, string> = {
  bind: "gateway.bind",
  port: "gateway.port",
  token: "gateway.token",
  maxFrameBytes: "gateway.max_frame_bytes",
  maxBufferedBytes: "gateway.max_buffered_bytes",
  shutdownGraceMs: "gateway.shutdown_grace_ms",
  transport: "gateway.transport",
  heap: "gateway.heap",
  allowedOrigins: "gateway.allowed_origins",
  allowedHosts: "gateway.allowed_hosts",
  clients: "gateway.clients",
  webhooks: "gateway.webhooks",
  tls: "gateway.tls",
  ui: "gateway.ui",
};

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Keys of `a` and `b` whose values differ, in the order first seen. */
function differingKeys<T>(a: Record<string, T>, b: Record<string, T>): string[] {
  return [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => !same(a[k], b[k]));
}

/**
 * What differs between the running configuration and a new one, by config key (never values:
 * tokens and keys are compared, not shown).
 * @returns `live`: keys a reload applies; `restart`: keys that need a restart
 */
export function diffConfig(running: Config, next: Config): { live: string[]; restart: string[] } {
  const live: string[] = [];
  const restart: string[] = [];
  const agentsOf = (c: Config) => Object.fromEntries(c.agents.map((a) => [a.id, a]));
  live.push(...differingKeys(agentsOf(running), agentsOf(next)).map((id) => `agents.${id}`));
  if (running.defaultAgent !== next.defaultAgent) live.push("default_agent");
  if (!same(running.bindings, next.bindings)) live.push("bindings");
  const channelsOf = (c: Config) => Object.fromEntries(c.channels.map((ch) => [ch.name, ch]));
  live.push(...differingKeys(channelsOf(running), channelsOf(next)).map((name) => `channels.${name}`));
  live.push(...differingKeys(running.plugins.grants, next.plugins.grants).map((name) => `plugins.grants.${name}`));
  if (!same(running.plugins.limits, next.plugins.limits) || !same(running.plugins.defaultLimits, next.plugins.defaultLimits)) live.push("plugins.limits");
  // `[hooks]` is read at each hook call (agent/hooks).
  if (!same(running.hooks, next.hooks)) live.push("hooks");
  const gw = running.gateway as unknown as Record<string, unknown>;
  const nextGw = next.gateway as unknown as Record<string, unknown>;
  restart.push(...differingKeys(gw, nextGw).map((k) => GATEWAY_KEYS[k] ?? `gateway.${k}`));
  restart.push(...differingKeys(running.providers, next.providers).map((p) => `providers.${p}`));
  if (!same(running.store, next.store)) restart.push("store");
  if (!same(running.bus, next.bus)) restart.push("bus");
  // MCP servers are started once (host/src/mcp): a changed [mcp] section applies on restart.
  if (!same(running.mcp?.servers ?? [], next.mcp?.servers ?? [])) restart.push("mcp");
  if (!same(running.plugins.dirs, next.plugins.dirs)) restart.push("plugins.dirs");
  if (running.plugins.watch !== next.plugins.watch) restart.push("plugins.watch");
  if (running.stateDir !== next.stateDir) restart.push("state_dir");
  if ((running.metrics?.enabled ?? true) !== (next.metrics?.enabled ?? true)) restart.push("metrics.enabled");
  // Global and per-peer budgets and prices: the guard is built at start (an agent's own budget is live, with its agent).
  if (!same(running.pricing, next.pricing)) restart.push("pricing");
  if (!same(running.budgets, next.budgets)) restart.push("budgets");
  return { live, restart };
}

/** The running parts a reload reconfigures. */
export interface ReloadTargets {
  router: SwappableRouter;
  runtime: Pick<AgentRuntime, "stageAgents">;
  channels: Pick<ChannelService, "stageChannels">;
  plugins: Pick<PluginHost, "reconfigure">;
}

/** Options of {@link ConfigReloader}. */
export interface ConfigReloaderOptions {
  /** The configuration the gateway started with. */
  initial: Config;
  /** Reads the configuration again the way start-up did (same flags and environment). @throws ConfigError */
  load: () => Config;
  targets: ReloadTargets;
  logger: Logger;
  /** Registers the new configuration's secret values with the log scrubber (before anything is logged about it). */
  registerSecrets?: (config: Config) => void;
}

/**
 * Holds the running configuration and applies new ones; reloads run one at a time, in order.
 * The data flows down: the reloader hands each part its new settings (router, agent runtime,
 * channels, plugin host); no part reads a global.
 */
export class ConfigReloader {
  private running: Config;
  private readonly chain = new KeyedChain();
  /** sha256 of the file text last looked at by a file-triggered reload (an unchanged file is not re-applied). */
  private lastSeen: string | undefined;
  private watch: FileWatch | undefined;

  constructor(private readonly options: ConfigReloaderOptions) {
    this.running = options.initial;
    this.lastSeen = this.fileHash();
  }

  /** The configuration in effect (restart-needed keys keep their running values). */
  current(): Config {
    return this.running;
  }

  /**
   * Starts watching the config file (when there is one): a change is reloaded after 150 ms of
   * quiet. Idempotent; {@link close} stops it.
   */
  watchFile(): void {
    const source = this.running.source;
    if (source === undefined || this.watch !== undefined) return;
    this.watch = watchFiles([source], () => void this.reload("file"));
  }

  /** Stops watching the file. */
  close(): void {
    this.watch?.close();
  }

  /**
   * Reads and applies the configuration (see the module comment). Never rejects.
   * A `file` trigger whose file text did not change since the last look does nothing.
   */
  reload(trigger: ReloadTrigger): Promise<ConfigReloadResult> {
    return this.chain.run("reload", () => this.apply(trigger));
  }

  private fileHash(): string | undefined {
    const source = this.running.source;
    if (source === undefined) return undefined;
    try {
      return createHash("sha256").update(readFileSync(source)).digest("hex");
    } catch {
      return undefined;
    }
  }

  private async apply(trigger: ReloadTrigger): Promise<ConfigReloadResult> {
    const { logger, targets } = this.options;
    const source = this.running.source ?? null;
    const base = { trigger, source, changed: [], restartRequired: [], pluginsSwapped: [] };
    // Any reload reads the file: a watch event that follows a SIGHUP for the same edit is then a no-op.
    const hash = this.fileHash();
    if (trigger === "file" && hash === this.lastSeen) return { ...base, status: "unchanged" };
    this.lastSeen = hash;
    let next: Config;
    let commits: (() => void)[];
    let restartRequired: string[];
    let changed: string[];
    try {
      next = this.options.load();
      this.options.registerSecrets?.(next);
      const diff = diffConfig(this.running, next);
      changed = diff.live;
      restartRequired = diff.restart;
      // Everything is compiled before anything is swapped: a bad binding, allowlist or agent
      // leaves the running configuration whole.
      const router = compileRouter(
        next.bindings,
        next.agents.map((a) => a.id),
        next.defaultAgent,
      );
      const agents = targets.runtime.stageAgents(next.agents);
      const channels = targets.channels.stageChannels(next.channels);
      restartRequired.push(...channels.restartRequired);
      changed = changed.filter((k) => !channels.restartRequired.includes(k));
      commits = [() => targets.router.swap(router), agents, () => channels.commit()];
    } catch (err) {
      const error = processSecrets.scrub(errorMessage(err));
      logger.error({ trigger, source, error }, "config reload refused: the file is invalid; the running configuration stays");
      return { ...base, status: "invalid", error };
    }
    if (changed.length === 0 && restartRequired.length === 0) {
      logger.info({ trigger, source }, "config reloaded: nothing changed");
      return { ...base, status: "unchanged" };
    }
    // One synchronous step: no turn starts between these swaps.
    for (const commit of commits) commit();
    const running = this.running;
    this.running = {
      ...running,
      agents: next.agents,
      defaultAgent: next.defaultAgent,
      bindings: next.bindings,
      channels: next.channels,
      plugins: {
        ...running.plugins,
        grants: next.plugins.grants,
        limits: next.plugins.limits,
        defaultLimits: next.plugins.defaultLimits,
        maxInstances: next.plugins.maxInstances,
      },
    };
    const pluginsSwapped = await targets.plugins
      .reconfigure({ grants: next.plugins.grants, limits: next.plugins.limits, defaultLimits: next.plugins.defaultLimits, env: next.secretEnv })
      .catch((err: unknown) => {
        logger.error({ trigger, error: errorMessage(err) }, "config reload: plugin grants or limits could not be applied; plugins keep their previous ones");
        return [];
      });
    logger.info({ trigger, source, changed, restartRequired, pluginsSwapped }, "config reloaded");
    if (restartRequired.length > 0) {
      logger.warn({ trigger, source, keys: restartRequired }, "config changes need a restart to take effect; the running values stay until then");
    }
    return { ...base, status: "applied", changed, restartRequired, pluginsSwapped };
  }
}
