/**
 * `exoclaw doctor [--fix] [--json]`: checks a setup before traffic arrives. Each check is a module
 * of its own in this folder returning {@link Finding}s; this file runs them in order, applies the
 * safe fixes when asked, and prints. Exit code: 1 when any finding is an (unfixed) error, else 0.
 */
import { processSecrets, registerConfigSecrets } from "../../log/index.js";
import { stateDir, type Config, type ConfigFlags } from "../../config/index.js";
import { configSecretSources } from "../../gateway/index.js";
import { BUILTIN_PLUGINS_DIR } from "../../paths.js";
import type { CliIo } from "../io.js";
import { checkChannels } from "./channels.js";
import { checkConfig, loadConfig } from "./config.js";
import { checkDisk } from "./disk.js";
import { checkBus, checkPort, checkToken, gatewayAnswers } from "./network.js";
import { checkNode } from "./node.js";
import { checkPlugins } from "./plugins.js";
import { checkProviders } from "./providers.js";
import { checkStateDir } from "./state-dir.js";
import { checkStore } from "./store.js";
import { worst, type Finding } from "./types.js";

export type { Finding, Severity } from "./types.js";

/** Options of {@link runDoctor}. */
export interface DoctorOptions {
  flags: ConfigFlags;
  /** Apply the safe fixes (modes, missing directories). */
  fix: boolean;
}

/** What {@link runDoctor} found, in check order. */
export interface DoctorReport {
  findings: Finding[];
  errors: number;
  warnings: number;
  /** The state directory and config file examined. */
  stateDir: string;
  config: string | null;
}

/** Runs every check; never throws for a broken setup (that is a finding). */
export async function runDoctor(options: DoctorOptions, env: NodeJS.ProcessEnv): Promise<DoctorReport> {
  const findings: Finding[] = [checkNode(process.versions.node)];
  const dir = stateDir(env);
  findings.push(...(await checkStateDir(dir, { fix: options.fix })));
  const { finding, config } = checkConfig(() => loadConfig(options.flags, env, [BUILTIN_PLUGINS_DIR]), options.flags.config ?? env.EXOCLAW_CONFIG);
  findings.push(finding);
  if (config !== undefined) findings.push(...(await checkWithConfig(config, env)));
  else findings.push(await checkDisk(dir));
  const unfixed = findings.filter((f) => !f.fixed);
  return {
    findings,
    errors: unfixed.filter((f) => f.severity === "error").length,
    warnings: unfixed.filter((f) => f.severity === "warn").length,
    stateDir: dir,
    config: config?.source ?? null,
  };
}

/** The checks that need a loaded configuration. */
async function checkWithConfig(config: Config, env: NodeJS.ProcessEnv): Promise<Finding[]> {
  // Whatever a provider, platform or NATS server echoes back, no secret value reaches the output.
  registerConfigSecrets(processSecrets, configSecretSources(config), { ...env, ...config.secretEnv });
  const running = await gatewayAnswers(config);
  const plugins = await checkPlugins(config, env);
  const [providers, channels, bus, store, port, disk] = await Promise.all([
    checkProviders(config),
    checkChannels(config, env, plugins.names),
    checkBus(config),
    checkStore(config, running),
    checkPort(config, running),
    checkDisk(config.stateDir),
  ]);
  return [...plugins.findings, ...providers, ...channels, bus, store, port, checkToken(config), disk];
}

const LABEL: Record<Finding["severity"], string> = { ok: "ok", warn: "WARN", error: "ERROR" };

/** The report as text lines: one per finding, its fix indented below it, then a summary. */
export function formatDoctor(report: DoctorReport): string[] {
  const width = Math.max(...report.findings.map((f) => f.check.length));
  const lines: string[] = [];
  for (const f of report.findings) {
    const [first, ...rest] = f.message.split("\n");
    lines.push(`${LABEL[f.severity].padEnd(5)}  ${f.check.padEnd(width)}  ${first}`);
    for (const l of rest) lines.push(`${" ".repeat(7 + width + 2)}${l}`);
    if (f.fix) lines.push(`${" ".repeat(7 + width + 2)}${f.fixed ? "fixed: " : "fix: "}${f.fix}`);
  }
  const state = worst(report.findings);
  lines.push(
    state === "ok"
      ? "no problems found"
      : `${report.errors} error(s), ${report.warnings} warning(s)${report.findings.some((f) => f.fix && !f.fixed && f.check === "state-dir") ? "; exoclaw doctor --fix applies the safe fixes (modes, missing directories)" : ""}`,
  );
  return lines;
}

/** Runs doctor for the CLI: prints (text or `--json`), returns the exit code (1 on errors). */
export async function doctorCommand(options: DoctorOptions & { json: boolean }, io: CliIo): Promise<number> {
  const report = await runDoctor(options, io.env);
  const lines = options.json ? [JSON.stringify(report, null, 2)] : formatDoctor(report);
  for (const line of lines) io.out(processSecrets.scrub(line));
  return report.errors > 0 ? 1 : 0;
}
