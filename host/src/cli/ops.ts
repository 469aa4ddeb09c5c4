/**
 * The operator's commands: `exoclaw doctor`, `exoclaw status`, `exoclaw channels list|status`,
 * `exoclaw service install|uninstall|status` (docs/operations.md).
 */
import type { Command } from "commander";
import { loadConfig, type Config } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { doctorCommand } from "./doctor/run.js";
import type { CliIo } from "./io.js";
import { installService, serviceSpec, serviceStatus, uninstallService } from "./service.js";
import { channelRows, fetchStatus, formatChannels, formatStatus } from "./status.js";
import { gatewayWsUrl } from "./gateway-client.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

const CONFIG_OPTION = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;

/** Runs an action, printing `exoclaw: <message>` and exiting 1 on a thrown error (bad config, no gateway). */
function action<A extends unknown[]>(io: CliIo, fn: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      io.err(`exoclaw: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  };
}

/** Registers `doctor`, `status`, `channels` and `service`. */
export function registerOpsCommands(program: Command, io: CliIo = processIo): void {
  const load = (opts: { config?: string }): Config => loadConfig({ config: opts.config }, io.env, [BUILTIN_PLUGINS_DIR]);

  program
    .command("doctor")
    .description("Check the setup: Node, state directory, config, store, plugins and approvals, providers, channels, NATS, port, token, disk")
    .option(...CONFIG_OPTION)
    .option("--fix", "apply the safe fixes (file modes, missing directories)")
    .option("--json", "print the findings as JSON ({findings, errors, warnings, stateDir, config})")
    .action(
      action(io, (opts: { config?: string; fix?: boolean; json?: boolean }) =>
        doctorCommand({ flags: { config: opts.config }, fix: opts.fix === true, json: opts.json === true }, io),
      ),
    );

  program
    .command("status")
    .description("Ask the running gateway: uptime, transport, agents, plugins (calls, p99), channels, sessions, bus, store")
    .option(...CONFIG_OPTION)
    .option("--json", "print the gateway's status result as JSON")
    .action(
      action(io, async (opts: { config?: string; json?: boolean }) => {
        const config = load(opts);
        const status = await fetchStatus(config);
        for (const line of opts.json ? [JSON.stringify(status, null, 2)] : formatStatus(status, gatewayWsUrl(config))) io.out(line);
        return 0;
      }),
    );

  const channels = program.command("channels").description("The configured channels: plugins, accounts, allowlists, secrets set (y/n), live counters");
  const channelsAction = (live: "optional" | "required") =>
    action(io, async (opts: { config?: string; json?: boolean }) => {
      const config = load(opts);
      const rows = channelRows(config, io.env);
      let note: string | undefined;
      try {
        const status = await fetchStatus(config);
        for (const r of rows) if (status.channels?.[r.name]) r.counters = status.channels[r.name];
      } catch (err) {
        if (live === "required") throw err;
        note = `no live counters: ${(err as Error).message}`;
      }
      const isLive = rows.some((r) => r.counters !== undefined) || (live === "required" && rows.length > 0);
      if (opts.json) io.out(JSON.stringify({ channels: rows }, null, 2));
      else for (const line of formatChannels(rows, isLive)) io.out(line);
      if (note !== undefined && !opts.json && rows.length > 0) io.err(note);
      return 0;
    });
  channels
    .command("list")
    .description("Configured channels (counters too when a gateway runs)")
    .option(...CONFIG_OPTION)
    .option("--json", "print JSON ({channels: [...]})")
    .action(channelsAction("optional"));
  channels
    .command("status")
    .description("Configured channels with the running gateway's counters (fails naming the URL when no gateway answers)")
    .option(...CONFIG_OPTION)
    .option("--json", "print JSON ({channels: [...]})")
    .action(channelsAction("required"));

  const service = program.command("service").description("Run the gateway as a systemd user service (Linux) or a launchd agent (macOS)");
  const platformOf = (opts: { platform?: string }): "linux" | "darwin" => {
    const p = opts.platform ?? process.platform;
    if (p !== "linux" && p !== "darwin") throw new Error(`service: platform ${p} is not supported (linux: systemd user unit; darwin: launchd agent)`);
    return p;
  };
  const platformOption = ["--platform <linux|darwin>", "write the other system's file (default: this one's)"] as const;
  service
    .command("install")
    .description("Write the unit (absolute node and bin paths, this config and state directory) and enable + start it")
    .option(...CONFIG_OPTION)
    .option("--dry-run", "print the unit and where it would go; write nothing")
    .option(...platformOption)
    .action(
      action(io, async (opts: { config?: string; dryRun?: boolean; platform?: string }) =>
        installService(serviceSpec(load(opts), io.env, platformOf(opts)), io, opts.dryRun === true),
      ),
    );
  service
    .command("uninstall")
    .description("Stop and disable the service, remove the unit")
    .option(...CONFIG_OPTION)
    .option(...platformOption)
    .action(action(io, async (opts: { config?: string; platform?: string }) => uninstallService(serviceSpec(load(opts), io.env, platformOf(opts)), io)));
  service
    .command("status")
    .description("Whether the unit is installed and running (exit 0 running, 3 not)")
    .option(...CONFIG_OPTION)
    .option(...platformOption)
    .action(action(io, async (opts: { config?: string; platform?: string }) => serviceStatus(serviceSpec(load(opts), io.env, platformOf(opts)), io)));
}
