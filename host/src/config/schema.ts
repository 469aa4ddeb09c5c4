import { ApprovalsTableSchema } from "./approvals.js";
import { HooksTableSchema } from "./hooks.js";
import * as z from "zod";
import { DURATION_HINT, parseDuration } from "../util/index.js";
import { cronJobSchema, heartbeatSchema } from "./automation-schema.js";
import { McpSectionSchema } from "./mcp.js";
import { channelGroupFields } from "./channel-groups.js";
import { channelStreamFields } from "./channel-stream.js";

/** `[store] url` / `EXOCLAW_STORE` forms. */
export const STORE_URL_RE = /^(memory|mem:\/\/|surrealkv:\/\/.+|rocksdb:\/\/.+|wss?:\/\/.+|nats:\/\/.+)$/;
export const STORE_URL_HINT =
  'must be "memory", "mem://", "surrealkv://<dir>", "rocksdb://<dir>", "ws://host:port", "wss://host:port" or "nats://host:port[,nats://...]"';
/** One NATS server URL of `[bus] url` / `[store] url` (comma-separated lists are split first). */
export const NATS_URL_RE = /^nats:\/\/([^/@\s]+@)?[^/\s:@]+(:\d{1,5})?\/?$/;

/**
 * `[gateway] allowed_origins` entries: `self` (the gateway's own origins) or an http(s) origin,
 * scheme + host + optional port and nothing else (`https://app.example:8443`).
 */
export const originEntry = z.lazy(() =>
  z.string().refine((v) => {
    if (v === "self") return true;
    try {
      const u = new URL(v);
      const bare = u.pathname === "/" && !/^[a-z]+:\/\/[^/]+\/./i.test(v) && !u.search && !u.hash && !u.username && !u.password;
      return (u.protocol === "http:" || u.protocol === "https:") && bare;
    } catch {
      return false;
    }
  }, 'must be "self" or an origin like "https://app.example" or "http://localhost:5173" (scheme, host and port only)'),
);

/** `[gateway] allowed_hosts` entries: a host name or IP (`bot.example.com`, `192.168.1.5`, `[fd00::1]`), no port. */
export const hostEntry = z.lazy(() =>
  z
    .string()
    .regex(
      /^([a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)*\.?|\[[0-9a-fA-F:.]+\])$/,
      'must be a host name or IP without scheme or port, like "bot.example.com" or "[fd00::1]"',
    ),
);

/**
 * Schema of `exoclaw.toml` (snake_case keys, every section optional). Built on its first parse,
 * not at module load: zod builds every `.min()`, `.optional()`, ... as a new schema object, and
 * the ~300 of this tree took ~20 % of the gateway's module-loading time, spent even when no config
 * file is read (the zero-config start validates none).
 */
export const FileConfigSchema = z.lazy(buildFileConfigSchema);

function buildFileConfigSchema() {
  const PROVIDERS = ["anthropic", "openai", "ollama", "gemini"] as const;

  const selector = z.string().min(1);

  /** Longest idle timeout or turn deadline accepted, ms (one day: beyond it, a typo more likely than intent). */
  const MAX_TIMEOUT_MS = 86_400_000;
  /** `idle_timeout_ms` (provider or agent) and `turn_timeout_ms` (agent). */
  const timeoutMs = z.number().int().min(1).max(MAX_TIMEOUT_MS);

  /** A spend limit: USD (a non-negative amount) or tokens (input + output). */
  const usdLimit = z.number().min(0).max(1_000_000_000);
  const tokenLimit = z.number().int().min(0).max(1e15);

  /** Limits per window (`[budgets.global]`, `[budgets.peer]`, `[agents.budget]`); each optional. */
  const budgetLimitFields = {
    session_usd: usdLimit.optional(),
    session_tokens: tokenLimit.optional(),
    day_usd: usdLimit.optional(),
    day_tokens: tokenLimit.optional(),
    month_usd: usdLimit.optional(),
    month_tokens: tokenLimit.optional(),
  };

  /** Valid IANA time zone names (`Intl` knows them). */
  const timeZone = z.string().refine((tz) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
      return true;
    } catch {
      return false;
    }
  }, "must be an IANA time zone name such as UTC or Europe/Berlin");

  /** What happens when a call would exceed a budget: end the turn, or run it on a cheaper model. */
  const onExceeded = z.enum(["stop", "downgrade"], { error: 'must be "stop" or "downgrade"' });

  /** Price of a model in USD per million tokens (`[pricing."<provider>/<model>"]`). */
  const priceSchema = z.strictObject({
    input: z.number().min(0).max(100_000),
    output: z.number().min(0).max(100_000),
    cache_read: z.number().min(0).max(100_000).optional(),
    cache_write: z.number().min(0).max(100_000).optional(),
  });

  const providerSchema = z.strictObject({
    base_url: z.url().optional(),
    /** One environment variable, or several: their keys are rotated on 429/401 (provider resilience). */
    api_key_env: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(64)]).optional(),
    timeout_ms: z.number().int().positive().optional(),
    idle_timeout_ms: timeoutMs.optional(),
    max_retries: z.number().int().min(0).max(10).optional(),
    retry_base_ms: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
    retry_max_ms: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
    breaker_failures: z.number().int().min(0).max(1000).optional(),
    breaker_cooldown_ms: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
    key_cooldown_ms: z.number().int().min(1).max(MAX_TIMEOUT_MS).optional(),
  });

  /** An agent's `models` entry: `<provider>/<model>`, e.g. `openai/gpt-4.1-mini`. */
  const modelRef = z
    .string()
    .regex(
      new RegExp(`^(${PROVIDERS.join("|")})/.+$`),
      `must be "<provider>/<model>" with provider one of ${PROVIDERS.join(", ")}, like "openai/gpt-4.1-mini"`,
    );

  /** Plugin names as in manifests; used as table keys under `[plugins.grants]` / `[plugins.limits]`. */
  const PLUGIN_NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;
  /** Channel names (`[channels.<name>]`, `/webhook/<name>`); `ws` is the WebSocket clients' own, `webchat` the Control UI's chat. */
  const CHANNEL_NAME_RE = /^(?!(ws|webchat)$)[a-z][a-z0-9_-]{0,63}$/;
  /** Account names (`[channels.<name>] accounts`): the `/webhook/<channel>/<account>` URL segment. */
  const ACCOUNT_NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
  /** `[[agents]] outbound` entries: `<channel>:<peer>`, the peer exact, a prefix ending in `*`, or `*`. */
  const OUTBOUND_RE = /^[a-z][a-z0-9_-]{0,63}:[^\s]+$/;
  /** `[store] retention` / `retention_interval`: a duration string (`30d`, `12h`; util/duration.ts). */
  const retentionDuration = z
    .string({ error: `must be a duration string: ${DURATION_HINT}` })
    .refine((v) => parseDuration(v) !== undefined, `must be ${DURATION_HINT}`);
  const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

  const limitFields = {
    timeout_ms: z.number().int().min(1).max(600_000).optional(),
    memory_mb: z.number().int().min(1).max(4096).optional(),
    max_output_bytes: z
      .number()
      .int()
      .min(1)
      .max(256 * 1024 * 1024)
      .optional(),
    max_in_flight: z.number().int().min(1).max(64).optional(),
    max_queued: z.number().int().min(0).max(100_000).optional(),
  };

  /** `[plugins.limits.<plugin>]`: per-plugin overrides of the defaults. */
  const LimitsTableSchema = z.strictObject(limitFields);

  /** `[plugins.grants.<plugin>]`: what the operator allows one plugin (still subject to approval). */
  const GrantTableSchema = z.strictObject({
    http: z
      .strictObject({
        hosts: z
          .array(
            z
              .string()
              .regex(
                /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/,
                "must be a lowercase host name like api.example.com or *.example.com",
              ),
          )
          .min(1),
        methods: z.array(z.enum(HTTP_METHODS)).min(1).optional(),
      })
      .optional(),
    kv: z.strictObject({ quota_bytes: z.number().int().positive().optional() }).optional(),
    fs: z
      .array(
        z.strictObject({
          guest: z
            .string()
            .regex(/^\/[^\0]*$/, "must be an absolute guest path")
            .refine((p) => !p.split("/").includes(".."), 'must not contain ".."'),
          host: z.string().min(1),
          write: z.boolean().optional(),
        }),
      )
      .optional(),
    config: z.record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "config names must match [a-z][a-z0-9_]{0,63}"), z.string()).optional(),
    secrets: z
      .record(
        z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, "secret names must match [A-Z][A-Z0-9_]{0,63}"),
        // allow_insecure: the host may also put this secret into plain-http requests to
        // non-loopback hosts (default false: https or loopback only).
        z.strictObject({ env: z.string().min(1), allow_insecure: z.boolean().optional() }),
      )
      .optional(),
    clock: z.boolean().optional(),
    random: z.boolean().optional(),
    log: z.boolean().optional(),
    /** Lifecycle hooks the plugin may have called (still only when `[hooks] order` lists it). */
    hooks: z.array(z.string().min(1)).optional(),
  });

  const pluginKey = z.string().regex(PLUGIN_NAME_RE, "plugin names must be lowercase [a-z][a-z0-9_-]{0,63}");

  return z.strictObject({
    gateway: z
      .strictObject({
        bind: z.string().min(1).optional(),
        port: z.number().int().min(0).max(65535).optional(),
        token: z.string().min(16, "token must be at least 16 characters").optional(),
        max_frame_bytes: z
          .number()
          .int()
          .min(1024)
          .max(64 * 1024 * 1024)
          .optional(),
        max_buffered_bytes: z
          .number()
          .int()
          .min(64 * 1024)
          .optional(),
        shutdown_grace_ms: z.number().int().min(0).optional(),
        transport: z.enum(["auto", "uws", "ws"]).optional(),
        heap: z.enum(["compact", "throughput"]).optional(),
        allowed_origins: z.array(originEntry).optional(),
        allowed_hosts: z.array(hostEntry).optional(),
        // The Control UI and WebChat at `/` (ui/, docs/ui.md); default on.
        ui: z.boolean().optional(),
        clients: z
          .array(
            z
              .strictObject({
                name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, "name must match [A-Za-z0-9_.-]{1,64} (it becomes the client's account on channel ws)"),
                token: z.string().min(16, "token must be at least 16 characters").optional(),
                token_env: z
                  .string()
                  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
                  .optional(),
                scopes: z
                  .array(z.enum(["chat", "admin", "impersonate"]))
                  .min(1, "scopes must name at least one of chat, admin, impersonate")
                  .default(["chat"]),
              })
              .refine((c) => (c.token === undefined) !== (c.token_env === undefined), "give exactly one of token and token_env"),
          )
          .optional(),
        // TLS on the gateway's own port (wss:// and https://): PEM files, re-read when they change.
        tls: z.strictObject({ cert: z.string().min(1), key: z.string().min(1) }).optional(),
        webhooks: z
          .strictObject({
            max_in_flight_bytes: z
              .number()
              .int()
              .min(64 * 1024)
              .max(4 * 1024 * 1024 * 1024)
              .optional(),
            max_in_flight: z.number().int().min(1).max(100_000).optional(),
            unsigned_share: z.number().min(0).max(1).optional(),
            per_address_rate: z.number().min(0).max(1_000_000).optional(),
            per_address_burst: z.number().int().min(1).max(1_000_000).optional(),
            per_address_in_flight: z.number().int().min(1).max(100_000).optional(),
            body_timeout_ms: z.number().int().min(100).max(600_000).optional(),
          })
          .optional(),
      })
      .optional(),
    providers: z
      .strictObject({
        anthropic: providerSchema.optional(),
        openai: providerSchema.optional(),
        ollama: providerSchema.optional(),
        gemini: providerSchema.optional(),
      })
      .optional(),
    agents: z
      .array(
        z.strictObject({
          id: z.string().regex(/^[A-Za-z0-9_-]+$/, "agent id may use letters, digits, _ and -"),
          provider: z.enum(PROVIDERS).optional(),
          model: z.string().min(1).optional(),
          models: z.array(modelRef).min(1).max(16).optional(),
          system_prompt: z.string().optional(),
          max_iterations: z.number().int().min(1).max(1000).optional(),
          max_tokens: z.number().int().min(1).optional(),
          tools: z.array(z.string().min(1)).optional(),
          context_window: z.number().int().min(100).optional(),
          idle_timeout_ms: timeoutMs.optional(),
          turn_timeout_ms: timeoutMs.optional(),
          loop_limit: z
            .number()
            .int()
            .refine((n) => n === 0 || (n >= 2 && n <= 1000), "must be 0 (off) or 2-1000")
            .optional(),
          soul: z.string().min(1).optional(),
          budget: z
            .strictObject({ ...budgetLimitFields, on_exceeded: onExceeded.optional(), downgrade_model: z.string().min(1).optional() })
            .refine((b) => b.on_exceeded !== "downgrade" || b.downgrade_model !== undefined, {
              message: 'on_exceeded = "downgrade" needs downgrade_model',
              path: ["downgrade_model"],
            })
            .optional(),
          outbound: z.array(z.string().regex(OUTBOUND_RE, 'must be "<channel>:<peer>" (peer may end in *, or be * alone)')).optional(),
          memory: z
            .strictObject({
              enabled: z.boolean().optional(),
              budget_tokens: z.number().int().min(0).max(100_000).optional(),
              notes: z.number().int().min(0).max(1000).optional(),
              recall: z.number().int().min(0).max(100).optional(),
              scope: z.enum(["sender", "peer", "agent"]).optional(),
              session_recall: z.boolean().optional(),
              embeddings: z
                .string()
                .regex(/^(openai|gemini|ollama)\/.+$/, 'must be "<provider>/<model>" with provider openai, gemini or ollama')
                .optional(),
            })
            .optional(),
          heartbeat: heartbeatSchema.optional(),
          approvals: ApprovalsTableSchema.optional(),
          queue: z
            .strictObject({
              mode: z.enum(["followup", "collect", "interrupt", "steer"]).optional(),
              cap: z.number().int().min(1).max(10_000).optional(),
              drop: z.enum(["new", "oldest"]).optional(),
            })
            .optional(),
        }),
      )
      .optional(),
    default_agent: z.string().optional(),
    /** `[[cron]]`: scheduled agent turns (docs/automation.md). */
    cron: z.array(cronJobSchema).max(1000).optional(),
    bindings: z
      .array(
        z.strictObject({
          agent: z.string().min(1),
          channel: selector.optional(),
          account: selector.optional(),
          peer: selector.optional(),
          guild: selector.optional(),
          team: selector.optional(),
        }),
      )
      .optional(),
    channels: z
      .record(
        z.string().regex(CHANNEL_NAME_RE, 'channel names must be lowercase [a-z][a-z0-9_-]{0,63} (and not "ws")'),
        z
          .strictObject({
            plugin: z.string().regex(PLUGIN_NAME_RE, "plugin names must be lowercase [a-z][a-z0-9_-]{0,63}").optional(),
            allow: z.array(z.string().min(1)).optional(),
            refusal: z.string().min(1).max(4096).optional(),
            max_message_bytes: z
              .number()
              .int()
              .min(1)
              .max(1024 * 1024)
              .optional(),
            max_attachments: z.number().int().min(0).max(100).optional(),
            max_body_bytes: z
              .number()
              .int()
              .min(1024)
              .max(64 * 1024 * 1024)
              .optional(),
            accounts: z.array(z.string().regex(ACCOUNT_NAME_RE, "account names must match [A-Za-z0-9_.-]{1,64}")).min(1).optional(),
            poll: z
              .strictObject({
                interval_ms: z.number().int().min(10).max(3_600_000).optional(),
                accounts: z.array(z.string().min(1)).min(1).optional(),
              })
              .optional(),
            // A persistent connection per account (plugins exporting connect + on_frame).
            connect: z.strictObject({ accounts: z.array(z.string().min(1)).min(1).optional() }).optional(),
            // A typing indicator while a turn runs (plugins exporting typing); default on.
            typing: z.boolean().optional(),
            ...channelGroupFields(),
            // Progressive replies (`stream = "edit"`, plugins exporting edit).
            ...channelStreamFields(),
          })
          .refine((c) => c.accounts === undefined || c.poll?.accounts === undefined || c.poll.accounts.every((a) => c.accounts!.includes(a)), {
            message: "every polled account must also be listed in the channel's accounts",
            path: ["poll", "accounts"],
          }),
      )
      .optional(),
    store: z
      .strictObject({
        url: z.string().regex(STORE_URL_RE, STORE_URL_HINT).optional(),
        namespace: z
          .string()
          .regex(/^[A-Za-z0-9_]+$/, "may use letters, digits and _")
          .optional(),
        database: z
          .string()
          .regex(/^[A-Za-z0-9_]+$/, "may use letters, digits and _")
          .optional(),
        username: z.string().min(1).optional(),
        password_env: z
          .string()
          .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "must be an environment variable name")
          .optional(),
        redact: z.boolean().optional(),
        retention: retentionDuration.optional(),
        retention_interval: retentionDuration.optional(),
      })
      .optional(),
    pricing: z
      .record(z.string(), priceSchema)
      .superRefine((t, ctx) => {
        for (const k of Object.keys(t)) {
          if (!/^[a-z][a-z0-9_-]*\/.+$/.test(k))
            ctx.addIssue({ code: "custom", path: [k], message: 'pricing keys are "<provider>/<model>", e.g. "openai/gpt-4o"' });
        }
      })
      .optional(),
    budgets: z
      .strictObject({
        timezone: timeZone.optional(),
        warn_at: z.number().gt(0).max(1).optional(),
        global: z.strictObject(budgetLimitFields).optional(),
        peer: z.strictObject(budgetLimitFields).optional(),
      })
      .optional(),
    hooks: HooksTableSchema.optional(),
    metrics: z
      .strictObject({
        /** `/metrics` (Prometheus) and the counters behind it; default true. */
        enabled: z.boolean().optional(),
      })
      .optional(),
    bus: z
      .strictObject({
        url: z
          .string()
          .refine((v) => {
            const urls = v
              .split(",")
              .map((u) => u.trim())
              .filter((u) => u.length > 0);
            return urls.length > 0 && urls.every((u) => NATS_URL_RE.test(u));
          }, 'must be "nats://host:port" or a comma-separated list of them')
          .optional(),
        partitions: z.number().int().min(1).max(1024).optional(),
        max_deliver: z.number().int().min(1).max(100).optional(),
        ack_wait_ms: z.number().int().min(500).max(600_000).optional(),
        lease_ttl_ms: z.number().int().min(1_000).max(3_600_000).optional(),
        outage: z.enum(["spool", "refuse"], { error: 'must be "spool" or "refuse"' }).optional(),
        reorder_window_ms: z.number().int().min(0).max(600_000).optional(),
      })
      .refine((b) => b.ack_wait_ms === undefined || b.lease_ttl_ms === undefined || b.lease_ttl_ms > b.ack_wait_ms, {
        message: "lease_ttl_ms must be larger than ack_wait_ms",
        path: ["lease_ttl_ms"],
      })
      .optional(),
    plugins: z
      .strictObject({
        dirs: z.array(z.string().min(1)).optional(),
        max_instances: z.number().int().min(1).max(64).optional(),
        /** Hot loading of the user plugin directories (default true). */
        watch: z.boolean().optional(),
        // Defaults for every plugin, plus `[plugins.limits.<plugin>]` tables.
        limits: z
          .object(limitFields)
          .catchall(
            z.union([LimitsTableSchema, z.never()], {
              error: "unknown limit (expected timeout_ms, memory_mb, max_output_bytes, max_in_flight, max_queued, or a [plugins.limits.<plugin>] table)",
            }),
          )
          .superRefine((t, ctx) => {
            for (const k of Object.keys(t)) {
              if (!(k in limitFields) && !PLUGIN_NAME_RE.test(k)) {
                ctx.addIssue({ code: "custom", path: [k], message: "plugin names must be lowercase [a-z][a-z0-9_-]{0,63}" });
              }
            }
          })
          .optional(),
        grants: z.record(pluginKey, GrantTableSchema).optional(),
      })
      .optional(),
    /** `[mcp.servers.<name>]`: MCP servers exoclaw is a client of (config/mcp.ts, docs/mcp.md). */
    mcp: McpSectionSchema.optional(),
  });
}

export type FileConfig = z.infer<typeof FileConfigSchema>;
