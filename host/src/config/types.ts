import type { CronJobConfig, HeartbeatConfig } from "./automation-schema.js";
import type { AgentApprovals } from "./approvals.js";
import type { HooksConfig } from "./hooks.js";
import type { Scope } from "../protocol/index.js";
import type { PluginLimits, OperatorGrant } from "../plugins/index.js";
import type { Binding } from "../router/index.js";
import type { McpServerConfig } from "./mcp.js";
import type { ChannelGroups } from "./channel-groups.js";
import type { ChannelStream } from "./channel-stream.js";

/** An extra client token from `[[gateway.clients]]`. */
export interface ClientEntry {
  /** The client's name; becomes its account on channel `ws`. */
  name: string;
  /** At least 16 characters. */
  token: string;
  scopes: readonly Scope[];
}

/** The LLM providers exoclaw speaks to, each through its official SDK. */
export type ProviderName = "anthropic" | "openai" | "ollama" | "gemini";

/** Gateway listener settings. */
export interface GatewayConfig {
  /** Interface to bind; default `127.0.0.1`. */
  bind: string;
  /** TCP port; default 7200; 0 picks a free port. */
  port: number;
  /** Shared secret clients must present; required when `bind` is not loopback. */
  token?: string;
  /** Largest accepted WebSocket frame, bytes; default 1 MiB. Larger frames get an error. */
  maxFrameBytes: number;
  /** Pending outbound bytes on one connection before it is closed as a slow consumer; default 16 MiB. */
  maxBufferedBytes: number;
  /** How long Ctrl-C waits for in-flight turns before aborting them, ms; default 10000. */
  shutdownGraceMs: number;
  /** Force a transport; default `auto` (uWebSockets.js, falling back to `ws`). */
  transport: "auto" | "uws" | "ws";
  /**
   * How V8 sizes the gateway's heap (`[gateway] heap`, `EXOCLAW_HEAP`): `compact` (default) caps
   * the young generation at 16 MiB and keeps the old generation near its live size (RSS ~130-150
   * MB instead of ~180-250 MB after a 50-session load, for more GC CPU per turn), `throughput`
   * leaves V8's defaults. See `cli/heap.ts` and docs/architecture.md, "GC and the streaming glue".
   */
  heap: "compact" | "throughput";
  /**
   * Browser origins allowed to open a WebSocket (`Origin` header), e.g. `https://app.example`;
   * `self` = the gateway's own (`http://<bind>:<port>`, `http://localhost:<port>`,
   * `http://127.0.0.1:<port>`). Default empty: every browser page is refused; clients that send
   * no `Origin` (CLI, SDKs) are not affected.
   */
  allowedOrigins: string[];
  /**
   * Host names the `Host` header may carry besides the bind address, `localhost` and loopback
   * IPs (DNS rebinding defence), e.g. the name a reverse proxy forwards. Default empty.
   */
  allowedHosts: string[];
  /**
   * Serve the Control UI and WebChat at `/` (`[gateway] ui`, `EXOCLAW_UI=0` turns it off; default
   * on). While on, the gateway's own origins may open a WebSocket as if `self` were listed in
   * `allowedOrigins` (the page it serves must reach it); other origins are still refused.
   */
  ui?: boolean;
  /**
   * Extra client tokens (`[[gateway.clients]]`), each its own account on channel `ws` with its
   * own scopes; default none. The gateway token is account `default` with `chat` + `admin`.
   */
  clients: ClientEntry[];
  /** Intake limits of `/webhook/...` (`[gateway.webhooks]`), checked before a body is read. */
  webhooks: WebhookLimits;
  /**
   * `[gateway.tls]`: serve wss:// and https:// on `port` with this certificate and key (PEM
   * files, absolute paths; re-read when they change). Absent = plain ws:// and http://.
   */
  tls?: TlsFiles;
}

/** `[gateway.tls]`: where the gateway's certificate and private key are (PEM). */
export interface TlsFiles {
  /** Certificate chain, PEM (the server certificate first, then intermediates); absolute path. */
  certFile: string;
  /** Private key of the certificate, PEM (unencrypted); absolute path. */
  keyFile: string;
}

/**
 * Limits on webhook requests, across every channel (`[gateway.webhooks]`). Checked from the
 * request head, before the body is read or any plugin runs; see docs/channels.md "Intake limits".
 */
export interface WebhookLimits {
  /** Body bytes of all webhook requests being read or handled at once (a request reserves its Content-Length, else its channel's `max_body_bytes`); default 64 MiB. Over it: 503 + Retry-After. */
  maxInFlightBytes: number;
  /** Webhook requests being read or handled at once; default 256. Over it: 503 + Retry-After. */
  maxInFlight: number;
  /**
   * Fraction (0..1) of both in-flight budgets that requests without a declared signature header
   * may use (GET/HEAD handshakes, channels whose plugin declares no `signature_headers`); the
   * rest is kept for signed deliveries. Default 0.25.
   */
  unsignedShare: number;
  /** Requests per second per client address (token bucket refill); default 64; 0 = no per-address limit. Over it: 429 + Retry-After. */
  perAddressRate: number;
  /** Token bucket size per client address (requests in a burst); default 256. */
  perAddressBurst: number;
  /**
   * Webhook requests one client address may have in flight at once; default 48 (above Telegram's default of 40 concurrent webhook connections). Over it: 429 +
   * Retry-After. Keeps one sender of slow uploads from holding the whole budget.
   */
  perAddressInFlight: number;
  /** Time from a request's head to the end of its body, ms; default 30000. Over it: 408, the connection closed, the reservation released. */
  bodyTimeoutMs: number;
}

/** Defaults of `[gateway.webhooks]`. */
export const WEBHOOK_LIMIT_DEFAULTS: WebhookLimits = {
  maxInFlightBytes: 64 * 1024 * 1024,
  maxInFlight: 256,
  unsignedShare: 0.25,
  perAddressRate: 64,
  perAddressBurst: 256,
  perAddressInFlight: 48,
  bodyTimeoutMs: 30_000,
};

/** One agent: which model it uses and how it behaves. */
export interface AgentConfig {
  id: string;
  /** The primary model's provider (`models[0]`'s when `models` is set). */
  provider: ProviderName;
  /** The primary model (`models[0]`'s when `models` is set). */
  model: string;
  /**
   * The fallback chain (`models = ["anthropic/…", "openai/…", "ollama/…"]`), primary first: a
   * model call moves on to the next entry when its provider cannot answer (unreachable, 5xx, 429
   * past its retries, breaker open), never for an error of the request (HTTP 400). Absent: the
   * primary alone.
   */
  models?: { provider: ProviderName; model: string }[];
  systemPrompt?: string;
  /** Model calls per turn before the turn ends with an error; default 10. */
  maxIterations: number;
  /** Max output tokens per model call; default 4096. */
  maxTokens: number;
  /** Tool allowlist: exact names or `*` globs; default `["*"]`. */
  tools: string[];
  /**
   * Input budget of one model call, tokens (estimated as characters / 4); default 100000. When
   * the session's history would exceed it, older turns are folded into a summary (compaction).
   */
  contextWindow: number;
  /**
   * Soul file (`soul`, absolute path): markdown appended to `systemPrompt` as the agent's system
   * prompt, re-read when its modification time changes (checked at each turn's start).
   */
  soulFile?: string;
  /**
   * Outbound allowlist: peers this agent may message besides the one it is answering, as
   * `<channel>:<peer>` (`<peer>` exact, a prefix ending in `*`, or `*`); default `[]`. Enforced by
   * the host on the built-in `message_send` tool, whatever the model asks.
   */
  outbound: string[];
  /** `[agents.heartbeat]`: a periodic turn with a standing prompt (docs/automation.md); absent = none. */
  heartbeat?: HeartbeatConfig;
  /** `[agents.approvals]`: tool calls that wait for a person's yes (agent/approvals); absent = none. */
  approvals?: AgentApprovals;
  /** What happens to a message that arrives while its session is running a turn. */
  queue: QueuePolicy;
  /**
   * `[agents.memory]`: notes and recall in each turn's context, the built-in `memory` and
   * `session_search` tools (docs/memory.md); absent = off (no memory block, no built-in tools).
   */
  memory?: AgentMemory;
  /** The provider idle timeout for this agent's model calls, ms; default: its provider's `idleTimeoutMs`. */
  idleTimeoutMs?: number;
  /** `[agents.budget]`: this agent's spend limits, and what happens past them; absent = none. */
  budget?: AgentBudget;
  /**
   * Deadline of a whole turn (model calls, tool calls, compaction), ms from its start; past it
   * the turn is aborted with -32006 (`data.reason` "turn_timeout"); default 600000
   * (`DEFAULT_TURN_TIMEOUT_MS`).
   */
  turnTimeoutMs?: number;
  /**
   * Loop detection: the turn ends (-32002, `data.reason` "tool_loop") when the model asks for the
   * same tool with the same input this many times in one turn (that call is not run); 0 = off;
   * default 3 (`DEFAULT_LOOP_LIMIT`).
   */
  loopLimit?: number;
}

/**
 * `[agents.memory]`, resolved: the memory block's token budget, how many standing notes and
 * recalled items per source it considers, how far notes are shared (`sender` | `peer` | `agent`,
 * never across agents) and whether earlier sessions are recalled (direct chats).
 */
export interface AgentMemory {
  budgetTokens: number;
  notes: number;
  recall: number;
  share: "sender" | "peer" | "agent";
  sessionRecall: boolean;
  /** `embeddings = "<provider>/<model>"`: vector recall over notes too; absent = full text only. */
  embeddings?: { provider: "openai" | "gemini" | "ollama"; model: string };
}

/** Default of {@link AgentConfig.loopLimit}: identical tool calls per turn that end it. */
export const DEFAULT_LOOP_LIMIT = 3;

/**
 * Spend limits of one scope: USD (priced by `[pricing]` and the shipped table) and tokens (input +
 * output, cache tokens included), per session (its whole life), per day and per month (calendar
 * day and month in `[budgets] timezone`). Absent = no limit of that kind.
 */
export interface BudgetLimits {
  sessionUsd?: number;
  sessionTokens?: number;
  dayUsd?: number;
  dayTokens?: number;
  monthUsd?: number;
  monthTokens?: number;
}

/** `[agents.budget]`: the agent's limits; `onExceeded` "downgrade" retries a refused call on `downgradeModel`. */
export interface AgentBudget extends BudgetLimits {
  onExceeded: "stop" | "downgrade";
  /** Model (same provider) a refused call runs on with `onExceeded` "downgrade". */
  downgradeModel?: string;
}

/** `[budgets]`: limits over every agent (`global`) and per peer (`peer`, each peer counted alone). */
export interface BudgetsConfig {
  /** IANA time zone of the day and month boundaries; default "UTC". */
  timezone: string;
  /** Fraction of a limit at which a warning is logged and counted (once per window); default 0.8. */
  warnAt: number;
  global?: BudgetLimits;
  peer?: BudgetLimits;
}

/** A model's price, USD per million tokens (`[pricing."<provider>/<model>"]`). */
export interface ModelPrice {
  input: number;
  output: number;
  /** Input tokens read from the provider's prompt cache; default: `input`. */
  cacheRead?: number;
  /** Input tokens written to the provider's prompt cache; default: `input`. */
  cacheWrite?: number;
}

/** Default of {@link AgentConfig.turnTimeoutMs}, ms (10 minutes). */
export const DEFAULT_TURN_TIMEOUT_MS = 600_000;

/** Default of {@link ProviderEndpoint.idleTimeoutMs}, ms. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

/**
 * Per-session queueing (`[[agents]] queue`). Modes: `followup` (default) runs queued messages
 * one turn each, in order; `collect` merges every message queued when a turn ends into the next
 * turn; `interrupt` aborts the running turn and runs the new message next; `steer` injects the
 * new message into the running turn at its next model call (after its current tool calls), or
 * runs it as `followup` when that turn makes no further model call.
 */
export interface QueuePolicy {
  mode: "followup" | "collect" | "interrupt" | "steer";
  /** Turns allowed per session, running + queued; default 32. */
  cap: number;
  /**
   * When the queue is full: `new` (default) refuses the arriving message (-32004, session busy);
   * `oldest` drops the oldest queued, not yet running, message (its turn ends with an `error`
   * event, -32004) and queues the new one.
   */
  drop: "new" | "oldest";
}

/** Defaults of `[[agents]] queue`. */
export const DEFAULT_QUEUE: QueuePolicy = { mode: "followup", cap: 32, drop: "new" };

/**
 * One messaging channel served by a channel plugin (`[channels.<name>]`). Inbound doors are
 * closed by default: only peers matched by `allow` reach an agent.
 */
export interface ChannelConfig {
  /** Channel name: the session key's channel part and the webhook route `/webhook/<name>[/<account>]`. */
  name: string;
  /** Name of the channel plugin serving it; default the channel name. */
  plugin: string;
  /**
   * Allowlist; default `[]` (nobody). Entries: a peer id (`12345`), `guild:<id>`, `team:<id>`,
   * any of those ending in `*` as a prefix (`-100*`, `team:T0*`), or `*` (everyone; only when
   * written explicitly).
   */
  allow: string[];
  /** Reply sent to a refused stranger; default none (silently dropped, but logged and counted). */
  refusal?: string;
  /** Largest accepted message content, bytes of UTF-8; default 16384. Larger messages are refused. */
  maxMessageBytes: number;
  /** Attachments accepted per message; default 4. A message with more is refused. */
  maxAttachments: number;
  /** Largest webhook request body, bytes; default 1 MiB. Larger requests get HTTP 413. */
  maxBodyBytes: number;
  /**
   * Accounts this channel serves, default `["default"]`: `/webhook/<channel>/<account>` for any
   * other account is answered 404 before its body is read, and polling channels poll these.
   */
  accounts: string[];
  /** Polling (for plugins that export `poll`): absent = webhook only. */
  poll?: { intervalMs: number; accounts: string[] };
  /**
   * Persistent connections (for plugins that export `connect` and `on_frame`, e.g. the Discord
   * Gateway): one host-owned WebSocket per account listed. Absent = none.
   */
  connect?: { accounts: string[] };
  /** Typing indicator while a turn runs, for plugins exporting `typing`; default true. */
  typing?: boolean;
  /** Mention gating, per-sender rates, pairing and media limits (channel-groups.ts); absent = all off, default media limits. */
  groups?: ChannelGroups;
  /** Progressive replies (`stream = "edit"`, channel-stream.ts); absent = off on every account. */
  stream?: ChannelStream;
}

/** Defaults of `[channels.<name>]` limits. */
export const CHANNEL_DEFAULTS = { maxMessageBytes: 16 * 1024, maxAttachments: 4, maxBodyBytes: 1024 * 1024, pollIntervalMs: 1000 } as const;

/** Where session logs live (`[store]`, `EXOCLAW_STORE`). */
export interface StoreConfig {
  /**
   * `memory` (in process, lost on exit), `mem://` (embedded SurrealDB in memory),
   * `surrealkv:///abs/dir[?sync=every|never|<duration>]` (embedded SurrealDB on disk; default
   * `surrealkv://<state dir>/data`), `ws://` / `wss://` for a SurrealDB 3.x server, or
   * `nats://host:port[,nats://...]` for the JetStream session log shared by several gateways
   * (`namespace` separates logs on one server).
   */
  url: string;
  /** SurrealDB namespace; default `exoclaw`. */
  namespace?: string;
  /** SurrealDB database; default `sessions`. */
  database?: string;
  /** Server user name. */
  username?: string;
  /** Server password, read from the environment variable `[store] password_env` names. Never logged. */
  password?: string;
  /** Redact secrets (API keys, tokens, passwords) from session text before it is written; default false. */
  redact: boolean;
  /**
   * Retention (`[store] retention`, `retention_interval`): the gateway removes sessions idle for
   * longer than `maxIdleMs` (no append since), except those with an unfinished turn or an owed
   * reply, once right after start-up and then every `intervalMs`. Absent (the default): every
   * session is kept for ever.
   */
  retention?: StoreRetention;
}

/** Resolved `[store] retention`: both in ms. */
export interface StoreRetention {
  /** Sessions idle longer than this go, ms. */
  maxIdleMs: number;
  /** How often the gateway prunes, ms; default 1 h. */
  intervalMs: number;
}

/**
 * The message bus (`[bus]`, `EXOCLAW_NATS_URL`): NATS JetStream shared by several gateways.
 * Absent = no NATS: channel messages go straight to the agent runtime (the in-process mode).
 */
export interface BusSettings {
  /** NATS server URLs (`[bus] url = "nats://host:port[,nats://...]"`), at least one. */
  servers: string[];
  /** Partitions per stream; every gateway on one NATS must agree; default the bus module's (16). */
  partitions?: number;
  /** Handler attempts before a channel message goes to the dead-letter store; default 3. */
  maxDeliver: number;
  /**
   * How long a dead process's in-flight messages wait before redelivery, ms (JetStream ack wait;
   * held messages are kept alive, so it does not bound a turn); default the bus module's (10 s).
   */
  ackWaitMs?: number;
  /** How long a dead process's partitions stay unowned, ms; must exceed `ackWaitMs`; default 2 × ack wait + 5 s. */
  leaseTtlMs?: number;
  /**
   * What channel intake does while a message cannot go straight into JetStream (docs/bus.md,
   * "Order through an outage"): `spool` (default) keeps answering the platform and forwards the
   * disk spool later, ordered across gateways by the reorder window; `refuse` answers 503 so the
   * platform redelivers: strictly ordered, but the platform must redeliver.
   */
  outage: "spool" | "refuse";
  /** The consumers' reorder window after an outage, ms (0 = off); default the bus module's (5 s). */
  reorderWindowMs?: number;
}

/** Where each provider is reached. `baseUrl` undefined = the SDK's own default / env variable. */
export interface ProviderEndpoint {
  baseUrl?: string;
  /** The first key (`apiKeys[0]`). */
  apiKey?: string;
  /** Every key configured (`api_key_env` naming several variables), rotated on 429/401; absent = `apiKey` alone. */
  apiKeys?: string[];
  /** Retries of a failed call (429, 5xx, unreachable, broken stream) before moving on; default 2. */
  maxRetries?: number;
  /** First backoff ceiling, ms (doubled per retry, full jitter); default 500. */
  retryBaseMs?: number;
  /** Longest backoff and longest `Retry-After` waited for, ms; past it the call moves on; default 30000. */
  retryMaxMs?: number;
  /** Consecutive failures that open the provider's circuit breaker (0 = never); default 5. */
  breakerFailures?: number;
  /** How long an open breaker skips the provider before one probe call, ms; default 30000. */
  breakerCooldownMs?: number;
  /** How long a key refused with 401/403 rests before it is tried again, ms; default 60000. */
  keyCooldownMs?: number;
  /**
   * Time until the response headers, ms; default 600000 (the SDKs' default). The SDKs stop this
   * timer at the headers: a stream that stalls later is ended by `idleTimeoutMs`.
   */
  timeoutMs: number;
  /**
   * Longest silence of a streaming call — from sending the request to the first stream event,
   * and between events — before the call ends with -32000 (`data.reason` "idle_timeout"), ms;
   * default 60000 (`DEFAULT_IDLE_TIMEOUT_MS`). An agent's `idleTimeoutMs` overrides it.
   */
  idleTimeoutMs?: number;
}

/** The whole resolved configuration (defaults < config file < environment < CLI flags). */
export interface Config {
  gateway: GatewayConfig;
  agents: AgentConfig[];
  defaultAgent: string;
  /** `[[cron]]`: scheduled agent turns (docs/automation.md). */
  cron: CronJobConfig[];
  bindings: Binding[];
  /** `[channels.<name>]` in file order. */
  channels: ChannelConfig[];
  providers: Record<ProviderName, ProviderEndpoint>;
  plugins: {
    /** Directories scanned for `*.wasm`, in order (first tool name wins): first-party, then user. */
    dirs: string[];
    /** The user directories among `dirs` (watched for hot loading when `watch`). */
    userDirs: string[];
    /** Instances per plugin for parallel calls; default 4 (= `defaultLimits.maxInFlight` unless `[plugins.limits] max_in_flight` is set). */
    maxInstances: number;
    /** Hot-load changes to `userDirs`; default true. */
    watch: boolean;
    /** `[plugins.limits]` over `DEFAULT_LIMITS`. */
    defaultLimits: PluginLimits;
    /** `[plugins.limits.<plugin>]` over `defaultLimits`, by plugin name. */
    limits: Record<string, PluginLimits>;
    /** `[plugins.grants.<plugin>]`, by plugin name (fs host paths absolute; secrets still as env variable names). */
    grants: Record<string, OperatorGrant>;
  };
  /** `[mcp.servers.<name>]` in file order (config/mcp.ts); empty = no MCP servers. */
  mcp: { servers: McpServerConfig[] };
  /** Session log back end. */
  store: StoreConfig;
  /** The NATS message bus; undefined = none (in-process mode). */
  bus?: BusSettings;
  /** `[pricing]`: price overrides by `"<provider>/<model>"` (over the shipped table, agent/budget/pricing.ts). */
  pricing: Record<string, ModelPrice>;
  /** `[budgets]`: global and per-peer limits and their time zone. */
  budgets: BudgetsConfig;
  /** `[metrics]`: `enabled` (default true) serves `/metrics` and records the counters behind it. Absent = enabled. */
  metrics?: { enabled: boolean };
  /** `[hooks]`: plugins whose lifecycle hooks run, in order, with timeout and failure mode (agent/hooks); absent = none. */
  hooks?: HooksConfig;
  /** The state directory (`EXOCLAW_STATE_DIR` or `~/.exoclaw`): approvals, plugin state, session data. */
  stateDir: string;
  /** The config file that was read, if any. */
  source?: string;
  /**
   * The values of the plugin grants' secret variables (`secrets = { X = { env = "NAME" } }`), by
   * variable name, resolved env first, then `<stateDir>/credentials/NAME` (see credentials.ts);
   * undefined = set in neither. The plugin host reads secrets from here.
   */
  secretEnv: Record<string, string | undefined>;
}
