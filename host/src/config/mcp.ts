/**
 * `[mcp.servers.<name>]`: the MCP servers exoclaw is a client of (docs/mcp.md). The TOML table,
 * its zod schema and its resolved shape. A server runs either as a stdio child (`command` +
 * `args`, with a clean environment holding only the variables `env` grants) or over HTTP (`url`,
 * Streamable HTTP with an SSE fallback; its host must be listed in `allow_hosts`).
 */
import * as z from "zod";

/** Server names: table keys, and the `<server>` part of the `<server>__<tool>` tool names (no `__`). */
export const MCP_SERVER_NAME_RE = /^(?!.*__)[a-z][a-z0-9_-]{0,31}$/;

/** Environment variable names a stdio server may be given. */
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Host patterns of `allow_hosts` (exact, or `*.example.com`), as in `[plugins.grants.*] http.hosts`. */
const HOST_PATTERN_RE = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** Per-server limits, with their defaults: call timeout (ms), largest result (bytes), calls at once. */
export interface McpLimits {
  /** Time one `tools/call` may take, ms; then the call is a tool error (the request is cancelled). */
  timeoutMs: number;
  /** Largest tool result accepted (its text as UTF-8, after mapping), bytes; more is a tool error. */
  maxOutputBytes: number;
  /** Calls to the server at once; more wait their turn (within their timeout). */
  maxInFlight: number;
}

/** Defaults of {@link McpLimits}: 60 s, 1 MiB, 4. */
export const DEFAULT_MCP_LIMITS: McpLimits = { timeoutMs: 60_000, maxOutputBytes: 1024 * 1024, maxInFlight: 4 };

/** `[mcp.servers.<name>]` as written in exoclaw.toml. */
export const McpServerTableSchema = z.lazy(() =>
  z
    .strictObject({
      command: z.string().min(1).optional(),
      args: z.array(z.string()).optional(),
      /** Working directory of a stdio server (relative: to the config file's directory). */
      cwd: z.string().min(1).optional(),
      /**
       * The child's environment beyond PATH: variable name -> the name of the secret it gets
       * (read like every secret: the gateway's environment, then `<state dir>/credentials/<NAME>`).
       */
      env: z.record(z.string().regex(ENV_NAME_RE, "environment variable names must match [A-Za-z_][A-Za-z0-9_]*"), z.string().regex(ENV_NAME_RE)).optional(),
      url: z.url().optional(),
      /** Hosts an HTTP server's `url` may name (exact or `*.example.com`): the URL's host must be listed. */
      allow_hosts: z.array(z.string().regex(HOST_PATTERN_RE, "must be a lowercase host name like mcp.example.com or *.example.com")).optional(),
      /** `lazy` (default): started by the first call; `startup`: started with the gateway. */
      start: z.enum(["lazy", "startup"], { error: 'must be "lazy" or "startup"' }).optional(),
      timeout_ms: z.number().int().min(1).max(600_000).optional(),
      max_output_bytes: z
        .number()
        .int()
        .min(1)
        .max(64 * 1024 * 1024)
        .optional(),
      max_in_flight: z.number().int().min(1).max(64).optional(),
    })
    .superRefine((t, ctx) => {
      if ((t.command === undefined) === (t.url === undefined)) {
        ctx.addIssue({ code: "custom", message: "needs either command (a stdio server) or url (an HTTP server), not both" });
        return;
      }
      if (t.url !== undefined) {
        for (const k of ["args", "cwd", "env"] as const) {
          if (t[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: `${k} is for stdio servers (command), not for url` });
        }
        const u = new URL(t.url);
        if (u.protocol !== "http:" && u.protocol !== "https:") ctx.addIssue({ code: "custom", path: ["url"], message: "must be an http:// or https:// URL" });
        else if (!hostAllowed(u.hostname, t.allow_hosts ?? [])) {
          ctx.addIssue({
            code: "custom",
            path: ["url"],
            message: `host ${u.hostname} is not granted: add it to allow_hosts (deny by default: a server's URL host must be listed)`,
          });
        }
      }
    }),
);

/** `[mcp]`: `servers` tables by name. */
export const McpSectionSchema = z.lazy(() =>
  z.strictObject({
    servers: z.record(z.string().regex(MCP_SERVER_NAME_RE, "MCP server names must match [a-z][a-z0-9_-]{0,31} without __"), McpServerTableSchema).optional(),
  }),
);

/** One resolved `[mcp.servers.<name>]`. */
export type McpServerConfig = {
  name: string;
  start: "lazy" | "startup";
  limits: McpLimits;
} & (
  | {
      transport: "stdio";
      command: string;
      args: string[];
      /** Absolute, when set. */
      cwd?: string;
      /** Child variable -> secret name (values are looked up when the child starts, never stored here). */
      env: Record<string, string>;
    }
  | { transport: "http"; url: string; allowHosts: string[] }
);

/** Whether `host` (lower-case) matches an entry of `patterns` (exact, or `*.suffix` for a strict subdomain). */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return patterns.some((p) => p === h || (p.startsWith("*.") && h.endsWith(p.slice(1)) && h.length > p.length - 1));
}

/**
 * Resolves the `[mcp]` section.
 * @param baseDir where a relative `cwd` is resolved from (the config file's directory)
 */
export function resolveMcpServers(
  section: z.infer<typeof McpSectionSchema> | undefined,
  baseDir: string,
  resolvePath: (base: string, p: string) => string,
): McpServerConfig[] {
  return Object.entries(section?.servers ?? {}).map(([name, t]): McpServerConfig => {
    const common = {
      name,
      start: t.start ?? "lazy",
      limits: {
        timeoutMs: t.timeout_ms ?? DEFAULT_MCP_LIMITS.timeoutMs,
        maxOutputBytes: t.max_output_bytes ?? DEFAULT_MCP_LIMITS.maxOutputBytes,
        maxInFlight: t.max_in_flight ?? DEFAULT_MCP_LIMITS.maxInFlight,
      },
    };
    if (t.url !== undefined) return { ...common, transport: "http", url: t.url, allowHosts: t.allow_hosts ?? [] };
    return {
      ...common,
      transport: "stdio",
      command: t.command!,
      args: t.args ?? [],
      ...(t.cwd !== undefined ? { cwd: resolvePath(baseDir, t.cwd) } : {}),
      env: t.env ?? {},
    };
  });
}
