import type { ChannelConfig, Config } from "../../config/index.js";
import { grantAsRequest, materializeGrant, type OperatorGrant } from "../../plugins/index.js";
import { causeCode, error, ok, warn, type Finding } from "./types.js";

/** How long one platform check may take, ms. */
export const PLATFORM_TIMEOUT_MS = 10_000;

/** A channel's granted secrets: which are set (never their values) and which are missing. */
export interface ChannelSecrets {
  /** Secret name -> the environment variable (or credentials entry) it is read from. */
  sources: Record<string, string>;
  present: string[];
  missing: string[];
  /** The values, for the platform checks only; never printed. */
  values: Record<string, string>;
}

/**
 * Resolves the secrets `[plugins.grants.<plugin>] secrets` grants a channel's plugin, through the
 * gateway's own resolution (`materializeGrant`), so `doctor` sees exactly what the sandbox would get.
 */
export function channelSecrets(channel: ChannelConfig, config: Config, env: NodeJS.ProcessEnv): ChannelSecrets {
  const grant: OperatorGrant = config.plugins.grants[channel.plugin] ?? {};
  const sources = Object.fromEntries(Object.entries(grant.secrets ?? {}).map(([name, s]) => [name, s.env]));
  // The config's resolved secret values (env, else <state dir>/credentials/<NAME>), as the gateway gets them.
  const { effective } = materializeGrant(grantAsRequest(grant), grant, { ...env, ...config.secretEnv });
  const values = effective.secrets ?? {};
  const names = Object.keys(sources);
  return { sources, present: names.filter((n) => n in values), missing: names.filter((n) => !(n in values)), values };
}

/** A reachability check of one platform, with the credential it needs. */
interface PlatformProbe {
  /** The secret the probe authenticates with. */
  secret: string;
  defaultBase: string;
  /** Sends the probe; resolves with `ok` and what the platform said (never the credential). */
  probe(base: string, credential: string, signal: AbortSignal): Promise<{ ok: boolean; status: number; detail: string }>;
}

/**
 * Probes by plugin name: Telegram `getMe` (https://core.telegram.org/bots/api#getme: 401 for a
 * wrong token), Slack `auth.test` (https://api.slack.com/methods/auth.test: HTTP 200 with
 * `ok: false, error: "invalid_auth"` for a wrong token).
 */
const PROBES: Record<string, PlatformProbe> = {
  telegram: {
    secret: "TELEGRAM_BOT_TOKEN",
    defaultBase: "https://api.telegram.org",
    async probe(base, token, signal) {
      const res = await fetch(`${base}/bot${encodeURIComponent(token)}/getMe`, { method: "POST", signal });
      const body = (await res.json().catch(() => ({}))) as { ok?: boolean; description?: string; result?: { username?: string } };
      return {
        ok: res.ok && body.ok === true,
        status: res.status,
        detail: body.ok ? `bot @${body.result?.username ?? "?"}` : (body.description ?? res.statusText),
      };
    },
  },
  slack: {
    secret: "SLACK_BOT_TOKEN",
    defaultBase: "https://slack.com/api",
    async probe(base, token, signal) {
      const res = await fetch(`${base}/auth.test`, { method: "POST", headers: { authorization: `Bearer ${token}` }, signal });
      const body = (await res.json().catch(() => ({}))) as { ok?: boolean; error?: string; team?: string };
      return { ok: res.ok && body.ok === true, status: res.status, detail: body.ok ? `team ${body.team ?? "?"}` : (body.error ?? res.statusText) };
    },
  },
};

/**
 * Checks each `[channels.<name>]`: its plugin is among the plugins found (`pluginNames`), the
 * secrets granted to that plugin are set, and, where a probe exists (Telegram, Slack), the
 * platform answers the credential, with latency.
 */
export async function checkChannels(config: Config, env: NodeJS.ProcessEnv, pluginNames: ReadonlySet<string>): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const channel of config.channels) {
    const check = `channel:${channel.name}`;
    const at = `[plugins.grants.${channel.plugin}] secrets`;
    if (!pluginNames.has(channel.plugin)) {
      findings.push(
        error(
          check,
          `channel ${channel.name} uses plugin "${channel.plugin}", which no plugin directory holds`,
          `put ${channel.plugin}.wasm in ${config.plugins.userDirs[0] ?? "a plugin directory"}, or fix [channels.${channel.name}] plugin`,
        ),
      );
      continue;
    }
    const secrets = channelSecrets(channel, config, env);
    for (const name of secrets.missing)
      findings.push(
        error(
          check,
          `secret ${name} of channel ${channel.name} is not set (${at} reads it from ${secrets.sources[name]})`,
          `export ${secrets.sources[name]}=... in the gateway's environment, or put the value in ${config.stateDir}/credentials/${secrets.sources[name]} (mode 600)`,
        ),
      );
    if (channel.allow.length === 0)
      findings.push(warn(check, `channel ${channel.name} allows nobody (allow = [])`, `add the peer ids to serve to [channels.${channel.name}] allow`));
    const probe = PROBES[channel.plugin];
    const credential = probe ? secrets.values[probe.secret] : undefined;
    if (probe === undefined) {
      if (secrets.missing.length === 0) findings.push(ok(check, `${secrets.present.length} secret(s) set; no platform check for plugin ${channel.plugin}`));
      continue;
    }
    if (credential === undefined) {
      if (!secrets.missing.includes(probe.secret))
        findings.push(
          error(
            check,
            `channel ${channel.name} has no ${probe.secret} granted: the platform cannot be reached`,
            `add ${probe.secret} = { env = "..." } to ${at}`,
          ),
        );
      continue;
    }
    const base = String(config.plugins.grants[channel.plugin]?.config?.base_url ?? probe.defaultBase).replace(/\/+$/, "");
    const started = performance.now();
    try {
      const r = await probe.probe(base, credential, AbortSignal.timeout(PLATFORM_TIMEOUT_MS));
      const latencyMs = Math.round(performance.now() - started);
      if (r.ok) findings.push(ok(check, `${base} accepted ${probe.secret} (${r.detail}) in ${latencyMs} ms`, { latencyMs }));
      else
        findings.push(
          error(
            check,
            `${base} refused ${probe.secret} of channel ${channel.name} (HTTP ${r.status}: ${r.detail})`,
            `set a valid token in ${secrets.sources[probe.secret]}`,
            { latencyMs },
          ),
        );
    } catch (err) {
      findings.push(
        error(
          check,
          `${base} is not reachable for channel ${channel.name}: ${(err as Error).message}${causeCode(err)}`,
          `check the network, or base_url in [plugins.grants.${channel.plugin}] config`,
          {
            latencyMs: Math.round(performance.now() - started),
          },
        ),
      );
    }
  }
  return findings;
}
