/**
 * `exoclaw service install|uninstall|status` in a temporary XDG config home / HOME: the unit's
 * content (absolute node and bin paths, this config and state directory, journal logging, no
 * secret), `--dry-run`, and the message when no service manager is reachable (PATH without
 * systemctl, as on CI).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../support/gateway.js";
import { runCli } from "./run-cli.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-service-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const home = join(root, "home");
const xdg = join(root, "xdg");
const state = join(root, "state");
const config = join(root, "exoclaw.toml");
writeFileSync(config, "[gateway]\nport = 7301\n");
const env = {
  HOME: home,
  XDG_CONFIG_HOME: xdg,
  EXOCLAW_STATE_DIR: state,
  EXOCLAW_LOG_LEVEL: "debug",
  EXOCLAW_TOKEN: "a-secret-gateway-token-0123456789",
  ANTHROPIC_API_KEY: "sk-ant-secret-key-for-the-test",
  // Not set in the installing shell (the runner's own value would be carried into the unit).
  MALLOC_ARENA_MAX: "",
  // No systemctl / launchctl on this PATH: what CI without a user session sees.
  PATH: join(root, "no-bin"),
};
const unitPath = join(xdg, "systemd", "user", "exoclaw.service");

describe("exoclaw service (systemd user unit)", () => {
  it("--dry-run prints the unit and where it would go, writes nothing", async () => {
    const r = await runCli(["service", "install", "--dry-run", "--platform", "linux", "-c", config], env);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`# ${unitPath} (not written: --dry-run)`);
    expect(r.stdout).toContain(`ExecStart="${process.execPath}" "${join(ROOT, "bin", "exoclaw.js")}" "gateway" "--config" "${config}"`);
    expect(existsSync(unitPath)).toBe(false);
  });

  it("install writes the unit; without systemctl it says what to run; status and uninstall", async () => {
    const r = await runCli(["service", "install", "--platform", "linux", "-c", config], env);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`wrote ${unitPath}`);
    expect(r.stderr).toContain("systemctl --user daemon-reload failed: systemctl not found");
    expect(r.stderr).toContain("systemctl --user daemon-reload && systemctl --user enable --now exoclaw.service");
    const unit = readFileSync(unitPath, "utf8");
    expect(unit).toContain("[Service]\nType=simple\n");
    expect(unit).toContain(`ExecStart="${process.execPath}" "${join(ROOT, "bin", "exoclaw.js")}" "gateway" "--config" "${config}"\n`);
    expect(unit).toContain(`Environment="EXOCLAW_STATE_DIR=${state}"\n`);
    expect(unit).toContain('Environment="EXOCLAW_LOG_LEVEL=debug"\n');
    expect(unit).toContain(`EnvironmentFile=-${join(state, "service.env")}\n`);
    // glibc's arena bound (fewer per-thread malloc arenas keeping freed memory): set before the
    // EnvironmentFile line, which systemd lets override it.
    expect(unit).toContain('Environment="MALLOC_ARENA_MAX=2"\n');
    expect(unit.indexOf("MALLOC_ARENA_MAX")).toBeLessThan(unit.indexOf("EnvironmentFile="));
    expect(unit).toContain("StandardOutput=journal\nStandardError=journal\n");
    expect(unit).toContain("Restart=on-failure\n");
    expect(unit).toContain("[Install]\nWantedBy=default.target\n");
    // Secrets stay out of the unit file.
    expect(unit).not.toContain(env.EXOCLAW_TOKEN);
    expect(unit).not.toContain(env.ANTHROPIC_API_KEY);
    expect(statSync(unitPath).mode & 0o777).toBe(0o600); // the CLI's private umask: only the user (and their systemd) reads it

    const status = await runCli(["service", "status", "--platform", "linux", "-c", config], env);
    expect(status.code).toBe(3);
    expect(status.stdout).toContain(`installed: ${unitPath}`);
    expect(status.stdout).toContain("systemctl --user is not available here");

    const un = await runCli(["service", "uninstall", "--platform", "linux", "-c", config], env);
    expect(un.code).toBe(0);
    expect(un.stdout).toContain(`removed ${unitPath}`);
    expect(existsSync(unitPath)).toBe(false);
    const after = await runCli(["service", "status", "--platform", "linux", "-c", config], env);
    expect(after.code).toBe(3);
    expect(after.stdout).toContain("not installed");
  });

  it("an installing shell's MALLOC_ARENA_MAX goes into the unit instead of exoclaw's", async () => {
    const r = await runCli(["service", "install", "--dry-run", "--platform", "linux", "-c", config], { ...env, MALLOC_ARENA_MAX: "4" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Environment="MALLOC_ARENA_MAX=4"\n');
    expect(r.stdout).not.toContain("MALLOC_ARENA_MAX=2");
  });

  it("a launchd agent for macOS in ~/Library/LaunchAgents", async () => {
    const r = await runCli(["service", "install", "--dry-run", "--platform", "darwin", "-c", config], env);
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe(`# ${join(home, "Library", "LaunchAgents", "dev.exoclaw.gateway.plist")} (not written: --dry-run)`);
    expect(r.stdout).toContain(
      `    <string>${process.execPath}</string>\n    <string>${join(ROOT, "bin", "exoclaw.js")}</string>\n    <string>gateway</string>`,
    );
    expect(r.stdout).toContain(`<key>EXOCLAW_STATE_DIR</key><string>${state}</string>`);
    expect(r.stdout).toContain("<key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>");
    expect(r.stdout).not.toContain(env.EXOCLAW_TOKEN);
    expect(r.stdout).not.toContain("MALLOC_ARENA_MAX"); // glibc's: not macOS's allocator
  });
});
