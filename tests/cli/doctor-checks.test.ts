// The pure parts of `exoclaw doctor`: where a config key is, who holds a lock, Node and disk
// grading, systemd quoting.
import { describe, expect, it } from "vitest";
import { keyLine, withLines } from "../../host/src/cli/doctor/config.js";
import { gradeDisk } from "../../host/src/cli/doctor/disk.js";
import { lockHolders } from "../../host/src/cli/doctor/lock-holder.js";
import { checkNode } from "../../host/src/cli/doctor/node.js";
import { renderService } from "../../host/src/cli/service.js";

const TOML = `# comment
[gateway]
port = 7200
webhooks.max_in_flight = 3

[[agents]]
id = "a"

[[agents]]
id = "b"
model = 3

[agents.queue]
cap = "x"

[channels.telegram]
allow = ["1"]
`;

describe("keyLine", () => {
  it("finds keys in tables, arrays of tables, dotted keys and sub-tables of the latest array entry", () => {
    expect(keyLine(TOML, ["gateway", "port"])).toBe(3);
    expect(keyLine(TOML, ["gateway", "webhooks", "max_in_flight"])).toBe(4);
    expect(keyLine(TOML, ["agents", "1", "model"])).toBe(11);
    expect(keyLine(TOML, ["agents", "0"])).toBe(6);
    expect(keyLine(TOML, ["agents", "1", "queue", "cap"])).toBe(14);
    expect(keyLine(TOML, ["channels", "telegram", "allow", "0"])).toBe(17);
    expect(keyLine(TOML, ["store", "url"])).toBeUndefined();
  });

  it("adds the line to each issue of a schema error", () => {
    const msg = "/x/exoclaw.toml: invalid configuration\n  agents.1.model: Invalid input\n  (root): other";
    expect(withLines(msg, TOML)).toBe("/x/exoclaw.toml: invalid configuration\n  agents.1.model (line 11): Invalid input\n  (root): other");
  });
});

describe("lockHolders", () => {
  const locks =
    "1: FLOCK  ADVISORY  WRITE 20882 fe:00:2171228 0 EOF\n1: -> FLOCK  ADVISORY  WRITE 999 fe:00:2171228 0 EOF\n2: POSIX  ADVISORY  WRITE 77 08:01:2171228 0 EOF\n";
  it("matches device and inode, skips waiters", () => {
    expect(lockHolders(locks, { major: 0xfe, minor: 0 }, 2171228)).toEqual([20882]);
    expect(lockHolders(locks, { major: 8, minor: 1 }, 2171228)).toEqual([77]);
    expect(lockHolders(locks, { major: 0xfe, minor: 0 }, 1)).toEqual([]);
  });
});

describe("checkNode and gradeDisk", () => {
  it("grades versions against 20.19", () => {
    expect(checkNode("20.19.0").severity).toBe("ok");
    expect(checkNode("22.1.0").severity).toBe("ok");
    expect(checkNode("20.18.3")).toMatchObject({ severity: "error", fix: expect.stringContaining("20.19.0") });
    expect(checkNode("18.20.0").severity).toBe("error");
  });
  it("grades free space", () => {
    expect(gradeDisk("/s", 50 * 1024 * 1024).severity).toBe("error");
    expect(gradeDisk("/s", 500 * 1024 * 1024).severity).toBe("warn");
    expect(gradeDisk("/s", 5 * 1024 * 1024 * 1024)).toMatchObject({ severity: "ok", message: "5120 MiB free on the file system of /s" });
  });
});

describe("renderService", () => {
  it("quotes systemd arguments and doubles % (a specifier otherwise)", () => {
    const unit = renderService({
      platform: "linux",
      node: "/opt/node 20/bin/node",
      bin: '/x/"q"/bin/exoclaw.js',
      config: "/c/100%.toml",
      stateDir: "/s",
      env: {},
      home: "/h",
      xdgConfigHome: "/h/.config",
    });
    expect(unit).toContain('ExecStart="/opt/node 20/bin/node" "/x/\\"q\\"/bin/exoclaw.js" "gateway" "--config" "/c/100%%.toml"\n');
  });
});
