// `exoclaw gateway` builds only its own command (start-up time, issue 13); every other command
// line still sees them all.
import { describe, expect, it } from "vitest";
import { runCli } from "./run-cli.js";

describe("command registration", () => {
  it("`exoclaw --help` lists the gateway and the other commands", async () => {
    const r = await runCli(["--help"], {});
    expect(r.code).toBe(0);
    for (const command of ["gateway", "plugin", "sessions", "store", "config", "cron", "mcp", "pairing"]) {
      expect(r.stdout).toMatch(new RegExp(`^\\s+${command}\\b`, "m"));
    }
  });

  it("`exoclaw gateway --help` documents the gateway's options", async () => {
    const r = await runCli(["gateway", "--help"], {});
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Usage: exoclaw gateway \[options\]/);
    expect(r.stdout).toMatch(/--plugins-dir <dir>/);
  });

  it("another command runs as before (`exoclaw plugin --help`), and an unknown one is refused", async () => {
    const plugin = await runCli(["plugin", "--help"], {});
    expect(plugin.code).toBe(0);
    expect(plugin.stdout).toMatch(/Usage: exoclaw plugin/);
    const unknown = await runCli(["gatewy"], {});
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/unknown command 'gatewy'/);
  });
});
