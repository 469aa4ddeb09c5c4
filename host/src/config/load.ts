import { toCronJobs, toHeartbeat } from "./automation-schema.js";
import { resolveApprovals } from "./approvals.js";
import { resolveHooks } from "./hooks.js";
import { readFileSync, existsSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import * as z from "zod";
import { DEFAULT_LIMITS, type PluginLimits, DEFAULT_KV_QUOTA_BYTES, type OperatorGrant } from "../plugins/index.js";
import { FileConfigSchema, hostEntry, NATS_URL_RE, originEntry, STORE_URL_RE, type FileConfig } from "./schema.js";
import {
  CHANNEL_DEFAULTS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_QUEUE,
  DEFAULT_TURN_TIMEOUT_MS,
  DEFAULT_LOOP_LIMIT,
  WEBHOOK_LIMIT_DEFAULTS,
  type AgentConfig,
  type BudgetLimits,
  type BusSettings,
  type ChannelConfig,
  type ClientEntry,
  type Config,
  type ProviderName,
  type StoreConfig,
} from "./types.js";
import { GATEWAY_ACCOUNT } from "../protocol/index.js";
import { parseDuration } from "../util/index.js";
import { toChannelGroups } from "./channel-groups.js";
import { toChannelStream } from "./channel-stream.js";
import { ConfigError } from "./errors.js";
import { secretEnv } from "./credentials.js";
import { resolveMcpServers } from "./mcp.js";
import { locateKey } from "./edit.js";
import { DEFAULT_ON_DISK_ENGINE, detectOnDiskEngine } from "../store/index.js";

export { ConfigError };

/** Overrides from the command line; each wins over file and environment. */
export interface ConfigFlags {
  config?: string;
  port?: number;
  bind?: string;
  pluginsDir?: string;
}

/** Default model per provider when neither config nor `EXOCLAW_MODEL` names one. */
export const DEFAULT_MODELS: Record<ProviderName, string> = {
  anthropic: "claude-sonnet-4-6",
  openai: "gpt-5.4-mini",
  ollama: "llama3.2",
  gemini: "gemini-2.5-flash",
};

/** Default `context_window` of an agent, tokens. */
export const DEFAULT_CONTEXT_WINDOW = 100_000;

/** Default `[bus] max_deliver`: handler attempts before a channel message is dead-lettered. */
export const DEFAULT_BUS_MAX_DELIVER = 3;

/**
 * Splits `nats://a:4222,nats://b:4222` into server URLs.
 * @throws ConfigError naming `where` when an entry is not `nats://host[:port]`
 */
export function parseNatsUrls(value: string, where: string): string[] {
  const servers = value
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  const bad = servers.find((u) => !NATS_URL_RE.test(u));
  if (servers.length === 0 || bad !== undefined) {
    throw new ConfigError(`${where}="${(bad ?? value).replace(/\/\/[^/@]*@/, "//***@")}" is not "nats://host:port" (or a comma-separated list of them)`);
  }
  return servers;
}

/**
 * `surrealkv://<dir>` / `rocksdb://<dir>` with `~` expanded and a relative directory resolved
 * against `baseDir`; other URLs unchanged.
 */
function resolveStoreUrl(url: string, baseDir: string): string {
  const scheme = /^(surrealkv|rocksdb):\/\//.exec(url)?.[1];
  if (!scheme) return url;
  const [path = "", query] = url.slice(`${scheme}://`.length).split("?", 2);
  const abs = resolve(baseDir, expandHome(path));
  return `${scheme}://${abs}${query !== undefined ? `?${query}` : ""}`;
}

/**
 * The default store URL for `dir` (`<state dir>/data`): the engine an existing store there was
 * written by (surrealkv for stores made before rocksdb became the default), else rocksdb.
 */
function defaultStoreUrl(dir: string): string {
  return `${detectOnDiskEngine(dir) ?? DEFAULT_ON_DISK_ENGINE}://${dir}`;
}

const DEFAULT_PORT = 7200;
const DEFAULT_BIND = "127.0.0.1";
const PROVIDERS: readonly ProviderName[] = ["anthropic", "openai", "ollama", "gemini"];

/** The variable each SDK reads its base URL from (Gemini: `GOOGLE_GEMINI_BASE_URL`, as `@google/genai` does). */
const BASE_URL_VARS: Record<ProviderName, string> = {
  anthropic: "ANTHROPIC_BASE_URL",
  openai: "OPENAI_BASE_URL",
  ollama: "OLLAMA_HOST",
  gemini: "GOOGLE_GEMINI_BASE_URL",
};

/**
 * The variable holding a provider's key when `[providers.<name>] api_key_env` names none. Gemini:
 * `GOOGLE_API_KEY` when set, else `GEMINI_API_KEY` (the `@google/genai` SDK's own precedence).
 * Ollama takes no key.
 */
function defaultKeyVar(p: ProviderName, env: Record<string, string | undefined>): string | undefined {
  if (p === "anthropic") return "ANTHROPIC_API_KEY";
  if (p === "openai") return "OPENAI_API_KEY";
  if (p === "gemini") return env.GOOGLE_API_KEY ? "GOOGLE_API_KEY" : "GEMINI_API_KEY";
  return undefined;
}

/** The state directory: `EXOCLAW_STATE_DIR` or `~/.exoclaw`. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.EXOCLAW_STATE_DIR ? resolve(env.EXOCLAW_STATE_DIR) : join(homedir(), ".exoclaw");
}

/**
 * Picks the provider with zero config: `EXOCLAW_PROVIDER` when set; else `ANTHROPIC_API_KEY` ->
 * anthropic, `OPENAI_API_KEY` -> openai, `GEMINI_API_KEY` or `GOOGLE_API_KEY` -> gemini, else ollama.
 * @throws ConfigError if `EXOCLAW_PROVIDER` names an unknown provider
 */
export function detectProvider(env: NodeJS.ProcessEnv): ProviderName {
  const named = env.EXOCLAW_PROVIDER?.trim().toLowerCase();
  if (named) {
    if ((PROVIDERS as readonly string[]).includes(named)) return named as ProviderName;
    throw new ConfigError(`EXOCLAW_PROVIDER="${env.EXOCLAW_PROVIDER}" is not one of ${PROVIDERS.join(", ")}`);
  }
  if (env.ANTHROPIC_API_KEY) return "anthropic";
  if (env.OPENAI_API_KEY) return "openai";
  if (env.GEMINI_API_KEY || env.GOOGLE_API_KEY) return "gemini";
  return "ollama";
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

function parseIntVar(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name}="${raw}" is not a port number (0-65535)`);
  return n;
}

/**
 * A comma-separated list variable (`EXOCLAW_ALLOWED_ORIGINS=a,b`), each entry checked by `entry`.
 * @returns undefined when unset or empty
 * @throws ConfigError naming the variable and the bad entry
 */
function parseListVar(env: NodeJS.ProcessEnv, name: string, entry: z.ZodType<string>): string[] | undefined {
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const items = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const item of items) {
    const r = entry.safeParse(item);
    if (!r.success) throw new ConfigError(`${name}: "${item}" ${r.error.issues[0]?.message ?? "is not valid"}`);
  }
  return items;
}

/** Schema issues as `  <field>: <message> (line N)`, the line found in `text` when given. */
function formatZodError(file: string, error: z.ZodError, text?: string): string {
  const lines = error.issues.map((i) => {
    const path = i.path.filter((s): s is string | number => typeof s !== "symbol");
    const line = text === undefined ? undefined : locateKey(text, path);
    return `  ${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}${line !== undefined ? ` (line ${line})` : ""}`;
  });
  return `${file}: invalid configuration\n${lines.join("\n")}`;
}

type LimitsTable = { timeout_ms?: number; memory_mb?: number; max_output_bytes?: number; max_in_flight?: number; max_queued?: number };
type GrantTable = NonNullable<NonNullable<FileConfig["plugins"]>["grants"]>[string];
const LIMIT_KEYS = ["timeout_ms", "memory_mb", "max_output_bytes", "max_in_flight", "max_queued"];

function applyLimits(base: PluginLimits, t: LimitsTable): PluginLimits {
  return {
    timeoutMs: t.timeout_ms ?? base.timeoutMs,
    memoryBytes: t.memory_mb !== undefined ? t.memory_mb * 1024 * 1024 : base.memoryBytes,
    maxOutputBytes: t.max_output_bytes ?? base.maxOutputBytes,
    maxInFlight: t.max_in_flight ?? base.maxInFlight,
    maxQueued: t.max_queued ?? base.maxQueued,
  };
}

/** `[plugins.grants.<plugin>]` as an `OperatorGrant`; relative fs host paths are resolved against `baseDir`. */
function toOperatorGrant(t: GrantTable, baseDir: string): OperatorGrant {
  const g: OperatorGrant = {};
  if (t.http) g.http = { hosts: t.http.hosts, ...(t.http.methods ? { methods: t.http.methods } : {}) };
  if (t.kv) g.kv = { quotaBytes: t.kv.quota_bytes ?? DEFAULT_KV_QUOTA_BYTES };
  if (t.fs) g.fs = t.fs.map((f) => ({ guest: f.guest, host: resolve(baseDir, expandHome(f.host)), write: f.write === true }));
  if (t.config) g.config = { ...t.config };
  if (t.secrets)
    g.secrets = Object.fromEntries(Object.entries(t.secrets).map(([k, v]) => [k, { env: v.env, ...(v.allow_insecure ? { allowInsecure: true } : {}) }]));
  if (t.clock) g.clock = true;
  if (t.random) g.random = true;
  if (t.log) g.log = true;
  if (t.hooks) g.hooks = [...t.hooks];
  return g;
}

/**
 * Reads and validates a TOML config file.
 * @throws ConfigError naming the file and the offending field, for unreadable files, TOML syntax errors and schema violations
 */
export function readConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${path}: cannot read config file (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    const at = err as { line?: number; column?: number };
    const where = typeof at.line === "number" ? `${path}:${at.line}${typeof at.column === "number" ? `:${at.column}` : ""}` : path;
    throw new ConfigError(`${where}: TOML syntax error: ${(err as Error).message}`);
  }
  const parsed = FileConfigSchema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(formatZodError(path, parsed.error, text));
  return parsed.data;
}

/** `session_usd`, ... of a budget table as {@link BudgetLimits} (absent keys stay absent). */
function toBudgetLimits(t: Partial<Record<"session_usd" | "session_tokens" | "day_usd" | "day_tokens" | "month_usd" | "month_tokens", number>>): BudgetLimits {
  const out: BudgetLimits = {};
  if (t.session_usd !== undefined) out.sessionUsd = t.session_usd;
  if (t.session_tokens !== undefined) out.sessionTokens = t.session_tokens;
  if (t.day_usd !== undefined) out.dayUsd = t.day_usd;
  if (t.day_tokens !== undefined) out.dayTokens = t.day_tokens;
  if (t.month_usd !== undefined) out.monthUsd = t.month_usd;
  if (t.month_tokens !== undefined) out.monthTokens = t.month_tokens;
  return out;
}

/**
 * Resolves the configuration: built-in defaults, then the config file (`--config`,
 * `EXOCLAW_CONFIG`, or `<state dir>/exoclaw.toml` if it exists), then environment variables
 * (`EXOCLAW_PORT`, `EXOCLAW_BIND`, `EXOCLAW_TOKEN`, `EXOCLAW_PLUGINS_DIR`, `EXOCLAW_PROVIDER`,
 * `EXOCLAW_MODEL`, `EXOCLAW_TRANSPORT`, `EXOCLAW_HEAP`, `EXOCLAW_ALLOWED_ORIGINS`, `EXOCLAW_ALLOWED_HOSTS`, `EXOCLAW_STORE`, `EXOCLAW_NATS_URL`, the SDKs' `*_BASE_URL` / `GOOGLE_GEMINI_BASE_URL` / `OLLAMA_HOST`), then flags.
 *
 * @param builtinPluginDirs directories of first-party plugins, scanned before user directories
 * @throws ConfigError for any invalid value, naming where it came from
 */
export function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv, builtinPluginDirs: string[]): Config {
  const explicit = flags.config ?? env.EXOCLAW_CONFIG;
  const implicit = join(stateDir(env), "exoclaw.toml");
  const source = explicit ? resolve(explicit) : existsSync(implicit) ? implicit : undefined;
  const file: FileConfig = source ? readConfigFile(source) : {};
  const where = source ?? "defaults";

  const baseDir = source ? dirname(source) : process.cwd();
  // Every secret the config names is read here: env first, then <state dir>/credentials/<NAME>.
  const secrets = secretEnv(env, stateDir(env));
  // Zero-config detection sees keys kept as credentials too (env still wins).
  const provider = detectProvider({
    ...env,
    ANTHROPIC_API_KEY: secrets.ANTHROPIC_API_KEY,
    OPENAI_API_KEY: secrets.OPENAI_API_KEY,
    GEMINI_API_KEY: secrets.GEMINI_API_KEY,
    GOOGLE_API_KEY: secrets.GOOGLE_API_KEY,
  });
  const agents: AgentConfig[] = (file.agents?.length ? file.agents : [{ id: "main" }]).map((a, i) => {
    const models = a.models?.map((m) => {
      const slash = m.indexOf("/");
      return { provider: m.slice(0, slash) as ProviderName, model: m.slice(slash + 1) };
    });
    if (models && (a.provider !== undefined || a.model !== undefined)) {
      throw new ConfigError(`${where}: agents[${i}] ("${a.id}"): set either models or provider/model, not both (models[0] is the primary)`);
    }
    const p = models?.[0]?.provider ?? a.provider ?? provider;
    return {
      id: a.id,
      provider: p,
      model: models?.[0]?.model ?? a.model ?? (p === provider && env.EXOCLAW_MODEL ? env.EXOCLAW_MODEL : DEFAULT_MODELS[p]),
      ...(models ? { models } : {}),
      systemPrompt: a.system_prompt,
      maxIterations: a.max_iterations ?? 10,
      maxTokens: a.max_tokens ?? 4096,
      tools: a.tools ?? ["*"],
      contextWindow: a.context_window ?? DEFAULT_CONTEXT_WINDOW,
      ...(a.soul !== undefined ? { soulFile: resolve(baseDir, expandHome(a.soul)) } : {}),
      outbound: a.outbound ?? [],
      ...(a.approvals !== undefined ? { approvals: resolveApprovals(a.approvals) } : {}),
      queue: { mode: a.queue?.mode ?? DEFAULT_QUEUE.mode, cap: a.queue?.cap ?? DEFAULT_QUEUE.cap, drop: a.queue?.drop ?? DEFAULT_QUEUE.drop },
      ...(a.idle_timeout_ms !== undefined ? { idleTimeoutMs: a.idle_timeout_ms } : {}),
      turnTimeoutMs: a.turn_timeout_ms ?? DEFAULT_TURN_TIMEOUT_MS,
      loopLimit: a.loop_limit ?? DEFAULT_LOOP_LIMIT,
      ...(a.memory !== undefined && a.memory.enabled !== false
        ? {
            memory: {
              budgetTokens: a.memory.budget_tokens ?? 1024,
              notes: a.memory.notes ?? 20,
              recall: a.memory.recall ?? 5,
              share: a.memory.scope ?? "sender",
              sessionRecall: a.memory.session_recall ?? true,
              ...(a.memory.embeddings !== undefined
                ? {
                    embeddings: {
                      provider: a.memory.embeddings.slice(0, a.memory.embeddings.indexOf("/")) as "openai" | "gemini" | "ollama",
                      model: a.memory.embeddings.slice(a.memory.embeddings.indexOf("/") + 1),
                    },
                  }
                : {}),
            },
          }
        : {}),
      ...(a.heartbeat !== undefined ? { heartbeat: toHeartbeat(a.heartbeat)! } : {}),
      ...(a.budget !== undefined
        ? {
            budget: {
              ...toBudgetLimits(a.budget),
              onExceeded: a.budget.on_exceeded ?? "stop",
              ...(a.budget.downgrade_model !== undefined ? { downgradeModel: a.budget.downgrade_model } : {}),
            },
          }
        : {}),
    };
  });
  const ids = new Set<string>();
  for (const a of agents) {
    if (ids.has(a.id)) throw new ConfigError(`${where}: agents: duplicate agent id "${a.id}"`);
    ids.add(a.id);
  }
  const defaultAgent = file.default_agent ?? agents[0]!.id;
  if (!ids.has(defaultAgent)) throw new ConfigError(`${where}: default_agent "${defaultAgent}" is not an agent id`);
  const cronIds = new Set<string>();
  for (const [i, job] of (file.cron ?? []).entries()) {
    if (cronIds.has(job.id)) throw new ConfigError(`${where}: cron[${i}]: duplicate job id "${job.id}"`);
    cronIds.add(job.id);
    if (job.agent !== undefined && !ids.has(job.agent)) throw new ConfigError(`${where}: cron[${i}] ("${job.id}"): agent "${job.agent}" is not an agent id`);
  }

  const heapVar = env.EXOCLAW_HEAP;
  if (heapVar && !["compact", "throughput"].includes(heapVar)) {
    throw new ConfigError(`EXOCLAW_HEAP="${heapVar}" is not one of compact, throughput`);
  }
  const transportVar = env.EXOCLAW_TRANSPORT;
  if (transportVar && !["auto", "uws", "ws"].includes(transportVar)) {
    throw new ConfigError(`EXOCLAW_TRANSPORT="${transportVar}" is not one of auto, uws, ws`);
  }

  const g = file.gateway ?? {};
  const token = secrets.EXOCLAW_TOKEN || g.token;
  if (token !== undefined && token.length < 16) throw new ConfigError("EXOCLAW_TOKEN must be at least 16 characters");
  const clients = resolveClients(g.clients ?? [], token, secrets, where);

  const providers = Object.fromEntries(
    PROVIDERS.map((p) => {
      const f = file.providers?.[p];
      const envBase = env[BASE_URL_VARS[p]];
      const keyVars = f?.api_key_env ?? defaultKeyVar(p, secrets);
      const keys = (typeof keyVars === "string" ? [keyVars] : (keyVars ?? [])).flatMap((v) => (secrets[v] ? [secrets[v]] : []));
      return [
        p,
        {
          baseUrl: f?.base_url ?? (envBase || undefined),
          apiKey: keys[0],
          ...(keys.length > 1 ? { apiKeys: keys } : {}),
          timeoutMs: f?.timeout_ms ?? 600_000,
          idleTimeoutMs: f?.idle_timeout_ms ?? DEFAULT_IDLE_TIMEOUT_MS,
          ...(f?.max_retries !== undefined ? { maxRetries: f.max_retries } : {}),
          ...(f?.retry_base_ms !== undefined ? { retryBaseMs: f.retry_base_ms } : {}),
          ...(f?.retry_max_ms !== undefined ? { retryMaxMs: f.retry_max_ms } : {}),
          ...(f?.breaker_failures !== undefined ? { breakerFailures: f.breaker_failures } : {}),
          ...(f?.breaker_cooldown_ms !== undefined ? { breakerCooldownMs: f.breaker_cooldown_ms } : {}),
          ...(f?.key_cooldown_ms !== undefined ? { keyCooldownMs: f.key_cooldown_ms } : {}),
        },
      ];
    }),
  ) as Config["providers"];

  const userDirs = flags.pluginsDir
    ? [flags.pluginsDir]
    : env.EXOCLAW_PLUGINS_DIR
      ? [env.EXOCLAW_PLUGINS_DIR]
      : (file.plugins?.dirs ?? [join(stateDir(env), "plugins")]);

  const limitsFile = (file.plugins?.limits ?? {}) as Record<string, unknown>;
  const defaultsTable = Object.fromEntries(Object.entries(limitsFile).filter(([k]) => LIMIT_KEYS.includes(k))) as LimitsTable;
  const maxInstances = file.plugins?.max_instances ?? 4;
  const defaultLimits = applyLimits({ ...DEFAULT_LIMITS, maxInFlight: maxInstances }, defaultsTable);
  const perPluginLimits = Object.fromEntries(
    Object.entries(limitsFile)
      .filter(([k]) => !LIMIT_KEYS.includes(k))
      .map(([name, t]) => [name, applyLimits(defaultLimits, t as LimitsTable)]),
  );
  const store = resolveStore(file, env, secrets, baseDir);
  const bus = resolveBus(file, env, where);
  const grants = Object.fromEntries(Object.entries(file.plugins?.grants ?? {}).map(([name, t]) => [name, toOperatorGrant(t, baseDir)]));
  const mcpServers = resolveMcpServers(file.mcp, baseDir, resolve);
  const resolvedUserDirs = userDirs.map((d) => resolve(expandHome(d)));

  return {
    gateway: {
      bind: flags.bind ?? (env.EXOCLAW_BIND || undefined) ?? g.bind ?? DEFAULT_BIND,
      port: flags.port ?? parseIntVar(env, "EXOCLAW_PORT") ?? g.port ?? DEFAULT_PORT,
      token,
      maxFrameBytes: g.max_frame_bytes ?? 1024 * 1024,
      maxBufferedBytes: g.max_buffered_bytes ?? 16 * 1024 * 1024,
      shutdownGraceMs: g.shutdown_grace_ms ?? 10_000,
      transport: (transportVar as Config["gateway"]["transport"] | undefined) ?? g.transport ?? "auto",
      heap: (heapVar as Config["gateway"]["heap"] | undefined) ?? g.heap ?? "compact",
      allowedOrigins: parseListVar(env, "EXOCLAW_ALLOWED_ORIGINS", originEntry) ?? g.allowed_origins ?? [],
      allowedHosts: parseListVar(env, "EXOCLAW_ALLOWED_HOSTS", hostEntry) ?? g.allowed_hosts ?? [],
      ui: env.EXOCLAW_UI === undefined || env.EXOCLAW_UI === "" ? (g.ui ?? true) : !/^(0|false|off|no)$/i.test(env.EXOCLAW_UI),
      clients,
      ...(g.tls !== undefined ? { tls: { certFile: resolve(baseDir, expandHome(g.tls.cert)), keyFile: resolve(baseDir, expandHome(g.tls.key)) } } : {}),
      webhooks: {
        maxInFlightBytes: g.webhooks?.max_in_flight_bytes ?? WEBHOOK_LIMIT_DEFAULTS.maxInFlightBytes,
        maxInFlight: g.webhooks?.max_in_flight ?? WEBHOOK_LIMIT_DEFAULTS.maxInFlight,
        unsignedShare: g.webhooks?.unsigned_share ?? WEBHOOK_LIMIT_DEFAULTS.unsignedShare,
        perAddressRate: g.webhooks?.per_address_rate ?? WEBHOOK_LIMIT_DEFAULTS.perAddressRate,
        perAddressBurst: g.webhooks?.per_address_burst ?? WEBHOOK_LIMIT_DEFAULTS.perAddressBurst,
        perAddressInFlight: g.webhooks?.per_address_in_flight ?? WEBHOOK_LIMIT_DEFAULTS.perAddressInFlight,
        bodyTimeoutMs: g.webhooks?.body_timeout_ms ?? WEBHOOK_LIMIT_DEFAULTS.bodyTimeoutMs,
      },
    },
    agents,
    defaultAgent,
    cron: toCronJobs(file.cron, defaultAgent),
    pricing: Object.fromEntries(
      Object.entries(file.pricing ?? {}).map(([k, p]) => [
        k,
        {
          input: p.input,
          output: p.output,
          ...(p.cache_read !== undefined ? { cacheRead: p.cache_read } : {}),
          ...(p.cache_write !== undefined ? { cacheWrite: p.cache_write } : {}),
        },
      ]),
    ),
    budgets: {
      timezone: file.budgets?.timezone ?? "UTC",
      warnAt: file.budgets?.warn_at ?? 0.8,
      ...(file.budgets?.global !== undefined ? { global: toBudgetLimits(file.budgets.global) } : {}),
      ...(file.budgets?.peer !== undefined ? { peer: toBudgetLimits(file.budgets.peer) } : {}),
    },
    bindings: file.bindings ?? [],
    channels: Object.entries(file.channels ?? {}).map(
      ([name, c]): ChannelConfig => ({
        name,
        plugin: c.plugin ?? name,
        allow: c.allow ?? [],
        ...(c.refusal !== undefined ? { refusal: c.refusal } : {}),
        maxMessageBytes: c.max_message_bytes ?? CHANNEL_DEFAULTS.maxMessageBytes,
        maxAttachments: c.max_attachments ?? CHANNEL_DEFAULTS.maxAttachments,
        maxBodyBytes: c.max_body_bytes ?? CHANNEL_DEFAULTS.maxBodyBytes,
        // One account list serves webhooks and polling; a config that names accounts only under
        // `poll` (written before `accounts` existed) keeps working with those.
        accounts: c.accounts ?? c.poll?.accounts ?? ["default"],
        ...(c.poll
          ? { poll: { intervalMs: c.poll.interval_ms ?? CHANNEL_DEFAULTS.pollIntervalMs, accounts: c.poll.accounts ?? c.accounts ?? ["default"] } }
          : {}),
        ...(c.connect ? { connect: { accounts: c.connect.accounts ?? c.accounts ?? ["default"] } } : {}),
        ...(c.typing !== undefined ? { typing: c.typing } : {}),
        groups: toChannelGroups(c),
        ...(toChannelStream(c) !== undefined ? { stream: toChannelStream(c)! } : {}),
      }),
    ),
    providers,
    plugins: {
      dirs: [...builtinPluginDirs, ...resolvedUserDirs],
      userDirs: resolvedUserDirs,
      maxInstances,
      watch: file.plugins?.watch ?? true,
      defaultLimits,
      limits: perPluginLimits,
      grants,
    },
    mcp: { servers: mcpServers },
    store,
    ...(bus !== undefined ? { bus } : {}),
    metrics: { enabled: file.metrics?.enabled ?? true },
    hooks: resolveHooks(file.hooks),
    stateDir: stateDir(env),
    source,
    // Only the plugin secrets' variables: the plugin host materializes grants from these.
    secretEnv: Object.fromEntries([
      ...Object.values(grants).flatMap((g) => Object.values(g.secrets ?? {}).map(({ env: name }) => [name, secrets[name]] as const)),
      // And the secrets MCP stdio servers are granted as environment variables.
      ...mcpServers.flatMap((m) => (m.transport === "stdio" ? Object.values(m.env).map((name) => [name, secrets[name]] as const) : [])),
    ]),
  };
}

/**
 * `[bus]` with `EXOCLAW_NATS_URL` over `url`; undefined when neither names a server.
 * @throws ConfigError for a URL that is not `nats://host[:port]`
 */
function resolveBus(file: FileConfig, env: NodeJS.ProcessEnv, where: string): BusSettings | undefined {
  const fromEnv = env.EXOCLAW_NATS_URL?.trim();
  const b = file.bus ?? {};
  const url = fromEnv || b.url;
  if (!url) return undefined;
  const servers = parseNatsUrls(url, fromEnv ? "EXOCLAW_NATS_URL" : `${where}: bus.url`);
  return {
    servers,
    ...(b.partitions !== undefined ? { partitions: b.partitions } : {}),
    maxDeliver: b.max_deliver ?? DEFAULT_BUS_MAX_DELIVER,
    ...(b.ack_wait_ms !== undefined ? { ackWaitMs: b.ack_wait_ms } : {}),
    ...(b.lease_ttl_ms !== undefined ? { leaseTtlMs: b.lease_ttl_ms } : {}),
    outage: b.outage ?? "spool",
    ...(b.reorder_window_ms !== undefined ? { reorderWindowMs: b.reorder_window_ms } : {}),
  };
}

/**
 * `[store]` with `EXOCLAW_STORE` over `url`; default `rocksdb://<state dir>/data` for a new
 * directory, `surrealkv://<state dir>/data` for one a surrealkv store already holds.
 * @throws ConfigError for a bad `EXOCLAW_STORE` or an unset `password_env` variable
 */
function resolveStore(file: FileConfig, env: NodeJS.ProcessEnv, secrets: Record<string, string | undefined>, baseDir: string): StoreConfig {
  const fromEnv = env.EXOCLAW_STORE?.trim();
  if (fromEnv && !STORE_URL_RE.test(fromEnv)) {
    throw new ConfigError(
      `EXOCLAW_STORE="${fromEnv.replace(/\/\/[^/@]*@/, "//***@")}" is not "memory", "mem://", "surrealkv://<dir>", "rocksdb://<dir>", "ws://host:port", "wss://host:port" or "nats://host:port[,nats://...]"`,
    );
  }
  const s = file.store ?? {};
  const named = fromEnv || s.url;
  if (named?.startsWith("nats://")) parseNatsUrls(named, fromEnv ? "EXOCLAW_STORE" : "store.url");
  const url = resolveStoreUrl(fromEnv || s.url || defaultStoreUrl(join(stateDir(env), "data")), fromEnv ? process.cwd() : baseDir);
  let password: string | undefined;
  if (s.password_env !== undefined) {
    password = secrets[s.password_env];
    if (password === undefined) throw new ConfigError(`store.password_env names ${s.password_env}, which is not set (nor in credentials/${s.password_env})`);
  }
  return {
    url,
    namespace: s.namespace,
    database: s.database,
    username: s.username,
    password,
    redact: s.redact ?? false,
    ...resolveRetention(s),
  };
}

/** Default `[store] retention_interval`, ms. */
export const RETENTION_INTERVAL_MS = 3_600_000;

/**
 * `[store] retention` / `retention_interval` (durations, validated by the schema).
 * @throws ConfigError when `retention_interval` is set without `retention`
 */
function resolveRetention(s: NonNullable<FileConfig["store"]>): Pick<StoreConfig, "retention"> {
  if (s.retention === undefined) {
    if (s.retention_interval !== undefined) throw new ConfigError("store.retention_interval is set but store.retention is not: nothing would be pruned");
    return {};
  }
  const maxIdleMs = parseDuration(s.retention)!;
  const intervalMs = s.retention_interval !== undefined ? parseDuration(s.retention_interval)! : RETENTION_INTERVAL_MS;
  return { retention: { maxIdleMs, intervalMs } };
}

/**
 * Resolves `[[gateway.clients]]`: reads `token_env` tokens from the environment and checks that
 * names and tokens are unique and that no client reuses the gateway token.
 * @throws ConfigError naming `gateway.clients[i]` and the problem
 */
function resolveClients(
  entries: NonNullable<NonNullable<FileConfig["gateway"]>["clients"]>,
  gatewayToken: string | undefined,
  env: Record<string, string | undefined>,
  where: string,
): ClientEntry[] {
  const names = new Set<string>();
  const tokens = new Set<string>(gatewayToken ? [gatewayToken] : []);
  return entries.map((c, i) => {
    const at = `${where}: gateway.clients[${i}]`;
    const token = c.token ?? env[c.token_env!];
    if (token === undefined || token === "") throw new ConfigError(`${at}: token_env ${c.token_env} is not set (nor in credentials/${c.token_env})`);
    if (token.length < 16) throw new ConfigError(`${at}: the token in ${c.token_env} must be at least 16 characters`);
    if (names.has(c.name)) throw new ConfigError(`${at}: duplicate client name "${c.name}"`);
    // Its ws sessions would be the gateway token's (account default): pick a name of its own.
    if (c.name === GATEWAY_ACCOUNT) throw new ConfigError(`${at}: name "${GATEWAY_ACCOUNT}" is the gateway token's account; give the client a name of its own`);
    if (tokens.has(token)) throw new ConfigError(`${at}: token is the same as the gateway token or another client's; give each client its own`);
    names.add(c.name);
    tokens.add(token);
    return { name: c.name, token, scopes: [...new Set(c.scopes)] };
  });
}
