/**
 * `exoclaw status [--json]` and `exoclaw channels list|status [--json]`: what a running gateway
 * reports (`status`, wire protocol v1: docs/protocol.md) and what the configuration declares.
 */
import type { ChannelCounters, StatusResult } from "../protocol/index.js";
import type { Config } from "../config/index.js";
import { channelSecrets } from "./doctor/channels.js";
import { connectGateway } from "./gateway-client.js";
import { formatTable } from "./plugin.js";

/** Asks the configured gateway for `status`. @throws Error naming the URL tried when no gateway answers */
export async function fetchStatus(config: Config): Promise<StatusResult> {
  const client = await connectGateway(config);
  try {
    return await client.call<StatusResult>("status");
  } finally {
    await client.close();
  }
}

/** `1h02m03s` from ms. */
export function formatUptime(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0 ? `${h}h${String(m).padStart(2, "0")}m${String(s % 60).padStart(2, "0")}s` : m > 0 ? `${m}m${String(s % 60).padStart(2, "0")}s` : `${s}s`;
}

/** `exoclaw status` as text lines: a summary, then agents, plugins and channels as tables. */
export function formatStatus(s: StatusResult, url: string): string[] {
  const bus = s.bus === undefined || s.bus === null ? "none" : `${s.bus.kind} ${s.bus.connected ? "connected" : "DISCONNECTED"}`;
  const lines = [
    `gateway   ${url} (pid ${s.pid}, version ${s.version})`,
    `uptime    ${formatUptime(s.uptimeMs)}`,
    `transport ${s.transport}`,
    `store     ${s.store ?? "?"} (${s.sessions} session(s))`,
    `bus       ${bus}`,
  ];
  if (s.agents?.length) {
    lines.push(
      "",
      ...formatTable(
        ["AGENT", "PROVIDER", "MODEL", "DEFAULT"],
        s.agents.map((a) => [a.id, a.provider, a.model, a.default ? "yes" : ""]),
      ),
    );
  }
  lines.push(
    "",
    ...formatTable(
      ["PLUGIN", "KIND", "STATUS", "CALLS", "ERRORS", "P50 MS", "P99 MS"],
      s.pluginStats.map((p) => [p.name, p.kind ?? "-", p.status, String(p.calls), String(p.errors), String(p.p50Ms), String(p.p99Ms)]),
    ),
  );
  if (s.mcp?.length) {
    lines.push(
      "",
      ...formatTable(
        ["MCP SERVER", "STATE", "APPROVAL", "TOOLS", "CALLS", "ERRORS", "RESTARTS"],
        s.mcp.map((m) => [m.name, m.state, m.approval, String(m.tools), String(m.calls), String(m.errors), String(m.restarts)]),
      ),
    );
  }
  const channels = Object.entries(s.channels ?? {});
  if (channels.length > 0) lines.push("", ...formatChannelCounters(channels));
  return lines;
}

/** Channel counters as a table. */
function formatChannelCounters(channels: [string, ChannelCounters][]): string[] {
  return formatTable(
    ["CHANNEL", "RECEIVED", "ACCEPTED", "REFUSED", "ANSWERED", "SEND FAILURES", "THROTTLED"],
    channels.map(([name, c]) => [
      name,
      String(c.received),
      String(c.accepted),
      String(c.refused),
      String(c.answered),
      String(c.sendFailures),
      String(c.throttled),
    ]),
  );
}

/** One configured channel as `exoclaw channels list` shows it (secrets as present or not, never values). */
export interface ChannelRow {
  name: string;
  plugin: string;
  accounts: string[];
  allow: string[];
  mode: "webhook" | "poll";
  /** Secret name -> set in the environment (or credentials) or not. */
  secrets: Record<string, boolean>;
  /** Live counters from the running gateway, when one answers. */
  counters?: ChannelCounters;
}

/** The configured channels with their secrets' presence (pure but for `env`). */
export function channelRows(config: Config, env: NodeJS.ProcessEnv): ChannelRow[] {
  return config.channels.map((c) => {
    const s = channelSecrets(c, config, env);
    return {
      name: c.name,
      plugin: c.plugin,
      accounts: c.accounts,
      allow: c.allow,
      mode: c.poll ? "poll" : "webhook",
      secrets: Object.fromEntries([...s.present.map((n) => [n, true]), ...s.missing.map((n) => [n, false])]),
    };
  });
}

/** `exoclaw channels list|status` as text lines. */
export function formatChannels(rows: ChannelRow[], live: boolean): string[] {
  if (rows.length === 0) return ["no channels configured ([channels.<name>] in exoclaw.toml; see docs/channels.md)"];
  const secrets = (r: ChannelRow) =>
    Object.entries(r.secrets)
      .map(([n, set]) => `${n}=${set ? "y" : "n"}`)
      .join(" ") || "-";
  const header = ["CHANNEL", "PLUGIN", "MODE", "ACCOUNTS", "ALLOW", "SECRETS"];
  const cells = (r: ChannelRow) => [r.name, r.plugin, r.mode, r.accounts.join(","), r.allow.length === 0 ? "(nobody)" : r.allow.join(","), secrets(r)];
  if (!live) return formatTable(header, rows.map(cells));
  return formatTable(
    [...header, "RECEIVED", "ACCEPTED", "REFUSED", "ANSWERED", "SEND FAILURES"],
    rows.map((r) => {
      const c = r.counters;
      return [...cells(r), ...(c ? [c.received, c.accepted, c.refused, c.answered, c.sendFailures].map(String) : ["-", "-", "-", "-", "-"])];
    }),
  );
}
