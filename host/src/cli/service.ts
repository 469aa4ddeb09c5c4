/**
 * `exoclaw service install|uninstall|status [--dry-run]`: runs the gateway under the user's
 * service manager — a systemd user unit on Linux (`$XDG_CONFIG_HOME/systemd/user/exoclaw.service`,
 * logs to the journal: `journalctl --user -u exoclaw`), a launchd agent on macOS
 * (`~/Library/LaunchAgents/dev.exoclaw.gateway.plist`, logs in `<state dir>/logs/`).
 *
 * The unit runs this Node (`process.execPath`) on this package's `bin/exoclaw.js` with the config
 * file and state directory of the current invocation, all as absolute paths. Secret values never
 * go into the unit (it is world-readable by convention): the gateway reads them from
 * `<state dir>/service.env` (systemd `EnvironmentFile`, optional, keep it 0600) or its credentials.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Config } from "../config/index.js";
import { PACKAGE_ROOT } from "../paths.js";
import type { CliIo } from "./io.js";

/** The systemd unit name. */
export const SYSTEMD_UNIT = "exoclaw.service";
/** The launchd label (and plist file name without `.plist`). */
export const LAUNCHD_LABEL = "dev.exoclaw.gateway";

/**
 * Non-secret environment variables carried into the unit when set in the installing shell
 * (secrets — EXOCLAW_TOKEN, API keys — are not: see the module comment).
 */
export const SERVICE_ENV_VARS = [
  "EXOCLAW_PLUGINS_DIR",
  "EXOCLAW_STORE",
  "EXOCLAW_PORT",
  "EXOCLAW_BIND",
  "EXOCLAW_TRANSPORT",
  "EXOCLAW_LOG_LEVEL",
  "EXOCLAW_PROVIDER",
  "EXOCLAW_MODEL",
] as const;

/**
 * Environment the systemd unit gives the gateway unless the installing shell sets the variable
 * (then its value is carried instead) or `<state dir>/service.env` does (systemd's
 * `EnvironmentFile=` overrides `Environment=`).
 *
 * `MALLOC_ARENA_MAX=2`: glibc gives each thread that allocates its own malloc arena, up to 8 per
 * core; the embedded engine's threads (tokio, RocksDB), V8's and libuv's then each keep freed
 * memory in their own arena. With two arenas the freed memory is reused across threads: after
 * 10,000 one-turn sessions on the rocksdb store the gateway's RSS measured a median ~11 MB lower
 * (10 runs each, spreads overlapping), no CPU per session cost measured (docs/architecture.md,
 * "Scale and memory"). glibc reads it
 * only when the process starts, so the gateway cannot set it for itself without a re-exec.
 */
export const SERVICE_DEFAULT_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2" };

/** What the service runs. All paths absolute. */
export interface ServiceSpec {
  platform: "linux" | "darwin";
  /** The Node.js binary. */
  node: string;
  /** `bin/exoclaw.js` of this package. */
  bin: string;
  /** The config file, when one is used. */
  config?: string;
  stateDir: string;
  /** Extra environment (non-secret), name -> value. */
  env: Record<string, string>;
  /** The user's home (for the launchd path). */
  home: string;
  /** `$XDG_CONFIG_HOME`, default `<home>/.config`. */
  xdgConfigHome: string;
}

/** The spec for the current process and configuration. */
export function serviceSpec(config: Config, env: NodeJS.ProcessEnv, platform: "linux" | "darwin"): ServiceSpec {
  const home = env.HOME || homedir();
  const extra: Record<string, string> = {};
  for (const name of [...SERVICE_ENV_VARS, ...Object.keys(SERVICE_DEFAULT_ENV)]) {
    const v = env[name];
    // A URL with user:password@ carries a secret: leave it to service.env.
    if (v && !/\/\/[^/@]*@/.test(v)) extra[name] = v;
  }
  return {
    platform,
    node: process.execPath,
    bin: join(PACKAGE_ROOT, "bin", "exoclaw.js"),
    ...(config.source ? { config: config.source } : {}),
    stateDir: config.stateDir,
    env: extra,
    home,
    xdgConfigHome: env.XDG_CONFIG_HOME || join(home, ".config"),
  };
}

/** Where the unit file goes. */
export function servicePath(spec: ServiceSpec): string {
  return spec.platform === "linux"
    ? join(spec.xdgConfigHome, "systemd", "user", SYSTEMD_UNIT)
    : join(spec.home, "Library", "LaunchAgents", `${LAUNCHD_LABEL}.plist`);
}

/** One argument of a systemd command line or `Environment=` value: quoted, `\` and `"` escaped, `%` doubled (systemd.unit(5) specifiers). */
function systemdQuote(s: string): string {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/%/g, "%%")}"`;
}

const xml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The gateway's command line. */
function argv(spec: ServiceSpec): string[] {
  return [spec.node, spec.bin, "gateway", ...(spec.config ? ["--config", spec.config] : [])];
}

/**
 * The unit file's text (pure): a systemd user service (systemd.service(5): `Type=simple`,
 * `Restart=on-failure` — the gateway exits 1 when its store breaks, for the supervisor to
 * restart it; stdout/stderr to the journal) or a launchd property list (launchd.plist(5):
 * `KeepAlive.SuccessfulExit=false` restarts it after a failure).
 */
export function renderService(spec: ServiceSpec): string {
  // glibc's settings (Linux only): an installing shell's value in spec.env wins; service.env overrides both.
  const env = { EXOCLAW_STATE_DIR: spec.stateDir, ...(spec.platform === "linux" ? SERVICE_DEFAULT_ENV : {}), ...spec.env };
  if (spec.platform === "linux") {
    return [
      "# Written by `exoclaw service install`; remove with `exoclaw service uninstall`.",
      "[Unit]",
      "Description=exoclaw gateway",
      "After=network-online.target",
      "Wants=network-online.target",
      "",
      "[Service]",
      "Type=simple",
      `ExecStart=${argv(spec).map(systemdQuote).join(" ")}`,
      ...Object.entries(env).map(([k, v]) => `Environment=${systemdQuote(`${k}=${v}`)}`),
      "# Secrets (EXOCLAW_TOKEN, provider API keys, channel tokens): one NAME=value a line, file mode 0600.",
      `EnvironmentFile=-${join(spec.stateDir, "service.env").replace(/%/g, "%%")}`,
      "UMask=0077",
      "Restart=on-failure",
      "RestartSec=2",
      "# The gateway drains turns for [gateway] shutdown_grace_ms (default 10 s), then has 5 s to close.",
      "TimeoutStopSec=30",
      "StandardOutput=journal",
      "StandardError=journal",
      "",
      "[Install]",
      "WantedBy=default.target",
      "",
    ].join("\n");
  }
  const logs = join(spec.stateDir, "logs");
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<plist version="1.0">',
    "<dict>",
    `  <key>Label</key><string>${LAUNCHD_LABEL}</string>`,
    "  <key>ProgramArguments</key>",
    "  <array>",
    ...argv(spec).map((a) => `    <string>${xml(a)}</string>`),
    "  </array>",
    "  <key>EnvironmentVariables</key>",
    "  <dict>",
    ...Object.entries(env).map(([k, v]) => `    <key>${xml(k)}</key><string>${xml(v)}</string>`),
    "  </dict>",
    "  <key>RunAtLoad</key><true/>",
    "  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>",
    "  <key>Umask</key><integer>63</integer>",
    `  <key>StandardOutPath</key><string>${xml(join(logs, "gateway.log"))}</string>`,
    `  <key>StandardErrorPath</key><string>${xml(join(logs, "gateway.err.log"))}</string>`,
    "</dict>",
    "</plist>",
    "",
  ].join("\n");
}

/** Result of running the service manager. */
interface ManagerRun {
  ok: boolean;
  /** stderr (or the spawn error) when it failed. */
  detail: string;
}

/** Runs `systemctl --user ...` / `launchctl ...`; never throws (a missing binary is `ok: false`). */
function manager(cmd: string, args: string[]): ManagerRun {
  const r = spawnSync(cmd, args, { encoding: "utf8", timeout: 30_000 });
  if (r.error) return { ok: false, detail: (r.error as NodeJS.ErrnoException).code === "ENOENT" ? `${cmd} not found` : r.error.message };
  return { ok: r.status === 0, detail: (r.stderr || r.stdout || `exit ${r.status}`).trim() };
}

const uid = () => process.getuid?.() ?? 0;

/**
 * `install`: writes the unit (0600 under the CLI's private umask; it holds no secret anyway), then enables and starts it when the
 * service manager is reachable; otherwise says which commands to run where.
 * @returns exit code: 0 written (started, or the message says how to start it), 1 a write failed
 */
export async function installService(spec: ServiceSpec, io: CliIo, dryRun: boolean): Promise<number> {
  const path = servicePath(spec);
  const text = renderService(spec);
  if (dryRun) {
    io.out(`# ${path} (not written: --dry-run)`);
    for (const line of text.trimEnd().split("\n")) io.out(line);
    return 0;
  }
  await mkdir(dirname(path), { recursive: true });
  if (spec.platform === "darwin") await mkdir(join(spec.stateDir, "logs"), { recursive: true, mode: 0o700 });
  await writeFile(path, text, { mode: 0o600 });
  io.out(`wrote ${path}`);
  const steps: [string, string[]][] =
    spec.platform === "linux"
      ? [
          ["systemctl", ["--user", "daemon-reload"]],
          ["systemctl", ["--user", "enable", "--now", SYSTEMD_UNIT]],
        ]
      : [["launchctl", ["bootstrap", `gui/${uid()}`, path]]];
  for (const [cmd, args] of steps) {
    const r = manager(cmd, args);
    if (!r.ok) {
      io.err(`exoclaw: ${cmd} ${args.join(" ")} failed: ${r.detail}`);
      io.err(
        spec.platform === "linux"
          ? `the unit is written but not started: in a login session run  systemctl --user daemon-reload && systemctl --user enable --now ${SYSTEMD_UNIT}  (and  loginctl enable-linger $USER  to keep it running after logout)`
          : `the agent is written but not loaded: run  launchctl bootstrap gui/$(id -u) ${path}`,
      );
      return 0;
    }
  }
  io.out(
    spec.platform === "linux"
      ? `enabled and started ${SYSTEMD_UNIT}; logs: journalctl --user -u exoclaw -f`
      : `loaded ${LAUNCHD_LABEL}; logs in ${join(spec.stateDir, "logs")}`,
  );
  return 0;
}

/** `uninstall`: stops and disables the service (best effort), removes the unit. Exit code 0 (also when none was installed). */
export async function uninstallService(spec: ServiceSpec, io: CliIo): Promise<number> {
  const path = servicePath(spec);
  if (!existsSync(path)) {
    io.out(`no service installed (${path} does not exist)`);
    return 0;
  }
  const r =
    spec.platform === "linux" ? manager("systemctl", ["--user", "disable", "--now", SYSTEMD_UNIT]) : manager("launchctl", ["bootout", `gui/${uid()}`, path]);
  if (!r.ok) io.err(`exoclaw: could not stop the service (${r.detail}); removing the unit anyway`);
  await rm(path, { force: true });
  if (spec.platform === "linux") manager("systemctl", ["--user", "daemon-reload"]);
  io.out(`removed ${path}`);
  return 0;
}

/**
 * `status`: whether the unit is installed, and what the service manager says about it.
 * @returns exit code: 0 installed and active, 3 not installed or not running (as `systemctl status`: "unit is not active")
 */
export function serviceStatus(spec: ServiceSpec, io: CliIo): number {
  const path = servicePath(spec);
  if (!existsSync(path)) {
    io.out(`not installed (${path} does not exist); install with: exoclaw service install`);
    return 3;
  }
  io.out(`installed: ${path}`);
  if (spec.platform === "linux") {
    const active = manager("systemctl", ["--user", "is-active", SYSTEMD_UNIT]);
    const enabled = manager("systemctl", ["--user", "is-enabled", SYSTEMD_UNIT]);
    if (/not found|Failed to connect/i.test(active.detail)) {
      io.out(`systemctl --user is not available here (${active.detail}): cannot tell whether it runs`);
      return 3;
    }
    io.out(`active: ${active.detail} · enabled: ${enabled.detail}`);
    return active.ok ? 0 : 3;
  }
  const r = manager("launchctl", ["print", `gui/${uid()}/${LAUNCHD_LABEL}`]);
  io.out(r.ok ? (/state = (\w+)/.exec(r.detail)?.[0] ?? "loaded") : `not loaded (${r.detail})`);
  return r.ok ? 0 : 3;
}
